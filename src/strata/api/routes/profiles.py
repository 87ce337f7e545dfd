"""The personalization API: a profile's current segments, traits and predictions.

Called by a site or app on every page, so the cached path is lean: an ``async`` route
that, on a cache hit, answers without leaving the event loop and without a catalog
or warehouse query (the key is checked against :meth:`Service.api_key`'s memory; with
Redis, the rate limit and the cache are asyncio calls, one round trip each).
Misses are read from the warehouse in batches (:class:`Misses`), in worker threads,
on each thread's own connection.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, FastAPI, Path, Query, Request, Security
from fastapi.responses import Response
from fastapi.security import HTTPBasic, HTTPBearer
from pydantic import Field

from strata.accounts import KeyPrincipal
from strata.api.schemas import Problem, Schema
from strata.api.state import Service
from strata.errors import NotFound, Unauthorized
from strata.profiles import dumps, load_profiles
from strata.ratelimit import RateLimiter


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # The asyncio Redis clients of the hot path belong to the server's event loop:
    # closed here, before the service closes the rest.
    yield
    svc: Service = app.state.service
    await svc.app.profile_cache.aclose()
    await svc.rate_limiter.aclose()


router = APIRouter(tags=["personalization"], lifespan=_lifespan)

# For the OpenAPI schema (either scheme works); the header is parsed below, in one place.
_bearer = HTTPBearer(auto_error=False, description="The workspace's read key as bearer token.")
_basic = HTTPBasic(auto_error=False, description="The read key as user name, no password.")


class ProfileSegment(Schema):
    id: int
    name: str
    kind: str = Field(description="rule, rfm, tier, static, cluster or prediction")
    joined_at: dt.datetime = Field(description="When the customer joined it (UTC)")
    confidence: float | None = Field(
        None, description="How sure the membership is (model-made segments), else null"
    )


class ProfilePrediction(Schema):
    value: float | None
    confidence: float | None
    model_version: str | None = Field(description="name@version of the fitted model")
    predicted_at: dt.datetime | None


class ProfileSegments(Schema):
    """A customer's current segments, the traits asked for, and their predictions."""

    external_id: str
    segments: list[ProfileSegment]
    traits: dict[str, Any] = Field(description="The traits named in ?traits= (none if not asked)")
    predictions: dict[str, ProfilePrediction] = Field(description="By prediction type")


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "no valid read key"},
    404: {"model": Problem, "description": "no such customer in the key's workspace"},
    429: {"model": Problem, "description": "over the key's rate limit; see Retry-After"},
}


@router.get(
    "/profiles/{external_id}/segments",
    response_model=ProfileSegments,
    responses=_ERRORS,
    dependencies=[Security(_bearer), Security(_basic)],
)
async def profile_segments(
    request: Request,
    external_id: Annotated[str, Path(min_length=1, max_length=512)],
    traits: Annotated[
        str | None,
        Query(
            max_length=4000,
            description="Comma-separated traits to include, e.g. `email,plan`. "
            "A trait the workspace does not have is left out.",
        ),
    ] = None,
) -> Response:
    """The current segments of customer ``external_id`` (your id for them), with the
    traits asked for and the latest predictions.

    Authenticate with a workspace **read** key: `Authorization: Bearer <key>`, or HTTP
    basic with the key as user name. Each key may send `STRATA_KEY_RATE_LIMIT`
    requests a second (bursts of twice that); past it the answer is 429 with
    `Retry-After`. Answers come from a cache that drops a customer's profile as soon as
    their memberships, traits or predictions change.
    """
    svc: Service = request.app.state.service
    key = await _read_key(svc, request)
    await limiter(svc).ahit(key.key_id)
    found = await svc.app.profile_cache.aget(key.workspace_id, external_id)
    state = "hit"
    if found is None:
        state = "miss"
        found = await misses(svc).read(key.workspace_id, external_id)
        if found is None:
            raise NotFound(f"no customer {external_id!r} in this key's workspace")
    all_traits = found["traits"]
    chosen = {}
    if traits:
        for name in traits.split(","):
            name = name.strip()
            if name in all_traits:
                chosen[name] = all_traits[name]
    body = {
        "external_id": found["external_id"],
        "segments": found["segments"],
        "traits": chosen,
        "predictions": found["predictions"],
    }
    return Response(
        dumps(body),
        media_type="application/json",
        headers={"Cache-Control": "private, no-store", "X-Strata-Cache": state},
    )


#: Threads reading missed profiles at once (one batch per workspace at a time).
#: Building and compiling the Ibis queries holds the GIL: more threads would not read
#: faster, they would take the event loop's turns from the cache hits.
READERS = 4
#: Most profiles read by one batch.
BATCH = 256


class Misses:
    """Cache misses of one server, read from the warehouse in batches.

    A read costs about the same for one customer as for hundreds (it is mostly Ibis
    building and compiling three queries), so while a workspace's batch is being read
    the next misses gather, and go together. Misses of the same customer share a read.
    After a whole-workspace invalidation, this is what keeps a busy server answering.
    """

    def __init__(self, svc: Service):
        self.svc = svc
        self.waiting: dict[int, dict[str, list[asyncio.Future]]] = {}
        self.threads = anyio.CapacityLimiter(READERS)
        self._drains: dict[int, asyncio.Task] = {}

    async def read(self, workspace_id: int, external_id: str) -> dict[str, Any] | None:
        """The profile, read from the warehouse and cached (None: no such customer)."""
        answer = asyncio.get_running_loop().create_future()
        self.waiting.setdefault(workspace_id, {}).setdefault(external_id, []).append(answer)
        if workspace_id not in self._drains:
            self._drains[workspace_id] = asyncio.create_task(self._drain(workspace_id))
        return await answer

    async def _drain(self, workspace_id: int) -> None:
        try:
            while waiting := self.waiting.get(workspace_id):
                batch = {ext: waiting.pop(ext) for ext in list(waiting)[:BATCH]}
                if not waiting:
                    del self.waiting[workspace_id]
                try:
                    found = await anyio.to_thread.run_sync(
                        self._read, workspace_id, list(batch), limiter=self.threads
                    )
                except Exception as exc:
                    for answers in batch.values():
                        for a in answers:
                            if not a.done():
                                a.set_exception(exc)
                    continue
                for ext, answers in batch.items():
                    for a in answers:
                        if not a.done():  # its request may have gone (client hung up)
                            a.set_result(found.get(ext))
        finally:
            del self._drains[workspace_id]

    def _read(self, workspace_id: int, external_ids: list[str]) -> dict[str, dict[str, Any]]:
        with self.svc.reading() as app:
            return load_profiles(app, workspace_id, external_ids)


def misses(svc: Service) -> Misses:
    found = svc.__dict__.get("profile_misses")
    if found is None:
        found = svc.__dict__["profile_misses"] = Misses(svc)
    return found


async def _read_key(svc: Service, request: Request) -> KeyPrincipal:
    secret = _secret(request.headers.get("authorization", ""))
    if not secret:
        raise Unauthorized(
            "send the workspace's read key: `Authorization: Bearer <key>` "
            "(or HTTP basic with the key as user name)"
        )
    # A key looked up recently is checked in memory; otherwise the catalog is asked, in
    # a thread, so unknown keys cannot stall the event loop.
    if svc.known_key(secret):
        return svc.api_key(secret, "read")
    return await anyio.to_thread.run_sync(svc.api_key, secret, "read")


def _secret(header: str) -> str | None:
    scheme, _, value = header.strip().partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if scheme == "bearer":
        return value or None
    if scheme == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[0] or None
    return None


def limiter(svc: Service) -> RateLimiter:
    """The server's per-key rate limiter."""
    return svc.rate_limiter
