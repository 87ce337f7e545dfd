"""Warehouse backends, chosen by URL.

>>> wh = connect("duckdb://:memory:")
>>> wh.dialect
'duckdb'
"""

from __future__ import annotations

from urllib.parse import urlsplit

from strata.errors import ConfigError
from strata.warehouse.base import Batch, LoadResult, Warehouse

__all__ = ["Batch", "LoadResult", "Warehouse", "connect"]


def connect(url: str) -> Warehouse:
    """Open the warehouse at ``url``: ``duckdb:///path``, ``duckdb://:memory:`` or
    ``postgresql://user@host:port/db``."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "duckdb":
        from strata.warehouse.duckdb import DuckDBWarehouse

        path = url[len("duckdb://") :]
        if path in {"", ":memory:", "/:memory:"}:
            path = ":memory:"
        elif path.startswith("//"):
            path = path[1:]  # duckdb:////abs/path, as SQLAlchemy writes absolute paths
        return DuckDBWarehouse(url, path)
    if scheme in {"postgresql", "postgres", "postgresql+psycopg"}:
        from strata.warehouse.postgres import PostgresWarehouse

        return PostgresWarehouse(url, url.replace("postgresql+psycopg://", "postgresql://", 1))
    raise ConfigError(
        f"unsupported warehouse URL {url!r}: use duckdb:///path/to/file.duckdb or "
        "postgresql://user@host:5432/database"
    )
