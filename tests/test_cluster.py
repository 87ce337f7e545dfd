"""Customer clusters: choosing k, naming, assignment in the warehouse, clusters as segments.

One generated business is clustered once per backend (module fixtures); tests that
change what is stored make a workspace of their own.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from sklearn.datasets import make_blobs
from sklearn.utils.estimator_checks import parametrize_with_checks

from strata.config import Settings
from strata.context import Strata
from strata.demo import generate_and_load
from strata.errors import InputError
from strata.models import features as F
from strata.models.cluster import (
    CustomerClusters,
    assignment_table,
    parse_k,
    profile_clusters,
    restore,
    run_clustering,
)
from strata.models.store import ModelStore
from strata.segments.engine import Segments
from strata.segments.nodes import SegmentSpec, parse_rule
from strata.segments.reference import ReferenceTime
from strata.warehouse import Batch
from tests.conftest import POSTGRES_URL

END = dt.date(2026, 6, 30)
REF = ReferenceTime.of(END)
CUSTOMERS = 800
WS = "shop"


def _store(tmp: Path, url: str | None = None) -> Settings:
    return Settings(
        home=tmp,
        database_url=f"sqlite:///{tmp / 'catalog.db'}",
        warehouse_url=url or f"duckdb://{tmp / 'warehouse.duckdb'}",
    )


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def shop(request, tmp_path_factory):
    """A generated business clustered once (auto k): ``(app, segs, result)``."""
    tmp = tmp_path_factory.mktemp(f"cluster-{request.param}")
    url, drop = None, None
    if request.param == "postgres":
        if not POSTGRES_URL:
            pytest.skip("STRATA_TEST_POSTGRES_URL is not set: no PostgreSQL server to test against")
        import psycopg

        name = f"strata_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(POSTGRES_URL, autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"')
        url = f"{POSTGRES_URL.rpartition('/')[0]}/{name}"

        def drop() -> None:
            with psycopg.connect(POSTGRES_URL, autocommit=True) as con:
                con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    with Strata(_store(tmp, url)) as app:
        generate_and_load(app, customers=CUSTOMERS, seed=11, end=END, workspace=WS)
        result = run_clustering(app, WS, as_of=REF)
        yield app, Segments(app, WS), result
    if drop is not None:
        drop()


@pytest.fixture(scope="module")
def duck_shop(tmp_path_factory):
    """The same business on DuckDB, for tests that change what is stored."""
    tmp = tmp_path_factory.mktemp("cluster-own")
    with Strata(_store(tmp)) as app:
        generate_and_load(app, customers=CUSTOMERS, seed=11, end=END, workspace=WS)
        yield app


def _scaled(segs: Segments, state: dict, ref: ReferenceTime = REF, ids=None):
    features = [F.Feature.from_dict(f) for f in state["scaling"]["features"]]
    frame = F.feature_frame(segs, features, ref, customer_ids=ids, sample=None)
    return frame, F.scale_frame(frame, state["scaling"])


def _current(segs: Segments, name: str) -> set[int]:
    seg = segs.get(name)
    m = segs.wh.table(segs.ws.id, "memberships")
    rows = m.filter(m.segment_id == seg.id, m.left_at.isnull()).select("customer_id")
    return set(rows.to_pyarrow().column("customer_id").to_pylist())


def _predictions(segs: Segments, kind: str) -> dict[int, dict]:
    p = segs.wh.table(segs.ws.id, "predictions")
    rows = p.filter(p.prediction_type == kind).to_pyarrow().to_pylist()
    return {r["customer_id"]: r for r in rows}


def _family(segs: Segments, name: str = "behaviour") -> list:
    return [s for s in segs.list() if s.family == f"cluster:{name}"]


# -- the estimator --------------------------------------------------------------------------
def test_clear_blobs_give_back_their_number_with_kmeans_and_the_mixture():
    X, truth = make_blobs(n_samples=600, centers=5, n_features=4, cluster_std=0.6, random_state=3)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    for method in ("kmeans", "gmm"):
        model = CustomerClusters(method=method, random_state=0).fit(X)
        assert model.k_ == 5, (method, model.k_scores_)
        assert sorted(model.k_scores_) == [3, 4, 5, 6, 7, 8]
        # Every true blob lands in one cluster.
        for blob in range(5):
            assert len(set(model.labels_[truth == blob])) == 1
    assert model.silhouette_ > 0.6


def test_auto_k_is_the_best_score_among_those_tried():
    X, _ = make_blobs(n_samples=400, centers=4, n_features=3, cluster_std=2.5, random_state=1)
    km = CustomerClusters(k="auto", k_range=(2, 7)).fit(X)
    sil = {k: v["silhouette"] for k, v in km.k_scores_.items()}
    assert km.k_ == max(sil, key=sil.get) and km.silhouette_ == sil[km.k_]
    gm = CustomerClusters(method="gmm", k="auto", k_range=(2, 7)).fit(X)
    bic = {k: v["bic"] for k, v in gm.k_scores_.items()}
    assert gm.k_ == min(bic, key=bic.get)
    assert np.isclose(gm.weights_.sum(), 1.0) and (gm.variances_ > 0).all()


def test_clusters_are_numbered_by_size_and_predict_matches_labels():
    centres = [[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]]
    X, _ = make_blobs(n_samples=[300, 60, 140], centers=centres, cluster_std=0.5, random_state=0)
    model = CustomerClusters(k=3).fit(X)
    sizes = np.bincount(model.labels_)
    assert list(sizes) == sorted(sizes, reverse=True) == [300, 140, 60]
    assert (model.predict(X) == model.labels_).all()
    assert (model.fit_predict(X) == model.labels_).all()
    again = restore({"method": "kmeans", "centers": model.centers_.tolist()})
    assert (again.predict(X) == model.labels_).all()


def test_estimator_follows_the_scikit_learn_contract():
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError

    model = CustomerClusters(method="gmm", k=4, random_state=5)
    assert clone(model).get_params() == model.get_params()
    with pytest.raises(NotFittedError):
        model.predict(np.zeros((2, 2)))
    CustomerClusters(method="nope")  # params are only stored in __init__
    with pytest.raises(InputError, match="kmeans or gmm"):
        CustomerClusters(method="nope").fit(np.random.default_rng(0).normal(size=(50, 2)))


@pytest.mark.parametrize(
    ("k", "message"),
    [(1, "outside 2..20"), (21, "outside 2..20"), ("lots", "whole number"), (2.5, "whole number")],
)
def test_bad_k_is_refused(k, message):
    with pytest.raises(InputError, match=message):
        if isinstance(k, str):
            parse_k(k)
        CustomerClusters(k=k).fit(np.random.default_rng(0).normal(size=(50, 2)))


def test_k_from_the_command_line():
    assert parse_k("auto") == "auto" and parse_k(None) == "auto"
    assert parse_k("5") == 5 and parse_k(7) == 7
    with pytest.raises(InputError, match="outside"):
        parse_k("40")


def _shop_frame(groups: list[dict[str, float | None]], per: int = 40):
    """A frame of ``per`` customers per group, each near the group's values."""
    import pandas as pd

    rng = np.random.default_rng(0)
    rows, labels = [], []
    for g, values in enumerate(groups):
        for _ in range(per):
            rows.append(
                {
                    name: None if v is None else max(0.0, v * rng.uniform(0.9, 1.1))
                    for name, v in values.items()
                }
            )
            labels.append(g)
    return pd.DataFrame(rows, dtype="float64"), np.array(labels)


NAMING_FEATURES = [
    F.Feature("recency", "days since last order", "trait", "days_since_last_order", "max"),
    F.Feature("frequency", "orders", "trait", "total_orders", "zero", log=True),
    F.Feature("monetary", "revenue", "trait", "total_revenue", "zero", log=True),
    F.Feature("tenure", "days since first seen", "tenure", None, "zero"),
]


def test_clusters_are_named_by_what_sets_them_apart():
    frame, labels = _shop_frame(
        [
            {"recency": 8, "frequency": 12, "monetary": 1500, "tenure": 600},
            {"recency": None, "frequency": 0, "monetary": 0, "tenure": 300},
            {"recency": 400, "frequency": 1, "monetary": 40, "tenure": 700},
            {"recency": 20, "frequency": 2, "monetary": 90, "tenure": 25},
        ]
    )
    X = F.scale_frame(frame, F.fit_scaling(frame, NAMING_FEATURES))
    clusters = profile_clusters(frame, X, labels, NAMING_FEATURES, 4)
    names = [c["name"] for c in clusters]
    assert names[:3] == ["Frequent big spenders", "Never ordered", "Lapsed one-time buyers"]
    assert names[3] in {"Newcomers", "Recent buyers"}
    big = clusters[0]["description"]
    orders = frame.frequency.fillna(0)
    ratio = orders[labels == 0].mean() / orders.mean()
    assert big.startswith(f"Frequent big spenders: {ratio:.1f}× the average order count and ")
    assert "× the average revenue; last ordered 8 days ago on average." in big
    assert clusters[1]["description"].endswith("none of them has ordered yet.")
    assert clusters[1]["ordered"] == 0 and clusters[0]["ordered"] == 1


def test_colliding_names_get_a_qualifier():
    frame, labels = _shop_frame(
        [
            {"recency": 8, "frequency": 12, "monetary": 1500, "tenure": 400},
            {"recency": 30, "frequency": 11, "monetary": 1400, "tenure": 400},
            {"recency": None, "frequency": 0, "monetary": 0, "tenure": 400},
            {"recency": None, "frequency": 0, "monetary": 0, "tenure": 400},
        ]
    )
    X = F.scale_frame(frame, F.fit_scaling(frame, NAMING_FEATURES))
    names = [c["name"] for c in profile_clusters(frame, X, labels, NAMING_FEATURES, 4)]
    assert len(set(names)) == 4
    assert names == [
        "Frequent big spenders, recent",
        "Frequent big spenders, lapsing",
        "Never ordered",  # no feature tells these two apart: numbered
        "Never ordered (2)",
    ]


# -- in a workspace ---------------------------------------------------------------------------
def test_auto_k_lies_in_3_to_8_and_is_the_silhouette_argmax(shop):
    _, _, result = shop
    scores = {int(k): v["silhouette"] for k, v in result["k_scores"].items()}
    assert sorted(scores) == [3, 4, 5, 6, 7, 8]
    assert 3 <= result["k"] <= 8
    assert result["k"] == max(scores, key=scores.get)
    assert result["silhouette"] == round(scores[result["k"]], 4)
    assert len(result["clusters"]) == result["k"]
    assert result["model_version"] == "behaviour@1" and result["as_of"] == str(REF)


def test_the_warehouse_assigns_every_customer_as_numpy_predict_does(shop):
    app, segs, _ = shop
    state = ModelStore(app, segs.ws).get("behaviour").state
    frame, X = _scaled(segs, state)
    expected = restore(state).predict(X)
    got = assignment_table(segs.compiler(REF), state).to_pyarrow().to_pandas()
    got = got.set_index("customer_id").loc[frame.customer_id]
    assert len(frame) == CUSTOMERS
    assert (got["index"].to_numpy() == expected).all()
    centres = np.asarray(state["centers"])
    distance = np.sqrt(((X - centres[expected]) ** 2).sum(axis=1))
    np.testing.assert_allclose(got["distance"].to_numpy(), distance, rtol=1e-9, atol=1e-9)
    assert ((got["confidence"] >= 0) & (got["confidence"] <= 1)).all()


def test_cluster_segments_split_the_customers_and_agree_with_the_predictions(shop):
    _, segs, result = shop
    family = _family(segs)
    assert len(family) == result["k"]
    members = {s.name: _current(segs, s.name) for s in family}
    assert sum(len(m) for m in members.values()) == CUSTOMERS
    assert len(set().union(*members.values())) == CUSTOMERS  # disjoint: no one counted twice
    predictions = _predictions(segs, "cluster:behaviour")
    assert len(predictions) == CUSTOMERS
    for c in result["clusters"]:
        mine = {cid for cid, p in predictions.items() if p["value"] == c["index"]}
        assert members[c["segment"]] == mine
        assert c["customers"] == len(mine)
        details = json.loads(predictions[next(iter(mine))]["details"])
        assert details["cluster"] == c["name"] and details["distance"] >= 0
    assert {p["model_version"] for p in predictions.values()} == {"behaviour@1"}
    assert sum(c["share"] for c in result["clusters"]) == pytest.approx(1.0)


def test_names_are_unique_and_descriptions_say_what_with_numbers(shop):
    _, segs, result = shop
    names = [c["name"] for c in result["clusters"]]
    assert len(set(names)) == len(names)
    words = {"order count", "revenue", "order value", "product range", "tenure", "events"}
    words.add("days ago")
    for c in result["clusters"]:
        text = c["description"]
        assert text.startswith(c["name"] + ":") and text.endswith(".")
        assert any(ch.isdigit() for ch in text), text
        assert any(w in text for w in words), text
        assert segs.get(c["segment"]).description == text


def test_profile_base_means_are_the_plain_means_of_the_features(shop):
    _, segs, result = shop
    features = F.behaviour_features(segs, REF)
    frame = F.feature_frame(segs, features, REF, sample=None)
    for f in features:
        values = frame[f.name].astype("float64")
        if f.name != "recency":
            values = values.fillna(0.0)  # a missing count or amount is none
        row = next(p for p in result["clusters"][0]["profile"] if p["feature"] == f.name)
        assert row["base_mean"] == pytest.approx(values.mean(), rel=1e-9), f.name
    # The base is the size-weighted blend of the clusters (recency: of those who ordered).
    for name in ("frequency", "monetary"):
        rows = [next(p for p in c["profile"] if p["feature"] == name) for c in result["clusters"]]
        blended = sum(r["mean"] * c["share"] for r, c in zip(rows, result["clusters"], strict=True))
        assert blended == pytest.approx(rows[0]["base_mean"], rel=1e-9)


def test_a_preview_of_a_cluster_rule_agrees_with_the_stored_predictions(shop):
    _, segs, result = shop
    predictions = _predictions(segs, "cluster:behaviour")
    for c in result["clusters"]:
        rule = parse_rule({"type": "cluster", "model": "behaviour", "cluster": c["index"]})
        preview = segs.preview(rule, as_of=REF, sample=5)
        assert preview.count == sum(1 for p in predictions.values() if p["value"] == c["index"])
        assert all(predictions[r["customer_id"]]["value"] == c["index"] for r in preview.sample)


def test_explain_of_a_cluster_segment_shows_the_distance(shop):
    _, segs, result = shop
    cluster = result["clusters"][0]
    member = min(_current(segs, cluster["segment"]))
    external = segs.wh.table(segs.ws.id, "customers")
    external = external.filter(external.customer_id == member).external_id.to_pyarrow()
    out = segs.explain(cluster["segment"], external[0].as_py())
    assert out["member"] and out["matches"]
    assert "distance" in out["text"]
    distance = out["why"]["details"]["distance to its centre"]
    stored = json.loads(_predictions(segs, "cluster:behaviour")[member]["details"])["distance"]
    assert distance == pytest.approx(stored, abs=0.006)  # explain shows two decimals


def test_the_same_seed_gives_the_same_clusters(duck_shop):
    first = run_clustering(duck_shop, WS, as_of=REF, k=4, save=False)
    again = run_clustering(duck_shop, WS, as_of=REF, k=4, save=False)
    assert first["k"] == again["k"] == 4
    assert [c["name"] for c in first["clusters"]] == [c["name"] for c in again["clusters"]]
    assert first["clusters"] == again["clusters"] and first["silhouette"] == again["silhouette"]
    assert first["model_version"] is None  # nothing stored
    assert ModelStore(duck_shop, duck_shop.workspace(WS)).latest("behaviour") is None


def test_attributes_can_be_the_features(duck_shop):
    result = run_clustering(
        duck_shop, WS, as_of=REF, features=["company_size", "monetary"], k=3, name="firmo"
    )
    assert result["features"] == ["company_size", "monetary"] and result["k"] == 3
    segs = Segments(duck_shop, WS)
    family = _family(segs, "firmo")
    assert sorted(s.name for s in family) == sorted(c["segment"] for c in result["clusters"])
    assert sum(c["customers"] for c in result["clusters"]) == CUSTOMERS
    words = [p["feature"] for p in result["clusters"][0]["profile"]]
    assert words == ["company_size", "monetary"]


def test_the_gaussian_mixture_picks_k_by_bic(duck_shop):
    four = ["recency", "frequency", "monetary", "tenure"]  # a small model: quick to compile
    result = run_clustering(duck_shop, WS, as_of=REF, method="gmm", name="mix", features=four)
    bic = {int(k): v["bic"] for k, v in result["k_scores"].items()}
    assert result["k"] == min(bic, key=bic.get) and result["method"] == "gmm"
    segs = Segments(duck_shop, WS)
    state = ModelStore(duck_shop, segs.ws).get("mix").state
    frame, X = _scaled(segs, state)
    predictions = _predictions(segs, "cluster:mix")
    got = np.array([predictions[c]["value"] for c in frame.customer_id])
    assert (got == restore(state).predict(X)).all()
    posterior = np.array([predictions[c]["confidence"] for c in frame.customer_id])
    assert ((posterior > 0) & (posterior <= 1 + 1e-9)).all() and posterior.mean() > 0.5


def test_a_refit_with_fewer_clusters_drops_the_segments_of_gone_ones(duck_shop):
    generate_and_load(duck_shop, customers=CUSTOMERS, seed=11, end=END, workspace="refit")
    segs = Segments(duck_shop, "refit")
    segs.save(
        SegmentSpec(name="Never ordered", rule=parse_rule({"type": "performed", "event": "x"})),
        evaluate=False,
    )
    six = run_clustering(duck_shop, "refit", as_of=REF, k=6, name="refit")
    assert len(_family(segs, "refit")) == 6
    # A user's segment keeps its name; the cluster's segment is named after the model.
    taken = [c["segment"] for c in six["clusters"] if c["name"] == "Never ordered"]
    assert taken in ([], ["refit: Never ordered"])
    assert segs.get("Never ordered").family is None
    three = run_clustering(duck_shop, "refit", as_of=REF, k=3, name="refit")
    family = _family(segs, "refit")
    assert sorted(s.name for s in family) == sorted(c["segment"] for c in three["clusters"])
    assert three["model_version"] == "refit@2"
    assert sum(len(_current(segs, s.name)) for s in family) == CUSTOMERS


def test_new_orders_move_the_customers_to_their_new_cluster(duck_shop):
    generate_and_load(duck_shop, customers=CUSTOMERS, seed=11, end=END, workspace="moves")
    result = run_clustering(duck_shop, "moves", as_of=REF, k=4, name="moves")
    segs = Segments(duck_shop, "moves")
    ws = segs.ws
    state = ModelStore(duck_shop, ws).get("moves").state
    frame, _ = _scaled(segs, state)
    never = frame[frame.frequency.fillna(0) == 0].head(5)  # never ordered: their orders change most
    ids = [int(i) for i in never.customer_id]
    rows = [
        (ext, n, dt.datetime(2026, 6, 1 + n, 12), 900.0 + n)
        for ext in never.external_id
        for n in range(12)
    ]
    events = pa.table(
        {
            "external_id": [r[0] for r in rows],
            "event_type": ["order"] * len(rows),
            "timestamp": pa.array([r[2] for r in rows], pa.timestamp("us")),
            "revenue": [r[3] for r in rows],
            "order_id": [f"{r[0]}-new-{r[1]}" for r in rows],
            "properties": ["{}"] * len(rows),
            "event_key": [f"order:{r[0]}-new-{r[1]}" for r in rows],
        }
    )
    segs.wh.load(ws.id, Batch(pa.table({"external_id": list(never.external_id)}), events))
    before = {c["segment"]: _current(segs, c["segment"]) & set(ids) for c in result["clusters"]}
    updated = segs.update_customers(ids, event_types=["order"], new_customers=False)
    assert {r.segment for r in updated} >= {c["segment"] for c in result["clusters"]}
    assert all(r.incremental for r in updated if r.segment in before)
    _, X = _scaled(segs, state, ids=ids)
    expected = restore(state).predict(X)
    after = {cid: s for s in before for cid in _current(segs, s) & set(ids)}
    by_index = {c["index"]: c["segment"] for c in result["clusters"]}
    assert [after[c] for c in sorted(ids)] == [by_index[int(e)] for e in expected]
    assert after != {cid: s for s, m in before.items() for cid in m}  # someone moved


def test_bad_input_is_refused_with_a_clear_message(duck_shop, tmp_path):
    with pytest.raises(InputError, match="unknown feature 'shoe_size'"):
        run_clustering(duck_shop, WS, as_of=REF, features=["shoe_size"], save=False)
    with pytest.raises(InputError, match=r"outside 2\.\.20"):
        run_clustering(duck_shop, WS, as_of=REF, k="30", save=False)
    with pytest.raises(InputError, match="kmeans or gmm"):
        run_clustering(duck_shop, WS, as_of=REF, method="dbscan", save=False)
    with Strata(_store(tmp_path)) as app:
        generate_and_load(app, customers=40, seed=2, end=END, workspace="tiny")
        with pytest.raises(InputError, match=r"needs at least 80 customers; .* has 40"):
            run_clustering(app, "tiny", as_of=REF)
        assert run_clustering(app, "tiny", as_of=REF, k=3, save=False)["k"] == 3
        # Nobody has a refund yet this early: the feature is dropped, with a note.
        early = ReferenceTime.of(dt.date(2024, 1, 2))
        with pytest.raises(InputError, match="none of the features varies"):
            run_clustering(app, "tiny", as_of=early, features=["monetary"], k=2, save=False)


def test_spark_assigns_as_numpy_predict_does(spark_url, tmp_path):
    # The assignment alone (segments on Spark run the same expression; see the
    # DuckDB/PostgreSQL tests for them): Spark queries take seconds each.
    with Strata(_store(tmp_path, spark_url)) as app:
        generate_and_load(app, customers=200, seed=5, end=END, workspace=WS)
        segs = Segments(app, WS)
        features = F.behaviour_features(segs, REF)
        frame = F.feature_frame(segs, features, REF, sample=None)
        scaling = F.fit_scaling(frame, features)
        X = F.scale_frame(frame, scaling)
        model = CustomerClusters(k=4).fit(X)
        state = {"method": "kmeans", "centers": model.centers_.tolist(), "scaling": scaling}
        got = assignment_table(segs.compiler(REF), state).to_pyarrow().to_pandas()
        got = got.set_index("customer_id").loc[frame.customer_id]
        assert len(got) == 200
        assert (got["index"].to_numpy() == model.predict(X)).all()
        distance = np.sqrt(((X - model.centers_[model.labels_]) ** 2).sum(axis=1))
        np.testing.assert_allclose(got["distance"].to_numpy(), distance, rtol=1e-6, atol=1e-6)


@parametrize_with_checks([CustomerClusters(k=3, n_init=1)])
def test_the_estimator_passes_scikit_learns_checks(estimator, check):
    check(estimator)
