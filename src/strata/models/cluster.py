"""Customer clusters: K-means (or a diagonal Gaussian mixture) on standardised features.

Training reads a deterministic sample of customers (:func:`strata.models.features.
feature_frame`), scales it (log for counts and money, then standardised) and fits
:class:`CustomerClusters`, which picks the number of clusters in ``k_range`` by
silhouette (K-means) or BIC (mixture) unless one is given. Each cluster is named from
what distinguishes it ("Frequent big spenders") and described in one sentence with
numbers, from its feature means against the whole base.

Assigning customers never leaves the warehouse: :func:`assignment` is the nearest
stored centroid (or the most likely mixture component) as an Ibis expression, so the
``cluster`` segment condition, incremental updates and the stored predictions run on
DuckDB, PostgreSQL and Spark alike, for every customer and not only the sample.

>>> X = np.vstack([rng.normal(c, 0.3, (100, 2)) for c in (0, 3, 6)])  # doctest: +SKIP
>>> CustomerClusters(k="auto").fit(X).k_  # doctest: +SKIP
3
>>> run_clustering(app, "demo", k="auto")["clusters"][0]["name"]  # doctest: +SKIP
'Lapsed one-time buyers'
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.utils.validation import check_array, check_is_fitted

from strata import plans
from strata.errors import InputError
from strata.models import features as F
from strata.segments.compile import Compiler, ValueFn
from strata.segments.reference import ReferenceTime

if TYPE_CHECKING:
    from strata.catalog import Workspace
    from strata.context import Strata
    from strata.models.store import FittedModel

METHODS = ("kmeans", "gmm")
#: Any number of clusters asked for must lie in this range.
K_LIMITS = (2, 20)
#: Clusters tried when ``k`` is ``auto``.
DEFAULT_K_RANGE = (3, 8)
#: A fit needs at least this many customers per cluster it may make.
MIN_CUSTOMERS_PER_CLUSTER = 10
#: How far (in standard deviations) a cluster's mean must be from the base's to count.
DISTINCT_Z = 0.5
#: Below this on every feature, a cluster is "typical".
TYPICAL_Z = 0.25

_LOG_2PI = math.log(2.0 * math.pi)


# -- the estimator ------------------------------------------------------------------------------
class CustomerClusters(ClusterMixin, BaseEstimator):
    """K-means or a diagonal Gaussian mixture with the number of clusters chosen in a range.

    ``fit(X)`` takes a standardised matrix. With ``k="auto"`` every k in ``k_range`` is
    fitted; K-means keeps the best silhouette (on a sample of ``sample_size`` rows),
    the mixture the lowest BIC. Clusters are numbered by size, largest first (ties by
    their centre), so the same data gives the same numbering and names.

    The mixture uses diagonal covariances so that assigning a customer stays a sum of
    per-feature terms, which a warehouse computes as a plain expression.

    Learned: ``k_``, ``labels_``, ``silhouette_``, ``n_iter_`` (of the kept fit),
    ``k_scores_`` (per k tried: its silhouette, and ``inertia`` or ``bic``), ``centers_``
    (K-means) or ``means_``, ``variances_``, ``weights_`` (mixture).

    >>> model = CustomerClusters(k=3, random_state=0).fit(X)  # doctest: +SKIP
    >>> model.predict(X[:5])  # doctest: +SKIP
    array([0, 0, 2, 1, 0])
    """

    def __init__(
        self,
        method: str = "kmeans",
        k: int | str = "auto",
        k_range: tuple[int, int] = DEFAULT_K_RANGE,
        sample_size: int = 10_000,
        random_state: int = 0,
        n_init: int = 4,
        max_iter: int = 300,
        reg_covar: float = 1e-3,
    ):
        self.method = method
        self.k = k
        self.k_range = k_range
        self.sample_size = sample_size
        self.random_state = random_state
        self.n_init = n_init
        self.max_iter = max_iter
        self.reg_covar = reg_covar

    def fit(self, X: Any, y: Any = None) -> CustomerClusters:
        """Fit every candidate k and keep the best; returns ``self``."""
        X = check_array(X, dtype=np.float64, ensure_min_samples=2)
        if self.method not in METHODS:
            raise InputError(f"unknown clustering method {self.method!r}: use kmeans or gmm")
        candidates = _candidates(self.k, self.k_range)
        n = X.shape[0]
        if candidates[0] >= n:
            raise InputError(
                f"{n} rows cannot make {candidates[0]} clusters: give more customers or a smaller k"
            )
        candidates = [c for c in candidates if c < n]
        self.n_features_in_ = X.shape[1]
        scores: dict[int, dict[str, float]] = {}
        fits: dict[int, dict[str, np.ndarray]] = {}
        for k in candidates:
            params, labels, extra = self._fit_one(X, k)
            fits[k] = params
            scores[k] = {"silhouette": self._silhouette(X, labels), **extra}
        if self.method == "kmeans":
            # Ties go to the smaller k: fewer clusters are easier to act on.
            best = max(candidates, key=lambda c: (scores[c]["silhouette"], -c))
        else:
            best = min(candidates, key=lambda c: (scores[c]["bic"], c))
        self._set_params(fits[best])
        self.k_ = best
        self.k_scores_ = scores
        self.labels_ = self.predict(X)
        self._order_by_size(X)
        self.labels_ = self.predict(X)
        self.silhouette_ = scores[best]["silhouette"]
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Each row's cluster: the nearest centre or likeliest component (ties: lowest index)."""
        check_is_fitted(self, "k_")
        X = check_array(X, dtype=np.float64)
        if X.shape[1] != self.n_features_in_:
            raise InputError(
                f"X has {X.shape[1]} features, but CustomerClusters is expecting "
                f"{self.n_features_in_} features as input: score with the model's features"
            )
        return np.argmin(self.scores(X), axis=1)

    def scores(self, X: Any) -> np.ndarray:
        """Per row and cluster, the number the assignment minimises.

        K-means: squared distance to the centre. Mixture: ``-2 × log(weight × density)``.
        :func:`assignment` computes the same numbers in the warehouse.
        """
        check_is_fitted(self, "k_")
        X = check_array(X, dtype=np.float64)
        return _scores(X, self._state())

    # -- internals --------------------------------------------------------------------------
    def _fit_one(self, X: np.ndarray, k: int):
        if self.method == "kmeans":
            km = KMeans(
                n_clusters=k,
                n_init=self.n_init,
                max_iter=self.max_iter,
                random_state=self.random_state,
            ).fit(X)
            params = {"centers": km.cluster_centers_, "n_iter": km.n_iter_}
            labels = np.argmin(_scores(X, {"method": "kmeans", **params}), axis=1)
            return params, labels, {"inertia": float(km.inertia_)}
        gm = GaussianMixture(
            n_components=k,
            covariance_type="diag",
            n_init=self.n_init,
            max_iter=self.max_iter,
            reg_covar=self.reg_covar,
            random_state=self.random_state,
        ).fit(X)
        params = {
            "means": gm.means_,
            "variances": gm.covariances_,
            "weights": gm.weights_,
            "n_iter": gm.n_iter_,
        }
        labels = np.argmin(_scores(X, {"method": "gmm", **params}), axis=1)
        return params, labels, {"bic": float(gm.bic(X))}

    def _silhouette(self, X: np.ndarray, labels: np.ndarray) -> float:
        found = len(np.unique(labels))
        if not 2 <= found <= len(X) - 1:
            return -1.0  # one cluster took everybody: the worst a silhouette can be
        sample = self.sample_size if self.sample_size and len(X) > self.sample_size else None
        return float(
            silhouette_score(X, labels, sample_size=sample, random_state=self.random_state)
        )

    def _set_params(self, params: dict[str, Any]) -> None:
        if "n_iter" in params:
            self.n_iter_ = int(params["n_iter"])
        if self.method == "kmeans":
            self.centers_ = np.asarray(params["centers"], dtype=np.float64)
        else:
            self.means_ = np.asarray(params["means"], dtype=np.float64)
            self.variances_ = np.asarray(params["variances"], dtype=np.float64)
            self.weights_ = np.asarray(params["weights"], dtype=np.float64)

    def _centres(self) -> np.ndarray:
        return self.centers_ if self.method == "kmeans" else self.means_

    def _order_by_size(self, X: np.ndarray) -> None:
        sizes = np.bincount(self.labels_, minlength=self.k_)
        centres = self._centres()
        order = sorted(range(self.k_), key=lambda j: (-sizes[j], tuple(np.round(centres[j], 9))))
        if self.method == "kmeans":
            self.centers_ = self.centers_[order]
        else:
            self.means_ = self.means_[order]
            self.variances_ = self.variances_[order]
            self.weights_ = self.weights_[order]

    def _state(self) -> dict[str, Any]:
        if self.method == "kmeans":
            return {"method": "kmeans", "centers": self.centers_}
        return {
            "method": "gmm",
            "means": self.means_,
            "variances": self.variances_,
            "weights": self.weights_,
        }


def restore(state: dict[str, Any]) -> CustomerClusters:
    """A fitted :class:`CustomerClusters` from a stored model's ``state``.

    >>> model = restore(ModelStore(app, ws).get("behaviour").state)  # doctest: +SKIP
    >>> model.predict(scale_frame(frame, state["scaling"]))  # doctest: +SKIP
    """
    model = CustomerClusters(method=state["method"])
    model._set_params(
        {key: state[key] for key in ("centers", "means", "variances", "weights") if key in state}
    )
    centres = model._centres()
    model.k_ = len(centres)
    model.n_features_in_ = len(centres[0]) if len(centres) else 0
    return model


def parse_k(value: int | str | None) -> int | str:
    """``auto`` or a whole number from 2 to 20, from what a user typed (``--k``)."""
    if value is None:
        return "auto"
    if isinstance(value, str):
        text = value.strip().lower()
        if text in {"", "auto"}:
            return "auto"
        if not text.lstrip("+").isdigit():
            raise InputError(f"--k must be auto or a whole number from 2 to 20, not {value!r}")
        value = int(text)
    _check_k(value)
    return int(value)


def _check_k(k: Any) -> None:
    lo, hi = K_LIMITS
    if isinstance(k, bool) or not isinstance(k, int | np.integer):
        raise InputError(f"k must be auto or a whole number from {lo} to {hi}, not {k!r}")
    if not lo <= k <= hi:
        raise InputError(f"k = {k} is outside {lo}..{hi}: choose a number of clusters in range")


def _candidates(k: Any, k_range: Any) -> list[int]:
    if isinstance(k, str) and k == "auto":
        try:
            lo, hi = (int(v) for v in k_range)
        except (TypeError, ValueError):
            raise InputError(f"k_range must be two whole numbers, not {k_range!r}") from None
        _check_k(lo)
        _check_k(hi)
        if lo > hi:
            raise InputError(f"k_range {lo}..{hi} is empty: give the smaller number first")
        return list(range(lo, hi + 1))
    _check_k(k)
    return [int(k)]


def _scores(X: np.ndarray, state: dict[str, Any]) -> np.ndarray:
    """What :meth:`CustomerClusters.scores` says, from stored (JSON) or learned parameters."""
    if state["method"] == "kmeans":
        centres = np.asarray(state["centers"], dtype=np.float64)
        return np.column_stack([((X - c) ** 2).sum(axis=1) for c in centres])
    means = np.asarray(state["means"], dtype=np.float64)
    variances = np.asarray(state["variances"], dtype=np.float64)
    consts = _gmm_constants(variances, state["weights"])
    return np.column_stack(
        [
            ((X - m) ** 2 / v).sum(axis=1) + c
            for m, v, c in zip(means, variances, consts, strict=True)
        ]
    )


def _gmm_constants(variances: Any, weights: Any) -> list[float]:
    # -2 log(w N(x)) = sum((x - m)^2 / v) + sum(log(2 pi v)) - 2 log w: the last two per component.
    return [
        float(np.sum(_LOG_2PI + np.log(np.asarray(v, dtype=np.float64))) - 2.0 * math.log(w))
        for v, w in zip(variances, weights, strict=True)
    ]


# -- naming ---------------------------------------------------------------------------------
#: How a feature is called in a sentence ("3.1× the average order count").
_NOUNS = {
    "recency": "days since last order",
    "frequency": "order count",
    "monetary": "revenue",
    "tenure": "tenure",
    "average_order_value": "order value",
    "distinct_products": "product range",
}

#: Names by what distinguishes a cluster: feature -> +1 (above the base) or -1 (below),
#: each at least DISTINCT_Z standard deviations away. Of the names that fit, the most
#: pronounced wins; a two-feature name beats a one-feature one when both fit.
_VOCABULARY: list[tuple[str, dict[str, int]]] = [
    ("Frequent big spenders", {"frequency": 1, "monetary": 1}),
    # Only if they ordered about once each (the order count of a cluster is compared
    # with a base full of customers who never ordered, so its z cannot say "one").
    ("Lapsed one-time buyers", {"recency": 1}),
    ("Loyal regulars", {"frequency": 1, "recency": -1}),
    ("New browsers", {"tenure": -1, "events_page_view": 1}),
    ("Browsers who rarely buy", {"events_page_view": 1, "frequency": -1}),
    ("Cart abandoners", {"events_add_to_cart": 1, "frequency": -1}),
    ("Occasional small buyers", {"frequency": -1, "monetary": -1}),
    ("Big-ticket buyers", {"average_order_value": 1}),
    ("Broad explorers", {"distinct_products": 1}),
    ("Lapsed customers", {"recency": 1}),
    ("Recent buyers", {"recency": -1}),
    ("Newcomers", {"tenure": -1}),
    ("Long-standing customers", {"tenure": 1}),
    ("Frequent buyers", {"frequency": 1}),
    ("Big spenders", {"monetary": 1}),
    ("Support-heavy customers", {"events_support_ticket": 1}),
    ("Engaged email readers", {"events_email_open": 1}),
    ("Refund-prone customers", {"events_refund": 1}),
    ("Keen browsers", {"events_page_view": 1}),
]


def noun(feature: F.Feature) -> str:
    """How ``feature`` reads in a sentence."""
    if feature.name in _NOUNS:
        return _NOUNS[feature.name]
    if feature.kind == "events":
        return f"{feature.of} events"
    return feature.label


def profile_clusters(
    frame: pd.DataFrame,
    X: np.ndarray,
    labels: np.ndarray,
    features: Sequence[F.Feature],
    k: int,
) -> list[dict[str, Any]]:
    """Per cluster: name, description, size and profile (its feature means against the base).

    Means are of the values the model saw, in raw units (a missing count or amount is 0),
    except recency, averaged over the customers who have ordered (never having ordered
    is no number of days). ``z`` is the cluster's mean of the standardised feature (the
    base's is 0), which is what picks the distinguishing features; for recency it is
    in standard deviations of the days among those who ordered (the model fills "never"
    with the longest recency, which would make every non-buyer look lapsed).
    """
    total = len(frame)
    values = {f.name: _raw(frame[f.name], f) for f in features}
    base = {f.name: _mean(values[f.name]) for f in features}
    bought = _bought(frame, features)
    out: list[dict[str, Any]] = []
    for j in range(k):
        mine = labels == j
        profile = []
        for i, f in enumerate(features):
            m, b = _mean(values[f.name][mine]), base[f.name]
            ratio = m / b if b is not None and m is not None and b > 0 else None
            if f.name == "recency":
                z = _recency_z(values[f.name], mine)
            else:
                z = float(X[mine, i].mean()) if mine.any() else 0.0
            profile.append(
                {
                    "feature": f.name,
                    "label": f.label,
                    "mean": m,
                    "base_mean": b,
                    "ratio": ratio,
                    "z": z,
                }
            )
        n = int(mine.sum())
        out.append(
            {
                "index": j,
                "customers": n,
                "share": n / total if total else 0.0,
                "ordered": None if bought is None else float(bought[mine].mean()),
                "profile": profile,
            }
        )
    named = [_name(c["profile"], features, c["ordered"]) for c in out]
    names = _unique_names(named, out, features)
    keys = ("index", "name", "description", "customers", "share", "ordered", "profile")
    for cluster, name, (_, used) in zip(out, names, named, strict=True):
        cluster["name"] = name
        cluster["description"] = _describe(
            name, cluster["profile"], features, cluster["ordered"], used
        )
    return [{key: c[key] for key in keys} for c in out]


_ORDER_FEATURES = {"recency", "frequency", "monetary", "average_order_value", "distinct_products"}


def _recency_z(days: pd.Series, mine: np.ndarray) -> float:
    known = days.dropna()
    ours = days[mine].dropna()
    std = float(known.std(ddof=0)) if len(known) else 0.0
    if ours.empty or std <= 1e-12:
        return 0.0
    return float((ours.mean() - known.mean()) / std)


def _raw(values: pd.Series, feature: F.Feature) -> pd.Series:
    x = values.astype("float64")
    return x if feature.name == "recency" or feature.fill != "zero" else x.fillna(0.0)


def _mean(values: pd.Series) -> float | None:
    m = values.mean()
    return None if pd.isna(m) else float(m)


def _bought(frame: pd.DataFrame, features: Sequence[F.Feature]) -> np.ndarray | None:
    """Who has ordered, if an order feature says so."""
    for name in ("frequency", "monetary", "recency"):
        if any(f.name == name for f in features):
            x = frame[name].astype("float64")
            return (x.notna() & (x > 0) if name != "recency" else x.notna()).to_numpy()
    return None


#: Names for clusters of customers who (almost) never ordered, by what else stands out.
_NOT_BOUGHT: list[tuple[str, dict[str, int]]] = [
    ("New sign-ups yet to order", {"tenure": -1}),
    ("Browsers who never bought", {"events_page_view": 1}),
    ("Cart abandoners", {"events_add_to_cart": 1}),
]


def _name(
    profile: list[dict[str, Any]], features: Sequence[F.Feature], ordered: float | None
) -> tuple[str, set[str]]:
    never = ordered is not None and ordered < 0.2
    z = {p["feature"]: p["z"] for p in profile}
    raw = {p["feature"]: p["mean"] for p in profile}
    vocabulary = _NOT_BOUGHT if never else _VOCABULARY
    best: tuple[float, int, str, set[str]] | None = None
    for rank, (name, wanted) in enumerate(vocabulary):
        signed = [z[f] * d for f, d in wanted.items() if f in z]
        if len(signed) < len(wanted) or min(signed) < DISTINCT_Z:
            continue
        if "one-time" in name and not _about_once(raw, ordered):
            continue
        score = sum(signed) / len(signed) + 0.25 * (len(signed) - 1)
        if best is None or (score, -rank) > (best[0], -best[1]):
            best = (score, rank, name, set(wanted))
    if best is not None:
        return best[2], best[3]
    if never:
        return "Never ordered", {"frequency", "monetary", "recency"}
    top = max(profile, key=lambda p: abs(p["z"]))
    if abs(top["z"]) < TYPICAL_Z:
        return "Typical customers", set()
    by_name = {f.name: f for f in features}
    word = noun(by_name[top["feature"]])
    return f"{'High' if top['z'] > 0 else 'Low'} {word}", {top["feature"]}


def _about_once(raw: dict[str, float | None], ordered: float | None) -> bool:
    orders = raw.get("frequency")
    return orders is not None and bool(ordered) and orders / float(ordered) <= 1.5


def _unique_names(
    named: list[tuple[str, set[str]]],
    clusters: list[dict[str, Any]],
    features: Sequence[F.Feature],
) -> list[str]:
    """The names, with a qualifier (the next distinguishing feature) where two collide."""
    by_name = {f.name: f for f in features}
    counts: dict[str, int] = {}
    for name, _ in named:
        counts[name] = counts.get(name, 0) + 1
    out: list[str] = []
    for (name, used), cluster in zip(named, clusters, strict=True):
        if counts[name] > 1:
            rest = [p for p in cluster["profile"] if p["feature"] not in used]
            p = max(rest, key=lambda p: abs(p["z"])) if rest else None
            # A qualifier must say something true; else the names are numbered.
            if p is not None and abs(p["z"]) >= TYPICAL_Z:
                high = p["z"] > 0
                if p["feature"] == "recency":
                    name = f"{name}, {'lapsing' if high else 'recent'}"
                else:
                    name = f"{name}, {'high' if high else 'low'} {noun(by_name[p['feature']])}"
        out.append(name)
    seen: dict[str, int] = {}
    final = []
    for name in out:
        seen[name] = seen.get(name, 0) + 1
        final.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return final


def _describe(
    name: str,
    profile: list[dict[str, Any]],
    features: Sequence[F.Feature],
    ordered: float | None,
    used: set[str] | frozenset[str] = frozenset(),
) -> str:
    """One sentence: the two most distinguishing features as ratios, then when they ordered.

    The features the name comes from go first, so the numbers back the name up.
    """
    by_name = {f.name: f for f in features}
    never = ordered is not None and ordered < 0.2
    # Of customers who never ordered, the order features (and refunds) say nothing new.
    silent = _ORDER_FEATURES | {"events_refund"} if never else {"recency"}
    ranked = sorted(
        (p for p in profile if p["feature"] not in silent),
        key=lambda p: (p["feature"] not in used, -abs(p["z"])),
    )
    parts = [_phrase(p, noun(by_name[p["feature"]])) for p in ranked[:2]]
    sentence = f"{name}: " + " and ".join(parts) if parts else name
    clause = None
    recency = next((p for p in profile if p["feature"] == "recency"), None)
    if ordered is not None and ordered == 0:
        clause = "none of them has ordered yet"
    elif never and ordered < 0.01:
        clause = "almost none of them has ordered"
    elif never:
        clause = f"only {ordered:.0%} of them have ordered"
    elif recency is not None and recency["mean"] is not None:
        clause = f"last ordered {recency['mean']:.0f} days ago on average"
    if clause:
        sentence += ("; " if parts else ": ") + clause
    return sentence + "."


def _phrase(p: dict[str, Any], word: str) -> str:
    if p["ratio"] is not None:
        return f"{p['ratio']:.1f}× the average {word}"
    if p["mean"] is None or p["base_mean"] is None:
        return f"no {word} recorded"
    return f"{word} {p['mean']:.1f} against {p['base_mean']:.1f} on average"


# -- in the warehouse ---------------------------------------------------------------------------
def assignment_table(
    compiler: Compiler, state: dict[str, Any], *, confidence: bool = True
) -> ibis.Table:
    """Per customer of ``compiler``: ``index``, ``distance``, ``confidence`` (Ibis).

    ``index`` is the lowest-numbered cluster with the lowest score (as
    :meth:`CustomerClusters.scores`); ``distance`` is to that cluster's centre in
    standard deviations (for a mixture: the Mahalanobis distance to its mean);
    ``confidence`` is ``1 - nearest / second nearest distance`` for K-means and the
    posterior probability of the component for a mixture (left out with
    ``confidence=False``: a segment condition needs none, and it doubles the compile time).
    """
    # A compiler of its own: the features' per-customer tables are joined here, once,
    # and the caller's wide table only joins the result (one row per customer).
    inner = Compiler(compiler.ctx)
    columns = F.scaled_columns(inner, state["scaling"])
    w = inner.wide()
    t = w.select("customer_id", **{f"z{i}": fn(w) for i, fn in enumerate(columns)})
    z = [t[f"z{i}"] for i in range(len(columns))]
    scored: dict[str, ir.FloatingValue] = {}
    consts: list[float] = []
    if state["method"] == "kmeans":
        for j, centre in enumerate(state["centers"]):
            scored[f"s{j}"] = _sum(
                [(x - float(c)) * (x - float(c)) for x, c in zip(z, centre, strict=True)]
            )
    else:
        consts = _gmm_constants(state["variances"], state["weights"])
        for j, (mean, var) in enumerate(zip(state["means"], state["variances"], strict=True)):
            terms = [
                (x - float(m)) * (x - float(m)) / float(v)
                for x, m, v in zip(z, mean, var, strict=True)
            ]
            scored[f"s{j}"] = _sum(terms) + consts[j]
    k = len(scored)
    # Each step reads only the columns of the step before: Ibis compiles that quickly,
    # where reaching back through several steps makes it slow with many clusters.
    t = t.select("customer_id", **scored)
    t = t.mutate(best=t.s0 if k == 1 else ibis.least(*[t[f"s{j}"] for j in range(k)]))
    if k == 1:
        index: ir.IntegerValue = ibis.literal(0)
    else:
        index = ibis.cases(*[(t[f"s{j}"] == t.best, j) for j in range(k - 1)], else_=k - 1)
    t = t.mutate(index=index.cast("int64"))
    s = [t[f"s{j}"] for j in range(k)]
    certainty: ir.FloatingValue = ibis.literal(1.0)
    if state["method"] == "kmeans":
        distance = ibis.greatest(t.best, 0.0).sqrt()
        if k > 1 and confidence:
            # The second nearest: the least of the scores with the winner's left out.
            second = ibis.least(*[(t.index == j).ifelse(math.inf, s[j]) for j in range(k)])
            second = ibis.greatest(second, 0.0).sqrt()
            certainty = (second > 0).ifelse(1.0 - distance / second, 0.0)
    else:
        const = ibis.cases(*[(t.index == j, consts[j]) for j in range(k)], else_=0.0)
        distance = ibis.greatest(t.best - const, 0.0).sqrt()
        # Posterior of the winner: 1 / sum_j exp(-(s_j - best) / 2).
        if confidence:
            certainty = 1.0 / _sum([(-(s[j] - t.best) / 2.0).exp() for j in range(k)])
    columns = {"distance": distance.cast("float64")}
    if confidence:
        columns["confidence"] = certainty.cast("float64")
    return t.select("customer_id", "index", **columns)


def assignment(compiler: Compiler, fitted: FittedModel) -> tuple[ValueFn, ValueFn]:
    """The ``cluster`` condition's columns over ``compiler.wide()``: index, distance.

    Used by the segment compiler: ``index(w) == 2`` is "in cluster 2".
    """
    table = assignment_table(compiler, fitted.state, confidence=False)
    p = compiler.per_customer(f"cluster:{fitted.model_version}", table)
    index: ValueFn = lambda w: w[f"{p}_index"]  # noqa: E731
    distance: ValueFn = lambda w: w[f"{p}_distance"]  # noqa: E731
    return index, distance


def _sum(values: list[ir.NumericValue]) -> ir.NumericValue:
    total = values[0]
    for v in values[1:]:
        total = total + v
    return total


# -- in a workspace -----------------------------------------------------------------------------
def run_clustering(
    app: Strata,
    workspace: str | Workspace | None = None,
    *,
    features: Sequence[str] | None = None,
    k: int | str = "auto",
    method: str = "kmeans",
    as_of: ReferenceTime | dt.date | str | None = None,
    name: str = "behaviour",
    sample: int | None = F.DEFAULT_SAMPLE,
    seed: int = 0,
    save: bool = True,
) -> dict[str, Any]:
    """Cluster a workspace's customers; with ``save``, store the model, segments and predictions.

    Features are the behavioural set or those named (``features.resolve``); a feature
    that does not vary is dropped (said in ``dropped``). The model is stored as a new
    version of ``name`` (kind ``cluster``); each cluster becomes a segment of family
    ``cluster:<name>`` (rule ``{"type": "cluster", ...}``, evaluated in the warehouse for
    every customer), clusters gone since the last fit lose theirs, and every customer's
    cluster is written as prediction type ``cluster:<name>`` (value = index, confidence,
    details = name and distance). Returns what the CLI prints.

    >>> ref = ReferenceTime.parse("2026-06-30")
    >>> result = run_clustering(app, "demo", k="auto", as_of=ref)  # doctest: +SKIP
    >>> result["k"], [c["name"] for c in result["clusters"]]  # doctest: +SKIP
    """
    from strata.models.store import ModelStore
    from strata.models.tracking import log_fit
    from strata.segments.engine import Segments

    started = time.perf_counter()
    k = parse_k(k)
    if method not in METHODS:
        raise InputError(f"unknown clustering method {method!r}: use kmeans or gmm")
    if not name or not name.strip():
        raise InputError("a cluster model needs a name, e.g. behaviour")
    ref = _reference(as_of)
    segs = Segments(app, workspace)
    plans.require_clustering(segs.ws, method, features)
    chosen = F.resolve(segs, ref, features)
    frame = F.feature_frame(segs, chosen, ref, sample=sample, seed=seed)
    largest = max(_candidates(k, DEFAULT_K_RANGE))
    needed = MIN_CUSTOMERS_PER_CLUSTER * largest
    if len(frame) < needed:
        raise InputError(
            f"clustering into up to {largest} clusters needs at least {needed} customers; "
            f"workspace {segs.ws.name!r} has {len(frame)}: import more customers or ask for a "
            "smaller --k"
        )
    kept, dropped = _varying(frame, chosen)
    scaling = F.fit_scaling(frame, kept)
    X = F.scale_frame(frame, scaling)
    family = f"cluster:{name}"
    if save:
        _check_refit(segs, family, ref)
    model = CustomerClusters(method=method, k=k, random_state=seed).fit(X)
    clusters = profile_clusters(frame, X, model.labels_, kept, model.k_)
    fit_s = time.perf_counter() - started
    params = {
        "method": method,
        "k": k,
        "k_range": list(DEFAULT_K_RANGE),
        "features": [f.name for f in kept],
        "sample": sample,
        "seed": seed,
    }
    k_scores = {str(c): v for c, v in model.k_scores_.items()}
    metrics = {
        "k": model.k_,
        "silhouette": model.silhouette_,
        "k_scores": k_scores,
        "trained_on": len(frame),
    }
    if method == "gmm":
        metrics["bic"] = model.k_scores_[model.k_]["bic"]
    state = {
        **model._state(),
        "scaling": scaling,
        "clusters": [
            {key: c[key] for key in ("index", "name", "description", "profile")} for c in clusters
        ],
    }
    result: dict[str, Any] = {
        "k": model.k_,
        "silhouette": round(model.silhouette_, 4),
        "method": method,
        "features": [f.name for f in kept],
        "dropped": dropped,
        "model_version": None,
        "as_of": str(ref),
        "k_scores": k_scores,
        "trained_on": len(frame),
        "clusters": clusters,
    }
    if not save:
        return result
    store = ModelStore(app, segs.ws)
    fitted = store.save(
        kind="cluster", name=name, params=params, state=state, metrics=metrics, as_of=ref.instant
    )
    log_fit(kind="cluster", name=name, params=params, metrics=metrics, state=state)
    members = _save_segments(segs, family, name, clusters, ref)
    scored = score_customers(app, segs, fitted, ref)
    total = sum(members.values())
    for c, (segment, count) in zip(clusters, members.items(), strict=True):
        c["segment"] = segment
        c["customers"] = count
        c["share"] = count / total if total else 0.0
    result.update(
        model_version=fitted.model_version,
        customers=total,
        predictions=scored,
        seconds=round(time.perf_counter() - started, 3),
        fit_seconds=round(fit_s, 3),
    )
    return result


def score_customers(app: Strata, segs: Any, fitted: FittedModel, ref: ReferenceTime) -> int:
    """Write every customer's cluster as prediction ``cluster:<model>``; returns the count."""
    from strata.models.store import write_predictions

    compiler = segs.compiler(ref)
    table = assignment_table(compiler, fitted.state).to_pyarrow()
    names = [json.dumps(c["name"], ensure_ascii=False) for c in fitted.state["clusters"]]
    index = table.column("index").to_numpy()
    distance = table.column("distance").to_numpy()
    details = [
        f'{{"cluster":{names[i]},"distance":{d:.6g}}}'
        for i, d in zip(index.tolist(), distance.tolist(), strict=True)
    ]
    rows = pa.table(
        {
            "customer_id": table.column("customer_id").cast(pa.int64()),
            "value": pa.array(index.astype(np.float64)),
            "confidence": table.column("confidence"),
            "details": pa.array(details, pa.string()),
        }
    )
    return write_predictions(
        app,
        segs.ws.id,
        f"cluster:{fitted.name}",
        rows,
        model_version=fitted.model_version,
        predicted_at=ref.instant,
    )


def _reference(as_of: ReferenceTime | dt.date | str | None) -> ReferenceTime:
    if isinstance(as_of, ReferenceTime):
        return as_of
    if as_of is None or isinstance(as_of, str):
        return ReferenceTime.parse(as_of)
    return ReferenceTime.of(as_of)


def _varying(
    frame: pd.DataFrame, chosen: Sequence[F.Feature]
) -> tuple[list[F.Feature], list[dict[str, str]]]:
    """The features that vary in ``frame``, and a note for each one that does not."""
    scaling = F.fit_scaling(frame, chosen)
    X = F.scale_frame(frame, scaling)
    kept, dropped = [], []
    for i, f in enumerate(chosen):
        if len(X) and float(np.ptp(X[:, i])) > 1e-9:
            kept.append(f)
        else:
            dropped.append({"feature": f.name, "reason": "the same for every customer"})
    if not kept:
        raise InputError(
            "none of the features varies between customers ("
            + ", ".join(f.name for f in chosen)
            + "): choose others with --features"
        )
    return kept, dropped


def _check_refit(segs: Any, family: str, ref: ReferenceTime) -> None:
    for seg in segs.list():
        if seg.family == family and seg.evaluated_as_of and ref.instant < seg.evaluated_as_of:
            raise InputError(
                f"cluster segment {seg.name!r} was last evaluated as of "
                f"{ReferenceTime.of(seg.evaluated_as_of)}; refit as of that time or later"
            )


def _save_segments(
    segs: Any, family: str, model: str, clusters: list[dict[str, Any]], ref: ReferenceTime
) -> dict[str, int]:
    """One segment per cluster (old ones of gone clusters dropped), refreshed; members by name."""
    from strata.segments import nodes as N

    existing = {s.name: s for s in segs.list()}
    wanted: list[str] = []
    for c in clusters:
        seg_name = c["name"]
        if seg_name in existing and existing[seg_name].family != family:
            seg_name = f"{model}: {c['name']}"
        n = 2
        while seg_name in existing and existing[seg_name].family != family:
            seg_name = f"{model}: {c['name']} ({n})"
            n += 1
        wanted.append(seg_name)
    stale = [s for s in existing.values() if s.family == family and s.name not in wanted]
    for seg in stale:
        users = [u for u in segs.dependents(seg.name) if existing[u].family != family]
        if users:
            raise InputError(
                f"cluster segment {seg.name!r} is gone in the new fit but "
                f"{', '.join(map(repr, users))} use it: change those first"
            )
    for seg in stale:
        segs.delete(seg.name)
    for c, seg_name in zip(clusters, wanted, strict=True):
        spec = N.SegmentSpec(
            name=seg_name,
            description=c["description"],
            rule=N.parse_rule({"type": "cluster", "model": model, "cluster": c["index"]}),
        )
        segs.save(
            spec,
            kind="cluster",
            source="system",
            family=family,
            as_of=ref,
            replace=True,
            evaluate=False,
        )
    refreshed = {r.segment: r.members for r in segs.refresh(wanted, as_of=ref)}
    return {seg_name: refreshed[seg_name] for seg_name in wanted}
