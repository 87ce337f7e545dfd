"""Lifetime value: BG/NBD and Gamma-Gamma against the published CDNOW figures, the
warehouse summary against the published summary on every backend, and run_clv."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy.special import gammaln
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from strata.config import Settings
from strata.context import Strata
from strata.errors import InputError
from strata.ingest.pipeline import run_import
from strata.models.clv import (
    BetaGeoModel,
    GammaGammaModel,
    customer_lifetime_value,
    run_clv,
    summary_from_transactions,
    warehouse_summary,
)
from strata.models.store import ModelStore
from strata.segments.engine import Segments
from strata.segments.reference import ReferenceTime
from strata.warehouse import Batch
from tests.conftest import CDNOW_SAMPLE, DATA, _needs_data

SUMMARY = DATA / "cdnow" / "cdnow_customers_summary.csv"
WITH_SPEND = DATA / "cdnow" / "cdnow_customers_summary_with_transactions.csv"
CALIBRATION_END = dt.date(1997, 9, 30)
RFM = ["frequency", "recency", "T"]
#: Fader, Hardie & Lee (2005), "Counting your customers the easy way", CDNOW sample.
PAPER_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
#: Fader & Hardie (2013), "The Gamma-Gamma model of monetary value", same customers.
PAPER_GG = {"p": 6.25, "q": 3.74, "v": 15.44}


@pytest.fixture(scope="module")
def cdnow_summary() -> pd.DataFrame:
    _needs_data(SUMMARY)
    return pd.read_csv(SUMMARY)


@pytest.fixture(scope="module")
def bgnbd(cdnow_summary) -> BetaGeoModel:
    return BetaGeoModel().fit(cdnow_summary[RFM])


@pytest.fixture(scope="module")
def gamma_gamma() -> GammaGammaModel:
    _needs_data(WITH_SPEND)
    data = pd.read_csv(WITH_SPEND)
    repeat = data[data.x > 0]
    return GammaGammaModel().fit(repeat[["x", "zbar"]].to_numpy())


def sample_transactions() -> pd.DataFrame:
    """CDNOW_sample.txt as a transactions frame, with the sample id (the summary's ID)."""
    _needs_data(CDNOW_SAMPLE)
    raw = pd.read_csv(
        CDNOW_SAMPLE,
        sep=r"\s+",
        header=None,
        names=["master_id", "sample_id", "date", "cds", "revenue"],
        dtype={"master_id": str},
    )
    raw["timestamp"] = pd.to_datetime(raw["date"].astype(str), format="%Y%m%d")
    return raw


# -- the models against the published figures --------------------------------------------------
def test_bgnbd_matches_fader_hardie_lee_2005(bgnbd):
    for name, value in PAPER_BGNBD.items():
        assert bgnbd.params_[name] == pytest.approx(value, rel=1e-2), name
    assert bgnbd.log_likelihood_ == pytest.approx(-9582.4, abs=0.5)
    assert bgnbd.converged_
    assert bgnbd.n_customers_ == 2357


def test_bgnbd_conditional_expectation_matches_the_papers_worked_customer(bgnbd):
    # The paper's example: x = 2, t_x = 30.43, T = 38.86 expects 1.226 purchases in 39 weeks.
    customer = np.array([[2, 30.43, 38.86]])
    assert bgnbd.expected_purchases(39, customer)[0] == pytest.approx(1.226, abs=2e-3)


def test_gamma_gamma_matches_fader_hardie_note(gamma_gamma):
    for name, value in PAPER_GG.items():
        assert gamma_gamma.params_[name] == pytest.approx(value, rel=1e-2), name
    assert gamma_gamma.n_customers_ == 946
    # The note's population mean spend per transaction: p v / (q - 1) = $35.16.
    assert gamma_gamma.population_mean_spend() == pytest.approx(35.16, rel=1e-2)


def test_one_customers_log_likelihood_is_the_closed_form():
    r, alpha, a, b = 0.5, 3.0, 0.8, 2.0
    model = BetaGeoModel()
    model.params_ = {"r": r, "alpha": alpha, "a": a, "b": b}
    x, t_x, big_t = 3, 10.0, 20.0
    # L = B(a, b+x)/B(a, b) * G(r+x)/(G(r)) * alpha^r / (alpha+T)^(r+x)
    #   + B(a+1, b+x-1)/B(a, b) * G(r+x)/G(r) * alpha^r / (alpha+t_x)^(r+x)
    beta = math.gamma(a) * math.gamma(b) / math.gamma(a + b)
    common = math.gamma(r + x) / math.gamma(r) * alpha**r
    stay = math.gamma(a) * math.gamma(b + x) / math.gamma(a + b + x) / beta
    leave = math.gamma(a + 1) * math.gamma(b + x - 1) / math.gamma(a + b + x) / beta
    expected = math.log(
        stay * common / (alpha + big_t) ** (r + x) + leave * common / (alpha + t_x) ** (r + x)
    )
    assert model.log_likelihood([[x, t_x, big_t]])[0] == pytest.approx(expected, rel=1e-12)
    # Without repeat purchases: alive throughout, L = (alpha / (alpha + T))^r.
    only = r * math.log(alpha / (alpha + big_t))
    assert model.log_likelihood([[0, 0, big_t]])[0] == pytest.approx(only, rel=1e-12)


def test_gamma_gamma_log_likelihood_is_the_closed_form():
    p, q, v, x, m = 6.0, 4.0, 15.0, 3.0, 30.0
    model = GammaGammaModel()
    model.params_ = {"p": p, "q": q, "v": v}
    density = (
        gammaln(p * x + q)
        - gammaln(p * x)
        - gammaln(q)
        + q * math.log(v)
        + (p * x - 1) * math.log(m)
        + p * x * math.log(x)
        - (p * x + q) * math.log(v + x * m)
    )
    assert model.log_likelihood([[x, m]])[0] == pytest.approx(density, rel=1e-12)


# -- properties --------------------------------------------------------------------------------
def test_probability_alive_is_a_probability_and_one_without_repeat_purchases(bgnbd, cdnow_summary):
    p_alive = bgnbd.probability_alive(cdnow_summary[RFM])
    assert ((p_alive >= 0) & (p_alive <= 1)).all()
    assert (p_alive[cdnow_summary.frequency.to_numpy() == 0] == 1.0).all()
    # A repeat buyer long silent is less likely alive than one who bought lately.
    lately, silent = bgnbd.probability_alive([[5, 38, 39], [5, 5, 39]])
    assert lately > 0.8 > 0.01 > silent


def test_expected_purchases_grow_with_the_time_ahead(bgnbd, cdnow_summary):
    X = cdnow_summary[RFM].iloc[:200]
    ahead = [bgnbd.expected_purchases(t, X) for t in (0, 1, 4, 13, 52, 104)]
    assert (ahead[0] == 0).all()
    for shorter, longer in itertools.pairwise(ahead):
        assert (longer > shorter).all()
    # The fit reproduces the calibration period: the expected repeat purchases of customers
    # watched for their T are near the 2,457 the sample made (the paper's Figure 2 fit).
    expected = sum(bgnbd.expected_purchases_new(t) for t in cdnow_summary["T"])
    assert expected == pytest.approx(cdnow_summary.frequency.sum(), rel=0.02)


def test_clv_grows_with_the_horizon_and_no_discount_is_the_plain_sum(
    bgnbd, gamma_gamma, cdnow_summary
):
    data = pd.read_csv(WITH_SPEND).rename(columns={"x": "frequency", "t_x": "recency"})
    data["monetary_value"] = data["zbar"]
    data = data.iloc[:300]
    by_horizon = [
        customer_lifetime_value(bgnbd, gamma_gamma, data, h, time_unit="week") for h in (1, 6, 12)
    ]
    assert (by_horizon[0] > 0).all()
    assert (by_horizon[1] > by_horizon[0]).all() and (by_horizon[2] > by_horizon[1]).all()

    plain = customer_lifetime_value(
        bgnbd, gamma_gamma, data, 12, time_unit="week", discount_rate=0.0
    )
    weeks = 12 * (365.25 / 12) / 7
    undiscounted = bgnbd.expected_purchases(weeks, data[RFM]) * gamma_gamma.expected_spend(
        data[["frequency", "monetary_value"]]
    )
    np.testing.assert_allclose(plain, undiscounted, rtol=1e-10)
    assert (by_horizon[2] < plain).all()  # discounting lowers every value


def test_expected_spend_is_the_population_mean_without_repeat_purchases(gamma_gamma):
    spend = gamma_gamma.expected_spend([[0, 0.0], [0, 99.0], [1, 100.0], [20, 100.0]])
    assert spend[0] == spend[1] == pytest.approx(gamma_gamma.population_mean_spend())
    # The more purchases, the nearer the customer's own average.
    assert spend[0] < spend[2] < spend[3] < 100.0


def test_the_models_follow_the_estimator_contract(cdnow_summary):
    model = BetaGeoModel(penalizer=0.01)
    assert clone(model).get_params() == {"penalizer": 0.01, "tol": 1e-9, "max_iter": 1000}
    with pytest.raises(NotFittedError):
        model.probability_alive(cdnow_summary[RFM])
    with pytest.raises(NotFittedError):
        GammaGammaModel().expected_spend([[1, 10.0]])
    assert model.fit(cdnow_summary[RFM]) is model
    # A penalty pulls the parameters toward zero, so a different fit.
    assert model.params_["alpha"] < 4.0
    # Same data, same answer: the fit is deterministic.
    again = BetaGeoModel(penalizer=0.01).fit(cdnow_summary[RFM])
    assert again.params_ == model.params_


def test_bad_model_input_is_refused_with_a_clear_message():
    with pytest.raises(InputError, match="recency must be between 0 and T"):
        BetaGeoModel().fit([[1, 5.0, 4.0]])
    with pytest.raises(InputError, match="whole number"):
        BetaGeoModel().fit([[1.5, 1.0, 4.0]])
    with pytest.raises(InputError, match="expected 3 columns"):
        BetaGeoModel().fit([[1, 2.0]])
    with pytest.raises(InputError, match="no column 'T'"):
        BetaGeoModel().fit(pd.DataFrame({"frequency": [1], "recency": [1.0]}))
    with pytest.raises(InputError, match="finite"):
        BetaGeoModel().fit([[1, 1.0, float("nan")]])
    with pytest.raises(InputError, match="penalizer"):
        BetaGeoModel(penalizer=-1).fit([[1, 1.0, 2.0]])
    with pytest.raises(InputError, match="positive value"):
        GammaGammaModel().fit([[0, 0.0], [2, 10.0]])


# -- summaries ---------------------------------------------------------------------------------
def test_summary_from_transactions_rebuilds_the_published_cdnow_summary(cdnow_summary):
    tx = sample_transactions()
    summary = summary_from_transactions(
        tx, as_of=CALIBRATION_END, customer_id_col="sample_id", time_unit="week"
    )
    published = cdnow_summary.set_index("ID").sort_index()
    assert list(summary.index) == list(published.index)
    np.testing.assert_array_equal(summary.frequency, published.frequency)
    np.testing.assert_allclose(summary.recency, published.recency, atol=0.01)
    np.testing.assert_allclose(summary["T"], published["T"], atol=0.01)
    spend = pd.read_csv(WITH_SPEND).set_index("ID").sort_index()
    np.testing.assert_allclose(summary.monetary_value, spend.zbar, atol=0.01)


def test_same_day_purchases_are_one_and_later_ones_are_ignored():
    tx = pd.DataFrame(
        {
            "customer_id": [7, 7, 7, 7, 8],
            "timestamp": pd.to_datetime(
                [
                    "2024-01-01 09:00",
                    "2024-01-01 18:00",
                    "2024-01-05 00:00",
                    "2024-02-01 00:00",
                    "2024-01-03 00:00",
                ]
            ),
            "revenue": [4.0, 6.0, 3.0, 100.0, 9.0],
        }
    )
    summary = summary_from_transactions(tx, as_of=dt.date(2024, 1, 10), time_unit="day")
    assert summary.loc[7].tolist() == [1.0, 4.0, 9.0, 3.0]  # the 10 of the first day is excluded
    assert summary.loc[8].tolist() == [0.0, 0.0, 7.0, 0.0]
    weeks = summary_from_transactions(tx, as_of=dt.date(2024, 1, 10), time_unit="week")
    assert weeks.loc[7, "T"] == pytest.approx(9 / 7)
    with pytest.raises(InputError, match="unknown time unit 'month'"):
        summary_from_transactions(tx, as_of=dt.date(2024, 1, 10), time_unit="month")


def _import_sample(app) -> pd.DataFrame:
    """Import the CDNOW sample; the published summary keyed by warehouse customer_id."""
    _needs_data(CDNOW_SAMPLE)
    run_import(app, CDNOW_SAMPLE)
    ws = app.workspace()
    ids = app.warehouse.table(ws.id, "customers").select("customer_id", "external_id")
    ids = ids.to_pyarrow().to_pandas()
    sample_id = sample_transactions().groupby("master_id")["sample_id"].first()
    ids["ID"] = ids["external_id"].map(sample_id)
    published = pd.read_csv(SUMMARY).merge(pd.read_csv(WITH_SPEND)[["ID", "zbar"]], on="ID")
    return ids.merge(published, on="ID").sort_values("customer_id").reset_index(drop=True)


def _check_against_published(summary: pd.DataFrame, published: pd.DataFrame) -> None:
    assert len(summary) == len(published) == 2357
    assert summary.customer_id.tolist() == published.customer_id.tolist()
    np.testing.assert_array_equal(summary.frequency, published.frequency)
    np.testing.assert_allclose(summary.recency, published.recency, atol=0.01)
    np.testing.assert_allclose(summary["T"], published["T"], atol=0.01)
    np.testing.assert_allclose(summary.monetary_value, published.zbar, atol=0.01)


def test_warehouse_summary_of_imported_cdnow_is_the_published_one(app, bgnbd):
    published = _import_sample(app)
    ws = app.workspace()
    summary = warehouse_summary(
        app.warehouse, ws.id, ReferenceTime.of(CALIBRATION_END), time_unit="week"
    )
    _check_against_published(summary, published)
    fitted = BetaGeoModel().fit(summary[RFM])
    for name, value in bgnbd.params_.items():
        assert fitted.params_[name] == pytest.approx(value, rel=1e-3), name
    # In days, the same customers: recency and T are seven times larger.
    days = warehouse_summary(
        app.warehouse, ws.id, ReferenceTime.of(CALIBRATION_END), time_unit="day"
    )
    np.testing.assert_allclose(days["T"], summary["T"] * 7)
    assert (days["T"] == days["T"].round()).all()


def test_warehouse_summary_counts_orders_only_and_before_the_reference_instant(duck_app):
    ws = duck_app.workspace("shop", create=True)
    t0 = dt.datetime(2024, 3, 1, 10, 0)
    rows = [
        ("c1", "order", t0, 10.0),
        ("c1", "order", t0 + dt.timedelta(days=7, hours=5), 20.0),
        ("c1", "refund", t0 + dt.timedelta(days=8), -20.0),
        ("c1", "page_view", t0 + dt.timedelta(days=9), None),
        ("c1", "order", t0 + dt.timedelta(days=30), 99.0),  # after the reference instant
        ("c2", "order", t0 + dt.timedelta(days=2), 5.0),
    ]
    events = pa.table(
        {
            "external_id": [r[0] for r in rows],
            "event_type": [r[1] for r in rows],
            "timestamp": pa.array([r[2] for r in rows], pa.timestamp("us")),
            "revenue": [r[3] for r in rows],
            "currency": ["EUR"] * len(rows),
            "order_id": [f"o{i}" for i in range(len(rows))],
            "properties": [None] * len(rows),
            "event_key": [f"k{i}" for i in range(len(rows))],
        }
    )
    duck_app.warehouse.load(ws.id, Batch(pa.table({"external_id": ["c1", "c2"]}), events))
    ref = ReferenceTime.of(dt.date(2024, 3, 15))
    summary = warehouse_summary(duck_app.warehouse, ws.id, ref, time_unit="day")
    assert summary[["frequency", "recency", "T", "monetary_value"]].values.tolist() == [
        [1.0, 7.0, 14.0, 20.0],
        [0.0, 0.0, 12.0, 0.0],
    ]


def test_warehouse_summary_on_spark_is_the_published_one(spark_url, tmp_path):
    settings = Settings(
        home=tmp_path, database_url=f"sqlite:///{tmp_path / 'catalog.db'}", warehouse_url=spark_url
    )
    with Strata(settings) as app:
        published = _import_sample(app)
        summary = warehouse_summary(
            app.warehouse, app.workspace().id, ReferenceTime.of(CALIBRATION_END)
        )
        _check_against_published(summary, published)


# -- run_clv -----------------------------------------------------------------------------------
def test_run_clv_stores_the_model_and_five_kinds_of_predictions(app):
    _import_sample(app)
    ws = app.workspace()
    result = run_clv(app, ws, as_of=ReferenceTime.of(CALIBRATION_END))
    assert result["customers"] == 2357
    assert result["repeat_customers"] == 946
    for name, value in PAPER_BGNBD.items():
        assert result["bgnbd"][name] == pytest.approx(value, rel=1e-2)
    assert result["bgnbd"]["log_likelihood"] == pytest.approx(-9582.4, abs=0.5)
    for name, value in PAPER_GG.items():
        assert result["gamma_gamma"][name] == pytest.approx(value, rel=1e-2)
    assert (result["as_of"], result["time_unit"], result["horizon"]) == ("1997-09-30", "week", 12)
    assert result["model_version"] == "clv@1"
    top = result["top_customers"]
    assert len(top) == 10 and all(t["external_id"] for t in top)
    assert [t["clv"] for t in top] == sorted((t["clv"] for t in top), reverse=True)

    fitted = ModelStore(app, ws).latest("clv")
    assert fitted.kind == "clv" and fitted.model_version == "clv@1"
    assert fitted.state["bgnbd"] == pytest.approx(
        {k: result["bgnbd"][k] for k in ("r", "alpha", "a", "b")}
    )
    assert fitted.metrics["customers"] == 2357
    assert fitted.as_of == dt.datetime(1997, 10, 1)

    p = app.warehouse.table(ws.id, "predictions").to_pyarrow().to_pandas()
    assert p.groupby("prediction_type").size().to_dict() == {
        kind: 2357
        for kind in ("churn_risk", "clv", "expected_order_value", "expected_purchases", "p_alive")
    }
    assert set(p.model_version) == {"clv@1"}
    wide = p.pivot(index="customer_id", columns="prediction_type", values="value")
    np.testing.assert_allclose(wide.churn_risk, 1 - wide.p_alive)
    assert ((wide.p_alive >= 0) & (wide.p_alive <= 1)).all()
    best = wide.clv.idxmax()
    assert best == top[0]["customer_id"]
    assert wide.clv[best] == pytest.approx(top[0]["clv"], abs=0.01)
    clv_rows = p[p.prediction_type == "clv"].set_index("customer_id")
    np.testing.assert_allclose(clv_rows.confidence, wide.p_alive.loc[clv_rows.index])
    details = json.loads(clv_rows.details[best])
    assert {"frequency", "recency", "T", "p_alive", "expected_order_value"} <= set(details)
    # The unlabelled churn risk says what it comes from, too.
    risk = p[p.prediction_type == "churn_risk"].set_index("customer_id")
    assert json.loads(risk.details[best]) == details
    assert p[p.prediction_type == "p_alive"].details.isna().all()

    # VIPs: the top 20 % by CLV (ceil(0.2 × 2357) = 472), ties broken by customer number.
    assert result["segments"] == [{"segment": "VIPs", "customers": 472}]
    vips = Segments(app, ws)
    assert vips.get("VIPs").kind == "prediction"
    total, rows = vips.members("VIPs", limit=1000)
    members = {m["customer_id"] for m in rows}
    assert total == 472
    ranked = clv_rows.reset_index().sort_values(["value", "customer_id"],
                                                ascending=[False, True])  # fmt: skip
    assert members == set(ranked.customer_id[:472])

    # A second fit is a new version and replaces the scores rather than adding to them.
    again = run_clv(app, ws, as_of=ReferenceTime.of(CALIBRATION_END), time_unit="day")
    assert again["model_version"] == "clv@2"
    p = app.warehouse.table(ws.id, "predictions").to_pyarrow().to_pandas()
    assert len(p) == 5 * 2357 and set(p.model_version) == {"clv@2"}


def test_run_clv_refuses_what_it_cannot_fit(duck_app):
    _needs_data(CDNOW_SAMPLE)
    run_import(duck_app, CDNOW_SAMPLE)
    ws = duck_app.workspace()
    with pytest.raises(InputError, match="no orders before 1996-12-31"):
        run_clv(duck_app, ws, as_of=ReferenceTime.of(dt.date(1996, 12, 31)), save=False)
    with pytest.raises(InputError, match=r"only \d+ customers ordered on more than one day"):
        run_clv(duck_app, ws, as_of=ReferenceTime.of(dt.date(1997, 1, 3)), save=False)
    with pytest.raises(InputError, match="horizon must be a whole number of months"):
        run_clv(duck_app, ws, horizon=0, save=False)
    with pytest.raises(InputError, match="unknown time unit 'month'"):
        run_clv(duck_app, ws, time_unit="month", save=False)
    with pytest.raises(InputError, match="discount rate"):
        run_clv(duck_app, ws, discount_rate=-0.1, save=False)
    assert ModelStore(duck_app, ws).latest("clv") is None
