"""Every analysis on a generated business of 1,000,000 customers on DuckDB (``make bench``).

The business (``generate_business(N, seed=7, end=2026-06-30)``: about 10 events per
customer) is loaded into a fresh DuckDB warehouse, RFM and four rule segments are
evaluated as of 2026-03-31 and again as of 2026-06-30 (so sizes have a history and
RFM a migration), and ICP criteria are set. Then each analysis runs as
``strata analyze`` runs it (:func:`strata.analysis.run_analysis`, the warehouse
queries and the small pandas step after them), once untimed and ``--repeat`` times
timed, as of 2026-06-30. Aim (issue): at most 1 s each.

``--home DIR`` keeps the prepared warehouse in DIR and reuses it on the next run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import strata
from strata.analysis import analyses, run_analysis
from strata.config import Settings
from strata.context import Strata
from strata.ingest.generate import generate_business
from strata.segments.engine import Segments, run_rfm, set_icp
from strata.segments.icp import parse_config as parse_icp
from strata.segments.nodes import SegmentSpec, parse_rule
from strata.segments.reference import ReferenceTime

ROOT = Path(__file__).resolve().parent.parent
END = dt.date(2026, 6, 30)
DAYS = ("2026-03-31", "2026-06-30")
AIM_S = 1.0

SEGMENTS = {
    "Big spenders": {"type": "trait", "trait": "total_revenue", "op": "gte", "value": 500},
    "Recent buyers": {
        "type": "performed",
        "event": "order",
        "window": {"last_days": 30},
    },
    "Europe": {
        "type": "attribute",
        "attribute": "country",
        "op": "in",
        "value": ["GB", "DE", "FR", "NL", "ES", "IT", "SE", "IE", "PL", "BE", "CH", "DK"],
    },
    "Software companies": {
        "type": "attribute",
        "attribute": "industry",
        "op": "eq",
        "value": "Software",
    },
}
ICP = {
    "criteria": [
        {"on": "industry", "in": ["Software", "Professional Services", "Finance"], "weight": 3},
        {"on": "company_size", "range": [50, 1000], "weight": 2},
        {"on": "total_revenue", "scale": [0, 2000], "weight": 2},
    ]
}

#: The parameters each analysis is timed with (as of the last day of the business).
CASES: dict[str, dict[str, Any]] = {
    "growth": {"segment": "Champions", "period": "week"},
    "revenue": {},
    "pareto": {"segment": "Big spenders"},
    "event-mix": {"segment": "Champions"},
    "purchase-frequency": {"segment": "Champions"},
    "order-gaps": {"segment": "Champions"},
    "heatmap": {"segment": "Champions"},
    "top-products": {"segment": "Champions"},
    "breakdown": {"segment": "Champions", "attribute": "country"},
    "overlap": {"segments": ["Champions", "Big spenders", "Recent buyers", "Europe"]},
    "overlap-with": {"segment": "Big spenders"},
    "compare": {"segments": [], "metric": "company_size"},
    "cohorts": {},
    "journeys": {"segment": "Champions"},
    "rfm-migration": {"from_date": DAYS[0]},
    "insights": {"segment": "At Risk"},
}


def prepare(home: Path, n: int) -> Settings:
    settings = Settings(
        home=home,
        database_url=f"sqlite:///{home / 'catalog.db'}",
        warehouse_url=f"duckdb://{home / 'warehouse.duckdb'}",
    )
    ready = home / "ready.json"
    if ready.exists() and json.loads(ready.read_text()).get("customers") == n:
        print(f"reusing the prepared warehouse in {home}", flush=True)
        return settings
    started = time.perf_counter()
    batch = generate_business(n, seed=7, end=END)
    events = batch.events.num_rows
    print(f"generated {n:,} customers, {events:,} events in {time.perf_counter() - started:.1f} s")
    with Strata(settings) as app:
        ws = app.workspace("default", create=True)
        started = time.perf_counter()
        app.warehouse.load(ws.id, batch)
        del batch
        print(f"loaded in {time.perf_counter() - started:.1f} s", flush=True)
        segs = Segments(app, ws)
        set_icp(segs, parse_icp(ICP))
        for name, rule in SEGMENTS.items():
            segs.save(SegmentSpec(name=name, rule=parse_rule(rule)), evaluate=False)
        for day in DAYS:
            started = time.perf_counter()
            ref = ReferenceTime.parse(day)
            run_rfm(segs, as_of=ref)
            segs.refresh(list(SEGMENTS), as_of=ref)
            print(f"RFM and segments as of {day} in {time.perf_counter() - started:.1f} s")
    ready.write_text(json.dumps({"customers": n, "events": events}))
    return settings


def bench(settings: Settings, repeat: int) -> list[dict[str, Any]]:
    rows = []
    with Strata(settings) as app:
        specs = analyses()
        for name, values in CASES.items():
            spec = specs[name]
            params = spec.params(as_of=DAYS[-1], **values)
            tables, _ = run_analysis(app, None, name, params)  # untimed: first use
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                tables, _ = run_analysis(app, None, name, params)
                times.append(time.perf_counter() - started)
            main = next(iter(tables.values()))
            row = {
                "analysis": name,
                "params": values,
                "median_s": statistics.median(times),
                "max_s": max(times),
                "rows": len(main),
                "met": max(times) <= AIM_S,
            }
            rows.append(row)
            print(
                f"{name:<22} median {row['median_s']:.3f} s  max {row['max_s']:.3f} s  "
                f"{row['rows']:>5} rows  {'met' if row['met'] else 'MISSED'}",
                flush=True,
            )
    return rows


def _code_state() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout

    changed = git("status", "--porcelain", "--", "src").strip()
    return git("rev-parse", "--short", "HEAD").strip() + (" + changes in src/" if changed else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--home", default=None, help="keep the prepared warehouse here")
    parser.add_argument("--only", default=None, help="comma-separated analyses to run")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "analysis.json"))
    args = parser.parse_args()
    missing = sorted(set(analyses()) - set(CASES))
    if missing:
        raise SystemExit(f"no bench case for: {', '.join(missing)}")
    if args.only:
        wanted = set(args.only.split(","))
        for name in list(CASES):
            if name not in wanted:
                del CASES[name]
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(args.home or scratch)
        home.mkdir(parents=True, exist_ok=True)
        settings = prepare(home, args.customers)
        rows = bench(settings, args.repeat)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"\nmachine: {machine}; date {dt.date.today()}; load average {os.getloadavg()}")
    missed = [r["analysis"] for r in rows if not r["met"]]
    verdict = "met" if not missed else "missed by " + ", ".join(missed)
    print(f"aim ≤ {AIM_S:.0f} s each: {verdict}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps(
            {
                "date": dt.date.today().isoformat(),
                "machine": machine,
                "code": _code_state(),
                "strata_from": str(Path(strata.__file__).parent),
                "command": " ".join(["python", *sys.argv]),
                "customers": args.customers,
                "results": rows,
            },
            indent=1,
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
