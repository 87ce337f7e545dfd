"""Revenue contribution and the Pareto view, worked out by hand, on every backend;
then on Online Retail against pandas reading the CSV itself.

The shop: eight customers ``c1`` … ``c8`` (ids 1 … 8 in load order), the reference
time 2024-06-30 (its end), the period 2024-01-01 … 2024-06-30 (both days included).

====  =======  ===========================================  =======  ======  =========
cust  country  orders (+) and refunds (−)                    period   orders  order rev
====  =======  ===========================================  =======  ======  =========
c1    France   +50 2023-12-15 (before), +100 02-01, +300     400      2       400
               05-01
c2    France   +200 03-10, −50 03-20                         150      1       200
c3    Germany  +60 06-30 23:00, +999 07-01 (after the ref)   60       1       60
c4    Germany  +80 2023-11-01 (before), −30 04-01            −30      0       0
c5    Spain    +40 2024-01-01 00:00 (the first day)          40       1       40
c6    France   nothing                                        0        0       0
c7    Germany  +500 05-05                                    500      1       500
c8    Spain    +20 06-01, +20 06-02                          40       2       40
====  =======  ===========================================  =======  ======  =========

Whole base: 8 customers, revenue 1,160, 8 orders worth 1,240, 6 buyers (c1 c2 c3 c5
c7 c8). Segments (rules, evaluated at the reference time): France {c1, c2, c6},
Germany {c3, c4, c7}, Big spenders (net revenue ever ≥ 300: c1 450, c7 500) {c1, c7},
Nobody (an empty one).
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
from strata.analysis.revenue import ParetoParams, RevenueParams, pareto, revenue
from strata.context import Strata
from strata.errors import InputError, NotFound
from strata.segments.engine import Segments
from strata.segments.nodes import SegmentSpec, parse_rule
from strata.segments.reference import ReferenceTime
from strata.warehouse import Batch
from tests.conftest import RETAIL_RFM_DAYS
from tests.test_segment_rules import EVENT_SCHEMA, _table, open_backend

REF = "2024-06-30"
SINCE, UNTIL = dt.date(2024, 1, 1), dt.date(2024, 6, 30)
COUNTRIES = ["France", "France", "Germany", "Germany", "Spain", "France", "Germany", "Spain"]
# customer number, type, time, revenue
MONEY = [
    (1, "order", "2023-12-15 10:00", 50.0),
    (1, "order", "2024-02-01 10:00", 100.0),
    (1, "order", "2024-05-01 10:00", 300.0),
    (2, "order", "2024-03-10 10:00", 200.0),
    (2, "refund", "2024-03-20 10:00", -50.0),
    (3, "order", "2024-06-30 23:00", 60.0),
    (3, "order", "2024-07-01 10:00", 999.0),
    (4, "order", "2023-11-01 10:00", 80.0),
    (4, "refund", "2024-04-01 10:00", -30.0),
    (5, "order", "2024-01-01 00:00", 40.0),
    (7, "order", "2024-05-05 10:00", 500.0),
    (8, "order", "2024-06-01 10:00", 20.0),
    (8, "order", "2024-06-02 10:00", 20.0),
]
# A page view with revenue must not count: only orders and refunds are money.
OTHER = [(6, "page_view", "2024-03-01 10:00", 1000.0)]
SEGMENTS = {
    "France": {"type": "attribute", "attribute": "country", "op": "eq", "value": "France"},
    "Germany": {"type": "attribute", "attribute": "country", "op": "eq", "value": "Germany"},
    "Big spenders": {"type": "trait", "trait": "total_revenue", "op": "gte", "value": 300},
    "Nobody": {"type": "attribute", "attribute": "country", "op": "eq", "value": "Nowhere"},
}


def shop_batch() -> Batch:
    customers = pa.table(
        {
            "external_id": [f"c{i}" for i in range(1, 9)],
            "country": COUNTRIES,
        }
    )
    rows = [
        (
            f"c{n}",
            kind,
            dt.datetime.fromisoformat(at),
            amount,
            "EUR",
            f"e{i}",
            "{}",
            f"k{i}",
        )
        for i, (n, kind, at, amount) in enumerate(MONEY + OTHER)
    ]
    return Batch(customers=customers, events=_table(rows, EVENT_SCHEMA))


@pytest.fixture(scope="module", params=["duckdb", "postgres", "spark"])
def shop(request, tmp_path_factory):
    """Every analysis run once per backend; the answers and the app."""
    backend = request.param
    with open_backend(request, backend, tmp_path_factory.mktemp(f"revenue-{backend}")) as app:
        ws = app.workspace(create=True)
        app.warehouse.load(ws.id, shop_batch())
        segs = Segments(app)
        ref = ReferenceTime.parse(REF)
        for name, rule in SEGMENTS.items():
            segs.save(SegmentSpec(name=name, rule=parse_rule(rule)), as_of=ref)
        ids = {s.name: s.id for s in segs.list()}
        an = Analyst(app, as_of=ref)
        answers = {
            # Germany by its catalog id, and named twice: it is shown once.
            "revenue": revenue(
                an,
                ["France", str(ids["Germany"]), "Big spenders", "Nobody", "Germany"],
                since=SINCE,
                until=UNTIL,
            ),
            "pareto": pareto(an, since=SINCE, until=UNTIL, points=4),
            "pareto-france": pareto(an, "France", since=SINCE, until=UNTIL),
            "pareto-nobody": pareto(an, "Nobody", since=SINCE, until=UNTIL),
        }
        yield {"backend": backend, "app": app, "an": an, **answers}


def close(got, want) -> bool:
    if want is None or (isinstance(want, float) and math.isnan(want)):
        return got is None or pd.isna(got)
    return math.isclose(float(got), want, rel_tol=1e-9, abs_tol=1e-9)


def assert_rows(frame: pd.DataFrame, expected: list[dict]) -> None:
    assert len(frame) == len(expected)
    for row, want in zip(frame.to_dict(orient="records"), expected, strict=True):
        for key, value in want.items():
            assert close(row[key], value) if not isinstance(value, str) else row[key] == value, (
                row.get("segment", row),
                key,
                row[key],
                value,
            )


# -- revenue -----------------------------------------------------------------------------------
def test_revenue_per_segment_matches_the_hand_computed_table(shop):
    nan = float("nan")
    assert_rows(
        shop["revenue"],
        [
            # 1,160 / 8 = 145 per customer; order revenue 1,240 / 8 orders = 155.
            dict(segment="All customers", customers=8, share_of_customers=1.0, revenue=1160.0,
                 share_of_revenue=1.0, revenue_index=1.0, revenue_per_customer=145.0, orders=8,
                 average_order_value=155.0, orders_per_customer=1.0, buyers=6),
            # 400 + 150 + 0 = 550; 550 / 1160 = 0.474138; / (3/8) = 1.264368; (400 + 200) / 3.
            dict(segment="France", customers=3, share_of_customers=0.375, revenue=550.0,
                 share_of_revenue=550 / 1160, revenue_index=550 / 1160 / 0.375,
                 revenue_per_customer=550 / 3, orders=3, average_order_value=200.0,
                 orders_per_customer=1.0, buyers=2),
            # 60 − 30 + 500 = 530; orders 60 + 500 over 2.
            dict(segment="Germany", customers=3, share_of_customers=0.375, revenue=530.0,
                 share_of_revenue=530 / 1160, revenue_index=530 / 1160 / 0.375,
                 revenue_per_customer=530 / 3, orders=2, average_order_value=280.0,
                 orders_per_customer=2 / 3, buyers=2),
            # c1 400 + c7 500 (overlapping France and Germany).
            dict(segment="Big spenders", customers=2, share_of_customers=0.25, revenue=900.0,
                 share_of_revenue=900 / 1160, revenue_index=900 / 1160 / 0.25,
                 revenue_per_customer=450.0, orders=3, average_order_value=300.0,
                 orders_per_customer=1.5, buyers=2),
            dict(segment="Nobody", customers=0, share_of_customers=0.0, revenue=0.0,
                 share_of_revenue=0.0, revenue_index=nan, revenue_per_customer=nan, orders=0,
                 average_order_value=nan, orders_per_customer=nan, buyers=0),
        ],
    )  # fmt: skip
    assert list(shop["revenue"].columns) == [
        "segment",
        "customers",
        "share_of_customers",
        "revenue",
        "share_of_revenue",
        "revenue_index",
        "revenue_per_customer",
        "orders",
        "average_order_value",
        "orders_per_customer",
        "buyers",
    ]


@pytest.mark.parametrize("shop", ["duckdb"], indirect=True)
def test_revenue_without_a_list_or_period_and_pareto_of_a_quiet_period(shop):
    got = revenue(shop["an"])
    assert list(got.segment) == ["All customers", "France", "Germany", "Big spenders", "Nobody"]
    # All time before the reference: + c1's 50 and c4's 80 of 2023; c3's 999 is after it.
    assert close(got.revenue.iloc[0], 1160.0 + 50 + 80)
    assert list(got.orders) == [10, 4, 3, 4, 0]
    # A period without money: France's three members still count, with nothing to share.
    quiet = pareto(shop["an"], "France", since=dt.date(2024, 6, 29), until=UNTIL, points=3)
    assert list(quiet["curve"].customers) == [1, 2, 3]
    assert list(quiet["curve"].revenue) == [0.0, 0.0, 0.0]
    assert quiet["curve"].revenue_share.isna().all()
    assert quiet["summary"].customers.iloc[0] == 3 and pd.isna(quiet["summary"].gini.iloc[0])


def test_revenue_is_registered_with_its_params(shop):
    spec = REGISTRY["revenue"]
    assert spec.params is RevenueParams and spec.subject == "segments"
    assert spec.summary.startswith("Revenue contribution per segment")
    tables = spec.run(shop["an"], RevenueParams(segments=["Nobody"], since=SINCE, until=UNTIL))
    assert list(tables) == ["revenue"]
    assert list(tables["revenue"].segment) == ["All customers", "Nobody"]


# -- pareto ------------------------------------------------------------------------------------
def test_pareto_curve_of_the_base_matches_the_hand_computed_one(shop):
    # Ranked: c7 500, c1 400, c2 150, c3 60, c5 40, c8 40 (ids break the tie), c6 0, c4 −30.
    curve = shop["pareto"]["curve"]
    assert list(curve.customer_share) == [0.25, 0.5, 0.75, 1.0]
    assert list(curve.customers) == [2, 4, 6, 8]
    assert np.allclose(curve.revenue, [900.0, 1110.0, 1190.0, 1160.0])
    # Refunds at the end take the share back down from 1190 / 1160 to 1.
    assert np.allclose(curve.revenue_share, [900 / 1160, 1110 / 1160, 1190 / 1160, 1.0])


def test_pareto_summary_of_the_base(shop):
    s = shop["pareto"]["summary"].iloc[0]
    assert s.customers == 8 and close(s.revenue, 1160.0)
    assert close(s.top_20_percent_revenue_share, 900 / 1160)  # ceil(8 / 5) = 2 customers
    # 80 % of 1,160 is 928: 500, 900, then 1,050 reaches it.
    assert s.customers_for_80_percent_revenue == 3
    # Ascending −30, 0, 40, 40, 60, 150, 400, 500: Σ i·x = 8,250;
    # 2 × 8,250 / (8 × 1,160) − 9 / 8 = 0.653017 (Σ|xi − xj| over pairs 6,060 / (64 × 145)).
    assert close(s.gini, 6060 / 9280)


def test_pareto_of_a_segment_with_fewer_customers_than_points(shop):
    curve, s = shop["pareto-france"]["curve"], shop["pareto-france"]["summary"].iloc[0]
    # c1 400, c2 150, c6 0; ceil(3k / 20): k 1–6 → 1, 7–13 → 2, 14–20 → 3.
    assert len(curve) == 20
    assert list(curve.customers) == [1] * 6 + [2] * 7 + [3] * 7
    assert np.allclose(curve.revenue, [400.0] * 6 + [550.0] * 14)
    assert close(curve.customer_share.iloc[0], 0.05)
    assert close(s.top_20_percent_revenue_share, 400 / 550)
    assert s.customers_for_80_percent_revenue == 2  # 400 < 440 ≤ 550
    # 0, 150, 400: pairs 150 + 400 + 250 = 800 over 3² × 550 / 3 = 1,650.
    assert close(s.gini, 800 / 1650)


def test_pareto_of_an_empty_segment_is_empty(shop):
    curve, summary = shop["pareto-nobody"]["curve"], shop["pareto-nobody"]["summary"]
    assert curve.empty and list(curve.columns) == [
        "customer_share",
        "customers",
        "revenue",
        "revenue_share",
    ]
    s = summary.iloc[0]
    assert s.customers == 0 and s.revenue == 0
    assert pd.isna(s.gini) and pd.isna(s.customers_for_80_percent_revenue)


def test_pareto_is_registered_with_its_params(shop):
    spec = REGISTRY["pareto"]
    assert spec.params is ParetoParams and spec.subject == "segment"
    assert "Pareto" in spec.summary
    assert ParetoParams().points == 20


# -- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize("shop", ["duckdb"], indirect=True)
def test_bad_input_is_refused_with_one_line(shop):
    an = shop["an"]
    with pytest.raises(NotFound, match="no segment 'Nope'"):
        revenue(an, ["France", "Nope"])
    with pytest.raises(NotFound, match="no segment 'Nope'"):
        pareto(an, "Nope")
    with pytest.raises(InputError, match="since 2024-06-30 is after until 2024-01-01"):
        revenue(an, since=UNTIL, until=SINCE)
    with pytest.raises(InputError, match="is after until"):
        pareto(an, since=UNTIL, until=SINCE)
    with pytest.raises(InputError, match="blank"):
        revenue(an, ["France", " "])
    with pytest.raises(InputError, match="points must be between 1 and 1000"):
        pareto(an, points=0)
    with pytest.raises(ValidationError):
        ParetoParams(points=5000)
    with pytest.raises(ValidationError):
        RevenueParams(segment="France")  # the field is ``segments``


# -- Online Retail against pandas ----------------------------------------------------------------
AS_OF = RETAIL_RFM_DAYS[-1]
R_SINCE, R_UNTIL = dt.date(2011, 3, 1), dt.date(2011, 11, 30)


@pytest.fixture(scope="module")
def invoices(retail_invoice_table) -> pd.DataFrame:
    """One row per invoice with a customer, from the CSV: customer, time, revenue, order?"""
    inv = retail_invoice_table.copy()
    return inv


@pytest.fixture(scope="module")
def retail(online_retail):
    with Strata(online_retail) as app:
        an = Analyst(app, as_of=ReferenceTime.parse(AS_OF))
        customers = an.customers().select("customer_id", "external_id").to_pyarrow().to_pandas()
        members = {
            s.name: set(an.members(s.name).to_pyarrow().column("customer_id").to_pylist())
            for s in an.segs.list()
        }
        answers = {
            "revenue": revenue(an, since=R_SINCE, until=R_UNTIL),
            "pareto": pareto(an, since=R_SINCE, until=R_UNTIL),
            "pareto-champions": pareto(an, "Champions", points=10),
        }
    external = customers.set_index("customer_id").external_id
    members = {name: {external[i] for i in ids} for name, ids in members.items()}
    return {"customers": set(customers.external_id), "members": members, **answers}


def _per_customer(invoices: pd.DataFrame, since=None, until=None) -> pd.DataFrame:
    inv = invoices[invoices["at"] < pd.Timestamp(AS_OF) + pd.Timedelta(days=1)]
    if since is not None:
        inv = inv[inv["at"] >= pd.Timestamp(since)]
    if until is not None:
        inv = inv[inv["at"] < pd.Timestamp(until) + pd.Timedelta(days=1)]
    inv = inv.assign(
        order=inv.is_order.astype(int), order_revenue=inv.revenue.where(inv.is_order, 0.0)
    )
    return inv.groupby("customer").agg(
        revenue=("revenue", "sum"), orders=("order", "sum"), order_revenue=("order_revenue", "sum")
    )


@pytest.mark.slow
def test_retail_revenue_per_rfm_segment_matches_pandas(retail, invoices):
    per = _per_customer(invoices, R_SINCE, R_UNTIL)
    got = retail["revenue"].set_index("segment")
    groups = {"All customers": retail["customers"], **retail["members"]}
    assert list(got.index) == list(groups)
    total = per.revenue.sum()
    for name, ids in groups.items():
        sub = per.reindex(sorted(ids)).fillna(0.0)
        row = got.loc[name]
        assert row.customers == len(ids), name
        assert np.isclose(row.revenue, sub.revenue.sum(), rtol=1e-9, atol=1e-6), name
        assert np.isclose(row.share_of_revenue, sub.revenue.sum() / total, rtol=1e-9), name
        assert row.orders == sub.orders.sum(), name
        assert row.buyers == (sub.orders > 0).sum(), name
        if sub.orders.sum():
            aov = sub.order_revenue.sum() / sub.orders.sum()
            assert np.isclose(row.average_order_value, aov, rtol=1e-9), name
    assert len(retail["customers"]) == 4_372
    assert 0 < got.loc["Champions"].share_of_customers < got.loc["Champions"].share_of_revenue


def _pandas_pareto(values: pd.Series, points: int) -> tuple[list[float], float, int, float]:
    x = values.sort_values(ascending=False).to_numpy()
    n, total = len(x), x.sum()
    cum = np.cumsum(x)
    counts = [math.ceil(n * k / points) for k in range(1, points + 1)]
    first80 = int(np.argmax(cum >= 0.8 * total)) + 1
    asc = np.sort(x)
    # Σ over pairs |xi − xj| = Σ (2i − n − 1)·x_(i) for values sorted ascending (i from 1).
    pairs = ((2 * np.arange(1, n + 1) - n - 1) * asc).sum()
    gini = pairs / (n * n * asc.mean())
    return [cum[c - 1] for c in counts], cum[math.ceil(n / 5) - 1] / total, first80, gini


@pytest.mark.slow
def test_retail_pareto_matches_pandas(retail, invoices):
    per = _per_customer(invoices, R_SINCE, R_UNTIL).revenue
    base = per.reindex(sorted(retail["customers"])).fillna(0.0)
    curve, top20, first80, gini = _pandas_pareto(base, 20)
    got = retail["pareto"]
    assert np.allclose(got["curve"].revenue, curve, rtol=1e-9)
    s = got["summary"].iloc[0]
    assert s.customers == len(base)
    assert np.isclose(s.top_20_percent_revenue_share, top20, rtol=1e-9)
    assert s.customers_for_80_percent_revenue == first80
    assert np.isclose(s.gini, gini, rtol=1e-9)
    assert 0.5 < s.gini < 1  # a shop lives off a few customers

    ever = _per_customer(invoices).revenue
    champions = ever.reindex(sorted(retail["members"]["Champions"])).fillna(0.0)
    curve, top20, first80, gini = _pandas_pareto(champions, 10)
    got = retail["pareto-champions"]
    assert np.allclose(got["curve"].revenue, curve, rtol=1e-9)
    s = got["summary"].iloc[0]
    assert s.customers_for_80_percent_revenue == first80
    assert np.isclose(s.gini, gini, rtol=1e-9)
