"""Templated e-mail through each workspace's own SMTP server, with a working unsubscribe.

A workspace adds its SMTP server (a :class:`~strata.catalog.Destination` of kind
``smtp``; the password sealed by :class:`~strata.actions.secrets.Sealer`), then queues
messages rendered from a template for a customer. Queued messages are an outbox
(:class:`~strata.catalog.EmailMessage` rows) that :class:`MailSender` works through.

>>> mail = Mailer(app, ws)  # doctest: +SKIP
>>> smtp = mail.add_server("newsletter", "smtp.example.com", 587, username="apikey",
...                        password="…", from_address="news@example.com")  # doctest: +SKIP
>>> msg = mail.queue(smtp.id, {"subject": "Hi {{ customer.first_name }}",
...                            "text": "We miss you."}, customer)  # doctest: +SKIP
>>> MailSender(app).send_due()  # doctest: +SKIP
1

Templates
---------
``{"subject": str, "text": str, "html": str | None}`` in Jinja2, rendered in a sandbox
(:class:`jinja2.sandbox.ImmutableSandboxedEnvironment`); HTML is autoescaped, text and
subject are not. Variables: ``customer`` (the customer's attributes, plus
``first_name`` taken from ``name``), ``segment``, ``workspace`` and ``unsubscribe_url``.
An undefined value renders empty; a syntax error, an unknown top-level name or an
attribute starting with ``_`` is refused when the template is checked.

Unsubscribing
-------------
Every message links to ``{STRATA_PUBLIC_URL}/u/{token}`` (in ``List-Unsubscribe`` and,
unless the template placed ``unsubscribe_url`` itself, at the end of the body). The
token names the workspace and a SHA-256 of the address, signed with the installation's
key: it does not show the address and cannot be forged. Unsubscribed addresses are kept
as hashes; mail queued to them is stored ``suppressed`` and never sent.
"""

from __future__ import annotations

import base64
import binascii
import email.policy
import functools
import hashlib
import logging
import math
import re
import smtplib
import socket
import ssl
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage as MimeMessage
from email.utils import format_datetime, make_msgid
from typing import Any

import sqlalchemy as sa
from jinja2 import ChainableUndefined, TemplateError, TemplateSyntaxError, meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import escape
from sqlalchemy.exc import IntegrityError

from strata import audit
from strata.actions.destinations import destination_of, destinations_of
from strata.actions.normalize import split_name
from strata.actions.secrets import Sealer
from strata.actions.ssrf import Guard, resolve
from strata.catalog import Destination, EmailMessage, Unsubscribe, Workspace
from strata.catalog.models import utcnow
from strata.config import Settings
from strata.context import Strata
from strata.errors import Conflict, InputError, NotFound, StrataError

log = logging.getLogger("strata.actions.email")

KIND = "smtp"
SECURITY = ("starttls", "ssl", "none")
STATUSES = ("pending", "sent", "failed", "suppressed")
#: Where an unsubscribe came from: the page's button, a mail client's RFC 8058 POST, the API.
SOURCES = ("link", "one-click", "api")
#: Seconds an SMTP server may take to answer any one command.
SMTP_TIMEOUT = 30.0
#: Waits after the 1st, 2nd… failed try before the next; after the last, the message fails.
RETRY_DELAYS = (60.0, 300.0, 1800.0, 7200.0, 21600.0)
#: How often the sender looks for due mail when nobody wakes it (seconds).
POLL_SECONDS = 15.0
#: Messages claimed at once, and handled in one pass at most.
CHUNK = 50
PASS_LIMIT = 1000
#: The names a template may use; anything else at the top level is a typo.
VARIABLES = ("customer", "segment", "workspace", "unsubscribe_url")
MAX_TEMPLATE = 200_000
MAX_SUBJECT = 998
UNSUBSCRIBE_PURPOSE = "unsubscribe"
TEST_TEMPLATE = {
    "subject": "Test message from Strata ({{ workspace }})",
    "text": "This is a test of the SMTP server settings of the workspace {{ workspace }}.\n"
    "If you can read it, e-mail from Strata reaches this address.\n",
    "html": None,
}

_ADDRESS = re.compile(r"[^@\s<>()\[\],;:\"\\]+@[^@\s<>()\[\],;:\"\\]+")
_HOST = re.compile(r"[A-Za-z0-9._:\-\[\]]+")


# -- templates --------------------------------------------------------------------------------
def _blank_none(value: Any) -> Any:
    """A missing attribute (None, NaN) prints as nothing rather than "None"."""
    return "" if value is None else value


def _environment(html: bool) -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(
        autoescape=html,
        undefined=ChainableUndefined,  # customer.missing.deeper renders empty too
        finalize=_blank_none,
        keep_trailing_newline=True,
    )


_TEXT_ENV = _environment(html=False)
_HTML_ENV = _environment(html=True)


@dataclass(frozen=True)
class _Compiled:
    subject: Any
    text: Any
    html: Any | None
    #: Whether the body places the unsubscribe link itself (else it is appended).
    text_links: bool
    html_links: bool


def check_template(template: Any) -> dict[str, Any]:
    """A template made ready to store: ``{"subject", "text", "html"}``, or :class:`InputError`.

    >>> check_template({"subject": "Hi {{ customer.first_name }}", "text": "…"})["html"]
    >>> check_template({"subject": "Hi", "text": "{{ cusomer.name }}"})
    Traceback (most recent call last):
    strata.errors.InputError: template text: unknown variable 'cusomer'; use customer, …
    """
    if not isinstance(template, dict):
        raise InputError('a template is an object: {"subject": …, "text": …, "html": …}')
    extra = sorted(set(template) - {"subject", "text", "html"})
    if extra:
        raise InputError(f"a template has subject, text and html; {extra[0]!r} is not one of them")
    subject = template.get("subject")
    text = template.get("text")
    html = template.get("html")
    if not isinstance(subject, str) or not subject.strip():
        raise InputError("template subject: give the subject line (it may use variables)")
    if not isinstance(text, str) or not text.strip():
        raise InputError("template text: give the plain-text body (every e-mail has one)")
    if html is not None and not isinstance(html, str):
        raise InputError("template html: give the HTML body as text, or null for none")
    subject = subject.strip()
    if "\n" in subject or "\r" in subject:
        raise InputError("template subject: must be one line")
    if len(subject) > MAX_SUBJECT:
        raise InputError(f"template subject: at most {MAX_SUBJECT} characters")
    for field, value in (("text", text), ("html", html)):
        if value is not None and len(value) > MAX_TEMPLATE:
            raise InputError(f"template {field}: at most {MAX_TEMPLATE} characters")
    html = html if html and html.strip() else None
    _compile(subject, text, html)
    return {"subject": subject, "text": text, "html": html}


@functools.lru_cache(maxsize=128)
def _compile(subject: str, text: str, html: str | None) -> _Compiled:
    """Each template compiled once, however many customers it is rendered for."""
    parts = {}
    uses_link = {}
    for field, source, env in (
        ("subject", subject, _TEXT_ENV),
        ("text", text, _TEXT_ENV),
        ("html", html, _HTML_ENV),
    ):
        if source is None:
            continue
        try:
            tree = env.parse(source)
        except TemplateSyntaxError as exc:
            raise InputError(
                f"template {field}, line {exc.lineno}: {_one_line(exc.message)}"
            ) from None
        _check_names(field, env, tree)
        parts[field] = env.from_string(tree)
        uses_link[field] = "unsubscribe_url" in meta.find_undeclared_variables(tree)
    return _Compiled(
        parts["subject"],
        parts["text"],
        parts.get("html"),
        uses_link["text"],
        uses_link.get("html", False),
    )


def _check_names(field: str, env, tree: nodes.Template) -> None:
    """Typos in top-level names, and reaching for Python internals, are refused early."""
    unknown = meta.find_undeclared_variables(tree) - set(VARIABLES) - set(env.globals)
    if unknown:
        raise InputError(
            f"template {field}: unknown variable {sorted(unknown)[0]!r}; use {', '.join(VARIABLES)}"
        )
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        name = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", None)
        if isinstance(name, str) and name.startswith("_"):
            raise InputError(
                f"template {field}, line {node.lineno}: {name!r} is not allowed "
                "(no names starting with _)"
            )


def _one_line(text: str | None) -> str:
    return " ".join((text or "invalid syntax").split())


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str | None


def render(
    template: dict[str, Any], variables: dict[str, Any], unsubscribe_link: str | None
) -> Rendered:
    """The template filled in; the unsubscribe link appended where the template lacks it.

    Raises :class:`jinja2.TemplateError` (or a Python error of the template's own making,
    such as adding text to a number) when it cannot be rendered.
    """
    compiled = _compile(template["subject"], template["text"], template.get("html"))
    subject = " ".join(compiled.subject.render(variables).split())[:MAX_SUBJECT]
    text = compiled.text.render(variables)
    html = compiled.html.render(variables) if compiled.html is not None else None
    if unsubscribe_link and not compiled.text_links:
        text = f"{text.rstrip()}\n\n-- \nTo stop receiving these e-mails: {unsubscribe_link}\n"
    if unsubscribe_link and html is not None and not compiled.html_links:
        html = _html_footer(html, unsubscribe_link)
    return Rendered(subject, text, html)


def _html_footer(html: str, link: str) -> str:
    footer = (
        '<p style="font-size:12px;color:#666666">'
        f'<a href="{escape(link)}">Unsubscribe</a> from these e-mails.</p>'
    )
    at = html.lower().rfind("</body>")
    return html[:at] + footer + html[at:] if at >= 0 else html + footer


def template_variables(
    customer: dict[str, Any], *, segment: str | None, workspace: str, unsubscribe_link: str
) -> dict[str, Any]:
    """What a template sees: ``customer`` (with ``first_name``), ``segment``, ``workspace``…

    Empty attributes are left out rather than set to None, so they render as nothing,
    even through filters, and ``{{ customer.first_name | default("there") }}`` works.
    """
    values = {k: v for k, v in customer.items() if _plain(v) is not None}
    first, _ = split_name(values.get("name"))
    if not values.get("first_name") and first:
        values["first_name"] = first
    return {
        "customer": values,
        "segment": segment or "",
        "workspace": workspace,
        "unsubscribe_url": unsubscribe_link,
    }


def _plain(value: Any) -> Any:
    """Warehouse gaps (NaN, NaT) render as nothing, like None."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if type(value).__name__ == "NaTType":
        return None
    return value


# -- unsubscribe links ------------------------------------------------------------------------
def email_hash(address: str) -> str:
    """How an address is kept in the unsubscribe list: SHA-256 of it, trimmed, lower case."""
    return hashlib.sha256(address.strip().lower().encode()).hexdigest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _token(sealer: Sealer, workspace_id: int, address: str) -> str:
    digest = email_hash(address)
    signature = sealer.sign(UNSUBSCRIBE_PURPOSE, f"{workspace_id}.{digest}")
    return f"{workspace_id}.{_b64(bytes.fromhex(digest))}.{_b64(bytes.fromhex(signature))}"


def _link(settings: Settings, token: str) -> str:
    return f"{settings.public_url.rstrip('/')}/u/{token}"


def unsubscribe_url(settings: Settings, workspace_id: int, email: str) -> str:
    """The link that unsubscribes ``email`` from the workspace's e-mail.

    >>> unsubscribe_url(settings, 3, "jo@example.com")  # doctest: +SKIP
    'https://strata.example.com/u/3.Rk9v….mZ2…'
    """
    return _link(settings, _token(Sealer(settings), workspace_id, email))


def read_token(settings: Settings, token: str) -> tuple[int, str]:
    """The workspace id and address hash a token names, or :class:`NotFound` if forged."""
    invalid = NotFound("this unsubscribe link is not valid; use the link of a recent e-mail")
    parts = token.split(".")
    if len(parts) != 3 or not (parts[0].isascii() and parts[0].isdigit()) or len(parts[0]) > 10:
        raise invalid
    if not 1 <= int(parts[0]) <= 2**31 - 1:
        raise invalid
    try:
        digest, signature = _unb64(parts[1]), _unb64(parts[2])
    except (binascii.Error, ValueError):
        raise invalid from None
    if len(digest) != 32 or len(signature) != 32:
        raise invalid
    workspace_id = int(parts[0])
    message = f"{workspace_id}.{digest.hex()}"
    if not Sealer(settings).verify(UNSUBSCRIBE_PURPOSE, message, signature.hex()):
        raise invalid
    return workspace_id, digest.hex()


def token_workspace(app: Strata, token: str) -> Workspace:
    """The workspace an unsubscribe link belongs to (for the page), or :class:`NotFound`."""
    workspace_id, _ = read_token(app.settings, token)
    with app.session() as s:
        ws = s.get(Workspace, workspace_id)
    if ws is None:
        raise NotFound("this unsubscribe link is not valid any more")
    return ws


def unsubscribe_by_token(app: Strata, token: str, *, source: str = "link") -> Workspace:
    """Record the unsubscribe a link asks for (idempotent); its workspace."""
    ws = token_workspace(app, token)
    _, digest = read_token(app.settings, token)
    _record_unsubscribe(app, ws.id, digest, source)
    return ws


def _record_unsubscribe(app: Strata, workspace_id: int, digest: str, source: str) -> Unsubscribe:
    if source not in SOURCES:
        raise InputError(f"an unsubscribe source is one of {', '.join(SOURCES)}")
    where = (Unsubscribe.workspace_id == workspace_id, Unsubscribe.email_hash == digest)
    with app.session() as s:
        row = s.scalar(sa.select(Unsubscribe).where(*where))
        if row is not None:
            return row
        row = Unsubscribe(workspace_id=workspace_id, email_hash=digest, source=source)
        s.add(row)
        try:
            s.commit()
        except IntegrityError:  # the same address, a moment earlier, from another request
            s.rollback()
            row = s.scalar(sa.select(Unsubscribe).where(*where))
        return row


# -- input checks -----------------------------------------------------------------------------
def _address(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _ADDRESS.fullmatch(value.strip()):
        raise InputError(f"{what}: {value!r} is not an e-mail address (name@example.com)")
    value = value.strip()
    if len(value) > 320:
        raise InputError(f"{what}: at most 320 characters")
    return value


def _valid_address(value: Any) -> str | None:
    try:
        return _address(value, "address")
    except InputError:
        return None


def _line(value: Any, what: str, limit: int = 200, *, required: bool = False) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip() and not required):
        return None
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{what}: give a value")
    value = value.strip()
    if any(c in value for c in "\r\n\0"):
        raise InputError(f"{what}: must be one line")
    if len(value) > limit:
        raise InputError(f"{what}: at most {limit} characters")
    return value


def _server_config(fields: dict[str, Any]) -> dict[str, Any]:
    """The shown (non-secret) settings of an SMTP server, checked."""
    host = _line(fields.get("host"), "host", 253, required=True)
    if not _HOST.fullmatch(host):
        raise InputError(f"host: {host!r} is not a host name or address")
    port = fields.get("port")
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise InputError(f"port: {port!r} is not a port number (1-65535; usually 587 or 465)")
    security = fields.get("security") or "starttls"
    if security not in SECURITY:
        raise InputError(f"security: use {', '.join(SECURITY)} (not {security!r})")
    reply_to = fields.get("reply_to")
    return {
        "host": host,
        "port": port,
        "security": security,
        "username": _line(fields.get("username"), "username", 320),
        "from_address": _address(fields.get("from_address"), "from address"),
        "from_name": _line(fields.get("from_name"), "from name"),
        "reply_to": _address(reply_to, "reply-to") if reply_to else None,
    }


def _guard_host(settings: Settings, host: str, port: int) -> None:
    """Refuse private and internal hosts when a server is saved (the webhooks' SSRF guard)."""
    guard = Guard(settings.webhook_allow, purpose="e-mail")
    guard.check_host(host)
    if guard.literal(host) is None and not guard.allowed_name(host):
        try:
            addresses = resolve(host, port)
        except (OSError, UnicodeError):  # not resolvable yet: checked on every connection
            addresses = []
        guard.check_addresses(host, addresses)


def _checked_socket(guard: Guard, host: str, port: int, timeout: float, source) -> socket.socket:
    """A connection to a checked address of ``host``: resolving again after checking would
    let DNS answer differently the second time (DNS rebinding)."""
    guard.check_host(host)
    literal = guard.literal(host)
    try:
        found = [literal] if literal else resolve(host, port)
    except UnicodeError as exc:  # a name IDNA cannot encode (an empty or overlong label)
        raise OSError(f"{host} is not a valid host name: {exc}") from None
    addresses = guard.check_addresses(host, found)
    last: OSError | None = None
    for ip in addresses:
        try:
            return socket.create_connection((str(ip), port), timeout, source)
        except OSError as exc:
            last = exc
    raise last or OSError(f"{host} has no address")


@functools.cache
def _local_hostname() -> str:
    """The name the sender greets servers with (EHLO), looked up once per process."""
    fqdn = socket.getfqdn()
    return fqdn if "." in fqdn else "localhost.localdomain"


class _GuardedSMTP(smtplib.SMTP):
    """SMTP that connects only where the SSRF guard allows (TLS still checks the name)."""

    def __init__(self, guard: Guard, *args: Any, **kwargs: Any):
        self.guard = guard
        super().__init__(*args, **kwargs)

    def _get_socket(self, host, port, timeout):
        return _checked_socket(self.guard, host, port, timeout, self.source_address)


class _GuardedSMTPSSL(smtplib.SMTP_SSL):
    def __init__(self, guard: Guard, *args: Any, **kwargs: Any):
        self.guard = guard
        super().__init__(*args, **kwargs)

    def _get_socket(self, host, port, timeout):
        sock = _checked_socket(self.guard, host, port, timeout, self.source_address)
        return self.context.wrap_socket(sock, server_hostname=self._host)


def server_info(dest: Destination) -> dict[str, Any]:
    """An SMTP server as it may be shown: everything but the password (only whether it is set)."""
    cfg = dest.config or {}
    return {
        "id": dest.id,
        "name": dest.name,
        "status": dest.status,
        "disabled_reason": dest.disabled_reason,
        "host": cfg.get("host"),
        "port": cfg.get("port"),
        "security": cfg.get("security"),
        "username": cfg.get("username"),
        "from_address": cfg.get("from_address"),
        "from_name": cfg.get("from_name"),
        "reply_to": cfg.get("reply_to"),
        "password_set": bool(dest.sealed),
        "created_at": dest.created_at,
        "updated_at": dest.updated_at,
    }


# -- the workspace's mail ---------------------------------------------------------------------
def _audit_server(s, dest: Destination, verb: str, summary: str, changed) -> None:
    """The ``destination.<verb>`` entry of a change to an SMTP server."""
    audit.record(
        s,
        dest.workspace_id,
        f"destination.{verb}",
        summary,
        target_type="destination",
        target_id=dest.id,
        details={"kind": dest.kind, "changed": sorted(changed)} if changed else {"kind": dest.kind},
    )


class Mailer:
    """A workspace's SMTP servers, outbox and unsubscribe list.

    >>> mail = Mailer(app, ws)  # doctest: +SKIP
    >>> mail.queue(smtp.id, template, {"customer_id": 7, "email": "jo@example.com"}).status
    'pending'
    """

    def __init__(self, app: Strata, ws: Workspace, *, sender: MailSender | None = None):
        self.app = app
        self.ws = ws
        #: What :meth:`send_test` sends through (the server's thread, or a one-off sender).
        self.sender = sender

    @functools.cached_property
    def _sealer(self) -> Sealer:
        return Sealer(self.app.settings)

    # SMTP servers
    def add_server(
        self,
        name: str,
        host: str,
        port: int,
        *,
        security: str = "starttls",
        username: str | None = None,
        password: str | None = None,
        from_address: str,
        from_name: str | None = None,
        reply_to: str | None = None,
        created_by: int | None = None,
    ) -> Destination:
        """Add an SMTP server; its password is stored sealed."""
        name = _line(name, "name", required=True)
        config = _server_config(
            {
                "host": host,
                "port": port,
                "security": security,
                "username": username,
                "from_address": from_address,
                "from_name": from_name,
                "reply_to": reply_to,
            }
        )
        _guard_host(self.app.settings, config["host"], config["port"])
        dest = Destination(
            workspace_id=self.ws.id,
            name=name,
            kind=KIND,
            config=config,
            sealed=self._seal_password(password),
            created_by=created_by,
        )
        with self.app.session() as s:
            self._name_free(s, name)
            s.add(dest)
            s.flush()
            _audit_server(s, dest, "create", f"added SMTP server {name!r}", [])
            s.commit()
        return dest

    def _seal_password(self, password: str | None) -> str | None:
        if password is None or password == "":
            return None
        if not isinstance(password, str) or len(password) > 1000:
            raise InputError("password: at most 1000 characters")
        return self._sealer.seal({"password": password})

    def _name_free(self, s, name: str, but: int | None = None) -> None:
        taken = s.scalar(
            sa.select(Destination.id).where(
                Destination.workspace_id == self.ws.id, Destination.name == name
            )
        )
        if taken is not None and taken != but:
            raise Conflict(f"a destination named {name!r} exists; choose another name")

    def servers(self) -> list[Destination]:
        return destinations_of(self.app, self.ws, [KIND])

    def server(self, destination_id: int) -> Destination:
        return destination_of(self.app, self.ws, int(destination_id), [KIND], "SMTP server")

    def update_server(self, destination_id: int, **fields: Any) -> Destination:
        """Change settings; ``password=None`` removes the password, a string replaces it.

        ``status`` may be ``active`` or ``disabled`` (mail waits while it is disabled).
        """
        allowed = {"name", "password", "status", "host", "port", "security", "username"}
        allowed |= {"from_address", "from_name", "reply_to"}
        unknown = sorted(set(fields) - allowed)
        if unknown:
            raise InputError(f"{unknown[0]!r} is not a setting of an SMTP server")
        dest = self.server(destination_id)
        with self.app.session() as s:
            dest = s.get(Destination, dest.id)
            if "name" in fields:
                name = _line(fields["name"], "name", required=True)
                self._name_free(s, name, but=dest.id)
                dest.name = name
            config = _server_config(
                {**dest.config, **{k: fields[k] for k in _CONFIG_KEYS if k in fields}}
            )
            if (config["host"], config["port"]) != (dest.config["host"], dest.config["port"]):
                _guard_host(self.app.settings, config["host"], config["port"])
            dest.config = config
            if "password" in fields:
                dest.sealed = self._seal_password(fields["password"])
            if "status" in fields:
                if fields["status"] not in ("active", "disabled"):
                    raise InputError("status: use active or disabled")
                dest.status = fields["status"]
                dest.disabled_reason = "disabled by hand" if dest.status == "disabled" else None
            if set(fields) == {"status"}:
                verb = "enable" if dest.status == "active" else "disable"
                _audit_server(s, dest, verb, f"{verb}d SMTP server {dest.name!r}", [])
            else:  # names what changed; a password is never logged, only that it changed
                _audit_server(s, dest, "update", f"changed SMTP server {dest.name!r}", fields)
            s.commit()
        return dest

    def remove_server(self, destination_id: int) -> None:
        """Remove a server; mail still waiting for it fails (it cannot be sent)."""
        dest = self.server(destination_id)
        with self.app.session() as s:
            s.execute(
                sa.update(EmailMessage)
                .where(EmailMessage.destination_id == dest.id, EmailMessage.status == "pending")
                .values(status="failed", last_error="its SMTP server was removed")
            )
            s.execute(sa.delete(Destination).where(Destination.id == dest.id))
            _audit_server(s, dest, "delete", f"removed SMTP server {dest.name!r}", [])
            s.commit()

    # messages
    def queue(
        self,
        destination_id: int,
        template: dict[str, Any],
        customer: dict[str, Any],
        *,
        segment: str | None = None,
        automation_id: int | None = None,
    ) -> EmailMessage:
        """Render ``template`` for ``customer`` and put it in the outbox.

        The message is ``pending`` (the sender sends it), ``suppressed`` (the address
        unsubscribed: never sent) or ``failed`` (no usable address, or the template
        cannot be rendered for this customer; ``last_error`` says which).
        """
        return self.queue_many(
            destination_id, template, [customer], segment=segment, automation_id=automation_id
        )[0]

    def queue_many(
        self,
        destination_id: int,
        template: dict[str, Any],
        customers: list[dict[str, Any]],
        *,
        segment: str | None = None,
        automation_id: int | None = None,
    ) -> list[EmailMessage]:
        """:meth:`queue` for many customers: one look at the unsubscribe list, one commit."""
        dest = self.server(destination_id)
        template = check_template(template)
        addresses = [_valid_address(c.get("email")) for c in customers]
        hashes = {email_hash(a) for a in addresses if a}
        with self.app.session() as s:
            unsubscribed = set(
                s.scalars(
                    sa.select(Unsubscribe.email_hash).where(
                        Unsubscribe.workspace_id == self.ws.id,
                        Unsubscribe.email_hash.in_(sorted(hashes)),
                    )
                )
            )
        messages = [
            self._message(dest, template, customer, address, unsubscribed, segment, automation_id)
            for customer, address in zip(customers, addresses, strict=True)
        ]
        with self.app.session() as s:
            s.add_all(messages)
            s.commit()
        return messages

    def _message(
        self,
        dest: Destination,
        template: dict[str, Any],
        customer: dict[str, Any],
        address: str | None,
        unsubscribed: set[str],
        segment: str | None,
        automation_id: int | None,
    ) -> EmailMessage:
        link = (
            _link(self.app.settings, _token(self._sealer, self.ws.id, address)) if address else ""
        )
        variables = template_variables(
            customer, segment=segment, workspace=self.ws.name, unsubscribe_link=link
        )
        status, error = "pending", None
        try:
            rendered = render(template, variables, link or None)
        except (TemplateError, ArithmeticError, TypeError, ValueError, LookupError) as exc:
            rendered = Rendered(template["subject"], template["text"], template["html"])
            status, error = "failed", f"the template cannot be rendered for this customer: {exc}"
        if address is None:
            status = "failed"
            error = f"the customer has no usable e-mail address ({customer.get('email')!r})"
        elif status == "pending" and email_hash(address) in unsubscribed:
            status = "suppressed"
        return EmailMessage(
            workspace_id=self.ws.id,
            destination_id=dest.id,
            automation_id=automation_id,
            customer_id=_int_or_none(customer.get("customer_id")),
            to_address=(address or str(customer.get("email") or ""))[:320],
            subject=rendered.subject,
            body_text=rendered.text,
            body_html=rendered.html,
            status=status,
            last_error=error,
            next_attempt_at=utcnow() if status == "pending" else None,
            message_id=make_msgid(domain=dest.config["from_address"].rpartition("@")[2]),
        )

    def send_test(
        self, destination_id: int, to_address: str, template: dict[str, Any] | None = None
    ) -> EmailMessage:
        """Queue a message to ``to_address`` and send it now; the message as it ended.

        A test is tried once: it ends ``sent`` or ``failed`` with the server's answer.
        """
        to_address = _address(to_address, "to")
        msg = self.queue(
            destination_id,
            template or TEST_TEMPLATE,
            {"email": to_address, "name": "Test Recipient"},
            segment="test",
        )
        sender = self.sender or MailSender(self.app)
        return sender.send_now(msg.id, retry=False)

    def messages(
        self, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[int, list[EmailMessage]]:
        """The outbox and its history, newest first."""
        query = sa.select(EmailMessage).where(EmailMessage.workspace_id == self.ws.id)
        if status is not None:
            if status not in STATUSES:
                raise InputError(f"status: use one of {', '.join(STATUSES)}")
            query = query.where(EmailMessage.status == status)
        with self.app.session() as s:
            total = s.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0
            rows = s.scalars(query.order_by(EmailMessage.id.desc()).limit(limit).offset(offset))
            return total, list(rows)

    # unsubscribes
    def unsubscribe(self, email: str, source: str = "api") -> Unsubscribe:
        """Stop all e-mail from this workspace to ``email`` (idempotent)."""
        return _record_unsubscribe(
            self.app, self.ws.id, email_hash(_address(email, "email")), source
        )

    def is_unsubscribed(self, email: str) -> bool:
        with self.app.session() as s:
            found = s.scalar(
                sa.select(Unsubscribe.id).where(
                    Unsubscribe.workspace_id == self.ws.id,
                    Unsubscribe.email_hash == email_hash(email),
                )
            )
        return found is not None

    def unsubscribe_url(self, email: str) -> str:
        return _link(self.app.settings, _token(self._sealer, self.ws.id, email))


_CONFIG_KEYS = ("host", "port", "security", "username", "from_address", "from_name", "reply_to")


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


# -- sending ----------------------------------------------------------------------------------
#: Mail the sender may take: its server is active (mail of a disabled one waits), or gone
#: (that mail fails).
_SENDABLE = sa.or_(Destination.id.is_(None), Destination.status == "active")


class _MailPolicy(email.policy.EmailPolicy):
    """The standard policy, except that the unsubscribe URL stays one line.

    A URL has no spaces to fold at, so the standard policy would turn a long one into
    RFC 2047 encoded words, which mail clients do not read as a URL.
    """

    _UNFOLDED = ("list-unsubscribe",)

    def fold(self, name: str, value: str) -> str:
        if name.lower() in self._UNFOLDED and str(value).isascii():
            return f"{name}: {value}{self.linesep}"
        return super().fold(name, value)

    def fold_binary(self, name: str, value: str) -> bytes:
        if name.lower() in self._UNFOLDED and str(value).isascii():
            return f"{name}: {value}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


_POLICY = _MailPolicy()


class _Broken:
    """A destination whose connection failed in this pass: its mail waits for the next."""

    def __init__(self, error: str):
        self.error = error


class _Permanent(Exception):
    """The server refused this message for good (5xx): no retry."""


class MailSender:
    """Sends the outbox: a thread in the server, or one pass with :meth:`send_due`.

    Each pass claims due messages (a conditional UPDATE, so two senders never take
    the same one), opens one SMTP connection per destination and sends its messages
    over it. A connection error or a 4xx answer is retried after
    :data:`RETRY_DELAYS`; a 5xx answer fails the message at once with the server's
    words. Credentials are unsealed here and nowhere else.

    >>> sender = MailSender(app, timeout=5)  # doctest: +SKIP
    >>> sender.send_due()  # doctest: +SKIP
    3
    """

    def __init__(
        self,
        app: Strata,
        *,
        timeout: float = SMTP_TIMEOUT,
        delays: Iterable[float] = RETRY_DELAYS,
        interval: float = POLL_SECONDS,
        ssl_context: ssl.SSLContext | None = None,
    ):
        self.app = app
        self.timeout = timeout
        self.delays = tuple(delays)
        self.interval = interval
        #: Trust settings for TLS (default: the system's certificate authorities).
        self.ssl_context = ssl_context
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()

    @functools.cached_property
    def _sealer(self) -> Sealer:
        return Sealer(self.app.settings)

    # the thread
    def start(self) -> None:
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="strata-mail", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._stopping.set()
            self._wake.set()
            self._thread.join(timeout=self.timeout + 10)
            self._thread = None

    def wake(self) -> None:
        """Look for due mail now (after queuing some)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.send_due()
                pause = self._pause()
            except Exception:  # never let one bad pass stop the sender
                log.exception("the mail sender failed a pass; it tries again")
                pause = self.interval
            self._wake.wait(pause)
            self._wake.clear()

    def _pause(self) -> float:
        """Seconds until the next retry falls due, at most :attr:`interval`."""
        with self.app.session() as s:
            due = s.scalar(
                sa.select(sa.func.min(EmailMessage.next_attempt_at))
                .outerjoin(Destination, Destination.id == EmailMessage.destination_id)
                .where(EmailMessage.status == "pending", _SENDABLE)
            )
        if due is None:
            return self.interval
        return min(self.interval, max(0.05, (due - utcnow()).total_seconds()))

    # passes
    def send_due(self) -> int:
        """Send what is due, in every workspace; how many messages were sent."""
        sent = handled = 0
        connections: dict[int, smtplib.SMTP | _Broken] = {}
        # Only what is due as the pass starts: a failure retried soon waits for the next pass.
        cutoff = utcnow()
        try:
            while handled < PASS_LIMIT and not self._stopping.is_set():
                claimed = self._claim(CHUNK, cutoff)
                if not claimed:
                    break
                handled += len(claimed)
                sent += self._deliver(claimed, connections, retry=True)
        finally:
            _close_all(connections)
        return sent

    def send_now(self, message_id: int, *, retry: bool = True) -> EmailMessage:
        """Send one message at once if it is pending; the message afterwards."""
        connections: dict[int, smtplib.SMTP | _Broken] = {}
        try:
            self._deliver(self._claim(1, utcnow(), only=message_id), connections, retry=retry)
        finally:
            _close_all(connections)
        with self.app.session() as s:
            return s.get(EmailMessage, message_id)

    def _claim(self, limit: int, cutoff: datetime, only: int | None = None) -> list[EmailMessage]:
        now = utcnow()
        due = sa.and_(
            EmailMessage.status == "pending",
            sa.or_(EmailMessage.next_attempt_at.is_(None), EmailMessage.next_attempt_at <= cutoff),
        )
        query = (
            sa.select(EmailMessage.id)
            .outerjoin(Destination, Destination.id == EmailMessage.destination_id)
            .where(due, _SENDABLE)
            .order_by(EmailMessage.next_attempt_at, EmailMessage.id)
            .limit(limit)
        )
        if only is not None:
            query = query.where(EmailMessage.id == only)
        # Held long enough to try every message once, even against a server that stalls.
        until = now + timedelta(seconds=limit * (self.timeout + 5) + 60)
        with self.app.session() as s:
            ids = list(s.scalars(query))
            claimed = [
                i
                for i in ids
                if s.execute(
                    sa.update(EmailMessage)
                    .where(EmailMessage.id == i, due)
                    .values(next_attempt_at=until)
                ).rowcount
                == 1
            ]
            s.commit()
            if not claimed:
                return []
            return list(
                s.scalars(
                    sa.select(EmailMessage)
                    .where(EmailMessage.id.in_(claimed))
                    .order_by(EmailMessage.id)
                )
            )

    def _deliver(
        self,
        messages: list[EmailMessage],
        connections: dict[int, smtplib.SMTP | _Broken],
        *,
        retry: bool,
    ) -> int:
        sent = 0
        by_destination: dict[int | None, list[EmailMessage]] = {}
        for msg in messages:
            by_destination.setdefault(msg.destination_id, []).append(msg)
        for destination_id, batch in by_destination.items():
            with self.app.session() as s:
                dest = s.get(Destination, destination_id) if destination_id else None
            if dest is None:
                for msg in batch:
                    self._finish(msg.id, "failed", "its SMTP server was removed")
                continue
            suppressed = self._unsubscribed(dest.workspace_id, [m.to_address for m in batch])
            for msg in batch:
                if self._stopping.is_set() and retry:
                    self._release(msg.id)
                    continue
                if email_hash(msg.to_address) in suppressed:
                    self._finish(msg.id, "suppressed", None, count=False)
                    continue
                sent += self._send_one(dest, msg, connections, retry=retry)
        return sent

    def _send_one(
        self,
        dest: Destination,
        msg: EmailMessage,
        connections: dict[int, smtplib.SMTP | _Broken],
        *,
        retry: bool,
    ) -> int:
        conn = connections.get(dest.id)
        if conn is None:
            conn = connections[dest.id] = self._open(dest)
        if isinstance(conn, _Broken):
            self._failed_try(msg, conn.error, retry)
            return 0
        try:
            try:
                mime = self._mime(dest, msg)
            except _Permanent:
                raise
            except Exception as exc:  # one message that cannot be written must not hold the rest
                log.exception("e-mail %s cannot be written", msg.id)
                raise _Permanent(f"the message cannot be written: {exc}") from None
            conn.send_message(
                mime, from_addr=dest.config["from_address"], to_addrs=[msg.to_address]
            )
        except _Permanent as exc:
            self._finish(msg.id, "failed", str(exc))
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            self._answer(msg, code, text, retry)
        except smtplib.SMTPResponseException as exc:
            self._answer(msg, exc.smtp_code, exc.smtp_error, retry)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            # The connection broke: this message is retried, the next one reconnects.
            connections.pop(dest.id, None)
            _close(conn)
            self._failed_try(msg, f"the connection to the SMTP server broke: {exc}", retry)
        except smtplib.SMTPException as exc:
            self._finish(msg.id, "failed", f"the SMTP server cannot take this message: {exc}")
        else:
            self._finish(msg.id, "sent", None)
            return 1
        return 0

    def _answer(self, msg: EmailMessage, code: int, text: bytes | str, retry: bool) -> None:
        words = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
        error = f"the SMTP server answered {code} {' '.join(words.split())}"
        if code >= 500:
            self._finish(msg.id, "failed", error)
        else:
            self._failed_try(msg, error, retry)

    def _open(self, dest: Destination) -> smtplib.SMTP | _Broken:
        """A signed-in connection to the destination's server, or why there is none."""
        cfg = dest.config
        host, port, security = cfg["host"], int(cfg["port"]), cfg.get("security", "starttls")
        guard = Guard(self.app.settings.webhook_allow, purpose="e-mail")
        context = self.ssl_context or ssl.create_default_context()
        smtp: smtplib.SMTP | None = None
        try:
            password = self._sealer.unseal(dest.sealed).get("password")
            if security == "ssl":
                smtp = _GuardedSMTPSSL(
                    guard, host, port, _local_hostname(), timeout=self.timeout, context=context
                )
            else:
                smtp = _GuardedSMTP(guard, host, port, _local_hostname(), timeout=self.timeout)
            smtp.ehlo()
            if security == "starttls":
                smtp.starttls(context=context)
                smtp.ehlo()
            if cfg.get("username"):
                smtp.login(cfg["username"], password or "")
            return smtp
        except smtplib.SMTPAuthenticationError as exc:
            _close(smtp)
            words = " ".join(exc.smtp_error.decode(errors="replace").split())
            return _Broken(
                f"the SMTP server refused the user name or password: {exc.smtp_code} {words}"
            )
        except StrataError as exc:  # refused by the guard, or a password sealed with another key
            _close(smtp)
            return _Broken(str(exc))
        except (smtplib.SMTPException, OSError) as exc:
            _close(smtp)
            why = str(exc) or type(exc).__name__
            return _Broken(f"cannot use the SMTP server {host}:{port} ({security}): {why}")

    def _mime(self, dest: Destination, msg: EmailMessage) -> MimeMessage:
        cfg = dest.config
        link = _link(self.app.settings, _token(self._sealer, msg.workspace_id, msg.to_address))
        mime = MimeMessage(policy=_POLICY)
        try:
            mime["From"] = Address(
                display_name=cfg.get("from_name") or "", addr_spec=cfg["from_address"]
            )
            mime["To"] = Address(addr_spec=msg.to_address)
            if cfg.get("reply_to"):
                mime["Reply-To"] = Address(addr_spec=cfg["reply_to"])
        except (ValueError, IndexError) as exc:
            raise _Permanent(f"the address cannot be written in an e-mail header: {exc}") from None
        mime["Subject"] = msg.subject
        mime["Date"] = format_datetime(datetime.now(UTC))
        mime["Message-ID"] = msg.message_id or make_msgid()
        mime["List-Unsubscribe"] = f"<{link}>"
        mime["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        mime.set_content(msg.body_text)
        if msg.body_html:
            mime.add_alternative(msg.body_html, subtype="html")
        return mime

    # outcomes
    def _unsubscribed(self, workspace_id: int, addresses: list[str]) -> set[str]:
        hashes = {email_hash(a) for a in addresses if a}
        with self.app.session() as s:
            return set(
                s.scalars(
                    sa.select(Unsubscribe.email_hash).where(
                        Unsubscribe.workspace_id == workspace_id,
                        Unsubscribe.email_hash.in_(hashes),
                    )
                )
            )

    def _failed_try(self, msg: EmailMessage, error: str, retry: bool) -> None:
        """A try that may work later: wait the next delay, or give up after the last."""
        tries = msg.attempts + 1
        if retry and tries <= len(self.delays):
            wait = timedelta(seconds=self.delays[tries - 1])
            self._finish(msg.id, "pending", error, next_at=utcnow() + wait)
        else:
            self._finish(msg.id, "failed", f"gave up after {tries} tries: {error}")

    def _finish(
        self,
        message_id: int,
        status: str,
        error: str | None,
        *,
        next_at: datetime | None = None,
        count: bool = True,
    ) -> None:
        with self.app.session() as s:
            msg = s.get(EmailMessage, message_id)
            if msg is None:  # its workspace was deleted meanwhile
                return
            msg.status = status
            msg.last_error = error
            msg.next_attempt_at = next_at
            if count:
                msg.attempts += 1
            if status == "sent":
                msg.sent_at = utcnow()
            s.commit()
        if status == "failed":
            log.warning("e-mail %s to workspace %s failed: %s", message_id, msg.workspace_id, error)

    def _release(self, message_id: int) -> None:
        """Hand back a claimed message untried (the sender is stopping)."""
        with self.app.session() as s:
            s.execute(
                sa.update(EmailMessage)
                .where(EmailMessage.id == message_id, EmailMessage.status == "pending")
                .values(next_attempt_at=utcnow())
            )
            s.commit()


def _close(smtp: smtplib.SMTP | _Broken | None) -> None:
    if isinstance(smtp, smtplib.SMTP):
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()


def _close_all(connections: dict[int, smtplib.SMTP | _Broken]) -> None:
    for conn in connections.values():
        _close(conn)
    connections.clear()
