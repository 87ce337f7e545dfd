"""The audit log: who did what, and when (append-only, filterable, exportable).

Routes under ``/api/v1/workspaces/{workspace_id}/audit``, thin shells over
:mod:`strata.audit` (what ``strata audit …`` calls). Both need ``audit.read`` (owners
and admins): the log names members and what they did.
"""

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import Field

from strata import audit
from strata.api.deps import Access, PageDep, ServiceDep, require
from strata.api.schemas import ERRORS, PageOf, Schema

router = APIRouter(prefix="/workspaces/{workspace_id}/audit", tags=["audit"], responses=ERRORS)

AuditAccess = Annotated[Access, Depends(require("audit.read"))]


class AuditEntryPublic(Schema):
    id: int
    at: dt.datetime = Field(description="When, in UTC.")
    workspace_id: int | None
    actor: str = Field(
        description="Who, in words: a user's e-mail, cli:<os user>, a key, or strata itself."
    )
    actor_id: int | None = Field(description="The user who acted (none for the CLI or Strata).")
    action: str = Field(description="What, as <object>.<verb>: see docs/audit.md.")
    target_type: str | None
    target_id: str | None
    summary: str = Field(description="One line in words.")
    details: dict[str, Any] | None = Field(description="What changed.")
    request_id: str | None = Field(description="The API request that made the change.")
    address: str | None = Field(description="The client address of that request.")


class AuditQuery(Schema):
    """Filters of the log; every one given narrows it."""

    action: str | None = Field(
        None,
        max_length=64,
        description="One action (segment.create), or every action of an object (segment.).",
    )
    actor: str | None = Field(
        None, max_length=320, description="An e-mail, cli:<os user>, or a user's id."
    )
    target_type: str | None = Field(None, max_length=32, description="segment, automation, …")
    target_id: str | None = Field(None, max_length=64, description="The target's id.")
    since: str | None = Field(
        None, max_length=40, description="From this ISO date or time (UTC unless it says)."
    )
    until: str | None = Field(
        None, max_length=40, description="Up to this ISO date (the whole day) or time."
    )

    def filters(self) -> audit.Filters:
        return audit.Filters.parse(**self.model_dump(exclude={"format"}))


class AuditExportQuery(AuditQuery):
    format: Literal["csv", "jsonl"] = Field("csv", description="csv or jsonl (JSON Lines).")


@router.get("", response_model=PageOf[AuditEntryPublic])
def list_audit(
    access: AuditAccess,
    svc: ServiceDep,
    page: PageDep,
    query: Annotated[AuditQuery, Query()],
):
    """The workspace's audit entries that pass the filters, newest first."""
    filters = query.filters()
    with svc.app.session() as s:
        total, rows = audit.entries(
            s, access.workspace.id, filters, limit=page.limit, offset=page.offset
        )
        return page.answer([AuditEntryPublic.model_validate(r) for r in rows], total)


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/csv": {}, "application/jsonl": {}},
            "description": "The filtered log, newest first.",
        }
    },
)
def export_audit(
    access: AuditAccess, svc: ServiceDep, query: Annotated[AuditExportQuery, Query()]
) -> StreamingResponse:
    """The filtered log as a CSV or JSON Lines file, streamed; the export is itself audited
    (``audit.export``)."""
    filters = query.filters()
    ws = access.workspace
    with svc.app.session() as s:
        audit.record_export(s, ws.id, query.format, filters)
        s.commit()
    media = "text/csv; charset=utf-8" if query.format == "csv" else "application/jsonl"
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d")
    return StreamingResponse(
        audit.export_lines(svc.app.session, ws.id, query.format, filters),
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="audit-{ws.id}-{stamp}.{query.format}"'
        },
    )
