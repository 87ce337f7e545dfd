"""Plans and their limits, each at its boundary: limit − 1 and the limit pass, limit + 1
is refused with the message docs/plans.md documents, and nothing of the refused
import, ingest or segment is stored."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pytest
import sqlalchemy as sa

from strata import audit, plans
from strata.accounts import Accounts
from strata.catalog import AuditEntry, ImportRun, Segment, Workspace
from strata.demo import generate_and_load
from strata.errors import PlanLimit
from strata.ingest.pipeline import run_import
from strata.models.churn import run_churn, run_propensity
from strata.models.cluster import run_clustering
from strata.models.clv import run_clv
from strata.models.lookalike import find_lookalikes
from strata.segments.engine import Segments
from strata.segments.nodes import SegmentSpec, parse_rule
from strata.warehouse import Batch

ROOT = Path(__file__).resolve().parent.parent
EVERYONE = {"type": "attribute", "attribute": "external_id", "op": "exists"}


# -- helpers ----------------------------------------------------------------------------------
def _seed(app, ws, n: int, prefix: str = "S") -> None:
    """``n`` customers straight into the warehouse (no plan check): a quick start."""
    ids = pa.array([f"{prefix}{i:07d}" for i in range(n)], pa.string())
    app.warehouse.load(ws.id, Batch(customers=pa.table({"external_id": ids})))


def _orders(tmp_path: Path, name: str, customers: list[str]) -> Path:
    """An orders file: one order of each customer (new customers come with events)."""
    path = tmp_path / f"{name}.csv"
    lines = ["customer_id,order_id,timestamp,quantity,unit_price"]
    lines += [f"{c},{name}-{i},2024-01-02,1,5.00" for i, c in enumerate(customers)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _held(app, ws) -> tuple[int, int, int]:
    """Customers, events and membership rows the workspace holds."""
    wh = app.warehouse
    return tuple(
        int(wh.table(ws.id, t).count().to_pyarrow().as_py())
        for t in ("customers", "events", "memberships")
    )


def _workspace(app, plan: str, name: str = "shop"):
    ws = app.workspace(name, create=True)
    plans.set_plan(app, ws, plan)
    return app.workspace(name)


def _customer_boundary(app, tmp_path, plan: str, limit: int, move_to: str) -> None:
    ws = _workspace(app, plan)
    _seed(app, ws, limit - 2)
    Segments(app, ws).save_static("First two", ["S0000000", "S0000001"])

    below = run_import(app, _orders(tmp_path, "below", ["N1"]), workspace="shop")
    assert below["customers_created"] == 1
    assert _held(app, ws)[0] == limit - 1
    before = _held(app, ws)

    with pytest.raises(PlanLimit) as refused:
        run_import(app, _orders(tmp_path, "over", ["N2", "N3"]), workspace="shop")
    title = plans.PLANS[plan].title
    message = (
        f"the {title} plan allows {limit:,} customers; this import would bring the "
        f"workspace to {limit + 1:,}. Nothing was imported. Move to {move_to} with "
        f"'strata plan set {move_to.split()[0].lower()}' or PUT /api/v1/workspaces/{ws.id}/plan"
    )
    assert str(refused.value) == message
    assert _held(app, ws) == before  # no customer, event or membership of it
    with app.session() as s:
        run = s.scalars(sa.select(ImportRun).order_by(ImportRun.id.desc())).first()
    assert (run.status, run.message) == ("failed", message)

    at = run_import(app, _orders(tmp_path, "at", ["N2"]), workspace="shop")
    assert at["customers_created"] == 1
    assert _held(app, ws)[0] == limit
    # Known customers still import at the limit: only new ones count.
    again = run_import(app, _orders(tmp_path, "known", ["N1", "N2"]), workspace="shop")
    assert (again["customers_created"], again["events_created"]) == (0, 2)


# -- customers --------------------------------------------------------------------------------
def test_starter_imports_up_to_10000_customers_and_refuses_the_10001st(app, tmp_path):
    _customer_boundary(app, tmp_path, "starter", 10_000, "Growth (50,000 customers)")


@pytest.mark.parametrize(
    ("plan", "limit", "move_to"),
    [
        ("growth", 50_000, "Professional (250,000 customers)"),
        ("professional", 250_000, "Enterprise (unlimited customers)"),
    ],
)
def test_larger_plans_refuse_the_customer_past_their_limit(
    duck_app, tmp_path, plan, limit, move_to
):
    _customer_boundary(duck_app, tmp_path, plan, limit, move_to)


def test_a_dry_run_past_the_limit_says_so_and_writes_nothing(duck_app, tmp_path):
    ws = _workspace(duck_app, "starter")
    _seed(duck_app, ws, 10_000)
    with pytest.raises(PlanLimit, match=re.escape("to 10,001. Nothing was imported")):
        run_import(duck_app, _orders(tmp_path, "dry", ["N1"]), workspace="shop", dry_run=True)
    assert _held(duck_app, ws) == (10_000, 0, 0)


@pytest.mark.parametrize("plan", ["enterprise", "unlimited"])
def test_enterprise_and_unlimited_have_no_limits(plan):
    assert plans.PLANS[plan].max_customers is None and plans.PLANS[plan].max_segments is None
    plans.check_customers(plan, 10**9)  # does not raise
    assert plans.PLANS[plan].features == frozenset(plans.FEATURES)
    assert plans.customer_check(Workspace(id=1, name="x", plan=plan)) is None


def test_new_workspaces_are_unlimited_so_self_hosted_installs_and_the_demo_just_work(duck_app):
    generate_and_load(duck_app, customers=150, workspace="demo")
    ws = duck_app.workspace("demo")
    assert ws.plan == "unlimited" and plans.plan_of(ws).name == "unlimited"


# -- segments ---------------------------------------------------------------------------------
def _rule(name: str) -> SegmentSpec:
    return SegmentSpec(name=name, rule=parse_rule(EVERYONE))


def test_starter_saves_five_segments_and_refuses_the_sixth(app):
    ws = _workspace(app, "starter")
    _seed(app, ws, 3)
    segs = Segments(app, ws)
    for n in range(4):
        segs.save(_rule(f"Rule {n}"))
    segs.save_static("List", ["S0000000"])  # the 5th: passes
    assert len(segs.list()) == 5
    message = (
        "the Starter plan allows 5 segments (rule and static); this would make 6. Nothing "
        "was saved. Delete a segment, or move to Growth (unlimited segments) with "
        f"'strata plan set growth' or PUT /api/v1/workspaces/{ws.id}/plan"
    )
    with pytest.raises(PlanLimit) as rule:
        segs.save(_rule("Sixth"))
    with pytest.raises(PlanLimit) as static:
        segs.save_static("Sixth list", ["S0000001"])
    assert str(rule.value) == str(static.value) == message
    assert sorted(s.name for s in segs.list()) == ["List", "Rule 0", "Rule 1", "Rule 2", "Rule 3"]
    # Changing one of the five is not a new segment.
    segs.save(SegmentSpec(name="Rule 0", description="changed", rule=parse_rule(EVERYONE)),
              replace=True)  # fmt: skip
    segs.save_static("List", ["S0000002"], mode="append")


def test_segments_apply_counts_the_set_as_it_will_be(duck_app, tmp_path):
    ws = _workspace(duck_app, "starter")
    _seed(duck_app, ws, 3)
    folder = tmp_path / "segments"
    folder.mkdir()
    for n in range(5):
        (folder / f"s{n}.yaml").write_text(
            f"name: Seg {n}\nrule: {{type: attribute, attribute: external_id, op: exists}}\n"
        )
    segs = Segments(duck_app, ws)
    segs.apply(folder)
    assert len(segs.list()) == 5
    # A sixth file: refused as a whole, nothing saved or deleted.
    (folder / "s5.yaml").write_text(
        "name: Seg 5\nrule: {type: attribute, attribute: external_id, op: exists}\n"
    )
    with pytest.raises(PlanLimit, match=re.escape("this would make 6. Nothing was saved")):
        segs.apply(folder)
    assert sorted(s.name for s in segs.list()) == [f"Seg {n}" for n in range(5)]
    # One file renamed: one deleted, one created, still five.
    (folder / "s0.yaml").unlink()
    segs.apply(folder)
    assert sorted(s.name for s in segs.list()) == [f"Seg {n}" for n in range(1, 6)]


def test_generated_segments_do_not_count_toward_the_limit(duck_app):
    ws = _workspace(duck_app, "starter")
    with duck_app.session() as s:
        for n in range(7):
            s.add(Segment(workspace_id=ws.id, name=f"RFM {n}", kind="rfm", family="rfm"))
        s.commit()
        assert plans.count_segments(s, ws.id) == 0
        plans.check_segments(s, ws, 5)  # five people-defined ones still fit


# -- features ---------------------------------------------------------------------------------
@pytest.fixture
def shop(duck_app):
    generate_and_load(duck_app, customers=150, workspace="shop")
    return duck_app


def _feature_message(plan: str, feature: str, to: str, ws_id: int) -> str:
    return (
        f"the {plans.PLANS[plan].title} plan does not include {plans.FEATURES[feature]}. "
        f"Move to {plans.PLANS[to].title} with 'strata plan set {to}' or "
        f"PUT /api/v1/workspaces/{ws_id}/plan"
    )


def test_clustering_needs_growth_and_a_custom_method_needs_professional(shop):
    ws = shop.workspace("shop")
    plans.set_plan(shop, ws, "starter")
    with pytest.raises(PlanLimit) as refused:
        run_clustering(shop, "shop", k=3)
    assert str(refused.value) == _feature_message("starter", "ml_segmentation", "growth", ws.id)

    plans.set_plan(shop, ws, "growth")
    assert run_clustering(shop, "shop", k=3)["k"] == 3
    for custom in ({"method": "gmm"}, {"features": ["recency", "frequency"]}):
        with pytest.raises(PlanLimit) as refused:
            run_clustering(shop, "shop", k=3, **custom)
        assert str(refused.value) == _feature_message(
            "growth", "custom_algorithms", "professional", ws.id
        )
    plans.set_plan(shop, ws, "professional")
    assert run_clustering(shop, "shop", k=3, method="gmm", name="gmm")["k"] == 3


def test_predictions_and_lookalikes_need_professional(shop):
    ws = shop.workspace("shop")
    plans.set_plan(shop, ws, "growth")
    Segments(shop, ws).save_static("Seed", [f"C{n:07d}" for n in range(1, 40)])
    message = _feature_message("growth", "predictive", "professional", ws.id)
    for run in (
        lambda: run_clv(shop, "shop"),
        lambda: run_churn(shop, "shop"),
        lambda: run_propensity(shop, "shop"),
        lambda: find_lookalikes(shop, "shop", "Seed"),
    ):
        with pytest.raises(PlanLimit) as refused:
            run()
        assert str(refused.value) == message
    plans.set_plan(shop, ws, "professional")
    assert find_lookalikes(shop, "shop", "Seed", top=10)["seed_customers"] == 39


def test_api_keys_need_growth(duck_app):
    ws = _workspace(duck_app, "starter")
    accounts = Accounts(duck_app)
    with pytest.raises(PlanLimit) as refused:
        accounts.create_key(ws.id, "site", "write")
    assert str(refused.value) == _feature_message("starter", "api_access", "growth", ws.id)
    assert accounts.keys(ws.id) == []
    plans.set_plan(duck_app, ws, "growth")
    _, secret = accounts.create_key(ws.id, "site", "write")
    assert secret.startswith("sk_write_")


def test_each_feature_is_refused_below_its_plan_and_allowed_from_it():
    first = {
        "ml_segmentation": "growth",
        "realtime": "growth",
        "api_access": "growth",
        "predictive": "professional",
        "custom_algorithms": "professional",
    }
    assert set(first) == set(plans.FEATURES)
    for feature, plan in first.items():
        at = plans.TIERS.index(plan)
        for n, tier in enumerate(plans.TIERS):
            assert plans.PLANS[tier].allows(feature) == (n >= at), (feature, tier)


# -- changing the plan ------------------------------------------------------------------------
def test_a_plan_change_writes_exactly_one_audit_entry_and_the_same_plan_none(duck_app):
    ws = duck_app.workspace("shop", create=True)
    plans.set_plan(duck_app, ws, "growth")
    plans.set_plan(duck_app, ws, "growth")  # no change: no entry
    with duck_app.session() as s:
        entries = s.scalars(
            sa.select(AuditEntry).where(AuditEntry.action == "workspace.plan")
        ).all()
    assert [(e.details, e.summary) for e in entries] == [
        (
            {"from": "unlimited", "to": "growth"},
            "plan changed from Unlimited (self-hosted) to Growth",
        )
    ]
    assert "workspace.plan" in audit.ACTIONS


def test_a_plan_the_workspace_outgrows_is_refused_and_nothing_changes(duck_app):
    ws = duck_app.workspace("shop", create=True)
    _seed(duck_app, ws, 10_001)
    with pytest.raises(PlanLimit) as refused:
        plans.set_plan(duck_app, ws, "starter")
    assert str(refused.value) == (
        "the Starter plan allows 10,000 customers; workspace 'shop' holds 10,001. The plan "
        "was not changed. Remove some first, or choose a larger plan ('strata plan list')"
    )
    assert duck_app.workspace("shop").plan == "unlimited"


def test_an_unknown_plan_names_the_choices(duck_app):
    ws = duck_app.workspace("shop", create=True)
    with pytest.raises(ValueError, match="choose one of starter, growth, professional"):
        plans.set_plan(duck_app, ws, "platinum")


# -- the docs ---------------------------------------------------------------------------------
def test_docs_hold_the_tiers_table_of_the_data_and_every_message():
    doc = (ROOT / "docs" / "plans.md").read_text()
    assert plans.plan_table() in doc
    for template in (
        "the {Plan} plan allows {limit} customers; this import would bring the workspace "
        "to {total}. Nothing was imported. Move to {Next} ({next limit} customers) with "
        "'strata plan set {next}' or PUT /api/v1/workspaces/{id}/plan",
        "the {Plan} plan allows {limit} customers; these live events would bring the "
        "workspace to {total}. Nothing of them was loaded.",
        "the {Plan} plan allows {limit} segments (rule and static); this would make {total}. "
        "Nothing was saved. Delete a segment, or move to {Next} (unlimited segments)",
        "the {Plan} plan does not include {feature}. Move to {Next} with",
        "The plan was not changed. Remove some first, or choose a larger plan",
    ):
        assert template in doc, template
    for words in plans.FEATURES.values():
        assert words in doc
    assert re.search(r"\b402\b", doc)


# -- live ingest ------------------------------------------------------------------------------
def _identify(user: str) -> dict:
    return {"type": "identify", "userId": user, "traits": {"plan_test": True}}


def test_live_ingest_on_starter_answers_402_before_accepting_anything(api):
    owner = api.owner()
    ws = owner.post("/api/v1/workspaces", json={"name": "live"}).json()["id"]
    key = owner.post(f"/api/v1/workspaces/{ws}/keys", json={"name": "site", "kind": "write"})
    assert key.status_code == 201, key.text
    assert owner.put(f"/api/v1/workspaces/{ws}/plan", json={"plan": "starter"}).status_code == 200
    client = api.client(auth=(key.json()["key"], ""))
    r = client.post("/v1/batch", json={"batch": [_identify("u1")]})
    assert r.status_code == 402
    assert r.json()["detail"] == _feature_message("starter", "api_access", "growth", ws)
    assert api.service.ingest.stats().get("received", 0) == 0


def test_live_ingest_past_the_growth_limit_is_moved_aside_and_stores_nothing(api, tmp_path):
    owner = api.owner()
    ws = owner.post("/api/v1/workspaces", json={"name": "live"}).json()["id"]
    assert owner.put(f"/api/v1/workspaces/{ws}/plan", json={"plan": "growth"}).status_code == 200
    key = owner.post(f"/api/v1/workspaces/{ws}/keys", json={"name": "site", "kind": "write"})
    client = api.client(auth=(key.json()["key"], ""))
    limit = 50_000
    with api.service.writing() as app:
        _seed(app, app.workspace("live"), limit - 2)

    def send(*users: str) -> None:
        r = client.post("/v1/batch", json={"batch": [_identify(u) for u in users]})
        assert r.status_code == 200, r.text
        assert api.service.ingest.wait_idle(30), "the loader did not catch up"

    def customers() -> int:
        with api.service.reading() as app:
            return int(app.warehouse.table(ws, "customers").count().to_pyarrow().as_py())

    send("L1")
    assert customers() == limit - 1
    send("L2", "L3")  # would make limit + 1: refused as a whole
    assert customers() == limit - 1
    (moved,) = (tmp_path / "ingest-dead-letter").iterdir()
    assert json.loads(moved.read_text())["reason"] == (
        "PlanLimit: "  # the loader names the error's kind
        f"the Growth plan allows 50,000 customers; these live events would bring the workspace "
        f"to 50,001. Nothing of them was loaded. Move to Professional (250,000 customers) with "
        f"'strata plan set professional' or PUT /api/v1/workspaces/{ws}/plan"
    )
    assert api.service.ingest.stats()["refused_by_plan"] == 2
    send("L2")
    assert customers() == limit
    send("L1", "L2")  # known customers still load at the limit
    assert customers() == limit and api.service.ingest.stats()["load_failures"] == 1


def test_a_hosted_install_starts_new_workspaces_on_its_default_plan(tmp_path):
    import dataclasses

    from strata.config import Settings
    from strata.context import Strata
    from strata.errors import ConfigError

    env = {"STRATA_HOME": str(tmp_path), "STRATA_DEFAULT_PLAN": "Starter"}
    settings = Settings.from_env(env)
    assert settings.default_plan == "starter"
    with Strata(settings) as app:
        assert app.workspace("hosted", create=True).plan == "starter"
        accounts = Accounts(app)
        owner, _ = accounts.ensure_owner("owner@example.com", "a long enough password")
        assert accounts.create_workspace(owner, "second").plan == "starter"
    bad = dataclasses.replace(settings, default_plan="gold")
    with Strata(bad) as app, pytest.raises(ConfigError, match="STRATA_DEFAULT_PLAN='gold'"):
        app.workspace("other", create=True)


def test_two_imports_at_once_cannot_both_pass_the_limit(postgres_database, tmp_path):
    """Each import counts under the load's lock, so the second sees the first's customer."""
    import threading

    from strata.config import Settings
    from strata.context import Strata

    settings = Settings(
        home=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'catalog.db'}",
        warehouse_url=postgres_database,
    )
    with Strata(settings) as app:
        ws = _workspace(app, "starter")
        _seed(app, ws, 9_999)
    files = [_orders(tmp_path, f"race{n}", [f"R{n}"]) for n in range(2)]
    outcomes: list[str] = []

    def run(path: Path) -> None:
        with Strata(settings) as own:  # a warehouse connection of its own
            try:
                run_import(own, path, workspace="shop")
                outcomes.append("imported")
            except PlanLimit as exc:
                outcomes.append(str(exc).split(";")[1].strip())
            except Exception as exc:
                outcomes.append(repr(exc))

    threads = [threading.Thread(target=run, args=(f,)) for f in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    refused = (
        "this import would bring the workspace to 10,001. Nothing was imported. Move to "
        "Growth (50,000 customers) with 'strata plan set growth' or PUT /api/v1/workspaces/1/plan"
    )
    assert sorted(outcomes) == ["imported", refused]
    with Strata(settings) as app:
        assert _held(app, app.workspace("shop"))[0] == 10_000


def test_the_examples_in_strata_plans_hold():
    import doctest

    result = doctest.testmod(plans)
    assert result.attempted >= 6 and result.failed == 0
