"""Generic presets: a customer list, invoice lines, an event log."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from strata.ingest import mapping as M
from strata.ingest.lines import Problems
from strata.ingest.presets import Preset, detect, has_customer
from strata.ingest.readers import RawTable

_EVENT_FIELDS = {"event_type", "timestamp", "order_id", "revenue", "quantity", "unit_price"}


class Customers(Preset):
    """One row per customer: an id or e-mail, and any attributes."""

    name, target, title = "customers", "customers", "a customer list"
    fields = ["customer_id", *M.CUSTOMER_FIELDS]

    def score(self, raw: RawTable) -> float:
        found = detect(raw, self.fields)
        if not has_customer(found):
            return 0.0
        # Columns already read as customer fields (signup_date…) are not event times.
        claimed = set(found.fields.values())
        events = {
            f for f, c in detect(raw, sorted(_EVENT_FIELDS)).fields.items() if c not in claimed
        }
        if {"timestamp", "order_id", "event_type"} & events:
            return 0.3
        return 0.55 + 0.05 * min(len(found.fields), 8)

    def missing(self, mapping: M.Mapping) -> list[str]:
        return [] if has_customer(mapping) else ["customer_id or email"]

    def lines(self, raw: RawTable, mapping: M.Mapping, problems: Problems) -> pa.Table:
        columns, _, keep = self._customer_part(raw, mapping, problems, [])
        return pa.table(columns).filter(pa.array(keep))


class Transactions(Preset):
    """Invoice lines (UCI Online Retail style): an order per invoice, amount = quantity ×
    unit price, invoices starting with ``C`` are refunds, lines without a customer are
    skipped, repeated lines kept as given."""

    name, title = "transactions", "transaction lines"
    fields = [
        "customer_id",
        "email",
        "order_id",
        "timestamp",
        "quantity",
        "unit_price",
        "revenue",
        "product_id",
        "product_name",
        "currency",
        *M.CUSTOMER_FIELDS,
    ]
    required = ["order_id", "timestamp"]

    def score(self, raw: RawTable) -> float:
        found = detect(raw, self.fields)
        if not (has_customer(found) and {"order_id", "timestamp"} <= set(found.fields)):
            return 0.0
        money = {"quantity", "unit_price"} <= set(found.fields) or "revenue" in found.fields
        return 0.8 if money else 0.0

    def missing(self, mapping: M.Mapping) -> list[str]:
        missing = super().missing(mapping)
        if not has_customer(mapping):
            missing.append("customer_id or email")
        if "revenue" not in mapping.fields and not {"quantity", "unit_price"} <= set(
            mapping.fields
        ):
            missing.append("quantity and unit_price (or an amount)")
        return missing

    def lines(self, raw: RawTable, mapping: M.Mapping, problems: Problems) -> pa.Table:
        required = ["order_id", "timestamp"] + (
            ["quantity", "unit_price"] if "revenue" not in mapping.fields else ["revenue"]
        )
        columns, f, keep = self._customer_part(raw, mapping, problems, required)
        order_id = f["order_id"]
        refund = pc.match_substring_regex(order_id, r"^[Cc]\d").fill_null(False)
        out = {
            **columns,
            "order_id": order_id,
            "event_type": pc.if_else(refund, "refund", "order"),
            "timestamp": f["timestamp"],
        }
        if "quantity" in f and "unit_price" in f:
            out["line_amount"] = pc.multiply(f["quantity"], f["unit_price"])
        if "revenue" in f:
            if "quantity" in f and "unit_price" in f:
                out["line_amount"] = pc.coalesce(f["revenue"], out["line_amount"])
            else:
                out["line_amount"] = f["revenue"]
        for c in ("quantity", "unit_price", "product_id", "product_name", "currency"):
            if c in f:
                out[c] = f[c]
        return pa.table(out).filter(pa.array(keep))


#: Event names that mean a purchase or a refund in common trackers.
ORDER_NAMES = {
    "order",
    "purchase",
    "order_completed",
    "order_placed",
    "checkout_completed",
    "transaction",
    "payment",
}
REFUND_NAMES = {
    "refund",
    "order_refunded",
    "refunded",
    "order_cancelled",
    "order_canceled",
    "cancellation",
    "chargeback",
}


class Events(Preset):
    """An event log: who, what, when; every other column becomes an event property."""

    name, title = "events", "an event log"
    fields = [
        "customer_id",
        "email",
        "event_type",
        "timestamp",
        "revenue",
        "order_id",
        "currency",
        *M.CUSTOMER_FIELDS,
    ]
    required = ["event_type", "timestamp"]

    def score(self, raw: RawTable) -> float:
        found = detect(raw, self.fields)
        if has_customer(found) and {"event_type", "timestamp"} <= set(found.fields):
            return 0.75
        return 0.0

    def missing(self, mapping: M.Mapping) -> list[str]:
        missing = super().missing(mapping)
        return missing if has_customer(mapping) else [*missing, "customer_id or email"]

    def lines(self, raw: RawTable, mapping: M.Mapping, problems: Problems) -> pa.Table:
        columns, f, keep = self._customer_part(raw, mapping, problems, ["timestamp"])
        kind = pc.utf8_lower(f["event_type"])
        norm = pc.replace_substring_regex(kind, r"[^a-z0-9]+", "_")
        etype = pc.if_else(
            pc.is_in(norm, pa.array(sorted(ORDER_NAMES))),
            "order",
            pc.if_else(pc.is_in(norm, pa.array(sorted(REFUND_NAMES))), "refund", f["event_type"]),
        )
        missing_type = np.asarray(pc.is_null(etype).to_numpy(zero_copy_only=False)) & keep
        if missing_type.any():
            problems.add(
                raw.lines[missing_type],
                mapping.fields["event_type"],
                "no event type",
                count_as="no event type",
            )
            keep &= ~missing_type
        used = set(mapping.fields.values()) | {a.column for a in mapping.attributes.values()}
        extra = [c for c in raw.columns if c not in used]
        out = {**columns, "event_type": etype, "timestamp": f["timestamp"]}
        for c in ("revenue", "order_id", "currency"):
            if c in f:
                out[c] = f[c]
        if extra:
            out["properties"] = _properties(raw.table.select(extra))
        return pa.table(out).filter(pa.array(keep))


def _properties(table: pa.Table) -> pa.Array:
    """Unmapped columns as a JSON object per row (empty values left out)."""
    rows = table.to_pylist()
    return pa.array(
        [
            json.dumps(
                {k: v for k, v in r.items() if v not in (None, "")}, default=str, ensure_ascii=False
            )
            or None
            for r in rows
        ],
        pa.string(),
    )
