"""Clustering on DuckDB against the same work done directly in scikit-learn.

On one generated business (default 1,000,000 customers), times:

Strata
  1. feature extraction in the warehouse: the training sample (``feature_frame``,
     default 200,000 customers) read into pandas;
  2. the fit on the sample: scaling, then ``CustomerClusters`` with ``k=auto`` (every k
     in 3..8 and a silhouette each), and again with the chosen k given (one fit);
  3. the assignment of all N customers in the warehouse (``assignment_table``: scaled
     features, distances to the stored centroids, argmin, confidence), read back;
  4. for reference, the whole ``run_clustering`` (model, one segment per cluster
     refreshed for everybody, predictions written).

scikit-learn, with the features of all N customers already in pandas (their reading is
not timed): the same fill and log, ``StandardScaler``, ``KMeans`` with the same k, seed
and ``n_init`` fitted (a) on all N and (b) on the same sample, then ``predict`` for all N.

Agreement is the share of customers given the same cluster (clusters matched one to
one so as to agree most, as numbering differs). Writes JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.preprocessing import StandardScaler

from strata.config import Settings
from strata.context import Strata
from strata.ingest.generate import generate_business
from strata.models import features as F
from strata.models.cluster import CustomerClusters, assignment_table, run_clustering
from strata.segments.engine import Segments
from strata.segments.reference import ReferenceTime

ROOT = Path(__file__).resolve().parent.parent
END = dt.date(2026, 6, 30)  # the generated business's last day
REF = ReferenceTime.of(END)


def agreement(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """Share of rows with the same cluster once the clusters of ``b`` are renumbered."""
    table = np.zeros((k, k), dtype=np.int64)
    np.add.at(table, (a, b), 1)
    rows, cols = linear_sum_assignment(-table)
    return float(table[rows, cols].sum() / len(a))


def prepared(frame, scaling: dict[str, Any]) -> np.ndarray:
    """The features as Strata fills and logs them, before standardising (for sklearn)."""
    columns = []
    for spec, fill in zip(scaling["features"], scaling["fill"], strict=True):
        x = frame[spec["name"]].astype("float64").fillna(fill).to_numpy()
        columns.append(np.log1p(np.clip(x, 0.0, None)) if spec["log"] else x)
    return np.column_stack(columns)


def bench(n: int, sample: int, seed: int, n_init: int) -> dict[str, Any]:
    started = time.perf_counter()
    batch = generate_business(n, seed=7, end=END)
    print(
        f"generated {n:,} customers, {batch.events.num_rows:,} events "
        f"in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    out: dict[str, Any] = {"customers": n, "events": batch.events.num_rows, "sample": sample}
    with tempfile.TemporaryDirectory(dir=os.environ.get("STRATA_BENCH_TMP")) as tmp:
        home = Path(tmp)
        settings = Settings(
            home=home,
            database_url=f"sqlite:///{home / 'catalog.db'}",
            warehouse_url=f"duckdb://{home / 'w.duckdb'}",
        )
        with Strata(settings) as app:
            ws = app.workspace("bench", create=True)
            started = time.perf_counter()
            app.warehouse.load(ws.id, batch)
            out["load_s"] = time.perf_counter() - started
            del batch
            segs = Segments(app, ws)
            features = F.behaviour_features(segs, REF)

            t = time.perf_counter()
            frame = F.feature_frame(segs, features, REF, sample=sample, seed=seed)
            out["strata_features_s"] = time.perf_counter() - t
            out["trained_on"] = len(frame)

            t = time.perf_counter()
            scaling = F.fit_scaling(frame, features)
            X = F.scale_frame(frame, scaling)
            auto = CustomerClusters(k="auto", random_state=seed, n_init=n_init).fit(X)
            out["strata_fit_auto_s"] = time.perf_counter() - t
            k = auto.k_
            out["k"], out["silhouette"] = k, auto.silhouette_
            t = time.perf_counter()
            model = CustomerClusters(k=k, random_state=seed, n_init=n_init).fit(X)
            out["strata_fit_k_s"] = time.perf_counter() - t

            state = {"method": "kmeans", "centers": model.centers_.tolist(), "scaling": scaling}
            t = time.perf_counter()
            assigned = assignment_table(segs.compiler(REF), state).to_pyarrow()
            out["strata_assign_s"] = time.perf_counter() - t
            order = np.argsort(assigned.column("customer_id").to_numpy(), kind="stable")
            strata_labels = assigned.column("index").to_numpy()[order]

            # scikit-learn starts from every customer's features in memory (not timed).
            t = time.perf_counter()
            everyone = F.feature_frame(segs, features, REF, sample=None)
            out["read_all_features_s"] = time.perf_counter() - t
            everyone = everyone.sort_values("customer_id").reset_index(drop=True)
            in_sample = everyone.customer_id.isin(frame.customer_id).to_numpy()
            raw = prepared(everyone, scaling)

            for variant, rows in (("full", slice(None)), ("sample", in_sample)):
                t = time.perf_counter()
                scaler = StandardScaler().fit(raw[rows])
                Z = scaler.transform(raw)
                km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(Z[rows])
                labels = km.predict(Z)
                out[f"sklearn_{variant}_s"] = time.perf_counter() - t
                out[f"agreement_{variant}"] = agreement(strata_labels, labels, k)

            # The numpy predict of the Strata model on everybody: the warehouse must agree.
            mine = model.predict(F.scale_frame(everyone, scaling))
            out["warehouse_equals_numpy"] = float((mine == strata_labels).mean())

            t = time.perf_counter()
            result = run_clustering(app, ws, as_of=REF, k=k, sample=sample, seed=seed)
            out["run_clustering_s"] = time.perf_counter() - t
            out["clusters"] = [
                {key: c[key] for key in ("name", "customers", "description")}
                for c in result["clusters"]
            ]
    strata = out["strata_features_s"] + out["strata_fit_k_s"] + out["strata_assign_s"]
    out["strata_total_s"] = strata
    out["ratio_full"] = strata / out["sklearn_full_s"]
    out["ratio_sample"] = strata / out["sklearn_sample_s"]
    return out


def table(r: dict[str, Any]) -> None:
    rows = [
        ("Strata: features in the warehouse (sample)", r["strata_features_s"]),
        ("Strata: fit, k = auto (3..8, silhouettes)", r["strata_fit_auto_s"]),
        (f"Strata: fit, k = {r['k']}", r["strata_fit_k_s"]),
        ("Strata: assign all N in the warehouse", r["strata_assign_s"]),
        ("Strata: features + fit k + assign", r["strata_total_s"]),
        ("Strata: run_clustering (segments + predictions)", r["run_clustering_s"]),
        ("sklearn: scale + KMeans on all N + predict", r["sklearn_full_s"]),
        ("sklearn: scale + KMeans on the sample + predict", r["sklearn_sample_s"]),
        ("(reading all N features into pandas, untimed above)", r["read_all_features_s"]),
    ]
    print(
        f"\n{r['customers']:,} customers, {r['events']:,} events, sample {r['trained_on']:,}, "
        f"k = {r['k']} (silhouette {r['silhouette']:.3f})"
    )
    print("| step | seconds |\n| --- | ---: |")
    for label, s in rows:
        print(f"| {label} | {s:.2f} |")
    print(
        f"\nStrata / sklearn (full-data fit): {r['ratio_full']:.2f}×; "
        f"(same-sample fit): {r['ratio_sample']:.2f}×"
    )
    print(
        f"same clusters as sklearn: {r['agreement_full']:.1%} (full fit), "
        f"{r['agreement_sample']:.1%} (same sample); warehouse = numpy predict for "
        f"{r['warehouse_equals_numpy']:.4%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=F.DEFAULT_SAMPLE)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-init", type=int, default=4)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "cluster.json"))
    args = parser.parse_args()
    result = bench(args.customers, args.sample, args.seed, args.n_init)
    table(result)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps(
            {
                "date": dt.date.today().isoformat(),
                "machine": machine,
                "load_average": os.getloadavg(),
                "command": " ".join(["python", *sys.argv]),
                "result": result,
            },
            indent=1,
            default=str,
        )
    )
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
