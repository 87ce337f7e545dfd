"""Live event ingest through ``/v1/batch``: acknowledgements per second, their latency,
and the time from receipt to updated segment memberships.

Setup (outside the clock): a DuckDB warehouse in a temporary folder with a generated
business (default 20,000 customers, ~1 year of events), RFM run, and the example
segments (``examples/segments``) plus three segments live events move (page views in
the last day, a plan, three orders or more) saved, so memberships have work to do.

Then the real server (``uvicorn`` on the app factory, as ``strata serve`` runs it) starts
in a subprocess, and a load generator in a second process sends ``/v1/batch`` requests
(default 500 calls each) over keep-alive HTTP/1.1 connections at a target rate for a
number of seconds. The mix: 70% page views, 15% ``Product Added``, 5% ``Order Completed``
(with products), 10% identify (a plan and a custom trait), 90% from known customers and
10% from new anonymous visitors. Each call has a new ``messageId`` and the send time as
its ``timestamp``.

Measured: requests acknowledged (200) per second and events per second; acknowledgement
latency p50/p95/p99 (from the request's first byte to the answer's last); receipt-to-
membership latency p50/p95/p99, read from the server (``GET /api/v1/admin/ingest/stats``,
owner only), over the requests loaded during the run and the drain after it. Aims
(issue): >= 20,000 events/s, acknowledgement p99 <= 200 ms, membership p95 <= 1 s.

    python bench/ingest_bench.py --events-per-second 20000 --seconds 30 --customers 20000
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import json
import multiprocessing as mp
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson

import strata
from strata.accounts import Accounts
from strata.api.serve import wait_until_serving
from strata.config import Settings
from strata.context import Strata
from strata.demo import generate_and_load
from strata.segments.engine import Segments, run_rfm
from strata.segments.nodes import SegmentSpec, parse_rule

ROOT = Path(__file__).resolve().parent.parent
WORKSPACE = "bench"
PASSWORD = "correct horse battery staple"
AIM_EPS = 20_000
AIM_ACK_P99_MS = 200
AIM_MEMBERSHIP_P95_S = 1.0

LIVE_SEGMENTS = {
    "Visited today": {"type": "performed", "event": "page_view", "window": {"last_days": 1}},
    "Pro plan": {"type": "attribute", "attribute": "plan", "op": "eq", "value": "pro"},
    "Three orders or more": {"type": "trait", "trait": "total_orders", "op": "gte", "value": 3},
}

#: The server: the app ``strata serve`` runs (with its owner-only ingest stats route).
SERVER = """
import os, uvicorn
from strata.api.app import configure_logging, create_app
from strata.config import Settings

configure_logging("warning")
app = create_app(Settings.from_env())
uvicorn.run(app, host="127.0.0.1", port=int(os.environ["BENCH_PORT"]), log_level="warning",
            access_log=False)
"""


def setup(home: Path, customers: int) -> tuple[str, list[str]]:
    """The business, RFM and segments; returns a write key and the customers' ids."""
    settings = _settings(home)
    with Strata(settings) as app:
        started = time.perf_counter()
        report = generate_and_load(app, customers=customers, workspace=WORKSPACE)
        print(
            f"generated and loaded {customers:,} customers, {report['events_created']:,} "
            f"events in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        segs = Segments(app, WORKSPACE)
        run_rfm(segs)
        segs.apply(ROOT / "examples" / "segments")
        for name, rule in LIVE_SEGMENTS.items():
            segs.save(SegmentSpec(name=name, rule=parse_rule(rule)), source="bench")
        print(f"{len(segs.list())} segments saved and evaluated", flush=True)
        accounts = Accounts(app)
        owner, _ = accounts.ensure_owner(settings.owner_email, PASSWORD)
        ws = app.workspace(WORKSPACE)
        _, key = accounts.create_key(ws.id, "bench", "write", by=owner.id)
        ids = app.warehouse.table(ws.id, "customers").external_id.to_pyarrow().to_pylist()
    return key, ids


def _settings(home: Path) -> Settings:
    return Settings(
        home=home,
        database_url=f"sqlite:///{home / 'catalog.db'}",
        warehouse_url=f"duckdb://{home / 'warehouse.duckdb'}",
        owner_password=PASSWORD,
    )


def serve(home: Path, port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "STRATA_HOME": str(home),
        "STRATA_DATABASE_URL": f"sqlite:///{home / 'catalog.db'}",
        "STRATA_WAREHOUSE_URL": f"duckdb://{home / 'warehouse.duckdb'}",
        "STRATA_OWNER_PASSWORD": PASSWORD,
        "STRATA_COOKIE_SECURE": "false",
        "BENCH_PORT": str(port),
    }
    proc = subprocess.Popen([sys.executable, "-c", SERVER], env=env)
    if not wait_until_serving(f"http://127.0.0.1:{port}", proc, timeout=120):
        proc.kill()
        raise SystemExit("the server did not start")
    return proc


# -- the load generator (a process of its own) --------------------------------------------------
def _calls(rng: random.Random, ids: list[str], n: int) -> list[dict[str, Any]]:
    now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    calls = []
    for _ in range(n):
        known = rng.random() < 0.9
        who = {"userId": rng.choice(ids)} if known else {"anonymousId": uuid.uuid4().hex[:16]}
        base = {**who, "messageId": uuid.uuid4().hex, "timestamp": now}
        r = rng.random()
        if r < 0.70:
            path = f"/products/p{rng.randrange(200)}"
            calls.append({"type": "page", **base, "properties": {"path": path}})
        elif r < 0.85:
            product = {"product_id": f"P{rng.randrange(1, 200):04d}", "quantity": 1}
            calls.append({"type": "track", **base, "event": "Product Added", "properties": product})
        elif r < 0.90:
            price = round(rng.uniform(5, 120), 2)
            qty = rng.randint(1, 3)
            props = {
                "order_id": uuid.uuid4().hex[:12],
                "revenue": round(price * qty, 2),
                "currency": "USD",
                "products": [
                    {"product_id": f"P{rng.randrange(1, 200):04d}", "price": price, "quantity": qty}
                ],
            }
            calls.append({"type": "track", **base, "event": "Order Completed", "properties": props})
        else:
            traits = {"plan": rng.choice(["free", "pro", "business"]), "lastSeenPage": "home"}
            calls.append({"type": "identify", **base, "traits": traits})
    return calls


async def _connection(port, key, ids, schedule, results, seed, batch_size):
    rng = random.Random(seed)
    auth = base64.b64encode(f"{key}:".encode()).decode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        "POST /v1/batch HTTP/1.1\r\nHost: bench\r\nAuthorization: Basic {auth}\r\n"
        "Content-Type: application/json\r\nContent-Length: {n}\r\n\r\n"
    )
    try:
        while True:
            try:
                due = schedule.get_nowait()
            except asyncio.QueueEmpty:
                return
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            body = orjson.dumps({"batch": _calls(rng, ids, batch_size)})
            started = time.monotonic()
            writer.write(head.format(auth=auth, n=len(body)).encode() + body)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            done = time.monotonic()
            status = int(status_line.split()[1])
            results.append((started, done, status, max(0.0, started - due)))
    finally:
        writer.close()


def generate_load(port, key, ids, eps, seconds, batch_size, connections, out) -> None:
    """Send batches on a fixed schedule; put the per-request figures on ``out``."""

    async def main():
        per_second = eps / batch_size
        start = time.monotonic() + 0.2
        schedule: asyncio.Queue = asyncio.Queue()
        for i in range(int(per_second * seconds)):
            schedule.put_nowait(start + i / per_second)
        results: list = []
        await asyncio.gather(
            *[
                _connection(port, key, ids, schedule, results, seed, batch_size)
                for seed in range(connections)
            ]
        )
        return start, results

    start, results = asyncio.run(main())
    out.put({"start": start, "results": results})


# -- reading the figures ------------------------------------------------------------------------
def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def _stats(port: int) -> dict[str, Any]:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
        r = c.post("/api/v1/auth/login", json={"email": "owner@strata.local", "password": PASSWORD})
        r.raise_for_status()
        r = c.get(
            "/api/v1/admin/ingest/stats", headers={"Authorization": f"Bearer {r.json()['token']}"}
        )
        r.raise_for_status()
        return r.json()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events-per-second", type=int, default=AIM_EPS)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=500, help="calls per request")
    parser.add_argument("--connections", type=int, default=8, help="keep-alive connections")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "ingest.json"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="strata-ingest-bench-") as tmp:
        home = Path(tmp)
        key, ids = setup(home, args.customers)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = serve(home, port)
        try:
            load_before = os.getloadavg()
            out: mp.Queue = mp.get_context("spawn").Queue()
            gen = mp.get_context("spawn").Process(
                target=generate_load,
                args=(
                    port,
                    key,
                    ids,
                    args.events_per_second,
                    args.seconds,
                    args.batch_size,
                    args.connections,
                    out,
                ),
            )
            print(
                f"sending {args.events_per_second:,} events/s for {args.seconds:g} s "
                f"({args.batch_size} per request, {args.connections} connections)…",
                flush=True,
            )
            gen.start()
            sent = out.get(timeout=args.seconds * 10 + 120)
            gen.join(timeout=60)
            load_after = os.getloadavg()
            results = sent["results"]
            ok = [r for r in results if r[2] == 200]
            first = min(r[0] for r in results)
            last = max(r[1] for r in results)
            acked_events = len(ok) * args.batch_size
            # Drain: wait until every acknowledged request is loaded and its memberships done.
            drain_started = time.monotonic()
            while True:
                stats = _stats(port)
                if (
                    stats.get("batches_done", 0) >= len(ok)
                    or time.monotonic() - drain_started > 120
                ):
                    break
                time.sleep(0.25)
            drain_s = time.monotonic() - drain_started
        finally:
            server.terminate()
            server.wait(timeout=60)

    ack_ms = [(r[1] - r[0]) * 1000 for r in ok]
    late_ms = [r[3] * 1000 for r in results]
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    result = {
        "date": dt.date.today().isoformat(),
        "machine": machine,
        "code": _code_state(),
        "strata_from": str(Path(strata.__file__).parent),
        "command": " ".join(["python", *sys.argv]),
        "customers": args.customers,
        "target_events_per_second": args.events_per_second,
        "seconds": args.seconds,
        "batch_size": args.batch_size,
        "connections": args.connections,
        "requests": len(results),
        "acknowledged": len(ok),
        "refused": len(results) - len(ok),
        "events_per_second": round(acked_events / (last - first), 1),
        "ack_ms": {
            q: _round(_pct(ack_ms, p)) for q, p in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
        },
        "ack_ms_mean": _round(statistics.fmean(ack_ms)) if ack_ms else None,
        "send_behind_schedule_ms_p99": _round(_pct(late_ms, 0.99)),
        "membership_s": {q: stats.get(f"latency_{q}") for q in ("p50", "p95", "p99")},
        "membership_samples": stats.get("latencies"),
        "drain_s": round(drain_s, 2),
        "server": {k: v for k, v in stats.items() if k != "latency_samples"},
        "load_average": {"before": load_before, "after": load_after},
        "aims": {
            "events_per_second": AIM_EPS,
            "ack_p99_ms": AIM_ACK_P99_MS,
            "membership_p95_s": AIM_MEMBERSHIP_P95_S,
        },
    }
    print(json.dumps(result, indent=1, default=str))
    line = (
        f"{result['date']} {result['code']}: {result['events_per_second']:,.0f} events/s acked "
        f"(target {args.events_per_second:,}, {args.customers:,} customers, {args.seconds:g} s); "
        f"ack p50/p95/p99 {result['ack_ms']['p50']}/{result['ack_ms']['p95']}/"
        f"{result['ack_ms']['p99']} ms; membership p50/p95/p99 "
        f"{result['membership_s']['p50']}/{result['membership_s']['p95']}/"
        f"{result['membership_s']['p99']} s; {result['refused']} refused"
    )
    print(line)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1, default=str))
    with open(Path(args.out).with_suffix(".txt"), "a") as f:
        f.write(line + "\n")
    print(f"wrote {args.out} (and appended the line to {Path(args.out).with_suffix('.txt')})")


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _code_state() -> str:
    """The commit of this checkout, and whether its ``src/`` has uncommitted changes."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout

    changed = git("status", "--porcelain", "--", "src").strip()
    return git("rev-parse", "--short", "HEAD").strip() + (" + changes in src/" if changed else "")


if __name__ == "__main__":
    main()
