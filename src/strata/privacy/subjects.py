"""Who a data-rights request is about, and the suppression list that remembers the erased.

A person is named by e-mail or by external id (``customer_id`` in imported files,
``external_id`` in the warehouse). Both are normalised first (an e-mail is stripped and
lower-cased, an external id stripped), then kept only as a *keyed* hash: HMAC-SHA256
under a random salt of the workspace, stored in the catalog. A search of Strata's
stores for the plain SHA-256 of an erased address (what Google and Meta export files
hold) finds nothing, while Strata still recognises the person when they come back.

>>> Subject.of(email="  Ada@Example.COM ")
Subject(kind='email', value='ada@example.com')
>>> digest(b"salt", Subject("email", "ada@example.com"))[:12]
'27c974f86f92'
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from strata.catalog import Setting
from strata.catalog.models import Suppression
from strata.context import Strata
from strata.errors import InputError

#: The ``workspace_settings`` key holding the workspace's salt (hex).
SALT_SETTING = "privacy_salt"
#: Why a suppressed person's row or message is refused (import reports, ingest answers).
REFUSED = "erased on request; record consent with `strata privacy consent` first"
KINDS = ("email", "external_id")


@dataclass(frozen=True)
class Subject:
    """One identifier of a person, normalised."""

    kind: str
    value: str

    @classmethod
    def of(cls, *, email: str | None = None, external_id: str | None = None) -> Subject:
        """The subject named by exactly one of ``email`` and ``external_id``."""
        given = [(k, v) for k, v in (("email", email), ("external_id", external_id)) if v]
        if len(given) != 1:
            raise InputError(
                "name the person by exactly one of e-mail or external id "
                "(--email or --id; in the API, email or external_id)"
            )
        kind, raw = given[0]
        value = normalise(kind, raw)
        if not value or len(value) > 320:
            raise InputError(f"the {kind.replace('_', ' ')} is empty or longer than 320 characters")
        if kind == "email" and "@" not in value:
            raise InputError("the e-mail has no @: give the address the customer was stored with")
        return cls(kind, value)


def normalise(kind: str, value: Any) -> str:
    """An identifier as it is compared: e-mails stripped and lower-cased, ids stripped."""
    text = "" if value is None else str(value).strip()
    return text.lower() if kind == "email" else text


def salt(app: Strata, workspace_id: int) -> bytes:
    """The workspace's salt for keyed hashes, made on first use."""
    where = (Setting.workspace_id == workspace_id, Setting.key == SALT_SETTING)
    with app.session() as s:
        row = s.scalar(sa.select(Setting).where(*where))
        if row is None:
            s.add(Setting(workspace_id=workspace_id, key=SALT_SETTING, value={"hex": _new()}))
            try:
                s.commit()
            except sa.exc.IntegrityError:  # another process made it first
                s.rollback()
            row = s.scalar(sa.select(Setting).where(*where))
        return bytes.fromhex(row.value["hex"])


def _new() -> str:
    return secrets.token_hex(32)


def digest(key: bytes, subject: Subject) -> str:
    """The keyed hash of one identifier (its kind is part of what is hashed)."""
    message = f"{subject.kind}:{subject.value}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


class Suppressions:
    """The erased people of one workspace, read once: check rows and messages against it.

    >>> sup = Suppressions.load(app, ws.id)  # doctest: +SKIP
    >>> sup.has(Subject("email", "ada@example.com"))  # doctest: +SKIP
    True
    """

    def __init__(self, key: bytes, digests: set[tuple[str, str]]):
        self.key = key
        self.digests = digests

    @classmethod
    def load(cls, app: Strata, workspace_id: int) -> Suppressions:
        with app.session() as s:
            rows = s.execute(
                sa.select(Suppression.kind, Suppression.digest).where(
                    Suppression.workspace_id == workspace_id
                )
            ).all()
        if not rows:
            return cls(b"", set())  # the common case: no salt needed, nothing refused
        return cls(salt(app, workspace_id), {(k, d) for k, d in rows})

    @classmethod
    def for_messages(
        cls, app: Strata, workspace_id: int, messages: Sequence[dict[str, Any]]
    ) -> Suppressions:
        """The suppressions among the people ``messages`` name, and only those: live
        ingest asks on every request, and reading a long list each time would cost more
        than the request."""
        with app.session() as s:
            anyone = s.scalar(
                sa.select(Suppression.id).where(Suppression.workspace_id == workspace_id).limit(1)
            )
            if anyone is None:
                return cls(b"", set())  # the common case: nothing refused, no salt needed
            key = salt(app, workspace_id)
            wanted = {
                (subject.kind, digest(key, subject))
                for message in messages
                for subject in _subjects_of(message)
            }
            if not wanted:
                return cls(key, set())
            rows = s.execute(
                sa.select(Suppression.kind, Suppression.digest).where(
                    Suppression.workspace_id == workspace_id,
                    Suppression.digest.in_([d for _, d in wanted]),
                )
            ).all()
        return cls(key, {(k, d) for k, d in rows})

    def __bool__(self) -> bool:
        return bool(self.digests)

    def has(self, subject: Subject) -> bool:
        return bool(self.digests) and (subject.kind, digest(self.key, subject)) in self.digests

    def mask(self, kind: str, values: pa.Array | pa.ChunkedArray) -> list[bool]:
        """Whether each value (an external id or an e-mail column) is suppressed."""
        return [bool(v) and self.has(Subject(kind, normalise(kind, v))) for v in values.to_pylist()]

    def message_refused(self, message: dict[str, Any]) -> bool:
        """Whether a live-ingest message is about a suppressed person."""
        return bool(self.digests) and any(self.has(sub) for sub in _subjects_of(message))

    def admit(self, messages: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
        """The messages not about a suppressed person, and how many were left out."""
        if not self.digests:
            return list(messages), 0
        kept = [m for m in messages if not self.message_refused(m)]
        return kept, len(messages) - len(kept)

    def filter_batch(self, batch):
        """``batch`` (a :class:`~strata.warehouse.Batch`) without suppressed people's rows;
        the rows left out of customers and of events (order lines follow their events)."""
        if not self.digests:
            return batch, 0, 0
        from strata.warehouse import Batch

        customers = batch.customers
        refused_ext: set[str] = set()
        if customers.num_rows:
            drop = self.mask("external_id", customers.column("external_id"))
            if "email" in customers.column_names:
                by_mail = self.mask("email", customers.column("email"))
                drop = [a or b for a, b in zip(drop, by_mail, strict=True)]
            refused_ext = {
                e
                for e, d in zip(customers.column("external_id").to_pylist(), drop, strict=True)
                if d
            }
            customers = customers.filter(pa.array([not d for d in drop]))
        events, items, n_events = batch.events, batch.items, 0
        if events is not None and events.num_rows:
            ext = events.column("external_id")
            drop = [
                d or e in refused_ext
                for d, e in zip(self.mask("external_id", ext), ext.to_pylist(), strict=True)
            ]
            n_events = sum(drop)
            if n_events:
                gone_keys = pc.filter(events.column("event_key"), pa.array(drop))
                events = events.filter(pa.array([not d for d in drop]))
                if items is not None and items.num_rows:
                    items = items.filter(pc.invert(pc.is_in(items.column("event_key"), gone_keys)))
        truth = batch.truth
        if truth is not None and truth.num_rows:
            ext = truth.column("external_id")
            keep = [
                not (d or e in refused_ext)
                for d, e in zip(self.mask("external_id", ext), ext.to_pylist(), strict=True)
            ]
            truth = truth.filter(pa.array(keep))
        n_customers = batch.customers.num_rows - customers.num_rows
        return Batch(customers, events, items, truth), n_customers, n_events


def _subjects_of(message: dict[str, Any]) -> list[Subject]:
    """The identifiers a live-ingest message names: its user and anonymous ids, and the
    e-mail in its traits."""
    out = [
        Subject("external_id", normalise("external_id", v))
        for v in (message.get("userId"), message.get("anonymousId"))
        if v
    ]
    traits = message.get("traits")
    email = traits.get("email") if isinstance(traits, dict) else None
    if isinstance(email, str) and email:
        out.append(Subject("email", normalise("email", email)))
    return [sub for sub in out if sub.value]
