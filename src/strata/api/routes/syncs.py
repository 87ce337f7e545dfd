"""Syncs: segments kept in step with lists in Mailchimp, Klaviyo and HubSpot.

Routes under ``/api/v1/workspaces/{workspace_id}/syncs``, thin shells over
:class:`strata.actions.syncs.Syncs` (what ``strata syncs …`` calls). API keys go in
and never come out: answers show their last four characters at most. A run the tool
refuses answers 502 with the tool's own answer in one line.
"""

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import ConfigDict, Field

from strata.actions.syncs import SyncFailed, Syncs, destination_dict
from strata.api.deps import Access, PageDep, ServiceDep, require
from strata.api.problems import problem
from strata.api.schemas import ERRORS, PageOf, Problem, ReviewStatus, Schema
from strata.catalog import Segment
from strata.errors import NotFound

router = APIRouter(prefix="/workspaces/{workspace_id}/syncs", tags=["syncs"], responses=ERRORS)

DestinationId = Annotated[
    int, Path(ge=1, le=2**31 - 1, description="The destination's catalog id.")
]
SyncId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The sync's catalog id.")]
REFUSED = {502: {"model": Problem, "description": "the marketing tool refused or was unreachable"}}


# -- bodies and answers ---------------------------------------------------------------------
class DestinationSettings(Schema):
    model_config = ConfigDict(extra="forbid")

    base_url: Annotated[
        str | None,
        Field(max_length=500, description="Another address for the tool's API (a proxy)."),
    ] = None
    status_if_new: Literal["transactional", "subscribed", "pending"] | None = Field(
        None, description="Mailchimp: the status of contacts new to the audience (transactional)."
    )
    revision: Annotated[
        str | None, Field(max_length=20, description="Klaviyo: the API revision to call.")
    ] = None


class DestinationCreate(Schema):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    kind: Literal["mailchimp", "klaviyo", "hubspot"]
    api_key: Annotated[
        str,
        Field(
            min_length=8,
            max_length=1000,
            description="Mailchimp API key, Klaviyo private key or HubSpot private app "
            "token; sealed at rest and never answered.",
        ),
    ]
    config: DestinationSettings = Field(default_factory=DestinationSettings)


class DestinationPublic(Schema):
    id: int
    name: str
    kind: str
    config: dict[str, Any] = Field(description="Settings that may be shown (no secrets).")
    key_hint: str | None = Field(description="The key's last four characters.")
    status: str
    disabled_reason: str | None
    created_at: dt.datetime


class SyncCreate(Schema):
    destination_id: Annotated[int, Field(ge=1, le=2**31 - 1)]
    segment_id: Annotated[int, Field(ge=1, le=2**31 - 1)]
    list_id: Annotated[
        str,
        Field(
            min_length=1,
            max_length=100,
            description="Mailchimp audience id, Klaviyo list id or HubSpot MANUAL list id.",
        ),
    ]
    tag: Annotated[
        str | None,
        Field(
            min_length=1, max_length=100, description="Mailchimp: the tag (default: segment name)."
        ),
    ] = None


class SyncPublic(Schema):
    id: int
    destination_id: int
    destination: str | None
    kind: str | None
    segment_id: int
    segment: str | None
    list_id: str | None
    tag: str | None
    status: str = Field(description="new, ok or failed")
    review_status: ReviewStatus
    synced_members: int = Field(description="Customers the tool has confirmed.")
    last_synced_at: dt.datetime | None
    last_result: dict[str, Any] | None
    created_at: dt.datetime


class SyncResult(Schema):
    added: int = Field(description="Addresses added to the list.")
    removed: int = Field(description="Addresses taken off the list.")
    skipped_no_email: int = Field(description="Members without a usable e-mail address.")
    rejected: int = Field(description="Addresses the tool refused (tried again next run).")
    rejections: dict[str, int] = Field(description="Why, with how many each.")
    requests: int = Field(description="Requests sent, retries included.")
    full: bool = Field(description="Whether every member was sent (first run, or asked).")
    members: int = Field(description="Distinct addresses the list should now hold.")
    seconds: float


# -- destinations ---------------------------------------------------------------------------
@router.post("/destinations", response_model=DestinationPublic, status_code=201)
def add_destination(
    body: DestinationCreate,
    access: Annotated[Access, Depends(require("destinations.manage"))],
    svc: ServiceDep,
):
    """Connect an account of Mailchimp, Klaviyo or HubSpot; the key is sealed at rest."""
    syncs = Syncs(svc.strata(), access.workspace)
    dest = syncs.add_destination(
        body.name,
        body.kind,
        api_key=body.api_key,
        config=body.config.model_dump(exclude_none=True),
        created_by=access.user_id,
    )
    return destination_dict(dest)


@router.get("/destinations", response_model=PageOf[DestinationPublic])
def list_destinations(
    access: Annotated[Access, Depends(require("destinations.read"))],
    svc: ServiceDep,
    page: PageDep,
):
    """The workspace's marketing-tool destinations (keys shown as their last 4 characters)."""
    rows = Syncs(svc.strata(), access.workspace).destinations()
    return page.answer([destination_dict(d) for d in page.window(rows)], len(rows))


@router.delete("/destinations/{destination_id}", status_code=204)
def remove_destination(
    destination_id: DestinationId,
    access: Annotated[Access, Depends(require("destinations.manage"))],
    svc: ServiceDep,
) -> Response:
    """Forget a destination, its key and its syncs (the remote lists keep their members)."""
    Syncs(svc.strata(), access.workspace).remove_destination(destination_id)
    return Response(status_code=204)


# -- syncs ----------------------------------------------------------------------------------
@router.post("", response_model=SyncPublic, status_code=201)
def create_sync(
    body: SyncCreate,
    access: Annotated[Access, Depends(require("actions.write"))],
    svc: ServiceDep,
):
    """Link a segment to a list of a destination; nothing is sent until it runs."""
    app = svc.strata()
    with app.session() as s:
        seg = s.get(Segment, body.segment_id)
    if seg is None or seg.workspace_id != access.workspace.id:
        raise NotFound(f"no segment {body.segment_id} in this workspace")
    syncs = Syncs(app, access.workspace)
    sync = syncs.create(body.destination_id, seg.name, list_id=body.list_id, tag=body.tag)
    return syncs.describe(sync)


@router.get("", response_model=PageOf[SyncPublic])
def list_syncs(
    access: Annotated[Access, Depends(require("actions.read"))], svc: ServiceDep, page: PageDep
):
    """The workspace's syncs, with how many customers each has pushed and its last result."""
    syncs = Syncs(svc.strata(), access.workspace)
    rows = syncs.list()
    return page.answer([syncs.describe(s) for s in page.window(rows)], len(rows))


@router.get("/{sync_id}", response_model=SyncPublic)
def get_sync(
    sync_id: SyncId, access: Annotated[Access, Depends(require("actions.read"))], svc: ServiceDep
):
    """One sync: its list, status and last result."""
    syncs = Syncs(svc.strata(), access.workspace)
    return syncs.describe(syncs.get(sync_id))


@router.delete("/{sync_id}", status_code=204)
def delete_sync(
    sync_id: SyncId, access: Annotated[Access, Depends(require("actions.write"))], svc: ServiceDep
) -> Response:
    """Stop syncing; the remote list keeps its members."""
    Syncs(svc.strata(), access.workspace).delete(sync_id)
    return Response(status_code=204)


@router.post("/{sync_id}/run", response_model=SyncResult, responses=REFUSED)
def run_sync(
    sync_id: SyncId,
    access: Annotated[Access, Depends(require("actions.write"))],
    svc: ServiceDep,
    full: Annotated[
        bool, Query(description="Send every member again, not only who entered or left.")
    ] = False,
):
    """Run the sync now: who entered the segment is added, who left is removed.

    A tool that refuses answers 502 with what it said and what to do; what it had
    confirmed is kept, the rest goes with the next run.
    """
    syncs = Syncs(svc.strata(), access.workspace, reading=svc.reading)
    try:
        return syncs.run(sync_id, full=full)
    except SyncFailed as exc:
        return problem(502, str(exc))
