"""Lifetime value: Strata's BG/NBD + Gamma-Gamma against ``lifetimes`` (``make bench``).

Measures, side by side in one run and on the same summaries:

1. CDNOW master (23,570 customers, ``../shared/data``), calibration through 1997-09-30 in
   weeks: the BG/NBD fit, Strata's ``BetaGeoModel`` against lifetimes' ``BetaGeoFitter``
   (seconds and parameters; the Gamma-Gamma fit too).
2. A generated business (default 1,000,000 customers): Strata's ``run_clv`` on DuckDB
   (warehouse summary + fits + scoring + writing five prediction types), and on the same
   summary lifetimes' fits and scoring (P(alive), expected purchases, expected spend,
   12-month CLV), as lifetimes users would run them.

lifetimes is unmaintained and pins old numpy/pandas/scipy, so it runs in a venv of its
own (``bench/results/.lifetimes-venv``, made on first use from
``bench/lifetimes-requirements.txt``) in a subprocess, reading the summary from an
``.npz`` file. Results are printed and written as JSON (``--out``).
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

import numpy as np
import pandas as pd

from strata.config import Settings
from strata.context import Strata
from strata.ingest.generate import generate_business
from strata.models.clv import (
    BetaGeoModel,
    GammaGammaModel,
    customer_lifetime_value,
    run_clv,
    summary_from_transactions,
    warehouse_summary,
)
from strata.segments.reference import ReferenceTime

ROOT = Path(__file__).resolve().parent.parent
CDNOW_MASTER = ROOT.parent / "shared/data/cdnow/CDNOW_master.txt"
CALIBRATION_END = dt.date(1997, 9, 30)
END = dt.date(2026, 6, 30)  # the generated business's last day (as the other benches)
REQUIREMENTS = ROOT / "bench" / "lifetimes-requirements.txt"
DEFAULT_VENV = ROOT / "bench" / "results" / ".lifetimes-venv"
HORIZON, DISCOUNT = 12, 0.01

# Runs inside the lifetimes venv: fit (and optionally score) the summary in argv[1],
# print the timings and parameters as JSON on the last line.
LIFETIMES_WORKER = r"""
import json, sys, time, warnings
import numpy as np, pandas as pd
warnings.simplefilter("ignore")
from lifetimes import BetaGeoFitter, GammaGammaFitter
data = np.load(sys.argv[1])
score = sys.argv[2] == "score"
f = pd.Series(data["frequency"]); r = pd.Series(data["recency"]); T = pd.Series(data["T"])
m = pd.Series(data["monetary_value"])
out = {}
t = time.perf_counter()
bg = BetaGeoFitter().fit(f, r, T)
out["bgnbd_fit_s"] = time.perf_counter() - t
out["bgnbd"] = {k: float(v) for k, v in bg.params_.items()}
repeat = (f > 0) & (m > 0)
t = time.perf_counter()
gg = GammaGammaFitter().fit(f[repeat], m[repeat])
out["gg_fit_s"] = time.perf_counter() - t
out["gamma_gamma"] = {k: float(v) for k, v in gg.params_.items()}
if score:
    t = time.perf_counter()
    p_alive = bg.conditional_probability_alive(f, r, T)
    purchases = bg.conditional_expected_number_of_purchases_up_to_time(
        float(sys.argv[3]), f, r, T)
    spend = gg.conditional_expected_average_profit(f, m)
    clv = gg.customer_lifetime_value(bg, f, r, T, m, time=int(sys.argv[4]),
                                     discount_rate=float(sys.argv[5]), freq="W")
    out["score_s"] = time.perf_counter() - t
    out["total_clv"] = float(np.sum(clv))
    out["mean_p_alive"] = float(np.mean(p_alive))
    out["total_expected_purchases"] = float(np.sum(purchases))
    out["mean_spend"] = float(np.mean(spend))
print(json.dumps(out))
"""


def lifetimes_python(venv: Path) -> Path:
    """The lifetimes venv's interpreter, making the venv first if there is none."""
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"making {venv} (lifetimes and its pinned dependencies)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)], check=True
        )
    return python


def run_lifetimes(python: Path, summary: pd.DataFrame, *, score: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "summary.npz"
        np.savez(path, **{c: summary[c].to_numpy("float64") for c in summary_columns()})
        weeks = HORIZON * (365.25 / 12) / 7
        args = [str(path), "score" if score else "fit", str(weeks), str(HORIZON), str(DISCOUNT)]
        started = time.perf_counter()
        done = subprocess.run(
            [str(python), "-c", LIFETIMES_WORKER, *args], capture_output=True, text=True
        )
        wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"lifetimes failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["subprocess_wall_s"] = wall
    # lifetimes reports its likelihood on rescaled times; this is the same sum as ours.
    result["bgnbd"]["log_likelihood"] = log_likelihood_at(result["bgnbd"], summary)
    return result


def log_likelihood_at(params: dict[str, float], summary: pd.DataFrame) -> float:
    """The BG/NBD log-likelihood of ``summary`` at ``params`` (summed over customers)."""
    model = BetaGeoModel()
    model.params_ = {k: params[k] for k in ("r", "alpha", "a", "b")}
    return float(model.log_likelihood(summary[["frequency", "recency", "T"]]).sum())


def summary_columns() -> list[str]:
    return ["frequency", "recency", "T", "monetary_value"]


def ours_fit(summary: pd.DataFrame, repeat: int) -> dict[str, Any]:
    """Strata's fits on ``summary``: median seconds of ``repeat`` runs, and the parameters."""
    times, gg_times = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        bg = BetaGeoModel().fit(summary[["frequency", "recency", "T"]])
        times.append(time.perf_counter() - started)
        repeaters = summary[(summary.frequency > 0) & (summary.monetary_value > 0)]
        started = time.perf_counter()
        gg = GammaGammaModel().fit(repeaters[["frequency", "monetary_value"]])
        gg_times.append(time.perf_counter() - started)
    return {
        "bgnbd_fit_s": statistics.median(times),
        "gg_fit_s": statistics.median(gg_times),
        "bgnbd": {**bg.params_, "log_likelihood": bg.log_likelihood_},
        "gamma_gamma": gg.params_,
        "models": (bg, gg),
    }


def bench_cdnow(python: Path, repeat: int) -> dict[str, Any]:
    tx = pd.read_csv(
        CDNOW_MASTER, sep=r"\s+", dtype={"customer_id": str}, names=None, header=0
    ).rename(columns={"dollar_value": "revenue"})
    tx["timestamp"] = pd.to_datetime(tx["date"].astype(str), format="%Y%m%d")
    summary = summary_from_transactions(tx, as_of=CALIBRATION_END, time_unit="week")
    ours = ours_fit(summary, repeat)
    ours.pop("models")
    theirs = run_lifetimes(python, summary, score=False)
    return {
        "customers": len(summary),
        "strata": ours,
        "lifetimes": theirs,
        "bgnbd_fit_ratio": theirs["bgnbd_fit_s"] / ours["bgnbd_fit_s"],
    }


def bench_generated(python: Path, customers: int) -> dict[str, Any]:
    started = time.perf_counter()
    batch = generate_business(customers, seed=7, end=END)
    print(f"generated {customers:,} customers in {time.perf_counter() - started:.1f} s", flush=True)
    ref = ReferenceTime.of(END)
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
            load_s = time.perf_counter() - started
            events = batch.events.num_rows
            del batch
            print(f"loaded {events:,} events in {load_s:.1f} s", flush=True)
            started = time.perf_counter()
            result = run_clv(app, ws, as_of=ref, time_unit="week", horizon=HORIZON)
            run_s = time.perf_counter() - started
            summary = warehouse_summary(app.warehouse, ws.id, ref, time_unit="week")
    # The same fits and scores as run_clv does, timed alone, on the same summary lifetimes gets.
    ours = ours_fit(summary, 1)
    bg, gg = ours.pop("models")
    started = time.perf_counter()
    rfm = summary[["frequency", "recency", "T"]]
    p_alive = bg.probability_alive(rfm)
    purchases = bg.expected_purchases(HORIZON * (365.25 / 12) / 7, rfm)
    spend = gg.expected_spend(summary[["frequency", "monetary_value"]])
    clv = customer_lifetime_value(bg, gg, summary, HORIZON, time_unit="week")
    ours["score_s"] = time.perf_counter() - started
    ours.update(
        total_clv=float(clv.sum()),
        mean_p_alive=float(p_alive.mean()),
        total_expected_purchases=float(purchases.sum()),
        mean_spend=float(spend.mean()),
    )
    print("lifetimes: fitting and scoring the same summary...", flush=True)
    theirs = run_lifetimes(python, summary, score=True)
    ours_total = ours["bgnbd_fit_s"] + ours["gg_fit_s"] + ours["score_s"]
    theirs_total = theirs["bgnbd_fit_s"] + theirs["gg_fit_s"] + theirs["score_s"]
    return {
        "customers": customers,
        "events": events,
        "customers_with_orders": result["customers"],
        "repeat_customers": result["repeat_customers"],
        "load_s": load_s,
        "run_clv_s": run_s,
        "run_clv_timings": result["timings"],
        "run_clv": {k: result[k] for k in ("bgnbd", "gamma_gamma", "total_clv", "model_version")},
        "strata": {**ours, "fit_score_s": ours_total},
        "lifetimes": {**theirs, "fit_score_s": theirs_total},
        "fit_score_ratio": theirs_total / ours_total,
        "run_clv_vs_lifetimes_fit_score": theirs_total / run_s,
    }


def _row(name: str, *cells: Any) -> None:
    print(f"  {name:<38}" + "".join(f"{c:>16}" for c in cells))


def _params(p: dict[str, float], keys: str) -> str:
    return " ".join(f"{p[k]:.4g}" for k in keys.split())


def _print(results: dict[str, Any]) -> None:
    c = results.get("cdnow")
    if c:
        print(f"\nCDNOW master, {c['customers']:,} customers (weeks, through {CALIBRATION_END})")
        _row("", "strata", "lifetimes", "ratio")
        s, lt = c["strata"], c["lifetimes"]
        _row(
            "BG/NBD fit (s)",
            f"{s['bgnbd_fit_s']:.4f}",
            f"{lt['bgnbd_fit_s']:.3f}",
            f"{c['bgnbd_fit_ratio']:.1f}x",
        )
        _row("Gamma-Gamma fit (s)", f"{s['gg_fit_s']:.4f}", f"{lt['gg_fit_s']:.3f}", "")
        print(
            f"  r alpha a b: strata {_params(s['bgnbd'], 'r alpha a b')}; "
            f"lifetimes {_params(lt['bgnbd'], 'r alpha a b')}"
        )
        print(
            f"  log-likelihood: strata {s['bgnbd']['log_likelihood']:.2f}; "
            f"lifetimes {lt['bgnbd']['log_likelihood']:.2f}"
        )
        print(
            f"  p q v: strata {_params(s['gamma_gamma'], 'p q v')}; "
            f"lifetimes {_params(lt['gamma_gamma'], 'p q v')}"
        )
    g = results.get("generated")
    if g:
        print(
            f"\ngenerated business: {g['customers']:,} customers, {g['events']:,} events, "
            f"{g['customers_with_orders']:,} with orders, {g['repeat_customers']:,} repeat"
        )
        t = g["run_clv_timings"]
        print(
            f"  run_clv (DuckDB): {g['run_clv_s']:.2f} s = summary {t['summary_s']:.2f} + fit "
            f"{t['fit_s']:.2f} + score {t['score_s']:.2f} + write {t.get('write_s', 0):.2f}"
        )
        s, lt = g["strata"], g["lifetimes"]
        _row("", "strata", "lifetimes", "ratio")
        _row(
            "BG/NBD fit (s)",
            f"{s['bgnbd_fit_s']:.3f}",
            f"{lt['bgnbd_fit_s']:.3f}",
            f"{lt['bgnbd_fit_s'] / s['bgnbd_fit_s']:.1f}x",
        )
        _row(
            "Gamma-Gamma fit (s)",
            f"{s['gg_fit_s']:.3f}",
            f"{lt['gg_fit_s']:.3f}",
            f"{lt['gg_fit_s'] / s['gg_fit_s']:.1f}x",
        )
        _row(
            "score: P(alive), E[purchases], spend, CLV",
            f"{s['score_s']:.3f}",
            f"{lt['score_s']:.3f}",
            f"{lt['score_s'] / s['score_s']:.1f}x",
        )
        _row(
            "fit + score (s)",
            f"{s['fit_score_s']:.3f}",
            f"{lt['fit_score_s']:.3f}",
            f"{g['fit_score_ratio']:.1f}x",
        )
        print(
            f"  r alpha a b: strata {_params(s['bgnbd'], 'r alpha a b')}; "
            f"lifetimes {_params(lt['bgnbd'], 'r alpha a b')}"
        )
        print(
            f"  log-likelihood: strata {s['bgnbd']['log_likelihood']:.1f}; "
            f"lifetimes {lt['bgnbd']['log_likelihood']:.1f}"
        )
        print(
            f"  p q v: strata {_params(s['gamma_gamma'], 'p q v')}; "
            f"lifetimes {_params(lt['gamma_gamma'], 'p q v')}"
        )
        print(
            f"  total 12-month CLV: strata {s['total_clv']:,.0f}; lifetimes "
            f"{lt['total_clv']:,.0f} (lifetimes counts a month as 4.345 weeks, Strata 4.348)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5, help="runs of each Strata CDNOW fit")
    parser.add_argument("--skip-cdnow", action="store_true")
    parser.add_argument("--skip-generated", action="store_true")
    parser.add_argument("--lifetimes-venv", default=str(DEFAULT_VENV))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "clv.json"))
    args = parser.parse_args()

    python = lifetimes_python(Path(args.lifetimes_venv))
    results: dict[str, Any] = {}
    if not args.skip_cdnow:
        print("CDNOW master...", flush=True)
        results["cdnow"] = bench_cdnow(python, args.repeat)
    if not args.skip_generated:
        results["generated"] = bench_generated(python, args.customers)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"\nmachine: {machine}; date {dt.date.today()}")
    _print(results)
    code = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps(
            {
                "date": dt.date.today().isoformat(),
                "machine": machine,
                "code": code,
                "command": " ".join(["python", *sys.argv]),
                "results": results,
            },
            indent=1,
            default=str,
        )
    )
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
