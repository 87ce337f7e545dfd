"""Churn risk from labels, and propensity to buy, with each score's top factors.

Two questions, one machinery: a gradient-boosting classifier (scikit-learn's
``HistGradientBoostingClassifier``, seeded, no early stopping, so a fit is
deterministic) on what was known about each customer at a cut-off, labelled by what
happened after it.

*Churn* (:func:`run_churn`) needs labels, from one of:

- the generator's recorded churners (the ``synthetic_truth`` table). Out-of-time:
  train on the customers alive at ``T1 = as_of - 2·horizon`` (label: churned in
  ``[T1, T1 + horizon)``), stacked with up to two earlier snapshots ``T1 - horizon``,
  ``T1 - 2·horizon`` where the data reaches back (all their labels are known by
  ``T2``), validate on those alive at ``T2 = as_of - horizon`` (label: churned in
  ``[T2, as_of)``), then refit on the ``T2`` data and score everyone alive at
  ``as_of``;
- a column of customers (``label="churned"``: yes/no, true/false, 1/0 or a boolean),
  as a subscription business exports it. Features are built at ``cutoff`` (default
  ``as_of - horizon``: the export says who churned after it), validated by stratified
  5-fold cross-validation; the model fitted on every labelled customer scores the
  customers the column does not mark as churned, with features at ``as_of``.

A shop without labels gets its churn risk from the probability alive instead
(``strata predict clv``).

*Propensity to buy* (:func:`run_propensity`) labels a customer by whether they
order in the ``days`` after the cut-off, read from the events, so it works for any
shop; the out-of-time design is the churn one with ``horizon = days``.

No leakage. Features come from the segment compiler at the cut-off, which sees only
events before the cut-off instant: what happens afterwards cannot reach them (the
tests load later events and check the training frame does not move). Customer
attributes are read as they are stored now, so an attribute that is updated when a
customer leaves (a ``cancelled`` plan) would leak: the label column, columns named
after it (``churned_*``) and columns named in ``exclude`` are never features.

Top factors. Every stored score carries the three features that raise it most for
that customer, measured by *occlusion*: the change in predicted probability when the
feature alone is set to its typical value (the training median, or the most common
category) with the others kept. It is cheap (one batched prediction per feature),
deterministic and easy to read ("143 days since last order (typical 21) raises the
risk by 18 points"); it is not SHAP: effects of correlated features are not shared
out, and they need not add up to the score. The overall ranking of features is
scikit-learn's permutation importance (drop in AUC) on the validation data.

>>> result = run_churn(app, "demo")  # doctest: +SKIP
>>> result["auc"], result["lift_top_decile"]  # doctest: +SKIP
(0.6425, 1.7875)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.inspection import permutation_importance
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from strata import plans
from strata.catalog import Workspace
from strata.errors import InputError, NotFound
from strata.models import features as F
from strata.models.features import Feature
from strata.segments import nodes as N
from strata.segments.compile import bucket
from strata.segments.reference import ReferenceTime

if TYPE_CHECKING:
    from strata.context import Strata
    from strata.segments.compile import Compiler
    from strata.segments.engine import Segments

#: Days after the cut-off in which a churn counts.
DEFAULT_HORIZON_DAYS = 90
#: Lower score bounds of the risk bands: high from 0.7, medium from 0.3, low below.
DEFAULT_BANDS: dict[str, float] = {"high": 0.7, "medium": 0.3}
#: Fewest customers of each class (churned / stayed) a fit and a validation need.
MIN_CLASS = 20
#: Folds of the cross-validation of a label column.
CV_FOLDS = 5
#: Factors stored with each score.
TOP_FACTORS = 3
#: A text attribute becomes a categorical feature with at most this many categories.
MAX_CATEGORIES = 30
#: Training and validation read at most this many customers (deterministic sample).
TRAIN_SAMPLE = 200_000
#: Permutation importance reads at most this many validation rows.
IMPORTANCE_ROWS = 20_000
#: Snapshots the out-of-time training stacks (T1, T1 - days, …, as far as the data goes).
TRAIN_WINDOWS = 3
#: Predictions on fewer rows than this run on one thread.
PARALLEL_ROWS = 50_000
#: Recent-activity windows, in days before the cut-off.
RECENT_DAYS = (30, 90)
#: Share of customers the propensity segment takes (the most likely buyers).
PROPENSITY_TOP_PERCENT = 20.0

# Identifiers, contact details and bookkeeping are not behaviour (and ``updated_at``
# moves when anything changes, after the cut-off too).
_NOT_FEATURES = {"customer_id", "external_id", "email", "name", "phone", "created_at", "updated_at"}
_YES = {"yes", "y", "true", "t", "1", "1.0", "churned"}
_NO = {"no", "n", "false", "f", "0", "0.0", "retained", "active"}


# -- the estimator ----------------------------------------------------------------------------
class ChurnModel(ClassifierMixin, BaseEstimator):
    """A seeded gradient-boosting classifier of a binary outcome, with per-row factors.

    Missing values are allowed (the trees learn where they go). ``categorical`` marks
    columns holding category codes (non-negative whole numbers). After ``fit``,
    ``typical_`` holds each column's training median (the most common code for a
    categorical column), the value :meth:`contributions` puts in its place.

    >>> model = ChurnModel(max_iter=50).fit(X, y)  # doctest: +SKIP
    >>> model.predict_proba(X)[:, 1]  # doctest: +SKIP
    """

    def __init__(
        self,
        learning_rate: float = 0.05,
        max_iter: int = 100,
        max_leaf_nodes: int = 7,
        min_samples_leaf: int = 40,
        l2_regularization: float = 1.0,
        categorical: Sequence[bool] | None = None,
        random_state: int = 0,
    ):
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.categorical = categorical
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.classifier_tags.multi_class = False
        return tags

    def fit(self, X: Any, y: Any) -> ChurnModel:
        """Fit to ``X`` (customers × features) and binary labels ``y``; returns self."""
        X, y = validate_data(self, X, y, ensure_all_finite="allow-nan", dtype="float64")
        check_classification_targets(y)
        classes = np.unique(y)
        if len(classes) != 2:
            raise InputError(
                f"the labels have {len(classes)} class(es), {classes[:5].tolist()}: "
                "a churn or propensity model needs exactly two (e.g. churned yes / no). "
                "Only binary classification is supported."
            )
        self.classes_ = classes
        mask = None
        if self.categorical is not None:
            mask = np.asarray(self.categorical, dtype=bool)
            if mask.shape != (X.shape[1],):
                raise InputError(
                    f"categorical marks {mask.size} columns but X has {X.shape[1]}: "
                    "give one true/false per column"
                )
        booster = HistGradientBoostingClassifier(
            learning_rate=self.learning_rate,
            max_iter=self.max_iter,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            categorical_features=mask if mask is not None and mask.any() else None,
            early_stopping=False,
            random_state=self.random_state,
        )
        # A column missing everywhere (no events in a customers-only export) would break the
        # booster's binning; as a constant it is simply never split on.
        self.empty_ = np.isnan(X).all(axis=0)
        with _threads(len(X)):
            self.model_ = booster.fit(self._ready(X), (y == classes[1]).astype(int))
        self.n_iter_ = self.model_.n_iter_
        typical = np.full(X.shape[1], np.nan)
        for j in range(X.shape[1]):
            present = X[:, j][~np.isnan(X[:, j])]
            if present.size == 0:
                continue
            if mask is not None and mask[j]:
                values, counts = np.unique(present, return_counts=True)
                typical[j] = values[np.argmax(counts)]
            else:
                typical[j] = float(np.median(present))
        self.typical_ = typical
        self.feature_names_ = (
            [str(c) for c in self.feature_names_in_]
            if hasattr(self, "feature_names_in_")
            else [f"x{j}" for j in range(X.shape[1])]
        )
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probabilities of the two classes, one row per row of ``X``."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan", dtype="float64")
        with _threads(len(X)):
            return self.model_.predict_proba(self._ready(X))

    def predict(self, X: Any) -> np.ndarray:
        """The more likely class of each row."""
        proba = self.predict_proba(X)
        return self.classes_[(proba[:, 1] > 0.5).astype(int)]

    def contributions(self, X: Any, *, batch: int = 100_000) -> np.ndarray:
        """Per row and feature: the positive-class probability minus the probability with
        that feature set to its typical value (occlusion; positive = the value raises it).
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan", dtype="float64")
        out = np.zeros(X.shape, dtype="float64")
        with _threads(len(X)):
            self._occlude(X, out, batch)
        return out

    def _ready(self, X: np.ndarray) -> np.ndarray:
        if not self.empty_.any():
            return X
        X = X.copy()
        X[:, self.empty_] = 0.0
        return X

    def _occlude(self, X: np.ndarray, out: np.ndarray, batch: int) -> None:
        X = self._ready(X)
        for start in range(0, X.shape[0], batch):
            part = X[start : start + batch]
            base = self.model_.predict_proba(part)[:, 1]
            for j in range(X.shape[1]):
                if self.empty_[j] or np.isnan(self.typical_[j]):
                    continue
                moved = part.copy()
                moved[:, j] = self.typical_[j]
                out[start : start + batch, j] = base - self.model_.predict_proba(moved)[:, 1]


def _threads(rows: int):
    """One thread for small predictions: OpenMP start-up per tree costs more than it saves
    (measured: 30 s instead of 1 s for permutation importance on 1,100 rows, 2 cores)."""
    if rows >= PARALLEL_ROWS:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="openmp")


# -- features ---------------------------------------------------------------------------------
def churn_features(
    segs: Segments, ref: ReferenceTime, *, exclude: Sequence[str] = ()
) -> list[Feature]:
    """The features churn and propensity models read: behaviour, recent activity, attributes.

    Behaviour is :func:`strata.models.features.behaviour_features`; recent activity is
    events in the last 30 and 90 days, orders in the last 90 and days since any event;
    attributes are the customers' numbers, yes/no and dates (as days before the
    cut-off) and text attributes with 2 to ``MAX_CATEGORIES`` values seen (as
    categories). Columns in ``exclude`` are left out.
    """
    out = [*F.behaviour_features(segs, ref), *_recent_features()]
    skip = set(exclude) | _NOT_FEATURES
    customers = segs.wh.table(segs.ws.id, "customers")
    text: list[str] = []
    for name, dtype in customers.schema().items():
        if name in skip:
            continue
        words = name.replace("_", " ")
        if dtype.is_date():
            out.append(Feature(name, f"days since {words}", "attribute", name, "median"))
        elif dtype.is_numeric() or dtype.is_boolean():
            out.append(Feature(name, words, "attribute", name, "median"))
        elif dtype.is_string():
            text.append(name)
    if text:
        distinct = customers.aggregate(**{c: customers[c].nunique() for c in text})
        counts = distinct.to_pyarrow().to_pylist()[0]
        for name in text:
            if 2 <= int(counts[name] or 0) <= MAX_CATEGORIES:
                out.append(Feature(name, name.replace("_", " "), "category", name, "zero"))
    return out


def _recent_features() -> list[Feature]:
    out = [Feature("days_since_last_event", "days since last activity", "recent", "last", "max")]
    for days in RECENT_DAYS:
        out.append(
            Feature(f"events_last_{days}d", f"events in the last {days} days", "recent", f"e{days}")
        )
    last = RECENT_DAYS[-1]
    out.append(
        Feature(f"orders_last_{last}d", f"orders in the last {last} days", "recent", f"o{last}")
    )
    # Rates tell a steady low-activity customer from one who is fading; trees cannot divide.
    out.append(Feature("events_per_month", "events per 30 days", "recent", "rate:n_all"))
    out.append(Feature("orders_per_month", "orders per 30 days", "recent", "rate:o_all"))
    return out


def feature_frame(
    segs: Segments,
    features: Sequence[Feature],
    ref: ReferenceTime,
    *,
    seen_only: bool = True,
    sample: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """``customer_id``, ``external_id`` and ``features`` at ``ref``, one row per customer.

    Only events before ``ref.instant`` count. With ``seen_only``, customers are those
    with an event before ``ref`` or a signup date on or before its day; otherwise every
    customer but those who signed up after it. Above ``sample`` customers a
    deterministic slice of about that size is read.
    """
    compiler = segs.compiler(ref)
    columns = _columns(compiler, features)
    p = _recent_table(compiler)
    wide = compiler.wide()
    signup = wide.signup_date if "signup_date" in wide.columns else None
    later = (signup > ibis.literal(ref.day)).fill_null(False) if signup is not None else None
    if seen_only:
        seen = wide[f"{p}_first_event"].notnull()
        if signup is not None:
            seen = seen | (signup <= ibis.literal(ref.day)).fill_null(False)
        wide = wide.filter(seen)
    elif later is not None:
        wide = wide.filter(~later)
    if sample is not None:
        total = int(wide.count().to_pyarrow().as_py())
        if total > sample:
            keep = max(1, round(10_000 * sample / total))
            wide = wide.filter(bucket(wide.customer_id, f"sample:{seed}") < keep)
    selected = wide.select(
        "customer_id", "external_id", **{name: fn(wide) for name, fn in columns.items()}
    )
    frame = selected.to_pyarrow().to_pandas()
    return frame.sort_values("customer_id", kind="stable").reset_index(drop=True)


def _columns(compiler: Compiler, features: Sequence[Feature]) -> dict[str, F.ValueFn]:
    shared = [f for f in features if f.kind not in {"recent", "category"}]
    made = F.feature_columns(compiler, shared)
    columns: dict[str, F.ValueFn] = {}
    for f in features:
        if f.kind == "recent":
            columns[f.name] = _recent_column(compiler, f.of or "")
        elif f.kind == "category":
            columns[f.name] = _text(f.of or f.name)
        else:
            columns[f.name] = made[f.name]
    return columns


def _text(name: str) -> F.ValueFn:
    return lambda w: w[name]


def _recent_table(compiler: Compiler) -> str:
    """Per customer: first and last event, events in each recent window, recent orders."""
    e = compiler.events()
    instant = compiler.ctx.ref.instant
    order = compiler.ctx.rfm.order_event

    def since(days: int) -> ir.BooleanValue:
        return e.timestamp >= ibis.literal(instant - dt.timedelta(days=days))

    last = RECENT_DAYS[-1]
    table = e.group_by("customer_id").aggregate(
        first_event=e.timestamp.min(),
        last_event=e.timestamp.max(),
        n_all=e.count(),
        o_all=(e.event_type == order).ifelse(1, 0).sum(),
        **{f"e{d}": since(d).ifelse(1, 0).sum() for d in RECENT_DAYS},
        **{f"o{last}": (since(last) & (e.event_type == order)).ifelse(1, 0).sum()},
    )
    return compiler.per_customer("churn:recent", table)


def _recent_column(compiler: Compiler, what: str) -> F.ValueFn:
    p = _recent_table(compiler)
    day = (compiler.ctx.ref.day - dt.date(1970, 1, 1)).days * 86400
    if what == "last":
        return lambda w: ((day - w[f"{p}_last_event"].date().epoch_seconds()) / 86400.0).cast(
            "float64"
        )
    if what.startswith("rate:"):
        count = what.removeprefix("rate:")

        def rate(w: ibis.Table) -> ir.FloatingValue:
            days = (day - w[f"{p}_first_event"].date().epoch_seconds()) / 86400.0
            return (w[f"{p}_{count}"].fill_null(0) * 30.0 / ibis.greatest(days, 30.0)).cast(
                "float64"
            )

        return rate
    return lambda w: w[f"{p}_{what}"].fill_null(0).cast("float64")


def encode(
    frame: pd.DataFrame, features: Sequence[Feature], categories: Mapping[str, Sequence[str]]
) -> pd.DataFrame:
    """The model's input: every feature a float column, categories as their codes.

    A category not in ``categories`` (learned by :func:`learn_categories`) is missing.
    """
    out: dict[str, np.ndarray] = {}
    for f in features:
        if f.kind == "category":
            codes = {v: float(i) for i, v in enumerate(categories.get(f.name, []))}
            out[f.name] = frame[f.name].map(codes).astype("float64").to_numpy()
        else:
            out[f.name] = pd.to_numeric(frame[f.name], errors="coerce").astype("float64").to_numpy()
    return pd.DataFrame(out, index=frame.index)


def learn_categories(frame: pd.DataFrame, features: Sequence[Feature]) -> dict[str, list[str]]:
    """The categories of each text feature: the most common values (ties by value)."""
    out: dict[str, list[str]] = {}
    for f in features:
        if f.kind != "category":
            continue
        counts = frame[f.name].dropna().astype(str).value_counts()
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        out[f.name] = [v for v, _ in ranked[:MAX_CATEGORIES]]
    return out


# -- labels -----------------------------------------------------------------------------------
def truth_labels(frame: pd.DataFrame, truth: pd.DataFrame, ref: ReferenceTime, days: int):
    """Customers of ``frame`` alive at ``ref`` (per ``truth``), and whether each churned
    in ``[ref.instant, ref.instant + days)``: ``(frame, labels)``.
    """
    t = frame[["external_id"]].merge(truth, on="external_id", how="left")
    churned = t.churned.fillna(False).astype(bool).to_numpy()
    at = pd.to_datetime(t.churned_at).to_numpy()
    start = np.datetime64(ref.instant)
    end = np.datetime64(ref.instant + dt.timedelta(days=days))
    gone = churned & (at < start)
    label = churned & (at >= start) & (at < end)
    keep = ~gone
    return frame[keep].reset_index(drop=True), label[keep].astype(int)


def order_labels(
    segs: Segments, customer_ids: np.ndarray, ref: ReferenceTime, days: int
) -> np.ndarray:
    """1 for each customer who ordered in ``[ref.instant, ref.instant + days)``, else 0."""
    e = segs.wh.table(segs.ws.id, "events")
    start = ref.instant
    end = start + dt.timedelta(days=days)
    buyers = (
        e.filter(
            e.event_type == segs.rfm_config().order_event,
            e.timestamp >= ibis.literal(start),
            e.timestamp < ibis.literal(end),
        )
        .select("customer_id")
        .distinct()
        .to_pyarrow()
        .column(0)
        .to_numpy()
    )
    return np.isin(customer_ids, buyers).astype(int)


def parse_labels(values: pd.Series, column: str) -> pd.Series:
    """A label column as 1 (churned) / 0 (stayed), missing where empty.

    Accepts booleans, 1/0 and the words yes/no, true/false, y/n, t/f (any case); anything
    else is an error naming a few of the values.
    """
    if values.dtype == bool or str(values.dtype) == "boolean":
        return values.astype("Float64").astype("float64")
    text = values.map(lambda v: None if v is None or v != v else str(v).strip().lower())
    text = text.where(text != "", None)
    yes, no = text.isin(_YES), text.isin(_NO)
    bad = text.notna() & ~yes & ~no
    if bad.any():
        examples = ", ".join(repr(v) for v in sorted(set(values[bad].astype(str)))[:3])
        raise InputError(
            f"label column {column!r} has values that are not yes/no: {examples}; "
            "use yes/no, true/false or 1/0 (empty for unknown)"
        )
    return pd.Series(np.where(yes, 1.0, np.where(no, 0.0, np.nan)), index=values.index)


# -- metrics ----------------------------------------------------------------------------------
def lift_top_decile(y: np.ndarray, scores: np.ndarray) -> float:
    """The positive rate among the 10% highest scores over the overall positive rate."""
    y = np.asarray(y, dtype=float)
    base = y.mean()
    if len(y) == 0 or base == 0:
        return float("nan")
    n = max(1, math.ceil(len(y) * 0.1))
    # Stable order: equal scores keep their row order, so the decile is reproducible.
    top = np.argsort(-np.asarray(scores, dtype=float), kind="stable")[:n]
    return float(y[top].mean() / base)


def calibration_table(y: np.ndarray, scores: np.ndarray, bins: int = 10) -> list[dict[str, Any]]:
    """Scores cut into ``bins`` equal-width bins: customers, positives, mean predicted and
    observed rate (``None`` in an empty bin)."""
    y = np.asarray(y, dtype=float)
    scores = np.asarray(scores, dtype=float)
    which = np.minimum((scores * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        inside = which == b
        n = int(inside.sum())
        out.append(
            {
                "bin": f"{b / bins:.1f}-{(b + 1) / bins:.1f}",
                "customers": n,
                "positives": int(y[inside].sum()),
                "mean_predicted": round(float(scores[inside].mean()), 4) if n else None,
                "observed_rate": round(float(y[inside].mean()), 4) if n else None,
            }
        )
    return out


def _evaluate(y: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    return {
        "auc": round(float(roc_auc_score(y, scores)), 4),
        "lift_top_decile": round(lift_top_decile(y, scores), 4),
        "base_rate": round(float(np.mean(y)), 4),
        "brier": round(float(np.mean((scores - y) ** 2)), 4),
        "calibration": calibration_table(y, scores),
    }


def _importance(
    model: ChurnModel, X: pd.DataFrame, y: np.ndarray, features: Sequence[Feature]
) -> list[dict[str, Any]]:
    """Permutation importance (mean drop in AUC), highest first."""
    if len(X) > IMPORTANCE_ROWS:
        keep = np.random.default_rng(0).choice(len(X), IMPORTANCE_ROWS, replace=False)
        keep.sort()
        X, y = X.iloc[keep], y[keep]
    result = permutation_importance(model, X, y, scoring="roc_auc", n_repeats=3, random_state=0)
    rows = [
        {
            "feature": f.label,
            "name": f.name,
            "importance": round(float(m), 4),
            "std": round(float(s), 4),
        }
        for f, m, s in zip(features, result.importances_mean, result.importances_std, strict=True)
    ]
    return sorted(rows, key=lambda r: (-r["importance"], r["name"]))


# -- factors ----------------------------------------------------------------------------------
def top_factors(
    model: ChurnModel,
    X: pd.DataFrame,
    raw: pd.DataFrame,
    features: Sequence[Feature],
    categories: Mapping[str, Sequence[str]],
    *,
    what: str = "the risk",
    top: int = TOP_FACTORS,
) -> list[list[dict[str, Any]]]:
    """For each row, up to ``top`` features that raise its score most (occlusion), in words.

    Each factor is ``{"feature": label, "name": name, "value": v, "typical": t,
    "effect": +0.18, "text": "143 days since last order (typical 21) raises the risk by
    18 points"}``; a feature whose typical value scores higher does not appear.
    """
    effects = model.contributions(X)
    order = np.argsort(-effects, axis=1, kind="stable")[:, :top]
    typical = [_typical(f, t, categories) for f, t in zip(features, model.typical_, strict=True)]
    out: list[list[dict[str, Any]]] = []
    raw_values = {f.name: raw[f.name].to_numpy() for f in features}
    for i in range(len(X)):
        factors = []
        for j in order[i]:
            effect = round(float(effects[i, j]), 4)
            if effect <= 0:
                break
            f = features[j]
            value = _plain(raw_values[f.name][i])
            factors.append(
                {
                    "feature": f.label,
                    "name": f.name,
                    "value": value,
                    "typical": typical[j],
                    "effect": effect,
                    "text": _sentence(f, value, typical[j], effect, what),
                }
            )
        out.append(factors)
    return out


def _typical(f: Feature, value: float, categories: Mapping[str, Sequence[str]]) -> Any:
    if value != value:
        return None
    if f.kind == "category":
        names = categories.get(f.name, [])
        return names[int(value)] if 0 <= int(value) < len(names) else None
    return _round(value)


def _plain(value: Any) -> Any:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return _round(float(value))
    return str(value)


def _round(value: float) -> float | int:
    if abs(value) >= 10 or float(value).is_integer():
        return round(value)
    return round(value, 2)


def _sentence(f: Feature, value: Any, typical: Any, effect: float, what: str) -> str:
    points = effect * 100
    amount = f"{points:.0f}" if points >= 1 else f"{points:.1f}"
    unit = "point" if amount in {"1", "1.0"} else "points"
    typical_text = "none" if typical is None else typical
    if f.kind == "category" or (f.kind == "attribute" and not f.label.startswith("days ")):
        shown = f"{f.label} {value if value is not None else 'unknown'}"
    elif value is None:
        shown = f"no {f.label}"
    else:
        shown = f"{value} {f.label}"
    return f"{shown} (typical {typical_text}) raises {what} by {amount} {unit}"


# -- entry points -----------------------------------------------------------------------------
def run_churn(
    app: Strata,
    workspace: str | Workspace | None = None,
    *,
    label: str | None = None,
    as_of: ReferenceTime | dt.date | dt.datetime | None = None,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    cutoff: ReferenceTime | dt.date | dt.datetime | None = None,
    bands: Mapping[str, float] | None = None,
    exclude: Sequence[str] = (),
    params: Mapping[str, Any] | None = None,
    save: bool = True,
) -> dict[str, Any]:
    """Fit and validate a churn model, score the live customers, make the risk bands.

    Labels come from ``label`` (a column of customers) or the generator's recorded
    churners (see the module). ``as_of`` defaults to the end of the day of the
    workspace's last event. With ``save``, the fit is stored as a new version of model
    ``churn``, every scored customer gets a ``churn_risk`` prediction (the probability
    of churning within ``horizon_days``; ``details`` holds the model, the method and
    the top factors), and the segments "Churn risk: high" (score ≥ ``bands["high"]``,
    default 0.7), "Churn risk: medium" (≥ ``bands["medium"]``, default 0.3) and "Churn
    risk: low" are saved and refreshed. ``params`` are :class:`ChurnModel` parameters.

    >>> result = run_churn(app, "demo", horizon_days=90)  # doctest: +SKIP
    >>> result["validation"], result["auc"]  # doctest: +SKIP
    ('out_of_time', 0.6425)
    """
    from strata.segments.engine import Segments

    ws = workspace if isinstance(workspace, Workspace) else app.workspace(workspace)
    plans.require_feature(ws, "predictive")
    segs = Segments(app, ws)
    horizon = _check_days(horizon_days, "horizon_days")
    limits = _check_bands(bands)
    ref = _as_of(segs, as_of)
    model = _model(params)
    if label is not None:
        study = _label_study(segs, ref, label, horizon, cutoff, exclude, model)
    else:
        truth = _truth(segs)
        if truth is None:
            raise InputError(
                f"workspace {ws.name!r} has no churn labels: give a yes/no column of "
                "customers (--label COLUMN), or, without labels, get churn risk from the "
                "probability alive with `strata predict clv`"
            )
        study = _out_of_time(
            segs,
            ref,
            horizon,
            exclude,
            model,
            lambda frame, at: truth_labels(frame, truth, at, horizon),
            alive=lambda frame: truth_labels(frame, truth, ref, horizon)[0],
            what="churners",
        )
        study["label"] = "synthetic_truth"
    return _finish(
        app,
        segs,
        study,
        kind="churn",
        name="churn",
        prediction="churn_risk",
        what="the risk",
        ref=ref,
        extra_params={"horizon_days": horizon, "label": label, "bands": limits},
        segments=_band_specs(limits) if save else [],
        family="churn",
        save=save,
    ) | {"horizon_days": horizon}


def run_propensity(
    app: Strata,
    workspace: str | Workspace | None = None,
    *,
    days: int = 30,
    as_of: ReferenceTime | dt.date | dt.datetime | None = None,
    top_percent: float | None = PROPENSITY_TOP_PERCENT,
    params: Mapping[str, Any] | None = None,
    save: bool = True,
) -> dict[str, Any]:
    """Fit and validate the chance of an order in the next ``days`` days; score everyone.

    Out-of-time like churn: train at ``as_of - 2·days`` (label: ordered in the
    following ``days``), validate at ``as_of - days``, refit there and score every
    customer seen before ``as_of``. With ``save``: model and prediction type
    ``propensity_<days>d``, and (unless ``top_percent`` is ``None``) the segment
    "Likely to buy in <days> days" holding the ``top_percent`` highest scores.

    >>> run_propensity(app, "demo", days=30)["auc"]  # doctest: +SKIP
    0.7795
    """
    from strata.segments.engine import Segments

    ws = workspace if isinstance(workspace, Workspace) else app.workspace(workspace)
    plans.require_feature(ws, "predictive")
    segs = Segments(app, ws)
    days = _check_days(days, "days")
    if top_percent is not None and not 0 < float(top_percent) <= 100:
        raise InputError(f"top_percent must be above 0 and at most 100, not {top_percent!r}")
    ref = _as_of(segs, as_of)
    model = _model(params)
    study = _out_of_time(
        segs,
        ref,
        days,
        (),
        model,
        lambda frame, at: (frame, order_labels(segs, frame.customer_id.to_numpy(), at, days)),
        alive=lambda frame: frame,
        what="buyers",
    )
    study["label"] = f"ordered within {days} days"
    name = f"propensity_{days}d"
    specs = []
    if save and top_percent is not None:
        rule = {"type": "prediction", "prediction": name, "top_percent": float(top_percent)}
        specs.append(
            (
                f"Likely to buy in {days} days",
                f"The {float(top_percent):g}% of customers most likely to order in the next "
                f"{days} days (model {name}).",
                rule,
            )
        )
    return _finish(
        app,
        segs,
        study,
        kind="propensity",
        name=name,
        prediction=name,
        what="the chance",
        ref=ref,
        extra_params={"days": days, "top_percent": top_percent},
        segments=specs,
        family=name,
        save=save,
    ) | {"days": days}


# -- the studies ------------------------------------------------------------------------------
def _out_of_time(
    segs: Segments,
    ref: ReferenceTime,
    days: int,
    exclude: Sequence[str],
    model: ChurnModel,
    labelled: Callable[[pd.DataFrame, ReferenceTime], tuple[pd.DataFrame, np.ndarray]],
    *,
    alive: Callable[[pd.DataFrame], pd.DataFrame],
    what: str,
) -> dict[str, Any]:
    t2 = ReferenceTime.of(ref.instant - dt.timedelta(days=days))
    t1 = ReferenceTime.of(ref.instant - dt.timedelta(days=2 * days))
    first = _check_history(segs, t1, ref, days)
    features = churn_features(segs, ref, exclude=exclude)
    # Earlier snapshots (T1 - days, T1 - 2·days …) add training rows; all their labels are
    # known at T2 as well, so validation stays out of time.
    windows = [t1]
    while len(windows) < TRAIN_WINDOWS:
        earlier = ReferenceTime.of(windows[-1].instant - dt.timedelta(days=days))
        if earlier.instant - dt.timedelta(days=days) < first:
            break
        windows.append(earlier)
    parts = [labelled(feature_frame(segs, features, t, sample=TRAIN_SAMPLE), t) for t in windows]
    train = pd.concat([f for f, _ in parts], ignore_index=True)
    y1 = np.concatenate([y for _, y in parts])
    valid, y2 = labelled(feature_frame(segs, features, t2, sample=TRAIN_SAMPLE), t2)
    _check_classes(y1, f"customers at the training cut-off {t1}", what)
    _check_classes(y2, f"customers at the validation cut-off {t2}", what)
    categories = learn_categories(train, features)
    mask = [f.kind == "category" for f in features]
    X1, X2 = encode(train, features, categories), encode(valid, features, categories)
    first = clone(model).set_params(categorical=mask).fit(X1, y1)
    scores = first.predict_proba(X2)[:, 1]
    metrics = _evaluate(y2, scores)
    importance = _importance(first, X2, y2, features)
    # The model that scores is fitted on the newest labelled data: the validation cut-off.
    categories = learn_categories(valid, features)
    X2 = encode(valid, features, categories)
    final = clone(model).set_params(categorical=mask).fit(X2, y2)
    now = alive(feature_frame(segs, features, ref))
    return {
        "validation": "out_of_time",
        "cutoffs": {
            "train": [str(t) for t in windows],
            "validate": str(t2),
            "score": str(ref),
        },
        "customers": {"train": len(train), "validate": len(valid)},
        "positives": {"train": int(y1.sum()), "validate": int(y2.sum())},
        **metrics,
        "top_factors": importance,
        "features": features,
        "categories": categories,
        "model": final,
        "score_frame": now,
    }


def _label_study(
    segs: Segments,
    ref: ReferenceTime,
    column: str,
    horizon: int,
    cutoff: ReferenceTime | dt.date | dt.datetime | None,
    exclude: Sequence[str],
    model: ChurnModel,
) -> dict[str, Any]:
    customers = segs.wh.table(segs.ws.id, "customers")
    schema = customers.schema()
    if column not in schema or column in _NOT_FEATURES:
        usable = [c for c in schema if c not in _NOT_FEATURES]
        raise InputError(
            f"customers have no label column {column!r}; import it (a yes/no column of a "
            f"customers file) or choose one of: {', '.join(usable)}"
        )
    at = _reference(cutoff) if cutoff is not None else None
    at = at or ReferenceTime.of(ref.instant - dt.timedelta(days=horizon))
    if at.instant > ref.instant:
        raise InputError(f"cutoff {at} is after as_of {ref}: the cut-off must come first")
    raw = customers.select("customer_id", column).to_pyarrow().to_pandas()
    labels = parse_labels(raw[column], column)
    labels.index = raw.customer_id.to_numpy()
    leaks = {column, *(c for c in schema if c.startswith(f"{column}_")), *exclude}
    features = churn_features(segs, ref, exclude=sorted(leaks))
    frame = feature_frame(segs, features, at, seen_only=False)
    y_all = labels.reindex(frame.customer_id.to_numpy()).to_numpy()
    known = ~np.isnan(y_all)
    frame, y = frame[known].reset_index(drop=True), y_all[known].astype(int)
    _check_classes(y, f"customers with a {column!r} value", f"{column!r} = yes")
    categories = learn_categories(frame, features)
    mask = [f.kind == "category" for f in features]
    X = encode(frame, features, categories)
    oof = np.zeros(len(y))
    folds = StratifiedKFold(n_splits=CV_FOLDS, shuffle=True, random_state=0)
    fold_auc: list[float] = []
    importance: list[dict[str, Any]] = []
    for k, (fit_rows, test_rows) in enumerate(folds.split(X, y)):
        fold = clone(model).set_params(categorical=mask).fit(X.iloc[fit_rows], y[fit_rows])
        oof[test_rows] = fold.predict_proba(X.iloc[test_rows])[:, 1]
        fold_auc.append(round(float(roc_auc_score(y[test_rows], oof[test_rows])), 4))
        if k == 0:
            importance = _importance(fold, X.iloc[test_rows], y[test_rows], features)
    final = clone(model).set_params(categorical=mask).fit(X, y)
    now = feature_frame(segs, features, ref, seen_only=False)
    gone = labels.reindex(now.customer_id.to_numpy()).to_numpy() == 1
    return {
        "validation": "stratified_cv",
        "label": column,
        "folds": CV_FOLDS,
        "fold_auc": fold_auc,
        "cutoffs": {"features": str(at), "score": str(ref)},
        "customers": {"labelled": len(y)},
        "positives": {"labelled": int(y.sum())},
        **_evaluate(y, oof),
        "top_factors": importance,
        "features": features,
        "categories": categories,
        "model": final,
        "score_frame": now[~gone].reset_index(drop=True),
    }


def _finish(
    app: Strata,
    segs: Segments,
    study: dict[str, Any],
    *,
    kind: str,
    name: str,
    prediction: str,
    what: str,
    ref: ReferenceTime,
    extra_params: dict[str, Any],
    segments: list[tuple[str, str, dict[str, Any]]],
    family: str,
    save: bool,
) -> dict[str, Any]:
    from strata.models.store import ModelStore, details_json, write_predictions
    from strata.models.tracking import log_fit

    model: ChurnModel = study.pop("model")
    features: list[Feature] = study.pop("features")
    categories: dict[str, list[str]] = study.pop("categories")
    frame: pd.DataFrame = study.pop("score_frame")
    X = encode(frame, features, categories)
    scores = model.predict_proba(X)[:, 1] if len(X) else np.empty(0)
    result: dict[str, Any] = {
        "model": name,
        "as_of": str(ref),
        **study,
        "features": [f.name for f in features],
        "customers_scored": len(frame),
        "mean_score": round(float(scores.mean()), 4) if len(scores) else None,
        "model_version": None,
        "bands": [],
    }
    if not save:
        return result
    model_params = {k: v for k, v in model.get_params().items() if k != "categorical"}
    params = {**model_params, **extra_params, "method": "HistGradientBoostingClassifier"}
    state = {
        "features": [f.to_dict() for f in features],
        "categories": categories,
        "typical": model.typical_,
        "cutoffs": study["cutoffs"],
        "top_factors": study["top_factors"],
    }
    metrics = {
        k: study[k] for k in ("auc", "lift_top_decile", "base_rate", "brier", "calibration")
    } | {"customers_scored": len(frame), "validation": study["validation"]}
    fitted = ModelStore(app, segs.ws).save(
        kind=kind, name=name, params=params, state=state, metrics=metrics, as_of=ref.instant
    )
    factors = top_factors(model, X, frame, features, categories, what=what)
    details = [
        details_json(
            {"model": fitted.model_version, "method": "occlusion", "factors": customer_factors}
        )
        for customer_factors in factors
    ]
    predicted_at = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    rows = pd.DataFrame(
        {
            "customer_id": frame.customer_id.to_numpy().astype("int64"),
            "value": scores.astype("float64"),
            "confidence": np.full(len(frame), np.nan),
            "details": details,
        }
    )
    write_predictions(
        app,
        segs.ws.id,
        prediction,
        rows,
        model_version=fitted.model_version,
        predicted_at=predicted_at,
    )
    log_fit(kind=kind, name=name, params=params, metrics=metrics, model=model.model_, state=state)
    refreshed = {}
    if segments:
        for seg_name, description, rule in segments:
            spec = N.SegmentSpec(name=seg_name, description=description, rule=N.parse_rule(rule))
            segs.save(
                spec,
                kind="prediction",
                source="system",
                family=family,
                replace=True,
                evaluate=False,
            )
        refreshed = {r.segment: r.members for r in segs.refresh([s for s, _, _ in segments])}
    # The user's own segments on these scores ("churn risk > 0.7 and …") follow them.
    segs.after_predictions({prediction}, skip=[s for s, _, _ in segments])
    result["model_version"] = fitted.model_version
    result["bands"] = [
        {"segment": seg_name, "rule": rule, "customers": refreshed.get(seg_name)}
        | _band_bounds(rule)
        for seg_name, _, rule in segments
    ]
    return result


# -- bands ------------------------------------------------------------------------------------
def _band_specs(limits: dict[str, float]) -> list[tuple[str, str, dict[str, Any]]]:
    high, medium = limits["high"], limits["medium"]

    def score(op: str, value: float) -> dict[str, Any]:
        return {"type": "prediction", "prediction": "churn_risk", "op": op, "value": value}

    return [
        (
            "Churn risk: high",
            f"Customers whose churn risk is {high:g} or more.",
            score("gte", high),
        ),
        (
            "Churn risk: medium",
            f"Customers whose churn risk is from {medium:g} to below {high:g}.",
            {"type": "and", "conditions": [score("gte", medium), score("lt", high)]},
        ),
        (
            "Churn risk: low",
            f"Customers whose churn risk is below {medium:g}.",
            score("lt", medium),
        ),
    ]


def _band_bounds(rule: dict[str, Any]) -> dict[str, Any]:
    """The band's name and score range, read back from its rule."""
    parts = rule.get("conditions", [rule])
    low = next((p["value"] for p in parts if p.get("op") == "gte"), None)
    high = next((p["value"] for p in parts if p.get("op") == "lt"), None)
    if "top_percent" in rule:
        return {"band": f"top {rule['top_percent']:g}%"}
    band = "high" if high is None else "low" if low is None else "medium"
    return {"band": band, "min_score": low, "max_score": high}


def _check_bands(bands: Mapping[str, float] | None) -> dict[str, float]:
    limits = dict(DEFAULT_BANDS) | dict(bands or {})
    unknown = set(limits) - set(DEFAULT_BANDS)
    if unknown:
        raise InputError(
            f"unknown risk band {sorted(unknown)[0]!r}: give the lower bounds of 'high' and "
            "'medium' (low is everything below medium)"
        )
    try:
        high, medium = float(limits["high"]), float(limits["medium"])
    except (TypeError, ValueError):
        raise InputError("risk band bounds must be numbers between 0 and 1") from None
    if not 0 < medium < high < 1:
        raise InputError(
            f"risk bands need 0 < medium < high < 1, got medium {medium:g} and high {high:g}"
        )
    return {"high": high, "medium": medium}


# -- checks and inputs ------------------------------------------------------------------------
def _model(params: Mapping[str, Any] | None) -> ChurnModel:
    model = ChurnModel()
    if params:
        unknown = set(params) - set(model.get_params())
        if unknown:
            raise InputError(
                f"unknown model parameter {sorted(unknown)[0]!r}; use: "
                + ", ".join(sorted(model.get_params()))
            )
        model.set_params(**params)
    return model


def _check_days(days: Any, what: str) -> int:
    if isinstance(days, bool) or not isinstance(days, int | np.integer) or days < 1:
        raise InputError(f"{what} must be a whole number of days, 1 or more, not {days!r}")
    return int(days)


def _reference(value: ReferenceTime | dt.date | dt.datetime | None) -> ReferenceTime | None:
    if value is None or isinstance(value, ReferenceTime):
        return value
    return ReferenceTime.of(value)


def _as_of(segs: Segments, value: ReferenceTime | dt.date | dt.datetime | None) -> ReferenceTime:
    given = _reference(value)
    if given is not None:
        return given
    e = segs.wh.table(segs.ws.id, "events")
    last = e.timestamp.max().to_pyarrow().as_py()
    # A stale export would otherwise be scored as if everyone had left since it was made.
    return ReferenceTime.of(last.date()) if last is not None else ReferenceTime.now()


def _check_history(segs: Segments, t1: ReferenceTime, ref: ReferenceTime, days: int) -> dt.datetime:
    """The first event's time; an error unless it comes before ``t1``."""
    e = segs.wh.table(segs.ws.id, "events")
    first = e.timestamp.min().to_pyarrow().as_py()
    if first is None or first >= t1.instant:
        start = "no events" if first is None else f"events from {first.date()}"
        raise InputError(
            f"out-of-time validation needs events before {t1} (2 × {days} days before "
            f"as_of {ref}), but the workspace has {start}: choose a later as_of or fewer days"
        )
    return first


def _check_classes(y: np.ndarray, population: str, what: str) -> None:
    positives = int(np.sum(y))
    negatives = int(len(y) - positives)
    if positives < MIN_CLASS or negatives < MIN_CLASS:
        raise InputError(
            f"{positives} {what} and {negatives} others among {len(y)} {population}: "
            f"fitting and validating needs at least {MIN_CLASS} of each "
            "(use more data, a longer horizon or another as_of)"
        )


def _truth(segs: Segments) -> pd.DataFrame | None:
    """The generator's recorded churners (external_id, churned, churned_at), if any."""
    try:
        t = segs.wh.table(segs.ws.id, "synthetic_truth")
    except NotFound:
        return None
    frame = t.select("external_id", "churned", "churned_at").to_pyarrow().to_pandas()
    return frame if len(frame) else None
