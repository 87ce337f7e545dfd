"""Imports: upload a file, look at what it holds, confirm it, read the reports.

An upload is inspected at once (preset, mapping, a preview, the rows that would be left
out) and kept until it is confirmed; the import itself runs as a job. The routes call
the same library functions as ``strata import`` and ``strata imports list/show``.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import math
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Body, Depends, Path, Request, Response
from pydantic import Field
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from sqlalchemy.orm import defer
from starlette.concurrency import run_in_threadpool

from strata.api.deps import Access, PageDep, ServiceDep, require
from strata.api.schemas import ERRORS, JobPublic, PageOf, Schema
from strata.api.state import Service
from strata.catalog import ImportRun, Workspace
from strata.errors import InputError, NotFound, PayloadTooLarge
from strata.ingest.lines import Problems
from strata.ingest.mapping import FIELDS, load_mapping_file
from strata.ingest.pipeline import SUMMARY_KEYS, inspect_file, run_import
from strata.ingest.presets import registry
from strata.jobs import Work
from strata.uploads import Incoming, Upload, Uploads

router = APIRouter(prefix="/workspaces/{workspace_id}", tags=["imports"], responses=ERRORS)

#: Rows shown in an upload's preview.
PREVIEW_ROWS = 20
#: Form fields an upload may carry besides the file, with their longest value.
FORM_FIELDS = {"preset": 64, "target": 16, "encoding": 64, "mapping": 64 * 1024}
#: Room for the form fields and multipart framing beyond the file's own size.
_FORM_SLACK = 1 << 20

ImportId = Annotated[int, Path(ge=1, le=2**31 - 1)]
UploadId = Annotated[str, Path(min_length=32, max_length=32, pattern="^[0-9a-f]{32}$")]
Target = Literal["customers", "events"]


# -- schemas ----------------------------------------------------------------------------------
class ColumnPublic(Schema):
    column: str
    field: str | None = Field(description="The Strata field or attribute it maps to, if any.")
    confidence: float | None
    sample: Any = None


class UploadPublic(Schema):
    """An uploaded file, as Strata reads it; confirm it to import it."""

    id: str
    file_name: str
    size: int
    created_at: dt.datetime
    preset: str
    preset_title: str
    confidence: float
    target: str
    mapping: dict[str, Any] = Field(
        description="The mapping as a mapping file holds it (preset, as, fields, attributes): "
        "edit it and send it back when confirming."
    )
    columns: list[ColumnPublic]
    encoding: str
    warnings: list[str]
    rows: int = Field(description="Data rows in the file, malformed ones included.")
    malformed_rows: int
    rows_skipped: dict[str, int] = Field(description="Rows an import would leave out, by reason.")
    invalid_values: int
    errors: list[dict[str, Any]] = Field(description="The first bad values: row, column, reason.")
    preview: list[dict[str, Any]] = Field(description="The first rows as read.")
    preview_mapped: list[dict[str, Any]] = Field(description="The first rows as Strata maps them.")


class FieldPublic(Schema):
    name: str
    type: str = Field(
        description="How its values are read: id, email, string, date, "
        "timestamp, number or integer."
    )
    help: str
    required: bool = Field(description="The preset refuses a mapping without it.")


class PresetPublic(Schema):
    """A kind of file Strata knows, and the fields a mapping for it can name."""

    name: str
    title: str
    target: str = Field(description="What its rows become: customers or events.")
    fields: list[FieldPublic]


class ImportConfirm(Schema):
    preset: Annotated[str | None, Field(max_length=64, description="auto or a preset name")] = None
    target: Target | None = None
    mapping: Annotated[
        str | None, Field(max_length=64 * 1024, description="A mapping file's text (YAML/JSON).")
    ] = None
    encoding: Annotated[str | None, Field(max_length=64)] = None
    dry_run: bool = Field(False, description="Count what would happen; write nothing.")
    strict: bool = Field(False, description="Refuse the whole file if any value is bad.")


class ImportPublic(Schema):
    id: int
    status: str = Field(description="running, succeeded, failed or interrupted")
    source: str = Field(description="The imported file's name.")
    preset: str | None
    target: str | None
    message: str | None
    started_at: dt.datetime
    finished_at: dt.datetime | None
    summary: dict[str, Any] | None = Field(description="The report's main figures.")


class ImportDetail(ImportPublic):
    report: dict[str, Any] | None
    bad_rows: int = Field(description="Bad rows kept with the run (see …/errors).")


class BadRow(Schema):
    row: int
    column: str
    reason: str
    value: str | None = None


# -- uploads ----------------------------------------------------------------------------------
_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "preset": {"type": "string", "description": "auto or a preset name"},
                        "target": {"type": "string", "enum": ["customers", "events"]},
                        "mapping": {"type": "string", "description": "mapping YAML/JSON text"},
                        "encoding": {"type": "string"},
                    },
                }
            }
        },
    }
}


@router.post("/imports", response_model=UploadPublic, status_code=201, openapi_extra=_UPLOAD_BODY)
async def upload_file(
    request: Request,
    access: Annotated[Access, Depends(require("imports.create"))],
    svc: ServiceDep,
):
    """Upload one file (multipart: ``file``; optional ``preset``, ``target``, ``mapping``,
    ``encoding``) and see what it holds: the detected preset and mapping, the first rows
    and the rows an import would leave out. Nothing is imported until you confirm it.

    Files up to 1 GiB (413 beyond); a file Strata cannot read answers 422 and is not kept.
    """
    uploads = _uploads(svc)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > uploads.limit + _FORM_SLACK:
        raise PayloadTooLarge(f"the file is larger than {uploads.limit:,} bytes: split it")
    form = _UploadForm(
        lambda name: uploads.receive(access.workspace.id, name, created_by=access.user_id)
    )
    upload = await form.read(request)
    try:
        return await run_in_threadpool(_inspect_upload, upload)
    except BaseException:
        uploads.discard(upload)  # a file that cannot be read is not kept
        raise


@router.post(
    "/imports/{upload_id}/confirm", response_model=JobPublic, status_code=202, tags=["jobs"]
)
def confirm_upload(
    upload_id: UploadId,
    access: Annotated[Access, Depends(require("imports.create"))],
    svc: ServiceDep,
    body: Annotated[ImportConfirm | None, Body()] = None,
):
    """Import an upload, as a job (follow it under ``/jobs/{id}``; its result is the import
    report with ``import_id``). Preset, target, mapping and encoding override the upload's.
    After a real (not dry) run the file is deleted; segments are brought up to date."""
    body = body or ImportConfirm()
    uploads = _uploads(svc)
    upload = uploads.importable(access.workspace.id, upload_id)
    changes = body.model_dump(include={"preset", "target", "encoding"}, exclude_unset=True)
    options = {**upload.options, **changes}
    _check_preset(options.get("preset"))
    if body.mapping is not None:
        upload.set_mapping(body.mapping.strip() or None)  # "": detect the mapping again
    if upload.mapping_file is not None:
        load_mapping_file(upload.mapping_file)  # a bad mapping answers 422 now, not in the job
    upload.options = options
    upload.save()
    params = {
        "upload_id": upload.id,
        "file": upload.file_name,
        **options,
        "dry_run": body.dry_run,
        "strict": body.strict,
    }
    work = _import_work(svc, uploads, access.workspace.id, upload.id, body.dry_run, body.strict)
    return svc.jobs.submit(access.workspace.id, "import", params, work, created_by=access.user_id)


@router.get("/imports/presets", response_model=list[PresetPublic])
def list_presets(access: Annotated[Access, Depends(require("imports.read"))]):
    """The presets an upload can be read as, each with the fields its mapping can name
    and their types (what the web app's mapping step offers)."""
    return [
        {
            "name": p.name,
            "title": p.title,
            "target": p.target,
            # Presets with fixed columns (cdnow, shopify, stripe) read any field a mapping names.
            "fields": [
                {
                    "name": f.name,
                    "type": f.kind,
                    "help": f.help,
                    "required": f.name in p.required,
                }
                for f in (FIELDS[name] for name in (p.fields or FIELDS))
            ],
        }
        for p in registry().values()
    ]


# -- past imports -----------------------------------------------------------------------------
@router.get("/imports", response_model=PageOf[ImportPublic])
def list_imports(
    access: Annotated[Access, Depends(require("imports.read"))], svc: ServiceDep, page: PageDep
):
    """The workspace's imports, newest first, with their main figures."""
    query = (
        sa.select(ImportRun)
        .where(ImportRun.workspace_id == access.workspace.id)
        .options(defer(ImportRun.errors))
        .order_by(ImportRun.id.desc())
    )
    with svc.app.session() as s:
        total, runs = page.rows(s, query)
        items = [_import(r) for r in runs]
    return page.answer(items, total)


@router.get("/imports/{import_id}", response_model=ImportDetail)
def get_import(
    import_id: ImportId,
    access: Annotated[Access, Depends(require("imports.read"))],
    svc: ServiceDep,
):
    """One import and its full report (bad rows: ``…/errors``)."""
    run = _run(svc, access.workspace.id, import_id)
    report = _report(run.report)
    if report is not None and access.masked:
        report = access.masker.import_report(report)
    return {**_import(run), "report": report, "bad_rows": len(run.errors or [])}


@router.get("/imports/{import_id}/errors", response_model=PageOf[BadRow])
def list_import_errors(
    import_id: ImportId,
    access: Annotated[Access, Depends(require("imports.read"))],
    svc: ServiceDep,
    page: PageDep,
):
    """The import's bad rows (up to 1,000 kept): row, column, reason and the value read."""
    run = _run(svc, access.workspace.id, import_id)
    rows = run.errors or []
    return page.answer(_bad_rows(access, run, page.window(rows)), len(rows))


@router.get(
    "/imports/{import_id}/errors.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "The bad rows as CSV."}},
)
def export_import_errors(
    import_id: ImportId,
    access: Annotated[Access, Depends(require("imports.read"))],
    svc: ServiceDep,
) -> Response:
    """Every bad row kept with the import (up to 1,000) as CSV: row, column, reason, value."""
    run = _run(svc, access.workspace.id, import_id)
    out = io.StringIO()
    writer = csv.DictWriter(out, ["row", "column", "reason", "value"], extrasaction="ignore")
    writer.writeheader()
    writer.writerows(_bad_rows(access, run, run.errors or []))
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="import-{run.id}-bad-rows.csv"'},
    )


# -- helpers ----------------------------------------------------------------------------------
def _uploads(svc: Service) -> Uploads:
    return Uploads(svc.settings.home)


class _UploadForm:
    """multipart/form-data read as it arrives, the file part written straight to disk."""

    def __init__(self, start_file):
        self._start_file = start_file
        self._stack = contextlib.ExitStack()
        self.incoming: Incoming | None = None
        self.fields: dict[str, str] = {}
        self._headers: dict[bytes, bytes] = {}
        self._header = [bytearray(), bytearray()]
        self._part: str | None = None
        self._value = bytearray()

    async def read(self, request: Request) -> Upload:
        ctype, params = parse_options_header(request.headers.get("content-type"))
        if ctype != b"multipart/form-data" or not params.get(b"boundary"):
            raise InputError("send the file as multipart/form-data, in the form field 'file'")
        parser = MultipartParser(params[b"boundary"], self._callbacks())
        with self._stack:
            try:
                async for chunk in request.stream():
                    if chunk:  # file writes block: keep them off the event loop
                        await run_in_threadpool(parser.write, chunk)
                parser.finalize()
            except FormParserError:
                raise InputError("the upload is not valid multipart/form-data") from None
            if self.incoming is None:
                raise InputError("send the file in the form field 'file'")
            self._set_options(self.incoming.upload)
        return self.incoming.upload

    def _set_options(self, upload: Upload) -> None:
        target = self.fields.get("target") or None
        if target not in (None, "customers", "events"):
            raise InputError(f"target must be customers or events, not {target!r}")
        preset = self.fields.get("preset") or None
        _check_preset(preset)
        upload.options = {
            "preset": preset,
            "target": target,
            "encoding": self.fields.get("encoding") or None,
        }
        if self.fields.get("mapping"):
            upload.set_mapping(self.fields["mapping"])

    def _callbacks(self) -> dict[str, Any]:
        def on_part_begin() -> None:
            self._headers, self._part, self._value = {}, None, bytearray()

        def on_header_field(data: bytes, start: int, end: int) -> None:
            self._header[0] += data[start:end]

        def on_header_value(data: bytes, start: int, end: int) -> None:
            self._header[1] += data[start:end]

        def on_header_end() -> None:
            self._headers[bytes(self._header[0]).lower()] = bytes(self._header[1])
            self._header = [bytearray(), bytearray()]

        def on_headers_finished() -> None:
            _, params = parse_options_header(self._headers.get(b"content-disposition"))
            name = params.get(b"name", b"").decode("utf-8", "replace")
            file_name = params.get(b"filename")
            if name == "file":
                if self.incoming is not None:
                    raise InputError("send one file per upload")
                name_text = (file_name or b"upload").decode("utf-8", "replace")
                self.incoming = self._stack.enter_context(self._start_file(name_text))
            elif name not in FORM_FIELDS:
                raise InputError(
                    f"unknown form field {name[:40]!r}: send file, preset, target, mapping, "
                    "encoding"
                )
            self._part = name

        def on_part_data(data: bytes, start: int, end: int) -> None:
            if self._part == "file":
                self.incoming.write(data[start:end])
                return
            self._value += data[start:end]
            if len(self._value) > FORM_FIELDS[self._part]:
                raise InputError(
                    f"the form field {self._part!r} is too long (at most "
                    f"{FORM_FIELDS[self._part]:,} bytes)"
                )

        def on_part_end() -> None:
            if self._part in FORM_FIELDS:
                try:
                    self.fields[self._part] = self._value.decode("utf-8").strip()
                except UnicodeDecodeError:
                    raise InputError(f"the form field {self._part!r} is not UTF-8 text") from None

        return {
            "on_part_begin": on_part_begin,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
        }


def _check_preset(preset: str | None) -> None:
    if preset not in (None, "auto", *registry()):
        raise InputError(f"unknown preset {preset!r}; choose one of: auto, {', '.join(registry())}")


def _inspect(upload: Upload):
    o = upload.options
    return inspect_file(
        upload.path,
        preset=o.get("preset") or "auto",
        mapping_file=upload.mapping_file,
        target=o.get("target"),
        encoding=o.get("encoding"),
    )


def _inspect_upload(upload: Upload) -> dict[str, Any]:
    """What the upload holds, as :func:`inspect_file` and the preset's checks see it."""
    inspected = _inspect(upload)
    raw, chosen, confidence, mapping = inspected
    problems = Problems()
    for number, reason in raw.bad_rows:
        problems.add([number or 0], "(row)", reason, count_as="malformed row")
    lines = chosen.lines(raw, mapping, problems)
    by_column = {c: (f, mapping.confidence.get(f, 1.0)) for f, c in mapping.fields.items()}
    by_column |= {a.column: (name, 1.0) for name, a in mapping.attributes.items()}
    head = raw.table.slice(0, PREVIEW_ROWS)
    columns = []
    for column in raw.columns:
        field, confidence_of = by_column.get(column, (None, None))
        sample = head.column(column).drop_null().slice(0, 1).to_pylist()
        columns.append(
            {
                "column": column,
                "field": field,
                "confidence": confidence_of,
                "sample": _plain(sample[0]) if sample else None,
            }
        )
    plan = mapping.to_dict()
    return {
        "id": upload.id,
        "file_name": upload.file_name,
        "size": upload.size,
        "created_at": upload.created_at,
        "preset": chosen.name,
        "preset_title": chosen.title,
        "confidence": round(confidence, 2),
        "target": chosen.target,
        "mapping": {
            **plan,
            "fields": {f: spec["column"] for f, spec in plan["fields"].items()},
        },
        "columns": columns,
        "encoding": raw.encoding,
        "warnings": raw.warnings,
        "rows": raw.num_rows + len(raw.bad_rows),
        "malformed_rows": len(raw.bad_rows),
        "rows_skipped": dict(problems.skipped.most_common()),
        "invalid_values": problems.error_count,
        "errors": problems.errors[:PREVIEW_ROWS],
        "preview": [_plain_row(r) for r in head.to_pylist()],
        "preview_mapped": [_plain_row(r) for r in lines.slice(0, PREVIEW_ROWS).to_pylist()],
    }


def _import_work(
    svc: Service, uploads: Uploads, ws_id: int, upload_id: str, dry_run: bool, strict: bool
) -> Work:
    """The job: read the upload, import it, refresh segments (as ``strata import`` does)."""
    # The pipeline reports stages; a job reports a fraction done.
    share = {"read": 0.02, "check": 0.2, "load": 0.4, "done": 0.85}

    def work(progress) -> dict[str, Any]:
        from strata.segments.engine import refresh_after_import

        upload = uploads.importable(ws_id, upload_id)
        with svc.app.session() as s:
            ws = s.get(Workspace, ws_id)
            if ws is None:
                raise NotFound("the workspace was deleted before the import ran")
            name = ws.name
        progress(0.01, "read")
        inspected = _inspect(upload)  # reading the file needs no warehouse: outside the lock
        with svc.writing() as app:
            report = run_import(
                app,
                upload.path,
                workspace=name,
                dry_run=dry_run,
                strict=strict,
                progress=lambda stage, detail: progress(share.get(stage, 0.5), stage),
                inspected=inspected,
            )
            if not dry_run:
                progress(0.9, "segments")
                report["segments_refreshed"] = [
                    r.to_dict() for r in refresh_after_import(app, report)
                ]
        if report.get("import_id") is not None:
            uploads.imported(upload, report["import_id"])
        return json.loads(json.dumps(_report(report), default=str))

    return work


def _run(svc: Service, ws_id: int, import_id: int) -> ImportRun:
    with svc.app.session() as s:
        run = s.get(ImportRun, import_id)
    if run is None or run.workspace_id != ws_id:
        raise NotFound(f"no import {import_id} in this workspace")
    return run


def _bad_rows(access: Access, run: ImportRun, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Bad rows as this user may see them: values masked for those who see no personal data."""
    if not access.masked:
        return rows
    return access.masker.import_errors(rows, (run.report or {}).get("mapping") or run.mapping)


def _import(run: ImportRun) -> dict[str, Any]:
    report = run.report or {}
    return {
        "id": run.id,
        "status": run.status,
        "source": FilePath(run.source).name or run.source,
        "preset": run.preset,
        "target": run.target,
        "message": run.message,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "summary": {k: report[k] for k in SUMMARY_KEYS if k in report} or None,
    }


def _report(report: dict[str, Any] | None) -> dict[str, Any] | None:
    """A report as the API shows it: the file's name, not where the server keeps it."""
    if report is None:
        return None
    source = report.get("source")
    return {**report, "source": FilePath(source).name if source else source}


def _plain(value: Any) -> Any:
    """A value JSON can carry: dates as ISO text, bytes and the rest as text."""
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def _plain_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: _plain(v) for k, v in row.items()}
