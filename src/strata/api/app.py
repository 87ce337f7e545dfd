"""The FastAPI application: routes under ``/api/v1``, live ingest under ``/v1``.

>>> app = create_app(Settings.from_env())  # doctest: +SKIP
>>> # uvicorn.run(app)  (``strata serve`` does this)
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from fastapi import FastAPI

from strata import __version__
from strata.api import problems, web
from strata.api.requestid import RequestIdFilter, RequestIdMiddleware
from strata.api.routes import (
    analyses,
    audit_log,
    auth,
    automations,
    campaigns,
    customers,
    email,
    exports,
    governance,
    imports,
    ingest,
    jobs,
    models,
    personal_data,
    privacy,
    profiles,
    segment_settings,
    segments,
    syncs,
    usage,
    webhooks,
    workspaces,
)
from strata.api.state import Service
from strata.config import Settings

API_PREFIX = "/api/v1"

DESCRIPTION = """\
Strata's REST API. Sign in with `POST /api/v1/auth/login` (a cookie for browsers, a
bearer token for scripts); every resource lives in a workspace, `/api/v1/workspaces/{id}/…`.
Errors are RFC 9457 problem details. Lists are pages: `limit` and `offset` in,
`items`, `total`, `limit`, `offset` out. Long work answers 202 with a job to follow.
Event ingest (`/v1/identify`, `/v1/track`, `/v1/batch`) follows the Segment tracking
spec and authenticates with a workspace's write key as the HTTP basic user name.
"""


def create_app(
    settings: Settings | None = None,
    *,
    service: Service | None = None,
    web_dist: Path | None = None,
) -> FastAPI:
    """The API over the stores ``settings`` name (default: from the environment), and the
    built web app at ``/`` (``web_dist``, default ``web/dist`` of the checkout) if built."""
    svc = service or Service(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        svc.start()
        try:
            yield
        finally:
            svc.close()

    app = FastAPI(
        title="Strata",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.service = svc
    problems.install(app)
    app.add_middleware(RequestIdMiddleware)
    for module in ROUTERS:
        app.include_router(module.router, prefix=API_PREFIX)
    for module in UNVERSIONED:
        app.include_router(module.router)
    app.include_router(ingest.admin_router, prefix=API_PREFIX)
    app.include_router(email.public_router)  # the unsubscribe pages of e-mails

    @app.get(f"{API_PREFIX}/health", tags=["service"])
    def health() -> dict[str, str]:
        """Whether the server is up (no sign-in needed)."""
        return {"status": "ok", "version": __version__}

    web.mount(app, web_dist)  # last: it answers every path no route above took
    return app


#: Route modules mounted under ``/api/v1``.
ROUTERS = [
    auth,
    workspaces,
    imports,
    customers,
    segments,
    segment_settings,
    models,
    analyses,
    automations,
    campaigns,
    email,
    exports,
    jobs,
    profiles,
    syncs,
    webhooks,
    privacy,
    personal_data,
    audit_log,
    governance,
    usage,
]
#: Route modules with paths of their own (the Segment-compatible ``/v1`` ingest).
UNVERSIONED = [ingest]


def configure_logging(level: str = "info") -> None:
    """Log lines carry the request id: ``… [request id] message``."""
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
    )
    root = logging.getLogger("strata")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
