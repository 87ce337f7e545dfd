"""Customers: search (of one segment or all, in any order), profile, events page by page,
segment history, predictions.

Viewers get every answer with personal data masked (:mod:`strata.api.masking`), and
search only by the id from your data: matching on e-mail or name would let them read
hidden values back one guessed letter at a time.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import ibis
from fastapi import APIRouter, Depends, Path, Query
from pydantic import Field

from strata.api.deps import Access, PageDep, ServiceDep, require
from strata.api.routes.segments import segment_of
from strata.api.schemas import ERRORS, PageOf, Schema
from strata.customers import customer_profile
from strata.errors import Forbidden, InputError, NotFound
from strata.segments.engine import Segments

router = APIRouter(prefix="/workspaces/{workspace_id}", tags=["customers"], responses=ERRORS)

ExternalId = Annotated[
    str, Path(min_length=1, max_length=200, description="The customer's id in your data.")
]
CustomersRead = Annotated[Access, Depends(require("customers.read"))]
EVENT_COLUMNS = (
    "event_id",
    "timestamp",
    "event_type",
    "revenue",
    "currency",
    "order_id",
    "properties",
)


class CustomerHistory(Schema):
    external_id: str
    segments: list[dict[str, Any]] = Field(
        description="Every stint in a segment: segment, joined, left (null: still in it)."
    )
    rfm: dict[str, Any] = Field(description="The RFM segment now, since when, and the one before.")


class CustomerPredictions(Schema):
    external_id: str
    predictions: list[dict[str, Any]] = Field(
        description="Stored predictions: prediction_type, value, model_version, details (why)."
    )


#: Columns a customer list can be ordered by; ``joined`` only within a segment.
SortKey = Literal[
    "customer_id", "external_id", "name", "email", "country", "city", "plan", "signup_date",
    "joined",
]  # fmt: skip


@router.get("/customers", response_model=PageOf[dict[str, Any]])
def search_customers(
    access: CustomersRead,
    svc: ServiceDep,
    page: PageDep,
    q: Annotated[
        str | None,
        Query(max_length=200, description="Part of the id, e-mail or name (any case)."),
    ] = None,
    segment: Annotated[
        int | None,
        Query(description="Only the current members of this segment (its id); rows gain `joined`."),
    ] = None,
    attribute: Annotated[
        str | None,
        Query(max_length=200, description="A text attribute to match `value` (country, plan…)."),
    ] = None,
    value: Annotated[
        str | None,
        Query(max_length=500, description="The `attribute`'s value; left out: no value."),
    ] = None,
    sort: Annotated[SortKey, Query(description="The column to order by.")] = "customer_id",
    order: Annotated[Literal["asc", "desc"], Query(description="Ascending or descending.")] = "asc",
):
    """Customers whose id, e-mail or name contains ``q`` (all of them without ``q``), of
    one ``segment`` or all, whose ``attribute`` is ``value`` if asked (the customers behind
    a breakdown's bar), ordered by ``sort`` then customer id. Viewers search by id only,
    cannot order or match by a personal column, and see personal data masked."""
    for column in (sort, attribute):
        if column and access.masked and access.masker.is_personal(column):
            # The order of hidden values, or a match on them, would leak them.
            raise Forbidden(
                f"{column!r} is personal data, which your role (viewer) sees masked; "
                "use another column"
            )
    if sort == "joined" and segment is None:
        raise InputError("sort=joined needs a segment: it is when a customer joined it")
    seg = segment_of(svc.app, access, segment) if segment is not None else None
    with svc.reading() as app:
        try:
            t = app.warehouse.table(access.workspace.id, "customers")
            if seg is not None:
                m = app.warehouse.table(access.workspace.id, "memberships")
                current = m.filter(m.segment_id == seg.id, m.left_at.isnull())
                t = t.inner_join(
                    current.select("customer_id", joined=current.joined_at), "customer_id"
                )
        except NotFound:  # nothing imported yet: an empty list, not an error
            return page.answer([], 0)
        if attribute is not None:
            t = t.filter(_matches(t, attribute, value))
        text = (q or "").strip().lower()
        if text:
            found = t.external_id.lower().contains(text)
            if not access.masked:
                found |= t.email.lower().contains(text).fill_null(False)
                found |= t.name.lower().contains(text).fill_null(False)
            t = t.filter(found)
        total = int(t.count().execute())
        key = ibis.desc(sort) if order == "desc" else ibis.asc(sort)
        keys = [key] if sort == "customer_id" else [key, "customer_id"]  # ties: a fixed order
        rows = t.order_by(keys).limit(page.limit, offset=page.offset).to_pyarrow().to_pylist()
    return page.answer(access.masker.rows(rows), total)


@router.get("/customers/{external_id}", response_model=dict[str, Any])
def get_customer(
    external_id: ExternalId,
    access: CustomersRead,
    svc: ServiceDep,
    timeline: Annotated[
        int, Query(ge=0, le=1000, description="How many of the latest events to include.")
    ] = 50,
):
    """A customer's attributes, order totals, stored predictions (with why) and the latest
    ``timeline`` events, newest first (``strata customers show``)."""
    with svc.reading() as app:
        profile = customer_profile(
            app, external_id, workspace=access.workspace.name, limit=timeline
        )
    return access.mask(profile)  # the customer, and event properties such as an e-mail


@router.get("/customers/{external_id}/segments", response_model=CustomerHistory)
def get_customer_segments(external_id: ExternalId, access: CustomersRead, svc: ServiceDep):
    """Every segment the customer has been in, with when they joined and left, and their
    RFM segment now and before (``strata segments history --customer``)."""
    with svc.reading() as app:
        _known(app, access.workspace.id, external_id)
        segs = Segments(app, access.workspace)
        history = segs.customer_history(external_id)
        rfm = segs.rfm_state(external_id)
    return {"external_id": external_id, "segments": history, "rfm": rfm}


@router.get("/customers/{external_id}/predictions", response_model=CustomerPredictions)
def get_customer_predictions(external_id: ExternalId, access: CustomersRead, svc: ServiceDep):
    """The customer's stored predictions (lifetime value, churn risk, propensity…), each
    with the model version and why; empty until models have been run."""
    with svc.reading() as app:
        profile = customer_profile(app, external_id, workspace=access.workspace.name, limit=0)
    return {"external_id": external_id, "predictions": access.mask(profile["predictions"])}


@router.get("/customers/{external_id}/events", response_model=PageOf[dict[str, Any]])
def list_customer_events(
    external_id: ExternalId,
    access: CustomersRead,
    svc: ServiceDep,
    page: PageDep,
    event_type: Annotated[
        str | None, Query(max_length=200, description="Only events of this type.")
    ] = None,
):
    """The customer's events, newest first, a page at a time: type, time, revenue, order
    id, properties, and the lines and units of an order (personal values masked)."""
    with svc.reading() as app:
        _known(app, access.workspace.id, external_id)
        wh = app.warehouse
        customers = wh.table(access.workspace.id, "customers")
        mine = customers.filter(customers.external_id == external_id).select("customer_id")
        events = wh.table(access.workspace.id, "events").semi_join(mine, "customer_id")
        if event_type:
            events = events.filter(events.event_type == event_type)
        total = int(events.count().execute())
        newest = [ibis.desc("timestamp"), ibis.desc("event_id")]
        latest = events.order_by(newest).limit(page.limit, offset=page.offset)
        items = wh.table(access.workspace.id, "order_items").semi_join(mine, "customer_id")
        lines = items.group_by("event_id").aggregate(
            lines=items.count(), units=items.quantity.sum()
        )
        rows = (
            latest.left_join(lines, latest.event_id == lines.event_id)
            .select(*EVENT_COLUMNS, "lines", "units")
            .order_by(newest)
            .to_pyarrow()
            .to_pylist()
        )
    for row in rows:  # as the profile's timeline has them: properties stored as JSON text
        row["timestamp"] = row["timestamp"].isoformat(sep=" ")
        if isinstance(row["properties"], str):
            row["properties"] = json.loads(row["properties"])
    return page.answer(access.mask(rows), total)


def _matches(t: ibis.Table, attribute: str, value: str | None) -> ibis.Value:
    """Customers whose text ``attribute`` is ``value``, or is missing when it is None."""
    if attribute not in t.columns or attribute in {"customer_id", "joined"}:
        raise InputError(f"no customer attribute {attribute!r}")
    column = t[attribute]
    if not column.type().is_string():
        raise InputError(f"{attribute!r} is not text: only text attributes match a value")
    return column.isnull() if value is None else column == value


def _known(app, workspace_id: int, external_id: str) -> None:
    """404 unless a customer has this id (the path names ids, never e-mails)."""
    t = app.warehouse.table(workspace_id, "customers")
    if int(t.filter(t.external_id == external_id).count().execute()) == 0:
        raise NotFound(f"no customer {external_id!r} in this workspace")
