"""The warehouse tables of one workspace, as Ibis schemas.

Each workspace has its own schema (``ws_<id>``) holding these tables, so one
workspace can never read another's rows. Customers carry typed attribute
columns; a mapped attribute that is not listed here is added as a real column
of its own type (the ``new_columns`` of :meth:`strata.warehouse.Warehouse.load`).

Timestamps are stored as UTC without a time zone; money as float64 in the
currency of the event.
"""

from __future__ import annotations

import re

import ibis
import ibis.expr.datatypes as dt

CUSTOMERS = ibis.schema(
    {
        "customer_id": "int64",
        "external_id": "string",
        "email": "string",
        "name": "string",
        "phone": "string",
        "country": "string",
        "city": "string",
        "gender": "string",
        "birth_date": "date",
        "signup_date": "date",
        "company_size": "int64",
        "industry": "string",
        "plan": "string",
        "created_at": "timestamp",
        "updated_at": "timestamp",
    }
)

#: Columns of ``customers`` that an import may set (everything but keys and bookkeeping).
CUSTOMER_ATTRIBUTES = {
    name: dtype
    for name, dtype in CUSTOMERS.items()
    if name not in {"customer_id", "external_id", "created_at", "updated_at"}
}

EVENTS = ibis.schema(
    {
        "event_id": "int64",
        "customer_id": "int64",
        "event_type": "string",
        "timestamp": "timestamp",
        "revenue": "float64",
        "currency": "string",
        "order_id": "string",
        "properties": "json",
        # Natural key: re-importing the same order or event finds it here and skips it.
        "event_key": "string",
        "import_id": "int64",
    }
)

ORDER_ITEMS = ibis.schema(
    {
        "event_id": "int64",
        "customer_id": "int64",
        "line_no": "int32",
        "product_id": "string",
        "product_name": "string",
        "quantity": "float64",
        "unit_price": "float64",
    }
)

MEMBERSHIPS = ibis.schema(
    {
        "segment_id": "int64",
        "customer_id": "int64",
        "joined_at": "timestamp",
        "left_at": "timestamp",
        "confidence": "float64",
    }
)

PREDICTIONS = ibis.schema(
    {
        "customer_id": "int64",
        "prediction_type": "string",
        "value": "float64",
        "confidence": "float64",
        "model_version": "string",
        "predicted_at": "timestamp",
        # JSON text: why this value (a churn score's top factors, a cluster's distance…).
        "details": "string",
    }
)

#: What a data generator knows that real data never tells (e.g. who churned), for model checks.
SYNTHETIC_TRUTH = ibis.schema(
    {
        "external_id": "string",
        "persona": "string",
        "churned": "boolean",
        "churned_at": "timestamp",
    }
)

TABLES: dict[str, ibis.Schema] = {
    "customers": CUSTOMERS,
    "events": EVENTS,
    "order_items": ORDER_ITEMS,
    "memberships": MEMBERSHIPS,
    "predictions": PREDICTIONS,
    "synthetic_truth": SYNTHETIC_TRUTH,
}

#: Types a mapped custom attribute may have, by the name a mapping file uses.
ATTRIBUTE_TYPES: dict[str, dt.DataType] = {
    "string": dt.string,
    "integer": dt.int64,
    "number": dt.float64,
    "boolean": dt.boolean,
    "date": dt.date,
    "timestamp": dt.timestamp,
}

_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def check_column_name(name: str) -> str:
    """Return ``name`` if it can be a column of ours, else raise ``InputError``.

    >>> check_column_name("loyalty_tier")
    'loyalty_tier'
    """
    from strata.errors import InputError

    if not _IDENTIFIER.match(name):
        raise InputError(
            f"attribute name {name!r} is not allowed: use lower-case letters, digits and "
            "underscores, starting with a letter (at most 63 characters)"
        )
    return name
