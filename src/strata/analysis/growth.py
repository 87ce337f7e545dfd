"""Growth: how a segment's size moved, period by period, from its membership history.

Every evaluation of a segment stores who joined and who left at its reference instant
(``joined_at`` / ``left_at``). A change counts on the evaluation's reference *day*: an
instant at exactly midnight is the end of the previous day, as
:meth:`~strata.segments.reference.ReferenceTime.of` reads it, so a refresh "as of
2011-12-10" (stored at 2011-12-11 00:00) counts on 2011-12-10.

>>> an = Analyst(app, as_of=ReferenceTime.parse("2011-12-10"))  # doctest: +SKIP
>>> growth(an, "Champions", period="month").tail(1)  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import math
import typing

import ibis
import pandas as pd
from pydantic import Field

from strata.analysis.base import (
    Analyst,
    Period,
    PeriodParams,
    SegmentRef,
    Tables,
    analysis,
    check_span,
    execute,
    period_starts,
    timestamp_literal,
)
from strata.errors import InputError

PERIODS: tuple[str, ...] = typing.get_args(Period)
GROWTH_COLUMNS = ["period_start", "joined", "left", "members", "net_change", "growth_rate"]


def growth(
    an: Analyst,
    segment: str | int | None = None,
    *,
    period: Period = "day",
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> pd.DataFrame:
    """A segment's size and its changes for every calendar ``period`` from ``since`` to
    ``until`` (both days included), one row per period, periods with no change too.

    ``since`` defaults to the day of the segment's first membership change, ``until`` to
    the analyst's reference day; changes after the reference instant are not known.
    Weeks start on Monday. Columns:

    * ``period_start`` (date): the first day of the calendar period (the first and last
      periods may be cut short by ``since`` and ``until``);
    * ``joined``: memberships that started in the period (within ``since`` … ``until``);
    * ``left``: memberships that ended in it;
    * ``members``: members at the end of the period (at the end of ``until`` for the last);
    * ``net_change``: ``joined - left``;
    * ``growth_rate``: ``members`` over the members at the end of the previous period
      (for the first, at the start of ``since``), minus 1; null when that was 0.

    >>> growth(an, "Champions", period="week")  # doctest: +SKIP
    """
    frame, _, _ = _growth(an, segment, period, since, until)
    return frame


def summarize_growth(periods: pd.DataFrame, *, since: dt.date, until: dt.date) -> pd.DataFrame:
    """One row over the whole span of :func:`growth`'s ``periods`` (``since`` … ``until``):

    * ``since``, ``until`` (dates) and ``days``: the span, both ends included;
    * ``members_at_start``: members at the start of ``since``;
    * ``members_now``: members at the end of ``until``;
    * ``change``: ``members_now - members_at_start``;
    * ``growth_rate``: ``members_now / members_at_start - 1`` (null when it started at 0);
    * ``joined``, ``left``: memberships started and ended within the span;
    * ``average_daily_growth``: the compound daily rate ``(members_now /
      members_at_start) ** (1 / days) - 1`` (null when it started at 0).
    """
    days = (until - since).days + 1
    if periods.empty:
        start = end = joined = left = 0
    else:
        end = int(periods.members.iloc[-1])
        start = int(periods.members.iloc[0] - periods.net_change.iloc[0])
        joined, left = int(periods.joined.sum()), int(periods.left.sum())
    rate = end / start - 1 if start else math.nan
    daily = (end / start) ** (1 / days) - 1 if start else math.nan
    return pd.DataFrame(
        {
            "since": [since],
            "until": [until],
            "days": [days],
            "members_at_start": [start],
            "members_now": [end],
            "change": [end - start],
            "growth_rate": [rate],
            "joined": [joined],
            "left": [left],
            "average_daily_growth": [daily],
        }
    )


def _growth(
    an: Analyst,
    segment: str | int | None,
    period: str,
    since: dt.date | None,
    until: dt.date | None,
) -> tuple[pd.DataFrame, dt.date, dt.date]:
    if segment is None or str(segment).strip() == "":
        raise InputError(
            "growth needs a segment: give its name or id (`strata segments list` shows them)"
        )
    if period not in PERIODS:
        raise InputError(f"period {period!r} is not one of {', '.join(PERIODS)}")
    seg = an.segment(segment)
    until = until or an.ref.day
    if until > an.ref.day:
        raise InputError(
            f"until {until} is after the as-of day {an.ref.day}: nothing later is known; "
            "give an earlier until or a later as-of"
        )
    check_span(since, until)
    changes = _changes_by_day(an, seg.id)
    if since is None:
        since = min(changes.index[0], until) if len(changes) else until
    before = changes[changes.index < since]
    base = int(before.joined.sum() - before.left.sum())
    within = changes[(changes.index >= since) & (changes.index <= until)]
    starts = period_starts(since, until, period)
    joined = dict.fromkeys(starts, 0)
    left = dict.fromkeys(starts, 0)
    for day, row in within.iterrows():  # one row per change day: a small loop
        joined[_period_start(day, period)] += int(row.joined)
        left[_period_start(day, period)] += int(row.left)
    frame = pd.DataFrame(
        {
            "period_start": starts,
            "joined": pd.Series(list(joined.values()), dtype="int64"),
            "left": pd.Series(list(left.values()), dtype="int64"),
        }
    )
    frame["net_change"] = frame.joined - frame.left
    frame["members"] = base + frame.net_change.cumsum()
    previous = frame.members.shift(1, fill_value=base).astype("float64")
    rate = frame.members / previous - 1
    frame["growth_rate"] = rate.where(previous != 0).astype("float64")
    return frame[GROWTH_COLUMNS], since, until


def _changes_by_day(an: Analyst, segment_id: int) -> pd.DataFrame:
    """``joined`` and ``left`` per change day (the index, sorted), known at the reference.

    The warehouse groups by calendar date and whether the instant is midnight (a few
    rows per day even when live ingest refreshes every second); pandas moves the
    midnight ones to the day before.
    """
    m = an.table("memberships")
    m = m.filter(m.segment_id == segment_id)
    known = timestamp_literal(an.ref.instant)
    one, zero = ibis.literal(1, type="int64"), ibis.literal(0, type="int64")
    joins = m.filter(m.joined_at <= known).select(at=m.joined_at, joined=one, left=zero)
    gone = m.filter(m.left_at.notnull() & (m.left_at <= known))
    lefts = gone.select(at=gone.left_at, joined=zero, left=one)
    changes = joins.union(lefts)
    rows = execute(
        changes.group_by(
            day=changes.at.date(), midnight=changes.at == changes.at.truncate("D")
        ).aggregate(joined=changes.joined.sum(), left=changes.left.sum())
    )
    if rows.empty:
        return pd.DataFrame({"joined": [], "left": []}, dtype="int64")
    one_day = dt.timedelta(days=1)
    rows["change_day"] = [
        d - one_day if midnight else d for d, midnight in zip(rows.day, rows.midnight, strict=True)
    ]
    out = rows.groupby("change_day")[["joined", "left"]].sum().sort_index()
    return out.astype("int64")


def _period_start(day: dt.date, period: str) -> dt.date:
    if period == "week":
        return day - dt.timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    if period == "quarter":
        return day.replace(month=3 * ((day.month - 1) // 3) + 1, day=1)
    if period == "year":
        return day.replace(month=1, day=1)
    return day


# -- the registered analysis ----------------------------------------------------------------
class GrowthParams(PeriodParams):
    segment: SegmentRef = None
    period: Period = Field("day", description="Calendar period of each row (weeks start Monday).")


@analysis("growth", GrowthParams)
def run_growth(an: Analyst, p: GrowthParams) -> Tables:
    """Size and growth of a segment per day, week, month, quarter or year: joined, left, members.

    Tables: ``growth`` (one row per period, see :func:`growth`) and ``summary`` (one row
    over the whole span, see :func:`summarize_growth`).
    """
    frame, since, until = _growth(an, p.segment, p.period, p.since, p.until)
    return {"growth": frame, "summary": summarize_growth(frame, since=since, until=until)}
