"""``strata approvals``: approvals of segments, automations and syncs that send data out.

A thin shell over :mod:`strata.governance`. Objects are named by type and reference:
``segment VIP``, ``automation welcome`` (or its id), ``sync 3``. The command line acts as
the server's operator, so it may approve a change its own user made (the four-eyes
rule binds signed-in users of the API): an installation with one admin approves here.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from strata.cli_common import JsonOpt, WorkspaceOpt, out
from strata.cli_common import open_app as _open
from strata.cli_common import print_json as _print_json

app = typer.Typer(
    help="Approve segments, automations and syncs that send data out; versions and diffs.",
    no_args_is_help=True,
)

TypeArg = Annotated[str, typer.Argument(help="segment, automation or sync.", metavar="TYPE")]
RefArg = Annotated[
    str, typer.Argument(help="A segment's or automation's name (or id); a sync's id.")
]
NoteOpt = Annotated[str | None, typer.Option("--note", help="Why, for the record.")]


def _value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _print_changes(changes: list[dict[str, Any]], indent: str = "") -> None:
    """One line per change: ``~ path: old → new``, ``+ path: new``, ``- path: old``."""
    if not changes:
        out.print(f"{indent}(no changes)", markup=False)
    for c in changes:
        if c["change"] == "added":
            line = f"+ {c['path']}: {_value(c['new'])}"
        elif c["change"] == "removed":
            line = f"- {c['path']}: {_value(c['old'])}"
        else:
            line = f"~ {c['path']}: {_value(c['old'])} → {_value(c['new'])}"
        out.print(indent + line, markup=False, highlight=False, soft_wrap=True)


def _version(v) -> dict[str, Any]:
    return {
        "version": v.version,
        "status": v.status,
        "snapshot": v.snapshot,
        "created_by": v.created_by,
        "created_at": v.created_at.isoformat(timespec="seconds"),
        "reviewed_by": v.reviewed_by,
        "reviewed_at": v.reviewed_at.isoformat(timespec="seconds") if v.reviewed_at else None,
        "note": v.note,
    }


@app.command("list")
def list_(workspace: WorkspaceOpt = None, json_: JsonOpt = False) -> None:
    """Changes waiting for approval, oldest first, with what each changes."""
    from strata import governance

    with _open() as strata:
        ws = strata.workspace(workspace)
        items = governance.pending(strata, ws)
    if json_:
        _print_json(
            {
                "require_approval": ws.require_approval,
                "pending": [
                    {**i, "created_at": i["created_at"].isoformat(timespec="seconds")}
                    for i in items
                ],
            }
        )
        return
    state = "on" if ws.require_approval else "off"
    out.print(f"approvals are {state}; {len(items)} change(s) waiting", markup=False)
    for i in items:
        since = f"since version {i['approved_version']}" if i["approved_version"] else "new"
        out.print(
            f"\n{i['object_type']} {i['name']!r} (id {i['object_id']}): "
            f"version {i['version']}, {since}",
            markup=False,
        )
        _print_changes(i["changes"], "  ")


@app.command("approve")
def approve(
    object_type: TypeArg, ref: RefArg, note: NoteOpt = None, workspace: WorkspaceOpt = None
) -> None:
    """Approve the change waiting on an object: it acts again, as it now is."""
    from strata import governance

    with _open() as strata:
        ws = strata.workspace(workspace)
        v = governance.approve(strata, ws, object_type, ref, note)
    out.print(f"approved version {v.version} of {object_type} {ref}", markup=False)


@app.command("reject")
def reject(
    object_type: TypeArg, ref: RefArg, note: NoteOpt = None, workspace: WorkspaceOpt = None
) -> None:
    """Reject the change waiting on an object; its last approved version is restored."""
    from strata import governance

    with _open() as strata:
        ws = strata.workspace(workspace)
        v = governance.reject(strata, ws, object_type, ref, note)
        now = governance.find(strata, ws, object_type, ref)
    after = (
        "it was never approved and stays a draft"
        if now.review_status == "draft"
        else "the last approved version is back"
    )
    out.print(f"rejected version {v.version} of {object_type} {ref}; {after}", markup=False)


@app.command("versions")
def versions(
    object_type: TypeArg, ref: RefArg, workspace: WorkspaceOpt = None, json_: JsonOpt = False
) -> None:
    """Every version of an object, oldest first, with its review."""
    from strata import governance

    with _open() as strata:
        rows = [
            _version(v)
            for v in governance.versions(strata, strata.workspace(workspace), object_type, ref)
        ]
    if json_:
        _print_json({"versions": rows})
        return
    table = Table(box=None, pad_edge=False)
    for col in ("version", "status", "created", "by", "reviewed", "note"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r["version"]),
            r["status"],
            r["created_at"],
            str(r["created_by"] or ""),
            r["reviewed_at"] or "",
            r["note"] or "",
        )
    out.print(table)


@app.command("diff")
def diff(
    object_type: TypeArg,
    ref: RefArg,
    from_: Annotated[
        int | None,
        typer.Option("--from", min=0, help="Older version (default: the one before --to)."),
    ] = None,
    to: Annotated[
        int | None, typer.Option("--to", min=1, help="Newer version (default: the newest).")
    ] = None,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """What changed between two versions: ~ changed, + added, - removed."""
    from strata import governance

    with _open() as strata:
        found = governance.compare(strata, strata.workspace(workspace), object_type, ref, from_, to)
    if json_:
        _print_json(found)
        return
    out.print(f"{object_type} {ref}: version {found['from']} → {found['to']}", markup=False)
    _print_changes(found["changes"], "  ")


@app.command("require")
def require(
    on: Annotated[
        bool,
        typer.Option(
            "--on/--off",
            help="On: what sends data out waits for approval after each change. "
            "Off: changes act at once (drafts stay drafts until approved).",
        ),
    ],
    workspace: WorkspaceOpt = None,
) -> None:
    """Turn approvals on or off for the workspace."""
    from strata import governance

    with _open() as strata:
        governance.set_required(strata, strata.workspace(workspace), on)
    out.print(f"approvals are {'on' if on else 'off'}", markup=False)
