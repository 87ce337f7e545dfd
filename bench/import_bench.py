"""Import throughput into DuckDB and PostgreSQL (``make bench``).

Measures, side by side in one run:
1. UCI Online Retail (541,909 invoice lines, ``../shared/data``) through ``strata import``'s
   library call: read, detect, check, load. Rows/s = file rows / wall time.
2. A generated business of 1,000,000 customers (~10M events): the load alone
   (``Warehouse.load`` of the generated batch). Rows/s = events / wall time.

PostgreSQL runs when ``STRATA_TEST_POSTGRES_URL`` (or ``--postgres URL``) is set; each
run gets a fresh database. The aim (issue 2) is 500,000 rows/s into DuckDB.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from strata.config import Settings
from strata.context import Strata
from strata.ingest.generate import generate_business
from strata.ingest.lines import event_figures
from strata.ingest.pipeline import load_batch, run_import

ROOT = Path(__file__).resolve().parent.parent
ONLINE_RETAIL = ROOT.parent / "shared/data/online_retail/online_retail_2010-12_2011-12.csv.gz"
AIM = 500_000


def _postgres_db(base_url: str):
    name = f"strata_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base_url, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    return name, f"{base_url.rpartition('/')[0]}/{name}"


def _drop_db(base_url: str, name: str) -> None:
    with psycopg.connect(base_url, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def _fresh_stores(warehouse: str, pg_url: str | None):
    """Open stores in a fresh home (and, for PostgreSQL, a fresh database)."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        db, url = None, f"duckdb://{home / 'w.duckdb'}"
        if warehouse == "postgres":
            db, url = _postgres_db(pg_url)
        try:
            settings = Settings(
                home=home, database_url=f"sqlite:///{home / 'catalog.db'}", warehouse_url=url
            )
            with Strata(settings) as app:
                _ = (app.warehouse, app.sessions)  # open the stores outside the timing
                yield app
        finally:
            if db:
                _drop_db(pg_url, db)


def bench_online_retail(warehouse: str, pg_url: str | None) -> dict:
    with _fresh_stores(warehouse, pg_url) as app:
        started = time.perf_counter()
        report = run_import(app, ONLINE_RETAIL)
        seconds = time.perf_counter() - started
    rows = report["rows_read"]
    return {
        "case": "online_retail",
        "warehouse": warehouse,
        "rows": rows,
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds),
    }


def bench_generated(warehouse: str, pg_url: str | None, customers: int, batch) -> dict:
    figures = event_figures(batch.events)
    with _fresh_stores(warehouse, pg_url) as app:
        started = time.perf_counter()
        report = load_batch(
            app,
            batch,
            figures,
            workspace="bench",
            source="bench",
            preset="generated",
            target="events",
        )
        seconds = time.perf_counter() - started
    events = report["events_created"]
    return {
        "case": f"generated {customers:,} customers",
        "warehouse": warehouse,
        "rows": events,
        "order_lines": batch.items.num_rows,
        "seconds": round(seconds, 2),
        "rows_per_s": round(events / seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--postgres", default=os.environ.get("STRATA_TEST_POSTGRES_URL"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "import.json"))
    args = parser.parse_args()
    warehouses = ["duckdb"] + (["postgres"] if args.postgres else [])
    results = [bench_online_retail(w, args.postgres) for w in warehouses]
    started = time.perf_counter()
    batch = generate_business(args.customers, seed=7, end=dt.date(2026, 6, 30))
    generated_s = time.perf_counter() - started
    results += [bench_generated(w, args.postgres, args.customers, batch) for w in warehouses]
    machine = f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}"
    print(f"machine: {machine}; generating the batch took {generated_s:.1f} s\n")
    print("| case | warehouse | rows | seconds | rows/s | vs aim 500k rows/s |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for r in results:
        print(
            f"| {r['case']} | {r['warehouse']} | {r['rows']:,} | {r['seconds']} | "
            f"{r['rows_per_s']:,} | {r['rows_per_s'] / AIM:.2f}× |"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps(
            {"date": dt.date.today().isoformat(), "machine": machine, "results": results}, indent=2
        )
    )


if __name__ == "__main__":
    main()
