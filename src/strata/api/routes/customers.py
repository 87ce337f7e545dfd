"""Customers: search, profile and timeline, segment history, predictions.

Viewers get every answer with personal data masked (:mod:`strata.api.masking`), and
search only by the id from your data: matching on e-mail or name would let them read
hidden values back one guessed letter at a time.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import Field

from strata.api.deps import Access, PageDep, ServiceDep, require
from strata.api.schemas import ERRORS, PageOf, Schema
from strata.customers import customer_profile
from strata.errors import NotFound
from strata.segments.engine import Segments

router = APIRouter(prefix="/workspaces/{workspace_id}", tags=["customers"], responses=ERRORS)

ExternalId = Annotated[
    str, Path(min_length=1, max_length=200, description="The customer's id in your data.")
]
CustomersRead = Annotated[Access, Depends(require("customers.read"))]


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


@router.get("/customers", response_model=PageOf[dict[str, Any]])
def search_customers(
    access: CustomersRead,
    svc: ServiceDep,
    page: PageDep,
    q: Annotated[
        str | None,
        Query(max_length=200, description="Part of the id, e-mail or name (any case)."),
    ] = None,
):
    """Customers whose id, e-mail or name contains ``q`` (all of them without ``q``), by
    customer id. Viewers search by id only and see personal data masked."""
    with svc.reading() as app:
        try:
            t = app.warehouse.table(access.workspace.id, "customers")
        except NotFound:  # nothing imported yet: an empty list, not an error
            return page.answer([], 0)
        text = (q or "").strip().lower()
        if text:
            found = t.external_id.lower().contains(text)
            if not access.masked:
                found |= t.email.lower().contains(text).fill_null(False)
                found |= t.name.lower().contains(text).fill_null(False)
            t = t.filter(found)
        total = int(t.count().execute())
        rows = (
            t.order_by("customer_id").limit(page.limit, offset=page.offset).to_pyarrow().to_pylist()
        )
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


def _known(app, workspace_id: int, external_id: str) -> None:
    """404 unless a customer has this id (the path names ids, never e-mails)."""
    t = app.warehouse.table(workspace_id, "customers")
    if int(t.filter(t.external_id == external_id).count().execute()) == 0:
        raise NotFound(f"no customer {external_id!r} in this workspace")
