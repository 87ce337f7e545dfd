"""``strata import``: read, map, check, load, report.

>>> report = run_import(app, "orders.csv", workspace="default")  # doctest: +SKIP
>>> report["orders"], report["events_created"]
(18536, 22190)
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from strata import audit, personal, plans
from strata.catalog import ImportRun
from strata.catalog.models import utcnow
from strata.context import Strata
from strata.errors import ImportRefused, StrataError
from strata.ingest import readers
from strata.ingest.lines import Problems, build_batch
from strata.ingest.mapping import Mapping, load_mapping_file
from strata.ingest.presets import choose
from strata.warehouse import Batch
from strata.warehouse.schema import ATTRIBUTE_TYPES

#: The figures a person reads first in a report, in order (the CLI prints these).
SUMMARY_KEYS = (
    "rows_read",
    "customers_created",
    "customers_updated",
    "orders",
    "refunds",
    "events_created",
    "duplicates_skipped",
    "net_revenue",
)

#: progress(stage, detail): called as an import moves from one stage to the next.
Progress = Callable[[str, str], None]


def inspect_file(
    path: str | Path,
    *,
    preset: str | None = "auto",
    mapping_file: str | Path | None = None,
    target: str | None = None,
    encoding: str | None = None,
):
    """Read a file and decide its preset and mapping, without loading anything."""
    raw = readers.read_file(path, encoding=encoding)
    given: Mapping | None = load_mapping_file(mapping_file) if mapping_file else None
    if given is not None:
        preset = given.preset or preset
        target = target or given.target
    chosen, confidence = choose(raw, preset, target)
    mapping = chosen.mapping(raw, given)
    return raw, chosen, confidence, mapping


def run_import(
    app: Strata,
    path: str | Path,
    *,
    workspace: str | None = None,
    preset: str | None = "auto",
    mapping_file: str | Path | None = None,
    target: str | None = None,
    dry_run: bool = False,
    strict: bool = False,
    encoding: str | None = None,
    progress: Progress | None = None,
    inspected: tuple | None = None,
) -> dict[str, Any]:
    """Import one file into a workspace; returns the report (see ``docs/import.md``).

    ``inspected`` is what :func:`inspect_file` already returned for this file, so a caller
    that showed the mapping first does not read the file twice.
    """
    started = time.perf_counter()
    step = progress or (lambda stage, detail: None)
    path = Path(path)
    step("read", path.name)
    raw, chosen, confidence, mapping = inspected or inspect_file(
        path, preset=preset, mapping_file=mapping_file, target=target, encoding=encoding
    )

    if raw.num_rows == 0 and not raw.bad_rows:
        raise ImportRefused(
            f"{path.name} is {chosen.title} (preset {chosen.name}) with a header "
            "but no rows: nothing to import"
        )
    step("check", f"{raw.num_rows:,} rows as {chosen.title}")
    problems = Problems()
    for number, reason in raw.bad_rows:
        problems.add(
            [number] if number is not None else [0], "(row)", reason, count_as="malformed row"
        )
    lines = chosen.lines(raw, mapping, problems)
    rows_read = raw.num_rows + len(raw.bad_rows)
    if lines.num_rows == 0:
        reasons = ", ".join(f"{n:,} {r}" for r, n in problems.skipped.most_common(3))
        raise ImportRefused(
            f"no row of {path.name} could be imported ({reasons or 'no rows'}); nothing was written"
        )
    if strict and problems.error_count:
        e = problems.errors[0]
        raise ImportRefused(
            f"{problems.error_count:,} bad values (first: row {e['row']}, "
            f"column {e['column']!r}: {e['reason']}); nothing was written "
            "(drop --strict to import the good rows)"
        )
    batch, figures = build_batch(lines)
    new_columns = {name: ATTRIBUTE_TYPES[a.type] for name, a in mapping.attributes.items()}
    return load_batch(
        app,
        batch,
        figures,
        workspace=workspace,
        source=path,
        preset=chosen.name,
        preset_confidence=confidence,
        target=chosen.target,
        mapping=mapping.to_dict(),
        new_columns=new_columns,
        dry_run=dry_run,
        strict=strict,
        problems=problems,
        rows_read=rows_read,
        encoding=raw.encoding,
        warnings=raw.warnings,
        started=started,
        progress=step,
    )


def load_batch(
    app: Strata,
    batch: Batch,
    figures: dict,
    *,
    workspace: str | None,
    source: str | Path,
    preset: str,
    target: str,
    mapping: dict | None = None,
    preset_confidence: float = 1.0,
    new_columns: dict | None = None,
    dry_run: bool = False,
    strict: bool = False,
    problems: Problems | None = None,
    rows_read: int | None = None,
    encoding: str | None = None,
    warnings: list[str] | None = None,
    started: float | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Load a batch as one recorded import run and return its report."""
    started = time.perf_counter() if started is None else started
    problems = problems or Problems()
    step = progress or (lambda stage, detail: None)
    ws = app.workspace(workspace, create=True) if not dry_run else _maybe_workspace(app, workspace)
    if ws is not None:
        batch = _refuse_suppressed(app, ws.id, batch, problems, strict=strict)
    run_id = None
    if not dry_run:
        # Marked before the rows land, so no viewer ever sees them unmasked.
        personal.mark_from_mapping(app, ws, mapping)
        run_id = _start_run(app, ws.id, source, preset, target, mapping)
    n_events = 0 if batch.events is None else batch.events.num_rows
    step("load", f"{batch.customers.num_rows:,} customers, {n_events:,} events")
    try:
        result = app.warehouse.load(
            ws.id if ws else 0,
            batch,
            import_id=run_id,
            new_columns=new_columns,
            dry_run=dry_run or ws is None,
            # The plan's customer limit, checked inside the load's transaction.
            customer_limit=plans.customer_check(ws) if ws is not None else None,
        )
    except BaseException as exc:
        if run_id is not None:
            _finish_run(app, run_id, "failed", message=_one_line(exc))
        raise
    step("done", "")
    report: dict[str, Any] = {
        "import_id": run_id,
        "workspace": ws.name if ws else (workspace or app.settings.workspace),
        "source": str(source),
        "preset": preset,
        "preset_confidence": round(preset_confidence, 2),
        "target": target,
        "dry_run": dry_run,
        "rows_read": batch.customers.num_rows + n_events if rows_read is None else rows_read,
        "customers_created": result.customers_created,
        "customers_updated": result.customers_updated,
        "orders": figures.get("orders", 0),
        "refunds": figures.get("refunds", 0),
        "events": figures.get("events", {}),
        "order_lines": figures.get("items", 0),
        "events_created": result.events_created,
        "duplicates_skipped": result.duplicates_skipped,
        "rows_skipped": dict(problems.skipped.most_common()),
        "invalid_values": problems.error_count,
        "net_revenue": figures.get("net_revenue", 0.0),
        "encoding": encoding,
        "warnings": warnings or [],
        "mapping": mapping,
        "errors": problems.errors[:20],
        "seconds": round(time.perf_counter() - started, 3),
    }
    if run_id is not None:
        _finish_run(app, run_id, "succeeded", report=report, errors=problems.errors)
        plans.count_usage(app, ws.id, "events_ingested", result.events_created)
    return report


def _refuse_suppressed(app: Strata, workspace_id: int, batch: Batch, problems, *, strict: bool):
    """``batch`` without people erased on request (:mod:`strata.privacy`), counted as
    skipped rows; with ``strict`` a file holding any of them is refused."""
    from strata.privacy.subjects import REFUSED, Suppressions

    suppressions = Suppressions.load(app, workspace_id)
    if not suppressions:
        return batch
    batch, customers, events = suppressions.filter_batch(batch)
    refused = events or customers
    if refused and strict:
        raise ImportRefused(
            f"{refused:,} rows are of people {REFUSED}; nothing was written "
            "(drop --strict to import the other rows)"
        )
    if refused:
        problems.skipped[REFUSED] += refused
    return batch


def _maybe_workspace(app: Strata, name: str | None):
    from strata.errors import NotFound

    try:
        return app.workspace(name)
    except NotFound:
        return None  # a dry run into a new workspace counts against an empty one


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _start_run(
    app: Strata,
    workspace_id: int,
    source: str | Path,
    preset: str,
    target: str,
    mapping: dict | None,
) -> int:
    import os

    is_file = isinstance(source, Path)
    with app.session() as s:
        run = ImportRun(
            workspace_id=workspace_id,
            source=str(source.resolve()) if is_file else str(source),
            source_sha256=_sha256(source) if is_file else None,
            preset=preset,
            target=target,
            mapping=mapping,
            pid=os.getpid(),
            status="running",
        )
        s.add(run)
        s.commit()
        return run.id


def _finish_run(
    app: Strata, run_id: int, status: str, *, report=None, errors=None, message=None
) -> None:
    with app.session() as s:
        run = s.get(ImportRun, run_id)
        run.status, run.report, run.errors, run.message = status, report, errors, message
        run.finished_at = utcnow()
        if status == "succeeded":  # the rows are visible now; a failed import changed nothing
            _audit_import(s, run, report or {})
        s.commit()


def _audit_import(s, run: ImportRun, report: dict[str, Any]) -> None:
    """The ``import.run`` entry: the file's name and counts (its rows are personal data)."""
    counts = {
        k: report[k]
        for k in ("rows_read", "customers_created", "customers_updated", "events_created")
        if k in report
    }
    name = Path(run.source).name if run.source_sha256 else run.source
    audit.record(
        s,
        run.workspace_id,
        "import.run",
        f"imported {name} ({run.preset})",
        target_type="import",
        target_id=run.id,
        details={"preset": run.preset, "target": run.target, **counts},
    )


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, StrataError):
        return str(exc)
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"
