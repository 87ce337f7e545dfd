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
}


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    warehouse_url: str
    workspace: str = "default"
    #: Folder of the Parquet files of a ``spark://`` warehouse; ``None``: ``home / "spark"``.
    spark_location: Path | None = None

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
        )
