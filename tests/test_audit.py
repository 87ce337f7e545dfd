"""The audit log: every audited action writes exactly one entry, naming who did it, in
which workspace, to what; refused changes and reads write none; the catalog refuses to
change or delete an entry (SQLite and PostgreSQL); the log is filtered and exported.

The per-action test runs each action through the real API, signed in as a member (the
actor), and counts the entries around it. :data:`CASES` must hold a case for every
name in :data:`strata.audit.ACTIONS`: a module that adds an action adds its case here
(``test_every_audited_action_has_a_case`` says which are missing).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from strata import audit
from strata.audit import Actor, acting_as
from strata.catalog import AuditEntry
from strata.catalog.db import open_catalog
from strata.demo import generate_and_load
from strata.errors import InputError
from strata.segments.engine import Segments
from tests.conftest import ApiServer, api_settings
from tests.fake_marketing import FakeMarketing

PASSWORD = "correct horse battery staple"


# -- the world the cases act in ----------------------------------------------------------------
@dataclass
class World:
    """A served API with one workspace of 150 generated customers, a marketing-tool fake,
    and ``me``: a member with the owner role in it, who does every audited action."""

    server: ApiServer
    fake: FakeMarketing
    ws: int
    me: Any  # httpx.Client signed in as ``email``
    email: str
    user_id: int
    segment_id: int
    secrets: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"/api/v1/workspaces/{self.ws}"

    def ok(self, method: str, path: str, status: int | None = None, **kwargs) -> Any:
        """Call the API as ``me``; the answer's JSON (None when empty)."""
        url = path if path.startswith("/api/") else self.base + path
        r = self.me.request(method, url, **kwargs)
        assert r.is_success and (status is None or r.status_code == status), r.text
        if not r.content or r.headers.get("content-type", "").split(";")[0] != "application/json":
            return r
        return r.json()

    def wait_job(self, job: dict, seconds: float = 60) -> dict:
        deadline = time.monotonic() + seconds
        while True:
            now = self.ok("GET", f"/jobs/{job['id']}")
            if now["status"] in {"succeeded", "failed", "interrupted"}:
                return now
            assert time.monotonic() < deadline, f"job {job['id']} still {now['status']}"
            time.sleep(0.05)

    def name(self, prefix: str) -> str:
        return f"{prefix} {uuid.uuid4().hex[:6]}"

    # things to act on, made before the counted action
    def static_segment(self) -> int:
        body = {"name": self.name("list"), "kind": "static", "customers": ["C0000001"]}
        return self.ok("POST", "/segments", json=body)["id"]

    def automation(self, status: str = "active") -> int:
        body = {
            "name": self.name("flow"),
            "segment_id": self.segment_id,
            "trigger": "enter",
            "action": {"kind": "tag", "tag": "audited"},
            "status": status,
        }
        return self.ok("POST", "/automations", json=body)["id"]

    def campaign(self) -> int:
        body = {
            "name": self.name("campaign"),
            "segment_id": self.segment_id,
            "action": {"kind": "tag", "tag": "campaigned"},
        }
        return self.ok("POST", "/campaigns", json=body)["id"]

    def webhook(self) -> int:
        body = {"name": self.name("hook"), "url": "http://127.0.0.1:9/hook"}
        made = self.ok("POST", "/webhooks", json=body)
        self.secrets.append(made["secret"])
        return made["id"]

    def smtp(self) -> int:
        body = {
            "name": self.name("smtp"),
            "host": "127.0.0.1",
            "port": 2525,
            "security": "none",
            "username": "mailer",
            "password": "smtp-secret-password",
            "from_address": "shop@example.com",
        }
        self.secrets.append(body["password"])
        return self.ok("POST", "/email/servers", json=body)["id"]

    def tool(self) -> int:
        self.secrets.append(self.fake.key("klaviyo"))
        body = {
            "name": self.name("klaviyo"),
            "kind": "klaviyo",
            "api_key": self.fake.key("klaviyo"),
            "config": {"base_url": self.fake.base("klaviyo")},
        }
        return self.ok("POST", "/syncs/destinations", json=body)["id"]

    def sync(self) -> int:
        body = {"destination_id": self.tool(), "segment_id": self.segment_id, "list_id": "LiSt01"}
        return self.ok("POST", "/syncs", json=body)["id"]

    def export(self) -> int:
        body = {"segment_id": self.segment_id, "format": "csv"}
        return self.ok("POST", "/exports", json=body)["id"]

    def member(self) -> int:
        body = {"email": f"m-{uuid.uuid4().hex[:8]}@example.com", "role": "viewer"}
        return self.ok("POST", "/members", json={**body, "password": PASSWORD})["id"]

    def key(self) -> int:
        made = self.ok("POST", "/keys", json={"name": self.name("key"), "kind": "read"})
        self.secrets.append(made["key"])
        return made["id"]

    def workspace(self) -> int:
        return self.ok("POST", "/api/v1/workspaces", json={"name": self.name("ws")})["id"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    home = tmp_path_factory.mktemp("audit")
    server = ApiServer(api_settings(home, webhook_allow=("127.0.0.1",)))
    fake = FakeMarketing().__enter__()
    try:
        root = server.owner()
        ws = root.post("/api/v1/workspaces", json={"name": "audited"}).json()["id"]
        with server.service.writing() as app:
            generate_and_load(app, customers=150, workspace="audited")
            Segments(app, app.workspace("audited")).save_static("VIP", ["C0000001", "C0000002"])
            segment_id = Segments(app, app.workspace("audited")).get("VIP").id
        email = "auditor@example.com"
        me = server.user_with_role(ws, "owner", email=email)
        user_id = server.service.accounts.user_by_email(email).id
        yield World(server, fake, ws, me, email, user_id, segment_id)
    finally:
        fake.__exit__(None, None, None)
        server.close()


def newest_id(w: World) -> int:
    with w.server.service.app.session() as s:
        return s.scalar(sa.select(sa.func.max(AuditEntry.id))) or 0


def entries_after(w: World, after: int) -> list[AuditEntry]:
    with w.server.service.app.session() as s:
        return list(s.scalars(sa.select(AuditEntry).where(AuditEntry.id > after)))


# -- one case per audited action ---------------------------------------------------------------
#: What a case returns: the entry's (workspace id, target type, target id) it expects.
Expected = tuple[int | None, str | None, str | None]
#: A case prepares what it acts on (not counted) and returns the counted action.
Case = Callable[[World], Callable[[], Expected]]


def _call(w: World, method: str, path: str, expected: Expected, **kwargs):
    """The counted action of most cases: one call as ``me``, and the entry it should write."""

    def act() -> Expected:
        w.ok(method, path, **kwargs)
        return expected

    return act


def _made(w: World, make: Callable[[], int], target_type: str):
    """The counted action of a case that creates something: ``make`` it."""
    return lambda: (w.ws, target_type, str(make()))


def _segment_create(w: World):
    body = {"name": w.name("new list"), "kind": "static", "customers": ["C0000003"]}
    return _made(w, lambda: w.ok("POST", "/segments", json=body)["id"], "segment")


def _segment_update(w: World):
    seg = w.static_segment()
    body = {"description": "best customers"}
    return _call(w, "PATCH", f"/segments/{seg}", (w.ws, "segment", str(seg)), json=body)


def _segment_update_rule(w: World):
    rule = {"type": "attribute", "attribute": "country", "op": "eq", "value": "US"}
    seg = w.ok("POST", "/segments", json={"name": w.name("rule"), "rule": rule})["id"]
    body = {"rule": {**rule, "value": "GB"}, "name": w.name("renamed")}
    return _call(w, "PATCH", f"/segments/{seg}", (w.ws, "segment", str(seg)), json=body)


def _segment_delete(w: World):
    seg = w.static_segment()
    return _call(w, "DELETE", f"/segments/{seg}", (w.ws, "segment", str(seg)))


def _segment_settings(w: World):
    def act():
        job = w.ok("PUT", "/settings/rfm", json={"bins": 5})
        w.wait_job(job)  # its RFM run saves Strata's own segments: no entries of their own
        return w.ws, "setting", "rfm"

    return act


def _segment_settings_icp(w: World):
    body = {"criteria": [{"on": "total_revenue", "scale": [0, 500]}]}
    return _call(w, "PUT", "/settings/icp", (w.ws, "setting", "icp"), json=body)


def _segment_settings_tiers(w: World):
    def act():
        body = {"on": "total_revenue", "tiers": [{"name": "Low", "max": 100}, {"name": "High"}]}
        job = w.wait_job(w.ok("PUT", "/tiers/value", json=body))
        assert job["status"] == "succeeded", job["message"]  # its tier segments: no entries
        return w.ws, "setting", "tiers:value"

    return act


def _segment_settings_tiers_gone(w: World):
    body = {"on": "total_revenue", "tiers": [{"name": "Small", "max": 50}, {"name": "Big"}]}
    w.wait_job(w.ok("PUT", "/tiers/size", json=body))
    return _call(w, "DELETE", "/tiers/size", (w.ws, "setting", "tiers:size"))


def _segment_update_list(w: World):
    seg = w.static_segment()
    body = {"customers": ["C0000004", "C0000005"], "mode": "append"}
    return _call(w, "PATCH", f"/segments/{seg}", (w.ws, "segment", str(seg)), json=body)


def _segment_download(w: World):
    def act():
        r = w.ok("GET", f"/segments/{w.segment_id}/members.csv")
        assert r.text.count("\n") == 3  # header and the two members
        return w.ws, "segment", str(w.segment_id)

    return act


def _automation_create(w: World):
    return _made(w, w.automation, "automation")


def _automation_update(w: World):
    a = w.automation()
    body = {"wait_seconds": 3600}
    return _call(w, "PATCH", f"/automations/{a}", (w.ws, "automation", str(a)), json=body)


def _automation_verb(verb: str, status: str) -> Case:
    def case(w: World):
        a = w.automation(status)
        return _call(w, "POST", f"/automations/{a}/{verb}", (w.ws, "automation", str(a)))

    return case


def _automation_delete(w: World):
    a = w.automation()
    return _call(w, "DELETE", f"/automations/{a}", (w.ws, "automation", str(a)))


def _campaign_create(w: World):
    return _made(w, w.campaign, "campaign")


def _campaign_verb(method: str, suffix: str, launched: bool = False) -> Case:
    def case(w: World):
        c = w.campaign()
        if launched:
            w.ok("POST", f"/campaigns/{c}/launch")
        return _call(w, method, f"/campaigns/{c}{suffix}", (w.ws, "campaign", str(c)))

    return case


def _webhook_create(w: World):
    return _made(w, w.webhook, "destination")


def _webhook(method: str, suffix: str, body: dict | None = None, disabled: bool = False) -> Case:
    def case(w: World):
        d = w.webhook()
        if disabled:
            w.ok("POST", f"/webhooks/{d}/disable")
        return _call(w, method, f"/webhooks/{d}{suffix}", (w.ws, "destination", str(d)), json=body)

    return case


def _smtp_create(w: World):
    return _made(w, w.smtp, "destination")


def _smtp(method: str, body: dict | None) -> Case:
    def case(w: World):
        d = w.smtp()
        return _call(w, method, f"/email/servers/{d}", (w.ws, "destination", str(d)), json=body)

    return case


def _tool_create(w: World):
    return _made(w, w.tool, "destination")


def _tool_delete(w: World):
    d = w.tool()
    return _call(w, "DELETE", f"/syncs/destinations/{d}", (w.ws, "destination", str(d)))


def _sync_create(w: World):
    body = {"destination_id": w.tool(), "segment_id": w.segment_id, "list_id": "LiSt01"}
    return _made(w, lambda: w.ok("POST", "/syncs", json=body)["id"], "sync")


def _sync_delete(w: World):
    sync = w.sync()
    return _call(w, "DELETE", f"/syncs/{sync}", (w.ws, "sync", str(sync)))


def _sync_run(w: World):
    sync = w.sync()

    def act():
        result = w.ok("POST", f"/syncs/{sync}/run")
        assert result["added"] >= 1
        return w.ws, "sync", str(sync)

    return act


def _member_add(w: World):
    return _made(w, w.member, "member")


def _member_role(w: World):
    m = w.member()
    return _call(w, "PATCH", f"/members/{m}", (w.ws, "member", str(m)), json={"role": "analyst"})


def _member_remove(w: World):
    m = w.member()
    return _call(w, "DELETE", f"/members/{m}", (w.ws, "member", str(m)))


def _key_create(w: World):
    return _made(w, w.key, "key")


def _key_revoke(w: World):
    k = w.key()
    return _call(w, "DELETE", f"/keys/{k}", (w.ws, "key", str(k)))


def _workspace_create(w: World):
    def act():
        ws = w.workspace()
        return ws, "workspace", str(ws)

    return act


def _workspace_update(w: World):
    body = {"industry": w.name("retail")}
    return _call(
        w, "PATCH", f"/api/v1/workspaces/{w.ws}", (w.ws, "workspace", str(w.ws)), json=body
    )


def _workspace_delete(w: World):
    ws = w.workspace()
    return _call(w, "DELETE", f"/api/v1/workspaces/{ws}", (ws, "workspace", str(ws)))


def _workspace_plan(w: World):
    ws = w.workspace()  # its own workspace: the others' cases keep the unlimited plan
    body = {"plan": "enterprise"}
    return _call(w, "PUT", f"/api/v1/workspaces/{ws}/plan", (ws, "workspace", str(ws)), json=body)


def _import_run(w: World):
    data = b"customer_id,email\nC9000001,new.person@example.com\n"
    up = w.ok("POST", "/imports", files={"file": ("people.csv", data, "text/csv")})

    def act():
        job = w.wait_job(w.ok("POST", f"/imports/{up['id']}/confirm", json={}))
        assert job["status"] == "succeeded", job["message"]
        return w.ws, "import", str(job["result"]["import_id"])

    return act


def _export_create(w: World):
    return _made(w, w.export, "export")


def _export_download(w: World):
    e = w.export()
    return _call(w, "GET", f"/exports/{e}/download", (w.ws, "export", str(e)))


def _export_delete(w: World):
    e = w.export()
    return _call(w, "DELETE", f"/exports/{e}", (w.ws, "export", str(e)))


def _analysis_download(w: World):
    def act():
        r = w.ok("GET", "/analyses/growth", params={"format": "csv", "segment": "VIP"})
        assert r.headers["content-type"].startswith("text/csv")
        return w.ws, "analysis", "growth"

    return act


def _audit_export(w: World):
    return _call(w, "GET", "/audit/export", (w.ws, None, None), params={"format": "jsonl"})


def _draft_automation(w: World) -> int:
    """A webhook automation waiting for approval, made by Strata rather than ``me`` (four
    eyes); approvals go off again, which leaves it a draft and the other cases as they were."""
    from strata import governance
    from strata.actions.automations import Automations
    from strata.actions.webhooks import Webhooks
    from strata.catalog import Workspace

    segment = w.ok("GET", f"/segments/{w.static_segment()}")["name"]
    with w.server.service.writing() as app:
        with app.session() as s:
            ws = s.get(Workspace, w.ws)
        governance.set_required(app, ws, True)
        dest, _ = Webhooks(app, ws).create(w.name("hook"), "https://hooks.example.com/in")
        action = {"kind": "webhook", "destination": dest.id}
        a = Automations(app, ws).create(w.name("sends"), segment, "enter", action)
        governance.set_required(app, ws, False)
    return a.id


def _approval(verb: str) -> Case:
    def case(w: World):
        a = _draft_automation(w)
        path = f"/approvals/automations/{a}/{verb}"
        return _call(w, "POST", path, (w.ws, "automation", str(a)), json={"note": "checked"})

    return case


def _approvals_off(w: World):
    _draft_automation(w)  # turns approvals on, then off: turn them on for the case
    w.ok("PUT", "/approvals/settings", json={"require_approval": True})
    body = {"require_approval": False}
    return _call(w, "PUT", "/approvals/settings", (w.ws, "workspace", str(w.ws)), json=body)


def _rights(w: World, kind: str, external_id: str) -> str:
    """Run a data-rights request to the end; its id."""
    path = "/privacy/erasures" if kind == "erasure" else "/privacy/access"
    answer = w.ok("POST", path, json={"external_id": external_id}, status=202)
    assert w.wait_job(answer["job"])["status"] == "succeeded"
    return str(answer["request"]["id"])


def _customer_erase(w: World):
    return lambda: (w.ws, "rights_request", _rights(w, "erasure", "C0000149"))


def _customer_access(w: World):
    return lambda: (w.ws, "rights_request", _rights(w, "access", "C0000002"))


def _customer_consent(w: World):
    _rights(w, "erasure", "C0000148")
    body = {"external_id": "C0000148"}
    return _call(w, "POST", "/privacy/consent", (w.ws, "suppression", None), json=body)


def _privacy_retention(w: World):
    body = {"retention_days": 36500}
    return _call(w, "PUT", "/privacy/settings", (w.ws, "workspace", str(w.ws)), json=body)


def _privacy_retention_run(w: World):
    """Keep all but the first day of events: the run deletes something, so it is audited."""
    events = w.server.service.app.warehouse.table(w.ws, "events")
    first = events.timestamp.min().to_pyarrow().as_py()
    days = (dt.datetime.now(dt.UTC).replace(tzinfo=None) - first).days - 1
    w.ok("PUT", "/privacy/settings", json={"retention_days": days})
    return _call(w, "POST", "/privacy/retention/run", (w.ws, "workspace", str(w.ws)))


def _personal_fields_update(w: World):
    column = "card_" + uuid.uuid4().hex[:6]
    return _call(
        w, "PUT", "/personal-fields", (w.ws, "personal_fields", None), json={"marked": [column]}
    )


#: (action, what the case does, the case). Add yours: ``test_every_audited_action_has_a_case``
#: fails while an action in ``strata.audit.ACTIONS`` has none.
CASES: list[tuple[str, str, Case]] = [
    ("segment.create", "static list", _segment_create),
    ("segment.update", "description", _segment_update),
    ("segment.update", "rule and name", _segment_update_rule),
    ("segment.delete", "static list", _segment_delete),
    ("segment.update", "static list appended", _segment_update_list),
    ("segment.settings", "RFM grid", _segment_settings),
    ("segment.settings", "ICP criteria", _segment_settings_icp),
    ("segment.settings", "tier set", _segment_settings_tiers),
    ("segment.settings", "tier set deleted", _segment_settings_tiers_gone),
    ("segment.download", "members CSV", _segment_download),
    ("automation.create", "", _automation_create),
    ("automation.update", "", _automation_update),
    ("automation.pause", "", _automation_verb("pause", "active")),
    ("automation.resume", "", _automation_verb("resume", "paused")),
    ("automation.delete", "", _automation_delete),
    ("campaign.create", "", _campaign_create),
    ("campaign.launch", "", _campaign_verb("POST", "/launch")),
    ("campaign.end", "", _campaign_verb("POST", "/end", launched=True)),
    ("campaign.delete", "", _campaign_verb("DELETE", "")),
    ("destination.create", "webhook", _webhook_create),
    ("destination.update", "webhook", _webhook("PATCH", "", {"name": "renamed hook"})),
    ("destination.rotate", "webhook", _webhook("POST", "/rotate-secret")),
    ("destination.disable", "webhook", _webhook("POST", "/disable")),
    ("destination.enable", "webhook", _webhook("POST", "/enable", disabled=True)),
    ("destination.delete", "webhook", _webhook("DELETE", "")),
    ("destination.create", "smtp", _smtp_create),
    ("destination.update", "smtp", _smtp("PATCH", {"password": "another-smtp-secret"})),
    ("destination.disable", "smtp", _smtp("PATCH", {"status": "disabled"})),
    ("destination.delete", "smtp", _smtp("DELETE", None)),
    ("destination.create", "marketing tool", _tool_create),
    ("destination.delete", "marketing tool", _tool_delete),
    ("sync.create", "", _sync_create),
    ("sync.delete", "", _sync_delete),
    ("sync.run", "", _sync_run),
    ("member.add", "", _member_add),
    ("member.role", "", _member_role),
    ("member.remove", "", _member_remove),
    ("key.create", "", _key_create),
    ("key.revoke", "", _key_revoke),
    ("workspace.create", "", _workspace_create),
    ("workspace.update", "", _workspace_update),
    ("workspace.delete", "", _workspace_delete),
    ("workspace.plan", "to enterprise", _workspace_plan),
    ("import.run", "upload", _import_run),
    ("export.create", "", _export_create),
    ("export.download", "", _export_download),
    ("export.delete", "", _export_delete),
    ("analysis.download", "growth CSV", _analysis_download),
    ("audit.export", "JSON Lines", _audit_export),
    ("personal_fields.update", "mark a column", _personal_fields_update),
    ("approval.approve", "webhook automation", _approval("approve")),
    ("approval.reject", "new webhook automation", _approval("reject")),
    ("workspace.approvals", "off", _approvals_off),
    ("customer.erase", "by external id", _customer_erase),
    ("customer.access", "by external id", _customer_access),
    ("customer.consent", "external id", _customer_consent),
    ("privacy.retention", "100 years", _privacy_retention),
    # last: it deletes the first day of events
    ("privacy.retention_run", "on demand", _privacy_retention_run),
]


def test_every_audited_action_has_a_case():
    missing = sorted(set(audit.ACTIONS) - {action for action, _, _ in CASES})
    assert missing == [], f"add a case to tests/test_audit.py CASES for {missing}"
    assert {action for action, _, _ in CASES} <= set(audit.ACTIONS)


@pytest.mark.parametrize(
    "action, case",
    [pytest.param(a, c, id=f"{a} {what}".strip()) for a, what, c in CASES],
)
def test_each_audited_action_writes_exactly_one_entry(world, action, case):
    act = case(world)
    before = newest_id(world)
    workspace_id, target_type, target_id = act()
    new = entries_after(world, before)
    assert [e.action for e in new] == [action]
    (entry,) = new
    assert entry.actor == world.email
    assert entry.actor_id == world.user_id
    assert entry.workspace_id == workspace_id
    assert (entry.target_type, entry.target_id) == (target_type, target_id)
    assert entry.summary and entry.request_id and entry.address == "127.0.0.1"
    text = json.dumps([entry.summary, entry.details])
    leaked = [s for s in world.secrets if s in text]
    assert leaked == []


# -- what is not audited ---------------------------------------------------------------------
def test_a_refused_change_writes_no_entry(world):
    viewer = world.server.user_with_role(world.ws, "viewer")
    before = newest_id(world)
    refused = [
        # bad input
        world.me.post(f"{world.base}/segments", json={"name": "x", "kind": "static"}),
        world.me.post(f"{world.base}/keys", json={"name": " ", "kind": "read"}),
        world.me.patch(f"{world.base}/members/999999", json={"role": "viewer"}),
        world.me.post(f"{world.base}/webhooks", json={"name": "h", "url": "ftp://nowhere"}),
        world.me.post(f"{world.base}/exports", json={"segment_id": 999999, "format": "csv"}),
        # a name taken: the library refuses after its checks
        world.me.post(
            f"{world.base}/segments",
            json={"name": "VIP", "kind": "static", "customers": ["C0000001"]},
        ),
        # not allowed
        viewer.post(f"{world.base}/keys", json={"name": "mine", "kind": "read"}),
        viewer.delete(f"{world.base}/segments/{world.segment_id}"),
        viewer.get(f"{world.base}/segments/{world.segment_id}/members.csv"),
        viewer.get(f"{world.base}/audit"),
        viewer.get(f"{world.base}/audit/export"),
    ]
    assert [r.status_code for r in refused] == [422, 422, 404, 422, 404, 409] + [403] * 5
    assert entries_after(world, before) == []


def test_reading_writes_no_entry(world):
    before = newest_id(world)
    for path in (
        "",
        "/segments",
        f"/segments/{world.segment_id}",
        f"/segments/{world.segment_id}/members",
        "/automations",
        "/campaigns",
        "/webhooks",
        "/email/servers",
        "/syncs",
        "/exports",
        "/members",
        "/keys",
        "/imports",
        "/audit",
        "/analyses/growth?segment=VIP",
    ):
        r = world.me.get(world.base + path)
        assert r.status_code == 200, f"{path}: {r.text}"
    assert entries_after(world, before) == []


# -- reading the log ---------------------------------------------------------------------------
def test_the_log_is_filtered_by_action_actor_target_and_time_newest_first(world):
    before = newest_id(world)
    seg = world.static_segment()
    world.ok("PATCH", f"/segments/{seg}", json={"description": "changed"})
    log = f"{world.base}/audit"

    def since_before(answer: dict) -> list[str]:
        # SQLite may give a new segment a deleted one's id: look at this test's entries.
        return [e["action"] for e in answer["items"] if e["id"] > before]

    exact = world.ok("GET", log, params={"action": "segment.update", "target_id": str(seg)})
    assert since_before(exact) == ["segment.update"]
    assert {e["action"] for e in exact["items"]} == {"segment.update"}
    assert exact["items"][0]["target_type"] == "segment"

    target = world.ok("GET", log, params={"target_type": "segment", "target_id": str(seg)})
    assert since_before(target) == ["segment.update", "segment.create"]
    assert {e["target_id"] for e in target["items"]} == {str(seg)}
    by_prefix = world.ok("GET", log, params={"action": "segment.", "limit": 500})
    assert {e["action"].split(".")[0] for e in by_prefix["items"]} == {"segment"}
    assert by_prefix["total"] >= 2
    # Another workspace's entries are not in this one's log.
    assert {e["workspace_id"] for e in by_prefix["items"]} == {world.ws}

    mine = world.ok("GET", log, params={"actor": world.email, "limit": 500})
    by_id = world.ok("GET", log, params={"actor": str(world.user_id), "limit": 500})
    assert mine["total"] == by_id["total"] >= 2
    assert {e["actor"] for e in mine["items"]} == {world.email}
    assert world.ok("GET", log, params={"actor": "nobody@example.com"})["total"] == 0
    ids = [e["id"] for e in mine["items"]]
    assert ids == sorted(ids, reverse=True)

    page = world.ok("GET", log, params={"actor": world.email, "limit": 1, "offset": 1})
    assert [e["id"] for e in page["items"]] == ids[1:2] and page["total"] == mine["total"]

    newest = exact["items"][0]["at"]
    since = world.ok("GET", log, params={"since": newest, "target_id": str(seg)})
    assert [e["action"] for e in since["items"]] == ["segment.update"]
    until = world.ok("GET", log, params={"until": newest[:10], "target_id": str(seg)})
    assert since_before(until) == ["segment.update", "segment.create"]
    assert world.ok("GET", log, params={"until": "2000-01-01"})["total"] == 0


@pytest.mark.parametrize(
    "params",
    [
        {"since": "yesterday"},
        {"until": "2026-13-01"},
        {"action": "Segment Create"},
        {"since": "2026-02-01", "until": "2026-01-01"},
        {"format": "xml"},
    ],
)
def test_bad_filters_answer_422_and_write_nothing(world, params):
    before = newest_id(world)
    path = "/audit/export" if "format" in params else "/audit"
    r = world.me.get(world.base + path, params=params)
    assert r.status_code == 422, r.text
    assert r.json()["detail"]
    assert entries_after(world, before) == []


def test_the_export_holds_the_filtered_log_as_csv_and_json_lines(world):
    seg = world.static_segment()
    filters = {"target_type": "segment", "target_id": str(seg)}
    r = world.ok("GET", "/audit/export", params={**filters, "format": "csv"})
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["action"] for row in rows] == ["segment.create"]
    assert rows[0]["actor"] == world.email and rows[0]["target_id"] == str(seg)
    assert json.loads(rows[0]["details"]) == {"kind": "static"}

    default = world.ok("GET", "/audit/export", params={"action": "audit.export"}).text
    assert default.startswith("id,at,workspace_id,actor")  # CSV unless asked otherwise
    jsonl = world.ok("GET", "/audit/export", params={"action": "audit.", "format": "jsonl"}).text
    exports = [json.loads(line) for line in jsonl.splitlines()]
    # The export just made is itself in the log, filters and format named.
    assert exports[0]["action"] == "audit.export"
    assert exports[0]["details"] == {"format": "jsonl", "filters": {"action": "audit."}}
    assert exports[1]["details"] == {"format": "csv", "filters": {"action": "audit.export"}}


def test_exported_csv_cells_cannot_run_in_a_spreadsheet(tmp_path):
    sessions = open_catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    evil = Actor(user_id=None, label='=HYPERLINK("http://evil.example","x")')
    with acting_as(evil), sessions() as s:
        audit.record(s, 7, "segment.create", "-2 customers", target_id="+1")
        s.commit()
    text = "".join(audit.export_lines(sessions, 7, "csv"))
    (row,) = list(csv.DictReader(io.StringIO(text)))
    assert row["actor"] == '\'=HYPERLINK("http://evil.example","x")'
    assert row["summary"] == "'-2 customers"
    assert row["target_id"] == "'+1"
    assert "".join(audit.export_lines(sessions, 8, "csv")).count("\n") == 1  # header only


def test_the_export_streams_every_entry_in_batches(tmp_path):
    sessions = open_catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    with sessions() as s:
        for i in range(25):
            audit.record(s, 1, "segment.create", f"entry {i}", target_id=i)
        audit.record(s, 2, "segment.create", "another workspace")
        s.commit()
    chunks = list(audit.export_lines(sessions, 1, "jsonl", batch=10))
    assert len(chunks) == 3
    got = [json.loads(line)["target_id"] for c in chunks for line in c.splitlines()]
    assert got == [str(i) for i in reversed(range(25))]


def test_the_cli_lists_and_exports_the_log(world, tmp_path, monkeypatch):
    from strata.cli import app as cli_app

    settings = world.server.service.settings
    monkeypatch.setenv("STRATA_HOME", str(settings.home))
    monkeypatch.setenv("STRATA_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("STRATA_WAREHOUSE_URL", settings.warehouse_url)
    runner = CliRunner()
    seg = world.static_segment()
    args = ["audit", "list", "-w", "audited", "--target-type", "segment", "--target-id", str(seg)]
    listed = runner.invoke(cli_app, [*args, "--limit", "1", "--json"])
    assert listed.exit_code == 0, listed.output
    got = json.loads(listed.output)
    assert got["entries"][0]["action"] == "segment.create"
    assert got["entries"][0]["actor"] == world.email
    table = runner.invoke(cli_app, args)
    assert table.exit_code == 0 and "segment.create" in table.output

    out = tmp_path / "log.csv"
    done = runner.invoke(
        cli_app, ["audit", "export", str(out), "-w", "audited", "--action", "segment."]
    )
    assert done.exit_code == 0, done.output
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert rows and {r["action"].split(".")[0] for r in rows} == {"segment"}
    assert f"{len(rows):,} entries written" in done.output

    bad = runner.invoke(cli_app, ["audit", "list", "-w", "audited", "--since", "someday"])
    # (strata.cli.main turns this into one line and exit code 2)
    assert isinstance(bad.exception, InputError) and "not a date or time" in str(bad.exception)


def test_the_strata_command_is_audited_as_cli_and_the_os_user(world, tmp_path):
    """The real ``strata`` command in a subprocess: its export of the log is audited as
    ``cli:<os user>`` (the log is in the catalog: no warehouse lock is needed)."""
    import getpass
    import os
    import subprocess
    import sys

    settings = world.server.service.settings
    env = {
        **os.environ,
        "STRATA_HOME": str(settings.home),
        "STRATA_DATABASE_URL": settings.database_url,
        "STRATA_WAREHOUSE_URL": settings.warehouse_url,
    }
    before = newest_id(world)
    out = tmp_path / "log.jsonl"
    r = subprocess.run(
        [sys.executable, "-m", "strata.cli", "audit", "export", str(out), "-w", "audited",
         "--format", "jsonl", "--actor", world.email],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    (entry,) = entries_after(world, before)
    assert (entry.action, entry.workspace_id) == ("audit.export", world.ws)
    assert entry.actor == f"cli:{getpass.getuser()}" and entry.actor_id is None
    assert entry.details == {"format": "jsonl", "filters": {"actor": world.email}}
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines and {e["actor"] for e in lines} == {world.email}


# -- append-only -------------------------------------------------------------------------------
def _refuses_changes(sessions) -> None:
    with sessions() as s:
        audit.record(s, 1, "segment.create", "kept forever")
        s.commit()
    for statement in (
        "UPDATE audit_log SET summary = 'rewritten'",
        "DELETE FROM audit_log",
    ):
        with sessions() as s, pytest.raises(sa.exc.DBAPIError, match="append-only"):
            s.execute(sa.text(statement))
            s.commit()
    with sessions() as s:
        assert s.scalars(sa.select(AuditEntry.summary)).all() == ["kept forever"]


def test_the_catalog_refuses_to_change_or_delete_an_entry_on_sqlite(tmp_path):
    _refuses_changes(open_catalog(f"sqlite:///{tmp_path / 'catalog.db'}"))


@pytest.mark.postgres
def test_the_catalog_refuses_to_change_delete_or_truncate_an_entry_on_postgres(
    postgres_database,
):
    sessions = open_catalog(postgres_database)
    _refuses_changes(sessions)
    with sessions() as s, pytest.raises(sa.exc.DBAPIError, match="append-only"):
        s.execute(sa.text("TRUNCATE audit_log"))
        s.commit()
    sessions.kw["bind"].dispose()


def test_a_postgres_catalog_filters_and_exports_the_log(postgres_database):
    sessions = open_catalog(postgres_database)
    with sessions() as s:
        with acting_as(Actor(user_id=4, label="Ada@Example.com")):
            audit.record(s, 1, "segment.create", "one", target_type="segment", target_id=9)
            audit.record(s, 1, "automation.create", "not a segment action")
        with acting_as(Actor(user_id=None, label="cli:bob")):
            audit.record(s, 1, "key.create", "two", target_type="key", target_id=9)
        s.commit()

    def actions(**filters) -> list[str]:
        with sessions() as s:
            _, rows = audit.entries(s, 1, audit.Filters.parse(**filters))
        return [e.action for e in rows]

    assert actions(action="segment.") == ["segment.create"]
    assert actions(actor="ada@example.com") == ["automation.create", "segment.create"]
    assert actions(actor="4") == ["automation.create", "segment.create"]
    assert actions(target_type="key", target_id="9") == ["key.create"]
    assert actions(until="2000-01-01") == []
    lines = "".join(audit.export_lines(sessions, 1, "jsonl", audit.Filters.parse(actor="cli:bob")))
    assert [json.loads(line)["summary"] for line in lines.splitlines()] == ["two"]
    sessions.kw["bind"].dispose()


def test_a_deleted_workspaces_entries_stay_readable(world):
    ws = world.workspace()
    world.ok("POST", f"/api/v1/workspaces/{ws}/keys", json={"name": "k", "kind": "read"})
    world.ok("DELETE", f"/api/v1/workspaces/{ws}")
    with world.server.service.app.session() as s:
        _, rows = audit.entries(s, ws, limit=3)
    assert [e.action for e in rows] == ["workspace.delete", "key.create", "workspace.create"]


# -- the library -------------------------------------------------------------------------------
def test_recording_an_unknown_action_is_a_programming_error(tmp_path):
    sessions = open_catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    with sessions() as s, pytest.raises(KeyError, match="not an audited action"):
        audit.record(s, 1, "segment.frobnicate", "no")


def test_filters_read_dates_times_and_zones():
    f = audit.Filters.parse(since="2026-03-01T10:00:00+02:00", until="2026-03-02", actor=" A@B.c ")
    assert f.since.isoformat() == "2026-03-01T08:00:00"
    assert f.until.isoformat() == "2026-03-02T23:59:59.999999"
    assert f.actor == "A@B.c"
    with pytest.raises(InputError, match="not a date or time"):
        audit.Filters.parse(since="last week")


def test_docs_show_the_table_of_audited_actions():
    from pathlib import Path

    page = (Path(__file__).resolve().parent.parent / "docs" / "audit.md").read_text()
    assert audit.actions_table() in page, (
        "docs/audit.md's table of actions is out of date: paste `python -m strata.audit`"
    )
