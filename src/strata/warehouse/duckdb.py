"""DuckDB warehouse: one embedded file, the default."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import duckdb
import ibis
import pyarrow as pa
import sqlglot as sg
import sqlglot.expressions as sge
from ibis.backends.sql.datatypes import DuckDBType

from strata.errors import ConfigError
from strata.warehouse import schema as S
from strata.warehouse.base import Warehouse

#: From this many ids on, :meth:`DuckDBWarehouse.id_set` stages them as a table.
ID_SET_STAGED = 64
#: Staged id sets kept registered per connection (a refresh reuses one for every segment).
ID_SETS_KEPT = 4


class DuckDBWarehouse(Warehouse):
    type_mapper = DuckDBType
    dialect = "duckdb"

    def __init__(self, url: str, path: str):
        self.url = url
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(path)
        except duckdb.Error as exc:
            reason = str(exc).splitlines()[0]
            hint = (
                " (another strata command is using it; wait for it to finish)"
                if "lock" in reason.lower()
                else ""
            )
            raise ConfigError(f"cannot open the warehouse file {path}: {reason}{hint}") from None
        # DuckDB draws a progress bar on stdout for long queries; it would corrupt --json.
        self._con.execute("SET enable_progress_bar = false")
        self._ibis = ibis.duckdb.from_connection(self._con)
        self._staged: list[str] = []
        self._temp_tables: list[str] = []
        self._id_sets: dict[tuple[int, ...], str] = {}

    def id_set(self, customer_ids: Sequence[int]) -> ibis.Column | list[int]:
        if len(customer_ids) < ID_SET_STAGED:
            return list(customer_ids)
        key = tuple(sorted({int(i) for i in customer_ids}))
        name = self._id_sets.pop(key, None)
        if name is None:
            name = f"_strata_ids_{uuid.uuid4().hex}"
            # A registered Arrow table is visible to this connection's SQL, Ibis's and ours.
            self._con.register(name, pa.table({"customer_id": pa.array(key, pa.int64())}))
            while len(self._id_sets) >= ID_SETS_KEPT:
                oldest = next(iter(self._id_sets))
                self._con.unregister(self._id_sets.pop(oldest))
        self._id_sets[key] = name  # most recently used last
        return self._ibis.table(name).customer_id

    def sibling(self) -> DuckDBWarehouse:
        # A cursor is a connection of its own to the same database in this process.
        other = object.__new__(DuckDBWarehouse)
        other.url = self.url
        other._con = self._con.cursor()
        other._con.execute("SET enable_progress_bar = false")
        other._ibis = ibis.duckdb.from_connection(other._con)
        other._staged, other._temp_tables, other._id_sets = [], [], {}
        return other

    @property
    def ibis(self) -> ibis.BaseBackend:
        return self._ibis

    def _execute(self, statement: str) -> list[tuple]:
        cur = self._con.execute(statement)
        try:
            return cur.fetchall()
        except duckdb.InvalidInputError:  # statements without a result set
            return []

    def _execute_count(self, statement: str) -> int:
        rows = self._con.execute(statement).fetchall()
        return int(rows[0][0]) if rows else 0

    def _stage(self, name: str, data: pa.Table, schema: ibis.Schema) -> None:
        # A registered Arrow table is read in place: no copy, no row-by-row insert.
        self._con.register(name, data)
        self._staged.append(name)

    def _materialize(self, name: str, expr: ibis.Table) -> None:
        ref = sg.table(name, quoted=True).sql("duckdb")
        self._con.execute(f"CREATE OR REPLACE TEMP TABLE {ref} AS {self._sql(expr)}")
        self._temp_tables.append(ref)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._con.begin()
        try:
            yield
        except BaseException:
            self._con.rollback()
            raise
        else:
            self._con.commit()
        finally:
            for name in self._staged:
                self._con.unregister(name)
            self._staged.clear()
            for ref in self._temp_tables:
                self._con.execute(f"DROP TABLE IF EXISTS {ref}")
            self._temp_tables.clear()

    def reclaim(self, workspace_id: int, tables: Sequence[str] | None = None) -> None:
        # A DELETE only marks rows deleted: their bytes stay in the row group (also when
        # new rows join it), and dropped row groups leave their blocks free, not wiped.
        # So each table is copied and the old one dropped (its row groups go whole), then
        # the free blocks are filled with noise and freed again.
        ws = self.schema_name(workspace_id)
        with self._transaction():
            for name in tables if tables is not None else S.TABLES:
                ref = self._table_ref(ws, name)
                copy = self._table_ref(ws, f"_strata_copy_{name}")
                for statement in (
                    sge.Create(this=copy, kind="TABLE", expression=sg.select("*").from_(ref)),
                    sge.Drop(this=ref, kind="TABLE"),
                    sge.Alter(
                        this=copy,
                        kind="TABLE",
                        actions=[sge.AlterRename(this=sg.table(name, quoted=True))],
                    ),
                ):
                    self._con.execute(statement.sql(dialect="duckdb"))
        self._con.execute("CHECKPOINT")
        free, block = self._con.execute(
            "SELECT free_blocks, block_size FROM pragma_database_size()"
        ).fetchone()
        if free:
            noise = sg.table("_strata_noise", quoted=True)
            rows = int((free + 1) * block // 32) + 1000  # 64 hex characters a row, twice over
            text = sg.parse_one("md5(random()::VARCHAR) || md5(random()::VARCHAR)", read="duckdb")
            source = sge.Table(
                this=sge.Anonymous(this="range", expressions=[sge.Literal.number(rows)])
            )
            fill = sge.Create(
                this=noise, kind="TABLE", expression=sg.select(text.as_("f")).from_(source)
            )
            self._con.execute(fill.sql(dialect="duckdb"))
            self._con.execute("CHECKPOINT")
            self._con.execute(sge.Drop(this=noise, kind="TABLE").sql(dialect="duckdb"))
            self._con.execute("CHECKPOINT")

    def close(self) -> None:
        self._con.close()
