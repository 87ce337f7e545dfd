"""What every model stands on: fitted versions, stored predictions, features, tracking.

A tiny shop of ten customers is written by hand below; the expected members of each
prediction condition are worked out from the scores in ``SCORES``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

from strata.config import Settings
from strata.context import Strata
from strata.errors import InputError, NotFound
from strata.models import features as F
from strata.models.store import ModelStore, write_predictions
from strata.segments.engine import Segments
from strata.segments.nodes import SegmentSpec, parse_rule
from strata.segments.reference import ReferenceTime
from strata.warehouse import Batch

REF = ReferenceTime.of(dt.date(2024, 6, 30))
#: external id -> churn score; ties on purpose (ids break them).
SCORES = {
    "c01": 0.9, "c02": 0.9, "c03": 0.9, "c04": 0.8, "c05": 0.8,
    "c06": 0.5, "c07": 0.2, "c08": 0.1, "c09": 0.1, "c10": 0.0,
}  # fmt: skip


def _shop(app: Strata, name: str = "shop") -> tuple[int, dict[str, int]]:
    """Ten customers, a few orders each for c01-c05 (one after REF); their ids."""
    customers = pa.table(
        {
            "external_id": [f"c{i:02d}" for i in range(1, 11)],
            "company_size": pa.array([1, 5, 10, None, 50, 2, 3, 4, 200, 7], pa.int64()),
            "signup_date": pa.array([dt.date(2024, 1, i) for i in range(1, 11)], pa.date32()),
            "country": ["FR", "FR", "DE", "DE", "US", "US", "US", "UK", "UK", "ES"],
        }
    )
    rows = [
        ("c01", "order", "2024-06-01 10:00", 100.0),
        ("c01", "order", "2024-06-20 10:00", 50.0),
        ("c02", "order", "2024-05-01 10:00", 30.0),
        ("c02", "page_view", "2024-06-02 10:00", None),
        ("c03", "order", "2024-03-01 10:00", 300.0),
        ("c04", "page_view", "2024-06-29 10:00", None),
        ("c05", "order", "2024-06-10 10:00", 20.0),
        # After the reference time: no feature may see it.
        ("c05", "order", "2024-07-05 10:00", 999.0),
        ("c05", "page_view", "2024-07-05 10:00", None),
    ]
    events = pa.table(
        {
            "external_id": [r[0] for r in rows],
            "event_type": [r[1] for r in rows],
            "timestamp": pa.array(
                [dt.datetime.fromisoformat(r[2]) for r in rows], pa.timestamp("us")
            ),
            "revenue": pa.array([r[3] for r in rows], pa.float64()),
            "currency": ["EUR"] * len(rows),
            "order_id": [f"o{i}" if r[1] == "order" else None for i, r in enumerate(rows)],
            "properties": [json.dumps({})] * len(rows),
            "event_key": [f"k{i}" for i in range(len(rows))],
        }
    )
    ws = app.workspace(name, create=True)
    app.warehouse.load(ws.id, Batch(customers=customers, events=events))
    ids = app.warehouse.table(ws.id, "customers").select("external_id", "customer_id")
    return ws.id, dict(_pairs(ids))


def _pairs(table) -> list[tuple[str, int]]:
    return [(r["external_id"], r["customer_id"]) for r in table.to_pyarrow().to_pylist()]


def _score(app: Strata, ws_id: int, ids: dict[str, int], version: str = "churn@1") -> int:
    rows = pa.table(
        {
            "customer_id": pa.array([ids[e] for e in SCORES], pa.int64()),
            "value": pa.array(list(SCORES.values()), pa.float64()),
            "details": [json.dumps({"factors": [e]}) for e in SCORES],
        }
    )
    return write_predictions(
        app, ws_id, "churn_risk", rows, model_version=version, predicted_at=REF.instant
    )


def _members(segs: Segments, rule: dict) -> set[str]:
    preview = segs.preview(parse_rule(rule), as_of=REF, sample=100)
    return {row["external_id"] for row in preview.sample}


# -- prediction conditions ------------------------------------------------------------------
def test_prediction_conditions_compare_and_rank_with_ids_breaking_ties(app):
    ws_id, ids = _shop(app)
    _score(app, ws_id, ids)
    segs = Segments(app, "shop")
    rule = {"type": "prediction", "prediction": "churn_risk"}
    assert _members(segs, {**rule, "op": "gte", "value": 0.8}) == {
        "c01",
        "c02",
        "c03",
        "c04",
        "c05",
    }
    assert _members(segs, {**rule, "op": "between", "value": [0.1, 0.5]}) == {
        "c06",
        "c07",
        "c08",
        "c09",
    }
    # 30 % of 10 is 3: the three 0.9s. 40 % is 4: the lowest id of the 0.8s joins them.
    assert _members(segs, {**rule, "top_percent": 30}) == {"c01", "c02", "c03"}
    assert _members(segs, {**rule, "top_percent": 40}) == {"c01", "c02", "c03", "c04"}
    # 25 % is 2.5, rounded up: 3 customers, never fewer than asked.
    assert _members(segs, {**rule, "bottom_percent": 25}) == {"c10", "c08", "c09"}
    assert _members(segs, {**rule, "bottom_percent": 10}) == {"c10"}
    assert len(_members(segs, {**rule, "top_percent": 100})) == 10


def test_customers_without_a_score_match_only_missing(app):
    ws_id, ids = _shop(app)
    partial = pa.table({"customer_id": pa.array([ids["c01"]], pa.int64()), "value": [0.4]})
    write_predictions(app, ws_id, "clv", partial, model_version="clv@1", predicted_at=REF.instant)
    segs = Segments(app, "shop")
    assert _members(segs, {"type": "prediction", "prediction": "clv", "op": "lt", "value": 1}) == {
        "c01"
    }
    missing = _members(segs, {"type": "prediction", "prediction": "clv", "op": "missing"})
    assert missing == set(SCORES) - {"c01"}


def test_a_prediction_nobody_has_is_a_clear_error(app):
    _shop(app)
    segs = Segments(app, "shop")
    with pytest.raises(InputError, match="no customer has a stored 'propensity_30d' prediction"):
        segs.preview(parse_rule({"type": "prediction", "prediction": "propensity_30d",
                                 "top_percent": 10}))  # fmt: skip


def test_explain_shows_the_score_its_rank_and_the_model(app):
    ws_id, ids = _shop(app)
    _score(app, ws_id, ids, version="churn@7")
    segs = Segments(app, "shop")
    spec = SegmentSpec(
        name="Top risk",
        rule=parse_rule({"type": "prediction", "prediction": "churn_risk", "top_percent": 40}),
    )
    segs.save(spec, as_of=REF)
    explained = segs.explain("Top risk", "c04", as_of=REF)
    assert (explained["member"], explained["matches"]) == (True, True)
    assert explained["why"]["value"] == pytest.approx(0.8)
    assert explained["why"]["details"] == {"rank": 4, "of": 10, "model": "churn@7"}
    assert (
        "predicted churn risk is 0.8, needs in the top 40% of scored customers"
        in (explained["text"])
    )
    assert segs.explain("Top risk", "c05", as_of=REF)["matches"] is False


def test_prediction_conditions_agree_on_spark(spark_url, tmp_path):
    settings = Settings(
        home=tmp_path, database_url=f"sqlite:///{tmp_path / 'c.db'}", warehouse_url=spark_url
    )
    with Strata(settings) as app:
        ws_id, ids = _shop(app)
        _score(app, ws_id, ids)
        segs = Segments(app, "shop")
        rule = {"type": "prediction", "prediction": "churn_risk", "top_percent": 40}
        assert _members(segs, rule) == {"c01", "c02", "c03", "c04"}
        # Writing the type again replaces it, on Parquet parts too.
        _score(app, ws_id, ids, version="churn@2")
        stored = app.warehouse.table(ws_id, "predictions").to_pyarrow()
        assert stored.num_rows == 10
        assert set(stored.column("model_version").to_pylist()) == {"churn@2"}


# -- stored predictions -----------------------------------------------------------------------
def test_writing_a_prediction_type_replaces_it_and_keeps_the_others(app):
    ws_id, ids = _shop(app)
    _score(app, ws_id, ids, version="churn@1")
    clv = pa.table({"customer_id": pa.array([ids["c01"]], pa.int64()), "value": [120.0]})
    write_predictions(app, ws_id, "clv", clv, model_version="clv@1",
                      predicted_at=REF.instant)  # fmt: skip
    assert _score(app, ws_id, ids, version="churn@2") == 10
    stored = app.warehouse.table(ws_id, "predictions").to_pyarrow().to_pylist()
    by_type = {}
    for row in stored:
        by_type.setdefault(row["prediction_type"], set()).add(row["model_version"])
    assert by_type == {"churn_risk": {"churn@2"}, "clv": {"clv@1"}}
    first = next(r for r in stored if r["customer_id"] == ids["c01"] and r["value"] == 0.9)
    assert json.loads(first["details"]) == {"factors": ["c01"]}
    assert first["predicted_at"] == REF.instant


def test_a_failed_prediction_write_keeps_the_old_scores(app, monkeypatch):
    ws_id, ids = _shop(app)
    _score(app, ws_id, ids, version="churn@1")
    wh = app.warehouse

    def broken_insert(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(wh, "_insert", broken_insert)
    with pytest.raises(RuntimeError, match="disk full"):
        _score(app, ws_id, ids, version="churn@2")
    monkeypatch.undo()
    stored = wh.table(ws_id, "predictions").to_pyarrow()
    assert stored.num_rows == 10
    assert set(stored.column("model_version").to_pylist()) == {"churn@1"}


def test_a_workspace_made_before_prediction_details_gets_the_column(duck_app):
    ws_id, ids = _shop(duck_app)
    duck_app.warehouse._execute(f'ALTER TABLE "ws_{ws_id}"."predictions" DROP COLUMN "details"')
    assert "details" not in duck_app.warehouse.table(ws_id, "predictions").columns
    _score(duck_app, ws_id, ids)
    table = duck_app.warehouse.table(ws_id, "predictions")
    assert table.details.notnull().sum().to_pyarrow().as_py() == 10


# -- model versions -------------------------------------------------------------------------
def test_model_versions_count_up_per_name(duck_app):
    ws = duck_app.workspace("shop", create=True)
    store = ModelStore(duck_app, ws)
    with pytest.raises(NotFound, match="no model named 'clv' has been fitted"):
        store.get("clv")
    first = store.save(kind="clv", name="clv", params={"penalizer": 0.0},
                       state={"r": np.float64(0.24), "nan": float("nan")},
                       metrics={"ll": -9582.4}, as_of=REF.instant)  # fmt: skip
    store.save(kind="cluster", name="behaviour", params={}, state={}, metrics={},
               as_of=REF.instant)  # fmt: skip
    second = store.save(kind="clv", name="clv", params={}, state={"r": 0.3}, metrics={},
                        as_of=REF.instant)  # fmt: skip
    assert (first.model_version, second.model_version) == ("clv@1", "clv@2")
    assert store.latest("clv").state == {"r": 0.3}
    assert [m.model_version for m in store.list()] == ["behaviour@1", "clv@2"]
    # numpy scalars and NaN are stored as plain JSON.
    assert first.state == {"r": 0.24, "nan": None}
    other = ModelStore(duck_app, duck_app.workspace("other", create=True))
    assert other.latest("clv") is None


# -- features -------------------------------------------------------------------------------
def test_scaled_feature_columns_agree_with_numpy(app):
    _ws_id, _ids = _shop(app)
    segs = Segments(app, "shop")
    features = F.behaviour_features(segs, REF) + F.resolve(segs, REF, ["company_size"])
    frame = F.feature_frame(segs, features, REF)
    scaling = F.fit_scaling(frame, features)
    expected = F.scale_frame(frame, scaling)
    compiler = segs.compiler(REF)
    columns = F.scaled_columns(compiler, scaling)
    wide = compiler.wide()
    got = (
        wide.select("customer_id", **{f"f{i}": c(wide) for i, c in enumerate(columns)})
        .order_by("customer_id")
        .to_pyarrow()
        .to_pandas()
    )
    assert got.customer_id.tolist() == frame.customer_id.tolist()
    np.testing.assert_allclose(got.drop(columns="customer_id").to_numpy(), expected, atol=1e-9)


def test_features_at_a_reference_time_see_nothing_after_it(duck_app):
    _ws_id, _ids = _shop(duck_app)
    segs = Segments(duck_app, "shop")
    features = F.behaviour_features(segs, REF)
    frame = F.feature_frame(segs, features, REF).set_index("external_id")
    c05 = frame.loc["c05"]
    # The order and page view of 2024-07-05 are after REF.
    assert (c05.frequency, c05.monetary, c05.recency) == (1, 20.0, 20)
    assert frame.loc["c04", "events_page_view"] == 1
    assert frame.loc["c05", "events_page_view"] == 0
    # Never ordered: no recency, no order value.
    assert np.isnan(frame.loc["c04", "recency"])
    # Tenure counts from the signup date (2024-01-04) to the reference day.
    assert frame.loc["c04", "tenure"] == (dt.date(2024, 6, 30) - dt.date(2024, 1, 4)).days
    # Order events are the frequency feature, not a count of their own.
    assert "events_order" not in frame.columns


def test_a_training_sample_is_deterministic_and_near_the_asked_size(duck_app):
    from strata.demo import generate_and_load

    generate_and_load(duck_app, customers=2000, seed=5, end=dt.date(2024, 6, 30), workspace="big")
    segs = Segments(duck_app, "big")
    features = F.resolve(segs, REF, ["frequency", "monetary"])
    one = F.feature_frame(segs, features, REF, sample=500)
    two = F.feature_frame(segs, features, REF, sample=500)
    other_seed = F.feature_frame(segs, features, REF, sample=500, seed=1)
    assert one.customer_id.tolist() == two.customer_id.tolist()
    assert 400 <= len(one) <= 600
    assert set(one.customer_id) != set(other_seed.customer_id)
    assert len(F.feature_frame(segs, features, REF, sample=None)) == 2000


def test_features_named_by_the_user_are_checked(duck_app):
    _shop(duck_app)
    segs = Segments(duck_app, "shop")
    names = [f.name for f in F.resolve(segs, REF, ["monetary", "company_size", "total_orders"])]
    assert names == ["monetary", "company_size", "total_orders"]
    with pytest.raises(InputError, match="attribute 'country' is string"):
        F.resolve(segs, REF, ["country"])
    with pytest.raises(InputError, match="unknown feature 'shoe_size'"):
        F.resolve(segs, REF, ["shoe_size"])


# -- tracking -------------------------------------------------------------------------------
def test_without_a_tracking_uri_mlflow_is_never_imported(tmp_path):
    code = (
        "import sys\n"
        "from strata.models.tracking import log_fit\n"
        "assert log_fit(kind='clv', name='clv', params={}, metrics={'ll': 1.0}) is None\n"
        "print('mlflow' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == "False"


def test_each_fit_is_logged_to_mlflow_when_tracking_is_on(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    from sklearn.cluster import KMeans

    from strata.models.tracking import log_fit

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)  # artifacts go to ./mlruns
    data = np.random.default_rng(0).normal(size=(60, 2))
    model = KMeans(3, n_init=2, random_state=0).fit(data)
    run_id = log_fit(
        kind="cluster",
        name="behaviour",
        params={"k": 3, "method": "kmeans"},
        metrics={"silhouette": 0.41, "note": "not a number"},
        model=model,
        state={"centres": model.cluster_centers_},
    )
    client = mlflow.MlflowClient(uri)
    run = client.get_run(run_id)
    assert run.data.params == {"k": "3", "method": "kmeans"}
    assert run.data.metrics == {"silhouette": 0.41}
    assert client.get_experiment(run.info.experiment_id).name == "strata/cluster"
    loaded = mlflow.sklearn.load_model(f"runs:/{run_id}/model")
    np.testing.assert_array_equal(loaded.cluster_centers_, model.cluster_centers_)
    state = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/state.json")
    assert np.allclose(state["centres"], model.cluster_centers_)


def test_segments_reading_a_prediction_follow_new_scores(duck_app):
    ws_id, ids = _shop(duck_app)
    _score(duck_app, ws_id, ids)
    segs = Segments(duck_app, "shop")
    top = {"type": "prediction", "prediction": "churn_risk", "top_percent": 10}
    segs.save(SegmentSpec(name="Riskiest", rule=parse_rule(top)), as_of=REF)
    segs.save(SegmentSpec(name="Through it", rule=parse_rule(
        {"type": "in_segment", "segment": "Riskiest"})), as_of=REF)  # fmt: skip
    buyers = {"type": "trait", "trait": "total_orders", "op": "gte", "value": 1}
    segs.save(SegmentSpec(name="Buyers", rule=parse_rule(buyers)), as_of=REF)
    assert [m["external_id"] for m in segs.members("Riskiest")[1]] == ["c01"]
    # c10 becomes the riskiest.
    rows = pa.table({"customer_id": pa.array([ids["c10"], ids["c01"]], pa.int64()),
                     "value": [0.99, 0.0]})  # fmt: skip
    write_predictions(duck_app, ws_id, "churn_risk", rows, model_version="churn@2",
                      predicted_at=REF.instant)  # fmt: skip
    refreshed = segs.after_predictions({"churn_risk"})
    assert sorted(r.segment for r in refreshed) == ["Riskiest", "Through it"]
    assert [m["external_id"] for m in segs.members("Riskiest")[1]] == ["c10"]
    assert segs.after_predictions({"clv"}) == []


def test_clusters_and_lifetime_value_run_whole_on_spark(spark_url, tmp_path):
    from strata.demo import generate_and_load
    from strata.models.cluster import run_clustering
    from strata.models.clv import run_clv

    settings = Settings(
        home=tmp_path, database_url=f"sqlite:///{tmp_path / 'c.db'}", warehouse_url=spark_url
    )
    with Strata(settings) as app:
        generate_and_load(app, customers=400, seed=3, end=dt.date(2026, 6, 30), workspace="s")
        ref = ReferenceTime.of(dt.date(2026, 6, 30))
        clusters = run_clustering(app, "s", as_of=ref, k=3)
        assert sum(c["customers"] for c in clusters["clusters"]) == 400
        clv = run_clv(app, "s", as_of=ref)
        vips = next(s for s in clv["segments"] if s["segment"] == "VIPs")
        assert vips["customers"] == -(-clv["customers"] * 20 // 100)
        stored = app.warehouse.table(app.workspace("s").id, "predictions")
        rows = stored.group_by("prediction_type").aggregate(n=stored.count()).to_pyarrow()
        counts = {r["prediction_type"]: r["n"] for r in rows.to_pylist()}
        assert counts["cluster:behaviour"] == 400 and counts["clv"] == clv["customers"]
