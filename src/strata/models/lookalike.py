"""Lookalikes: the customers most like the members of a seed segment.

A seed segment (any kind: a rule, RFM, a static list) says "customers like these";
every customer outside it gets a similarity score in [0, 1], the features that make
them alike in plain words ("orders 7 (seed typical 6, base 1)"), and the top ones can
be saved as a static segment. Scores are stored as the prediction
``lookalike:<slug of the seed>``, so ``{"type": "prediction", "prediction":
"lookalike:big_spenders", "top_percent": 5}`` is a segment condition too.

Whether the scores mean anything is measured, not assumed: the seed is split in five,
and each fifth (with a fifth of the other customers) is scored by a model that never
saw it. The AUC of those held-out seed members against the held-out others is in
``quality``: near 1 when the seed has a behaviour of its own that the features see,
near 0.5 when it does not (a random sample of customers, or a seed defined by
something the features do not measure).

>>> result = find_lookalikes(app, "demo", "Loyal", top=100, save_as="Like loyal")  # doctest: +SKIP
>>> result["quality"]["holdout_auc"], result["top"][0]["alike"][0]["text"]  # doctest: +SKIP
(0.97, 'orders 7 (seed typical 6, base 1)')
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.base import BaseEstimator, clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.validation import check_is_fitted

from strata import plans
from strata.catalog import Workspace
from strata.errors import InputError, NotFound
from strata.models import features as F
from strata.models.store import ModelStore, details_json, jsonable, write_predictions
from strata.models.tracking import log_fit
from strata.segments.reference import ReferenceTime

if TYPE_CHECKING:
    from strata.context import Strata
    from strata.segments.engine import Segments

#: A seed needs at least this many members (and this many customers outside it).
MIN_SEED = 10
#: How many features the explanation of one customer names, at most.
ALIKE_FEATURES = 3
#: Features on which the seed differs from the base by less than this many base
#: standard deviations (a small effect) are not named as what makes a customer alike:
#: a random seed differs from the base by about 0.1 on every feature by chance.
MIN_WEIGHT = 0.2
#: The quality check splits the seed (and the others) into this many parts.
HOLDOUT_FOLDS = 5
#: The quality check reads at most this many customers outside the seed (a seeded sample).
HOLDOUT_MAX_REST = 20_000
#: Share of the held-out others that "the top" means in ``recall_top_10pct``.
TOP_SHARE = 0.10
METHODS = ("classifier", "centroid")


class LookalikeModel(BaseEstimator):
    """Similarity to a seed, learned from standardised features (matrix in, scores out).

    ``fit(X, y)`` takes the standardised features of customers (:func:`features.scale_frame`)
    and ``y`` true for the seed members; ``score_samples(X)`` gives each row's similarity
    in [0, 1]; ``alike(X)`` the features that make each row like the seed.

    ``method="classifier"`` (the default) fits a logistic regression of seed against a
    seeded sample of ``negatives`` non-seed customers per seed member (at most
    ``max_train`` of each), classes weighted equally, on the features and on their
    squared distance to the seed's typical (median) value. Why this one:

    - A classifier learns which features set the seed apart *together*: revenue and
      orders move together, and a distance to the seed's centre counts that twice.
    - The squared distances let it prefer "around the seed's typical value" to "more is
      better", which a seed in the middle of a range (mid-value customers) needs and a
      linear score cannot do.
    - It is a few numbers (coefficients, centre, scaling), stored with the model; with
      L2 regularisation (``C``) a seed of a few dozen customers does not overfit as a
      tree ensemble would.

    ``method="centroid"`` is the simple baseline: ``exp(-d)`` with ``d`` the weighted RMS
    distance to the seed's centre, each feature weighted by how much the seed differs
    from the base (``|seed mean - base mean| / base std``). It needs no negatives, but
    reads every feature independently. The quality check reports both AUCs.

    >>> model = LookalikeModel(random_state=0).fit(X, is_seed)  # doctest: +SKIP
    >>> model.score_samples(X[:3]).round(2)  # doctest: +SKIP
    array([0.91, 0.08, 0.47])
    """

    def __init__(
        self,
        method: str = "classifier",
        negatives: float = 5.0,
        max_train: int = 50_000,
        C: float = 1.0,
        random_state: int = 0,
    ):
        self.method = method
        self.negatives = negatives
        self.max_train = max_train
        self.C = C
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> LookalikeModel:
        """Learn the seed's profile (and the classifier) from ``X`` and seed flags ``y``."""
        if self.method not in METHODS:
            raise InputError(
                f"unknown lookalike method {self.method!r}: use one of {', '.join(METHODS)}"
            )
        if not self.negatives > 0 or not self.max_train >= 1:
            raise InputError("negatives and max_train must be positive")
        X = _matrix(X)
        y = np.asarray(y).astype(bool).ravel()
        if len(y) != len(X):
            raise InputError(f"X has {len(X)} rows but y has {len(y)}")
        seed, base = X[y], X[~y]
        if len(seed) == 0 or len(base) == 0:
            raise InputError("a lookalike model needs seed rows (y true) and others (y false)")
        self.n_features_in_ = X.shape[1]
        self.seed_mean_ = seed.mean(axis=0)
        self.seed_center_ = np.median(seed, axis=0)
        self.base_mean_ = base.mean(axis=0)
        self.base_center_ = np.median(base, axis=0)
        base_std = base.std(axis=0)
        self.base_std_ = np.where(base_std > 1e-12, base_std, 1.0)
        self.weights_ = np.abs(self.seed_mean_ - self.base_mean_) / self.base_std_
        self.n_seed_ = len(seed)
        if self.method == "centroid":
            self.classifier_ = None
            return self
        rng = np.random.default_rng(self.random_state)
        n_seed = min(len(seed), int(self.max_train))
        n_neg = min(len(base), int(self.max_train), max(1, round(self.negatives * n_seed)))
        seed_rows = seed[np.sort(rng.choice(len(seed), n_seed, replace=False))]
        base_rows = base[np.sort(rng.choice(len(base), n_neg, replace=False))]
        Z = self._design(np.vstack([seed_rows, base_rows]), fitting=True)
        target = np.r_[np.ones(n_seed, dtype=int), np.zeros(n_neg, dtype=int)]
        self.classifier_ = LogisticRegression(
            C=self.C, class_weight="balanced", max_iter=2000, random_state=self.random_state
        ).fit(Z, target)
        self.n_negatives_ = n_neg
        return self

    def score_samples(self, X: Any) -> np.ndarray:
        """Each row's similarity to the seed, in [0, 1] (higher: more alike)."""
        check_is_fitted(self)
        X = self._checked(X)
        if self.classifier_ is None:
            w = self.weights_
            d2 = ((X - self.seed_center_) ** 2 * w).sum(axis=1) / max(float(w.sum()), 1e-12)
            return np.exp(-np.sqrt(d2))
        return self.classifier_.predict_proba(self._design(X))[:, 1]

    def alike(self, X: Any, top: int = ALIKE_FEATURES) -> list[list[tuple[int, float]]]:
        """Per row, up to ``top`` (feature index, strength) pairs saying what is alike.

        A feature counts when the row is closer to the seed's typical value than to the
        base's (and within one seed-to-base gap of it), and the seed differs from the
        base on it by at least ``MIN_WEIGHT`` base standard deviations; its strength is the seed's
        difference (``weights_``) times the row's closeness to the typical value
        (1 there, 1/2 a whole seed-to-base gap away).
        """
        check_is_fitted(self)
        X = self._checked(X)
        gap = np.maximum(np.abs(self.seed_center_ - self.base_center_), 1e-6)
        to_seed = np.abs(X - self.seed_center_)
        to_base = np.abs(X - self.base_center_)
        closeness = 1.0 / (1.0 + to_seed / gap)
        # Strictly closer: halfway (a tie up to rounding, e.g. 1 between 0 and 3 on a
        # log scale) says nothing about being alike.
        closer = to_seed < to_base - 1e-9
        usable = closer & (to_seed <= gap) & (self.weights_ >= MIN_WEIGHT)
        strength = np.where(usable, self.weights_ * closeness, 0.0)
        order = np.argsort(-strength, axis=1, kind="stable")[:, :top]
        return [
            [(int(j), float(strength[i, j])) for j in order[i] if strength[i, j] > 0]
            for i in range(len(X))
        ]

    def state(self) -> dict[str, Any]:
        """What was learned, as JSON-able numbers (stored with the model version)."""
        check_is_fitted(self)
        out: dict[str, Any] = {
            "seed_mean": self.seed_mean_,
            "seed_center": self.seed_center_,
            "base_mean": self.base_mean_,
            "base_center": self.base_center_,
            "base_std": self.base_std_,
            "weights": self.weights_,
            "n_seed": self.n_seed_,
        }
        if self.classifier_ is not None:
            out |= {
                "design_mean": self.design_mean_,
                "design_scale": self.design_scale_,
                "coef": self.classifier_.coef_[0],
                "intercept": float(self.classifier_.intercept_[0]),
                "n_negatives": self.n_negatives_,
            }
        return jsonable(out)

    def _design(self, X: np.ndarray, fitting: bool = False) -> np.ndarray:
        """The features and their squared distance to the seed's centre, standardised."""
        Z = np.hstack([X, (X - self.seed_center_) ** 2])
        if fitting:
            scale = Z.std(axis=0)
            self.design_mean_ = Z.mean(axis=0)
            self.design_scale_ = np.where(scale > 1e-12, scale, 1.0)
        return (Z - self.design_mean_) / self.design_scale_

    def _checked(self, X: Any) -> np.ndarray:
        X = _matrix(X)
        if X.shape[1] != self.n_features_in_:
            raise InputError(
                f"X has {X.shape[1]} features but the model was fitted on {self.n_features_in_}"
            )
        return X


def holdout_quality(
    model: LookalikeModel,
    X: np.ndarray,
    y: np.ndarray,
    *,
    folds: int = HOLDOUT_FOLDS,
    max_rest: int = HOLDOUT_MAX_REST,
    random_state: int = 0,
) -> dict[str, Any]:
    """How highly held-out seed members rank among held-out others (``model`` unfitted).

    The seed and (a sample of at most ``max_rest`` of) the others are split into
    ``folds`` stratified parts; each part is scored by a copy of ``model`` fitted on
    the rest. Reported: the mean AUC of held-out seed against held-out others (0.5 is
    no better than chance), the per-fold AUCs, the same for the centroid baseline, and
    the share of held-out seed members scoring above 90% of the held-out others
    (``recall_top_10pct``; 0.10 by chance).
    """
    y = np.asarray(y).astype(bool)
    rng = np.random.default_rng(random_state)
    rest = np.flatnonzero(~y)
    if len(rest) > max_rest:
        rest = np.sort(rng.choice(rest, max_rest, replace=False))
    rows = np.sort(np.r_[np.flatnonzero(y), rest])
    Xs, ys = X[rows], y[rows]
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=random_state)
    candidates = {"holdout": clone(model)}
    if model.method != "centroid":
        candidates["centroid"] = clone(model).set_params(method="centroid")
    aucs: dict[str, list[float]] = {k: [] for k in candidates}
    recalls: list[float] = []
    for train, test in splitter.split(Xs, ys):
        for key, candidate in candidates.items():
            scores = clone(candidate).fit(Xs[train], ys[train]).score_samples(Xs[test])
            aucs[key].append(float(roc_auc_score(ys[test], scores)))
            if key == "holdout":
                others = scores[~ys[test]]
                cut = np.quantile(others, 1.0 - TOP_SHARE)
                recalls.append(float(np.mean(scores[ys[test]] > cut)))
    out: dict[str, Any] = {
        "method": model.method,
        "holdout_auc": round(float(np.mean(aucs["holdout"])), 4),
        "holdout_auc_folds": [round(a, 4) for a in aucs["holdout"]],
        "recall_top_10pct": round(float(np.mean(recalls)), 4),
        "held_out_seed": int(ys.sum()),
        "held_out_others": int((~ys).sum()),
        "folds": folds,
    }
    if "centroid" in aucs:
        out["centroid_auc"] = round(float(np.mean(aucs["centroid"])), 4)
    return out


def find_lookalikes(
    app: Strata,
    workspace: str | Workspace | None,
    seed_segment: str,
    *,
    top: int = 100,
    as_of: ReferenceTime | dt.date | str | None = None,
    features: list[str] | None = None,
    save_as: str | None = None,
    min_score: float | None = None,
    method: str = "classifier",
    random_state: int = 0,
) -> dict[str, Any]:
    """Score every customer outside ``seed_segment`` by likeness to its members.

    The seed is the segment's current members. The model is stored as
    ``lookalike:<slug>`` (a new version each time), every scored customer's score as the
    prediction of that name (details: what makes them alike), and with ``save_as`` the
    ``top`` customers (at least ``min_score``) become a static segment of that name
    (replacing the list if that static segment exists; nothing is saved, and ``saved``
    is ``None``, when no customer reaches ``min_score``).

    >>> r = find_lookalikes(app, "demo", "Loyal", top=50)  # doctest: +SKIP
    >>> r["seed_customers"], r["scored"], r["quality"]["holdout_auc"]  # doctest: +SKIP
    (128, 872, 0.96)
    """
    from strata.segments.engine import Segments

    started = time.perf_counter()
    if top <= 0:
        raise InputError(f"top must be at least 1 (got {top}): how many lookalikes to return")
    if min_score is not None and not 0.0 <= min_score <= 1.0:
        raise InputError(f"min_score must be between 0 and 1 (got {min_score}): scores are 0-1")
    if save_as is not None and save_as == seed_segment:
        raise InputError(f"save_as names the seed {seed_segment!r}: choose another segment name")
    segs = Segments(app, workspace)
    plans.require_feature(segs.ws, "predictive")
    ref = _reference(as_of)
    seed_ids = _seed_members(segs, seed_segment)
    if save_as is not None:
        taken = {s.name: s.kind for s in segs.list()}.get(save_as)
        if taken not in {None, "static"}:
            raise InputError(
                f"{save_as!r} is a {taken} segment; lookalikes are saved as a static list: "
                "choose another name for save_as"
            )
    feats = F.resolve(segs, ref, features)
    frame = F.feature_frame(segs, feats, ref, sample=None)
    is_seed = frame["customer_id"].isin(seed_ids).to_numpy()
    n_seed, n_rest = int(is_seed.sum()), int((~is_seed).sum())
    if n_seed < MIN_SEED:
        raise InputError(
            f"seed segment {seed_segment!r} has {n_seed} member(s); a seed needs at least "
            f"{MIN_SEED} (refresh it with `strata segments refresh` if it is out of date)"
        )
    if n_rest < MIN_SEED:
        raise InputError(
            f"seed segment {seed_segment!r} holds {n_seed} of {len(frame)} customers, leaving "
            f"{n_rest} to compare with; a lookalike needs at least {MIN_SEED} customers "
            "outside the seed (choose a narrower seed)"
        )

    scaling = F.fit_scaling(frame, feats)
    X = F.scale_frame(frame, scaling)
    model = LookalikeModel(method=method, random_state=random_state)
    quality = holdout_quality(model, X, is_seed, random_state=random_state)
    model.fit(X, is_seed)

    others = frame.loc[~is_seed].reset_index(drop=True)
    Xo = X[~is_seed]
    scores = model.score_samples(Xo)
    profile = _profiles(model, scaling)
    alike = [
        [_describe(feats[j], float(raw[j]), profile[j], strength) for j, strength in pairs]
        for raw, pairs in zip(_raw(others, feats, scaling), model.alike(Xo), strict=True)
    ]
    order = np.lexsort((others["customer_id"].to_numpy(), -scores))

    slug = prediction_slug(seed_segment)
    name = f"lookalike:{slug}"
    params = {
        "seed_segment": seed_segment,
        "features": [f.name for f in feats],
        **model.get_params(),
    }
    metrics = {**quality, "seed_customers": n_seed, "scored": n_rest}
    state = {"scaling": scaling, "model": model.state(), "profile": profile}
    fitted = ModelStore(app, segs.ws).save(
        kind="lookalike", name=name, params=params, state=state, metrics=metrics, as_of=ref.instant
    )
    write_predictions(
        app,
        segs.ws.id,
        name,
        pa.table(
            {
                "customer_id": pa.array(others["customer_id"].to_numpy(), pa.int64()),
                "value": pa.array(scores, pa.float64()),
                "details": [details_json({"alike": a}) for a in alike],
            }
        ),
        model_version=fitted.model_version,
        predicted_at=ref.instant,
    )
    log_fit(
        kind="lookalike",
        name=name,
        params=params,
        metrics=metrics,
        model=model.classifier_,
        state=state,
        tags={"strata.seed_segment": seed_segment},
    )

    segs.after_predictions({name})
    chosen = [i for i in order if min_score is None or scores[i] >= min_score][:top]
    best = [
        {
            "external_id": others.at[i, "external_id"],
            "customer_id": int(others.at[i, "customer_id"]),
            "score": round(float(scores[i]), 6),
            "alike": alike[i],
        }
        for i in chosen
    ]
    saved = None
    if save_as is not None and best:
        refreshed, _ = segs.save_static(
            save_as,
            [str(b["external_id"]) for b in best],
            mode="replace",
            description=(
                f"Top {len(best)} customers most like {seed_segment} "
                f"(lookalike model {fitted.model_version})"
            ),
        )
        saved = refreshed.to_dict()
    return {
        "seed": seed_segment,
        "seed_customers": n_seed,
        "scored": n_rest,
        "prediction": name,
        "model_version": fitted.model_version,
        "method": method,
        "features": [f.name for f in feats],
        "as_of": str(ref),
        "top": best,
        "quality": quality,
        "saved": saved,
        "seconds": round(time.perf_counter() - started, 3),
    }


def prediction_slug(segment_name: str) -> str:
    """The part of ``lookalike:<slug>`` naming a seed: lower case, ``_`` between words."""
    slug = re.sub(r"[^a-z0-9]+", "_", segment_name.lower()).strip("_")
    # Prediction names are at most 120 characters, "lookalike:" included.
    return slug[:110] or "seed"


def _reference(as_of: ReferenceTime | dt.date | str | None) -> ReferenceTime:
    if isinstance(as_of, ReferenceTime):
        return as_of
    if isinstance(as_of, dt.date):
        return ReferenceTime.of(as_of)
    return ReferenceTime.parse(as_of)


def _seed_members(segs: Segments, name: str) -> set[int]:
    try:
        seg = segs.get(name)
    except NotFound:
        known = [s.name for s in segs.list()]
        raise InputError(
            f"no segment named {name!r} to use as the seed in workspace {segs.ws.name!r}; "
            + (f"segments: {', '.join(known[:20])}" if known else "create one first")
        ) from None
    m = segs.wh.table(segs.ws.id, "memberships")
    current = m.filter(m.segment_id == seg.id, m.left_at.isnull()).select("customer_id")
    return set(current.to_pyarrow().column("customer_id").to_pylist())


def _raw(frame: pd.DataFrame, feats: Sequence[F.Feature], scaling: dict[str, Any]) -> np.ndarray:
    """The features in their own units, missing values filled as the scaling fills them."""
    columns = [
        frame[f.name].astype("float64").fillna(fill).to_numpy()
        for f, fill in zip(feats, scaling["fill"], strict=True)
    ]
    return np.column_stack(columns)


def _profiles(model: LookalikeModel, scaling: dict[str, Any]) -> list[dict[str, float]]:
    """Per feature, the seed's and the others' typical (median) value in the feature's own
    units: the model's own centres turned back from its scale, so "closer to the seed's
    typical value" in an explanation is exactly what the model found."""
    out = []
    for (spec, _fill, mean, scale), s, b in zip(
        F.feature_specs(scaling), model.seed_center_, model.base_center_, strict=True
    ):
        seed, base = s * scale + mean, b * scale + mean
        if spec.log:
            seed, base = np.expm1(seed), np.expm1(base)
        out.append({"seed_typical": float(seed), "base_typical": float(base)})
    return out


def _describe(
    feature: F.Feature, value: float, profile: dict[str, float], strength: float
) -> dict[str, Any]:
    seed, base = profile["seed_typical"], profile["base_typical"]
    return {
        "feature": feature.name,
        "value": value,
        "seed_typical": seed,
        "base_typical": base,
        "strength": round(strength, 4),
        "text": f"{feature.label} {_num(value)} (seed typical {_num(seed)}, base {_num(base)})",
    }


def _num(x: float) -> str:
    if abs(x - round(x)) < 1e-9:
        return f"{round(x):,}"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.3g}"


def _matrix(X: Any) -> np.ndarray:
    X = np.asarray(X, dtype="float64")
    if X.ndim != 2 or X.shape[1] == 0:
        raise InputError(f"X must be a matrix with at least one feature column (got {X.shape})")
    if not np.isfinite(X).all():
        raise InputError("X holds NaN or infinite values: fill and scale the features first")
    return X
