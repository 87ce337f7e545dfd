"""Behaviour: what a segment's members do, next to what the whole customer base does.

Five analyses, each over the events of a span of days (``since`` … ``until``, both
included, and always before the analyst's reference instant):

* :func:`event_mix`: the kinds of event members send;
* :func:`purchase_frequency`: how many orders members place;
* :func:`order_gaps` and :func:`order_gap_summary`: the days between a customer's orders;
* :func:`heatmap`: when (weekday × hour, UTC) they act;
* :func:`top_products`: what they buy, and how much more than everyone else.

Each is one warehouse query: the rows are flagged with membership by a join, so the
segment's figures and the base's come out of the same ``group by``.

On Online Retail (the whole base, so the segment columns equal the base ones):

>>> an = Analyst(app, as_of=ReferenceTime.parse("2011-12-10"))  # doctest: +SKIP
>>> event_mix(an)  # doctest: +SKIP
  event_type  events  share_of_events  customers  events_per_customer  base_events  base_share
0      order   18536         0.835331       4339             4.239707        18536    0.835331
1     refund    3654         0.164669       1589             0.835773         3654    0.164669
"""

from __future__ import annotations

import datetime as dt
import math

import ibis
import numpy as np
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

#: Day names by ``day_of_week`` (0 = Monday, as Python's ``weekday()``).
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

#: Buckets of :func:`order_gaps`: label, first and last day counted (``None``: no end).
GAP_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0-7", 0, 7),
    ("8-14", 8, 14),
    ("15-30", 15, 30),
    ("31-60", 31, 60),
    ("61-90", 61, 90),
    ("91-180", 91, 180),
    ("181-365", 181, 365),
    ("366+", 366, None),
)


# -- event mix ---------------------------------------------------------------------------------
def event_mix(
    an: Analyst,
    segment: str | int | None = None,
    *,
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> pd.DataFrame:
    """Events of the segment's members by event type, next to the whole base's mix.

    One row per event type that anyone in the base sent in the span, sorted by
    ``events`` (descending), then ``event_type``. Columns:

    * ``event_type``;
    * ``events``: events of that type sent by members;
    * ``share_of_events``: ``events`` over all events of members (0 when they sent none);
    * ``customers``: members who sent at least one event of that type;
    * ``events_per_customer``: ``events`` over the number of members (every member,
      active or not; 0 for an empty segment);
    * ``base_events``: events of that type sent by anyone;
    * ``base_share``: ``base_events`` over all events of the base.

    For the whole base (no segment) the segment columns equal the base ones.

    >>> event_mix(an, "Champions", since=dt.date(2011, 1, 1))  # doctest: +SKIP
    """
    check_span(since, until)
    members = an.members(segment)
    e = _flag(an.events(since, until), members, segment)
    per_type = e.group_by("event_type").aggregate(
        events=e.count(where=e._in),
        customers=e.customer_id.nunique(where=e._in),
        base_events=e.count(),
    )
    size = members.aggregate(members=members.count())
    frame = execute(per_type.cross_join(size))
    n_members = int(frame.members.iloc[0]) if len(frame) else 0
    for c in ("events", "customers", "base_events"):
        frame[c] = frame[c].fillna(0).astype("int64")
    frame["share_of_events"] = _ratio(frame.events, frame.events.sum())
    frame["events_per_customer"] = _ratio(frame.events, n_members)
    frame["base_share"] = _ratio(frame.base_events, frame.base_events.sum())
    frame = frame.sort_values(
        ["events", "event_type"], ascending=[False, True], kind="mergesort"
    ).reset_index(drop=True)
    return frame[
        [
            "event_type",
            "events",
            "share_of_events",
            "customers",
            "events_per_customer",
            "base_events",
            "base_share",
        ]
    ]


# -- purchase frequency ------------------------------------------------------------------------
def purchase_frequency(
    an: Analyst,
    segment: str | int | None = None,
    *,
    max_orders: int = 10,
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> pd.DataFrame:
    """How many orders each member placed in the span, as a distribution.

    Orders are events of the workspace's order type (refunds do not take one away).
    One row per number of orders from 0 to ``max_orders``, the last row counting
    ``max_orders`` or more; every row is present, zeros included. Columns:

    * ``orders`` (int): the number of orders (for the last row: at least that many);
    * ``label``: ``orders`` as text, the last one with a ``+`` (``"10+"``);
    * ``customers``: members with that many orders (members who placed none count in 0);
    * ``share``: ``customers`` over the members (0 for an empty segment);
    * ``base_customers``, ``base_share``: the same over every customer of the base.

    >>> purchase_frequency(an, "Champions", max_orders=5)  # doctest: +SKIP
    """
    check_span(since, until)
    check_range("max_orders", max_orders, 1, 100)
    e = an.events(since, until)
    e = e.filter(e.event_type == an.order_event)
    counts = e.group_by("customer_id").aggregate(n=e.count())
    c = an.customers().select("customer_id")
    joined = c.left_join(counts, c.customer_id == counts.customer_id)
    per = joined.select(customer_id=c.customer_id, n=counts.n.fill_null(0))
    per = _flag(per, an.members(segment), segment)
    bucket = ibis.least(per.n, ibis.literal(max_orders, type="int64")).cast("int64")
    per = per.mutate(bucket=bucket)
    frame = execute(
        per.group_by("bucket").aggregate(
            customers=per.count(where=per._in), base_customers=per.count()
        )
    )
    got = frame.set_index("bucket")
    out = pd.DataFrame({"orders": pd.Series(range(max_orders + 1), dtype="int64")})
    out["label"] = [str(n) for n in range(max_orders)] + [f"{max_orders}+"]
    for c in ("customers", "base_customers"):
        out[c] = got[c].reindex(out.orders).fillna(0).astype("int64").to_numpy()
    out["share"] = _ratio(out.customers, out.customers.sum())
    out["base_share"] = _ratio(out.base_customers, out.base_customers.sum())
    return out[["orders", "label", "customers", "share", "base_customers", "base_share"]]


# -- order gaps --------------------------------------------------------------------------------
def order_gaps(
    an: Analyst,
    segment: str | int | None = None,
    *,
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> pd.DataFrame:
    """Days between consecutive orders of the same customer, as a histogram.

    A customer's orders in the span are sorted by time (then event id); each one after
    the first makes a gap: the calendar days between the two orders' dates (UTC), so
    two orders on the same day are 0 days apart. Only orders inside the span count.
    One row per bucket of :data:`GAP_BUCKETS` (0–7, 8–14, 15–30, 31–60, 61–90, 91–180,
    181–365 days, both ends included, and 366 days or more), every bucket present.
    Columns:

    * ``bucket``: the bucket's label (``"0-7"``, …, ``"366+"``);
    * ``min_days``, ``max_days``: its first and last day (``max_days`` null for the last);
    * ``gaps``: gaps of members falling in it;
    * ``share``: ``gaps`` over all gaps of members (0 when there are none);
    * ``base_gaps``, ``base_share``: the same over every customer.

    >>> order_gaps(an, "Loyal Customers")  # doctest: +SKIP
    """
    return _histogram(_gap_counts(an, segment, since, until))


def order_gap_summary(
    an: Analyst,
    segment: str | int | None = None,
    *,
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> pd.DataFrame:
    """The gaps of :func:`order_gaps` in figures: one row for the segment, one for the base.

    Columns:

    * ``scope``: ``"segment"`` or ``"base"``;
    * ``gaps``: the number of gaps;
    * ``customers_with_repeat``: customers with at least two orders in the span;
    * ``mean``: the mean gap in days;
    * ``median``, ``p25``, ``p75``: exact percentiles of the gaps in days, interpolated
      linearly between the two nearest gaps as numpy's default does (the median of 2, 4,
      9, 10 is 6.5); null when there is no gap.

    >>> order_gap_summary(an, "Loyal Customers")  # doctest: +SKIP
    """
    return _summary(_gap_counts(an, segment, since, until))


def _gap_counts(
    an: Analyst, segment: str | int | None, since: dt.date | None, until: dt.date | None
) -> pd.DataFrame:
    """Gaps counted by their exact number of days: ``gap``, ``gaps``, ``repeaters`` (gaps
    that are a customer's first) and the same for the base as ``base_…``, sorted by gap.

    Gaps are whole days, so there are at most as many rows as days in the data: the
    warehouse counts them exactly and pandas reads the exact percentiles off the counts
    (no backend's approximate percentile, identical everywhere).
    """
    check_span(since, until)
    g = _flag(_gaps(an, since, until), an.members(segment), segment)
    first = g.rn == 1  # a customer's second order: one gap per customer with a repeat
    counts = execute(
        g.group_by("gap").aggregate(
            gaps=g.count(where=g._in),
            repeaters=g.count(where=g._in & first),
            base_gaps=g.count(),
            base_repeaters=g.count(where=first),
        )
    )
    counts = counts.astype("int64").sort_values("gap", kind="mergesort")
    return counts.reset_index(drop=True)


def _histogram(counts: pd.DataFrame) -> pd.DataFrame:
    index = range(len(GAP_BUCKETS))
    edges = [hi for _, _, hi in GAP_BUCKETS if hi is not None]
    bucket = np.searchsorted(np.array(edges), counts.gap.to_numpy(), side="left")
    per = counts.assign(bucket=bucket).groupby("bucket")[["gaps", "base_gaps"]].sum()
    per = per.reindex(index, fill_value=0)
    out = pd.DataFrame(
        {
            "bucket": [b[0] for b in GAP_BUCKETS],
            "min_days": pd.Series([b[1] for b in GAP_BUCKETS], dtype="int64"),
            "max_days": pd.Series([b[2] for b in GAP_BUCKETS], dtype="Int64"),
            "gaps": per.gaps.astype("int64").to_numpy(),
            "base_gaps": per.base_gaps.astype("int64").to_numpy(),
        }
    )
    out["share"] = _ratio(out.gaps, out.gaps.sum())
    out["base_share"] = _ratio(out.base_gaps, out.base_gaps.sum())
    return out[["bucket", "min_days", "max_days", "gaps", "share", "base_gaps", "base_share"]]


def _summary(counts: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for scope, prefix in (("segment", ""), ("base", "base_")):
        weights = counts[f"{prefix}gaps"].to_numpy()
        days = counts.gap.to_numpy()
        n = int(weights.sum())
        rows.append(
            {
                "scope": scope,
                "gaps": n,
                "customers_with_repeat": int(counts[f"{prefix}repeaters"].sum()),
                "mean": float((days * weights).sum()) / n if n else math.nan,
                "median": _percentile(days, weights, 2),
                "p25": _percentile(days, weights, 1),
                "p75": _percentile(days, weights, 3),
            }
        )
    out = pd.DataFrame(rows)
    for c in ("gaps", "customers_with_repeat"):
        out[c] = out[c].astype("int64")
    for c in ("mean", "median", "p25", "p75"):
        out[c] = out[c].astype("float64")
    return out[["scope", "gaps", "customers_with_repeat", "mean", "median", "p25", "p75"]]


def _gaps(an: Analyst, since: dt.date | None, until: dt.date | None) -> ibis.Table:
    """One row per order after a customer's first in the span: ``customer_id``, ``rn``
    (the order's 0-based number) and ``gap`` (whole days since the previous order)."""
    e = an.events(since, until)
    e = e.filter(e.event_type == an.order_event)
    # Days since 1970 of the dates: the same integers on every backend, where
    # timestamp differences come back as different interval types.
    e = e.mutate(day=e.timestamp.date().epoch_days().cast("int64"))
    w = ibis.window(group_by=e.customer_id, order_by=[e.timestamp, e.event_id])
    e = e.mutate(previous=e.day.lag().over(w), rn=ibis.row_number().over(w))
    e = e.filter(e.previous.notnull())
    return e.select("customer_id", "rn", gap=(e.day - e.previous).cast("int64"))


def _percentile(days: np.ndarray, weights: np.ndarray, quarter: int) -> float:
    """The ``quarter``/4 percentile of values ``days`` repeated ``weights`` times (sorted):
    at 0-based position ``quarter * (n - 1) / 4``, interpolated between the two values
    around it (numpy's default). Integer positions keep it exact."""
    n = int(weights.sum())
    if n == 0:
        return math.nan
    low, rest = divmod(quarter * (n - 1), 4)
    cumulative = np.cumsum(weights)
    # The value at position k is the first whose cumulative count exceeds k.
    below = float(days[np.searchsorted(cumulative, low, side="right")])
    above = float(days[np.searchsorted(cumulative, min(low + 1, n - 1), side="right")])
    return below + (above - below) * rest / 4


# -- heatmap -----------------------------------------------------------------------------------
def heatmap(
    an: Analyst,
    segment: str | int | None = None,
    *,
    event: str | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> pd.DataFrame:
    """Events of the segment's members by day of the week and hour of the day (UTC).

    ``event`` is an event type (default: the workspace's order event) or ``*`` for every
    event. All 7 × 24 cells are present (zeros too), sorted by day, then hour. Columns:

    * ``day_of_week`` (int): 0 = Monday … 6 = Sunday;
    * ``day``: the day's English name;
    * ``hour`` (int): 0 … 23;
    * ``events``: members' events in that hour of that weekday over the whole span;
    * ``customers``: members with at least one of them;
    * ``share``: ``events`` over all members' events counted (0 when there are none);
    * ``base_events``, ``base_share``: the same over every customer.

    >>> heatmap(an, "Champions", event="*")  # doctest: +SKIP
    """
    check_span(since, until)
    wanted = (event or "").strip() or an.order_event
    e = an.events(since, until)
    if wanted != "*":
        e = e.filter(e.event_type == wanted)
    e = _flag(e, an.members(segment), segment)
    e = e.mutate(
        day_of_week=e.timestamp.day_of_week.index().cast("int64"),
        hour=e.timestamp.hour().cast("int64"),
    )
    frame = execute(
        e.group_by("day_of_week", "hour").aggregate(
            events=e.count(where=e._in),
            customers=e.customer_id.nunique(where=e._in),
            base_events=e.count(),
        )
    )
    if frame.empty and event and wanted != "*":
        check_event_type(an, wanted)
    got = frame.set_index(["day_of_week", "hour"])
    grid = pd.MultiIndex.from_product([range(7), range(24)], names=["day_of_week", "hour"])
    out = got.reindex(grid).fillna(0).astype("int64").reset_index()
    out["day_of_week"] = out.day_of_week.astype("int64")
    out["hour"] = out.hour.astype("int64")
    out["day"] = [DAY_NAMES[d] for d in out.day_of_week]
    out["share"] = _ratio(out.events, out.events.sum())
    out["base_share"] = _ratio(out.base_events, out.base_events.sum())
    return out[
        ["day_of_week", "day", "hour", "events", "customers", "share", "base_events", "base_share"]
    ]


# -- top products ------------------------------------------------------------------------------
def top_products(
    an: Analyst,
    segment: str | int | None = None,
    *,
    limit: int = 20,
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> pd.DataFrame:
    """The products members spend most on: the lines of their orders in the span.

    Order lines (``order_items``) of order events count; refunds do not (so revenue
    here is gross). Lines without a product id are left out. The top ``limit`` products
    by ``revenue`` (descending), then ``product_id``; only products members bought.
    Columns:

    * ``product_id``; ``product_name``: the name most of the workspace's stored order
      lines of that product carry, whenever they were (ties: the first alphabetically);
    * ``orders``: members' orders holding the product;
    * ``customers``: members who bought it;
    * ``quantity``: units members bought;
    * ``revenue``: ``quantity × unit_price`` summed over members' lines;
    * ``share_of_segment_revenue``: ``revenue`` over the revenue of all members' lines;
    * ``penetration_in_segment``: ``customers`` over the members who bought anything;
    * ``base_customers``: customers of the whole base who bought it;
    * ``penetration_in_base``: ``base_customers`` over every customer who bought anything;
    * ``lift``: ``penetration_in_segment / penetration_in_base`` (above 1: the segment
      buys it more often than the base).

    >>> top_products(an, "Champions", limit=10)  # doctest: +SKIP
    """
    check_span(since, until)
    check_range("limit", limit, 1, 500)
    orders = an.events(since, until)
    orders = orders.filter(orders.event_type == an.order_event).select("event_id", "customer_id")
    items = an.table("order_items")
    items = items.filter(items.product_id.notnull()).select(
        "event_id", "product_id", "product_name", "quantity", "unit_price"
    )
    lines = items.inner_join(orders, "event_id")
    lines = lines.mutate(amount=lines.quantity * lines.unit_price)
    # Distinct counts are the slow part: group by order, then by customer, and count
    # rows instead (an order may hold the same product on several lines).
    per_order = lines.group_by("product_id", "customer_id", "event_id").aggregate(
        quantity=lines.quantity.sum(), revenue=lines.amount.sum()
    )
    bought = per_order.group_by("product_id", "customer_id").aggregate(
        orders=per_order.count(),
        quantity=per_order.quantity.sum(),
        revenue=per_order.revenue.sum(),
    )
    bought = _flag(bought, an.members(segment), segment)
    # One row per buyer marks them (their first product), so buyers are counted in the
    # same pass.
    mine = ibis.window(group_by=bought.customer_id)
    bought = bought.mutate(first=bought.product_id == bought.product_id.min().over(mine))
    per = bought.group_by("product_id").aggregate(
        orders=bought.orders.sum(where=bought._in),
        customers=bought.count(where=bought._in),
        quantity=bought.quantity.sum(where=bought._in),
        revenue=bought.revenue.sum(where=bought._in),
        base_customers=bought.count(),
        _buyers=bought.count(where=bought._in & bought.first),
        _base_buyers=bought.count(where=bought.first),
    )
    everything = ibis.window()
    per = per.mutate(
        segment_revenue=per.revenue.sum().over(everything),
        segment_buyers=per._buyers.sum().over(everything),
        base_buyers=per._base_buyers.sum().over(everything),
    )
    top = per.filter(per.customers > 0).order_by([per.revenue.desc(), per.product_id]).limit(limit)
    frame = execute(top)
    frame["product_name"] = frame.product_id.map(_product_names(items, frame.product_id.tolist()))
    for c in ("orders", "customers", "base_customers", "segment_buyers", "base_buyers"):
        frame[c] = frame[c].fillna(0).astype("int64")
    for c in ("quantity", "revenue", "segment_revenue"):
        frame[c] = frame[c].astype("float64")
    frame = frame.sort_values(
        ["revenue", "product_id"], ascending=[False, True], kind="mergesort"
    ).reset_index(drop=True)
    frame["share_of_segment_revenue"] = _ratio(frame.revenue, frame.segment_revenue)
    frame["penetration_in_segment"] = _ratio(frame.customers, frame.segment_buyers)
    frame["penetration_in_base"] = _ratio(frame.base_customers, frame.base_buyers)
    frame["lift"] = _ratio(frame.penetration_in_segment, frame.penetration_in_base)
    return frame[
        [
            "product_id",
            "product_name",
            "orders",
            "customers",
            "quantity",
            "revenue",
            "share_of_segment_revenue",
            "penetration_in_segment",
            "base_customers",
            "penetration_in_base",
            "lift",
        ]
    ]


def _product_names(items: ibis.Table, product_ids: list[str]) -> dict[str, str]:
    """The name most of the stored lines of each product carry (ties: the first
    alphabetically), for a few products (a second small query: naming every product
    would cost as much as the whole answer)."""
    if not product_ids:
        return {}
    named = items.filter(items.product_name.notnull(), items.product_id.isin(product_ids))
    names = named.group_by("product_id", "product_name").aggregate(lines=named.count())
    first = ibis.window(
        group_by=names.product_id, order_by=[names.lines.desc(), names.product_name]
    )
    names = names.mutate(pick=ibis.row_number().over(first))
    rows = execute(names.filter(names.pick == 0).select("product_id", "product_name"))
    return dict(zip(rows.product_id, rows.product_name, strict=True))


# -- shared helpers ----------------------------------------------------------------------------
def _is_base(segment: str | int | None) -> bool:
    return segment is None or str(segment).strip() == ""


def _flag(table: ibis.Table, members: ibis.Table, segment: str | int | None) -> ibis.Table:
    """``table`` with ``_in``: whether the row's customer is a member (true for the base)."""
    if _is_base(segment):
        return table.mutate(_in=ibis.literal(True))
    m = members.select(_member=members.customer_id)
    joined = table.left_join(m, table.customer_id == m._member)
    return joined.mutate(_in=joined._member.notnull()).drop("_member")


def _ratio(top: pd.Series, bottom: pd.Series | float) -> pd.Series:
    """``top / bottom`` as floats, 0 where ``bottom`` is 0 (an empty segment has shares 0)."""
    t = top.astype("float64")
    if isinstance(bottom, pd.Series):
        b = bottom.astype("float64")
    else:
        b = pd.Series(float(bottom), index=top.index, dtype="float64")
    return (t / b.where(b != 0)).fillna(0.0)


# -- the registered analyses -------------------------------------------------------------------
class EventMixParams(PeriodParams):
    segment: SegmentRef = None


@analysis("event-mix", EventMixParams)
def run_event_mix(an: Analyst, p: EventMixParams) -> Tables:
    """Which events a segment's members send, and how that mix compares to everyone's."""
    return {"event_mix": event_mix(an, p.segment, since=p.since, until=p.until)}


class PurchaseFrequencyParams(PeriodParams):
    segment: SegmentRef = None
    max_orders: int = Field(
        10, ge=1, le=100, description="The last bucket: this many orders or more."
    )


@analysis("purchase-frequency", PurchaseFrequencyParams)
def run_purchase_frequency(an: Analyst, p: PurchaseFrequencyParams) -> Tables:
    """How many orders each member placed: the distribution, next to the whole base's."""
    frame = purchase_frequency(an, p.segment, max_orders=p.max_orders, since=p.since, until=p.until)
    return {"purchase_frequency": frame}


class OrderGapsParams(PeriodParams):
    segment: SegmentRef = None


@analysis("order-gaps", OrderGapsParams)
def run_order_gaps(an: Analyst, p: OrderGapsParams) -> Tables:
    """Days between a customer's consecutive orders: histogram, median and quartiles."""
    counts = _gap_counts(an, p.segment, p.since, p.until)
    return {
        "gaps": _histogram(counts),
        "summary": _summary(counts),
    }


class HeatmapParams(PeriodParams):
    segment: SegmentRef = None
    event: str | None = Field(
        None,
        max_length=200,
        description="The event type to count, or * for every event (default: orders).",
    )


@analysis("heatmap", HeatmapParams)
def run_heatmap(an: Analyst, p: HeatmapParams) -> Tables:
    """When members act: events by day of the week and hour of the day (UTC)."""
    return {"heatmap": heatmap(an, p.segment, event=p.event, since=p.since, until=p.until)}


class TopProductsParams(PeriodParams):
    segment: SegmentRef = None
    limit: int = Field(20, ge=1, le=500, description="How many products to list.")


@analysis("top-products", TopProductsParams)
def run_top_products(an: Analyst, p: TopProductsParams) -> Tables:
    """The products a segment spends most on, and how much likelier it buys them (lift)."""
    frame = top_products(an, p.segment, limit=p.limit, since=p.since, until=p.until)
    return {"top_products": frame}
