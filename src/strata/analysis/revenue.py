"""Where the money comes from: each segment's share of revenue, and its Pareto curve.

Revenue is net: orders plus refunds (negative) of the chosen period, as the traits
``total_revenue`` and ``total_orders`` count them, but only within ``since`` …
``until`` and before the reference instant. Members are those of each segment at the
reference instant, read from the stored membership history.

>>> an = Analyst(app, as_of=ReferenceTime.parse("2011-12-10"))  # doctest: +SKIP
>>> revenue(an, ["Champions", "At Risk"], since=dt.date(2011, 1, 1))  # doctest: +SKIP
>>> pareto(an, "Champions")["curve"].head(4)  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

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
    check_span,
    execute,
    timestamp_literal,
)
from strata.catalog import Segment
from strata.errors import InputError

#: The ``segment_id`` the whole customer base goes by in per-segment queries.
BASE_ID = -1
BASE_LABEL = "All customers"
#: Relative slack when comparing a float sum with a share of another float sum, so that
#: summation order (which differs between backends) never decides an exact boundary.
_SLACK = 1e-9

SegmentList = Field(
    [],
    max_length=200,
    description="Segment names or catalog ids; leave out for every segment of the workspace.",
)


# -- pieces the per-segment analyses share ---------------------------------------------------
def chosen_segments(an: Analyst, refs: Sequence[str | int] | None) -> list[Segment]:
    """The segments named in ``refs`` (in that order, once each); none named: all of them."""
    if not refs:
        return an.segs.list()
    out: list[Segment] = []
    for ref in refs:
        if str(ref).strip() == "":
            raise InputError("a segment in the list is blank: give segment names or ids")
        seg = an.segment(ref)
        if all(s.id != seg.id for s in out):
            out.append(seg)
    return out


def memberships(an: Analyst, segments: Sequence[Segment]) -> ibis.Table:
    """``segment_id, customer_id``: each segment's members at the reference instant, and
    every customer once more under :data:`BASE_ID` (the whole base)."""
    customers = an.customers()
    base = customers.select(
        segment_id=ibis.literal(BASE_ID, type="int64"),
        customer_id=customers.customer_id.cast("int64"),
    )
    if not segments:
        return base
    m = an.table("memberships")
    t = timestamp_literal(an.ref.instant)
    current = (
        m.filter(
            m.segment_id.isin([s.id for s in segments]),
            m.joined_at <= t,
            m.left_at.isnull() | (m.left_at > t),
        )
        # No DISTINCT: a customer's stints in one segment never overlap, so at most one
        # holds at any instant.
        .select(
            segment_id=m.segment_id.cast("int64"),
            customer_id=m.customer_id.cast("int64"),
        )
    )
    return base.union(current)


def money_per_customer(
    an: Analyst, since: dt.date | None = None, until: dt.date | None = None
) -> ibis.Table:
    """Per customer with an order or refund in the period: ``revenue`` (net),
    ``orders`` and ``order_revenue`` (of orders alone)."""
    m = an.money(since, until)
    return m.group_by("customer_id").aggregate(
        revenue=m.amount.sum().cast("float64"),
        orders=m.is_order.ifelse(1, 0).sum().cast("int64"),
        order_revenue=m.is_order.ifelse(m.amount, 0.0).sum().cast("float64"),
    )


def ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    """``numerator / denominator`` as floats, NaN where the denominator is 0."""
    num = numerator.astype("float64")
    den = denominator.astype("float64")
    return (num / den.where(den != 0)).astype("float64")


def by_segment(rows: pd.DataFrame, segments: Sequence[Segment], columns: dict[str, str]):
    """``rows`` (keyed by ``segment_id``) as one row per segment, the base first, in the
    order of ``segments``; a segment without rows gets zeros (``columns``: name → dtype)."""
    order = [(BASE_ID, BASE_LABEL)] + [(s.id, s.name) for s in segments]
    frame = pd.DataFrame({"segment_id": [i for i, _ in order], "segment": [n for _, n in order]})
    frame = frame.merge(rows, on="segment_id", how="left")
    for name, dtype in columns.items():
        frame[name] = frame[name].fillna(0).astype(dtype)
    return frame


# -- revenue contribution --------------------------------------------------------------------
def revenue(
    an: Analyst,
    segments: Sequence[str | int] | None = None,
    *,
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> pd.DataFrame:
    """Each segment's contribution to revenue in ``since`` … ``until`` (days, both included).

    One row for the whole base (``segment`` = "All customers") first, then one per
    segment of ``segments`` in the order given (none given: every segment of the
    workspace, in catalog order). Segments may overlap, so their shares need not sum
    to 1. Columns:

    - ``segment``: the segment's name.
    - ``customers``: its members at the reference instant.
    - ``share_of_customers``: ``customers`` / the whole base's customers.
    - ``revenue``: net revenue of those members in the period (orders plus refunds,
      which are negative), before the reference instant.
    - ``share_of_revenue``: ``revenue`` / the whole base's revenue in the period
      (null when that is 0).
    - ``revenue_index``: ``share_of_revenue`` / ``share_of_customers``; above 1 the
      segment brings more than its head count's share (null for an empty segment).
    - ``revenue_per_customer``: ``revenue`` / ``customers`` (null for an empty segment).
    - ``orders``: orders of the members in the period (refunds are not orders).
    - ``average_order_value``: revenue of those orders alone (refunds left out) /
      ``orders`` (null without orders).
    - ``orders_per_customer``: ``orders`` / ``customers``.
    - ``buyers``: members with at least one order in the period.

    >>> revenue(an, ["Champions"], since=dt.date(2011, 1, 1))  # doctest: +SKIP
    """
    check_span(since, until)
    chosen = chosen_segments(an, segments)
    members = memberships(an, chosen)
    per = money_per_customer(an, since, until)
    j = members.left_join(per, members.customer_id == per.customer_id)
    orders = j.orders.fill_null(0)
    rows = execute(
        j.group_by("segment_id").aggregate(
            customers=j.count().cast("int64"),
            revenue=j.revenue.fill_null(0.0).sum().cast("float64"),
            orders=orders.sum().cast("int64"),
            order_revenue=j.order_revenue.fill_null(0.0).sum().cast("float64"),
            buyers=(orders > 0).ifelse(1, 0).sum().cast("int64"),
        )
    )
    f = by_segment(
        rows,
        chosen,
        {
            "customers": "int64",
            "revenue": "float64",
            "orders": "int64",
            "order_revenue": "float64",
            "buyers": "int64",
        },
    )
    base = f.iloc[0]
    f["share_of_customers"] = ratio(f.customers, pd.Series(base.customers, index=f.index))
    f["share_of_revenue"] = ratio(f.revenue, pd.Series(base.revenue, index=f.index))
    f["revenue_index"] = ratio(f.share_of_revenue, f.share_of_customers)
    f["revenue_per_customer"] = ratio(f.revenue, f.customers)
    f["average_order_value"] = ratio(f.order_revenue, f.orders)
    f["orders_per_customer"] = ratio(f.orders, f.customers)
    return f[
        [
            "segment",
            "customers",
            "share_of_customers",
            "revenue",
            "share_of_revenue",
            "revenue_index",
            "revenue_per_customer",
            "orders",
            "average_order_value",
            "orders_per_customer",
            "buyers",
        ]
    ]


class RevenueParams(PeriodParams):
    segments: list[str] = SegmentList


@analysis("revenue", RevenueParams, subject="segments")
def run_revenue(an: Analyst, p: RevenueParams) -> Tables:
    """Revenue contribution per segment: share of customers vs share of revenue, AOV, buyers."""
    return {"revenue": revenue(an, p.segments, since=p.since, until=p.until)}


# -- the Pareto view -------------------------------------------------------------------------
def pareto(
    an: Analyst,
    segment: str | int | None = None,
    *,
    since: dt.date | None = None,
    until: dt.date | None = None,
    points: int = 20,
) -> Tables:
    """How concentrated a segment's revenue is: its Pareto (Lorenz) curve and summary.

    The segment's members at the reference instant (None: the whole base) are ranked
    by net revenue in ``since`` … ``until`` (orders plus refunds), highest first, ties
    by customer id; members without revenue count with 0, and those with zero or
    negative revenue come last. The ranking runs in the warehouse; only the curve
    points come back.

    ``curve``, one row per point ``k`` = 1 … ``points``:

    - ``customer_share``: ``k / points`` (5 %, 10 %, … 100 % for 20 points).
    - ``customers``: the top customers making up that share, ``ceil(share × n)``
      (``n`` members in all).
    - ``revenue``: their revenue together.
    - ``revenue_share``: ``revenue`` / the segment's revenue (null when that is not
      positive). With refunds it may pass 1 before the last point.

    ``summary``, one row:

    - ``customers``: ``n``; ``revenue``: the segment's net revenue in the period.
    - ``top_20_percent_revenue_share``: the revenue share of the top ``ceil(n / 5)``
      customers.
    - ``customers_for_80_percent_revenue``: the smallest number of top customers whose
      revenue together reaches 80 % of the total (null when the total is not positive).
    - ``gini``: the Gini coefficient of revenue among the members,
      ``Σ_i Σ_j |x_i − x_j| / (2 n² mean)``, 0 when all spend alike and near 1 when one
      customer brings everything (null when the total is not positive; negative
      revenues can push it above 1).

    An empty segment gives an empty curve and a summary of zeros.

    >>> pareto(an, "Champions", points=10)["curve"]  # doctest: +SKIP
    """
    check_span(since, until)
    if not 1 <= int(points) <= 1000:
        raise InputError(f"points must be between 1 and 1000, not {points}")
    points = int(points)
    per = money_per_customer(an, since, until)
    if segment is None or str(segment).strip() == "":
        n = an.customers().count()
    else:
        members = an.members(segment)
        per = per.semi_join(members, per.customer_id == members.customer_id)
        n = members.customer_id.nunique()
    # Only customers with non-zero revenue are ranked (far fewer than all on a big base):
    # the others, n - nz of them, all sit between the positive and the negative ones, and
    # the running total stays at the positives' sum across them.
    x = per.filter(per.revenue != 0).select(
        customer_id=per.customer_id, x=per.revenue.cast("float64")
    )
    order = [x.x.desc(), x.customer_id.asc()]
    everyone = ibis.window()
    ranked = x.mutate(
        r=(ibis.row_number().over(order_by=order) + 1).cast("int64"),  # 1-based from the top
        cum=x.x.sum().over(ibis.window(order_by=order, preceding=None, following=0)),
        n=n.cast("int64"),
        nz=x.count().over(everyone).cast("int64"),
        pos=(x.x > 0).ifelse(1, 0).sum().over(everyone).cast("int64"),
        total=x.x.sum().over(everyone),
    )
    # The rank among all n members, zeros included.
    full = ranked.r + (ranked.x < 0).ifelse(ranked.n - ranked.nz, 0)
    ranked = ranked.mutate(full=full.cast("int64"))
    reach = ranked.cum >= 0.8 * ranked.total - _SLACK * ranked.total.abs()
    ranked = ranked.mutate(
        # Ascending position n - full + 1 times the value: Σ i·x_(i) of the Gini formula.
        g=((ranked.n - ranked.full + 1).cast("float64") * ranked.x).sum().over(everyone),
        first80=ibis.ifelse(reach & (ranked.total > 0), ranked.full, ibis.null("int64"))
        .min()
        .over(everyone),
    )
    # The rows the answer needs: the last customer of each point (the first k customers
    # cover floor(k × points / n) points), of the top fifth, of the 80 % reach, and the
    # last positive one (whose running total holds across the zeros).
    covered = ((ranked.full * points) // ranked.n).cast("int64")
    covered_before = (((ranked.full - 1) * points) // ranked.n).cast("int64")
    fifth = ((ranked.n + 4) // 5).cast("int64")
    kept = ranked.filter(
        (covered > covered_before)
        | (ranked.full == fifth)
        | (ranked.full == ranked.first80)
        | (ranked.r == ranked.pos)
    ).select("r", "full", "x", "cum", "n", "nz", "pos", "total", "g", "first80")
    rows = execute(kept.order_by("r"))
    if rows.empty:  # nobody with revenue: only the head count is left to ask
        return _pareto_tables(rows, points, int(n.to_pyarrow().as_py()))
    return _pareto_tables(rows, points, int(rows.n.iloc[0]))


def _pareto_tables(rows: pd.DataFrame, points: int, n: int) -> Tables:
    curve_columns = ["customer_share", "customers", "revenue", "revenue_share"]
    if n == 0:
        curve = pd.DataFrame({c: pd.Series(dtype="float64") for c in curve_columns})
        curve["customers"] = curve.customers.astype("int64")
        summary = pd.DataFrame(
            {
                "customers": [0],
                "revenue": [0.0],
                "top_20_percent_revenue_share": [np.nan],
                "customers_for_80_percent_revenue": pd.array([pd.NA], dtype="Int64"),
                "gini": [np.nan],
            }
        )
        return {"curve": curve, "summary": summary}
    total = float(rows.total.iloc[0]) if len(rows) else 0.0
    at_rank = dict(zip(rows.full.astype(int), rows.cum.astype(float), strict=True))
    pos = int(rows.pos.iloc[0]) if len(rows) else 0
    zeros = n - (int(rows.nz.iloc[0]) if len(rows) else 0)
    positives_sum = float(rows.cum[rows.r == pos].iloc[0]) if pos else 0.0

    def cum(rank: int) -> float:
        """Revenue of the top ``rank`` members together."""
        if pos < rank <= pos + zeros:
            return positives_sum
        return at_rank[rank]

    positive = total > 0
    ks = np.arange(1, points + 1)
    counts = [(n * int(k) + points - 1) // points for k in ks]
    revenue_at = [cum(c) for c in counts]
    curve = pd.DataFrame(
        {
            "customer_share": ks / points,
            "customers": pd.Series(counts, dtype="int64"),
            "revenue": pd.Series(revenue_at, dtype="float64"),
            "revenue_share": [v / total if positive else np.nan for v in revenue_at],
        }
    )
    first80 = rows.first80.iloc[0] if len(rows) else None
    gini = 2.0 * float(rows.g.iloc[0]) / (n * total) - (n + 1) / n if positive else np.nan
    summary = pd.DataFrame(
        {
            "customers": [n],
            "revenue": [total],
            "top_20_percent_revenue_share": [cum((n + 4) // 5) / total if positive else np.nan],
            "customers_for_80_percent_revenue": pd.array(
                [pd.NA if pd.isna(first80) else int(first80)], dtype="Int64"
            ),
            "gini": [gini],
        }
    )
    return {"curve": curve, "summary": summary}


class ParetoParams(PeriodParams):
    segment: SegmentRef = None
    points: int = Field(
        20, ge=1, le=1000, description="How many evenly spaced customer shares the curve has."
    )


@analysis("pareto", ParetoParams)
def run_pareto(an: Analyst, p: ParetoParams) -> Tables:
    """Pareto view: how much revenue the top 5 %, 10 %, … of a segment's customers bring."""
    return pareto(an, p.segment, since=p.since, until=p.until, points=p.points)
