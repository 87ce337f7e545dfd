"""Growth, cohorts and RFM migration on every warehouse backend, against a small shop
worked out by hand below; then on Online Retail against an independent pandas computation.

The shop (customers ``c1`` … ``c8`` get the ids 1 … 8; O = order, R = refund):

====  ================  ======  ================================
cust  when              amount  note
====  ================  ======  ================================
1     2024-01-10 10:00  O  100
1     2024-02-05 10:00  O   50
1     2024-04-20 10:00  O   30
1     2024-04-25 10:00  R -100
2     2024-01-31 23:59  O  200  still January
2     2024-03-02 10:00  R -150  a refund in a month with no order
2     2024-06-14 10:00  O   40
3     2024-02-01 00:00  O   80  already February
3     2024-02-20 10:00  O   20
3     2024-03-15 10:00  O   60
4     2024-02-29 10:00  O   70
4     2024-06-15 23:00  O   35  last hour of the reference day
4     2024-06-16 10:00  O  999  after the reference: never counts
5     2024-02-10 10:00  R  -15  before their first order
5     2024-03-03 10:00  O   90
6     2024-06-01 10:00  O   10
7     2024-05-01 10:00  R   -5  only a refund: in no cohort
8     (a page view only)
====  ================  ======  ================================

The reference time is 2024-06-15 (events up to 23:59:59 that day count).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import types
import typing

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from strata.analysis.base import REGISTRY, Analyst
from strata.analysis.cohorts import CohortParams, cohorts, retention_matrix
from strata.analysis.growth import GrowthParams, growth
from strata.analysis.rfm_migration import RfmMigrationParams, rfm_migration
from strata.errors import InputError, NotFound
from strata.segments.engine import Segments, run_rfm
from strata.segments.nodes import SegmentSpec, parse_rule
from strata.segments.reference import ReferenceTime
from strata.segments.rfm import RfmConfig
from strata.warehouse import Batch
from tests.conftest import ONLINE_RETAIL, RETAIL_RFM_DAYS
from tests.test_segment_rules import EVENT_SCHEMA, open_backend

REF = "2024-06-15"
D = dt.date
NAN = math.nan

# number, type, time, revenue
MONEY = [
    (1, "order", "2024-01-10 10:00", 100.0),
    (1, "order", "2024-02-05 10:00", 50.0),
    (1, "order", "2024-04-20 10:00", 30.0),
    (1, "refund", "2024-04-25 10:00", -100.0),
    (2, "order", "2024-01-31 23:59", 200.0),
    (2, "refund", "2024-03-02 10:00", -150.0),
    (2, "order", "2024-06-14 10:00", 40.0),
    (3, "order", "2024-02-01 00:00", 80.0),
    (3, "order", "2024-02-20 10:00", 20.0),
    (3, "order", "2024-03-15 10:00", 60.0),
    (4, "order", "2024-02-29 10:00", 70.0),
    (4, "order", "2024-06-15 23:00", 35.0),
    (4, "order", "2024-06-16 10:00", 999.0),
    (5, "refund", "2024-02-10 10:00", -15.0),
    (5, "order", "2024-03-03 10:00", 90.0),
    (6, "order", "2024-06-01 10:00", 10.0),
    (7, "refund", "2024-05-01 10:00", -5.0),
]

# "Big spenders" (net revenue ≥ 100), evaluated four times; net revenue at each:
#
# evaluation (reference)        c1   c2   c3   c4   c5  members  joined  left  counts on
# 2024-01-31 (stored 02-01 0h)  100  200   -    -    -  {1,2}    c1, c2  -     01-31
# 2024-03-05 (stored 03-06 0h)  150   50  100   70  75  {1,3}    c3      c2    03-05
# 2024-04-25 12:00              -20   50  160   70  75  {3}      -       c1    04-25
# 2024-06-15 (stored 06-16 0h)   80   90  160  105  75  {3,4}    c4      -     06-15
BIG_SPENDERS = {"type": "trait", "trait": "total_revenue", "op": "gte", "value": 100}
EVALUATIONS = ["2024-01-31", "2024-03-05", "2024-04-25T12:00:00", REF]

# A 2-bin RFM grid, so scores can be worked out by hand. FM = (F + M + 1) // 2.
RFM_CONFIG = RfmConfig(
    bins=2, map={"Best": ["2:2"], "New": ["2:1"], "Fading": ["1:2"], "Gone": ["1:1"]}
)
RFM_FROM = "2024-02-29"
# As of 2024-02-29 (4 customers with an order, NTILE(2): 2 per score, ties by id):
#   cust  days since  orders  revenue   R  F  M  FM  segment
#   1     24          2       150       1  2  2  2   Fading
#   2     29          1       200       1  1  2  2   Fading
#   3     9           2       100       2  2  1  2   Best
#   4     0           1       70        2  1  1  1   New
# As of 2024-06-15 (6 customers with an order, 3 per score):
#   1     56          3       80        1  2  1  2   Fading
#   2     1           2       90        2  1  2  2   Best
#   3     92          3       160       1  2  2  2   Fading
#   4     0           2       105       2  2  2  2   Best
#   5     104         1       75        1  1  1  1   Gone
#   6     14          1       10        2  1  1  1   New
# (frequency ranks c5, c6, c2, c4, c1, c3; revenue ranks c6, c5, c1, c2, c4, c3)


def _batch() -> Batch:
    ext = [f"c{n}" for n in range(1, 9)]
    customers = pa.table({"external_id": ext, "country": ["France"] * 8})
    rows = [
        {
            "external_id": f"c{n}",
            "event_type": kind,
            "timestamp": dt.datetime.fromisoformat(at),
            "revenue": revenue,
            "currency": "EUR",
            "order_id": f"{kind}-{i}",
            "properties": "{}",
            "event_key": f"{kind}:{i}",
        }
        for i, (n, kind, at, revenue) in enumerate(MONEY)
    ]
    rows.append(
        {
            "external_id": "c8",
            "event_type": "page_view",
            "timestamp": dt.datetime(2024, 3, 1, 9),
            "revenue": None,
            "currency": None,
            "order_id": None,
            "properties": json.dumps({"path": "/home"}),
            "event_key": "e:1",
        }
    )
    return Batch(customers=customers, events=pa.Table.from_pylist(rows, EVENT_SCHEMA))


@pytest.fixture(scope="module", params=["duckdb", "postgres", "spark"])
def shop(request, tmp_path_factory) -> dict:
    """The shop on one backend, segments evaluated, and every answer the tests check
    (computed here once: Spark pays seconds per query)."""
    backend = request.param
    with open_backend(request, backend, tmp_path_factory.mktemp(f"growth-{backend}")) as app:
        ws = app.workspace(create=True)
        app.warehouse.load(ws.id, _batch())
        segs = Segments(app)
        customers = app.warehouse.table(ws.id, "customers").select("customer_id", "external_id")
        ids = customers.to_pyarrow().to_pylist()
        assert {r["customer_id"]: r["external_id"] for r in ids} == {
            n: f"c{n}" for n in range(1, 9)
        }
        spec = SegmentSpec(name="Big spenders", rule=parse_rule(BIG_SPENDERS))
        segs.save(spec, as_of=ReferenceTime.parse(EVALUATIONS[0]))
        for when in EVALUATIONS[1:]:
            segs.refresh(["Big spenders"], as_of=ReferenceTime.parse(when))
        nobody = {"type": "trait", "trait": "total_revenue", "op": "gte", "value": 10_000}
        segs.save(
            SegmentSpec(name="Nobody", rule=parse_rule(nobody)), as_of=ReferenceTime.parse(REF)
        )
        run_rfm(segs, as_of=ReferenceTime.parse(RFM_FROM), config=RFM_CONFIG)
        run_rfm(segs, as_of=ReferenceTime.parse(REF))

        def run(name: str, **params) -> dict[str, pd.DataFrame]:
            return _run(app, name, REGISTRY[name].params(as_of=REF, **params))

        an = Analyst(app, as_of=ReferenceTime.parse(REF))
        answers = {
            "backend": backend,
            "an": an,
            "growth": run("growth", segment="Big spenders", period="month"),
            "cohorts": run("cohorts"),
            "migration": run("rfm-migration", from_date=D(2024, 2, 29)),
        }
        # Spark pays seconds a query: it answers the three above; the variants (edge cases
        # of the same code, in the same SQL) run on the other two.
        if backend != "spark":
            earlier = Analyst(app, as_of=ReferenceTime.parse("2024-04-24"))
            answers |= {
                "growth_days": run(
                    "growth", segment="Big spenders", since=D(2024, 4, 24), until=D(2024, 4, 26)
                ),
                "growth_earlier": growth(earlier, "Big spenders", period="month"),
                "growth_empty": run("growth", segment="Nobody"),
                "cohorts_quarter": cohorts(an, period="quarter"),
                "cohorts_segment": cohorts(an, "Big spenders", since=D(2024, 2, 1)),
                "cohorts_empty": cohorts(an, "Nobody"),
                "migration_early": rfm_migration(an, D(2024, 1, 15), D(2024, 6, 15)),
            }
        yield answers


def _run(app, name: str, params) -> dict[str, pd.DataFrame]:
    """What ``run_analysis`` does, without importing every other analysis module."""
    return REGISTRY[name].run(Analyst(app, as_of=ReferenceTime.parse(params.as_of)), params)


#: Tests of variants computed on these backends only (Spark answers the main runs).
VARIANT_BACKENDS = pytest.mark.parametrize("shop", ["duckdb", "postgres"], indirect=True)


def _variant(shop: dict, key: str):
    return shop[key]


def _frame(rows: list[tuple], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns)


def _same(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert [c for c in got.columns if c in set(expected.columns)] == list(expected.columns)
    got = got[list(expected.columns)].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, atol=1e-9)


# -- growth ----------------------------------------------------------------------------------
GROWTH = ["period_start", "joined", "left", "members", "net_change", "growth_rate"]


def test_growth_counts_each_change_on_its_reference_day_month_by_month(shop):
    # The 2024-01-31 evaluation is stored at 02-01 00:00 and counts in January.
    expected = _frame(
        [
            (D(2024, 1, 1), 2, 0, 2, 2, NAN),  # nobody before: no rate
            (D(2024, 2, 1), 0, 0, 2, 0, 0.0),
            (D(2024, 3, 1), 1, 1, 2, 0, 0.0),  # c3 in, c2 out on 03-05
            (D(2024, 4, 1), 0, 1, 1, -1, -0.5),  # c1 out at 04-25 12:00
            (D(2024, 5, 1), 0, 0, 1, 0, 0.0),
            (D(2024, 6, 1), 1, 0, 2, 1, 1.0),  # c4 in on 06-15
        ],
        GROWTH,
    )
    _same(shop["growth"]["growth"], expected)
    assert list(shop["growth"]) == ["growth", "summary"]


def test_growth_summary_spans_from_the_first_change_to_the_reference_day(shop):
    summary = shop["growth"]["summary"]
    assert len(summary) == 1
    row = summary.iloc[0]
    # 2024-01-31 … 2024-06-15: 1 + 29 + 31 + 30 + 31 + 15 days.
    assert (row.since, row.until, row.days) == (D(2024, 1, 31), D(2024, 6, 15), 137)
    assert (row.members_at_start, row.members_now, row.change) == (0, 2, 2)
    assert (row.joined, row.left) == (4, 2)  # c1, c2, c3, c4 joined; c2, c1 left
    assert math.isnan(row.growth_rate) and math.isnan(row.average_daily_growth)


@VARIANT_BACKENDS
def test_growth_by_day_lists_every_day_and_counts_a_daytime_instant_on_its_own_day(shop):
    expected = _frame(
        [
            (D(2024, 4, 24), 0, 0, 2, 0, 0.0),  # {1, 3} since 03-05
            (D(2024, 4, 25), 0, 1, 1, -1, -0.5),  # stored 04-25 12:00
            (D(2024, 4, 26), 0, 0, 1, 0, 0.0),
        ],
        GROWTH,
    )
    _same(_variant(shop, "growth_days")["growth"], expected)
    row = _variant(shop, "growth_days")["summary"].iloc[0]
    assert (row.members_at_start, row.members_now, row.change, row.days) == (2, 1, -1, 3)
    assert (row.joined, row.left) == (0, 1)
    assert row.growth_rate == pytest.approx(-0.5)
    # (1 / 2) ** (1 / 3) - 1
    assert row.average_daily_growth == pytest.approx(-0.2062994740159002)


@VARIANT_BACKENDS
def test_growth_knows_no_change_after_the_reference_instant(shop):
    # As of 2024-04-24: the leave at 04-25 12:00 has not happened yet.
    expected = _frame(
        [
            (D(2024, 1, 1), 2, 0, 2, 2, NAN),
            (D(2024, 2, 1), 0, 0, 2, 0, 0.0),
            (D(2024, 3, 1), 1, 1, 2, 0, 0.0),
            (D(2024, 4, 1), 0, 0, 2, 0, 0.0),
        ],
        GROWTH,
    )
    _same(_variant(shop, "growth_earlier"), expected)


@VARIANT_BACKENDS
def test_growth_of_a_segment_that_never_had_members_is_zero(shop):
    got = _variant(shop, "growth_empty")["growth"]
    _same(got, _frame([(D(2024, 6, 15), 0, 0, 0, 0, NAN)], GROWTH))
    assert _variant(shop, "growth_empty")["summary"].iloc[0].members_now == 0


# -- cohorts ---------------------------------------------------------------------------------
COHORTS = [
    "cohort",
    "cohort_size",
    "period_offset",
    "complete",
    "customers",
    "retention",
    "revenue",
    "revenue_per_customer",
    "cumulative_revenue_per_customer",
]
JAN, FEB, MAR, JUN = D(2024, 1, 1), D(2024, 2, 1), D(2024, 3, 1), D(2024, 6, 1)
# Cohorts by first order: January {1, 2}, February {3, 4}, March {5}, June {6}; c7 has
# only a refund, c8 nothing. June holds the reference day: its rows are not complete.
MONTHLY = [
    # January: Jan 100+200; Feb c1 50; Mar c2 refund -150 (no order); Apr c1 30-100;
    # May nothing; Jun c2 40.
    (JAN, 2, 0, True, 2, 1.0, 300.0, 150.0, 150.0),
    (JAN, 2, 1, True, 1, 0.5, 50.0, 25.0, 175.0),
    (JAN, 2, 2, True, 0, 0.0, -150.0, -75.0, 100.0),
    (JAN, 2, 3, True, 1, 0.5, -70.0, -35.0, 65.0),
    (JAN, 2, 4, True, 0, 0.0, 0.0, 0.0, 65.0),
    (JAN, 2, 5, False, 1, 0.5, 40.0, 20.0, 85.0),
    # February: Feb 80+20+70; Mar c3 60; Jun c4 35 (its 999 of 06-16 is too late).
    (FEB, 2, 0, True, 2, 1.0, 170.0, 85.0, 85.0),
    (FEB, 2, 1, True, 1, 0.5, 60.0, 30.0, 115.0),
    (FEB, 2, 2, True, 0, 0.0, 0.0, 0.0, 115.0),
    (FEB, 2, 3, True, 0, 0.0, 0.0, 0.0, 115.0),
    (FEB, 2, 4, False, 1, 0.5, 35.0, 17.5, 132.5),
    # March: c5's 90; its February refund predates the cohort and is left out.
    (MAR, 1, 0, True, 1, 1.0, 90.0, 90.0, 90.0),
    (MAR, 1, 1, True, 0, 0.0, 0.0, 0.0, 90.0),
    (MAR, 1, 2, True, 0, 0.0, 0.0, 0.0, 90.0),
    (MAR, 1, 3, False, 0, 0.0, 0.0, 0.0, 90.0),
    (JUN, 1, 0, False, 1, 1.0, 10.0, 10.0, 10.0),
]


def test_cohorts_by_month_have_every_offset_up_to_the_reference_month(shop):
    _same(shop["cohorts"]["cohorts"], _frame(MONTHLY, COHORTS))
    got = shop["cohorts"]["cohorts"]
    assert list(got.period_start[got.cohort == FEB]) == [
        FEB,
        MAR,
        D(2024, 4, 1),
        D(2024, 5, 1),
        JUN,
    ]


def test_the_retention_matrix_is_the_wide_form_with_nulls_past_the_reference(shop):
    matrix = shop["cohorts"]["matrix"]
    assert list(matrix.columns) == ["cohort", "cohort_size", "m0", "m1", "m2", "m3", "m4", "m5"]
    expected = _frame(
        [
            (JAN, 2, 1.0, 0.5, 0.0, 0.5, 0.0, 0.5),
            (FEB, 2, 1.0, 0.5, 0.0, 0.0, 0.5, NAN),
            (MAR, 1, 1.0, 0.0, 0.0, 0.0, NAN, NAN),
            (JUN, 1, 1.0, NAN, NAN, NAN, NAN, NAN),
        ],
        list(matrix.columns),
    )
    _same(matrix, expected)


@VARIANT_BACKENDS
def test_cohorts_by_quarter_count_refunds_within_the_cohort_quarter(shop):
    # Q1 {1..5}: 150 + 50 + 160 + 70 + (90 - 15); Q2: c1 30-100, c2 40, c4 35.
    expected = _frame(
        [
            (D(2024, 1, 1), 5, 0, True, 5, 1.0, 505.0, 101.0, 101.0),
            (D(2024, 1, 1), 5, 1, False, 3, 0.6, 5.0, 1.0, 102.0),
            (D(2024, 4, 1), 1, 0, False, 1, 1.0, 10.0, 10.0, 10.0),
        ],
        COHORTS,
    )
    _same(_variant(shop, "cohorts_quarter"), expected)


@VARIANT_BACKENDS
def test_cohorts_of_a_segment_keep_its_members_and_the_cohorts_asked_for(shop):
    # Big spenders as of the reference: {3, 4}, both of February; since Feb drops nothing
    # more here, but January would have been cut.
    feb = [row for row in MONTHLY if row[0] == FEB]
    _same(_variant(shop, "cohorts_segment"), _frame(feb, COHORTS))


@VARIANT_BACKENDS
def test_cohorts_of_an_empty_segment_are_empty(shop):
    assert _variant(shop, "cohorts_empty").empty
    assert "cohort" in _variant(shop, "cohorts_empty").columns
    assert retention_matrix(_variant(shop, "cohorts_empty")).empty


# -- RFM migration ---------------------------------------------------------------------------
MIGRATION = ["from_segment", "to_segment", "customers", "share_of_from"]


def test_rfm_migration_counts_each_customers_move_in_grid_order(shop):
    expected = _frame(
        [
            ("Best", "Fading", 1, 1.0),  # c3
            ("New", "Best", 1, 1.0),  # c4
            ("Fading", "Best", 1, 0.5),  # c2
            ("Fading", "Fading", 1, 0.5),  # c1
            ("(none)", "New", 1, 0.5),  # c6: no order by 02-29
            ("(none)", "Gone", 1, 0.5),  # c5: only a refund by 02-29
        ],
        MIGRATION,
    )
    _same(shop["migration"]["migration"], expected)


def test_rfm_migration_summary_per_segment(shop):
    expected = _frame(
        [
            ("Best", 1, 2, 0, 2, 1),
            ("New", 1, 1, 0, 1, 1),
            ("Fading", 2, 2, 1, 1, 1),
            ("Gone", 0, 1, 0, 1, 0),
        ],
        ["segment", "at_start", "at_end", "stayed", "moved_in", "moved_out"],
    )
    _same(shop["migration"]["summary"], expected)


@VARIANT_BACKENDS
def test_rfm_migration_from_before_the_first_evaluation_starts_from_none(shop):
    expected = _frame(
        [
            ("(none)", "Best", 2, 2 / 6),
            ("(none)", "New", 1, 1 / 6),
            ("(none)", "Fading", 2, 2 / 6),
            ("(none)", "Gone", 1, 1 / 6),
        ],
        MIGRATION,
    )
    _same(_variant(shop, "migration_early"), expected)


# -- bad input ---------------------------------------------------------------------------------
def _one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda an: growth(an, None), InputError, "growth needs a segment"),
        (lambda an: growth(an, "No such"), NotFound, "no segment 'No such'"),
        (lambda an: growth(an, "Big spenders", period="decade"), InputError, "period 'decade'"),
        (
            lambda an: growth(an, "Big spenders", since=D(2024, 5, 2), until=D(2024, 5, 1)),
            InputError,
            "since 2024-05-02 is after until 2024-05-01",
        ),
        (
            lambda an: growth(an, "Big spenders", until=D(2024, 7, 1)),
            InputError,
            "until 2024-07-01 is after the as-of day 2024-06-15",
        ),
        (lambda an: cohorts(an, period="day"), InputError, "period 'day' is not one of week"),
        (lambda an: cohorts(an, "No such"), NotFound, "no segment 'No such'"),
        (
            lambda an: rfm_migration(an, D(2024, 6, 1), D(2024, 5, 1)),
            InputError,
            "from_date 2024-06-01 is after to_date 2024-05-01",
        ),
        (
            lambda an: rfm_migration(an, D(2024, 6, 1), D(2024, 7, 1)),
            InputError,
            "to_date 2024-07-01 is after the as-of day 2024-06-15",
        ),
    ],
    ids=[
        "growth-no-segment",
        "growth-unknown-segment",
        "growth-bad-period",
        "growth-since-after-until",
        "growth-after-as-of",
        "cohorts-bad-period",
        "cohorts-unknown-segment",
        "migration-backwards",
        "migration-after-as-of",
    ],
)
@pytest.mark.parametrize("shop", ["duckdb"], indirect=True)  # checked before any query
def test_bad_input_says_what_was_wrong_in_one_line(shop, call, error, message):
    with pytest.raises(error) as err:
        call(shop["an"])
    assert message in _one_line(err)


def test_rfm_migration_without_rfm_says_to_run_it(duck_app):
    duck_app.workspace(create=True)
    an = Analyst(duck_app, as_of=ReferenceTime.parse(REF))
    with pytest.raises(InputError) as err:
        rfm_migration(an, D(2024, 1, 1))
    assert "run `strata rfm`" in _one_line(err)


def test_params_reject_what_the_api_and_cli_cannot_take():
    with pytest.raises(ValueError, match="period"):
        GrowthParams(segment="x", period="decade")
    with pytest.raises(ValueError, match="period"):
        CohortParams(period="day")
    with pytest.raises(ValueError, match="from_date"):
        RfmMigrationParams()
    assert RfmMigrationParams(from_date="2011-06-30").from_date == D(2011, 6, 30)


def test_the_three_analyses_are_registered_with_simple_parameter_types():
    allowed = {str, int, float, bool, dt.date, type(None)}
    for name, subject in [("growth", "segment"), ("cohorts", "segment"), ("rfm-migration", None)]:
        spec = REGISTRY[name]
        assert spec.subject == subject
        assert spec.summary and not spec.summary.endswith(" ")
        for field_name, field in spec.params.model_fields.items():
            assert field.description, f"{name}.{field_name} has no description"
            annotation = field.annotation
            union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
            for arg in typing.get_args(annotation) if union else (annotation,):
                literal = typing.get_origin(arg) is typing.Literal
                assert literal or arg in allowed, f"{name}.{field_name}: {arg}"


# -- Online Retail ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def retail_lines() -> pd.DataFrame:
    """The CSV's lines with a customer, as the importer reads them: an invoice starting
    with C is a refund (its quantities are negative), any other an order."""
    lines = pd.read_csv(
        ONLINE_RETAIL, dtype={"InvoiceNo": str, "StockCode": str, "CustomerID": str}
    )
    lines = lines[lines.CustomerID.notna()].copy()
    lines["customer"] = lines.CustomerID.str.removesuffix(".0")
    lines["amount"] = lines.Quantity * lines.UnitPrice
    lines["at"] = pd.to_datetime(lines.InvoiceDate)
    lines["is_order"] = ~lines.InvoiceNo.str.match(r"^[Cc]")
    return lines


@pytest.fixture(scope="module")
def retail_invoices(retail_lines) -> pd.DataFrame:
    return (
        retail_lines.groupby("InvoiceNo")
        .agg(
            customer=("customer", "first"),
            at=("at", "min"),
            revenue=("amount", "sum"),
            is_order=("is_order", "first"),
        )
        .reset_index()
    )


@pytest.mark.slow
def test_cohorts_on_online_retail_equal_pandas(online_retail, retail_invoices):
    from strata.context import Strata

    with Strata(online_retail) as app:
        got = cohorts(Analyst(app, as_of=ReferenceTime.parse("2011-12-10")))
    inv = retail_invoices[retail_invoices["at"] < pd.Timestamp("2011-12-11")].copy()
    inv["month"] = inv["at"].dt.to_period("M")
    first = inv[inv.is_order].groupby("customer").month.min().rename("cohort")
    inv = inv.join(first, on="customer", how="inner")
    inv = inv[inv.month >= inv.cohort]
    inv["offset"] = (inv.month - inv.cohort).apply(lambda d: d.n)
    sizes = first.value_counts()
    active = inv[inv.is_order].groupby(["cohort", "offset"]).customer.nunique()
    revenue = inv.groupby(["cohort", "offset"]).revenue.sum()
    # 13 monthly cohorts, Dec 2010 … Dec 2011, each up to December 2011.
    assert len(got) == sum(range(1, 14))
    assert got.groupby("cohort").cohort_size.first().sum() == len(first) == 4_339
    for row in got.itertuples():
        key = (pd.Period(row.cohort, "M"), row.period_offset)
        assert row.cohort_size == sizes[key[0]]
        assert row.customers == active.get(key, 0), key
        assert row.revenue == pytest.approx(revenue.get(key, 0.0), abs=1e-6), key
    assert got.retention.between(0, 1).all()
    dec = got[got.cohort == D(2010, 12, 1)]
    assert dec.cumulative_revenue_per_customer.iloc[-1] == pytest.approx(
        revenue.loc[pd.Period("2010-12", "M")].sum() / sizes[pd.Period("2010-12", "M")]
    )


def _retail_rfm(invoices: pd.DataFrame, ids: pd.Series, day: str) -> pd.Series:
    """Each customer's RFM segment as of the end of ``day``, as tests/test_rfm.py computes
    it (NTILE(5), worst first, ties by internal id)."""
    from tests.test_rfm import GRID

    inv = invoices[invoices["at"] < pd.Timestamp(day) + pd.Timedelta(days=1)]
    per = inv.groupby("customer").agg(frequency=("is_order", "sum"), monetary=("revenue", "sum"))
    last = inv[inv.is_order].groupby("customer")["at"].max()
    per = per[per.frequency > 0].join(last.rename("last"))
    per["recency"] = (pd.Timestamp(day) - per["last"].dt.normalize()).dt.days
    per["cid"] = ids.reindex(per.index).to_numpy()
    per["monetary"] = per.monetary.round(6)

    def ntile(measure: str, ascending: bool) -> pd.Series:
        ranked = per.sort_values([measure, "cid"], ascending=[ascending, True], kind="mergesort")
        score = np.empty(len(ranked), dtype=int)
        for group, rows in enumerate(np.array_split(np.arange(len(ranked)), 5), start=1):
            score[rows] = group
        return pd.Series(score, index=ranked.index).reindex(per.index)

    r, f, m = ntile("recency", False), ntile("frequency", True), ntile("monetary", True)
    fm = (f + m + 1) // 2
    return pd.Series([GRID[a][b - 1] for a, b in zip(r, fm, strict=True)], index=per.index)


@pytest.fixture(scope="module")
def retail_rfm(online_retail, retail_invoices) -> dict:
    from strata.context import Strata

    with Strata(online_retail) as app:
        an = Analyst(app, as_of=ReferenceTime.parse(RETAIL_RFM_DAYS[1]))
        customers = an.customers().select("customer_id", "external_id").to_pyarrow().to_pandas()
        ids = customers.set_index("external_id").customer_id
        tables = _run(
            app,
            "rfm-migration",
            RfmMigrationParams(as_of=RETAIL_RFM_DAYS[1], from_date=RETAIL_RFM_DAYS[0]),
        )
        champions = _run(
            app,
            "growth",
            GrowthParams(as_of=RETAIL_RFM_DAYS[1], segment="Champions", period="month"),
        )
    before, after = (_retail_rfm(retail_invoices, ids, day) for day in RETAIL_RFM_DAYS)
    return {"tables": tables, "champions": champions, "before": before, "after": after}


@pytest.mark.slow
def test_rfm_migration_on_online_retail_equals_pandas(retail_rfm):
    before, after = retail_rfm["before"], retail_rfm["after"]
    both = pd.DataFrame({"from": before, "to": after}).fillna("(none)")
    assert (both["from"] == "(none)").sum() > 0  # customers new after June
    expected = both.groupby(["from", "to"]).size()
    got = retail_rfm["tables"]["migration"].set_index(["from_segment", "to_segment"]).customers
    assert got.sum() == len(after) == 4_339
    assert got.sort_index().to_dict() == expected.sort_index().to_dict()
    order = [*GRID_ORDER, "(none)"]
    keys = [(order.index(a), order.index(b)) for a, b in got.index]
    assert keys == sorted(keys)
    summary = retail_rfm["tables"]["summary"].set_index("segment")
    assert list(summary.index) == GRID_ORDER
    for name in GRID_ORDER:
        assert summary.at[name, "at_start"] == (before == name).sum()
        assert summary.at[name, "at_end"] == (after == name).sum()
        stayed = ((both["from"] == name) & (both["to"] == name)).sum()
        assert summary.at[name, "stayed"] == stayed


@pytest.mark.slow
def test_champions_growth_on_online_retail_equals_pandas_membership(retail_rfm):
    before, after = retail_rfm["before"], retail_rfm["after"]
    was = set(before[before == "Champions"].index)
    now = set(after[after == "Champions"].index)
    assert now - was and was - now and now & was  # some joined, some left, some stayed
    frame = retail_rfm["champions"]["growth"].set_index("period_start")
    # The first evaluation counts on 2011-06-30, the second on 2011-12-10.
    assert list(frame.index) == [D(2011, m, 1) for m in range(6, 13)]
    assert (frame.at[D(2011, 6, 1), "joined"], frame.at[D(2011, 6, 1), "left"]) == (len(was), 0)
    assert frame.at[D(2011, 12, 1), "joined"] == len(now - was)
    assert frame.at[D(2011, 12, 1), "left"] == len(was - now)
    assert frame.at[D(2011, 12, 1), "members"] == len(now)
    assert (frame.loc[D(2011, 7, 1) : D(2011, 11, 1), ["joined", "left"]] == 0).all().all()
    assert (frame.loc[D(2011, 6, 1) : D(2011, 11, 1), "members"] == len(was)).all()
    summary = retail_rfm["champions"]["summary"].iloc[0]
    assert (summary.members_at_start, summary.members_now) == (0, len(now))


GRID_ORDER = [
    "Champions",
    "Loyal Customers",
    "Potential Loyalists",
    "New Customers",
    "Promising",
    "Need Attention",
    "About to Sleep",
    "At Risk",
    "Can't Lose Them",
    "Hibernating",
    "Lost",
]
