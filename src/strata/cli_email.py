"""``strata email``: SMTP servers, the outbox, unsubscribes.

A thin shell over :class:`strata.actions.email.Mailer`; the library is imported when
a command runs, so ``strata --help`` stays quick. Passwords are read from an
environment variable (``--password-env``) or typed at a hidden prompt, never given as
an argument (arguments end up in shell history and process lists).
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer
from rich.table import Table

from strata.cli_common import JsonOpt, WorkspaceOpt, open_app, out, print_json
from strata.errors import InputError, StrataError

app = typer.Typer(
    help="E-mail through the workspace's SMTP servers: servers, test, outbox, unsubscribes.",
    no_args_is_help=True,
)


def _mailer(strata, workspace: str | None):
    from strata.actions.email import Mailer

    return Mailer(strata, strata.workspace(workspace))


def _message(msg) -> dict[str, Any]:
    return {
        "id": msg.id,
        "to": msg.to_address,
        "subject": msg.subject,
        "status": msg.status,
        "attempts": msg.attempts,
        "next_attempt_at": msg.next_attempt_at,
        "last_error": msg.last_error,
        "message_id": msg.message_id,
        "created_at": msg.created_at,
        "sent_at": msg.sent_at,
    }


def _password(env_var: str | None, username: str | None) -> str | None:
    if env_var:
        if env_var not in os.environ:
            raise InputError(f"--password-env {env_var}: that environment variable is not set")
        return os.environ[env_var]
    if username:
        typed = typer.prompt("SMTP password", hide_input=True, default="", show_default=False)
        return typed or None
    return None


@app.command("server-add")
def server_add(
    name: Annotated[str, typer.Argument(help="A name for the server in this workspace.")],
    host: Annotated[str, typer.Option("--host", help="The SMTP server's host name.")],
    from_address: Annotated[
        str, typer.Option("--from", help="The sender address (From:), e.g. news@example.com.")
    ],
    port: Annotated[
        int, typer.Option("--port", min=1, max=65535, help="587 for starttls, 465 for ssl.")
    ] = 587,
    security: Annotated[
        str, typer.Option("--security", help="starttls, ssl or none (plain: local relays only).")
    ] = "starttls",
    username: Annotated[
        str | None, typer.Option("--username", help="User name to sign in with.")
    ] = None,
    password_env: Annotated[
        str | None,
        typer.Option(
            "--password-env",
            metavar="VAR",
            help="Read the password from this environment variable (else: asked for, hidden, "
            "when --username is given).",
        ),
    ] = None,
    from_name: Annotated[
        str | None, typer.Option("--from-name", help="The sender's display name.")
    ] = None,
    reply_to: Annotated[str | None, typer.Option("--reply-to", help="Reply-To address.")] = None,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Add an SMTP server; its password is stored sealed."""
    from strata.actions.email import server_info

    password = _password(password_env, username)
    with open_app() as strata:
        dest = _mailer(strata, workspace).add_server(
            name,
            host,
            port,
            security=security,
            username=username,
            password=password,
            from_address=from_address,
            from_name=from_name,
            reply_to=reply_to,
        )
    info = server_info(dest)
    if json_:
        print_json(info)
    else:
        out.print(f"added SMTP server {info['id']} ({info['name']}, {host}:{port} {security})")


@app.command("servers")
def servers(workspace: WorkspaceOpt = None, json_: JsonOpt = False) -> None:
    """The workspace's SMTP servers (passwords are never shown)."""
    from strata.actions.email import server_info

    with open_app() as strata:
        rows = [server_info(d) for d in _mailer(strata, workspace).servers()]
    if json_:
        print_json(rows)
        return
    table = Table("id", "name", "host", "security", "user", "from", "password", "status", box=None)
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["name"],
            f"{r['host']}:{r['port']}",
            r["security"],
            r["username"] or "",
            r["from_address"],
            "set" if r["password_set"] else "",
            r["status"],
        )
    out.print(table)


@app.command("server-remove")
def server_remove(
    destination_id: Annotated[int, typer.Argument(help="The server's id (see `servers`).")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Remove an SMTP server; mail still waiting for it fails."""
    with open_app() as strata:
        _mailer(strata, workspace).remove_server(destination_id)
    out.print(f"removed SMTP server {destination_id}")


@app.command("test")
def test(
    destination_id: Annotated[int, typer.Argument(help="The server's id (see `servers`).")],
    to: Annotated[str, typer.Option("--to", help="Address to send the test message to.")],
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Send a test message now, once, and say whether the server took it."""
    with open_app() as strata:
        msg = _mailer(strata, workspace).send_test(destination_id, to)
    if json_:
        print_json(_message(msg))
    elif msg.status == "sent":
        out.print(f"sent to {msg.to_address} ({msg.message_id})")
    if msg.status != "sent":
        raise StrataError(f"the test message was not sent ({msg.status}): {msg.last_error}")


@app.command("messages")
def messages(
    status: Annotated[
        str | None,
        typer.Option(
            "--status", help="Only messages with this status: pending, sent, failed, suppressed."
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000, help="Rows to show.")] = 50,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """The outbox and what was sent, newest first."""
    with open_app() as strata:
        total, rows = _mailer(strata, workspace).messages(status, limit=limit)
    items = [_message(m) for m in rows]
    if json_:
        print_json({"total": total, "items": items})
        return
    table = Table("id", "to", "subject", "status", "tries", "error", box=None)
    for m in items:
        table.add_row(
            str(m["id"]),
            m["to"],
            m["subject"][:50],
            m["status"],
            str(m["attempts"]),
            (m["last_error"] or "")[:80],
        )
    out.print(table)
    out.print(f"{len(items)} of {total}")


@app.command("send-due")
def send_due() -> None:
    """Send the mail that is due now, in every workspace (one pass; the server does this
    by itself)."""
    from strata.actions.email import MailSender

    with open_app() as strata:
        sent = MailSender(strata).send_due()
    out.print(f"sent {sent}")


@app.command("unsubscribe")
def unsubscribe(
    address: Annotated[str, typer.Argument(help="The e-mail address.")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Stop all e-mail from the workspace to an address."""
    with open_app() as strata:
        _mailer(strata, workspace).unsubscribe(address, source="api")
    out.print(f"{address} will get no more e-mail from this workspace")
