"""Settings, read from the environment once.

| variable                  | default                                     |
|---------------------------|---------------------------------------------|
| ``STRATA_HOME``           | the per-user data folder (``platformdirs``) |
| ``STRATA_DATABASE_URL``   | ``sqlite:///$STRATA_HOME/catalog.db``       |
| ``STRATA_WAREHOUSE_URL``  | ``duckdb:///$STRATA_HOME/warehouse.duckdb`` |
| ``STRATA_WORKSPACE``      | ``default``                                 |
| ``STRATA_SPARK_LOCATION`` | ``$STRATA_HOME/spark``                      |
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from strata.errors import ConfigError

#: Documented settings: name -> what it sets. ``tests/test_docs.py`` checks the docs list them all.
SETTINGS = {
    "STRATA_HOME": "folder holding the default catalog and warehouse files",
    "STRATA_DATABASE_URL": "catalog store (SQLAlchemy URL): sqlite:///… or postgresql://…",
    "STRATA_WAREHOUSE_URL": (
        "warehouse store: duckdb:///path, duckdb://:memory:, postgresql://… or spark://local[*]"
    ),
    "STRATA_WORKSPACE": "workspace used when --workspace is not given",
    "STRATA_SPARK_LOCATION": "folder of a spark:// warehouse's Parquet files (unless ?location=)",
    "STRATA_REDIS_URL": "Redis for the personalization cache and rate limits (default: in process)",
    "STRATA_COOKIE_SECURE": "send the session cookie over HTTPS only (true; false for plain http)",
    "STRATA_TIME_REFRESH_SECONDS": "how often time-based segment conditions are re-evaluated (300)",
    "STRATA_OWNER_EMAIL": "e-mail of the owner created on first run (owner@strata.local)",
    "STRATA_OWNER_PASSWORD": "password of the owner created on first run (default: generated)",
    "STRATA_KEY_RATE_LIMIT": "requests per second allowed per API key (2000; bursts of twice that)",
    "STRATA_SECRET_KEY": (
        "key sealing stored credentials and signing unsubscribe links (a Fernet key; "
        "default: generated into $STRATA_HOME/secret.key)"
    ),
    "STRATA_PUBLIC_URL": "address the server is reached at, for links in e-mails (http://127.0.0.1:8000)",
    "STRATA_DEFAULT_PLAN": (
        "plan of new workspaces: unlimited (self-hosted, the default), or starter, growth, "
        "professional or enterprise for a hosted install (docs/plans.md)"
    ),
    "STRATA_WEBHOOK_ALLOW": (
        "hosts or networks (comma-separated, e.g. 127.0.0.1,10.0.0.0/8) that webhooks and "
        "syncs may reach although private; for local use and tests only"
    ),
}


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    warehouse_url: str
    workspace: str = "default"
    #: Folder of the Parquet files of a ``spark://`` warehouse; ``None``: ``home / "spark"``.
    spark_location: Path | None = None
    #: Redis for the profile cache and rate limits; ``None``: kept in process.
    redis_url: str | None = None
    cookie_secure: bool = True
    time_refresh_seconds: float = 300.0
    owner_email: str = "owner@strata.local"
    owner_password: str | None = None
    key_rate_limit: float = 2000.0
    #: A Fernet key (urlsafe base64 of 32 bytes); ``None``: generated into ``home/secret.key``.
    secret_key: str | None = None
    public_url: str = "http://127.0.0.1:8000"
    #: Hosts and networks outgoing requests may reach although private (:mod:`strata.actions.ssrf`).
    webhook_allow: tuple[str, ...] = ()
    #: The plan new workspaces start on (:mod:`strata.plans`).
    default_plan: str = "unlimited"

    def __post_init__(self) -> None:
        if self.spark_location is None:
            object.__setattr__(self, "spark_location", self.home / "spark")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        home = Path(env.get("STRATA_HOME") or platformdirs.user_data_dir("strata")).expanduser()
        database_url = (
            env.get("STRATA_DATABASE_URL") or f"sqlite:///{(home / 'catalog.db').absolute()}"
        )
        warehouse_url = (
            env.get("STRATA_WAREHOUSE_URL") or f"duckdb://{(home / 'warehouse.duckdb').absolute()}"
        )
        workspace = env.get("STRATA_WORKSPACE") or "default"
        spark_location = env.get("STRATA_SPARK_LOCATION")
        for name, url in (
            ("STRATA_DATABASE_URL", database_url),
            ("STRATA_WAREHOUSE_URL", warehouse_url),
        ):
            if "://" not in url:
                raise ConfigError(
                    f"{name}={url!r} is not a URL; use e.g. sqlite:///path or postgresql://host/db"
                )
        return cls(
            home=home,
            database_url=database_url,
            warehouse_url=warehouse_url,
            workspace=workspace,
            spark_location=Path(spark_location).expanduser() if spark_location else None,
            redis_url=env.get("STRATA_REDIS_URL") or None,
            cookie_secure=_flag(env, "STRATA_COOKIE_SECURE", True),
            time_refresh_seconds=_number(env, "STRATA_TIME_REFRESH_SECONDS", 300.0),
            owner_email=env.get("STRATA_OWNER_EMAIL") or "owner@strata.local",
            owner_password=env.get("STRATA_OWNER_PASSWORD") or None,
            key_rate_limit=_number(env, "STRATA_KEY_RATE_LIMIT", 2000.0),
            secret_key=env.get("STRATA_SECRET_KEY") or None,
            public_url=(env.get("STRATA_PUBLIC_URL") or "http://127.0.0.1:8000").rstrip("/"),
            default_plan=(env.get("STRATA_DEFAULT_PLAN") or "unlimited").strip().lower(),
            webhook_allow=tuple(
                part.strip()
                for part in (env.get("STRATA_WEBHOOK_ALLOW") or "").split(",")
                if part.strip()
            ),
        )


def _flag(env, name: str, default: bool) -> bool:
    value = (env.get(name) or "").strip().lower()
    if not value:
        return default
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name}={value!r}: use true or false")


def _number(env, name: str, default: float) -> float:
    value = (env.get(name) or "").strip()
    if not value:
        return default
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not number > 0:
        raise ConfigError(f"{name}={value!r}: use a positive number")
    return number
