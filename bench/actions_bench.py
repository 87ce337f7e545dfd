"""From a segment entry to a webhook at a local receiver: how long it takes.

Setup (outside the clock): a DuckDB warehouse in a temporary folder with a generated
business (default 20,000 customers), two rule segments (``signed-up``: performed
``signed_up``; ``pro``: plan is pro), a webhook endpoint pointing at a receiver on
127.0.0.1 (a ``ThreadingHTTPServer`` in this process that notes when each delivery
arrives), and an ``enter`` automation sending a webhook on each segment. The server is
the real one (the app factory under uvicorn, as ``strata serve`` runs it) on a thread of
this process, so the same clock times both ends.

Two paths, ``--rounds`` entries each, one at a time:

- **ingest**: ``POST /v1/track`` of ``Signed Up`` for a new user; measured from the
  request to the webhook naming that user at the receiver;
- **refresh**: a customer with plan ``pro`` is loaded into the warehouse (outside the
  clock), then ``Segments.refresh(["pro"])`` runs; measured from the end of the refresh
  (and from its start) to the webhook at the receiver.

Aim (issue 7): an enter event reaches the receiver within 1 s of the refresh or ingest
that caused it.

Then, in bulk (``--bulk`` customers, default 10,000, entering a static list at once):
the time to record their firings, to act on them (one webhook each queued), and until
the receiver has them all.

    python bench/actions_bench.py --customers 20000 --rounds 30
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pyarrow as pa
import uvicorn

import strata
from strata.accounts import Accounts
from strata.actions.automations import Automations
from strata.actions.webhooks import Webhooks
from strata.api import create_app
from strata.config import Settings
from strata.demo import generate_and_load
from strata.segments.engine import Segments
from strata.segments.nodes import SegmentSpec, parse_rule
from strata.warehouse import Batch

ROOT = Path(__file__).resolve().parent.parent
WORKSPACE = "bench"
AIM_SECONDS = 1.0
SEGMENTS = {
    "signed-up": {"type": "performed", "event": "signed_up"},
    "pro": {"type": "attribute", "attribute": "plan", "op": "eq", "value": "pro"},
}


class Receiver:
    """A local webhook receiver: external id -> arrival time (``time.time()``)."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.event = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                at = time.time()
                self.send_response(204)
                self.end_headers()
                data = json.loads(body)["data"]
                with receiver.event:
                    receiver.arrived[data["customer"]["external_id"]] = at
                    receiver.event.notify_all()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, external_id: str, timeout: float = 30.0) -> float | None:
        deadline = time.monotonic() + timeout
        with self.event:
            while external_id not in self.arrived:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.event.wait(left)
            return self.arrived[external_id]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(statistics.median(values), 4),
        "p95": round(_pct(values, 0.95), 4),
        "max": round(max(values), 4),
    }


def _bulk(svc, ws, receiver: Receiver, destination_id: int, n: int) -> dict[str, float]:
    """``n`` customers enter a static list with a webhook automation: time each stage."""
    with svc.writing() as app:
        customers = app.warehouse.table(ws.id, "customers")
        ids = customers.order_by("customer_id").limit(n).external_id.to_pyarrow().to_pylist()
        segs = Segments(app, ws)
        segs.save_static("bulk", ids[:1])
        Automations(app, ws).create(
            "hook bulk", "bulk", "enter", {"kind": "webhook", "destination": destination_id}
        )
        started = time.time()
        segs.save_static("bulk", ids, mode="replace")
        recorded = time.time()
    while not all(i in receiver.arrived for i in ids[1:]):
        time.sleep(0.05)
        if time.time() - recorded > 600:
            break
    done = time.time()
    got = sum(i in receiver.arrived for i in ids[1:])
    return {
        "customers": n - 1,
        "record_firings_s": round(recorded - started, 3),
        "until_all_received_s": round(done - started, 3),
        "received": got,
        "webhooks_per_s": round(got / (done - recorded), 1) if done > recorded else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--bulk", type=int, default=10_000, help="customers entering at once")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "actions.json"))
    args = parser.parse_args()

    receiver = Receiver()
    with tempfile.TemporaryDirectory(prefix="strata-actions-bench-") as tmp:
        home = Path(tmp)
        settings = Settings(
            home=home,
            database_url=f"sqlite:///{home / 'catalog.db'}",
            warehouse_url=f"duckdb://{home / 'warehouse.duckdb'}",
            cookie_secure=False,
            webhook_allow=("127.0.0.1",),
        )
        api = create_app(settings)
        svc = api.state.service
        with svc.writing() as app:
            generate_and_load(app, customers=args.customers, workspace=WORKSPACE)
            ws = app.workspace(WORKSPACE)
            segs = Segments(app, ws)
            for name, rule in SEGMENTS.items():
                segs.save(SegmentSpec(name=name, rule=parse_rule(rule)), source="bench")
            dest, _secret = Webhooks(app, ws).create("receiver", receiver.url)
            for name in SEGMENTS:
                Automations(app, ws).create(
                    f"hook {name}", name, "enter", {"kind": "webhook", "destination": dest.id}
                )
            owner, _ = Accounts(app).ensure_owner(settings.owner_email, "bench password 1")
            _, key = Accounts(app).create_key(ws.id, "bench", "write", by=owner.id)
        port = _free_port()
        server = uvicorn.Server(
            uvicorn.Config(api, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.01)
        ingest, refresh_end, refresh_start = [], [], []
        lost = 0
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", auth=(key, "")) as client:
                for i in range(args.rounds):
                    user = f"bench-ingest-{i}"
                    sent = time.time()
                    r = client.post("/v1/track", json={"userId": user, "event": "Signed Up"})
                    r.raise_for_status()
                    arrived = receiver.wait_for(user)
                    if arrived is None:
                        lost += 1
                    else:
                        ingest.append(arrived - sent)
                    time.sleep(0.1)
            for i in range(args.rounds):
                user = f"bench-refresh-{i}"
                customers = pa.table({"external_id": [user], "plan": ["pro"]})
                with svc.writing() as app:
                    app.warehouse.load(ws.id, Batch(customers=customers))
                    started = time.time()
                    Segments(app, ws).refresh(["pro"])
                    ended = time.time()
                arrived = receiver.wait_for(user)
                if arrived is None:
                    lost += 1
                else:
                    refresh_end.append(arrived - ended)
                    refresh_start.append(arrived - started)
                time.sleep(0.1)
            bulk = _bulk(svc, ws, receiver, dest.id, args.bulk)
        finally:
            server.should_exit = True
            thread.join(timeout=30)
            receiver.close()

    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "strata": strata.__version__,
        "customers": args.customers,
        "rounds": args.rounds,
        "lost": lost,
        "ingest_to_webhook_s": _summary(ingest),
        "refresh_end_to_webhook_s": _summary(refresh_end),
        "refresh_start_to_webhook_s": _summary(refresh_start),
        "aim_s": AIM_SECONDS,
        "bulk": bulk,
    }
    met = max(result["ingest_to_webhook_s"]["p95"], result["refresh_end_to_webhook_s"]["p95"])
    result["aim_met_at_p95"] = met <= AIM_SECONDS
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
