"""What a workspace holds: counts, revenue and time span, computed in the warehouse."""

from __future__ import annotations

from typing import Any

import ibis

from strata.context import Strata


def workspace_stats(app: Strata, workspace: str | None = None) -> dict[str, Any]:
    """Customers, orders, refunds, events, net revenue, first and last event time.

    >>> workspace_stats(app)["customers"]  # doctest: +SKIP
    4372
    """
    ws = app.workspace(workspace)
    wh = app.warehouse
    if "customers" not in wh.ibis.list_tables(database=wh.schema_name(ws.id)):
        empty = {k: 0 for k in ("customers", "orders", "refunds", "events", "order_lines")}
        return {
            "workspace": ws.name,
            **empty,
            "net_revenue": 0.0,
            "first_event": None,
            "last_event": None,
            "events_by_type": {},
        }
    customers = wh.table(ws.id, "customers")
    events = wh.table(ws.id, "events")
    totals = event_totals(events).to_pyarrow().to_pylist()[0]
    by_type = (
        events.group_by("event_type")
        .aggregate(n=events.count())
        .order_by(ibis.desc("n"))
        .to_pyarrow()
        .to_pylist()
    )
    return {
        "workspace": ws.name,
        "customers": int(customers.count().to_pyarrow().as_py()),
        "orders": int(totals["orders"] or 0),
        "refunds": int(totals["refunds"] or 0),
        "events": int(totals["events"] or 0),
        "order_lines": int(wh.table(ws.id, "order_items").count().to_pyarrow().as_py()),
        "net_revenue": round(float(totals["net_revenue"] or 0.0), 2),
        "first_event": _iso(totals["first_event"]),
        "last_event": _iso(totals["last_event"]),
        "events_by_type": {r["event_type"]: int(r["n"]) for r in by_type},
    }


def event_totals(events: ibis.Table) -> ibis.Table:
    """One row: event, order and refund counts, net revenue, first/last event and order."""
    is_order = events.event_type == "order"
    is_money = events.event_type.isin(["order", "refund"])
    return events.aggregate(
        events=events.count(),
        orders=is_order.sum(),
        refunds=(events.event_type == "refund").sum(),
        net_revenue=is_money.ifelse(events.revenue, 0).sum(),
        first_event=events.timestamp.min(),
        last_event=events.timestamp.max(),
        first_order=is_order.ifelse(events.timestamp, None).min(),
        last_order=is_order.ifelse(events.timestamp, None).max(),
    )


def _iso(value) -> str | None:
    return None if value is None else value.isoformat(sep=" ")
