"""Live event ingest (``/v1/*``, the Segment tracking spec) through real HTTP."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import duckdb
import httpx
import pyarrow as pa

from strata.accounts import Accounts
from strata.api.serve import wait_until_serving
from strata.catalog.models import IngestBatch, utcnow
from strata.config import Settings
from strata.context import Strata
from strata.ingest.live import build_batch, depends_on_time, parse_calls, ranks_everyone
from strata.segments.engine import Segments
from strata.segments.nodes import SegmentSpec, parse_rule
from strata.warehouse import Batch
from strata.warehouse import schema as S
from tests.conftest import ApiServer


# -- helpers --------------------------------------------------------------------------------
def _workspace(api: ApiServer, name: str = "live") -> tuple[int, str, httpx.Client]:
    """A new workspace, its write key, and a client sending with that key."""
    owner = api.owner()
    r = owner.post("/api/v1/workspaces", json={"name": name})
    assert r.status_code == 201, r.text
    ws_id = r.json()["id"]
    r = owner.post(f"/api/v1/workspaces/{ws_id}/keys", json={"name": "site", "kind": "write"})
    assert r.status_code == 201, r.text
    key = r.json()["key"]
    return ws_id, key, api.client(auth=(key, ""))


def _send(client: httpx.Client, calls: list[dict], **extra) -> httpx.Response:
    return client.post("/v1/batch", json={"batch": calls, **extra})


def _settle(api: ApiServer) -> None:
    assert api.service.ingest.wait_idle(20), "the loader did not catch up"


def _rows(api: ApiServer, ws_id: int, table: str, **where) -> list[dict]:
    with api.service.reading() as app:
        t = app.warehouse.table(ws_id, table)
        for column, value in where.items():
            t = t.filter(t[column] == value)
        return t.to_pyarrow().to_pylist()


def _track(user: str, event: str, message_id: str | None = None, **properties) -> dict:
    call = {"type": "track", "userId": user, "event": event, "properties": properties}
    if message_id:
        call["messageId"] = message_id
    return call


def _members(api: ApiServer, ws_id: int, segment: str) -> dict[str, bool]:
    """external_id -> whether currently a member (False: joined once, left since)."""
    with api.service.reading() as app:
        seg = Segments(app, app.workspace("live")).get(segment)
        m = app.warehouse.table(ws_id, "memberships")
        c = app.warehouse.table(ws_id, "customers")
        rows = (
            m.filter(m.segment_id == seg.id)
            .join(c, "customer_id")
            .select("external_id", "left_at")
            .to_pyarrow()
            .to_pylist()
        )
    current: dict[str, bool] = {}
    for r in rows:
        current[r["external_id"]] = current.get(r["external_id"], False) or r["left_at"] is None
    return current


def _eventually(check, seconds: float = 8.0):
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def _save(api: ApiServer, name: str, rule: dict) -> None:
    with api.service.writing() as app:
        Segments(app, app.workspace("live")).save(
            SegmentSpec(name=name, rule=parse_rule(rule)), source="test"
        )


# -- what calls become ----------------------------------------------------------------------
def test_identify_creates_then_updates_a_customer_with_its_traits(api):
    ws_id, _, client = _workspace(api)
    traits = {
        "email": "ada@example.com",
        "firstName": "Ada",
        "lastName": "Lovelace",
        "address": {"country": "GB", "city": "London"},
        "company": {"employee_count": 120, "industry": "Software"},
        "birthday": "1815-12-10",
        "createdAt": "2024-05-01T10:00:00Z",
        "plan": "pro",
        "loyaltyTier": "gold",
        "vip": True,
        "score": 7,
    }
    r = client.post("/v1/identify", json={"userId": "u1", "traits": traits})
    assert r.status_code == 200, r.text
    assert r.json() == {"success": True}
    _settle(api)
    (row,) = _rows(api, ws_id, "customers", external_id="u1")
    assert row["email"] == "ada@example.com"
    assert row["name"] == "Ada Lovelace"
    assert (row["country"], row["city"]) == ("GB", "London")
    assert (row["company_size"], row["industry"], row["plan"]) == (120, "Software", "pro")
    assert str(row["birth_date"]) == "1815-12-10" and str(row["signup_date"]) == "2024-05-01"
    assert (row["loyalty_tier"], row["vip"], row["score"]) == ("gold", True, 7.0)

    # Two identifies in one batch: merged in order, the last value wins; null leaves it.
    r = _send(
        client,
        [
            {"type": "identify", "userId": "u1", "traits": {"plan": "business", "vip": False}},
            {"type": "identify", "userId": "u1", "traits": {"plan": "enterprise", "email": None}},
            {"type": "identify", "anonymousId": "anon-9", "traits": {"country": "FR"}},
        ],
    )
    assert r.status_code == 200, r.text
    _settle(api)
    (row,) = _rows(api, ws_id, "customers", external_id="u1")
    assert (row["plan"], row["vip"], row["email"]) == ("enterprise", False, "ada@example.com")
    # Without a userId the anonymousId is the customer's id.
    (anon,) = _rows(api, ws_id, "customers", external_id="anon-9")
    assert anon["country"] == "FR"


def test_track_page_and_orders_become_events_orders_and_refunds(api):
    ws_id, _, client = _workspace(api)
    calls = [
        _track("u1", "Product Added", "m1", product_id="p1"),
        {"type": "page", "userId": "u1", "name": "Home", "properties": {"path": "/"}},
        _track(
            "u1",
            "Order Completed",
            "m3",
            order_id="O-1",
            revenue=42.5,
            currency="eur",
            products=[
                {"product_id": "p1", "name": "Mug", "price": 10, "quantity": 2},
                {"sku": "p2", "name": "Tea", "price": 22.5},
            ],
        ),
        _track("u1", "Order Refunded", "m4", order_id="O-1", total=10),
        {"type": "screen", "anonymousId": "a1", "name": "Settings"},
        {"type": "group", "userId": "u1", "groupId": "g1"},
        {"type": "alias", "userId": "u1", "previousId": "a1"},
    ]
    r = _send(client, calls)
    assert r.status_code == 200, r.text
    _settle(api)
    events = {e["event_key"]: e for e in _rows(api, ws_id, "events")}
    assert events["seg:m1"]["event_type"] == "product_added"
    order = events["seg:m3"]
    assert (order["event_type"], order["revenue"], order["currency"], order["order_id"]) == (
        "order",
        42.5,
        "EUR",
        "O-1",
    )
    refund = events["seg:m4"]
    assert (refund["event_type"], refund["revenue"]) == ("refund", -10.0)
    types = sorted(e["event_type"] for e in events.values())
    assert types == ["order", "page_view", "product_added", "refund", "screen_view"]
    page = next(e for e in events.values() if e["event_type"] == "page_view")
    assert json.loads(page["properties"]) == {"path": "/", "name": "Home"}
    items = _rows(api, ws_id, "order_items")
    assert sorted(
        (i["line_no"], i["product_id"], i["quantity"], i["unit_price"]) for i in items
    ) == [
        (0, "p1", 2.0, 10.0),
        (1, "p2", 1.0, 22.5),
    ]
    assert api.service.ingest.stats()["other_calls"] == 2


def test_a_message_sent_twice_is_stored_once(api):
    ws_id, _, client = _workspace(api)
    calls = [_track("u1", "Viewed", f"dup-{i}") for i in range(5)]
    calls += [_track("u1", "Viewed", "dup-0"), _track("u2", "Viewed", "dup-1")]  # inside one batch
    for _ in range(2):  # and the whole batch again
        assert _send(client, calls).status_code == 200
    # Calls without a messageId get one on receipt: two equal calls are two events.
    for _ in range(2):
        assert (
            client.post("/v1/track", json={"userId": "u3", "event": "Clicked"}).status_code == 200
        )
    _settle(api)
    keys = [e["event_key"] for e in _rows(api, ws_id, "events")]
    assert len(keys) == len(set(keys)) == 7
    assert sorted(k for k in keys if k.startswith("seg:dup-")) == [f"seg:dup-{i}" for i in range(5)]


def test_timestamps_are_utc_corrected_for_clock_skew_and_never_after_receipt():
    received = utcnow()
    calls = [
        {"type": "track", "userId": "u", "event": "a", "timestamp": "2024-01-01T12:00:00+02:00"},
        {
            "type": "track",
            "userId": "u",
            "event": "b",
            "timestamp": "2024-01-01T10:00:00Z",
            "sentAt": "2024-01-01T10:00:05Z",
        },
        {"type": "track", "userId": "u", "event": "c", "timestamp": "2999-01-01T00:00:00Z"},
        {"type": "track", "userId": "u", "event": "d"},
    ]
    out = parse_calls(calls, received)
    assert out[0]["timestamp"] == "2024-01-01T10:00:00.000000"
    b = dt.datetime(2024, 1, 1, 10, 0) + (received - dt.datetime(2024, 1, 1, 10, 0, 5))
    assert out[1]["timestamp"] == min(b, received).isoformat(timespec="microseconds")
    assert out[2]["timestamp"] == out[3]["timestamp"] == received.isoformat(timespec="microseconds")


# -- what is refused ------------------------------------------------------------------------
def test_bad_requests_answer_400_413_or_401_with_a_reason(api):
    ws_id, key, client = _workspace(api)
    big = _track("u1", "Big", note="x" * 40_000)
    r = _send(client, [_track("u1", "Small"), big])
    assert r.status_code == 413 and "batch[1]" in r.json()["detail"], r.text
    r = client.post("/v1/track", json=big)
    assert r.status_code == 413, r.text
    many = [_track("u1", "Filler", note="y" * 20_000) for _ in range(30)]  # ~600 KB
    r = _send(client, many)
    assert r.status_code == 413 and "limit" in r.json()["detail"], r.text
    r = client.post(
        "/v1/batch", content=b'{"batch": [', headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and "not valid JSON" in r.json()["detail"], r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    r = _send(client, [_track("u1", "Fine"), {"type": "track", "event": "Nobody"}])
    assert r.status_code == 400, r.text
    assert r.json()["detail"].startswith("batch[1]") and "anonymousId" in r.json()["detail"]
    r = _send(client, [{"type": "track", "userId": "u1"}])
    assert r.status_code == 400 and r.json()["detail"].startswith("batch[0].event"), r.text
    r = _send(client, [{"type": "shout", "userId": "u1"}])
    assert r.status_code == 400 and "unknown type 'shout'" in r.json()["detail"], r.text
    r = client.post("/v1/batch", json={"calls": []})
    assert r.status_code == 400, r.text

    owner = api.owner()
    r = owner.post(f"/api/v1/workspaces/{ws_id}/keys", json={"name": "web", "kind": "read"})
    read_key = r.json()["key"]
    ok = {"batch": [_track("u1", "Fine")]}
    for auth in ((read_key, ""), ("sk_write_wrong", ""), None):
        r = api.client(auth=auth).post("/v1/batch", json=ok)
        assert r.status_code == 401, (auth, r.text)
    bearer = api.client(key)  # the token form of the same key
    assert bearer.post("/v1/batch", json=ok).status_code == 200
    _settle(api)
    # Nothing of the refused requests was stored.
    assert {e["event_type"] for e in _rows(api, ws_id, "events")} == {"fine"}


def test_gzip_bodies_are_accepted_and_a_gzip_bomb_is_refused_without_inflating(api):
    ws_id, _, client = _workspace(api)
    body = httpx.Request("POST", "/", json={"batch": [_track("u1", "Zipped", "z1")]}).read()
    headers = {"content-encoding": "gzip", "content-type": "application/json"}
    r = client.post("/v1/batch", content=gzip.compress(body), headers=headers)
    assert r.status_code == 200, r.text
    _settle(api)
    assert [e["event_key"] for e in _rows(api, ws_id, "events")] == ["seg:z1"]

    bomb = gzip.compress(b"0" * 50_000_000, compresslevel=9)
    assert len(bomb) < 100_000
    started = time.perf_counter()
    r = client.post("/v1/batch", content=bomb, headers=headers)
    assert r.status_code == 413, r.text
    assert "inflates past" in r.json()["detail"]
    assert time.perf_counter() - started < 2.0
    r = client.post("/v1/batch", content=gzip.compress(body)[:-10], headers=headers)
    assert r.status_code == 400, r.text


# -- memberships ----------------------------------------------------------------------------
def test_memberships_follow_live_events_and_trait_changes(api):
    ws_id, _, client = _workspace(api)
    assert _send(client, [{"type": "identify", "userId": "seed"}]).status_code == 200
    _settle(api)
    _save(api, "signed-up", {"type": "performed", "event": "signed_up"})
    _save(api, "pro", {"type": "attribute", "attribute": "plan", "op": "eq", "value": "pro"})

    r = _send(
        client,
        [
            _track("u1", "Signed Up"),
            {"type": "identify", "userId": "u2", "traits": {"plan": "pro"}},
        ],
    )
    assert r.status_code == 200
    assert _eventually(lambda: _members(api, ws_id, "signed-up").get("u1")), "u1 did not join"
    assert _eventually(lambda: _members(api, ws_id, "pro").get("u2")), "u2 did not join"

    assert client.post("/v1/identify", json={"userId": "u2", "traits": {"plan": "free"}}).is_success
    assert _eventually(lambda: _members(api, ws_id, "pro") == {"u2": False}), "u2 did not leave"
    assert _members(api, ws_id, "signed-up") == {"u1": True}
    assert all(0 <= s < 5 for s in api.service.ingest.latencies())


def test_the_schedule_refreshes_segments_that_time_moves_and_only_those(api):
    ws_id, _, client = _workspace(api)
    assert _send(client, [{"type": "identify", "userId": "u1"}]).status_code == 200
    _settle(api)
    _save(
        api, "recent-visitors", {"type": "performed", "event": "visit", "window": {"last_days": 7}}
    )
    _save(api, "visitors", {"type": "performed", "event": "visit"})
    # An event that reaches the warehouse behind the live path's back (an import, say):
    # only a refresh can notice it.
    now = pa.scalar(time.time_ns() // 1000 - 60_000_000, pa.timestamp("us"))
    events = pa.table(
        {
            "external_id": ["u1"],
            "event_type": ["visit"],
            "timestamp": pa.array([now]),
            "event_key": ["backdoor:1"],
        }
    )
    with api.service.writing() as app:
        app.warehouse.load(ws_id, Batch(customers=pa.table({"external_id": ["u1"]}), events=events))
    assert _members(api, ws_id, "recent-visitors") == {}
    api.service.ingest.time_refresh_seconds = 0.2
    assert _eventually(lambda: _members(api, ws_id, "recent-visitors") == {"u1": True})
    # The loader counts the refresh just after storing it: wait for the count too.
    assert _eventually(lambda: api.service.ingest.stats().get("time_refreshes", 0) >= 1)
    assert _members(api, ws_id, "visitors") == {}  # nothing about it depends on time


def test_which_rules_the_schedule_refreshes():
    def rule(data):
        return parse_rule(data)

    timed = [
        {"type": "performed", "event": "order", "window": {"last_days": 30}},
        {"type": "not_performed", "event": "order", "window": {"days_ago": [0, 45]}},
        {
            "type": "attribute",
            "attribute": "birth_date",
            "op": "within_next_days",
            "value": 7,
            "yearly": True,
        },
        {"type": "trait", "trait": "days_since_last_order", "op": "gt", "value": 90},
        {
            "type": "not",
            "condition": {
                "type": "attribute",
                "attribute": "signup_date",
                "op": "more_than_days_ago",
                "value": 30,
            },
        },
    ]
    for data in timed:
        assert depends_on_time(rule(data), {}), data
    untimed = [
        {"type": "performed", "event": "order"},
        {"type": "attribute", "attribute": "plan", "op": "eq", "value": "pro"},
        {
            "type": "aggregate",
            "event": "order",
            "fn": "sum",
            "op": "gt",
            "value": 5,
            "window": {"dates": ["2024-01-01", "2024-02-01"]},
        },
    ]
    for data in untimed:
        assert not depends_on_time(rule(data), {}), data
    assert ranks_everyone(
        rule({"type": "trait", "trait": "rfm_segment", "op": "eq", "value": "Champions"}), {}
    )
    assert ranks_everyone(
        rule({"type": "prediction", "prediction": "churn", "top_percent": 10}), {}
    )
    assert not ranks_everyone(
        rule({"type": "prediction", "prediction": "churn", "op": "gt", "value": 0.5}), {}
    )


def test_live_traits_add_at_most_the_allowed_number_of_columns():
    msgs = parse_calls(
        [
            {"type": "identify", "userId": "u", "traits": {f"t{i}": i for i in range(8)}},
            {"type": "identify", "userId": "u", "traits": {"t0": "seven", "nested": {"a": 1}}},
        ],
        utcnow(),
    )
    built = build_batch(msgs, S.CUSTOMERS, live_columns=["old_1", "old_2"], max_columns=5)
    assert sorted(built.new_columns) == ["t0", "t1", "t2"]
    assert sum(built.ignored_columns.values()) == 5
    # t0 became a number column from its first value; "seven" is not one, so 0 stays.
    assert built.batch.customers.column("t0").to_pylist() == [0.0]


def test_a_batch_that_cannot_load_is_moved_aside_and_the_queue_goes_on(api, tmp_path, caplog):
    ws_id, _, client = _workspace(api)
    api.service.ingest.backoff = 0.05
    with api.service.app.session() as s:  # what validation would never let through
        s.add(IngestBatch(workspace_id=ws_id, payload=b'[{"type": "track"}]', events=1))
        s.commit()
    assert _send(client, [_track("u1", "After", "after-1")]).status_code == 200
    _settle(api)
    assert [e["event_key"] for e in _rows(api, ws_id, "events")] == ["seg:after-1"]
    (moved,) = (tmp_path / "ingest-dead-letter").iterdir()
    assert json.loads(moved.read_text())["messages"] == [{"type": "track"}]
    assert api.service.ingest.stats()["dead_lettered"] == 1
    assert any(r.levelname == "ERROR" and "moved to" in r.getMessage() for r in caplog.records)


# -- durability -----------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(home: Path, port: int, **env: str) -> subprocess.Popen:
    code = (
        "import uvicorn; uvicorn.run('strata.api.serve:app_from_env', factory=True, "
        f"host='127.0.0.1', port={port}, log_level='warning')"
    )
    environ = {
        **os.environ,
        "STRATA_HOME": str(home),
        "STRATA_DATABASE_URL": f"sqlite:///{home / 'catalog.db'}",
        "STRATA_WAREHOUSE_URL": f"duckdb://{home / 'warehouse.duckdb'}",
        "STRATA_OWNER_PASSWORD": "correct horse battery staple",
        "STRATA_COOKIE_SECURE": "false",
        "STRATA_LOG_LEVEL": "warning",
        **env,
    }
    log = open(home / f"server-{port}.log", "ab")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen([sys.executable, "-c", code], env=environ, stdout=log, stderr=log)
    proc.log = log  # type: ignore[attr-defined]
    if not wait_until_serving(f"http://127.0.0.1:{port}", proc):
        raise AssertionError((home / f"server-{port}.log").read_text())
    return proc


def _end(proc: subprocess.Popen, sig: int) -> None:
    proc.send_signal(sig)
    proc.wait(timeout=60)
    proc.log.close()  # type: ignore[attr-defined]


def test_a_server_killed_during_a_load_loses_no_acknowledged_event(tmp_path):
    settings = Settings(
        home=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'catalog.db'}",
        warehouse_url=f"duckdb://{tmp_path / 'warehouse.duckdb'}",
    )
    with Strata(settings) as app:
        accounts = Accounts(app)
        owner, _ = accounts.ensure_owner("owner@example.com", "correct horse battery staple")
        ws = accounts.create_workspace(owner, "live")
        _, key = accounts.create_key(ws.id, "site", "write", by=owner.id)

    marker = tmp_path / "paused"
    port = _free_port()
    # The first load stops inside its warehouse transaction until the process is killed.
    server = _serve(tmp_path, port, STRATA_TEST_PAUSE_IN_LOAD=f"events:{marker}")
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(n: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", auth=(key, ""), timeout=10) as c:
            i = 0
            while not stop.is_set():
                ids = [f"k{n}-{i}-{j}" for j in range(50)]
                calls = [_track(f"u{j % 7}", "Tick", m) for j, m in enumerate(ids)]
                calls.append(_track("u0", "Tick", ids[0]))  # a repeat inside the batch
                try:
                    r = c.post("/v1/batch", json={"batch": calls})
                except httpx.TransportError:
                    return
                if r.status_code == 200:
                    with lock:
                        acked.extend(ids)
                i += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    try:
        assert _eventually(marker.exists, 20), "the loader never started a load"
        time.sleep(0.5)  # requests keep arriving while the load hangs
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)
        server.log.close()
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert len(acked) > 200

    server = _serve(tmp_path, port)
    try:
        db = sqlite3.connect(tmp_path / "catalog.db")
        try:
            queued = lambda: db.execute("SELECT count(*) FROM ingest_batches").fetchone()[0]  # noqa: E731
            assert _eventually(lambda: queued() == 0, 30), "the queue did not drain"
        finally:
            db.close()
    finally:
        _end(server, signal.SIGTERM)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        counts = dict(
            con.execute(
                f"SELECT event_key, count(*) FROM ws_{ws.id}.events GROUP BY event_key"
            ).fetchall()
        )
    missing = [m for m in acked if counts.get("seg:" + m) != 1]
    assert not missing, f"{len(missing)} acknowledged events lost or doubled, e.g. {missing[:3]}"


def test_every_route_of_the_spec_answers(api):
    _, _, client = _workspace(api)
    for kind, body in (
        ("identify", {"userId": "u1", "traits": {}}),
        ("track", {"anonymousId": "a1", "event": "x"}),
        ("page", {"userId": "u1"}),
        ("screen", {"userId": "u1"}),
        ("group", {"userId": "u1", "groupId": "g"}),
        ("alias", {"userId": "u1", "previousId": "a1"}),
    ):
        r = client.post(f"/v1/{kind}", json={**body, "messageId": uuid.uuid4().hex})
        assert r.status_code == 200, (kind, r.text)
    _settle(api)


def test_one_process_loads_and_another_takes_over_when_it_stops(duck_app):
    """Server processes (``--workers``) share one queue; one of them at a time loads it."""
    from strata.errors import NotFound
    from strata.ingest import live

    ws = duck_app.workspace("shop", create=True)
    lock = threading.RLock()
    first = live.LiveIngest(duck_app, write_lock=lock)
    second = live.LiveIngest(duck_app, write_lock=lock)
    old_retry, live.LOCK_RETRY = live.LOCK_RETRY, 0.05
    try:
        first.start()
        deadline = time.monotonic() + 10
        while not first.is_loader:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        second.start()
        time.sleep(0.3)
        assert not second.is_loader  # waiting for the lock

        def send(ingest, user):
            calls = [{"type": "track", "userId": user, "event": "Signed Up", "messageId": user}]
            ingest.accept(ws.id, parse_calls(calls, utcnow()))

        def stored() -> set[str]:
            try:
                c = duck_app.warehouse.table(ws.id, "customers")
            except NotFound:
                return set()
            return set(c.external_id.to_pyarrow().to_pylist())

        def until_stored(expected: set[str]) -> None:
            deadline = time.monotonic() + 10
            while stored() != expected:
                assert time.monotonic() < deadline, stored()
                time.sleep(0.02)

        send(second, "via-second")  # accepted by one process, loaded by the other
        until_stored({"via-second"})
        first.stop()
        deadline = time.monotonic() + 10
        while not second.is_loader:
            assert time.monotonic() < deadline, "nobody took over loading"
            time.sleep(0.01)
        send(second, "after-takeover")
        until_stored({"via-second", "after-takeover"})
    finally:
        live.LOCK_RETRY = old_retry
        first.stop()
        second.stop()
