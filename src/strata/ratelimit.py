"""Per-API-key rate limits: a token bucket per key, in process or in Redis.

A key may send ``rate`` requests a second on average and bursts of ``2 * rate``; past
that, :class:`~strata.errors.TooManyRequests` says how many seconds to wait.

>>> limiter = RateLimiter.from_settings(settings)  # doctest: +SKIP
>>> limiter.hit(key_id)  # doctest: +SKIP
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from strata.config import Settings
from strata.errors import TooManyRequests

#: A bucket holds this many seconds of the rate (2: bursts of twice the rate).
BURST_SECONDS = 2.0


class RateLimiter:
    """Token buckets of every key in this process."""

    def __init__(self, rate: float, burst: float | None = None):
        if not rate > 0:
            raise ValueError("a rate limit must be a positive number of requests per second")
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else rate * BURST_SECONDS)
        self._lock = threading.Lock()
        #: key -> [tokens, when they were counted]
        self._buckets: dict[Any, list[float]] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimiter:
        if settings.redis_url:
            from strata.profiles import namespace

            return RedisRateLimiter.from_url(
                settings.redis_url, settings.key_rate_limit, namespace=namespace(settings)
            )
        return cls(settings.key_rate_limit)

    def hit(self, key: Any) -> None:
        """Count one request of ``key``; :class:`TooManyRequests` if its bucket is empty."""
        self._raise(self._take(key))

    async def ahit(self, key: Any) -> None:
        """:meth:`hit` for an event loop: waiting on the network never blocks it."""
        self._raise(self._take(key))

    def _raise(self, wait: float) -> None:
        if wait > 0:
            raise TooManyRequests(
                f"over this key's limit of {self.rate:g} requests a second: slow down",
                retry_after=max(1, math.ceil(wait)),
            )

    def _take(self, key: Any) -> float:
        """Take a token; 0 if there was one, else seconds until there is."""
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = [self.burst, now]
            tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
            bucket[1] = now
            if tokens >= 1.0:
                bucket[0] = tokens - 1.0
                return 0.0
            bucket[0] = tokens
            return (1.0 - tokens) / self.rate

    def close(self) -> None:
        return None

    async def aclose(self) -> None:
        """Close what :meth:`ahit` opened, in the event loop that used it."""
        return None


# One round trip: refill by the time passed (Redis's clock, the same for every process),
# take a token if there is one, else answer how many milliseconds until there is.
_BUCKET = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local b = redis.call('HMGET', KEYS[1], 't', 'at')
local tokens = tonumber(b[1]) or burst
local at = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) / rate * 1000) end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return wait
"""


class RedisRateLimiter(RateLimiter):
    """Buckets in Redis, shared by every process of the installation.

    When Redis fails, this process's own buckets take over (a warning is logged once a
    minute) and Redis is left alone for :attr:`PAUSE` seconds.
    """

    PAUSE = 2.0

    def __init__(self, client, rate: float, *, namespace: str = "strata", url: str | None = None):
        super().__init__(rate)
        from strata.profiles import _Throttled, log

        self.client = client
        self.url = url
        self.namespace = namespace
        self._script = client.register_script(_BUCKET)
        self._aclient = None
        self._ascript = None
        self._paused_until = 0.0
        self._warn = _Throttled(log)

    @classmethod
    def from_url(cls, url: str, rate: float, **kwargs: Any) -> RedisRateLimiter:
        import redis

        from strata.profiles import REDIS_OPTIONS

        return cls(redis.Redis.from_url(url, **REDIS_OPTIONS), rate, url=url, **kwargs)

    def _paused(self) -> bool:
        return bool(self._paused_until) and time.monotonic() < self._paused_until

    def _failed(self, exc: Exception) -> None:
        self._paused_until = time.monotonic() + self.PAUSE
        self._warn("Redis failed while rate limiting (%s); limiting in process", exc)

    def _take(self, key: Any) -> float:
        if not self._paused():
            try:
                wait_ms = self._script(
                    keys=[f"{self.namespace}:rate:{key}"], args=[self.rate, self.burst]
                )
                return int(wait_ms) / 1000.0
            except Exception as exc:  # redis.RedisError, OSError
                self._failed(exc)
        return super()._take(key)

    async def ahit(self, key: Any) -> None:
        if self.url is None or self._paused():
            return self.hit(key)
        if self._ascript is None:
            from redis import asyncio as aredis

            from strata.profiles import REDIS_OPTIONS

            self._aclient = aredis.Redis.from_url(self.url, **REDIS_OPTIONS)
            self._ascript = self._aclient.register_script(_BUCKET)
        try:
            wait_ms = await self._ascript(
                keys=[f"{self.namespace}:rate:{key}"], args=[self.rate, self.burst]
            )
        except Exception as exc:  # redis.RedisError, OSError
            self._failed(exc)
            return self.hit(key)
        self._raise(int(wait_ms) / 1000.0)

    def close(self) -> None:
        self.client.close()

    async def aclose(self) -> None:
        client, self._aclient, self._ascript = self._aclient, None, None
        if client is not None:
            await client.aclose()
