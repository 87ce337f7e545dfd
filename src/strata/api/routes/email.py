"""E-mail: a workspace's SMTP servers, its outbox, and the public unsubscribe page.

Routes under ``/api/v1/workspaces/{workspace_id}/email``, each a thin shell over
:class:`strata.actions.email.Mailer` (what ``strata email …`` calls). Passwords go in
and never come out: answers say only whether one is set.

``public_router`` holds ``GET``/``POST /u/{token}``, the page an e-mail's unsubscribe
link opens. It needs no sign-in (the signed token is the credential), and a GET never
unsubscribes: mail scanners open links, only a person (or a mail client's RFC 8058
one-click POST) unsubscribes.
"""

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Path, Query, Response
from fastapi.responses import HTMLResponse
from markupsafe import escape
from pydantic import Field

from strata.actions.email import (
    Mailer,
    check_template,
    server_info,
    token_workspace,
    unsubscribe_by_token,
)
from strata.api.deps import Access, PageDep, ServiceDep, require
from strata.api.masking import mask_value
from strata.api.schemas import ERRORS, PageOf, Schema
from strata.catalog import EmailMessage
from strata.errors import NotFound

router = APIRouter(prefix="/workspaces/{workspace_id}/email", tags=["email"], responses=ERRORS)
public_router = APIRouter(tags=["email"])

DestinationId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The SMTP server's id.")]
ReadAccess = Annotated[Access, Depends(require("destinations.read"))]
ManageAccess = Annotated[Access, Depends(require("destinations.manage"))]
WriteAccess = Annotated[Access, Depends(require("actions.write"))]
Security = Literal["starttls", "ssl", "none"]
Address = Annotated[str, Field(min_length=3, max_length=320)]
Line = Annotated[str, Field(max_length=200)]
Password = Annotated[
    str,
    Field(
        max_length=1000,
        description="Stored sealed; never returned (answers say password_set).",
        json_schema_extra={"writeOnly": True},
    ),
]


# -- bodies and answers ---------------------------------------------------------------------
class ServerCreate(Schema):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    host: Annotated[str, Field(min_length=1, max_length=253)]
    port: Annotated[int, Field(ge=1, le=65535, description="587 (starttls), 465 (ssl)…")] = 587
    security: Security = Field(
        "starttls",
        description="starttls (upgrade after connecting), ssl (TLS from the start) "
        "or none (plain text: local relays only).",
    )
    username: Annotated[str | None, Field(max_length=320)] = None
    password: Password | None = None
    from_address: Address
    from_name: Line | None = None
    reply_to: Annotated[str | None, Field(max_length=320)] = None


class ServerUpdate(Schema):
    name: Annotated[str | None, Field(min_length=1, max_length=200)] = None
    host: Annotated[str | None, Field(min_length=1, max_length=253)] = None
    port: Annotated[int | None, Field(ge=1, le=65535)] = None
    security: Security | None = None
    username: Annotated[str | None, Field(max_length=320)] = None
    password: Password | None = Field(None, description="A new password; null removes it.")
    from_address: Address | None = None
    from_name: Line | None = None
    reply_to: Annotated[str | None, Field(max_length=320)] = None
    status: Literal["active", "disabled"] | None = Field(
        None, description="disabled: mail to send through it waits until it is active again."
    )


class ServerPublic(Schema):
    id: int
    name: str
    status: str = Field(description="active or disabled")
    disabled_reason: str | None
    host: str
    port: int
    security: str
    username: str | None
    from_address: str
    from_name: str | None
    reply_to: str | None
    password_set: bool = Field(description="Whether a password is stored (it is never shown).")
    created_at: dt.datetime
    updated_at: dt.datetime


class Template(Schema):
    subject: Annotated[str, Field(min_length=1, max_length=998)]
    text: Annotated[str, Field(min_length=1, max_length=200_000)]
    html: Annotated[str | None, Field(max_length=200_000)] = None


class TestRequest(Schema):
    to: Address = Field(description="Where to send the test message.")
    template: Template | None = Field(None, description="A template to try (default: a test).")


class MessagePublic(Schema):
    id: int
    destination_id: int | None
    automation_id: int | None
    customer_id: int | None
    to_address: str
    subject: str
    status: str = Field(description="pending, sent, failed or suppressed (unsubscribed)")
    attempts: int
    next_attempt_at: dt.datetime | None
    last_error: str | None = Field(description="Why the last try failed (the server's words).")
    message_id: str | None = Field(description="The Message-ID header it is sent with.")
    created_at: dt.datetime
    sent_at: dt.datetime | None


class UnsubscribeCreate(Schema):
    email: Address


class UnsubscribePublic(Schema):
    email_hash: str = Field(description="SHA-256 of the address, trimmed and in lower case.")
    source: str = Field(description="link, one-click or api")
    at: dt.datetime


# -- SMTP servers ---------------------------------------------------------------------------
def _mailer(access: Access, svc) -> Mailer:
    return Mailer(svc.app, access.workspace, sender=svc.actions.mail)


@router.post("/servers", response_model=ServerPublic, status_code=201)
def add_server(body: ServerCreate, access: ManageAccess, svc: ServiceDep):
    """Add an SMTP server to send the workspace's e-mail through."""
    fields = body.model_dump()
    dest = _mailer(access, svc).add_server(
        fields.pop("name"),
        fields.pop("host"),
        fields.pop("port"),
        created_by=access.user_id,
        **fields,
    )
    return server_info(dest)


@router.get("/servers", response_model=PageOf[ServerPublic])
def list_servers(access: ReadAccess, svc: ServiceDep, page: PageDep):
    """The workspace's SMTP servers (no passwords)."""
    rows = [server_info(d) for d in _mailer(access, svc).servers()]
    return page.answer(page.window(rows), len(rows))


@router.get("/servers/{destination_id}", response_model=ServerPublic)
def get_server(destination_id: DestinationId, access: ReadAccess, svc: ServiceDep):
    """One SMTP server's settings (no password)."""
    return server_info(_mailer(access, svc).server(destination_id))


@router.patch("/servers/{destination_id}", response_model=ServerPublic)
def update_server(
    destination_id: DestinationId, body: ServerUpdate, access: ManageAccess, svc: ServiceDep
):
    """Change an SMTP server; give only what changes (password null removes it)."""
    changes = body.model_dump(exclude_unset=True)
    return server_info(_mailer(access, svc).update_server(destination_id, **changes))


@router.delete("/servers/{destination_id}", status_code=204)
def remove_server(destination_id: DestinationId, access: ManageAccess, svc: ServiceDep):
    """Remove an SMTP server; mail still waiting for it fails."""
    _mailer(access, svc).remove_server(destination_id)
    return Response(status_code=204)


@router.post("/servers/{destination_id}/test", response_model=MessagePublic)
def send_test(
    destination_id: DestinationId, body: TestRequest, access: WriteAccess, svc: ServiceDep
):
    """Send a message now, once: status sent, or failed with the server's answer."""
    template = check_template(body.template.model_dump()) if body.template else None
    msg = _mailer(access, svc).send_test(destination_id, body.to, template)
    return _message(msg, access.masked)


# -- messages and unsubscribes --------------------------------------------------------------
def _message(msg: EmailMessage, masked: bool) -> dict[str, Any]:
    out = MessagePublic.model_validate(msg).model_dump()
    if masked:
        out["to_address"] = mask_value("email", out["to_address"])
    return out


@router.get("/messages", response_model=PageOf[MessagePublic])
def list_messages(
    access: ReadAccess,
    svc: ServiceDep,
    page: PageDep,
    status: Annotated[
        Literal["pending", "sent", "failed", "suppressed"] | None,
        Query(description="Only messages with this status."),
    ] = None,
):
    """The outbox and what was sent, newest first."""
    total, rows = _mailer(access, svc).messages(status, limit=page.limit, offset=page.offset)
    return page.answer([_message(m, access.masked) for m in rows], total)


@router.post("/unsubscribes", response_model=UnsubscribePublic, status_code=201)
def add_unsubscribe(body: UnsubscribeCreate, access: WriteAccess, svc: ServiceDep):
    """Stop all e-mail from this workspace to an address (e.g. asked for by phone)."""
    return _mailer(access, svc).unsubscribe(body.email, source="api")


# -- the public unsubscribe page ------------------------------------------------------------
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<meta name=robots content=noindex><title>{escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;"
        "padding:0 1rem;color:#222}button{font-size:1rem;padding:.6rem 1.2rem;cursor:pointer}"
        "</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(html, status_code=status, headers=_PAGE_HEADERS)


def _invalid(exc: NotFound) -> HTMLResponse:
    return _page("Link not valid", f"<p>{escape(str(exc))}.</p>", status=404)


@public_router.get("/u/{token}", response_class=HTMLResponse, include_in_schema=False)
def unsubscribe_page(token: Annotated[str, Path(max_length=200)], svc: ServiceDep):
    """The page an unsubscribe link opens: a button, nothing done until it is pressed."""
    try:
        ws = token_workspace(svc.app, token)
    except NotFound as exc:
        return _invalid(exc)
    return _page(
        "Unsubscribe",
        f"<p>Stop receiving e-mail from <strong>{escape(ws.name)}</strong> at this address?</p>"
        "<form method=post><button type=submit name=confirm value=yes>Unsubscribe</button></form>",
    )


@public_router.post("/u/{token}", response_class=HTMLResponse, include_in_schema=False)
def unsubscribe(
    token: Annotated[str, Path(max_length=200)],
    svc: ServiceDep,
    one_click: Annotated[str | None, Form(alias="List-Unsubscribe", max_length=100)] = None,
):
    """Unsubscribe: the page's button, or a mail client's RFC 8058 one-click POST."""
    source = "one-click" if one_click == "One-Click" else "link"
    try:
        ws = unsubscribe_by_token(svc.app, token, source=source)
    except NotFound as exc:
        return _invalid(exc)
    return _page(
        "You are unsubscribed",
        f"<p>You will get no more e-mail from <strong>{escape(ws.name)}</strong> at this "
        "address. It can take a moment for messages already on their way.</p>",
    )
