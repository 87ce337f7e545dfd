"""From a file's typed rows to a warehouse :class:`~strata.warehouse.Batch`.

Presets turn a file into *lines*: one row per input row, with the columns below
(any may be missing). :func:`build_batch` then groups them into customers (last
non-empty value of each attribute wins), events (lines sharing an order id become one
order, its revenue the order total when the file gives one, else the sum of its line
amounts) and order lines.

=================  =====================================================================
``external_id``    the customer's id (required)
customer fields    ``email``, ``name``, ``country`` … and mapped custom attributes
``event_type``     ``order``, ``refund`` or any other event name
``order_id``       groups lines into one order or refund
``timestamp``      when it happened (UTC)
``revenue``        order-level total (first non-empty value of the order is used)
``line_amount``    amount of one line, summed when ``revenue`` is empty
``quantity`` …     ``unit_price``, ``product_id``, ``product_name``: the order line
``currency``       ISO code
``properties``     JSON object text
``event_key``      natural key, when the preset knows a better one than the default
=================  =====================================================================
"""

from __future__ import annotations

import functools
import hashlib
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from strata.ingest import parse
from strata.ingest.mapping import CUSTOMER_FIELDS, FIELDS, Mapping
from strata.ingest.readers import RawTable
from strata.warehouse import Batch

#: Bad rows kept in full in an import report; the rest are counted.
MAX_STORED_ERRORS = 1000


@dataclass
class Problems:
    """Bad values (row, column, reason) and rows left out, by reason."""

    errors: list[dict] = field(default_factory=list)
    error_count: int = 0
    skipped: Counter = field(default_factory=Counter)

    def add(
        self,
        lines: np.ndarray,
        column: str,
        reason: str,
        values: list | None = None,
        skip: bool = True,
        count_as: str | None = None,
    ) -> None:
        if not len(lines):
            return
        self.error_count += len(lines)
        room = MAX_STORED_ERRORS - len(self.errors)
        for i, line in enumerate(lines[: max(room, 0)]):
            entry = {"row": int(line), "column": column, "reason": reason}
            if values is not None and values[i] is not None:
                entry["value"] = str(values[i])[:100]
            self.errors.append(entry)
        if skip:
            self.skipped[count_as or reason] += len(lines)


def typed_fields(
    raw: RawTable, mapping: Mapping, problems: Problems, required: list[str]
) -> tuple[dict[str, pa.Array], np.ndarray]:
    """Parse every mapped field; returns the typed columns and a mask of rows to keep.

    A bad value in a required field drops its row (reported); in an optional field the
    value becomes empty (reported, row kept).
    """
    keep = np.ones(raw.num_rows, dtype=bool)
    out: dict[str, pa.Array] = {}
    for name, column in mapping.fields.items():
        kind = FIELDS[name].kind
        col = raw.table.column(column)
        if kind in {"timestamp", "date"}:
            formats = [mapping.date_format] if mapping.date_format else None
            values, bad, _ = parse.timestamp(col, formats)
            if kind == "date":
                values = pc.cast(values, pa.date32())
        else:
            values, bad = parse.PARSERS[kind](col)
        out[name] = values
        if bad.any():
            reason = f"not a valid {_KIND_WORDS.get(kind, kind)}"
            originals = pc.filter(col, pa.array(bad)).to_pylist()
            problems.add(
                raw.lines[bad & keep],
                column,
                reason,
                [v for v, k in zip(originals, keep[bad], strict=True) if k],
                skip=name in required,
                count_as=f"invalid {name}",
            )
            if name in required:
                keep &= ~bad
        if name in required:
            empty = parse._mask(pc.is_null(col)) & keep
            if empty.any():
                problems.add(raw.lines[empty], column, "empty", count_as=f"no {name}")
                keep &= ~empty
    for name, attr in mapping.attributes.items():
        values, bad = parse.PARSERS[attr.type](raw.table.column(attr.column))
        out[name] = values
        if bad.any():
            problems.add(raw.lines[bad & keep], attr.column, f"not a valid {attr.type}", skip=False)
    return out, keep


_KIND_WORDS = {
    "timestamp": "date/time",
    "date": "date",
    "number": "number",
    "integer": "whole number",
    "email": "e-mail address",
    "boolean": "yes/no value",
}


def customer_identity(
    fields: dict[str, pa.Array], problems: Problems, keep: np.ndarray
) -> tuple[pa.Array, np.ndarray]:
    """``external_id``: the customer id, else the e-mail. Rows with neither are skipped."""
    ext = fields.get("customer_id")
    if ext is None:
        ext = fields.get("email")
    elif "email" in fields:
        ext = pc.coalesce(ext, fields["email"])
    if ext is None:
        raise AssertionError("presets check that a customer field is mapped")
    missing = parse._mask(pc.is_null(ext)) & keep
    if missing.any():
        problems.skipped["no customer id"] += int(missing.sum())
    return ext, keep & ~missing


def full_name(fields: dict[str, pa.Array]) -> pa.Array | None:
    if "name" in fields:
        return fields["name"]
    parts = [fields[k] for k in ("first_name", "last_name") if k in fields]
    if not parts:
        return None
    joined = pc.binary_join_element_wise(*[p.fill_null("") for p in parts], " ")
    joined = pc.utf8_trim_whitespace(joined)
    return pc.if_else(pc.equal(joined, ""), pa.scalar(None, pa.string()), joined)


def customer_columns(fields: dict[str, pa.Array], mapping: Mapping) -> dict[str, pa.Array]:
    """Customer attribute columns present in ``fields`` (first/last name joined)."""
    out = {
        k: fields[k]
        for k in CUSTOMER_FIELDS
        if k in fields and k not in {"first_name", "last_name", "name"}
    }
    name = full_name(fields)
    if name is not None:
        out["name"] = name
    for attr in mapping.attributes:
        out[attr] = fields[attr]
    return out


def build_batch(lines: pa.Table) -> tuple[Batch, dict]:
    """Group lines into customers, events and order lines; also returns file figures."""
    cols = set(lines.column_names)
    attrs = [c for c in lines.column_names if c not in _LINE_COLUMNS]
    n = lines.num_rows
    lines = lines.append_column("_i", pa.array(np.arange(n, dtype=np.int64)))

    # Customers: one row per external id, last non-empty value of each attribute.
    if attrs:
        grouped = (
            lines.select(["external_id", "_i", *attrs])
            .group_by("external_id", use_threads=False)
            .aggregate(
                [("_i", "min")]
                + [(a, "last", pc.ScalarAggregateOptions(skip_nulls=True)) for a in attrs]
            )
        )
        grouped = grouped.sort_by("_i_min")
        customers = pa.table(
            {
                "external_id": grouped.column("external_id"),
                **{a: grouped.column(f"{a}_last") for a in attrs},
            }
        )
    else:
        first = (
            lines.select(["external_id", "_i"])
            .group_by("external_id")
            .aggregate([("_i", "min")])
            .sort_by("_i_min")
        )
        customers = pa.table({"external_id": first.column("external_id")})

    figures: dict = {"orders": 0, "refunds": 0, "events": {}, "net_revenue": 0.0, "items": 0}
    if "event_type" not in cols:
        return Batch(customers=customers), figures

    has_order = (
        pc.and_(
            pc.is_valid(lines.column("order_id")),
            pc.is_in(lines.column("event_type"), pa.array(["order", "refund"])),
        )
        if "order_id" in cols
        else pa.array(np.zeros(n, dtype=bool))
    )
    orders = lines.filter(has_order)
    singles = lines.filter(pc.invert(has_order))

    events = []
    items = None
    if orders.num_rows:
        agg_cols = [("external_id", "first"), ("timestamp", "min"), ("_i", "min")]
        for c in ("revenue", "currency", "properties", "event_key"):
            if c in cols:
                agg_cols.append((c, "first", pc.ScalarAggregateOptions(skip_nulls=True)))
        if "line_amount" in cols:
            agg_cols.append(("line_amount", "sum"))
        g = orders.group_by(["event_type", "order_id"], use_threads=False).aggregate(agg_cols)
        g = g.sort_by("_i_min")
        revenue = g.column("revenue_first") if "revenue" in cols else None
        if "line_amount" in cols:
            summed = g.column("line_amount_sum")
            revenue = summed if revenue is None else pc.coalesce(revenue, summed)
        if revenue is None:
            revenue = pa.nulls(g.num_rows, pa.float64())
        revenue = pc.cast(revenue, pa.float64())
        etype = g.column("event_type")
        # A refund always takes money back; an "order" with a negative total is a refund.
        is_refund = pc.or_(pc.equal(etype, "refund"), pc.less(revenue, 0).fill_null(False))
        etype = pc.if_else(is_refund, "refund", etype)
        revenue = pc.if_else(is_refund, pc.negate(pc.abs(revenue)), revenue)
        keys = g.column("event_key_first") if "event_key" in cols else None
        default_keys = pc.binary_join_element_wise(etype, g.column("order_id"), ":")
        keys = default_keys if keys is None else pc.coalesce(keys, default_keys)
        events.append(
            pa.table(
                {
                    "external_id": g.column("external_id_first"),
                    "event_type": etype,
                    "timestamp": g.column("timestamp_min"),
                    "revenue": revenue,
                    "currency": g.column("currency_first")
                    if "currency" in cols
                    else pa.nulls(g.num_rows, pa.string()),
                    "order_id": g.column("order_id"),
                    "properties": g.column("properties_first")
                    if "properties" in cols
                    else pa.nulls(g.num_rows, pa.string()),
                    "event_key": keys,
                    "_i": g.column("_i_min"),
                }
            )
        )
        # Order lines: every line with a product or a quantity, in file order.
        item_cols = [
            c for c in ("product_id", "product_name", "quantity", "unit_price") if c in cols
        ]
        if item_cols:
            order_key = pa.table(
                {
                    "event_type": g.column("event_type"),
                    "order_id": g.column("order_id"),
                    "event_key": keys,
                }
            )
            with_keys = orders.join(order_key, ["event_type", "order_id"], use_threads=False)
            with_keys = with_keys.sort_by("_i")
            has_item = functools.reduce(
                pc.or_, [pc.is_valid(with_keys.column(c)) for c in item_cols]
            )
            with_keys = with_keys.filter(has_item)
            line_no = _rank_within(with_keys.column("event_key"))
            items = pa.table(
                {
                    "event_key": with_keys.column("event_key"),
                    "line_no": pa.array(line_no, pa.int32()),
                    **{c: with_keys.column(c) for c in item_cols},
                }
            )
    if singles.num_rows:
        revenue = singles.column("revenue") if "revenue" in cols else None
        if "line_amount" in cols:
            revenue = (
                singles.column("line_amount")
                if revenue is None
                else pc.coalesce(revenue, singles.column("line_amount"))
            )
        table = {
            "external_id": singles.column("external_id"),
            "event_type": singles.column("event_type"),
            "timestamp": singles.column("timestamp"),
            "revenue": pc.cast(revenue, pa.float64())
            if revenue is not None
            else pa.nulls(singles.num_rows, pa.float64()),
            "currency": singles.column("currency")
            if "currency" in cols
            else pa.nulls(singles.num_rows, pa.string()),
            "order_id": singles.column("order_id")
            if "order_id" in cols
            else pa.nulls(singles.num_rows, pa.string()),
            "properties": singles.column("properties")
            if "properties" in cols
            else pa.nulls(singles.num_rows, pa.string()),
        }
        keys = _content_keys(table)
        if "event_key" in cols:
            keys = pc.coalesce(singles.column("event_key"), keys)
        table["event_key"] = keys
        table["_i"] = singles.column("_i")
        events.append(pa.table(table))
    all_events = pa.concat_tables(events, promote_options="permissive").sort_by("_i").drop(["_i"])
    all_events = all_events.set_column(
        all_events.column_names.index("revenue"),
        "revenue",
        pc.round(all_events.column("revenue"), 6),
    )  # float noise of summed lines
    figures.update(event_figures(all_events))
    figures["items"] = 0 if items is None else items.num_rows
    return Batch(customers=customers, events=all_events, items=items), figures


def event_figures(events: pa.Table) -> dict:
    """Orders, refunds, events by type and net revenue of a table of events."""
    counts = Counter(events.column("event_type").to_pylist())
    money = pc.filter(
        events.column("revenue"),
        pc.is_in(events.column("event_type"), pa.array(["order", "refund"])),
    )
    return {
        "orders": counts.get("order", 0),
        "refunds": counts.get("refund", 0),
        "events": dict(sorted(counts.items())),
        "net_revenue": round(pc.sum(money).as_py() or 0.0, 2),
    }


_LINE_COLUMNS = {
    "external_id",
    "event_type",
    "order_id",
    "timestamp",
    "revenue",
    "line_amount",
    "quantity",
    "unit_price",
    "product_id",
    "product_name",
    "currency",
    "properties",
    "event_key",
    "_i",
}


def _rank_within(keys: pa.ChunkedArray) -> np.ndarray:
    """0, 1, 2… for each row among earlier rows with the same key (keys in row order)."""
    codes = pc.dictionary_encode(keys.combine_chunks()).indices.to_numpy()
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_codes)) + 1]
    run_start = np.repeat(starts, np.diff(np.r_[starts, len(codes)]))
    rank = np.empty(len(codes), dtype=np.int64)
    rank[order] = np.arange(len(codes)) - run_start
    return rank


def _content_keys(table: dict[str, pa.Array]) -> pa.Array:
    """A key for events without an id: a digest of who, what, when, how much and details.

    Two identical lines are the same event (the file repeated it), so they collapse.
    """
    parts = [
        pc.cast(table[c], pa.string()).fill_null("")
        for c in ("external_id", "event_type", "timestamp", "revenue", "order_id", "properties")
    ]
    joined = pc.binary_join_element_wise(*parts, "\x1f").to_pylist()
    return pa.array(
        [hashlib.blake2b(v.encode(), digest_size=16).hexdigest() for v in joined], pa.string()
    )
