"""Exports: files of a segment's members for spreadsheets and marketing platforms.

Routes under ``/api/v1/workspaces/{workspace_id}/exports``, each a thin shell over
:class:`strata.actions.exports.Exports` (what ``strata exports …`` calls). Every route
needs ``segments.export``: the files hold personal data, so viewers get 403.
"""

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Response
from fastapi.responses import FileResponse
from pydantic import Field

from strata import audit
from strata.actions.exports import FORMATS, Exports, download_name
from strata.api.deps import Access, PageDep, ServiceDep, require
from strata.api.routes.segments import segment_of
from strata.api.schemas import ERRORS, PageOf, Schema
from strata.catalog.models import ExportFile

router = APIRouter(prefix="/workspaces/{workspace_id}/exports", tags=["exports"], responses=ERRORS)

ExportId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The export's id.")]
Format = Literal[tuple(FORMATS)]  # type: ignore[valid-type]
ExportAccess = Annotated[Access, Depends(require("segments.export"))]


class ExportCreate(Schema):
    segment_id: Annotated[int, Field(ge=1, le=2**31 - 1, description="The segment to export.")]
    format: Format = Field(
        description="csv, mailchimp, klaviyo, hubspot, google, google_hashed or meta "
        "(see docs/exports.md)."
    )
    default_region: Annotated[
        str | None,
        Field(
            pattern="^[A-Za-z]{2}$",
            description="Country code for phones without + of customers without a country.",
        ),
    ] = None


class ExportPublic(Schema):
    id: int
    segment_id: int | None = Field(description="None once the segment is deleted.")
    segment: str | None
    format: str
    rows: int
    bytes: int | None = Field(description="Size of the file; None if it is gone.")
    sha256: str = Field(description="SHA-256 of the file, to check a download.")
    filename: str
    created_by: int | None
    created_at: dt.datetime


def _public(ex: Exports, row: ExportFile, names: dict[int, str] | None = None) -> dict[str, Any]:
    names = names if names is not None else ex.segment_names([row.segment_id])
    path = ex.app.settings.home / row.path
    return {
        "id": row.id,
        "segment_id": row.segment_id,
        "segment": names.get(row.segment_id) if row.segment_id else None,
        "format": row.format,
        "rows": row.rows,
        "bytes": path.stat().st_size if path.is_file() else None,
        "sha256": row.sha256,
        "filename": download_name(row),
        "created_by": row.created_by,
        "created_at": row.created_at,
    }


@router.post("", response_model=ExportPublic, status_code=201)
def create_export(body: ExportCreate, access: ExportAccess, svc: ServiceDep):
    """Write the segment's current members as a file in ``format`` and keep it.

    The file is written now (members are streamed from the warehouse); the answer says
    how many rows it has and its SHA-256. Download it from ``/{export_id}/download``.
    """
    seg = segment_of(svc.app, access, body.segment_id)
    with svc.reading() as app:
        ex = Exports(app, access.workspace)
        row = ex.export(
            seg.name,
            body.format,
            created_by=access.user_id,
            default_region=body.default_region,
        )
        return _public(ex, row, {seg.id: seg.name})


@router.get("", response_model=PageOf[ExportPublic])
def list_exports(access: ExportAccess, svc: ServiceDep, page: PageDep):
    """The workspace's export files, newest first."""
    ex = Exports(svc.app, access.workspace)
    total, rows = ex.list(limit=page.limit, offset=page.offset)
    names = ex.segment_names(r.segment_id for r in rows)
    return page.answer([_public(ex, r, names) for r in rows], total)


@router.get("/{export_id}", response_model=ExportPublic)
def get_export(export_id: ExportId, access: ExportAccess, svc: ServiceDep):
    """One export: format, rows, size and SHA-256."""
    ex = Exports(svc.app, access.workspace)
    return _public(ex, ex.get(export_id))


@router.get(
    "/{export_id}/download",
    response_class=FileResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "The file, as stored."}},
)
def download_export(export_id: ExportId, access: ExportAccess, svc: ServiceDep) -> FileResponse:
    """The export's file, byte for byte as Strata wrote it (its SHA-256 is in the export)."""
    ex = Exports(svc.app, access.workspace)
    row = ex.get(export_id)
    path = ex.path(export_id)  # a file gone from the disk answers 404, unaudited
    with svc.app.session() as s:
        audit.record(
            s,
            access.workspace.id,
            "export.download",
            f"downloaded export {row.id} ({row.format}, {row.rows:,} rows)",
            target_type="export",
            target_id=row.id,
        )
        s.commit()
    return FileResponse(path, media_type="text/csv; charset=utf-8", filename=download_name(row))


@router.delete("/{export_id}", status_code=204)
def delete_export(export_id: ExportId, access: ExportAccess, svc: ServiceDep) -> Response:
    """Delete an export and its file."""
    Exports(svc.app, access.workspace).delete(export_id)
    return Response(status_code=204)
