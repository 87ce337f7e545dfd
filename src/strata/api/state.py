"""What a running server holds: the stores, the job runner, the live loader, caches.

Each request thread gets its own warehouse connection (:meth:`Service.strata`), so
reads go on while a load runs; writers take turns through :attr:`Service.write_lock`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator

from strata import plans
from strata.accounts import Accounts, KeyPrincipal, digest
from strata.actions.workers import ActionWorkers
from strata.catalog import Workspace
from strata.catalog.models import utcnow
from strata.config import Settings
from strata.context import Strata
from strata.errors import Unauthorized
from strata.ingest.live import LiveIngest
from strata.jobs import JobRunner
from strata.ratelimit import RateLimiter
from strata.uploads import Uploads

log = logging.getLogger("strata.api")


class Service:
    def __init__(self, settings: Settings | None = None):
        self.app = Strata(settings)
        self.settings = self.app.settings
        self.accounts = Accounts(self.app)
        self.jobs = JobRunner(self.app)
        #: Held by anything that writes to the warehouse: loads, refreshes, model fits.
        self.write_lock = threading.RLock()
        self.ingest = LiveIngest(self.app, write_lock=self.write_lock)
        #: Webhook and e-mail senders, the automation runner.
        self.actions = ActionWorkers(self.app, stores=self)
        #: Requests per second per API key (in process, or shared through Redis).
        self.rate_limiter = RateLimiter.from_settings(self.settings)
        self._local = threading.local()
        self._siblings: list[Strata] = []
        self._hooks_started: list = []
        self._hooks_stopped: list = []
        #: key hash -> (principal or None, when looked up); see :meth:`api_key`.
        self._keys: dict[str, tuple[KeyPrincipal | None, float]] = {}
        self._keys_used: dict[int, object] = {}
        self._keys_flushed = time.monotonic()
        #: API calls per workspace, counted in memory and written every few seconds.
        self.meter = plans.Meter()
        #: workspace id -> (its plan, when looked up); see :meth:`require_feature`.
        self._plans: dict[int, tuple[Workspace, float]] = {}

    #: How long a looked-up key is trusted without asking the catalog again (seconds).
    #: Revoking through this server takes effect at once; through another, within this.
    KEY_TTL = 30.0

    def api_key(self, secret: str, kind: str) -> KeyPrincipal:
        """The workspace key ``secret`` of ``kind`` (write or read), or :class:`Unauthorized`.

        Keys are looked up once per :attr:`KEY_TTL` and their last use written at most
        that often, so the ingest and personalization paths do no catalog work per call.
        """
        key_hash = digest(secret)
        now = time.monotonic()
        hit = self._keys.get(key_hash)
        if hit is None or now - hit[1] > self.KEY_TTL:
            row = self.accounts.key_for(secret)
            principal = None if row is None else KeyPrincipal(row.id, row.workspace_id, row.kind)
            hit = (principal, now)
            self._keys[key_hash] = hit
        principal = hit[0]
        if principal is None or principal.kind != kind:
            raise Unauthorized(
                f"send a valid {kind} key of the workspace"
                + (" (this is a " + principal.kind + " key)" if principal else "")
            )
        self._keys_used[principal.key_id] = utcnow()
        if now - self._keys_flushed > self.KEY_TTL:
            self.flush_key_use()
        self.require_feature(principal.workspace_id, "api_access")
        self.count_call(principal.workspace_id)
        return principal

    def require_feature(self, workspace_id: int, feature: str) -> None:
        """:func:`strata.plans.require_feature`, with the plan looked up once per
        :attr:`KEY_TTL` (the ingest path does no catalog work per call)."""
        now = time.monotonic()
        hit = self._plans.get(workspace_id)
        if hit is None or now - hit[1] > self.KEY_TTL:
            with self.app.session() as s:
                ws = s.get(Workspace, workspace_id)
            if ws is None:
                return  # gone: the caller's own lookup answers
            hit = (ws, now)
            self._plans[workspace_id] = hit
        plans.require_feature(hit[0], feature)

    def forget_plan(self, workspace_id: int) -> None:
        """The plan changed: look it up again on the next call."""
        self._plans.pop(workspace_id, None)

    def count_call(self, workspace_id: int) -> None:
        """Count one API call of a workspace; written every few seconds, not per call."""
        self.meter.add(workspace_id, "api_calls")
        if self.meter.due():
            try:
                self.meter.flush(self.app)
            except Exception:  # counts are kept for the next flush; the request goes on
                log.warning("could not write API call counts", exc_info=True)

    def known_key(self, secret: str) -> bool:
        """Whether :meth:`api_key` answers ``secret`` from memory (no catalog query)."""
        hit = self._keys.get(digest(secret))
        return hit is not None and time.monotonic() - hit[1] <= self.KEY_TTL

    def flush_key_use(self) -> None:
        used, self._keys_used = self._keys_used, {}
        self._keys_flushed = time.monotonic()
        self.accounts.touch_keys(used)

    def forget_key(self, key_hash: str) -> None:
        self._keys.pop(key_hash, None)

    def strata(self) -> Strata:
        """This thread's :class:`Strata`: the shared catalog, a warehouse connection of its own."""
        app = getattr(self._local, "app", None)
        if app is None:
            wh = self.app.warehouse
            app = Strata(self.settings)
            app.__dict__["sessions"] = self.app.sessions
            app.__dict__["profile_cache"] = self.app.profile_cache
            app.__dict__["triggers"] = self.app.triggers
            app.__dict__["warehouse"] = wh.sibling() if wh.concurrent else wh
            self._local.app = app
            self._siblings.append(app)
        return app

    @contextlib.contextmanager
    def writing(self) -> Iterator[Strata]:
        """This thread's stores, with the warehouse to itself for writing."""
        with self.write_lock:
            yield self.strata()

    @contextlib.contextmanager
    def reading(self) -> Iterator[Strata]:
        """This thread's stores for reading (taking turns when the warehouse can't share)."""
        if self.app.warehouse.concurrent:
            yield self.strata()
        else:
            with self.write_lock:
                yield self.strata()

    def on_start(self, hook) -> None:
        self._hooks_started.append(hook)

    def on_stop(self, hook) -> None:
        self._hooks_stopped.append(hook)

    def start(self) -> None:
        self.app.sessions  # noqa: B018 - migrate the catalog before the first request
        self.app.warehouse  # noqa: B018 - and open the warehouse (a DuckDB file locks here)
        self.jobs.start()
        self.ingest.start()
        self.actions.start()
        Uploads(self.settings.home).prune()
        for hook in self._hooks_started:
            hook()

    def close(self) -> None:
        for hook in reversed(self._hooks_stopped):
            hook()
        self.flush_key_use()
        self.meter.flush(self.app)
        self.rate_limiter.close()
        self.ingest.stop()
        self.actions.stop()
        self.jobs.stop()
        for app in self._siblings:
            if app.__dict__.get("warehouse") is not self.app.warehouse:
                with contextlib.suppress(Exception):
                    app.warehouse.close()
        self.app.close()
