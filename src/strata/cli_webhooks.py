"""``strata webhooks``: endpoints, their secrets, the delivery log, replays.

A thin shell over :class:`strata.actions.webhooks.Webhooks`; the library is imported
when a command runs, so ``strata --help`` stays quick. An endpoint is named by its id
or its name, a message by its id or its ``webhook-id`` (``msg_…``). A running server
delivers queued messages by itself; without one, ``strata webhooks deliver`` makes
one pass.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from strata.cli_common import JsonOpt, WorkspaceOpt, out
from strata.cli_common import open_app as _open
from strata.cli_common import print_json as _print_json
from strata.errors import NotFound

app = typer.Typer(
    help="Webhook endpoints: signed deliveries (Standard Webhooks), retries, log, replay.",
    no_args_is_help=True,
)

EndpointArg = Annotated[str, typer.Argument(help="The endpoint's id or name.", show_default=False)]
MessageArg = Annotated[
    str, typer.Argument(help="The message's id or webhook-id (msg_…).", show_default=False)
]


def _hooks(strata, workspace: str | None):
    from strata.actions.webhooks import Webhooks

    return Webhooks(strata, strata.workspace(workspace))


def _endpoint(hooks, ref: str):
    """The endpoint named by id or name."""
    if ref.isdigit():
        return hooks.get(int(ref))
    for dest in hooks.list():
        if dest.name == ref:
            return dest
    raise NotFound(f"no webhook endpoint {ref!r} in this workspace; see `strata webhooks list`")


def _message_ref(ref: str) -> int | str:
    return int(ref) if ref.isdigit() else ref


def _message(msg) -> dict[str, Any]:
    return {
        "id": msg.id,
        "webhook_id": msg.msg_id,
        "destination_id": msg.destination_id,
        "event_type": msg.event_type,
        "status": msg.status,
        "attempts": msg.attempts,
        "next_attempt_at": msg.next_attempt_at,
        "last_status_code": msg.last_status_code,
        "last_error": msg.last_error,
        "created_at": msg.created_at,
        "delivered_at": msg.delivered_at,
    }


def _attempt(a) -> dict[str, Any]:
    return {
        "at": a.at,
        "status_code": a.status_code,
        "error": a.error,
        "duration_ms": a.duration_ms,
        "response": a.response,
    }


def _show_endpoint(info: dict[str, Any]) -> None:
    types = ", ".join(info["event_types"]) if info["event_types"] else "every type"
    out.print(f"[bold]{info['name']}[/] (id {info['id']}): {info['url']}", highlight=False)
    out.print(f"  events: {types}", highlight=False)
    status = info["status"]
    if info["disabled_reason"]:
        status += f" ({info['disabled_reason']})"
    out.print(f"  status: {status}", highlight=False)
    until = info["previous_secret_expires_at"]
    if until:
        out.print(f"  the previous secret also signs until {until:%Y-%m-%d %H:%M} UTC")


def _show_secret(secret: str) -> None:
    out.print("Signing secret (shown once; keep it where your receiver can read it):")
    out.print(secret, highlight=False, soft_wrap=True)


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="A name for the endpoint in this workspace.")],
    url: Annotated[str, typer.Argument(help="Where to POST webhooks (http:// or https://).")],
    event: Annotated[
        list[str] | None,
        typer.Option(
            "--event",
            "-e",
            help="An event type to send, e.g. segment.entered (repeat; default: every type).",
            show_default=False,
        ),
    ] = None,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Add an endpoint; prints its signing secret, once."""
    from strata.actions.webhooks import describe

    with _open() as strata:
        dest, secret = _hooks(strata, workspace).create(name, url, event_types=event or None)
    if json_:
        _print_json({**describe(dest), "secret": secret})
        return
    _show_endpoint(describe(dest))
    _show_secret(secret)


@app.command("list")
def list_(workspace: WorkspaceOpt = None, json_: JsonOpt = False) -> None:
    """The workspace's endpoints."""
    from strata.actions.webhooks import describe

    with _open() as strata:
        rows = [describe(d) for d in _hooks(strata, workspace).list()]
    if json_:
        _print_json(rows)
        return
    if not rows:
        out.print("no webhook endpoints yet: add one with `strata webhooks add NAME URL`")
        return
    table = Table("id", "name", "url", "events", "status", box=None, pad_edge=False)
    for r in rows:
        types = ", ".join(r["event_types"]) if r["event_types"] else "all"
        table.add_row(str(r["id"]), r["name"], r["url"], types, r["status"])
    out.print(table)


@app.command("show")
def show(endpoint: EndpointArg, workspace: WorkspaceOpt = None, json_: JsonOpt = False) -> None:
    """One endpoint, with its messages counted by status."""
    from strata.actions.webhooks import STATUSES, describe

    with _open() as strata:
        hooks = _hooks(strata, workspace)
        info = describe(_endpoint(hooks, endpoint))
        counts = {s: hooks.messages(info["id"], status=s, limit=1)[0] for s in STATUSES}
    if json_:
        _print_json({**info, "messages": counts})
        return
    _show_endpoint(info)
    shown = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "none yet"
    out.print(f"  messages: {shown}", highlight=False)


@app.command("rotate")
def rotate(endpoint: EndpointArg, workspace: WorkspaceOpt = None, json_: JsonOpt = False) -> None:
    """A new signing secret; the old one keeps signing beside it for 24 hours."""
    with _open() as strata:
        hooks = _hooks(strata, workspace)
        secret = hooks.rotate_secret(_endpoint(hooks, endpoint).id)
    if json_:
        _print_json({"secret": secret})
        return
    _show_secret(secret)
    out.print("Both secrets sign every webhook for the next 24 hours; then only the new one.")


@app.command("enable")
def enable(endpoint: EndpointArg, workspace: WorkspaceOpt = None) -> None:
    """Send to the endpoint again; its waiting messages go at once."""
    with _open() as strata:
        hooks = _hooks(strata, workspace)
        dest = hooks.enable(_endpoint(hooks, endpoint).id)
    out.print(f"Enabled {dest.name!r}.", highlight=False)


@app.command("disable")
def disable(
    endpoint: EndpointArg,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (shown with the endpoint).")
    ] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Stop sending to the endpoint; its messages wait until it is enabled."""
    with _open() as strata:
        hooks = _hooks(strata, workspace)
        dest = hooks.disable(_endpoint(hooks, endpoint).id, reason)
    out.print(f"Disabled {dest.name!r}; its messages wait.", highlight=False)


@app.command("remove")
def remove(
    endpoint: EndpointArg,
    yes: Annotated[
        bool, typer.Option("--yes", help="Do it (default: only say what would go).")
    ] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Remove an endpoint with its messages and their log."""
    with _open() as strata:
        hooks = _hooks(strata, workspace)
        dest = _endpoint(hooks, endpoint)
        if not yes:
            total, _ = hooks.messages(dest.id, limit=1)
            out.print(
                f"Would remove {dest.name!r} and its {total:,} message(s). Run again with --yes.",
                highlight=False,
            )
            return
        hooks.delete(dest.id)
    out.print(f"Removed {dest.name!r}.", highlight=False)


@app.command("test")
def test(endpoint: EndpointArg, workspace: WorkspaceOpt = None, json_: JsonOpt = False) -> None:
    """Queue a webhook.test message to the endpoint."""
    with _open() as strata:
        hooks = _hooks(strata, workspace)
        msg = hooks.send_test(_endpoint(hooks, endpoint).id)
    if json_:
        _print_json(_message(msg))
        return
    out.print(
        f"Queued {msg.msg_id} (message {msg.id}). A running server sends it now; "
        "without one, run `strata webhooks deliver`.",
        highlight=False,
    )


@app.command("log")
def log(
    endpoint: Annotated[
        str | None,
        typer.Argument(help="Only this endpoint's messages (id or name).", show_default=False),
    ] = None,
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            help="pending, delivering, delivered, failed or cancelled.",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many messages.")] = 50,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """The delivery log: messages, newest first."""
    with _open() as strata:
        hooks = _hooks(strata, workspace)
        dest_id = _endpoint(hooks, endpoint).id if endpoint else None
        total, rows = hooks.messages(dest_id, status=status, limit=limit)
    if json_:
        _print_json({"total": total, "items": [_message(m) for m in rows]})
        return
    if not rows:
        out.print("no messages")
        return
    table = Table(
        "id", "webhook-id", "endpoint", "type", "status", "tries", "last", box=None, pad_edge=False
    )
    for m in rows:
        last = m.last_error or (str(m.last_status_code) if m.last_status_code else "")
        table.add_row(
            str(m.id),
            m.msg_id,
            str(m.destination_id),
            m.event_type,
            m.status,
            str(m.attempts),
            last[:60],
        )
    out.print(table)
    if total > len(rows):
        out.print(f"{len(rows)} of {total:,}; see more with --limit", highlight=False)


@app.command("attempts")
def attempts(message: MessageArg, workspace: WorkspaceOpt = None, json_: JsonOpt = False) -> None:
    """Every attempt at delivering one message: when, the answer, how long it took."""
    with _open() as strata:
        hooks = _hooks(strata, workspace)
        msg = hooks.message(_message_ref(message))
        tries = hooks.attempts(msg.id)
    if json_:
        _print_json({**_message(msg), "attempts_log": [_attempt(a) for a in tries]})
        return
    out.print(f"{msg.msg_id} ({msg.event_type}): {msg.status}", highlight=False)
    table = Table("at", "status", "ms", "error or response", box=None, pad_edge=False)
    for a in tries:
        detail = a.error or (a.response or "").replace("\n", " ")
        table.add_row(
            f"{a.at:%Y-%m-%d %H:%M:%S}",
            str(a.status_code or ""),
            f"{a.duration_ms or 0:.0f}",
            detail[:80],
        )
    out.print(table)


@app.command("replay")
def replay(message: MessageArg, workspace: WorkspaceOpt = None) -> None:
    """Send a message again now, with the same webhook-id."""
    with _open() as strata:
        msg = _hooks(strata, workspace).replay(_message_ref(message))
    out.print(
        f"{msg.msg_id} queued again. A running server sends it now; without one, run "
        "`strata webhooks deliver`.",
        highlight=False,
    )


@app.command("deliver")
def deliver(
    timeout: Annotated[
        float, typer.Option(min=0.1, max=300, help="Seconds each request may take.")
    ] = 15.0,
    json_: JsonOpt = False,
) -> None:
    """Send every message that is due now, once (all workspaces); for use without a server."""
    from strata.actions.webhooks import WebhookSender

    with _open() as strata:
        sent = WebhookSender(strata, timeout=timeout).deliver_due()
    if json_:
        _print_json({"attempts": sent})
        return
    out.print(f"{sent} delivery attempt(s) made; see `strata webhooks log`.")
