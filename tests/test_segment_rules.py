"""One suite of segment definitions, run on every warehouse backend.

A small shop is written out below by hand (20 customers, about 75 events, their
order lines) and every definition's members were worked out by hand from it, at
the reference time 2024-06-15 (the end of that day: events up to 2024-06-15
23:59:59 count, the two events on 2024-06-16 do not). A wrong compiler on any
backend fails here. Customers are named by number: ``c07`` is 7.

Worked figures the expectations rely on (orders known at the reference time):

====  ======  =======  =============  ==========  ===  ===  ===  ====  =================
cust  orders  revenue  order revenue  days since  R    F    M    FM    RFM segment
====  ======  =======  =============  ==========  ===  ===  ===  ====  =================
1     5       480      480            1           5    5    5    5     Champions
2     2       60       100            0           5    1    2    2     Potential Loyalists
3     1       25       25             5           4    1    1    1     Promising
4     2       300      550            20          3    2    4    3     Need Attention
5     4       3900     3900           288         1    5    5    5     Can't Lose Them
7     3       145      145            36          3    4    4    4     Loyal Customers
8     1       0        99.99          147         1    1    1    1     Lost
10    3       4700     4700           10          4    4    5    5     Loyal Customers
11    2       25       25             29          3    2    1    2     About to Sleep
12    2       120      120            60          2    2    3    3     At Risk
14    3       95       95             135         2    4    3    4     At Risk
16    2       300      300            745         1    3    4    4     At Risk
17    4       40       40             0           5    5    2    4     Champions
18    2       100      100            6           4    3    3    3     Potential Loyalists
20    2       90       120            105         2    3    2    3     At Risk
====  ======  =======  =============  ==========  ===  ===  ===  ====  =================

Customer 9 has only a refund (-20); 6, 13, 15 and 19 never ordered.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any

import ibis
import psycopg
import pyarrow as pa
import pytest

from strata.config import Settings
from strata.context import Strata
from strata.errors import InputError
from strata.ingest.generate import generate_business
from strata.segments.compile import Compiler, Context, SegmentRef
from strata.segments.engine import Segments, render, set_icp
from strata.segments.icp import parse_config as parse_icp
from strata.segments.nodes import SegmentSpec, parse_rule
from strata.segments.reference import ReferenceTime
from strata.warehouse import Batch
from tests.conftest import POSTGRES_URL

REF = "2024-06-15"
D = dt.date

# -- the shop --------------------------------------------------------------------------------
# number, email, country, city, gender, birth_date, signup_date, company_size, industry,
# plan, vip (custom boolean), last_seen (custom timestamp)
# fmt: off
CUSTOMERS: list[tuple] = [
    (1, "anna@example.com", "France", "Paris", "female", D(1990, 6, 18), D(2022, 1, 10), 1, "Software", "pro", True, "2024-06-15 09:00"),  # noqa: E501
    (2, "Bob@Example.COM", "France", "Lyon", "male", D(1985, 6, 15), D(2023, 3, 5), 5, "Retail", "basic", False, "2024-06-14 23:59"),  # noqa: E501
    (3, "carla@shop.example.org", "Spain", "Madrid", "female", D(1970, 6, 21), D(2024, 6, 1), 12, "Software", "free", False, "2024-06-13 00:00"),  # noqa: E501
    (4, "dan@example.com", "Germany", "Berlin", "male", D(1992, 6, 22), D(2024, 5, 20), 50, "Manufacturing", "pro", None, "2024-05-01 12:00"),  # noqa: E501
    (5, "eve@example.net", "Germany", "Munich", "female", D(2000, 6, 10), D(2021, 12, 31), 200, "Software", "enterprise", True, None),  # noqa: E501
    (6, None, "United States", "New York", "male", D(1988, 6, 9), D(2024, 6, 15), None, None, "free", None, "2024-06-16 08:00"),  # noqa: E501
    (7, "gina@EXAMPLE.com", "Italy", "Rome", "female", D(1996, 2, 29), D(2023, 12, 1), 10, "Retail", "basic", None, "2023-01-01 00:00"),  # noqa: E501
    (8, "hugo@example.com", None, None, None, None, D(2022, 6, 15), 11, None, None, None, None),
    (9, "ivy@sample.org", "United States", "", "female", D(1999, 12, 31), D(2020, 2, 29), 2, "Healthcare", "", None, None),  # noqa: E501
    (10, "jack@example.com", "United Kingdom", "London", "male", D(1975, 1, 1), D(2024, 1, 1), 1000, "Finance", "enterprise", True, "2024-06-10 10:00"),  # noqa: E501
    (11, "kim@example.com", "France", "Paris", "female", D(1982, 6, 16), D(2024, 3, 16), 0, "Software", "pro", None, None),  # noqa: E501
    (12, "leo@Sample.org", "Germany", "Hamburg", "male", D(1979, 6, 8), D(2023, 6, 15), 3, "Retail", "free", None, "2024-06-15 00:00"),  # noqa: E501
    (13, "mia@example.com", "Spain", "Barcelona", "female", D(1994, 7, 1), D(2024, 2, 15), 25, "Healthcare", "basic", None, None),  # noqa: E501
    (14, "nils@example.com", "Sweden", "Stockholm", "male", D(1991, 12, 25), D(2022, 11, 30), 7, "Software", "free", None, None),  # noqa: E501
    (15, "olga@example.com", "Poland", "Warsaw", "female", D(1987, 5, 5), D(2024, 6, 10), None, None, None, None, None),  # noqa: E501
    (16, "paul@example.com", "United States", "Boston", "male", D(1983, 6, 15), D(2019, 8, 8), 150, "Finance", "pro", True, "2022-12-31 23:00"),  # noqa: E501
    (17, "quinn@example.com", "Canada", "Toronto", "other", D(2001, 3, 3), D(2024, 6, 17), 1, None, "basic", None, None),  # noqa: E501
    (18, "rosa@example.com", "France", "Nice", "female", D(1993, 10, 10), D(2023, 9, 9), 9, "Retail", "free", None, None),  # noqa: E501
    (19, "sam@example.com", "Germany", "Berlin", "male", D(1980, 6, 14), D(2024, 6, 14), None, "Software", "pro", None, None),  # noqa: E501
    (20, "tina@example.com", "United States", "Austin", "female", D(1998, 8, 8), D(2021, 5, 5), 4, "Manufacturing", "basic", None, None),  # noqa: E501
]
# fmt: on

# Orders and refunds: number, type, time, revenue, order id, properties, products (id, qty).
# fmt: off
ORDERS: list[tuple] = [
    (1, "order", "2024-06-14 10:00", 120.0, "o1a", {"channel": "web", "items": 2}, [("P1", 1), ("P2", 1)]),  # noqa: E501
    (1, "order", "2024-06-01 09:00", 80.0, "o1b", {"channel": "web", "items": 1}, [("P1", 1)]),
    (1, "order", "2024-05-20 15:00", 200.0, "o1c", {"channel": "app", "items": 1}, [("P3", 1)]),
    (1, "order", "2024-04-20 11:00", 50.0, "o1d", {"channel": "store", "items": 1}, [("P1", 1)]),
    (1, "order", "2024-01-15 10:00", 30.0, "o1e", {"channel": "web", "items": 1}, [("P4", 1)]),
    (2, "order", "2024-06-15 23:30", 60.0, "o2a", {"channel": "store", "items": 1}, [("P2", 1)]),
    # After the reference instant: counts for nothing, its products neither.
    (2, "order", "2024-06-16 08:00", 500.0, "o2b", {"channel": "web", "items": 3}, [("P5", 1), ("P6", 1), ("P7", 1)]),  # noqa: E501
    (2, "order", "2023-12-24 18:00", 40.0, "o2c", {"channel": "store", "items": 1}, [("P2", 1)]),
    (2, "refund", "2023-12-28 10:00", -40.0, "r2c", {"reason": "damaged"}, []),
    (3, "order", "2024-06-10 12:00", 25.0, "o3a", {"channel": "app", "items": 1}, [("P6", 1)]),
    (4, "order", "2024-05-25 10:00", 300.0, "o4a", {"channel": "web", "items": 2}, [("P7", 2)]),
    (4, "order", "2024-05-26 10:00", 250.0, "o4b", {"channel": "web", "items": 1}, [("P8", 1)]),
    (4, "refund", "2024-05-28 09:00", -250.0, "r4b", {"reason": "wrong_size"}, []),
    (5, "order", "2023-06-01 10:00", 1000.0, "o5a", {"channel": "store", "items": 1}, [("P9", 1)]),
    (5, "order", "2023-07-01 10:00", 800.0, "o5b", {"channel": "store", "items": 1}, [("P9", 1)]),
    (5, "order", "2023-08-01 10:00", 1200.0, "o5c", {"channel": "store", "items": 1}, [("P10", 1)]),
    (5, "order", "2023-09-01 10:00", 900.0, "o5d", {"channel": "web", "items": 1}, [("P9", 1)]),
    (7, "order", "2024-04-20 12:00", 70.0, "o7a", {"channel": "web", "items": 1}, [("P1", 1)]),
    (7, "order", "2024-05-01 12:00", 30.0, "o7b", {"channel": "app", "items": 1}, [("P2", 1)]),
    (7, "order", "2024-05-10 12:00", 45.0, "o7c", {"channel": "app", "items": 1}, [("P3", 1)]),
    (8, "order", "2024-01-20 10:00", 99.99, "o8a", {"channel": "web", "items": 1}, [("P4", 1)]),
    (8, "refund", "2024-01-25 10:00", -99.99, "r8a", {"reason": "late"}, []),
    (9, "refund", "2024-02-01 10:00", -20.0, "r9x", {"reason": "goodwill"}, []),
    (10, "order", "2024-06-05 10:00", 2500.0, "o10a", {"channel": "web", "items": 100}, [("P11", 100)]),  # noqa: E501
    (10, "order", "2024-03-20 10:00", 1500.0, "o10b", {"channel": "web", "items": 60}, [("P11", 60)]),  # noqa: E501
    (10, "order", "2024-03-17 10:00", 700.0, "o10c", {"channel": "store", "items": 1}, [("P12", 1)]),  # noqa: E501
    (11, "order", "2024-05-17 00:00", 15.0, "o11a", {"channel": "app", "items": 1}, [("P13", 1)]),
    (11, "order", "2024-05-16 23:59", 10.0, "o11b", {"channel": "app", "items": 1}, [("P13", 1)]),
    (12, "order", "2024-04-16 00:00", 55.0, "o12a", {"channel": "store", "items": 1}, [("P14", 1)]),
    (12, "order", "2024-04-15 23:59", 65.0, "o12b", {"channel": "store", "items": 1}, [("P15", 1)]),
    (14, "order", "2024-01-01 00:00", 20.0, "o14a", {"channel": "web", "items": 1}, [("P16", 1)]),
    (14, "order", "2024-01-31 23:59", 35.0, "o14b", {"channel": "web", "items": 1}, [("P16", 1)]),
    (14, "order", "2024-02-01 00:00", 40.0, "o14c", {"channel": "web", "items": 1}, [("P17", 1)]),
    (16, "order", "2022-05-01 10:00", 150.0, "o16a", {"channel": "store", "items": 1}, [("P18", 1)]),  # noqa: E501
    (16, "order", "2022-06-01 10:00", 150.0, "o16b", {"channel": "store", "items": 1}, [("P18", 1)]),  # noqa: E501
    (17, "order", "2024-06-12 10:00", 10.0, "o17a", {"channel": "web", "items": 1}, [("P1", 1)]),
    (17, "order", "2024-06-13 10:00", 10.0, "o17b", {"channel": "web", "items": 1}, [("P1", 1)]),
    (17, "order", "2024-06-14 10:00", 10.0, "o17c", {"channel": "web", "items": 1}, [("P1", 1)]),
    (17, "order", "2024-06-15 10:00", 10.0, "o17d", {"channel": "web", "items": 1}, [("P1", 1)]),
    (18, "order", "2024-06-09 00:00", 88.0, "o18a", {"channel": "app", "items": 1}, [("P19", 1)]),
    (18, "order", "2024-06-08 23:59", 12.0, "o18b", {"channel": "app", "items": 1}, [("P20", 1)]),
    (20, "order", "2024-03-01 10:00", 60.0, "o20a", {"channel": "web", "items": 1}, [("P21", 1)]),
    (20, "order", "2024-03-02 10:00", 60.0, "o20b", {"channel": "store", "items": 1}, [("P22", 1)]),
    (20, "refund", "2024-03-05 10:00", -30.0, "r20", {"reason": "partial"}, []),
]
# fmt: on

# Other events: number, type, time, properties.
EVENTS: list[tuple] = [
    (1, "page_view", "2024-06-14 09:50", {"path": "/products/p1", "seconds": 40}),
    (1, "page_view", "2024-06-13 20:00", {"path": "/products/p2", "seconds": 15}),
    (1, "page_view", "2024-06-10 08:00", {"path": "/home", "seconds": 5}),
    (1, "add_to_cart", "2024-06-13 20:01", {"product_id": "P2", "quantity": 2}),
    (1, "add_to_cart", "2024-06-14 09:55", {"product_id": "P1", "quantity": 4}),
    (1, "email_open", "2024-06-12 07:00", {"campaign": "summer-sale"}),
    (2, "page_view", "2024-06-15 12:00", {"path": "/products/p2", "seconds": 120}),
    (2, "page_view", "2024-06-16 09:00", {"path": "/home", "seconds": 10}),  # after the reference
    (3, "page_view", "2024-06-10 11:50", {"path": "/products/p6", "seconds": 60}),
    (3, "add_to_cart", "2024-06-10 11:55", {"product_id": "P6", "quantity": 1}),
    (4, "email_open", "2024-05-24 08:00", {"campaign": "may-news"}),
    (5, "email_open", "2024-06-01 08:00", {"campaign": "summer-sale"}),
    (5, "email_open", "2024-03-01 08:00", {"campaign": "spring"}),
    (6, "page_view", "2024-06-15 01:00", {"path": "/products/p1", "seconds": 30}),
    (6, "page_view", "2024-06-14 18:00", {"path": "/products/p1", "seconds": 90}),
    (6, "page_view", "2024-06-14 18:05", {"path": "/products/p3", "seconds": 45}),
    (6, "page_view", "2024-06-01 12:00", {"path": "/home", "seconds": 3}),
    (6, "add_to_cart", "2024-06-14 18:10", {"product_id": "P1", "quantity": 3}),
    (6, "add_to_cart", "2024-06-15 01:05", {"product_id": "P3", "quantity": "lots"}),
    (7, "email_open", "2024-05-09 08:00", {"campaign": "may-news"}),
    (9, "page_view", "2024-02-01 09:00", {"path": "/help", "seconds": 200}),
    (10, "email_open", "2024-06-02 08:00", {"campaign": "b2b"}),
    (13, "email_open", "2024-06-01 08:00", {"campaign": "summer-sale"}),
    (13, "email_open", "2024-06-05 08:00", {"campaign": "summer-sale"}),
    (13, "email_open", "2024-06-10 08:00", {"campaign": "b2b"}),
    (13, "page_view", "2024-06-10 10:00", {"path": "/pricing", "seconds": 25}),
    (13, "page_view", "2024-06-11 10:00", {"path": "/pricing", "seconds": 35}),
    (19, "page_view", "2024-06-14 10:00", {"path": "/products/p2", "seconds": 50}),
    (19, "add_to_cart", "2024-06-14 10:05", {"product_id": "P2", "quantity": 5}),
]

ICP = {
    "criteria": [
        {"on": "industry", "in": ["Software"], "weight": 2},
        {"on": "company_size", "range": [10, 500]},
        {"on": "total_revenue", "scale": [0, 1000]},
    ]
}
ALL = set(range(1, 21))
NEVER_ORDERED = {6, 9, 13, 15, 19}


def ext(n: int) -> str:
    return f"c{n:02d}"


def _ts(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


CUSTOMER_SCHEMA = pa.schema(
    [
        ("number", pa.int64()),  # becomes external_id "cNN"
        ("email", pa.string()),
        ("country", pa.string()),
        ("city", pa.string()),
        ("gender", pa.string()),
        ("birth_date", pa.date32()),
        ("signup_date", pa.date32()),
        ("company_size", pa.int64()),
        ("industry", pa.string()),
        ("plan", pa.string()),
        ("vip", pa.bool_()),
        ("last_seen", pa.timestamp("us")),
    ]
)
EVENT_SCHEMA = pa.schema(
    [
        ("external_id", pa.string()),
        ("event_type", pa.string()),
        ("timestamp", pa.timestamp("us")),
        ("revenue", pa.float64()),
        ("currency", pa.string()),
        ("order_id", pa.string()),
        ("properties", pa.string()),
        ("event_key", pa.string()),
    ]
)
ITEM_SCHEMA = pa.schema(
    [
        ("event_key", pa.string()),
        ("line_no", pa.int32()),
        ("product_id", pa.string()),
        ("product_name", pa.string()),
        ("quantity", pa.float64()),
        ("unit_price", pa.float64()),
    ]
)


def _table(rows: list[tuple], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist([dict(zip(schema.names, r, strict=True)) for r in rows], schema)


def shop_batch() -> Batch:
    people = [(*c[:-1], _ts(c[-1])) for c in CUSTOMERS]
    customers = _table(people, CUSTOMER_SCHEMA)
    customers = customers.drop_columns(["number"]).add_column(
        0, "external_id", pa.array([ext(c[0]) for c in CUSTOMERS])
    )
    rows, items = [], []
    for n, etype, at, revenue, order_id, props, products in ORDERS:
        key = f"{etype}:{order_id}"
        rows.append((ext(n), etype, _ts(at), revenue, "EUR", order_id, json.dumps(props), key))
        for line_no, (product, qty) in enumerate(products):
            items.append((key, line_no, product, f"Product {product}", float(qty), 1.0))
    for i, (n, etype, at, props) in enumerate(EVENTS):
        rows.append((ext(n), etype, _ts(at), None, None, None, json.dumps(props), f"e:{i}"))
    return Batch(
        customers=customers,
        events=_table(rows, EVENT_SCHEMA),
        items=_table(items, ITEM_SCHEMA),
    )


NEW_COLUMNS = {"vip": ibis.dtype("boolean"), "last_seen": ibis.dtype("timestamp")}


# -- the definitions -------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    id: str
    rule: dict[str, Any]
    expected: set[int]
    ref: str = REF


def attr(name: str, op: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    rule = {"type": "attribute", "attribute": name, "op": op, **extra}
    if value is not None:
        rule["value"] = value
    return rule


def trait(name: str, op: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    rule = {"type": "trait", "trait": name, "op": op, **extra}
    if value is not None:
        rule["value"] = value
    return rule


def performed(event: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "performed", "event": event, **extra}


def agg(fn: str, event: Any, op: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    rule = {"type": "aggregate", "fn": fn, "event": event, "op": op, **extra}
    if value is not None:
        rule["value"] = value
    return rule


def where(prop: str, op: str, value: Any = None) -> dict[str, Any]:
    f = {"property": prop, "op": op}
    if value is not None:
        f["value"] = value
    return f


WITH_ORDERS = ALL - NEVER_ORDERED

CASES = [
    # -- attributes: text ------------------------------------------------------------------
    Case("text-eq", attr("country", "eq", "France"), {1, 2, 11, 18}),
    Case("text-neq-includes-unknown", attr("country", "neq", "France"), ALL - {1, 2, 11, 18}),
    Case("text-in", attr("country", "in", ["Germany", "Spain"]), {3, 4, 5, 12, 13, 19}),
    Case(
        "text-not_in-includes-unknown",
        attr("country", "not_in", ["France", "Germany", "United States"]),
        {3, 7, 8, 10, 13, 14, 15, 17},
    ),
    Case("text-starts_with-any-case", attr("country", "starts_with", "united"), {6, 9, 10, 16, 20}),
    Case(
        "text-ends_with-any-case",
        attr("email", "ends_with", "@EXAMPLE.COM"),
        ALL - {3, 5, 6, 9, 12},
    ),
    Case("text-contains-any-case", attr("email", "contains", "SAMPLE"), {9, 12}),
    Case("text-exists", attr("email", "exists"), ALL - {6}),
    Case("text-missing-null", attr("email", "missing"), {6}),
    Case("text-missing-counts-empty-text", attr("city", "missing"), {8, 9}),
    Case("text-exists-skips-empty-text", attr("plan", "exists"), ALL - {8, 9, 15}),
    Case("text-in-plans", attr("plan", "in", ["pro", "enterprise"]), {1, 4, 5, 10, 11, 16, 19}),
    # -- attributes: numbers -----------------------------------------------------------------
    Case("number-eq", attr("company_size", "eq", 1), {1, 17}),
    Case("number-neq-includes-unknown", attr("company_size", "neq", 1), ALL - {1, 17}),
    Case("number-lt", attr("company_size", "lt", 5), {1, 9, 11, 12, 17, 20}),
    Case("number-lte", attr("company_size", "lte", 5), {1, 2, 9, 11, 12, 17, 20}),
    Case("number-gt", attr("company_size", "gt", 50), {5, 10, 16}),
    Case("number-gte", attr("company_size", "gte", 50), {4, 5, 10, 16}),
    Case("number-between", attr("company_size", "between", [10, 25]), {3, 7, 8, 13}),
    Case("number-in", attr("company_size", "in", [0, 1, 2]), {1, 9, 11, 17}),
    Case(
        "number-not_in-includes-unknown",
        attr("company_size", "not_in", [0, 1, 2]),
        ALL - {1, 9, 11, 17},
    ),
    Case("number-missing", attr("company_size", "missing"), {6, 15, 19}),
    Case("number-exists", attr("company_size", "exists"), ALL - {6, 15, 19}),
    # -- attributes: true/false (a custom column) -------------------------------------------
    Case("boolean-eq", attr("vip", "eq", True), {1, 5, 10, 16}),
    Case("boolean-eq-yes", attr("vip", "eq", "yes"), {1, 5, 10, 16}),
    Case("boolean-neq-includes-unknown", attr("vip", "neq", True), ALL - {1, 5, 10, 16}),
    Case("boolean-eq-false", attr("vip", "eq", False), {2, 3}),
    # -- attributes: dates -------------------------------------------------------------------
    Case("date-eq", attr("signup_date", "eq", "2024-06-14"), {19}),
    Case("date-before", attr("signup_date", "before", "2022-01-01"), {5, 9, 16, 20}),
    Case("date-after", attr("signup_date", "after", "2024-06-01"), {6, 15, 17, 19}),
    Case("date-lte", attr("signup_date", "lte", "2020-02-29"), {9, 16}),
    Case(
        "date-between",
        attr("signup_date", "between", ["2023-01-01", "2023-12-31"]),
        {2, 7, 12, 18},
    ),
    Case("date-within_last_days", attr("signup_date", "within_last_days", 30), {3, 4, 6, 15, 19}),
    Case("date-within_next_days", attr("signup_date", "within_next_days", 3), {6, 17}),
    Case(
        "date-more_than_days_ago",
        attr("signup_date", "more_than_days_ago", 365),
        {1, 2, 5, 8, 9, 12, 14, 16, 20},
    ),
    Case(
        "birthday-within_next_days-yearly",
        attr("birth_date", "within_next_days", 7, yearly=True),
        {1, 2, 3, 11, 16},
    ),
    Case(
        "birthday-within_last_days-yearly",
        attr("birth_date", "within_last_days", 7, yearly=True),
        {2, 5, 6, 16, 19},
    ),
    # Born on 29 February: on the 28th in a year without one.
    Case(
        "birthday-29-february-in-a-common-year",
        attr("birth_date", "within_next_days", 1, yearly=True),
        {7},
        ref="2023-02-28",
    ),
    Case(
        "birthday-29-february-looking-back-from-1-march",
        attr("birth_date", "within_last_days", 2, yearly=True),
        {7},
        ref="2023-03-01",
    ),
    # In a leap year the 29th exists: not a birthday on the 28th.
    Case(
        "birthday-29-february-in-a-leap-year",
        attr("birth_date", "within_next_days", 1, yearly=True),
        set(),
        ref="2024-02-28",
    ),
    # -- attributes: date and time (a custom column); a plain date means that whole day -----
    Case("timestamp-eq-day", attr("last_seen", "eq", "2024-06-14"), {2}),
    Case("timestamp-lte-day", attr("last_seen", "lte", "2024-06-14"), {2, 3, 4, 7, 10, 16}),
    Case("timestamp-gt-day", attr("last_seen", "gt", "2024-06-14"), {1, 6, 12}),
    Case("timestamp-neq-day", attr("last_seen", "neq", "2024-06-15"), ALL - {1, 12}),
    Case("timestamp-before", attr("last_seen", "before", "2024-01-01"), {7, 16}),
    Case("timestamp-after-instant", attr("last_seen", "after", "2024-06-15T08:00:00"), {1, 6}),
    Case(
        "timestamp-between-days",
        attr("last_seen", "between", ["2024-06-13", "2024-06-14"]),
        {2, 3},
    ),
    Case("timestamp-within_last_days", attr("last_seen", "within_last_days", 3), {1, 2, 3, 12}),
    Case("timestamp-within_next_days", attr("last_seen", "within_next_days", 2), {1, 6, 12}),
    Case("timestamp-more_than_days_ago", attr("last_seen", "more_than_days_ago", 30), {4, 7, 16}),
    # -- traits ------------------------------------------------------------------------------
    Case("total_orders-gte", trait("total_orders", "gte", 3), {1, 5, 7, 10, 14, 17}),
    Case("total_orders-eq-0", trait("total_orders", "eq", 0), NEVER_ORDERED),
    Case("total_revenue-gt", trait("total_revenue", "gt", 400), {1, 5, 10}),
    Case("total_revenue-net-of-refunds-lt-0", trait("total_revenue", "lt", 0), {9}),
    Case(
        "average_order_value-between",
        trait("average_order_value", "between", [50, 300]),
        {1, 2, 4, 8, 12, 16, 18, 20},
    ),
    Case("average_order_value-missing", trait("average_order_value", "missing"), NEVER_ORDERED),
    Case("first_order_date-before", trait("first_order_date", "before", "2023-01-01"), {16}),
    Case(
        "first_order_date-after",
        trait("first_order_date", "after", "2024-05-01"),
        {3, 4, 11, 17, 18},
    ),
    Case("last_order_date-eq", trait("last_order_date", "eq", "2024-06-15"), {2, 17}),
    Case(
        "last_order_date-within_last_days",
        trait("last_order_date", "within_last_days", 7),
        {1, 2, 3, 17, 18},
    ),
    Case("days_since_last_order-gt", trait("days_since_last_order", "gt", 100), {5, 8, 14, 16, 20}),
    Case("days_since_last_order-lte", trait("days_since_last_order", "lte", 6), {1, 2, 3, 17, 18}),
    Case("distinct_products-gte", trait("distinct_products", "gte", 3), {1, 7}),
    Case("distinct_products-eq-0", trait("distinct_products", "eq", 0), NEVER_ORDERED),
    Case(
        "most_frequent-channel-of-orders",
        trait("most_frequent", "eq", "web", property="channel", event="order"),
        {1, 4, 8, 10, 14, 17},
    ),
    # Customer 20 has one web and one store order: a tie goes to the first value.
    Case(
        "most_frequent-tie-takes-the-first-value",
        trait("most_frequent", "eq", "store", property="channel", event="order"),
        {2, 5, 12, 16, 20},
    ),
    Case(
        "most_frequent-of-any-event",
        trait("most_frequent", "starts_with", "/products", property="path"),
        {2, 3, 6, 19},
    ),
    Case("most_frequent-single", trait("most_frequent", "eq", "/home", property="path"), {1}),
    Case(
        "most_frequent-campaign",
        trait("most_frequent", "eq", "summer-sale", property="campaign", event="email_open"),
        {1, 13},
    ),
    Case("rfm_segment-eq", trait("rfm_segment", "eq", "At Risk"), {12, 14, 16, 20}),
    Case(
        "rfm_segment-in",
        trait("rfm_segment", "in", ["Champions", "Loyal Customers"]),
        {1, 7, 10, 17},
    ),
    Case("rfm_segment-one-each", trait("rfm_segment", "in", ["Promising", "Lost"]), {3, 8}),
    Case("rfm_segment-missing", trait("rfm_segment", "missing"), NEVER_ORDERED),
    Case(
        "rfm_segment-neq-includes-unscored",
        trait("rfm_segment", "neq", "At Risk"),
        ALL - {12, 14, 16, 20},
    ),
    Case("rfm_recency-eq", trait("rfm_recency", "eq", 5), {1, 2, 17}),
    Case("rfm_frequency-gte", trait("rfm_frequency", "gte", 4), {1, 5, 7, 10, 14, 17}),
    Case("rfm_monetary-lte", trait("rfm_monetary", "lte", 1), {3, 8, 11}),
    Case("icp_score-gte", trait("icp_score", "gte", 50), {1, 3, 5, 11, 14, 19}),
    Case("icp_score-between", trait("icp_score", "between", [25, 35]), {4, 7, 8, 10, 13, 16}),
    # -- performed / not performed -------------------------------------------------------------
    Case("performed-ever", performed("order"), WITH_ORDERS),
    Case("performed-at-least", performed("order", times={"op": "gte", "value": 4}), {1, 5, 17}),
    Case(
        "performed-at-most-includes-never",
        performed("order", times={"op": "lte", "value": 1}),
        {3, 8} | NEVER_ORDERED,
    ),
    Case(
        "performed-exactly",
        performed("order", times={"op": "eq", "value": 2}),
        {2, 4, 11, 12, 16, 18, 20},
    ),
    Case(
        "performed-times-between",
        performed("order", times={"op": "between", "value": [3, 4]}),
        {5, 7, 10, 14, 17},
    ),
    Case("window-last-7-days", performed("order", window={"last_days": 7}), {1, 2, 3, 17, 18}),
    Case(
        "window-last-30-days",
        performed("order", window={"last_days": 30}),
        {1, 2, 3, 4, 10, 11, 17, 18},
    ),
    Case("window-days-ago", performed("order", window={"days_ago": [30, 60]}), {1, 7, 11, 12}),
    Case(
        "window-days-ago-with-times",
        performed("order", window={"days_ago": [30, 60]}, times={"op": "gte", "value": 2}),
        {7},
    ),
    Case(
        "window-dates",
        performed("order", window={"dates": ["2024-01-01", "2024-01-31"]}),
        {1, 8, 14},
    ),
    Case(
        "window-dates-both-ends-included",
        performed(
            "order",
            window={"dates": ["2024-01-01", "2024-01-31"]},
            times={"op": "eq", "value": 2},
        ),
        {14},
    ),
    Case(
        "window-ever-any-event-last-7-days",
        performed("*", window={"last_days": 7}),
        {1, 2, 3, 6, 13, 17, 18, 19},
    ),
    Case(
        "performed-one-of-several-events",
        performed(["page_view", "add_to_cart"], times={"op": "gte", "value": 4}),
        {1, 6},
    ),
    Case(
        "property-text-eq",
        performed("order", where=[where("channel", "eq", "app")]),
        {1, 3, 7, 11, 18},
    ),
    Case(
        "property-text-neq",
        performed("order", where=[where("channel", "neq", "web")]),
        {1, 2, 3, 5, 7, 10, 11, 12, 16, 18, 20},
    ),
    Case(
        "property-in-with-window",
        performed("order", window={"last_days": 365}, where=[where("channel", "in", ["store"])]),
        {1, 2, 5, 10, 12, 20},
    ),
    Case(
        "property-not_in-includes-missing",
        performed(
            "page_view",
            where=[where("path", "not_in", ["/home", "/pricing"])],
            times={"op": "gte", "value": 2},
        ),
        {1, 6},
    ),
    Case(
        "property-contains-any-case",
        performed("refund", where=[where("reason", "contains", "SIZE")]),
        {4},
    ),
    Case(
        "property-exists", performed("refund", where=[where("reason", "exists")]), {2, 4, 8, 9, 20}
    ),
    Case(
        "property-missing-everywhere", performed("order", where=[where("coupon", "exists")]), set()
    ),
    Case(
        "property-number-gt",
        performed("page_view", where=[where("seconds", "gt", 60)]),
        {2, 6, 9},
    ),
    Case(
        "property-number-between-with-times",
        performed(
            "page_view",
            where=[where("seconds", "between", [30, 50])],
            times={"op": "gte", "value": 2},
        ),
        {6},
    ),
    Case(
        "property-text-and-number",
        performed(
            "page_view",
            where=[where("path", "starts_with", "/PRODUCTS"), where("seconds", "gte", 45)],
        ),
        {2, 3, 6, 19},
    ),
    Case(
        "property-number-skips-non-numbers",
        performed("add_to_cart", where=[where("quantity", "gte", 3)]),
        {1, 6, 19},
    ),
    Case(
        "property-number-eq",
        performed("order", where=[where("items", "eq", 100)]),
        {10},
    ),
    Case("not_performed-ever", {"type": "not_performed", "event": "order"}, NEVER_ORDERED),
    Case(
        "not_performed-in-window",
        {"type": "not_performed", "event": "order", "window": {"last_days": 90}},
        {5, 6, 8, 9, 13, 14, 15, 16, 19, 20},
    ),
    Case(
        "not_performed-with-property",
        {
            "type": "not_performed",
            "event": "email_open",
            "where": [where("campaign", "eq", "summer-sale")],
        },
        ALL - {1, 5, 13},
    ),
    # -- aggregates ------------------------------------------------------------------------
    Case(
        "sum-revenue-last-90-days",
        agg("sum", "order", "gt", 500, window={"last_days": 90}),
        {4, 10},
    ),
    Case(
        "sum-revenue-of-orders-and-refunds",
        agg("sum", ["order", "refund"], "gt", 400, window={"last_days": 90}),
        {1, 10},
    ),
    Case(
        "sum-revenue-with-property-filter",
        agg("sum", "order", "gte", 300, where=[where("channel", "eq", "store")]),
        {5, 10, 16},
    ),
    Case(
        "sum-revenue-eq-0-includes-none",
        agg("sum", "refund", "eq", 0),
        ALL - {2, 4, 8, 9, 20},
    ),
    Case(
        "sum-revenue-neq",
        agg("sum", "order", "neq", 0, window={"last_days": 30}),
        {1, 2, 3, 4, 10, 11, 17, 18},
    ),
    Case("avg-revenue", agg("avg", "order", "gte", 100), {4, 5, 10, 16}),
    Case("avg-revenue-missing", agg("avg", "order", "missing"), NEVER_ORDERED),
    Case("min-revenue", agg("min", "order", "lt", 20), {11, 17, 18}),
    Case("max-revenue", agg("max", "order", "lte", 30), {3, 11, 17}),
    Case("count-revenue", agg("count", "order", "eq", 3), {7, 10, 14}),
    Case("sum-property", agg("sum", "add_to_cart", "gte", 5, of="quantity"), {1, 19}),
    Case("avg-property", agg("avg", "page_view", "gt", 50, of="seconds"), {2, 3, 9}),
    Case("max-property", agg("max", "page_view", "between", [40, 60], of="seconds"), {1, 3, 19}),
    Case("min-property", agg("min", "add_to_cart", "eq", 1, of="quantity"), {3}),
    # A count counts the matching events, whatever the measure ("lots" included).
    Case(
        "count-counts-events-whatever-the-measure",
        agg("count", "add_to_cart", "eq", 1, of="quantity"),
        {3, 19},
    ),
    # -- and / or / not ----------------------------------------------------------------------
    Case(
        "not-includes-unknown",
        {"type": "not", "condition": attr("country", "eq", "France")},
        ALL - {1, 2, 11, 18},
    ),
    Case(
        "or",
        {
            "type": "or",
            "conditions": [attr("country", "eq", "Spain"), attr("company_size", "gte", 200)],
        },
        {3, 5, 10, 13},
    ),
    Case(
        "and-with-not",
        {
            "type": "and",
            "conditions": [
                performed("order", window={"last_days": 30}),
                {"type": "not", "condition": attr("country", "in", ["France"])},
            ],
        },
        {3, 4, 10, 17},
    ),
    # -- other segments (saved by the fixture) -----------------------------------------------
    Case(
        "in_segment-two-deep-and-static",
        {"type": "in_segment", "segment": "Nested"},
        {1, 2, 4, 5, 10, 11, 15, 16, 18},
    ),
    Case(
        "not_in_segment-rule",
        {"type": "not_in_segment", "segment": "Recent core"},
        ALL - {1, 2, 4, 11, 18},
    ),
    Case(
        "not_in_segment-static",
        {"type": "not_in_segment", "segment": "VIP list"},
        ALL - {5, 10, 15, 16},
    ),
    Case(
        "in_static-and-not_in_rule",
        {
            "type": "and",
            "conditions": [
                {"type": "in_segment", "segment": "VIP list"},
                {"type": "not_in_segment", "segment": "Recent buyers"},
            ],
        },
        {5, 15, 16},
    ),
    # -- random buckets (ids 1-20 follow the batch order) ------------------------------------
    Case(
        "random_bucket",
        {"type": "random_bucket", "from": 0, "to": 50},
        {1, 3, 6, 8, 10, 11, 13, 16, 19, 20},
    ),
    Case(
        "random_bucket-salted",
        {"type": "random_bucket", "from": 25, "to": 75, "salt": "x"},
        {5, 6, 7, 10, 11, 13, 15, 17, 19},
    ),
]

SAVED = [
    ("Recent buyers", performed("order", window={"last_days": 30})),
    ("Core markets", attr("country", "in", ["France", "Germany"])),
    (
        "Recent core",
        {
            "type": "and",
            "conditions": [
                {"type": "in_segment", "segment": "Recent buyers"},
                {"type": "in_segment", "segment": "Core markets"},
            ],
        },
    ),
    (
        "Nested",
        {
            "type": "or",
            "conditions": [
                {"type": "in_segment", "segment": "Recent core"},
                {"type": "in_segment", "segment": "VIP list"},
            ],
        },
    ),
    ("Big recent spenders", agg("sum", "order", "gt", 500, window={"last_days": 90})),
]


# -- backends ----------------------------------------------------------------------------------
BACKENDS = ["duckdb", "postgres", "spark"]


@contextlib.contextmanager
def _postgres_database():
    """A PostgreSQL database for one module (the conftest one is per test)."""
    if not POSTGRES_URL:
        pytest.skip("STRATA_TEST_POSTGRES_URL is not set: no PostgreSQL server to test against")
    name = f"strata_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = POSTGRES_URL.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _spark_url(request, home) -> str:
    """Like conftest's ``spark_url`` (which is per test), for a whole module."""
    try:
        import strata.warehouse.spark  # noqa: F401
    except ImportError:
        pytest.skip("Spark backend not available")
    try:
        request.getfixturevalue("spark_session")
    except pytest.FixtureLookupError:
        pytest.skip("Spark backend not available (no spark_session fixture in tests/conftest.py)")
    return f"spark://local[2]?location={home / 'spark'}"


@contextlib.contextmanager
def open_backend(request, backend: str, home):
    """A Strata installation on ``backend`` with a fresh catalog under ``home``."""
    with contextlib.ExitStack() as stack:
        if backend == "duckdb":
            url = f"duckdb://{home / 'warehouse.duckdb'}"
        elif backend == "postgres":
            url = stack.enter_context(_postgres_database())
        else:
            url = _spark_url(request, home)
        settings = Settings(
            home=home, database_url=f"sqlite:///{home / 'catalog.db'}", warehouse_url=url
        )
        app = stack.enter_context(Strata(settings))
        yield app


@dataclass
class Shop:
    backend: str
    app: Strata
    segs: Segments
    number: dict[int, int]  # customer_id -> customer number
    results: dict[str, set[int] | Exception]


def members_of(segs: Segments, rule: dict, ref: str, label: dict[int, Any]) -> set:
    """One rule's members, the way a segment is evaluated: its own compiler and query."""
    ids = segs.compiler(ReferenceTime.parse(ref)).members(parse_rule(rule)).to_pyarrow()
    return {label[i] for i in ids.column("customer_id").to_pylist()}


def evaluate(segs: Segments, cases: list[Case], label: dict[int, Any]) -> dict[str, Any]:
    """Members of every case (or the error it raised), in one query per reference time.

    Spark pays seconds per query, so all rules of one reference time share one compiler
    and become boolean columns of its one wide table; each rule's own ``members()``
    query is run only to find which rule a failing query came from.
    """
    results: dict[str, Any] = {}
    for ref in sorted({c.ref for c in cases}):
        group = [c for c in cases if c.ref == ref]
        compiler = segs.compiler(ReferenceTime.parse(ref))
        tests = {}
        for case in group:
            try:
                compiler.members(parse_rule(case.rule))
            except Exception as exc:
                results[case.id] = exc
                continue
            tests[case.id] = compiler.trace[-1][1]  # the rule's root node is visited last
        wide = compiler.wide()
        names = {f"c{i}": case_id for i, case_id in enumerate(tests)}
        try:
            table = wide.select(
                "customer_id", **{c: tests[case_id](wide) for c, case_id in names.items()}
            ).to_pyarrow()
        except Exception:
            for case in group:
                if case.id in tests:
                    try:
                        results[case.id] = members_of(segs, case.rule, ref, label)
                    except Exception as exc:
                        results[case.id] = exc
            continue
        ids = table.column("customer_id").to_pylist()
        for c, case_id in names.items():
            flags = table.column(c).to_pylist()
            results[case_id] = {label[i] for i, yes in zip(ids, flags, strict=True) if yes}
    return results


@pytest.fixture(scope="module", params=BACKENDS)
def shop(request, tmp_path_factory) -> Shop:
    backend = request.param
    with open_backend(request, backend, tmp_path_factory.mktemp(backend)) as app:
        ws = app.workspace(create=True)
        app.warehouse.load(ws.id, shop_batch(), new_columns=NEW_COLUMNS)
        segs = Segments(app)
        customers = app.warehouse.table(ws.id, "customers").to_pyarrow().to_pylist()
        number = {r["customer_id"]: int(r["external_id"][1:]) for r in customers}
        set_icp(segs, parse_icp(ICP))
        segs.save_static("VIP list", ["c05", "JACK@example.com", "c15", "paul@example.com"])
        for name, rule in SAVED:
            segs.save(SegmentSpec(name=name, rule=parse_rule(rule)), evaluate=False)
        results = evaluate(segs, CASES, number)
        yield Shop(backend, app, segs, number, results)


# -- the suite ---------------------------------------------------------------------------------
def test_the_shop_loads_with_ids_in_batch_order(shop):
    assert shop.number == {i: i for i in range(1, 21)}
    events = shop.app.warehouse.table(shop.segs.ws.id, "events").count().to_pyarrow().as_py()
    assert events == len(ORDERS) + len(EVENTS)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_definition_has_the_hand_computed_members(shop, case):
    got = shop.results[case.id]
    if isinstance(got, Exception):
        raise got
    assert sorted(got) == sorted(case.expected)


def test_every_node_type_and_operator_is_covered():
    from strata.segments import nodes as N

    def nodes(rule):
        yield rule
        for child in rule.get("conditions", []):
            yield from nodes(child)
        if "condition" in rule:
            yield from nodes(rule["condition"])

    used_types, used_ops, used_fns, used_traits = set(), set(), set(), set()
    for case in CASES:
        for node in nodes(case.rule):
            used_types.add(node["type"])
            used_ops.add(node.get("op"))
            used_fns.add(node.get("fn"))
            used_traits.add(node.get("trait"))
            used_ops |= {f["op"] for f in node.get("where", [])}
            if "times" in node:
                used_ops.add(node["times"]["op"])
    # Conditions on fitted models need a model and its scores: tests/test_models_core.py
    # (prediction) and tests/test_cluster.py (cluster) run them on every backend.
    model_types = {"prediction", "cluster"}
    assert {t.model_fields["type"].default for t in N.NODE_TYPES} - model_types <= used_types
    assert set(N.Op.__args__) <= used_ops
    assert {"sum", "avg", "min", "max", "count"} <= used_fns
    assert set(N.TRAITS) <= used_traits


def test_explain_shows_each_condition_with_the_value_it_looked_at(shop):
    rule = parse_rule(
        {
            "type": "and",
            "conditions": [
                agg("sum", "order", "gt", 500, window={"last_days": 90}),
                attr("country", "eq", "Germany"),
            ],
        }
    )
    compiler = shop.segs.compiler(ReferenceTime.parse(REF))
    dan = compiler.explain(rule, 4).to_dict()
    assert dan["holds"] is True
    spend, country = dan["conditions"]
    assert spend == {
        "holds": True,
        "condition": "sum of revenue of order events in the last 90 days",
        "value": 550.0,
        "needs": "> 500",
    }
    assert country == {
        "holds": True,
        "condition": "country",
        "value": "Germany",
        "needs": "= Germany",
    }

    anna = shop.segs.compiler(ReferenceTime.parse(REF)).explain(rule, 1)
    assert anna.holds is False
    assert [(c.holds, c.value) for c in anna.children] == [(False, 450.0), (False, "France")]
    assert render(anna).splitlines() == [
        "✗ all of",
        "  ✗ sum of revenue of order events in the last 90 days is 450.0, needs > 500",
        "  ✗ country is France, needs = Germany",
    ]


def test_explain_of_a_saved_segment_names_the_customer_and_the_reference(shop):
    out = shop.segs.explain(
        "Big recent spenders", "jack@example.com", as_of=ReferenceTime.parse(REF)
    )
    assert out["matches"] is True
    assert out["as_of"] == REF
    assert out["why"]["value"] == 4000.0  # 2,500 + 1,500; the order of 17 March is 90 days back
    assert out["text"] == (
        "✓ sum of revenue of order events in the last 90 days is 4000.0, needs > 500"
    )


def test_explain_shows_the_rfm_scores_behind_a_segment(shop):
    rule = parse_rule(trait("rfm_segment", "eq", "At Risk"))
    why = shop.segs.compiler(ReferenceTime.parse(REF)).explain(rule, 14).to_dict()
    assert why["holds"] is True
    assert why["details"] == {
        "recency score": 2,
        "frequency score": 4,
        "monetary score": 3,
        "days since last order": 135,
        "orders": 3,
        "revenue": 95.0,
    }


# -- errors ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def duck_shop(tmp_path_factory, request):
    with open_backend(request, "duckdb", tmp_path_factory.mktemp("errors")) as app:
        ws = app.workspace(create=True)
        app.warehouse.load(ws.id, shop_batch(), new_columns=NEW_COLUMNS)
        yield Segments(app)


def test_segments_naming_each_other_in_a_cycle_are_refused(duck_shop):
    segs = duck_shop
    segs.save(SegmentSpec(name="B", rule=parse_rule(attr("country", "eq", "France"))))
    segs.save(SegmentSpec(name="A", rule=parse_rule({"type": "in_segment", "segment": "B"})))
    with pytest.raises(InputError) as err:
        segs.save(
            SegmentSpec(name="B", rule=parse_rule({"type": "in_segment", "segment": "A"})),
            replace=True,
        )
    assert str(err.value) == "segments refer to each other in a cycle (A → B → A): break it"
    assert segs.get("B").definition == attr("country", "eq", "France")


def test_a_segment_naming_itself_is_refused(duck_shop):
    with pytest.raises(InputError, match=r"cycle \(Self → Self\)"):
        duck_shop.save(
            SegmentSpec(name="Self", rule=parse_rule({"type": "in_segment", "segment": "Self"}))
        )


def test_a_cycle_is_refused_by_the_compiler_itself(duck_shop):
    a = parse_rule({"type": "in_segment", "segment": "B"})
    b = parse_rule({"type": "not_in_segment", "segment": "A"})
    ctx = Context(
        warehouse=duck_shop.wh,
        workspace_id=duck_shop.ws.id,
        ref=ReferenceTime.parse(REF),
        segments={"A": SegmentRef(1, "A", "rule", a), "B": SegmentRef(2, "B", "rule", b)},
    )
    with pytest.raises(InputError, match="cycle"):
        Compiler(ctx).members(a)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            attr("favourite_colour", "eq", "red"),
            "unknown attribute 'favourite_colour'; customers have: external_id, email",
        ),
        (
            attr("total_revenue", "gt", 5),
            "unknown attribute 'total_revenue' (it is a trait: use type 'trait')",
        ),
        (attr("country", "gt", 5), "'country' is text: use eq, neq, in, not_in"),
        (
            attr("company_size", "contains", "5"),
            "'company_size' is a number: 'contains' works on text only",
        ),
        (
            attr("company_size", "before", "2024-01-01"),
            "'company_size' is a number: 'before' works on dates only",
        ),
        (attr("vip", "lt", True), "'vip' is true/false: use eq"),
        (attr("vip", "eq", "maybe"), "'vip' is true/false: 'maybe' cannot be compared with it"),
        (attr("signup_date", "eq", "soon"), "'signup_date' is a date: 'soon' cannot be compared"),
        (attr("company_size", "eq", "many"), "'company_size' is a number: 'many' cannot be"),
        (trait("rfm_segment", "gt", 3), "'rfm segment' is text: use eq"),
        (
            trait("total_orders", "within_last_days", 3),
            "'total orders' is a number: 'within_last_days' works on dates only",
        ),
        ({"type": "in_segment", "segment": "Nope"}, "no segment named 'Nope': create it first"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_wrong_definitions_are_one_line_input_errors(duck_shop, rule, message):
    with pytest.raises(InputError) as err:
        duck_shop.preview(parse_rule(rule), as_of=ReferenceTime.parse(REF))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"type": "attribute", "attribute": "country", "op": "like", "value": "x"}, "op"),
        ({"type": "attribute", "attribute": "country", "op": "eq"}, "'eq' needs a value"),
        (
            {"type": "trait", "trait": "lifetime", "op": "gt", "value": 1},
            "unknown trait 'lifetime'",
        ),
        ({"type": "whatever"}, "unknown condition type 'whatever'"),
        (
            {"type": "performed", "event": "order", "times": {"op": "contains", "value": "x"}},
            "'times' compares a count",
        ),
        (attr("signup_date", "within_last_days", -1), "a whole number of days"),
        (attr("country", "between", [1]), "'between' needs a list of two values"),
        (attr("country", "eq", "France", yearly=True), "'yearly' goes with"),
        ({"type": "random_bucket", "from": 60, "to": 10}, "'from' must be below 'to'"),
    ],
)
def test_malformed_rules_are_refused_before_compiling(data, message):
    with pytest.raises(InputError) as err:
        parse_rule(data)
    assert str(err.value).startswith("invalid segment rule: ")
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_sql_of_a_reference_rule_on_duckdb(duck_shop):
    # Bounds are computed in Python from the reference time: no backend date arithmetic.
    rule = parse_rule(performed("order", window={"last_days": 30}))
    expr = duck_shop.compiler(ReferenceTime.parse(REF)).members(rule)
    assert ibis.to_sql(expr, dialect="duckdb").strip() == SNAPSHOT.strip()


CUSTOMER_COLUMNS = [
    "customer_id",
    "external_id",
    "email",
    "name",
    "phone",
    "country",
    "city",
    "gender",
    "birth_date",
    "signup_date",
    "company_size",
    "industry",
    "plan",
    "created_at",
    "updated_at",
    "vip",
    "last_seen",
]
SNAPSHOT = (
    """
SELECT
  "t8"."customer_id"
FROM (
  SELECT
    "t7".*
    EXCLUDE ("_x0_k")
  FROM (
    SELECT
"""
    + "".join(f'      "t2"."{c}",\n' for c in CUSTOMER_COLUMNS)
    + """      "t6"."_x0_k",
      "t6"."_x0_n"
    FROM "ws_1"."customers" AS "t2"
    LEFT OUTER JOIN (
      SELECT
        "t4"."customer_id" AS "_x0_k",
        "t4"."n" AS "_x0_n"
      FROM (
        SELECT
          "t3"."customer_id",
          COUNT(*) AS "n"
        FROM (
          SELECT
            *
          FROM "ws_1"."events" AS "t1"
          WHERE
            "t1"."timestamp" < MAKE_TIMESTAMP(2024, 6, 16, 0, 0, 0.0)
            AND "t1"."event_type" IN ('order')
            AND "t1"."timestamp" >= MAKE_TIMESTAMP(2024, 5, 17, 0, 0, 0.0)
        ) AS "t3"
        GROUP BY
          1
      ) AS "t4"
    ) AS "t6"
      ON "t2"."customer_id" = "t6"."_x0_k"
  ) AS "t7"
) AS "t8"
WHERE
  COALESCE(COALESCE("t8"."_x0_n", 0) >= 1, FALSE)
"""
)


# -- the same members on every backend, on a generated business ------------------------------
GENERATED_END = dt.date(2025, 6, 30)
GENERATED_RULES = {
    "core markets buying lately": {
        "type": "and",
        "conditions": [
            attr("country", "in", ["DE", "FR"]),
            performed("order", window={"last_days": 90}),
        ],
    },
    "spent 500 in a year": agg("sum", "order", "gt", 500, window={"last_days": 365}),
    "champions": trait("rfm_segment", "eq", "Champions"),
    "slipping away": trait("rfm_segment", "in", ["At Risk", "Can't Lose Them", "Hibernating"]),
    "browsing a lot": performed(
        "page_view", window={"last_days": 30}, times={"op": "gte", "value": 3}
    ),
    "lapsed buyers": {
        "type": "and",
        "conditions": [
            performed("order"),
            {"type": "not_performed", "event": "order", "window": {"last_days": 180}},
        ],
    },
    "web first": trait("most_frequent", "eq", "web", property="channel", event="order"),
    "big baskets": agg("avg", "add_to_cart", "gte", 2, of="quantity"),
    "birthday this month": attr("birth_date", "within_next_days", 30, yearly=True),
    "sample or 30-60 days": {
        "type": "or",
        "conditions": [
            {"type": "random_bucket", "from": 0, "to": 10},
            trait("days_since_last_order", "between", [30, 60]),
        ],
    },
    "many products": trait("distinct_products", "gte", 5),
    "urgent tickets": performed("support_ticket", where=[where("priority", "eq", "high")]),
    "old and small": {
        "type": "and",
        "conditions": [
            attr("signup_date", "more_than_days_ago", 365),
            trait("total_revenue", "lt", 100),
        ],
    },
    "big orders": trait("average_order_value", "gt", 100),
}


def _generated_members(request, backend: str, home) -> dict[str, set[str]]:
    with open_backend(request, backend, home) as app:
        ws = app.workspace(create=True)
        app.warehouse.load(ws.id, generate_business(2000, end=GENERATED_END, years=2))
        segs = Segments(app)
        customers = app.warehouse.table(ws.id, "customers").to_pyarrow().to_pylist()
        external = {r["customer_id"]: r["external_id"] for r in customers}
        ref = GENERATED_END.isoformat()
        return {
            name: members_of(segs, rule, ref, external) for name, rule in GENERATED_RULES.items()
        }


@pytest.fixture(scope="module")
def generated_on_duckdb(request, tmp_path_factory) -> dict[str, set[str]]:
    return _generated_members(request, "duckdb", tmp_path_factory.mktemp("generated-duckdb"))


def test_generated_rules_pick_real_subsets(generated_on_duckdb):
    for name, members in generated_on_duckdb.items():
        assert 0 < len(members) < 2000, name


@pytest.mark.parametrize("backend", ["postgres", "spark"])
def test_generated_business_has_the_same_members_on_every_backend(
    backend, request, tmp_path_factory, generated_on_duckdb
):
    other = _generated_members(request, backend, tmp_path_factory.mktemp(f"generated-{backend}"))
    for name in GENERATED_RULES:
        only_duck = sorted(generated_on_duckdb[name] - other[name])[:5]
        only_other = sorted(other[name] - generated_on_duckdb[name])[:5]
        assert (only_duck, only_other) == ([], []), name
