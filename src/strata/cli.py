"""The ``strata`` command: a thin shell over the library.

Each command parses its options, calls one library function and prints the result,
as a table for people or as JSON (``--json``) for scripts. Errors that Strata raises
on purpose are printed as one line, never as a traceback.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import click
import typer
import typer.core
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from strata.cli_common import JsonOpt, WorkspaceOpt, err, out
from strata.cli_common import open_app as _app
from strata.cli_common import print_json as _print_json
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
segments_app = typer.Typer(
    help="Rule, RFM, tier and static segments: preview, save, refresh, explain.",
    no_args_is_help=True,
)
tiers_app = typer.Typer(
    help="Tiers: named ranges of a number, each a segment.", no_args_is_help=True
)
icp_app = typer.Typer(help="The ideal-customer-profile score (0-100).", no_args_is_help=True)
predict_app = typer.Typer(
    help="Predictions: lifetime value, churn risk, propensity to buy; each score explained.",
    no_args_is_help=True,
)
models_app = typer.Typer(help="Fitted models and their versions.", no_args_is_help=True)


class _Analyses(typer.core.TyperGroup):
    """``strata analyze``: its commands are made from :mod:`strata.analysis` on first use,
    so other commands start without loading the warehouse libraries."""

    def _real(self) -> click.Group:
        from strata.cli_analyze import analyze_group

        return analyze_group()

    def list_commands(self, ctx: click.Context) -> list[str]:
        return self._real().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._real().get_command(ctx, cmd_name)


analyze_app = typer.Typer(
    cls=_Analyses,
    help="Analyses of a segment or the whole base: growth, revenue, behaviour, breakdowns, "
    "overlap, comparison, cohorts, journeys, RFM migration, insights.",
    no_args_is_help=True,
)
app.add_typer(segments_app, name="segments")
app.add_typer(tiers_app, name="tiers")
app.add_typer(icp_app, name="icp")
app.add_typer(predict_app, name="predict")
app.add_typer(models_app, name="models")
app.add_typer(workspaces_app, name="workspaces")
app.add_typer(imports_app, name="imports")
app.add_typer(customers_app, name="customers")
app.add_typer(analyze_app, name="analyze")


AsOfOpt = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="Reference time: YYYY-MM-DD (the end of that day), an ISO date-time (UTC), or 'now'.",
        show_default=False,
    ),
]


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
        if not dry_run:
            from strata.segments.engine import refresh_after_import

            report["segments_refreshed"] = [
                r.to_dict() for r in refresh_after_import(strata, report)
            ]
    if json_:
        _print_json(report)
        return
    _show_report(report)
    if report.get("segments_refreshed"):
        _show_refreshed([_Row(r) for r in report["segments_refreshed"]])


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
    segments: Annotated[
        Path, typer.Option(help="Directory of example segment YAML files to apply.")
    ] = Path("examples/segments"),
    serve_api: Annotated[
        bool, typer.Option("--serve/--no-serve", help="End by serving the API on --port.")
    ] = True,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the API.")] = 8000,
) -> None:
    """Generate the demo business into workspace 'demo', segment it, then serve the API."""
    from strata.demo import fit_models, generate_and_load, segment_business
    from strata.stats import workspace_stats

    with _app() as strata:
        out.print(f"Generating a sample business of {customers:,} customers…")
        report = generate_and_load(strata, customers=customers, workspace=workspace)
        _show_report(report)
        _show_stats(workspace_stats(strata, workspace))
        summary = segment_business(strata, workspace=workspace, examples=segments)
        out.print(f"\nRFM: {summary['customers']:,} customers with orders in 11 segments")
        if summary["since"]:
            out.print(
                f"  scored as of {summary['since']} too: {summary['moved']:,} customers "
                "have changed RFM segment since"
            )
        out.print("Finding clusters, predicting lifetime value and churn risk…")
        models = fit_models(strata, workspace=workspace)
        clusters = models["clusters"]
        out.print(
            f"  {clusters['k']} clusters (silhouette {clusters['silhouette']:.2f}): "
            + "; ".join(c["name"] for c in clusters["clusters"])
        )
        clv = models["clv"]
        out.print(
            f"  lifetime value of {clv['customers']:,} buyers over {clv['horizon']} months: "
            f"{clv['total_clv']:,.0f}"
        )
        churn = models["churn"]
        out.print(
            f"  churn risk: AUC {churn['auc']:.2f} out of time, top-decile lift "
            f"{churn['lift_top_decile']:.1f}"
        )
        out.print()
        segments_list(workspace=workspace, json_=False)
        out.print(
            f"\nData lives in {strata.settings.home}. Try: "
            f"[bold]strata segments explain Champions C0000001 -w {workspace}[/], "
            f"[bold]strata segments preview FILE -w {workspace}[/], "
            f"[bold]strata customers show C0000001 -w {workspace}[/], "
            f"[bold]strata lookalike Champions -w {workspace}[/]"
        )
    if serve_api:
        from strata.api.serve import run

        out.print()
        run(host="127.0.0.1", port=port, console=out)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Server processes (PostgreSQL warehouse only).")
    ] = 1,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    web_dist: Annotated[
        Path | None,
        typer.Option(help="Serve the web app built here instead of the checkout's web/dist."),
    ] = None,
) -> None:
    """Serve the REST API (and live event ingest) and the web app until interrupted.

    The first run creates the owner: $STRATA_OWNER_EMAIL with $STRATA_OWNER_PASSWORD,
    or a generated password that is printed once.
    """
    from strata.api.serve import run

    run(host=host, port=port, workers=workers, log_level=log_level, web_dist=web_dist, console=out)


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
    if p["predictions"]:
        predictions = Table(
            "prediction", "value", "model", "why", title="Predictions", title_justify="left",
            box=None, pad_edge=False,
        )  # fmt: skip
        for row in p["predictions"]:
            predictions.add_row(
                row["prediction_type"],
                "" if row["value"] is None else f"{row['value']:,.4g}",
                row["model_version"],
                _why(row["details"]),
            )
        out.print(predictions)
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


def _why(details: Any) -> str:
    """A prediction's details in a few words: its factors' sentences, else key = value."""
    if not isinstance(details, dict):
        return ""
    factors = details.get("factors")
    if isinstance(factors, list) and factors:
        texts = [f.get("text") or f.get("feature", "") for f in factors if isinstance(f, dict)]
        return "; ".join(t for t in texts if t)[:120]
    if isinstance(details.get("alike"), list):
        return "; ".join(a.get("text", "") for a in details["alike"] if isinstance(a, dict))[:120]
    plain = [f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in details.items()
             if not isinstance(v, dict | list)]  # fmt: skip
    return ", ".join(plain)[:120]


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


# -- segments -------------------------------------------------------------------------------
class _Row(dict):
    """A refreshed-segment dict with attribute access, for printing."""

    __getattr__ = dict.get


def _segments(strata, workspace: str | None):
    from strata.segments.engine import Segments

    return Segments(strata, workspace)


def _ref(as_of: str | None):
    from strata.segments.reference import ReferenceTime

    return None if as_of is None else ReferenceTime.parse(as_of)


def _read_rule_file(path: Path):
    """A segment file (name + rule) or a bare rule, as (spec or None, rule)."""
    import yaml

    from strata.errors import InputError
    from strata.segments import nodes as N

    text = sys.stdin.read() if str(path) == "-" else _read_text(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        raise InputError(f"{path} is not valid YAML: fix the syntax") from None
    if isinstance(data, dict) and "rule" in data:
        spec = N.load_spec(text, source=str(path))
        return spec, spec.rule
    return None, N.parse_rule(data)


def _read_text(path: Path) -> str:
    from strata.errors import InputError

    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None


def _segment_dict(seg) -> dict[str, Any]:
    from strata.segments.reference import ReferenceTime

    def ref(t):
        return None if t is None else str(ReferenceTime.of(t))

    return {
        "name": seg.name,
        "kind": seg.kind,
        "family": seg.family,
        "source": seg.source,
        "description": seg.description,
        "customers": seg.customer_count,
        "refreshed_at": seg.refreshed_at,
        "as_of": ref(seg.evaluated_as_of),
        "pinned_as_of": ref(seg.as_of),
        "rule": seg.definition,
    }


def _show_refreshed(rows) -> None:
    table = Table(box=None, pad_edge=False)
    for col in ("segment", "kind", "members", "joined", "left", "as of", "seconds"):
        table.add_column(col, justify="right" if col in {"members", "joined", "left"} else "left")
    for r in rows:
        table.add_row(
            r.segment,
            r.kind + (" (incremental)" if r.incremental else ""),
            f"{r.members:,}",
            f"+{r.joined:,}",
            f"-{r.left:,}",
            r.as_of,
            f"{r.seconds:.2f}",
        )
    out.print(table)


@segments_app.command("list")
def segments_list(workspace: WorkspaceOpt = None, json_: JsonOpt = False) -> None:
    """Every segment: name, kind, members, last refresh."""
    with _app() as strata:
        rows = [_segment_dict(s) for s in _segments(strata, workspace).list()]
    if json_:
        _print_json(rows)
        return
    if not rows:
        out.print("No segments yet: `strata rfm`, or `strata segments create FILE`.")
        return
    table = Table(box=None, pad_edge=False)
    for col in ("name", "kind", "customers", "as of"):
        table.add_column(col, justify="right" if col == "customers" else "left", no_wrap=True)
    table.add_column("description", overflow="ellipsis", no_wrap=True, max_width=48)
    for r in rows:
        table.add_row(
            r["name"],
            r["family"] or r["kind"],
            "" if r["customers"] is None else f"{r['customers']:,}",
            r["as_of"] or "",
            r["description"] or "",
        )
    out.print(table)


@segments_app.command("show")
def segments_show(name: str, workspace: WorkspaceOpt = None, json_: JsonOpt = False) -> None:
    """One segment: its rule (as YAML), size and when it was evaluated."""
    import yaml

    with _app() as strata:
        data = _segment_dict(_segments(strata, workspace).get(name))
    if json_:
        _print_json(data)
        return
    out.print(f"[bold]{data['name']}[/] ({data['family'] or data['kind']}, {data['source']})")
    if data["description"]:
        out.print(data["description"])
    out.print(f"customers: {data['customers']}, evaluated as of {data['as_of']}")
    if data["rule"]:
        out.print(yaml.safe_dump({"rule": data["rule"]}, sort_keys=False, allow_unicode=True))


@segments_app.command("preview")
def segments_preview(
    file: Annotated[Path, typer.Argument(help="YAML file with a rule (or name + rule); - = stdin")],
    as_of: AsOfOpt = None,
    sample: Annotated[int, typer.Option(min=0, max=1000, help="Members to show.")] = 10,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Count and a sample of the customers a rule matches, without saving anything."""
    _, rule = _read_rule_file(file)
    with _app() as strata:
        preview = _segments(strata, workspace).preview(rule, as_of=_ref(as_of), sample=sample)
    if json_:
        _print_json(preview.to_dict())
        return
    out.print(
        f"[bold]{preview.count:,}[/] customers match (as of {preview.as_of}, "
        f"{preview.seconds * 1000:.0f} ms)"
    )
    for r in preview.sample:
        out.print(f"  {r['external_id']}  {r['name'] or ''}  {r['email'] or ''}")


@segments_app.command("create")
def segments_create(
    file: Annotated[
        Path,
        typer.Argument(help="YAML file with name and rule; with --static, a list of ids/e-mails"),
    ],
    static: Annotated[
        str | None,
        typer.Option(
            "--static",
            help="Make a static segment of this name from FILE: one customer id or e-mail "
            "per line (CSV: the first column).",
            show_default=False,
        ),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Static: the list becomes the members.")
    ] = False,
    append: Annotated[
        bool, typer.Option("--append", help="Static: the list is added to the members.")
    ] = False,
    as_of: AsOfOpt = None,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Save a segment and evaluate it (a rule from YAML, or a static list)."""
    if replace and append:
        raise StrataError("say --replace or --append, not both")
    with _app() as strata:
        segs = _segments(strata, workspace)
        if static is not None:
            values = _read_list(file)
            mode = "replace" if replace else "append" if append else None
            result, unmatched = segs.save_static(static, values, mode=mode)
            data = {
                **result.to_dict(),
                "unmatched": len(unmatched),
                "unmatched_sample": unmatched[:10],
            }
        else:
            spec, _ = _read_rule_file(file)
            if spec is None:
                raise StrataError(f"{file} has no 'name:': a saved segment needs a name and a rule")
            _seg, result = segs.save(spec, as_of=_ref(as_of))
            data = result.to_dict()
    if json_:
        _print_json(data)
        return
    _show_refreshed([_Row(data)])
    if data.get("unmatched"):
        out.print(
            f"{data['unmatched']:,} values matched no customer, e.g. "
            + ", ".join(data["unmatched_sample"][:5])
        )


def _read_list(path: Path) -> list[str]:
    text = _read_text(path)
    values = [line.split(",")[0].strip().strip('"') for line in text.splitlines()]
    values = [v for v in values if v]
    if values and values[0].lower() in {"id", "customer_id", "external_id", "email", "e-mail"}:
        values = values[1:]  # a header
    return values


@segments_app.command("apply")
def segments_apply(
    directory: Annotated[Path, typer.Argument(help="Directory of segment YAML files.")],
    yes: Annotated[
        bool, typer.Option("--yes", help="Apply the plan (default: only show it).")
    ] = False,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Segments as code: show the plan for a directory of YAML files; apply it with --yes."""
    with _app() as strata:
        segs = _segments(strata, workspace)
        if yes:
            plan, results = segs.apply(directory)
        else:
            plan, results = segs.plan(directory), []
    data = {
        "applied": yes,
        "plan": [
            {"action": p.action, "name": p.name, "file": p.file, "changes": p.changes} for p in plan
        ],
        "refreshed": [r.to_dict() for r in results],
    }
    if json_:
        _print_json(data)
        return
    marks = {"create": "[green]+[/]", "change": "[yellow]~[/]", "delete": "[red]-[/]"}
    for p in plan:
        extra = f" ({', '.join(p.changes)})" if p.changes else ""
        out.print(f"{marks.get(p.action, ' ')} {p.action:<9} {p.name}{extra}")
    todo = sum(p.action != "unchanged" for p in plan)
    if not yes:
        out.print(f"{todo} change(s). Run again with --yes to apply." if todo else "Up to date.")
    elif results:
        _show_refreshed(results)


@segments_app.command("refresh")
def segments_refresh(
    names: Annotated[
        list[str] | None, typer.Argument(help="Segments to refresh (default: every dynamic one).")
    ] = None,
    as_of: AsOfOpt = None,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Re-evaluate dynamic segments and record who joined and who left."""
    with _app() as strata:
        results = _segments(strata, workspace).refresh(names or None, as_of=_ref(as_of))
    if json_:
        _print_json([r.to_dict() for r in results])
        return
    if not results:
        out.print("No dynamic segments to refresh.")
        return
    _show_refreshed(results)


@segments_app.command("members")
def segments_members(
    name: str,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Current members of a segment, a page at a time."""
    with _app() as strata:
        total, rows = _segments(strata, workspace).members(name, limit=limit, offset=offset)
    if json_:
        _print_json({"segment": name, "total": total, "offset": offset, "members": rows})
        return
    out.print(f"{total:,} members; showing {offset + 1}–{offset + len(rows)}")
    table = Table(box=None, pad_edge=False)
    for col in ("id", "name", "email", "country", "since"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["external_id"],
            r["name"] or "",
            r["email"] or "",
            r["country"] or "",
            r["joined"],
        )
    out.print(table)


@segments_app.command("explain")
def segments_explain(
    name: str,
    customer: Annotated[str, typer.Argument(help="Customer id (from your data) or e-mail.")],
    as_of: AsOfOpt = None,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Why a customer is or is not in a segment: each condition with the actual value."""
    with _app() as strata:
        data = _segments(strata, workspace).explain(name, customer, as_of=_ref(as_of))
    if json_:
        _print_json(data)
        return
    verdict = "is a member of" if data["member"] else "is not a member of"
    out.print(f"{customer} {verdict} [bold]{name}[/]", highlight=False)
    if "text" in data:
        out.print(f"as of {data['as_of']}:", highlight=False)
        out.print(data["text"], highlight=False)
    else:
        out.print(data["reason"], highlight=False)


@segments_app.command("history")
def segments_history(
    name: Annotated[str | None, typer.Argument(help="Segment (size over time).")] = None,
    customer: Annotated[
        str | None, typer.Option(help="Instead: one customer's segments over time.")
    ] = None,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """A segment's size over time, or (--customer) a customer's segment history."""
    if (name is None) == (customer is None):
        raise StrataError("give a segment name, or --customer ID, not both")
    with _app() as strata:
        segs = _segments(strata, workspace)
        rows = segs.customer_history(customer) if customer else segs.history(name)
    if json_:
        _print_json(rows)
        return
    table = Table(box=None, pad_edge=False)
    for col in rows[0].keys() if rows else ["(no history yet)"]:
        table.add_column(col)
    for r in rows:
        table.add_row(
            *[("" if v is None else f"{v:,}" if isinstance(v, int) else str(v)) for v in r.values()]
        )
    out.print(table)


@segments_app.command("delete")
def segments_delete(
    name: str,
    yes: Annotated[
        bool, typer.Option("--yes", help="Do it (default: only say what would go).")
    ] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Delete a segment and its membership history."""
    with _app() as strata:
        segs = _segments(strata, workspace)
        seg = segs.get(name)
        if not yes:
            out.print(
                f"Would delete {name!r} ({seg.customer_count or 0:,} members) and its history. "
                "Run again with --yes."
            )
            return
        segs.delete(name)
    out.print(f"Deleted {name!r}.")


@app.command()
def rfm(
    as_of: AsOfOpt = None,
    config: Annotated[
        Path | None,
        typer.Option(help="YAML with 'bins' and/or 'map' to store as this workspace's RFM grid."),
    ] = None,
    reset: Annotated[bool, typer.Option("--reset", help="Go back to the standard grid.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Compute and show; save no segments.")
    ] = False,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """RFM: score customers with orders and save the named RFM segments (11 by default)."""
    import yaml

    from strata.segments import rfm as rfm_mod
    from strata.segments.engine import run_rfm

    chosen = rfm_mod.default_config() if reset else None
    if config is not None:
        data = yaml.safe_load(_read_text(config)) or {}
        if not isinstance(data, dict):
            raise StrataError(f"{config} must be a mapping with 'bins' and/or 'map'")
        chosen = rfm_mod.parse_config(data)
    with _app() as strata:
        # With --dry-run a new grid is only tried, not stored.
        summary = run_rfm(
            _segments(strata, workspace), as_of=_ref(as_of), save=not dry_run, config=chosen
        )
    if json_:
        _print_json(summary)
        return
    out.print(f"RFM as of {summary['as_of']}: {summary['customers']:,} customers with orders")
    table = Table(box=None, pad_edge=False)
    for col in ("segment", "customers", "share", "revenue", "suggested action"):
        table.add_column(
            col, justify="right" if col in {"customers", "share", "revenue"} else "left"
        )
    total = summary["customers"] or 1
    for r in summary["segments"]:
        table.add_row(
            r["name"],
            f"{r['customers']:,}",
            f"{r['customers'] / total:.1%}",
            f"{r['revenue']:,.2f}",
            r["action"] or "",
        )
    out.print(table)


@tiers_app.command("create")
def tiers_create(
    name: Annotated[str, typer.Argument(help="Name of the tier set, e.g. 'size'.")],
    on: Annotated[str, typer.Option(help="Numeric attribute or trait to cut.")],
    tier: Annotated[
        list[str] | None,
        typer.Option(
            help="'Name<=max' for each tier in order; the last may be just 'Name' (above). "
            "Default: Small Business<=1, Mid-Market<=10, Large Enterprise.",
        ),
    ] = None,
    as_of: AsOfOpt = None,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Create or change a tier set; each tier becomes a segment."""
    from strata.segments.engine import save_tiers
    from strata.segments.tiers import parse_config, parse_tier_option

    data: dict[str, Any] = {"on": on}
    if tier:
        data["tiers"] = [parse_tier_option(t) for t in tier]
    config = parse_config(data)
    with _app() as strata:
        results = save_tiers(_segments(strata, workspace), name, config, as_of=_ref(as_of))
    if json_:
        _print_json(
            {
                "tiers": name,
                "on": on,
                "rules": config.describe(),
                "segments": [r.to_dict() for r in results],
            }
        )
        return
    for line in config.describe():
        out.print(line)
    _show_refreshed(results)


@tiers_app.command("reset")
def tiers_reset(
    name: str, as_of: AsOfOpt = None, workspace: WorkspaceOpt = None, json_: JsonOpt = False
) -> None:
    """Put a tier set back to the default thresholds (same attribute)."""
    from strata.errors import NotFound
    from strata.segments.engine import save_tiers, tier_sets
    from strata.segments.tiers import parse_config

    with _app() as strata:
        segs = _segments(strata, workspace)
        sets = tier_sets(segs)
        if name not in sets:
            raise NotFound(f"no tier set {name!r}; create it with `strata tiers create`")
        config = parse_config({"on": sets[name].on})
        results = save_tiers(segs, name, config, as_of=_ref(as_of))
    if json_:
        _print_json(
            {"tiers": name, "rules": config.describe(), "segments": [r.to_dict() for r in results]}
        )
        return
    for line in config.describe():
        out.print(line)
    _show_refreshed(results)


@tiers_app.command("list")
def tiers_list(workspace: WorkspaceOpt = None, json_: JsonOpt = False) -> None:
    """Tier sets and their thresholds."""
    from strata.segments.engine import tier_sets

    with _app() as strata:
        sets = tier_sets(_segments(strata, workspace))
    data = {name: {"on": c.on, "rules": c.describe()} for name, c in sets.items()}
    if json_:
        _print_json(data)
        return
    if not data:
        out.print("No tier sets: `strata tiers create NAME --on ATTRIBUTE`.")
    for name, d in data.items():
        out.print(f"[bold]{name}[/] on {d['on']}: " + "; ".join(d["rules"]))


@icp_app.command("set")
def icp_set(
    file: Annotated[Path, typer.Argument(help="YAML with 'criteria' (see docs/segments.md).")],
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Store the ICP criteria and show how the scores spread."""
    import yaml

    from strata.segments.engine import set_icp
    from strata.segments.icp import parse_config

    data = yaml.safe_load(_read_text(file)) or {}
    if not isinstance(data, dict):
        raise StrataError(f"{file} must be a mapping with 'criteria'")
    with _app() as strata:
        summary = set_icp(_segments(strata, workspace), parse_config(data))
    _show_icp(summary, json_)


@icp_app.command("show")
def icp_show(as_of: AsOfOpt = None, workspace: WorkspaceOpt = None, json_: JsonOpt = False) -> None:
    """The ICP criteria and how customers' scores spread over 0-100."""
    from strata.segments.engine import icp_summary

    with _app() as strata:
        summary = icp_summary(_segments(strata, workspace), as_of=_ref(as_of))
    _show_icp(summary, json_)


def _show_icp(summary: dict, json_: bool) -> None:
    if json_:
        _print_json(summary)
        return
    for c in summary["criteria"]:
        out.print(f"  weight {c['weight']:g}: {c['rule']}")
    out.print(f"{summary['customers']:,} customers, average score {summary['average']:.1f}")
    for b in summary["bands"]:
        out.print(f"  {b['band']:>7}: {b['customers']:,}")


# -- models ---------------------------------------------------------------------------------
def _features(text: str | None) -> list[str] | None:
    return None if not text else [t.strip() for t in text.split(",") if t.strip()]


@app.command()
def cluster(
    features: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated features: recency, frequency, monetary, tenure, "
            "average_order_value, distinct_products, events, traits or number attributes "
            "(default: the behavioural set).",
            show_default=False,
        ),
    ] = None,
    k: Annotated[str, typer.Option("--k", help="Number of clusters, or 'auto' (3-8).")] = "auto",
    method: Annotated[
        str, typer.Option(help="kmeans, or gmm (a Gaussian mixture; k by BIC).")
    ] = "kmeans",
    name: Annotated[str, typer.Option(help="Model name; its segments are named after it.")] = (
        "behaviour"
    ),
    as_of: AsOfOpt = None,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Group customers by behaviour; each cluster is named, described and saved as a segment."""
    from strata.models.cluster import run_clustering

    with _app() as strata:
        result = run_clustering(
            strata, workspace, features=_features(features), k=k, method=method,
            as_of=_ref(as_of), name=name,
        )  # fmt: skip
    if json_:
        _print_json(result)
        return
    out.print(
        f"[bold]{result['k']} clusters[/] ({result['method']}, silhouette "
        f"{result['silhouette']:.3f}) on {', '.join(result['features'])}; model "
        f"{result['model_version']}"
    )
    table = Table("cluster", "customers", "share", "description", box=None, pad_edge=False)
    for c in result["clusters"]:
        table.add_row(c["name"], f"{c['customers']:,}", f"{c['share']:.0%}", c["description"])
    out.print(table)
    # The profile: each feature's mean per cluster against the whole base.
    profile = Table(
        "feature", "base", *[c["name"] for c in result["clusters"]], box=None, pad_edge=False,
        title="Feature means", title_justify="left",
    )  # fmt: skip
    clusters = [{row["feature"]: row for row in c["profile"]} for c in result["clusters"]]
    for row in result["clusters"][0]["profile"] if result["clusters"] else []:
        cells = [_number(c[row["feature"]]["mean"]) for c in clusters]
        profile.add_row(row["label"], _number(row["base_mean"]), *cells)
    out.print(profile)


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:,.3g}"


@predict_app.command("clv")
def predict_clv(
    as_of: AsOfOpt = None,
    time_unit: Annotated[str, typer.Option(help="Time unit of the models: day or week.")] = "week",
    horizon: Annotated[int, typer.Option(help="Months of future value to predict.")] = 12,
    discount_rate: Annotated[
        float, typer.Option("--discount-rate", help="Discount per month (0.01 = 1 %).")
    ] = 0.01,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Lifetime value (BG/NBD + Gamma-Gamma), probability alive; VIPs = top 20 % by CLV."""
    from strata.models.clv import run_clv

    with _app() as strata:
        result = run_clv(
            strata, workspace, as_of=_ref(as_of), time_unit=time_unit, horizon=horizon,
            discount_rate=discount_rate,
        )  # fmt: skip
    if json_:
        _print_json(result)
        return
    b, g = result["bgnbd"], result["gamma_gamma"]
    out.print(
        f"[bold]{result['customers']:,} customers[/] with orders as of {result['as_of']}; "
        f"model {result['model_version']}"
    )
    out.print(
        f"  BG/NBD: r {b['r']:.4g}, alpha {b['alpha']:.4g}, a {b['a']:.4g}, b {b['b']:.4g} "
        f"(log-likelihood {b['log_likelihood']:,.1f})"
    )
    out.print(f"  Gamma-Gamma: p {g['p']:.4g}, q {g['q']:.4g}, v {g['v']:.4g}")
    out.print(
        f"  predicted value over {result['horizon']} months: {result['total_clv']:,.2f}; "
        f"mean probability alive {result['mean_p_alive']:.2f}"
    )
    _show_segments(result.get("segments"))
    table = Table("customer", "CLV", "P(alive)", "expected orders", box=None, pad_edge=False)
    for c in result.get("top_customers", [])[:10]:
        table.add_row(
            str(c["external_id"]), f"{c['clv']:,.2f}", f"{c['p_alive']:.2f}",
            f"{c['expected_purchases']:.2f}",
        )  # fmt: skip
    out.print(table)


@predict_app.command("churn")
def predict_churn(
    label: Annotated[
        str | None,
        typer.Option(
            help="A yes/no attribute of customers saying who churned (default: the "
            "generator's recorded churners, validated out of time).",
            show_default=False,
        ),
    ] = None,
    horizon_days: Annotated[int, typer.Option(help="Churn within this many days.")] = 90,
    cutoff: Annotated[
        str | None,
        typer.Option(help="With --label: the date features are built at.", show_default=False),
    ] = None,
    high: Annotated[float, typer.Option(help="Lowest churn risk of the 'high' band.")] = 0.7,
    medium: Annotated[float, typer.Option(help="Lowest churn risk of the 'medium' band.")] = 0.3,
    as_of: AsOfOpt = None,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Churn risk from labels (gradient boosting); risk bands become segments."""
    from strata.models.churn import run_churn

    with _app() as strata:
        result = run_churn(
            strata, workspace, label=label, as_of=_ref(as_of), horizon_days=horizon_days,
            cutoff=_ref(cutoff), bands={"high": high, "medium": medium},
        )  # fmt: skip
    _show_classifier(result, json_)


@predict_app.command("propensity")
def predict_propensity(
    days: Annotated[int, typer.Option(help="Chance of an order within this many days.")] = 30,
    as_of: AsOfOpt = None,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Propensity to buy in the next N days; the top 20 % become a segment."""
    from strata.models.churn import run_propensity

    with _app() as strata:
        result = run_propensity(strata, workspace, days=days, as_of=_ref(as_of))
    _show_classifier(result, json_)


def _show_classifier(result: dict, json_: bool) -> None:
    if json_:
        _print_json(result)
        return
    out.print(
        f"[bold]{result.get('model_version') or result.get('model')}[/]: AUC "
        f"{result['auc']:.3f} ({result['validation'].replace('_', ' ')}), lift of the top "
        f"decile {result['lift_top_decile']:.2f}, base rate {result['base_rate']:.1%}; "
        f"{result['customers_scored']:,} customers scored"
    )
    table = Table("scores", "customers", "predicted", "observed", box=None, pad_edge=False,
                  title="Calibration", title_justify="left")  # fmt: skip
    for row in result.get("calibration", []):
        if row["customers"]:
            table.add_row(
                row["bin"], f"{row['customers']:,}", f"{row['mean_predicted']:.3f}",
                f"{row['observed_rate']:.3f}",
            )  # fmt: skip
    out.print(table)
    factors = result.get("top_factors") or []
    if factors:
        out.print(
            "Most important: "
            + ", ".join(str(f.get("label") or f.get("feature")) for f in factors[:5])
        )
    _show_segments(result.get("bands") or result.get("segments"))


def _show_segments(rows: list[dict] | None) -> None:
    for row in rows or []:
        name = row.get("segment") or row.get("name") or row.get("band")
        out.print(f"  segment {name!s}: {row.get('customers', row.get('members', 0)):,} customers")


@app.command()
def lookalike(
    seed: Annotated[str, typer.Argument(help="The seed segment: find customers like its members.")],
    top: Annotated[int, typer.Option(min=1, help="How many lookalikes to return.")] = 100,
    save_as: Annotated[
        str | None,
        typer.Option(help="Save the top lookalikes as this static segment.", show_default=False),
    ] = None,
    features: Annotated[
        str | None, typer.Option(help="Comma-separated features (as for cluster).")
    ] = None,
    min_score: Annotated[
        float | None, typer.Option(help="Only customers scoring at least this (0-1).")
    ] = None,
    method: Annotated[str, typer.Option(help="classifier or centroid.")] = "classifier",
    as_of: AsOfOpt = None,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Customers most like a seed segment's members, with the features that make them alike."""
    from strata.models.lookalike import find_lookalikes

    with _app() as strata:
        result = find_lookalikes(
            strata, workspace, seed, top=top, as_of=_ref(as_of), features=_features(features),
            save_as=save_as, min_score=min_score, method=method,
        )  # fmt: skip
    if json_:
        _print_json(result)
        return
    q = result["quality"]
    out.print(
        f"[bold]{len(result['top'])} customers most like {seed!r}[/] "
        f"({result['seed_customers']:,} seed members, {result['scored']:,} scored; model "
        f"{result['model_version']})"
    )
    out.print(
        f"  held-out seed members rank above others with AUC {q['holdout_auc']:.3f}; "
        f"{q['recall_top_10pct']:.0%} of them score in the top 10 %"
    )
    table = Table("customer", "score", "alike in", box=None, pad_edge=False)
    for row in result["top"][:20]:
        table.add_row(
            str(row["external_id"]), f"{row['score']:.3f}",
            "; ".join(a["text"] for a in row["alike"]),
        )  # fmt: skip
    out.print(table)
    if result.get("saved"):
        out.print(f"saved as static segment {save_as!r}")


@app.command()
def anomalies(
    segment: Annotated[
        list[str] | None,
        typer.Option(
            help="Segments to check (repeat; default: every segment).", show_default=False
        ),
    ] = None,
    days: Annotated[int, typer.Option(help="Days to look back over.")] = 90,
    threshold: Annotated[float, typer.Option(help="Robust z-score that counts as unusual.")] = 3.5,
    as_of: AsOfOpt = None,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Unusual days of revenue, orders and segment sizes, allowing for the day of the week."""
    from strata.models.anomaly import find_anomalies

    with _app() as strata:
        result = find_anomalies(
            strata, workspace, as_of=_ref(as_of), days=days, segments=segment or None,
            threshold=threshold,
        )  # fmt: skip
    if json_:
        _print_json(result)
        return
    flags = result["anomalies"]
    checked = ", ".join(c["metric"] for c in result["checked"])
    out.print(f"[bold]{len(flags)} unusual days[/] in the {days} days to {result['as_of']} "
              f"({checked})")  # fmt: skip
    for flag in flags:
        out.print(f"  {flag['sentence']}")


@models_app.command("list")
def models_list(workspace: WorkspaceOpt = None, json_: JsonOpt = False) -> None:
    """The newest version of every fitted model, with its metrics."""
    from strata.models.store import ModelStore

    with _app() as strata:
        fitted = [m.to_dict() for m in ModelStore(strata, strata.workspace(workspace)).list()]
    if json_:
        _print_json(fitted)
        return
    if not fitted:
        out.print("no models fitted yet: try `strata cluster` or `strata predict clv`")
        return
    table = Table("model", "kind", "fitted on data as of", "metrics", box=None, pad_edge=False)
    for m in fitted:
        metrics = ", ".join(
            f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
            for k, v in m["metrics"].items()
            if isinstance(v, int | float)
        )
        table.add_row(m["model_version"], m["kind"], m["as_of"], metrics[:80])
    out.print(table)


@app.command("secret-key")
def secret_key() -> None:
    """Print a new key for STRATA_SECRET_KEY (it seals stored credentials; keep it secret,
    the same on every server, and never change it without entering the credentials again)."""
    from cryptography.fernet import Fernet

    out.print(Fernet.generate_key().decode(), highlight=False)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise StrataError(f"{text!r} is not a date; write it as YYYY-MM-DD") from None


# Command groups written in modules of their own (they import the options above).
from strata import (  # noqa: E402
    cli_audit,
    cli_automations,
    cli_email,
    cli_exports,
    cli_governance,
    cli_personal,
    cli_plans,
    cli_privacy,
    cli_syncs,
    cli_webhooks,
)

app.add_typer(cli_automations.automations_app, name="automations")
app.add_typer(cli_automations.campaigns_app, name="campaigns")
app.add_typer(cli_exports.app, name="exports")
app.add_typer(cli_email.app, name="email")
app.add_typer(cli_syncs.app, name="syncs")
app.add_typer(cli_webhooks.app, name="webhooks")
app.add_typer(cli_privacy.app, name="privacy")
app.add_typer(cli_personal.app, name="personal-fields")
app.add_typer(cli_audit.app, name="audit")
app.add_typer(cli_governance.app, name="approvals")
app.add_typer(cli_plans.app, name="plan")


def main() -> None:
    """Entry point: Strata's own errors print as one line with their exit code.

    What a command changes is audited as ``cli:<os user>`` (:mod:`strata.audit`).
    """
    from strata.audit import Actor, acting_as

    try:
        with acting_as(Actor(user_id=None, label=f"cli:{_os_user()}")):
            app()
    except StrataError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:
        err.print("interrupted; an unfinished import writes nothing")
        raise SystemExit(130) from None


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        return str(os.getuid())


if __name__ == "__main__":
    main()
