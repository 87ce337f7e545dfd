"""The open stores of one Strata installation: catalog, warehouse, workspaces.

>>> with Strata() as app:  # doctest: +SKIP
...     ws = app.workspace("default", create=True)
"""

from __future__ import annotations

import os
from functools import cached_property

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from strata import plans
from strata.catalog import ImportRun, Workspace, open_catalog
from strata.catalog.models import utcnow
from strata.config import Settings
from strata.errors import InputError, NotFound
from strata.warehouse import Warehouse, connect


class Strata:
    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings.from_env()

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        factory = open_catalog(self.settings.database_url)
        _mark_interrupted_imports(factory)
        return factory

    def session(self) -> Session:
        return self.sessions()

    @cached_property
    def warehouse(self) -> Warehouse:
        return connect(self.settings.warehouse_url, spark_location=self.settings.spark_location)

    @cached_property
    def profile_cache(self):
        """Cached personalization profiles (:mod:`strata.profiles`), in process or Redis."""
        from strata.profiles import ProfileCache

        return ProfileCache.from_settings(self.settings)

    @cached_property
    def triggers(self):
        """Who hears of recorded trigger firings (:mod:`strata.actions.triggers`)."""
        from strata.actions.triggers import Triggers

        return Triggers()

    def segment_changed(self, workspace_id: int, segment_id: int, instant) -> None:
        """Customers entered or left a segment at ``instant``: fire its automations."""
        from strata.actions.triggers import record_changes

        record_changes(self, workspace_id, segment_id, instant)

    def members_changed(self, workspace_id: int, customer_ids=None) -> None:
        """Memberships of ``customer_ids`` (None: anyone) changed: drop cached profiles."""
        self.profile_cache.invalidate(workspace_id, customer_ids)

    def workspace(self, name: str | None = None, *, create: bool = False) -> Workspace:
        """The workspace called ``name`` (default: the configured one)."""
        name = (name or self.settings.workspace).strip()
        if not name or len(name) > 100:
            raise InputError("a workspace name must have 1 to 100 characters")
        with self.session() as s:
            ws = s.scalar(sa.select(Workspace).where(Workspace.name == name))
            if ws is None:
                if not create:
                    raise NotFound(
                        f"no workspace named {name!r}; import data into it first "
                        "or list them with `strata workspaces`"
                    )
                ws = new_workspace(s, self.settings, name)
                s.commit()
            return ws

    def workspaces(self) -> list[Workspace]:
        with self.session() as s:
            return list(s.scalars(sa.select(Workspace).order_by(Workspace.name)))

    def close(self) -> None:
        if "profile_cache" in self.__dict__:
            self.profile_cache.close()
        if "warehouse" in self.__dict__:
            self.warehouse.close()
        if "sessions" in self.__dict__:
            self.sessions.kw["bind"].dispose()

    def __enter__(self) -> Strata:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def new_workspace(s: Session, settings: Settings, name: str, **fields: str | None) -> Workspace:
    """Add a workspace (on its starting plan) to ``s``, with its ``workspace.create`` entry.

    A workspace id is never used twice: the audit log, warehouse schemas (``ws_<id>``) and
    files are keyed by it. SQLite hands out the highest rowid + 1, so deleting the newest
    workspace would give its id to the next one; there the id is chosen past every id the
    audit log has seen.
    """
    from strata import audit
    from strata.catalog import AuditEntry

    ws = Workspace(name=name, **{k: v for k, v in fields.items() if v is not None})
    ws.plan = plans.initial_plan(settings)
    if s.get_bind().dialect.name == "sqlite":
        used = s.scalar(
            sa.select(
                sa.func.max(
                    sa.func.coalesce(sa.select(sa.func.max(Workspace.id)).scalar_subquery(), 0),
                    sa.func.coalesce(
                        sa.select(sa.func.max(AuditEntry.workspace_id)).scalar_subquery(), 0
                    ),
                )
            )
        )
        ws.id = int(used or 0) + 1
    s.add(ws)
    s.flush()
    audit.record(
        s,
        ws.id,
        "workspace.create",
        f"created workspace {name!r}",
        target_type="workspace",
        target_id=ws.id,
    )
    return ws


def _mark_interrupted_imports(factory: sessionmaker[Session]) -> None:
    """An import still "running" whose process is gone was killed: say so."""
    with factory() as s:
        for run in s.scalars(sa.select(ImportRun).where(ImportRun.status == "running")):
            if run.pid is None or not _alive(run.pid):
                run.status = "interrupted"
                run.message = "the import process stopped before finishing; nothing was loaded"
                run.finished_at = utcnow()
        s.commit()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
