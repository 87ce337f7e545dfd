"""Approvals: what sends data out waits for an admin after each change; versions and diffs.

Webhooks go to a real receiver on 127.0.0.1 (``tests.test_webhooks``), syncs to the fake
marketing tools (``tests.fake_marketing``), the API is served over real HTTP.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import sqlalchemy as sa

from strata import governance
from strata.actions.automations import AutomationRunner, Automations
from strata.actions.campaigns import Campaigns
from strata.actions.exports import Exports
from strata.actions.syncs import Syncs
from strata.actions.webhooks import Webhooks
from strata.catalog import (
    AuditEntry,
    Automation,
    ObjectVersion,
    Segment,
    Sync,
    TriggerFiring,
    WebhookMessage,
)
from strata.context import Strata
from strata.errors import Conflict
from strata.segments.engine import Segments
from tests.conftest import ApiServer, api_settings, duckdb_settings
from tests.fake_marketing import FakeMarketing
from tests.test_memberships import RECENT_BUYERS, at, spec
from tests.test_segment_rules import NEW_COLUMNS, shop_batch
from tests.test_webhooks import Lab, wait_for

WAITS = "changed and waits for approval; an admin approves it with"


@pytest.fixture
def local(tmp_path):
    """A shop on DuckDB whose webhooks may go to 127.0.0.1, approvals on."""
    settings = dataclasses.replace(duckdb_settings(tmp_path), webhook_allow=("127.0.0.1",))
    with Strata(settings) as app:
        ws = app.workspace(create=True)
        app.warehouse.load(ws.id, shop_batch(), new_columns=NEW_COLUMNS)
        Segments(app).save_static("list", ["c01"])
        governance.set_required(app, ws, True)
        yield app


@pytest.fixture
def lab():
    lab = Lab()
    yield lab
    lab.close()


@pytest.fixture
def segs(app) -> Segments:
    """The shop on each warehouse; "Recent buyers" feeds a webhook; approvals then on."""
    ws = app.workspace(create=True)
    app.warehouse.load(ws.id, shop_batch(), new_columns=NEW_COLUMNS)
    segs = Segments(app)
    segs.save(spec("Recent buyers", RECENT_BUYERS), as_of=at("2024-06-01"))
    dest, _ = Webhooks(app, ws).create("crm", "https://hooks.example.com/in")
    Automations(app, ws).create(
        "tell the crm", "Recent buyers", "enter", {"kind": "webhook", "destination": dest.id}
    )
    governance.set_required(app, ws, True)
    return segs


def status(app, model, row_id: int) -> str:
    with app.session() as s:
        return s.get(model, row_id).review_status


def members_of(lab_receiver) -> list[str]:
    return sorted(
        json.loads(r.body)["data"]["customer"]["external_id"] for r in lab_receiver.requests
    )


def messages(app) -> int:
    with app.session() as s:
        return s.scalar(sa.select(sa.func.count()).select_from(WebhookMessage))


# -- automations ------------------------------------------------------------------------------
def test_a_new_webhook_automation_sends_nothing_until_approved_then_does(local, lab):
    ws = local.workspace()
    first, second = lab.receiver(), lab.receiver()
    hooks = Webhooks(local, ws)
    one, _ = hooks.create("one", first.url)
    two, _ = hooks.create("two", second.url)
    autos = Automations(local, ws)
    a = autos.create("hook", "list", "enter", {"kind": "webhook", "destination": one.id})
    assert a.review_status == "draft"
    runner = AutomationRunner(local)
    lab.sender(local)
    segs = Segments(local)

    # A draft records no firings, so nothing is queued for the receiver.
    segs.save_static("list", ["c02", "c03"], mode="append")
    assert runner.run_due() == 0
    assert messages(local) == 0

    governance.approve(local, ws, "automation", "hook", note="looks right")
    segs.save_static("list", ["c04", "c05"], mode="append")
    assert runner.run_due() == 2
    wait_for(lambda: len(first.requests) == 2, what="two webhooks")
    assert members_of(first) == ["c04", "c05"]

    # Pointing it at another endpoint is a change: it waits again, then goes there.
    autos.update(a.id, action={"kind": "webhook", "destination": two.id})
    assert status(local, Automation, a.id) == "draft"
    segs.save_static("list", ["c06"], mode="append")
    assert runner.run_due() == 0 and messages(local) == 2
    governance.approve(local, ws, "automation", a.id)
    segs.save_static("list", ["c07"], mode="append")
    assert runner.run_due() == 1
    wait_for(lambda: len(second.requests) == 1, what="a webhook at the second endpoint")
    assert members_of(second) == ["c07"] and len(first.requests) == 2


def test_firings_recorded_before_a_change_wait_for_its_approval(local):
    ws = local.workspace()
    dest, _ = Webhooks(local, ws).create("crm", "https://hooks.example.com/in")
    autos = Automations(local, ws)
    a = autos.create("later", "list", "enter", {"kind": "webhook", "destination": dest.id})
    governance.approve(local, ws, "automation", a.id)
    Segments(local).save_static("list", ["c02"], mode="append")
    autos.update(a.id, condition={"type": "attribute", "attribute": "country", "op": "exists"})
    runner = AutomationRunner(local)
    assert runner.run_due() == 1  # claimed, and put back: the change waits
    with local.session() as s:
        assert s.scalars(sa.select(TriggerFiring.status)).all() == ["pending"]
    assert messages(local) == 0
    governance.approve(local, ws, "automation", a.id)
    runner.run_due()
    assert messages(local) == 1


def test_pausing_or_renaming_an_approved_automation_needs_no_review(local):
    ws = local.workspace()
    dest, _ = Webhooks(local, ws).create("crm", "https://hooks.example.com/in")
    autos = Automations(local, ws)
    a = autos.create("hook", "list", "enter", {"kind": "webhook", "destination": dest.id})
    governance.approve(local, ws, "automation", a.id)
    autos.pause(a.id)
    autos.update(a.id, name="renamed")
    autos.resume(a.id)
    assert status(local, Automation, a.id) == "approved"
    assert [v.status for v in governance.versions(local, ws, "automation", a.id)] == [
        "approved"
    ] * 4


def test_an_automation_that_sends_nothing_out_needs_no_approval(local):
    a = Automations(local, local.workspace()).create(
        "tagger", "list", "enter", {"kind": "tag", "tag": "vip"}
    )
    assert a.review_status == "approved"
    Segments(local).save_static("list", ["c02"], mode="append")
    assert AutomationRunner(local).run_due() == 1


def test_a_campaign_on_a_draft_automation_cannot_launch(local):
    ws = local.workspace()
    dest, _ = Webhooks(local, ws).create("crm", "https://hooks.example.com/in")
    campaigns = Campaigns(local, ws)
    c = campaigns.create("spring", "list", {"kind": "webhook", "destination": dest.id})
    with pytest.raises(Conflict, match=f"automation 'campaign: spring' {WAITS}"):
        campaigns.launch(c.id)
    assert campaigns.get(c.id).status == "draft"
    governance.approve(local, ws, "automation", "campaign: spring")
    assert campaigns.launch(c.id).status == "running"


# -- segments ---------------------------------------------------------------------------------
def test_a_changed_segment_that_feeds_a_webhook_waits_and_cannot_be_exported(segs):
    app, ws = segs.app, segs.ws
    seg_id = segs.get("Recent buyers").id
    assert Exports(app, ws).export("Recent buyers", "csv").rows == 4  # approved as it was
    changed = {"type": "performed", "event": "order", "window": {"last_days": 60}}
    segs.save(spec("Recent buyers", changed), as_of=at("2024-06-01"), replace=True)
    assert status(app, Segment, seg_id) == "draft"
    with pytest.raises(Conflict) as refused:
        Exports(app, ws).export("Recent buyers", "csv")
    assert str(refused.value) == (
        f"segment 'Recent buyers' {WAITS} `strata approvals approve segment 'Recent buyers'`"
    )
    # Its automation waits too: who enters now is not recorded for it.
    segs.refresh(["Recent buyers"], as_of=at("2024-06-15"))
    with app.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(TriggerFiring)) == 0
    waiting = governance.pending(app, ws)
    assert [(p["object_type"], p["name"], p["version"]) for p in waiting] == [
        ("segment", "Recent buyers", 2)
    ]
    assert [c["path"] for c in waiting[0]["changes"]] == ["definition.window.last_days"]
    governance.approve(app, ws, "segment", "Recent buyers")
    assert Exports(app, ws).export("Recent buyers", "csv").rows > 0
    assert governance.pending(app, ws) == []


def test_a_segment_nothing_sends_stays_approved_when_changed(segs):
    segs.save(spec("Browsers", {"type": "performed", "event": "order"}))
    segs.save(
        spec("Browsers", {"type": "performed", "event": "order", "window": {"last_days": 7}}),
        replace=True,
    )
    assert segs.get("Browsers").review_status == "approved"
    found = governance.versions(segs.app, segs.ws, "segment", "Browsers")
    assert [(v.version, v.status) for v in found] == [(1, "approved"), (2, "approved")]
    Exports(segs.app, segs.ws).export("Browsers", "csv")  # not refused
    # Describing the segment a webhook sends needs no review either.
    segs.save(
        spec("Recent buyers", RECENT_BUYERS, "bought lately"), as_of=at("2024-06-01"), replace=True
    )
    assert segs.get("Recent buyers").review_status == "approved"


def test_a_segment_named_in_the_rule_of_a_sending_one_waits_too(segs):
    segs.save(spec("Big", {"type": "attribute", "attribute": "country", "op": "exists"}))
    both = {
        "type": "and",
        "conditions": [RECENT_BUYERS, {"type": "in_segment", "segment": "Big"}],
    }
    segs.save(spec("Recent buyers", both), as_of=at("2024-06-01"), replace=True)
    governance.approve(segs.app, segs.ws, "segment", "Recent buyers")
    segs.save(
        spec("Big", {"type": "attribute", "attribute": "country", "op": "eq", "value": "GB"}),
        replace=True,
    )
    assert segs.get("Big").review_status == "draft"


def test_rejecting_restores_the_last_approved_version(segs):
    app, ws = segs.app, segs.ws
    before = segs.get("Recent buyers")
    changed = {"type": "performed", "event": "order", "window": {"last_days": 60}}
    segs.save(spec("Recent buyers", changed), as_of=at("2024-06-01"), replace=True)
    rejected = governance.reject(app, ws, "segment", "Recent buyers", note="too broad")
    assert (rejected.version, rejected.status, rejected.note) == (2, "rejected", "too broad")
    after = segs.get("Recent buyers")
    assert after.definition == before.definition and after.review_status == "approved"
    assert after.customer_count == before.customer_count
    history = governance.versions(app, ws, "segment", "Recent buyers")
    assert [(v.version, v.status) for v in history] == [
        (1, "approved"),
        (2, "rejected"),
        (3, "approved"),
    ]
    assert history[2].note == "restored version 1: version 2 was rejected"
    assert history[2].snapshot == history[0].snapshot
    with pytest.raises(Conflict, match="has no change waiting for approval"):
        governance.approve(app, ws, "segment", "Recent buyers")


def test_a_rejected_new_automation_stays_a_draft(local):
    ws = local.workspace()
    dest, _ = Webhooks(local, ws).create("crm", "https://hooks.example.com/in")
    a = Automations(local, ws).create(
        "hook", "list", "enter", {"kind": "webhook", "destination": dest.id}
    )
    governance.reject(local, ws, "automation", a.id)
    assert status(local, Automation, a.id) == "draft"
    assert governance.pending(local, ws) == []


# -- syncs ------------------------------------------------------------------------------------
def test_a_draft_sync_does_not_run_by_hand_or_on_its_own(local):
    ws = local.workspace()
    with FakeMarketing() as fake:
        syncs = Syncs(local, ws, sleep=lambda _: None, timeout=10)
        dest = syncs.add_destination(
            "hs", "hubspot", api_key=fake.key("hubspot"), config={"base_url": fake.base("hubspot")}
        )
        sync = syncs.create(dest.id, "list", list_id="7")
        assert sync.review_status == "draft"
        with pytest.raises(Conflict, match=f"sync {sync.id} {WAITS}"):
            syncs.run(sync.id)
        Segments(local).save_static("list", ["c02"], mode="append")  # makes it due
        AutomationRunner(local).run_due()
        assert fake.sent() == []
        with local.session() as s:
            assert s.get(Sync, sync.id).last_synced_at is None
        governance.approve(local, ws, "sync", sync.id)
        AutomationRunner(local).run_due()  # it was due: it runs now
        assert fake.sent() != []
        with local.session() as s:
            assert s.get(Sync, sync.id).status == "ok"


# -- versions and diffs -----------------------------------------------------------------------
def test_every_change_is_a_version_and_the_diff_names_each_field(tmp_path):
    with Strata(duckdb_settings(tmp_path)) as app:  # approvals off: versions all the same
        ws = app.workspace(create=True)
        app.warehouse.load(ws.id, shop_batch(), new_columns=NEW_COLUMNS)
        Segments(app).save_static("list", ["c01"])
        autos = Automations(app, ws)
        a = autos.create("tagger", "list", "enter", {"kind": "tag", "tag": "vip"})
        autos.update(a.id, wait_seconds=600, action={"kind": "tag", "tag": "gold"})
        found = governance.versions(app, ws, "automation", "tagger")
        assert [(v.version, v.status) for v in found] == [(1, "approved"), (2, "approved")]
        assert found[0].snapshot == {
            "name": "tagger",
            "segment": "list",
            "trigger": "enter",
            "wait_seconds": 0,
            "condition": None,
            "action": {"kind": "tag", "tag": "vip"},
            "every_minutes": None,
            "status": "active",
        }
        assert governance.compare(app, ws, "automation", a.id) == {
            "from": 1,
            "to": 2,
            "changes": [
                {"path": "action.tag", "change": "changed", "old": "vip", "new": "gold"},
                {"path": "wait_seconds", "change": "changed", "old": 0, "new": 600},
            ],
        }
        everything = governance.compare(app, ws, "automation", a.id, 0, 1)["changes"]
        assert {c["change"] for c in everything} == {"added"} and len(everything) == 8
        # Saving the same thing again is no new version.
        autos.update(a.id, wait_seconds=600)
        assert len(governance.versions(app, ws, "automation", a.id)) == 2
        assert [v.version for v in governance.versions(app, ws, "segment", "list")] == [1]


def test_diff_covers_added_removed_and_list_items():
    old = {"rules": [{"a": 1}, {"b": 2}], "gone": True}
    new = {"rules": [{"a": 1}, {"b": 3}, {"c": 4}], "new": "x"}
    assert governance.diff(old, new) == [
        {"path": "gone", "change": "removed", "old": True, "new": None},
        {"path": "new", "change": "added", "old": None, "new": "x"},
        {"path": "rules[1].b", "change": "changed", "old": 2, "new": 3},
        {"path": "rules[2]", "change": "added", "old": None, "new": {"c": 4}},
    ]


def test_turning_approvals_on_versions_what_exists_and_off_approves_nothing(local):
    ws = local.workspace()
    dest, _ = Webhooks(local, ws).create("crm", "https://hooks.example.com/in")
    a = Automations(local, ws).create(
        "hook", "list", "enter", {"kind": "webhook", "destination": dest.id}
    )
    governance.set_required(local, ws, False)
    assert status(local, Automation, a.id) == "draft"
    # A segment made before versions were kept gets version 1 when approvals go on.
    with local.session() as s:
        s.execute(sa.delete(ObjectVersion).where(ObjectVersion.object_type == "segment"))
        s.commit()
    governance.set_required(local, ws, True)
    assert [v.note for v in governance.versions(local, ws, "segment", "list")] == [
        "as it was when approvals were turned on"
    ]
    assert status(local, Segment, Segments(local).get("list").id) == "approved"
    with local.session() as s:
        entries = s.scalars(
            sa.select(AuditEntry.summary)
            .where(AuditEntry.action == "workspace.approvals")
            .order_by(AuditEntry.id)
        ).all()
    assert entries == ["approvals turned on", "approvals turned off", "approvals turned on"]


# -- the API and the command line -------------------------------------------------------------
@pytest.fixture
def server(tmp_path):
    s = ApiServer(api_settings(tmp_path))
    yield s
    s.close()


def test_over_http_admins_approve_others_changes_and_other_roles_cannot(server):
    owner = server.owner()
    ws_id = owner.post("/api/v1/workspaces", json={"name": "gov"}).json()["id"]
    base = f"/api/v1/workspaces/{ws_id}"
    with server.service.writing() as app:
        ws = app.workspace("gov")
        app.warehouse.load(ws.id, shop_batch(), new_columns=NEW_COLUMNS)
        Segments(app, ws).save_static("list", ["c01"])
    assert owner.put(f"{base}/approvals/settings", json={"require_approval": True}).json() == {
        "require_approval": True
    }
    hook = owner.post(
        f"{base}/webhooks", json={"name": "crm", "url": "https://hooks.example.com/a"}
    )
    assert hook.status_code == 201, hook.text
    seg_id = owner.get(f"{base}/segments").json()["items"][0]["id"]
    made = owner.post(
        f"{base}/automations",
        json={
            "name": "tell the crm",
            "segment_id": seg_id,
            "trigger": "enter",
            "action": {"kind": "webhook", "destination": hook.json()["id"]},
        },
    )
    assert made.status_code == 201, made.text
    a_id = made.json()["id"]
    assert made.json()["review_status"] == "draft"
    listed = owner.get(f"{base}/approvals").json()
    assert listed["require_approval"] is True
    assert [(p["object_type"], p["object_id"], p["version"]) for p in listed["pending"]] == [
        ("automation", a_id, 1)
    ]
    approve = f"{base}/approvals/automations/{a_id}/approve"
    for role in ("viewer", "analyst", "marketer"):
        r = server.user_with_role(ws_id, role).post(approve, json={"note": "fine"})
        assert r.status_code == 403, (role, r.text)
    mine = owner.post(approve, json={"note": "fine"})
    assert mine.status_code == 403 and "four eyes" in mine.json()["detail"]
    admin = server.user_with_role(ws_id, "admin")
    ok = admin.post(approve, json={"note": "fine"})
    assert ok.status_code == 200, ok.text
    assert (ok.json()["status"], ok.json()["note"]) == ("approved", "fine")
    again = admin.post(approve)
    assert again.status_code == 409 and "no change waiting" in again.json()["detail"]
    assert owner.get(f"{base}/approvals").json()["pending"] == []
    assert owner.get(f"{base}/automations/{a_id}").json()["review_status"] == "approved"

    viewer = server.user_with_role(ws_id, "viewer")
    versions = viewer.get(f"{base}/versions/automations/{a_id}")
    assert [v["status"] for v in versions.json()] == ["approved"]
    diff = viewer.get(f"{base}/versions/automations/{a_id}/diff", params={"from": 0})
    assert diff.status_code == 200 and diff.json()["from"] == 0
    assert {c["path"] for c in diff.json()["changes"]} >= {"action", "segment", "trigger"}
    assert (
        viewer.get(f"{base}/versions/automations/{a_id}/diff", params={"to": 5}).status_code == 404
    )
    assert (
        viewer.put(f"{base}/approvals/settings", json={"require_approval": False}).status_code
        == 403
    )


@pytest.mark.parametrize("warehouse_url", ["duckdb"], indirect=True)  # commands, not stores
def test_the_commands_list_approve_and_diff(cli, settings):
    with Strata(settings) as app:
        ws = app.workspace(create=True)
        app.warehouse.load(ws.id, shop_batch(), new_columns=NEW_COLUMNS)
        Segments(app).save_static("list", ["c01"])
        dest, _ = Webhooks(app, ws).create("crm", "https://hooks.example.com/in")
    assert cli("approvals", "require", "--on", check=True).stdout.strip() == "approvals are on"
    with Strata(settings) as app:
        a = Automations(app, app.workspace()).create(
            "hook", "list", "enter", {"kind": "webhook", "destination": dest.id}
        )
        Automations(app, app.workspace()).update(a.id, wait_seconds=60)
    listed = cli("approvals", "list", check=True).stdout
    assert "approvals are on; 1 change(s) waiting" in listed
    assert "automation 'hook'" in listed and "version 2, new" in listed
    assert "+ wait_seconds: 60" in listed
    diff = cli("approvals", "diff", "automation", "hook", check=True).stdout
    assert diff.splitlines() == ["automation hook: version 1 → 2", "  ~ wait_seconds: 0 → 60"]
    done = cli("approvals", "approve", "automation", "hook", "--note", "ok", check=True)
    assert done.stdout.strip() == "approved version 2 of automation hook"
    shown = json.loads(cli("approvals", "versions", "automation", "hook", "--json").stdout)
    assert [v["status"] for v in shown["versions"]] == ["superseded", "approved"]
