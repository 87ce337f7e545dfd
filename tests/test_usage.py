"""The usage view and the plan through the API and the CLI: what is counted, that API
calls are counted in memory and written in batches, that the plan is the owner's to
change (one audit entry each time), and that a plan limit answers 402."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from strata import plans
from strata.catalog import AuditEntry, UsageCounter
from strata.cli_plans import app as plan_cli
from strata.config import Settings
from strata.context import Strata
from strata.demo import generate_and_load
from strata.segments.engine import Segments, run_rfm
from tests.conftest import duckdb_settings


def _shop(api, name: str = "shop", customers: int = 150) -> tuple[int, dict]:
    report = generate_and_load(api.service.app, customers=customers, workspace=name)
    return api.service.app.workspace(name).id, report


def _usage(client, ws: int) -> dict:
    r = client.get(f"/api/v1/workspaces/{ws}/usage")
    assert r.status_code == 200, r.text
    return r.json()


def test_usage_shows_the_plan_holdings_and_this_months_counts(api):
    ws, report = _shop(api)
    segs = Segments(api.service.app, api.service.app.workspace("shop"))
    segs.save_static("Few", ["C0000001", "C0000002", "C0000003"])
    run_rfm(segs)  # eleven generated segments
    owner = api.owner()
    for _ in range(3):
        assert owner.get(f"/api/v1/workspaces/{ws}/segments").status_code == 200
    usage = _usage(owner, ws)  # the 4th call in the workspace
    assert usage["plan"]["name"] == "unlimited"
    assert usage["customers"] == 150
    assert usage["segments"] == 1  # the static list; generated RFM groups are not counted
    assert usage["segments_all_kinds"] == 12
    month = plans.this_month()
    assert usage["this_month"] == {
        "month": month,
        "events_ingested": report["events_created"],
        "api_calls": 4,
        "exports": 0,
    }
    assert usage["history"] == []


def test_every_kind_of_export_counts_once(api):
    ws, _ = _shop(api)
    seg = Segments(api.service.app, api.service.app.workspace("shop")).save_static(
        "Few", ["C0000001", "C0000002"]
    )
    seg_id = Segments(api.service.app, api.service.app.workspace("shop")).get("Few").id
    assert seg is not None
    owner = api.owner()
    base = f"/api/v1/workspaces/{ws}"
    r = owner.post(f"{base}/exports", json={"segment_id": seg_id, "format": "csv"})
    assert r.status_code == 201, r.text
    assert owner.get(f"{base}/segments/{seg_id}/members.csv").status_code == 200
    r = owner.get(
        f"{base}/analyses/growth", params={"segment": "Few", "period": "month", "format": "csv"}
    )
    assert r.status_code == 200, r.text
    # Reading a list or a JSON analysis is not an export.
    assert owner.get(f"{base}/exports").status_code == 200
    assert owner.get(f"{base}/analyses/growth", params={"segment": "Few"}).status_code == 200
    assert _usage(owner, ws)["this_month"]["exports"] == 3


def test_earlier_months_are_the_history_newest_first(api):
    ws, _ = _shop(api)
    with api.service.app.session() as s:
        plans.add_usage(s, ws, "exports", 2, month="2026-01")
        plans.add_usage(s, ws, "api_calls", 7, month="2026-02")
        s.commit()
    history = _usage(api.owner(), ws)["history"]
    assert history == [
        {"month": "2026-02", "events_ingested": 0, "api_calls": 7, "exports": 0},
        {"month": "2026-01", "events_ingested": 0, "api_calls": 0, "exports": 2},
    ]


@pytest.fixture(params=["sqlite", "postgres"])
def catalog_app(request, tmp_path):
    url = (
        f"sqlite:///{tmp_path / 'catalog.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_database")
    )
    settings = Settings(
        home=tmp_path, database_url=url, warehouse_url=f"duckdb://{tmp_path / 'wh.duckdb'}"
    )
    with Strata(settings) as app:
        yield app


def test_the_meter_writes_nothing_until_it_flushes_then_adds_up(catalog_app):
    ws = catalog_app.workspace("shop", create=True)

    def stored() -> dict:
        with catalog_app.session() as s:
            rows = s.execute(sa.select(UsageCounter.metric, UsageCounter.count)).all()
        return dict(rows)

    meter = plans.Meter(every=3600)
    for _ in range(250):
        meter.add(ws.id, "api_calls")
    assert not meter.due()
    assert stored() == {}  # counted in memory only
    meter.flush(catalog_app)
    assert stored() == {"api_calls": 250}
    meter.add(ws.id, "api_calls", 5)
    meter.flush(catalog_app)
    meter.flush(catalog_app)  # nothing new: changes nothing
    assert stored() == {"api_calls": 255}  # one row per month and metric, added to
    # A deleted workspace's counts are dropped, not an error.
    meter.add(ws.id + 100, "api_calls")
    meter.flush(catalog_app)
    assert stored() == {"api_calls": 255}


def test_requests_are_counted_without_a_catalog_write_each(api):
    ws, _ = _shop(api)
    api.service.meter.flush(api.service.app)
    api.service.meter.every = 3600  # so no request flushes during the test
    owner = api.owner()
    for _ in range(5):
        owner.get(f"/api/v1/workspaces/{ws}/segments")
    with api.service.app.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(UsageCounter).where(
            UsageCounter.metric == "api_calls")) == 0  # fmt: skip
    assert api.service.meter.pending() == {(ws, "api_calls"): 5}
    # A request in another workspace counts there; signing in is not a workspace call.
    assert api.owner().get("/api/v1/auth/me").status_code == 200
    assert api.service.meter.pending() == {(ws, "api_calls"): 5}


def test_only_the_owner_changes_the_plan_and_each_change_is_audited_once(api):
    ws, _ = _shop(api)
    owner = api.owner()
    admin = api.user_with_role(ws, "admin")
    viewer = api.user_with_role(ws, "viewer")
    url = f"/api/v1/workspaces/{ws}/plan"
    assert viewer.get(url).json()["name"] == "unlimited"  # everyone may read it
    r = admin.put(url, json={"plan": "growth"})
    assert r.status_code == 403, r.text
    r = owner.put(url, json={"plan": "platinum"})
    assert r.status_code == 422
    r = owner.put(url, json={"plan": "growth"})
    assert r.status_code == 200, r.text
    assert r.json() == plans.PLANS["growth"].to_dict()
    assert viewer.get(url).json()["name"] == "growth"
    with api.service.app.session() as s:
        entries = s.scalars(
            sa.select(AuditEntry).where(AuditEntry.action == "workspace.plan")
        ).all()
    assert len(entries) == 1
    assert entries[0].actor == api.owner_email and entries[0].target_id == str(ws)


def test_a_downgrade_the_workspace_outgrows_answers_402_and_changes_nothing(api):
    ws, _ = _shop(api)
    shop = api.service.app.workspace("shop")
    segs = Segments(api.service.app, shop)
    for n in range(6):
        segs.save_static(f"List {n}", [f"C{n + 1:07d}"])
    r = api.owner().put(f"/api/v1/workspaces/{ws}/plan", json={"plan": "starter"})
    assert r.status_code == 402
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["detail"] == (
        "the Starter plan allows 5 segments (rule and static); workspace 'shop' holds 6. "
        "The plan was not changed. Remove some first, or choose a larger plan "
        "('strata plan list')"
    )
    assert api.service.app.workspace("shop").plan == "unlimited"


def _jobs(api) -> int:
    with api.service.app.session() as s:
        return s.scalar(sa.text("select count(*) from jobs"))


def test_limits_answer_402_with_the_library_message(api):
    ws, _ = _shop(api)
    owner = api.owner()
    base = f"/api/v1/workspaces/{ws}"
    assert owner.put(f"{base}/plan", json={"plan": "starter"}).status_code == 200
    feature = "the Starter plan does not include {}. Move to Growth with 'strata plan set " \
        f"growth' or PUT /api/v1/workspaces/{ws}/plan"  # fmt: skip
    r = owner.post(f"{base}/keys", json={"name": "site", "kind": "write"})
    assert (r.status_code, r.json()["detail"]) == (
        402, feature.format(plans.FEATURES["api_access"])
    )  # fmt: skip
    jobs_before = _jobs(api)
    r = owner.post(f"{base}/models/clusters", json={"k": 3})
    assert (r.status_code, r.json()["detail"]) == (
        402, feature.format(plans.FEATURES["ml_segmentation"])
    )  # fmt: skip
    assert _jobs(api) == jobs_before  # refused at once, not as a failed job
    rule = {"type": "attribute", "attribute": "external_id", "op": "exists"}
    for n in range(5):
        r = owner.post(f"{base}/segments", json={"name": f"S{n}", "rule": rule})
        assert r.status_code == 201, r.text
    r = owner.post(f"{base}/segments", json={"name": "S5", "rule": rule})
    assert r.status_code == 402
    assert r.json()["detail"].startswith("the Starter plan allows 5 segments")
    assert owner.get(f"{base}/segments", params={"limit": 500}).json()["total"] == len(
        Segments(api.service.app, api.service.app.workspace("shop")).list()
    )
    assert "S5" not in {s.name for s in Segments(api.service.app, "shop").list()}


def test_cli_lists_shows_sets_and_reports_usage(tmp_path):
    settings = duckdb_settings(tmp_path)
    with Strata(settings) as app:
        report = generate_and_load(app, customers=150, workspace="shop")
    env = {
        "STRATA_HOME": str(settings.home),
        "STRATA_DATABASE_URL": settings.database_url,
        "STRATA_WAREHOUSE_URL": settings.warehouse_url,
        "STRATA_WORKSPACE": "shop",
    }
    runner = CliRunner()
    listed = runner.invoke(plan_cli, ["list", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    assert [p["name"] for p in json.loads(listed.stdout)["plans"]] == list(plans.PLANS)
    shown = runner.invoke(plan_cli, ["show", "--json"], env=env)
    assert json.loads(shown.stdout)["name"] == "unlimited"
    moved = runner.invoke(plan_cli, ["set", "growth"], env=env)
    assert moved.exit_code == 0 and "Growth plan" in moved.stdout
    usage = runner.invoke(plan_cli, ["usage", "--json"], env=env)
    data = json.loads(usage.stdout)
    assert data["plan"]["name"] == "growth" and data["customers"] == 150
    assert data["this_month"]["events_ingested"] == report["events_created"]
    text = runner.invoke(plan_cli, ["usage"], env=env)
    assert "customers: 150 of 50,000" in text.stdout


def test_cli_refusal_exits_5_with_the_message(cli, app):
    generate_and_load(app, customers=150, workspace="shop")
    segs = Segments(app, "shop")
    for n in range(6):
        segs.save_static(f"L{n}", [f"C{n + 1:07d}"])
    app.close()
    done = cli("plan", "set", "starter", "-w", "shop")
    assert done.returncode == 5
    assert "the Starter plan allows 5 segments (rule and static); workspace 'shop' holds 6" in (
        done.stderr + done.stdout
    )


def test_live_events_and_key_calls_are_counted(api):
    owner = api.owner()
    ws = owner.post("/api/v1/workspaces", json={"name": "live"}).json()["id"]
    key = owner.post(f"/api/v1/workspaces/{ws}/keys", json={"name": "site", "kind": "write"})
    client = api.client(auth=(key.json()["key"], ""))
    calls = [
        {"type": "track", "userId": "u1", "event": "Viewed", "messageId": f"m{n}"} for n in range(3)
    ]
    assert client.post("/v1/batch", json={"batch": calls}).status_code == 200
    assert client.post("/v1/track", json=calls[0]).status_code == 200  # a duplicate
    assert api.service.ingest.wait_idle(20)
    month = _usage(owner, ws)["this_month"]
    assert month["events_ingested"] == 3  # the duplicate is not stored, so not counted
    # The owner's key creation and this read, and the two calls made with the key.
    assert month["api_calls"] == 4
