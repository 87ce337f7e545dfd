"""E-mail: templates, sending through a real local SMTP server (aiosmtpd), retries,
sealed passwords, and the unsubscribe link over the real API."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
import ipaddress
import json
import socket
import ssl
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from typer.testing import CliRunner

from strata.actions.email import (
    RETRY_DELAYS,
    Mailer,
    MailSender,
    check_template,
    email_hash,
    unsubscribe_url,
)
from strata.actions.secrets import Sealer
from strata.api.routes import email as email_routes
from strata.catalog import Destination, EmailMessage, Unsubscribe
from strata.catalog.models import utcnow
from strata.context import Strata
from strata.errors import InputError, NotFound
from tests.conftest import ApiServer, api_settings, duckdb_settings

# aiosmtpd warns that AUTH over plain text is unsafe: some tests ask for exactly that.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

LOCAL = ("127.0.0.1",)
TEMPLATE = {
    "subject": "Hi {{ customer.first_name }}, news from {{ workspace }}",
    "text": "Hello {{ customer.name }} ({{ segment }}).\n",
    "html": "<html><body><p>Hello {{ customer.name }}</p></body></html>",
}
JO = {"customer_id": 7, "external_id": "c7", "email": "Jo@Example.com", "name": "Jo Doe"}


# -- a real SMTP server ---------------------------------------------------------------------
class Inbox:
    """An aiosmtpd handler: keeps what arrives; refuses bounce@… (550) and busy@… (451)."""

    def __init__(self):
        self.envelopes = []
        self.sessions = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("bounce"):
            return f"550 5.1.1 <{address}>: no such mailbox here"
        if address.startswith("busy"):
            return "451 4.3.0 mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        self.sessions.append(session)
        return "250 2.0.0 accepted"

    def messages(self) -> list[email.message.EmailMessage]:
        return [
            email.message_from_bytes(e.original_content, policy=email.policy.default)
            for e in self.envelopes
        ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Smtp:
    """A local SMTP server on a port of its own; ``stop``/``start`` take it down and up."""

    def __init__(self, port: int | None = None, **options):
        self.port = port or free_port()
        self.inbox = Inbox()
        self.options = options
        self.controller: Controller | None = None

    def start(self) -> Smtp:
        self.controller = Controller(
            self.inbox, hostname="127.0.0.1", port=self.port, **self.options
        )
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp():
    server = Smtp().start()
    yield server
    server.stop()


@pytest.fixture
def settings(tmp_path):
    return dataclasses.replace(
        duckdb_settings(tmp_path), webhook_allow=LOCAL, public_url="https://mail.example.org"
    )


@pytest.fixture
def app(settings):
    with Strata(settings) as strata:
        yield strata


@pytest.fixture
def mail(app):
    return Mailer(app, app.workspace("shop", create=True))


def add_server(mail: Mailer, smtp: Smtp, name: str = "local", **extra):
    options = {"security": "none", "from_address": "news@shop.example", "from_name": "Shop"}
    return mail.add_server(name, "127.0.0.1", smtp.port, **{**options, **extra})


def sending(app: Strata, **options) -> MailSender:
    """A sender that waits 5 s for a stuck server, not 30."""
    return MailSender(app, timeout=5, **options)


def row(app: Strata, message_id: int) -> EmailMessage:
    with app.session() as s:
        return s.get(EmailMessage, message_id)


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# -- what arrives ---------------------------------------------------------------------------
def test_a_queued_message_arrives_rendered_with_its_headers(app, mail, smtp):
    dest = add_server(mail, smtp, reply_to="help@shop.example")
    msg = mail.queue(dest.id, TEMPLATE, JO, segment="Loyal")
    assert msg.status == "pending" and msg.attempts == 0

    assert sending(app).send_due() == 1

    (envelope,) = smtp.inbox.envelopes
    assert envelope.mail_from == "news@shop.example"
    assert envelope.rcpt_tos == ["Jo@Example.com"]
    (got,) = smtp.inbox.messages()
    assert got["Subject"] == "Hi Jo, news from shop"
    assert got["From"] == "Shop <news@shop.example>"
    assert got["To"] == "Jo@Example.com"
    assert got["Reply-To"] == "help@shop.example"
    assert got["Message-ID"] == msg.message_id and msg.message_id.endswith("@shop.example>")
    sent_at = email.utils.parsedate_to_datetime(got["Date"])
    assert abs((sent_at - dt.datetime.now(dt.UTC)).total_seconds()) < 60
    link = unsubscribe_url(app.settings, mail.ws.id, "jo@example.com")
    assert link.startswith("https://mail.example.org/u/")
    assert got["List-Unsubscribe"] == f"<{link}>"
    assert got["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert got.get_content_type() == "multipart/alternative"
    text = got.get_body(("plain",)).get_content()
    html = got.get_body(("html",)).get_content()
    assert text.startswith("Hello Jo Doe (Loyal).")
    assert link in text  # the template did not place it, so it is appended
    assert "<p>Hello Jo Doe</p>" in html and f'href="{link}"' in html
    assert html.index(link) < html.index("</body>")

    sent = row(app, msg.id)
    assert (sent.status, sent.attempts, sent.last_error) == ("sent", 1, None)
    assert sent.sent_at is not None and sent.next_attempt_at is None
    assert sending(app).send_due() == 0  # sent once, never again


def test_text_only_mail_is_not_multipart_and_a_placed_link_is_not_repeated(app, mail, smtp):
    dest = add_server(mail, smtp)
    template = {"subject": "Hi", "text": "Bye: {{ unsubscribe_url }}\n"}
    mail.queue(dest.id, template, JO)
    sending(app).send_due()
    (got,) = smtp.inbox.messages()
    assert got.get_content_type() == "text/plain"
    body = got.get_content()
    link = unsubscribe_url(app.settings, mail.ws.id, JO["email"])
    assert body.count(link) == 1 and body.startswith(f"Bye: {link}")


def test_one_connection_per_server_per_pass(app, mail, smtp):
    first = add_server(mail, smtp, "first")
    second = add_server(mail, smtp, "second")
    for i in range(3):
        mail.queue(first.id, TEMPLATE, {**JO, "email": f"a{i}@example.com"})
    mail.queue(second.id, TEMPLATE, JO)

    assert sending(app).send_due() == 4

    assert len(smtp.inbox.envelopes) == 4
    assert len({id(s) for s in smtp.inbox.sessions}) == 2  # sessions are kept, ids stay unique


def test_the_thread_sends_when_woken_and_stops(app, mail, smtp):
    dest = add_server(mail, smtp)
    sender = sending(app, interval=60)
    sender.start()
    thread = sender._thread
    try:
        mail.queue(dest.id, TEMPLATE, JO)
        sender.wake()
        wait_for(lambda: len(smtp.inbox.envelopes) == 1)
    finally:
        sender.stop()
    assert not thread.is_alive()


def test_mail_of_a_disabled_server_waits_until_it_is_active(app, mail, smtp):
    dest = add_server(mail, smtp)
    mail.update_server(dest.id, status="disabled")
    msg = mail.queue(dest.id, TEMPLATE, JO)
    sender = sending(app)
    assert sender.send_due() == 0 and sender._pause() == sender.interval  # nothing to wake for
    assert (row(app, msg.id).status, row(app, msg.id).attempts) == ("pending", 0)
    assert mail.server(dest.id).disabled_reason == "disabled by hand"
    mail.update_server(dest.id, status="active")
    assert sender.send_due() == 1 and len(smtp.inbox.envelopes) == 1


# -- templates ------------------------------------------------------------------------------
def test_html_is_escaped_and_text_is_not(mail, smtp):
    dest = add_server(mail, smtp)
    evil = {**JO, "name": "<script>alert(1)</script> Doe"}
    msg = mail.queue(dest.id, TEMPLATE, evil)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Doe" in msg.body_html
    assert "<script>" not in msg.body_html
    assert msg.body_text.startswith("Hello <script>alert(1)</script> Doe")
    assert msg.subject == "Hi <script>alert(1)</script>, news from shop"


def test_undefined_values_render_empty_and_first_name_comes_from_name(mail, smtp):
    dest = add_server(mail, smtp)
    template = {
        "subject": "[{{ customer.first_name }}]",
        "text": "a{{ customer.nickname }}b{{ customer.address.city }}c{{ customer.country }}d",
    }
    msg = mail.queue(dest.id, template, {"email": "x@example.com", "name": None, "country": None})
    assert msg.subject == "[]"
    assert msg.body_text.startswith("abcd")  # no "None", no error
    fallback = {
        "subject": "Hi {{ customer.first_name | default('there') }}",
        "text": "{{ customer.name | upper }}.",
    }
    msg = mail.queue(dest.id, fallback, {"email": "x@example.com", "name": float("nan")})
    assert (msg.subject, msg.body_text.split("\n")[0]) == ("Hi there", ".")
    msg = mail.queue(dest.id, template, {"email": "x@example.com", "name": "  Ada  Lovelace"})
    assert msg.subject == "[Ada]"


def test_the_sandbox_refuses_python_internals(mail, smtp):
    for source in (
        "{{ customer.__class__ }}",
        "{{ customer.items.__globals__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ customer['__class__'] }}",
    ):
        with pytest.raises(InputError, match=r"template html, line 1: .*not allowed"):
            check_template({"subject": "s", "text": "t", "html": source})
    dest = add_server(mail, smtp)
    # Built at render time, so no check can see it: the sandbox answers with nothing.
    sneaky = {"subject": "s", "text": "[{{ customer|attr('__cla' ~ 'ss__') }}]"}
    msg = mail.queue(dest.id, sneaky, JO)
    assert msg.status == "pending" and msg.body_text.startswith("[]")
    # The customer is read-only to a template (ImmutableSandboxedEnvironment).
    mutate = {"subject": "s", "text": "{{ customer.update({'email': 'evil@example.com'}) }}"}
    msg = mail.queue(dest.id, mutate, JO)
    assert msg.status == "failed" and "cannot be rendered" in msg.last_error
    assert msg.to_address == "Jo@Example.com"


def test_template_mistakes_are_one_line_errors_naming_field_and_line():
    with pytest.raises(InputError) as err:
        check_template({"subject": "Hi", "text": "Hello\n\n{% for x in %}"})
    assert str(err.value).startswith("template text, line 3: ") and "\n" not in str(err.value)
    with pytest.raises(InputError, match=r"template html, line 2: "):
        check_template({"subject": "Hi", "text": "t", "html": "<p>\n{% if x %}</p>"})
    with pytest.raises(InputError, match=r"template subject, line 1: "):
        check_template({"subject": "Hi {{ customer.name ", "text": "t"})
    with pytest.raises(InputError, match="template text: unknown variable 'cusomer'"):
        check_template({"subject": "Hi", "text": "{{ cusomer.name }}"})
    with pytest.raises(InputError, match="template subject: must be one line"):
        check_template({"subject": "Hi\nBcc: x@example.com", "text": "t"})
    with pytest.raises(InputError, match="'body' is not one of them"):
        check_template({"subject": "Hi", "text": "t", "body": "b"})
    with pytest.raises(InputError, match="template text: give"):
        check_template({"subject": "Hi"})
    ok = check_template({"subject": "  Hi {{ segment }} ", "text": "{% set n = 1 %}{{ n }}"})
    assert ok == {"subject": "Hi {{ segment }}", "text": "{% set n = 1 %}{{ n }}", "html": None}


def test_a_customer_without_an_address_fails_at_once(mail, smtp):
    dest = add_server(mail, smtp)
    msg = mail.queue(dest.id, TEMPLATE, {"customer_id": 3, "email": None, "name": "No One"})
    assert msg.status == "failed" and "no usable e-mail address" in msg.last_error
    msg = mail.queue(dest.id, TEMPLATE, {"customer_id": 4, "email": "not an address"})
    assert msg.status == "failed" and msg.customer_id == 4


# -- failures and retries -------------------------------------------------------------------
def test_smtp_down_is_retried_later_and_sent_once_when_it_is_back(app, mail):
    down = Smtp()  # a free port, nothing listening yet
    dest = add_server(mail, down)
    msg = mail.queue(dest.id, TEMPLATE, JO)
    sender = sending(app, delays=(0.3, 300))

    assert sender.send_due() == 0
    tried = row(app, msg.id)
    assert (tried.status, tried.attempts) == ("pending", 1)
    assert "cannot use the SMTP server 127.0.0.1" in tried.last_error
    assert tried.next_attempt_at > utcnow()
    assert sender.send_due() == 0 and row(app, msg.id).attempts == 1  # not due yet

    down.start()
    try:
        time.sleep(0.35)
        assert sender.send_due() == 1
        assert sender.send_due() == 0
        assert len(down.inbox.envelopes) == 1
    finally:
        down.stop()
    sent = row(app, msg.id)
    assert (sent.status, sent.attempts, sent.last_error) == ("sent", 2, None)


def test_retries_follow_the_schedule_then_fail(app, mail):
    dest = add_server(mail, Smtp())
    msg = mail.queue(dest.id, TEMPLATE, JO)
    before = utcnow()
    sending(app).send_due()
    wait = (row(app, msg.id).next_attempt_at - before).total_seconds()
    assert RETRY_DELAYS == (60.0, 300.0, 1800.0, 7200.0, 21600.0)
    assert 59 <= wait <= 62

    with app.session() as s:  # a minute passes
        s.get(EmailMessage, msg.id).next_attempt_at = utcnow()
        s.commit()
    quick = sending(app, delays=(0,) * len(RETRY_DELAYS))
    for tries in range(2, len(RETRY_DELAYS) + 1):
        quick.send_due()
        assert (row(app, msg.id).status, row(app, msg.id).attempts) == ("pending", tries)
    quick.send_due()
    failed = row(app, msg.id)
    assert failed.status == "failed" and failed.attempts == len(RETRY_DELAYS) + 1
    assert failed.last_error.startswith("gave up after 6 tries: cannot use the SMTP server")


def test_a_550_recipient_fails_at_once_and_a_451_is_retried(app, mail, smtp):
    dest = add_server(mail, smtp)
    bounce = mail.queue(dest.id, TEMPLATE, {**JO, "email": "bounce@example.com"})
    busy = mail.queue(dest.id, TEMPLATE, {**JO, "email": "busy@example.com"})
    good = mail.queue(dest.id, TEMPLATE, JO)

    assert sending(app).send_due() == 1  # the connection stays usable after refusals

    failed = row(app, bounce.id)
    assert (failed.status, failed.attempts) == ("failed", 1)
    assert failed.last_error == (
        "the SMTP server answered 550 5.1.1 <bounce@example.com>: no such mailbox here"
    )
    waiting = row(app, busy.id)
    assert waiting.status == "pending" and waiting.attempts == 1
    assert "451 4.3.0 mailbox busy" in waiting.last_error
    assert row(app, good.id).status == "sent"
    assert [e.rcpt_tos for e in smtp.inbox.envelopes] == [["Jo@Example.com"]]


# -- credentials ----------------------------------------------------------------------------
def test_the_password_is_sealed_in_the_catalog(app, mail, smtp):
    dest = add_server(mail, smtp, username="mailer", password="s3cret-Pa55")
    with app.sessions.kw["bind"].connect() as con:
        raw = con.execute(
            sa.text("SELECT config, sealed FROM destinations WHERE id = :id"), {"id": dest.id}
        ).one()
    assert "s3cret-Pa55" not in str(raw.config) and "s3cret-Pa55" not in raw.sealed
    assert Sealer(app.settings).unseal(raw.sealed) == {"password": "s3cret-Pa55"}
    info = email_routes.server_info(dest)
    assert info["password_set"] is True and "s3cret-Pa55" not in str(info)

    mail.update_server(dest.id, password=None)
    assert mail.server(dest.id).sealed is None


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_auth_signs_in_with_the_unsealed_password(app, mail, mechanism):
    logins = []

    def authenticator(server, session, envelope, method, data):
        logins.append((method, data.login, data.password))
        ok = data.login == b"mailer" and data.password == b"s3cret"
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535

    other = "LOGIN" if mechanism == "PLAIN" else "PLAIN"
    server = Smtp(
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=False,
        auth_exclude_mechanism=[other],
    ).start()
    try:
        good = add_server(mail, server, "good", username="mailer", password="s3cret")
        bad = add_server(mail, server, "bad", username="mailer", password="wrong")
        ok = mail.queue(good.id, TEMPLATE, JO)
        refused = mail.queue(bad.id, TEMPLATE, JO)
        assert sending(app).send_due() == 1
    finally:
        server.stop()
    assert row(app, ok.id).status == "sent" and len(server.inbox.envelopes) == 1
    assert (mechanism, b"mailer", b"s3cret") in logins
    failed = row(app, refused.id)
    assert failed.status == "pending" and failed.attempts == 1
    assert failed.last_error.startswith("the SMTP server refused the user name or password: 535")


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (file, key file)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls_with_auth_and_a_certificate_check(app, mail, tmp_path, security):
    cert_file, key_file = _certificate(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_file, key_file)

    def authenticator(server, session, envelope, method, data):
        return AuthResult(success=data.password == b"s3cret", handled=False)

    options = {"authenticator": authenticator, "auth_required": True}
    if security == "starttls":
        options.update(tls_context=server_tls, require_starttls=True)
    else:  # aiosmtpd offers AUTH over implicit TLS only if told TLS is not required
        options.update(ssl_context=server_tls, auth_require_tls=False)
    server = Smtp(**options).start()
    try:
        dest = add_server(mail, server, security=security, username="u", password="s3cret")
        untrusted = mail.queue(dest.id, TEMPLATE, JO)
        assert sending(app).send_due() == 0  # the system does not trust this certificate
        assert "CERTIFICATE_VERIFY_FAILED" in row(app, untrusted.id).last_error

        trusting = sending(app, ssl_context=ssl.create_default_context(cafile=cert_file))
        mail.queue(dest.id, TEMPLATE, JO)
        assert trusting.send_due() == 1
        wait_for(lambda: len(server.inbox.envelopes) == 1)
    finally:
        server.stop()


def test_private_smtp_hosts_are_refused_unless_allowed(tmp_path, settings, smtp):
    guarded = dataclasses.replace(settings, webhook_allow=())
    with Strata(guarded) as strict:
        mail = Mailer(strict, strict.workspace("shop", create=True))
        for host in ("127.0.0.1", "10.1.2.3", "169.254.169.254", "localhost"):
            with pytest.raises(InputError, match="e-mail cannot reach it"):
                mail.add_server("x", host, 25, from_address="a@shop.example")
    # Saved while allowed, refused when connecting once the allowance is gone.
    with Strata(settings) as allowed:
        dest = add_server(Mailer(allowed, allowed.workspace("shop")), smtp)
    with Strata(guarded) as strict:
        msg = Mailer(strict, strict.workspace("shop")).queue(dest.id, TEMPLATE, JO)
        assert sending(strict).send_due() == 0
        assert "loopback address: e-mail cannot reach it" in row(strict, msg.id).last_error
    assert smtp.inbox.envelopes == []


def test_server_settings_are_checked(mail, smtp):
    add_server(mail, smtp)
    with pytest.raises(Exception, match="a destination named 'local' exists"):
        add_server(mail, smtp)
    for bad, match in (
        ({"from_address": "news"}, "from address: 'news' is not an e-mail address"),
        ({"security": "tls"}, "security: use starttls, ssl, none"),
        ({"from_name": "Shop\r\nBcc: x@y.z"}, "from name: must be one line"),
        ({"reply_to": "a b@c"}, "reply-to"),
    ):
        with pytest.raises(InputError, match=match):
            add_server(mail, smtp, "other", **bad)
    with pytest.raises(InputError, match="port"):
        mail.add_server("p", "127.0.0.1", 0, from_address="a@shop.example")
    with pytest.raises(NotFound):
        mail.server(999)


def test_removing_a_server_fails_its_waiting_mail(app, mail, smtp):
    dest = add_server(mail, smtp)
    msg = mail.queue(dest.id, TEMPLATE, JO)
    mail.remove_server(dest.id)
    gone = row(app, msg.id)
    assert gone.status == "failed" and gone.last_error == "its SMTP server was removed"
    assert gone.destination_id is None
    assert sending(app).send_due() == 0 and smtp.inbox.envelopes == []


# -- unsubscribing --------------------------------------------------------------------------
def test_unsubscribed_addresses_are_suppressed_even_after_queuing(app, mail, smtp):
    dest = add_server(mail, smtp)
    waiting = mail.queue(dest.id, TEMPLATE, JO)
    mail.unsubscribe("  jo@EXAMPLE.com ")
    assert mail.is_unsubscribed("Jo@Example.com")
    later = mail.queue(dest.id, TEMPLATE, JO)
    assert later.status == "suppressed"
    assert sending(app).send_due() == 0
    assert row(app, waiting.id).status == "suppressed"
    assert smtp.inbox.envelopes == []
    other = Mailer(app, app.workspace("other", create=True))
    assert not other.is_unsubscribed("jo@example.com")  # per workspace


def test_tokens_do_not_show_the_address_and_cannot_be_forged(settings):
    from strata.actions.email import read_token

    link = unsubscribe_url(settings, 5, "Jo@Example.com")
    token = link.rsplit("/", 1)[1]
    assert "jo" not in token.lower().split(".")[0] and "example" not in token.lower()
    assert read_token(settings, token) == (5, email_hash("jo@example.com"))
    ws, digest, signature = token.split(".")
    for forged in (
        f"6.{digest}.{signature}",
        f"{ws}.{digest}.{signature[:-2]}AA",
        f"{ws}.{digest[:-2]}AA.{signature}",
        "5.abc.def",
        "garbage",
        "",
    ):
        with pytest.raises(NotFound, match="not valid"):
            read_token(settings, forged)


# -- the API --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def served(tmp_path_factory):
    server = ApiServer(api_settings(tmp_path_factory.mktemp("api-email"), webhook_allow=LOCAL))
    mounted = {getattr(r, "path", "") for r in server.app.routes}
    if "/api/v1/workspaces/{workspace_id}/email/servers" not in mounted:
        server.app.include_router(email_routes.router, prefix="/api/v1")
    if "/u/{token}" not in mounted:
        server.app.include_router(email_routes.public_router)

    def authenticator(server, session, envelope, method, data):
        return AuthResult(success=data.password == b"api-s3cret", handled=False)

    smtp = Smtp(authenticator=authenticator, auth_required=True, auth_require_tls=False).start()
    try:
        owner = server.owner()
        ws = owner.post("/api/v1/workspaces", json={"name": "shop"}).json()["id"]
        yield server, smtp, owner, ws
    finally:
        smtp.stop()
        server.close()


def _server_body(smtp: Smtp, name: str) -> dict:
    return {
        "name": name,
        "host": "127.0.0.1",
        "port": smtp.port,
        "security": "none",
        "username": "mailer",
        "password": "api-s3cret",
        "from_address": "news@shop.example",
    }


def test_servers_over_the_api_never_show_the_password(served):
    server, smtp, owner, ws = served
    base = f"/api/v1/workspaces/{ws}/email"
    r = owner.post(f"{base}/servers", json=_server_body(smtp, "api-server"))
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["password_set"] is True and "password" not in created
    sid = created["id"]
    answers = [
        created,
        owner.get(f"{base}/servers").json(),
        owner.get(f"{base}/servers/{sid}").json(),
        owner.patch(f"{base}/servers/{sid}", json={"from_name": "Shop"}).json(),
    ]
    assert all("api-s3cret" not in str(a) for a in answers)
    assert answers[3]["from_name"] == "Shop" and answers[3]["password_set"] is True
    with server.service.app.session() as s:
        sealed = s.get(Destination, sid).sealed
    assert "api-s3cret" not in sealed

    r = owner.patch(f"{base}/servers/{sid}", json={"password": None})
    assert r.status_code == 200 and r.json()["password_set"] is False
    r = owner.post(f"{base}/servers", json={**_server_body(smtp, "x"), "security": "tls"})
    assert r.status_code == 422
    r = owner.post(f"{base}/servers", json={**_server_body(smtp, "x"), "host": "10.0.0.1"})
    assert r.status_code == 422 and "private" in r.json()["detail"]
    assert owner.delete(f"{base}/servers/{sid}").status_code == 204
    assert owner.get(f"{base}/servers/{sid}").status_code == 404


def test_roles_on_the_email_routes(served):
    server, smtp, owner, ws = served
    base = f"/api/v1/workspaces/{ws}/email"
    sid = owner.post(f"{base}/servers", json=_server_body(smtp, "roles")).json()["id"]
    viewer = server.user_with_role(ws, "viewer")
    marketer = server.user_with_role(ws, "marketer")
    assert viewer.get(f"{base}/servers").status_code == 403
    assert viewer.get(f"{base}/messages").status_code == 403
    assert viewer.post(f"{base}/unsubscribes", json={"email": "a@b.c"}).status_code == 403
    assert marketer.get(f"{base}/servers").status_code == 200
    assert marketer.post(f"{base}/servers", json=_server_body(smtp, "m")).status_code == 403
    assert marketer.patch(f"{base}/servers/{sid}", json={"port": 25}).status_code == 403
    assert marketer.delete(f"{base}/servers/{sid}").status_code == 403
    r = marketer.post(f"{base}/servers/{sid}/test", json={"to": "marketer@example.com"})
    assert r.status_code == 200 and r.json()["status"] == "sent"
    other = owner.post("/api/v1/workspaces", json={"name": "elsewhere"}).json()["id"]
    assert owner.get(f"/api/v1/workspaces/{other}/email/servers/{sid}").status_code == 404


def test_a_test_message_is_sent_at_once_or_fails_with_the_reason(served):
    _, smtp, owner, ws = served
    base = f"/api/v1/workspaces/{ws}/email"
    sid = owner.post(f"{base}/servers", json=_server_body(smtp, "tester")).json()["id"]
    before = len(smtp.inbox.envelopes)
    r = owner.post(f"{base}/servers/{sid}/test", json={"to": "owner@example.com"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "sent" and r.json()["attempts"] == 1
    assert len(smtp.inbox.envelopes) == before + 1
    assert smtp.inbox.messages()[-1]["Subject"] == "Test message from Strata (shop)"

    r = owner.post(f"{base}/servers/{sid}/test", json={"to": "bounce@example.com"})
    assert r.json()["status"] == "failed" and "550 5.1.1" in r.json()["last_error"]
    down = Smtp()
    r = owner.patch(f"{base}/servers/{sid}", json={"port": down.port})
    r = owner.post(f"{base}/servers/{sid}/test", json={"to": "owner@example.com"})
    assert r.json()["status"] == "failed"  # a test is tried once, not retried for hours
    assert "gave up after 1 tries: cannot use the SMTP server" in r.json()["last_error"]
    r = owner.post(
        f"{base}/servers/{sid}/test",
        json={"to": "owner@example.com", "template": {"subject": "x", "text": "{% if %}"}},
    )
    assert r.status_code == 422 and r.json()["detail"].startswith("template text, line 1")

    r = owner.get(f"{base}/messages", params={"status": "failed", "limit": 2})
    assert r.status_code == 200
    page = r.json()
    assert page["total"] >= 2 and len(page["items"]) == 2
    assert {m["status"] for m in page["items"]} == {"failed"}
    assert owner.get(f"{base}/messages", params={"status": "lost"}).status_code == 422


def test_the_unsubscribe_link_in_a_received_message_works(served):
    server, smtp, owner, ws = served
    base = f"/api/v1/workspaces/{ws}/email"
    sid = owner.post(f"{base}/servers", json=_server_body(smtp, "links")).json()["id"]
    app = server.service.app
    mail = Mailer(app, app.workspace("shop"))
    sender = server.service.actions.mail
    reader = {"customer_id": 11, "email": "reader@example.com", "name": "Rea Der"}
    mail.queue(sid, TEMPLATE, reader)
    sender.send_due()
    wait_for(lambda: any(e.rcpt_tos == ["reader@example.com"] for e in smtp.inbox.envelopes))
    received = [m for m in smtp.inbox.messages() if m["To"] == "reader@example.com"]
    header = received[-1]["List-Unsubscribe"]
    path = urlsplit(header.strip("<>")).path
    assert path in received[-1].get_body(("plain",)).get_content().replace("=\n", "")

    web = server.client()
    page = web.get(path)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "<form method=post><button type=submit name=confirm value=yes>" in page.text
    assert "shop" in page.text and "reader@example.com" not in page.text
    assert page.headers["x-frame-options"] == "DENY"
    assert not mail.is_unsubscribed("reader@example.com")  # opening the link does nothing

    done = web.post(path, data={"confirm": "yes"})
    assert done.status_code == 200 and "You are unsubscribed" in done.text
    assert mail.is_unsubscribed("reader@example.com")
    assert web.post(path, data={"confirm": "yes"}).status_code == 200  # twice is fine

    count = len(smtp.inbox.envelopes)
    again = mail.queue(sid, TEMPLATE, reader)
    assert again.status == "suppressed"
    sender.send_due()
    assert len(smtp.inbox.envelopes) == count
    with app.session() as s:
        rows = s.scalars(
            sa.select(Unsubscribe).where(Unsubscribe.email_hash == email_hash("reader@example.com"))
        ).all()
    assert [(r.workspace_id, r.source) for r in rows] == [(ws, "link")]

    # A mail client's RFC 8058 one-click POST.
    one_click = urlsplit(mail.unsubscribe_url("clicker@example.com")).path
    r = web.post(one_click, data={"List-Unsubscribe": "One-Click"})
    assert r.status_code == 200
    with app.session() as s:
        source = s.scalar(
            sa.select(Unsubscribe.source).where(
                Unsubscribe.email_hash == email_hash("clicker@example.com")
            )
        )
    assert source == "one-click"
    bare = urlsplit(mail.unsubscribe_url("bare@example.com")).path
    assert web.post(bare).status_code == 200  # no body at all: still the page's unsubscribe
    assert mail.is_unsubscribed("bare@example.com")

    # Forged and broken tokens are refused, and unsubscribe no one.
    ws_part, digest, signature = path.rsplit("/", 1)[1].split(".")
    forged_for = mail.unsubscribe_url("victim@example.com").rsplit("/", 1)[1].split(".")[1]
    for token in (f"{ws_part}.{forged_for}.{signature}", f"{ws_part}.{digest}", "x" * 300):
        assert web.get(f"/u/{token}").status_code in (404, 422)
        assert web.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"}).status_code in (
            404,
            422,
        )
    assert not mail.is_unsubscribed("victim@example.com")

    r = owner.post(f"{base}/unsubscribes", json={"email": "phone@example.com"})
    assert r.status_code == 201 and r.json()["source"] == "api"
    assert r.json()["email_hash"] == email_hash("phone@example.com")
    assert mail.queue(sid, TEMPLATE, {"email": "Phone@example.com"}).status == "suppressed"


# -- the CLI --------------------------------------------------------------------------------
def test_the_cli_adds_a_server_tests_it_and_lists_the_outbox(settings):
    def authenticator(server, session, envelope, method, data):
        return AuthResult(success=data.password == b"cli-s3cret", handled=False)

    smtp = Smtp(authenticator=authenticator, auth_required=True, auth_require_tls=False).start()
    try:
        _use_the_cli(settings, smtp)
    finally:
        smtp.stop()


def _use_the_cli(settings, smtp: Smtp) -> None:
    from strata.cli_email import app as email_cli

    env = {
        "STRATA_HOME": str(settings.home),
        "STRATA_DATABASE_URL": settings.database_url,
        "STRATA_WAREHOUSE_URL": settings.warehouse_url,
        "STRATA_WEBHOOK_ALLOW": "127.0.0.1",
        "STRATA_WORKSPACE": "shop",
        "SMTP_PASSWORD": "cli-s3cret",
        "COLUMNS": "200",
    }
    with Strata(settings) as strata:
        strata.workspace("shop", create=True)
    runner = CliRunner()

    def run(*args: str, input: str | None = None):
        return runner.invoke(email_cli, list(args), env=env, input=input)

    common = ["--host", "127.0.0.1", "--port", str(smtp.port), "--security", "none"]
    r = run("server-add", "cli", *common, "--username", "u", "--password-env", "SMTP_PASSWORD",
            "--from", "news@shop.example")  # fmt: skip
    assert r.exit_code == 0, r.output
    r = run("server-add", "typed", *common, "--username", "u", "--from", "n@shop.example",
            input="typed-s3cret\n")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "typed-s3cret" not in r.output
    r = run("servers", "--json")
    assert r.exit_code == 0, r.output
    servers = {s["name"]: s for s in json.loads(r.output)}
    assert servers["cli"]["password_set"] and servers["typed"]["password_set"]
    assert "s3cret" not in r.output
    with Strata(settings) as strata:
        with strata.session() as s:
            sealed = s.get(Destination, servers["typed"]["id"]).sealed
        assert Sealer(settings).unseal(sealed) == {"password": "typed-s3cret"}

    r = run("test", str(servers["cli"]["id"]), "--to", "me@example.com")
    assert r.exit_code == 0, r.output
    assert "sent to me@example.com" in r.output and len(smtp.inbox.envelopes) == 1
    r = run("test", str(servers["cli"]["id"]), "--to", "bounce@example.com")
    assert r.exit_code != 0 and "550" in str(r.exception)

    r = run("unsubscribe", "me@example.com")
    assert r.exit_code == 0, r.output
    with Strata(settings) as strata:
        mail = Mailer(strata, strata.workspace("shop"))
        assert mail.queue(servers["cli"]["id"], TEMPLATE, {"email": "me@example.com"}).status == (
            "suppressed"
        )
        mail.queue(servers["cli"]["id"], TEMPLATE, JO)
    r = run("send-due")
    assert r.exit_code == 0 and "sent 1" in r.output
    r = run("messages", "--status", "failed", "--json")
    assert r.exit_code == 0, r.output
    listed = json.loads(r.output)
    assert listed["total"] == 1 and listed["items"][0]["to"] == "bounce@example.com"
    r = run("server-remove", str(servers["typed"]["id"]))
    assert r.exit_code == 0 and "removed" in r.output
    r = run("servers")
    assert "typed" not in r.output and "cli" in r.output
