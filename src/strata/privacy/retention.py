"""Event retention: a workspace keeps events for N days, then they are deleted.

``Workspace.retention_days`` (None: keep everything) is set with :func:`set_retention`
(audited). :func:`apply` deletes, for one workspace, events and their order lines whose
timestamp is before midnight UTC N days ago, and the catalog rows of the same age that
hold customer data: delivered or failed webhook messages (with their attempts), sent or
failed e-mails, and finished trigger firings. The cut-off is a date compared as a
timestamp on every backend, never a difference of timestamps (backends differ there).
A server runs it hourly (:class:`RetentionWorker`); ``strata privacy retention run`` on
demand. A run that deletes anything writes one audit entry, as the actor ``strata``.

>>> cutoff(30, now=dt.datetime(2025, 3, 31, 15, 0))
datetime.datetime(2025, 3, 1, 0, 0)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from strata import audit
from strata.catalog import Workspace
from strata.catalog.models import EmailMessage, TriggerFiring, WebhookAttempt, WebhookMessage
from strata.context import Strata
from strata.errors import InputError, NotFound

log = logging.getLogger("strata.retention")

#: The longest retention accepted (about 100 years).
MAX_DAYS = 36_500
#: Seconds between two runs in a server.
EVERY = 3600.0


def cutoff(days: int, *, now: dt.datetime | None = None) -> dt.datetime:
    """The first instant kept: midnight (UTC, naive) ``days`` days before today."""
    today = (now or dt.datetime.now(dt.UTC).replace(tzinfo=None)).date()
    return dt.datetime.combine(today - dt.timedelta(days=days), dt.time())


def check_days(days: int | None) -> int | None:
    if days is None:
        return None
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise InputError(f"retention must be a whole number of days from 1 to {MAX_DAYS} (or off)")
    return days


def set_retention(app: Strata, workspace: Workspace, days: int | None) -> Workspace:
    """Keep the workspace's events ``days`` days (None: for ever); audited."""
    days = check_days(days)
    with app.session() as s:
        ws = s.get(Workspace, workspace.id)
        before = ws.retention_days
        ws.retention_days = days
        audit.record(
            s,
            ws.id,
            "privacy.retention",
            f"set event retention to {days} days" if days else "turned event retention off",
            target_type="workspace",
            target_id=ws.id,
            details={"before": before, "after": days},
        )
        s.commit()
        s.refresh(ws)
        s.expunge(ws)
    return ws


def apply(app: Strata, workspace: Workspace, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """Delete what is older than the workspace's retention; what went, per store.

    A workspace without retention is left alone (``{"retention_days": None}``).
    """
    with app.session() as s:
        ws = s.get(Workspace, workspace.id)
        if ws is None:
            raise NotFound(f"no workspace {workspace.id}")
        days = ws.retention_days
    if not days:
        return {"retention_days": None}
    before = cutoff(days, now=now)
    try:
        warehouse = app.warehouse.delete_events_before(ws.id, before)
    except NotFound:
        warehouse = {"events": 0, "order_items": 0}
    catalog = _delete_catalog(app, ws.id, before)
    result = {
        "retention_days": days,
        "cutoff": before.isoformat(),
        "warehouse": warehouse,
        "catalog": catalog,
    }
    deleted = sum(warehouse.values()) + sum(catalog.values())
    if deleted:
        if warehouse["events"]:
            app.members_changed(ws.id)  # cached profiles hold recent events
        with app.session() as s:  # as whoever runs it: the hourly pass is Strata's
            audit.record(
                s,
                ws.id,
                "privacy.retention_run",
                f"deleted {deleted:,} rows older than {days} days",
                target_type="workspace",
                target_id=ws.id,
                details={"cutoff": result["cutoff"], **warehouse, **catalog},
            )
            s.commit()
    return result


def _delete_catalog(app: Strata, workspace_id: int, before: dt.datetime) -> dict[str, int]:
    with app.session() as s:
        old_hooks = sa.select(WebhookMessage.id).where(
            WebhookMessage.workspace_id == workspace_id,
            WebhookMessage.status.in_(("delivered", "failed")),
            WebhookMessage.created_at < before,
        )
        attempts = s.execute(
            sa.delete(WebhookAttempt).where(WebhookAttempt.message_id.in_(old_hooks))
        ).rowcount
        hooks = s.execute(
            sa.delete(WebhookMessage).where(WebhookMessage.id.in_(old_hooks))
        ).rowcount
        mails = s.execute(
            sa.delete(EmailMessage).where(
                EmailMessage.workspace_id == workspace_id,
                EmailMessage.status.in_(("sent", "failed")),
                EmailMessage.created_at < before,
            )
        ).rowcount
        firings = s.execute(
            sa.delete(TriggerFiring).where(
                TriggerFiring.workspace_id == workspace_id,
                TriggerFiring.status != "pending",
                TriggerFiring.at < before,
            )
        ).rowcount
        s.commit()
    return {
        "webhook_messages": hooks,
        "webhook_attempts": attempts,
        "email_messages": mails,
        "trigger_firings": firings,
    }


def apply_all(app: Strata, *, now: dt.datetime | None = None) -> dict[int, dict[str, Any]]:
    """:func:`apply` to every workspace that has a retention; results by workspace id."""
    with app.session() as s:
        wss = list(s.scalars(sa.select(Workspace).where(Workspace.retention_days.is_not(None))))
    return {ws.id: apply(app, ws, now=now) for ws in wss}


class RetentionWorker:
    """Applies every workspace's retention once an hour while a server runs.

    ``writing`` gives the stores with the warehouse to oneself (the server's
    ``Service.writing``); without it ``app`` is used.
    """

    def __init__(
        self,
        app: Strata,
        *,
        writing: Callable[[], contextlib.AbstractContextManager[Strata]] | None = None,
        every: float = EVERY,
    ):
        self.app = app
        self.writing = writing
        self.every = every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Runs completed (tests wait on it).
        self.runs = 0

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="strata-retention", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=30)
            self._thread = None

    def run_once(self) -> dict[int, dict[str, Any]]:
        if self.writing is None:
            return apply_all(self.app)
        with self.writing() as app:
            return apply_all(app)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # a bug or an outage: log it, try again next hour
                log.exception("retention run failed")
            self.runs += 1
            self._stop.wait(self.every)
