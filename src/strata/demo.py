"""The demo business: generate it, load it like any import, segment it and model it."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

from strata.analysis.base import Analyst
from strata.analysis.rfm_migration import rfm_migration
from strata.context import Strata
from strata.ingest.lines import event_figures
from strata.ingest.pipeline import load_batch
from strata.segments.engine import Segments, read_specs, run_rfm
from strata.segments.nodes import SegmentSpec, referenced_segments
from strata.segments.reference import ReferenceTime


def generate_and_load(
    app: Strata,
    *,
    customers: int = 5000,
    seed: int = 7,
    end: dt.date | None = None,
    workspace: str | None = None,
) -> dict[str, Any]:
    """Generate a synthetic business (:mod:`strata.ingest.generate`) and import it.

    Generating again with the same seed finds every event already stored.
    """
    import time

    from strata.ingest.generate import generate_business

    started = time.perf_counter()
    batch = generate_business(customers, seed=seed, end=end)
    figures = event_figures(batch.events) if batch.events is not None else {}
    figures["items"] = 0 if batch.items is None else batch.items.num_rows
    return load_batch(
        app,
        batch,
        figures,
        workspace=workspace,
        source=f"generated: {customers} customers, seed {seed}",
        preset="generated",
        target="events",
        started=started,
    )


def fit_models(app: Strata, *, workspace: str | None = None) -> dict[str, Any]:
    """The demo's intelligence: clusters, lifetime value and churn risk, each a segment set.

    Churn is learned from the generator's recorded churners (validated out of time).
    """
    from strata.models.churn import run_churn
    from strata.models.cluster import run_clustering
    from strata.models.clv import run_clv

    return {
        "clusters": run_clustering(app, workspace),
        "clv": run_clv(app, workspace),
        "churn": run_churn(app, workspace),
    }


#: How many days before now the demo first segments its business: the segments' trends,
#: their 30-day sparklines and RFM migration then show a month of real movement.
HISTORY_DAYS = 28


def segment_business(
    app: Strata, *, workspace: str | None = None, examples: Path | None = None
) -> dict[str, Any]:
    """Score RFM and evaluate the example segments of ``examples`` (YAML files, managed as
    code), as of :data:`HISTORY_DAYS` days ago and then now, so the membership history
    holds a month of joins and exits.

    History only moves forward, so a workspace that has segments already (a second demo
    run) is evaluated now only. Returns :func:`~strata.segments.engine.run_rfm`'s summary
    of now, with ``since`` (the earlier evaluation's day, or ``None``) and ``moved``
    (customers whose RFM segment differs between the two).
    """
    segs = Segments(app, workspace)
    now = ReferenceTime.now()
    specs = [spec for _, spec in read_specs(examples)] if examples and examples.is_dir() else []
    fresh = not segs.list()
    if fresh:
        # Not pinned (fixed=False): the next plain refresh moves the segments on to now.
        then = dataclasses.replace(
            ReferenceTime.of(now.day - dt.timedelta(days=HISTORY_DAYS)), fixed=False
        )
        run_rfm(segs, as_of=then)
        _save_unevaluated(segs, specs)
        segs.refresh([s.name for s in specs], as_of=then)
    summary = run_rfm(segs, as_of=now)
    if fresh:
        segs.refresh([s.name for s in specs], as_of=now)
    elif specs:
        segs.apply(examples)
    summary.update(since=None, moved=0)
    if fresh:
        moves = rfm_migration(Analyst(app, workspace, as_of=now), then.day)
        changed = moves[moves.from_segment != moves.to_segment]
        summary.update(since=str(then.day), moved=int(changed.customers.sum()))
    return summary


def _save_unevaluated(segs: Segments, specs: list[SegmentSpec]) -> None:
    """Save ``specs`` as code-managed segments, each after those it names."""
    waiting = list(specs)
    while waiting:
        saved = {s.name for s in segs.list()}
        # None ready: one names a segment nowhere to be found, and saving it says so.
        ready = [s for s in waiting if referenced_segments(s.rule) <= saved] or waiting[:1]
        for spec in ready:
            segs.save(spec, source="code", evaluate=False)
            waiting.remove(spec)
