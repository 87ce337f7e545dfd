"""Plans, their limits, and what a workspace used this month.

A plan is data (:data:`PLANS`): how many customers and segments a workspace may hold
and which features it may use. Self-hosted installs put every workspace on
``unlimited``; a hosted install sets :attr:`~strata.catalog.Workspace.plan` with
``strata plan set`` or ``PUT /api/v1/workspaces/{id}/plan``.

>>> PLANS["starter"].max_customers, PLANS["starter"].max_segments
(10000, 5)
>>> PLANS["growth"].allows("ml_segmentation"), PLANS["starter"].allows("ml_segmentation")
(True, False)
>>> check_customers("starter", 10_000)  # at the limit: fine
>>> check_customers("starter", 10_004, workspace_id=1)
Traceback (most recent call last):
...
strata.errors.PlanLimit: the Starter plan allows 10,000 customers; this import would bring \
the workspace to 10,004. Nothing was imported. Move to Growth (50,000 customers) with \
'strata plan set growth' or PUT /api/v1/workspaces/1/plan

Limits are checked where the thing is stored, inside the same transaction: an import
counts the workspace's customers after loading them and before committing, so a
refused import leaves nothing behind, and two imports at once cannot both pass (the
load holds the workspace's write lock). ``docs/plans.md`` lists every message.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from strata import audit
from strata.catalog import Segment, UsageCounter, Workspace
from strata.errors import ConfigError, InputError, NotFound, PlanLimit

#: What each gated feature is, in words (the docs and messages use these).
FEATURES: dict[str, str] = {
    "ml_segmentation": "ML segmentation (clustering customers by behaviour)",
    "realtime": "real-time updates (live event ingest)",
    "api_access": "API access (workspace API keys)",
    "predictive": "predictive analytics (CLV, churn, propensity and lookalikes)",
    "custom_algorithms": (
        "custom algorithms (clustering with a chosen method or feature set, not the default"
        " k-means on the behavioural features)"
    ),
}


@dataclass(frozen=True)
class Plan:
    """One tier: its limits (``None``: no limit) and the features it includes."""

    name: str
    title: str
    #: US dollars a month as the product plan prices it; ``None``: custom or free.
    monthly_price: int | None
    max_customers: int | None
    max_segments: int | None
    features: frozenset[str]

    def allows(self, feature: str) -> bool:
        if feature not in FEATURES:
            raise KeyError(f"{feature!r} is not a plan feature; one of {', '.join(FEATURES)}")
        return feature in self.features

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "monthly_price": self.monthly_price,
            "max_customers": self.max_customers,
            "max_segments": self.max_segments,
            "features": sorted(self.features),
        }


_GROWTH = frozenset({"ml_segmentation", "realtime", "api_access"})
_PROFESSIONAL = _GROWTH | {"predictive", "custom_algorithms"}

#: Every plan, cheapest first; ``unlimited`` is the self-hosted default.
PLANS: dict[str, Plan] = {
    p.name: p
    for p in (
        Plan("starter", "Starter", 99, 10_000, 5, frozenset()),
        Plan("growth", "Growth", 299, 50_000, None, _GROWTH),
        Plan("professional", "Professional", 799, 250_000, None, _PROFESSIONAL),
        Plan("enterprise", "Enterprise", None, None, None, frozenset(FEATURES)),
        Plan("unlimited", "Unlimited (self-hosted)", None, None, None, frozenset(FEATURES)),
    )
}
#: The tiers a customer buys, in order (``unlimited`` is not sold).
TIERS = ("starter", "growth", "professional", "enterprise")
DEFAULT_PLAN = "unlimited"

#: Segments that count toward a plan's ``max_segments``: the ones people define. RFM
#: groups, tiers, clusters and prediction segments are generated families; counting them
#: would spend Starter's five on RFM alone.
COUNTED_KINDS = ("rule", "static")

#: Metered things per workspace and month (:class:`~strata.catalog.UsageCounter`).
METRICS = ("events_ingested", "api_calls", "exports")

HOW_TO_CHANGE = "'strata plan set {plan}' or PUT /api/v1/workspaces/{id}/plan"


def get_plan(name: str) -> Plan:
    """The plan called ``name``, or :class:`InputError` naming the choices."""
    try:
        return PLANS[name]
    except KeyError:
        raise InputError(f"no plan {name!r}; choose one of {', '.join(PLANS)}") from None


def initial_plan(settings) -> str:
    """The plan a new workspace starts on: ``STRATA_DEFAULT_PLAN`` (default unlimited)."""
    name = getattr(settings, "default_plan", DEFAULT_PLAN) or DEFAULT_PLAN
    if name not in PLANS:
        raise ConfigError(
            f"STRATA_DEFAULT_PLAN={name!r} is not a plan; use one of {', '.join(PLANS)}"
        )
    return name


def plan_of(workspace: Workspace | str) -> Plan:
    """The plan of a workspace (or a plan name); an unknown name counts as unlimited."""
    name = workspace if isinstance(workspace, str) else (workspace.plan or DEFAULT_PLAN)
    return PLANS.get(name, PLANS[DEFAULT_PLAN])


def _upgrade(plan: Plan, fits) -> Plan | None:
    """The cheapest tier above ``plan`` for which ``fits(tier)`` holds."""
    start = TIERS.index(plan.name) + 1 if plan.name in TIERS else len(TIERS)
    return next((PLANS[n] for n in TIERS[start:] if fits(PLANS[n])), None)


def _move(plan: Plan | None, workspace_id: int | None, what: str = "") -> str:
    """How to raise a limit, starting lower-case: "move to Growth (…) with …"."""
    ws = "{id}" if workspace_id is None else str(workspace_id)
    if plan is None:
        return "contact sales for a custom plan"
    paren = f" ({what})" if what else ""
    return f"move to {plan.title}{paren} with " + HOW_TO_CHANGE.format(plan=plan.name, id=ws)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _limit(n: int | None) -> str:
    return "unlimited" if n is None else f"{n:,}"


# -- checks ---------------------------------------------------------------------------------
def check_customers(
    workspace: Workspace | str,
    total: int,
    *,
    workspace_id: int | None = None,
    doing: str = "this import",
    outcome: str = "Nothing was imported.",
) -> None:
    """Refuse (:class:`PlanLimit`) when ``total`` customers exceed the plan's limit."""
    plan = plan_of(workspace)
    if plan.max_customers is None or total <= plan.max_customers:
        return
    if workspace_id is None and isinstance(workspace, Workspace):
        workspace_id = workspace.id
    up = _upgrade(plan, lambda p: p.max_customers is None or p.max_customers >= total)
    raise PlanLimit(
        f"the {plan.title} plan allows {plan.max_customers:,} customers; {doing} would bring "
        f"the workspace to {total:,}. {outcome} "
        + _cap(_move(up, workspace_id, f"{_limit(up.max_customers) if up else ''} customers"))
    )


def customer_check(workspace: Workspace, **wording: str):
    """A check for :meth:`strata.warehouse.Warehouse.load`, or None when nothing limits."""
    if plan_of(workspace).max_customers is None:
        return None
    return lambda total: check_customers(workspace, total, **wording)


def count_segments(session: Session, workspace_id: int) -> int:
    """Segments that count toward the plan (see :data:`COUNTED_KINDS`)."""
    return session.scalar(
        sa.select(sa.func.count())
        .select_from(Segment)
        .where(Segment.workspace_id == workspace_id, Segment.kind.in_(COUNTED_KINDS))
    )


def check_segments(session: Session, workspace: Workspace, adding: int = 1) -> None:
    """Refuse (:class:`PlanLimit`) when ``adding`` more segments would pass the limit."""
    plan = plan_of(workspace)
    if plan.max_segments is None or adding <= 0:
        return
    total = count_segments(session, workspace.id) + adding
    if total <= plan.max_segments:
        return
    up = _upgrade(plan, lambda p: p.max_segments is None or p.max_segments >= total)
    raise PlanLimit(
        f"the {plan.title} plan allows {plan.max_segments:,} segments (rule and static); "
        f"this would make {total:,}. Nothing was saved. Delete a segment, or "
        + _move(up, workspace.id, f"{_limit(up.max_segments) if up else ''} segments")
    )


def require_feature(workspace: Workspace, feature: str) -> None:
    """Refuse (:class:`PlanLimit`) when the workspace's plan does not include ``feature``."""
    plan = plan_of(workspace)
    if plan.allows(feature):
        return
    up = _upgrade(plan, lambda p: feature in p.features)
    raise PlanLimit(
        f"the {plan.title} plan does not include {FEATURES[feature]}. "
        + _cap(_move(up, workspace.id))
    )


def require_clustering(workspace: Workspace, method: str = "kmeans", features=None) -> None:
    """Clustering needs ML segmentation; another method or a chosen feature set than the
    default (k-means on the behavioural features) is a custom algorithm."""
    require_feature(workspace, "ml_segmentation")
    if method != "kmeans" or features:
        require_feature(workspace, "custom_algorithms")


# -- usage ----------------------------------------------------------------------------------
def this_month(now: dt.datetime | None = None) -> str:
    """``YYYY-MM`` of ``now`` (default: the current UTC month)."""
    return (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m")


def add_usage(
    session: Session, workspace_id: int, metric: str, n: int = 1, *, month: str | None = None
) -> None:
    """Add ``n`` to this month's count of ``metric``; committed with ``session``.

    One upsert (SQLite and PostgreSQL both have ``ON CONFLICT … DO UPDATE``), so two
    writers at once add up instead of one overwriting the other.
    """
    if metric not in METRICS:
        raise KeyError(f"{metric!r} is not a usage metric; one of {', '.join(METRICS)}")
    if n <= 0:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    table = UsageCounter.__table__
    stmt = insert(table).values(
        workspace_id=workspace_id, month=month or this_month(), metric=metric, count=n
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["workspace_id", "month", "metric"],
        set_={"count": table.c.count + stmt.excluded.count},
    )
    session.execute(stmt)


def count_usage(app, workspace_id: int, metric: str, n: int = 1) -> None:
    """:func:`add_usage` in a session of its own, committed now."""
    if n <= 0:
        return
    with app.session() as s:
        add_usage(s, workspace_id, metric, n)
        s.commit()


class Meter:
    """Counts kept in memory and written every :attr:`every` seconds, for hot paths.

    Every API request adds one call; writing a catalog row per request would double the
    work of the cheapest routes, so counts are batched, as API keys' last use is.

    >>> meter = Meter(every=5.0)
    >>> meter.add(1, "api_calls")
    >>> meter.pending()
    {(1, 'api_calls'): 1}
    """

    def __init__(self, every: float = 5.0):
        self.every = every
        self._lock = threading.Lock()
        self._counts: Counter = Counter()
        self._month = this_month()
        self._flushed = time.monotonic()

    def add(self, workspace_id: int, metric: str, n: int = 1) -> None:
        with self._lock:
            self._counts[(workspace_id, metric)] += n

    def pending(self) -> dict[tuple[int, str], int]:
        with self._lock:
            return dict(self._counts)

    def due(self) -> bool:
        return time.monotonic() - self._flushed >= self.every

    def flush(self, app) -> None:
        """Write what was counted (to the month it was counted in) and start again."""
        with self._lock:
            counts, self._counts = self._counts, Counter()
            month, self._month = self._month, this_month()
            self._flushed = time.monotonic()
        if not counts:
            return
        try:
            with app.session() as s:
                for (ws_id, metric), n in counts.items():
                    if s.get(Workspace, ws_id) is not None:  # deleted meanwhile: drop
                        add_usage(s, ws_id, metric, n, month=month)
                s.commit()
        except Exception:
            with self._lock:  # keep them for the next flush rather than lose them
                self._counts.update(counts)
            raise


def customers_now(app, workspace_id: int) -> int:
    """How many customers the workspace holds (0 before its first import)."""
    try:
        table = app.warehouse.table(workspace_id, "customers")
    except NotFound:
        return 0
    return int(table.count().to_pyarrow().as_py())


def usage(app, workspace: Workspace) -> dict[str, Any]:
    """The workspace's plan, limits, what it holds now and what it used by month.

    >>> usage(app, ws)["this_month"]  # doctest: +SKIP
    {'month': '2026-12', 'events_ingested': 1200, 'api_calls': 31, 'exports': 2}
    """
    plan = plan_of(workspace)
    month = this_month()
    with app.session() as s:
        segments = count_segments(s, workspace.id)
        all_segments = s.scalar(
            sa.select(sa.func.count())
            .select_from(Segment)
            .where(Segment.workspace_id == workspace.id)
        )
        rows = s.execute(
            sa.select(UsageCounter.month, UsageCounter.metric, UsageCounter.count).where(
                UsageCounter.workspace_id == workspace.id
            )
        ).all()
    months: dict[str, dict[str, int]] = {}
    for m, metric, count in rows:
        months.setdefault(m, dict.fromkeys(METRICS, 0))[metric] = int(count)
    current = {"month": month, **months.pop(month, dict.fromkeys(METRICS, 0))}
    return {
        "workspace_id": workspace.id,
        "plan": plan.to_dict(),
        "customers": customers_now(app, workspace.id),
        "segments": segments,
        "segments_all_kinds": all_segments,
        "this_month": current,
        "history": [{"month": m, **months[m]} for m in sorted(months, reverse=True)],
    }


def set_plan(app, workspace: Workspace, name: str) -> Plan:
    """Put a workspace on the plan ``name``; one audit entry when it changes.

    Moving to a plan the workspace already outgrows is refused (:class:`PlanLimit`):
    a workspace over its limits could not import or save anything, which looks like a
    fault rather than a plan.
    """
    plan = get_plan(name)
    with app.session() as s:
        ws = s.get(Workspace, workspace.id)
        if ws is None:
            raise NotFound(f"no workspace {workspace.id}")
        old = plan_of(ws)
        if old.name == plan.name and ws.plan == plan.name:
            return plan
        customers = customers_now(app, ws.id)
        segments = count_segments(s, ws.id)
        for what, held, limit in (
            ("customers", customers, plan.max_customers),
            ("segments (rule and static)", segments, plan.max_segments),
        ):
            if limit is not None and held > limit:
                raise PlanLimit(
                    f"the {plan.title} plan allows {limit:,} {what}; workspace {ws.name!r} "
                    f"holds {held:,}. The plan was not changed. Remove some first, or "
                    "choose a larger plan ('strata plan list')"
                )
        ws.plan = plan.name
        audit.record(
            s,
            ws.id,
            "workspace.plan",
            f"plan changed from {old.title} to {plan.title}",
            target_type="workspace",
            target_id=ws.id,
            details={"from": old.name, "to": plan.name},
        )
        s.commit()
    return plan


def plan_table(plans: Mapping[str, Plan] = PLANS) -> str:
    """The tiers as a Markdown table (``docs/plans.md`` holds it; a test compares)."""
    head = ["plan", "price a month", "customers", "segments", *FEATURES]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for p in plans.values():
        price = "custom" if p.monthly_price is None else f"${p.monthly_price}"
        if p.name == "unlimited":
            price = "free (self-hosted)"
        cells = [
            f"`{p.name}`",
            price,
            _limit(p.max_customers),
            _limit(p.max_segments),
            *("yes" if f in p.features else "no" for f in FEATURES),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
