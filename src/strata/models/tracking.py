"""Experiment tracking: each fit is logged to MLflow when ``MLFLOW_TRACKING_URI`` is set.

Nothing is needed otherwise: without the variable, :func:`log_fit` does nothing and
MLflow is never imported. With it, MLflow must be installed (``pip install
'strata[mlflow]'``); a missing package is a clear error, not a silent skip.

>>> log_fit(kind="cluster", name="behaviour", params={"k": 5},
...         metrics={"silhouette": 0.41})  # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import Any

from strata.errors import ConfigError

#: MLflow experiment names are per workspace kind of model: ``strata/<kind>``.
EXPERIMENT_PREFIX = "strata"


def enabled() -> bool:
    return bool(os.environ.get("MLFLOW_TRACKING_URI"))


def log_fit(
    *,
    kind: str,
    name: str,
    params: dict[str, Any],
    metrics: dict[str, Any],
    model: Any = None,
    state: dict[str, Any] | None = None,
    tags: dict[str, str] | None = None,
) -> str | None:
    """Log one fit as an MLflow run: parameters, numeric metrics, the model.

    ``state`` (what Strata stores to score again) is logged as ``state.json``; a
    scikit-learn ``model`` is logged with MLflow's sklearn flavour as well.

    Returns the run id, or ``None`` when tracking is off.
    """
    if not enabled():
        return None
    try:
        import mlflow
    except ImportError:
        raise ConfigError(
            "MLFLOW_TRACKING_URI is set but MLflow is not installed: "
            "pip install 'strata[mlflow]', or unset MLFLOW_TRACKING_URI"
        ) from None
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    mlflow.set_experiment(f"{EXPERIMENT_PREFIX}/{kind}")
    with mlflow.start_run(run_name=name, tags={"strata.model": name, **(tags or {})}) as run:
        mlflow.log_params({k: _param(v) for k, v in params.items()})
        numbers = {
            k: float(v)
            for k, v in metrics.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
        if numbers:
            mlflow.log_metrics(numbers)
        if state is not None:
            from strata.models.store import jsonable

            mlflow.log_dict(jsonable(state), "state.json")
        if model is not None and type(model).__module__.startswith("sklearn."):
            _log_model(mlflow, model)
        return run.info.run_id


def _param(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 500 else text[:497] + "..."


def _log_model(mlflow: Any, model: Any) -> None:
    # MLflow's default for scikit-learn is skops, which loads without running pickled
    # code; `mlflow.sklearn.load_model(f"runs:/{run_id}/model")` gives the model back.
    import mlflow.sklearn

    mlflow.sklearn.log_model(model, name="model")
