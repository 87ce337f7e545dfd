"""The catalog: migrations match the models, on SQLite and on PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from strata.catalog.db import create_engine, open_catalog
from strata.catalog.models import Base
from strata.config import Settings
from strata.context import Strata
from strata.ingest.pipeline import run_import


def _diff(url: str) -> list:
    open_catalog(url).kw["bind"].dispose()
    engine = create_engine(url)
    try:
        with engine.connect() as con:
            return compare_metadata(MigrationContext.configure(con), Base.metadata)
    finally:
        engine.dispose()


def test_migrations_build_exactly_the_models_on_sqlite(tmp_path):
    assert _diff(f"sqlite:///{tmp_path / 'c.db'}") == []


def test_migrations_build_exactly_the_models_on_postgres(postgres_database):
    assert _diff(postgres_database) == []


def test_a_postgres_catalog_records_imports(postgres_database, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("customer_id,order_id,timestamp,quantity,unit_price\n7,1,2024-01-01,2,5\n")
    settings = Settings(
        home=tmp_path,
        database_url=postgres_database,
        warehouse_url=f"duckdb://{tmp_path / 'w.duckdb'}",
    )
    with Strata(settings) as app:
        report = run_import(app, path, workspace="acme")
        assert report["import_id"] == 1
        assert [w.name for w in app.workspaces()] == ["acme"]
    # Opening again applies no migration twice and keeps the data.
    with Strata(settings) as app:
        assert [w.name for w in app.workspaces()] == ["acme"]


def test_a_bad_catalog_url_is_one_clear_error():
    import pytest

    from strata.errors import ConfigError

    with pytest.raises(ConfigError, match="not a URL"):
        Settings.from_env({"STRATA_DATABASE_URL": "catalog.db"})
