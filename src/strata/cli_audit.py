"""``strata audit``: the audit log.

A thin shell over :mod:`strata.audit`; the library is imported when a command runs, so
``strata --help`` stays quick.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from strata.cli_common import JsonOpt, WorkspaceOpt, out
from strata.cli_common import open_app as _open
from strata.cli_common import print_json as _print_json

app = typer.Typer(
    help="The audit log: who did what, and when.",
    no_args_is_help=True,
)

ActionOpt = Annotated[
    str | None,
    typer.Option(
        "--action",
        help="One action (segment.create), or every action of an object (segment.).",
        show_default=False,
    ),
]
ActorOpt = Annotated[
    str | None,
    typer.Option("--actor", help="An e-mail, cli:<os user>, or a user's id.", show_default=False),
]
TargetTypeOpt = Annotated[
    str | None,
    typer.Option("--target-type", help="segment, automation, destination…", show_default=False),
]
TargetIdOpt = Annotated[
    str | None, typer.Option("--target-id", help="The target's id.", show_default=False)
]
SinceOpt = Annotated[
    str | None,
    typer.Option("--since", help="From this ISO date or time (UTC).", show_default=False),
]
UntilOpt = Annotated[
    str | None,
    typer.Option(
        "--until", help="Up to this ISO date (the whole day) or time (UTC).", show_default=False
    ),
]


@app.command("list")
def list_(
    action: ActionOpt = None,
    actor: ActorOpt = None,
    target_type: TargetTypeOpt = None,
    target_id: TargetIdOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """The workspace's audit entries that pass the filters, newest first."""
    from strata import audit

    filters = audit.Filters.parse(
        action=action,
        actor=actor,
        target_type=target_type,
        target_id=target_id,
        since=since,
        until=until,
    )
    with _open() as strata:
        ws = strata.workspace(workspace)
        with strata.session() as s:
            total, rows = audit.entries(s, ws.id, filters, limit=limit, offset=offset)
            items = [audit.as_dict(r) for r in rows]
    if json_:
        _print_json({"total": total, "entries": items})
        return
    table = Table(box=None, pad_edge=False)
    for col in ("id", "at (UTC)", "actor", "action", "target", "summary"):
        table.add_column(col)
    for e in items:
        target = f"{e['target_type']} {e['target_id']}" if e["target_type"] else ""
        table.add_row(
            str(e["id"]),
            e["at"][:16].replace("T", " "),
            e["actor"],
            e["action"],
            target,
            e["summary"],
        )
    out.print(f"{total:,} entries")
    out.print(table)


@app.command("export")
def export(
    file: Annotated[Path, typer.Argument(help="The file to write.", dir_okay=False)],
    format_: Annotated[
        str, typer.Option("--format", "-f", help="csv or jsonl (JSON Lines).")
    ] = "csv",
    action: ActionOpt = None,
    actor: ActorOpt = None,
    target_type: TargetTypeOpt = None,
    target_id: TargetIdOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Write the filtered log to FILE, newest first (the export is itself audited)."""
    from strata import audit

    audit.check_format(format_)
    filters = audit.Filters.parse(
        action=action,
        actor=actor,
        target_type=target_type,
        target_id=target_id,
        since=since,
        until=until,
    )
    with _open() as strata:
        ws = strata.workspace(workspace)
        with strata.session() as s:
            audit.record_export(s, ws.id, format_, filters)
            s.commit()
            entries, _ = audit.entries(s, ws.id, filters, limit=0)
        with file.open("w", encoding="utf-8", newline="") as f:
            for chunk in audit.export_lines(strata.session, ws.id, format_, filters):
                f.write(chunk)
    if json_:
        _print_json({"path": str(file), "format": format_, "entries": entries})
        return
    out.print(f"{entries:,} entries written to {file} as {format_}")
