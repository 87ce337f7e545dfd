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
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from strata.catalog import AuditEntry
from strata.catalog.models import utcnow


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
#: ``tests/test_audit.py`` checks that each writes exactly one entry.
ACTIONS: dict[str, str] = {}
