"""Campaigns: an action on a segment with a holdout, and its measured lift.

Routes under ``/api/v1/workspaces/{workspace_id}/campaigns``, thin shells over
:class:`strata.actions.campaigns.Campaigns` (what ``strata campaigns …`` calls).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response
from pydantic import Field

from strata.actions.campaigns import Campaigns, segment_name
from strata.api.deps import Access, PageDep, ServiceDep, require
from strata.api.routes.automations import ACTION_HELP
from strata.api.routes.segments import segment_of
from strata.api.schemas import ERRORS, PageOf, Schema
from strata.catalog import Campaign

router = APIRouter(prefix="/workspaces/{workspace_id}", tags=["campaigns"], responses=ERRORS)

CampaignId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The campaign's id.")]


class CampaignCreate(Schema):
    name: Annotated[str, Field(min_length=1, max_length=180)]
    segment_id: Annotated[int, Field(ge=1, le=2**31 - 1)]
    action: dict[str, Any] = Field(description=ACTION_HELP)
    holdout_percent: Annotated[float, Field(ge=0, le=90)] = 10.0
    goal_event: Annotated[str | None, Field(max_length=100)] = Field(
        None, description="The event type whose rate measures success, e.g. order."
    )


class GroupResult(Schema):
    customers: int
    converted: int
    rate: float | None


class CampaignResults(Schema):
    status: str
    goal_event: str | None
    holdout_percent: float
    started_at: str | None
    ended_at: str | None
    acted: dict[str, int] = Field(description="Firings by status (done, held_out, skipped…).")
    treated: GroupResult
    holdout: GroupResult
    lift: float | None = Field(description="Treated rate minus holdout rate.")
    relative_lift: float | None
    interval: list[float] | None = Field(description="95% interval of the lift.")
    p_value: float | None = Field(description="Two-sided, pooled two-proportion z-test.")
    note: str | None = None


class CampaignPublic(Schema):
    id: int
    name: str
    segment_id: int | None
    segment: str | None
    kind: str
    status: str = Field(description="draft, running or ended")
    holdout_percent: float
    goal_event: str | None
    automation_id: int | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    results: CampaignResults | None = Field(
        None, description="Measured when it ended (GET …/results measures now)."
    )


def _public(svc, c: Campaign) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "segment_id": c.segment_id,
        "segment": segment_name(svc.app, c.segment_id),
        "kind": c.kind,
        "status": c.status,
        "holdout_percent": c.holdout_percent,
        "goal_event": c.goal_event,
        "automation_id": c.automation_id,
        "created_at": c.created_at,
        "started_at": c.started_at,
        "ended_at": c.ended_at,
        "results": c.metrics,
    }


@router.get("/campaigns", response_model=PageOf[CampaignPublic])
def list_campaigns(
    access: Annotated[Access, Depends(require("actions.read"))], svc: ServiceDep, page: PageDep
):
    """The workspace's campaigns, newest first."""
    rows = Campaigns(svc.app, access.workspace).list()
    return page.answer([_public(svc, c) for c in page.window(rows)], len(rows))


@router.post("/campaigns", response_model=CampaignPublic, status_code=201)
def create_campaign(
    body: CampaignCreate,
    access: Annotated[Access, Depends(require("actions.write"))],
    svc: ServiceDep,
):
    """A draft campaign: nothing is done until it is launched."""
    seg = segment_of(svc.app, access, body.segment_id)
    with svc.reading() as app:
        c = Campaigns(app, access.workspace).create(
            body.name,
            seg.name,
            body.action,
            holdout_percent=body.holdout_percent,
            goal_event=body.goal_event,
            created_by=access.user_id,
        )
    return _public(svc, c)


@router.get("/campaigns/{campaign_id}", response_model=CampaignPublic)
def get_campaign(
    campaign_id: CampaignId,
    access: Annotated[Access, Depends(require("actions.read"))],
    svc: ServiceDep,
):
    """One campaign (with its results once it has ended)."""
    return _public(svc, Campaigns(svc.app, access.workspace).get(campaign_id))


@router.post("/campaigns/{campaign_id}/launch", response_model=CampaignPublic)
def launch_campaign(
    campaign_id: CampaignId,
    access: Annotated[Access, Depends(require("actions.write"))],
    svc: ServiceDep,
):
    """Act on every current member but the holdout, and on everyone who enters while it runs."""
    with svc.reading() as app:
        c = Campaigns(app, access.workspace).launch(campaign_id)
    return _public(svc, c)


@router.post("/campaigns/{campaign_id}/end", response_model=CampaignPublic)
def end_campaign(
    campaign_id: CampaignId,
    access: Annotated[Access, Depends(require("actions.write"))],
    svc: ServiceDep,
):
    """Stop acting and keep the results measured up to now."""
    with svc.reading() as app:
        c = Campaigns(app, access.workspace).end(campaign_id)
    return _public(svc, c)


@router.get("/campaigns/{campaign_id}/results", response_model=CampaignResults)
def campaign_results(
    campaign_id: CampaignId,
    access: Annotated[Access, Depends(require("actions.read"))],
    svc: ServiceDep,
):
    """Audience, goal rates of the treated group and the holdout, lift, interval, p-value."""
    with svc.reading() as app:
        return Campaigns(app, access.workspace).results(campaign_id)


@router.delete("/campaigns/{campaign_id}", status_code=204)
def delete_campaign(
    campaign_id: CampaignId,
    access: Annotated[Access, Depends(require("actions.write"))],
    svc: ServiceDep,
) -> Response:
    """Delete a campaign and its automation (the firings on record go with it)."""
    Campaigns(svc.app, access.workspace).delete(campaign_id)
    return Response(status_code=204)
