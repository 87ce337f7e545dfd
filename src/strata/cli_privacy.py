"""``strata privacy``: erasure and access requests, consent, suppressions, retention.

A thin shell over :class:`strata.privacy.rights.Rights` and :mod:`strata.privacy.retention`;
requests run in this process (the server runs them as background jobs) and print their
receipt. The library is imported when a command runs, so ``strata --help`` stays quick.
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
    help="Data rights: erasure and access requests, consent, suppressions, event retention.",
    no_args_is_help=True,
)
retention_app = typer.Typer(
    help="Delete events older than N days: set it, turn it off, or run it now.",
    invoke_without_command=True,
)
app.add_typer(retention_app, name="retention")

EmailOpt = Annotated[
    str | None, typer.Option("--email", help="The customer's e-mail.", show_default=False)
]
IdOpt = Annotated[
    str | None,
    typer.Option(
        "--id", help="The customer's external id (customer_id in files).", show_default=False
    ),
]


def _rights(strata, workspace: str | None):
    from strata.privacy.rights import Rights

    return Rights(strata, workspace)


def _info(row) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "status": row.status,
        "requested_at": row.requested_at.isoformat(timespec="seconds"),
        "finished_at": row.finished_at.isoformat(timespec="seconds") if row.finished_at else None,
        "receipt": row.receipt,
        "file_sha256": row.file_sha256,
        "message": row.message,
    }


def _run(kind: str, email: str | None, id_: str | None, workspace: str | None):
    with _open() as strata:
        rights = _rights(strata, workspace)
        req = rights.request(kind, email=email, external_id=id_)
        rights.run(req.id)
        row = rights.get(req.id)
        path = rights.file(req.id) if kind == "access" else None
    return row, path


def _print_receipt(receipt: dict[str, Any]) -> None:
    for store in ("warehouse", "catalog", "files", "cache"):
        counts = {k: v for k, v in (receipt.get(store) or {}).items() if v}
        shown = ", ".join(f"{k} {v:,}" for k, v in counts.items()) or "nothing"
        out.print(f"  {store}: {shown}")
    out.print(f"  suppression entries added: {receipt.get('suppressions', 0)}")
    outside = receipt.get("outside") or []
    if outside:
        out.print("  sent to tools outside Strata (ask them to delete the person):")
        for o in outside:
            n = o.get("records", o.get("messages", 0))
            out.print(f"    {o['kind']} {o['destination']!r} ({o['tool']}): {n:,}")


@app.command("erase")
def erase(
    email: EmailOpt = None,
    id_: IdOpt = None,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Erase a customer from every store and refuse them in later imports (a receipt)."""
    row, _ = _run("erasure", email, id_, workspace)
    if json_:
        _print_json(_info(row))
        return
    out.print(f"erasure request {row.id}: {row.receipt['customers']} customer record(s) erased")
    _print_receipt(row.receipt)


@app.command("access")
def access(
    email: EmailOpt = None,
    id_: IdOpt = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Also copy the file here.", dir_okay=False),
    ] = None,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Export everything held on one customer as a JSON file (an access request)."""
    row, path = _run("access", email, id_, workspace)
    info = {**_info(row), "path": str(path)}
    if output is not None:
        shutil.copyfile(path, output)
        output.chmod(0o600)
        info["output"] = str(output)
    if json_:
        _print_json(info)
        return
    out.print(f"access request {row.id}: {path} (sha256 {row.file_sha256})")
    if output is not None:
        out.print(f"copied to {output}")


@app.command("consent")
def consent(
    email: EmailOpt = None,
    id_: IdOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Record that an erased customer consented again: imports of them are accepted."""
    with _open() as strata:
        n = _rights(strata, workspace).consent(email=email, external_id=id_)
    out.print(f"released {n} suppression {'entry' if n == 1 else 'entries'}")


@app.command("requests")
def requests(
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """The workspace's erasure and access requests, newest first."""
    with _open() as strata:
        total, rows = _rights(strata, workspace).list(limit=limit, offset=offset)
    infos = [_info(r) for r in rows]
    if json_:
        _print_json({"total": total, "requests": infos})
        return
    table = Table(box=None, pad_edge=False)
    for col in ("id", "kind", "status", "requested", "finished"):
        table.add_column(col)
    for i in infos:
        table.add_row(
            str(i["id"]), i["kind"], i["status"], i["requested_at"], i["finished_at"] or ""
        )
    out.print(f"{total:,} requests")
    out.print(table)


@app.command("suppressions")
def suppressions(workspace: WorkspaceOpt = None, json_: JsonOpt = False) -> None:
    """How many identifiers are suppressed (erased people), per kind; never which."""
    with _open() as strata:
        summary = _rights(strata, workspace).suppressions()
    if json_:
        _print_json(summary)
        return
    out.print(f"{summary['total']:,} suppressed identifiers")
    for kind, v in summary["kinds"].items():
        out.print(f"  {kind}: {v['count']:,}")


@retention_app.callback()
def retention(
    ctx: typer.Context,
    days: Annotated[
        int | None, typer.Option("--days", min=1, help="Keep events this many days.")
    ] = None,
    off: Annotated[bool, typer.Option("--off", help="Keep events for ever.")] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Show the event retention, set it with --days N, or turn it off with --off."""
    if ctx.invoked_subcommand is not None:
        return
    from strata.errors import InputError
    from strata.privacy.retention import set_retention

    if days is not None and off:
        raise InputError("give --days N or --off, not both")
    with _open() as strata:
        ws = strata.workspace(workspace)
        if days is not None or off:
            ws = set_retention(strata, ws, None if off else days)
    if ws.retention_days:
        out.print(f"events are kept {ws.retention_days} days in workspace {ws.name!r}")
    else:
        out.print(f"events are kept for ever in workspace {ws.name!r}")


@retention_app.command("run")
def retention_run(workspace: WorkspaceOpt = None, json_: JsonOpt = False) -> None:
    """Delete now what is older than the retention (a server does it hourly)."""
    from strata.privacy.retention import apply

    with _open() as strata:
        result = apply(strata, strata.workspace(workspace))
    if json_:
        _print_json(result)
        return
    if not result["retention_days"]:
        out.print("no retention is set: nothing deleted (set one with --days N)")
        return
    gone = {**result["warehouse"], **result["catalog"]}
    shown = ", ".join(f"{k} {v:,}" for k, v in gone.items() if v) or "nothing"
    out.print(f"deleted what is older than {result['cutoff']}: {shown}")
