"""Journeys: paths of event types, on a small hand-written shop and on Online Retail.

The shop (all in June 2024, reference 2024-06-30; segment "A" is j1, j2, j3 and j6):

====  ===  =================================================================================
cust  seg  events in order                                  collapsed (repeats as one step)
====  ===  =================================================================================
j1    A    page 06-01 10:00, page 10:05, cart 10:10,         page, cart, order, page, order
           order 10:20, page 06-02 09:00, order 06-03 09:00
j2    A    page 06-01 11:00, cart 11:05, order 11:10,        page, cart, order, email
           email 06-05 08:00 (and an order on 07-02: after the reference)
j3    A    email 06-02 08:00, page 08:30, cart 08:30         email, page, cart
           (page and cart at the same instant: page is
           loaded first, so its event id breaks the tie)
j4    B    page 06-01 12:00, order 12:10                     page, order
j5    B    order 06-04 10:00, order 06-05 10:00,             order, refund
           refund 06-06 10:00
j6    A    nothing
====  ===  =================================================================================
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa
import pytest

from strata.analysis.base import REGISTRY, Analyst
from strata.analysis.journeys import JourneysParams, journeys
from strata.context import Strata
from strata.errors import InputError, NotFound
from strata.segments.engine import Segments
from strata.segments.nodes import SegmentSpec, parse_rule
from strata.segments.reference import ReferenceTime
from strata.warehouse import Batch
from tests.conftest import ONLINE_RETAIL, duckdb_settings
from tests.test_segment_rules import open_backend

REF = "2024-06-30"
GROUPS = {"j1": "A", "j2": "A", "j3": "A", "j4": "B", "j5": "B", "j6": "A"}
EVENTS: list[tuple[str, str, str]] = [
    ("j1", "page", "2024-06-01 10:00"),
    ("j1", "page", "2024-06-01 10:05"),
    ("j1", "cart", "2024-06-01 10:10"),
    ("j1", "order", "2024-06-01 10:20"),
    ("j1", "page", "2024-06-02 09:00"),
    ("j1", "order", "2024-06-03 09:00"),
    ("j2", "page", "2024-06-01 11:00"),
    ("j2", "cart", "2024-06-01 11:05"),
    ("j2", "order", "2024-06-01 11:10"),
    ("j2", "email", "2024-06-05 08:00"),
    ("j2", "order", "2024-07-02 08:00"),
    ("j3", "email", "2024-06-02 08:00"),
    ("j3", "page", "2024-06-02 08:30"),
    ("j3", "cart", "2024-06-02 08:30"),
    ("j4", "page", "2024-06-01 12:00"),
    ("j4", "order", "2024-06-01 12:10"),
    ("j5", "order", "2024-06-04 10:00"),
    ("j5", "order", "2024-06-05 10:00"),
    ("j5", "refund", "2024-06-06 10:00"),
]


def journey_batch() -> Batch:
    customers = pa.table({"external_id": list(GROUPS), "industry": list(GROUPS.values())})
    rows = [
        {
            "external_id": who,
            "event_type": etype,
            "timestamp": dt.datetime.fromisoformat(at),
            "revenue": -1.0 if etype == "refund" else (1.0 if etype == "order" else None),
            "order_id": f"o{i}" if etype in ("order", "refund") else None,
            "event_key": f"e{i}",
        }
        for i, (who, etype, at) in enumerate(EVENTS)
    ]
    schema = pa.schema(
        [
            ("external_id", pa.string()),
            ("event_type", pa.string()),
            ("timestamp", pa.timestamp("us")),
            ("revenue", pa.float64()),
            ("order_id", pa.string()),
            ("event_key", pa.string()),
        ]
    )
    return Batch(customers=customers, events=pa.Table.from_pylist(rows, schema))


@pytest.fixture(scope="module", params=["duckdb", "postgres", "spark"])
def shop(request, tmp_path_factory):
    """The shop on one backend with segment "A" evaluated as of REF; an analyst as of REF."""
    backend = request.param
    with open_backend(request, backend, tmp_path_factory.mktemp(backend)) as app:
        ws = app.workspace(create=True)
        app.warehouse.load(ws.id, journey_batch())
        ref = ReferenceTime.parse(REF)
        rule = {"type": "attribute", "attribute": "industry", "op": "eq", "value": "A"}
        Segments(app).save(SegmentSpec(name="A", rule=parse_rule(rule)), as_of=ref)
        yield Analyst(app, as_of=ref)


def rows(frame: pd.DataFrame, *columns: str) -> list[tuple]:
    return [tuple(r) for r in frame[list(columns)].itertuples(index=False)]


# -- the small shop, every backend ---------------------------------------------------------------
def test_first_steps_of_a_segment_with_repeats_collapsed(shop):
    # Collapsed, first 3 steps: j1 page cart order; j2 page cart order; j3 email page cart
    # (the tie at 08:30 broken by event id); j6 has no journey. 3 members with one.
    out = journeys(shop, "A", steps=3)
    assert list(out) == ["links", "nodes", "paths"]
    assert rows(out["paths"], "path", "steps", "customers") == [
        ("page → cart → order", 3, 2),
        ("email → page → cart", 3, 1),
    ]
    assert out["paths"].share.tolist() == pytest.approx([2 / 3, 1 / 3])
    assert rows(out["nodes"], "node", "step", "event_type", "customers") == [
        ("1:page", 1, "page", 2),
        ("1:email", 1, "email", 1),
        ("2:cart", 2, "cart", 2),
        ("2:page", 2, "page", 1),
        ("3:order", 3, "order", 2),
        ("3:cart", 3, "cart", 1),
    ]
    assert rows(out["links"], "step", "source", "target", "source_event", "customers") == [
        (1, "1:page", "2:cart", "page", 2),
        (1, "1:email", "2:page", "email", 1),
        (2, "2:cart", "3:order", "cart", 2),
        (2, "2:page", "3:cart", "page", 1),
    ]
    assert list(out["links"].target_event) == ["cart", "page", "order", "cart"]


def test_first_steps_of_everyone_without_collapsing_end_early(shop):
    # Not collapsed, first 4 steps of all five customers with events (1 each, share 0.2):
    #   j1 page page cart order; j2 page cart order email; j3 email page cart (end);
    #   j4 page order (end); j5 order order refund (end).
    # Ties sorted by the steps' types, a missing step first: limit 3 keeps the first three.
    params = JourneysParams(as_of=REF, steps=4, collapse_repeats=False, limit=3)
    out = REGISTRY["journeys"].run(shop, params)
    assert rows(out["paths"], "path", "steps", "customers") == [
        ("email → page → cart → (end)", 3, 1),
        ("order → order → refund → (end)", 3, 1),
        ("page → cart → order → email", 4, 1),
    ]
    assert out["paths"].share.tolist() == pytest.approx([0.2, 0.2, 0.2])
    assert rows(out["nodes"], "node", "customers") == [
        ("1:page", 3),  # j1, j2, j4
        ("1:email", 1),
        ("1:order", 1),
        ("2:order", 2),  # j4, j5
        ("2:page", 2),  # j1, j3
        ("2:cart", 1),
        ("3:cart", 2),  # j1, j3
        ("3:order", 1),
        ("3:refund", 1),
        ("4:email", 1),
        ("4:order", 1),
    ]
    assert rows(out["links"], "source", "target", "customers") == [
        ("1:email", "2:page", 1),
        ("1:order", "2:order", 1),
        ("1:page", "2:cart", 1),
        ("1:page", "2:order", 1),
        ("1:page", "2:page", 1),
        ("2:page", "3:cart", 2),  # j1, j3
        ("2:cart", "3:order", 1),
        ("2:order", "3:refund", 1),
        ("3:cart", "4:order", 1),
        ("3:order", "4:email", 1),
    ]


def test_steps_after_the_first_order(shop):
    # Collapsed; anchored at each member's first order (step 0) and 2 steps after:
    #   j1 order page order; j2 order email (end); j3 never ordered: left out.
    out = journeys(shop, "A", mode="after", event="order", steps=2)
    assert rows(out["paths"], "path", "customers", "share") == [
        ("order → email → (end)", 1, 0.5),
        ("order → page → order", 1, 0.5),
    ]
    assert rows(out["nodes"], "node", "customers") == [
        ("0:order", 2),
        ("1:email", 1),
        ("1:page", 1),
        ("2:order", 1),
    ]
    assert rows(out["links"], "step", "source", "target", "customers") == [
        (0, "0:order", "1:email", 1),
        (0, "0:order", "1:page", 1),
        (1, "1:page", "2:order", 1),
    ]


def test_steps_before_the_first_order_start_early_for_short_histories(shop):
    # Not collapsed; 2 steps before each customer's first order (step 0):
    #   j1 (page) page cart order → page cart order; j2 page cart order;
    #   j4 page order → (start) page order; j5 order → (start) order. 4 customers.
    out = journeys(shop, mode="before", event="order", steps=2, collapse_repeats=False)
    assert rows(out["paths"], "path", "steps", "customers", "share") == [
        ("page → cart → order", 3, 2, 0.5),
        ("(start) → order", 1, 1, 0.25),
        ("(start) → page → order", 2, 1, 0.25),
    ]
    assert rows(out["nodes"], "node", "step", "customers") == [
        ("-2:page", -2, 2),
        ("-1:cart", -1, 2),
        ("-1:page", -1, 1),
        ("0:order", 0, 4),
    ]
    assert rows(out["links"], "step", "source", "target", "customers") == [
        (-2, "-2:page", "-1:cart", 2),
        (-1, "-1:cart", "0:order", 2),
        (-1, "-1:page", "0:order", 1),
    ]


# -- bad input -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def duck(tmp_path_factory):
    home = tmp_path_factory.mktemp("bad-input")
    settings = duckdb_settings(home)
    with Strata(settings) as app:
        ws = app.workspace(create=True)
        app.warehouse.load(ws.id, journey_batch())
        yield Analyst(app, as_of=ReferenceTime.parse(REF))


def test_bad_journey_arguments_are_refused_in_one_line(duck):
    with pytest.raises(InputError, match="mode 'sideways' is not one of first, after, before"):
        journeys(duck, mode="sideways")
    with pytest.raises(InputError, match="steps must be a whole number from 1 to 8, not 9"):
        journeys(duck, steps=9)
    with pytest.raises(InputError, match="mode 'after' needs an event"):
        journeys(duck, mode="after")
    with pytest.raises(InputError, match=r"since 2024-06-05 is after until 2024-06-01"):
        journeys(duck, since=dt.date(2024, 6, 5), until=dt.date(2024, 6, 1))
    with pytest.raises(NotFound, match="no segment 'Z'"):
        journeys(duck, "Z")


def test_an_unknown_anchor_event_names_the_known_ones(duck):
    with pytest.raises(InputError) as err:
        journeys(duck, mode="before", event="signup")
    assert str(err.value) == (
        "no events of type 'signup' in this workspace; event types are: "
        "cart, email, order, page, refund"
    )


def test_journey_params_are_bounded_for_the_api_and_cli():
    with pytest.raises(ValueError, match="less than or equal to 8"):
        JourneysParams(steps=9)
    with pytest.raises(ValueError, match="Input should be 'first', 'after' or 'before'"):
        JourneysParams(mode="around")
    assert REGISTRY["journeys"].summary.startswith("The most common paths of event types")


# -- Online Retail against pandas ------------------------------------------------------------------
@pytest.fixture(scope="module")
def retail(online_retail):
    with Strata(online_retail) as app:
        yield Analyst(app, as_of=ReferenceTime.parse("2011-12-10"))


@pytest.fixture(scope="module")
def sequences() -> pd.DataFrame:
    """Each customer's orders and refunds in order, from the CSV: one row per invoice.

    The importer numbers events in the order of each invoice's first line in the file,
    so that order breaks ties between invoices of the same minute."""
    lines = pd.read_csv(
        ONLINE_RETAIL, dtype={"InvoiceNo": str, "StockCode": str, "CustomerID": str}
    )
    lines["line"] = range(len(lines))
    lines = lines[lines.CustomerID.notna()]
    per = (
        lines.groupby("InvoiceNo")
        .agg(customer=("CustomerID", "first"), at=("InvoiceDate", "min"), line=("line", "min"))
        .reset_index()
    )
    per["at"] = pd.to_datetime(per["at"])
    per["event_type"] = per.InvoiceNo.str.startswith("C").map({True: "refund", False: "order"})
    return per.sort_values(["customer", "at", "line"], kind="mergesort").reset_index(drop=True)


def _expected_paths(per: pd.DataFrame, steps: int) -> pd.Series:
    first = per.groupby("customer").head(steps)
    types = first.groupby("customer", sort=False).event_type.agg(list)
    text = types.map(lambda t: " → ".join(t + (["(end)"] if len(t) < steps else [])))
    return text.value_counts()


@pytest.mark.slow
def test_retail_first_three_steps_match_the_csv(retail, sequences):
    expected = _expected_paths(sequences, 3)
    out = journeys(retail, steps=3, collapse_repeats=False, limit=500)
    paths = out["paths"]
    got = dict(zip(paths.path, paths.customers.astype(int), strict=True))
    assert got == {k: int(v) for k, v in expected.items()}
    assert paths.customers.is_monotonic_decreasing
    assert paths.path.iloc[0] == "order → order → order"
    nodes = out["nodes"].set_index("node").customers
    second = sequences.groupby("customer").nth(1).event_type.value_counts()
    assert int(nodes["2:order"]) == second["order"]
    assert int(nodes["2:refund"]) == second["refund"]


@pytest.mark.slow
def test_retail_collapsed_steps_match_the_csv(retail, sequences):
    per = sequences
    changed = per.event_type != per.groupby("customer").event_type.shift()
    expected = _expected_paths(per[changed], 3)
    out = journeys(retail, steps=3, limit=10)
    paths = out["paths"]
    # The ten most common, each with the CSV's count (at most 10 distinct alternations).
    assert list(paths.customers) == sorted(expected.tolist(), reverse=True)[:10]
    for path, n in zip(paths.path, paths.customers, strict=True):
        assert n == expected[path]
    assert paths.share.iloc[0] == pytest.approx(expected.max() / per.customer.nunique())
