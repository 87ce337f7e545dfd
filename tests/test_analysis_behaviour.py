"""Behaviour analyses (event mix, purchase frequency, order gaps, heatmap, top products).

A six-customer shop is written out below; every expected figure was worked out by hand
from it and is written as a literal, on DuckDB, PostgreSQL and Spark. The reference
time is 2024-06-30 (its end): c2's order of 2024-07-01 is not known yet.
Then the same analyses on Online Retail against pandas reading the CSV itself.

The shop (weekday of each date in brackets; "France" is the segment: c1, c2, c3):

====  =======  ===========================================================================
cust  country  events
====  =======  ===========================================================================
c1    France   page_view 06-03 09:00 [Mon]; order o1a 06-03 09:15 (P1 2×10 "Mug",
               P2 1×5 "Pen"); order o1b 06-05 09:40 [Wed] (P1 1×10 "Mug"); page_view
               06-20 17:50; order o1c 06-20 18:00 [Thu] (P3 1×100 "Lamp"); refund r1
               06-22 10:00 [Sat] (line P1 -1×10)
c2    France   email_open 06-02 08:00 [Sun]; order o2a 06-03 09:05 [Mon] (P1 3×10 "Mug");
               order o2b 06-03 21:00 [Mon] (P2 2×5 "Pen (blue)"); order o2c 07-01
               (after the reference: P3 5×100)
c3    France   nothing
c4    Germany  order o4a 2024-01-10 12:00 [Wed] (P4 1×200 "Chair"); page_view 06-10 12:00;
               order o4b 06-10 12:30 [Mon] (P1 1×10 "Red mug", P4 1×200 "Chair")
c5    Spain    order o5z 2023-06-04 10:00 (P2 2×5 "Pen (blue)"); page_view 06-04 09:00
               and 09:05; order o5a 06-04 09:10 [Tue] (P2 4×5 "Pen (blue)")
c6    Spain    email_open 06-12 08:30; order o6a 06-12 08:45 [Wed] (P5 1×50 "Vase")
====  =======  ===========================================================================

Dates without a year are in 2024.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from strata.analysis.base import REGISTRY, Analyst
from strata.analysis.behaviour import (
    EventMixParams,
    HeatmapParams,
    OrderGapsParams,
    PurchaseFrequencyParams,
    TopProductsParams,
    event_mix,
    heatmap,
    order_gap_summary,
    order_gaps,
    purchase_frequency,
    top_products,
)
from strata.context import Strata
from strata.errors import InputError, NotFound
from strata.segments.engine import Segments
from strata.segments.nodes import SegmentSpec, parse_rule
from strata.segments.reference import ReferenceTime
from strata.warehouse import Batch
from tests.conftest import ONLINE_RETAIL, duckdb_settings
from tests.test_segment_rules import EVENT_SCHEMA, ITEM_SCHEMA, open_backend

REF = "2024-06-30"
COUNTRIES = {"c1": "France", "c2": "France", "c3": "France", "c4": "Germany"}
COUNTRIES |= {"c5": "Spain", "c6": "Spain"}

# customer, type, time, revenue, order id, lines (product, name, quantity, unit price)
# fmt: off
EVENTS: list[tuple] = [
    ("c1", "page_view", "2024-06-03 09:00", None, None, []),
    ("c1", "order", "2024-06-03 09:15", 25.0, "o1a", [("P1", "Mug", 2, 10.0), ("P2", "Pen", 1, 5.0)]),  # noqa: E501
    ("c1", "order", "2024-06-05 09:40", 10.0, "o1b", [("P1", "Mug", 1, 10.0)]),
    ("c1", "page_view", "2024-06-20 17:50", None, None, []),
    ("c1", "order", "2024-06-20 18:00", 100.0, "o1c", [("P3", "Lamp", 1, 100.0)]),
    ("c1", "refund", "2024-06-22 10:00", -10.0, "r1", [("P1", "Mug", -1, 10.0)]),
    ("c2", "email_open", "2024-06-02 08:00", None, None, []),
    ("c2", "order", "2024-06-03 09:05", 30.0, "o2a", [("P1", "Mug", 3, 10.0)]),
    ("c2", "order", "2024-06-03 21:00", 10.0, "o2b", [("P2", "Pen (blue)", 2, 5.0)]),
    ("c2", "order", "2024-07-01 10:00", 500.0, "o2c", [("P3", "Lamp", 5, 100.0)]),
    ("c4", "order", "2024-01-10 12:00", 200.0, "o4a", [("P4", "Chair", 1, 200.0)]),
    ("c4", "page_view", "2024-06-10 12:00", None, None, []),
    ("c4", "order", "2024-06-10 12:30", 210.0, "o4b", [("P1", "Red mug", 1, 10.0), ("P4", "Chair", 1, 200.0)]),  # noqa: E501
    ("c5", "order", "2023-06-04 10:00", 10.0, "o5z", [("P2", "Pen (blue)", 2, 5.0)]),
    ("c5", "page_view", "2024-06-04 09:00", None, None, []),
    ("c5", "page_view", "2024-06-04 09:05", None, None, []),
    ("c5", "order", "2024-06-04 09:10", 20.0, "o5a", [("P2", "Pen (blue)", 4, 5.0)]),
    ("c6", "email_open", "2024-06-12 08:30", None, None, []),
    ("c6", "order", "2024-06-12 08:45", 50.0, "o6a", [("P5", "Vase", 1, 50.0)]),
]
# fmt: on


def shop_batch() -> Batch:
    customers = pa.table({"external_id": list(COUNTRIES), "country": list(COUNTRIES.values())})
    events, items = [], []
    for i, (who, etype, at, revenue, order_id, lines) in enumerate(EVENTS):
        key = f"{etype}:{order_id}" if order_id else f"e:{i}"
        ts = dt.datetime.fromisoformat(at)
        events.append(
            {
                "external_id": who,
                "event_type": etype,
                "timestamp": ts,
                "revenue": revenue,
                "currency": "EUR" if revenue is not None else None,
                "order_id": order_id,
                "properties": json.dumps({}),
                "event_key": key,
            }
        )
        for n, (product, name, qty, price) in enumerate(lines):
            items.append(
                {
                    "event_key": key,
                    "line_no": n,
                    "product_id": product,
                    "product_name": name,
                    "quantity": float(qty),
                    "unit_price": price,
                }
            )
    return Batch(
        customers=customers,
        events=pa.Table.from_pylist(events, EVENT_SCHEMA),
        items=pa.Table.from_pylist(items, ITEM_SCHEMA),
    )


def country_is(name: str) -> dict:
    return {"type": "attribute", "attribute": "country", "op": "eq", "value": name}


@pytest.fixture(scope="module", params=["duckdb", "postgres", "spark"])
def shop(request, tmp_path_factory):
    """The shop on one backend, with segments "France" (c1–c3) and "Atlantis" (empty),
    both evaluated as of REF; an analyst reading it as of REF."""
    backend = request.param
    with open_backend(request, backend, tmp_path_factory.mktemp(backend)) as app:
        ws = app.workspace(create=True)
        app.warehouse.load(ws.id, shop_batch())
        segs = Segments(app)
        ref = ReferenceTime.parse(REF)
        for name in ("France", "Atlantis"):
            spec = SegmentSpec(name=name, rule=parse_rule(country_is(name)))
            segs.save(spec, as_of=ref)
        yield Analyst(app, as_of=ref)


# -- the small shop, every backend ---------------------------------------------------------------
def test_event_mix_sets_the_segment_next_to_the_base(shop):
    # France (c1, c2, c3; 3 members): 9 events known. Base: 18 (c2's July order is not).
    #   order      segment 3 (c1) + 2 (c2) = 5, by 2 members   base 5 + 2 + 2 + 1 = 10
    #   page_view  segment 2 (c1), 1 member                     base 2 + 1 + 2 = 5
    #   email_open segment 1 (c2)                               base 1 + 1 = 2
    #   refund     segment 1 (c1)                               base 1
    mix = event_mix(shop, "France")
    assert list(mix.event_type) == ["order", "page_view", "email_open", "refund"]
    assert list(mix.events) == [5, 2, 1, 1]
    assert mix.share_of_events.tolist() == pytest.approx([5 / 9, 2 / 9, 1 / 9, 1 / 9])
    assert list(mix.customers) == [2, 1, 1, 1]
    assert mix.events_per_customer.tolist() == pytest.approx([5 / 3, 2 / 3, 1 / 3, 1 / 3])
    assert list(mix.base_events) == [10, 5, 2, 1]
    assert mix.base_share.tolist() == pytest.approx([10 / 18, 5 / 18, 2 / 18, 1 / 18])


def test_purchase_frequency_counts_members_without_orders_in_zero(shop):
    # Orders known: c1 3, c2 2, c3 0, c4 2, c5 2, c6 1; with max_orders=3, 3 is "3+".
    # France: 0 → c3; 2 → c2; 3+ → c1.  Base: 0 → c3; 1 → c6; 2 → c2, c4, c5; 3+ → c1.
    # Through the registry, the segment given by its catalog id.
    france = shop.segment("France").id
    params = PurchaseFrequencyParams(as_of=REF, segment=str(france), max_orders=3)
    tables = REGISTRY["purchase-frequency"].run(shop, params)
    freq = tables["purchase_frequency"]
    assert list(freq.orders) == [0, 1, 2, 3]
    assert list(freq.label) == ["0", "1", "2", "3+"]
    assert list(freq.customers) == [1, 0, 1, 1]
    assert freq.share.tolist() == pytest.approx([1 / 3, 0, 1 / 3, 1 / 3])
    assert list(freq.base_customers) == [1, 1, 3, 1]
    assert freq.base_share.tolist() == pytest.approx([1 / 6, 1 / 6, 3 / 6, 1 / 6])


def test_order_gaps_histogram_and_exact_percentiles(shop):
    # Gaps in whole days between consecutive order dates:
    #   c1: 06-03 → 06-05 = 2, 06-05 → 06-20 = 15        (segment)
    #   c2: 06-03 09:05 → 06-03 21:00 = 0 (07-01 unknown) (segment)
    #   c4: 2024-01-10 → 06-10 = 21 + 29 + 31 + 30 + 31 + 10 = 152
    #   c5: 2023-06-04 → 2024-06-04 = 366 (a leap day between)
    # Segment [0, 2, 15]: mean 17/3, median 2, p25 at position 0.5 → 1.0, p75 at 1.5 → 8.5.
    # Base [0, 2, 15, 152, 366]: mean 535/5 = 107, median 15, p25 2, p75 152.
    tables = REGISTRY["order-gaps"].run(shop, OrderGapsParams(as_of=REF, segment="France"))
    gaps, summary = tables["gaps"], tables["summary"]
    assert list(tables) == ["gaps", "summary"]
    assert list(gaps.bucket) == [
        "0-7", "8-14", "15-30", "31-60", "61-90", "91-180", "181-365", "366+"
    ]  # fmt: skip
    assert list(gaps.gaps) == [2, 0, 1, 0, 0, 0, 0, 0]
    assert gaps.share.tolist() == pytest.approx([2 / 3, 0, 1 / 3, 0, 0, 0, 0, 0])
    assert list(gaps.base_gaps) == [2, 0, 1, 0, 0, 1, 0, 1]
    assert gaps.base_share.tolist() == pytest.approx([0.4, 0, 0.2, 0, 0, 0.2, 0, 0.2])
    assert gaps.max_days.iloc[-1] is pd.NA and int(gaps.min_days.iloc[-1]) == 366
    rows = summary.set_index("scope")
    assert list(summary.scope) == ["segment", "base"]
    assert rows.loc["segment", ["gaps", "customers_with_repeat"]].tolist() == [3, 2]
    assert rows.loc["base", ["gaps", "customers_with_repeat"]].tolist() == [5, 4]
    assert rows.loc["segment", ["mean", "median", "p25", "p75"]].tolist() == pytest.approx(
        [17 / 3, 2.0, 1.0, 8.5]
    )
    assert rows.loc["base", ["mean", "median", "p25", "p75"]].tolist() == pytest.approx(
        [107.0, 15.0, 2.0, 152.0]
    )


def test_heatmap_counts_orders_by_weekday_and_hour_within_the_span(shop):
    # Orders 2024-06-03 … 2024-06-20 (c4's January and c5's 2023 orders are outside):
    #   Mon 09h: o1a (c1) 09:15, o2a (c2) 09:05 → 2 events, 2 customers (both France)
    #   Mon 21h: o2b (c2);  Wed 09h: o1b (c1);  Thu 18h: o1c (c1)  → France
    #   Mon 12h: o4b (c4);  Tue 09h: o5a (c5);  Wed 08h: o6a (c6)  → base only
    # Segment total 5, base total 8.
    grid = heatmap(shop, "France", since=dt.date(2024, 6, 3), until=dt.date(2024, 6, 20))
    assert len(grid) == 7 * 24
    assert list(grid.day_of_week[:24]) == [0] * 24 and list(grid.hour[:24]) == list(range(24))
    cells = grid.set_index(["day_of_week", "hour"])
    seg = {k: int(v) for k, v in cells.events.items() if v}
    base = {k: int(v) for k, v in cells.base_events.items() if v}
    assert seg == {(0, 9): 2, (0, 21): 1, (2, 9): 1, (3, 18): 1}
    assert base == {(0, 9): 2, (0, 21): 1, (2, 9): 1, (3, 18): 1, (0, 12): 1, (1, 9): 1, (2, 8): 1}
    assert cells.loc[(0, 9), "customers"] == 2 and cells.loc[(0, 12), "customers"] == 0
    assert cells.loc[(0, 9), "day"] == "Monday" and cells.loc[(6, 0), "day"] == "Sunday"
    assert cells.loc[(0, 9), "share"] == pytest.approx(2 / 5)
    assert cells.loc[(0, 9), "base_share"] == pytest.approx(2 / 8)
    assert grid.share.sum() == pytest.approx(1.0)


def test_heatmap_of_every_event_for_an_empty_segment_has_zeros_beside_the_base(shop):
    # Every event 06-03 … 06-20: c1 5 (the refund of 06-22 is out), c2 2 (not the e-mail
    # of 06-02), c4 2, c5 3, c6 2 = 14; Wed 08h holds c6's e-mail and order.
    params = HeatmapParams(
        as_of=REF, segment="Atlantis", event="*", since="2024-06-03", until="2024-06-20"
    )
    grid = REGISTRY["heatmap"].run(shop, params)["heatmap"]
    assert int(grid.events.sum()) == 0 and float(grid.share.sum()) == 0.0
    assert int(grid.base_events.sum()) == 14
    assert int(grid.set_index(["day_of_week", "hour"]).loc[(2, 8), "base_events"]) == 2


def test_top_products_rank_segment_revenue_with_penetration_and_lift(shop):
    # France's order lines (refund lines do not count; o2c is unknown):
    #   P3 o1c 100                       → revenue 100, 1 order, 1 buyer (c1), quantity 1
    #   P1 o1a 20 + o1b 10 + o2a 30      → 60, 3 orders, 2 buyers, quantity 6
    #   P2 o1a 5 + o2b 10                → 15 (cut by limit=2)
    # Segment revenue 175; buyers in the segment 2 (c1, c2); in the base 5 (all but c3).
    # P3: bought by c1 only → penetration 1/2 vs 1/5, lift 2.5.
    # P1: c1, c2 (segment), c1, c2, c4 (base) → 2/2 vs 3/5, lift 5/3. Its stored lines are
    # named "Mug" four times (the refund's line too) and "Red mug" once: "Mug".
    top = top_products(shop, "France", limit=2)
    assert list(top.product_id) == ["P3", "P1"]
    assert list(top.product_name) == ["Lamp", "Mug"]
    assert list(top.orders) == [1, 3] and list(top.customers) == [1, 2]
    assert top.quantity.tolist() == pytest.approx([1, 6])
    assert top.revenue.tolist() == pytest.approx([100, 60])
    assert top.share_of_segment_revenue.tolist() == pytest.approx([100 / 175, 60 / 175])
    assert top.penetration_in_segment.tolist() == pytest.approx([0.5, 1.0])
    assert list(top.base_customers) == [1, 3]
    assert top.penetration_in_base.tolist() == pytest.approx([0.2, 0.6])
    assert top.lift.tolist() == pytest.approx([2.5, 5 / 3])


def test_top_products_of_the_whole_base(shop):
    # P4 200 + 200 = 400; P3 100; P1 20 + 10 + 30 + 10 = 70; P5 50; P2 5 + 10 + 10 + 20 = 45.
    # P2 is "Pen (blue)" on 3 lines, "Pen" on one. For the base every lift is 1.
    top = top_products(shop)
    assert list(top.product_id) == ["P4", "P3", "P1", "P5", "P2"]
    assert list(top.product_name) == ["Chair", "Lamp", "Mug", "Vase", "Pen (blue)"]
    assert top.revenue.tolist() == pytest.approx([400, 100, 70, 50, 45])
    assert top.quantity.tolist() == pytest.approx([2, 1, 7, 1, 9])
    assert list(top.orders) == [2, 1, 4, 1, 4]
    assert top.lift.tolist() == pytest.approx([1.0] * 5)
    assert top.share_of_segment_revenue.sum() == pytest.approx(1.0)


def test_an_empty_segment_gives_zeros_not_errors(shop):
    mix = event_mix(shop, "Atlantis")
    assert list(mix.event_type) == ["email_open", "order", "page_view", "refund"]
    assert mix.events.sum() == 0 and mix.share_of_events.sum() == 0
    assert list(mix.base_events) == [2, 10, 5, 1]
    assert top_products(shop, "Atlantis").empty
    summary = order_gap_summary(shop, "Atlantis").set_index("scope")
    assert summary.loc["segment", "gaps"] == 0 and np.isnan(summary.loc["segment", "median"])
    assert summary.loc["base", "median"] == 15.0


# -- bad input ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def duck(tmp_path_factory):
    home = tmp_path_factory.mktemp("bad-input")
    settings = duckdb_settings(home)
    with Strata(settings) as app:
        ws = app.workspace(create=True)
        app.warehouse.load(ws.id, shop_batch())
        yield Analyst(app, as_of=ReferenceTime.parse(REF))


def test_an_unknown_segment_is_not_found(duck):
    with pytest.raises(NotFound, match=r"no segment 'Nobody'.*strata segments list"):
        event_mix(duck, "Nobody")


def test_since_after_until_is_refused(duck):
    with pytest.raises(InputError, match=r"since 2024-06-10 is after until 2024-06-01"):
        order_gaps(duck, since=dt.date(2024, 6, 10), until=dt.date(2024, 6, 1))


def test_out_of_range_numbers_are_refused(duck):
    with pytest.raises(InputError, match="max_orders must be a whole number from 1 to 100"):
        purchase_frequency(duck, max_orders=0)
    with pytest.raises(InputError, match="limit must be a whole number from 1 to 500"):
        top_products(duck, limit=501)


def test_an_unknown_event_type_names_the_known_ones(duck):
    with pytest.raises(InputError) as err:
        heatmap(duck, event="purchase")
    assert str(err.value) == (
        "no events of type 'purchase' in this workspace; event types are: "
        "email_open, order, page_view, refund"
    )


def test_params_refuse_what_the_api_and_cli_would_refuse():
    with pytest.raises(ValueError, match="less than or equal to 500"):
        TopProductsParams(limit=1000)
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        EventMixParams(segments=["a"])
    for name in ("event-mix", "purchase-frequency", "order-gaps", "heatmap", "top-products"):
        assert REGISTRY[name].summary and REGISTRY[name].subject == "segment"


# -- Online Retail against pandas ----------------------------------------------------------------
RETAIL_AS_OF = "2011-12-10"


@pytest.fixture(scope="module")
def retail(online_retail):
    with Strata(online_retail) as app:
        yield Analyst(app, as_of=ReferenceTime.parse(RETAIL_AS_OF))


@pytest.fixture(scope="module")
def invoices() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The CSV's lines with a customer, and one row per invoice: what the importer makes."""
    lines = pd.read_csv(
        ONLINE_RETAIL, dtype={"InvoiceNo": str, "StockCode": str, "CustomerID": str}
    )
    lines = lines[lines.CustomerID.notna()].copy()
    lines["customer"] = lines.CustomerID.str.removesuffix(".0")
    lines["amount"] = lines.Quantity * lines.UnitPrice
    lines["refund"] = lines.InvoiceNo.str.startswith("C")
    lines["at"] = pd.to_datetime(lines.InvoiceDate)
    per = (
        lines.groupby(["refund", "InvoiceNo"])
        .agg(customer=("customer", "first"), at=("at", "min"), revenue=("amount", "sum"))
        .reset_index()
    )
    return lines, per


@pytest.mark.slow
def test_retail_event_mix_matches_the_csv(retail, invoices):
    _, per = invoices
    mix = event_mix(retail).set_index("event_type")
    assert int(mix.loc["order", "events"]) == int((~per.refund).sum())
    assert int(mix.loc["refund", "events"]) == int(per.refund.sum())
    assert int(mix.loc["order", "customers"]) == per[~per.refund].customer.nunique()
    assert int(mix.loc["refund", "customers"]) == per[per.refund].customer.nunique()
    assert mix.loc["order", "events_per_customer"] == pytest.approx(
        (~per.refund).sum() / per.customer.nunique()
    )


@pytest.mark.slow
def test_retail_purchase_frequency_matches_the_csv(retail, invoices):
    _, per = invoices
    counts = per[~per.refund].groupby("customer").size()
    counts = counts.reindex(per.customer.unique(), fill_value=0)  # refund-only customers: 0
    expected = counts.clip(upper=10).value_counts().reindex(range(11), fill_value=0)
    freq = purchase_frequency(retail)
    assert list(freq.customers) == expected.tolist()
    assert freq.loc[0, "customers"] > 0  # customers who only ever refunded


@pytest.mark.slow
def test_retail_order_gaps_and_median_match_the_csv(retail, invoices):
    _, per = invoices
    orders = per[~per.refund].copy()
    orders["day"] = orders["at"].dt.normalize()
    # The tie-break on equal times is the event id, but equal times give a gap of 0 either
    # way, so sorting by time alone gives the same gaps.
    orders = orders.sort_values(["customer", "at"], kind="mergesort")
    gaps = orders.groupby("customer")["day"].diff().dropna().dt.days.astype(int)
    edges = [-1, 7, 14, 30, 60, 90, 180, 365, np.inf]
    hist = pd.cut(gaps, edges).value_counts(sort=False).tolist()
    got = order_gaps(retail)
    assert got.gaps.tolist() == hist
    summary = order_gap_summary(retail).set_index("scope").loc["base"]
    assert summary.gaps == len(gaps)
    assert summary.customers_with_repeat == (orders.groupby("customer").size() > 1).sum()
    assert summary["mean"] == pytest.approx(gaps.mean())
    assert summary["median"] == pytest.approx(gaps.median())
    assert summary["p25"] == pytest.approx(np.percentile(gaps, 25))
    assert summary["p75"] == pytest.approx(np.percentile(gaps, 75))


@pytest.mark.slow
def test_retail_heatmap_of_orders_matches_invoice_dates(retail, invoices):
    _, per = invoices
    orders = per[~per.refund]
    expected = orders.groupby([orders["at"].dt.day_of_week, orders["at"].dt.hour]).size()
    grid = heatmap(retail).set_index(["day_of_week", "hour"])
    got = grid.events[grid.events > 0]
    assert {k: int(v) for k, v in got.items()} == {k: int(v) for k, v in expected.items()}
    assert int(grid.loc[(5, 12), "events"]) == 0  # the shop never sells on Saturdays


@pytest.mark.slow
def test_retail_top_products_match_the_csv(retail, invoices):
    lines, _ = invoices
    sold = lines[~lines.refund]
    revenue = sold.groupby("StockCode").amount.sum()
    ranked = revenue.reset_index().sort_values(
        ["amount", "StockCode"], ascending=[False, True], kind="mergesort"
    )
    top = top_products(retail, limit=10)
    assert list(top.product_id) == list(ranked.StockCode[:10])
    assert top.revenue.tolist() == pytest.approx(ranked.amount[:10].tolist(), rel=1e-9)
    first = top.iloc[0]
    mine = sold[sold.StockCode == first.product_id]
    assert first.customers == mine.customer.nunique()
    assert first.orders == mine.InvoiceNo.nunique()
    assert first.quantity == pytest.approx(mine.Quantity.sum())
    # Names: the one most stored lines of the product carry (refunds' lines too), ties
    # alphabetically.
    for pid, name in zip(top.product_id, top.product_name, strict=True):
        counts = lines[lines.StockCode == pid].Description.value_counts().sort_index()
        assert name == counts.sort_values(ascending=False, kind="mergesort").index[0]
    assert first.penetration_in_base == pytest.approx(
        mine.customer.nunique() / sold.customer.nunique()
    )
