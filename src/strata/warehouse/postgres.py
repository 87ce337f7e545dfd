"""PostgreSQL warehouse: bulk loads with COPY, one transaction per load."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator, Sequence

import ibis
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
import sqlglot as sg
from ibis.backends.sql.datatypes import PostgresType

from strata.errors import ConfigError
from strata.warehouse import schema as S
from strata.warehouse.base import Warehouse

_COPY_CHUNK = 1 << 22  # bytes written to COPY at a time


class PostgresWarehouse(Warehouse):
    type_mapper = PostgresType
    dialect = "postgres"

    def __init__(self, url: str, dsn: str):
        self.url, self._dsn = url, dsn
        try:
            self._con = psycopg.connect(dsn, autocommit=True)
        except psycopg.OperationalError as exc:
            first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise ConfigError(
                f"cannot connect to the PostgreSQL warehouse: {first} "
                "(check STRATA_WAREHOUSE_URL and that the server is running)"
            ) from None
        # Reads go through Ibis on a connection of their own, so Ibis's own commits never
        # touch a load transaction.
        self._read_con = psycopg.connect(dsn, autocommit=True)
        self._ibis = ibis.postgres.from_connection(self._read_con)

    def sibling(self) -> PostgresWarehouse:
        return PostgresWarehouse(self.url, self._dsn)

    @property
    def ibis(self) -> ibis.BaseBackend:
        return self._ibis

    def _execute(self, statement: str) -> list[tuple]:
        with self._con.cursor() as cur:
            cur.execute(statement)
            return cur.fetchall() if cur.description else []

    def _execute_count(self, statement: str) -> int:
        with self._con.cursor() as cur:
            cur.execute(statement)
            return cur.rowcount

    def _stage(self, name: str, data: pa.Table, schema: ibis.Schema) -> None:
        ref = sg.table(name, quoted=True)
        self._execute(self._create_table_sql(ref, schema, temp=True) + " ON COMMIT DROP")
        columns = ", ".join(sg.to_identifier(c, quoted=True).sql("postgres") for c in schema)
        copy_sql = f"COPY {ref.sql('postgres')} ({columns}) FROM STDIN (FORMAT csv)"
        # Arrow writes CSV in C++; COPY takes it in large chunks. Empty strings are quoted,
        # so only nulls are unquoted empty fields, which COPY reads as NULL.
        buffer = io.BytesIO()
        pacsv.write_csv(data, buffer, pacsv.WriteOptions(include_header=False))
        view = buffer.getbuffer()
        with self._con.cursor() as cur, cur.copy(copy_sql) as copy:
            for start in range(0, len(view), _COPY_CHUNK):
                copy.write(view[start : start + _COPY_CHUNK])
        del view
        # Fresh temp tables have no statistics; without them the planner guesses badly.
        self._execute(f"ANALYZE {ref.sql('postgres')}")

    def _materialize(self, name: str, expr: ibis.Table) -> None:
        ref = sg.table(name, quoted=True).sql("postgres")
        self._execute(f"CREATE TEMP TABLE {ref} ON COMMIT DROP AS {self._sql(expr)}")
        self._execute(f"ANALYZE {ref}")

    def _create_indexes(self, ws: str) -> None:
        schema = sg.to_identifier(ws, quoted=True).sql("postgres")
        for table, columns, unique in (
            ("customers", ("external_id",), True),
            ("customers", ("customer_id",), True),
            ("events", ("event_key",), True),
            ("events", ("customer_id",), False),
            ("order_items", ("event_id",), False),
            ("memberships", ("segment_id", "customer_id"), False),
            ("predictions", ("customer_id",), False),
        ):
            kind = "UNIQUE INDEX" if unique else "INDEX"
            name = f"{table}_{'_'.join(columns)}_idx"
            self._execute(
                f"CREATE {kind} IF NOT EXISTS {name} ON {schema}.{table} ({', '.join(columns)})"
            )

    def _before_load(self, ws: str) -> None:
        # CREATE INDEX IF NOT EXISTS takes a SHARE lock on the table: two loads holding it
        # and then asking for EXCLUSIVE (``_lock_for_load``) deadlock. Take turns first.
        self._execute(f"SELECT pg_advisory_xact_lock(hashtext('strata load {ws}'))")

    def _lock_for_load(self, ws: str) -> None:
        schema = sg.to_identifier(ws, quoted=True).sql("postgres")
        self._execute(f"LOCK TABLE {schema}.customers, {schema}.events IN EXCLUSIVE MODE")

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._con.transaction():
            yield

    def reclaim(self, workspace_id: int, tables: Sequence[str] | None = None) -> None:
        # Deleted rows are dead tuples until VACUUM frees them (it runs outside a
        # transaction: this connection autocommits).
        ws = self.schema_name(workspace_id)
        for name in tables if tables is not None else S.TABLES:
            self._execute("VACUUM " + self._table_ref(ws, name).sql(dialect=self.dialect))

    def close(self) -> None:
        self._con.close()
        self._read_con.close()
