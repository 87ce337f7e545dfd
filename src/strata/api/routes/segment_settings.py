"""Segment settings: the RFM grid and scoring, tier sets, the ICP criteria.

What ``strata rfm``, ``strata tiers …`` and ``strata icp …`` do, through the same library
calls. Work that evaluates segments (RFM scoring, tier sets) runs as a job and answers
202; reading needs ``segments.read``, changing ``segments.write``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Response
from pydantic import Field

from strata.api.deps import Access, PageDep, ServiceDep, require
from strata.api.schemas import ERRORS, JobPublic, PageOf, Schema
from strata.api.state import Service
from strata.catalog import Workspace
from strata.errors import Conflict, NotFound
from strata.segments import rfm as rfm_mod
from strata.segments.engine import (
    Segments,
    icp_summary,
    run_rfm,
    save_tiers,
    set_icp,
    tier_sets,
)
from strata.segments.icp import IcpConfig
from strata.segments.icp import parse_config as parse_icp
from strata.segments.reference import ReferenceTime
from strata.segments.tiers import parse_config as parse_tiers

router = APIRouter(prefix="/workspaces/{workspace_id}", tags=["segment settings"], responses=ERRORS)

Read = Annotated[Access, Depends(require("segments.read"))]
Write = Annotated[Access, Depends(require("segments.write"))]
TierSetName = Annotated[
    str, Path(min_length=1, max_length=100, description="The tier set, e.g. 'size'.")
]
AsOf = Annotated[
    str | None,
    Field(
        max_length=40,
        description="Reference time: YYYY-MM-DD (the end of that day), an ISO date-time "
        "(UTC) or 'now' (default).",
    ),
]


# -- schemas ----------------------------------------------------------------------------------
class RfmGridUpdate(Schema):
    """An RFM grid, as the YAML of ``strata rfm --config``; left-out keys take the default."""

    bins: Annotated[int | None, Field(ge=2, le=10)] = None
    map: Annotated[
        dict[str, list[Annotated[str, Field(max_length=20)]]] | None,
        Field(max_length=100, description='Segment name → cells "R:FM", e.g. "4-5:1-2".'),
    ] = None
    order_event: Annotated[str | None, Field(min_length=1, max_length=100)] = None


class RfmGridPublic(Schema):
    bins: int
    map: dict[str, list[str]]
    order_event: str
    standard: bool = Field(description="Whether this is the standard grid.")
    actions: dict[str, str] = Field(description="The suggested action of each standard segment.")


class RfmRun(Schema):
    as_of: AsOf = None
    dry_run: bool = Field(False, description="Compute the table; save no segments.")


class TierIn(Schema):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    max: float | None = Field(None, description="Values up to this, included; none: no bound.")
    min: float | None = Field(None, description="Values above this; default: the previous max.")


class TierSetUpdate(Schema):
    on: Annotated[str, Field(min_length=1, max_length=100, description="A numeric field.")]
    tiers: Annotated[
        list[TierIn] | None,
        Field(max_length=50, description="In order; default: Small Business ≤ 1, Mid-Market ≤ "
              "10, Large Enterprise."),
    ] = None  # fmt: skip
    as_of: AsOf = None


class TierSetPublic(Schema):
    name: str
    on: str
    tiers: list[dict[str, Any]]
    rules: list[str]


class IcpUpdate(Schema):
    criteria: Annotated[
        list[dict[str, Any]],
        Field(
            min_length=1,
            max_length=50,
            description="As in the YAML of ``strata icp set``: on, weight, label and one of "
            "in, range, scale, map, exists.",
        ),
    ]


class IcpCriterionSummary(Schema):
    on: str
    weight: float
    rule: str = Field(description="The criterion in words (its label when it has one).")


class IcpBand(Schema):
    band: str = Field(description="A fifth of the score: 0–20 … 80–100.")
    customers: int


class IcpPublic(Schema):
    as_of: str = Field(description="The reference time the scores were computed at.")
    criteria: list[IcpCriterionSummary]
    customers: int
    average: float = Field(description="The average score, 0–100.")
    bands: list[IcpBand] = Field(description="Customers per fifth of the score (none: left out).")
    config: IcpConfig = Field(description="The criteria as stored (what PUT takes back).")


# -- RFM --------------------------------------------------------------------------------------
@router.get("/settings/rfm", response_model=RfmGridPublic)
def get_rfm_grid(access: Read, svc: ServiceDep):
    """The workspace's RFM grid: bins, segment map and which events are orders."""
    config = Segments(svc.app, access.workspace).rfm_config()
    return {
        **config.model_dump(mode="json"),
        "standard": config == rfm_mod.default_config(),
        "actions": {n: rfm_mod.ACTIONS[n] for n in config.map if n in rfm_mod.ACTIONS},
    }


@router.put("/settings/rfm", response_model=JobPublic, status_code=202)
def put_rfm_grid(body: RfmGridUpdate, access: Write, svc: ServiceDep):
    """Store a new RFM grid (checked first: every cell in exactly one segment) and score
    RFM with it, as a job: segments for new names are created, dropped names deleted."""
    config = rfm_mod.parse_config(body.model_dump(exclude_none=True))
    Segments(svc.app, access.workspace).set_setting("rfm", config.model_dump(mode="json"))
    return _rfm_job(svc, access, as_of=None, dry_run=False)


@router.delete("/settings/rfm", response_model=JobPublic, status_code=202)
def reset_rfm_grid(access: Write, svc: ServiceDep):
    """Go back to the standard grid and score RFM with it, as a job (``strata rfm --reset``)."""
    Segments(svc.app, access.workspace).set_setting("rfm", None)
    return _rfm_job(svc, access, as_of=None, dry_run=False)


@router.post("/rfm", response_model=JobPublic, status_code=202)
def score_rfm(access: Write, svc: ServiceDep, body: Annotated[RfmRun | None, Body()] = None):
    """Score every customer with orders and refresh the RFM segments, as a job whose result
    is the table: customers and revenue per segment (``strata rfm``)."""
    body = body or RfmRun()
    ReferenceTime.parse(body.as_of)  # a bad date answers 422 now, not in the job
    return _rfm_job(svc, access, as_of=body.as_of, dry_run=body.dry_run)


def _rfm_job(svc: Service, access: Access, *, as_of: str | None, dry_run: bool):
    ws = access.workspace

    def work(progress) -> dict[str, Any]:
        progress(0.05, "scoring")
        with svc.writing() as app:
            return run_rfm(
                Segments(app, _current(app, ws.id)),
                as_of=ReferenceTime.parse(as_of) if as_of else None,
                save=not dry_run,
            )

    params = {"as_of": as_of, "dry_run": dry_run}
    return svc.jobs.submit(ws.id, "rfm", params, work, created_by=access.user_id)


# -- tiers ------------------------------------------------------------------------------------
@router.get("/tiers", response_model=PageOf[TierSetPublic])
def list_tier_sets(access: Read, svc: ServiceDep, page: PageDep):
    """The tier sets and their thresholds (``strata tiers list``)."""
    sets = tier_sets(Segments(svc.app, access.workspace))
    rows = [
        {
            "name": name,
            "on": c.on,
            "tiers": [t.model_dump() for t in c.tiers],
            "rules": c.describe(),
        }
        for name, c in sorted(sets.items())
    ]
    return page.answer(page.window(rows), len(rows))


@router.put("/tiers/{name}", response_model=JobPublic, status_code=202)
def put_tier_set(name: TierSetName, body: TierSetUpdate, access: Write, svc: ServiceDep):
    """Create or change a tier set, as a job: each tier becomes a segment, evaluated at once
    (``strata tiers create``). The ranges are checked now (422)."""
    data: dict[str, Any] = {"on": body.on}
    if body.tiers is not None:
        data["tiers"] = [t.model_dump(exclude_none=True) for t in body.tiers]
    config = parse_tiers(data)
    ref = ReferenceTime.parse(body.as_of) if body.as_of else None
    ws = access.workspace

    def work(progress) -> dict[str, Any]:
        progress(0.05, "evaluating")
        with svc.writing() as app:
            results = save_tiers(Segments(app, _current(app, ws.id)), name, config, as_of=ref)
        return {
            "tiers": name,
            "on": config.on,
            "rules": config.describe(),
            "segments": [r.to_dict() for r in results],
        }

    params = {"name": name, **config.model_dump(mode="json"), "as_of": body.as_of}
    return svc.jobs.submit(ws.id, "tiers", params, work, created_by=access.user_id)


@router.delete("/tiers/{name}", status_code=204)
def delete_tier_set(name: TierSetName, access: Write, svc: ServiceDep) -> Response:
    """Delete a tier set and its segments with their history (refused, 409, while another
    segment's rule names one of them)."""
    family = f"tiers:{name}"
    with svc.writing() as app:
        segs = Segments(app, access.workspace)
        if name not in tier_sets(segs):
            raise NotFound(f"no tier set {name!r} in this workspace")
        mine = [s.name for s in segs.list() if s.family == family]
        users = sorted({u for t in mine for u in segs.dependents(t)} - set(mine))
        if users:
            raise Conflict(
                f"tier set {name!r} is used by {', '.join(map(repr, users))}: change those first"
            )
        for tier in mine:
            segs.delete(tier)
        segs.set_setting(family, None)
    return Response(status_code=204)


# -- ICP --------------------------------------------------------------------------------------
@router.get("/settings/icp", response_model=IcpPublic)
def get_icp(
    access: Read,
    svc: ServiceDep,
    as_of: Annotated[str | None, Query(max_length=40, description="Reference time.")] = None,
):
    """The ICP criteria (``config``, as stored) and how customers' scores spread over 0–100
    (``strata icp show``); 404 until criteria are set."""
    with svc.reading() as app:
        segs = Segments(app, access.workspace)
        summary = icp_summary(segs, as_of=ReferenceTime.parse(as_of) if as_of else None)
        return {**summary, "config": segs.setting("icp")}


@router.put("/settings/icp", response_model=IcpPublic)
def put_icp(body: IcpUpdate, access: Write, svc: ServiceDep):
    """Store the ICP criteria after checking that each names a usable field and that the
    score computes (else the previous criteria stay), and answer how the scores spread
    (``strata icp set``)."""
    config = parse_icp(body.model_dump())
    with svc.reading() as app:  # scoring reads the warehouse; the criteria go to the catalog
        segs = Segments(app, access.workspace)
        summary = set_icp(segs, config)
        return {**summary, "config": segs.setting("icp")}


def _current(app, workspace_id: int) -> Workspace:
    """The workspace as it is when a job runs (it may have been renamed or deleted)."""
    with app.session() as s:
        ws = s.get(Workspace, workspace_id)
    if ws is None:
        raise NotFound("the workspace was deleted before the job ran")
    return ws
