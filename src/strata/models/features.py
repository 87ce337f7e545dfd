"""Per-customer features for the models, as Ibis expressions over the warehouse.

A feature is measured by the segment compiler's machinery (traits, per-customer
tables), so the numbers a model is fitted on, the numbers it scores with and the
numbers a segment condition reads are one definition, on DuckDB, PostgreSQL and
Spark alike. Training reads a deterministic sample into pandas
(:func:`feature_frame`); assigning customers to clusters stays in the warehouse
(:func:`scaled_columns`).

The behavioural set: days since the last order, orders, revenue, tenure, average
order value, distinct products and a count of each common event type. Counts and
money are long-tailed, so they are log-scaled (``log1p``) before standardising:
without it a handful of big spenders would be a cluster of their own and everyone
else one blob.

>>> segs = Segments(app, "demo")  # doctest: +SKIP
>>> features = behaviour_features(segs, ReferenceTime.now())  # doctest: +SKIP
>>> frame = feature_frame(segs, features, ReferenceTime.now(), sample=50_000)  # doctest: +SKIP
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from strata.errors import InputError
from strata.segments import nodes as N
from strata.segments.compile import Compiler, _day_epoch
from strata.segments.reference import ReferenceTime

if TYPE_CHECKING:
    from strata.segments.engine import Segments

ValueFn = Callable[[ibis.Table], ir.Value]

#: How many event types get a count feature of their own (the most common ones).
MAX_EVENT_TYPES = 8
#: Training reads at most this many customers (a deterministic sample beyond it).
DEFAULT_SAMPLE = 200_000


@dataclass(frozen=True)
class Feature:
    """One per-customer number a model reads.

    ``kind`` says where it comes from: a ``trait`` (``of`` names it), ``tenure``,
    ``events`` (count of events of type ``of``) or an ``attribute`` of customers.
    ``fill`` is what a missing value counts as (``zero``, ``max`` or ``median`` of the
    training data); ``log`` asks for ``log1p`` before standardising.
    """

    name: str
    label: str
    kind: str
    of: str | None = None
    fill: str = "zero"
    log: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Feature:
        return cls(**data)


_BEHAVIOUR = [
    Feature("recency", "days since last order", "trait", "days_since_last_order", "max"),
    Feature("frequency", "orders", "trait", "total_orders", "zero", log=True),
    Feature("monetary", "revenue", "trait", "total_revenue", "zero", log=True),
    Feature("tenure", "days since first seen", "tenure", None, "zero"),
    Feature(
        "average_order_value",
        "average order value",
        "trait",
        "average_order_value",
        "zero",
        log=True,
    ),
    Feature(
        "distinct_products", "distinct products", "trait", "distinct_products", "zero", log=True
    ),
]
#: Names accepted by ``--features`` besides attributes and traits.
BEHAVIOUR_NAMES = [f.name for f in _BEHAVIOUR] + ["events"]


def behaviour_features(segs: Segments, ref: ReferenceTime) -> list[Feature]:
    """The default behavioural features, with a count for each common event type."""
    return [*_BEHAVIOUR, *event_features(segs, ref)]


def event_features(segs: Segments, ref: ReferenceTime) -> list[Feature]:
    """A count feature for each of the most common event types known at ``ref``."""
    e = segs.compiler(ref).events(restricted=False)
    # Orders are already the frequency feature.
    e = e.filter(e.event_type != segs.rfm_config().order_event)
    counts = (
        e.group_by("event_type")
        .aggregate(n=e.count())
        .order_by([ibis.desc("n"), "event_type"])
        .limit(MAX_EVENT_TYPES)
        .to_pyarrow()
        .to_pylist()
    )
    return [
        Feature(
            f"events_{_slug(r['event_type'])}",
            f"{r['event_type']} events",
            "events",
            r["event_type"],
            "zero",
            log=True,
        )
        for r in counts
        if r["event_type"] is not None
    ]


def resolve(segs: Segments, ref: ReferenceTime, names: Sequence[str] | None) -> list[Feature]:
    """Features by the names a user gives (``--features``); the behavioural set if none.

    A name is a behavioural feature (``recency``, ``frequency``, ``monetary``,
    ``tenure``, ``average_order_value``, ``distinct_products``, ``events`` for the
    event counts), a trait, or a numeric, boolean or date attribute of customers.
    """
    if not names:
        return behaviour_features(segs, ref)
    compiler = segs.compiler(ref)
    by_name = {f.name: f for f in _BEHAVIOUR}
    out: list[Feature] = []
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        if name == "events":
            out += event_features(segs, ref)
        elif name in by_name:
            out.append(by_name[name])
        elif name in N.TRAITS and name not in {"most_frequent", "rfm_segment"}:
            out.append(Feature(name, name.replace("_", " "), "trait", name, "median"))
        else:
            schema = compiler.customers.schema()
            if name not in schema or name in {"customer_id"}:
                raise InputError(
                    f"unknown feature {name!r}; use "
                    + ", ".join(BEHAVIOUR_NAMES)
                    + ", a trait, or a number, yes/no or date attribute of customers ("
                    + ", ".join(c for c, t in schema.items() if _usable(t) and c != "customer_id")
                    + ")"
                )
            if not _usable(schema[name]):
                raise InputError(
                    f"attribute {name!r} is {schema[name]}: features must be numbers, yes/no "
                    "or dates (a text attribute can be used in a segment rule instead)"
                )
            out.append(Feature(name, name.replace("_", " "), "attribute", name, "median"))
    if not out:
        raise InputError("no features named: give at least one, e.g. --features recency,monetary")
    # A feature named twice (or by two names) is read once, in its first place.
    unique: dict[str, Feature] = {}
    for f in out:
        unique.setdefault(f.name, f)
    return list(unique.values())


def feature_columns(compiler: Compiler, features: Sequence[Feature]) -> dict[str, ValueFn]:
    """Each feature as a float64 column of ``compiler.wide()`` (missing values null)."""
    columns: dict[str, ValueFn] = {}
    counts: dict[str, str] | None = None
    for f in features:
        if f.kind == "trait":
            fn = compiler.trait(f.of or f.name)[0]
        elif f.kind == "tenure":
            fn = _tenure(compiler)
        elif f.kind == "events":
            if counts is None:
                counts = _event_counts(compiler, [g.of for g in features if g.kind == "events"])
            column = counts[f.of or ""]
            fn = _filled(column)
        elif f.kind == "attribute":
            fn = _attribute(compiler, f.of or f.name)
        else:  # pragma: no cover - features are made here
            raise InputError(f"unknown feature kind {f.kind!r}")
        columns[f.name] = _as_float(fn)
    return columns


def feature_frame(
    segs: Segments,
    features: Sequence[Feature],
    ref: ReferenceTime,
    *,
    customer_ids: Sequence[int] | None = None,
    sample: int | None = DEFAULT_SAMPLE,
    seed: int = 0,
    where: Callable[[Compiler], Callable[[ibis.Table], ir.BooleanValue]] | None = None,
) -> pd.DataFrame:
    """``customer_id``, ``external_id`` and the features, one row per customer, into pandas.

    Above ``sample`` customers (of the workspace), a deterministic slice (the portable
    hash of the id and ``seed``) of about that size is read, the same one on every
    backend. ``where`` restricts the customers (built from the compiler, e.g. "has
    ordered"), within the slice.
    """
    cut = None
    if sample is not None and customer_ids is None:
        # The slice is cut before any feature is measured, so a sample costs its size.
        customers = segs.wh.table(segs.ws.id, "customers")
        total = int(customers.count().to_pyarrow().as_py())
        if total > sample:
            cut = (f"sample:{seed}", max(1, round(10_000 * sample / total)))
    compiler = segs.compiler(ref, customer_ids=customer_ids, sample=cut)
    columns = feature_columns(compiler, features)
    condition = where(compiler) if where is not None else None
    wide = compiler.wide()
    if condition is not None:
        wide = wide.filter(condition(wide))
    selected = wide.select(
        "customer_id", "external_id", **{name: fn(wide) for name, fn in columns.items()}
    )
    frame = selected.to_pyarrow().to_pandas()
    return frame.sort_values("customer_id", kind="stable").reset_index(drop=True)


# -- scaling --------------------------------------------------------------------------------
def fit_scaling(frame: pd.DataFrame, features: Sequence[Feature]) -> dict[str, Any]:
    """Fill values, log and standardising constants learned from ``frame``.

    The result is plain JSON (stored with a model) and drives both
    :func:`scale_frame` (numpy) and :func:`scaled_columns` (Ibis), which agree.
    """
    fills, means, scales = [], [], []
    for f in features:
        raw = frame[f.name].astype("float64")
        fill = _fill_value(raw, f.fill)
        x = raw.fillna(fill).to_numpy()
        if f.log:
            x = np.log1p(np.clip(x, 0.0, None))
        std = float(np.std(x))
        fills.append(fill)
        means.append(float(np.mean(x)) if len(x) else 0.0)
        scales.append(std if std > 1e-12 else 1.0)
    return {
        "features": [f.to_dict() for f in features],
        "fill": fills,
        "mean": means,
        "scale": scales,
    }


def scale_frame(frame: pd.DataFrame, scaling: dict[str, Any]) -> np.ndarray:
    """The features of ``frame`` as a standardised matrix, as ``scaling`` says."""
    columns = []
    for spec, fill, mean, scale in feature_specs(scaling):
        x = frame[spec.name].astype("float64").fillna(fill).to_numpy()
        if spec.log:
            x = np.log1p(np.clip(x, 0.0, None))
        columns.append((x - mean) / scale)
    return np.column_stack(columns) if columns else np.empty((len(frame), 0))


def scaled_columns(compiler: Compiler, scaling: dict[str, Any]) -> list[ValueFn]:
    """The standardised features as Ibis columns, in the order of ``scaling``."""
    specs = list(feature_specs(scaling))
    raw = feature_columns(compiler, [s for s, *_ in specs])
    out: list[ValueFn] = []
    for spec, fill, mean, scale in specs:
        out.append(_scaled(raw[spec.name], spec.log, fill, mean, scale))
    return out


def _scaled(fn: ValueFn, log: bool, fill: float, mean: float, scale: float) -> ValueFn:
    def column(w: ibis.Table) -> ir.FloatingValue:
        x = fn(w).fill_null(fill)
        if log:
            x = (ibis.greatest(x, 0.0) + 1.0).ln()
        return (x - mean) / scale

    return column


def feature_specs(scaling: dict[str, Any]):
    """Each feature of ``scaling`` with its fill value, mean and scale."""
    for data, fill, mean, scale in zip(
        scaling["features"], scaling["fill"], scaling["mean"], scaling["scale"], strict=True
    ):
        yield Feature.from_dict(data), float(fill), float(mean), float(scale)


def _fill_value(raw: pd.Series, how: str) -> float:
    present = raw.dropna()
    if how == "zero" or present.empty:
        return 0.0
    if how == "max":
        return float(present.max())
    return float(present.median())


# -- columns ----------------------------------------------------------------------------------
def _as_float(fn: ValueFn) -> ValueFn:
    def column(w: ibis.Table) -> ir.FloatingValue:
        value = fn(w)
        if value.type().is_boolean():
            value = value.ifelse(1.0, 0.0)
        elif value.type().is_date():
            value = value.epoch_seconds() / 86400.0
        elif value.type().is_timestamp():
            value = value.date().epoch_seconds() / 86400.0
        return value.cast("float64")

    return column


def _filled(column: str) -> ValueFn:
    return lambda w: w[column].fill_null(0)


def _attribute(compiler: Compiler, name: str) -> ValueFn:
    schema = compiler.customers.schema()
    dtype = schema[name]
    if dtype.is_date():
        # A date becomes days before the reference day (an age, a time since signup).
        day = _day_epoch(compiler.ctx.ref.day)
        return lambda w: (day - w[name].epoch_seconds()) / 86400.0
    return lambda w: w[name]


def _tenure(compiler: Compiler) -> ValueFn:
    """Days from the customer's first sign of life (signup or first event) to the reference day."""
    e = compiler.events()
    first = e.group_by("customer_id").aggregate(first_event=e.timestamp.min())
    p = compiler.per_customer("first_event", first)
    day = _day_epoch(compiler.ctx.ref.day)

    def column(w: ibis.Table) -> ir.FloatingValue:
        first_day = w[f"{p}_first_event"].date()
        if "signup_date" in w.columns:
            first_day = ibis.least(first_day, w.signup_date).fill_null(w.signup_date)
            first_day = first_day.fill_null(w[f"{p}_first_event"].date())
        days = (day - first_day.epoch_seconds()) / 86400.0
        return ibis.greatest(days, 0.0)

    return column


def _event_counts(compiler: Compiler, types: Sequence[str | None]) -> dict[str, str]:
    """One per-customer table counting each of ``types``; column name by event type."""
    wanted = sorted({t for t in types if t})
    e = compiler.events()
    e = e.filter(e.event_type.isin(wanted))
    table = e.group_by("customer_id").aggregate(
        **{f"n{i}": (e.event_type == t).ifelse(1, 0).sum() for i, t in enumerate(wanted)}
    )
    p = compiler.per_customer("event_counts:" + "|".join(wanted), table)
    return {t: f"{p}_n{i}" for i, t in enumerate(wanted)}


def _usable(dtype: Any) -> bool:
    return bool(dtype.is_numeric() or dtype.is_boolean() or dtype.is_date())


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return slug or "other"
