"""Automations: when (enter, exit, schedule) → optional wait and condition → do.

An automation listens to one segment. Its trigger records a firing per customer
(:mod:`strata.actions.triggers`); once the wait is over, :class:`AutomationRunner`
checks the customer still qualifies and does the action:

=================  ==========================================================================
``webhook``        a signed webhook to an endpoint (``destination``)
``email``          a templated e-mail through an SMTP server (``destination``, ``template``)
``export``         a file of the customers (``format``: csv, mailchimp, klaviyo, hubspot…)
``set_attribute``  a customer attribute (``attribute``, ``value``)
``tag``            a tag, stored as the boolean attribute ``tag_<name>``
``add_to_segment`` add the customers to a static segment (``segment``; created if new)
=================  ==========================================================================

After a wait, an ``enter`` automation acts only on customers still in the segment
(an ``exit`` one, only on customers still out of it), and a ``condition`` (a rule, as
in segment definitions) must hold at the moment it acts; a customer who fails either
is recorded as ``skipped`` with the reason. A customer a running campaign holds out
is recorded as ``held_out`` and nothing is done.

>>> Automations(app, ws).create("welcome", "New customers", "enter",  # doctest: +SKIP
...     {"kind": "webhook", "destination": 3}, wait_seconds=3600)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import threading
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import ibis
import ibis.expr.datatypes as idt
import pyarrow as pa
import sqlalchemy as sa

from strata import audit, governance
from strata.actions.destinations import destination_of
from strata.catalog import (
    Automation,
    Campaign,
    Destination,
    Segment,
    Sync,
    TriggerFiring,
    Workspace,
)
from strata.catalog.models import utcnow
from strata.context import Strata
from strata.errors import InputError, NotFound, StrataError
from strata.models.store import jsonable
from strata.segments import nodes as N
from strata.segments.reference import ReferenceTime
from strata.warehouse.schema import check_column_name

log = logging.getLogger("strata.actions")

TRIGGERS = ("enter", "exit", "schedule")
ACTION_KINDS = ("webhook", "email", "export", "set_attribute", "tag", "add_to_segment")
#: The webhook event type of each change.
EVENT_TYPES = {
    "enter": "segment.entered",
    "exit": "segment.exited",
    "schedule": "segment.scheduled",
    "launch": "campaign.started",
}
#: Columns an action may not set.
_KEYS = {"customer_id", "external_id", "created_at", "updated_at"}
#: Longest wait (a year) and shortest schedule (five minutes).
MAX_WAIT = 366 * 24 * 3600
MIN_EVERY = 5
#: A firing claimed by a runner that died is taken up again after this long.
STALE_CLAIM = dt.timedelta(minutes=10)
#: A sync that failed on its own is tried again after this long.
SYNC_RETRY = dt.timedelta(minutes=5)
#: Segments that may act: not waiting for approval (:mod:`strata.governance`).
_APPROVED_SEGMENTS = sa.select(Segment.id).where(Segment.review_status == "approved")


class Automations:
    """The automations of one workspace."""

    def __init__(self, app: Strata, ws: Workspace):
        self.app = app
        self.ws = ws

    def list(self) -> list[Automation]:
        with self.app.session() as s:
            return list(
                s.scalars(
                    sa.select(Automation)
                    .where(Automation.workspace_id == self.ws.id)
                    .order_by(Automation.name)
                )
            )

    def get(self, automation_id: int) -> Automation:
        with self.app.session() as s:
            found = s.get(Automation, automation_id)
        if found is None or found.workspace_id != self.ws.id:
            raise NotFound(f"no automation {automation_id} in this workspace")
        return found

    def create(
        self,
        name: str,
        segment: str,
        trigger: str,
        action: dict[str, Any],
        *,
        wait_seconds: int = 0,
        condition: dict[str, Any] | None = None,
        every_minutes: int | None = None,
        status: str = "active",
        created_by: int | None = None,
        audited: bool = True,
    ) -> Automation:
        """Check everything, then store the automation (active unless ``status`` says).

        ``audited=False``: the caller writes the audit entry (a campaign's automation).
        """
        name = _name(name)
        seg = self._segment(segment)
        fields = self._checked(trigger, action, wait_seconds, condition, every_minutes)
        with self.app.session() as s:
            taken = s.scalar(
                sa.select(Automation.id).where(
                    Automation.workspace_id == self.ws.id, Automation.name == name
                )
            )
            if taken is not None:
                raise InputError(f"an automation named {name!r} already exists; choose another")
            row = Automation(
                workspace_id=self.ws.id,
                name=name,
                segment_id=seg.id,
                status=_status(status),
                created_by=created_by,
                **fields,
            )
            s.add(row)
            if audited:
                s.flush()
                audit.record(
                    s,
                    self.ws.id,
                    "automation.create",
                    f"created automation {name!r} ({trigger} of segment {seg.name!r})",
                    target_type="automation",
                    target_id=row.id,
                    details={"trigger": trigger, "action": row.action.get("kind")},
                )
            governance.track(s, self.ws.id, "automation", row, new=True)
            s.commit()
            return row

    def update(self, automation_id: int, **changes: Any) -> Automation:
        """Change some of name, segment, trigger, action, wait, condition, schedule, status."""
        current = self.get(automation_id)
        trigger = changes.get("trigger", current.trigger)
        fields = self._checked(
            trigger,
            changes.get("action", current.action),
            changes.get("wait_seconds", current.wait_seconds),
            changes.get("condition", current.condition),
            changes.get("every_minutes", current.every_minutes if trigger == "schedule" else None),
        )
        if trigger == current.trigger == "schedule" and "every_minutes" not in changes:
            fields["next_run_at"] = current.next_run_at
        with self.app.session() as s:
            row = s.get(Automation, automation_id)
            if "name" in changes and changes["name"] is not None:
                row.name = _name(changes["name"])
            if changes.get("segment") is not None:
                row.segment_id = self._segment(changes["segment"]).id
            if changes.get("status") is not None:
                row.status = _status(changes["status"])
            for key, value in fields.items():
                setattr(row, key, value)
            _audit_update(s, row, changes)
            try:
                governance.track(s, self.ws.id, "automation", row)  # may go back to review
                s.commit()
            except sa.exc.IntegrityError:
                raise InputError(f"an automation named {row.name!r} already exists") from None
            return row

    def pause(self, automation_id: int) -> Automation:
        return self.update(automation_id, status="paused")

    def resume(self, automation_id: int) -> Automation:
        return self.update(automation_id, status="active")

    def delete(self, automation_id: int) -> None:
        found = self.get(automation_id)
        with self.app.session() as s:
            s.execute(sa.delete(Automation).where(Automation.id == automation_id))
            audit.record(
                s,
                self.ws.id,
                "automation.delete",
                f"deleted automation {found.name!r}",
                target_type="automation",
                target_id=automation_id,
            )
            s.commit()

    def firings(
        self,
        *,
        automation_id: int | None = None,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[int, list[TriggerFiring]]:
        """Recorded firings, newest first."""
        where = [TriggerFiring.workspace_id == self.ws.id]
        if automation_id is not None:
            where.append(TriggerFiring.automation_id == automation_id)
        if status is not None:
            where.append(TriggerFiring.status == status)
        with self.app.session() as s:
            total = s.scalar(sa.select(sa.func.count()).select_from(TriggerFiring).where(*where))
            rows = s.scalars(
                sa.select(TriggerFiring)
                .where(*where)
                .order_by(TriggerFiring.id.desc())
                .limit(limit)
                .offset(offset)
            ).all()
        return total or 0, list(rows)

    # -- checking -------------------------------------------------------------------------
    def _segment(self, name: str) -> Segment:
        from strata.segments.engine import Segments

        return Segments(self.app, self.ws).get(name)

    def _checked(
        self,
        trigger: str,
        action: dict[str, Any],
        wait_seconds: int | None,
        condition: dict[str, Any] | None,
        every_minutes: int | None,
    ) -> dict[str, Any]:
        if trigger not in TRIGGERS:
            raise InputError(f"trigger {trigger!r} is not one of {', '.join(TRIGGERS)}")
        wait = int(wait_seconds or 0)
        if not 0 <= wait <= MAX_WAIT:
            raise InputError(f"a wait must be 0 to {MAX_WAIT:,} seconds (a year)")
        fields: dict[str, Any] = {
            "trigger": trigger,
            "wait_seconds": wait,
            "action": check_action(self.app, self.ws, action),
            "condition": self._condition(condition),
            "every_minutes": None,
            "next_run_at": None,
        }
        if trigger == "schedule":
            if every_minutes is None or int(every_minutes) < MIN_EVERY:
                raise InputError(
                    f"a scheduled automation needs every_minutes (at least {MIN_EVERY})"
                )
            fields["every_minutes"] = int(every_minutes)
            fields["next_run_at"] = utcnow() + dt.timedelta(minutes=int(every_minutes))
        elif every_minutes is not None:
            raise InputError("every_minutes is only for scheduled automations")
        return fields

    def _condition(self, condition: dict[str, Any] | None) -> dict[str, Any] | None:
        if not condition:
            return None
        from strata.segments.engine import Segments

        rule = N.parse_rule(condition)
        Segments(self.app, self.ws).compiler(ReferenceTime.now()).members(rule)
        return N.rule_json(rule)


def _audit_update(s, row: Automation, changes: dict[str, Any]) -> None:
    """One entry for a change: pausing and resuming are named as such."""
    state = sa.inspect(row)
    changed = [a.key for a in state.attrs if a.history.has_changes()]
    if set(changes) == {"status"} and changes["status"] in ("paused", "active"):
        verb = "pause" if changes["status"] == "paused" else "resume"
        summary = f"{verb}d automation {row.name!r}"
    else:
        verb = "update"
        summary = f"changed automation {row.name!r}" + (
            f": {', '.join(changed)}" if changed else ""
        )
    audit.record(
        s,
        row.workspace_id,
        f"automation.{verb}",
        summary,
        target_type="automation",
        target_id=row.id,
        details={"changed": changed},
    )


def check_action(app: Strata, ws: Workspace, action: dict[str, Any]) -> dict[str, Any]:
    """The action, checked and normalised; a clear error for anything it could not do."""
    if not isinstance(action, dict) or action.get("kind") not in ACTION_KINDS:
        raise InputError(f"an action needs a kind: one of {', '.join(ACTION_KINDS)}")
    kind = action["kind"]
    if kind in {"webhook", "email"}:
        want = "webhook" if kind == "webhook" else "smtp"
        dest = _destination(app, ws, action.get("destination"), want)
        out: dict[str, Any] = {"kind": kind, "destination": dest.id}
        if kind == "email":
            from strata.actions.email import check_template

            out["template"] = check_template(action.get("template") or {})
        return out
    if kind == "export":
        from strata.actions.exports import FORMATS

        fmt = action.get("format", "csv")
        if fmt not in FORMATS:
            raise InputError(f"export format {fmt!r} is not one of {', '.join(FORMATS)}")
        return {"kind": kind, "format": fmt}
    if kind == "set_attribute":
        name = check_column_name(str(action.get("attribute") or ""))
        if name in _KEYS:
            raise InputError(f"{name!r} is kept by Strata and cannot be set by an automation")
        value = action.get("value")
        _attribute_type(app, ws, name, value)
        return {"kind": kind, "attribute": name, "value": value}
    if kind == "tag":
        tag = str(action.get("tag") or "").strip().lower()
        check_column_name(f"tag_{tag}")
        return {"kind": kind, "tag": tag}
    segment = _name(str(action.get("segment") or ""))
    with app.session() as s:
        seg = s.scalar(
            sa.select(Segment).where(Segment.workspace_id == ws.id, Segment.name == segment)
        )
    if seg is not None and seg.kind != "static":
        raise InputError(f"{segment!r} is a {seg.kind} segment; customers are added to static ones")
    return {"kind": kind, "segment": segment}


def _destination(app: Strata, ws: Workspace, destination: Any, kind: str) -> Destination:
    label = "webhook endpoint" if kind == "webhook" else "SMTP server"
    if destination is None or destination == "":
        raise InputError(f"say which {label} to use: destination=NAME or id")
    return destination_of(app, ws, destination, [kind], label)


def _attribute_type(app: Strata, ws: Workspace, name: str, value: Any) -> idt.DataType:
    """The column type ``value`` is stored as; it must fit an existing column's type."""
    if value is None:
        raise InputError(f"say which value to set {name!r} to")
    given = (
        idt.boolean
        if isinstance(value, bool)
        else idt.int64
        if isinstance(value, int)
        else idt.float64
        if isinstance(value, float)
        else idt.string
    )
    schema = app.warehouse.customer_schema(ws.id)
    if name in schema:
        have = schema[name]
        fits = have == given or (have.is_floating() and given.is_integer())
        if not fits:
            raise InputError(f"attribute {name!r} holds {have}; {value!r} is not one")
        return have
    return given


def _name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise InputError("a name must have 1 to 200 characters")
    return name


def _status(status: str) -> str:
    if status not in {"active", "paused"}:
        raise InputError(f"status {status!r} is not active or paused")
    return status


# -- running ----------------------------------------------------------------------------------
class Stores:
    """One process's stores for the runner: ``reading()`` and ``writing()`` yield a
    :class:`Strata` for the calling thread (the server passes its :class:`Service`)."""

    def __init__(self, app: Strata):
        self.app = app
        self.write_lock = threading.RLock()

    def strata(self) -> Strata:
        return self.app

    @contextlib.contextmanager
    def reading(self) -> Iterator[Strata]:
        with self.write_lock:
            yield self.app

    writing = reading


class AutomationRunner:
    """Acts on due firings and runs scheduled automations, on a thread of its own.

    Recording a firing wakes it (:class:`~strata.actions.triggers.Triggers`), so an entry
    is acted on at once; ``poll`` seconds is the fallback for firings other processes
    recorded, waits coming due, and schedules.
    """

    def __init__(
        self,
        app: Strata,
        *,
        stores=None,
        on_webhook=None,
        on_mail=None,
        batch: int = 500,
        poll: float = 1.0,
    ):
        self.app = app
        self.stores = stores or Stores(app)
        self.on_webhook = on_webhook or (lambda: None)
        self.on_mail = on_mail or (lambda: None)
        self.batch = batch
        self.poll = poll
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._release_stale()
            self.app.triggers.listen(self._heard)
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name="strata-automations", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self.app.triggers.forget(self._heard)
            self._stop.set()
            self._wake.set()
            self._thread.join(timeout=30)
            self._thread = None

    def wake(self) -> None:
        self._wake.set()

    def _heard(self, _workspace_id: int) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                busy = self.run_due() >= self.batch
            except Exception:  # a bug or a store that went away: say so, keep running
                log.exception("automation runner pass failed")
                busy = False
            if not busy:
                self._wake.wait(self.poll)

    def run_due(self) -> int:
        """One pass: start due schedules and syncs, then act on one batch of due firings."""
        self._run_schedules()
        self._run_syncs()
        claim = f"claim:{utcnow().isoformat()}:{uuid.uuid4().hex}"
        firings = self._claim(claim)
        by_automation: dict[int, list[TriggerFiring]] = {}
        for f in firings:
            by_automation.setdefault(f.automation_id, []).append(f)
        for automation_id, group in by_automation.items():
            try:
                self._act(automation_id, group)
            except StrataError as exc:
                self._finish(group, "failed", str(exc))
            except Exception as exc:  # keep the others going; the firing says what broke
                log.exception("automation %s failed", automation_id)
                self._finish(group, "failed", f"{type(exc).__name__}: {exc}")
        return len(firings)

    # -- claiming -------------------------------------------------------------------------
    def _claim(self, claim: str) -> list[TriggerFiring]:
        now = utcnow()
        with self.app.session() as s:
            due = (
                sa.select(TriggerFiring.id)
                .where(TriggerFiring.status == "pending", TriggerFiring.due_at <= now)
                .order_by(TriggerFiring.id)
                .limit(self.batch)
                .scalar_subquery()
            )
            s.execute(
                sa.update(TriggerFiring)
                .where(TriggerFiring.id.in_(due), TriggerFiring.status == "pending")
                .values(status="acting", outcome=claim)
                .execution_options(synchronize_session=False)
            )
            s.commit()
            return list(
                s.scalars(
                    sa.select(TriggerFiring)
                    .where(TriggerFiring.status == "acting", TriggerFiring.outcome == claim)
                    .order_by(TriggerFiring.id)
                )
            )

    def _release_stale(self) -> None:
        """Firings a runner claimed and never finished (it died) become due again."""
        cutoff = utcnow() - STALE_CLAIM
        with self.app.session() as s:
            for f in s.scalars(sa.select(TriggerFiring).where(TriggerFiring.status == "acting")):
                try:
                    claimed = dt.datetime.fromisoformat((f.outcome or "").split(":", 2)[1])
                except (IndexError, ValueError):
                    claimed = cutoff
                if claimed <= cutoff:
                    f.status, f.outcome = "pending", None
            s.commit()

    def _finish(
        self, firings: Sequence[TriggerFiring], status: str, outcome: str | dict[int, str]
    ) -> None:
        if not firings:
            return
        now = utcnow()
        rows = [
            {
                "fid": f.id,
                "status": status,
                "outcome": (outcome.get(f.customer_id) if isinstance(outcome, dict) else outcome),
                "done_at": None if status == "pending" else now,
            }
            for f in firings
        ]
        table = TriggerFiring.__table__
        with self.app.session() as s:
            s.execute(
                table.update()
                .where(table.c.id == sa.bindparam("fid"))
                .values(
                    status=sa.bindparam("status"),
                    outcome=sa.bindparam("outcome"),
                    done_at=sa.bindparam("done_at"),
                ),
                rows,
            )
            s.commit()

    # -- schedules ------------------------------------------------------------------------
    def _run_schedules(self) -> None:
        from strata.actions.triggers import add_firings

        now = utcnow()
        with self.app.session() as s:
            due = list(
                s.scalars(
                    sa.select(Automation).where(
                        Automation.trigger == "schedule",
                        Automation.status == "active",
                        Automation.next_run_at <= now,
                        Automation.review_status == "approved",  # drafts wait (governance)
                        Automation.segment_id.in_(_APPROVED_SEGMENTS),
                    )
                )
            )
            for a in due:  # advance first: a slow run must not start twice
                step = dt.timedelta(minutes=a.every_minutes or MIN_EVERY)
                nxt = a.next_run_at or now
                while nxt <= now:
                    nxt += step
                a.next_run_at = nxt
            s.commit()
        for a in due:
            with self.stores.reading() as app:
                ids = current_members(app, a.workspace_id, a.segment_id)
            add_firings(self.app, a.workspace_id, [(a, ids)], change="schedule", at=now)

    # -- syncs ----------------------------------------------------------------------------
    def _run_syncs(self) -> None:
        """Syncs whose segment changed: send the entries and exits (a failure retries later)."""
        from strata.actions.syncs import Syncs

        now = utcnow()
        with self.app.session() as s:
            due = list(
                s.scalars(
                    sa.select(Sync).where(
                        Sync.due_at <= now,
                        Sync.review_status == "approved",  # drafts wait (governance)
                        Sync.segment_id.in_(_APPROVED_SEGMENTS),
                    )
                )
            )
            for sync in due:  # taken: changes from now on make it due again
                sync.due_at = None
            s.commit()
        for sync in due:
            with self.app.session() as s:
                ws = s.get(Workspace, sync.workspace_id)
            try:
                # The warehouse turn is taken only to read the members.
                Syncs(self.stores.strata(), ws, reading=self.stores.reading).run(sync.id)
            except StrataError as exc:
                log.warning("sync %s failed: %s", sync.id, exc)
                with self.app.session() as s:
                    row = s.get(Sync, sync.id)
                    if row is not None and row.due_at is None:
                        row.due_at = utcnow() + SYNC_RETRY
                    s.commit()

    # -- acting ---------------------------------------------------------------------------
    def _act(self, automation_id: int, firings: list[TriggerFiring]) -> None:
        with self.app.session() as s:
            a = s.get(Automation, automation_id)
            ws = s.get(Workspace, a.workspace_id)
            seg = s.get(Segment, a.segment_id)
            campaign = s.scalar(
                sa.select(Campaign).where(
                    Campaign.automation_id == automation_id, Campaign.status == "running"
                )
            )
        if a.status != "active" and not (campaign and firings[0].change == "launch"):
            self._finish(firings, "pending", None)  # paused: they wait for it to resume
            return
        if "draft" in (a.review_status, seg.review_status):
            self._finish(firings, "pending", None)  # a change waits for approval (governance)
            return
        todo = list(firings)
        if campaign is not None:
            from strata.actions.campaigns import in_holdout

            held = [
                f
                for f in todo
                if in_holdout(campaign.salt, f.customer_id, campaign.holdout_percent)
            ]
            self._finish(held, "held_out", f"held out by campaign {campaign.name!r}")
            todo = [f for f in todo if f not in held]
        with self.stores.reading() as app:
            todo = self._still_qualify(app, a, ws, todo)
            customers = _customers(app, ws.id, [f.customer_id for f in todo])
        if not todo:
            return
        outcome = self._do(a, ws, seg, todo, customers)
        self._finish(todo, "done", outcome)

    def _still_qualify(
        self, app: Strata, a: Automation, ws: Workspace, firings: list[TriggerFiring]
    ) -> list[TriggerFiring]:
        """Firings whose customer still qualifies; the others are recorded as skipped."""
        if not firings:
            return firings
        ids = [f.customer_id for f in firings]
        keep = set(ids)
        if a.wait_seconds and a.trigger in {"enter", "exit"}:
            members = set(current_members(app, a.workspace_id, a.segment_id, ids))
            gone = keep - members if a.trigger == "enter" else keep & members
            self._finish(
                [f for f in firings if f.customer_id in gone],
                "skipped",
                "no longer in the segment" if a.trigger == "enter" else "back in the segment",
            )
            keep -= gone
        if a.condition and keep:
            from strata.segments.engine import Segments

            segs = Segments(app, ws)
            matched = segs.compiler(ReferenceTime.now(), customer_ids=sorted(keep)).members(
                N.parse_rule(a.condition)
            )
            ok = set(matched.to_pyarrow().column("customer_id").to_pylist())
            self._finish(
                [f for f in firings if f.customer_id in keep - ok],
                "skipped",
                "the condition no longer holds",
            )
            keep &= ok
        return [f for f in firings if f.customer_id in keep]

    def _do(
        self,
        a: Automation,
        ws: Workspace,
        seg: Segment,
        firings: list[TriggerFiring],
        customers: dict[int, dict[str, Any]],
    ) -> dict[int, str] | str:
        action = a.action
        kind = action["kind"]
        ids = [f.customer_id for f in firings]
        if kind == "webhook":
            from strata.actions.webhooks import Webhooks

            items = [
                (EVENT_TYPES[f.change], _payload(a, seg, f, customers.get(f.customer_id, {})))
                for f in firings
            ]
            queued = Webhooks(self.app, ws).enqueue_many(
                action["destination"], items, customer_ids=ids
            )
            self.on_webhook()
            return {
                f.customer_id: f"webhook {msg.msg_id}"
                if msg
                else "the endpoint takes no such event"
                for f, msg in zip(firings, queued, strict=True)
            }
        if kind == "email":
            from strata.actions.email import Mailer

            queued = Mailer(self.app, ws).queue_many(
                action["destination"],
                action["template"],
                [customers.get(f.customer_id, {"customer_id": f.customer_id}) for f in firings],
                segment=seg.name,
                automation_id=a.id,
            )
            self.on_mail()
            return {
                f.customer_id: f"e-mail {msg.id} {msg.status}"
                for f, msg in zip(firings, queued, strict=True)
            }
        if kind == "export":
            from strata.actions.exports import Exports

            with self.stores.reading() as app:
                f = Exports(app, ws).export(seg.name, action["format"], customer_ids=ids)
            return f"export {f.id} ({f.rows} rows)"
        if kind in {"set_attribute", "tag"}:
            name = action["attribute"] if kind == "set_attribute" else f"tag_{action['tag']}"
            value = action["value"] if kind == "set_attribute" else True
            with self.stores.writing() as app:
                _set_attribute(app, ws, name, value, customers)
            return f"{name} = {json.dumps(value)}"
        from strata.segments.engine import Segments

        external = [customers[i]["external_id"] for i in ids if i in customers]
        with self.stores.writing() as app:
            Segments(app, ws).save_static(action["segment"], external, mode="append")
        return f"added to {action['segment']!r}"


def _payload(
    a: Automation, seg: Segment, firing: TriggerFiring, customer: dict[str, Any]
) -> dict[str, Any]:
    return {
        "customer": customer,
        "segment": {"id": seg.id, "name": seg.name},
        "change": {"kind": firing.change, "at": firing.at.isoformat() + "Z"},
        "automation": {"id": a.id, "name": a.name},
    }


def current_members(
    app: Strata, workspace_id: int, segment_id: int, among: Sequence[int] | None = None
) -> list[int]:
    m = app.warehouse.table(workspace_id, "memberships")
    current = m.filter(m.segment_id == segment_id, m.left_at.isnull())
    if among is not None:
        current = current.filter(current.customer_id.isin(app.warehouse.id_set(among)))
    ids = current.select("customer_id").to_pyarrow().column("customer_id").to_pylist()
    return sorted(int(i) for i in ids)


def external_ids(app: Strata, workspace_id: int, ids: Sequence[int]) -> dict[int, str]:
    """The external id of each of ``ids`` (warehouse customer ids) still in the warehouse,
    in one query: a page of firings names its customers the way the rest of the product
    does. Customers since erased are left out."""
    if not ids:
        return {}
    customers = app.warehouse.table(workspace_id, "customers")
    rows = (
        customers.filter(customers.customer_id.isin(app.warehouse.id_set(sorted(set(ids)))))
        .select("customer_id", "external_id")
        .to_pyarrow()
        .to_pylist()
    )
    return {int(r["customer_id"]): r["external_id"] for r in rows}


def _customers(app: Strata, workspace_id: int, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Each customer's attributes, JSON-ready (dates as ISO text), by customer id."""
    if not ids:
        return {}
    customers = app.warehouse.table(workspace_id, "customers")
    rows = (
        customers.filter(customers.customer_id.isin(app.warehouse.id_set(ids)))
        .to_pyarrow()
        .to_pylist()
    )
    return {int(r["customer_id"]): jsonable(r) for r in rows}


def _set_attribute(
    app: Strata, ws: Workspace, name: str, value: Any, customers: dict[int, dict[str, Any]]
) -> None:
    from strata.warehouse.base import Batch

    external = [c["external_id"] for c in customers.values()]
    if not external:
        return
    dtype = _attribute_type(app, ws, name, value)
    column = ibis.literal(value, type=dtype).type().to_pyarrow()
    table = pa.table(
        {
            "external_id": pa.array(external, pa.string()),
            name: pa.array([value] * len(external), column),
        }
    )
    schema = app.warehouse.customer_schema(ws.id)
    new = {} if name in schema else {name: dtype}
    app.warehouse.load(ws.id, Batch(customers=table), new_columns=new)
    app.members_changed(ws.id, list(customers))
    from strata.segments.engine import Segments

    # Segments whose rules read the attribute may move (and fire their own automations).
    Segments(app, ws).update_customers(list(customers), event_types=(), attributes=[name])
