"""Warehouse backends, chosen by URL.

>>> wh = connect("duckdb://:memory:")
>>> wh.dialect
'duckdb'
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from strata.errors import ConfigError
from strata.warehouse.base import Batch, LoadResult, Warehouse

__all__ = ["Batch", "LoadResult", "Warehouse", "connect"]


def connect(url: str, *, spark_location: Path | None = None) -> Warehouse:
    """Open the warehouse at ``url``: ``duckdb:///path``, ``duckdb://:memory:``,
    ``postgresql://user@host:port/db`` or ``spark://local[2]`` / ``spark://host:7077``.

    A Spark warehouse keeps its files in the URL's ``?location=``, else in
    ``spark_location``, else in ``STRATA_SPARK_LOCATION`` (default ``$STRATA_HOME/spark``).
    """
    if url.lower().startswith("spark://"):  # before urlsplit, which rejects "local[2]"
        from strata.config import Settings
        from strata.warehouse.spark import SparkWarehouse, parse_url

        master, location = parse_url(url)
        location = location or spark_location or Settings.from_env().spark_location
        return SparkWarehouse(url, master, location)
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
        f"unsupported warehouse URL {url!r}: use duckdb:///path/to/file.duckdb, "
        "postgresql://user@host:5432/database or spark://local[*]"
    )
