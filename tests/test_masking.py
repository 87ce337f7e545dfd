"""Viewers see no personal field, over every route of a workspace, through real HTTP.

One workspace holds customers with distinctive personal values in every default
personal column and in a column a mapping file marked personal, plus everything
built on them: segments, predictions, a campaign, automation firings, webhook
messages, e-mails, an upload with bad values. Every GET route of the workspace (read
from the app, so a new route is covered the day it is added) and the POST routes
that answer with customers are called as an analyst and as a viewer:

* the analyst's answers hold the seeded values exactly on the routes listed in
  :data:`RETURN_CUSTOMERS` and :data:`VIEWERS_REFUSED` (so the test can fail, and a
  new route that returns customers must be added to one of them);
* the viewer gets 200 from every route of :data:`RETURN_CUSTOMERS` and 403 from those
  of :data:`VIEWERS_REFUSED`, and no answer holds a seeded value or its SHA-256.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import pytest

from strata.api.masking import Masker, mask_record, mask_value
from strata.demo import generate_and_load
from tests.conftest import ApiServer, api_settings
from tests.test_api_access import WS_PREFIX, fill, workspace_routes

#: Seeded customers (the first of the generated shop); each gets its own values.
SEEDED = 12


def personal_values(i: int) -> dict[str, str]:
    """Distinctive values of customer ``i``: no other answer holds them by chance."""
    return {
        "email": f"quorra{i:02d}.vexley@veiled-mail.test",
        "name": f"Quorra Vexley{i:02d}",
        "phone": f"+4930 55{i:02d} 8181",
        "birth_date": f"1931-04-{i + 1:02d}",
        "street": f"{i + 1} Quietwater Lane",
        "zip": f"QZ{i:02d} 9XY",
        "loyalty_card": f"LC-CARD-{i:04d}-X",
    }


MAPPING = """\
as: customers
fields:
  customer_id: Customer
  email: Email
  name: Name
  phone: Phone
  birth_date: Born
attributes:
  street: Street
  zip: Zip
  loyalty_card: {column: Card, personal: true}
"""

#: Routes (method, path after the workspace prefix) whose answers hold customers'
#: personal data: viewers get them masked.
RETURN_CUSTOMERS = {
    ("GET", "/customers"),
    ("GET", "/customers/{external_id}"),
    ("GET", "/segments"),
    ("GET", "/automations"),
    ("GET", "/automations/{automation_id}"),
    ("GET", "/versions/automations/{automation_id}"),
    ("GET", "/versions/automations/{automation_id}/diff"),
    ("GET", "/segments/{segment_id}/members"),
    ("GET", "/segments/{segment_id}/explain/{customer}"),
    ("GET", "/predictions"),
    ("GET", "/jobs"),
    ("GET", "/jobs/{job_id}"),
    ("GET", "/imports/{import_id}/errors"),
    ("GET", "/imports/{import_id}/errors.csv"),
    ("GET", "/imports/{import_id}"),
    ("POST", "/segments/preview"),
}
#: Routes whose answers hold personal data that viewers may not call at all (403).
VIEWERS_REFUSED = {
    ("GET", "/segments/{segment_id}/members.csv"),
    ("GET", "/exports/{export_id}/download"),
    ("GET", "/webhooks/messages/{message_id}"),
    ("GET", "/email/messages"),
}


class Ids(dict):
    """Ids of this workspace's objects by path parameter; a kind not seeded gets 1."""

    def __missing__(self, key: str) -> str:
        return "1"


@dataclass
class Seeded:
    server: ApiServer
    ws: int
    ids: dict[str, str]
    values: list[str]
    hashes: list[str]


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Seeded:
    from strata.actions.automations import AutomationRunner, Automations
    from strata.actions.campaigns import Campaigns
    from strata.actions.email import Mailer
    from strata.actions.exports import Exports
    from strata.actions.webhooks import Webhooks
    from strata.catalog import Destination
    from strata.ingest.pipeline import run_import
    from strata.models.cluster import run_clustering
    from strata.segments.engine import Segments
    from strata.segments.nodes import SegmentSpec, parse_rule

    home = tmp_path_factory.mktemp("masking")
    server = ApiServer(api_settings(home, webhook_allow=("127.0.0.1",)))
    try:
        owner = server.owner()
        ws_id = owner.post("/api/v1/workspaces", json={"name": "masked"}).json()["id"]
        app = server.service.app
        generate_and_load(app, customers=60, workspace="masked")
        ws = app.workspace("masked")
        externals = [f"C{i + 1:07d}" for i in range(SEEDED)]
        rows = ["Customer,Email,Name,Phone,Born,Street,Zip,Card"]
        for i, ext in enumerate(externals):
            v = personal_values(i)
            rows.append(
                f"{ext},{v['email']},{v['name']},{v['phone']},{v['birth_date']},"
                f"{v['street']},{v['zip']},{v['loyalty_card']}"
            )
        (home / "people.csv").write_text("\n".join(rows) + "\n")
        (home / "people.yaml").write_text(MAPPING)
        run_import(app, home / "people.csv", workspace="masked", mapping_file=home / "people.yaml")

        segs = Segments(app, ws)
        segs.save_static("Seeded", externals[:2])

        hook, _ = Webhooks(app, ws).create("crm", "http://127.0.0.1:9/in")
        autos = Automations(app, ws)
        tell = autos.create(
            "tell the crm", "Seeded", "enter", {"kind": "webhook", "destination": hook.id}
        )
        autos.create("tag them", "Seeded", "enter", {"kind": "tag", "tag": "seen"})
        only = autos.create(  # a condition that names a person
            "only Quorra",
            "Seeded",
            "enter",
            {"kind": "tag", "tag": "q"},
            condition={
                "type": "attribute",
                "attribute": "name",
                "op": "eq",
                "value": personal_values(4)["name"],
            },
        )
        segs.save_static("Seeded", externals, mode="replace")
        AutomationRunner(app).run_due()
        Campaigns(app, ws).create("Spring", "Seeded", {"kind": "tag", "tag": "spring"})
        export = Exports(app, ws).export("Seeded", "csv")
        with app.session() as s:  # as Mailer.add_server stores it, without its DNS check
            smtp = Destination(
                workspace_id=ws.id,
                name="smtp",
                kind="smtp",
                config={
                    "host": "smtp.masked.example",
                    "port": 587,
                    "security": "starttls",
                    "from_address": "shop@masked.example",
                },
            )
            s.add(smtp)
            s.commit()
        template = {"subject": "Hi {{ customer.name }}", "text": "Dear {{ customer.name }}\n"}
        customers = app.warehouse.table(ws.id, "customers")
        records = customers.filter(customers.external_id.isin(externals)).to_pyarrow().to_pylist()
        Mailer(app, ws).queue_many(smtp.id, template, records)
        run_clustering(app, "masked", k=3)
        # An import whose bad values quote personal data (a birth date that is a name),
        # through the API, so its job's result holds the report too.
        base = f"/api/v1/workspaces/{ws_id}"
        bad = (
            "Customer,Email,Birth Date\nC0000001,quorra00.vexley@veiled-mail.test,Quorra Vexley00\n"
        )
        upload = owner.post(
            f"{base}/imports", files={"file": ("bad.csv", bad.encode(), "text/csv")}
        )
        assert upload.status_code == 201, upload.text
        job = owner.post(f"{base}/imports/{upload.json()['id']}/confirm").json()
        job = wait_for_job(owner, base, job["id"])
        assert job["result"]["invalid_values"] == 1, job["result"]
        # A rule on the marked column: explanations show the value it looked at.
        card = {
            "type": "attribute",
            "attribute": "loyalty_card",
            "op": "starts_with",
            "value": "LC",
        }
        segs.save(SegmentSpec(name="Cardholders", rule=parse_rule(card)))
        # A rule that names a person.
        one = {
            "type": "attribute",
            "attribute": "email",
            "op": "eq",
            "value": personal_values(3)["email"],
        }
        segs.save(SegmentSpec(name="Quorra", rule=parse_rule(one)))
        message = Webhooks(app, ws).messages(hook.id)[1][0]
        _, firings = autos.firings(automation_id=tell.id)
        import_id = job["result"]["import_id"]
        values = [v for i in range(SEEDED) for v in personal_values(i).values()]
        hashes = [_sha(personal_values(i)[k]) for i in range(SEEDED) for k in ("email", "phone")]
        hashes += [_sha(personal_values(i)["email"].lower()) for i in range(SEEDED)]
        ids = Ids(
            {
                "segment_id": str(segs.get("Cardholders").id),
                "automation_id": str(only.id),
                "export_id": str(export.id),
                "destination_id": str(hook.id),
                "message_id": str(message.id),
                "import_id": str(import_id),
                "upload_id": str(upload.json()["id"]),
                "external_id": externals[0],
                "customer": externals[0],
                "model_id": "1",
                "job_id": str(job["id"]),
                "campaign_id": "1",
                "sync_id": "1",
                "member_id": "1",
                "key_id": "1",
                "name": "x",
            }
        )
        assert firings, "the automation fired for no one: nothing to check"
        yield Seeded(server, ws_id, ids, values, hashes)
    finally:
        server.close()


def wait_for_job(client, base: str, job_id: int, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"{base}/jobs/{job_id}").json()
        if job["status"] in {"succeeded", "failed", "interrupted"}:
            return job
        assert time.monotonic() < deadline, f"job {job_id} still {job['status']}"
        time.sleep(0.05)


def _calls(seeded: Seeded):
    """Every GET route of the workspace, and the POST routes that answer with customers."""
    app = seeded.server.app
    extra_query = {
        "/predictions": {"type": "cluster:behaviour"},
        "/customers": {"q": "C00000"},
    }
    for method, path, route in workspace_routes(app):
        short = path.removeprefix(WS_PREFIX)
        if method == "GET":
            url = fill(path, route, seeded.ws, seeded.ids)
            yield method, short, url, extra_query.get(short), None
            if short.startswith("/analyses/"):
                yield method, short + "?format=csv", url, {"format": "csv"}, None
        elif (method, short) == ("POST", "/segments/preview"):
            rule = {
                "type": "attribute",
                "attribute": "external_id",
                "op": "starts_with",
                "value": "C",
            }
            yield method, short, fill(path, route, seeded.ws), None, {"rule": rule}


def test_viewers_see_no_personal_value_on_any_route_analysts_do(seeded):
    admin = seeded.server.user_with_role(seeded.ws, "admin")
    analyst = seeded.server.user_with_role(seeded.ws, "analyst")
    viewer = seeded.server.user_with_role(seeded.ws, "viewer")
    holding, analyst_sees, leaks, not_ok = set(), set(), [], []
    for method, short, url, params, body in _calls(seeded):
        key = (method, short.partition("?")[0])
        plain = admin.request(method, url, params=params, json=body)
        if any(v in plain.text for v in seeded.values):
            holding.add(key)
        if key in RETURN_CUSTOMERS:
            plain = analyst.request(method, url, params=params, json=body)
            if any(v in plain.text for v in seeded.values):
                analyst_sees.add(key)
        seen = viewer.request(method, url, params=params, json=body)
        found = [v for v in seeded.values + seeded.hashes if v in seen.text]
        if found:
            leaks.append(f"{method} {short}: {seen.status_code} {found[:3]}")
        expected = 200 if key in RETURN_CUSTOMERS else 403 if key in VIEWERS_REFUSED else None
        if expected is not None and seen.status_code != expected:
            not_ok.append(f"{method} {short}: {seen.status_code} {seen.text[:150]}")
    assert leaks == []
    assert not_ok == []
    assert holding == RETURN_CUSTOMERS | VIEWERS_REFUSED
    assert analyst_sees == RETURN_CUSTOMERS


def test_viewers_may_not_export_or_read_delivery_logs(seeded):
    viewer = seeded.server.user_with_role(seeded.ws, "viewer")
    base = f"/api/v1/workspaces/{seeded.ws}"
    segment = int(seeded.ids["segment_id"])
    refused = [
        viewer.post(f"{base}/exports", json={"segment_id": segment, "format": "csv"}),
        viewer.get(f"{base}/exports"),
        viewer.get(f"{base}/segments/{segment}/members.csv"),
        viewer.get(f"{base}/webhooks/{seeded.ids['destination_id']}/messages"),
        viewer.get(f"{base}/email/messages"),
    ]
    assert [r.status_code for r in refused] == [403] * 5


def test_mask_value_keeps_a_hint_and_hides_the_rest():
    assert mask_value("email", "Jane@Example.com") == "J***@Example.com"
    assert mask_value("birth_date", "1931-04-01") == "1***"
    assert mask_value("city", "Berlin") == "Berlin"
    assert mask_record({"phone": None, "plan": "pro"}) == {"phone": None, "plan": "pro"}


def test_a_workspace_masker_masks_marked_columns_nested_values_and_csv_cells():
    m = Masker(frozenset({"loyalty_card"}))
    data = {"customer": {"loyalty_card": "LC-1", "city": "Berlin"}, "items": [{"email": "a@b.io"}]}
    assert m.mask(data) == {
        "customer": {"loyalty_card": "L***", "city": "Berlin"},
        "items": [{"email": "a***@b.io"}],
    }
    assert m.mask({"attribute": "loyalty_card", "value": "LC-1"})["value"] == "L***"
    assert (
        m.csv("id,Loyalty_Card,city\nc1,LC-1,Berlin\n") == "id,Loyalty_Card,city\nc1,L***,Berlin\n"
    )
    assert Masker(active=False).mask(data) is data


def test_rules_keep_their_own_fields_and_diffs_hide_compared_values():
    m = Masker()
    rule = {"type": "and", "conditions": [{"attribute": "email", "op": "eq", "value": "q@x.io"}]}
    snapshot = {"name": "VIP", "definition": rule}
    assert m.conditions(snapshot)["name"] == "VIP"
    assert m.conditions(snapshot)["definition"]["conditions"][0]["value"] == "q***@x.io"
    changes = [
        {"path": "definition.value", "change": "changed", "old": "a@b.io", "new": "c@d.io"},
        {"path": "wait_seconds", "change": "changed", "old": 0, "new": 60},
    ]
    assert [(c["old"], c["new"]) for c in m.changes(changes)] == [
        ("a***@b.io", "c***@d.io"),
        (0, 60),
    ]


def test_bad_import_values_are_masked_by_the_field_their_column_fills():
    m = Masker(frozenset({"loyalty_card"}))
    mapping = {"fields": {"birth_date": {"column": "Born"}}, "attributes": {"loyalty_card": "Card"}}
    errors = [
        {"row": 2, "column": "Born", "value": "Jane"},
        {"row": 3, "column": "Card", "value": "LC-9"},
        {"row": 4, "column": "Plan", "value": "gold?"},
    ]
    assert [e["value"] for e in m.import_errors(errors, mapping)] == ["J***", "L***", "gold?"]
