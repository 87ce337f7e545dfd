"""``strata exports``: files of a segment's members for spreadsheets and marketing platforms.

A thin shell over :class:`strata.actions.exports.Exports`; the library is imported when
a command runs, so ``strata --help`` stays quick.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from strata.cli_common import JsonOpt, WorkspaceOpt, out
from strata.cli_common import open_app as _open
from strata.cli_common import print_json as _print_json

app = typer.Typer(
    help="Export a segment's members as CSV, or for Mailchimp, Klaviyo, HubSpot, Google, Meta.",
    no_args_is_help=True,
)


def _exports(strata, workspace: str | None):
    from strata.actions.exports import Exports

    return Exports(strata, workspace)


def _info(ex, row) -> dict[str, Any]:
    return {
        "id": row.id,
        "segment_id": row.segment_id,
        "format": row.format,
        "rows": row.rows,
        "sha256": row.sha256,
        "path": str(ex.app.settings.home / row.path),
        "created_at": row.created_at.isoformat(timespec="seconds"),
    }


@app.command("create")
def create(
    segment: Annotated[str, typer.Argument(help="The segment's name.")],
    format_: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="csv, mailchimp, klaviyo, hubspot, google, google_hashed or meta.",
        ),
    ] = "csv",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Also copy the file here.", dir_okay=False),
    ] = None,
    default_region: Annotated[
        str | None,
        typer.Option(
            "--default-region",
            help="Country code (e.g. GB) for phones without + of customers without a country.",
            show_default=False,
        ),
    ] = None,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Write a segment's current members into a file Strata keeps (and, with --output, a copy)."""
    with _open() as strata:
        ex = _exports(strata, workspace)
        row = ex.export(segment, format_, default_region=default_region)
        info = _info(ex, row)
        if output is not None:
            shutil.copyfile(ex.path(row.id), output)
            info["output"] = str(output)
    if json_:
        _print_json(info)
        return
    out.print(f"export {row.id}: {row.rows:,} rows as {row.format} in {info['path']}")
    if output is not None:
        out.print(f"copied to {output}")


@app.command("list")
def list_(
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """The workspace's export files, newest first."""
    with _open() as strata:
        ex = _exports(strata, workspace)
        total, rows = ex.list(limit=limit, offset=offset)
        names = ex.segment_names(r.segment_id for r in rows)
        infos = [{**_info(ex, r), "segment": names.get(r.segment_id)} for r in rows]
    if json_:
        _print_json({"total": total, "exports": infos})
        return
    table = Table(box=None, pad_edge=False)
    for col in ("id", "segment", "format", "rows", "created", "path"):
        table.add_column(col)
    for i in infos:
        table.add_row(
            str(i["id"]),
            i["segment"] or "(deleted)",
            i["format"],
            f"{i['rows']:,}",
            i["created_at"],
            i["path"],
        )
    out.print(f"{total:,} exports")
    out.print(table)


@app.command("remove")
def remove(
    export_id: Annotated[int, typer.Argument(help="The export's id (see `strata exports list`).")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Delete an export and its file."""
    with _open() as strata:
        _exports(strata, workspace).delete(export_id)
    out.print(f"export {export_id} removed")
