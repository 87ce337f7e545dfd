"""What every analysis shares: the workspace's data at one reference time, and a registry.

An analysis is a function of an :class:`Analyst` (one workspace, read as of one
instant) and its parameters, computed in the warehouse through Ibis and returning
pandas DataFrames. :func:`analysis` registers it under a name with a pydantic model of
its parameters, which the API (``GET /api/v1/workspaces/{id}/analyses/{name}``) and
the CLI (``strata analyze NAME``) both read, so the three always agree.

>>> an = Analyst(app, as_of=ReferenceTime.parse("2011-12-10"))  # doctest: +SKIP
>>> growth(an, "Champions", period="month").tail(1)  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any, Literal

import ibis
import pandas as pd
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from strata.catalog import Segment, Workspace
from strata.context import Strata
from strata.csvsafe import neutralise
from strata.errors import InputError, NotFound
from strata.segments.compile import REFUND_EVENT
from strata.segments.engine import Segments
from strata.segments.reference import ReferenceTime

#: Calendar periods analyses group by (``date_trunc`` units; weeks start on Monday).
Period = Literal["day", "week", "month", "quarter", "year"]
_TRUNCATE = {"day": "D", "week": "W", "month": "M", "quarter": "Q", "year": "Y"}

#: A segment, by name or catalog id; empty means the whole customer base.
SegmentRef = Annotated[
    str | None,
    Field(
        max_length=200,
        description="A segment's name or catalog id; leave out for the whole customer base.",
    ),
]
AsOf = Annotated[
    str | None,
    Field(
        max_length=40,
        description="Reference time: YYYY-MM-DD (the end of that day), an ISO date-time "
        "(UTC), or now (the default). Only events before it count.",
    ),
]


class Params(BaseModel):
    """Parameters every analysis takes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    as_of: AsOf = None


class PeriodParams(Params):
    """An analysis over a span of days: ``since`` and ``until`` are both included."""

    since: dt.date | None = Field(None, description="First day counted (default: the first).")
    until: dt.date | None = Field(None, description="Last day counted (default: the as-of day).")


class Analyst:
    """One workspace's customers, events and memberships as of one reference instant."""

    def __init__(
        self,
        app: Strata,
        workspace: str | Workspace | None = None,
        *,
        as_of: ReferenceTime | None = None,
    ):
        self.app = app
        self.segs = Segments(app, workspace)
        self.ws = self.segs.ws
        self.wh = app.warehouse
        self.ref = as_of or ReferenceTime.now()

    # -- tables ----------------------------------------------------------------------------
    def table(self, name: str) -> ibis.Table:
        return self.wh.table(self.ws.id, name)

    @cached_property
    def order_event(self) -> str:
        """The event type that is an order (the workspace's RFM setting, default ``order``)."""
        return self.segs.rfm_config().order_event

    def customers(self) -> ibis.Table:
        return self.table("customers")

    def events(self, since: dt.date | None = None, until: dt.date | None = None) -> ibis.Table:
        """Events before the reference instant, and within ``since`` … ``until`` (days)."""
        e = self.table("events")
        e = e.filter(e.timestamp < timestamp_literal(self.ref.instant))
        if since is not None:
            e = e.filter(e.timestamp >= timestamp_literal(dt.datetime.combine(since, dt.time(0))))
        if until is not None:
            end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(0))
            e = e.filter(e.timestamp < timestamp_literal(end))
        return e

    def money(self, since: dt.date | None = None, until: dt.date | None = None) -> ibis.Table:
        """Orders and refunds: the events revenue is counted from (refunds are negative).

        Columns of events plus ``is_order`` (a boolean) and ``amount`` (revenue, 0 when
        missing).
        """
        e = self.events(since, until)
        e = e.filter(e.event_type.isin([self.order_event, REFUND_EVENT]))
        return e.mutate(is_order=e.event_type == self.order_event, amount=e.revenue.fill_null(0.0))

    # -- segments --------------------------------------------------------------------------
    def segment(self, ref: str | int) -> Segment:
        """A segment of this workspace by name, or by catalog id when no name matches."""
        text = str(ref).strip()
        with self.app.session() as s:
            seg = s.scalar(
                sa.select(Segment).where(Segment.workspace_id == self.ws.id, Segment.name == text)
            )
            if seg is None and text.isdigit() and int(text) < 2**31:
                seg = s.scalar(
                    sa.select(Segment).where(
                        Segment.workspace_id == self.ws.id, Segment.id == int(text)
                    )
                )
        if seg is None:
            raise NotFound(
                f"no segment {text!r} in workspace {self.ws.name!r}: give a name or id from "
                "`strata segments list`"
            )
        return seg

    def members(self, segment: str | int | None) -> ibis.Table:
        """``customer_id`` of the segment's members at the reference instant.

        ``None`` is the whole customer base. Membership comes from the stored history:
        members who had joined by the instant and had not left by then.
        """
        if segment is None or str(segment).strip() == "":
            return self.customers().select("customer_id")
        seg = self.segment(segment)
        return self.members_at(seg.id, self.ref.instant)

    def members_at(self, segment_id: int, instant: dt.datetime) -> ibis.Table:
        m = self.table("memberships")
        t = timestamp_literal(instant)
        return m.filter(
            m.segment_id == segment_id,
            m.joined_at <= t,
            m.left_at.isnull() | (m.left_at > t),
        ).select("customer_id")

    def label(self, segment: str | int | None) -> str:
        """What a segment argument is called in titles and file names."""
        if segment is None or str(segment).strip() == "":
            return "All customers"
        return self.segment(segment).name

    def segment_names(self) -> list[str]:
        return [s.name for s in self.segs.list()]


# -- the registry --------------------------------------------------------------------------
#: An analysis's answer: named tables, the first the main one (CSV exports write it).
Tables = dict[str, pd.DataFrame]


@dataclass(frozen=True)
class Spec:
    name: str
    summary: str
    params: type[Params]
    run: Callable[[Analyst, Any], Tables]
    #: The parameter naming the segment the answer is about (for file names), if any.
    subject: str | None = "segment"


REGISTRY: dict[str, Spec] = {}

#: The modules that register analyses, in the order they are listed.
MODULES = (
    "growth",
    "revenue",
    "behaviour",
    "breakdown",
    "overlap",
    "compare",
    "cohorts",
    "journeys",
    "rfm_migration",
    "insights",
)


def analyses() -> dict[str, Spec]:
    """Every analysis by name, importing the modules that register them, in the order of
    ``MODULES`` (whichever of them was imported first)."""
    for module in MODULES:
        importlib.import_module(f"strata.analysis.{module}")
    place = {f"strata.analysis.{m}": i for i, m in enumerate(MODULES)}
    ordered = sorted(REGISTRY.values(), key=lambda s: place.get(s.run.__module__, len(place)))
    return {spec.name: spec for spec in ordered}


def analysis(name: str, params: type[Params], *, subject: str | None = "segment"):
    """Register ``run(analyst, params) -> Tables`` as the analysis ``name``.

    The first line of its docstring is the summary the CLI and the API show.
    """

    def register(run: Callable[[Analyst, Any], Tables]) -> Callable[[Analyst, Any], Tables]:
        summary = (run.__doc__ or name).strip().splitlines()[0]
        REGISTRY[name] = Spec(name, summary, params, run, subject)
        return run

    return register


def run_analysis(app: Strata, workspace: str | Workspace | None, name: str, params: Params):
    """Run the registered analysis ``name``: its tables and the analyst it ran with."""
    spec = analyses().get(name)
    if spec is None:
        raise NotFound(f"no analysis {name!r}; analyses are: {', '.join(sorted(REGISTRY))}")
    an = Analyst(app, workspace, as_of=ReferenceTime.parse(params.as_of))
    return spec.run(an, params), an


def file_stem(an: Analyst, spec: Spec, params: Params, table: str | None = None) -> str:
    """``<analysis>-<segment>-<as-of day>``: what an exported file is called."""
    import re

    parts = [spec.name]
    if table:
        parts.append(table)
    if spec.subject:
        subject = getattr(params, spec.subject, None)
        if isinstance(subject, list | tuple):
            names = [an.label(s) for s in subject] or ["all segments"]
            parts.append("-".join(names[:3]) + ("-and-more" if len(names) > 3 else ""))
        else:
            parts.append(an.label(subject))
    parts.append(an.ref.day.isoformat())
    stem = "-".join(parts)
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("_") or spec.name


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts: NaN and NaT become null, dates ISO text, numpy plain."""
    out = []
    for row in frame.to_dict(orient="records"):
        out.append({k: jsonable(v) for k, v in row.items()})
    return out


def jsonable(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.isoformat()
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return jsonable(value.item())
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value


# -- drill-downs: the customers behind one number --------------------------------------------
#: The customer columns a drill-down lists.
DRILL_COLUMNS = ("customer_id", "external_id", "name", "email", "country")


def customers_page(an: Analyst, ids: ibis.Table, limit: int, offset: int) -> tuple[list[dict], int]:
    """One page of the customers whose ``customer_id`` is in ``ids`` (by customer id, the
    :data:`DRILL_COLUMNS`), and how many there are in all.

    The analyses' drill-downs (``rfm_cell_customers``, ``combination_customers``…) give
    ``ids`` from the same expressions as the number they drill into, so the total is
    that number.
    """
    ids = ids.select("customer_id")
    total = int(ids.count().to_pyarrow().as_py())
    rows = (
        an.customers()
        .semi_join(ids, "customer_id")
        .select(*DRILL_COLUMNS)
        .order_by("customer_id")
        .limit(limit, offset=offset)
        .to_pyarrow()
        .to_pylist()
    )
    return rows, total


# -- small helpers the analyses share --------------------------------------------------------
def timestamp_literal(value: dt.datetime) -> ibis.Scalar:
    return ibis.literal(value, type="timestamp")


def truncate(column: ibis.Value, period: str) -> ibis.Value:
    """The first day of ``column``'s calendar ``period`` (a date)."""
    if period not in _TRUNCATE:
        raise InputError(f"period {period!r} is not one of {', '.join(_TRUNCATE)}")
    return column.truncate(_TRUNCATE[period]).date() if period != "day" else column.date()


def check_span(since: dt.date | None, until: dt.date | None) -> None:
    """Refuse a span that ends before it starts."""
    if since is not None and until is not None and since > until:
        raise InputError(f"since {since} is after until {until}: give since ≤ until")


def period_starts(first: dt.date, last: dt.date, period: str) -> list[dt.date]:
    """Every period's first day from the one holding ``first`` to the one holding ``last``."""
    start = pd.Timestamp(first)
    freq = {"day": "D", "week": "W-MON", "month": "MS", "quarter": "QS", "year": "YS"}[period]
    anchor = {
        "day": start,
        "week": start - pd.Timedelta(days=start.weekday()),
        "month": start.replace(day=1),
        "quarter": start.replace(month=3 * ((start.month - 1) // 3) + 1, day=1),
        "year": start.replace(month=1, day=1),
    }[period]
    return [d.date() for d in pd.date_range(anchor, pd.Timestamp(last), freq=freq)]


def check_range(name: str, value: int, low: int, high: int) -> None:
    """Refuse ``value`` unless it is a whole number from ``low`` to ``high``."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InputError(f"{name} must be a whole number from {low} to {high}, not {value!r}")


def check_event_type(an: Analyst, event: str) -> None:
    """Raise ``InputError`` if no event of this workspace has type ``event``."""
    e = an.table("events")
    known = execute(e.filter(e.event_type == event).limit(1).select("event_type"))
    if known.empty:
        types = execute(e.select("event_type").distinct().order_by("event_type").limit(30))
        listed = ", ".join(types.event_type) or "none yet"
        raise InputError(
            f"no events of type {event!r} in this workspace; event types are: {listed}"
        )


def execute(expr: ibis.Table) -> pd.DataFrame:
    """Run ``expr`` in the warehouse; a pandas DataFrame with a fresh index."""
    return expr.to_pyarrow().to_pandas().reset_index(drop=True)


def csv_text(frame: pd.DataFrame) -> str:
    """``frame`` as CSV; text cells a spreadsheet would run as a formula get a leading quote."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(list(frame.columns))
    for row in records(frame):
        writer.writerow([_cell(v) for v in row.values()])
    return buf.getvalue()


def _cell(value: Any) -> Any:
    if isinstance(value, list | dict):
        value = " & ".join(map(str, value)) if isinstance(value, list) else str(value)
    return neutralise(value)
