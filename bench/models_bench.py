"""The other models at scale (``make bench``): lookalikes, churn, propensity, anomalies.

On a generated business of N customers (default 1,000,000) in a fresh DuckDB
warehouse, times each library entry as ``strata`` runs it: fitting, validating,
scoring every customer, writing predictions and refreshing the segments. There is
no outside baseline for these (the issue names none); the figures are for spotting
regressions and for sizing. Results are printed and written as JSON (``--out``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from strata.config import Settings
from strata.context import Strata
from strata.demo import generate_and_load
from strata.models.anomaly import find_anomalies
from strata.models.churn import run_churn, run_propensity
from strata.models.lookalike import find_lookalikes
from strata.segments.engine import Segments
from strata.segments.nodes import SegmentSpec, parse_rule
from strata.segments.reference import ReferenceTime

ROOT = Path(__file__).resolve().parent.parent
END = dt.date(2026, 6, 30)  # the generated business's last day (as the other benches)


def bench(n: int) -> dict[str, Any]:
    out: dict[str, Any] = {"customers": n}
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(
            home=Path(home),
            database_url=f"sqlite:///{home}/catalog.db",
            warehouse_url=f"duckdb://{home}/warehouse.duckdb",
        )
        with Strata(settings) as app:
            started = time.perf_counter()
            generate_and_load(app, customers=n, seed=7, end=END, workspace="bench")
            out["generate_and_load_s"] = round(time.perf_counter() - started, 1)
            ref = ReferenceTime.of(END)
            loyal = {"type": "trait", "trait": "total_orders", "op": "gte", "value": 4}
            Segments(app, "bench").save(
                SegmentSpec(name="Loyal", rule=parse_rule(loyal)), as_of=ref
            )

            def timed(name: str, run, keep: tuple[str, ...]) -> None:
                started = time.perf_counter()
                result = run()
                out[name] = {"seconds": round(time.perf_counter() - started, 2)} | {
                    k: result[k] for k in keep
                }
                print(f"  {name}: {out[name]}", flush=True)

            timed(
                "lookalike (seed: 4+ orders, top 1,000)",
                lambda: find_lookalikes(app, "bench", "Loyal", top=1000, as_of=ref),
                ("seed_customers", "scored"),
            )
            timed(
                "churn (out of time, 90 days)",
                lambda: run_churn(app, "bench", as_of=ref),
                ("auc", "lift_top_decile", "customers_scored"),
            )
            timed(
                "propensity (30 days)",
                lambda: run_propensity(app, "bench", days=30, as_of=ref),
                ("auc", "lift_top_decile", "customers_scored"),
            )

            def anomalies() -> dict[str, int]:
                found = find_anomalies(app, "bench", as_of=ref, days=90)
                return {"flags": len(found["anomalies"]), "series": len(found["checked"])}

            timed(
                "anomalies (90 days: revenue, orders, every segment's size)",
                anomalies,
                ("flags", "series"),
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "models.json")
    args = parser.parse_args()
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"models at {args.customers:,} customers ({machine}; {dt.date.today()})", flush=True)
    result = bench(args.customers) | {"machine": machine, "date": str(dt.date.today())}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
