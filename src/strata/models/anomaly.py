"""Anomalies on daily revenue, daily orders and each segment's daily size.

The daily series are computed in the warehouse with Ibis (DuckDB, PostgreSQL and Spark
alike); the judging is a small robust detector that knows about the week:

* the *expected* value of a day is the median of the same weekday over the previous
  ``weeks`` weeks (times a level factor, below);
* the *spread* is the median absolute deviation of those same-weekday values, scaled
  by 1.4826 so it estimates a standard deviation, and at least the (scaled) median
  miss of all days of the last ``weeks`` weeks against their own expected values
  (with only eight values, one weekday's MAD is often 0 when a shop makes a few sales
  a day), and at least a share ``spread_floor`` of the expected value and
  ``min_spread``, so that a flat series does not turn a tiny move into a huge score;
* robust z = (value - expected) / spread. A day is flagged when ``|z| >= threshold``
  *and* it moved by at least ``min_relative_change`` of the expected value.

Why not a plain z-score: in a weekly-seasonal series (a shop selling three times as
much at weekends) the mean and standard deviation of recent days mix weekdays and
weekends, so every weekend looks high and every Monday low, while the weekend-inflated
standard deviation hides a real spike on a Tuesday. Comparing a Tuesday with earlier
Tuesdays removes the weekly pattern; the median and the MAD are not moved by the
anomalies they are meant to find (one huge day shifts a mean and a standard deviation,
not a median).

The level factor follows slow growth or decline: the median of all days over the last
``level_weeks`` weeks divided by the median of all days over the last ``weeks`` weeks
(both whole weeks, so the weekly pattern cancels out). A lasting change is flagged
for about ``level_weeks * 7 / 2`` days and then becomes the new normal.

>>> report = find_anomalies(app, "demo", days=90)  # doctest: +SKIP
>>> report["anomalies"][0]["sentence"]  # doctest: +SKIP
'Daily revenue on Monday 2011-11-14 was 45,210, 2.3× the usual 19,500 for a Monday (robust z 5.1).'
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import ibis
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from strata.errors import InputError
from strata.segments.compile import REFUND_EVENT
from strata.segments.reference import ReferenceTime

if TYPE_CHECKING:
    from strata.catalog import Workspace
    from strata.context import Strata
    from strata.warehouse import Warehouse

#: Scales a median absolute deviation to a standard deviation for normal noise.
MAD_SCALE = 1.4826
#: The shortest window ``find_anomalies`` judges: two of each weekday.
MIN_DAYS = 14
DAY_S = 86_400
_EPOCH = dt.date(1970, 1, 1)


# -- the detector ---------------------------------------------------------------------------
class WeeklyAnomalyDetector(BaseEstimator):
    """Flags days that differ from the same weekday of the previous weeks.

    ``X`` is a pandas Series of one value per day, indexed by date; missing days are
    absent (not zero). ``fit`` judges every day of ``X`` against the days before it
    and keeps the series as history; ``predict`` and ``score_samples`` judge new days
    against that history. The detector is deterministic (nothing to seed).

    It does not take a feature matrix, so scikit-learn's generic estimator checks do
    not apply; it follows the contract otherwise (parameters stored as given and
    validated in ``fit``, learned state ending in ``_``).

    >>> days = pd.date_range("2026-01-05", periods=63, freq="D")
    >>> values = pd.Series([300.0 if d.weekday() >= 5 else 100.0 for d in days], index=days)
    >>> values.iloc[-6] = 250.0  # a Tuesday
    >>> detector = WeeklyAnomalyDetector().fit(values)
    >>> detector.result_.index[detector.result_.anomaly].strftime("%a %Y-%m-%d").tolist()
    ['Tue 2026-03-03']
    """

    def __init__(
        self,
        weeks: int = 8,
        threshold: float = 3.5,
        min_weeks: int = 3,
        min_relative_change: float = 0.2,
        level_weeks: int = 2,
        spread_floor: float = 0.05,
        min_spread: float = 1.0,
        noise_unit: float | None = None,
    ):
        self.weeks = weeks
        self.threshold = threshold
        self.min_weeks = min_weeks
        self.min_relative_change = min_relative_change
        self.level_weeks = level_weeks
        self.spread_floor = spread_floor
        self.min_spread = min_spread
        self.noise_unit = noise_unit

    def fit(self, X: pd.Series, y: None = None) -> WeeklyAnomalyDetector:
        """Judge each day of ``X`` against the days before it; keep ``X`` as history."""
        self._check_params()
        history = _daily(X)
        self.history_ = history
        self.result_ = self._judge(history)
        self.n_judged_ = int(self.result_.judged.sum())
        return self

    def judge(self, X: pd.Series) -> pd.DataFrame:
        """Per day of ``X``: value, expected, spread, z, relative_change, judged, anomaly.

        Days of ``X`` are judged against the fitted history followed by ``X`` itself
        (``X`` wins where both have a day).
        """
        check_is_fitted(self, "history_")
        new = _daily(X)
        combined = new.combine_first(self.history_)
        return self._judge(combined).loc[new.index]

    def predict(self, X: pd.Series) -> pd.Series:
        """Whether each day of ``X`` is an anomaly (a boolean Series by date)."""
        return self.judge(X).anomaly

    def score_samples(self, X: pd.Series) -> pd.Series:
        """The robust z of each day of ``X`` (NaN where there is too little history)."""
        return self.judge(X).z

    def _check_params(self) -> None:
        def whole(name: str, low: int) -> int:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
                raise InputError(f"{name} must be a whole number of at least {low}, not {value!r}")
            return int(value)

        weeks = whole("weeks", 1)
        if whole("min_weeks", 1) > weeks:
            raise InputError(
                f"min_weeks ({self.min_weeks}) cannot exceed weeks ({weeks}): "
                "a day needs that many earlier weeks of history to be judged"
            )
        if whole("level_weeks", 0) > weeks:
            raise InputError(f"level_weeks ({self.level_weeks}) cannot exceed weeks ({weeks})")
        if self.noise_unit is not None:
            unit = self.noise_unit
            if not isinstance(unit, int | float) or not math.isfinite(unit) or unit <= 0:
                raise InputError(f"noise_unit must be a positive number or None, not {unit!r}")
        for name, positive in (
            ("threshold", True),
            ("min_relative_change", False),
            ("spread_floor", False),
            ("min_spread", True),
        ):
            value = getattr(self, name)
            ok = isinstance(value, int | float) and math.isfinite(value)
            if not ok or value < 0 or (positive and value == 0):
                bound = "positive" if positive else "zero or more"
                raise InputError(f"{name} must be a number, {bound}; not {value!r}")

    def _judge(self, series: pd.Series) -> pd.DataFrame:
        full = series.reindex(pd.date_range(series.index.min(), series.index.max(), freq="D"))
        values = full.to_numpy(dtype=float)
        n, weeks = len(values), int(self.weeks)
        same_weekday = np.full((n, weeks), np.nan)
        for k in range(1, weeks + 1):
            if 7 * k < n:
                same_weekday[7 * k :, k - 1] = values[: n - 7 * k]
        # pandas medians skip NaN quietly; numpy's nanmedian warns on all-NaN rows.
        past = pd.DataFrame(same_weekday)
        seen = past.notna().sum(axis=1).to_numpy()
        median = past.median(axis=1).to_numpy()
        mad = past.sub(median, axis=0).abs().median(axis=1).to_numpy()

        level = np.ones(n)
        if self.level_weeks:
            before = full.shift(1)
            recent = before.rolling(7 * int(self.level_weeks), min_periods=7 * self.level_weeks)
            longer = before.rolling(7 * weeks, min_periods=7 * self.min_weeks)
            num, den = recent.median().to_numpy(), longer.median().to_numpy()
            usable = np.isfinite(num) & np.isfinite(den) & (den > 0) & (num >= 0)
            level[usable] = num[usable] / den[usable]

        expected = median * level
        # Eight values of one weekday often have a MAD of 0 (few sales a day, a segment
        # refreshed weekly), so the typical miss of all recent days is a floor as well.
        enough = seen >= self.min_weeks
        miss = pd.Series(np.where(enough, np.abs(values - expected), np.nan), index=full.index)
        pooled = miss.shift(1).rolling(7 * weeks, min_periods=7).median().to_numpy()
        floors = [
            MAD_SCALE * mad * level,
            MAD_SCALE * np.nan_to_num(pooled),
            self.spread_floor * np.abs(expected),
            np.full(n, float(self.min_spread)),
        ]
        if self.noise_unit:
            # A day's total of independent events (orders, their revenue) varies by at
            # least its Poisson noise: sd = sqrt(unit × mean), unit = E[v²] / E[v] of one
            # event (1 for counts). Thin shops otherwise flag a day with three orders.
            unit = float(self.noise_unit)
            floors.append(np.sqrt(unit * np.fmax(np.nan_to_num(np.abs(expected)), unit)))
        spread = np.fmax.reduce(floors)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (values - expected) / spread
            relative = np.where(
                expected != 0,
                (values - expected) / np.abs(expected),
                np.where(values == expected, 0.0, np.sign(values - expected) * np.inf),
            )
        judged = (seen >= self.min_weeks) & np.isfinite(values) & np.isfinite(expected)
        z = np.where(judged, z, np.nan)
        relative = np.where(judged, relative, np.nan)
        big = np.abs(np.where(judged, z, 0.0)) >= self.threshold
        moved = np.abs(np.where(judged, relative, 0.0)) >= self.min_relative_change
        anomaly = judged & big & moved
        out = pd.DataFrame(
            {
                "value": values,
                "expected": np.where(judged, expected, np.nan),
                "spread": np.where(judged, spread, np.nan),
                "z": z,
                "relative_change": relative,
                "judged": judged,
                "anomaly": anomaly,
            },
            index=full.index,
        )
        return out.loc[series.index]


def _daily(X: Any) -> pd.Series:
    """``X`` as a float Series on a midnight DatetimeIndex, one row per day, in order."""
    if not isinstance(X, pd.Series):
        raise InputError(
            f"expected a pandas Series of daily values indexed by date, not {type(X).__name__}"
        )
    try:
        index = pd.DatetimeIndex(pd.to_datetime(X.index))
    except (TypeError, ValueError):
        raise InputError("the series must be indexed by dates (one value per day)") from None
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    if len(index) == 0:
        raise InputError("the series is empty: there are no days to judge")
    if (index != index.normalize()).any():
        raise InputError("the series index must be whole days (midnight), one value per day")
    if index.has_duplicates:
        first = index[index.duplicated()][0].date()
        raise InputError(f"the series has more than one value for {first}: give one per day")
    try:
        values = pd.to_numeric(X, errors="raise").astype(float).to_numpy()
    except (TypeError, ValueError):
        raise InputError("the series values must be numbers") from None
    return pd.Series(values, index=index, name=X.name).sort_index()


# -- flags -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Flag:
    """One anomalous day of one metric, with what moved and by how much."""

    metric: str
    date: str
    weekday: str
    value: float
    expected: float
    change: float
    #: ``change / |expected|``; ``None`` when nothing was expected (expected 0).
    relative_change: float | None
    z: float
    direction: str  # spike or drop
    sentence: str
    segment: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def flags(result: pd.DataFrame, metric: str, *, segment: str | None = None) -> list[Flag]:
    """The anomalous days of a detector's ``result_``/``judge`` frame, newest first.

    ``metric`` is ``"daily revenue"``, ``"daily orders"`` or ``"size of segment 'X'"``
    (then ``segment`` is ``X``); it decides the wording of each flag's sentence.
    """
    out = []
    for day, row in result[result.anomaly].sort_index(ascending=False).iterrows():
        value, expected = float(row.value), float(row.expected)
        change = value - expected
        relative = float(row.relative_change)
        weekday = day.strftime("%A")
        flag = Flag(
            metric=metric,
            date=day.date().isoformat(),
            weekday=weekday,
            value=round(value, 2),
            expected=round(expected, 2),
            change=round(change, 2),
            relative_change=round(relative, 4) if math.isfinite(relative) else None,
            z=round(float(row.z), 2),
            direction="spike" if change > 0 else "drop",
            sentence=_sentence(metric, segment, day.date(), value, expected, float(row.z)),
            segment=segment,
        )
        out.append(flag)
    return out


def _sentence(
    metric: str, segment: str | None, day: dt.date, value: float, expected: float, z: float
) -> str:
    weekday = day.strftime("%A")
    if expected == 0:
        how = f"where a {weekday} usually has none"
    elif value / expected >= 2:
        how = f"{value / expected:.1f}× the usual {_number(expected)} for a {weekday}"
    else:
        side = "above" if value > expected else "below"
        pct = abs(value - expected) / abs(expected) * 100
        how = f"{pct:.0f}% {side} the usual {_number(expected)} for a {weekday}"
    score = f"(robust z {z:.1f})"
    if segment is not None:
        moved = "rose" if value > expected else "fell"
        return (
            f"Segment {segment!r} {moved} to {_number(value)} members on {weekday} "
            f"{day.isoformat()}, {how} {score}."
        )
    verb = "were" if metric == "daily orders" else "was"
    subject = metric[0].upper() + metric[1:]
    return f"{subject} on {weekday} {day.isoformat()} {verb} {_number(value)}, {how} {score}."


def _number(x: float) -> str:
    if abs(x) >= 100 or x == round(x):
        return f"{x:,.0f}"
    return f"{x:,.1f}"


# -- daily series in the warehouse ----------------------------------------------------------
def _day_number(day: dt.date) -> int:
    return (day - _EPOCH).days


def _effective_day(ts: ibis.TimestampValue) -> ibis.IntegerValue:
    """The last day whose end a change at ``ts`` is part of.

    An evaluation as of day d is stamped at the end of d (midnight starting d + 1), so
    a change exactly at midnight belongs to the day before; any other instant belongs
    to its own day (the size at the end of that day includes it). Computed on epoch
    seconds, which every backend reads the same way.
    """
    return (ts.epoch_seconds().cast("int64") + (DAY_S - 1)) // DAY_S - 1


def segment_sizes(
    warehouse: Warehouse,
    workspace_id: int,
    segment_ids: list[int],
    start: dt.date,
    end: dt.date,
) -> pd.DataFrame:
    """Each segment's size at the end of every day from ``start`` to ``end``.

    Read from the memberships history: a customer is a member at the end of day d if
    they joined by then and had not left. The warehouse adds +1 on each join's day and
    -1 on each leave's day per segment and takes the running sum over the days with a
    change (one row per segment and change day, never days × memberships); days
    between changes carry the last size. Days before a segment's first evaluation are
    absent. Returns ``segment_id, date, size``.

    >>> segment_sizes(app.warehouse, ws.id, [3], dt.date(2024, 6, 1),
    ...               dt.date(2024, 6, 30))  # doctest: +SKIP
    """
    empty = pd.DataFrame({"segment_id": [], "date": [], "size": []}).astype(
        {"segment_id": "int64", "size": "int64"}
    )
    if not segment_ids or end < start:
        return empty
    m = warehouse.table(workspace_id, "memberships")
    m = m.filter(m.segment_id.isin([int(i) for i in segment_ids]))
    joins = m.select("segment_id", day=_effective_day(m.joined_at), delta=ibis.literal(1))
    gone = m.filter(m.left_at.notnull())
    leaves = gone.select("segment_id", day=_effective_day(gone.left_at), delta=ibis.literal(-1))
    changes = joins.union(leaves, distinct=False)
    changes = changes.filter(changes.day <= _day_number(end))
    per_day = changes.group_by(["segment_id", "day"]).aggregate(delta=changes.delta.sum())
    # (segment_id, day) is unique after the grouping, so the window order has no ties.
    running = ibis.cumulative_window(group_by="segment_id", order_by="day")
    following = ibis.window(group_by="segment_id", order_by="day")
    steps = per_day.mutate(
        size=per_day.delta.sum().over(running).cast("int64"),
        next_day=per_day.day.lead().over(following),
    )
    steps = steps.filter(steps.next_day.isnull() | (steps.next_day > _day_number(start)))
    rows = steps.select("segment_id", "day", "size", "next_day").to_pyarrow().to_pylist()

    first, last = _day_number(start), _day_number(end)
    out: dict[str, list] = {"segment_id": [], "date": [], "size": []}
    for r in sorted(rows, key=lambda r: (r["segment_id"], r["day"])):
        until = last if r["next_day"] is None else min(last, r["next_day"] - 1)
        for n in range(max(first, r["day"]), until + 1):
            out["segment_id"].append(r["segment_id"])
            out["date"].append(_EPOCH + dt.timedelta(days=n))
            out["size"].append(r["size"])
    return pd.DataFrame(out).astype({"segment_id": "int64", "size": "int64"}) if rows else empty


def daily_revenue(
    warehouse: Warehouse,
    workspace_id: int,
    start: dt.date,
    end: dt.date,
    *,
    order_event: str = "order",
) -> pd.DataFrame:
    """Revenue net of refunds and the number of orders on each UTC day.

    Orders are events of type ``order_event``; refunds (``refund`` events) are stored
    with negative revenue and lower the day's revenue. Days from ``start`` to ``end``
    without a sale are 0, but only between the first and the last day with any event
    at all (a day before the data starts is unknown, not zero). Returns
    ``date, revenue, orders``.

    >>> daily_revenue(app.warehouse, ws.id, dt.date(2024, 6, 1),
    ...               dt.date(2024, 6, 30))  # doctest: +SKIP
    """
    columns = {"date": [], "revenue": [], "orders": []}
    if end < start:
        return pd.DataFrame(columns).astype({"revenue": "float64", "orders": "int64"})
    e = warehouse.table(workspace_id, "events")
    lo = dt.datetime.combine(start, dt.time(0))
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(0))
    span = e.filter(e.timestamp < hi).aggregate(
        first=e.timestamp.min().date(), last=e.timestamp.max().date()
    )
    bounds = span.to_pyarrow().to_pylist()[0]
    if bounds["first"] is None:
        return pd.DataFrame(columns).astype({"revenue": "float64", "orders": "int64"})
    money = e.filter(
        e.event_type.isin([order_event, REFUND_EVENT]), e.timestamp >= lo, e.timestamp < hi
    )
    per_day = money.group_by(date=money.timestamp.date()).aggregate(
        revenue=money.revenue.fill_null(0.0).sum(),
        orders=(money.event_type == order_event).ifelse(1, 0).sum().cast("int64"),
    )
    found = {
        r["date"]: (float(r["revenue"]), int(r["orders"])) for r in per_day.to_pyarrow().to_pylist()
    }
    day = max(start, bounds["first"])
    while day <= min(end, bounds["last"]):
        revenue, orders = found.get(day, (0.0, 0))
        columns["date"].append(day)
        columns["revenue"].append(revenue)
        columns["orders"].append(orders)
        day += dt.timedelta(days=1)
    return pd.DataFrame(columns).astype({"revenue": "float64", "orders": "int64"})


def _revenue_noise_unit(
    warehouse: Warehouse, workspace_id: int, start: dt.date, end: dt.date, order_event: str
) -> float | None:
    """E[v²] / E[v] of one order's revenue between ``start`` and ``end``: with it, a day's
    revenue of mean m has Poisson noise sqrt(unit × m) (``None`` without orders)."""
    e = warehouse.table(workspace_id, "events")
    lo = dt.datetime.combine(start, dt.time(0))
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(0))
    orders = e.filter(
        e.event_type == order_event, e.timestamp >= lo, e.timestamp < hi, e.revenue > 0
    )
    row = (
        orders.aggregate(
            squares=(orders.revenue * orders.revenue).sum(), total=orders.revenue.sum()
        )
        .to_pyarrow()
        .to_pylist()[0]
    )
    if not row["total"]:
        return None
    return float(row["squares"]) / float(row["total"])


# -- the library entry -------------------------------------------------------------------------
def find_anomalies(
    app: Strata,
    workspace: str | Workspace | None = None,
    *,
    as_of: ReferenceTime | dt.date | None = None,
    days: int = 90,
    segments: list[str] | None = None,
    threshold: float = 3.5,
) -> dict[str, Any]:
    """Anomalous days of daily revenue, daily orders and segment sizes, newest first.

    The last ``days`` days up to ``as_of`` (default: now) are judged, each against
    the same weekday of the weeks before (so history before the window is read too).
    ``segments`` names the segments to check (default: all of them). Revenue and
    orders stop at the last complete day (today so far would look like a drop);
    a segment's size counts up to the reference day itself.

    >>> report = find_anomalies(app, "demo", days=90)  # doctest: +SKIP
    >>> sorted(report)  # doctest: +SKIP
    ['anomalies', 'as_of', 'checked', 'days']
    """
    from strata.segments.engine import Segments

    if isinstance(days, bool) or not isinstance(days, int) or days < MIN_DAYS:
        raise InputError(
            f"--days must be a whole number of at least {MIN_DAYS} (two of each weekday), "
            f"not {days!r}"
        )
    ref = as_of if isinstance(as_of, ReferenceTime) else ReferenceTime.of(as_of)
    segs = Segments(app, workspace)
    chosen = [segs.get(name) for name in segments] if segments is not None else segs.list()
    detector = WeeklyAnomalyDetector(threshold=threshold)
    detector._check_params()
    history_days = 7 * detector.weeks

    end_of_day = ref.instant == dt.datetime.combine(ref.day + dt.timedelta(days=1), dt.time(0))
    last_complete = ref.day if end_of_day else ref.day - dt.timedelta(days=1)
    anomalies: list[Flag] = []
    checked: list[dict[str, Any]] = []

    def judge(series: pd.Series, metric: str, last: dt.date, segment: str | None = None) -> None:
        window_start = pd.Timestamp(last - dt.timedelta(days=days - 1))
        if series.empty:
            checked.append({"metric": metric, "days_judged": 0})
            return
        result = detector.fit(series).result_
        result = result[result.index >= window_start]
        checked.append({"metric": metric, "days_judged": int(result.judged.sum())})
        anomalies.extend(flags(result, metric, segment=segment))

    start = last_complete - dt.timedelta(days=days - 1 + history_days)
    money = daily_revenue(
        app.warehouse, segs.ws.id, start, last_complete, order_event=segs.rfm_config().order_event
    )
    index = pd.DatetimeIndex(pd.to_datetime(money.date))
    unit = _revenue_noise_unit(
        app.warehouse, segs.ws.id, start, last_complete, segs.rfm_config().order_event
    )
    detector.set_params(noise_unit=unit)
    judge(pd.Series(money.revenue.to_numpy(), index=index), "daily revenue", last_complete)
    detector.set_params(noise_unit=1.0)
    judge(pd.Series(money.orders.to_numpy(float), index=index), "daily orders", last_complete)
    detector.set_params(noise_unit=None)  # segment sizes move by refreshes, not by chance

    start = ref.day - dt.timedelta(days=days - 1 + history_days)
    sizes = segment_sizes(app.warehouse, segs.ws.id, [s.id for s in chosen], start, ref.day)
    for seg in chosen:
        mine = sizes[sizes.segment_id == seg.id]
        series = pd.Series(
            mine["size"].to_numpy(float), index=pd.DatetimeIndex(pd.to_datetime(mine.date))
        )
        judge(series, f"size of segment {seg.name!r}", ref.day, segment=seg.name)

    anomalies.sort(key=lambda f: (f.date, abs(f.z)), reverse=True)
    return {
        "as_of": str(ref),
        "days": days,
        "anomalies": [f.to_dict() for f in anomalies],
        "checked": checked,
    }
