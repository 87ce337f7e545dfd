"""The warehouse: customers, events, memberships and predictions, read through Ibis.

A :class:`Warehouse` is chosen by URL (:func:`strata.warehouse.connect`). Callers
read with Ibis expressions (:meth:`Warehouse.table`) and write through
:meth:`Warehouse.load`, which is atomic. Backends differ only in how they connect,
stage Arrow data and run a transaction; the statements themselves are Ibis
expressions or sqlglot trees compiled for the backend's dialect, never strings
assembled from user input.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import ibis
import ibis.expr.datatypes as dt
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlglot as sg
import sqlglot.expressions as sge

from strata.errors import NotFound
from strata.warehouse import schema as S


@dataclass
class Batch:
    """Normalised rows ready to load into one workspace.

    * ``customers``: ``external_id`` (unique) and any attribute columns;
    * ``events``: ``external_id, event_type, timestamp, revenue, currency, order_id,
      properties`` (JSON text) and ``event_key`` (the natural key);
    * ``items``: order lines, ``event_key, line_no, product_id, product_name, quantity,
      unit_price``; they are stored for the events this load creates.
    """

    customers: pa.Table
    events: pa.Table | None = None
    items: pa.Table | None = None
    truth: pa.Table | None = None


@dataclass
class MemberChange:
    """What one evaluation of a segment changed in the memberships table."""

    joined: int = 0
    left: int = 0
    #: Current members after the change (all of them, also when restricted).
    members: int = 0


MEMBER_STAGE_SCHEMA = ibis.schema({"customer_id": "int64", "confidence": "float64"})
ID_STAGE_SCHEMA = ibis.schema({"customer_id": "int64"})


@dataclass
class LoadResult:
    customers_created: int = 0
    customers_updated: int = 0
    events_created: int = 0
    duplicates_skipped: int = 0
    items_created: int = 0
    seconds: float = 0.0
    extra: dict[str, int] = field(default_factory=dict)


EVENT_STAGE_SCHEMA = ibis.schema(
    {
        "_row": "int64",
        "external_id": "string",
        "event_type": "string",
        "timestamp": "timestamp",
        "revenue": "float64",
        "currency": "string",
        "order_id": "string",
        "properties": "json",
        "event_key": "string",
    }
)
ITEM_STAGE_SCHEMA = ibis.schema(
    {
        "_event_id": "int64",
        "line_no": "int32",
        "product_id": "string",
        "product_name": "string",
        "quantity": "float64",
        "unit_price": "float64",
    }
)


class Warehouse:
    """Base class of the warehouse backends. Subclasses set ``dialect`` and the hooks."""

    dialect: str = ""
    #: ibis's mapping between its types and the backend's (``ibis.backends.sql.datatypes``).
    type_mapper: type
    url: str = ""

    # -- hooks a backend provides ---------------------------------------------------------
    @property
    def ibis(self) -> ibis.BaseBackend:  # pragma: no cover - abstract
        raise NotImplementedError

    def _execute(self, statement: str) -> list[tuple]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _stage(self, name: str, data: pa.Table, schema: ibis.Schema) -> None:
        """Make ``data`` readable as the table ``name`` until the transaction ends."""
        raise NotImplementedError  # pragma: no cover

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:  # pragma: no cover - abstract
        raise NotImplementedError
        yield

    def _before_load(self, ws: str) -> None:
        """First thing in a load's transaction, before its tables are made sure of."""

    def _lock_for_load(self, ws: str) -> None:
        """Keep other writers out of ``ws`` until the transaction ends (ids are max + n)."""

    #: Whether :meth:`sibling` gives a connection of its own that another thread may use
    #: while this one works (false: callers must take turns).
    concurrent: bool = True

    def sibling(self) -> Warehouse:
        """The same warehouse on a connection of its own, for another thread.

        Readers on siblings see committed data while a load runs; writers must still
        take turns (a load numbers new rows from the current maximum).
        """
        return self

    def close(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- naming ----------------------------------------------------------------------------
    @staticmethod
    def schema_name(workspace_id: int) -> str:
        return f"ws_{int(workspace_id)}"

    def _table_ref(self, ws: str, name: str) -> sge.Table:
        return sg.table(name, db=ws, quoted=True)

    def _unbound(self, ws: str, name: str, schema: ibis.Schema) -> ibis.Table:
        return ibis.table(schema, name=name, database=ws)

    def _sql(self, expr: ibis.Expr | sge.Expression) -> str:
        if isinstance(expr, sge.Expression):
            return expr.sql(dialect=self.dialect)
        return ibis.to_sql(expr, dialect=self.dialect)

    def _column_def(self, name: str, dtype: dt.DataType) -> sge.ColumnDef:
        return sge.ColumnDef(
            this=sg.to_identifier(name, quoted=True), kind=self.type_mapper.from_ibis(dtype)
        )

    def _create_table_sql(self, ref: sge.Table, schema: ibis.Schema, *, temp: bool = False) -> str:
        columns = [self._column_def(name, dtype) for name, dtype in schema.items()]
        props = sge.Properties(expressions=[sge.TemporaryProperty()]) if temp else None
        create = sge.Create(
            this=sge.Schema(this=ref, expressions=columns),
            kind="TABLE",
            exists=not temp,
            properties=props,
        )
        return create.sql(dialect=self.dialect)

    # -- workspaces -----------------------------------------------------------------------
    def _create_workspace_objects(self, ws: str) -> None:
        self._execute(
            sge.Create(this=sg.to_identifier(ws, quoted=True), kind="SCHEMA", exists=True).sql(
                dialect=self.dialect
            )
        )
        for name, table_schema in S.TABLES.items():
            self._execute(self._create_table_sql(self._table_ref(ws, name), table_schema))
        self._create_indexes(ws)

    def _create_indexes(self, ws: str) -> None:
        """Backends with cheap indexes add them here."""

    #: Whether a workspace's tables, once committed, need no ``CREATE … IF NOT EXISTS``
    #: again from this connection (a refresh applies many segments in a row).
    _remember_workspaces = True

    def _ensure_workspace_objects(self, ws: str) -> None:
        if ws not in self.__dict__.setdefault("_ready", set()):
            self._create_workspace_objects(ws)

    def _workspace_committed(self, ws: str) -> None:
        if self._remember_workspaces:
            self.__dict__.setdefault("_ready", set()).add(ws)

    def id_set(self, customer_ids: Sequence[int]) -> ibis.Column | list[int]:
        """What ``column.isin(...)`` takes to select ``customer_ids``.

        Ibis and sqlglot spend time on every node of an expression, and a list of literals
        is a node per id repeated wherever the rule restricts a table: 8,000 ids made one
        incremental refresh take seconds of compiling. Backends that can stage the ids
        as a table of their own return a column of it instead (a semi-join).
        """
        return list(customer_ids)

    def drop_workspace(self, workspace_id: int) -> None:
        """Delete everything a workspace holds (its schema and all its tables)."""
        ws = self.schema_name(workspace_id)
        drop = sge.Drop(
            this=sg.to_identifier(ws, quoted=True), kind="SCHEMA", exists=True, cascade=True
        )
        with self._transaction():
            self._execute(drop.sql(dialect=self.dialect))
        self.__dict__.get("_ready", set()).discard(ws)

    def table(self, workspace_id: int, name: str) -> ibis.Table:
        """An Ibis table of one workspace, for reading.

        >>> wh.table(ws_id, "customers").count().execute()  # doctest: +SKIP
        4372
        """
        from ibis.common.exceptions import TableNotFound

        try:
            return self.ibis.table(name, database=self.schema_name(workspace_id))
        except TableNotFound:
            raise NotFound(
                "this workspace holds no data yet: import a file or run `strata generate` first"
            ) from None

    def customer_schema(self, workspace_id: int) -> ibis.Schema:
        """Columns of the workspace's ``customers`` (the built-in ones if it has no data yet)."""
        ws = self.schema_name(workspace_id)
        try:
            if "customers" in self.ibis.list_tables(database=ws):
                return self.table(workspace_id, "customers").schema()
        except Exception:  # no such schema yet: each backend raises its own error type
            pass
        return S.CUSTOMERS

    def _add_customer_columns(
        self, ws: str, existing: ibis.Schema, columns: dict[str, dt.DataType]
    ) -> ibis.Schema:
        """Add typed attribute columns that ``customers`` lacks; returns the new schema."""
        for name, dtype in columns.items():
            S.check_column_name(name)
            if name in existing:
                continue
            alter = sge.Alter(
                this=self._table_ref(ws, "customers"),
                kind="TABLE",
                actions=[self._column_def(name, dtype)],
            )
            self._execute(alter.sql(dialect=self.dialect))
            existing = ibis.schema({**existing, name: dtype})
        return existing

    # -- loading --------------------------------------------------------------------------
    def load(
        self,
        workspace_id: int,
        batch: Batch,
        *,
        import_id: int | None = None,
        new_columns: dict[str, dt.DataType] | None = None,
        dry_run: bool = False,
        customer_limit: Callable[[int], None] | None = None,
    ) -> LoadResult:
        """Upsert customers and add new events and order lines, all or nothing.

        Customers are matched on ``external_id``: new ones are created, known ones get
        the non-empty attributes of the batch. Events whose ``event_key`` is already
        stored (or repeated within the batch) are skipped, so loading the same batch
        twice changes nothing. ``new_columns`` become typed ``customers`` columns. With
        ``dry_run`` everything runs and is counted, then rolled back.

        ``customer_limit(total)`` is called with the workspace's customer count after
        the customers are loaded, inside the transaction and under the load lock: it
        raises to refuse the load (a plan's limit, :mod:`strata.plans`), and then
        nothing is written, and two loads at once cannot both pass it.
        """
        started = time.perf_counter()
        ws = self.schema_name(workspace_id)
        result = LoadResult()
        cust_schema = self.customer_schema(workspace_id)
        try:
            with self._transaction():
                self._before_load(ws)
                self._create_workspace_objects(ws)
                self._lock_for_load(ws)
                cust_schema = self._add_customer_columns(ws, cust_schema, new_columns or {})
                result.customers_created, result.customers_updated = self._load_customers(
                    ws, batch.customers, cust_schema
                )
                if customer_limit is not None and result.customers_created:
                    customers = self._unbound(ws, "customers", cust_schema)
                    customer_limit(int(self._scalar(customers.count())))
                _fault_point("customers")
                if batch.events is not None and batch.events.num_rows:
                    created, skipped, items = self._load_events(ws, batch, import_id, cust_schema)
                    result.events_created, result.duplicates_skipped = created, skipped
                    result.items_created = items
                _fault_point("events")
                if batch.truth is not None and batch.truth.num_rows:
                    self._load_truth(ws, batch.truth)
                if dry_run:
                    raise _DryRun
        except _DryRun:
            pass
        result.seconds = time.perf_counter() - started
        return result

    def _load_customers(self, ws: str, data: pa.Table, cust_schema: ibis.Schema) -> tuple[int, int]:
        if not data.num_rows:
            return 0, 0
        stage, attrs = self._stage_customer_batch(data, cust_schema)
        customers = self._unbound(ws, "customers", cust_schema)

        # Which known customers get a new value for at least one attribute?
        joined = stage.inner_join(customers, stage.external_id == customers.external_id)
        changed = (
            ibis.or_(*[stage[c].notnull() & ~stage[c].identical_to(customers[c]) for c in attrs])
            if attrs
            else ibis.literal(False)
        )
        updated = int(self._scalar(joined.filter(changed).count()))
        if updated and attrs:
            self._execute(self._update_customers_sql(ws, attrs))

        max_id = int(self._scalar(customers.customer_id.max().fill_null(0)))
        new = stage.anti_join(customers, stage.external_id == customers.external_id)
        now_ts = ibis.now().cast("timestamp")
        rows = new.select(
            # Ids follow the batch order; rows already stored leave gaps, which is fine and
            # spares a sort of the whole batch.
            customer_id=(new._row + max_id + 1).cast("int64"),
            external_id=new.external_id,
            **{c: new[c] for c in attrs},
            created_at=now_ts,
            updated_at=now_ts,
        )
        created = self._insert(ws, "customers", rows)
        return created, updated

    def _stage_customer_batch(
        self, data: pa.Table, cust_schema: ibis.Schema
    ) -> tuple[ibis.Table, list[str]]:
        """Stage a batch of customers as ``_stage_customers`` (with its row number
        ``_row``); returns the staged table and the attribute columns it sets."""
        attrs = [c for c in data.column_names if c != "external_id"]
        stage_schema = ibis.schema(
            {"_row": "int64", "external_id": "string", **{c: cust_schema[c] for c in attrs}}
        )
        data = data.select(["external_id", *attrs]).add_column(
            0, "_row", pa.array(range(data.num_rows), pa.int64())
        )
        self._stage("_stage_customers", _conform(data, stage_schema), stage_schema)
        stage = ibis.table(stage_schema, name="_stage_customers")
        return stage, attrs

    def _update_customers_sql(self, ws: str, attrs: list[str]) -> str:
        target = sg.table("customers", db=ws, quoted=True).as_("c")
        s = sg.to_identifier("s")
        sets = [
            sge.EQ(
                this=sg.column(c, quoted=True),
                expression=sge.Coalesce(
                    this=sg.column(c, "s", quoted=True),
                    expressions=[sg.column(c, "c", quoted=True)],
                ),
            )
            for c in attrs
        ]
        sets.append(
            sge.EQ(
                this=sg.column("updated_at", quoted=True),
                expression=sge.Cast(
                    this=sge.CurrentTimestamp(), to=sge.DataType.build("TIMESTAMP")
                ),
            )
        )
        changed = sge.or_(
            *[
                sge.and_(
                    sge.Not(
                        this=sge.Is(this=sg.column(c, "s", quoted=True), expression=sge.Null())
                    ),
                    sge.NullSafeNEQ(
                        this=sg.column(c, "s", quoted=True),
                        expression=sg.column(c, "c", quoted=True),
                    ),
                )
                for c in attrs
            ]
        )
        where = sge.and_(
            sge.EQ(
                this=sg.column("external_id", "c", quoted=True),
                expression=sg.column("external_id", "s", quoted=True),
            ),
            changed,
        )
        update = sge.Update(
            this=target,
            expressions=sets,
            from_=sge.From(this=sg.table("_stage_customers", quoted=True).as_(s)),
            where=sge.Where(this=where),
        )
        return update.sql(dialect=self.dialect)

    def _load_events(
        self, ws: str, batch: Batch, import_id: int | None, cust_schema: ibis.Schema
    ) -> tuple[int, int, int]:
        data = _first_of_each_key(batch.events)
        repeated = batch.events.num_rows - data.num_rows
        data = data.add_column(0, "_row", pa.array(np.arange(data.num_rows, dtype=np.int64)))
        self._stage("_stage_events", _conform(data, EVENT_STAGE_SCHEMA), EVENT_STAGE_SCHEMA)
        stage = ibis.table(EVENT_STAGE_SCHEMA, name="_stage_events")
        customers = self._unbound(ws, "customers", cust_schema)
        events = self._unbound(ws, "events", S.EVENTS)

        fresh = stage.anti_join(events, stage.event_key == events.event_key)
        fresh = fresh.inner_join(customers, fresh.external_id == customers.external_id)
        max_id = int(self._scalar(events.event_id.max().fill_null(0)))
        rows = fresh.select(
            event_id=(fresh._row + max_id + 1).cast("int64"),
            customer_id=fresh.customer_id,
            event_type=fresh.event_type,
            timestamp=fresh.timestamp,
            revenue=fresh.revenue,
            currency=fresh.currency,
            order_id=fresh.order_id,
            properties=fresh.properties,
            event_key=fresh.event_key,
            import_id=ibis.literal(import_id, type="int64"),
        )
        created = self._insert(ws, "events", rows)
        items_created = 0
        if batch.items is not None and batch.items.num_rows and created:
            # Each line finds its event by the event's place in the batch: an integer join.
            event_row = pc.index_in(
                batch.items.column("event_key"), value_set=data.column("event_key")
            )
            items = batch.items.append_column(
                "_event_id", pc.add(pc.cast(event_row, pa.int64()), max_id + 1)
            ).filter(pc.is_valid(event_row))
            self._stage("_stage_items", _conform(items, ITEM_STAGE_SCHEMA), ITEM_STAGE_SCHEMA)
            staged = ibis.table(ITEM_STAGE_SCHEMA, name="_stage_items")
            new_events = events.filter(events.event_id > max_id)
            joined = staged.inner_join(new_events, staged._event_id == new_events.event_id)
            items_created = self._insert(
                ws,
                "order_items",
                joined.select(
                    event_id=new_events.event_id,
                    customer_id=new_events.customer_id,
                    line_no=staged.line_no,
                    product_id=staged.product_id,
                    product_name=staged.product_name,
                    quantity=staged.quantity,
                    unit_price=staged.unit_price,
                ),
            )
        return created, data.num_rows - created + repeated, items_created

    def _load_truth(self, ws: str, truth: pa.Table) -> None:
        self._stage("_stage_truth", _conform(truth, S.SYNTHETIC_TRUTH), S.SYNTHETIC_TRUTH)
        stage = ibis.table(S.SYNTHETIC_TRUTH, name="_stage_truth")
        stored = self._unbound(ws, "synthetic_truth", S.SYNTHETIC_TRUTH)
        self._insert(
            ws, "synthetic_truth", stage.anti_join(stored, stage.external_id == stored.external_id)
        )

    # -- memberships ----------------------------------------------------------------------
    def apply_members(
        self,
        workspace_id: int,
        segment_id: int,
        members: ibis.Table | pa.Table,
        at: datetime.datetime,
        *,
        within: ibis.Table | pa.Table | None = None,
    ) -> MemberChange:
        """Make ``members`` the current members of a segment, recording who joined and left.

        ``members`` has a unique ``customer_id`` (and optionally ``confidence``): an Ibis
        expression over this warehouse's tables or an Arrow table. Customers not yet
        current members get a row ``joined_at = at``; current members missing from
        ``members`` get ``left_at = at``. With ``within`` (customer ids), only those
        customers are considered, so a few touched customers update in milliseconds.
        All of it is one transaction.
        """
        ws = self.schema_name(workspace_id)
        with self._transaction():
            self._ensure_workspace_objects(ws)
            self._stage_ids("_stage_members", members, MEMBER_STAGE_SCHEMA)
            if within is not None:
                self._stage_ids("_stage_within", within, ID_STAGE_SCHEMA)
            change = self._apply_staged_members(ws, int(segment_id), at, within is not None)
        self._workspace_committed(ws)
        return change

    def _stage_ids(self, name: str, data: ibis.Table | pa.Table, schema: ibis.Schema) -> None:
        if isinstance(data, pa.Table):
            self._stage(name, _conform(_with_confidence(data, schema), schema), schema)
            return
        if "confidence" in schema and "confidence" not in data.columns:
            data = data.mutate(confidence=ibis.literal(1.0, type="float64"))
        self._materialize(name, data.select(*schema.names).cast(schema))

    def _materialize(self, name: str, expr: ibis.Table) -> None:
        """Run ``expr`` once into a temporary table ``name`` dropped with the transaction."""
        raise NotImplementedError  # pragma: no cover

    def _apply_staged_members(
        self, ws: str, segment_id: int, at: datetime.datetime, restricted: bool
    ) -> MemberChange:
        # Plain sqlglot trees: these statements run for every (incremental) refresh, and
        # compiling them through Ibis would cost more than running them.
        memberships = self._table_ref(ws, "memberships")
        at_sql = sge.Cast(
            this=sge.Literal.string(at.replace(tzinfo=None).isoformat(sep=" ")),
            to=sge.DataType.build("TIMESTAMP"),
        )
        seg = sge.Literal.number(segment_id)

        def current(alias: str) -> list[sge.Expression]:
            return [
                sge.EQ(this=sg.column("segment_id", alias, quoted=True), expression=seg),
                sge.Is(this=sg.column("left_at", alias, quoted=True), expression=sge.Null()),
            ]

        def exists(table: sge.Table, alias: str, *conditions: sge.Expression) -> sge.Exists:
            match = sge.EQ(
                this=sg.column("customer_id", alias, quoted=True),
                expression=sg.column("customer_id", "s", quoted=True),
            )
            return sge.Exists(
                this=sg.select(sge.Literal.number(1))
                .from_(table.as_(alias))
                .where(sge.and_(*conditions, match))
            )

        where = [sge.Not(this=exists(memberships.copy(), "m", *current("m")))]
        if restricted:
            where.append(exists(sg.table("_stage_within", quoted=True), "w"))
        joiners = (
            sg.select(
                seg,
                sg.column("customer_id", "s", quoted=True),
                at_sql,
                sge.Cast(this=sge.Null(), to=sge.DataType.build("TIMESTAMP")),
                sg.column("confidence", "s", quoted=True),
            )
            .from_(sg.table("_stage_members", quoted=True).as_("s"))
            .where(sge.and_(*where))
        )
        insert = sge.Insert(
            this=sge.Schema(
                this=memberships.copy(),
                expressions=[sg.to_identifier(c, quoted=True) for c in S.MEMBERSHIPS.names],
            ),
            expression=joiners,
        )
        joined = self._execute_count(insert.sql(dialect=self.dialect))
        left = self._execute_count(self._close_memberships_sql(ws, segment_id, at, restricted))
        count = (
            sg.select(sge.Count(this=sge.Star()))
            .from_(memberships.copy().as_("m"))
            .where(sge.and_(*current("m")))
        )
        members = int(self._execute(count.sql(dialect=self.dialect))[0][0])
        return MemberChange(joined=joined, left=left, members=members)

    def _close_memberships_sql(
        self, ws: str, segment_id: int, at: datetime.datetime, restricted: bool
    ) -> str:
        """``UPDATE memberships SET left_at = at`` for current members no longer staged."""
        target = sg.column("customer_id", "m", quoted=True)

        def exists(stage: str) -> sge.Exists:
            return sge.Exists(
                this=sg.select(sge.Literal.number(1))
                .from_(sg.table(stage, quoted=True).as_("s"))
                .where(sge.EQ(this=sg.column("customer_id", "s", quoted=True), expression=target))
            )

        conditions = [
            sge.EQ(
                this=sg.column("segment_id", "m", quoted=True),
                expression=sge.Literal.number(segment_id),
            ),
            sge.Is(this=sg.column("left_at", "m", quoted=True), expression=sge.Null()),
            sge.Not(this=exists("_stage_members")),
        ]
        if restricted:
            conditions.append(exists("_stage_within"))
        update = sge.Update(
            this=self._table_ref(ws, "memberships").as_("m"),
            expressions=[
                sge.EQ(
                    this=sg.column("left_at", quoted=True),
                    expression=sge.Cast(
                        this=sge.Literal.string(at.replace(tzinfo=None).isoformat(sep=" ")),
                        to=sge.DataType.build("TIMESTAMP"),
                    ),
                )
            ],
            where=sge.Where(this=sge.and_(*conditions)),
        )
        return update.sql(dialect=self.dialect)

    def delete_members(self, workspace_id: int, segment_id: int) -> int:
        """Forget every membership row of a deleted segment; returns how many went."""
        ws = self.schema_name(workspace_id)
        delete = sge.Delete(
            this=self._table_ref(ws, "memberships"),
            where=sge.Where(
                this=sge.EQ(
                    this=sg.column("segment_id", quoted=True),
                    expression=sge.Literal.number(int(segment_id)),
                )
            ),
        )
        with self._transaction():
            self._create_workspace_objects(ws)
            return self._execute_count(delete.sql(dialect=self.dialect))

    # -- data rights and retention (strata.privacy) ---------------------------------------
    def delete_customers(
        self, workspace_id: int, customer_ids: Sequence[int], external_ids: Sequence[str]
    ) -> dict[str, int]:
        """Delete every row of these customers from every table, all or nothing.

        Rows are matched on ``customer_id`` (``synthetic_truth`` on ``external_id``);
        returns the rows deleted per table.
        """
        ws = self.schema_name(workspace_id)
        ids = [sge.Literal.number(int(i)) for i in customer_ids]
        exts = [sge.Literal.string(str(e)) for e in external_ids]
        counts: dict[str, int] = {}
        with self._transaction():
            self._create_workspace_objects(ws)
            for name in S.TABLES:
                by_external = name == "synthetic_truth"
                column, values = ("external_id", exts) if by_external else ("customer_id", ids)
                if not values:
                    counts[name] = 0
                    continue
                delete = sge.Delete(
                    this=self._table_ref(ws, name),
                    where=sge.Where(
                        this=sge.In(this=sg.column(column, quoted=True), expressions=values)
                    ),
                )
                counts[name] = self._execute_count(delete.sql(dialect=self.dialect))
        return counts

    def delete_events_before(self, workspace_id: int, cutoff: datetime.datetime) -> dict[str, int]:
        """Delete events (and their order lines) whose timestamp is before ``cutoff``.

        ``cutoff`` is naive UTC, compared as a timestamp literal on every backend.
        """
        ws = self.schema_name(workspace_id)
        when = sge.Cast(
            this=sge.Literal.string(cutoff.replace(tzinfo=None).isoformat(sep=" ")),
            to=sge.DataType.build("timestamp"),
        )
        old = sge.LT(this=sg.column("timestamp", quoted=True), expression=when)
        events = self._table_ref(ws, "events")
        old_ids = sg.select(sg.column("event_id", quoted=True)).from_(events).where(old)
        items = sge.Delete(
            this=self._table_ref(ws, "order_items"),
            where=sge.Where(
                this=sge.In(this=sg.column("event_id", quoted=True), query=old_ids.subquery())
            ),
        )
        delete = sge.Delete(this=events, where=sge.Where(this=old))
        with self._transaction():
            self._create_workspace_objects(ws)
            n_items = self._execute_count(items.sql(dialect=self.dialect))
            n_events = self._execute_count(delete.sql(dialect=self.dialect))
        return {"events": n_events, "order_items": n_items}

    def reclaim(self, workspace_id: int, tables: Sequence[str] | None = None) -> None:
        """Make rows deleted from ``tables`` (None: all) unreadable from the files too."""

    # -- predictions ----------------------------------------------------------------------
    def replace_predictions(self, workspace_id: int, prediction_type: str, rows: pa.Table) -> int:
        """Make ``rows`` the stored predictions of ``prediction_type``, all or nothing.

        ``rows`` has the columns of :data:`schema.PREDICTIONS` but ``prediction_type``
        (missing ones are stored as nulls). The previous rows of that type go in the same
        transaction, so readers see either the old scores or the new ones.
        """
        ws = self.schema_name(workspace_id)
        rows = _conform(_with_type(rows, prediction_type), S.PREDICTIONS)
        with self._transaction():
            self._create_workspace_objects(ws)
            self._add_prediction_columns(ws)
            self._stage("_stage_predictions", rows, S.PREDICTIONS)
            staged = ibis.table(S.PREDICTIONS, name="_stage_predictions")
            count = self._swap_predictions(ws, prediction_type, staged)
        self._workspace_committed(ws)
        return count

    def _add_prediction_columns(self, ws: str) -> None:
        """Workspaces made before a column of ``predictions`` existed get it now."""
        have = self.ibis.table("predictions", database=ws).schema()
        for name, dtype in S.PREDICTIONS.items():
            if name not in have:
                alter = sge.Alter(
                    this=self._table_ref(ws, "predictions"),
                    kind="TABLE",
                    actions=[self._column_def(name, dtype)],
                )
                self._execute(alter.sql(dialect=self.dialect))

    def _swap_predictions(self, ws: str, prediction_type: str, staged: ibis.Table) -> int:
        delete = sge.Delete(
            this=self._table_ref(ws, "predictions"),
            where=sge.Where(
                this=sge.EQ(
                    this=sg.column("prediction_type", quoted=True),
                    expression=sge.Literal.string(prediction_type),
                )
            ),
        )
        self._execute_count(delete.sql(dialect=self.dialect))
        return self._insert(ws, "predictions", staged)

    # -- small helpers --------------------------------------------------------------------
    def _scalar(self, expr: ibis.Expr):
        rows = self._execute(self._sql(expr))
        return rows[0][0]

    def _insert(self, ws: str, table: str, rows: ibis.Table) -> int:
        """``INSERT INTO ws.table (cols) SELECT …``; returns the number of rows inserted."""
        columns = list(rows.columns)
        select = sg.parse_one(self._sql(rows), read=self.dialect)
        json_columns = {n for n, t in S.TABLES.get(table, ibis.schema({})).items() if t.is_json()}
        if json_columns & set(columns):
            # Ibis reads JSON back as text; say it is JSON again where the column wants it.
            select = sg.select(
                *[
                    sge.Cast(this=sg.column(c, "q", quoted=True), to=sge.DataType.build("JSON"))
                    if c in json_columns
                    else sg.column(c, "q", quoted=True)
                    for c in columns
                ]
            ).from_(select.subquery("q"))
        insert = sge.Insert(
            this=sge.Schema(
                this=self._table_ref(ws, table),
                expressions=[sg.to_identifier(c, quoted=True) for c in columns],
            ),
            expression=select,
        )
        return self._execute_count(insert.sql(dialect=self.dialect))

    def _execute_count(self, statement: str) -> int:  # pragma: no cover - abstract
        raise NotImplementedError


def _first_of_each_key(events: pa.Table) -> pa.Table:
    """``events`` without rows whose ``event_key`` already appeared earlier in the batch."""
    keys = events.column("event_key")
    if pc.count_distinct(keys).as_py() == events.num_rows:
        return events  # the usual case: nothing to drop, no work
    firsts = (
        pa.table({"k": keys, "i": pa.array(np.arange(events.num_rows, dtype=np.int64))})
        .group_by("k")
        .aggregate([("i", "min")])
        .column("i_min")
    )
    return events.take(pc.take(firsts, pc.sort_indices(firsts)))


class _DryRun(Exception):
    """Raised inside a load transaction to roll it back after counting."""


def _with_confidence(data: pa.Table, schema: ibis.Schema) -> pa.Table:
    if "confidence" in schema and "confidence" not in data.column_names:
        return data.append_column("confidence", pa.array(np.ones(data.num_rows)))
    return data


def _with_type(rows: pa.Table, prediction_type: str) -> pa.Table:
    if "prediction_type" in rows.column_names:
        rows = rows.drop_columns(["prediction_type"])
    return rows.append_column(
        "prediction_type", pa.array([prediction_type] * rows.num_rows, pa.string())
    )


def _conform(data: pa.Table, schema: ibis.Schema) -> pa.Table:
    """Order and cast ``data``'s columns to ``schema``, adding missing ones as nulls."""
    arrow_schema = schema.to_pyarrow()
    columns = []
    for f in arrow_schema:
        if f.name in data.column_names:
            col = data.column(f.name)
            columns.append(col if col.type == f.type else col.cast(f.type))
        else:
            columns.append(pa.nulls(data.num_rows, f.type))
    return pa.Table.from_arrays(columns, schema=arrow_schema)


def _fault_point(stage: str) -> None:
    """Pause inside the load transaction when a test asks to (``STRATA_TEST_PAUSE_IN_LOAD``).

    The killed-import test sets it to a stage name and a marker file path, waits for
    the file, then kills the process while the transaction is open.
    """
    wanted = os.environ.get("STRATA_TEST_PAUSE_IN_LOAD")
    if not wanted:
        return
    name, _, marker = wanted.partition(":")
    if name == stage:
        with open(marker, "w") as f:
            f.write(str(os.getpid()))
        time.sleep(600)
