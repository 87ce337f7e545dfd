"""A workspace's personal fields: the defaults stay, marked columns come and go (by hand,
over the API, from the command line, or through an import mapping), each change writes
one audit entry, and viewers see a column masked the moment it is marked."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from strata.catalog import AuditEntry
from strata.demo import generate_and_load
from strata.errors import InputError
from strata.ingest.mapping import load_mapping_file
from strata.ingest.pipeline import run_import
from strata.personal import PersonalFields, is_default
from tests.conftest import ApiServer, api_settings


def entries(app, action: str = "personal_fields.update") -> list[AuditEntry]:
    with app.session() as s:
        return list(
            s.scalars(sa.select(AuditEntry).where(AuditEntry.action == action).order_by("id"))
        )


@pytest.fixture
def fields(app):
    return PersonalFields(app, app.workspace("shop", create=True))


def test_defaults_are_personal_by_name_and_pattern_but_not_city_or_products():
    assert all(is_default(c) for c in ("email", "phone", "birth_date", "zip", "work_email"))
    assert all(is_default(c) for c in ("billing_address", "street", "last_name"))
    assert not any(is_default(c) for c in ("city", "country", "gender", "product_name", "plan"))


def test_marking_and_unmarking_writes_one_audit_entry_per_change(app, fields):
    assert fields.add(["loyalty_card", "City"]) == ["city", "loyalty_card"]
    assert fields.is_personal("loyalty_card") and fields.is_personal("city")
    assert fields.add(["city"]) == ["city", "loyalty_card"]  # no change: no entry
    assert fields.remove(["city"]) == ["loyalty_card"]
    assert not fields.is_personal("city")
    log = entries(app)
    assert [e.details["added"] for e in log] == [["city", "loyalty_card"], []]
    assert [e.details["removed"] for e in log] == [[], ["city"]]
    assert log[0].workspace_id == fields.ws.id and "loyalty_card" in log[0].summary


def test_defaults_cannot_be_unmarked_and_need_no_marking(app, fields):
    with pytest.raises(InputError, match="email is personal in every workspace"):
        fields.remove(["email", "loyalty_card"])
    assert fields.replace(["email", "loyalty_card"]) == ["loyalty_card"]
    assert fields.marked() == ["loyalty_card"]
    with pytest.raises(InputError, match="not allowed"):
        fields.add(["bad name;"])
    assert len(entries(app)) == 1


def test_a_mapping_marks_its_personal_attributes_when_the_import_runs(app, tmp_path):
    data = tmp_path / "people.csv"
    data.write_text("id,mail,card,tier\nc1,ann@example.com,LC-1,gold\n")
    mapping = tmp_path / "people.yaml"
    mapping.write_text(
        "as: customers\nfields: {customer_id: id, email: mail}\n"
        "attributes:\n  loyalty_card: {column: card, personal: true}\n  tier: tier\n"
    )
    assert load_mapping_file(mapping).attributes["loyalty_card"].personal
    report = run_import(app, data, workspace="shop", mapping_file=mapping)
    assert report["mapping"]["attributes"]["loyalty_card"]["personal"] is True
    fields = PersonalFields(app, "shop")
    assert fields.marked() == ["loyalty_card"]
    personal = fields.listing()["customer_columns"]
    assert {"email", "birth_date", "loyalty_card"} <= set(personal) and "tier" not in personal
    assert "import mapping" in entries(app)[0].summary
    # A dry run marks nothing.
    mapping.write_text(
        mapping.read_text().replace("tier: tier", "tier: {column: tier, personal: true}")
    )
    run_import(app, data, workspace="shop", mapping_file=mapping, dry_run=True)
    assert fields.marked() == ["loyalty_card"]


def test_a_mapping_with_a_personal_flag_that_is_not_true_or_false_is_refused(tmp_path):
    mapping = tmp_path / "m.yaml"
    mapping.write_text("attributes:\n  card: {column: Card, personal: 'yes'}\n")
    with pytest.raises(InputError, match="'personal' must be true or false"):
        load_mapping_file(mapping)


def test_the_cli_lists_adds_and_removes(cli, app):
    app.workspace("shop", create=True)
    added = cli("personal-fields", "add", "loyalty_card", "-w", "shop", "--json", check=True)
    assert json.loads(added.stdout)["marked"] == ["loyalty_card"]
    refused = cli("personal-fields", "remove", "email", "-w", "shop")
    assert refused.returncode != 0 and "cannot be un-marked" in refused.stderr
    listed = cli("personal-fields", "list", "-w", "shop", check=True)
    assert "marked by this workspace: loyalty_card" in listed.stdout
    cli("personal-fields", "remove", "loyalty_card", "-w", "shop", check=True)
    assert PersonalFields(app, "shop").marked() == []
    assert [e.actor.startswith("cli:") for e in entries(app)] == [True, True]


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    server = ApiServer(api_settings(tmp_path_factory.mktemp("personal")))
    try:
        owner = server.owner()
        ws = owner.post("/api/v1/workspaces", json={"name": "shop"}).json()["id"]
        with server.service.writing() as app:
            generate_and_load(app, customers=30, workspace="shop")
        yield server, ws
    finally:
        server.close()


def test_viewers_see_a_column_masked_as_soon_as_an_admin_marks_it(shop):
    server, ws = shop
    base = f"/api/v1/workspaces/{ws}"
    admin = server.user_with_role(ws, "admin")
    viewer = server.user_with_role(ws, "viewer")
    cities = [c["city"] for c in viewer.get(f"{base}/customers").json()["items"] if c["city"]]
    assert cities and all("***" not in c for c in cities)

    r = admin.put(f"{base}/personal-fields", json={"marked": ["city"]})
    assert r.status_code == 200, r.text
    assert r.json()["marked"] == ["city"] and "city" in r.json()["customer_columns"]
    masked = [c["city"] for c in viewer.get(f"{base}/customers").json()["items"] if c["city"]]
    assert masked and all(c.endswith("***") for c in masked)
    clear = [c["city"] for c in admin.get(f"{base}/customers").json()["items"] if c["city"]]
    assert clear == cities
    assert viewer.get(f"{base}/personal-fields").json()["marked"] == ["city"]

    r = admin.put(f"{base}/personal-fields", json={"marked": []})
    assert r.json()["marked"] == []
    again = [c["city"] for c in viewer.get(f"{base}/customers").json()["items"] if c["city"]]
    assert again == cities


def test_only_admins_and_owners_change_the_list_and_bad_names_answer_422(shop):
    server, ws = shop
    url = f"/api/v1/workspaces/{ws}/personal-fields"
    for role in ("analyst", "marketer", "viewer"):
        r = server.user_with_role(ws, role).put(url, json={"marked": ["city"]})
        assert r.status_code == 403, (role, r.text)
    admin = server.user_with_role(ws, "admin")
    assert admin.put(url, json={"marked": ["no spaces"]}).status_code == 422
    assert admin.put(url, json={}).status_code == 422
