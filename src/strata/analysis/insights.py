"""Insights: what distinguishes a segment, how it is trending, and what to do about it.

Each finding is a sentence with the numbers behind it (``metric``, ``value`` for the
segment, ``baseline`` for the whole base or the earlier size), drawn from three
warehouse queries: the segment's customers, orders and revenue against everyone
else's; its size now, 30 and 90 days ago from the membership history; and its
attribute mix against the rest of the base, with a two-proportion z-test so a
handful of customers is not read as a pattern. Recommendations follow the segment's
kind: the action of its RFM segment, its place in a tier set, what its model
predicts, or, for other segments, what its numbers point to.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import ibis
import pandas as pd
from pydantic import Field

from strata.analysis.base import (
    Analyst,
    Params,
    SegmentRef,
    Tables,
    analysis,
    execute,
    timestamp_literal,
)
from strata.catalog import Segment
from strata.errors import InputError
from strata.segments.rfm import ACTIONS as RFM_ACTIONS
from strata.segments.tiers import parse_config as parse_tiers

#: Attributes whose mix is compared (those present), then custom text attributes.
MIX_ATTRIBUTES = ("country", "industry", "plan", "gender")
#: Customer columns never broken down: they identify people rather than group them.
IDENTIFYING = {"external_id", "email", "name", "phone", "city"}
#: Custom text attributes compared beyond MIX_ATTRIBUTES, at most.
MAX_CUSTOM = 4
#: A value is called distinctive below this p-value (Bonferroni over all values tested).
ALPHA = 0.05
#: …and when at least this share of the segment has it.
MIN_SHARE = 0.05
#: A ratio this far from 1 is worth saying (10 %).
NOTABLE = 0.10
COLUMNS = ["segment", "type", "topic", "text", "metric", "value", "baseline"]


class InsightsParams(Params):
    segment: SegmentRef = None
    limit: int = Field(3, ge=1, le=10, description="Distinctive attribute values to list.")


@dataclass(frozen=True)
class Group:
    """Customers, buyers, orders and revenue of one group (segment, or rest of the base)."""

    customers: int = 0
    buyers: int = 0
    orders: int = 0
    revenue: float = 0.0
    order_revenue: float = 0.0
    recency_days: float = 0.0  # summed over buyers

    def __add__(self, other: Group) -> Group:
        return Group(*(a + b for a, b in zip(self._values(), other._values(), strict=True)))

    def _values(self) -> tuple:
        return (
            self.customers,
            self.buyers,
            self.orders,
            self.revenue,
            self.order_revenue,
            self.recency_days,
        )

    @property
    def aov(self) -> float | None:
        return self.order_revenue / self.orders if self.orders else None

    @property
    def orders_per_buyer(self) -> float | None:
        return self.orders / self.buyers if self.buyers else None

    @property
    def mean_recency(self) -> float | None:
        return self.recency_days / self.buyers if self.buyers else None


def insights(an: Analyst, segment: str | int, *, limit: int = 3) -> pd.DataFrame:
    """Findings and recommendations for one segment, each with its numbers.

    Columns: ``segment``; ``type`` (finding or recommendation); ``topic`` (size,
    trend, revenue, order value, frequency, recency, attribute, action); ``text`` (a
    sentence); ``metric``, ``value`` (the segment's) and ``baseline`` (the whole
    base's, or the size it is compared with).
    """
    if segment is None or str(segment).strip() == "":
        raise InputError("insights are about one segment: give its name or id")
    seg = an.segment(segment)
    inside, rest = _groups(an, seg)
    base = inside + rest
    sizes = _sizes(an, seg)
    rows: list[dict] = []

    def add(kind: str, topic: str, text: str, metric: str, value, baseline) -> None:
        rows.append(
            {
                "segment": seg.name,
                "type": kind,
                "topic": topic,
                "text": text,
                "metric": metric,
                "value": value,
                "baseline": baseline,
            }
        )

    share = inside.customers / base.customers if base.customers else 0.0
    add(
        "finding",
        "size",
        f"{inside.customers:,} customers, {share:.1%} of the base.",
        "customers",
        inside.customers,
        base.customers,
    )
    _trend(add, sizes, inside.customers)
    if inside.customers == 0:
        add(
            "recommendation",
            "action",
            "The segment is empty at this time: check its definition, or refresh it.",
            "customers",
            0,
            base.customers,
        )
        return _frame(rows)
    revenue_share = inside.revenue / base.revenue if base.revenue else None
    if revenue_share is not None:
        index = revenue_share / share if share else None
        add(
            "finding",
            "revenue",
            f"Brings {revenue_share:.1%} of revenue with {share:.1%} of customers"
            + (f" ({index:.2f}× its share)." if index is not None else "."),
            "revenue share",
            revenue_share,
            share,
        )
    _compare(add, "order value", "average order value", inside.aov, base.aov, money=True)
    _compare(add, "frequency", "orders per buyer", inside.orders_per_buyer, base.orders_per_buyer)
    _compare(
        add,
        "recency",
        "days since the last order",
        inside.mean_recency,
        base.mean_recency,
        lower_is_better=True,
    )
    buyers_share = inside.buyers / inside.customers
    base_buyers = base.buyers / base.customers if base.customers else 0.0
    if abs(buyers_share - base_buyers) >= NOTABLE * max(base_buyers, 1e-9):
        add(
            "finding",
            "buyers",
            f"{buyers_share:.0%} have ordered, against {base_buyers:.0%} of the base.",
            "share with an order",
            buyers_share,
            base_buyers,
        )
    for found in _distinctive(an, seg, limit):
        add("finding", "attribute", *found)
    for text, metric, value, baseline in _recommend(an, seg, inside, base, sizes):
        add("recommendation", "action", text, metric, value, baseline)
    return _frame(rows)


@analysis("insights", InsightsParams)
def run_insights(an: Analyst, p: InsightsParams) -> Tables:
    """Plain-language findings about a segment and recommended actions, with their numbers."""
    return {"insights": insights(an, p.segment, limit=p.limit)}


# -- the three queries -----------------------------------------------------------------------
def _groups(an: Analyst, seg: Segment) -> tuple[Group, Group]:
    """The segment's figures and the rest of the base's, in one query."""
    money = an.money()
    last = money.is_order.ifelse(money.timestamp, ibis.null("timestamp"))
    per = money.group_by("customer_id").aggregate(
        revenue=money.amount.sum(),
        orders=money.is_order.ifelse(1, 0).sum(),
        order_revenue=money.is_order.ifelse(money.amount, 0.0).sum(),
        last_order=last.max(),
    )
    day_epoch = (an.ref.day - dt.date(1970, 1, 1)).days * 86400
    per = per.mutate(recency=(day_epoch - per.last_order.date().epoch_seconds()) / 86400)
    members = an.members_at(seg.id, an.ref.instant).mutate(member=ibis.literal(True))
    customers = an.customers().select("customer_id")
    joined = (
        customers.left_join(members, "customer_id")
        .select(customers.customer_id, member=members.member.fill_null(False))
        .left_join(per, "customer_id")
    )
    orders = joined.orders.fill_null(0)
    rows = execute(
        joined.group_by("member").aggregate(
            customers=joined.count(),
            buyers=(orders > 0).ifelse(1, 0).sum(),
            orders=orders.sum(),
            revenue=joined.revenue.fill_null(0.0).sum(),
            order_revenue=joined.order_revenue.fill_null(0.0).sum(),
            recency_days=(orders > 0).ifelse(joined.recency, 0.0).sum(),
        )
    )
    groups = {bool(r.member): _group(r) for r in rows.itertuples()}
    return groups.get(True, Group()), groups.get(False, Group())


def _group(r) -> Group:
    def num(v, kind=float):
        return kind(0) if v is None or pd.isna(v) else kind(v)

    return Group(
        customers=num(r.customers, int),
        buyers=num(r.buyers, int),
        orders=num(r.orders, int),
        revenue=num(r.revenue),
        order_revenue=num(r.order_revenue),
        recency_days=num(r.recency_days),
    )


def _sizes(an: Analyst, seg: Segment) -> dict[str, int | None]:
    """Members now, 30 and 90 days earlier; ``None`` before the first evaluation."""
    m = an.table("memberships")
    m = m.filter(m.segment_id == seg.id)
    instants = {
        "now": an.ref.instant,
        "30": an.ref.instant - dt.timedelta(days=30),
        "90": an.ref.instant - dt.timedelta(days=90),
    }
    counts = {
        key: (
            (m.joined_at <= timestamp_literal(t))
            & (m.left_at.isnull() | (m.left_at > timestamp_literal(t)))
        )
        .ifelse(1, 0)
        .sum()
        for key, t in instants.items()
    }
    row = execute(m.aggregate(first=m.joined_at.min(), **counts)).iloc[0]
    first = None if pd.isna(row["first"]) else pd.Timestamp(row["first"]).to_pydatetime()
    out: dict[str, int | None] = {}
    for key, t in instants.items():
        known = first is not None and first <= t
        out[key] = int(row[key] or 0) if known else None
    return out


def _distinctive(an: Analyst, seg: Segment, limit: int) -> list[tuple]:
    """Attribute values much more common in the segment than in the rest of the base."""
    customers = an.customers()
    schema = customers.schema()
    custom = [
        c
        for c, t in schema.items()
        if t.is_string() and c not in IDENTIFYING and c not in MIX_ATTRIBUTES
    ]
    from strata.warehouse.schema import CUSTOMERS

    custom = [c for c in custom if c not in CUSTOMERS][:MAX_CUSTOM]
    attributes = [a for a in MIX_ATTRIBUTES if a in schema] + custom
    if not attributes:
        return []
    members = an.members_at(seg.id, an.ref.instant).mutate(member=ibis.literal(True))
    marked = customers.left_join(members, "customer_id").select(
        *[customers[a] for a in attributes], member=members.member.fill_null(False)
    )
    parts = []
    for a in attributes:
        known = marked.filter(marked[a].notnull() & (marked[a].cast("string") != ""))
        parts.append(
            known.group_by(value=known[a].cast("string"), member=known.member)
            .aggregate(n=known.count())
            .mutate(attribute=ibis.literal(a))
        )
    counts = execute(ibis.union(*parts).order_by(["attribute", "value", "member"]))
    found = []
    tests = []
    for attribute, rows in counts.groupby("attribute", sort=True):
        known_in = int(rows.loc[rows.member, "n"].sum())
        known_out = int(rows.loc[~rows.member, "n"].sum())
        for value, cell in rows.groupby("value", sort=True):
            x_in = int(cell.loc[cell.member, "n"].sum())
            x_out = int(cell.loc[~cell.member, "n"].sum())
            tests.append((attribute, value, x_in, known_in, x_out, known_out))
    for attribute, value, x_in, n_in, x_out, n_out in tests:
        if not n_in or not n_out:
            continue
        p_in, p_out = x_in / n_in, x_out / n_out
        p_value = two_proportion_p(x_in, n_in, x_out, n_out)
        if p_in >= MIN_SHARE and p_in > p_out and p_value * len(tests) < ALPHA:
            ratio = p_in / p_out if p_out else math.inf
            found.append((ratio, attribute, value, p_in, p_out, p_value))
    found.sort(key=lambda f: (-f[0], f[1], f[2]))
    out = []
    for ratio, attribute, value, p_in, p_out, p_value in found[:limit]:
        p_text = _p(min(p_value * len(tests), 1.0))
        if math.isfinite(ratio):
            text = (
                f"{attribute} = {value!r} is {ratio:.1f}× as common as in the rest of the base "
                f"({p_in:.0%} against {p_out:.0%}, p {p_text})."
            )
        else:
            text = (
                f"{attribute} = {value!r}: {p_in:.0%} of the segment and none of the rest "
                f"of the base (p {p_text})."
            )
        out.append(
            (
                text,
                f"share with {attribute} = {value}",
                p_in,
                p_out,
            )
        )
    return out


def two_proportion_p(x1: int, n1: int, x2: int, n2: int) -> float:
    """Two-sided p-value of a pooled two-proportion z-test (1.0 when it cannot say)."""
    if not n1 or not n2:
        return 1.0
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = (x1 / n1 - x2 / n2) / se
    return math.erfc(abs(z) / math.sqrt(2))


def _p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"= {min(p, 1.0):.3f}"


# -- findings from the numbers ---------------------------------------------------------------
def _trend(add, sizes: dict[str, int | None], now: int) -> None:
    for days in ("30", "90"):
        before = sizes[days]
        if before is None:
            continue
        if before == 0:
            add(
                "finding",
                "trend",
                f"New in the last {days} days: from 0 to {now:,} members.",
                f"members {days} days ago",
                now,
                0,
            )
            return
        change = now / before - 1
        word = "Grew" if change > 0 else "Shrank" if change < 0 else "Held steady"
        amount = f" by {abs(change):.1%}" if change else ""
        add(
            "finding",
            "trend",
            f"{word}{amount} over the last {days} days ({before:,} → {now:,} members).",
            f"members {days} days ago",
            now,
            before,
        )
        return
    add(
        "finding",
        "trend",
        "No trend yet: the segment has no membership history older than 30 days.",
        "members",
        now,
        None,
    )


def _compare(add, topic, label, value, baseline, *, money=False, lower_is_better=False) -> None:
    if value is None or baseline is None or baseline == 0:
        return
    ratio = value / baseline - 1
    if abs(ratio) < NOTABLE:
        return
    fmt = (lambda v: f"{v:,.2f}") if money else (lambda v: f"{v:,.1f}")
    direction = "higher" if ratio > 0 else "lower"
    add(
        "finding",
        topic,
        f"{label.capitalize()} {fmt(value)}, {abs(ratio):.0%} {direction} than the base's "
        f"{fmt(baseline)}.",
        label,
        value,
        baseline,
    )


def _recommend(an: Analyst, seg: Segment, inside: Group, base: Group, sizes) -> list[tuple]:
    """Suggested actions: by the segment's kind first, then by what its numbers show."""
    share = inside.customers / base.customers if base.customers else 0.0
    revenue_share = inside.revenue / base.revenue if base.revenue else 0.0
    out: list[tuple] = []
    if seg.family == "rfm" and seg.name in RFM_ACTIONS:
        action = RFM_ACTIONS[seg.name]
        out.append(
            (
                f"{seg.name}: {action}. They are {inside.customers:,} customers ({share:.1%}) "
                f"bringing {revenue_share:.1%} of revenue"
                + (
                    f", last ordering {inside.mean_recency:.0f} days ago on average "
                    f"(base {base.mean_recency:.0f})."
                    if inside.mean_recency is not None and base.mean_recency is not None
                    else "."
                ),
                "revenue share",
                revenue_share,
                share,
            )
        )
        return out
    if seg.family and seg.family.startswith("tiers:"):
        tier = _tier_action(an, seg)
        if tier:
            out.append(
                (
                    tier + f" ({inside.customers:,} customers, {revenue_share:.1%} of revenue).",
                    "revenue share",
                    revenue_share,
                    share,
                )
            )
            return out
    if seg.family == "churn" or "churn" in (seg.family or ""):
        out.append(
            (
                f"Predicted to churn: reach out before they leave, with a retention offer; "
                f"{revenue_share:.1%} of revenue is at stake.",
                "revenue share",
                revenue_share,
                share,
            )
        )
    index = revenue_share / share if share else 0.0
    if index >= 1.5:
        out.append(
            (
                f"High-value: {revenue_share:.1%} of revenue from {share:.1%} of customers. "
                "Protect it: VIP service, early access, ask for referrals.",
                "revenue index",
                index,
                1.0,
            )
        )
    recency, base_recency = inside.mean_recency, base.mean_recency
    if recency is not None and base_recency and recency >= 1.5 * base_recency:
        out.append(
            (
                f"Lapsing: last order {recency:.0f} days ago on average against "
                f"{base_recency:.0f}. Send a win-back offer.",
                "days since the last order",
                recency,
                base_recency,
            )
        )
    if inside.customers and inside.buyers / inside.customers < 0.5:
        out.append(
            (
                f"Only {inside.buyers / inside.customers:.0%} have ever ordered: "
                "a first-purchase incentive or onboarding series.",
                "share with an order",
                inside.buyers / inside.customers,
                base.buyers / base.customers if base.customers else None,
            )
        )
    before = sizes.get("30")
    if before:
        change = inside.customers / before - 1
        if change <= -NOTABLE:
            out.append(
                (
                    f"Shrinking ({change:.0%} in 30 days): look at who left "
                    "(`strata analyze growth`) and what they have in common.",
                    "members 30 days ago",
                    inside.customers,
                    before,
                )
            )
    if not out:
        out.append(
            (
                "No number stands out: test a message on it with a holdout group "
                "to learn what moves these customers.",
                "revenue index",
                index,
                1.0,
            )
        )
    return out


def _tier_action(an: Analyst, seg: Segment) -> str | None:
    """As the earlier dashboard did: low-touch at the bottom, account management at the top."""
    setting = an.segs.setting(seg.family or "")
    if not setting:
        return None
    config = parse_tiers(setting)
    names = [t.name for t in config.tiers]
    if seg.name not in names:
        return None
    place = names.index(seg.name)
    if place == len(names) - 1:
        return (
            f"{seg.name}, the top tier by {config.on}: dedicated account management, "
            "executive relationships and custom offers"
        )
    if place == 0:
        return (
            f"{seg.name}, the first tier by {config.on}: low-touch, self-serve resources "
            "and automated nurture; watch for those ready to move up"
        )
    return (
        f"{seg.name}, a middle tier by {config.on}: scalable programmes (webinars, bundles, "
        "targeted offers) to move them up a tier"
    )


def _frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=COLUMNS)
