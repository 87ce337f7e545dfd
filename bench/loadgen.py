"""An open-loop HTTP/1.1 load generator: fixed request rates, latency from the schedule.

Request ``i`` of a step is due at ``start + i / rate`` whatever the answers so far, and
its latency is counted from that time, not from when it was sent: when the server (or
this client) falls behind, the queueing shows in the figures instead of being hidden
(no coordinated omission). Requests go over ``connections`` keep-alive connections,
raw HTTP/1.1 on ``asyncio.open_connection`` (uvloop when installed), so the client
costs a few tens of microseconds a request.

Run it in a process of its own (the benches do), so it does not share an interpreter
with the server:

    python bench/loadgen.py --url http://127.0.0.1:8000 --paths paths.txt \\
        --header "Authorization: Bearer KEY" --rates 250,500,1000 --duration 20

With ``--sweep`` every path is first requested once (to fill a cache). Each step
prints one JSON line: ``rate``, ``sent``, ``ok``, ``statuses``, ``errors``,
``achieved`` (answers a second), ``p50_ms``, ``p95_ms``, ``p99_ms``, ``max_ms`` and the
tally of ``--count-header`` values (e.g. cache hits).

From Python (e.g. an ingest bench posting JSON):

    requests = [build_request("POST", "/v1/batch", "127.0.0.1:8000", headers, body)]
    step = asyncio.run(run_step("127.0.0.1", 8000, requests, rate=500, duration=20))
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from time import perf_counter
from urllib.parse import urlsplit


def build_request(
    method: str,
    path: str,
    host: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> bytes:
    """One HTTP/1.1 request as bytes, for keep-alive connections."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or method in {"POST", "PUT", "PATCH"}:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass
class Step:
    rate: float
    duration: float
    sent: int = 0
    ok: int = 0
    errors: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    counted: dict[str, int] = field(default_factory=dict)
    achieved: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile ``q`` (0-100) of already sorted values."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


async def _answer(reader: asyncio.StreamReader, count_header: bytes | None):
    """Status and the ``count_header`` value of one response (its body is skipped)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    counted = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif count_header is not None and name == count_header:
            counted = value.strip().decode()
    if length:
        await reader.readexactly(length)
    return status, counted


async def run_step(
    host: str,
    port: int,
    requests: Sequence[bytes],
    *,
    rate: float,
    duration: float,
    connections: int = 64,
    count_header: str | None = None,
    seed: int = 1,
    timeout: float = 10.0,
) -> Step:
    """Send random ``requests`` at ``rate`` a second for ``duration`` seconds."""
    rng = random.Random(seed)
    total = int(rate * duration)
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    counted: Counter[str] = Counter()
    step = Step(rate=rate, duration=duration)
    header = count_header.lower().encode() if count_header else None
    last_answer = 0.0

    async def worker() -> None:
        nonlocal last_answer
        conn = None
        while True:
            item = await queue.get()
            if item is None:
                break
            due, request = item
            try:
                if conn is None:
                    conn = await asyncio.open_connection(host, port)
                reader, writer = conn
                writer.write(request)
                status, value = await asyncio.wait_for(_answer(reader, header), timeout)
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
                step.errors += 1
                if conn is not None:
                    conn[1].close()
                conn = None
                continue
            now = perf_counter()
            last_answer = now
            latencies.append(now - due)
            statuses[str(status)] += 1
            if value is not None:
                counted[value] += 1
        if conn is not None:
            conn[1].close()
            await conn[1].wait_closed()

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    # Latencies are read from perf_counter: uvloop's loop.time() has millisecond steps.
    start = perf_counter() + 0.05
    for i in range(total):
        due = start + i / rate
        wait = due - perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        queue.put_nowait((due, requests[rng.randrange(len(requests))]))
        step.sent += 1
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    latencies.sort()
    step.statuses = dict(statuses)
    step.counted = dict(counted)
    step.ok = statuses.get("200", 0)
    elapsed = max(last_answer - start, 1e-9)
    step.achieved = round(len(latencies) / elapsed, 1)
    for name, q in (("p50_ms", 50), ("p95_ms", 95), ("p99_ms", 99), ("max_ms", 100)):
        setattr(step, name, round(percentile(latencies, q) * 1000, 2))
    return step


async def sweep(host: str, port: int, requests: Sequence[bytes], *, connections: int = 16) -> Step:
    """Send every request once, as fast as ``connections`` allow (closed loop: latency
    from the send), e.g. to fill a cache before measuring."""
    step = Step(rate=0.0, duration=0.0)
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    pending = list(reversed(requests))
    started = perf_counter()

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while pending:
                sent = perf_counter()
                writer.write(pending.pop())
                status, _ = await _answer(reader, None)
                latencies.append(perf_counter() - sent)
                statuses[str(status)] += 1
        finally:
            writer.close()
            await writer.wait_closed()

    await asyncio.gather(*(worker() for _ in range(connections)))
    latencies.sort()
    step.duration = round(perf_counter() - started, 2)
    step.sent = len(requests)
    step.statuses = dict(statuses)
    step.ok = statuses.get("200", 0)
    step.achieved = round(len(latencies) / max(step.duration, 1e-9), 1)
    for name, q in (("p50_ms", 50), ("p95_ms", 95), ("p99_ms", 99), ("max_ms", 100)):
        setattr(step, name, round(percentile(latencies, q) * 1000, 2))
    return step


async def _run(args: argparse.Namespace) -> None:
    url = urlsplit(args.url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    headers = dict(h.split(":", 1) for h in args.header)
    headers = {k.strip(): v.strip() for k, v in headers.items()}
    with open(args.paths) as f:
        paths = [line.strip() for line in f if line.strip()]
    requests = [build_request(args.method, p, f"{host}:{port}", headers) for p in paths]
    if args.sweep:
        step = await sweep(host, port, requests)
        print(json.dumps({"sweep": True, **asdict(step)}), flush=True)
    if args.warmup > 0:
        await run_step(host, port, requests, rate=args.rates[0], duration=args.warmup)
    for i, rate in enumerate(args.rates):
        if i and args.warmup > 0:  # let the server settle at the new rate
            await run_step(host, port, requests, rate=rate, duration=args.warmup, seed=i + 100)
        step = await run_step(
            host,
            port,
            requests,
            rate=rate,
            duration=args.duration,
            connections=args.connections,
            count_header=args.count_header,
            seed=i + 1,
        )
        print(json.dumps(asdict(step)), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:8000")
    parser.add_argument("--paths", required=True, help="file of request paths, one a line")
    parser.add_argument("--header", action="append", default=[], help='"Name: value"')
    parser.add_argument("--method", default="GET")
    parser.add_argument("--rates", type=lambda s: [float(r) for r in s.split(",")], default=[250.0])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per step")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before each step")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--count-header", help="tally this response header's values")
    parser.add_argument(
        "--sweep", action="store_true", help="first send every path once (closed loop)"
    )
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(_run(args))
    else:
        uvloop.run(_run(args))


if __name__ == "__main__":
    sys.exit(main())
