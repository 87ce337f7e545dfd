"""The ``strata`` command: a thin shell over the library.

Each command parses its options, calls one library function and prints the result,
as a table for people or as JSON (``--json``) for scripts. Errors that Strata raises
on purpose are printed as one line, never as a traceback.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from strata.errors import StrataError

app = typer.Typer(
    name="strata",
    help="Strata: import customers and events, then segment, explain and act on them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
workspaces_app = typer.Typer(help="List workspaces.", no_args_is_help=False)
imports_app = typer.Typer(help="Past imports and their row-level error reports.")
customers_app = typer.Typer(help="Look at customers.", no_args_is_help=True)
app.add_typer(workspaces_app, name="workspaces")
app.add_typer(imports_app, name="imports")
app.add_typer(customers_app, name="customers")

out = Console()
err = Console(stderr=True)

WorkspaceOpt = Annotated[
    str | None,
    typer.Option(
        "--workspace",
        "-w",
        help="Workspace to use (default: $STRATA_WORKSPACE or 'default').",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def _app():
    from strata.context import Strata

    return Strata()


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")


class _StageProgress:
    """A progress bar that appears only once an import has taken more than a second."""

    STAGES = ["read", "check", "load", "done"]

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.started = time.monotonic()
        self.progress: Progress | None = None
        self.task = None
        self.stage, self.detail = "read", ""

    def __call__(self, stage: str, detail: str) -> None:
        self.stage, self.detail = stage, detail
        self._draw()

    def _draw(self) -> None:
        if not self.enabled:
            return
        if self.progress is None and time.monotonic() - self.started > 1.0:
            self.progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total} steps"),
                TimeElapsedColumn(),
                console=err,
                transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task("", total=len(self.STAGES) - 1)
        if self.progress is not None:
            label = {"read": "Reading", "check": "Checking", "load": "Loading"}.get(
                self.stage, self.stage
            )
            self.progress.update(
                self.task,
                completed=self.STAGES.index(self.stage),
                description=f"{label} {self.detail}",
            )

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


@app.command("import")
def import_(
    path: Annotated[
        Path,
        typer.Argument(
            help="CSV (.csv, .csv.gz), Excel .xlsx, Parquet or JSON Lines file.", show_default=False
        ),
    ],
    preset: Annotated[
        str, typer.Option(help="auto, customers, transactions, events, shopify, stripe or cdnow.")
    ] = "auto",
    mapping: Annotated[
        Path | None, typer.Option(help="Mapping file (YAML/JSON) naming the column of each field.")
    ] = None,
    as_: Annotated[
        str | None,
        typer.Option("--as", help="Import rows as 'customers' or 'events' (default: detected)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would happen; write nothing.")
    ] = False,
    strict: Annotated[
        bool, typer.Option(help="Refuse the whole file if any value is bad.")
    ] = False,
    encoding: Annotated[str | None, typer.Option(help="Text encoding (default: detected).")] = None,
    errors: Annotated[
        Path | None, typer.Option("--errors", help="Write every bad row to this CSV file.")
    ] = None,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Import customers or events from a file, idempotently and all-or-nothing."""
    from strata.ingest.pipeline import inspect_file, run_import

    if as_ not in (None, "customers", "events"):
        raise StrataError("--as takes 'customers' or 'events'")
    with _app() as strata:
        inspected = None
        if not json_:
            inspected = inspect_file(
                path, preset=preset, mapping_file=mapping, target=as_, encoding=encoding
            )
            _show_mapping(*inspected)
        progress = _StageProgress(enabled=not json_ and err.is_terminal)
        try:
            report = run_import(
                strata,
                path,
                workspace=workspace,
                preset=preset,
                mapping_file=mapping,
                target=as_,
                dry_run=dry_run,
                strict=strict,
                encoding=encoding,
                progress=progress,
                inspected=inspected,
            )
        finally:
            progress.close()
        if errors is not None:
            _write_errors(strata, report, errors)
    if json_:
        _print_json(report)
        return
    _show_report(report)


def _show_mapping(raw, chosen, confidence: float, found) -> None:
    out.print(
        f"[bold]{raw.num_rows:,} rows[/] read as [bold]{chosen.title}[/] "
        f"(preset {chosen.name}, confidence {confidence:.0%})"
    )
    table = Table("field", "column", "confidence", "sample", box=None, pad_edge=False)
    for field_name, column in found.fields.items():
        sample = raw.table.column(column).drop_null().slice(0, 1).to_pylist()
        table.add_row(
            field_name,
            column,
            f"{found.confidence.get(field_name, 1.0):.0%}",
            str(sample[0])[:40] if sample else "",
        )
    for name, attr in found.attributes.items():
        table.add_row(f"{name} ({attr.type})", attr.column, "100%", "")
    out.print(table)


def _show_report(r: dict) -> None:
    verb = "Would import" if r["dry_run"] else "Imported"
    out.print(
        f"\n[bold green]{verb}[/] {r['source']} into workspace [bold]{r['workspace']}[/]"
        f" in {r['seconds']:.1f} s"
    )
    table = Table(box=None, show_header=False, pad_edge=False)
    from strata.ingest.pipeline import SUMMARY_KEYS

    for key in SUMMARY_KEYS:
        value = r[key]
        table.add_row(
            key.replace("_", " "), f"{value:,.2f}" if isinstance(value, float) else f"{value:,}"
        )
    for reason, n in r["rows_skipped"].items():
        table.add_row(f"skipped: {reason}", f"{n:,}")
    out.print(table)
    for w in r["warnings"]:
        out.print(f"[yellow]note:[/] {w}")
    if r["errors"]:
        out.print(f"[yellow]{r['invalid_values']:,} bad values[/], first ones:")
        for e in r["errors"][:5]:
            out.print(
                f"  row {e['row']}, column {e['column']!r}: {e['reason']}"
                + (f" ({e['value']!r})" if "value" in e else "")
            )
        if r["import_id"]:
            out.print(f"  all of them: strata imports show {r['import_id']}")


def _write_errors(strata, report: dict, path: Path) -> None:
    import csv

    from strata.catalog import ImportRun

    rows = report["errors"]
    if report["import_id"]:
        with strata.session() as s:
            rows = s.get(ImportRun, report["import_id"]).errors or []
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["row", "column", "reason", "value"])
        w.writeheader()
        w.writerows(rows)


@app.command()
def generate(
    customers: Annotated[
        int, typer.Option(min=1, max=5_000_000, help="How many customers.")
    ] = 5000,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same business.")] = 7,
    end: Annotated[
        str | None, typer.Option(help="Last day of the data, YYYY-MM-DD (default: today).")
    ] = None,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Generate a realistic synthetic business and import it."""
    from strata.demo import generate_and_load

    end_date = _date(end) if end else None
    with _app() as strata:
        report = generate_and_load(
            strata, customers=customers, seed=seed, end=end_date, workspace=workspace
        )
    if json_:
        _print_json(report)
    else:
        _show_report(report)


@app.command()
def demo(
    customers: Annotated[int, typer.Option(min=100, max=5_000_000)] = 5000,
    workspace: Annotated[str, typer.Option("--workspace", "-w")] = "demo",
) -> None:
    """Generate the demo business into workspace 'demo' and show what it holds."""
    from strata.demo import generate_and_load
    from strata.stats import workspace_stats

    with _app() as strata:
        out.print(f"Generating a sample business of {customers:,} customers…")
        report = generate_and_load(strata, customers=customers, workspace=workspace)
        _show_report(report)
        _show_stats(workspace_stats(strata, workspace))
        out.print(
            f"\nData lives in {strata.settings.home}. Next: "
            f"[bold]strata stats -w {workspace}[/], "
            f"[bold]strata customers show C0000001 -w {workspace}[/]"
        )


@app.command()
def stats(workspace: WorkspaceOpt = None, json_: JsonOpt = False) -> None:
    """What a workspace holds: customers, orders, refunds, events, revenue, time span."""
    from strata.stats import workspace_stats

    with _app() as strata:
        data = workspace_stats(strata, workspace)
    if json_:
        _print_json(data)
    else:
        _show_stats(data)


def _show_stats(d: dict) -> None:
    table = Table(
        title=f"Workspace {d['workspace']}",
        box=None,
        show_header=False,
        title_justify="left",
        pad_edge=False,
    )
    for key in ("customers", "orders", "refunds", "events", "order_lines"):
        table.add_row(key.replace("_", " "), f"{d[key]:,}")
    table.add_row("net revenue", f"{d['net_revenue']:,.2f}")
    table.add_row("first event", str(d["first_event"]))
    table.add_row("last event", str(d["last_event"]))
    for etype, n in d["events_by_type"].items():
        table.add_row(f"  {etype}", f"{n:,}")
    out.print(table)


@customers_app.command("show")
def customers_show(
    customer_id: Annotated[str, typer.Argument(help="The customer's id in your data.")],
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Timeline events to show.")] = 20,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """A customer's profile and timeline."""
    from strata.customers import customer_profile

    with _app() as strata:
        p = customer_profile(strata, customer_id, workspace=workspace, limit=limit)
    if json_:
        _print_json(p)
        return
    c = p["customer"]
    out.print(f"[bold]{c.get('name') or c['external_id']}[/] ({c['external_id']})")
    attrs = Table(box=None, show_header=False, pad_edge=False)
    for k, v in c.items():
        if v is not None and k not in {"customer_id", "external_id"}:
            attrs.add_row(k.replace("_", " "), str(v))
    attrs.add_row("orders", f"{p['orders']:,}")
    attrs.add_row("refunds", f"{p['refunds']:,}")
    attrs.add_row("net revenue", f"{p['net_revenue']:,.2f}")
    attrs.add_row("first / last order", f"{p['first_order']} / {p['last_order']}")
    out.print(attrs)
    timeline = Table(
        "time",
        "event",
        "revenue",
        "order",
        "details",
        title="Timeline",
        title_justify="left",
        box=None,
        pad_edge=False,
    )
    for e in p["timeline"]:
        details = (
            f"{e['lines']} lines, {e['units']:g} units"
            if e.get("lines")
            else json.dumps(e["properties"])[:60]
            if e["properties"]
            else ""
        )
        timeline.add_row(
            e["timestamp"],
            e["event_type"],
            "" if e["revenue"] is None else f"{e['revenue']:,.2f}",
            e["order_id"] or "",
            details,
        )
    out.print(timeline)


@workspaces_app.callback(invoke_without_command=True)
def workspaces_list(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """List workspaces."""
    if ctx.invoked_subcommand:
        return
    with _app() as strata:
        rows = [
            {"name": w.name, "plan": w.plan, "created_at": w.created_at}
            for w in strata.workspaces()
        ]
    if json_:
        _print_json(rows)
        return
    table = Table("name", "plan", "created", box=None, pad_edge=False)
    for r in rows:
        table.add_row(r["name"], r["plan"], f"{r['created_at']:%Y-%m-%d %H:%M}")
    out.print(table)


@imports_app.command("list")
def imports_list(workspace: WorkspaceOpt = None, json_: JsonOpt = False) -> None:
    """Imports into a workspace, newest first."""
    import sqlalchemy as sa

    from strata.catalog import ImportRun

    with _app() as strata:
        ws = strata.workspace(workspace)
        with strata.session() as s:
            runs = s.scalars(
                sa.select(ImportRun)
                .where(ImportRun.workspace_id == ws.id)
                .order_by(ImportRun.id.desc())
            ).all()
    rows = [
        {
            "id": r.id,
            "status": r.status,
            "preset": r.preset,
            "source": r.source,
            "started_at": r.started_at,
            "message": r.message,
            "events_created": (r.report or {}).get("events_created"),
        }
        for r in runs
    ]
    if json_:
        _print_json(rows)
        return
    table = Table(
        "id", "status", "preset", "started", "events created", "source", box=None, pad_edge=False
    )
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["status"],
            r["preset"] or "",
            f"{r['started_at']:%Y-%m-%d %H:%M}",
            str(r["events_created"] or ""),
            r["source"],
        )
    out.print(table)


@imports_app.command("show")
def imports_show(import_id: int, workspace: WorkspaceOpt = None, json_: JsonOpt = False) -> None:
    """One import: its report and every bad row."""
    from strata.catalog import ImportRun
    from strata.errors import NotFound

    with _app() as strata:
        ws = strata.workspace(workspace)
        with strata.session() as s:
            run = s.get(ImportRun, import_id)
            if run is None or run.workspace_id != ws.id:
                raise NotFound(
                    f"no import {import_id} in workspace {ws.name!r} (see `strata imports list`)"
                )
    data = {
        "id": run.id,
        "status": run.status,
        "source": run.source,
        "preset": run.preset,
        "message": run.message,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "report": run.report,
        "errors": run.errors or [],
    }
    if json_:
        _print_json(data)
        return
    out.print(f"Import {run.id}: [bold]{run.status}[/] {run.source}")
    if run.message:
        out.print(run.message)
    if run.report:
        _show_report(run.report)
    for e in data["errors"]:
        out.print(
            f"  row {e['row']}, column {e['column']!r}: {e['reason']}"
            + (f" ({e['value']!r})" if "value" in e else "")
        )


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise StrataError(f"{text!r} is not a date; write it as YYYY-MM-DD") from None


def main() -> None:
    """Entry point: Strata's own errors print as one line with their exit code."""
    try:
        app()
    except StrataError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:
        err.print("interrupted; an unfinished import writes nothing")
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
