"""Which column of a file holds which field: detection with a confidence, or a mapping file.

A mapping file (YAML or JSON) names the preset, the target and the columns::

    preset: transactions        # optional: customers, transactions, events, shopify, ...
    as: events                  # optional: customers or events
    fields:
      customer_id: CustomerID
      order_id: InvoiceNo
      timestamp: InvoiceDate
      quantity: Quantity
      unit_price: UnitPrice
    attributes:                 # further customer columns, each a real typed column
      loyalty_tier: {column: Tier, type: string}
      card_number: {column: Card, personal: true}   # masked for viewers from now on
    date_format: "%d/%m/%Y"     # optional, when dates are ambiguous
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml

from strata.errors import InputError
from strata.ingest import parse
from strata.warehouse.schema import ATTRIBUTE_TYPES, check_column_name


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # a key of parse.PARSERS
    synonyms: tuple[str, ...]
    help: str


def _f(name: str, kind: str, help: str, *synonyms: str) -> Field:
    return Field(name, kind, (name, *synonyms), help)


#: Every field an import can fill, with the header names that suggest it.
FIELDS: dict[str, Field] = {
    f.name: f
    for f in [
        _f(
            "customer_id",
            "id",
            "the customer's id in your system",
            "customerid",
            "customer",
            "customer_number",
            "customer_no",
            "cust_id",
            "user_id",
            "userid",
            "client_id",
            "account_id",
            "contact_id",
            "member_id",
            "external_id",
        ),
        _f("email", "email", "e-mail address", "e_mail", "email_address", "customer_email", "mail"),
        _f("name", "string", "full name", "full_name", "customer_name", "contact_name"),
        _f("first_name", "string", "given name", "firstname", "given_name", "first"),
        _f("last_name", "string", "family name", "lastname", "surname", "family_name", "last"),
        _f("phone", "string", "phone number", "phone_number", "telephone", "mobile", "tel"),
        _f("country", "string", "country", "country_code", "nation"),
        _f("city", "string", "city", "town"),
        _f("gender", "string", "gender", "sex"),
        _f("birth_date", "date", "date of birth", "birthdate", "dob", "date_of_birth", "birthday"),
        _f(
            "signup_date",
            "date",
            "when the customer signed up",
            "signup",
            "signed_up",
            "registration_date",
            "registered",
            "joined",
            "join_date",
            "customer_since",
            "created_at",
            "created",
        ),
        _f(
            "company_size",
            "integer",
            "number of employees",
            "employees",
            "employee_count",
            "headcount",
            "company_employees",
            "size",
        ),
        _f("industry", "string", "industry", "sector", "vertical"),
        _f("plan", "string", "subscription plan", "subscription", "tier", "plan_name"),
        _f("event_type", "string", "kind of event", "event", "type", "action", "event_name"),
        _f(
            "timestamp",
            "timestamp",
            "when it happened",
            "date",
            "time",
            "datetime",
            "invoicedate",
            "invoice_date",
            "order_date",
            "occurred_at",
            "event_time",
            "ts",
            "created_at",
            "purchase_date",
            "transaction_date",
        ),
        _f(
            "order_id",
            "id",
            "order or invoice number",
            "invoiceno",
            "invoice",
            "invoice_no",
            "invoice_number",
            "order",
            "order_number",
            "order_no",
            "transaction_id",
            "orderid",
        ),
        _f(
            "revenue",
            "number",
            "order total (when not given per line)",
            "total",
            "amount",
            "order_total",
            "value",
            "sales",
            "total_amount",
            "dollar_value",
        ),
        _f("quantity", "number", "units of the line", "qty", "units", "number_of_items"),
        _f("unit_price", "number", "price of one unit", "unitprice", "price", "item_price"),
        _f(
            "product_id",
            "id",
            "product code",
            "stockcode",
            "stock_code",
            "sku",
            "item_id",
            "productid",
            "product_code",
        ),
        _f(
            "product_name",
            "string",
            "product name",
            "description",
            "product",
            "item_name",
            "item",
            "title",
        ),
        _f("currency", "string", "ISO currency code", "currency_code", "curr"),
    ]
}

CUSTOMER_FIELDS = [
    "email",
    "name",
    "first_name",
    "last_name",
    "phone",
    "country",
    "city",
    "gender",
    "birth_date",
    "signup_date",
    "company_size",
    "industry",
    "plan",
]


def normalise_header(name: str) -> str:
    """``"Invoice No."`` → ``"invoice_no"``."""
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


@dataclass
class Attribute:
    column: str
    type: str
    #: Marked personal by the mapping: the workspace masks it for viewers.
    personal: bool = False


@dataclass
class Mapping:
    """Field name → column of the file, and how sure the detection is of each."""

    fields: dict[str, str] = field(default_factory=dict)
    confidence: dict[str, float] = field(default_factory=dict)
    attributes: dict[str, Attribute] = field(default_factory=dict)
    preset: str | None = None
    target: str | None = None
    date_format: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "preset": self.preset,
            "as": self.target,
            "fields": {
                k: {"column": v, "confidence": round(self.confidence.get(k, 1.0), 2)}
                for k, v in self.fields.items()
            },
            "attributes": {
                k: {"column": a.column, "type": a.type} | ({"personal": True} if a.personal else {})
                for k, a in self.attributes.items()
            },
            **({"date_format": self.date_format} if self.date_format else {}),
        }


def detect(
    table: pa.Table,
    wanted: list[str] | None = None,
    fits: dict[tuple[str, str], float] | None = None,
) -> Mapping:
    """Guess which column holds each field, from header names and a sample of values.

    A header equal to a field's name or synonym scores 0.95, one that contains it 0.6;
    the score halves when fewer than 90% of sampled values read as the field's type.
    ``fits`` caches that check per (column, type) across calls on the same table.
    """
    names = wanted or list(FIELDS)
    sample = table.slice(0, 2000)
    candidates: list[tuple[float, str, str]] = []
    for column in table.column_names:
        norm = normalise_header(column)
        for name in names:
            f = FIELDS[name]
            if norm in f.synonyms or norm.replace("_", "") in {
                s.replace("_", "") for s in f.synonyms
            }:
                score = 0.95
            elif any(len(s) > 3 and re.search(rf"(^|_){s}(_|$)", norm) for s in f.synonyms):
                score = 0.6
            else:
                continue
            key = (column, f.kind)
            if fits is None or key not in fits:
                fit = _value_fit(sample.column(column), f.kind)
                if fits is not None:
                    fits[key] = fit
            else:
                fit = fits[key]
            score *= fit
            if score > 0.25:
                candidates.append((score, name, column))
    mapping = Mapping()
    taken: set[str] = set()
    for score, name, column in sorted(candidates, key=lambda c: -c[0]):
        if name in mapping.fields or column in taken:
            continue
        mapping.fields[name] = column
        mapping.confidence[name] = round(score, 2)
        taken.add(column)
    return mapping


def _value_fit(col: pa.ChunkedArray, kind: str) -> float:
    """1.0 when at least 90% of the present sampled values parse as ``kind``, else 0.5."""
    if kind in {"string", "id"}:
        return 1.0
    values, bad = parse.PARSERS[kind](col)
    present = len(values) - values.null_count + int(bad.sum())
    if present == 0:
        return 0.8
    return 1.0 if bad.sum() <= 0.1 * present else 0.5


def load_mapping_file(path: str | Path) -> Mapping:
    """Read a mapping file; every problem is an ``InputError`` naming the key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read the mapping file {path}: {exc.strerror}") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InputError(
            f"the mapping file {path.name} is not valid YAML/JSON: {str(exc).splitlines()[0]}"
        ) from None
    if not isinstance(data, dict):
        raise InputError(f"the mapping file {path.name} must hold a mapping with 'fields'")
    unknown = set(data) - {"preset", "as", "fields", "attributes", "date_format"}
    if unknown:
        raise InputError(
            f"the mapping file has unknown keys {sorted(unknown)}; allowed: "
            "preset, as, fields, attributes, date_format"
        )
    fields = data.get("fields") or {}
    if not isinstance(fields, dict):
        raise InputError("'fields' in the mapping file must map field names to column names")
    for name in fields:
        if name not in FIELDS:
            raise InputError(
                f"the mapping file names an unknown field {name!r}; known fields: "
                f"{', '.join(FIELDS)}"
            )
    attributes = {}
    for name, spec in (data.get("attributes") or {}).items():
        check_column_name(name)
        if isinstance(spec, str):
            spec = {"column": spec}
        kind = spec.get("type", "string")
        if kind not in ATTRIBUTE_TYPES:
            raise InputError(
                f"attribute {name!r} has type {kind!r}; use one of {', '.join(ATTRIBUTE_TYPES)}"
            )
        if "column" not in spec:
            raise InputError(f"attribute {name!r} needs a 'column'")
        personal = spec.get("personal", False)
        if not isinstance(personal, bool):
            raise InputError(f"attribute {name!r}: 'personal' must be true or false")
        attributes[name] = Attribute(column=str(spec["column"]), type=kind, personal=personal)
    target = data.get("as")
    if target not in (None, "customers", "events"):
        raise InputError(f"'as' must be customers or events, not {target!r}")
    return Mapping(
        fields={k: str(v) for k, v in fields.items()},
        confidence=dict.fromkeys(fields, 1.0),
        attributes=attributes,
        preset=data.get("preset"),
        target=target,
        date_format=data.get("date_format"),
    )
