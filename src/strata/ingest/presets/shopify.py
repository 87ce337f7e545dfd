"""Shopify Admin orders export (``orders_export_1.csv``).

One row per line item; order-level fields (Total, Financial Status, Billing…) stand
only on an order's first row, later rows repeat Name, Email and the line item. The
customer is the e-mail (the export has no customer id). A refunded amount becomes a
``refund`` event; a cancelled order that was not refunded becomes a refund of its
total, so net revenue counts it as zero.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from strata.ingest import mapping as M
from strata.ingest import parse
from strata.ingest.lines import Problems
from strata.ingest.presets import Preset, header_score
from strata.ingest.readers import RawTable

SIGNATURE = [
    "Name",
    "Email",
    "Financial Status",
    "Paid at",
    "Fulfillment Status",
    "Currency",
    "Subtotal",
    "Total",
    "Created at",
    "Lineitem quantity",
    "Lineitem name",
    "Lineitem price",
    "Lineitem sku",
    "Billing Name",
    "Refunded Amount",
    "Cancelled at",
]

COLUMNS = {
    "order_id": "Name",
    "email": "Email",
    "timestamp": "Created at",
    "revenue": "Total",
    "currency": "Currency",
    "quantity": "Lineitem quantity",
    "product_name": "Lineitem name",
    "unit_price": "Lineitem price",
    "product_id": "Lineitem sku",
    "name": "Billing Name",
    "city": "Billing City",
    "country": "Billing Country",
    "phone": "Billing Phone",
}


class ShopifyOrders(Preset):
    name, title = "shopify", "a Shopify orders export"
    required = ["order_id", "email", "timestamp"]

    def score(self, raw: RawTable) -> float:
        return header_score(raw, SIGNATURE)

    def mapping(self, raw: RawTable, given: M.Mapping | None = None) -> M.Mapping:
        if given is None or not given.fields:
            given = M.Mapping(
                fields={k: v for k, v in COLUMNS.items() if v in raw.columns},
                attributes=given.attributes if given else {},
            )
            given.confidence = dict.fromkeys(given.fields, 1.0)
        return super().mapping(raw, given)

    def lines(self, raw: RawTable, mapping: M.Mapping, problems: Problems) -> pa.Table:
        columns, f, keep = self._customer_part(raw, mapping, problems, ["order_id", "timestamp"])
        t = raw.table
        orders = {
            **columns,
            "event_type": pa.array(["order"] * raw.num_rows, pa.string()),
            **{
                c: f[c]
                for c in (
                    "order_id",
                    "timestamp",
                    "revenue",
                    "currency",
                    "quantity",
                    "unit_price",
                    "product_id",
                    "product_name",
                )
                if c in f
            },
        }
        if "quantity" in f and "unit_price" in f:
            orders["line_amount"] = pc.multiply(f["quantity"], f["unit_price"])
        lines = pa.table(orders).filter(pa.array(keep))
        # Refunds and cancellations: one refund line per order, from its first row.
        refunded, _ = (
            parse.number(t.column("Refunded Amount"))
            if "Refunded Amount" in raw.columns
            else (pa.nulls(raw.num_rows, pa.float64()), None)
        )
        cancelled, _, _ = (
            parse.timestamp(t.column("Cancelled at"))
            if "Cancelled at" in raw.columns
            else (pa.nulls(raw.num_rows, pa.timestamp("us")), None, None)
        )
        total = f.get("revenue", pa.nulls(raw.num_rows, pa.float64()))
        first_row = pc.is_valid(total)
        amount = pc.if_else(
            pc.greater(refunded.fill_null(0), 0),
            refunded,
            pc.if_else(pc.is_valid(cancelled), total, pa.scalar(None, pa.float64())),
        )
        is_refund = pc.and_(pc.and_(first_row, pc.is_valid(amount)), pa.array(keep))
        if pc.any(is_refund).as_py():
            refunds = {
                "external_id": columns["external_id"],
                "event_type": pa.array(["refund"] * raw.num_rows, pa.string()),
                "order_id": f["order_id"],
                "timestamp": pc.coalesce(cancelled, f["timestamp"]),
                "revenue": pc.negate(amount),
                "currency": f.get("currency", pa.nulls(raw.num_rows, pa.string())),
            }
            lines = pa.concat_tables(
                [lines, pa.table(refunds).filter(is_refund)], promote_options="permissive"
            )
        return lines
