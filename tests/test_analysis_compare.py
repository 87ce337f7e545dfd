"""Segments side by side (KPIs and box plots of a size metric), worked out by hand on
every backend; then the RFM segments of Online Retail against pandas reading the CSV.

The shop: ten customers ``c1`` … ``c10`` (ids 1 … 10), reference time 2024-06-30 (its
end), revenue period 2024-01-01 … 2024-06-30. ICP: industry Software (weight 1) and
company size 10–100 (weight 1), so a score is 0, 50 or 100.

====  =====  ========  ====  ===  ===============================  ======  ======  ====
cust  plan   industry  size  ICP  orders (+) / refunds (−)          period  orders  days
====  =====  ========  ====  ===  ===============================  ======  ======  ====
c1    pro    Software  10    100  +300 03-01, +100 06-20            400     2       10
c2    pro    Retail    20    50   +50 01-10, −50 01-15              0       1       172
c3    pro    Software  200   50   +1000 06-29                       1000    1       1
c4    pro    Software  35    100  +200 2023-12-01 (before)          0       0       212
c5    basic  Retail    1     0    +30 05-31                         30      1       30
c6    basic  Software  —     50   none                              0       0       —
c7    basic  Retail    3     0    +20 06-01, +20 06-15              40      2       15
c8    free   Retail    2     0    none                              0       0       —
c9    free   —         5     0    +70 04-01                         70      1       90
c10   free   Software  1000  50   +500 06-30 12:00, +999 07-02      500     1       0
====  =====  ========  ====  ===  ===============================  ======  ======  ====

(days: days since the last order ever, to 2024-06-30; c10's order of 07-02 is after the
reference.) Base: revenue 2,040, 9 orders worth 2,090. High value: the top ceil(10/5)
= 2 by period revenue are c3 (1,000) and c10 (500): revenue ≥ 500 and > 0.

Segments (rules evaluated at the reference): Pro {1–4}, Basic {5, 6, 7}, Free {8, 9,
10}, Small (size < 10) {5, 7, 8, 9}, Nobody (empty).
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from pydantic import ValidationError

from strata.analysis.base import REGISTRY, Analyst
from strata.analysis.compare import CompareParams, compare
from strata.context import Strata
from strata.errors import InputError, NotFound
from strata.segments.engine import Segments, set_icp
from strata.segments.icp import parse_config as parse_icp
from strata.segments.nodes import SegmentSpec, parse_rule
from strata.segments.reference import ReferenceTime
from strata.warehouse import Batch
from tests.conftest import RETAIL_RFM_DAYS
from tests.test_segment_rules import EVENT_SCHEMA, _table, open_backend

REF = "2024-06-30"
SINCE, UNTIL = dt.date(2024, 1, 1), dt.date(2024, 6, 30)
NAN = float("nan")
# number: plan, industry, company size
PEOPLE = {
    1: ("pro", "Software", 10),
    2: ("pro", "Retail", 20),
    3: ("pro", "Software", 200),
    4: ("pro", "Software", 35),
    5: ("basic", "Retail", 1),
    6: ("basic", "Software", None),
    7: ("basic", "Retail", 3),
    8: ("free", "Retail", 2),
    9: ("free", None, 5),
    10: ("free", "Software", 1000),
}
MONEY = [
    (1, "order", "2024-03-01 10:00", 300.0),
    (1, "order", "2024-06-20 10:00", 100.0),
    (2, "order", "2024-01-10 10:00", 50.0),
    (2, "refund", "2024-01-15 10:00", -50.0),
    (3, "order", "2024-06-29 10:00", 1000.0),
    (4, "order", "2023-12-01 10:00", 200.0),
    (5, "order", "2024-05-31 10:00", 30.0),
    (7, "order", "2024-06-01 10:00", 20.0),
    (7, "order", "2024-06-15 10:00", 20.0),
    (9, "order", "2024-04-01 10:00", 70.0),
    (10, "order", "2024-06-30 12:00", 500.0),
    (10, "order", "2024-07-02 10:00", 999.0),
]
ICP = {
    "criteria": [
        {"on": "industry", "in": ["Software"]},
        {"on": "company_size", "range": [10, 100]},
    ]
}
SEGMENTS = {
    "Pro": {"type": "attribute", "attribute": "plan", "op": "eq", "value": "pro"},
    "Basic": {"type": "attribute", "attribute": "plan", "op": "eq", "value": "basic"},
    "Free": {"type": "attribute", "attribute": "plan", "op": "eq", "value": "free"},
    "Small": {"type": "attribute", "attribute": "company_size", "op": "lt", "value": 10},
    "Nobody": {"type": "attribute", "attribute": "plan", "op": "eq", "value": "none"},
}


def shop_batch() -> Batch:
    numbers = sorted(PEOPLE)
    customers = pa.table(
        {
            "external_id": [f"c{n}" for n in numbers],
            "plan": [PEOPLE[n][0] for n in numbers],
            "industry": [PEOPLE[n][1] for n in numbers],
            "company_size": pa.array([PEOPLE[n][2] for n in numbers], pa.int64()),
        }
    )
    rows = [
        (f"c{n}", kind, dt.datetime.fromisoformat(at), amount, "EUR", f"e{i}", "{}", f"k{i}")
        for i, (n, kind, at, amount) in enumerate(MONEY)
    ]
    return Batch(customers=customers, events=_table(rows, EVENT_SCHEMA))


@pytest.fixture(scope="module", params=["duckdb", "postgres", "spark"])
def shop(request, tmp_path_factory):
    """``compare`` run once per backend; its answer and the app."""
    backend = request.param
    with open_backend(request, backend, tmp_path_factory.mktemp(f"compare-{backend}")) as app:
        ws = app.workspace(create=True)
        app.warehouse.load(ws.id, shop_batch())
        segs = Segments(app)
        set_icp(segs, parse_icp(ICP))
        ref = ReferenceTime.parse(REF)
        for name, rule in SEGMENTS.items():
            segs.save(SegmentSpec(name=name, rule=parse_rule(rule)), as_of=ref)
        an = Analyst(app, as_of=ref)
        answer = compare(an, since=SINCE, until=UNTIL)  # every segment, company_size
        yield {"backend": backend, "app": app, "an": an, "segs": segs, **answer}


def close(got, want) -> bool:
    if isinstance(want, float) and math.isnan(want):
        return got is None or pd.isna(got)
    return math.isclose(float(got), want, rel_tol=1e-9, abs_tol=1e-9)


def check(frame: pd.DataFrame, columns: list[str], expected: dict[str, tuple]) -> None:
    assert list(frame.columns) == ["segment", *columns]
    assert list(frame.segment) == list(expected)
    for row in frame.itertuples(index=False):
        for column, want in zip(columns, expected[row.segment], strict=True):
            got = getattr(row, column)
            ok = got == want if isinstance(want, str) else close(got, want)
            assert ok, (row.segment, column, got, want)


KPI_COLUMNS = [
    "customers",
    "share_of_customers",
    "average_icp_score",
    "metric",
    "average_metric",
    "total_revenue",
    "revenue_per_customer",
    "average_order_value",
    "orders_per_customer",
    "average_days_since_last_order",
    "high_value_rate",
]


def test_kpis_match_the_hand_computed_table(shop):
    check(
        shop["kpis"],
        KPI_COLUMNS,
        {
            # ICP 400 / 10; size 1,276 / 9 known; revenue 2,040; orders 2,090 / 9; days
            # (10 + 172 + 1 + 212 + 30 + 15 + 90 + 0) / 8 = 66.25; high c3, c10.
            "All customers": (10, 1.0, 40.0, "company_size", 1276 / 9, 2040.0, 204.0,
                              2090 / 9, 0.9, 66.25, 0.2),
            # ICP (100 + 50 + 50 + 100) / 4; size 265 / 4; revenue 400 + 1000; orders
            # 400 + 50 + 1000 over 4; days 395 / 4; high c3.
            "Pro": (4, 0.4, 75.0, "company_size", 66.25, 1400.0, 350.0, 362.5, 1.0, 98.75,
                    0.25),
            # c6 has no size: (1 + 3) / 2; c6 never ordered: days (30 + 15) / 2.
            "Basic": (3, 0.3, 50 / 3, "company_size", 2.0, 70.0, 70 / 3, 70 / 3, 1.0, 22.5,
                      0.0),
            "Free": (3, 0.3, 50 / 3, "company_size", 1007 / 3, 570.0, 190.0, 285.0, 2 / 3,
                     45.0, 1 / 3),
            # c5, c7, c8, c9 (overlaps Basic and Free): orders 1 + 2 + 0 + 1.
            "Small": (4, 0.4, 0.0, "company_size", 2.75, 140.0, 35.0, 35.0, 1.0, 45.0, 0.0),
            "Nobody": (0, 0.0, NAN, "company_size", NAN, 0.0, NAN, NAN, NAN, NAN, NAN),
        },
    )  # fmt: skip


DISTRIBUTION_COLUMNS = [
    "count",
    "mean",
    "min",
    "q1",
    "median",
    "q3",
    "max",
    "lower_whisker",
    "upper_whisker",
    "outliers",
]


def test_distribution_has_exact_quartiles_and_tukey_whiskers(shop):
    check(
        shop["distribution"],
        DISTRIBUTION_COLUMNS,
        {
            # 1 2 3 5 10 20 35 200 1000: ranks 2, 4, 6 are exact; IQR 32, fences −45 and
            # 83: whiskers 1 and 35, 200 and 1,000 beyond.
            "All customers": (9, 1276 / 9, 1.0, 3.0, 10.0, 35.0, 1000.0, 1.0, 35.0, 2),
            # 10 20 35 200: h = 0.75, 1.5, 2.25 → 17.5, 27.5, 35 + 0.25 × 165 = 76.25;
            # fences 17.5 − 88.125 and 76.25 + 88.125 = 164.375: 200 beyond.
            "Pro": (4, 66.25, 10.0, 17.5, 27.5, 76.25, 200.0, 10.0, 35.0, 1),
            # 1 3: h = 0.25, 0.5, 0.75.
            "Basic": (2, 2.0, 1.0, 1.5, 2.0, 2.5, 3.0, 1.0, 3.0, 0),
            # 2 5 1000: h = 0.5, 1, 1.5 → 3.5, 5, 502.5; fences −745 and 1,251.
            "Free": (3, 1007 / 3, 2.0, 3.5, 5.0, 502.5, 1000.0, 2.0, 1000.0, 0),
            # 1 2 3 5: 1.75, 2.5, 3.5; fences −0.875 and 6.125.
            "Small": (4, 2.75, 1.0, 1.75, 2.5, 3.5, 5.0, 1.0, 5.0, 0),
            "Nobody": (0, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, 0),
        },
    )


def test_quartiles_agree_with_pandas_linear_interpolation(shop):
    d = shop["distribution"].set_index("segment")
    sizes = pd.Series({n: p[2] for n, p in PEOPLE.items()}, dtype="float64")
    for name, members in {"Pro": [1, 2, 3, 4], "Free": [8, 9, 10], "Small": [5, 7, 8, 9]}.items():
        q = sizes[members].quantile([0.25, 0.5, 0.75]).to_list()
        assert d.loc[name, ["q1", "median", "q3"]].to_list() == q  # exactly, not nearly


def test_compare_is_registered_with_its_params(shop):
    spec = REGISTRY["compare"]
    assert spec.params is CompareParams and spec.subject == "segments"
    assert spec.summary.startswith("Segments side by side")
    assert CompareParams().metric == "company_size"


@pytest.mark.parametrize("shop", ["duckdb"], indirect=True)
def test_another_metric_a_chosen_list_and_no_icp(shop):
    segs, an = shop["segs"], shop["an"]
    config = segs.setting("icp")
    segs.set_setting("icp", None)
    try:
        got = compare(Analyst(shop["app"], as_of=an.ref), ["Free", "Pro"], metric="total_revenue")
    finally:
        segs.set_setting("icp", config)
    kpis, dist = got["kpis"], got["distribution"]
    assert list(kpis.segment) == ["All customers", "Free", "Pro"]
    assert kpis.average_icp_score.isna().all()
    assert set(kpis.metric) == {"total_revenue"}
    # Net revenue ever before the reference: Pro 400, 0, 1000, 200; no period given.
    assert close(kpis.set_index("segment").loc["Pro", "average_metric"], 400.0)
    pro = dist.set_index("segment").loc["Pro"]
    # 0 200 400 1000: 150, 300, 550.
    assert [pro.q1, pro["median"], pro.q3] == [150.0, 300.0, 550.0]
    assert close(kpis.set_index("segment").loc["Pro", "total_revenue"], 1600.0)


@pytest.mark.parametrize("shop", ["duckdb"], indirect=True)
def test_bad_input_is_refused_with_one_line(shop):
    an = shop["an"]
    with pytest.raises(InputError, match="'shoe_size' is neither a customer attribute nor"):
        compare(an, metric="shoe_size")
    with pytest.raises(InputError, match="metric 'plan' is string, not a number"):
        compare(an, metric="plan")
    with pytest.raises(InputError, match="metric is empty"):
        compare(an, metric=" ")
    with pytest.raises(NotFound, match="no segment 'Gold'"):
        compare(an, ["Pro", "Gold"])
    with pytest.raises(InputError, match="since 2024-06-30 is after until 2024-01-01"):
        compare(an, since=UNTIL, until=SINCE)
    with pytest.raises(ValidationError):
        CompareParams(metric="x" * 64)


# -- Online Retail against pandas ----------------------------------------------------------------
AS_OF = RETAIL_RFM_DAYS[-1]
R_SINCE, R_UNTIL = dt.date(2011, 1, 1), dt.date(2011, 12, 9)


@pytest.fixture(scope="module")
def invoices(retail_invoice_table) -> pd.DataFrame:
    """One row per invoice with a customer, from the CSV: customer, time, revenue, order?"""
    inv = retail_invoice_table.copy()
    return inv[inv["at"] < pd.Timestamp(AS_OF) + pd.Timedelta(days=1)]


@pytest.fixture(scope="module")
def retail(online_retail):
    with Strata(online_retail) as app:
        an = Analyst(app, as_of=ReferenceTime.parse(AS_OF))
        customers = an.customers().select("customer_id", "external_id").to_pyarrow().to_pandas()
        names = [s.name for s in an.segs.list()]
        members = {
            name: set(an.members(name).to_pyarrow().column("customer_id").to_pylist())
            for name in names
        }
        got = compare(an, metric="total_revenue", since=R_SINCE, until=R_UNTIL)
    external = customers.set_index("customer_id").external_id
    members = {name: {external[i] for i in ids} for name, ids in members.items()}
    return {"customers": set(customers.external_id), "members": members, **got}


def _sums(inv: pd.DataFrame) -> pd.DataFrame:
    inv = inv.assign(
        order=inv.is_order.astype(int), order_revenue=inv.revenue.where(inv.is_order, 0.0)
    )
    return inv.groupby("customer").agg(
        revenue=("revenue", "sum"), orders=("order", "sum"), order_revenue=("order_revenue", "sum")
    )


@pytest.mark.slow
def test_retail_rfm_segments_compare_like_pandas(retail, invoices):
    in_period = invoices[
        (invoices["at"] >= pd.Timestamp(R_SINCE))
        & (invoices["at"] < pd.Timestamp(R_UNTIL) + pd.Timedelta(days=1))
    ]
    period = _sums(in_period)
    ever = _sums(invoices).revenue  # the metric: the trait total_revenue
    kpis = retail["kpis"].set_index("segment")
    dist = retail["distribution"].set_index("segment")
    groups = {"All customers": retail["customers"], **retail["members"]}
    assert list(kpis.index) == list(groups) and len(groups) == 12
    for name, ids in groups.items():
        ids = sorted(ids)
        sub = period.reindex(ids).fillna(0.0)
        k = kpis.loc[name]
        assert k.customers == len(ids), name
        assert np.isclose(k.total_revenue, sub.revenue.sum(), rtol=1e-9, atol=1e-6), name
        if sub.orders.sum():
            aov = sub.order_revenue.sum() / sub.orders.sum()
            assert np.isclose(k.average_order_value, aov, rtol=1e-9), name
        if not ids:
            assert k.customers == 0 and pd.isna(k.orders_per_customer)
            assert dist.loc[name, "count"] == 0
            continue
        assert np.isclose(k.orders_per_customer, sub.orders.sum() / len(ids)), name
        # Every customer has a total revenue (0 without orders): all count.
        values = ever.reindex(ids).fillna(0.0)
        d = dist.loc[name]
        assert d["count"] == len(ids), name
        q = values.quantile([0.25, 0.5, 0.75]).to_numpy()
        assert np.allclose([d.q1, d["median"], d.q3], q, rtol=1e-9, atol=1e-6), name
        assert np.isclose(d["mean"], values.mean(), rtol=1e-9), name
        assert np.isclose(d["max"], values.max()) and np.isclose(d["min"], values.min()), name
        iqr = q[2] - q[0]
        low, high = q[0] - 1.5 * iqr, q[2] + 1.5 * iqr
        inside = values[(values >= low) & (values <= high)]
        assert np.isclose(d.lower_whisker, inside.min()), name
        assert np.isclose(d.upper_whisker, inside.max()), name
        assert d.outliers == len(values) - len(inside), name
    # Champions bring more per head than the base; Lost ones less.
    assert (
        kpis.loc["Champions", "revenue_per_customer"]
        > kpis.loc["All customers", "revenue_per_customer"]
    )
    assert (
        kpis.loc["Lost", "average_days_since_last_order"]
        > kpis.loc["Champions", "average_days_since_last_order"]
    )


@pytest.mark.slow
def test_retail_high_value_rate_follows_the_base_top_fifth(retail, invoices):
    in_period = invoices[
        (invoices["at"] >= pd.Timestamp(R_SINCE))
        & (invoices["at"] < pd.Timestamp(R_UNTIL) + pd.Timedelta(days=1))
    ]
    revenue = _sums(in_period).revenue.reindex(sorted(retail["customers"])).fillna(0.0)
    threshold = revenue.sort_values(ascending=False).iloc[math.ceil(len(revenue) / 5) - 1]
    high = set(revenue[(revenue >= threshold) & (revenue > 0)].index)
    kpis = retail["kpis"].set_index("segment")
    assert np.isclose(kpis.loc["All customers", "high_value_rate"], len(high) / len(revenue))
    for name, ids in retail["members"].items():
        if ids:
            rate = len(ids & high) / len(ids)
            assert np.isclose(kpis.loc[name, "high_value_rate"], rate), name
