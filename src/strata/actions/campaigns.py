"""Campaigns: an action on a segment, a holdout kept from it, and the lift it measured.

A campaign acts through an automation of its own: launching it acts on every current
member and, while it runs, on everyone who enters. A stable random split keeps
``holdout_percent`` of them out: a hash of the campaign's salt and the customer's id,
so a customer is always in the same group, whichever process asks. Lift compares the
rate of a goal event (``order``, say) after exposure in the treated group and in the
holdout:

- ``rate``: customers with at least one goal event after they entered the audience
  (the launch, or their entry if later) and before the end, over the group's size;
- ``lift``: treated rate minus holdout rate, with a 95% Wald interval, and the relative
  lift (over the holdout rate);
- ``p_value``: two-sided, from a pooled two-proportion z-test.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import secrets
from typing import Any

import ibis
import sqlalchemy as sa

from strata import audit, governance
from strata.actions.automations import Automations, current_members
from strata.actions.triggers import add_firings
from strata.analysis.insights import two_proportion_p
from strata.catalog import Automation, Campaign, Segment, TriggerFiring, Workspace
from strata.catalog.models import utcnow
from strata.context import Strata
from strata.errors import InputError, NotFound

#: The holdout may be 0% (no measurement) to 90% of the audience.
MAX_HOLDOUT = 90.0
#: z for a two-sided 95% interval.
Z95 = 1.959963984540054


def in_holdout(salt: str | None, customer_id: int, percent: float) -> bool:
    """Whether the stable split puts this customer in the holdout.

    >>> in_holdout("s", 1, 0.0), in_holdout("s", 1, 100.0)
    (False, True)
    """
    if not percent:
        return False
    digest = hashlib.sha256(f"{salt}:{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100 < percent


def lift(treated: tuple[int, int], holdout: tuple[int, int]) -> dict[str, Any]:
    """Rates, absolute and relative lift, a 95% interval and a p-value from counts
    ``(converted, size)`` of each group.

    >>> r = lift((30, 100), (10, 100))
    >>> round(r["lift"], 3), [round(x, 3) for x in r["interval"]], round(r["p_value"], 5)
    (0.2, [0.094, 0.306], 0.00041)
    """
    (x1, n1), (x2, n2) = treated, holdout
    p1 = x1 / n1 if n1 else None
    p2 = x2 / n2 if n2 else None
    out: dict[str, Any] = {
        "treated": {"customers": n1, "converted": x1, "rate": p1},
        "holdout": {"customers": n2, "converted": x2, "rate": p2},
        "lift": None,
        "relative_lift": None,
        "interval": None,
        "p_value": None,
    }
    if p1 is None or p2 is None:
        return out
    diff = p1 - p2
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    out["lift"] = diff
    out["relative_lift"] = diff / p2 if p2 else None
    out["p_value"] = two_proportion_p(x1, n1, x2, n2)
    if se == 0:  # every rate 0 or 1: the Wald interval would be a point, which it is not
        out["note"] = (
            "no goal events in either group yet"
            if x1 == x2 == 0
            else "every customer of both groups converted"
            if x1 == n1 and x2 == n2
            else "too few customers for an interval"
        )
    else:
        out["interval"] = [diff - Z95 * se, diff + Z95 * se]
    return out


class Campaigns:
    """The campaigns of one workspace."""

    def __init__(self, app: Strata, ws: Workspace):
        self.app = app
        self.ws = ws

    def list(self) -> list[Campaign]:
        with self.app.session() as s:
            return list(
                s.scalars(
                    sa.select(Campaign)
                    .where(Campaign.workspace_id == self.ws.id)
                    .order_by(Campaign.id.desc())
                )
            )

    def get(self, campaign_id: int) -> Campaign:
        with self.app.session() as s:
            found = s.get(Campaign, campaign_id)
        if found is None or found.workspace_id != self.ws.id:
            raise NotFound(f"no campaign {campaign_id} in this workspace")
        return found

    def create(
        self,
        name: str,
        segment: str,
        action: dict[str, Any],
        *,
        holdout_percent: float = 10.0,
        goal_event: str | None = None,
        created_by: int | None = None,
    ) -> Campaign:
        """A draft campaign and its (paused) automation; nothing is done until launch."""
        name = (name or "").strip()
        if not name or len(name) > 180:
            raise InputError("a campaign name must have 1 to 180 characters")
        holdout = float(holdout_percent)
        if not 0 <= holdout <= MAX_HOLDOUT:
            raise InputError(f"the holdout must be 0 to {MAX_HOLDOUT:g} percent")
        goal = (goal_event or "").strip() or None
        if goal is not None and len(goal) > 100:
            raise InputError("a goal event name has at most 100 characters")
        with self.app.session() as s:
            taken = s.scalar(
                sa.select(Campaign.id).where(
                    Campaign.workspace_id == self.ws.id, Campaign.name == name
                )
            )
        if taken is not None:
            raise InputError(f"a campaign named {name!r} already exists; choose another")
        automation = Automations(self.app, self.ws).create(
            f"campaign: {name}",
            segment,
            "enter",
            action,
            status="paused",
            created_by=created_by,
            audited=False,  # the campaign is the one change: one entry, below
        )
        with self.app.session() as s:
            row = Campaign(
                workspace_id=self.ws.id,
                segment_id=automation.segment_id,
                name=name,
                kind=automation.action["kind"],
                status="draft",
                holdout_percent=holdout,
                automation_id=automation.id,
                goal_event=goal,
                salt=secrets.token_hex(8),
            )
            s.add(row)
            s.flush()
            audit.record(
                s,
                self.ws.id,
                "campaign.create",
                f"created campaign {name!r} ({row.kind}, {holdout:g}% holdout)",
                target_type="campaign",
                target_id=row.id,
                details={
                    "kind": row.kind,
                    "holdout_percent": holdout,
                    "automation_id": automation.id,
                },
            )
            s.commit()
            return row

    def launch(self, campaign_id: int) -> Campaign:
        """Start: act on every current member (but the holdout) and on everyone who enters."""
        c = self.get(campaign_id)
        if c.status != "draft":
            raise InputError(f"campaign {c.name!r} is {c.status}; only a draft can be launched")
        if c.automation_id is None or c.segment_id is None:
            raise InputError(f"campaign {c.name!r} lost its segment or automation; create it again")
        now = utcnow()
        with self.app.session() as s:
            row = s.get(Campaign, campaign_id)
            row.status, row.started_at = "running", now
            auto = s.get(Automation, c.automation_id)
            governance.check_approved("automation", auto)  # a draft does not act
            governance.check_approved("segment", s.get(Segment, c.segment_id))
            auto.status = "active"
            audit.record(
                s,
                self.ws.id,
                "campaign.launch",
                f"launched campaign {c.name!r}",
                target_type="campaign",
                target_id=c.id,
            )
            s.commit()
        ids = current_members(self.app, self.ws.id, c.segment_id)
        add_firings(self.app, self.ws.id, [(auto, ids)], change="launch", at=now)
        return self.get(campaign_id)

    def end(self, campaign_id: int) -> Campaign:
        """Stop acting; the results are measured up to now and kept."""
        c = self.get(campaign_id)
        if c.status != "running":
            raise InputError(f"campaign {c.name!r} is {c.status}; only a running one can end")
        now = utcnow()
        with self.app.session() as s:
            row = s.get(Campaign, campaign_id)
            row.status, row.ended_at = "ended", now
            if c.automation_id is not None:
                s.get(Automation, c.automation_id).status = "paused"
                s.execute(
                    sa.update(TriggerFiring)
                    .where(
                        TriggerFiring.automation_id == c.automation_id,
                        TriggerFiring.status == "pending",
                    )
                    .values(status="skipped", outcome="the campaign ended first", done_at=now)
                )
            audit.record(
                s,
                self.ws.id,
                "campaign.end",
                f"ended campaign {c.name!r}",
                target_type="campaign",
                target_id=c.id,
            )
            s.commit()
        results = self.results(campaign_id)
        with self.app.session() as s:
            s.get(Campaign, campaign_id).metrics = results
            s.commit()
        return self.get(campaign_id)

    def delete(self, campaign_id: int) -> None:
        c = self.get(campaign_id)
        with self.app.session() as s:
            s.execute(sa.delete(Campaign).where(Campaign.id == campaign_id))
            if c.automation_id is not None:
                s.execute(sa.delete(Automation).where(Automation.id == c.automation_id))
            audit.record(
                s,
                self.ws.id,
                "campaign.delete",
                f"deleted campaign {c.name!r}",
                target_type="campaign",
                target_id=c.id,
            )
            s.commit()

    def results(self, campaign_id: int) -> dict[str, Any]:
        """Audience, groups, goal rates and lift, measured now (or up to the end)."""
        c = self.get(campaign_id)
        out: dict[str, Any] = {
            "status": c.status,
            "goal_event": c.goal_event,
            "holdout_percent": c.holdout_percent,
            "started_at": _iso(c.started_at),
            "ended_at": _iso(c.ended_at),
            "acted": self._acted(c),
        }
        if c.started_at is None or c.segment_id is None:
            return {**out, **lift((0, 0), (0, 0))}
        until = c.ended_at or utcnow()
        rows = self._audience(c, until)
        groups = {"treated": [0, 0], "holdout": [0, 0]}
        for cid, converted in rows:
            g = groups["holdout" if in_holdout(c.salt, cid, c.holdout_percent) else "treated"]
            g[1] += 1
            g[0] += int(bool(converted))
        measured = lift(tuple(groups["treated"]), tuple(groups["holdout"]))
        if c.goal_event is None:
            measured["note"] = "no goal event: set one to measure lift"
            measured["lift"] = measured["relative_lift"] = measured["p_value"] = None
        return {**out, **measured}

    def _acted(self, c: Campaign) -> dict[str, int]:
        if c.automation_id is None:
            return {}
        with self.app.session() as s:
            counts = s.execute(
                sa.select(TriggerFiring.status, sa.func.count())
                .where(TriggerFiring.automation_id == c.automation_id)
                .group_by(TriggerFiring.status)
            ).all()
        return {status: n for status, n in counts}

    def _audience(self, c: Campaign, until: dt.datetime) -> list[tuple[int, bool]]:
        """Everyone in the segment at some time while it ran, and whether they converted."""
        wh = self.app.warehouse
        m = wh.table(self.ws.id, "memberships")
        start = ibis.literal(c.started_at, type="timestamp")
        end = ibis.literal(until, type="timestamp")
        stints = m.filter(
            m.segment_id == c.segment_id,
            m.joined_at <= end,
            m.left_at.isnull() | (m.left_at > start),
        )
        exposed = stints.group_by("customer_id").aggregate(
            exposed_at=ibis.greatest(stints.joined_at, start).min()
        )
        if c.goal_event is None:
            rows = exposed.select("customer_id").to_pyarrow().column("customer_id").to_pylist()
            return [(int(i), False) for i in rows]
        events = wh.table(self.ws.id, "events")
        goals = events.filter(events.event_type == c.goal_event, events.timestamp <= end).select(
            "customer_id", "timestamp"
        )
        joined = exposed.left_join(
            goals,
            (exposed.customer_id == goals.customer_id) & (goals.timestamp >= exposed.exposed_at),
        )
        per = joined.group_by(cid=joined.customer_id).aggregate(
            converted=joined.timestamp.notnull().any()
        )
        table = per.to_pyarrow()
        return list(
            zip(
                (int(i) for i in table.column("cid").to_pylist()),
                table.column("converted").to_pylist(),
                strict=True,
            )
        )


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat() + "Z"


def segment_name(app: Strata, segment_id: int | None) -> str | None:
    if segment_id is None:
        return None
    with app.session() as s:
        seg = s.get(Segment, segment_id)
    return None if seg is None else seg.name
