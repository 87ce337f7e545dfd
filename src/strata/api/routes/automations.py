"""Automations: when customers enter or leave a segment (or on a schedule), act.

Routes under ``/api/v1/workspaces/{workspace_id}/automations``, thin shells over
:class:`strata.actions.automations.Automations` (what ``strata automations …`` calls).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import Field

from strata.actions.automations import Automations, external_ids
from strata.api.deps import Access, PageDep, ServiceDep, require
from strata.api.routes.segments import segment_of
from strata.api.schemas import ERRORS, PageOf, ReviewStatus, Schema
from strata.catalog import Automation, Segment, TriggerFiring

router = APIRouter(prefix="/workspaces/{workspace_id}", tags=["automations"], responses=ERRORS)

AutomationId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The automation's id.")]
Trigger = Literal["enter", "exit", "schedule"]
FiringStatus = Literal["pending", "acting", "done", "skipped", "held_out", "failed"]
ACTION_HELP = (
    'What to do: {"kind": "webhook", "destination": id}, {"kind": "email", "destination": id, '
    '"template": {"subject", "text", "html"}}, {"kind": "export", "format": "csv"}, '
    '{"kind": "set_attribute", "attribute": name, "value": v}, {"kind": "tag", "tag": name} '
    'or {"kind": "add_to_segment", "segment": name}.'
)


class AutomationCreate(Schema):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    segment_id: Annotated[int, Field(ge=1, le=2**31 - 1)]
    trigger: Trigger
    action: dict[str, Any] = Field(description=ACTION_HELP)
    wait_seconds: Annotated[int, Field(ge=0, le=366 * 24 * 3600)] = 0
    condition: dict[str, Any] | None = Field(
        None, description="A rule (as in segment definitions) that must hold when it acts."
    )
    every_minutes: Annotated[int | None, Field(ge=5, le=527_040)] = Field(
        None, description="For a schedule: minutes between runs; each run acts on every member."
    )
    status: Literal["active", "paused"] = "active"


class AutomationUpdate(Schema):
    name: Annotated[str | None, Field(min_length=1, max_length=200)] = None
    segment_id: Annotated[int | None, Field(ge=1, le=2**31 - 1)] = None
    trigger: Trigger | None = None
    action: dict[str, Any] | None = Field(None, description=ACTION_HELP)
    wait_seconds: Annotated[int | None, Field(ge=0, le=366 * 24 * 3600)] = None
    condition: dict[str, Any] | None = None
    every_minutes: Annotated[int | None, Field(ge=5, le=527_040)] = None
    status: Literal["active", "paused"] | None = None


class AutomationPublic(Schema):
    id: int
    name: str
    segment_id: int
    segment: str | None
    trigger: str
    every_minutes: int | None
    next_run_at: dt.datetime | None
    wait_seconds: int
    condition: dict[str, Any] | None
    action: dict[str, Any]
    status: str
    review_status: ReviewStatus
    firings: dict[str, int] = Field(description="Recorded firings by status.")
    created_at: dt.datetime
    updated_at: dt.datetime


class FiringPublic(Schema):
    id: int
    automation_id: int
    segment_id: int
    customer_id: int = Field(description="The customer's id in the warehouse.")
    external_id: str | None = Field(
        description="The customer's own id (as imported), for their profile; null once "
        "the customer has been erased."
    )
    change: str = Field(description="enter, exit, schedule or launch")
    at: dt.datetime = Field(description="The evaluation instant of the change.")
    due_at: dt.datetime
    status: str
    outcome: str | None
    created_at: dt.datetime
    done_at: dt.datetime | None


def _public(svc, rows: list[Automation]) -> list[dict[str, Any]]:
    ids = [a.id for a in rows]
    with svc.app.session() as s:
        names = dict(
            s.execute(
                sa.select(Segment.id, Segment.name).where(
                    Segment.id.in_([a.segment_id for a in rows])
                )
            ).all()
        )
        counts: dict[int, dict[str, int]] = {}
        for aid, status, n in s.execute(
            sa.select(TriggerFiring.automation_id, TriggerFiring.status, sa.func.count())
            .where(TriggerFiring.automation_id.in_(ids))
            .group_by(TriggerFiring.automation_id, TriggerFiring.status)
        ):
            counts.setdefault(aid, {})[status] = n
    return [
        {
            "id": a.id,
            "name": a.name,
            "segment_id": a.segment_id,
            "segment": names.get(a.segment_id),
            "trigger": a.trigger,
            "every_minutes": a.every_minutes,
            "next_run_at": a.next_run_at,
            "wait_seconds": a.wait_seconds,
            "condition": a.condition,
            "action": a.action,
            "status": a.status,
            "review_status": a.review_status,
            "firings": counts.get(a.id, {}),
            "created_at": a.created_at,
            "updated_at": a.updated_at,
        }
        for a in rows
    ]


def _masked(access: Access, automation: dict[str, Any]) -> dict[str, Any]:
    """A viewer sees a condition's values of personal columns masked (it may name a person)."""
    return {**automation, "condition": access.masker.conditions(automation["condition"])}


@router.get("/automations", response_model=PageOf[AutomationPublic])
def list_automations(
    access: Annotated[Access, Depends(require("actions.read"))], svc: ServiceDep, page: PageDep
):
    """The workspace's automations, by name, with their firings counted by status."""
    rows = Automations(svc.app, access.workspace).list()
    items = [_masked(access, a) for a in _public(svc, page.window(rows))]
    return page.answer(items, len(rows))


@router.post("/automations", response_model=AutomationPublic, status_code=201)
def create_automation(
    body: AutomationCreate,
    access: Annotated[Access, Depends(require("actions.write"))],
    svc: ServiceDep,
):
    """Save an automation; it listens from now on (entries before it are not replayed)."""
    seg = segment_of(svc.app, access, body.segment_id)
    with svc.reading() as app:
        row = Automations(app, access.workspace).create(
            body.name,
            seg.name,
            body.trigger,
            body.action,
            wait_seconds=body.wait_seconds,
            condition=body.condition,
            every_minutes=body.every_minutes,
            status=body.status,
            created_by=access.user_id,
        )
    return _public(svc, [row])[0]


@router.get("/automations/{automation_id}", response_model=AutomationPublic)
def get_automation(
    automation_id: AutomationId,
    access: Annotated[Access, Depends(require("actions.read"))],
    svc: ServiceDep,
):
    """One automation."""
    row = Automations(svc.app, access.workspace).get(automation_id)
    return _masked(access, _public(svc, [row])[0])


@router.patch("/automations/{automation_id}", response_model=AutomationPublic)
def update_automation(
    automation_id: AutomationId,
    body: AutomationUpdate,
    access: Annotated[Access, Depends(require("actions.write"))],
    svc: ServiceDep,
):
    """Change what is given; the rest stays."""
    changes = body.model_dump(exclude_unset=True)
    if "segment_id" in changes:
        seg_id = changes.pop("segment_id")
        if seg_id is not None:
            changes["segment"] = segment_of(svc.app, access, seg_id).name
    with svc.reading() as app:
        row = Automations(app, access.workspace).update(automation_id, **changes)
    return _public(svc, [row])[0]


@router.post("/automations/{automation_id}/pause", response_model=AutomationPublic)
def pause_automation(
    automation_id: AutomationId,
    access: Annotated[Access, Depends(require("actions.write"))],
    svc: ServiceDep,
):
    """Stop listening; firings already recorded wait until it resumes."""
    return _public(svc, [Automations(svc.app, access.workspace).pause(automation_id)])[0]


@router.post("/automations/{automation_id}/resume", response_model=AutomationPublic)
def resume_automation(
    automation_id: AutomationId,
    access: Annotated[Access, Depends(require("actions.write"))],
    svc: ServiceDep,
):
    """Listen again, and act on the firings that waited."""
    row = Automations(svc.app, access.workspace).resume(automation_id)
    svc.actions.automations.wake()
    return _public(svc, [row])[0]


@router.delete("/automations/{automation_id}", status_code=204)
def delete_automation(
    automation_id: AutomationId,
    access: Annotated[Access, Depends(require("actions.write"))],
    svc: ServiceDep,
) -> Response:
    """Delete an automation and its record of firings."""
    Automations(svc.app, access.workspace).delete(automation_id)
    return Response(status_code=204)


@router.get("/automations/{automation_id}/firings", response_model=PageOf[FiringPublic])
def list_firings(
    automation_id: AutomationId,
    access: Annotated[Access, Depends(require("actions.read"))],
    svc: ServiceDep,
    page: PageDep,
    status: Annotated[FiringStatus | None, Query(description="Only this status.")] = None,
):
    """Every firing of one automation, newest first: who, which change, what was done."""
    autos = Automations(svc.app, access.workspace)
    autos.get(automation_id)
    total, rows = autos.firings(
        automation_id=automation_id, status=status, limit=page.limit, offset=page.offset
    )
    return page.answer(_firings(svc, access, rows), total)


@router.get("/firings", response_model=PageOf[FiringPublic])
def list_all_firings(
    access: Annotated[Access, Depends(require("actions.read"))],
    svc: ServiceDep,
    page: PageDep,
    status: Annotated[FiringStatus | None, Query(description="Only this status.")] = None,
):
    """Every automation's firings, newest first: the workspace's record of entries, exits
    and scheduled runs, and what was done about each."""
    total, rows = Automations(svc.app, access.workspace).firings(
        status=status, limit=page.limit, offset=page.offset
    )
    return page.answer(_firings(svc, access, rows), total)


def _firings(svc, access: Access, rows: list[TriggerFiring]) -> list[dict[str, Any]]:
    """A page of firings, each naming its customer by external id too (one lookup)."""
    with svc.reading() as app:
        external = external_ids(app, access.workspace.id, [f.customer_id for f in rows])
    stored = [k for k in FiringPublic.model_fields if k != "external_id"]
    return [
        {**{k: getattr(f, k) for k in stored}, "external_id": external.get(f.customer_id)}
        for f in rows
    ]
