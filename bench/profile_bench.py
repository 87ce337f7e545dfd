"""Latency of the personalization API (``GET /api/v1/profiles/{id}/segments``) under
fixed request rates, with the profile cache in process and in Redis.

1. Generates a business (default 20,000 customers), scores RFM, applies the example
   segments (``examples/segments``) and fits the demo models (clusters, CLV, churn),
   so a profile carries several segments, every trait and a few predictions.
2. Starts the real server in a subprocess (``uvicorn strata.api.serve:app_from_env``,
   one worker, as ``strata serve`` runs it) and creates a read key over HTTP.
3. A load generator in a second process (``bench/loadgen.py``) first asks for every
   customer once (cache misses: the warehouse is read; this fills the cache), then
   sends GETs for random customers at fixed rates (default 250, 500, 1,000 and 2,000
   a second, 20 s each after 5 s of warm-up) over keep-alive connections, open loop:
   latency is counted from when each request was due, so queueing is not hidden.
4. With ``--redis URL`` the same runs again with ``STRATA_REDIS_URL`` (the keys it
   made are deleted at the end).

Aim (issue): p99 ≤ 10 ms at 1,000 requests a second on a 2-core machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import httpx

import strata
from strata.api.serve import ensure_owner, wait_until_serving
from strata.config import Settings
from strata.context import Strata
from strata.demo import fit_models, generate_and_load
from strata.segments.engine import Segments, run_rfm

ROOT = Path(__file__).resolve().parent.parent
WORKSPACE = "bench"
PASSWORD = "bench bench bench bench"
AIM_RATE, AIM_P99_MS = 1000, 10.0


def prepare(settings: Settings, customers: int, models: bool) -> list[str]:
    """The business in ``settings``' stores; the external ids of its customers."""
    with Strata(settings) as app:
        started = time.perf_counter()
        generate_and_load(app, customers=customers, workspace=WORKSPACE)
        print(f"generated and loaded in {time.perf_counter() - started:.1f} s", flush=True)
        segs = Segments(app, WORKSPACE)
        run_rfm(segs)
        segs.apply(ROOT / "examples" / "segments")
        if models:
            started = time.perf_counter()
            fit_models(app, workspace=WORKSPACE)
            print(f"models fitted in {time.perf_counter() - started:.1f} s", flush=True)
        ensure_owner(app)
        ws = app.workspace(WORKSPACE)
        ids = app.warehouse.table(ws.id, "customers").external_id.to_pyarrow().to_pylist()
        m = app.warehouse.table(ws.id, "memberships")
        open_memberships = m.filter(m.left_at.isnull()).count().to_pyarrow().as_py()
        print(
            f"{len(ids):,} customers, {len(segs.list())} segments, "
            f"{open_memberships / len(ids):.1f} current segments a customer",
            flush=True,
        )
        return ids


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(settings: Settings, port: int, redis_url: str | None) -> subprocess.Popen:
    env = {
        **os.environ,
        "STRATA_HOME": str(settings.home),
        "STRATA_DATABASE_URL": settings.database_url,
        "STRATA_WAREHOUSE_URL": settings.warehouse_url,
        "STRATA_OWNER_PASSWORD": PASSWORD,
        "STRATA_COOKIE_SECURE": "false",
        "STRATA_LOG_LEVEL": "warning",
    }
    env.pop("STRATA_REDIS_URL", None)
    if redis_url:
        env["STRATA_REDIS_URL"] = redis_url
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "strata.api.serve:app_from_env",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=env,
    )
    if not wait_until_serving(f"http://127.0.0.1:{port}", server):
        server.kill()
        raise RuntimeError("the API server did not start")
    return server


def read_key(url: str, settings: Settings) -> str:
    """A read key of the bench workspace, made over HTTP as the owner."""
    with httpx.Client(base_url=url, timeout=30) as client:
        r = client.post(
            "/api/v1/auth/login", json={"email": settings.owner_email, "password": PASSWORD}
        )
        r.raise_for_status()
        client.headers["Authorization"] = f"Bearer {r.json()['token']}"
        spaces = client.get("/api/v1/workspaces").json()["items"]
        ws = next(w["id"] for w in spaces if w["name"] == WORKSPACE)
        r = client.post(f"/api/v1/workspaces/{ws}/keys", json={"name": "bench", "kind": "read"})
        r.raise_for_status()
        return r.json()["key"]


def run_load(url: str, key: str, paths: Path, args: argparse.Namespace) -> list[dict]:
    command = [
        sys.executable,
        str(ROOT / "bench" / "loadgen.py"),
        "--url",
        url,
        "--paths",
        str(paths),
        "--header",
        f"Authorization: Bearer {key}",
        "--rates",
        ",".join(str(r) for r in args.rates),
        "--duration",
        str(args.duration),
        "--warmup",
        str(args.warmup),
        "--count-header",
        "X-Strata-Cache",
        "--sweep",
    ]
    steps = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as gen:
        for line in gen.stdout:
            step = json.loads(line)
            steps.append(step)
            print("  " + _line(step), flush=True)
    if gen.returncode:
        raise RuntimeError(f"the load generator failed ({gen.returncode})")
    return steps


def _line(step: dict) -> str:
    what = "every customer once" if step.get("sweep") else f"{step['rate']:,.0f}/s"
    return (
        f"{what}: achieved {step['achieved']:,.0f}/s, p50 {step['p50_ms']} ms, "
        f"p95 {step['p95_ms']} ms, p99 {step['p99_ms']} ms, max {step['max_ms']} ms, "
        f"statuses {step['statuses']}, errors {step['errors']}, cache {step['counted']}"
    )


def bench(settings: Settings, paths: Path, redis_url: str | None, args) -> list[dict]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(settings, port, redis_url)
    try:
        key = read_key(url, settings)
        return run_load(url, key, paths, args)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def forget_redis(redis_url: str, settings: Settings) -> None:
    import redis

    from strata.profiles import namespace

    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{namespace(settings)}:*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
    finally:
        client.close()


def _table(results: dict[str, list[dict]]) -> None:
    print(
        "\n| cache | rate /s | achieved /s | p50 ms | p95 ms | p99 ms | max ms | non-200 | hits |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for cache, steps in results.items():
        for s in steps:
            rate = "all once" if s.get("sweep") else f"{s['rate']:,.0f}"
            bad = s["sent"] - s["ok"]
            hits = s["counted"].get("hit", 0) / max(1, sum(s["counted"].values()))
            print(
                f"| {cache} | {rate} | {s['achieved']:,.0f} | {s['p50_ms']} | {s['p95_ms']} "
                f"| {s['p99_ms']} | {s['max_ms']} | {bad} | {hits:.0%} |"
            )
    for cache, steps in results.items():
        at = [s for s in steps if not s.get("sweep") and s["rate"] == AIM_RATE]
        if at:
            p99 = at[0]["p99_ms"]
            verdict = "met" if p99 <= AIM_P99_MS else "NOT met"
            print(f"{cache}: p99 at {AIM_RATE:,}/s {p99} ms (aim ≤ {AIM_P99_MS}): {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument(
        "--rates", type=lambda s: [int(r) for r in s.split(",")], default=[250, 500, 1000, 2000]
    )
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per rate")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before each rate")
    parser.add_argument("--redis", help="also run with the cache in this Redis (URL)")
    parser.add_argument("--no-models", action="store_true", help="skip fitting the demo models")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "profiles.json"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="strata-profile-bench-") as tmp:
        home = Path(tmp)
        settings = Settings(
            home=home,
            database_url=f"sqlite:///{home / 'catalog.db'}",
            warehouse_url=f"duckdb://{home / 'warehouse.duckdb'}",
            owner_password=PASSWORD,
            cookie_secure=False,
        )
        ids = prepare(settings, args.customers, not args.no_models)
        paths = home / "paths.txt"
        paths.write_text(
            "".join(
                f"/api/v1/profiles/{quote(e, safe='')}/segments?traits=email,plan\n" for e in ids
            )
        )
        results = {}
        print("cache in process:", flush=True)
        results["in process"] = bench(settings, paths, None, args)
        if args.redis:
            print(f"cache in Redis ({args.redis}):", flush=True)
            try:
                results["Redis"] = bench(settings, paths, args.redis, args)
            finally:
                forget_redis(args.redis, settings)

    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"\nmachine: {machine}; date {dt.date.today()}; {args.customers:,} customers")
    _table(results)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps(
            {
                "date": dt.date.today().isoformat(),
                "machine": machine,
                "strata_from": str(Path(strata.__file__).parent),
                "command": " ".join(["python", *sys.argv]),
                "customers": args.customers,
                "results": results,
            },
            indent=1,
        )
    )
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
