"""Profiles for personalization: a customer's current segments, traits and predictions,
cached in process or in Redis and invalidated when memberships change.

>>> prof = profile(app, ws.id, "C-1042")  # doctest: +SKIP
>>> [s["name"] for s in prof["segments"]], prof["traits"]["plan"]  # doctest: +SKIP
(['Champions', 'b2b-sweet-spot'], 'pro')

The cache is read by external id (what the API is asked for) but invalidated by
Strata's customer ids (what a segment refresh knows). Both keyings stay exact:

- the profile is stored under its **customer id**, and a small map **external id ->
  customer id** finds it (an external id is a customer's natural key: it never
  points at another customer), so ``invalidate(ws, ids)`` deletes exactly those
  profiles and nothing has to translate ids back;
- every workspace has a **generation**, part of every profile's key:
  ``invalidate(ws)`` bumps it, and the old entries are never read again (they age out);
- every workspace also has a **version**, bumped by every invalidation. A reader takes
  a :class:`Stamp` (:meth:`ProfileCache.stamp`) before reading the warehouse, and its
  ``put`` is dropped if the version moved meanwhile, so a read racing a refresh can
  never store the answer from before the refresh after the refresh's invalidation.

Reads are batched (:func:`profiles`): three warehouse queries serve any number of
customers, which is what lets a server refill its cache after ``invalidate(ws)``.

Profiles change in other ways too (new traits from an import, new predictions): the
TTL bounds how long those can be stale; see :data:`TTL`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa

from strata.config import Settings
from strata.errors import NotFound

if TYPE_CHECKING:
    from strata.context import Strata

log = logging.getLogger("strata.profiles")

#: How long a cached profile is trusted (seconds): the safety net for changes that do
#: not invalidate (an import changing traits, a model scoring again, another process
#: refreshing segments with an in-process cache).
TTL = 300.0
#: Profiles kept by the in-process cache (least recently used go first).
MAX_ENTRIES = 100_000
#: Columns of ``customers`` that are keys, not traits.
NOT_TRAITS = frozenset({"customer_id", "external_id"})


# -- reading profiles from the warehouse -----------------------------------------------------
def profile(app: Strata, workspace_id: int, external_id: str) -> dict[str, Any] | None:
    """The customer ``external_id``'s current segments, traits and predictions, or None.

    >>> profile(app, ws.id, "C-1042")["segments"][0]  # doctest: +SKIP
    {'id': 3, 'name': 'Champions', 'kind': 'rfm', 'joined_at': datetime(...), 'confidence': None}
    """
    return profiles(app, workspace_id, [external_id]).get(external_id)


def profiles(
    app: Strata, workspace_id: int, external_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """The profiles of those of ``external_ids`` that are customers, by external id.

    Three warehouse queries (customers, open memberships, predictions) and one catalog
    query, however many ids: building and compiling the Ibis queries is most of the
    cost of a read, so many misses are best read together.

    >>> sorted(profiles(app, ws.id, ["C-1042", "nobody"]))  # doctest: +SKIP
    ['C-1042']
    """
    from strata.catalog import Segment

    wanted = sorted(set(external_ids))
    wh = app.warehouse
    try:
        customers = wh.table(workspace_id, "customers")
    except NotFound:  # the workspace holds no data yet
        return {}
    rows = customers.filter(customers.external_id.isin(wanted)).to_pyarrow().to_pylist()
    if not rows:
        return {}
    ids = [int(r["customer_id"]) for r in rows]
    m = wh.table(workspace_id, "memberships")
    joined = (
        m.filter(m.customer_id.isin(ids), m.left_at.isnull())
        .select("customer_id", "segment_id", "joined_at", "confidence")
        .to_pyarrow()
        .to_pylist()
    )
    p = wh.table(workspace_id, "predictions")
    predicted = (
        p.filter(p.customer_id.isin(ids))
        .select(
            "customer_id", "prediction_type", "value", "confidence", "model_version", "predicted_at"
        )
        .to_pyarrow()
        .to_pylist()
    )
    known = {}
    if joined:
        with app.session() as s:
            known = {
                r.id: r
                for r in s.execute(
                    sa.select(Segment.id, Segment.name, Segment.kind).where(
                        Segment.workspace_id == workspace_id,
                        Segment.id.in_({j["segment_id"] for j in joined}),
                    )
                )
            }
    found = {
        int(r["customer_id"]): {
            "customer_id": int(r["customer_id"]),
            "external_id": r["external_id"],
            "segments": [],
            "traits": {k: v for k, v in r.items() if k not in NOT_TRAITS},
            "predictions": {},
        }
        for r in rows
    }
    for j in joined:
        seg = known.get(j["segment_id"])
        if seg is not None:  # a segment deleted since: its memberships are going too
            found[j["customer_id"]]["segments"].append(
                {
                    "id": seg.id,
                    "name": seg.name,
                    "kind": seg.kind,
                    "joined_at": j["joined_at"],
                    "confidence": _number(j["confidence"]),
                }
            )
    for r in predicted:
        found[r["customer_id"]]["predictions"][r["prediction_type"]] = {
            "value": _number(r["value"]),
            "confidence": _number(r["confidence"]),
            "model_version": r["model_version"],
            "predicted_at": r["predicted_at"],
        }
    for prof in found.values():
        prof["segments"].sort(key=lambda s: s["name"])
    return {prof["external_id"]: prof for prof in found.values()}


def load_profiles(
    app: Strata, workspace_id: int, external_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Read profiles from the warehouse and cache them; by external id, as :func:`profiles`.

    The cache's stamp is taken before reading, so an invalidation landing during the
    read keeps these answers out of the cache.
    """
    cache = app.profile_cache
    stamp = cache.stamp(workspace_id)
    found = profiles(app, workspace_id, external_ids)
    if found:
        cache.put_many(workspace_id, found, stamp)
    return found


def _number(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def dumps(value: Any) -> bytes:
    """JSON bytes of a profile (or an answer holding one): dates as ISO 8601 text."""
    return orjson.dumps(value, default=_json_default)


def _json_default(value: Any) -> Any:
    # orjson handles datetimes, dates, numbers; a DECIMAL or other attribute type lands here.
    if isinstance(value, dt.time | dt.timedelta):
        return str(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


# -- the cache -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Stamp:
    """A workspace's generation and version when a read began (see the module doc)."""

    generation: int | bytes
    version: int | bytes


def _expiry(ttl: float) -> float:
    """``ttl`` give or take a tenth, so profiles read together do not expire together."""
    return ttl * random.uniform(0.9, 1.1)


class ProfileCache:
    """Cached profiles of all workspaces: in this process, or in Redis (``redis_url``).

    >>> cache = ProfileCache.from_settings(settings)  # doctest: +SKIP
    >>> if cache.get(ws.id, "C-1042") is None:  # doctest: +SKIP
    ...     stamp = cache.stamp(ws.id)  # before reading
    ...     cache.put(ws.id, "C-1042", profile(app, ws.id, "C-1042"), stamp)
    """

    @classmethod
    def from_settings(cls, settings: Settings) -> ProfileCache:
        if settings.redis_url:
            return RedisProfileCache.from_url(settings.redis_url, namespace=namespace(settings))
        return LocalProfileCache()

    def get(self, workspace_id: int, external_id: str) -> dict[str, Any] | None:
        """The cached profile, or None."""
        raise NotImplementedError

    async def aget(self, workspace_id: int, external_id: str) -> dict[str, Any] | None:
        """:meth:`get` for an event loop: waiting on the network never blocks it."""
        return self.get(workspace_id, external_id)

    def stamp(self, workspace_id: int) -> Stamp:
        """Take this before reading profiles from the warehouse, give it to :meth:`put`."""
        raise NotImplementedError

    def put(
        self,
        workspace_id: int,
        external_id: str,
        profile: dict[str, Any],
        stamp: Stamp | None = None,
    ) -> None:
        """Cache ``profile`` (as :func:`profile` makes it), unless the workspace was
        invalidated since ``stamp`` was taken (None: take it now, no race protection)."""
        self.put_many(workspace_id, {external_id: profile}, stamp)

    def put_many(
        self, workspace_id: int, found: dict[str, dict[str, Any]], stamp: Stamp | None = None
    ) -> None:
        """:meth:`put` for the profiles of :func:`profiles` (by external id), all or none."""
        raise NotImplementedError

    def invalidate(self, workspace_id: int, customer_ids: Sequence[int] | None = None) -> None:
        """Forget the profiles of ``customer_ids`` (None: every profile of the workspace)."""
        raise NotImplementedError

    def forget(
        self, workspace_id: int, customer_ids: Sequence[int], external_ids: Sequence[str]
    ) -> int:
        """Delete every cached entry of these customers, of every generation (an erasure);
        returns how many entries went. Other processes' in-memory caches keep theirs
        until they expire (:data:`TTL`)."""
        raise NotImplementedError

    def close(self) -> None:
        return None

    async def aclose(self) -> None:
        """Close what :meth:`aget` opened, in the event loop that used it."""
        return None


def namespace(settings: Settings) -> str:
    """Redis key prefix of one installation: workspace and key ids are numbered by its
    catalog, so two installations (or test runs) sharing a Redis must not meet."""
    return "strata:" + hashlib.sha256(settings.database_url.encode()).hexdigest()[:12]


class LocalProfileCache(ProfileCache):
    """A bounded LRU in this process. Only this process's invalidations reach it."""

    def __init__(self, max_entries: int = MAX_ENTRIES, ttl: float = TTL):
        self.max_entries = max_entries
        self.ttl = ttl
        self._lock = threading.Lock()
        #: (workspace, customer id) -> (generation, expires, external id, profile)
        self._entries: OrderedDict[tuple[int, int], tuple[int, float, str, dict]] = OrderedDict()
        #: (workspace, external id) -> customer id; dropped with its entry.
        self._ids: dict[tuple[int, str], int] = {}
        self._generation: dict[int, int] = {}
        self._version: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, workspace_id, external_id):
        with self._lock:
            cid = self._ids.get((workspace_id, external_id))
            if cid is None:
                return None
            key = (workspace_id, cid)
            entry = self._entries.get(key)
            if (
                entry is None
                or entry[0] != self._generation.get(workspace_id, 0)
                or entry[1] < time.monotonic()
            ):
                return None
            self._entries.move_to_end(key)
            return entry[3]

    def stamp(self, workspace_id):
        with self._lock:
            return Stamp(self._generation.get(workspace_id, 0), self._version.get(workspace_id, 0))

    def put_many(self, workspace_id, found, stamp=None) -> None:
        now = time.monotonic()
        with self._lock:
            gen = self._generation.get(workspace_id, 0)
            if stamp is not None and (
                stamp.version != self._version.get(workspace_id, 0) or stamp.generation != gen
            ):
                return  # invalidated while these profiles were being read: they may be stale
            for external_id, prof in found.items():
                key = (workspace_id, int(prof["customer_id"]))
                self._entries[key] = (gen, now + _expiry(self.ttl), external_id, prof)
                self._entries.move_to_end(key)
                self._ids[(workspace_id, external_id)] = key[1]
            while len(self._entries) > self.max_entries:
                (ws, _), (_, _, ext, _) = self._entries.popitem(last=False)
                self._ids.pop((ws, ext), None)

    def invalidate(self, workspace_id, customer_ids=None) -> None:
        with self._lock:
            self._version[workspace_id] = self._version.get(workspace_id, 0) + 1
            if customer_ids is None:
                # Entries of older generations are never read again; the LRU drops them.
                self._generation[workspace_id] = self._generation.get(workspace_id, 0) + 1
                return
            for cid in customer_ids:
                entry = self._entries.pop((workspace_id, int(cid)), None)
                if entry is not None:
                    self._ids.pop((workspace_id, entry[2]), None)

    def forget(self, workspace_id, customer_ids, external_ids) -> int:
        gone = 0
        with self._lock:
            self._version[workspace_id] = self._version.get(workspace_id, 0) + 1
            for cid in customer_ids:
                entry = self._entries.pop((workspace_id, int(cid)), None)
                if entry is not None:
                    gone += 1
                    self._ids.pop((workspace_id, entry[2]), None)
            for ext in external_ids:
                gone += self._ids.pop((workspace_id, ext), None) is not None
        return gone

    def close(self) -> None:
        with self._lock:
            self._entries.clear()
            self._ids.clear()


class _Throttled:
    """Log a warning at most once per ``every`` seconds, saying how many were held back."""

    def __init__(self, logger: logging.Logger, every: float = 60.0):
        self.logger, self.every = logger, every
        self._last = -math.inf
        self._held = 0
        self._lock = threading.Lock()

    def __call__(self, message: str, *args: Any) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._last < self.every:
                self._held += 1
                return
            held, self._held, self._last = self._held, 0, now
        suffix = f" ({held} more since the last warning)" if held else ""
        self.logger.warning(message + suffix, *args)


# Keys of one workspace share a hash tag ({ws}), so they live in one cluster slot.
#   <ns>:{ws}:gen             generation (INCR on invalidate(ws))
#   <ns>:{ws}:ver             version (INCR on every invalidation)
#   <ns>:{ws}:<gen>:x:<ext>   external id -> customer id
#   <ns>:{ws}:<gen>:c:<cid>   the profile, orjson bytes
_GET = """
local g = redis.call('GET', KEYS[1]) or '0'
local cid = redis.call('GET', ARGV[1] .. g .. ':x:' .. ARGV[2])
if not cid then return false end
return redis.call('GET', ARGV[1] .. g .. ':c:' .. cid)
"""
# ARGV: base, generation, version, then (external id, customer id, profile, ttl ms)...
_PUT = """
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[3] then return 0 end
if (redis.call('GET', KEYS[1]) or '0') ~= ARGV[2] then return 0 end
local prefix = ARGV[1] .. ARGV[2]
for i = 4, #ARGV, 4 do
  redis.call('SET', prefix .. ':c:' .. ARGV[i + 1], ARGV[i + 2], 'PX', ARGV[i + 3])
  redis.call('SET', prefix .. ':x:' .. ARGV[i], ARGV[i + 1], 'PX', ARGV[i + 3])
end
return 1
"""
_INVALIDATE = """
local g = redis.call('GET', KEYS[1]) or '0'
for i = 2, #ARGV do redis.call('DEL', ARGV[1] .. g .. ':c:' .. ARGV[i]) end
return redis.call('INCR', KEYS[2])
"""


#: Redis clients fail fast: a request falls back to the warehouse rather than wait.
REDIS_OPTIONS: dict[str, Any] = {
    "socket_timeout": 0.25,
    "socket_connect_timeout": 0.25,
    "health_check_interval": 30,
}
#: The stamp of a read that could not ask Redis: a put with it is never stored.
NO_STAMP = Stamp(b"", b"")


class RedisProfileCache(ProfileCache):
    """Profiles in Redis, shared by every process of the installation.

    Each call is one round trip (a Lua script); :meth:`aget` goes through an asyncio
    client of its own (made in the event loop on first use, closed by :meth:`aclose`),
    so a slow Redis holds up one request, not the server.

    Redis failing never fails a request: reads fall back to the warehouse, a warning is
    logged (once a minute), and Redis is left alone for :attr:`PAUSE` seconds. An
    invalidation that could not be sent is kept and sent, as a whole-workspace one,
    before that workspace is read from Redis again (by this process). Give Redis
    ``maxmemory-policy volatile-lru`` (or ``noeviction``): profiles expire, the
    generation and version keys must not be evicted.
    """

    #: Seconds without trying Redis after it failed (so an outage costs no timeouts).
    PAUSE = 2.0
    #: Customer ids per invalidation script call.
    CHUNK = 2000

    def __init__(
        self, client, *, namespace: str = "strata", ttl: float = TTL, url: str | None = None
    ):
        self.client = client
        self.url = url
        self.namespace = namespace
        self.ttl = ttl
        self._get = client.register_script(_GET)
        self._put = client.register_script(_PUT)
        self._invalidate = client.register_script(_INVALIDATE)
        self._paused_until = 0.0
        self._pending: set[int] = set()
        self._lock = threading.Lock()
        self._warn = _Throttled(log)
        self._aclient = None
        self._aget = None

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisProfileCache:
        import redis

        return cls(redis.Redis.from_url(url, **REDIS_OPTIONS), url=url, **kwargs)

    def _base(self, workspace_id: int) -> str:
        return f"{self.namespace}:{{{int(workspace_id)}}}:"

    def _usable(self, workspace_id: int, *, flush: bool = True) -> bool:
        if self._paused_until and time.monotonic() < self._paused_until:
            return False
        if self._pending and flush:
            self._flush_pending()
        return workspace_id not in self._pending

    def _failed(self, doing: str, exc: Exception) -> None:
        self._paused_until = time.monotonic() + self.PAUSE
        self._warn("Redis failed while %s (%s); reading profiles from the warehouse", doing, exc)

    def _flush_pending(self) -> None:
        with self._lock:
            pending = set(self._pending)
        for ws in pending:
            try:
                self._drop_workspace(ws)
            except Exception as exc:  # redis.RedisError, OSError: Redis is down again
                self._failed("invalidating a workspace", exc)
                return
            with self._lock:
                self._pending.discard(ws)

    def _drop_workspace(self, workspace_id: int) -> None:
        base = self._base(workspace_id)
        with self.client.pipeline(transaction=True) as pipe:
            pipe.incr(base + "gen").incr(base + "ver").execute()

    def get(self, workspace_id, external_id):
        if not self._usable(workspace_id):
            return None
        base = self._base(workspace_id)
        try:
            found = self._get(keys=[base + "gen"], args=[base, external_id])
        except Exception as exc:
            self._failed("reading a profile", exc)
            return None
        return orjson.loads(found) if found else None

    async def aget(self, workspace_id, external_id):
        if self.url is None:  # made around a client: no asyncio twin to make
            return self.get(workspace_id, external_id)
        # Pending invalidations are sent by the next stamp (in a thread), not from here.
        if not self._usable(workspace_id, flush=False):
            return None
        if self._aget is None:
            from redis import asyncio as aredis

            self._aclient = aredis.Redis.from_url(self.url, **REDIS_OPTIONS)
            self._aget = self._aclient.register_script(_GET)
        base = self._base(workspace_id)
        try:
            found = await self._aget(keys=[base + "gen"], args=[base, external_id])
        except Exception as exc:
            self._failed("reading a profile", exc)
            return None
        return orjson.loads(found) if found else None

    def stamp(self, workspace_id):
        if not self._usable(workspace_id):
            return NO_STAMP
        base = self._base(workspace_id)
        try:
            gen, ver = self.client.mget([base + "gen", base + "ver"])
        except Exception as exc:
            self._failed("reading a workspace's version", exc)
            return NO_STAMP
        return Stamp(gen or b"0", ver or b"0")

    def put_many(self, workspace_id, found, stamp=None) -> None:
        if stamp is None:
            stamp = self.stamp(workspace_id)
        if not stamp.generation or not found or not self._usable(workspace_id):
            return
        base = self._base(workspace_id)
        args: list[Any] = [base, stamp.generation, stamp.version]
        for external_id, prof in found.items():
            ttl_ms = int(_expiry(self.ttl) * 1000)
            args += [external_id, int(prof["customer_id"]), dumps(prof), ttl_ms]
        try:
            self._put(keys=[base + "gen", base + "ver"], args=args)
        except Exception as exc:
            self._failed("storing profiles", exc)

    def invalidate(self, workspace_id, customer_ids=None) -> None:
        base = self._base(workspace_id)
        try:
            if customer_ids is None:
                self._drop_workspace(workspace_id)
                return
            ids = [int(c) for c in customer_ids]
            for start in range(0, len(ids), self.CHUNK):
                chunk = ids[start : start + self.CHUNK]
                self._invalidate(keys=[base + "gen", base + "ver"], args=[base, *chunk])
        except Exception as exc:
            # Remembered: this workspace is not read from Redis until it is dropped there.
            with self._lock:
                self._pending.add(int(workspace_id))
            self._failed("invalidating profiles", exc)

    def forget(self, workspace_id, customer_ids, external_ids) -> int:
        # Keys of older generations live until they expire: find them all by pattern.
        base = _glob_escape(self._base(workspace_id))
        patterns = [f"{base}*:c:{int(c)}" for c in customer_ids]
        patterns += [f"{base}*:x:{_glob_escape(e)}" for e in external_ids]
        gone = 0
        for pattern in patterns:
            keys = list(self.client.scan_iter(match=pattern, count=1000))
            if keys:
                gone += int(self.client.delete(*keys))
        self.client.incr(self._base(workspace_id) + "ver")
        return gone

    def close(self) -> None:
        self.client.close()

    async def aclose(self) -> None:
        client, self._aclient, self._aget = self._aclient, None, None
        if client is not None:
            await client.aclose()


def _glob_escape(text: str) -> str:
    """``text`` matched literally by a Redis ``SCAN MATCH`` pattern."""
    return "".join("\\" + ch if ch in "\\*?[]^" else ch for ch in text)
