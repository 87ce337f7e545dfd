"""Segments kept in step with lists in Mailchimp, Klaviyo and HubSpot.

A *destination* holds the connection to one account of a tool (its API key, sealed at
rest); a *sync* links a segment to a list there. The first run pushes every member with
an e-mail address; later runs compare the segment's current members with what the
sync has pushed (its ``SyncMember`` rows) and send only who entered and who left.
A row is written only once the tool confirmed that person, so a run that fails half way
leaves the rest to the next run, which sends it again (every call is an upsert or a
membership change, harmless to repeat).

>>> syncs = Syncs(app, "default")  # doctest: +SKIP
>>> key = os.environ["MAILCHIMP_KEY"]  # doctest: +SKIP
>>> mc = syncs.add_destination("mc", "mailchimp", api_key=key)  # doctest: +SKIP
>>> sync = syncs.create(mc.id, "VIP", list_id="a1b2c3d4e5", tag="Strata VIP")  # doctest: +SKIP
>>> syncs.run(sync.id)  # doctest: +SKIP
{'added': 812, 'removed': 0, 'skipped_no_email': 3, 'rejected': 0, 'requests': 5, 'full': True, ...}
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol
from urllib.parse import urlsplit

import sqlalchemy as sa

from strata import audit, governance
from strata.actions.destinations import destination_of, destinations_of
from strata.actions.secrets import Sealer
from strata.actions.ssrf import check_url
from strata.actions.syncs import hubspot, klaviyo, mailchimp
from strata.actions.syncs.http import SyncFailed, ToolClient, chunks
from strata.catalog import Destination, Segment, Sync, SyncMember, Workspace
from strata.catalog.models import utcnow
from strata.context import Strata
from strata.errors import Conflict, InputError, NotFound
from strata.segments.engine import Segments

__all__ = ["SYNC_KINDS", "SyncFailed", "Syncs", "destination_dict", "sync_dict"]


class Tool(Protocol):
    """What a run asks of a tool (:mod:`.mailchimp`, :mod:`.klaviyo`, :mod:`.hubspot`)."""

    #: Addresses the tool refused in this run, and why.
    rejected: dict[str, str]
    #: Settings to keep in the sync's config for the next run (e.g. a Mailchimp tag's id).
    config_updates: dict[str, Any]

    def add(self, emails: list[str]) -> Iterator[dict[str, str]]:
        """Each batch the tool confirmed: email -> the tool's id for the person."""
        ...

    def remove(self, people: list[tuple[str, str | None]]) -> Iterator[list[str]]:
        """Each batch of (email, id) the tool confirmed gone from the list."""
        ...


@dataclass(frozen=True)
class _Kind:
    module: ModuleType
    tool: type
    #: Settings a destination of this kind may hold besides ``base_url``.
    settings: frozenset[str]
    takes_tag: bool = False


KINDS: dict[str, _Kind] = {
    "mailchimp": _Kind(mailchimp, mailchimp.Mailchimp, frozenset({"status_if_new"}), True),
    "klaviyo": _Kind(klaviyo, klaviyo.Klaviyo, frozenset({"revision"})),
    "hubspot": _Kind(hubspot, hubspot.HubSpot, frozenset()),
}
#: The destination kinds a segment can be synced to.
SYNC_KINDS = tuple(KINDS)

#: Ids of remote lists go into URL paths: letters, digits, ``-`` and ``_`` only.
_LIST_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
#: An API key goes into a header: printable ASCII without spaces.
_KEY = re.compile(r"^[!-~]{8,1000}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
#: An address inside a tool's message (kept out of what is stored: viewers may read it).
_ADDRESS = re.compile(r"[^@\s\"'<>(),;:\[\]]+@[^@\s\"'<>(),;:\[\]]+")
#: Rows per IN (...) list when writing sync members (well under every database's limit).
_ROWS = 500
#: Syncs running in this process, by catalog and id: a second run of one is refused.
_RUNNING: set[tuple[str, int]] = set()
_RUNNING_LOCK = threading.Lock()


class Syncs:
    """The marketing-tool destinations and syncs of one workspace (default: the configured one).

    ``timeout``, ``retries`` and ``sleep`` shape every request; ``poll_every`` and
    ``wait_at_most`` how long a run waits for a Klaviyo import job.
    """

    def __init__(
        self,
        app: Strata,
        workspace: str | Workspace | None = None,
        *,
        timeout: float = 30.0,
        retries: int = 5,
        sleep: Callable[[float], None] = time.sleep,
        poll_every: float = 2.0,
        wait_at_most: float = 600.0,
        reading: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    ):
        self.app = app
        #: Held while the segment's members are read, not while the tool is called (a
        #: server passes its warehouse turn, so loads need not wait for a slow tool).
        self.reading = reading
        self.ws = workspace if isinstance(workspace, Workspace) else app.workspace(workspace)
        self.timeout = timeout
        self.retries = retries
        self.sleep = sleep
        self.poll_every = poll_every
        self.wait_at_most = wait_at_most

    # -- destinations ---------------------------------------------------------------------
    def add_destination(
        self,
        name: str,
        kind: str,
        *,
        api_key: str,
        config: dict[str, Any] | None = None,
        created_by: int | None = None,
    ) -> Destination:
        """Connect an account of a marketing tool; the key is sealed before it is stored.

        ``config`` holds settings that may be shown: ``base_url`` (another address for
        the API, e.g. a proxy), ``status_if_new`` (Mailchimp), ``revision`` (Klaviyo).
        """
        name = (name or "").strip()
        if not 1 <= len(name) <= 200:
            raise InputError("a destination needs a name of 1 to 200 characters")
        if kind not in KINDS:
            raise InputError(f"kind must be one of {', '.join(SYNC_KINDS)}, not {kind!r}")
        api_key = (api_key or "").strip()
        if not _KEY.match(api_key):
            raise InputError(
                "the API key must be 8 to 1000 printable characters without spaces; "
                f"copy it again from {KINDS[kind].module.TITLE}"
            )
        stored = _check_settings(kind, api_key, dict(config or {}), self.app.settings.webhook_allow)
        # The last four characters of the secret (a Mailchimp key ends with its data center).
        secret = api_key.rsplit("-", 1)[0] if "data_center" in stored else api_key
        stored["key_hint"] = "…" + secret[-4:]
        with self.app.session() as s:
            taken = s.scalar(
                sa.select(Destination.id).where(
                    Destination.workspace_id == self.ws.id, Destination.name == name
                )
            )
            if taken is not None:
                raise Conflict(f"a destination named {name!r} exists; choose another name")
            dest = Destination(
                workspace_id=self.ws.id,
                name=name,
                kind=kind,
                config=stored,
                sealed=Sealer(self.app.settings).seal({"api_key": api_key}),
                created_by=created_by,
            )
            s.add(dest)
            s.flush()
            # The key is never logged; its hint (last four characters) is shown anyway.
            audit.record(
                s,
                self.ws.id,
                "destination.create",
                f"connected {kind} as {name!r} (key {stored['key_hint']})",
                target_type="destination",
                target_id=dest.id,
                details={"kind": kind},
            )
            s.commit()
            return dest

    def destinations(self) -> list[Destination]:
        """The workspace's marketing-tool destinations (webhooks and SMTP live elsewhere)."""
        return destinations_of(self.app, self.ws, SYNC_KINDS)

    def destination(self, ref: int | str) -> Destination:
        """A destination of this workspace by id or name."""
        return destination_of(
            self.app,
            self.ws,
            ref,
            SYNC_KINDS,
            "marketing-tool destination",
            "list them with `strata syncs destinations`",
        )

    def remove_destination(self, destination_id: int | str) -> None:
        """Forget a destination, its key and its syncs (the remote lists stay as they are)."""
        dest = self.destination(destination_id)
        with self.app.session() as s:
            sync_ids = list(s.scalars(sa.select(Sync.id).where(Sync.destination_id == dest.id)))
            s.execute(sa.delete(SyncMember).where(SyncMember.sync_id.in_(sync_ids)))
            s.execute(sa.delete(Sync).where(Sync.destination_id == dest.id))
            s.execute(sa.delete(Destination).where(Destination.id == dest.id))
            audit.record(
                s,
                self.ws.id,
                "destination.delete",
                f"removed {dest.kind} destination {dest.name!r} and its {len(sync_ids)} syncs",
                target_type="destination",
                target_id=dest.id,
                details={"kind": dest.kind, "syncs": sync_ids},
            )
            s.commit()

    # -- syncs ----------------------------------------------------------------------------
    def create(
        self, destination_id: int | str, segment_name: str, *, list_id: str, tag: str | None = None
    ) -> Sync:
        """Link a segment to a list: a Mailchimp audience (with a tag, default the segment's
        name), a Klaviyo list or a HubSpot MANUAL list. Nothing is sent until it runs."""
        dest = self.destination(destination_id)
        seg = Segments(self.app, self.ws).get(segment_name)
        list_id = (list_id or "").strip()
        if not _LIST_ID.match(list_id):
            raise InputError(
                "list_id must be the tool's id of the list (letters, digits, - and _), "
                f"not {list_id!r}"
            )
        config: dict[str, Any] = {"list_id": list_id}
        if KINDS[dest.kind].takes_tag:
            tag = (tag if tag is not None else seg.name).strip()
            if not 1 <= len(tag) <= 100:
                raise InputError("a Mailchimp tag has 1 to 100 characters")
            config["tag"] = tag
        elif tag is not None:
            raise InputError(f"only Mailchimp syncs take a tag; a {dest.kind} list is the segment")
        with self.app.session() as s:
            exists = s.scalar(
                sa.select(Sync.id).where(Sync.destination_id == dest.id, Sync.segment_id == seg.id)
            )
            if exists is not None:
                raise Conflict(
                    f"segment {seg.name!r} already syncs to {dest.name!r} (sync {exists}); "
                    "delete that sync first to point it at another list"
                )
            sync = Sync(
                workspace_id=self.ws.id, destination_id=dest.id, segment_id=seg.id, config=config
            )
            s.add(sync)
            s.flush()
            audit.record(
                s,
                self.ws.id,
                "sync.create",
                f"linked segment {seg.name!r} to {dest.name!r} list {list_id}",
                target_type="sync",
                target_id=sync.id,
                details={"destination_id": dest.id, "segment_id": seg.id, **config},
            )
            governance.track(s, self.ws.id, "sync", sync, new=True)
            s.commit()
            return sync

    def list(self) -> list[Sync]:
        with self.app.session() as s:
            return list(
                s.scalars(sa.select(Sync).where(Sync.workspace_id == self.ws.id).order_by(Sync.id))
            )

    def get(self, sync_id: int) -> Sync:
        with self.app.session() as s:
            sync = s.get(Sync, sync_id)
        if sync is None or sync.workspace_id != self.ws.id:
            raise NotFound(
                f"no sync {sync_id} in this workspace; list them with `strata syncs list`"
            )
        return sync

    def delete(self, sync_id: int) -> None:
        """Stop syncing (the remote list keeps its members; nothing is sent)."""
        sync = self.get(sync_id)
        with self.app.session() as s:
            s.execute(sa.delete(SyncMember).where(SyncMember.sync_id == sync.id))
            s.execute(sa.delete(Sync).where(Sync.id == sync.id))
            audit.record(
                s,
                self.ws.id,
                "sync.delete",
                f"deleted sync {sync.id}",
                target_type="sync",
                target_id=sync.id,
                details={"destination_id": sync.destination_id, "segment_id": sync.segment_id},
            )
            s.commit()

    def describe(self, sync: Sync) -> dict[str, Any]:
        """A sync as shown by the CLI and the API, with its destination's and segment's names."""
        with self.app.session() as s:
            dest = s.get(Destination, sync.destination_id)
            seg = s.get(Segment, sync.segment_id)
            synced = s.scalar(
                sa.select(sa.func.count())
                .select_from(SyncMember)
                .where(SyncMember.sync_id == sync.id)
            )
        return sync_dict(sync, dest, seg, synced or 0)

    # -- running --------------------------------------------------------------------------
    def run(self, sync_id: int, *, full: bool = False) -> dict[str, Any]:
        """Send who entered the segment and who left since the last run (everyone the
        first time, or with ``full``); the counts of what was done.

        Raises :class:`SyncFailed` with the tool's answer when it refuses; what it had
        confirmed until then is kept, the rest goes with the next run.
        """
        started = time.perf_counter()
        sync = self.get(sync_id)
        governance.check_approved("sync", sync)  # a draft sends nothing
        with self.app.session() as s:
            governance.check_approved("segment", s.get(Segment, sync.segment_id))
        with self._alone(sync.id):
            return self._run(sync, full, started)

    @contextlib.contextmanager
    def _alone(self, sync_id: int) -> Iterator[None]:
        """Refuse a second run of a sync while one runs (it would send the same changes)."""
        key = (self.app.settings.database_url, sync_id)
        with _RUNNING_LOCK:
            if key in _RUNNING:
                raise Conflict(f"sync {sync_id} is running; wait for it to finish")
            _RUNNING.add(key)
        try:
            yield
        finally:
            with _RUNNING_LOCK:
                _RUNNING.discard(key)

    def _run(self, sync: Sync, full: bool, started: float) -> dict[str, Any]:
        with self.app.session() as s:
            dest = s.get(Destination, sync.destination_id)
            seg = s.get(Segment, sync.segment_id)
        if dest.status != "active":
            raise InputError(
                f"destination {dest.name!r} is {dest.status}"
                + (f" ({dest.disabled_reason})" if dest.disabled_reason else "")
            )
        with self.reading():
            wanted, skipped = self._wanted(seg.id)
        rows = self._rows(sync.id)
        present = {email: remote for _, email, remote in rows if email}
        full = full or not rows
        to_add = sorted(wanted) if full else sorted(wanted.keys() - present.keys())
        to_remove = sorted(present.keys() - wanted.keys())
        result: dict[str, Any] = {
            "added": 0,
            "removed": 0,
            "skipped_no_email": skipped,
            "rejected": 0,
            "requests": 0,
            "full": full,
            "members": len(wanted),
        }
        with self._client(dest, sync) as client:
            tool = self._tool(dest, sync, client)
            try:
                for done in tool.remove([(e, present[e]) for e in to_remove]):
                    self._forget(sync.id, done)
                    result["removed"] += len(done)
                if not full:
                    self._reconcile(sync.id, wanted, present, rows)
                for confirmed in tool.add(to_add):
                    self._remember(
                        sync.id, [(c, e, r) for e, r in confirmed.items() for c in wanted[e]]
                    )
                    result["added"] += len(confirmed)
                self._drop_stale(sync.id, wanted)
            except SyncFailed as exc:
                self._finish(sync, "failed", self._done(result, tool, client, started), tool, exc)
                raise
            except (KeyError, TypeError, AttributeError) as exc:  # an answer of another shape
                failed = SyncFailed(
                    f"{client.tool} answered in a form Strata cannot read "
                    f"({type(exc).__name__}: {exc}); run the sync again later, and report it "
                    "if it persists"
                )
                done = self._done(result, tool, client, started)
                self._finish(sync, "failed", done, tool, failed)
                raise failed from exc
        result = self._done(result, tool, client, started)
        self._finish(sync, "ok", result, tool)
        return result

    def _client(self, dest: Destination, sync: Sync) -> ToolClient:
        kind = KINDS[dest.kind]
        api_key = Sealer(self.app.settings).unseal(dest.sealed).get("api_key", "")
        base_url, headers = kind.module.connection(api_key, dest.config or {})
        return ToolClient(
            kind.module.TITLE,
            base_url,
            headers,
            message=kind.module.message,
            hint=_hint(kind.module, dest.name, sync.config.get("list_id", "")),
            allow=self.app.settings.webhook_allow,
            timeout=self.timeout,
            retries=self.retries,
            sleep=self.sleep,
        )

    def _tool(self, dest: Destination, sync: Sync, client: ToolClient) -> Tool:
        kind = KINDS[dest.kind]
        if kind.tool is klaviyo.Klaviyo:
            return kind.tool(
                client,
                sync.config,
                dest.config or {},
                poll_every=self.poll_every,
                wait_at_most=self.wait_at_most,
                sleep=self.sleep,
            )
        return kind.tool(client, sync.config, dest.config or {})

    def _wanted(self, segment_id: int) -> tuple[dict[str, list[int]], int]:
        """The segment's current members by e-mail (lower-cased), and how many have none."""
        wh = self.app.warehouse
        m = wh.table(self.ws.id, "memberships")
        customers = wh.table(self.ws.id, "customers")
        current = m.filter(m.segment_id == segment_id, m.left_at.isnull())
        table = current.inner_join(customers, "customer_id").select("customer_id", "email")
        data = table.to_pyarrow()
        wanted: dict[str, list[int]] = {}
        skipped = 0
        for cid, raw in zip(
            data.column("customer_id").to_pylist(), data.column("email").to_pylist(), strict=True
        ):
            email = (raw or "").strip().lower()
            if not _EMAIL.match(email):
                skipped += 1
                continue
            wanted.setdefault(email, []).append(int(cid))
        return wanted, skipped

    def _rows(self, sync_id: int) -> list[tuple[int, str | None, str | None]]:
        with self.app.session() as s:
            return [
                tuple(r)
                for r in s.execute(
                    sa.select(SyncMember.customer_id, SyncMember.email, SyncMember.remote_id).where(
                        SyncMember.sync_id == sync_id
                    )
                )
            ]

    def _remember(self, sync_id: int, entries: list[tuple[int, str, str | None]]) -> None:
        """Record people the tool confirmed (one row per customer, replacing an older one)."""
        if not entries:
            return
        now = utcnow()
        with self.app.session() as s:
            for part in chunks([c for c, _, _ in entries], _ROWS):
                s.execute(
                    sa.delete(SyncMember).where(
                        SyncMember.sync_id == sync_id, SyncMember.customer_id.in_(part)
                    )
                )
            s.execute(
                sa.insert(SyncMember),
                [
                    {
                        "sync_id": sync_id,
                        "customer_id": c,
                        "email": e,
                        "remote_id": r,
                        "synced_at": now,
                    }
                    for c, e, r in entries
                ],
            )
            s.commit()

    def _forget(self, sync_id: int, emails: list[str]) -> None:
        with self.app.session() as s:
            for part in chunks(emails, _ROWS):
                s.execute(
                    sa.delete(SyncMember).where(
                        SyncMember.sync_id == sync_id, SyncMember.email.in_(part)
                    )
                )
            s.commit()

    def _reconcile(
        self,
        sync_id: int,
        wanted: dict[str, list[int]],
        present: dict[str, str | None],
        rows: Iterable[tuple[int, str | None, str | None]],
    ) -> None:
        """Rows for members whose address the list already holds (two customers sharing
        one address, a customer taking another's address): no request needed."""
        have = {c: (e, r) for c, e, r in rows}
        missing = [
            (c, e, present[e])
            for e in wanted.keys() & present.keys()
            for c in wanted[e]
            if have.get(c) != (e, present[e])
        ]
        self._remember(sync_id, missing)

    def _drop_stale(self, sync_id: int, wanted: dict[str, list[int]]) -> None:
        """After a complete run: rows of former members whose address is still on the
        list for someone else (that someone's row keeps it)."""
        members = {c for cs in wanted.values() for c in cs}
        stale = [c for c, e, _ in self._rows(sync_id) if c not in members and e in wanted]
        with self.app.session() as s:
            for part in chunks(stale, _ROWS):
                s.execute(
                    sa.delete(SyncMember).where(
                        SyncMember.sync_id == sync_id, SyncMember.customer_id.in_(part)
                    )
                )
            s.commit()

    @staticmethod
    def _done(
        result: dict[str, Any], tool: Tool, client: ToolClient, started: float
    ) -> dict[str, Any]:
        reasons = Counter(_scrub(reason) for reason in tool.rejected.values())
        return {
            **result,
            "rejected": len(tool.rejected),
            "rejections": dict(reasons.most_common(10)),
            "requests": client.requests,
            "seconds": round(time.perf_counter() - started, 3),
        }

    def _finish(
        self,
        sync: Sync,
        status: str,
        result: dict[str, Any],
        tool: Tool,
        error: Exception | None = None,
    ) -> None:
        with self.app.session() as s:
            row = s.get(Sync, sync.id)
            if row is None:  # deleted while it ran
                return
            config = {**(row.config or {}), **tool.config_updates}
            row.config = {k: v for k, v in config.items() if v is not None}
            row.status = status
            row.last_result = {**result, "error": _scrub(str(error))} if error else result
            if error is None:
                row.last_synced_at = utcnow()
            # Counts only: who was added or removed is personal data.
            counts = {k: result.get(k) for k in ("added", "removed", "rejected", "full")}
            audit.record(
                s,
                row.workspace_id,
                "sync.run",
                f"ran sync {row.id}: {status}, {result.get('added', 0):,} added, "
                f"{result.get('removed', 0):,} removed",
                target_type="sync",
                target_id=row.id,
                details={"status": status, **counts},
            )
            s.commit()


def _scrub(text: str) -> str:
    """A tool's message without the e-mail addresses it names (results are stored and shown
    to every role, some of which may not see personal data)."""
    return _ADDRESS.sub("<address>", text)


def _check_settings(
    kind: str, api_key: str, config: dict[str, Any], allow: Iterable[str]
) -> dict[str, Any]:
    """The destination's shown settings, checked; unknown ones are refused."""
    allowed = KINDS[kind].settings | {"base_url"}
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise InputError(
            f"unknown setting(s) {', '.join(unknown)} for {kind}; "
            f"it takes {', '.join(sorted(allowed))}"
        )
    stored = KINDS[kind].module.check_config(api_key, config)
    base_url = config.get("base_url")
    if base_url:
        stored["base_url"] = _check_base_url(base_url, allow)
    return stored


def _check_base_url(url: Any, allow: Iterable[str]) -> str:
    """An http(s) address that outgoing requests may reach (:mod:`strata.actions.ssrf`)."""
    try:
        parts = urlsplit(str(url).strip())
        host = parts.hostname
    except ValueError:  # e.g. an unclosed [ipv6
        host = None
    if not host or parts.scheme not in {"http", "https"} or parts.username:
        raise InputError(f"base_url must be an http(s) address like https://host/path, not {url!r}")
    return check_url(str(url).strip(), tuple(allow), purpose="syncs").rstrip("/")


def _hint(module: ModuleType, destination: str, list_id: str) -> Callable[[int], str]:
    """What to do about an error status, naming the destination and list concerned."""
    tool = module.TITLE

    def hint(status: int) -> str:
        if status == 401:
            return f"check the {module.KEY_NAME} of destination {destination!r}"
        if status == 403:
            return (
                f"the key of destination {destination!r} lacks a permission this needs; "
                f"give it read and write access to lists and contacts in {tool}"
            )
        if status == 404:
            return f"check the list id {list_id!r} of this sync, and that the key's account has it"
        if status == 429:
            return f"{tool} limits how fast it is called; run the sync again later"
        if status >= 500:
            return f"{tool} has a problem on its side; run the sync again later"
        return f"check this sync's list settings in {tool}, then run it again"

    return hint


def destination_dict(dest: Destination) -> dict[str, Any]:
    """A destination as shown: its settings and the key's last 4 characters, never the key."""
    config = dict(dest.config or {})
    hint = config.pop("key_hint", None)
    return {
        "id": dest.id,
        "name": dest.name,
        "kind": dest.kind,
        "config": config,
        "key_hint": hint,
        "status": dest.status,
        "disabled_reason": dest.disabled_reason,
        "created_at": dest.created_at,
    }


def sync_dict(
    sync: Sync, dest: Destination | None, seg: Segment | None, synced: int
) -> dict[str, Any]:
    config = dict(sync.config or {})
    return {
        "id": sync.id,
        "destination_id": sync.destination_id,
        "destination": dest.name if dest else None,
        "kind": dest.kind if dest else None,
        "segment_id": sync.segment_id,
        "segment": seg.name if seg else None,
        "list_id": config.get("list_id"),
        "tag": config.get("tag"),
        "status": sync.status,
        "review_status": sync.review_status,
        "synced_members": synced,
        "last_synced_at": sync.last_synced_at,
        "last_result": sync.last_result,
        "created_at": sync.created_at,
    }
