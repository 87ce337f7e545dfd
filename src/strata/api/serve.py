"""``strata serve``: the owner on first run, then uvicorn."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from pathlib import Path

from rich.console import Console

from strata.accounts import Accounts
from strata.api.web import WEB_DIST
from strata.config import Settings
from strata.context import Strata
from strata.errors import ConfigError

#: Where the generated first-run owner password is kept (owner-only file), as Jenkins
#: keeps its initial admin password, so ``make demo`` can print it on every run.
INITIAL_PASSWORD_FILE = "initial-owner-password"


def ensure_owner(app: Strata) -> tuple[str, str | None]:
    """Create the installation's owner if there is none; their e-mail and password
    (the password only while it is the generated first-run one)."""
    settings = app.settings
    owner, generated = Accounts(app).ensure_owner(settings.owner_email, settings.owner_password)
    path = settings.home / INITIAL_PASSWORD_FILE
    if generated is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(generated + "\n")
    password = settings.owner_password if generated is None else generated
    if password is None and path.exists():
        password = _still_valid(app, owner.email, path.read_text().strip())
    return owner.email, password


def _still_valid(app: Strata, email: str, password: str) -> str | None:
    from strata.accounts import _verify

    user = Accounts(app).user_by_email(email)
    return password if user is not None and _verify(user.password_hash, password) else None


def wait_until_serving(url: str, process: subprocess.Popen, *, timeout: float = 60.0) -> bool:
    """Wait until the server ``process`` started answers ``url``/api/v1/health; False if it
    exited or ``timeout`` seconds passed first (scripts and tests that start one)."""
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/api/v1/health", timeout=2) as answer:
                if answer.status == 200:
                    return True
        except OSError:  # refused, reset or timed out while it starts
            pass
        time.sleep(0.05)
    return False


def app_from_env():
    """The ASGI app for uvicorn's worker processes (``--workers``)."""
    from strata.api.app import configure_logging, create_app

    configure_logging(os.environ.get("STRATA_LOG_LEVEL", "info"))
    dist = os.environ.get("STRATA_WEB_DIST")
    return create_app(Settings.from_env(), web_dist=Path(dist) if dist else None)


def run(
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    log_level: str = "info",
    web_dist: Path | None = None,
    console: Console | None = None,
) -> None:
    import uvicorn

    console = console or Console()
    settings = Settings.from_env()
    if workers > 1 and settings.warehouse_url.startswith("duckdb"):
        raise ConfigError(
            "a DuckDB warehouse is one file one process may open: use --workers 1, "
            "or a PostgreSQL warehouse (STRATA_WAREHOUSE_URL) for more"
        )
    with Strata(settings) as app:
        email, password = ensure_owner(app)
    url = f"http://{host}:{port}"
    dist = WEB_DIST if web_dist is None else web_dist.resolve()
    if (dist / "index.html").is_file():
        console.print(f"Strata on [bold]{url}[/] (the web app)")
    console.print(f"Strata API on [bold]{url}/api/v1[/] (docs: {url}/api/v1/docs)")
    if password:
        console.print(f"Sign in as [bold]{email}[/] with password [bold]{password}[/]")
    else:
        console.print(f"Sign in as [bold]{email}[/] (the password you set)")
    console.print("Stop with Ctrl-C.")
    os.environ["STRATA_LOG_LEVEL"] = log_level
    os.environ["STRATA_WEB_DIST"] = str(dist)  # for app_from_env, in each worker
    uvicorn.run(
        "strata.api.serve:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=False,
        # Let an in-flight ingest batch finish before the process exits.
        timeout_graceful_shutdown=10,
    )
