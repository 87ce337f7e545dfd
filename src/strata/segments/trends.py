"""Every segment's size day by day, for the sparklines of a segment list."""

from __future__ import annotations

import datetime as dt
from itertools import accumulate
from typing import Any

import ibis

from strata.catalog import Workspace
from strata.context import Strata
from strata.errors import NotFound
from strata.segments.engine import Segments


def daily_sizes(app: Strata, workspace: Workspace, days: int) -> dict[str, Any]:
    """Each segment's members at the end of each of the last ``days`` days (UTC, the last
    being now); ``None`` before the segment existed. Two grouped reads of the
    memberships, whatever the number of segments."""
    today = dt.datetime.now(dt.UTC).date()
    dates = [today - dt.timedelta(days=days - 1 - i) for i in range(days)]
    segments = Segments(app, workspace).list()
    try:
        sizes, first = _sizes(app, workspace.id, dates)
    except NotFound:  # no data yet: every segment is empty
        sizes, first = {}, {}

    def trend(seg) -> list[int | None]:
        # Before the segment existed (or its earliest pinned evaluation) it had no size.
        start = min(seg.created_at.date(), first.get(seg.id, seg.created_at.date()))
        counts = sizes.get(seg.id, [0] * days)
        return [None if day < start else n for day, n in zip(dates, counts, strict=True)]

    return {"days": dates, "segments": [{"segment_id": s.id, "sizes": trend(s)} for s in segments]}


def _sizes(
    app: Strata, workspace_id: int, dates: list[dt.date]
) -> tuple[dict[int, list[int]], dict[int, dt.date]]:
    """Sizes per segment on each of ``dates``, and the first day each had a change."""
    days = len(dates)
    m = app.warehouse.table(workspace_id, "memberships")
    # A row counts from its join to its leave; a reference instant at midnight is
    # the end of the day before, so an evaluation "as of" a day lands on that day.
    steps: dict[int, list[int]] = {}
    first: dict[int, dt.date] = {}
    for column, sign in (("joined_at", 1), ("left_at", -1)):
        rows_of = m.filter(m[column].notnull())
        t = rows_of[column]
        day = ibis.ifelse(t.time() == dt.time(0), t.date() - ibis.interval(days=1), t.date())
        rows = (
            rows_of.group_by(segment_id=rows_of.segment_id, day=day)
            .aggregate(n=rows_of.count())
            .to_pyarrow()
            .to_pylist()
        )
        for r in rows:
            segment_id = r["segment_id"]
            first[segment_id] = min(first.get(segment_id, r["day"]), r["day"])
            delta = steps.setdefault(segment_id, [0] * days)
            # Changes before the window count from its first day; after it (a pinned
            # future time), as part of now.
            i = min(max((r["day"] - dates[0]).days, 0), days - 1)
            delta[i] += sign * r["n"]
    return {k: list(accumulate(v)) for k, v in steps.items()}, first
