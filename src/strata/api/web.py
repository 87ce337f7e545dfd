"""The web app: the files ``npm run build`` writes to ``web/dist``, served at ``/``.

Any path that is not a file of the build and not an API's (``/api/``, ``/v1/``, ``/u/``)
answers the app's ``index.html``, so a screen's own address (``/w/1/segments``) loads
when it is reloaded or bookmarked. Without a build, nothing is mounted and ``/`` is a
404 like any unknown path.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

#: Where the build lands in a checkout (``make install`` installs Strata editable).
WEB_DIST = Path(__file__).resolve().parents[3] / "web" / "dist"
#: Paths the app never answers: the API's own 404s stay problem details.
_NOT_THE_APP = ("api/", "v1/", "u/")


class SinglePageApp(StaticFiles):
    """The build's files; the app's ``index.html`` for the app's own routes."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            return await super().get_response(path, scope)
        except HTTPException as exc:
            last = path.rsplit("/", 1)[-1]
            if exc.status_code != 404 or path.startswith(_NOT_THE_APP) or "." in last:
                raise
            return await super().get_response("index.html", scope)


def mount(app: FastAPI, dist: Path | None = None) -> bool:
    """Serve the built app at ``/`` if there is a build; whether there was one."""
    dist = WEB_DIST if dist is None else dist
    if not (dist / "index.html").is_file():
        return False
    app.mount("/", SinglePageApp(directory=dist, html=True), name="web")
    return True
