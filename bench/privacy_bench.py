"""What data rights cost: an erasure, an access request, and imports against a suppression list.

Setup (outside the clock): a DuckDB warehouse and SQLite catalog in a temporary folder
with a generated business (default 100,000 customers, about a million events).

- **erasure**: ``Rights.request("erasure", external_id=…)`` then ``run``, for
  ``--rounds`` customers one after another: every store searched and cleared, the
  DuckDB tables that lost rows copied and their freed blocks overwritten.
- **access**: the same for an access request (one JSON file of everything held).
- **suppression at import**: a file of ``--import-rows`` new customers imported into a
  workspace with an empty suppression list and into one holding ``--suppressed``
  entries (none of them in the file), side by side in the same run; the ratio is the
  cost of checking every row against the list.

No aim was set (issue 8 names no figure); the results go in ``docs/benchmarks.md``.

    python bench/privacy_bench.py --customers 100000 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from strata.catalog import Suppression
from strata.config import Settings
from strata.context import Strata
from strata.demo import generate_and_load
from strata.ingest.pipeline import run_import
from strata.privacy.rights import Rights
from strata.privacy.subjects import Subject, digest, salt


def _settings(home: Path) -> Settings:
    return Settings(
        home=home,
        database_url=f"sqlite:///{home / 'catalog.db'}",
        warehouse_url=f"duckdb://{home / 'warehouse.duckdb'}",
    )


def _timed_requests(app: Strata, kind: str, ids: list[str]) -> list[float]:
    rights = Rights(app, "bench")
    seconds = []
    for external_id in ids:
        started = time.perf_counter()
        req = rights.request(kind, external_id=external_id)
        rights.run(req.id)
        seconds.append(time.perf_counter() - started)
    return seconds


def _new_customers(path: Path, rows: int, offset: int) -> None:
    lines = ["customer_id,email,name,country"]
    lines += [
        f"N{offset + i:08d},new{offset + i}@example.org,New {offset + i},DE" for i in range(rows)
    ]
    path.write_text("\n".join(lines) + "\n")


def _suppress(app: Strata, workspace: str, count: int) -> None:
    ws = app.workspace(workspace, create=True)
    key = salt(app, ws.id)
    with app.session() as s:
        s.execute(
            sa.insert(Suppression),
            [
                {
                    "workspace_id": ws.id,
                    "kind": "email",
                    "digest": digest(key, Subject.of(email=f"gone{i}@example.net")),
                }
                for i in range(count)
            ],
        )
        s.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--import-rows", type=int, default=50_000)
    parser.add_argument("--suppressed", type=int, default=10_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        with Strata(_settings(home)) as app:
            generate_and_load(app, customers=args.customers, workspace="bench")
            events = app.warehouse.table(app.workspace("bench").id, "events").count().execute()
            app.warehouse._con.execute("CHECKPOINT")  # the file's size, not the log's
            size_before = (home / "warehouse.duckdb").stat().st_size
            ids = [f"C{n:07d}" for n in range(1, 2 * args.rounds + 1)]
            access = _timed_requests(app, "access", ids[: args.rounds])
            erasure = _timed_requests(app, "erasure", ids[args.rounds :])

            _suppress(app, "with-list", args.suppressed)
            app.workspace("no-list", create=True)
            imports = {}
            for offset, workspace in enumerate(("no-list", "with-list")):
                path = home / f"new-{workspace}.csv"
                _new_customers(path, args.import_rows, offset * args.import_rows)
                started = time.perf_counter()
                report = run_import(app, path, workspace=workspace)
                imports[workspace] = time.perf_counter() - started
                assert report["customers_created"] == args.import_rows, report

    result = {
        "bench": "privacy",
        "customers": args.customers,
        "events": int(events),
        "warehouse_mb": round(size_before / 2**20, 1),
        "erasure_s": [round(s, 2) for s in erasure],
        "erasure_median_s": round(statistics.median(erasure), 2),
        "access_s": [round(s, 2) for s in access],
        "access_median_s": round(statistics.median(access), 2),
        "import_rows": args.import_rows,
        "suppressed": args.suppressed,
        "import_no_list_s": round(imports["no-list"], 2),
        "import_with_list_s": round(imports["with-list"], 2),
        "suppression_ratio": round(imports["with-list"] / imports["no-list"], 2),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
