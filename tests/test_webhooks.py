"""Webhooks against real HTTP servers on 127.0.0.1: signatures checked by the independent
``standardwebhooks`` package, retries, 410, redirects, timeouts, slow endpoints, outages,
two senders racing over one catalog, the API and the CLI."""

from __future__ import annotations

import base64
import datetime as dt
import json
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from typer.testing import CliRunner

from strata.actions.secrets import Sealer
from strata.actions.signing import Keyring
from strata.actions.webhooks import RETRY_SCHEDULE, Webhooks, WebhookSender, describe
from strata.catalog import Destination, WebhookAttempt, WebhookMessage
from strata.catalog.models import utcnow
from strata.context import Strata
from strata.errors import Conflict, InputError
from tests.conftest import ApiServer, api_settings, duckdb_settings

#: A retry schedule in tenths of a second: ten attempts over about four seconds.
FAST = (0, 0.05, 0.1, 0.2, 0.2, 0.3, 0.5, 0.5, 1.0, 1.0)
DATA = {
    "customer": {"id": 7, "email": "ada@example.com", "name": "Ada"},
    "segment": {"id": 3, "name": "Champions"},
    "change": "entered",
}


# -- a receiver: a real HTTP server that records what it gets and answers as told ---------------
@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    #: Seconds to hold the request before answering (cut short when the test ends).
    hold: float = 0.0


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    answered: bool = False

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


class Receiver:
    """``ThreadingHTTPServer`` on 127.0.0.1; ``answer(request, n)`` says how to reply."""

    def __init__(
        self,
        answer: Callable[[Received, int], Reply] | None = None,
        port: int = 0,
        tls: ssl.SSLContext | None = None,
    ):
        self.answer = answer or (lambda req, n: Reply())
        self.requests: list[Received] = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("content-length") or 0)
                req = Received(
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                    time.monotonic(),
                )
                with receiver.lock:
                    receiver.requests.append(req)
                    n = len(receiver.requests)
                reply = receiver.answer(req, n)
                if reply.hold:
                    receiver.release.wait(reply.hold)
                try:
                    self.send_response(reply.status)
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.send_header("content-length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:  # the sender gave up waiting (a timeout test)
                    pass
                req.answered = True

            do_GET = do_POST

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128  # many senders connect at once

            def get_request(self):
                sock, address = super().get_request()
                return (tls.wrap_socket(sock, server_side=True) if tls else sock), address

        self.server = Server(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def ids(self) -> list[str]:
        with self.lock:
            return [r.webhook_id for r in self.requests if "webhook-id" in r.headers]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class Lab:
    """Receivers and running senders of one test, all stopped at its end."""

    def __init__(self) -> None:
        self.receivers: list[Receiver] = []
        self.senders: list[WebhookSender] = []

    def receiver(self, answer=None, port: int = 0) -> Receiver:
        r = Receiver(answer, port)
        self.receivers.append(r)
        return r

    def sender(self, app: Strata, **kwargs) -> WebhookSender:
        kwargs.setdefault("schedule", FAST)
        kwargs.setdefault("poll", 0.2)
        s = WebhookSender(app, **kwargs)
        s.start()
        self.senders.append(s)
        return s

    def stop_senders(self) -> None:
        """Stop the running senders (before the stores they use are closed)."""
        for s in self.senders:
            s.stop()
        self.senders.clear()

    def close(self) -> None:
        for r in self.receivers:
            r.release.set()
        self.stop_senders()
        for r in self.receivers:
            r.close()


def wait_for(condition: Callable[[], object], timeout: float = 10.0, what: str = "") -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what or condition}"
        time.sleep(0.01)


@pytest.fixture
def hook_settings(tmp_path):
    return replace(duckdb_settings(tmp_path), webhook_allow=("127.0.0.1",))


@pytest.fixture
def app(hook_settings):
    with Strata(hook_settings) as strata:
        yield strata


@pytest.fixture
def hooks(app) -> Webhooks:
    return Webhooks(app, app.workspace("shop", create=True))


@pytest.fixture
def lab():
    lab = Lab()
    yield lab
    lab.close()


def message(app: Strata, msg_id: str) -> WebhookMessage:
    with app.session() as s:
        return s.scalar(sa.select(WebhookMessage).where(WebhookMessage.msg_id == msg_id))


def statuses(app: Strata) -> Counter:
    with app.session() as s:
        return Counter(s.scalars(sa.select(WebhookMessage.status)))


# -- signatures ---------------------------------------------------------------------------------
def test_a_delivery_verifies_with_the_standardwebhooks_library(app, hooks, lab):
    rx = lab.receiver()
    dest, secret = hooks.create("CRM", rx.url)
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    msg = hooks.enqueue(dest.id, "segment.entered", DATA)

    assert WebhookSender(app, schedule=FAST).deliver_due() == 1
    (req,) = rx.requests
    body = Webhook(secret).verify(req.body, req.headers)
    assert body["type"] == "segment.entered" and body["data"] == DATA
    assert body["timestamp"].endswith("Z")
    dt.datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00"))
    assert req.headers["webhook-id"] == msg.msg_id and "." not in msg.msg_id
    assert abs(int(req.headers["webhook-timestamp"]) - time.time()) < 5
    assert req.headers["content-type"] == "application/json"
    assert req.body == msg.payload.encode()
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(req.body.replace(b"Ada", b"Eve"), req.headers)
    assert message(app, msg.msg_id).status == "delivered"


def test_after_a_rotation_both_secrets_sign_and_each_verifies_alone(app, hooks, lab):
    rx = lab.receiver()
    dest, old = hooks.create("CRM", rx.url)
    new = hooks.rotate_secret(dest.id)
    assert new != old and new.startswith("whsec_")
    hooks.enqueue(dest.id, "segment.entered", DATA)
    WebhookSender(app, schedule=FAST).deliver_due()

    (req,) = rx.requests
    signatures = req.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2
    Webhook(old).verify(req.body, req.headers)
    Webhook(new).verify(req.body, req.headers)
    first, second = signatures  # the new secret's signature first, then the old one's
    Webhook(new).verify(req.body, {**req.headers, "webhook-signature": first})
    Webhook(old).verify(req.body, {**req.headers, "webhook-signature": second})
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(req.body, {**req.headers, "webhook-signature": first})

    # The old secret signs for 24 hours, then only the new one does.
    info = describe(hooks.get(dest.id))
    left = info["previous_secret_expires_at"] - utcnow()
    assert dt.timedelta(hours=23, minutes=59) < left <= dt.timedelta(hours=24)
    ring = Keyring.from_dict(Sealer(app.settings).unseal(hooks.get(dest.id).sealed))
    assert ring.valid(utcnow()) == [new, old]
    assert ring.valid(utcnow() + dt.timedelta(hours=24, minutes=1)) == [new]
    # A second rotation keeps two secrets at most: the newest and the one it replaced.
    newest = hooks.rotate_secret(dest.id)
    ring = Keyring.from_dict(Sealer(app.settings).unseal(hooks.get(dest.id).sealed))
    assert ring.valid(utcnow()) == [newest, new]


# -- answers: retries, 410, redirects, timeouts -------------------------------------------------
def test_a_500_is_retried_and_the_log_shows_both_attempts(app, hooks, lab):
    rx = lab.receiver(lambda req, n: Reply(500, body=b"boom") if n == 1 else Reply(204, body=b""))
    dest, _ = hooks.create("CRM", rx.url)
    lab.sender(app)
    msg = hooks.enqueue(dest.id, "segment.entered", DATA)

    wait_for(lambda: message(app, msg.msg_id).status == "delivered", what="the retry")
    log = hooks.attempts(msg.id)
    assert [a.status_code for a in log] == [500, 204]
    assert log[0].error == "HTTP 500" and log[0].response == "boom"
    assert log[1].error is None and all(a.duration_ms > 0 for a in log)
    assert rx.ids() == [msg.msg_id, msg.msg_id]  # the same webhook-id on every attempt
    assert message(app, msg.msg_id).attempts == 2


def test_410_disables_the_endpoint_and_its_messages_wait_until_enabled(app, hooks, lab):
    gone = threading.Event()
    gone.set()
    rx = lab.receiver(lambda req, n: Reply(410) if gone.is_set() else Reply(200))
    dest, _ = hooks.create("CRM", rx.url)
    sender = WebhookSender(app, schedule=FAST)
    first = hooks.enqueue(dest.id, "segment.entered", DATA)
    assert sender.deliver_due() == 1

    dest = hooks.get(dest.id)
    assert dest.status == "disabled" and "410 Gone" in dest.disabled_reason
    second = hooks.enqueue(dest.id, "segment.exited", DATA)
    time.sleep(0.1)
    assert sender.deliver_due() == 0  # nothing goes to a disabled endpoint
    assert len(rx.requests) == 1
    assert statuses(app) == {"pending": 2}  # waiting, not lost

    gone.clear()
    hooks.enable(dest.id)
    assert sender.deliver_due() == 2
    assert statuses(app) == {"delivered": 2}
    assert Counter(rx.ids()) == {first.msg_id: 2, second.msg_id: 1}


def test_a_redirect_is_a_failure_and_is_not_followed(app, hooks, lab):
    rx = lab.receiver(
        lambda req, n: Reply(302, {"location": f"http://127.0.0.1:{rx.port}/elsewhere"})
    )
    dest, _ = hooks.create("CRM", rx.url)
    msg = hooks.enqueue(dest.id, "segment.entered", DATA)
    assert WebhookSender(app, schedule=FAST).deliver_due() == 1

    assert [r.path for r in rx.requests] == ["/hook"]
    (attempt,) = hooks.attempts(msg.id)
    assert attempt.status_code == 302 and "redirect (302)" in attempt.error
    assert "/elsewhere" in attempt.error
    row = message(app, msg.msg_id)
    assert row.status == "pending" and row.next_attempt_at > row.created_at


def test_a_timeout_is_a_failure(app, hooks, lab):
    rx = lab.receiver(lambda req, n: Reply(hold=3))
    dest, _ = hooks.create("CRM", rx.url)
    msg = hooks.enqueue(dest.id, "segment.entered", DATA)
    started = time.monotonic()
    assert WebhookSender(app, schedule=FAST, timeout=0.5).deliver_due() == 1
    assert time.monotonic() - started < 2.0

    (attempt,) = hooks.attempts(msg.id)
    assert attempt.error == "timed out after 0.5 s" and attempt.status_code is None
    assert 450 < attempt.duration_ms < 2000
    row = message(app, msg.msg_id)
    assert row.status == "pending" and row.attempts == 1


def test_a_slow_endpoint_does_not_delay_a_fast_one(app, hooks, lab):
    slow = lab.receiver(lambda req, n: Reply(hold=3))
    fast = lab.receiver()
    slow_dest, _ = hooks.create("slow", slow.url)
    fast_dest, _ = hooks.create("fast", fast.url)
    lab.sender(app, per_endpoint=2, poll=30)
    for _ in range(4):
        hooks.enqueue(slow_dest.id, "segment.entered", DATA)
    wait_for(lambda: len(slow.requests) == 2, what="the slow endpoint's two requests")

    started = time.monotonic()
    sent = [hooks.enqueue(fast_dest.id, "segment.entered", DATA).msg_id for _ in range(5)]
    wait_for(lambda: len(fast.requests) == 5, timeout=3, what="the fast endpoint")
    # About 50 ms on an idle machine; the bound leaves room for a loaded test run, and is
    # well inside the 3 s the slow endpoint holds its requests.
    assert time.monotonic() - started < 1.0
    assert sorted(fast.ids()) == sorted(sent)
    assert len(slow.requests) == 2 and not any(r.answered for r in slow.requests)


def test_an_enqueued_message_reaches_the_receiver_at_once(app, hooks, lab):
    rx = lab.receiver()
    dest, _ = hooks.create("CRM", rx.url)
    lab.sender(app, poll=30)  # no polling to hide behind: the enqueue wakes the sender
    for _ in range(3):
        started = time.monotonic()
        msg = hooks.enqueue(dest.id, "segment.entered", DATA)
        wait_for(lambda m=msg: m.msg_id in rx.ids(), timeout=5)
        assert time.monotonic() - started < 1.0  # the aim; about 30 ms on an idle machine


# -- exactly once -------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_receiver_down_for_a_while_gets_every_message_exactly_once(app, hooks, lab):
    port = _free_port()  # nothing listens there yet: connections are refused
    dest, _ = hooks.create("CRM", f"http://127.0.0.1:{port}/hook")
    sender = lab.sender(app, per_endpoint=4)
    sent = [hooks.enqueue(dest.id, "segment.entered", {"n": i}).msg_id for i in range(20)]

    def all_tried_twice():
        with app.session() as s:
            return s.scalar(sa.select(sa.func.min(WebhookMessage.attempts))) >= 2

    wait_for(all_tried_twice, what="two refused attempts of every message")
    with app.session() as s:
        errors = set(s.scalars(sa.select(WebhookAttempt.error)))
    assert all(e.startswith("cannot connect") for e in errors)

    rx = lab.receiver(port=port)
    wait_for(lambda: statuses(app) == {"delivered": 20}, what="every message delivered")
    time.sleep(0.3)  # time for a wrong second send to show
    assert Counter(rx.ids()) == dict.fromkeys(sent, 1)
    sender.stop()
    assert WebhookSender(app, schedule=FAST).deliver_due() == 0  # delivered means done
    assert len(rx.requests) == 20


@pytest.fixture(params=["sqlite", "postgres"])
def shared_catalog(request, tmp_path):
    settings = replace(duckdb_settings(tmp_path), webhook_allow=("127.0.0.1",))
    if request.param == "postgres":
        settings = replace(settings, database_url=request.getfixturevalue("postgres_database"))
    return settings


def test_two_senders_racing_over_one_catalog_never_send_a_message_twice(shared_catalog, lab):
    rx = lab.receiver(lambda req, n: Reply(hold=0.005))
    with Strata(shared_catalog) as a, Strata(shared_catalog) as b, Strata(shared_catalog) as c:
        hooks = Webhooks(a, a.workspace("shop", create=True))
        dests = [hooks.create(f"hook {i}", rx.url)[0] for i in range(3)]
        sent = [
            hooks.enqueue(d.id, "segment.entered", {"n": i}).msg_id
            for i in range(20)
            for d in dests
        ]
        # A claim holds: a message one sender claimed is not another's to take.
        first, _ = WebhookSender(a)._claim({}, None)
        again, _ = WebhookSender(b)._claim({}, None)
        assert first and not {j.id for j in first} & {j.id for j in again}
        with a.session() as s:  # give the claims back, as if those senders had crashed long ago
            s.execute(
                sa.update(WebhookMessage)
                .where(WebhookMessage.status == "delivering")
                .values(locked_until=utcnow() - dt.timedelta(seconds=1))
            )
            s.commit()

        lab.sender(a, per_endpoint=3)
        lab.sender(b, per_endpoint=3)
        passes = []
        third = threading.Thread(
            target=lambda: [passes.append(WebhookSender(c).deliver_due()) for _ in range(5)]
        )
        third.start()
        wait_for(lambda: statuses(a) == {"delivered": 60}, timeout=30, what="all delivered")
        third.join()
        lab.stop_senders()  # their connections close with the stores, not at collection
        with a.session() as s:
            answered = s.scalar(
                sa.select(sa.func.count()).where(WebhookAttempt.status_code.is_not(None))
            )
    assert Counter(rx.ids()) == dict.fromkeys(sent, 1)
    assert answered == 60  # besides connections the receiver dropped unread, if any


def test_a_crashed_senders_claim_expires_and_its_late_answer_changes_nothing(app, hooks, lab):
    rx = lab.receiver()
    dest, _ = hooks.create("CRM", rx.url)
    msg = hooks.enqueue(dest.id, "segment.entered", DATA)
    crashed = WebhookSender(app, schedule=FAST)
    (job,), _ = crashed._claim({}, None)  # claimed, then the process "dies"
    other = WebhookSender(app, schedule=FAST)
    assert other.deliver_due() == 0  # the claim holds while it lasts

    with app.session() as s:
        s.execute(sa.update(WebhookMessage).values(locked_until=utcnow() - dt.timedelta(seconds=1)))
        s.commit()
    assert other.deliver_due() == 1
    assert rx.ids() == [msg.msg_id]
    from strata.actions.webhooks import _Outcome

    crashed._record(job, _Outcome(utcnow(), error="HTTP 500"))  # a late, stale result
    row = message(app, msg.msg_id)
    assert row.status == "delivered" and row.attempts == 1


def test_stopping_mid_request_leaves_the_message_to_send_again(app, hooks, lab):
    rx = lab.receiver(lambda req, n: Reply(hold=3))
    dest, _ = hooks.create("CRM", rx.url)
    sender = lab.sender(app)
    msg = hooks.enqueue(dest.id, "segment.entered", DATA)
    wait_for(lambda: rx.requests, what="the request")
    started = time.monotonic()
    sender.stop(grace=0.1)
    assert time.monotonic() - started < 2
    (attempt,) = hooks.attempts(msg.id)
    assert attempt.error.startswith("interrupted")
    assert message(app, msg.msg_id).status == "pending"  # not lost
    rx.release.set()  # the receiver answers at once from now on
    assert WebhookSender(app, schedule=FAST).deliver_due() == 1
    assert message(app, msg.msg_id).status == "delivered"


def test_the_retry_schedule_spans_more_than_three_days():
    assert RETRY_SCHEDULE[0] == 0
    assert list(RETRY_SCHEDULE) == sorted(RETRY_SCHEDULE)
    assert sum(RETRY_SCHEDULE) >= 3 * 24 * 3600
    assert sum(RETRY_SCHEDULE) == 75 * 3600 + 35 * 60 + 5  # 75:35:05, as the specification
    sender = WebhookSender.__new__(WebhookSender)
    sender.schedule = RETRY_SCHEDULE
    for n in range(1, len(RETRY_SCHEDULE)):
        delays = {sender._delay(n, None) for _ in range(20)}
        assert all(RETRY_SCHEDULE[n] <= d <= RETRY_SCHEDULE[n] * 1.1 for d in delays)
        assert len(delays) > 1  # jittered
    assert sender._delay(1, 120.0) >= 120.0  # Retry-After is honoured


def test_the_last_failure_marks_the_message_failed(app, hooks, lab):
    rx = lab.receiver(lambda req, n: Reply(503))
    dest, _ = hooks.create("CRM", rx.url)
    msg = hooks.enqueue(dest.id, "segment.entered", DATA)
    lab.sender(app, schedule=(0, 0.02, 0.02))
    wait_for(lambda: message(app, msg.msg_id).status == "failed", what="retries used up")
    assert [a.status_code for a in hooks.attempts(msg.id)] == [503, 503, 503]
    assert message(app, msg.msg_id).next_attempt_at is None


# -- endpoints, filters, replay, connect-time guard ---------------------------------------------
def test_replay_sends_the_same_webhook_id_again(app, hooks, lab):
    rx = lab.receiver()
    dest, _ = hooks.create("CRM", rx.url)
    msg = hooks.enqueue(dest.id, "segment.entered", DATA)
    sender = WebhookSender(app, schedule=FAST)
    sender.deliver_due()
    replayed = hooks.replay(msg.msg_id)
    assert replayed.status == "pending" and replayed.attempts == 0
    assert sender.deliver_due() == 1
    assert rx.ids() == [msg.msg_id, msg.msg_id]
    assert rx.requests[0].body == rx.requests[1].body
    assert len(hooks.attempts(msg.id)) == 2 and message(app, msg.msg_id).status == "delivered"


def test_event_types_filter_what_an_endpoint_gets(app, hooks, lab):
    rx = lab.receiver()
    dest, _ = hooks.create("CRM", rx.url, event_types=["segment.entered"])
    assert hooks.enqueue(dest.id, "segment.exited", DATA) is None
    assert hooks.enqueue(dest.id, "segment.entered", DATA) is not None
    test = hooks.send_test(dest.id)  # a test goes whatever the filter
    WebhookSender(app, schedule=FAST).deliver_due()
    assert len(rx.requests) == 2 and test.msg_id in rx.ids()
    hooks.update(dest.id, event_types=None)
    assert hooks.enqueue(dest.id, "segment.exited", DATA) is not None
    with pytest.raises(InputError, match="event type"):
        hooks.enqueue(dest.id, "bad type!", DATA)


def test_endpoints_are_checked_when_saved(hooks):
    with pytest.raises(InputError, match=r"169\.254\.169\.254 is a cloud metadata address"):
        hooks.create("meta", "http://169.254.169.254/latest/meta-data/")
    with pytest.raises(InputError, match="ftp://"):
        hooks.create("ftp", "ftp://example.com/")
    hooks.create("CRM", "http://127.0.0.1:9/hook")  # allowed in this test's settings
    with pytest.raises(Conflict):
        hooks.create("CRM", "http://127.0.0.1:9/other")
    assert [d.name for d in hooks.list()] == ["CRM"]


def test_the_guard_also_holds_when_connecting(tmp_path, hook_settings, lab):
    """An endpoint saved while 127.0.0.1 was allowed is refused once it no longer is."""
    rx = lab.receiver()
    with Strata(hook_settings) as allowed:
        hooks = Webhooks(allowed, allowed.workspace("shop", create=True))
        dest, _ = hooks.create("CRM", rx.url)
        msg = hooks.enqueue(dest.id, "segment.entered", DATA)
    with Strata(replace(hook_settings, webhook_allow=())) as strict:
        assert WebhookSender(strict, schedule=FAST).deliver_due() == 1
        (attempt,) = Webhooks(strict, strict.workspace("shop")).attempts(msg.id)
    assert "127.0.0.1 is a loopback address" in attempt.error
    assert rx.requests == []


def test_deleting_an_endpoint_removes_its_messages(app, hooks):
    dest, _ = hooks.create("CRM", "http://127.0.0.1:9/hook")
    hooks.enqueue(dest.id, "segment.entered", DATA)
    hooks.delete(dest.id)
    with app.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(WebhookMessage)) == 0
        assert s.get(Destination, dest.id) is None


# -- the API ------------------------------------------------------------------------------------
@pytest.fixture
def api_server(tmp_path):
    from strata.api.app import ROUTERS
    from strata.api.routes import webhooks as routes

    server = ApiServer(api_settings(tmp_path, webhook_allow=("127.0.0.1",)))
    if routes not in ROUTERS:  # until the router is registered in strata.api.app
        server.app.include_router(routes.router, prefix="/api/v1")
    yield server
    server.close()


def test_the_api_shows_the_secret_once_logs_deliveries_and_replays(api_server, lab):
    rx = lab.receiver()
    owner = api_server.owner()
    ws = owner.post("/api/v1/workspaces", json={"name": "shop"}).json()["id"]
    base = f"/api/v1/workspaces/{ws}/webhooks"

    r = owner.post(base, json={"name": "CRM", "url": rx.url, "event_types": ["segment.entered"]})
    assert r.status_code == 201, r.text
    created = r.json()
    secret, hook_id = created["secret"], created["id"]
    assert secret.startswith("whsec_") and created["event_types"] == ["segment.entered"]
    listed = owner.get(base)
    got = owner.get(f"{base}/{hook_id}")
    assert listed.status_code == got.status_code == 200
    assert listed.json()["total"] == 1
    assert "whsec_" not in listed.text and "whsec_" not in got.text
    assert secret[6:20] not in listed.text + got.text

    r = owner.post(f"{base}/{hook_id}/test")
    assert r.status_code == 202, r.text
    msg = r.json()
    wait_for(lambda: msg["msg_id"] in rx.ids(), what="the test webhook")
    body = Webhook(secret).verify(rx.requests[0].body, rx.requests[0].headers)
    assert body["type"] == "webhook.test"

    page = wait_for(
        lambda: (
            (p := owner.get(f"{base}/{hook_id}/messages").json())["items"][0]["status"]
            == "delivered"
            and p
        ),
        what="the log to say delivered",
    )
    assert page["total"] == 1 and page["items"][0]["msg_id"] == msg["msg_id"]
    detail = owner.get(f"{base}/messages/{msg['id']}").json()
    assert detail["payload"]["type"] == "webhook.test"
    assert [a["status_code"] for a in detail["attempt_log"]] == [200]

    r = owner.post(f"{base}/messages/{msg['id']}/replay")
    assert r.status_code == 200, r.text
    wait_for(lambda: rx.ids().count(msg["msg_id"]) == 2, what="the replay")

    rotated = owner.post(f"{base}/{hook_id}/rotate-secret").json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != secret
    assert rotated["previous_secret_expires_at"]
    assert "whsec_" not in owner.get(f"{base}/{hook_id}").text

    viewer = api_server.user_with_role(ws, "viewer")
    assert viewer.get(f"{base}/{hook_id}/messages").status_code == 403
    assert viewer.get(f"{base}/messages/{msg['id']}").status_code == 403
    assert viewer.get(base).status_code == 403
    marketer = api_server.user_with_role(ws, "marketer")
    assert marketer.get(f"{base}/{hook_id}/messages").status_code == 200
    assert marketer.post(f"{base}/messages/{msg['id']}/replay").status_code == 200
    assert marketer.post(base, json={"name": "x", "url": rx.url}).status_code == 403

    bad = owner.post(base, json={"name": "meta", "url": "http://169.254.169.254/"})
    assert bad.status_code == 422 and "cloud metadata" in bad.json()["detail"]
    r = owner.patch(f"{base}/{hook_id}", json={"event_types": None})
    assert r.status_code == 200 and r.json()["event_types"] is None
    assert owner.delete(f"{base}/{hook_id}").status_code == 204
    assert owner.get(f"{base}/{hook_id}").status_code == 404


# -- the CLI ------------------------------------------------------------------------------------
def test_the_cli_adds_tests_delivers_logs_and_replays(hook_settings, lab):
    from strata.cli_webhooks import app as cli

    rx = lab.receiver()
    with Strata(hook_settings) as strata:
        strata.workspace("shop", create=True)
    env = {
        "STRATA_HOME": str(hook_settings.home),
        "STRATA_DATABASE_URL": hook_settings.database_url,
        "STRATA_WAREHOUSE_URL": hook_settings.warehouse_url,
        "STRATA_WEBHOOK_ALLOW": "127.0.0.1",
        "STRATA_WORKSPACE": "shop",
        "COLUMNS": "200",
    }
    runner = CliRunner()

    def run(*args: str):
        result = runner.invoke(cli, list(args), env=env)
        assert result.exit_code == 0, (args, result.output, result.exception)
        return result.output

    added = json.loads(run("add", "CRM", rx.url, "--event", "segment.entered", "--json"))
    secret = added["secret"]
    assert "CRM" in run("list") and secret not in run("list") + run("show", "CRM")
    assert "msg_" in run("test", "CRM")
    assert "1 delivery attempt" in run("deliver")
    Webhook(secret).verify(rx.requests[0].body, rx.requests[0].headers)
    log = json.loads(run("log", "CRM", "--json"))
    assert log["total"] == 1 and log["items"][0]["status"] == "delivered"
    msg_id = log["items"][0]["webhook_id"]
    assert "200" in run("attempts", msg_id)
    run("replay", msg_id)
    run("deliver")
    assert rx.ids() == [msg_id, msg_id]
    new = json.loads(run("rotate", "CRM", "--json"))["secret"]
    assert new != secret
    assert "Disabled" in run("disable", "CRM", "--reason", "maintenance")
    assert "maintenance" in run("show", "CRM")
    run("enable", "CRM")
    assert "Would remove" in run("remove", "CRM")
    run("remove", "CRM", "--yes")
    assert "no webhook endpoints" in run("list")
    refused = runner.invoke(cli, ["add", "x", "http://10.0.0.1/"], env=env)
    assert refused.exit_code != 0 and "private address" in str(refused.exception)


def test_the_docstring_examples_run():
    import doctest

    from strata.actions import signing, webhooks

    for module in (signing, webhooks):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__
