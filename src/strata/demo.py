"""The demo business: generate it and load it like any import."""

from __future__ import annotations

import datetime as dt
from typing import Any

from strata.context import Strata
from strata.ingest.lines import event_figures
from strata.ingest.pipeline import load_batch


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
