"""A request id for every request: taken from ``X-Request-ID`` or made, echoed back,
and added to every log line written while the request runs."""

from __future__ import annotations

import contextvars
import logging
import re
import time
import uuid

from strata import audit

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_SAFE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
access = logging.getLogger("strata.api.access")


def current_request_id() -> str:
    return _request_id.get()


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to log records (use ``%(request_id)s`` in a format)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True


class RequestIdMiddleware:
    """Pure ASGI (no per-request task), so it costs microseconds on the hot paths."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"").decode(
            "latin-1"
        )
        rid = given if _SAFE.match(given) else uuid.uuid4().hex
        token = _request_id.set(rid)
        slot = audit.open_slot()  # filled in when the caller is signed in (strata.audit)
        started = time.perf_counter()
        status = [0]

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if access.isEnabledFor(logging.INFO):
                access.info(
                    "%s %s %s %.1fms",
                    scope["method"],
                    scope["path"],
                    status[0],
                    (time.perf_counter() - started) * 1000,
                )
            audit.close_slot(slot)
            _request_id.reset(token)
