"""Data rights (erasure, access), consent, suppressions and event retention.

Routes under ``/api/v1/workspaces/{workspace_id}/privacy``, thin shells over
:class:`strata.privacy.rights.Rights` and :mod:`strata.privacy.retention` (what
``strata privacy …`` calls). Every route needs ``privacy.manage`` (owners and admins).
An erasure or access request answers 202 with the request and its background job; the
request's receipt is filled in when the job is done (``GET /requests/{request_id}``).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import FileResponse
from pydantic import Field

from strata.api.deps import Access, PageDep, ServiceDep, require
from strata.api.schemas import ERRORS, JobPublic, PageOf, Schema
from strata.catalog.models import RightsRequest
from strata.privacy import retention
from strata.privacy.rights import Rights

router = APIRouter(prefix="/workspaces/{workspace_id}/privacy", tags=["privacy"], responses=ERRORS)

RequestId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The request's id.")]
PrivacyAccess = Annotated[Access, Depends(require("privacy.manage"))]


class PersonRef(Schema):
    """Exactly one of ``email`` and ``external_id``."""

    email: Annotated[
        str | None,
        Field(max_length=320, description="The customer's e-mail (compared without case)."),
    ] = None
    external_id: Annotated[
        str | None,
        Field(max_length=320, description="The customer's id in the imported data."),
    ] = None


class RequestPublic(Schema):
    id: int
    kind: str = Field(description="erasure or access")
    status: str = Field(description="queued, running, done or failed")
    subject_digest: str = Field(
        description="Keyed hash of the identifier asked about (not the identifier)."
    )
    job_id: int | None
    requested_by: int | None
    requested_at: dt.datetime
    finished_at: dt.datetime | None
    receipt: dict[str, Any] | None = Field(
        description="What was done, store by store, in counts; tools outside Strata the "
        "person was sent to (ask them to delete)."
    )
    file_sha256: str | None = Field(description="SHA-256 of an access request's file.")
    has_file: bool
    message: str | None


class RequestAccepted(Schema):
    request: RequestPublic
    job: JobPublic


class ConsentResult(Schema):
    released: int = Field(description="Suppression entries removed.")


class SuppressionKind(Schema):
    count: int
    first: dt.datetime | None
    last: dt.datetime | None


class SuppressionSummary(Schema):
    total: int
    kinds: dict[str, SuppressionKind]


class PrivacySettings(Schema):
    retention_days: Annotated[
        int | None,
        Field(
            ge=1,
            le=retention.MAX_DAYS,
            description="Delete events older than this many days (null: keep them).",
        ),
    ] = None


def public(row: RightsRequest) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "status": row.status,
        "subject_digest": row.subject_digest,
        "job_id": row.job_id,
        "requested_by": row.requested_by,
        "requested_at": row.requested_at,
        "finished_at": row.finished_at,
        "receipt": row.receipt,
        "file_sha256": row.file_sha256,
        "has_file": bool(row.file_path),
        "message": row.message,
    }


def _submit(kind: str, body: PersonRef, access: Access, svc) -> dict[str, Any]:
    ws = access.workspace
    with svc.reading() as app:
        req = Rights(app, ws).request(
            kind, email=body.email, external_id=body.external_id, requested_by=access.user_id
        )

    def work(progress) -> dict[str, Any]:
        return Rights(svc.strata(), ws, writing=svc.writing).run(req.id, progress)

    job = svc.jobs.submit(
        ws.id, f"privacy.{kind}", {"request_id": req.id}, work, created_by=access.user_id
    )
    rights = Rights(svc.app, ws)
    rights.attach_job(req.id, job.id)
    return {"request": public(rights.get(req.id)), "job": job}


@router.post("/erasures", response_model=RequestAccepted, status_code=202)
def erase_customer(body: PersonRef, access: PrivacyAccess, svc: ServiceDep):
    """Erase a customer (by e-mail or external id) from every store, in the background.

    The person must be stored in the workspace (else 404, nothing recorded). When the job
    is done, the request's receipt counts what went from each store and lists the tools
    outside Strata they were sent to; later imports and live events of them are refused
    until ``POST /consent``.
    """
    return _submit("erasure", body, access, svc)


@router.post("/access", response_model=RequestAccepted, status_code=202)
def access_request(body: PersonRef, access: PrivacyAccess, svc: ServiceDep):
    """Export everything held on one customer as a JSON file, in the background.

    Download it from ``/requests/{request_id}/file`` once the request is done.
    """
    return _submit("access", body, access, svc)


@router.get("/requests", response_model=PageOf[RequestPublic])
def list_requests(
    access: PrivacyAccess,
    svc: ServiceDep,
    page: PageDep,
    kind: Annotated[Literal["erasure", "access"] | None, Query()] = None,
):
    """The workspace's erasure and access requests, newest first."""
    total, rows = Rights(svc.app, access.workspace).list(
        kind=kind, limit=page.limit, offset=page.offset
    )
    return page.answer([public(r) for r in rows], total)


@router.get("/requests/{request_id}", response_model=RequestPublic)
def get_request(request_id: RequestId, access: PrivacyAccess, svc: ServiceDep):
    """One request: its status and receipt."""
    return public(Rights(svc.app, access.workspace).get(request_id))


@router.get(
    "/requests/{request_id}/file",
    response_class=FileResponse,
    responses={200: {"content": {"application/json": {}}, "description": "The access file."}},
)
def download_access_file(
    request_id: RequestId, access: PrivacyAccess, svc: ServiceDep
) -> FileResponse:
    """The JSON file of a finished access request (its SHA-256 is in the request)."""
    path = Rights(svc.app, access.workspace).file(request_id)
    return FileResponse(
        path, media_type="application/json", filename=f"access-request-{request_id}.json"
    )


@router.post("/consent", response_model=ConsentResult)
def record_consent(body: PersonRef, access: PrivacyAccess, svc: ServiceDep):
    """The person consented again: remove the suppression of the identifier given, so
    imports and live events of them are accepted (404 if it is not suppressed)."""
    released = Rights(svc.app, access.workspace).consent(
        email=body.email, external_id=body.external_id
    )
    return {"released": released}


@router.get("/suppressions", response_model=SuppressionSummary)
def suppressions(access: PrivacyAccess, svc: ServiceDep):
    """How many identifiers are suppressed, per kind, and when (never which)."""
    return Rights(svc.app, access.workspace).suppressions()


@router.get("/settings", response_model=PrivacySettings)
def get_settings(access: PrivacyAccess, svc: ServiceDep):
    """The workspace's event retention."""
    return {"retention_days": access.workspace.retention_days}


@router.put("/settings", response_model=PrivacySettings)
def put_settings(body: PrivacySettings, access: PrivacyAccess, svc: ServiceDep):
    """Set the event retention (days; null turns it off). A server applies it hourly."""
    ws = retention.set_retention(svc.app, access.workspace, body.retention_days)
    return {"retention_days": ws.retention_days}


class RetentionRun(Schema):
    retention_days: int | None = Field(description="The setting applied (null: none set).")
    cutoff: str | None = Field(None, description="Events before this instant (UTC) went.")
    warehouse: dict[str, int] = Field(default_factory=dict, description="Rows deleted.")
    catalog: dict[str, int] = Field(default_factory=dict, description="Rows deleted.")


@router.post("/retention/run", response_model=RetentionRun)
def run_retention(access: PrivacyAccess, svc: ServiceDep):
    """Apply the retention now instead of at the next hourly pass; what went, per store."""
    with svc.writing() as app:
        return retention.apply(app, access.workspace)
