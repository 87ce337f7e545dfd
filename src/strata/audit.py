"""The audit log: who did what, and when, to a workspace's settings and data.

Every audited change writes exactly one :class:`~strata.catalog.AuditEntry`, in the
same transaction as the change where the change is one transaction, so a change that
fails leaves no entry and an entry always means the change happened. The catalog
refuses to update or delete entries (triggers made by migration 0006).

Who acted is the *current actor*, set once per request by the API (the signed-in user
or the API key), per command by the CLI (``cli:<os user>``), and carried into
background jobs; code that changes things never passes it around:

>>> with acting_as(Actor(user_id=None, label="cli:alice")):
...     current_actor().label
'cli:alice'
>>> current_actor().label
'strata'
"""

from __future__ import annotations

import contextlib
import contextvars
import csv
import datetime as dt
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from strata.catalog import AuditEntry
from strata.catalog.models import utcnow
from strata.csvsafe import neutralise
from strata.errors import InputError


@dataclass(frozen=True)
class Actor:
    """Who is acting: a user (``user_id``), an API key or the command line, in words."""

    user_id: int | None
    label: str
    request_id: str | None = None
    address: str | None = None


SYSTEM = Actor(user_id=None, label="strata")


class _Slot:
    """A request's actor, filled in by whichever dependency signs the caller in.

    FastAPI runs synchronous dependencies and routes in worker threads, each with a
    *copy* of the request's context: a value set in one is not seen by the next. The
    slot is set once per request (a copy shares the same slot object), then filled.
    """

    __slots__ = ("actor",)

    def __init__(self, actor: Actor | None = None):
        self.actor = actor


_current: contextvars.ContextVar[_Slot | None] = contextvars.ContextVar(
    "strata_actor", default=None
)


def current_actor() -> Actor:
    slot = _current.get()
    return slot.actor if slot is not None and slot.actor is not None else SYSTEM


@contextlib.contextmanager
def acting_as(actor: Actor | None) -> Iterator[None]:
    """Run the body as ``actor`` (a new slot: callers' actors are left as they were)."""
    token = _current.set(_Slot(actor))
    try:
        yield
    finally:
        _current.reset(token)


def open_slot() -> contextvars.Token:
    """Start a request: an empty slot that :func:`set_actor` fills (see :class:`_Slot`)."""
    return _current.set(_Slot())


def close_slot(token: contextvars.Token) -> None:
    _current.reset(token)


def set_actor(actor: Actor) -> None:
    """Say who is acting for the rest of this request (or of this context)."""
    slot = _current.get()
    if slot is None:
        _current.set(_Slot(actor))
    else:
        slot.actor = actor


def record(
    session: Session,
    workspace_id: int | None,
    action: str,
    summary: str,
    *,
    target_type: str | None = None,
    target_id: int | str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add one entry to ``session``: it is written when the change it describes commits.

    ``summary`` is one line in words and ``details`` what changed; neither may hold a
    customer's personal data (an erasure's entry names the request, not the person).
    """
    if action not in ACTIONS:
        raise KeyError(f"{action!r} is not an audited action (add it to strata.audit.ACTIONS)")
    actor = current_actor()
    entry = AuditEntry(
        workspace_id=workspace_id,
        at=utcnow(),
        actor_id=actor.user_id,
        actor=actor.label[:320],
        action=action,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id)[:64],
        summary=summary,
        details=details,
        request_id=actor.request_id,
        address=actor.address,
    )
    session.add(entry)
    return entry


#: Every audited action and what it means; ``docs/audit.md`` shows this table, and
#: ``tests/test_audit.py`` checks that each writes exactly one entry. Other modules add
#: their own names here (privacy, approvals, plans).
ACTIONS: dict[str, str] = {
    # segments
    "segment.create": "a segment was created (rule or static list)",
    "segment.update": "a segment's name, description, rule or list was changed",
    "segment.delete": "a segment was deleted with its membership history",
    "segment.settings": "RFM grid, tier set or ICP criteria were set or cleared",
    "segment.download": "a segment's members were downloaded as CSV (personal data)",
    # automations and campaigns
    "automation.create": "an automation was created",
    "automation.update": "an automation's segment, trigger, action or schedule was changed",
    "automation.pause": "an automation was paused",
    "automation.resume": "an automation was resumed",
    "automation.delete": "an automation was deleted",
    "campaign.create": "a campaign was created (as a draft)",
    "campaign.launch": "a campaign was launched",
    "campaign.end": "a campaign was ended",
    "campaign.delete": "a campaign was deleted",
    # destinations: webhook endpoints, SMTP servers, marketing-tool connections
    "destination.create": "a webhook endpoint, SMTP server or marketing tool was added",
    "destination.update": "a destination's address, name or settings were changed",
    "destination.rotate": "a webhook endpoint's signing secret was rotated",
    "destination.enable": "a destination was enabled",
    "destination.disable": "a destination was disabled by hand",
    "destination.delete": "a destination was removed",
    "sync.create": "a segment was linked to a marketing tool's list",
    "sync.delete": "a sync was deleted",
    "sync.run": "a sync sent a segment's changes to a marketing tool",
    # people and keys
    "member.add": "someone was given a role in the workspace",
    "member.role": "a member's role was changed",
    "member.remove": "a member was removed from the workspace",
    "key.create": "an API key was created (the log keeps its prefix only)",
    "key.revoke": "an API key was revoked",
    # the workspace
    "workspace.create": "a workspace was created",
    "workspace.update": "the workspace was renamed, or its industry or time zone changed",
    "workspace.delete": "the workspace and all its data were deleted",
    "workspace.plan": "the workspace was moved to another plan (strata.plans)",
    "workspace.approvals": "approval of what sends data out was turned on or off",
    # approvals (strata.governance)
    "approval.approve": "a change to a segment, automation or sync was approved",
    "approval.reject": "a change was rejected (the last approved version was restored)",
    # data in and out
    "import.run": "a file was imported into the workspace",
    "export.create": "a segment's members were written to an export file",
    "export.download": "an export file was downloaded",
    "export.delete": "an export file was deleted",
    "analysis.download": "an analysis table was downloaded as CSV",
    "audit.export": "the audit log was exported",
    # data rights and retention (strata.privacy); entries name the request, never the person
    "customer.erase": "a customer was erased on request from every store (the receipt)",
    "customer.access": "everything held on a customer was exported for an access request",
    "customer.consent": "an erased customer consented again: their suppression was removed",
    "privacy.retention": "the workspace's event retention was set or turned off",
    "privacy.retention_run": "events and messages older than the retention were deleted",
    "personal_fields.update": "columns were marked personal or un-marked (strata.personal)",
}


# -- reading -------------------------------------------------------------------------------
#: The columns of an exported log, in order.
FIELDS = (
    "id",
    "at",
    "workspace_id",
    "actor",
    "actor_id",
    "action",
    "target_type",
    "target_id",
    "summary",
    "details",
    "request_id",
    "address",
)
EXPORT_FORMATS = ("csv", "jsonl")
_ACTION = re.compile(r"^[a-z_]{1,32}(\.[a-z_]{0,31})?$")


@dataclass(frozen=True)
class Filters:
    """Which entries to read; every field given narrows the log.

    ``action`` is one action (``segment.create``) or every action of an object when it
    ends with a dot (``segment.``); ``actor`` an e-mail, ``cli:<user>`` or a user's id;
    ``since`` and ``until`` ISO dates or times (UTC unless they say), both included:

    >>> Filters.parse(action="segment.", since="2026-01-31").since
    datetime.datetime(2026, 1, 31, 0, 0)
    >>> Filters.parse(until="2026-01-31").until
    datetime.datetime(2026, 1, 31, 23, 59, 59, 999999)
    """

    action: str | None = None
    actor: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    @classmethod
    def parse(
        cls,
        *,
        action: str | None = None,
        actor: str | None = None,
        target_type: str | None = None,
        target_id: str | int | None = None,
        since: str | dt.date | None = None,
        until: str | dt.date | None = None,
    ) -> Filters:
        """Filters from text, checked: a bad value raises :class:`InputError`."""
        action = (action or "").strip() or None
        if action is not None and not _ACTION.match(action):
            raise InputError(
                f"action {action!r} is not an action name: give one like segment.create, "
                "or segment. for every segment action"
            )
        since_at = _instant(since, "since", end=False)
        until_at = _instant(until, "until", end=True)
        if since_at and until_at and since_at > until_at:
            raise InputError("since is after until: swap them")
        return cls(
            action=action,
            actor=(actor or "").strip() or None,
            target_type=(target_type or "").strip() or None,
            target_id=None if target_id is None else str(target_id).strip() or None,
            since=since_at,
            until=until_at,
        )

    def to_dict(self) -> dict[str, str]:
        """The filters that are set, as text (for an ``audit.export`` entry)."""
        out = {}
        for key, value in self.__dict__.items():
            if value is not None:
                out[key] = value.isoformat() if isinstance(value, dt.datetime) else str(value)
        return out


def _instant(value: str | dt.date | None, name: str, *, end: bool) -> dt.datetime | None:
    """A UTC instant without a zone, as the log stores; a bare date is its first (or,
    for ``until``, its last) microsecond."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, dt.datetime):
        at = value
    elif isinstance(value, dt.date):
        at = dt.datetime.combine(value, dt.time.max if end else dt.time.min)
    else:
        text = value.strip()
        try:
            if len(text) == 10:
                day = dt.date.fromisoformat(text)
                at = dt.datetime.combine(day, dt.time.max if end else dt.time.min)
            else:
                at = dt.datetime.fromisoformat(text)
        except ValueError:
            raise InputError(
                f"{name} {text!r} is not a date or time: write 2026-01-31 or 2026-01-31T14:00:00Z"
            ) from None
    if at.tzinfo is not None:
        at = at.astimezone(dt.UTC).replace(tzinfo=None)
    return at


def select(workspace_id: int, filters: Filters | None = None) -> sa.Select:
    """The query of a workspace's entries that pass ``filters``, newest first."""
    f = filters or Filters()
    q = sa.select(AuditEntry).where(AuditEntry.workspace_id == workspace_id)
    if f.action is not None:
        if f.action.endswith("."):
            q = q.where(AuditEntry.action.startswith(f.action, autoescape=True))
        else:
            q = q.where(AuditEntry.action == f.action)
    if f.actor is not None:
        if f.actor.isdigit():
            q = q.where(AuditEntry.actor_id == int(f.actor))
        else:
            q = q.where(sa.func.lower(AuditEntry.actor) == f.actor.lower())
    if f.target_type is not None:
        q = q.where(AuditEntry.target_type == f.target_type)
    if f.target_id is not None:
        q = q.where(AuditEntry.target_id == f.target_id)
    if f.since is not None:
        q = q.where(AuditEntry.at >= f.since)
    if f.until is not None:
        q = q.where(AuditEntry.at <= f.until)
    return q.order_by(AuditEntry.id.desc())


def entries(
    session: Session,
    workspace_id: int,
    filters: Filters | None = None,
    *,
    limit: int = 50,
    offset: int = 0,
) -> tuple[int, list[AuditEntry]]:
    """How many entries pass ``filters``, and one page of them, newest first."""
    q = select(workspace_id, filters)
    total = session.scalar(sa.select(sa.func.count()).select_from(q.order_by(None).subquery()))
    rows = list(session.scalars(q.limit(limit).offset(offset)))
    return total or 0, rows


def as_dict(entry: AuditEntry) -> dict[str, Any]:
    """An entry as plain values (its time in ISO 8601, UTC)."""
    out = {name: getattr(entry, name) for name in FIELDS}
    out["at"] = entry.at.isoformat() + "Z"
    return out


def check_format(fmt: str) -> str:
    if fmt not in EXPORT_FORMATS:
        raise InputError(f"unknown format {fmt!r}: use csv or jsonl")
    return fmt


def export_lines(
    sessions: Callable[[], Session],
    workspace_id: int,
    fmt: str,
    filters: Filters | None = None,
    *,
    batch: int = 1000,
) -> Iterator[str]:
    """The filtered log as CSV (a header first; cells a spreadsheet would run are
    neutralised) or JSON Lines, newest first, a few lines at a time.

    Reads ``batch`` entries per query, each after the last one seen, so a log of any
    size streams in constant memory; an entry written meanwhile is not included.

    >>> from strata.catalog.db import open_catalog
    >>> lines = export_lines(open_catalog("sqlite://"), 1, "csv")
    >>> next(lines).startswith("id,at,workspace_id,actor")
    True
    """
    check_format(fmt)
    query = select(workspace_id, filters)
    with sessions() as s:
        newest = s.scalar(sa.select(sa.func.max(AuditEntry.id)))
    if fmt == "csv":
        yield _csv_line(FIELDS)
    last = (newest or 0) + 1
    while True:
        with sessions() as s:
            rows = list(s.scalars(query.where(AuditEntry.id < last).limit(batch)))
        if not rows:
            return
        last = rows[-1].id
        if fmt == "csv":
            yield "".join(_csv_line(_cells(as_dict(e))) for e in rows)
        else:
            yield "".join(json.dumps(as_dict(e), ensure_ascii=False) + "\n" for e in rows)


def _cells(row: dict[str, Any]) -> list[Any]:
    details = row["details"]
    row = {**row, "details": None if details is None else json.dumps(details, ensure_ascii=False)}
    return [neutralise(row[name]) for name in FIELDS]


def _csv_line(cells) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(cells)
    return buf.getvalue()


def record_export(session: Session, workspace_id: int, fmt: str, filters: Filters) -> AuditEntry:
    """The ``audit.export`` entry of an export about to be read (committed by the caller):
    who took a copy of the log, and which part of it."""
    wanted = filters.to_dict()
    return record(
        session,
        workspace_id,
        "audit.export",
        f"exported the audit log as {fmt}" + (" (filtered)" if wanted else ""),
        details={"format": fmt, "filters": wanted},
    )


def actions_table() -> str:
    """The table of audited actions in ``docs/audit.md`` (Markdown)."""
    rows = [f"| `{action}` | {meaning} |" for action, meaning in sorted(ACTIONS.items())]
    return "\n".join(["| Action | Meaning |", "| --- | --- |", *rows]) + "\n"


if __name__ == "__main__":  # python -m strata.audit: the table for docs/audit.md
    print(actions_table(), end="")
