"""One customer's profile, predictions and timeline."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import ibis

from strata.context import Strata
from strata.errors import NotFound
from strata.stats import event_totals


def customer_profile(
    app: Strata, external_id: str, *, workspace: str | None = None, limit: int = 50
) -> dict[str, Any]:
    """Attributes, order totals, stored predictions (with why) and the latest ``limit``
    events of one customer.

    >>> customer_profile(app, "12347")["orders"]  # doctest: +SKIP
    7
    """
    ws = app.workspace(workspace)
    wh = app.warehouse
    customers = wh.table(ws.id, "customers")
    rows = customers.filter(customers.external_id == external_id).to_pyarrow().to_pylist()
    if not rows:
        raise NotFound(
            f"no customer {external_id!r} in workspace {ws.name!r}; "
            "ids are the ones in your data (see `strata stats`)"
        )
    customer = {k: _plain(v) for k, v in rows[0].items()}
    cid = customer["customer_id"]
    events = wh.table(ws.id, "events").filter(ibis._.customer_id == cid)
    totals = event_totals(events).to_pyarrow().to_pylist()[0]
    items = wh.table(ws.id, "order_items")
    latest = events.order_by([ibis.desc("timestamp"), ibis.desc("event_id")]).limit(limit)
    mine = items.filter(items.customer_id == cid)
    lines = mine.group_by("event_id").aggregate(lines=mine.count(), units=mine.quantity.sum())
    timeline = (
        latest.left_join(lines, latest.event_id == lines.event_id)
        .select(
            "event_id",
            "timestamp",
            "event_type",
            "revenue",
            "currency",
            "order_id",
            "properties",
            "lines",
            "units",
        )
        .order_by([ibis.desc("timestamp"), ibis.desc("event_id")])
    )
    return {
        "workspace": ws.name,
        "customer": customer,
        "events": int(totals["events"] or 0),
        "orders": int(totals["orders"] or 0),
        "refunds": int(totals["refunds"] or 0),
        "net_revenue": round(float(totals["net_revenue"] or 0.0), 2),
        "first_order": _plain(totals["first_order"]),
        "last_order": _plain(totals["last_order"]),
        "predictions": _predictions(app, ws.id, cid),
        "timeline": [
            {k: _plain(v) for k, v in r.items()} for r in timeline.to_pyarrow().to_pylist()
        ],
    }


def _predictions(app: Strata, workspace_id: int, customer_id: int) -> list[dict[str, Any]]:
    p = app.warehouse.table(workspace_id, "predictions")
    rows = (
        p.filter(p.customer_id == customer_id)
        .order_by("prediction_type")
        .drop("customer_id")
        .to_pyarrow()
        .to_pylist()
    )
    return [{k: _plain(v) for k, v in r.items()} for r in rows]


def _plain(value: Any) -> Any:
    """JSON-ready: dates as ISO text, JSON text parsed."""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
