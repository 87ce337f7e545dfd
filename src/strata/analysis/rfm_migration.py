"""RFM migration: which RFM segment customers were in on one date, and where they went.

RFM segments are the workspace's segments of family ``rfm`` (made by ``strata rfm``).
A customer's RFM segment on a date is read from the stored membership history at the
end of that day, so both dates need an RFM evaluation on or before them to say
anything; customers in none on a date are shown as ``(none)``.

>>> an = Analyst(app, as_of=ReferenceTime.parse("2011-12-10"))  # doctest: +SKIP
>>> rfm_migration(an, dt.date(2011, 6, 30)).head(2)  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt

import ibis
import pandas as pd
from pydantic import Field

from strata.analysis.base import Analyst, Params, Tables, analysis, execute, timestamp_literal
from strata.errors import InputError, NotFound
from strata.segments.reference import ReferenceTime

#: Stands for customers in no RFM segment on a date.
NONE = "(none)"
MIGRATION_COLUMNS = ["from_segment", "to_segment", "customers", "share_of_from"]
SUMMARY_COLUMNS = ["segment", "at_start", "at_end", "stayed", "moved_in", "moved_out"]


def rfm_migration(an: Analyst, from_date: dt.date, to_date: dt.date | None = None) -> pd.DataFrame:
    """Moves between RFM segments from the end of ``from_date`` to the end of ``to_date``
    (default: the analyst's reference day; never later than the reference instant).

    One row per (from, to) pair with customers, in the RFM grid's segment order (the
    workspace's RFM map, as :mod:`strata.segments.rfm` lists it), ``(none)`` last.
    Customers in no RFM segment on both dates are left out. Columns:

    * ``from_segment``: RFM segment at the end of ``from_date``, or ``(none)``;
    * ``to_segment``: RFM segment at the end of ``to_date``, or ``(none)``;
    * ``customers``: customers who made that move (staying counts as from = to);
    * ``share_of_from``: ``customers`` over all customers in ``from_segment`` on
      ``from_date`` (for ``(none)``, over those in none then and in one on ``to_date``).

    >>> rfm_migration(an, dt.date(2011, 6, 30), dt.date(2011, 12, 10))  # doctest: +SKIP
    """
    frame, _ = _migration(an, from_date, to_date)
    return frame


def migration_summary(moves: pd.DataFrame, segments: list[str]) -> pd.DataFrame:
    """Per RFM segment of ``segments`` (in that order) from :func:`rfm_migration`'s
    ``moves``: ``at_start`` (members on the first date), ``at_end`` (on the second),
    ``stayed`` (in it on both), ``moved_in`` (``at_end - stayed``) and ``moved_out``
    (``at_start - stayed``)."""
    start = moves.groupby("from_segment").customers.sum()
    end = moves.groupby("to_segment").customers.sum()
    same = moves[moves.from_segment == moves.to_segment].set_index("from_segment").customers
    out = pd.DataFrame({"segment": segments})
    out["at_start"] = start.reindex(segments, fill_value=0).to_numpy().astype("int64")
    out["at_end"] = end.reindex(segments, fill_value=0).to_numpy().astype("int64")
    out["stayed"] = same.reindex(segments, fill_value=0).to_numpy().astype("int64")
    out["moved_in"] = out.at_end - out.stayed
    out["moved_out"] = out.at_start - out.stayed
    return out[SUMMARY_COLUMNS]


def migration_customers(
    an: Analyst,
    from_date: dt.date,
    to_date: dt.date | None = None,
    *,
    from_segment: str,
    to_segment: str,
) -> ibis.Table:
    """``customer_id`` of the customers who were in RFM segment ``from_segment`` at the
    end of ``from_date`` and in ``to_segment`` at the end of ``to_date`` (either may be
    ``(none)``, not both): one row of :func:`rfm_migration`, as many as its ``customers``.

    >>> june = dt.date(2011, 6, 30)
    >>> migration_customers(an, june, from_segment="Champions", to_segment="Lost")  # doctest: +SKIP
    """
    if from_segment == NONE and to_segment == NONE:
        raise InputError(f"customers in {NONE} on both dates are not part of the migration")
    start, end = _instants(an, from_date, to_date)
    family = _family(an)
    ids = {name: i for i, name in family.items()}
    for name in (from_segment, to_segment):
        if name != NONE and name not in ids:
            raise NotFound(f"no RFM segment {name!r}; they are: {', '.join(ids)}")
    out = an.customers().select("customer_id")
    for instant, name in ((start, from_segment), (end, to_segment)):
        held = _held(an, family, instant)
        if name == NONE:
            out = out.anti_join(held, "customer_id")
        else:
            out = out.semi_join(held.filter(held.segment_id == ids[name]), "customer_id")
    return out


def _instants(
    an: Analyst, from_date: dt.date, to_date: dt.date | None
) -> tuple[dt.datetime, dt.datetime]:
    """The ends of the two days (never after the reference instant), once checked."""
    to_date = to_date or an.ref.day
    if from_date > to_date:
        raise InputError(
            f"from_date {from_date} is after to_date {to_date}: the migration runs forward "
            "in time, give from_date ≤ to_date"
        )
    if to_date > an.ref.day:
        raise InputError(
            f"to_date {to_date} is after the as-of day {an.ref.day}: nothing later is known; "
            "give an earlier to_date or a later as-of"
        )
    start = min(ReferenceTime.of(from_date).instant, an.ref.instant)
    end = min(ReferenceTime.of(to_date).instant, an.ref.instant)
    return start, end


def _family(an: Analyst) -> dict[int, str]:
    """The workspace's RFM segments, name by id; refuses a workspace without any."""
    family = {s.id: s.name for s in an.segs.list() if s.family == "rfm"}
    if not family:
        raise InputError(
            f"workspace {an.ws.name!r} has no RFM segments: run `strata rfm` (with --as-of "
            "for past dates) first"
        )
    return family


def _held(an: Analyst, family: dict[int, str], instant: dt.datetime) -> ibis.Table:
    """``customer_id`` and ``segment_id`` of the RFM memberships held at ``instant``."""
    m = an.table("memberships")
    t = timestamp_literal(instant)
    held = m.filter(
        m.segment_id.isin(sorted(family)), m.joined_at <= t, m.left_at.isnull() | (m.left_at > t)
    )
    return held.select("customer_id", "segment_id")


def _migration(
    an: Analyst, from_date: dt.date, to_date: dt.date | None
) -> tuple[pd.DataFrame, list[str]]:
    """The moves, and the RFM segment names in grid order."""
    start, end = _instants(an, from_date, to_date)
    family = _family(an)
    grid = list(an.segs.rfm_config().map)
    names = [n for n in grid if n in family.values()]
    names += sorted(n for n in family.values() if n not in grid)
    held = _held(an, family, start)
    before = held.select("customer_id", from_id=held.segment_id)
    held = _held(an, family, end)
    after = held.select("customer_id", to_id=held.segment_id)
    pairs = before.outer_join(after, before.customer_id == after.customer_id)
    pairs = pairs.select(
        from_id=pairs.from_id.fill_null(0).cast("int64"),
        to_id=pairs.to_id.fill_null(0).cast("int64"),
    )
    counts = execute(
        pairs.group_by("from_id", "to_id").aggregate(customers=pairs.count().cast("int64"))
    )
    label = {0: NONE, **family}
    order = {name: i for i, name in enumerate([*names, NONE])}
    frame = pd.DataFrame(
        {
            "from_segment": [label[int(i)] for i in counts.from_id],
            "to_segment": [label[int(i)] for i in counts.to_id],
            "customers": counts.customers.astype("int64"),
        }
    )
    frame = frame[frame.customers > 0]
    frame = frame.sort_values(
        ["from_segment", "to_segment"], key=lambda col: col.map(order), kind="mergesort"
    ).reset_index(drop=True)
    totals = frame.groupby("from_segment").customers.transform("sum")
    frame["share_of_from"] = (frame.customers / totals).astype("float64")
    return frame[MIGRATION_COLUMNS], names


# -- the registered analysis ----------------------------------------------------------------
class RfmMigrationParams(Params):
    from_date: dt.date = Field(
        description="The first date: RFM segments at the end of that day (YYYY-MM-DD)."
    )
    to_date: dt.date | None = Field(
        None, description="The second date (default: the as-of day); not before from_date."
    )


@analysis("rfm-migration", RfmMigrationParams, subject=None)
def run_rfm_migration(an: Analyst, p: RfmMigrationParams) -> Tables:
    """Moves between RFM segments from one date to another: who stayed, who moved where.

    Tables: ``migration`` (one row per from/to pair, see :func:`rfm_migration`) and
    ``summary`` (per RFM segment, see :func:`migration_summary`).
    """
    moves, names = _migration(an, p.from_date, p.to_date)
    return {"migration": moves, "summary": migration_summary(moves, names)}
