"""``strata syncs``: keep segments in step with lists in Mailchimp, Klaviyo and HubSpot.

A thin shell over :class:`strata.actions.syncs.Syncs`: each command parses its
options, calls one library function and prints a table (or JSON with ``--json``).
API keys are read from an environment variable or a hidden prompt, never from the
command line, where they would stay in the shell's history.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.table import Table

from strata.cli_common import JsonOpt, WorkspaceOpt, out
from strata.cli_common import open_app as _open
from strata.cli_common import print_json as _print_json
from strata.errors import InputError

app = typer.Typer(
    help="Keep segments in step with lists in Mailchimp, Klaviyo and HubSpot.",
    no_args_is_help=True,
)


def _syncs(strata, workspace: str | None):
    from strata.actions.syncs import Syncs

    return Syncs(strata, workspace)


@app.command("destination-add")
def destination_add(
    name: Annotated[str, typer.Argument(help="A name for this connection, e.g. mailchimp.")],
    kind: Annotated[str, typer.Option("--kind", help="mailchimp, klaviyo or hubspot.")],
    api_key_env: Annotated[
        str | None,
        typer.Option(
            "--api-key-env",
            help="Read the API key (or HubSpot private app token) from this environment "
            "variable; without it the key is asked for, hidden.",
            show_default=False,
        ),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url", help="Another address for the tool's API (a proxy).", show_default=False
        ),
    ] = None,
    status_if_new: Annotated[
        str | None,
        typer.Option(
            "--status-if-new",
            help="Mailchimp: status of contacts new to the audience: transactional "
            "(default), subscribed (only with their consent) or pending.",
            show_default=False,
        ),
    ] = None,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Connect an account of Mailchimp, Klaviyo or HubSpot (the key is stored sealed)."""
    from strata.actions.syncs import destination_dict

    if api_key_env:
        api_key = os.environ.get(api_key_env, "")
        if not api_key.strip():
            raise InputError(f"the environment variable {api_key_env} is not set or empty")
    else:
        api_key = typer.prompt("API key", hide_input=True)
    config = {"base_url": base_url, "status_if_new": status_if_new}
    with _open() as strata:
        dest = _syncs(strata, workspace).add_destination(
            name, kind, api_key=api_key, config={k: v for k, v in config.items() if v}
        )
    data = destination_dict(dest)
    if json_:
        _print_json(data)
        return
    out.print(f"Added destination {data['name']!r} ({data['kind']}, key {data['key_hint']}).")


@app.command("destinations")
def destinations(workspace: WorkspaceOpt = None, json_: JsonOpt = False) -> None:
    """Marketing-tool destinations: name, kind, settings, the key's last 4 characters."""
    from strata.actions.syncs import destination_dict

    with _open() as strata:
        rows = [destination_dict(d) for d in _syncs(strata, workspace).destinations()]
    if json_:
        _print_json(rows)
        return
    if not rows:
        out.print("No destinations yet: `strata syncs destination-add NAME --kind mailchimp`.")
        return
    table = Table(box=None, pad_edge=False)
    for col in ("id", "name", "kind", "key", "status"):
        table.add_column(col, no_wrap=True)
    table.add_column("settings", overflow="fold")  # the long one wraps; names stay whole
    for r in rows:
        settings = ", ".join(f"{k}={v}" for k, v in r["config"].items())
        table.add_row(
            str(r["id"]), r["name"], r["kind"], r["key_hint"] or "", r["status"], settings
        )
    out.print(table)


@app.command("destination-remove")
def destination_remove(
    destination: Annotated[str, typer.Argument(help="Destination name or id.")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Forget a destination, its key and its syncs (the remote lists stay as they are)."""
    with _open() as strata:
        _syncs(strata, workspace).remove_destination(destination)
    out.print(f"Removed destination {destination!r}.")


@app.command("create")
def create(
    destination: Annotated[str, typer.Argument(help="Destination name or id.")],
    segment: Annotated[str, typer.Argument(help="Segment name.")],
    list_id: Annotated[
        str,
        typer.Option(
            "--list-id", help="Mailchimp audience id, Klaviyo list id or HubSpot MANUAL list id."
        ),
    ],
    tag: Annotated[
        str | None,
        typer.Option(
            "--tag",
            help="Mailchimp: the tag members get (default: segment name).",
            show_default=False,
        ),
    ] = None,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Link a segment to a list; nothing is sent until `strata syncs run`."""
    with _open() as strata:
        syncs = _syncs(strata, workspace)
        data = syncs.describe(syncs.create(destination, segment, list_id=list_id, tag=tag))
    if json_:
        _print_json(data)
        return
    out.print(
        f"Sync {data['id']}: segment {data['segment']!r} → {data['destination']} list "
        f"{data['list_id']}"
        + (f" (tag {data['tag']!r})" if data["tag"] else "")
        + f". Send it with `strata syncs run {data['id']}`."
    )


@app.command("list")
def list_(workspace: WorkspaceOpt = None, json_: JsonOpt = False) -> None:
    """Every sync: segment, destination, list, status, people pushed, last run."""
    with _open() as strata:
        syncs = _syncs(strata, workspace)
        rows = [syncs.describe(s) for s in syncs.list()]
    if json_:
        _print_json(rows)
        return
    if not rows:
        out.print("No syncs yet: `strata syncs create DESTINATION SEGMENT --list-id ID`.")
        return
    table = Table(box=None, pad_edge=False)
    for col in ("id", "segment", "destination", "list", "status", "synced", "last run"):
        table.add_column(col, no_wrap=True, justify="right" if col == "synced" else "left")
    for r in rows:
        target = r["list_id"] + (f" / {r['tag']}" if r["tag"] else "")
        when = r["last_synced_at"].strftime("%Y-%m-%d %H:%M") if r["last_synced_at"] else ""
        table.add_row(
            str(r["id"]),
            r["segment"] or "",
            f"{r['destination']} ({r['kind']})",
            target,
            r["status"],
            f"{r['synced_members']:,}",
            when,
        )
    out.print(table)


@app.command("run")
def run(
    sync_id: Annotated[int, typer.Argument(help="Sync id (see `strata syncs list`).")],
    full: Annotated[
        bool, typer.Option("--full", help="Send every member again, not only changes.")
    ] = False,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Send who entered the segment and who left since the last run (everyone the first time)."""
    with _open() as strata:
        result = _syncs(strata, workspace).run(sync_id, full=full)
    if json_:
        _print_json(result)
        return
    out.print(
        f"{'Full push' if result['full'] else 'Changes'}: +{result['added']:,} added, "
        f"-{result['removed']:,} removed, {result['skipped_no_email']:,} without e-mail, "
        f"{result['rejected']:,} refused, {result['requests']:,} requests "
        f"in {result['seconds']:.1f} s."
    )
    for reason, count in result["rejections"].items():
        out.print(f"  refused {count:,}: {reason}", highlight=False)


@app.command("remove")
def remove(
    sync_id: Annotated[int, typer.Argument(help="Sync id.")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Delete a sync (the remote list keeps its members)."""
    with _open() as strata:
        _syncs(strata, workspace).delete(sync_id)
    out.print(f"Removed sync {sync_id}.")
