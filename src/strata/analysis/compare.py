"""Segments side by side: the KPIs of each, and how a size metric spreads within each.

This is the old ICP dashboard's comparison (average ICP score, customer count,
average size metric and revenue per segment, and its summary table), for any
segments and any numeric attribute or trait as the size metric.

>>> an = Analyst(app, as_of=ReferenceTime.parse("2011-12-10"))  # doctest: +SKIP
>>> compare(an, ["Champions", "At Risk"], metric="total_revenue")["kpis"]  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import ibis
import pandas as pd
from pydantic import Field

from strata.analysis.base import (
    Analyst,
    PeriodParams,
    Tables,
    analysis,
    check_span,
    execute,
    timestamp_literal,
)
from strata.analysis.revenue import (
    SegmentList,
    by_segment,
    chosen_segments,
    memberships,
    ratio,
)
from strata.errors import InputError

_DAY = dt.timedelta(days=1)


def compare(
    an: Analyst,
    segments: Sequence[str | int] | None = None,
    *,
    metric: str = "company_size",
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> Tables:
    """Segments side by side: KPIs, and box-plot statistics of ``metric``.

    One row for the whole base (``segment`` = "All customers") first, then one per
    segment of ``segments`` in the order given (none given: every segment of the
    workspace, in catalog order). Members are those at the reference instant; revenue
    and orders are counted in ``since`` … ``until`` (days, both included) before the
    reference instant. ``metric`` is any numeric customer attribute or trait
    (``company_size``, ``total_revenue``, ``icp_score``…). Segments may overlap.

    ``kpis``:

    - ``segment``: the segment's name; ``customers``: its members.
    - ``share_of_customers``: ``customers`` / the whole base's customers.
    - ``average_icp_score``: mean ICP score (0–100) of the members; null when the
      workspace has no ICP criteria.
    - ``metric``: the metric's name; ``average_metric``: its mean over the members
      that have a value.
    - ``total_revenue``: net revenue (orders plus refunds) of the members in the period.
    - ``revenue_per_customer``: ``total_revenue`` / ``customers``.
    - ``average_order_value``: revenue of the period's orders alone (refunds left out)
      / their number (null without orders).
    - ``orders_per_customer``: orders in the period / ``customers``.
    - ``average_days_since_last_order``: mean of the trait ``days_since_last_order``
      (days from the last order ever to the reference day) over the members who have
      ordered, whatever the period.
    - ``high_value_rate``: the share of members who are high-value customers of the
      whole base: with positive net revenue in the period, at least that of the
      customer ranked ``ceil(N / 5)``-th by it among all ``N`` customers (so ties at
      the boundary are all in, and about the top 20 % are).

    Ratios over an empty segment are null.

    ``distribution``, box-plot statistics of ``metric`` over the members that have a
    value: ``count``, ``mean``, ``min``, ``q1``, ``median``, ``q3``, ``max`` (quartiles
    interpolated linearly between ranks, as pandas' ``quantile`` does),
    ``lower_whisker`` and ``upper_whisker`` (the most extreme values within 1.5 × IQR of
    the quartiles, Tukey's), ``outliers`` (how many values lie beyond the whiskers).

    >>> compare(an, metric="total_revenue")["distribution"]  # doctest: +SKIP
    """
    check_span(since, until)
    metric = (metric or "").strip()
    if not metric:
        raise InputError("metric is empty: name a numeric customer attribute or trait")
    chosen = chosen_segments(an, segments)
    compiler = an.segs.compiler(an.ref)
    dtype = compiler.field_type(metric)  # InputError names the known ones
    if not dtype.is_numeric():
        raise InputError(
            f"metric {metric!r} is {dtype}, not a number: name a numeric customer attribute "
            "or trait (company_size, total_revenue, icp_score, …)"
        )
    value = compiler._field(metric)
    icp = compiler.trait("icp_score")[0] if an.segs.icp_config() is not None else None
    if since is None and until is None:
        # The whole history: the traits' own per-customer orders table (which the ICP
        # score and a trait metric read too), so the events are scanned once.
        p = compiler.per_customer("orders", compiler.orders())
        names = ("total_revenue", "total_orders", "order_revenue", "days_since_last_order")
    else:
        p = compiler.per_customer("analysis:compare", _money(an, since, until))
        names = ("revenue", "orders", "order_revenue", "days")
    revenue, orders, order_revenue, days = (f"{p}_{n}" for n in names)
    wide = compiler.wide()
    per = wide.select(
        customer_id=wide.customer_id.cast("int64"),
        value=value(wide).cast("float64"),
        icp=icp(wide).cast("float64") if icp is not None else ibis.null("float64"),
        days=wide[days].cast("float64"),
        revenue=wide[revenue].fill_null(0.0).cast("float64"),
        orders=wide[orders].fill_null(0).cast("int64"),
        order_revenue=wide[order_revenue].fill_null(0.0).cast("float64"),
    )
    per = _high_value(an, per)

    members = memberships(an, chosen)
    j = members.inner_join(per, members.customer_id == per.customer_id)
    # Quartiles are exact on every backend (DuckDB's quantile_cont, PostgreSQL's
    # percentile_cont, Spark's percentile: linear between ranks, as pandas computes them);
    # the whiskers need them first, so the members are joined to their segment's fences.
    stats = j.group_by("segment_id").aggregate(
        customers=j.count().cast("int64"),
        icp=j.icp.mean(),
        count=j.value.count().cast("int64"),
        mean=j.value.mean(),
        min=j.value.min(),
        max=j.value.max(),
        q1=j.value.quantile(0.25),
        median=j.value.quantile(0.5),
        q3=j.value.quantile(0.75),
        total_revenue=j.revenue.sum().cast("float64"),
        orders=j.orders.sum().cast("int64"),
        order_revenue=j.order_revenue.sum().cast("float64"),
        days=j.days.mean(),
        high=j.high.ifelse(1, 0).sum().cast("int64"),
    )
    iqr = stats.q3 - stats.q1
    fences = stats.select(
        fence_id=stats.segment_id, low=stats.q1 - 1.5 * iqr, high_fence=stats.q3 + 1.5 * iqr
    )
    # The second pass reads the metric alone, from a compiler of its own, so it does not
    # aggregate the orders again for a metric that is a plain attribute.
    alone = an.segs.compiler(an.ref)
    metric_of = alone._field(metric)
    wide_alone = alone.wide()
    values = wide_alone.select(
        value_id=wide_alone.customer_id.cast("int64"),
        value=metric_of(wide_alone).cast("float64"),
    )
    v = members.inner_join(values, members.customer_id == values.value_id)
    fenced = v.inner_join(fences, v.segment_id == fences.fence_id)
    inside = (fenced.value >= fenced.low) & (fenced.value <= fenced.high_fence)
    whiskers = fenced.group_by(whisker_id=fenced.segment_id).aggregate(
        lower_whisker=ibis.ifelse(inside, fenced.value, ibis.null("float64")).min(),
        upper_whisker=ibis.ifelse(inside, fenced.value, ibis.null("float64")).max(),
        outliers=(fenced.value.notnull() & ~inside).ifelse(1, 0).sum().cast("int64"),
    )
    rows = execute(
        stats.left_join(whiskers, stats.segment_id == whiskers.whisker_id).drop("whisker_id")
    )

    f = by_segment(
        rows,
        chosen,
        {
            "customers": "int64",
            "count": "int64",
            "total_revenue": "float64",
            "orders": "int64",
            "order_revenue": "float64",
            "high": "int64",
            "outliers": "int64",
        },
    )
    base_customers = pd.Series(f.customers.iloc[0], index=f.index)
    kpis = pd.DataFrame(
        {
            "segment": f.segment,
            "customers": f.customers,
            "share_of_customers": ratio(f.customers, base_customers),
            "average_icp_score": f.icp.astype("float64"),
            "metric": metric,
            "average_metric": f["mean"].astype("float64"),
            "total_revenue": f.total_revenue,
            "revenue_per_customer": ratio(f.total_revenue, f.customers),
            "average_order_value": ratio(f.order_revenue, f.orders),
            "orders_per_customer": ratio(f.orders, f.customers),
            "average_days_since_last_order": f.days.astype("float64"),
            "high_value_rate": ratio(f.high, f.customers),
        }
    )
    return {"kpis": kpis, "distribution": _distribution(f)}


def _high_value(an: Analyst, per: ibis.Table) -> ibis.Table:
    """``per`` with ``high``: revenue positive and at least the ``ceil(N/5)``-th highest.

    The threshold is one value picked by ``ORDER BY … LIMIT 1 OFFSET`` (a top-N, not a
    sort of every customer), so the base's head count ``N`` is asked first.
    """
    n = int(an.customers().count().to_pyarrow().as_py())
    if n == 0:
        return per.mutate(high=ibis.literal(False))
    positive = per.filter(per.revenue > 0)
    threshold = (
        positive.order_by([positive.revenue.desc(), positive.customer_id.asc()])
        .limit(1, offset=(n + 4) // 5 - 1)
        .select("revenue")
        .as_scalar()
    )
    # Fewer customers with revenue than the top fifth holds: all of them are in.
    high = (per.revenue > 0) & (per.revenue >= threshold.fill_null(0.0))
    return per.mutate(high=high.fill_null(False))


def _distribution(f: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "segment": f.segment,
            "count": f["count"],
            "mean": f["mean"].astype("float64"),
            "min": f["min"].astype("float64"),
            "q1": f.q1.astype("float64"),
            "median": f["median"].astype("float64"),
            "q3": f.q3.astype("float64"),
            "max": f["max"].astype("float64"),
            "lower_whisker": f.lower_whisker.astype("float64"),
            "upper_whisker": f.upper_whisker.astype("float64"),
            "outliers": f.outliers.astype("int64"),
        }
    )


def _money(an: Analyst, since: dt.date | None, until: dt.date | None) -> ibis.Table:
    """Per customer, in one pass over orders and refunds: the period's ``revenue``,
    ``orders`` and ``order_revenue``, and ``days`` since the last order ever (the trait
    ``days_since_last_order``)."""
    m = an.money()
    in_period = ibis.literal(True)
    if since is not None:
        in_period &= m.timestamp >= timestamp_literal(dt.datetime.combine(since, dt.time(0)))
    if until is not None:
        in_period &= m.timestamp < timestamp_literal(dt.datetime.combine(until, dt.time(0)) + _DAY)
    order_in_period = in_period & m.is_order
    agg = m.group_by("customer_id").aggregate(
        revenue=in_period.ifelse(m.amount, 0.0).sum().cast("float64"),
        orders=order_in_period.ifelse(1, 0).sum().cast("int64"),
        order_revenue=order_in_period.ifelse(m.amount, 0.0).sum().cast("float64"),
        last_order=m.is_order.ifelse(m.timestamp, ibis.null("timestamp")).max(),
    )
    day_epoch = (an.ref.day - dt.date(1970, 1, 1)).days * 86400
    days = ((day_epoch - agg.last_order.date().epoch_seconds()) // 86400).cast("int64")
    return agg.mutate(days=days).drop("last_order")


class CompareParams(PeriodParams):
    segments: list[str] = SegmentList
    metric: str = Field(
        "company_size",
        max_length=63,
        description="The size metric: a numeric customer attribute or trait "
        "(company_size, total_revenue, icp_score, …).",
    )


@analysis("compare", CompareParams, subject="segments")
def run_compare(an: Analyst, p: CompareParams) -> Tables:
    """Segments side by side: customers, ICP score, size metric, revenue, and its spread."""
    return compare(an, p.segments, metric=p.metric, since=p.since, until=p.until)
