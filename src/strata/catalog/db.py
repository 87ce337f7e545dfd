"""The catalog database: engine, sessions, and migrations applied on open."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from strata.errors import ConfigError

MIGRATIONS = Path(__file__).parent / "migrations"


def _alembic_config(engine: sa.Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def create_engine(url: str) -> sa.Engine:
    """An engine for the catalog at ``url`` (``sqlite:///…`` or ``postgresql://…``)."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError:
        raise ConfigError(f"STRATA_DATABASE_URL={url!r} is not a database URL") from None
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(parsed)
    if parsed.get_backend_name() == "sqlite":
        file_backed = parsed.database not in (None, "", ":memory:")

        # SQLite ignores foreign keys unless asked, and waits for a busy lock only if told.
        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_con, _record):
            cur = dbapi_con.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=10000")
            # Deleted rows are overwritten with zeros, not left in free pages: an erased
            # customer must not be readable from the file (strata.privacy).
            cur.execute("PRAGMA secure_delete=ON")
            if file_backed:
                # Readers never wait for the writer, and a commit is one append to the
                # log instead of a rewrite with two syncs: the outboxes of webhooks,
                # e-mail and firings commit once per message.
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

    return engine


def upgrade(engine: sa.Engine) -> None:
    """Apply any migration the catalog lacks (a no-op when it is current)."""
    head = ScriptDirectory.from_config(_alembic_config(engine)).get_current_head()
    try:
        with engine.connect() as con:
            current = MigrationContext.configure(con).get_current_revision()
    except sa.exc.OperationalError as exc:
        raise ConfigError(f"cannot open the catalog database: {exc.orig}") from None
    if current != head:
        command.upgrade(_alembic_config(engine), "head")


def open_catalog(url: str) -> sessionmaker[Session]:
    """Engine + migrations + a session factory for the catalog at ``url``."""
    engine = create_engine(url)
    upgrade(engine)
    return sessionmaker(engine, expire_on_commit=False)
