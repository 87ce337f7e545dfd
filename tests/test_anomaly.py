"""Anomalies: the weekly-seasonal robust detector, the daily series it reads from the
warehouse (segment sizes, revenue net of refunds, orders) and ``find_anomalies``.

The tiny shop below was worked out by hand:

* revenue: 1 June 150 (two orders, one a second before midnight), 2 June nothing,
  3 June 30 (an order at midnight) less a refund of 40 = -10 (one order), 4 June only a
  page view (0), 5 June 70, 6 June a page view: the last day with any data.
* segment 1 is evaluated as of 2 June ({1, 2, 3}, stamped at midnight 3 June), on 5 June
  at 15:00 ({1 … 5}), as of 7 June ({2}) and as of 9 June ({1, 2}: customer 1 rejoins);
  segment 2 as of 3 June ({4, 5}).
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from strata.catalog import Segment
from strata.config import Settings
from strata.context import Strata
from strata.errors import InputError, NotFound
from strata.ingest.generate import generate_business
from strata.models.anomaly import (
    WeeklyAnomalyDetector,
    daily_revenue,
    find_anomalies,
    flags,
    segment_sizes,
)
from strata.segments.reference import ReferenceTime
from strata.warehouse import Batch

D = dt.date


# -- a synthetic weekly-seasonal series ---------------------------------------------------------
def seasonal(weeks: int = 20, seed: int = 42) -> pd.Series:
    """Weekends sell three times as much as weekdays, with 5 % noise (seeded)."""
    rng = np.random.default_rng(seed)
    days = pd.date_range("2026-01-05", periods=7 * weeks, freq="D")  # starts on a Monday
    weekend = np.array([d.weekday() >= 5 for d in days])
    base = np.where(weekend, 3000.0, 1000.0)
    return pd.Series(base * rng.lognormal(0.0, 0.05, len(days)), index=days)


def naive_z(series: pd.Series, window: int = 28) -> pd.Series:
    """A plain z-score against the mean and standard deviation of the previous days."""
    before = series.shift(1).rolling(window, min_periods=window)
    return (series - before.mean()) / before.std()


def is_weekend(index: pd.DatetimeIndex) -> np.ndarray:
    return np.array([d.weekday() >= 5 for d in index])


SPIKE_DAY = pd.Timestamp("2026-04-28")  # a Tuesday, in week 17


def test_a_weekly_seasonal_series_without_anomalies_raises_no_flag():
    detector = WeeklyAnomalyDetector().fit(seasonal())
    assert detector.n_judged_ == 140 - 21  # the first three weeks lack history
    assert not detector.result_.anomaly.any()
    assert np.nanmax(np.abs(detector.result_.z)) < 3.5


def test_a_plain_z_score_cannot_tell_a_spike_from_an_ordinary_weekend():
    series = seasonal()
    series[SPIKE_DAY] *= 1.8
    plain = naive_z(series)
    weekend = is_weekend(series.index) & plain.notna().to_numpy()
    # Any plain threshold low enough to catch the spike flags every weekend day too.
    assert plain[SPIKE_DAY] < plain[weekend].min()
    assert (plain[weekend] >= plain[SPIKE_DAY]).all()
    # The robust z puts the spike far above every other day.
    robust = WeeklyAnomalyDetector().fit(series).result_.z
    assert robust[SPIKE_DAY] > 3.5
    assert np.nanmax(np.abs(robust.drop(SPIKE_DAY))) < 3.5


@pytest.mark.parametrize(("factor", "direction"), [(1.8, "spike"), (0.5, "drop")])
def test_an_injected_spike_or_drop_on_a_tuesday_is_the_one_flag(factor, direction):
    series = seasonal()
    clean = series.copy()
    series[SPIKE_DAY] *= factor
    found = flags(WeeklyAnomalyDetector().fit(series).result_, "daily revenue")
    assert len(found) == 1
    (flag,) = found
    assert (flag.date, flag.weekday, flag.direction) == ("2026-04-28", "Tuesday", direction)
    # The usual Tuesday is about 1000 and this one was about 1000 x factor.
    assert flag.expected == pytest.approx(1000.0, rel=0.06)
    assert flag.relative_change == pytest.approx(factor - 1, abs=0.08)
    assert flag.value == pytest.approx(clean[SPIKE_DAY] * factor, abs=0.01)
    assert abs(flag.z) >= 3.5
    assert flag.change == pytest.approx(flag.value - flag.expected, abs=0.02)


def test_the_sentence_names_the_metric_the_day_and_the_numbers():
    series = seasonal()
    series[SPIKE_DAY] = 2400.0
    (spike,) = flags(WeeklyAnomalyDetector().fit(series).result_, "daily revenue")
    usual = f"{spike.expected:,.0f}"
    ratio = 2400.0 / spike.expected
    assert spike.sentence == (
        f"Daily revenue on Tuesday 2026-04-28 was 2,400, {ratio:.1f}× the usual {usual} "
        f"for a Tuesday (robust z {spike.z:.1f})."
    )
    series[SPIKE_DAY] = 600.0
    (drop,) = flags(
        WeeklyAnomalyDetector().fit(series).result_, "size of segment 'At Risk'", segment="At Risk"
    )
    pct = round((1 - 600.0 / drop.expected) * 100)
    assert drop.sentence == (
        f"Segment 'At Risk' fell to 600 members on Tuesday 2026-04-28, {pct}% below the usual "
        f"{drop.expected:,.0f} for a Tuesday (robust z {drop.z:.1f})."
    )
    assert drop.segment == "At Risk" and drop.metric == "size of segment 'At Risk'"


def test_days_with_too_little_history_are_not_judged():
    series = seasonal(weeks=4)
    series.iloc[10] *= 3  # in the second week: only one earlier week to compare with
    result = WeeklyAnomalyDetector(min_weeks=3).fit(series).result_
    assert not result.judged.iloc[:21].any()
    assert result.judged.iloc[21:].all()
    assert not result.anomaly.any()
    assert result.z.iloc[:21].isna().all()


def test_a_flat_series_does_not_flag_a_small_move():
    days = pd.date_range("2026-01-05", periods=70, freq="D")
    flat = pd.Series(200.0, index=days)
    flat.iloc[-1] = 203.0  # 1.5 %: the spread floor keeps z small
    flat.iloc[-3] = 120.0  # 40 % below: a real drop
    result = WeeklyAnomalyDetector().fit(flat).result_
    assert abs(result.z.iloc[-1]) < 3.5
    assert result.anomaly.iloc[-3]
    assert result.anomaly.sum() == 1


def test_a_thin_count_series_is_judged_against_its_poisson_noise():
    # One order a weekday, 2.5 on weekend days: chance alone gives days of 4 or 5.
    rng = np.random.default_rng(4)
    days = pd.date_range("2026-01-05", periods=140, freq="D")
    counts = rng.poisson([1.0 if d.weekday() < 5 else 2.5 for d in days]).astype(float)
    series = pd.Series(counts, index=days)
    assert WeeklyAnomalyDetector().fit(series).result_.anomaly.sum() == 2
    assert WeeklyAnomalyDetector(noise_unit=1.0).fit(series).result_.anomaly.sum() == 0
    counts[100] = 12  # Wednesday 2026-04-15: far beyond chance
    result = WeeklyAnomalyDetector(noise_unit=1.0).fit(pd.Series(counts, index=days)).result_
    assert result.index[result.anomaly].tolist() == [pd.Timestamp("2026-04-15")]
    with pytest.raises(InputError, match="noise_unit must be a positive number"):
        WeeklyAnomalyDetector(noise_unit=0).fit(series)


def test_predict_judges_new_days_against_the_fitted_history():
    series = seasonal()
    history, new = series.iloc[:119], series.iloc[119:].copy()
    new.iloc[3] *= 2.0
    detector = WeeklyAnomalyDetector().fit(history)
    predicted = detector.predict(new)
    assert list(predicted.index) == list(new.index)
    assert predicted.tolist() == [i == 3 for i in range(len(new))]
    assert detector.score_samples(new).iloc[3] > 3.5


def test_the_detector_follows_the_estimator_contract():
    detector = WeeklyAnomalyDetector(weeks=0)  # stored, not validated, until fit
    assert detector.get_params()["weeks"] == 0
    with pytest.raises(InputError, match="weeks must be a whole number of at least 1"):
        detector.fit(seasonal())
    with pytest.raises(InputError, match=r"min_weeks \(5\) cannot exceed weeks \(4\)"):
        WeeklyAnomalyDetector(weeks=4, min_weeks=5).fit(seasonal())
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        WeeklyAnomalyDetector().predict(seasonal())
    with pytest.raises(InputError, match="pandas Series of daily values"):
        WeeklyAnomalyDetector().fit([1.0, 2.0])
    twice = pd.Series([1.0, 2.0], index=pd.to_datetime(["2026-01-05", "2026-01-05"]))
    with pytest.raises(InputError, match="more than one value for 2026-01-05"):
        WeeklyAnomalyDetector().fit(twice)


# -- the daily series in the warehouse ------------------------------------------------------------
def _events(rows: list[tuple[str, str, str, float | None]]) -> pa.Table:
    return pa.table(
        {
            "external_id": [r[0] for r in rows],
            "event_type": [r[1] for r in rows],
            "timestamp": pa.array(
                [dt.datetime.fromisoformat(r[2]) for r in rows], pa.timestamp("us")
            ),
            "revenue": pa.array([r[3] for r in rows], pa.float64()),
            "currency": ["EUR"] * len(rows),
            "order_id": [f"o{i}" for i in range(len(rows))],
            "properties": [json.dumps({}) for _ in rows],
            "event_key": [f"k{i}" for i in range(len(rows))],
        }
    )


SHOP_EVENTS = [
    ("c1", "order", "2024-06-01 10:00:00", 100.0),
    ("c2", "order", "2024-06-01 23:59:59", 50.0),
    ("c3", "order", "2024-06-03 00:00:00", 30.0),
    ("c1", "refund", "2024-06-03 12:00:00", -40.0),
    ("c2", "page_view", "2024-06-04 08:00:00", None),
    ("c4", "order", "2024-06-05 09:00:00", 70.0),
    ("c5", "page_view", "2024-06-06 18:00:00", None),
]
EVALUATIONS = [
    (1, "2024-06-03 00:00", ["c1", "c2", "c3"]),
    (2, "2024-06-04 00:00", ["c4", "c5"]),
    (1, "2024-06-05 15:00", ["c1", "c2", "c3", "c4", "c5"]),
    (1, "2024-06-08 00:00", ["c2"]),
    (1, "2024-06-10 00:00", ["c1", "c2"]),
]


def build_shop(app: Strata) -> int:
    ws = app.workspace("shop", create=True)
    people = pa.table({"external_id": ["c1", "c2", "c3", "c4", "c5"]})
    app.warehouse.load(ws.id, Batch(people, _events(SHOP_EVENTS)))
    c = app.warehouse.table(ws.id, "customers").to_pyarrow().to_pylist()
    ids = {r["external_id"]: r["customer_id"] for r in c}
    for segment, at, members in EVALUATIONS:
        table = pa.table({"customer_id": pa.array([ids[m] for m in members], pa.int64())})
        app.warehouse.apply_members(ws.id, segment, table, dt.datetime.fromisoformat(at))
    return ws.id


def sizes_by_day(app: Strata, ws_id: int, start: dt.date, end: dt.date) -> dict:
    frame = segment_sizes(app.warehouse, ws_id, [1, 2], start, end)
    out: dict[int, dict[str, int]] = {}
    for r in frame.itertuples():
        out.setdefault(r.segment_id, {})[r.date.isoformat()[5:]] = r.size
    return out


def check_shop_series(app: Strata, ws_id: int) -> None:
    assert sizes_by_day(app, ws_id, D(2024, 6, 1), D(2024, 6, 10)) == {
        1: {
            "06-02": 3,
            "06-03": 3,
            "06-04": 3,
            "06-05": 5,
            "06-06": 5,
            "06-07": 1,
            "06-08": 1,
            "06-09": 2,
            "06-10": 2,
        },
        2: {f"06-{d:02d}": 2 for d in range(3, 11)},
    }
    # A window starting after the changes carries the size in; one ending before a later
    # evaluation ignores it.
    assert sizes_by_day(app, ws_id, D(2024, 6, 6), D(2024, 6, 7)) == {
        1: {"06-06": 5, "06-07": 1},
        2: {"06-06": 2, "06-07": 2},
    }
    money = daily_revenue(app.warehouse, ws_id, D(2024, 5, 25), D(2024, 6, 30))
    assert [d.isoformat() for d in money.date] == [f"2024-06-0{d}" for d in range(1, 7)]
    assert money.revenue.tolist() == pytest.approx([150.0, 0.0, -10.0, 0.0, 70.0, 0.0])
    assert money.orders.tolist() == [2, 0, 1, 0, 1, 0]
    inner = daily_revenue(app.warehouse, ws_id, D(2024, 6, 2), D(2024, 6, 3))
    assert inner.revenue.tolist() == pytest.approx([0.0, -10.0])


def test_daily_sizes_and_revenue_are_computed_in_the_warehouse(app):
    check_shop_series(app, build_shop(app))


def test_daily_sizes_and_revenue_on_spark(spark_url, tmp_path):
    settings = Settings(
        home=tmp_path, database_url=f"sqlite:///{tmp_path / 'catalog.db'}", warehouse_url=spark_url
    )
    with Strata(settings) as app:
        check_shop_series(app, build_shop(app))


# -- find_anomalies end to end --------------------------------------------------------------------
END = D(2026, 6, 30)


@pytest.fixture
def business(duck_app) -> Strata:
    """800 generated customers over a year to 30 June 2026, big orders on Tuesday 16 June
    and a segment that halves on Thursday 25 June for a day."""
    app = duck_app
    ws = app.workspace("biz", create=True)
    app.warehouse.load(ws.id, generate_business(800, seed=3, end=END, years=1))
    extra = [(f"C{n:07d}", "order", f"2026-06-16 1{n}:00:00", 1500.0) for n in range(1, 5)]
    app.warehouse.load(
        ws.id, Batch(pa.table({"external_id": [e[0] for e in extra]}), _events(extra))
    )
    with app.session() as s:
        seg = Segment(workspace_id=ws.id, name="Newsletter", kind="static")
        s.add(seg)
        s.commit()
        seg_id = seg.id
    for at, n in (("2026-04-01", 100), ("2026-06-26", 60), ("2026-06-27", 100)):
        members = pa.table({"customer_id": pa.array(range(1, n + 1), pa.int64())})
        app.warehouse.apply_members(ws.id, seg_id, members, dt.datetime.fromisoformat(at))
    return app


def test_find_anomalies_names_an_added_revenue_spike_and_a_segment_drop(business):
    report = find_anomalies(business, "biz", as_of=ReferenceTime.of(END), days=42)
    assert (report["as_of"], report["days"]) == ("2026-06-30", 42)
    assert report["checked"] == [
        {"metric": "daily revenue", "days_judged": 42},
        {"metric": "daily orders", "days_judged": 42},
        {"metric": "size of segment 'Newsletter'", "days_judged": 42},
    ]
    found = {(a["metric"], a["date"]): a for a in report["anomalies"]}
    revenue = found[("daily revenue", "2026-06-16")]
    assert revenue["direction"] == "spike" and revenue["value"] > 6000
    assert revenue["sentence"].startswith("Daily revenue on Tuesday 2026-06-16 was ")
    size = found[("size of segment 'Newsletter'", "2026-06-25")]
    assert (size["value"], size["expected"], size["direction"]) == (60, 100, "drop")
    assert size["sentence"] == (
        "Segment 'Newsletter' fell to 60 members on Thursday 2026-06-25, 40% below the usual "
        f"100 for a Thursday (robust z {size['z']:.1f})."
    )
    # Newest first; nothing else in the generated data is out of the ordinary.
    dates = [a["date"] for a in report["anomalies"]]
    assert dates == sorted(dates, reverse=True)
    assert set(found) <= {
        ("daily revenue", "2026-06-16"),
        ("daily orders", "2026-06-16"),
        ("size of segment 'Newsletter'", "2026-06-25"),
    }


def test_find_anomalies_refuses_an_unknown_segment_and_a_short_window(business):
    with pytest.raises(NotFound, match="no segment named 'Nope' in workspace 'biz'"):
        find_anomalies(business, "biz", as_of=ReferenceTime.of(END), segments=["Nope"])
    with pytest.raises(InputError, match=r"--days must be a whole number of at least 14") as err:
        find_anomalies(business, "biz", as_of=ReferenceTime.of(END), days=7)
    assert "\n" not in str(err.value)
