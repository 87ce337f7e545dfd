"""Webhooks: signed HTTP POSTs to a workspace's endpoints, retried for days, logged.

An endpoint is a :class:`~strata.catalog.Destination` of kind ``webhook``: its URL and
the event types it wants in ``config``, its signing secrets sealed in ``sealed``.
:meth:`Webhooks.enqueue` stores a :class:`~strata.catalog.WebhookMessage`;
:class:`WebhookSender` delivers it, in a background thread of the server (or one pass
of ``strata webhooks deliver``), per the Standard Webhooks specification
(:mod:`strata.actions.signing`):

- any 2xx answer delivers the message, and the sender never sends it again;
- anything else (an error status, a redirect, which is not followed, a timeout, a
  refused connection) is retried after :data:`RETRY_SCHEDULE`, over three days;
- ``410 Gone`` disables the endpoint; its messages wait, and go when it is enabled;
- every attempt is logged (:class:`~strata.catalog.WebhookAttempt`), and any message
  can be replayed: sent again now, with the same ``webhook-id``.

Two senders (two server processes, or a server and ``strata webhooks deliver``)
share the queue: a sender claims a message with a conditional UPDATE (``pending`` →
``delivering``, with ``locked_until``), so no message is in two senders' hands at
once; a crashed sender's claim expires and another takes the message over.

>>> hooks = Webhooks(app, ws)  # doctest: +SKIP
>>> dest, secret = hooks.create("CRM", "https://crm.example.com/hooks")  # doctest: +SKIP
>>> hooks.enqueue(dest.id, "segment.entered", {"customer": {"id": 7}})  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import random
import re
import threading
import time
import weakref
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from strata import audit
from strata.actions.destinations import destination_of, destinations_of
from strata.actions.secrets import Sealer
from strata.actions.signing import Keyring, new_msg_id, new_secret, webhook_headers
from strata.actions.ssrf import Refused, check_url, guarded_client
from strata.catalog import Destination, WebhookAttempt, WebhookMessage, Workspace
from strata.catalog.models import utcnow
from strata.context import Strata
from strata.errors import Conflict, InputError, NotFound, StrataError
from strata.models.store import jsonable

log = logging.getLogger("strata.webhooks")

KIND = "webhook"
#: Seconds before each attempt, counted from the previous one: at once, then 5 s, 5 min,
#: 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h (Svix's schedule), 75.6 hours in all.
RETRY_SCHEDULE: tuple[float, ...] = (
    0,
    5,
    5 * 60,
    30 * 60,
    2 * 3600,
    5 * 3600,
    10 * 3600,
    14 * 3600,
    20 * 3600,
    24 * 3600,
)
#: Each delay is lengthened by up to this fraction, at random, so retries after an
#: outage do not all arrive at the same moment.
JITTER = 0.1
#: A ``Retry-After`` longer than this is not waited for.
MAX_RETRY_AFTER = 24 * 3600.0
#: A claim lasts the request timeout plus this, for the time the result takes to write.
LOCK_MARGIN = 30.0
#: How much of a response body the attempt log keeps.
RESPONSE_KEPT = 1024
#: Largest body a message may have (the specification recommends well under this).
MAX_PAYLOAD = 256 * 1024
STATUSES = ("pending", "delivering", "delivered", "failed", "cancelled")
USER_AGENT = "Strata-Webhooks/1"
_EVENT_TYPE = re.compile(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*")
_KEEP: Any = object()

#: Senders running in this process, woken when a message is queued here.
_RUNNING: weakref.WeakSet[WebhookSender] = weakref.WeakSet()


def wake_senders() -> None:
    """Tell this process's running senders to look at the queue now."""
    for sender in list(_RUNNING):
        sender.wake()


# -- endpoints and messages ---------------------------------------------------------------------
class Webhooks:
    """A workspace's webhook endpoints, their messages and the delivery log."""

    def __init__(self, app: Strata, ws: Workspace):
        self.app = app
        self.ws = ws
        self.sealer = Sealer(app.settings)

    # endpoints
    def create(
        self,
        name: str,
        url: str,
        *,
        event_types: Sequence[str] | None = None,
        created_by: int | None = None,
    ) -> tuple[Destination, str]:
        """A new endpoint and its signing secret (shown this once; stored sealed).

        ``event_types`` None: every type.
        """
        name = _name(name)
        config = {
            "url": self._url(url),
            "event_types": _event_types(event_types),
            "previous_secret_expires_at": None,
        }
        ring = Keyring(new_secret())
        dest = Destination(
            workspace_id=self.ws.id,
            name=name,
            kind=KIND,
            config=config,
            sealed=self.sealer.seal(ring.to_dict()),
            created_by=created_by,
        )
        with self.app.session() as s:
            self._name_free(s, name)
            s.add(dest)
            try:
                s.flush()
                _audit(s, dest, "create", f"added webhook endpoint {name!r}")
                s.commit()
            except IntegrityError:  # the same name, a moment earlier, from another request
                raise _name_taken(name) from None
        return dest, ring.current

    def list(self) -> list[Destination]:
        return destinations_of(self.app, self.ws, [KIND])

    def get(self, destination_id: int) -> Destination:
        return destination_of(self.app, self.ws, int(destination_id), [KIND], "webhook endpoint")

    def update(
        self,
        destination_id: int,
        *,
        url: str | None = None,
        name: str | None = None,
        event_types: Sequence[str] | None = _KEEP,
    ) -> Destination:
        """Change the URL, the name or the event types (``None``: every type)."""
        self.get(destination_id)
        with self.app.session() as s:
            dest = s.get(Destination, destination_id)
            config = dict(dest.config)
            if url is not None:
                config["url"] = self._url(url)
            if event_types is not _KEEP:
                config["event_types"] = _event_types(event_types)
            if name is not None:
                name = _name(name)
                self._name_free(s, name, but=dest.id)
                dest.name = name
            dest.config = config
            try:
                _audit(s, dest, "update", f"changed webhook endpoint {dest.name!r}")
                s.commit()
            except IntegrityError:
                raise _name_taken(dest.name) from None
            return dest

    def rotate_secret(self, destination_id: int) -> str:
        """A new signing secret; the old one signs beside it for 24 hours more."""
        self.get(destination_id)
        with self.app.session() as s:
            dest = s.get(Destination, destination_id)
            ring = Keyring.from_dict(self.sealer.unseal(dest.sealed)).rotate(utcnow())
            dest.sealed = self.sealer.seal(ring.to_dict())
            expires = ring.previous_expires_at
            dest.config = {**dest.config, "previous_secret_expires_at": expires.isoformat()}
            # The secrets themselves are never logged.
            _audit(s, dest, "rotate", f"rotated the signing secret of {dest.name!r}")
            s.commit()
        return ring.current

    def enable(self, destination_id: int) -> Destination:
        """Send to the endpoint again; its waiting messages go at once."""
        self.get(destination_id)
        now = utcnow()
        with self.app.session() as s:
            dest = s.get(Destination, destination_id)
            dest.status, dest.disabled_reason = "active", None
            s.execute(
                sa.update(WebhookMessage)
                .where(
                    WebhookMessage.destination_id == destination_id,
                    WebhookMessage.status == "pending",
                )
                .values(next_attempt_at=now)
            )
            _audit(s, dest, "enable", f"enabled webhook endpoint {dest.name!r}")
            s.commit()
        wake_senders()
        return dest

    def disable(self, destination_id: int, reason: str | None = None) -> Destination:
        """Stop sending to the endpoint; its messages wait until it is enabled."""
        self.get(destination_id)
        with self.app.session() as s:
            dest = s.get(Destination, destination_id)
            dest.status = "disabled"
            dest.disabled_reason = (reason or "").strip()[:500] or "disabled by hand"
            _audit(s, dest, "disable", f"disabled webhook endpoint {dest.name!r}")
            s.commit()
            return dest

    def delete(self, destination_id: int) -> None:
        """Remove the endpoint with its messages and their log."""
        dest = self.get(destination_id)
        with self.app.session() as s:
            _audit(s, dest, "delete", f"removed webhook endpoint {dest.name!r}")
            s.execute(
                sa.delete(WebhookMessage).where(WebhookMessage.destination_id == destination_id)
            )
            s.execute(sa.delete(Destination).where(Destination.id == destination_id))
            s.commit()

    # messages
    def enqueue(
        self,
        destination_id: int,
        event_type: str,
        data: dict[str, Any],
        *,
        occurred_at: dt.datetime | None = None,
        customer_id: int | None = None,
    ) -> WebhookMessage | None:
        """Queue one webhook for the endpoint (None if it does not take ``event_type``).

        This does not send: a running sender in this process is woken, and others
        find the message within their poll interval.
        """
        return self.enqueue_many(
            destination_id,
            [(event_type, data)],
            occurred_at=occurred_at,
            customer_ids=[customer_id],
        )[0]

    def enqueue_many(
        self,
        destination_id: int,
        items: Sequence[tuple[str, dict[str, Any]]],
        *,
        occurred_at: dt.datetime | None = None,
        customer_ids: Sequence[int | None] | None = None,
    ) -> list[WebhookMessage | None]:
        """Queue one webhook per ``(event_type, data)`` in one transaction (an automation
        acting on thousands of entries at once); None where the endpoint does not take
        the type. ``customer_ids`` (one per item) says whom each message is about, so an
        erasure finds it (:mod:`strata.privacy`)."""
        dest = self.get(destination_id)
        wanted = dest.config.get("event_types")
        now = utcnow()
        whom = list(customer_ids) if customer_ids is not None else [None] * len(items)
        messages = [
            None
            if wanted is not None and event_type not in wanted
            else self._message(dest, event_type, data, occurred_at, now, customer_id)
            for (event_type, data), customer_id in zip(items, whom, strict=True)
        ]
        kept = [m for m in messages if m is not None]
        if kept:
            with self.app.session() as s:
                s.add_all(kept)
                s.commit()
            wake_senders()
        return messages

    def send_test(self, destination_id: int) -> WebhookMessage:
        """Queue a ``webhook.test`` message, whatever event types the endpoint takes."""
        dest = self.get(destination_id)
        data = {"message": "a test webhook from Strata", "endpoint": dest.name}
        msg = self._message(dest, "webhook.test", data, None, utcnow())
        with self.app.session() as s:
            s.add(msg)
            s.commit()
        wake_senders()
        return msg

    def _message(
        self,
        dest: Destination,
        event_type: str,
        data: dict[str, Any],
        occurred_at: dt.datetime | None,
        now: dt.datetime,
        customer_id: int | None = None,
    ) -> WebhookMessage:
        return WebhookMessage(
            workspace_id=self.ws.id,
            destination_id=dest.id,
            msg_id=new_msg_id(),
            customer_id=customer_id,
            event_type=event_type,
            payload=payload(_event_type(event_type), data, occurred_at),
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )

    def messages(
        self,
        destination_id: int | None = None,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[int, list[WebhookMessage]]:
        """The delivery log, newest first: the total, and this page of messages."""
        query = sa.select(WebhookMessage).where(WebhookMessage.workspace_id == self.ws.id)
        if destination_id is not None:
            self.get(destination_id)
            query = query.where(WebhookMessage.destination_id == destination_id)
        if status is not None:
            if status not in STATUSES:
                raise InputError(f"status {status!r}: use one of {', '.join(STATUSES)}")
            query = query.where(WebhookMessage.status == status)
        count = sa.select(sa.func.count()).select_from(query.subquery())
        with self.app.session() as s:
            total = s.scalar(count) or 0
            rows = s.scalars(
                query.order_by(WebhookMessage.id.desc()).limit(limit).offset(offset)
            ).all()
        return total, list(rows)

    def message(self, message_id: int | str) -> WebhookMessage:
        """One message, by its catalog id or its ``webhook-id`` (``msg_…``)."""
        column = WebhookMessage.msg_id if isinstance(message_id, str) else WebhookMessage.id
        with self.app.session() as s:
            msg = s.scalar(
                sa.select(WebhookMessage).where(
                    column == message_id, WebhookMessage.workspace_id == self.ws.id
                )
            )
        if msg is None:
            raise NotFound(f"no webhook message {message_id} in this workspace")
        return msg

    def attempts(self, message_id: int | str) -> list[WebhookAttempt]:
        """Every attempt at delivering the message, oldest first."""
        msg = self.message(message_id)
        with self.app.session() as s:
            return list(
                s.scalars(
                    sa.select(WebhookAttempt)
                    .where(WebhookAttempt.message_id == msg.id)
                    .order_by(WebhookAttempt.id)
                )
            )

    def replay(self, message_id: int | str) -> WebhookMessage:
        """Send the message again now, with the same ``webhook-id`` and a fresh schedule."""
        msg = self.message(message_id)
        now = utcnow()
        with self.app.session() as s:
            done = s.execute(
                sa.update(WebhookMessage)
                .where(
                    WebhookMessage.id == msg.id,
                    sa.or_(
                        WebhookMessage.status != "delivering",
                        WebhookMessage.locked_until < now,
                    ),
                )
                .values(
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    locked_until=None,
                    delivered_at=None,
                )
            ).rowcount
            s.commit()
            if not done:
                raise Conflict(
                    f"message {msg.msg_id} is being delivered right now; look at its log "
                    "in a moment and replay it then if it still needs to go"
                )
            msg = s.get(WebhookMessage, msg.id)
        wake_senders()
        return msg

    # helpers
    def _url(self, url: str) -> str:
        if not isinstance(url, str) or not url.strip() or len(url) > 2000:
            raise InputError("url: give an http:// or https:// URL of at most 2000 characters")
        return check_url(url, self.app.settings.webhook_allow)

    def _name_free(self, s, name: str, but: int | None = None) -> None:
        taken = s.scalar(
            sa.select(Destination.id).where(
                Destination.workspace_id == self.ws.id, Destination.name == name
            )
        )
        if taken is not None and taken != but:
            raise _name_taken(name)


def _audit(s, dest: Destination, verb: str, summary: str) -> None:
    """The ``destination.<verb>`` entry of a change to an endpoint (its URL may hold a
    token, so the log names the endpoint, not the address)."""
    audit.record(
        s,
        dest.workspace_id,
        f"destination.{verb}",
        summary,
        target_type="destination",
        target_id=dest.id,
        details={"kind": dest.kind},
    )


def describe(dest: Destination) -> dict[str, Any]:
    """What may be shown of an endpoint: everything but its secrets."""
    expires = dest.config.get("previous_secret_expires_at")
    expires_at = dt.datetime.fromisoformat(expires) if expires else None
    return {
        "id": dest.id,
        "name": dest.name,
        "url": dest.config.get("url"),
        "event_types": dest.config.get("event_types"),
        "status": dest.status,
        "disabled_reason": dest.disabled_reason,
        "previous_secret_expires_at": (
            expires_at if expires_at and expires_at > utcnow() else None
        ),
        "created_at": dest.created_at,
        "updated_at": dest.updated_at,
    }


def payload(event_type: str, data: dict[str, Any], occurred_at: dt.datetime | None = None) -> str:
    """The body of a webhook: ``{"type", "timestamp", "data"}`` as compact JSON.

    >>> payload("segment.entered", {"customer": {"id": 7}}, dt.datetime(2025, 1, 2, 3, 4, 5))
    '{"type":"segment.entered","timestamp":"2025-01-02T03:04:05Z","data":{"customer":{"id":7}}}'
    """
    if not isinstance(data, dict):
        raise InputError("a webhook's data is a JSON object")
    at = occurred_at or dt.datetime.now(dt.UTC)
    if at.tzinfo is not None:
        at = at.astimezone(dt.UTC).replace(tzinfo=None)
    stamp = at.isoformat() + "Z"
    body = json.dumps(
        {"type": event_type, "timestamp": stamp, "data": jsonable(data)},
        separators=(",", ":"),
        ensure_ascii=False,
        default=_json_default,
    )
    if len(body.encode()) > MAX_PAYLOAD:
        raise InputError(
            f"a webhook body may have at most {MAX_PAYLOAD // 1024} KB; send less data "
            "(ids the receiver can look up)"
        )
    return body


def _json_default(value: Any) -> Any:
    """What :func:`jsonable` leaves: Decimal as a number, anything else as text."""
    if hasattr(value, "__float__"):
        return float(value)
    return str(value)


def _name(name: str) -> str:
    name = (name or "").strip() if isinstance(name, str) else ""
    if not 1 <= len(name) <= 200:
        raise InputError("an endpoint's name has 1 to 200 characters")
    return name


def _name_taken(name: str) -> Conflict:
    return Conflict(f"a destination named {name!r} exists; choose another name")


def _event_type(value: str) -> str:
    if not isinstance(value, str) or len(value) > 100 or not _EVENT_TYPE.fullmatch(value):
        raise InputError(
            f"event type {str(value)[:100]!r}: use names like segment.entered "
            "(letters, digits and _, parts separated by dots, at most 100 characters)"
        )
    return value


def _event_types(values: Sequence[str] | None) -> list[str] | None:
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]
    checked = sorted({_event_type(v) for v in values})
    if not checked:
        raise InputError("event_types: give at least one type, or none at all for every type")
    return checked


# -- delivery ----------------------------------------------------------------------------------
@dataclass
class _Job:
    """A claimed message and what sending it needs."""

    id: int
    msg_id: str
    destination_id: int
    attempts: int
    lock: dt.datetime
    url: str = ""
    secrets: list[str] = field(default_factory=list)
    body: bytes = b""
    #: Why it cannot be sent at all (the secrets cannot be unsealed…).
    problem: str | None = None


@dataclass
class _Outcome:
    at: dt.datetime
    status_code: int | None = None
    error: str | None = None
    duration_ms: float = 0.0
    response: str | None = None
    retry_after: float | None = None

    #: Where a redirect pointed.
    location: str | None = None

    @property
    def delivered(self) -> bool:
        return self.error is None and self.status_code is not None and self.status_code < 300

    def judge(self) -> None:
        """Say why an answer that came is a failure (any status but 2xx)."""
        code = self.status_code
        if self.error is not None or code is None or 200 <= code < 300:
            return
        if 300 <= code < 400:
            to = f" to {self.location[:300]}" if self.location else ""
            self.error = (
                f"redirect ({code}){to}: redirects are not followed; "
                "change the endpoint's URL to where it points"
            )
        elif code == 410:
            self.error = "410 Gone: the endpoint asked for no more webhooks; disabled"
        else:
            self.error = f"HTTP {code}"

    @property
    def gone(self) -> bool:
        return self.status_code == 410


class _Flight:
    """The deliveries in progress, by endpoint."""

    def __init__(self) -> None:
        self.tasks: dict[asyncio.Task, int] = {}

    def busy(self) -> dict[int, int]:
        for task in [t for t in self.tasks if t.done()]:
            del self.tasks[task]
        return dict(Counter(self.tasks.values()))

    def add(self, task: asyncio.Task, destination_id: int) -> None:
        self.tasks[task] = destination_id

    async def drain(self, grace: float) -> None:
        """Let deliveries finish for ``grace`` seconds, then interrupt the rest."""
        if not self.tasks:
            return
        _, pending = await asyncio.wait(list(self.tasks), timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self.tasks.clear()


class _Recorder:
    """Writes the results of deliveries in batches: the attempts that finished while the
    last write ran go in one transaction (one commit per message would bound a sender
    at a few hundred messages a second, and they would queue for the catalog's lock)."""

    def __init__(self, write) -> None:
        self.write = write
        self.pending: list[tuple[_Job, _Outcome, asyncio.Future]] = []
        self.running: asyncio.Task | None = None

    async def record(self, job: _Job, outcome: _Outcome) -> None:
        done = asyncio.get_running_loop().create_future()
        self.pending.append((job, outcome, done))
        if self.running is None or self.running.done():
            self.running = asyncio.create_task(self._drain())
        await done

    async def _drain(self) -> None:
        while self.pending:
            batch, self.pending = self.pending, []
            try:
                await asyncio.to_thread(self.write, [(job, outcome) for job, outcome, _ in batch])
            except Exception as exc:
                for *_, done in batch:
                    if not done.done():
                        done.set_exception(exc)
            else:
                for *_, done in batch:
                    if not done.done():
                        done.set_result(None)

    async def flush(self) -> None:
        """Wait until every result handed in is written (when stopping)."""
        while self.running is not None and not self.running.done():
            await asyncio.shield(self.running)


class WebhookSender:
    """Delivers due webhook messages: a background thread (:meth:`start`) or one pass.

    All endpoints are served at once from one event loop, each with at most
    ``per_endpoint`` requests in flight, so a slow endpoint holds up only itself.
    ``schedule`` (seconds before each attempt) and ``timeout`` (seconds for a whole
    request) are injectable for tests.

    >>> sender = WebhookSender(app)  # doctest: +SKIP
    >>> sender.start(); sender.wake(); sender.stop()  # doctest: +SKIP
    >>> WebhookSender(app).deliver_due()  # doctest: +SKIP
    3
    """

    def __init__(
        self,
        app: Strata,
        *,
        schedule: Sequence[float] = RETRY_SCHEDULE,
        timeout: float = 15.0,
        per_endpoint: int = 16,
        poll: float = 1.0,
    ):
        if not schedule or any(s < 0 for s in schedule):
            raise InputError("a retry schedule is one or more delays of 0 seconds or more")
        if timeout <= 0 or per_endpoint < 1 or poll <= 0:
            raise InputError("timeout and poll must be positive, per_endpoint at least 1")
        self.app = app
        self.schedule = tuple(float(s) for s in schedule)
        self.timeout = float(timeout)
        self.per_endpoint = per_endpoint
        self.poll = poll
        self.sealer = Sealer(app.settings)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._stopping = False
        self._grace = 5.0

    # -- control ------------------------------------------------------------------------------
    def start(self) -> None:
        """Deliver in a background thread until :meth:`stop`."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping = False
        self._ready.clear()
        self._thread = threading.Thread(target=self._run, name="strata-webhooks", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        _RUNNING.add(self)

    def wake(self) -> None:
        """Look at the queue now (a message was queued, an endpoint enabled)."""
        loop, event = self._loop, self._event
        if loop is None or event is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop has just closed
            loop.call_soon_threadsafe(event.set)

    def stop(self, grace: float | None = None) -> None:
        """Stop: deliveries in flight get ``grace`` seconds (default: up to 5) to finish."""
        _RUNNING.discard(self)
        thread = self._thread
        if thread is None:
            return
        self._grace = min(self.timeout, 5.0) if grace is None else grace
        self._stopping = True
        self.wake()
        thread.join()
        self._thread = None

    def deliver_due(self) -> int:
        """One pass: try every message due now once, wait for the answers; attempts made."""
        return asyncio.run(self._one_pass())

    # -- the loops ----------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception:  # never let the thread die with a traceback nobody reads
            log.exception("the webhook sender stopped on an error")
        finally:
            self._loop = self._event = None
            self._ready.set()

    async def _main(self) -> None:
        self._event = event = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._ready.set()
        flight = _Flight()
        recorder = _Recorder(self._record_many)
        async with guarded_client(self.app.settings.webhook_allow, self.timeout) as client:
            try:
                while not self._stopping:
                    event.clear()
                    wait = self.poll
                    try:
                        jobs, wait = await asyncio.to_thread(self._claim, flight.busy(), None)
                        for job in jobs:
                            task = asyncio.create_task(self._deliver(client, job, recorder))
                            task.add_done_callback(lambda _t: event.set())
                            flight.add(task, job.destination_id)
                    except Exception:  # the catalog is away for a moment: try again later
                        log.exception("webhook sender: cannot read the queue")
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(event.wait(), timeout=wait)
            finally:
                await flight.drain(self._grace)
                await recorder.flush()

    async def _one_pass(self) -> int:
        cutoff = utcnow()
        flight = _Flight()
        recorder = _Recorder(self._record_many)
        count = 0
        async with guarded_client(self.app.settings.webhook_allow, self.timeout) as client:
            while True:
                jobs, _ = await asyncio.to_thread(self._claim, flight.busy(), cutoff)
                for job in jobs:
                    task = asyncio.create_task(self._deliver(client, job, recorder))
                    flight.add(task, job.destination_id)
                count += len(jobs)
                if not flight.busy():
                    return count
                await asyncio.wait(list(flight.tasks), return_when=asyncio.FIRST_COMPLETED)

    # -- one delivery -------------------------------------------------------------------------
    async def _deliver(self, client: httpx.AsyncClient, job: _Job, recorder: _Recorder) -> None:
        outcome = _Outcome(utcnow())
        try:
            await self._send(client, job, outcome)
        except asyncio.CancelledError:
            # Stopping mid-request. An answer that came counts; without one, the receiver
            # may or may not have the message, and it goes again.
            interrupted = outcome.status_code is None and outcome.error is None
            if interrupted:
                outcome.error = "interrupted: the sender stopped before an answer"
            outcome.judge()
            self._record(job, outcome, interrupted=interrupted)
            raise
        try:
            # Shielded: a sender stopping now still writes what the endpoint answered.
            await asyncio.shield(recorder.record(job, outcome))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("webhook sender: cannot record an attempt of %s", job.msg_id)

    async def _send(self, client: httpx.AsyncClient, job: _Job, outcome: _Outcome) -> None:
        """One POST; ``outcome`` says what came of it (filled in as it goes)."""
        if job.problem:
            outcome.error = job.problem
            return
        headers = webhook_headers(job.secrets, job.msg_id, int(time.time()), job.body)
        headers["user-agent"] = USER_AGENT
        started = time.perf_counter()
        try:
            async with (
                asyncio.timeout(self.timeout),
                client.stream("POST", job.url, content=job.body, headers=headers) as r,
            ):
                outcome.status_code = r.status_code
                outcome.location = r.headers.get("location")
                outcome.retry_after = _retry_after(r.headers.get("retry-after"))
                outcome.response = await _first_kb(r)
        except (TimeoutError, httpx.TimeoutException):
            if outcome.status_code is None:  # an answer whose body is slow still counts
                outcome.error = f"timed out after {self.timeout:g} s"
        except Refused as exc:
            outcome.error = str(exc)
        except httpx.ConnectError as exc:
            outcome.error = f"cannot connect: {exc or 'connection failed'}"
        except Exception as exc:  # a reset, a protocol error… : a failed attempt, not a crash
            if outcome.status_code is None:
                outcome.error = _failure(exc)
        finally:
            outcome.duration_ms = round((time.perf_counter() - started) * 1000, 1)
        outcome.judge()

    # -- the catalog --------------------------------------------------------------------------
    def _due(self, now: dt.datetime, cutoff: dt.datetime):
        """Messages a sender may claim: pending and due, or held by a claim that expired,
        of an active endpoint."""
        active = sa.select(Destination.id).where(
            Destination.status == "active", Destination.kind == KIND
        )
        return sa.and_(
            WebhookMessage.destination_id.in_(active),
            sa.or_(
                sa.and_(
                    WebhookMessage.status == "pending", WebhookMessage.next_attempt_at <= cutoff
                ),
                sa.and_(WebhookMessage.status == "delivering", WebhookMessage.locked_until < now),
            ),
        )

    def _claim(self, busy: dict[int, int], cutoff: dt.datetime | None) -> tuple[list[_Job], float]:
        """Claim due messages for endpoints with free slots; the jobs, and how long until
        the next message falls due (for the background loop's sleep)."""
        now = utcnow()
        due = self._due(now, cutoff or now)
        busy = Counter(busy)
        with self.app.session() as s:
            wanted: list[int] = []
            endpoints = s.scalars(sa.select(WebhookMessage.destination_id).where(due).distinct())
            for destination_id in list(endpoints):
                free = self.per_endpoint - busy[destination_id]
                if free > 0:
                    wanted += s.scalars(
                        sa.select(WebhookMessage.id)
                        .where(WebhookMessage.destination_id == destination_id, due)
                        .order_by(WebhookMessage.next_attempt_at, WebhookMessage.id)
                        .limit(free)
                    ).all()
            jobs = self._claim_ids(s, wanted, due) if wanted else []
            busy.update(job.destination_id for job in jobs)
            wait = self._until_next(s, busy)
        return jobs, wait

    def _claim_ids(self, s, wanted: list[int], due) -> list[_Job]:
        # The conditional UPDATE is the claim: of two senders, one changes a row and the
        # other finds it no longer due (SQLite serializes writers; PostgreSQL re-checks the
        # condition on the row the first one committed). RETURNING says which rows are ours.
        lock = utcnow() + dt.timedelta(seconds=self.timeout + LOCK_MARGIN)
        claimed = (
            s.execute(
                sa.update(WebhookMessage)
                .where(WebhookMessage.id.in_(wanted), due)
                .values(status="delivering", locked_until=lock)
                .returning(WebhookMessage.id)
                .execution_options(synchronize_session=False)
            )
            .scalars()
            .all()
        )
        s.commit()
        if not claimed:
            return []
        messages = s.scalars(
            sa.select(WebhookMessage)
            .where(WebhookMessage.id.in_(claimed))
            .order_by(WebhookMessage.next_attempt_at, WebhookMessage.id)
            .execution_options(populate_existing=True)
        ).all()
        endpoints = {
            d.id: d
            for d in s.scalars(
                sa.select(Destination).where(
                    Destination.id.in_({m.destination_id for m in messages})
                )
            )
        }
        return [self._job(m, endpoints[m.destination_id], lock) for m in messages]

    def _job(self, msg: WebhookMessage, dest: Destination, lock: dt.datetime) -> _Job:
        job = _Job(msg.id, msg.msg_id, msg.destination_id, msg.attempts, lock)
        job.url = dest.config.get("url", "")
        job.body = msg.payload.encode()
        try:
            job.secrets = Keyring.from_dict(self.sealer.unseal(dest.sealed)).valid(utcnow())
        except (StrataError, KeyError, ValueError) as exc:
            job.problem = f"cannot sign: {exc}"
        return job

    def _until_next(self, s, busy: Counter) -> float:
        full = [d for d, n in busy.items() if n >= self.per_endpoint]
        active = sa.select(Destination.id).where(
            Destination.status == "active", Destination.kind == KIND
        )
        pending = sa.select(sa.func.min(WebhookMessage.next_attempt_at)).where(
            WebhookMessage.status == "pending",
            WebhookMessage.destination_id.in_(active),
            WebhookMessage.destination_id.not_in(full),
        )
        locked = sa.select(sa.func.min(WebhookMessage.locked_until)).where(
            WebhookMessage.status == "delivering"
        )
        times = [t for t in (s.scalar(pending), s.scalar(locked)) if t is not None]
        if not times:
            return self.poll
        seconds = (min(times) - utcnow()).total_seconds()
        return min(self.poll, max(seconds, 0.005))

    def _apply(self, s, job: _Job, outcome: _Outcome, interrupted: bool = False) -> bool:
        """In session ``s``: log the attempt and move the message on (delivered, retried
        later, or failed); whether this sender's claim still held."""
        attempts = job.attempts + 1
        now = utcnow()
        values: dict[str, Any] = {
            "attempts": attempts,
            "locked_until": None,
            "last_status_code": outcome.status_code,
            "last_error": outcome.error,
        }
        if outcome.delivered:
            values |= {"status": "delivered", "delivered_at": now, "next_attempt_at": None}
        elif outcome.gone or interrupted:
            values |= {"status": "pending", "next_attempt_at": now}
        elif attempts >= len(self.schedule):
            values |= {"status": "failed", "next_attempt_at": None}
        else:
            delay = self._delay(attempts, outcome.retry_after)
            values |= {"status": "pending", "next_attempt_at": now + dt.timedelta(seconds=delay)}
        s.add(
            WebhookAttempt(
                message_id=job.id,
                at=outcome.at,
                status_code=outcome.status_code,
                error=outcome.error,
                duration_ms=outcome.duration_ms,
                response=outcome.response,
            )
        )
        moved = s.execute(
            sa.update(WebhookMessage)
            .where(
                WebhookMessage.id == job.id,
                WebhookMessage.status == "delivering",
                WebhookMessage.locked_until == job.lock,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        ).rowcount
        if outcome.gone:
            s.execute(
                sa.update(Destination)
                .where(Destination.id == job.destination_id, Destination.status == "active")
                .values(
                    status="disabled",
                    disabled_reason=(
                        f"the endpoint answered 410 Gone on {now:%Y-%m-%d %H:%M} UTC; "
                        "enable it to send its waiting messages"
                    ),
                )
            )
        return bool(moved)

    def _record(self, job: _Job, outcome: _Outcome, *, interrupted: bool = False) -> None:
        """Write one attempt and what it did to its message (one transaction)."""
        with self.app.session() as s:
            try:
                moved = self._apply(s, job, outcome, interrupted)
                s.commit()
            except IntegrityError:  # the endpoint was deleted meanwhile, with its messages
                s.rollback()
                return
        if not moved:
            log.warning("webhook %s: another sender took it over (claim expired)", job.msg_id)

    def _record_many(self, results: list[tuple[_Job, _Outcome]]) -> None:
        """Write many attempts in one transaction (one by one if an endpoint went away)."""
        with self.app.session() as s:
            try:
                moved = [self._apply(s, job, outcome) for job, outcome in results]
                s.commit()
            except IntegrityError:
                s.rollback()
                moved = None
        if moved is None:
            for job, outcome in results:
                self._record(job, outcome)
            return
        for (job, _), held in zip(results, moved, strict=True):
            if not held:
                log.warning("webhook %s: another sender took it over (claim expired)", job.msg_id)

    def _delay(self, attempts: int, retry_after: float | None) -> float:
        delay = self.schedule[attempts]
        if retry_after:
            delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
        return delay * (1 + random.uniform(0, JITTER))


def _failure(exc: Exception) -> str:
    """What went wrong with a request that got no answer, in a few words."""
    words = {
        httpx.ReadError: "the connection was closed before an answer",
        httpx.WriteError: "the connection was closed while sending",
        httpx.RemoteProtocolError: "the answer was not valid HTTP",
    }
    for kind, text in words.items():
        if isinstance(exc, kind):
            return f"{text}: {exc}" if str(exc) else text
    return f"{type(exc).__name__}: {exc}"[:500]


async def _first_kb(response: httpx.Response) -> str:
    kept = bytearray()
    async for chunk in response.aiter_bytes():
        kept += chunk
        if len(kept) >= RESPONSE_KEPT:
            break
    return bytes(kept[:RESPONSE_KEPT]).decode("utf-8", "replace")


def _retry_after(value: str | None) -> float | None:
    """Seconds of a ``Retry-After`` header (the delta form; a date is ignored)."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds > 0 else None
