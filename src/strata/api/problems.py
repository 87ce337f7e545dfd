"""Errors as RFC 9457 problem details, mapped from Strata's errors in one place.

Every error answer is ``application/problem+json``: ``type``, ``title``, ``status``,
``detail`` (the one-line message of the library error) and ``request_id``.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from strata import errors as E
from strata.api.requestid import current_request_id

log = logging.getLogger("strata.api")

PROBLEM = "application/problem+json"

#: Library error -> HTTP status; the most specific class wins.
STATUS: list[tuple[type[E.StrataError], int]] = [
    (E.BadRequest, 400),
    (E.Unauthorized, 401),
    (E.Forbidden, 403),
    # 402, not 403: the caller may do this, the plan may not; clients offer an upgrade.
    (E.PlanLimit, 402),
    (E.NotFound, 404),
    (E.Conflict, 409),
    (E.PayloadTooLarge, 413),
    (E.TooManyRequests, 429),
    (E.ImportRefused, 422),
    (E.InputError, 422),
    (E.ConfigError, 503),
    (E.StrataError, 400),
]


def status_of(exc: E.StrataError) -> int:
    return next(code for cls, code in STATUS if isinstance(exc, cls))


def problem(
    status: int, detail: str, *, headers: dict[str, str] | None = None, **extra
) -> JSONResponse:
    phrase = HTTPStatus(status).phrase
    body = {
        "type": f"https://strata.dev/problems/{phrase.lower().replace(' ', '-')}",
        "title": phrase,
        "status": status,
        "detail": detail,
        "request_id": current_request_id(),
        **extra,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM)


def install(app: FastAPI) -> None:
    @app.exception_handler(E.StrataError)
    async def strata_error(request: Request, exc: E.StrataError) -> JSONResponse:
        status = status_of(exc)
        headers = None
        if isinstance(exc, E.TooManyRequests):
            headers = {"Retry-After": str(exc.retry_after)}
        elif isinstance(exc, E.Unauthorized):
            headers = {"WWW-Authenticate": 'Bearer realm="strata"'}
        return problem(status, str(exc), headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"where": ".".join(str(p) for p in e.get("loc", ())), "reason": e.get("msg", "")}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"where": "request", "reason": "invalid"}
        return problem(422, f"{first['where']}: {first['reason']}", errors=_plain(errors))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        return problem(exc.status_code, detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "an internal error; it was logged with this request's id")


def _plain(value):
    """Validation errors can carry exceptions and bytes; keep what JSON can hold."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value if isinstance(value, str | int | float | bool | type(None)) else str(value)
