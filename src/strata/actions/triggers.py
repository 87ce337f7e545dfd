"""Triggers: who entered or left a segment, recorded once for each automation that listens.

Every evaluation that changes a segment (a refresh, an import, a live event, a static
list) stores its joins and exits in the warehouse's ``memberships`` table stamped with
the evaluation's instant. :func:`record_changes` reads back exactly those rows and writes
one :class:`~strata.catalog.TriggerFiring` per customer and listening automation, in the
same process, then wakes the automation runner: so an entry reaches a webhook receiver
within a second of the refresh or ingest that caused it. Firings are the outbox: the
runner acts on them later (after the automation's wait), and every one stays on record.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Sequence

import ibis
import sqlalchemy as sa

from strata.catalog import Automation, Segment, Sync, TriggerFiring
from strata.catalog.models import utcnow

#: What a listener hears: a workspace had new firings recorded.
Listener = Callable[[int], None]
#: A sync runs on its own at most this often (marketing tools limit their APIs).
SYNC_EVERY = dt.timedelta(seconds=60)


class Triggers:
    """Listeners told when firings were recorded (the runner's ``wake``), shared per process."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    def listen(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def forget(self, listener: Listener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def fired(self, workspace_id: int) -> None:
        for listener in list(self._listeners):
            listener(workspace_id)


def listening(app, workspace_id: int, segment_id: int) -> list[Automation]:
    """Active enter/exit automations on one segment."""
    with app.session() as s:
        return list(
            s.scalars(
                sa.select(Automation).where(
                    Automation.workspace_id == workspace_id,
                    Automation.segment_id == segment_id,
                    Automation.status == "active",
                    Automation.trigger.in_(("enter", "exit")),
                    # Drafts record nothing: they act on what happens once approved.
                    Automation.review_status == "approved",
                    Automation.segment_id.in_(
                        sa.select(Segment.id).where(Segment.review_status == "approved")
                    ),
                )
            )
        )


def changed_ids(app, workspace_id: int, segment_id: int, instant: dt.datetime, change: str):
    """Customers who entered (``enter``) or left (``exit``) the segment at ``instant``."""
    m = app.warehouse.table(workspace_id, "memberships")
    at = ibis.literal(instant, type="timestamp")
    column = m.joined_at if change == "enter" else m.left_at
    ids = m.filter(m.segment_id == segment_id, column == at).select("customer_id").to_pyarrow()
    return sorted(int(i) for i in ids.column("customer_id").to_pylist())


def record_changes(app, workspace_id: int, segment_id: int, instant: dt.datetime) -> int:
    """Record the firings of one evaluation of a segment; how many were recorded."""
    syncs_due(app, workspace_id, segment_id)
    automations = listening(app, workspace_id, segment_id)
    if not automations:
        return 0
    ids = {
        change: changed_ids(app, workspace_id, segment_id, instant, change)
        for change in {a.trigger for a in automations}
    }
    return add_firings(
        app,
        workspace_id,
        [(a, ids[a.trigger]) for a in automations],
        change=None,
        at=instant,
    )


def add_firings(
    app,
    workspace_id: int,
    groups: Sequence[tuple[Automation, Sequence[int]]],
    *,
    change: str | None,
    at: dt.datetime,
) -> int:
    """One pending firing per customer of each ``(automation, ids)``; due after its wait.

    ``change`` names the change (``schedule``, ``launch``); ``None`` uses each
    automation's trigger (``enter`` or ``exit``).
    """
    now = utcnow()
    rows = [
        {
            "workspace_id": workspace_id,
            "automation_id": a.id,
            "segment_id": a.segment_id,
            "customer_id": cid,
            "change": change or a.trigger,
            "at": at,
            "due_at": now + dt.timedelta(seconds=a.wait_seconds or 0),
            "status": "pending",
            "created_at": now,
        }
        for a, ids in groups
        for cid in ids
    ]
    if not rows:
        return 0
    with app.session() as s:
        s.execute(sa.insert(TriggerFiring), rows)
        s.commit()
    app.triggers.fired(workspace_id)
    return len(rows)


def syncs_due(app, workspace_id: int, segment_id: int) -> None:
    """The segment changed: its syncs are due (at most once per :data:`SYNC_EVERY`)."""
    now = utcnow()
    with app.session() as s:
        syncs = s.scalars(
            sa.select(Sync).where(Sync.workspace_id == workspace_id, Sync.segment_id == segment_id)
        ).all()
        for sync in syncs:
            if (sync.config or {}).get("auto", True) is False:
                continue
            soonest = now if sync.last_synced_at is None else sync.last_synced_at + SYNC_EVERY
            due = max(now, soonest)
            if sync.due_at is None or sync.due_at > due:
                sync.due_at = due
        s.commit()
    if syncs:
        app.triggers.fired(workspace_id)
