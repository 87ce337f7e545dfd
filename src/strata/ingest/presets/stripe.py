"""Stripe Dashboard payments exports: the unified one (``Created date (UTC)``) and the
older one (``Created (UTC)``).

Each succeeded charge is an ``order`` whose id is the charge id; an amount refunded
becomes a ``refund`` event. Failed, incomplete and uncaptured payments are skipped and
counted. Amounts are in the account currency (``Converted Amount``) wherever the export
fills it, so one workspace's revenue adds up in one currency; else the charge's own.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from strata.ingest import mapping as M
from strata.ingest import parse
from strata.ingest.lines import Problems
from strata.ingest.presets import Preset, header_score
from strata.ingest.readers import RawTable

UNIFIED = [
    "id",
    "Created date (UTC)",
    "Amount",
    "Amount Refunded",
    "Currency",
    "Captured",
    "Converted Amount",
    "Status",
    "Customer ID",
    "Customer Email",
    "PaymentIntent ID",
]
LEGACY = [
    "id",
    "Seller Message",
    "Created (UTC)",
    "Amount",
    "Amount Refunded",
    "Currency",
    "Converted Amount",
    "Status",
    "Customer ID",
    "Customer Email",
    "Captured",
]

PAID = ["paid", "succeeded", "refunded", "partially refunded", "partially_refunded"]


class StripePayments(Preset):
    name, title = "stripe", "a Stripe payments export"
    required = ["order_id", "timestamp"]

    def score(self, raw: RawTable) -> float:
        return max(header_score(raw, UNIFIED), header_score(raw, LEGACY))

    def mapping(self, raw: RawTable, given: M.Mapping | None = None) -> M.Mapping:
        if given is None or not given.fields:
            cols = set(raw.columns)
            created = "Created date (UTC)" if "Created date (UTC)" in cols else "Created (UTC)"
            fields = {
                "order_id": "id",
                "timestamp": created,
                "revenue": "Amount",
                "currency": "Currency",
                "customer_id": "Customer ID",
                "email": "Customer Email",
                "name": "Card Name",
                "country": "Card Address Country",
                "city": "Card Address City",
                "phone": "Customer Phone",
            }
            given = M.Mapping(
                fields={k: v for k, v in fields.items() if v in cols},
                attributes=given.attributes if given else {},
            )
            given.confidence = dict.fromkeys(given.fields, 1.0)
        return super().mapping(raw, given)

    def lines(self, raw: RawTable, mapping: M.Mapping, problems: Problems) -> pa.Table:
        t = raw.table
        columns, f, keep = self._customer_part(raw, mapping, problems, ["order_id", "timestamp"])
        status = (
            pc.utf8_lower(parse.text(t.column("Status"))[0])
            if "Status" in t.column_names
            else pa.array(["paid"] * raw.num_rows)
        )
        captured = (
            parse.boolean(t.column("Captured"))[0]
            if "Captured" in t.column_names
            else pa.array([True] * raw.num_rows)
        )
        paid = pc.and_(pc.is_in(status, pa.array(PAID)), captured.fill_null(True))
        unpaid = ~np.asarray(paid.fill_null(False).to_numpy(zero_copy_only=False)) & keep
        if unpaid.any():
            problems.skipped["payment not completed"] += int(unpaid.sum())
            keep &= ~unpaid
        n = raw.num_rows
        # Prefer the account-currency amounts; fall back to the charge's own where empty.
        amount, refunded = f.get("revenue"), _number(t, "Amount Refunded", n)
        converted = _number(t, "Converted Amount", n)
        use_converted = pc.is_valid(converted)
        if "Converted Currency" in t.column_names:
            currency = pc.utf8_upper(parse.text(t.column("Converted Currency"))[0])
            f["currency"] = pc.if_else(
                use_converted, currency, pc.utf8_upper(f.get("currency", currency))
            )
        f["revenue"] = pc.coalesce(converted, amount)
        refunded = pc.if_else(
            use_converted,
            pc.coalesce(_number(t, "Converted Amount Refunded", n), refunded),
            refunded,
        )
        orders = {
            **columns,
            "event_type": pa.array(["order"] * n, pa.string()),
            **{c: f[c] for c in ("order_id", "timestamp", "revenue", "currency") if c in f},
        }
        lines = [pa.table(orders).filter(pa.array(keep))]
        when = (
            parse.timestamp(t.column("Refunded date (UTC)"))[0]
            if "Refunded date (UTC)" in t.column_names
            else f["timestamp"]
        )
        is_refund = pc.and_(pc.greater(refunded.fill_null(0), 0), pa.array(keep))
        refunds = {
            "external_id": columns["external_id"],
            "event_type": pa.array(["refund"] * n, pa.string()),
            "order_id": f["order_id"],
            "timestamp": pc.coalesce(when, f["timestamp"]),
            "revenue": pc.negate(refunded),
            "currency": f.get("currency", pa.nulls(n, pa.string())),
        }
        lines.append(pa.table(refunds).filter(is_refund))
        return pa.concat_tables(lines, promote_options="permissive")


def _number(table: pa.Table, column: str, n: int) -> pa.Array:
    if column not in table.column_names:
        return pa.nulls(n, pa.float64())
    return parse.number(table.column(column))[0]
