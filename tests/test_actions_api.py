"""Acting on segments through the real server: a live event makes a customer enter a
segment, an automation sends a signed webhook to a local receiver; campaigns over HTTP."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks.webhooks import Webhook

from strata.segments.engine import Segments
from strata.segments.nodes import SegmentSpec, parse_rule
from tests.conftest import ApiServer, api_settings


class Receiver:
    """A webhook receiver on 127.0.0.1: keeps each request's headers and body."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait(self, count: int, seconds: float = 15.0) -> list[tuple[dict[str, str], bytes]]:
        deadline = time.monotonic() + seconds
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return list(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def server(tmp_path):
    s = ApiServer(api_settings(tmp_path, webhook_allow=("127.0.0.1",)))
    yield s
    s.close()


def _workspace(server: ApiServer):
    owner = server.owner()
    ws_id = owner.post("/api/v1/workspaces", json={"name": "acts"}).json()["id"]
    key = owner.post(f"/api/v1/workspaces/{ws_id}/keys", json={"name": "k", "kind": "write"})
    sender = server.client(auth=(key.json()["key"], ""))
    assert sender.post("/v1/identify", json={"userId": "seed", "traits": {}}).is_success
    assert server.service.ingest.wait_idle(20)
    with server.service.writing() as app:
        Segments(app, app.workspace("acts")).save(
            SegmentSpec(
                name="signed-up", rule=parse_rule({"type": "performed", "event": "signed_up"})
            )
        )
        seg_id = Segments(app, app.workspace("acts")).get("signed-up").id
    return owner, ws_id, seg_id, sender


def test_a_live_event_reaches_the_receiver_as_a_signed_standard_webhook(server, receiver):
    owner, ws_id, seg_id, sender = _workspace(server)
    base = f"/api/v1/workspaces/{ws_id}"
    hook = owner.post(f"{base}/webhooks", json={"name": "crm", "url": receiver.url})
    assert hook.status_code == 201, hook.text
    secret = hook.json()["secret"]
    r = owner.post(
        f"{base}/automations",
        json={
            "name": "tell the crm",
            "segment_id": seg_id,
            "trigger": "enter",
            "action": {"kind": "webhook", "destination": hook.json()["id"]},
        },
    )
    assert r.status_code == 201, r.text
    automation = r.json()

    sent = time.monotonic()
    assert sender.post("/v1/track", json={"userId": "u1", "event": "Signed Up"}).is_success
    got = receiver.wait(1)
    took = time.monotonic() - sent
    assert len(got) == 1, f"no webhook after {took:.1f} s"
    headers, body = got[0]
    # An independent implementation of the spec accepts the signature.
    Webhook(secret).verify(body, headers)
    message = json.loads(body)
    assert message["type"] == "segment.entered"
    data = message["data"]
    assert data["customer"]["external_id"] == "u1"
    assert data["segment"] == {"id": seg_id, "name": "signed-up"}
    assert data["change"]["kind"] == "enter"
    assert data["automation"]["id"] == automation["id"]

    firings = owner.get(f"{base}/automations/{automation['id']}/firings").json()
    assert firings["total"] == 1
    firing = firings["items"][0]
    assert firing["status"] == "done" and headers["webhook-id"] in firing["outcome"]
    everything = owner.get(f"{base}/firings", params={"status": "done"}).json()
    assert [f["id"] for f in everything["items"]] == [firing["id"]]
    listed = owner.get(f"{base}/automations").json()["items"]
    assert listed[0]["firings"] == {"done": 1}
    # The same event again changes no membership, so nothing more is sent.
    assert sender.post("/v1/track", json={"userId": "u1", "event": "Signed Up"}).is_success
    assert server.service.ingest.wait_idle(20)
    time.sleep(0.5)
    assert len(receiver.received) == 1


def test_campaigns_over_http_with_roles(server):
    owner, ws_id, seg_id, sender = _workspace(server)
    base = f"/api/v1/workspaces/{ws_id}"
    for user in ("a", "b", "c"):
        sender.post("/v1/track", json={"userId": user, "event": "Signed Up"})
    assert server.service.ingest.wait_idle(20)
    viewer = server.user_with_role(ws_id, "viewer")
    body = {
        "name": "Welcome offer",
        "segment_id": seg_id,
        "action": {"kind": "tag", "tag": "welcomed"},
        "holdout_percent": 0,
        "goal_event": "order_completed",
    }
    assert viewer.post(f"{base}/campaigns", json=body).status_code == 403
    r = owner.post(f"{base}/campaigns", json=body)
    assert r.status_code == 201, r.text
    campaign = r.json()
    assert campaign["status"] == "draft" and campaign["segment"] == "signed-up"
    launched = owner.post(f"{base}/campaigns/{campaign['id']}/launch").json()
    assert launched["status"] == "running"

    def acted() -> dict:
        return viewer.get(f"{base}/campaigns/{campaign['id']}/results").json()["acted"]

    deadline = time.monotonic() + 15
    while acted().get("done", 0) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    results = viewer.get(f"{base}/campaigns/{campaign['id']}/results").json()
    assert results["acted"] == {"done": 3}
    assert results["treated"]["customers"] == 3 and results["holdout"]["customers"] == 0
    assert results["lift"] is None  # no holdout: nothing to compare with
    ended = owner.post(f"{base}/campaigns/{campaign['id']}/end").json()
    assert ended["status"] == "ended" and ended["results"]["treated"]["customers"] == 3
    again = owner.post(f"{base}/campaigns/{campaign['id']}/launch")
    assert again.status_code == 422 and "only a draft" in again.json()["detail"]
