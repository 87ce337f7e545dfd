"""Cohorts: how acquisition cohorts keep buying, period after period.

A customer's cohort is the calendar period of their first order known at the reference
instant; the retention matrix follows each cohort through the periods after it: how many
of its customers ordered again, and the net revenue (orders less refunds) they brought.

>>> an = Analyst(app, as_of=ReferenceTime.parse("2011-12-10"))  # doctest: +SKIP
>>> cohorts(an, period="month").head(2)  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import ibis
import pandas as pd
from pydantic import Field

from strata.analysis.base import (
    Analyst,
    PeriodParams,
    SegmentRef,
    Tables,
    analysis,
    check_span,
    execute,
    truncate,
)
from strata.errors import InputError

CohortPeriod = Literal["week", "month", "quarter"]
COHORT_PERIODS = ("week", "month", "quarter")
COHORT_COLUMNS = [
    "cohort",
    "cohort_size",
    "period_offset",
    "period_start",
    "complete",
    "customers",
    "retention",
    "revenue",
    "revenue_per_customer",
    "cumulative_revenue_per_customer",
]


def cohorts(
    an: Analyst,
    segment: str | int | None = None,
    *,
    period: CohortPeriod = "month",
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> pd.DataFrame:
    """The acquisition cohorts of a segment's members (``None``: every customer) at the
    reference instant, in long form: one row per cohort and period offset, sorted by both.

    A customer's cohort is the ``period`` (week from Monday, month or quarter) of their
    first order (event type ``an.order_event``) before the reference instant; customers
    without one are in no cohort. Each cohort gets every offset from 0 to the period
    holding the reference day, with zeros where nobody ordered. ``since`` / ``until``
    keep the cohorts whose first day is within them. Columns:

    * ``cohort`` (date): the first day of the cohort's period;
    * ``cohort_size``: customers in the cohort;
    * ``period_offset`` (int): periods after the cohort's (0 is the cohort's own);
    * ``period_start`` (date): the first day of that period;
    * ``complete`` (bool): the period ended before the reference instant (the last one
      of every cohort usually did not: its figures are partial);
    * ``customers``: cohort customers with at least one order in that period;
    * ``retention``: ``customers / cohort_size``;
    * ``revenue``: net revenue of the cohort's orders and refunds in that period (refunds
      in a period before the cohort's own are left out);
    * ``revenue_per_customer``: ``revenue / cohort_size``;
    * ``cumulative_revenue_per_customer``: its running sum over offsets 0 … this one.

    >>> cohorts(an, "Champions", period="quarter")  # doctest: +SKIP
    """
    if period not in COHORT_PERIODS:
        raise InputError(f"period {period!r} is not one of {', '.join(COHORT_PERIODS)}")
    check_span(since, until)
    rows = execute(_cohort_query(an, segment, period, since, until))
    return _long_form(rows, period, an)


def retention_matrix(long: pd.DataFrame) -> pd.DataFrame:
    """:func:`cohorts`' answer in wide form, one row per cohort: ``cohort``,
    ``cohort_size``, then ``m0``, ``m1``, … the retention at offset 0, 1, … (null past
    the reference day), convenient for a heatmap."""
    if long.empty:
        return pd.DataFrame({"cohort": [], "cohort_size": pd.Series([], dtype="int64")})
    wide = long.pivot(index="cohort", columns="period_offset", values="retention")
    wide = wide.reindex(columns=range(int(long.period_offset.max()) + 1))
    wide.columns = [f"m{k}" for k in wide.columns]
    sizes = long.groupby("cohort").cohort_size.first()
    out = pd.concat([sizes, wide.astype("float64")], axis=1).reset_index()
    return out.sort_values("cohort", kind="mergesort").reset_index(drop=True)


def _cohort_query(
    an: Analyst,
    segment: str | int | None,
    period: str,
    since: dt.date | None,
    until: dt.date | None,
) -> ibis.Table:
    """One query: each cohort's size (``kind`` 0) and each (cohort, period)'s ordering
    customers and net revenue (``kind`` 1)."""
    per = _per_period(an, segment, period)
    first = _first_orders(per)
    if since is not None:
        first = first.filter(first.cohort >= ibis.literal(since, type="date"))
    if until is not None:
        first = first.filter(first.cohort <= ibis.literal(until, type="date"))
    sizes = first.group_by("cohort").aggregate(
        n=first.count().cast("int64"), revenue=ibis.literal(0.0, type="float64")
    )
    sizes = sizes.select(
        "cohort", at=sizes.cohort, kind=ibis.literal(0, type="int64"), n="n", revenue="revenue"
    )
    active = per.inner_join(first, "customer_id")
    active = active.filter(active.at >= active.cohort)
    activity = active.group_by("cohort", "at").aggregate(
        n=active.ordered.sum().cast("int64"), revenue=active.revenue.sum().cast("float64")
    )
    activity = activity.select(
        "cohort", "at", kind=ibis.literal(1, type="int64"), n="n", revenue="revenue"
    )
    return sizes.union(activity)


def cohort_customers(
    an: Analyst,
    segment: str | int | None = None,
    *,
    period: CohortPeriod = "month",
    cohort: dt.date,
    period_offset: int | None = None,
) -> ibis.Table:
    """``customer_id`` of the customers of one cohort of :func:`cohorts` (``cohort``: the
    first day of its period), or with ``period_offset`` those of them who ordered that
    many periods later: one cell of the retention matrix, as many as its ``customers``.

    >>> january = dt.date(2011, 1, 1)
    >>> cohort_customers(an, cohort=january, period_offset=2)  # doctest: +SKIP
    """
    if period not in COHORT_PERIODS:
        raise InputError(f"period {period!r} is not one of {', '.join(COHORT_PERIODS)}")
    per = _per_period(an, segment, period)
    first = _first_orders(per)
    ids = first.filter(first.cohort == ibis.literal(cohort, type="date"))
    if period_offset is not None:
        then = ibis.literal(_shift(cohort, period_offset, period), type="date")
        ids = ids.semi_join(per.filter(per.ordered == 1, per.at == then), "customer_id")
    return ids.select("customer_id")


def _per_period(an: Analyst, segment: str | int | None, period: str) -> ibis.Table:
    """One row per customer and ``period`` with orders or refunds: ``customer_id``, ``at``
    (the period's first day), ``ordered`` (1 if they ordered then, else 0), ``revenue``."""
    money = an.money()
    if segment is not None and str(segment).strip() != "":
        money = money.semi_join(an.members(segment), "customer_id")
    # One row per customer and period first: the cohort is the earliest period with an
    # order, and counting customers becomes a sum instead of a distinct count.
    return money.group_by("customer_id", at=truncate(money.timestamp, period)).aggregate(
        # PostgreSQL casts no boolean to an integer: spell it out.
        ordered=money.is_order.ifelse(1, 0).cast("int64").max(),
        revenue=money.amount.sum(),
    )


def _first_orders(per: ibis.Table) -> ibis.Table:
    """``customer_id`` and ``cohort``: the first period each customer ordered in."""
    return per.filter(per.ordered == 1).group_by("customer_id").aggregate(cohort=per.at.min())


def _long_form(rows: pd.DataFrame, period: str, an: Analyst) -> pd.DataFrame:
    if rows.empty:
        return pd.DataFrame({c: [] for c in COHORT_COLUMNS})
    sizes = rows[rows.kind == 0].set_index("cohort").n.astype("int64")
    activity = rows[rows.kind == 1]
    found = {
        (c, _offset(c, at, period)): (int(n), float(r))
        for c, at, n, r in zip(
            activity.cohort, activity["at"], activity.n, activity.revenue, strict=True
        )
    }
    last = _period_of(an.ref.day, period)
    out = []
    for cohort in sorted(sizes.index):
        size = int(sizes[cohort])
        for k in range(_offset(cohort, last, period) + 1):
            start = _shift(cohort, k, period)
            complete = dt.datetime.combine(_shift(cohort, k + 1, period), dt.time(0))
            n, revenue = found.get((cohort, k), (0, 0.0))
            out.append((cohort, size, k, start, complete <= an.ref.instant, n, revenue))
    frame = pd.DataFrame(
        out,
        columns=[
            "cohort",
            "cohort_size",
            "period_offset",
            "period_start",
            "complete",
            "customers",
            "revenue",
        ],
    )
    frame = frame.astype({"cohort_size": "int64", "period_offset": "int64", "customers": "int64"})
    frame["revenue"] = frame.revenue.astype("float64")
    frame["retention"] = frame.customers / frame.cohort_size
    frame["revenue_per_customer"] = frame.revenue / frame.cohort_size
    frame["cumulative_revenue_per_customer"] = frame.groupby("cohort").revenue_per_customer.cumsum()
    return frame[COHORT_COLUMNS]


def _period_of(day: dt.date, period: str) -> dt.date:
    if period == "week":
        return day - dt.timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day.replace(month=3 * ((day.month - 1) // 3) + 1, day=1)


def _offset(start: dt.date, later: dt.date, period: str) -> int:
    """Whole periods from the period starting ``start`` to the one starting ``later``."""
    if period == "week":
        return (later - start).days // 7
    months = (later.year - start.year) * 12 + later.month - start.month
    return months // 3 if period == "quarter" else months


def _shift(start: dt.date, k: int, period: str) -> dt.date:
    if period == "week":
        return start + dt.timedelta(weeks=k)
    months = start.month - 1 + k * (3 if period == "quarter" else 1)
    return dt.date(start.year + months // 12, months % 12 + 1, 1)


# -- the registered analysis ----------------------------------------------------------------
class CohortParams(PeriodParams):
    segment: SegmentRef = None
    period: CohortPeriod = Field(
        "month", description="Cohort and offset period: week (from Monday), month or quarter."
    )


@analysis("cohorts", CohortParams)
def run_cohorts(an: Analyst, p: CohortParams) -> Tables:
    """Retention matrix of acquisition cohorts: who ordered again, and revenue, period by period.

    Tables: ``cohorts`` (long form, see :func:`cohorts`; ``since`` / ``until`` select
    cohorts by their first day) and ``matrix`` (retention shares in wide form, see
    :func:`retention_matrix`).
    """
    long = cohorts(an, p.segment, period=p.period, since=p.since, until=p.until)
    return {"cohorts": long, "matrix": retention_matrix(long)}
