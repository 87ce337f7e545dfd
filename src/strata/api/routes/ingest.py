"""Live event ingest in the Segment tracking spec: /v1/identify, /v1/track, /v1/batch…

Authenticate as Segment libraries do: HTTP basic with the workspace's *write* key as
the user name and an empty password (``Authorization: Bearer <key>`` works too). A
200 ``{"success": true}`` means the calls are durably queued; they reach the
warehouse and the segments within about a second (:mod:`strata.ingest.live`).

Limits, as Segment's: a call's JSON at most 32 KB, a batch at most 500 KB (both after
``Content-Encoding: gzip`` is undone; an inflated body past the limit stops inflating
and answers 413). Bad JSON or an invalid call answers 400 naming the call and field; so
does a call about a person erased on request (``docs/privacy.md``): the whole request is
refused and nothing of it is queued.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from strata.api.deps import PrincipalDep, ServiceDep
from strata.catalog.models import utcnow
from strata.errors import BadRequest, Forbidden, PayloadTooLarge, Unauthorized
from strata.ingest.live import parse_calls
from strata.privacy.subjects import REFUSED, Suppressions

router = APIRouter(prefix="/v1", tags=["ingest"])
#: Owner-only figures of the loader, mounted under ``/api/v1`` (``/api/v1/admin/ingest/stats``).
admin_router = APIRouter(prefix="/admin/ingest", tags=["ingest"])

#: Largest batch body, inflated (bytes).
MAX_BATCH = 500 * 1024
#: Largest single call (its JSON, bytes).
MAX_CALL = 32 * 1024

_SUCCESS = b'{"success":true}'

RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "queued durably", "content": {"application/json": {}}},
    400: {"description": "malformed JSON or an invalid call"},
    401: {"description": "no valid write key"},
    413: {"description": "a call over 32 KB or a batch over 500 KB"},
}


def write_key(request: Request) -> str:
    """The write key of a request: basic auth user name, or a bearer token."""
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    value = value.strip()
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized("the basic credentials are not valid base64") from None
        key = decoded.partition(":")[0]
        if key:
            return key
    elif scheme.lower() == "bearer" and value:
        return value
    raise Unauthorized(
        "send the workspace's write key as the HTTP basic user name (empty password)"
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, inflated if gzip, refused past ``limit`` bytes (413)."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in {"identity", "gzip", ""}:
        raise BadRequest(f"Content-Encoding {encoding!r} is not supported: send gzip or none")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(_too_large(int(declared), limit))
    raw = bytearray()
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if encoding == "gzip" else None
    out = bytearray()
    async for chunk in request.stream():
        if not chunk:
            continue
        raw += chunk
        if len(raw) > limit:
            raise PayloadTooLarge(_too_large(len(raw), limit, at_least=True))
        if inflater is not None:
            _inflate(inflater, chunk, out, limit)
    if inflater is None:
        return bytes(raw)
    if not inflater.eof:
        raise BadRequest("the gzip body is truncated or not gzip")
    return bytes(out)


def _inflate(inflater, data: bytes, out: bytearray, limit: int) -> None:
    """Inflate ``data`` into ``out``, never more than ``limit`` + 1 bytes in all."""
    try:
        while data:
            out += inflater.decompress(data, limit + 1 - len(out))
            if len(out) > limit:
                raise PayloadTooLarge(
                    f"the body inflates past {limit:,} bytes, the limit; send smaller batches"
                )
            data = inflater.unconsumed_tail
    except zlib.error as exc:
        raise BadRequest(f"the gzip body cannot be read: {exc}") from None


def _too_large(size: int, limit: int, *, at_least: bool = False) -> str:
    more = "more than " if at_least else ""
    return f"the body is {more}{size:,} bytes; the limit is {limit:,}: send smaller batches"


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None


def _check_sizes(calls: list[Any], body_size: int) -> None:
    if body_size <= MAX_CALL:
        return  # no call can be larger than the whole body
    for i, call in enumerate(calls):
        size = len(orjson.dumps(call))
        if size > MAX_CALL:
            raise PayloadTooLarge(
                f"batch[{i}] is {size:,} bytes of JSON; the limit is {MAX_CALL:,} per call"
            )


async def _workspace_id(request: Request, svc) -> int:
    """The workspace of the request's write key (the key lookup may touch the catalog)."""
    principal = await run_in_threadpool(svc.api_key, write_key(request), "write")
    await run_in_threadpool(svc.require_feature, principal.workspace_id, "realtime")
    return principal.workspace_id


async def _ingest(svc, workspace_id: int, calls: list[Any], **kw) -> Response:
    """Validate, queue durably (off the event loop), and only then answer 200."""
    received = utcnow()
    messages = parse_calls(calls, received, **kw)
    await run_in_threadpool(_refuse_erased, svc, workspace_id, messages, kw.get("where", "batch"))
    await run_in_threadpool(svc.ingest.accept, workspace_id, messages, received_at=received)
    return Response(_SUCCESS, media_type="application/json")


def _refuse_erased(svc, workspace_id: int, messages: list[dict[str, Any]], where: str) -> None:
    """A call about a person erased on request refuses the request, as an invalid call
    does: nothing of it is queued (:mod:`strata.privacy`)."""
    suppressions = Suppressions.for_messages(svc.app, workspace_id, messages)
    for i, message in enumerate(messages):
        if suppressions.message_refused(message):
            call = where if len(messages) == 1 and where != "batch" else f"batch[{i}]"
            raise BadRequest(f"{call}: this person was {REFUSED}; nothing was queued")


@router.post("/batch", responses=RESPONSES)
async def batch(request: Request, svc: ServiceDep) -> Response:
    """Several calls (identify, track, page, screen, group, alias) in one request:
    ``{"batch": [...], "context": {...}, "sentAt": "..."}``."""
    workspace_id = await _workspace_id(request, svc)
    body = await read_body(request, MAX_BATCH)
    data = _json(body)
    if not isinstance(data, dict) or not isinstance(data.get("batch"), list):
        raise BadRequest("a batch is a JSON object with a list of calls in 'batch'")
    calls = data["batch"]
    if not calls:
        raise BadRequest("batch: the list of calls is empty")
    _check_sizes(calls, len(body))
    return await _ingest(svc, workspace_id, calls, sent_at=data.get("sentAt"), where="batch")


def _single(kind: str):
    async def handler(request: Request, svc: ServiceDep) -> Response:
        workspace_id = await _workspace_id(request, svc)
        body = await read_body(request, MAX_CALL)
        call = _json(body)
        if not isinstance(call, dict):
            raise BadRequest(f"a {kind} call is a JSON object")
        call["type"] = kind
        return await _ingest(svc, workspace_id, [call], where=kind, single=True)

    handler.__name__ = kind
    handler.__doc__ = f"One {kind} call of the Segment tracking spec."
    return handler


for _kind in ("identify", "track", "page", "screen", "group", "alias"):
    router.add_api_route(f"/{_kind}", _single(_kind), methods=["POST"], responses=RESPONSES)


@admin_router.get("/stats")
def ingest_stats(principal: PrincipalDep, svc: ServiceDep) -> dict[str, Any]:
    """What the live loader did since the server started: events received and loaded,
    failures, and receipt-to-membership latency (seconds, per request). Owner only."""
    if not principal.user.is_owner:
        raise Forbidden("only the installation's owner may read the ingest figures")
    return {**svc.ingest.stats(), "latency_samples": svc.ingest.latencies()[-2000:]}
