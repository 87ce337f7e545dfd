"""Apache Spark warehouse: Parquet files in a folder, committed by swapping a manifest.

Spark has no transactions and Parquet no ``UPDATE``, so a workspace is a folder whose
``_manifest.json`` names the files ("parts") that make up each table::

    <location>/ws_<id>/_manifest.json         the committed state, replaced atomically
    <location>/ws_<id>/_lock                  flock: one writer per workspace at a time
    <location>/ws_<id>/<table>/v<n>-<hex>/    one part: Parquet files written by Spark
    <location>/ws_<id>/_staging/<hex>/        batch data of the running transaction

A transaction takes the lock, reads the manifest, writes new parts (an append adds a
part; an update or a delete writes the whole table again as one part), then writes the
new manifest beside the old one and ``os.replace``-s it: that rename is the commit.
Parts that no manifest names (an aborted or killed writer's, superseded versions) are
removed by the next writer; the parts of the version before are kept until then, for
readers that read the previous manifest a moment ago. Readers never lock.

Spark's catalog lives in memory, so nothing but the files survives a process. Each
version of a table is read through a temporary view named after it
(``_ws_<id>_<table>_v<n>``, over the parts the manifest names, with the schema it
records); :meth:`SparkWarehouse.table` and ``wh.ibis.table(name, database="ws_<id>")``
look at the manifest first and return the newest version's view.

>>> wh = connect("spark://local[2]?location=/tmp/strata-spark")  # doctest: +SKIP
>>> wh.table(1, "customers").count().execute()  # doctest: +SKIP
4372
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import datetime
import fcntl
import json
import os
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import ibis
import ibis.expr.datatypes as dt
import pyarrow as pa
import pyarrow.parquet as pq
import sqlglot as sg
from ibis.backends.pyspark import Backend as PySparkBackend
from ibis.backends.sql.datatypes import PySparkType
from ibis.common.exceptions import TableNotFound

from strata.errors import ConfigError
from strata.warehouse import schema as S
from strata.warehouse.base import (
    ID_STAGE_SCHEMA,
    MEMBER_STAGE_SCHEMA,
    MemberChange,
    Warehouse,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# Ibis registers a backend's options (``ibis.options.pyspark``) when it is first loaded by
# name; its compiler reads them.
ibis.pyspark  # noqa: B018

MANIFEST = "_manifest.json"
_FORMAT = 1
#: A table made of more parts than this is written again as one part by the next commit.
_MAX_PARTS = 16
_WORKSPACE = re.compile(r"^ws_\d+$")
# Spark reads a path with these characters as a glob pattern or a URI.
_UNSAFE_PATH = re.compile(r"[*?\[\]{}`:\\,]")

_LOG4J = """\
status = error
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = stderr
appender.stderr.type = Console
appender.stderr.name = stderr
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n%ex
"""


# -- the process's Spark session --------------------------------------------------------------
_session = None
_session_master: str | None = None
_session_lock = threading.Lock()


def shared_session(master: str = "local[*]") -> SparkSession:
    """The one SparkSession of this process, started on first use (it takes seconds).

    Logs go to stderr at level ERROR and there is no console progress bar, so stdout
    stays clean for ``--json``; time is UTC. A process can use one master only.

    >>> shared_session("local[2]").conf.get("spark.sql.session.timeZone")  # doctest: +SKIP
    'UTC'
    """
    global _session, _session_master
    with _session_lock:
        if _session is None:
            _session = _start_session(master)
            _session_master = master
        elif master != _session_master:
            raise ConfigError(
                f"this process already runs Spark on {_session_master}; one process can use "
                f"only one Spark master, not also {master}"
            )
        return _session


def _start_session(master: str) -> SparkSession:
    from pyspark.sql import SparkSession

    scratch = Path(tempfile.mkdtemp(prefix="strata-spark-"))
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    builder = (
        SparkSession.builder.master(master)
        .appName("strata")
        .config("spark.sql.catalogImplementation", "in-memory")
        # Where Spark would put managed tables: not the working directory. Ours are not
        # managed tables.
        .config("spark.sql.warehouse.dir", str(scratch / "spark-warehouse"))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        # Standard Parquet timestamps rather than Spark's legacy INT96.
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        # Results come back through Arrow: much faster than row by row.
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
    )
    if master.startswith("local"):
        # 200 shuffle partitions (the default, sized for clusters) make 200 tiny tasks.
        builder = builder.config("spark.sql.shuffle.partitions", "4")
    with _quiet_logs(scratch):
        session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


@contextlib.contextmanager
def _quiet_logs(scratch: Path) -> Iterator[None]:
    """Start the JVM logging errors only, unless the user configured log4j themselves.

    Spark logs its start-up warnings before ``setLogLevel`` can run; log4j reads its
    configuration from this variable, which the JVM inherits (Spark's own
    ``spark.driver.extraJavaOptions`` stays the user's to set).
    """
    conf_dir = os.environ.get("SPARK_CONF_DIR")
    if "LOG4J_CONFIGURATION_FILE" in os.environ or (
        conf_dir and (Path(conf_dir) / "log4j2.properties").exists()
    ):
        yield
        return
    config = scratch / "log4j2.properties"
    config.write_text(_LOG4J)
    os.environ["LOG4J_CONFIGURATION_FILE"] = str(config)
    try:
        yield
    finally:
        del os.environ["LOG4J_CONFIGURATION_FILE"]


def parse_url(url: str) -> tuple[str, Path | None]:
    """The Spark master and the ``location`` query parameter of a ``spark://`` URL.

    >>> parse_url("spark://local[2]?location=/data/strata")
    ('local[2]', PosixPath('/data/strata'))
    >>> parse_url("spark://spark-master:7077")
    ('spark://spark-master:7077', None)
    """
    from urllib.parse import parse_qs

    # Not urlsplit: it reads "local[2]" as a broken IPv6 address.
    rest = url[len("spark://") :] if url.lower().startswith("spark://") else url
    master, _, query = rest.partition("?")
    params = parse_qs(query)
    if unknown := sorted(set(params) - {"location"}):
        raise ConfigError(f"unknown parameter {unknown[0]!r} in {url!r}: only location= is known")
    location = Path(params["location"][-1]).expanduser() if "location" in params else None
    if re.fullmatch(r"local(\[(\d+|\*)\])?", master):
        return master, location
    if re.fullmatch(r"[A-Za-z0-9.\-]+(:\d+)?", master):
        return f"spark://{master if ':' in master else master + ':7077'}", location
    raise ConfigError(
        f"unsupported Spark URL {url!r}: use spark://local[2], spark://local[*] or "
        "spark://host:7077, optionally with ?location=/path/to/folder"
    )


class _Backend(PySparkBackend):
    """Ibis's PySpark backend, reading a workspace ``ws_<id>`` as if it were a database.

    There is no such database: ``table(name, database="ws_1")`` returns the view of the
    newest committed version, and ``list_tables(database="ws_1")`` the manifest's tables.
    """

    #: Set by the warehouse: workspace name -> {table: view} (empty without data).
    _workspace_views = None

    def list_tables(self, *, like: str | None = None, database: Any = None) -> list[str]:
        if (views := self._views_of(database)) is not None:
            return self._filter_with_like(sorted(views), like)
        return super().list_tables(like=like, database=database)

    def table(self, name: str, /, *, database: Any = None) -> ibis.Table:
        if (views := self._views_of(database)) is None:
            return super().table(name, database=database)
        if name not in views:
            raise TableNotFound(name)
        return super().table(views[name])

    def disconnect(self) -> None:
        """Keep the session: it serves the whole process."""

    def _views_of(self, database: Any) -> dict[str, str] | None:
        if isinstance(database, str) and _WORKSPACE.match(database):
            return self._workspace_views(database)
        return None


@dataclass
class _Transaction:
    ws: str
    folder: Path
    lock: IO[str]
    #: The manifest as read under the lock, and the tables as this transaction leaves them.
    committed: dict
    tables: dict
    staging: Path
    #: Parts written by this transaction.
    written: list[str] = field(default_factory=list)
    #: Tables its statements read (they have a view of the pending state), and its views.
    viewed: set[str] = field(default_factory=set)
    views: list[str] = field(default_factory=list)
    done: bool = False

    @property
    def version(self) -> int:
        return self.committed["version"] + 1


class SparkWarehouse(Warehouse):
    """Tables as Parquet files under ``location``; the module docstring tells the layout."""

    # Each transaction reads the manifest in _create_workspace_objects: never skip it.
    _remember_workspaces = False

    type_mapper = PySparkType
    dialect = "pyspark"

    #: One Spark session serves the process; callers take turns on it.
    concurrent = False

    def __init__(self, url: str, master: str, location: Path):
        self.url = url
        self.location = Path(location).expanduser().absolute()
        if _UNSAFE_PATH.search(str(self.location)):
            raise ConfigError(
                f"the Spark location {self.location} has a character Spark reads as a "
                "pattern (one of * ? [ ] { } , ` : \\); choose a folder without them"
            )
        try:
            self.location.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the Spark location {self.location}: {exc}") from None
        # A session of our own over the process's SparkContext: temporary views are
        # per session, so two warehouses (two locations) never see each other's.
        self._session = shared_session(master).newSession()
        self._ibis = _Backend().connect(self._session)
        self._ibis._workspace_views = self._committed_views
        #: Workspace -> [(version, {table: view})], the newest last; two are kept.
        self._shown: dict[str, list[tuple[int, dict[str, str]]]] = {}
        self._txn: _Transaction | None = None
        self._in_transaction = False

    @property
    def ibis(self) -> ibis.BaseBackend:
        return self._ibis

    def drop_workspace(self, workspace_id: int) -> None:
        shutil.rmtree(self.location / self.schema_name(workspace_id), ignore_errors=True)

    def close(self) -> None:
        """Forget this warehouse's views; the Spark session serves the whole process."""
        for versions in self._shown.values():
            for _, views in versions:
                for view in views.values():
                    self._session.catalog.dropTempView(view)
        self._shown.clear()

    # -- reading ---------------------------------------------------------------------------
    def customer_schema(self, workspace_id: int) -> ibis.Schema:
        manifest = _read_manifest(self.location / self.schema_name(workspace_id))
        if manifest and "customers" in manifest["tables"]:
            return _schema(manifest["tables"]["customers"])
        return S.CUSTOMERS

    def _committed_views(self, ws: str) -> dict[str, str]:
        """Views of the committed tables of ``ws`` (table -> view), defined if new."""
        folder = self.location / ws
        manifest = _read_manifest(folder)
        if manifest is None:
            return {}
        shown = self._shown.setdefault(ws, [])
        if shown and shown[-1][0] == manifest["version"]:
            return shown[-1][1]
        views = {}
        for name, entry in manifest["tables"].items():
            views[name] = f"_{ws}_{name}_v{manifest['version']}"
            self._define_view(views[name], folder, entry)
        shown.append((manifest["version"], views))
        # Expressions built on the version before keep working: its files are kept
        # until the next commit. Older views would read removed files.
        while len(shown) > 2:
            for view in shown.pop(0)[1].values():
                self._session.catalog.dropTempView(view)
        return views

    def _define_view(self, name: str, folder: Path, entry: dict) -> None:
        """Make the temporary view ``name`` read the parts of one table version."""
        ddl = _ddl(_schema(entry))
        paths = [str(folder / part["path"]) for part in entry["parts"]]
        # The recorded schema, not Spark's inference: no job to read footers, and parts
        # written before a column was added read it as null.
        if paths:
            frame = self._session.read.schema(ddl).parquet(*paths)
        else:
            frame = self._session.createDataFrame([], ddl)
        frame.createOrReplaceTempView(name)

    # -- transactions ----------------------------------------------------------------------
    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        if self._in_transaction:
            raise RuntimeError("a Spark warehouse transaction is already open")
        self._in_transaction = True
        try:
            yield
            if self._txn is not None:
                self._commit(self._txn)
        except BaseException:
            if self._txn is not None and not self._txn.done:
                for path in self._txn.written:
                    shutil.rmtree(self._txn.folder / path, ignore_errors=True)
            raise
        finally:
            txn, self._txn, self._in_transaction = self._txn, None, False
            if txn is not None:
                try:
                    for view in txn.views:
                        self._session.catalog.dropTempView(view)
                    shutil.rmtree(txn.staging, ignore_errors=True)
                finally:
                    txn.lock.close()  # releases the flock

    def _create_workspace_objects(self, ws: str) -> None:
        """Open the transaction on ``ws``: lock it, read its manifest, clear leftovers."""
        if self._txn is not None:
            if self._txn.ws != ws:
                raise RuntimeError("one Spark warehouse transaction writes one workspace")
            return
        if not self._in_transaction:
            raise RuntimeError("_create_workspace_objects runs inside _transaction()")
        folder = self.location / ws
        folder.mkdir(parents=True, exist_ok=True)
        lock = open(folder / "_lock", "a")  # noqa: SIM115 - held until the transaction ends
        try:
            # Waits while another process writes this workspace (ids are max + n).
            fcntl.flock(lock, fcntl.LOCK_EX)
            committed = _read_manifest(folder) or {"format": _FORMAT, "version": 0, "tables": {}}
            # With the lock held nobody else is writing: whatever the manifest does not
            # name was left by a writer that failed or was killed.
            _collect_garbage(folder, committed)
        except BaseException:
            lock.close()
            raise
        tables = copy.deepcopy(committed["tables"])
        for name, table_schema in S.TABLES.items():
            tables.setdefault(name, {"schema": _schema_json(table_schema), "parts": []})
        self._txn = _Transaction(
            ws=ws,
            folder=folder,
            lock=lock,
            committed=committed,
            tables=tables,
            staging=folder / "_staging" / uuid.uuid4().hex[:12],
        )

    def _commit(self, txn: _Transaction) -> None:
        for name, entry in txn.tables.items():
            if len(entry["parts"]) > _MAX_PARTS:
                self._replace(txn.ws, name, self._unbound(txn.ws, name, _schema(entry)))
        if txn.tables == txn.committed["tables"]:
            return
        old, new = _parts(txn.committed), _parts({"tables": txn.tables})
        manifest = {
            "format": _FORMAT,
            "version": txn.version,
            "tables": txn.tables,
            # Kept until the next commit, for readers that read the previous manifest.
            "retained": sorted(old - new),
        }
        draft = _write_draft(txn.folder, manifest)
        os.replace(draft, txn.folder / MANIFEST)  # the commit
        txn.done = True  # from here on, the new parts are the workspace's state
        _fsync_dir(txn.folder)
        self._committed_views(txn.ws)
        _collect_garbage(txn.folder, manifest)

    def _require_txn(self) -> _Transaction:
        if self._txn is None:
            raise RuntimeError("no Spark warehouse transaction is open")
        return self._txn

    def _unbound(self, ws: str, name: str, schema: ibis.Schema) -> ibis.Table:
        # The transaction's statements read its own view of a table, pending parts included.
        txn = self._require_txn()
        if name not in txn.viewed:
            txn.viewed.add(name)
            self._show_pending(name)
        return ibis.table(_stored_schema(schema), name=self._pending_view(ws, name))

    def _pending_view(self, ws: str, table: str) -> str:
        return f"_txn_{ws}_{table}"

    def _show_pending(self, table: str) -> None:
        """(Re)define the transaction's view of ``table`` once it is read or changes."""
        txn = self._require_txn()
        if table in txn.viewed:
            view = self._pending_view(txn.ws, table)
            self._define_view(view, txn.folder, txn.tables[table])
            if view not in txn.views:
                txn.views.append(view)

    # -- writing parts ---------------------------------------------------------------------
    def _insert(self, ws: str, table: str, rows: ibis.Table) -> int:
        """Append ``rows`` to ``table`` as a new part; returns how many rows it holds."""
        return self._write_part(table, rows, replace=False)

    def _replace(self, ws: str, table: str, rows: ibis.Table) -> int:
        """Make ``rows`` the whole content of ``table``, as one new part."""
        return self._write_part(table, rows, replace=True)

    def _write_part(self, table: str, rows: ibis.Table, *, replace: bool) -> int:
        txn = self._require_txn()
        entry = txn.tables[table]
        schema = _schema(entry)
        path = f"{table}/v{txn.version:06d}-{uuid.uuid4().hex[:8]}"
        txn.written.append(path)
        self._write(rows, schema, txn.folder / path)
        count = _sync_part(txn.folder / path)
        added = [{"path": path, "columns": list(schema.names), "rows": count}] if count else []
        if not count:
            shutil.rmtree(txn.folder / path)
        if replace:
            for old in entry["parts"]:  # written earlier by this transaction: garbage now
                if old["path"] in txn.written:
                    shutil.rmtree(txn.folder / old["path"], ignore_errors=True)
            entry["parts"] = added
        else:
            entry["parts"] = entry["parts"] + added
        if replace or count:
            self._show_pending(table)
        return count

    def _stage(self, name: str, data: pa.Table, schema: ibis.Schema) -> None:
        txn = self._require_txn()
        txn.staging.mkdir(parents=True, exist_ok=True)
        path = txn.staging / f"{name.lstrip('_')}.parquet"  # Spark skips names starting "_"
        pq.write_table(data, path)
        self._session.read.schema(_ddl(schema)).parquet(str(path)).createOrReplaceTempView(name)
        txn.views.append(name)

    def _materialize(self, name: str, expr: ibis.Table) -> None:
        txn = self._require_txn()
        path = txn.staging / name.lstrip("_")
        # Run once: the members query may be a whole segment's rules.
        self._write(expr, expr.schema(), path)
        frame = self._session.read.schema(_ddl(expr.schema())).parquet(str(path))
        frame.createOrReplaceTempView(name)
        txn.views.append(name)

    def _write(self, rows: ibis.Table, schema: ibis.Schema, path: Path) -> None:
        """Run ``rows`` once into Parquet files at ``path``, as exactly ``schema``.

        The columns are cast by Spark, not Ibis: Ibis leaves out casts it thinks
        needless, but Spark reads the literal ``0.5`` as a DECIMAL and ``7`` as an INT,
        and a file must hold the types its manifest records.
        """
        from pyspark.sql import functions as F

        self._ibis._run_pre_execute_hooks(rows)  # its in-memory tables and UDFs, as ibis does
        frame = self._session.sql(self._ibis.compile(rows))
        frame.select(
            *[
                (frame[name] if name in rows.columns else F.lit(None))
                .cast(PySparkType.from_ibis(_stored_type(dtype)).sql("spark"))
                .alias(name)
                for name, dtype in schema.items()
            ]
        ).write.parquet(str(path))

    def _execute(self, statement: str) -> list[tuple]:
        return [tuple(row) for row in self._session.sql(statement).collect()]

    # -- what base.py does with UPDATE and DELETE ------------------------------------------
    def _add_customer_columns(
        self, ws: str, existing: ibis.Schema, columns: dict[str, dt.DataType]
    ) -> ibis.Schema:
        # Only the schema changes: parts written before read the new columns as null.
        # ``existing`` was read before the lock; the manifest read under it is the truth.
        txn = self._require_txn()
        entry = txn.tables["customers"]
        schema = dict(_schema(entry).items())
        for name, dtype in columns.items():
            S.check_column_name(name)
            schema.setdefault(name, dtype)
        entry["schema"] = _schema_json(ibis.schema(schema))
        self._show_pending("customers")
        return ibis.schema(schema)

    def _load_customers(self, ws: str, data: pa.Table, cust_schema: ibis.Schema) -> tuple[int, int]:
        if not data.num_rows:
            return 0, 0
        stage, attrs = self._stage_customer_batch(data, cust_schema)
        customers = self._unbound(ws, "customers", cust_schema)

        # The batch's values, renamed so that they sit beside the stored ones after a join.
        new_values = stage.select(_key=stage.external_id, **{f"_new_{c}": stage[c] for c in attrs})
        both = customers.inner_join(new_values, customers.external_id == new_values._key)
        updated = int(self._scalar(both.filter(_changed(both, attrs)).count())) if attrs else 0

        max_id = int(self._scalar(customers.customer_id.max().fill_null(0)))
        new = stage.anti_join(customers, stage.external_id == customers.external_id)
        now_ts = ibis.now().cast("timestamp")
        rows = new.select(
            # Ids follow the batch order, as in base.py.
            customer_id=(new._row + max_id + 1).cast("int64"),
            external_id=new.external_id,
            **{c: new[c] for c in attrs},
            created_at=now_ts,
            updated_at=now_ts,
        )
        if not updated:
            return self._insert(ws, "customers", rows), 0

        # Parquet has no UPDATE: write the table again, changed values merged in, with the
        # new customers, as one part.
        stored = sum(p["rows"] for p in self._require_txn().tables["customers"]["parts"])
        j = customers.left_join(new_values, customers.external_id == new_values._key)
        changed = _changed(j, attrs)
        merged = j.select(
            **{
                c: j[f"_new_{c}"].fill_null(j[c]) if c in attrs else j[c]
                for c in cust_schema.names
                if c != "updated_at"
            },
            updated_at=changed.ifelse(now_ts, j.updated_at),
        )
        written = self._replace(
            ws,
            "customers",
            _typed(merged, cust_schema).union(_typed(rows, cust_schema), distinct=False),
        )
        return written - stored, updated

    def _apply_staged_members(
        self, ws: str, segment_id: int, at: datetime.datetime, restricted: bool
    ) -> MemberChange:
        memberships = self._unbound(ws, "memberships", S.MEMBERSHIPS)
        staged = ibis.table(MEMBER_STAGE_SCHEMA, name="_stage_members")
        current = all_current = memberships.filter(
            memberships.segment_id == segment_id, memberships.left_at.isnull()
        )
        if restricted:
            within = ibis.table(ID_STAGE_SCHEMA, name="_stage_within")
            staged = staged.semi_join(within, staged.customer_id == within.customer_id)
            current = current.semi_join(within, current.customer_id == within.customer_id)
        at_lit = ibis.literal(at.replace(tzinfo=None), type="timestamp")
        joiners = staged.anti_join(current, staged.customer_id == current.customer_id)
        leavers = current.anti_join(staged, current.customer_id == staged.customer_id)
        new_rows = joiners.select(
            segment_id=ibis.literal(segment_id, type="int64"),
            customer_id=joiners.customer_id,
            joined_at=at_lit,
            left_at=ibis.null("timestamp"),
            confidence=joiners.confidence,
        )
        joined = int(self._scalar(joiners.count()))
        left = int(self._scalar(leavers.count()))
        if left:
            # Parquet has no UPDATE: write memberships again with ``left_at`` set.
            gone = leavers.select(_gone=leavers.customer_id)
            m = memberships.left_join(
                gone,
                (memberships.customer_id == gone._gone)
                & (memberships.segment_id == segment_id)
                & memberships.left_at.isnull(),
            )
            closed = m.select(
                segment_id=m.segment_id,
                customer_id=m.customer_id,
                joined_at=m.joined_at,
                left_at=m._gone.isnull().ifelse(m.left_at, at_lit),
                confidence=m.confidence,
            )
            self._replace(
                ws,
                "memberships",
                _typed(closed, S.MEMBERSHIPS).union(
                    _typed(new_rows, S.MEMBERSHIPS), distinct=False
                ),
            )
        elif joined:
            self._insert(ws, "memberships", new_rows)
        members = int(self._scalar(all_current.count()))
        return MemberChange(joined=joined, left=left, members=members)

    def _add_prediction_columns(self, ws: str) -> None:
        txn = self._require_txn()
        entry = txn.tables["predictions"]
        if list(_schema(entry).names) != list(S.PREDICTIONS.names):
            # Parts written before a column existed read it as null (Parquet by name).
            entry["schema"] = _schema_json(S.PREDICTIONS)

    def _swap_predictions(self, ws: str, prediction_type: str, staged: ibis.Table) -> int:
        p = self._unbound(ws, "predictions", S.PREDICTIONS)
        kept = _typed(p.filter(p.prediction_type != prediction_type), S.PREDICTIONS)
        self._replace(ws, "predictions", kept.union(_typed(staged, S.PREDICTIONS), distinct=False))
        return int(self._scalar(staged.count()))

    def delete_members(self, workspace_id: int, segment_id: int) -> int:
        """Forget every membership row of a deleted segment; returns how many went."""
        ws = self.schema_name(workspace_id)
        with self._transaction():
            self._create_workspace_objects(ws)
            m = self._unbound(ws, "memberships", S.MEMBERSHIPS)
            gone = int(self._scalar(m.filter(m.segment_id == int(segment_id)).count()))
            if gone:
                self._replace(ws, "memberships", m.filter(m.segment_id != int(segment_id)))
            return gone

    def delete_customers(
        self, workspace_id: int, customer_ids: Sequence[int], external_ids: Sequence[str]
    ) -> dict[str, int]:
        ws = self.schema_name(workspace_id)
        ids, exts = [int(i) for i in customer_ids], [str(e) for e in external_ids]
        counts: dict[str, int] = {}
        with self._transaction():
            self._create_workspace_objects(ws)
            for name, table_schema in S.TABLES.items():
                t = self._unbound(ws, name, table_schema)
                by_external = name == "synthetic_truth"
                values = exts if by_external else ids
                gone = t["external_id" if by_external else "customer_id"].isin(values)
                counts[name] = int(self._scalar(t.filter(gone).count())) if values else 0
                if counts[name]:
                    self._replace(ws, name, t.filter(~gone))
        return counts

    def delete_events_before(self, workspace_id: int, cutoff: datetime.datetime) -> dict[str, int]:
        ws = self.schema_name(workspace_id)
        when = ibis.timestamp(cutoff.replace(tzinfo=None))
        with self._transaction():
            self._create_workspace_objects(ws)
            e = self._unbound(ws, "events", S.EVENTS)
            i = self._unbound(ws, "order_items", S.ORDER_ITEMS)
            old = e.filter(e.timestamp < when)
            n_events = int(self._scalar(old.count()))
            n_items = 0
            if n_events:
                old_ids = old.select("event_id")
                n_items = int(self._scalar(i.semi_join(old_ids, "event_id").count()))
                if n_items:
                    self._replace(ws, "order_items", i.anti_join(old_ids, "event_id"))
                self._replace(ws, "events", e.filter(e.timestamp >= when))
        return {"events": n_events, "order_items": n_items}

    def reclaim(self, workspace_id: int, tables: Sequence[str] | None = None) -> None:
        """Delete the parts the last commit superseded now, not at the next commit.

        Readers of the version before then fail and read again; an erased customer's
        rows must not wait on disk for the next write.
        """
        folder = self.location / self.schema_name(workspace_id)
        if not folder.is_dir():
            return
        with open(folder / "_lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            manifest = _read_manifest(folder)
            if manifest is None:
                return
            if manifest.get("retained"):
                manifest["retained"] = []
                os.replace(_write_draft(folder, manifest), folder / MANIFEST)
                _fsync_dir(folder)
            _collect_garbage(folder, manifest)


# -- helpers ----------------------------------------------------------------------------------
def _changed(joined: ibis.Table, attrs: list[str]) -> ibis.BooleanValue:
    """Rows whose batch value (``_new_<c>``) is set and differs from the stored one."""
    return ibis.or_(
        *[
            joined[f"_new_{c}"].notnull() & ~joined[f"_new_{c}"].identical_to(joined[c])
            for c in attrs
        ]
    )


def _stored_type(dtype: dt.DataType) -> dt.DataType:
    # Spark has no JSON type: JSON is stored as its text.
    return dt.string if dtype.is_json() else dtype


def _stored_schema(schema: ibis.Schema) -> ibis.Schema:
    return ibis.schema({n: _stored_type(t) for n, t in schema.items()})


def _typed(rows: ibis.Table, schema: ibis.Schema) -> ibis.Table:
    """``rows`` with exactly the columns of ``schema`` in its stored types; missing ones null."""
    return rows.select(
        **{
            name: (rows[name] if name in rows.columns else ibis.null()).cast(_stored_type(dtype))
            for name, dtype in schema.items()
        }
    )


def _ddl(schema: ibis.Schema) -> str:
    """``schema`` in stored types as Spark DDL: ```customer_id` BIGINT, …``."""
    return ", ".join(
        f"{sg.to_identifier(name, quoted=True).sql('spark')} "
        f"{PySparkType.from_ibis(_stored_type(dtype)).sql('spark')}"
        for name, dtype in schema.items()
    )


def _schema_json(schema: ibis.Schema) -> dict[str, str]:
    return {name: str(dtype) for name, dtype in schema.items()}


def _schema(entry: dict) -> ibis.Schema:
    return ibis.schema({name: dt.dtype(t) for name, t in entry["schema"].items()})


def _parts(manifest: dict) -> set[str]:
    return {p["path"] for entry in manifest["tables"].values() for p in entry["parts"]}


def _read_manifest(folder: Path) -> dict | None:
    try:
        with open(folder / MANIFEST) as f:
            manifest = json.load(f)
    except FileNotFoundError:
        return None
    if manifest.get("format") != _FORMAT:
        raise ConfigError(
            f"{folder / MANIFEST} has format {manifest.get('format')!r}, not {_FORMAT}: it was "
            "written by another version of Strata"
        )
    return manifest


def _write_draft(folder: Path, manifest: dict) -> Path:
    """Write ``manifest`` beside the current one, safely on disk; returns its path."""
    draft = folder / f"{MANIFEST}.{uuid.uuid4().hex[:8]}.tmp"
    with open(draft, "w") as f:
        json.dump(manifest, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    return draft


def _collect_garbage(folder: Path, manifest: dict) -> None:
    """Remove parts, staging and manifest drafts that ``manifest`` does not name.

    Only call it holding the workspace's lock: another writer's parts are not named yet.
    """
    keep = _parts(manifest) | set(manifest.get("retained", []))
    tables = set(S.TABLES) | set(manifest["tables"])
    for table in tables:
        table_dir = folder / table
        if not table_dir.is_dir():
            continue
        for part in table_dir.iterdir():
            if f"{table}/{part.name}" not in keep:
                shutil.rmtree(part, ignore_errors=True)
    shutil.rmtree(folder / "_staging", ignore_errors=True)
    for draft in folder.glob(f"{MANIFEST}.*.tmp"):
        draft.unlink(missing_ok=True)


def _sync_part(path: Path) -> int:
    """Flush a part Spark wrote to disk (it does not fsync); returns its number of rows."""
    rows = 0
    for file in path.glob("*.parquet"):
        rows += pq.read_metadata(file).num_rows
        fd = os.open(file, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    _fsync_dir(path)
    _fsync_dir(path.parent)
    return rows


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
