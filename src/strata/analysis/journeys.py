"""Journeys: the most common paths of event types a segment's members take.

A member's events in the span are put in order (by time, then event id) and, with
``collapse_repeats``, runs of the same type become one step (page, page, order is
page, order). Three ways to look:

* ``mode="first"``: the first ``steps`` steps, numbered 1 … ``steps``;
* ``mode="after"``: the member's first ``event`` (step 0) and the ``steps`` after it
  (1 … ``steps``);
* ``mode="before"``: the ``steps`` before that first ``event`` (-``steps`` … -1) and the
  anchor itself (step 0).

The answer is Sankey-ready: ``nodes`` (a step and an event type) and ``links`` (members
going from one node to the next), plus the most common whole ``paths``. The warehouse
numbers each member's events (``row_number`` with ``event_id`` as tie-break, repeats
dropped with ``lag``), lays the steps out as one column each and counts the distinct
paths in one query; nodes, links and the top paths are sums over those few rows.

On Online Retail:

>>> an = Analyst(app, as_of=ReferenceTime.parse("2011-12-10"))  # doctest: +SKIP
>>> journeys(an, steps=3)["paths"].head(2)  # doctest: +SKIP
                     path  steps  customers     share
0           order → (end)      1       2783  0.636551
1  order → refund → order      3       1098  0.251144
"""

from __future__ import annotations

import datetime as dt
import typing
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
    check_event_type,
    check_range,
    check_span,
    execute,
)
from strata.errors import InputError

Mode = Literal["first", "after", "before"]
MODES: tuple[str, ...] = typing.get_args(Mode)
#: Steps at most: a path is one column per step, so this bounds the paths query.
MAX_STEPS = 8
ARROW = " → "
END = "(end)"
START = "(start)"


def journeys(
    an: Analyst,
    segment: str | int | None = None,
    *,
    mode: Mode = "first",
    steps: int = 4,
    event: str | None = None,
    collapse_repeats: bool = True,
    limit: int = 20,
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> Tables:
    """The paths of event types members take, as three tables.

    ``mode`` and ``steps`` say which part of each member's journey is looked at (see the
    module); ``event`` is the anchor event type of ``after`` and ``before`` (ignored by
    ``first``); members who never sent it in the span are left out. Only events in the
    span (``since`` … ``until``) count, so "first" means first in the span.

    ``links`` (sorted by ``step``, ``customers`` descending, ``source``, ``target``):

    * ``step`` (int): the source's step;
    * ``source``, ``target``: node ids, ``"<step>:<event type>"`` (``"1:page_view"``);
    * ``source_event``, ``target_event``: their event types;
    * ``customers``: members whose journey goes from the one to the other.

    ``nodes`` (sorted by ``step``, ``customers`` descending, ``event_type``):

    * ``node``: the node id; ``step`` (int); ``event_type``;
    * ``customers``: members whose journey has that event type at that step.

    ``paths`` (the ``limit`` most common, by ``customers`` descending, then the steps'
    event types in alphabetical order):

    * ``path``: the event types joined by ``" → "``. A journey shorter than the steps
      asked for ends with ``"(end)"`` (``first``, ``after``: the member did nothing
      more) or, for ``before``, starts with ``"(start)"`` (nothing earlier);
    * ``steps`` (int): the number of event types in it;
    * ``customers``: members who took exactly that path;
    * ``share``: ``customers`` over every member with a journey.

    >>> journeys(an, "Champions", mode="after", event="refund", steps=2)  # doctest: +SKIP
    """
    check_range("limit", limit, 1, 500)
    anchor = _anchor(mode, steps, event, since, until)
    numbers = _step_numbers(mode, steps)
    walk = _steps(an, segment, mode, steps, anchor, collapse_repeats, since, until)
    # One query (each costs seconds on Spark, and every one would sort all events
    # again): the members' journeys grouped into distinct paths, one column per step.
    # Paths are few (at most the event types to the power of the steps, in practice
    # hundreds), and nodes, links and the top paths are all sums over them.
    columns = [f"s{i}" for i in range(len(numbers))]
    per = walk.group_by("customer_id").aggregate(
        **{
            c: ibis.cases((walk.step == n, walk.event_type)).max()
            for c, n in zip(columns, numbers, strict=True)
        }
    )
    grouped = execute(per.group_by(*columns).aggregate(customers=per.count()))
    if grouped.empty and mode != "first":
        check_event_type(an, anchor)
    grouped["customers"] = grouped.customers.astype("int64")
    for c in columns:
        grouped[c] = grouped[c].astype("object").where(grouped[c].notna(), None)
    return {
        "links": _links(grouped, columns, numbers),
        "nodes": _nodes(grouped, columns, numbers),
        "paths": _paths(grouped, columns, mode, limit),
    }


def journey_customers(
    an: Analyst,
    segment: str | int | None = None,
    *,
    step: int,
    source_event: str,
    target_event: str | None = None,
    mode: Mode = "first",
    steps: int = 4,
    event: str | None = None,
    collapse_repeats: bool = True,
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> ibis.Table:
    """``customer_id`` of the members behind one Sankey node of :func:`journeys` with the
    same parameters (``source_event`` at ``step``) or, with ``target_event``, one link
    (then ``target_event`` at the next step): as many as its ``customers``.

    >>> journey_customers(an, "Champions", step=1, source_event="order")  # doctest: +SKIP
    """
    anchor = _anchor(mode, steps, event, since, until)
    walk = _steps(an, segment, mode, steps, anchor, collapse_repeats, since, until)
    at = walk.filter(walk.step == step, walk.event_type == source_event)
    if target_event is not None:
        then = walk.filter(walk.step == step + 1, walk.event_type == target_event)
        at = at.semi_join(then, "customer_id")
    return at.select("customer_id")


def _anchor(
    mode: str, steps: int, event: str | None, since: dt.date | None, until: dt.date | None
) -> str:
    """The anchor event type, once the parameters every journey takes are checked."""
    if mode not in MODES:
        raise InputError(f"mode {mode!r} is not one of {', '.join(MODES)}")
    check_range("steps", steps, 1, MAX_STEPS)
    check_span(since, until)
    anchor = (event or "").strip()
    if mode != "first" and not anchor:
        raise InputError(
            f"mode {mode!r} needs an event: the event type the journeys start or end at"
        )
    return anchor


def _nodes(grouped: pd.DataFrame, columns: list[str], numbers: list[int]) -> pd.DataFrame:
    parts = []
    for c, n in zip(columns, numbers, strict=True):
        at = grouped[grouped[c].notna()]
        part = at.groupby(c, as_index=False).customers.sum().rename(columns={c: "event_type"})
        parts.append(part.assign(step=n))
    nodes = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if nodes.empty:
        nodes = pd.DataFrame({"event_type": [], "customers": [], "step": []})
    nodes["step"] = nodes.step.astype("int64")
    nodes["customers"] = nodes.customers.astype("int64")
    nodes["node"] = [_node(s, t) for s, t in zip(nodes.step, nodes.event_type, strict=True)]
    nodes = nodes.sort_values(
        ["step", "customers", "event_type"], ascending=[True, False, True], kind="mergesort"
    )
    return nodes[["node", "step", "event_type", "customers"]].reset_index(drop=True)


def _links(grouped: pd.DataFrame, columns: list[str], numbers: list[int]) -> pd.DataFrame:
    parts = []
    for (a, n), b in zip(zip(columns, numbers, strict=True), columns[1:], strict=False):
        both = grouped[grouped[a].notna() & grouped[b].notna()]
        part = both.groupby([a, b], as_index=False).customers.sum()
        parts.append(part.rename(columns={a: "source_event", b: "target_event"}).assign(step=n))
    links = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if links.empty:
        links = pd.DataFrame({"source_event": [], "target_event": [], "customers": [], "step": []})
    links["step"] = links.step.astype("int64")
    links["customers"] = links.customers.astype("int64")
    links["source"] = [_node(s, t) for s, t in zip(links.step, links.source_event, strict=True)]
    links["target"] = [_node(s + 1, t) for s, t in zip(links.step, links.target_event, strict=True)]
    links = links.sort_values(
        ["step", "customers", "source", "target"],
        ascending=[True, False, True, True],
        kind="mergesort",
    )
    columns_out = ["step", "source", "target", "source_event", "target_event", "customers"]
    return links[columns_out].reset_index(drop=True)


def _steps(
    an: Analyst,
    segment: str | int | None,
    mode: str,
    steps: int,
    anchor: str,
    collapse: bool,
    since: dt.date | None,
    until: dt.date | None,
) -> ibis.Table:
    """``customer_id``, ``step`` and ``event_type`` of each member's steps in the window."""
    e = an.events(since, until).select("customer_id", "event_id", "timestamp", "event_type")
    if not (segment is None or str(segment).strip() == ""):
        # IN, not a semi-join: Ibis writes PostgreSQL a SEMI JOIN it cannot read once
        # the table is joined again (to the anchors).
        e = e.filter(e.customer_id.isin(an.members(segment).customer_id))
    backwards = mode == "before"
    if mode != "first":
        e = _from_anchor(e, anchor, backwards)
    # Sorting every member's events is the cost: "after" and "before" sort only the
    # events from or up to the anchor, and "before" counts back from it (step -rn).
    # Repeats collapse the same either way: only the sequence of types matters.
    order = [e.timestamp.desc(), e.event_id.desc()] if backwards else [e.timestamp, e.event_id]
    w = ibis.window(group_by=e.customer_id, order_by=order)
    if collapse:
        e = e.mutate(_previous=e.event_type.lag().over(w))
        e = e.filter(e._previous.isnull() | (e._previous != e.event_type)).drop("_previous")
        order = [e.timestamp.desc(), e.event_id.desc()] if backwards else [e.timestamp, e.event_id]
        w = ibis.window(group_by=e.customer_id, order_by=order)
    # Row numbers are 0-based on every backend; event_id makes them unique.
    e = e.mutate(rn=ibis.row_number().over(w).cast("int64"))
    if mode == "first":
        e = e.filter(e.rn < steps)
        return e.select("customer_id", "event_type", step=(e.rn + 1).cast("int64"))
    e = e.filter(e.rn <= steps)
    step = -e.rn if backwards else e.rn
    return e.select("customer_id", "event_type", step=step.cast("int64"))


def _from_anchor(e: ibis.Table, anchor: str, backwards: bool) -> ibis.Table:
    """Each customer's events from their first ``anchor`` event on (``backwards``: up to
    and including it); customers without one are left out."""
    a = e.filter(e.event_type == anchor)
    at = a.group_by("customer_id").aggregate(_at=a.timestamp.min())
    tied = a.inner_join(at, "customer_id")
    tied = tied.filter(tied.timestamp == tied._at)
    first = tied.group_by("customer_id").aggregate(_at=tied._at.min(), _id=tied.event_id.min())
    j = e.inner_join(first, "customer_id")
    same = j.timestamp == j._at
    if backwards:
        keep = (j.timestamp < j._at) | (same & (j.event_id <= j._id))
    else:
        keep = (j.timestamp > j._at) | (same & (j.event_id >= j._id))
    return j.filter(keep).drop("_at", "_id")


def _paths(grouped: pd.DataFrame, columns: list[str], mode: str, limit: int) -> pd.DataFrame:
    """The ``limit`` most common paths; ties by the steps' event types, a missing step
    first."""
    total = int(grouped.customers.sum())
    keys = {f"_k{c}": grouped[c].fillna("") for c in columns}
    ranked = grouped.assign(**keys).sort_values(
        ["customers", *keys], ascending=[False] + [True] * len(keys), kind="mergesort"
    )
    top = ranked.head(limit)
    texts, lengths = [], []
    for row in top[columns].itertuples(index=False):
        types = [t for t in row if isinstance(t, str)]
        lengths.append(len(types))
        short = len(types) < len(columns)
        if mode == "before":
            texts.append(ARROW.join(([START] if short else []) + types))
        else:
            texts.append(ARROW.join(types + ([END] if short else [])))
    out = pd.DataFrame(
        {
            "path": pd.Series(texts, dtype="object"),
            "steps": pd.Series(lengths, dtype="int64"),
            "customers": pd.Series(top.customers.to_numpy(), dtype="int64"),
        }
    )
    out["share"] = out.customers / total if total else pd.Series([], dtype="float64")
    return out


def _step_numbers(mode: str, steps: int) -> list[int]:
    if mode == "first":
        return list(range(1, steps + 1))
    if mode == "after":
        return list(range(0, steps + 1))
    return list(range(-steps, 1))


def _node(step: int, event_type: str) -> str:
    return f"{int(step)}:{event_type}"


# -- the registered analysis -------------------------------------------------------------------
class JourneysParams(PeriodParams):
    segment: SegmentRef = None
    mode: Mode = Field(
        "first",
        description="first: each member's first steps; after / before: the steps after or "
        "before their first `event`.",
    )
    steps: int = Field(4, ge=1, le=MAX_STEPS, description="How many steps to follow.")
    event: str | None = Field(
        None,
        max_length=200,
        description="The event type journeys start at (after) or end at (before).",
    )
    collapse_repeats: bool = Field(
        True, description="Count consecutive events of the same type as one step."
    )
    limit: int = Field(20, ge=1, le=500, description="How many of the most common paths.")


@analysis("journeys", JourneysParams)
def run_journeys(an: Analyst, p: JourneysParams) -> Tables:
    """The most common paths of event types members take (Sankey nodes, links, paths)."""
    return journeys(
        an,
        p.segment,
        mode=p.mode,
        steps=p.steps,
        event=p.event,
        collapse_repeats=p.collapse_repeats,
        limit=p.limit,
        since=p.since,
        until=p.until,
    )
