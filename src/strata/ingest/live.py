"""Live event ingest: Segment-spec calls in, durably queued, loaded into the warehouse,
memberships of the touched customers updated incrementally.

>>> received = utcnow()
>>> calls = parse_calls([{"type": "track", "userId": "u1", "event": "Signed Up"}], received)
>>> calls[0]["event"], calls[0]["userId"], len(calls[0]["messageId"])
('Signed Up', 'u1', 32)
>>> event_type("Product Added"), event_type("Order Completed")
('product_added', 'order')

How a call becomes warehouse rows
---------------------------------
* **Who**: the customer's ``external_id`` is the call's ``userId``, else its
  ``anonymousId``. An anonymous visitor is a customer of their own; nothing stitches
  an ``anonymousId`` to a ``userId`` later (``alias`` and ``group`` are accepted, counted
  and otherwise ignored).
* **identify**: traits set customer columns. Standard traits go to the standard
  columns (``email``, ``name`` or ``firstName`` + ``lastName``, ``phone``,
  ``address.country``/``address.city`` (or top-level ``country``/``city``), ``gender``,
  ``birthday`` -> ``birth_date``, ``createdAt`` -> ``signup_date``, ``plan``,
  ``industry``, ``company.employee_count`` -> ``company_size``, ``company.industry``,
  ``company.plan``). Every other scalar trait becomes a typed attribute column
  (boolean, number or text, from its first value), named like an import names its
  columns (``loyaltyTier`` -> ``loyalty_tier``); at most :data:`MAX_LIVE_COLUMNS` such
  columns per workspace, later new ones are ignored and counted in the log. A null
  trait leaves the stored value. Several identifies of one customer in one load merge
  in order, the last value winning.
* **track**: ``event_type`` is the event name in lower snake case (``Product Added``
  -> ``product_added``); a purchase name the importer knows (``Order Completed``,
  ``purchase``…) with an amount (``revenue``, else ``total``, else the sum of its
  ``products``' ``price`` x ``quantity``) is an ``order`` (``order_id``, ``currency``
  from the properties, ``products`` -> order lines); a refund name (``Order Refunded``…)
  a ``refund`` with negative revenue. **page** is ``page_view`` and **screen**
  ``screen_view``, as the generator names them, with ``name`` and ``category`` added
  to the properties.
* **Keys**: ``event_key`` is ``"seg:" + messageId``, so a message sent twice is stored
  once. A call without ``messageId`` gets one on receipt, before it is stored, so
  a replay of the queue keeps it.
* **When**: ``timestamp`` (ISO 8601; none: the receipt time), corrected for the
  client's clock with ``sentAt`` as Segment does (``timestamp + receivedAt - sentAt``),
  and never later than the receipt time. Stored as UTC.

The queue and the loader
------------------------
:meth:`LiveIngest.accept` stores each request's calls as one ``IngestBatch`` row and
returns once it is committed: a 200 means "durably stored". A loader thread takes
rows in ``id`` order (up to :data:`LOAD_EVENTS` events a round, all workspaces), loads
each workspace's share with one :meth:`Warehouse.load` (under the service's write
lock), then re-evaluates the segments their events and attributes can move: for the
touched customers only (:meth:`Segments.update_customers`), or in full when the loader
has measured that to be cheaper (many touched customers in a small workspace: the
restricted query carries every id). A row is deleted once
its events are loaded *and* its customers' memberships updated, so a server killed
at any point replays it on the next start (the event-key dedupe makes that
harmless): recovery is simply loading what the queue still holds, first.

* No ``ImportRun`` is recorded: live events carry ``import_id`` null.
* Segments ranking everyone against everyone (RFM and what names them) are not
  refreshed per micro-batch; the time-based schedule does them.
* Events count in a segment from the first evaluation whose reference instant is past
  their timestamp, so the loader updates a customer's memberships once "now" has passed
  their latest event (at once, unless the event says it happens a moment later).
* **Failures** never stop the thread: the error is logged, the rows are kept, and the
  workspace is retried after a back-off, one row at a time. A row that fails alone
  :data:`MAX_FAILURES` times while the warehouse itself works (an empty load succeeds)
  is moved aside: written to ``$STRATA_HOME/ingest-dead-letter/<id>.json`` with the
  reason, deleted from the queue and logged at ERROR.
* **Time-based re-evaluation**: every ``time_refresh_seconds`` (setting
  ``STRATA_TIME_REFRESH_SECONDS``, default 300) every workspace's dynamic segments whose
  rules depend on time passing (:func:`depends_on_time`) or rank everyone
  (:func:`ranks_everyone`) are refreshed, recording joins and exits as any refresh does.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import fcntl
import logging
import re
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import ibis
import ibis.expr.datatypes as idt
import orjson
import pyarrow as pa
import sqlalchemy as sa
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from strata import plans
from strata.catalog import Setting, Workspace
from strata.catalog.models import IngestBatch, utcnow
from strata.context import Strata
from strata.errors import BadRequest, NotFound, PlanLimit
from strata.ingest.mapping import normalise_header
from strata.ingest.presets.generic import ORDER_NAMES, REFUND_NAMES
from strata.privacy.subjects import Suppressions
from strata.segments import nodes as N
from strata.segments.compile import RULE_KINDS, SegmentRef
from strata.segments.engine import GLOBAL_TRAITS, Segments, dependencies
from strata.segments.reference import ReferenceTime
from strata.warehouse import Batch

log = logging.getLogger("strata.ingest")

#: Events the loader takes in one round (all workspaces together).
LOAD_EVENTS = 50_000
#: Queue rows read in one round at most.
LOAD_ROWS = 1_000
#: New attribute columns live traits may add to one workspace.
MAX_LIVE_COLUMNS = 50
#: Failures of one row, loaded alone, before it is moved aside.
MAX_FAILURES = 3
#: Latencies kept for :meth:`LiveIngest.latencies`.
LATENCY_WINDOW = 10_000
#: The file server processes take turns on to be the one loader (in ``STRATA_HOME``).
LOADER_LOCK = "ingest-loader.lock"
#: How often a process that is not the loader tries to become it (seconds).
LOCK_RETRY = 2.0
#: Rows held back by a failing workspace before the loader stops taking new ones.
MAX_HELD_EVENTS = 200_000
#: Customers a restricted evaluation costs as much as, beyond those it evaluates.
_FIXED_IDS = 200
#: The catalog setting holding the columns live traits created in a workspace.
COLUMNS_SETTING = "live_ingest:columns"

_RESERVED = {"customer_id", "external_id", "created_at", "updated_at"}


# -- the calls, validated at the edge ---------------------------------------------------------
Id = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class _Call(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    userId: Id | None = None
    anonymousId: Id | None = None
    messageId: Annotated[str, StringConstraints(max_length=255)] | None = None
    timestamp: dt.datetime | None = None
    sentAt: dt.datetime | None = None
    context: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _someone(self) -> _Call:
        if not self.userId and not self.anonymousId:
            raise ValueError("a call needs a userId or an anonymousId")
        return self


class Identify(_Call):
    type: Literal["identify"]
    traits: dict[str, Any] | None = None


class Track(_Call):
    type: Literal["track"]
    event: Name
    properties: dict[str, Any] | None = None


class Page(_Call):
    type: Literal["page"]
    name: Annotated[str, StringConstraints(max_length=200)] | None = None
    category: Annotated[str, StringConstraints(max_length=200)] | None = None
    properties: dict[str, Any] | None = None


class Screen(Page):
    type: Literal["screen"]  # type: ignore[assignment]


class Group(_Call):
    type: Literal["group"]
    groupId: Id
    traits: dict[str, Any] | None = None


class Alias(_Call):
    type: Literal["alias"]
    previousId: Id
    userId: Id  # type: ignore[assignment]


Call = Annotated[Identify | Track | Page | Screen | Group | Alias, Field(discriminator="type")]
CALL_TYPES = ("identify", "track", "page", "screen", "group", "alias")
_CALLS = TypeAdapter(list[Call])


def parse_calls(
    raw: list[Any],
    received_at: dt.datetime,
    *,
    sent_at: Any = None,
    where: str = "batch",
    single: bool = False,
) -> list[dict[str, Any]]:
    """Validate Segment calls; the messages to queue, or :class:`BadRequest` naming the call.

    ``received_at`` (naive UTC) is the default timestamp and the clock-skew anchor;
    ``sent_at`` is the batch's ``sentAt``. Messages keep what the loader needs:
    ``type``, ``userId``, ``anonymousId``, ``messageId`` (made here if missing),
    ``timestamp`` (ISO, UTC), and ``event``/``name``/``category``/``properties``/``traits``.
    """
    try:
        calls = _CALLS.validate_python(raw)
    except ValidationError as exc:
        raise BadRequest(_reason(exc, raw, where, single)) from None
    batch_sent = _utc(_datetime(sent_at)) if sent_at is not None else None
    out = []
    for call in calls:
        msg: dict[str, Any] = {"type": call.type, "messageId": call.messageId or uuid.uuid4().hex}
        if call.userId:
            msg["userId"] = call.userId
        if call.anonymousId:
            msg["anonymousId"] = call.anonymousId
        msg["timestamp"] = _when(call.timestamp, call.sentAt or batch_sent, received_at)
        if isinstance(call, Track):
            msg["event"] = call.event
            if call.properties:
                msg["properties"] = call.properties
        elif isinstance(call, Page):
            props = dict(call.properties or {})
            for key in ("name", "category"):
                value = getattr(call, key)
                if value is not None:
                    props.setdefault(key, value)
            if props:
                msg["properties"] = props
        elif isinstance(call, Identify) and call.traits:
            msg["traits"] = call.traits
        out.append(msg)
    return out


def _reason(exc: ValidationError, raw: list[Any], where: str, single: bool) -> str:
    err = exc.errors()[0]
    loc = list(err["loc"])
    index = loc.pop(0) if loc and isinstance(loc[0], int) else 0
    if loc and loc[0] in CALL_TYPES:
        loc.pop(0)
    place = where if single else f"{where}[{index}]"
    path = ".".join(str(p) for p in loc)
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "union_tag_not_found":
        msg = f"needs a 'type': one of {', '.join(CALL_TYPES)}"
    elif err["type"] == "union_tag_invalid":
        got = raw[index].get("type") if isinstance(raw[index], dict) else None
        msg = f"unknown type {got!r}; use one of {', '.join(CALL_TYPES)}"
    elif err["type"] == "model_type":
        msg = "a call must be a JSON object"
    return f"{place}.{path}: {msg}" if path else f"{place}: {msg}"


_DATETIME = TypeAdapter(dt.datetime)


def _datetime(value: Any) -> dt.datetime:
    try:
        return _DATETIME.validate_python(value)
    except ValidationError:
        raise BadRequest(f"sentAt: {value!r} is not an ISO 8601 date and time") from None


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _when(ts: dt.datetime | None, sent: dt.datetime | None, received: dt.datetime) -> str:
    """The event's time: corrected by the client's clock skew, never after receipt."""
    if ts is None:
        when = received
    else:
        when = _utc(ts)
        if sent is not None:
            with contextlib.suppress(OverflowError):
                when = when + (received - _utc(sent))
        when = min(when, received)
    return when.isoformat(timespec="microseconds")


# -- names and values -------------------------------------------------------------------------
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def snake(name: str) -> str:
    """``"Product Added"`` -> ``"product_added"``, ``"loyaltyTier"`` -> ``"loyalty_tier"``."""
    return normalise_header(_CAMEL.sub("_", name))


def event_type(name: str) -> str:
    """A track event's ``event_type``: ``order``/``refund`` for purchase and refund names
    the importer knows, else the name in lower snake case (an amount is checked apart)."""
    norm = snake(name) or "event"
    if norm in ORDER_NAMES:
        return "order"
    if norm in REFUND_NAMES:
        return "refund"
    return norm


def column_name(trait: str) -> str | None:
    """The customer column a custom trait goes to, or None if it cannot have one."""
    name = snake(trait)
    if not name:
        return None
    if not name[0].isalpha():
        name = "t_" + name
    name = name[:63].rstrip("_")
    return None if name in _RESERVED else name


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if value == value and abs(value) != float("inf") else None
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if number == number and abs(number) != float("inf") else None
    return None


def _coerce(value: Any, dtype: idt.DataType) -> Any:
    """``value`` as a ``dtype`` column value, or None when it is not one."""
    if value is None or isinstance(value, dict | list):
        return None
    if dtype.is_string():
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)[:1000]
    if dtype.is_boolean():
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
            return value.strip().lower() == "true"
        return None
    if dtype.is_integer():
        number = _number(value)
        return int(number) if number is not None and number.is_integer() else None
    if dtype.is_floating():
        return _number(value)
    if dtype.is_date() or dtype.is_timestamp():
        if not isinstance(value, str):
            return None
        text = value.strip().replace("Z", "+00:00")
        try:
            if dtype.is_date():
                return dt.date.fromisoformat(text[:10])
            return _utc(dt.datetime.fromisoformat(text))
        except ValueError:
            return None
    return None


def _new_type(value: Any) -> idt.DataType | None:
    if isinstance(value, bool):
        return idt.boolean
    if isinstance(value, int | float):
        return idt.float64
    if isinstance(value, str):
        return idt.string
    return None


def trait_values(traits: dict[str, Any]) -> dict[str, Any]:
    """Traits as ``column -> raw value``: standard traits on their columns, other scalar
    traits on their sanitised names (values still to be typed)."""
    out: dict[str, Any] = {}
    address = traits.get("address") if isinstance(traits.get("address"), dict) else {}
    company = traits.get("company") if isinstance(traits.get("company"), dict) else {}
    for key, value in traits.items():
        if value is None or isinstance(value, dict | list) or key == "id":
            continue
        name = _STANDARD_TRAITS.get(key) or column_name(key)
        if name is not None and name not in {"first_name", "last_name"}:
            out[name] = value
    if "name" not in out:
        first = traits.get("firstName", traits.get("first_name"))
        last = traits.get("lastName", traits.get("last_name"))
        full = " ".join(str(p).strip() for p in (first, last) if p not in (None, "")).strip()
        if full:
            out["name"] = full
    for key, column in (("country", "country"), ("city", "city")):
        if address.get(key) is not None:
            out.setdefault(column, address[key])
    for key, column in (
        ("employee_count", "company_size"),
        ("employees", "company_size"),
        ("industry", "industry"),
        ("plan", "plan"),
    ):
        if company.get(key) is not None:
            out.setdefault(column, company[key])
    return out


_STANDARD_TRAITS = {
    "birthday": "birth_date",
    "createdAt": "signup_date",
    "created_at": "signup_date",
    "firstName": "first_name",
    "lastName": "last_name",
    "employee_count": "company_size",
}


# -- from queued messages to a warehouse batch ------------------------------------------------
@dataclass
class Built:
    """One workspace's share of a round, ready to load, and what it touches."""

    batch: Batch
    new_columns: dict[str, idt.DataType]
    external_ids: list[str]
    event_types: set[str]
    attributes: set[str]
    #: Latest event time (ISO), None without events.
    latest: str | None
    events: int = 0
    ignored_columns: collections.Counter = field(default_factory=collections.Counter)
    other_calls: int = 0


def build_batch(
    messages: Iterable[dict[str, Any]],
    schema: ibis.Schema,
    *,
    live_columns: Sequence[str] = (),
    max_columns: int = MAX_LIVE_COLUMNS,
) -> Built:
    """Queued messages of one workspace as a :class:`Batch` (see the module's rules).

    ``schema`` is the workspace's ``customers`` schema; ``live_columns`` the columns
    live traits already created there (they count against ``max_columns``).
    """
    customers: dict[str, dict[str, Any]] = {}
    new_columns: dict[str, idt.DataType] = {}
    room = max_columns - len(live_columns)
    ignored: collections.Counter = collections.Counter()
    ev: dict[str, list] = {k: [] for k in _EVENT_COLUMNS}
    items: dict[str, list] = {k: [] for k in _ITEM_COLUMNS}
    types: set[str] = set()
    attributes: set[str] = set()
    latest: str | None = None
    other = 0
    for msg in messages:
        kind = msg["type"]
        if kind in ("group", "alias"):
            other += 1
            continue
        ext = msg.get("userId") or msg["anonymousId"]
        attrs = customers.setdefault(ext, {})
        if kind == "identify":
            for name, raw in trait_values(msg.get("traits") or {}).items():
                dtype = schema.get(name) if name in schema else new_columns.get(name)
                if dtype is None:
                    dtype = _new_type(raw)
                    if dtype is None:
                        continue
                    if room <= 0:
                        ignored[name] += 1
                        continue
                    room -= 1
                    new_columns[name] = dtype
                value = _coerce(raw, dtype)
                if value is not None:
                    attrs[name] = value
                    attributes.add(name)
            continue
        props = msg.get("properties") or {}
        if kind == "track":
            etype = event_type(msg["event"])
        else:
            etype = "page_view" if kind == "page" else "screen_view"
        revenue = currency = order_id = None
        products = props.get("products") if isinstance(props.get("products"), list) else []
        if etype in ("order", "refund"):
            revenue = _number(props.get("revenue"))
            if revenue is None:
                revenue = _number(props.get("total"))
            if revenue is None:
                revenue = _products_total(products)
            if revenue is None:
                etype = snake(msg["event"]) or "event"  # a purchase name without an amount
                products = []
            elif etype == "refund":
                revenue = -abs(revenue)
        else:
            revenue = _number(props.get("revenue"))
        if revenue is not None or etype in ("order", "refund"):
            cur = props.get("currency")
            currency = str(cur).upper()[:8] if isinstance(cur, str) and cur else None
        oid = props.get("order_id", props.get("orderId"))
        if oid is not None and not isinstance(oid, dict | list):
            order_id = str(oid)[:255]
        key = "seg:" + msg["messageId"]
        ts = msg["timestamp"]
        latest = ts if latest is None or ts > latest else latest
        ev["external_id"].append(ext)
        ev["event_type"].append(etype)
        ev["timestamp"].append(ts)
        ev["revenue"].append(revenue)
        ev["currency"].append(currency)
        ev["order_id"].append(order_id)
        ev["properties"].append(orjson.dumps(props).decode() if props else None)
        ev["event_key"].append(key)
        types.add(etype)
        if etype == "order":
            for line_no, p in enumerate(x for x in products if isinstance(x, dict)):
                pid = p.get("product_id", p.get("sku", p.get("id")))
                items["event_key"].append(key)
                items["line_no"].append(line_no)
                items["product_id"].append(None if pid is None else str(pid)[:255])
                name = p.get("name")
                items["product_name"].append(None if name is None else str(name)[:500])
                quantity = _number(p.get("quantity"))
                items["quantity"].append(1.0 if quantity is None else quantity)
                items["unit_price"].append(_number(p.get("price")))
    columns = sorted({c for attrs in customers.values() for c in attrs})
    dtypes = {c: (schema[c] if c in schema else new_columns[c]) for c in columns}
    cust = pa.table(
        {
            "external_id": pa.array(list(customers), pa.string()),
            **{
                c: pa.array([a.get(c) for a in customers.values()], dtypes[c].to_pyarrow())
                for c in columns
            },
        }
    )
    events = None
    if ev["event_key"]:
        events = pa.table(
            {
                "external_id": pa.array(ev["external_id"], pa.string()),
                "event_type": pa.array(ev["event_type"], pa.string()),
                "timestamp": pa.array(ev["timestamp"], pa.string()).cast(pa.timestamp("us")),
                "revenue": pa.array(ev["revenue"], pa.float64()),
                "currency": pa.array(ev["currency"], pa.string()),
                "order_id": pa.array(ev["order_id"], pa.string()),
                "properties": pa.array(ev["properties"], pa.string()),
                "event_key": pa.array(ev["event_key"], pa.string()),
            }
        )
    item_table = None
    if items["event_key"]:
        item_table = pa.table(
            {
                "event_key": pa.array(items["event_key"], pa.string()),
                "line_no": pa.array(items["line_no"], pa.int32()),
                "product_id": pa.array(items["product_id"], pa.string()),
                "product_name": pa.array(items["product_name"], pa.string()),
                "quantity": pa.array(items["quantity"], pa.float64()),
                "unit_price": pa.array(items["unit_price"], pa.float64()),
            }
        )
    return Built(
        Batch(customers=cust, events=events, items=item_table),
        new_columns,
        list(customers),
        types,
        attributes,
        latest,
        events=len(ev["event_key"]),
        ignored_columns=ignored,
        other_calls=other,
    )


_EVENT_COLUMNS = (
    "external_id",
    "event_type",
    "timestamp",
    "revenue",
    "currency",
    "order_id",
    "properties",
    "event_key",
)
_ITEM_COLUMNS = ("event_key", "line_no", "product_id", "product_name", "quantity", "unit_price")


def _products_total(products: list) -> float | None:
    total, found = 0.0, False
    for p in products:
        if isinstance(p, dict):
            price = _number(p.get("price"))
            if price is not None:
                quantity = _number(p.get("quantity"))
                total += price * (1.0 if quantity is None else quantity)
                found = True
    return round(total, 6) if found else None


# -- which segments time moves ----------------------------------------------------------------
_TIME_TRAITS = {"days_since_last_order", "icp_score"}


def depends_on_time(
    rule: N.Rule, refs: dict[str, SegmentRef], _seen: frozenset[str] = frozenset()
) -> bool:
    """Whether ``rule``'s members can change with nothing but time passing: relative
    windows (``last_days``, ``days_ago``), day operators (``within_last_days``,
    ``within_next_days``, ``more_than_days_ago``, birthdays with ``yearly``), days since
    the last order, cluster features; also through the segments it names."""
    for node in N.walk(rule):
        if isinstance(node, N.Comparison) and node.op in N.DAY_OPS:
            return True
        if isinstance(node, N.Trait) and node.trait in _TIME_TRAITS:
            return True
        if isinstance(node, N.EventScope):
            if node.window.last_days is not None or node.window.days_ago is not None:
                return True
            if any(f.op in N.DAY_OPS for f in node.where):
                return True
        if isinstance(node, N.Cluster):
            return True
        if isinstance(node, N.InSegment | N.NotInSegment):
            ref = refs.get(node.segment)
            inner = ref.rule if ref and node.segment not in _seen else None
            if inner is not None and depends_on_time(inner, refs, _seen | {node.segment}):
                return True
    return False


def ranks_everyone(
    rule: N.Rule, refs: dict[str, SegmentRef], _seen: frozenset[str] = frozenset()
) -> bool:
    """Whether a customer's membership in ``rule`` depends on the other customers'
    data (RFM scores, top/bottom percent of a prediction), directly or through a
    segment it names."""
    for node in N.walk(rule):
        if isinstance(node, N.Trait) and node.trait in GLOBAL_TRAITS:
            return True
        if isinstance(node, N.Prediction) and node.ranked is not None:
            return True
        if isinstance(node, N.InSegment | N.NotInSegment):
            ref = refs.get(node.segment)
            inner = ref.rule if ref and node.segment not in _seen else None
            if inner is not None and ranks_everyone(inner, refs, _seen | {node.segment}):
                return True
    return False


def scheduled_segments(segs: Segments) -> list[str]:
    """The dynamic, unpinned segments of a workspace that the time-based schedule refreshes."""
    segments = segs.list()
    refs = segs.refs(segments)
    names = []
    for seg in segments:
        if seg.kind not in RULE_KINDS or not seg.definition or seg.as_of is not None:
            continue
        rule = N.parse_rule(seg.definition)
        if depends_on_time(rule, refs) or ranks_everyone(rule, refs):
            names.append(seg.name)
    return names


# -- the queue and its loader -----------------------------------------------------------------
_QUEUE = IngestBatch.__table__


@dataclass
class _Row:
    id: int
    workspace_id: int
    payload: bytes
    events: int
    received_at: dt.datetime


@dataclass
class _Loaded:
    """Rows whose events are in the warehouse, waiting for their memberships."""

    rows: list[_Row]
    customer_ids: list[int]
    event_types: set[str]
    attributes: set[str]
    new_customers: bool
    latest: dt.datetime | None
    failures: int = 0


class LiveIngest:
    """The queue of accepted events and the loader that empties it.

    >>> ingest = LiveIngest(app, write_lock=threading.RLock())  # doctest: +SKIP
    >>> ingest.start(); ingest.accept(ws.id, parse_calls(calls, utcnow()))  # doctest: +SKIP
    >>> ingest.wait_idle(10)  # doctest: +SKIP
    True
    """

    def __init__(
        self,
        app: Strata,
        *,
        write_lock: threading.RLock,
        time_refresh_seconds: float | None = None,
        load_events: int = LOAD_EVENTS,
    ):
        self.app = app
        self.write_lock = write_lock
        #: Seconds between time-based refreshes (default: the setting); tests shorten it.
        self.time_refresh_seconds = time_refresh_seconds
        self.load_events = load_events
        #: First back-off after a failed load (seconds; doubles with each failure).
        self.backoff = 0.5
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._loader_app: Strata | None = None
        #: Ids of queued rows taken and not yet deleted.
        self._in_hand: set[int] = set()
        self._held: dict[int, list[_Row]] = {}
        self._retry_at: dict[int, float] = {}
        self._one_by_one: set[int] = set()
        self._failures: collections.Counter = collections.Counter()
        self._pending: dict[int, list[_Loaded]] = {}
        self._costs: dict[int, dict[str, float]] = {}
        self._latencies: collections.deque = collections.deque(maxlen=LATENCY_WINDOW)
        self._accepted = 0
        self._done = 0
        self._idle = threading.Condition()
        self.counts: collections.Counter = collections.Counter()
        #: Whether this process holds the loader lock (see :meth:`_loader_lock`).
        self.is_loader = False

    # -- the request side -----------------------------------------------------------------
    def accept(
        self,
        workspace_id: int,
        messages: list[dict[str, Any]],
        *,
        received_at: dt.datetime | None = None,
    ) -> int:
        """Store validated messages durably; returns how many. Called before the 200."""
        if not messages:
            return 0
        payload = orjson.dumps(messages)
        with self.app.session() as s:
            s.execute(
                sa.insert(_QUEUE).values(
                    workspace_id=workspace_id,
                    payload=payload,
                    events=len(messages),
                    received_at=received_at or utcnow(),
                )
            )
            s.commit()
        with self._idle:
            self._accepted += 1
            self.counts["received"] += len(messages)
        self._wake.set()
        return len(messages)

    # -- running --------------------------------------------------------------------------
    def start(self) -> None:
        """Start the loader; it first loads what a stopped or killed server left queued."""
        if self._thread is not None:
            return
        wh = self.app.warehouse
        app = Strata(self.app.settings)
        app.__dict__["sessions"] = self.app.sessions
        app.__dict__["profile_cache"] = self.app.profile_cache
        app.__dict__["triggers"] = self.app.triggers
        app.__dict__["warehouse"] = wh.sibling() if wh.concurrent else wh
        self._loader_app = app
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="strata-live-ingest", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the loader (rows not done stay queued for the next start)."""
        if self._thread is None:
            return
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=60)
        self._thread = None
        app, self._loader_app = self._loader_app, None
        if app is not None and app.__dict__.get("warehouse") is not self.app.warehouse:
            with contextlib.suppress(Exception):
                app.warehouse.close()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until everything accepted so far is loaded and its memberships updated."""
        deadline = time.monotonic() + timeout
        with self._idle:
            target = self._accepted
            while self._done < target:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(min(left, 0.1))
        return True

    def latencies(self) -> list[float]:
        """Seconds from receipt to updated memberships, per loaded request (latest last)."""
        return list(self._latencies)

    def stats(self) -> dict[str, Any]:
        """What the loader did since the server started."""
        lat = sorted(self._latencies)

        def pct(q: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(q * len(lat)))], 4) if lat else None

        return {
            **dict(self.counts),
            "latency_p50": pct(0.50),
            "latency_p95": pct(0.95),
            "latency_p99": pct(0.99),
            "latencies": len(lat),
        }

    def _run(self) -> None:
        lock = self._loader_lock()
        if lock is None:
            return  # stopped while another process was the loader
        try:
            self._loop()
        finally:
            lock.close()  # releases the flock

    def _loader_lock(self):
        """One loader per installation: server processes (``--workers``) take turns on a
        file lock in ``STRATA_HOME``; the others only accept, and one of them takes over
        if the loader's process dies (the kernel drops its lock)."""
        path = self.app.settings.home / LOADER_LOCK
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a")  # noqa: SIM115 - held for as long as this process loads
        while not self._stop.is_set():
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._stop.wait(LOCK_RETRY)
                continue
            self.is_loader = True
            return handle
        handle.close()
        return None

    def _loop(self) -> None:
        last_refresh = time.monotonic()
        while not self._stop.is_set():
            next_refresh = last_refresh + self._interval()
            accepted = self._accepted
            busy = False
            try:
                busy = self._round()
            except Exception:  # never let the thread die; the rows stay queued
                log.exception("live ingest: a load round failed; retrying")
                self._stop.wait(1.0)
            if not busy and not self._pending and not self._held:
                with self._idle:
                    self._done = max(self._done, accepted)
                    self._idle.notify_all()
            if time.monotonic() >= next_refresh:
                try:
                    self._time_refresh()
                except Exception:
                    log.exception("live ingest: the time-based refresh failed")
                last_refresh = next_refresh = time.monotonic()
                next_refresh += self._interval()
            if busy:
                continue
            self._wake.wait(self._sleep(next_refresh))
            self._wake.clear()

    def _interval(self) -> float:
        seconds = self.time_refresh_seconds or self.app.settings.time_refresh_seconds
        return max(float(seconds), 0.05)

    def _sleep(self, next_refresh: float) -> float:
        """How long to wait for new rows: until a waiting batch's latest event is past, a
        retry is due or the next time-based refresh."""
        now = time.monotonic()
        wait = next_refresh - now
        if self._pending:
            wait = min(wait, 0.005)
        if self._retry_at:
            wait = min(wait, min(self._retry_at.values()) - now)
        return max(min(wait, 1.0), 0.0)

    # -- one round ------------------------------------------------------------------------
    def _round(self) -> bool:
        """Load what is queued, then update memberships that are due; True if it did work."""
        rows = self._take()
        by_ws: dict[int, list[_Row]] = {}
        for ws_id in list(self._held):
            if self._retry_at.get(ws_id, 0.0) <= time.monotonic():
                by_ws[ws_id] = self._held.pop(ws_id)
        for row in rows:
            if row.workspace_id in self._held:
                self._held[row.workspace_id].append(row)  # keep the order behind a failure
            else:
                by_ws.setdefault(row.workspace_id, []).append(row)
        started = time.perf_counter()
        for ws_id, ws_rows in by_ws.items():
            self._load_workspace(ws_id, ws_rows)
        loaded = time.perf_counter()
        updated = self._update_memberships()
        if by_ws or updated:
            self.counts["rounds"] += 1
            self.counts["load_seconds"] += round(loaded - started, 4)
            self.counts["membership_seconds"] += round(time.perf_counter() - loaded, 4)
        return bool(rows) or bool(by_ws) or updated

    def _take(self) -> list[_Row]:
        """The oldest queued rows not yet in hand, up to :attr:`load_events` events.

        Rows in hand are skipped by id rather than by a cursor: SQLite hands a deleted
        row's id out again, and a PostgreSQL sequence value can commit out of order.
        """
        held = sum(r.events for rows in self._held.values() for r in rows)
        if held > MAX_HELD_EVENTS:
            return []
        with self.app.session() as s:
            heads = s.execute(
                sa.select(_QUEUE.c.id, _QUEUE.c.events)
                .order_by(_QUEUE.c.id)
                .limit(LOAD_ROWS + len(self._in_hand))
            ).all()
            wanted, events = [], 0
            for row_id, n in heads:
                if row_id in self._in_hand:
                    continue
                if wanted and (events + n > self.load_events or len(wanted) >= LOAD_ROWS):
                    break
                wanted.append(row_id)
                events += n
            if not wanted:
                return []
            result = s.execute(
                sa.select(
                    _QUEUE.c.id,
                    _QUEUE.c.workspace_id,
                    _QUEUE.c.payload,
                    _QUEUE.c.events,
                    _QUEUE.c.received_at,
                )
                .where(_QUEUE.c.id.in_(wanted))
                .order_by(_QUEUE.c.id)
            ).all()
        rows = [_Row(r.id, r.workspace_id, r.payload, r.events, r.received_at) for r in result]
        self._in_hand.update(r.id for r in rows)
        return rows

    def _load_workspace(self, ws_id: int, rows: list[_Row]) -> None:
        app = self._loader_app
        with app.session() as s:
            ws = s.get(Workspace, ws_id)
        if ws is None:  # deleted since: its queued events have nowhere to go
            log.warning("live ingest: workspace %s is gone; dropping %s rows", ws_id, len(rows))
            self._delete([r.id for r in rows])
            self._finish([r.id for r in rows], [])
            return
        chunks = [[r] for r in rows] if ws_id in self._one_by_one else [rows]
        for n, chunk in enumerate(chunks):
            try:
                loaded = self._load(app, ws, chunk)
            except Exception as exc:
                rest = [r for c in chunks[n:] for r in c]
                if not self._failed(app, ws, chunk, rest, exc):
                    return
                continue
            self._pending.setdefault(ws_id, []).append(loaded)
            for r in chunk:
                self._failures.pop(r.id, None)
        self._one_by_one.discard(ws_id)
        self._retry_at.pop(ws_id, None)

    def _failed(
        self, app: Strata, ws: Workspace, chunk: list[_Row], rest: list[_Row], exc: Exception
    ) -> bool:
        """Handle a failed load; True if the loader may go on with the next chunk."""
        reason = _one_line(exc)
        self.counts["load_failures"] += 1
        if len(chunk) > 1:
            log.warning(
                "live ingest: loading %s rows into workspace %s failed (%s); "
                "retrying them one at a time",
                len(chunk),
                ws.id,
                reason,
            )
            self._one_by_one.add(ws.id)
            self._hold(ws.id, rest, backoff=self.backoff)
            return False
        row = chunk[0]
        self._failures[row.id] += 1
        tries = self._failures[row.id]
        if isinstance(exc, PlanLimit):  # retrying cannot help until the plan changes
            self.counts["refused_by_plan"] += row.events
            self._dead_letter(row, reason)
            return True
        if tries >= MAX_FAILURES and self._warehouse_works(app, ws.id):
            self._dead_letter(row, reason)
            return True
        log.warning(
            "live ingest: queued row %s (workspace %s) failed to load, try %s: %s",
            row.id,
            ws.id,
            tries,
            reason,
        )
        self._hold(ws.id, rest, backoff=min(self.backoff * 2**tries, 30.0))
        return False

    def _hold(self, ws_id: int, rows: list[_Row], *, backoff: float) -> None:
        self._held[ws_id] = rows + self._held.get(ws_id, [])
        self._retry_at[ws_id] = time.monotonic() + backoff

    def _warehouse_works(self, app: Strata, ws_id: int) -> bool:
        """Whether an empty load succeeds: then the row's data is what fails."""
        try:
            with self.write_lock:
                app.warehouse.load(
                    ws_id, Batch(customers=pa.table({"external_id": pa.array([], pa.string())}))
                )
        except Exception:
            return False
        return True

    def _dead_letter(self, row: _Row, reason: str) -> None:
        folder = self.app.settings.home / "ingest-dead-letter"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{row.id}.json"
        path.write_bytes(
            orjson.dumps(
                {
                    "id": row.id,
                    "workspace_id": row.workspace_id,
                    "received_at": row.received_at.isoformat(),
                    "reason": reason,
                    "messages": orjson.Fragment(row.payload),
                }
            )
        )
        log.error(
            "live ingest: queued row %s (workspace %s, %s events) failed %s times and was "
            "moved to %s: %s",
            row.id,
            row.workspace_id,
            row.events,
            MAX_FAILURES,
            path,
            reason,
        )
        self.counts["dead_lettered"] += row.events
        self._failures.pop(row.id, None)
        self._delete([row.id])
        self._finish([row.id], [])

    def _load(self, app: Strata, ws: Workspace, rows: list[_Row]) -> _Loaded:
        messages = [m for r in rows for m in orjson.loads(r.payload)]
        # Queued before their erasure, loaded after it: refused here too (strata.privacy).
        messages, refused = Suppressions.load(app, ws.id).admit(messages)
        self.counts["refused_erased"] += refused
        live_columns = self._live_columns(app, ws.id)
        with self.write_lock:
            schema = app.warehouse.customer_schema(ws.id)
            built = build_batch(messages, schema, live_columns=live_columns)
            result = app.warehouse.load(
                ws.id,
                built.batch,
                new_columns=built.new_columns,
                customer_limit=plans.customer_check(
                    ws, doing="these live events", outcome="Nothing of them was loaded."
                ),
            )
            ids = self._customer_ids(app, ws.id, built.external_ids)
        plans.count_usage(app, ws.id, "events_ingested", result.events_created)
        if built.new_columns:
            self._save_live_columns(app, ws.id, [*live_columns, *built.new_columns])
        if built.ignored_columns:
            self.counts["traits_ignored"] += sum(built.ignored_columns.values())
            log.warning(
                "live ingest: workspace %s has %s columns from live traits already; "
                "ignored new traits %s",
                ws.id,
                MAX_LIVE_COLUMNS,
                dict(built.ignored_columns.most_common(10)),
            )
        self.counts["loaded"] += len(messages)
        self.counts["events_created"] += result.events_created
        self.counts["duplicates_skipped"] += result.duplicates_skipped
        self.counts["customers_created"] += result.customers_created
        self.counts["other_calls"] += built.other_calls
        latest = dt.datetime.fromisoformat(built.latest) if built.latest else None
        return _Loaded(
            rows,
            ids,
            built.event_types,
            built.attributes,
            result.customers_created > 0,
            latest,
        )

    @staticmethod
    def _customer_ids(app: Strata, ws_id: int, external_ids: list[str]) -> list[int]:
        if not external_ids:
            return []
        customers = app.warehouse.table(ws_id, "customers")
        wanted = ibis.memtable(pa.table({"external_id": pa.array(external_ids, pa.string())}))
        found = customers.semi_join(wanted, "external_id").select("customer_id").to_pyarrow()
        return found.column("customer_id").to_pylist()

    def _live_columns(self, app: Strata, ws_id: int) -> list[str]:
        cache = self.__dict__.setdefault("_columns", {})
        if ws_id not in cache:
            with app.session() as s:
                row = s.scalar(
                    sa.select(Setting.value).where(
                        Setting.workspace_id == ws_id, Setting.key == COLUMNS_SETTING
                    )
                )
            cache[ws_id] = list((row or {}).get("columns", []))
        return cache[ws_id]

    def _save_live_columns(self, app: Strata, ws_id: int, columns: list[str]) -> None:
        with app.session() as s:
            row = s.scalar(
                sa.select(Setting).where(
                    Setting.workspace_id == ws_id, Setting.key == COLUMNS_SETTING
                )
            )
            if row is None:
                s.add(Setting(workspace_id=ws_id, key=COLUMNS_SETTING, value={"columns": columns}))
            else:
                row.value = {"columns": columns}
            s.commit()
        self.__dict__.setdefault("_columns", {})[ws_id] = columns

    # -- memberships ----------------------------------------------------------------------
    def _update_memberships(self) -> bool:
        """Update the memberships of loaded customers whose latest event is past."""
        if not self._pending:
            return False
        now = ReferenceTime.now().instant
        did = False
        for ws_id in list(self._pending):
            entries = self._pending[ws_id]
            due = [e for e in entries if e.latest is None or e.latest < now]
            if not due:
                continue
            did = True
            try:
                self._update_workspace(ws_id, due)
            except Exception as exc:
                for e in due:
                    e.failures += 1
                given_up = [e for e in due if e.failures >= MAX_FAILURES]
                log.log(
                    logging.ERROR if given_up else logging.WARNING,
                    "live ingest: updating memberships in workspace %s failed (%s)%s",
                    ws_id,
                    _one_line(exc),
                    "; giving up on them, the next refresh brings them up to date"
                    if given_up
                    else "; retrying",
                )
                due = given_up
            remaining = [e for e in entries if e not in due]
            if remaining:
                self._pending[ws_id] = remaining
            else:
                del self._pending[ws_id]
            ids = [r.id for e in due for r in e.rows]
            if ids:
                self._delete(ids)
                self._finish(ids, [r.received_at for e in due for r in e.rows])
        return did

    def _update_workspace(self, ws_id: int, due: list[_Loaded]) -> None:
        """Re-evaluate the segments the loaded events and traits can move: for the
        touched customers only, or in full when that is measured to be cheaper."""
        app = self._loader_app
        with app.session() as s:
            ws = s.get(Workspace, ws_id)
        if ws is None:
            return
        segs = Segments(app, ws)
        segments = [seg for seg in segs.list() if seg.kind in RULE_KINDS and seg.definition]
        ids = sorted({i for e in due for i in e.customer_ids})
        if ids:
            app.members_changed(ws_id, ids)  # their traits, so their cached profiles, changed
        if not segments or not ids:
            return
        events = set().union(*(e.event_types for e in due))
        attributes = set().union(*(e.attributes for e in due))
        new_customers = any(e.new_customers for e in due)
        refs = segs.refs(segments)
        moved = []
        for seg in segments:
            deps = dependencies(N.parse_rule(seg.definition), refs)
            if not deps.is_global and (new_customers or deps.touched_by(events, attributes)):
                moved.append(seg.name)
        if not moved:
            return
        started = time.perf_counter()
        full = self._full_is_cheaper(ws_id, len(ids))
        with self.write_lock:
            if full:
                segs.refresh(moved)
            else:
                segs.update_customers(
                    ids,
                    event_types=events,
                    attributes=attributes,
                    new_customers=new_customers,
                    defer_global=True,
                )
        seconds = time.perf_counter() - started
        cost = self._costs.setdefault(ws_id, {})
        if full:
            cost["full"] = seconds
            self.counts["full_updates"] += 1
        else:
            per_id = seconds / (len(ids) + _FIXED_IDS)
            cost["per_id"] = 0.5 * per_id + 0.5 * cost.get("per_id", per_id)
            self.counts["incremental_updates"] += 1

    def _full_is_cheaper(self, ws_id: int, n: int) -> bool:
        """Whether to refresh the moved segments in full rather than for ``n`` customers.

        A restricted evaluation costs a fixed part plus a part per customer (their ids
        go into the query), a full one depends on the workspace's size; both are
        measured as the loader goes, and the full cost again every few minutes.
        """
        cost = self._costs.setdefault(ws_id, {})
        incremental = cost.get("per_id", 0.002) * (n + _FIXED_IDS)
        if "full" not in cost or time.monotonic() > cost.get("measured", 0.0) + 300:
            if n <= _FIXED_IDS:
                return False
            cost["measured"] = time.monotonic()
            return True  # measure it
        return cost["full"] < incremental

    def _delete(self, ids: list[int]) -> None:
        with self.app.session() as s:
            s.execute(sa.delete(_QUEUE).where(_QUEUE.c.id.in_(ids)))
            s.commit()

    def _finish(self, ids: list[int], received: list[dt.datetime]) -> None:
        self._in_hand.difference_update(ids)
        now = utcnow()
        for at in received:
            self._latencies.append((now - at).total_seconds())
        self.counts["batches_done"] += len(ids)

    # -- the time-based schedule ----------------------------------------------------------
    def _time_refresh(self) -> None:
        """Refresh, in every workspace, the segments that time or everyone's data moves."""
        app = self._loader_app
        for ws in app.workspaces():
            segs = Segments(app, ws)
            names = scheduled_segments(segs)
            if not names:
                continue
            try:
                with self.write_lock:
                    done = segs.refresh(names)
            except NotFound:
                continue  # no data in the workspace yet
            self.counts["time_refreshes"] += 1
            log.info(
                "live ingest: time-based refresh of %s segments in workspace %s "
                "(%s joined, %s left)",
                len(done),
                ws.id,
                sum(r.joined for r in done),
                sum(r.left for r in done),
            )


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"
