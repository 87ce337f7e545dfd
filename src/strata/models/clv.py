"""Customer lifetime value: BG/NBD for purchases, Gamma-Gamma for spend.

A non-contractual shop never learns that a customer has left; it only sees purchases.
The BG/NBD model (Fader, Hardie & Lee 2005, "Counting your customers the easy way")
reads each customer's purchase history as three numbers -- ``frequency`` (repeat
purchase days), ``recency`` (first to last purchase) and ``T`` (first purchase to the
end of the observation) -- and gives the chance the customer is still active and the
purchases to expect. The Gamma-Gamma model (Fader, Hardie & Lee 2005, "RFM and CLV")
gives the spend to expect per purchase from the customer's average repeat spend. Their
product, discounted month by month, is the lifetime value.

>>> summary = summary_from_transactions(orders, as_of=dt.date(1997, 9, 30))  # doctest: +SKIP
>>> bgnbd = BetaGeoModel().fit(summary[["frequency", "recency", "T"]])  # doctest: +SKIP
>>> bgnbd.params_  # doctest: +SKIP
{'r': 0.243, 'alpha': 4.414, 'a': 0.793, 'b': 2.426}

In a workspace, :func:`run_clv` does all of it in one call: the summary is computed in
the warehouse (DuckDB, PostgreSQL or Spark), both models are fitted, every customer
with an order is scored and the scores are stored as predictions.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy import optimize
from scipy.special import digamma, gammaln, hyp2f1
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from strata import plans
from strata.catalog import Workspace
from strata.errors import InputError
from strata.segments.reference import ReferenceTime

if TYPE_CHECKING:
    from strata.context import Strata
    from strata.warehouse import Warehouse

#: Days in one time unit of the models.
TIME_UNITS = {"day": 1.0, "week": 7.0}
#: A month, as the CLV horizon and its discount rate count them: an average calendar month.
DAYS_PER_MONTH = 365.25 / 12
#: Gamma-Gamma needs customers with repeat purchases; fewer than this gives no usable fit.
MIN_REPEAT_CUSTOMERS = 20
#: The order event type (refunds are not purchase occasions, see :func:`warehouse_summary`).
ORDER_EVENT = "order"
#: How many customers the result of :func:`run_clv` lists, by CLV.
TOP_CUSTOMERS = 10

SUMMARY_COLUMNS = ["frequency", "recency", "T", "monetary_value"]


# -- summaries ----------------------------------------------------------------------------------
def summary_from_transactions(
    transactions: pd.DataFrame,
    *,
    as_of: dt.date,
    customer_id_col: str = "customer_id",
    datetime_col: str = "timestamp",
    monetary_value_col: str | None = "revenue",
    time_unit: str = "week",
) -> pd.DataFrame:
    """Per customer: ``frequency``, ``recency``, ``T`` and ``monetary_value`` from purchases.

    Purchases on the same day are one purchase (their values summed). ``frequency`` is
    the number of purchase days after the first; ``recency`` the time from the first to
    the last purchase day; ``T`` the time from the first purchase day to ``as_of`` (the
    last day of the observation, whose purchases count); ``monetary_value`` the mean
    value of the repeat purchase days (the first excluded, 0 without repeats). Times are
    in ``time_unit`` (``day`` or ``week`` = 7 days). Purchases after ``as_of`` are
    ignored. Indexed by customer id, sorted.

    >>> tx = pd.DataFrame({"customer_id": [1, 1, 1], "revenue": [5.0, 2.0, 3.0],
    ...     "timestamp": pd.to_datetime(["1997-01-01", "1997-01-08", "1997-01-08"])})
    >>> summary_from_transactions(tx, as_of=dt.date(1997, 1, 15)).iloc[0].tolist()
    [1.0, 1.0, 2.0, 5.0]
    """
    unit = _unit_days(time_unit)
    missing = [
        c
        for c in (customer_id_col, datetime_col, monetary_value_col)
        if c and c not in transactions
    ]
    if missing:
        raise InputError(
            f"transactions have no column {missing[0]!r}: name the columns with "
            "customer_id_col, datetime_col and monetary_value_col"
        )
    day = pd.to_datetime(transactions[datetime_col]).dt.normalize()
    end = pd.Timestamp(as_of)
    frame = pd.DataFrame(
        {
            "customer_id": transactions[customer_id_col].to_numpy(),
            "day": day.to_numpy(),
            "value": (
                transactions[monetary_value_col].fillna(0.0).astype("float64").to_numpy()
                if monetary_value_col
                else 0.0
            ),
        }
    )
    frame = frame[frame["day"] <= end]
    daily = frame.groupby(["customer_id", "day"], sort=True)["value"].sum().reset_index()
    first = daily.groupby("customer_id")["day"].transform("min")
    daily["repeat_value"] = daily["value"].where(daily["day"] > first, 0.0)
    per = daily.groupby("customer_id").agg(
        days=("day", "size"),
        first=("day", "min"),
        last=("day", "max"),
        repeat_value=("repeat_value", "sum"),
    )
    frequency = (per["days"] - 1).astype("float64")
    out = pd.DataFrame(
        {
            "frequency": frequency,
            "recency": (per["last"] - per["first"]).dt.days / unit,
            "T": (end - per["first"]).dt.days / unit,
            "monetary_value": np.where(
                frequency > 0, per["repeat_value"] / frequency.where(frequency > 0, 1.0), 0.0
            ),
        }
    )
    out.index.name = "customer_id"
    return out


def warehouse_summary(
    warehouse: Warehouse,
    workspace_id: int,
    as_of: ReferenceTime,
    *,
    time_unit: str = "week",
    order_event: str = ORDER_EVENT,
) -> pd.DataFrame:
    """:func:`summary_from_transactions` computed in the warehouse from a workspace's events.

    Orders (events of type ``order_event``) known at ``as_of`` (timestamp before its
    instant) count; days are UTC calendar days and ``T`` runs to ``as_of.day``.
    Refunds are left out: BG/NBD counts purchase occasions, and Gamma-Gamma needs each
    occasion's value to be positive, which a refund netted against its day could break;
    a refund is a later event about an old purchase, not a smaller purchase. Returns
    ``customer_id``, ``frequency``, ``recency``, ``T``, ``monetary_value`` for every
    customer with an order, sorted by ``customer_id``.

    >>> ref = ReferenceTime.of(dt.date(1997, 9, 30))
    >>> warehouse_summary(app.warehouse, ws.id, ref)  # doctest: +SKIP
    """
    unit = _unit_days(time_unit)
    expr = _summary_expr(warehouse, workspace_id, as_of, unit, order_event)
    frame = expr.to_pyarrow().to_pandas()
    frame["customer_id"] = frame["customer_id"].astype("int64")
    for column in SUMMARY_COLUMNS:
        frame[column] = frame[column].astype("float64")
    return frame.sort_values("customer_id", kind="stable").reset_index(drop=True)


def _summary_expr(
    warehouse: Warehouse, workspace_id: int, ref: ReferenceTime, unit: float, order_event: str
) -> ir.Table:
    e = warehouse.table(workspace_id, "events")
    e = e.filter(
        e.event_type == order_event,
        e.timestamp < ibis.literal(ref.instant, type="timestamp"),
        e.customer_id.notnull(),
    )
    # Whole days since the epoch: dates compare the same on every backend, deltas do not.
    e = e.select(
        "customer_id",
        day=(e.timestamp.date().epoch_seconds() // 86400).cast("int64"),
        value=e.revenue.fill_null(0.0).cast("float64"),
    )
    daily = e.group_by(["customer_id", "day"]).aggregate(value=e.value.sum())
    daily = daily.mutate(first_day=daily.day.min().over(group_by=daily.customer_id))
    per = daily.group_by("customer_id").aggregate(
        days=daily.count(),
        first_day=daily.first_day.min(),
        last_day=daily.day.max(),
        repeat_value=(daily.day > daily.first_day).ifelse(daily.value, 0.0).sum(),
    )
    end_day = (ref.day - dt.date(1970, 1, 1)).days
    frequency = (per.days - 1).cast("float64")
    return per.select(
        "customer_id",
        frequency=frequency,
        recency=(per.last_day - per.first_day).cast("float64") / unit,
        T=(ibis.literal(end_day, type="int64") - per.first_day).cast("float64") / unit,
        monetary_value=(frequency > 0).ifelse(
            per.repeat_value / ibis.greatest(frequency, 1.0), 0.0
        ),
    )


# -- BG/NBD ---------------------------------------------------------------------------------------
class BetaGeoModel(BaseEstimator):
    """The BG/NBD model of repeat purchases (Fader, Hardie & Lee 2005).

    Each customer buys at a Poisson rate (gamma-distributed across customers, shape
    ``r``, rate ``alpha``) and after each purchase leaves with a probability
    (beta-distributed, ``a``, ``b``). Fitted by maximum likelihood on log parameters;
    ``penalizer`` adds ``penalizer * sum(params**2)`` to the mean negative
    log-likelihood (it keeps small or odd data sets from running to extreme values).
    ``X`` is ``frequency``, ``recency``, ``T`` (columns in that order, or a DataFrame
    with those names), in one time unit.

    >>> data = pd.read_csv("cdnow_customers_summary.csv")  # doctest: +SKIP
    >>> X = data[["frequency", "recency", "T"]]  # doctest: +SKIP
    >>> model = BetaGeoModel().fit(X)  # doctest: +SKIP
    >>> model.probability_alive(X[:1])  # doctest: +SKIP
    """

    def __init__(self, penalizer: float = 0.0, tol: float = 1e-9, max_iter: int = 1000):
        self.penalizer = penalizer
        self.tol = tol
        self.max_iter = max_iter

    def fit(self, X: Any, y: Any = None) -> BetaGeoModel:
        """Fit ``r``, ``alpha``, ``a``, ``b`` to ``X``; returns the model."""
        _check_penalizer(self.penalizer)
        x, t_x, big_t = _bgnbd_columns(X)
        if len(x) == 0:
            raise InputError("no customers to fit the BG/NBD model to: give at least one row")
        # Customers with equal histories add equal terms: fit on the distinct ones, weighted.
        rows, weights = _distinct_rows(np.column_stack([x, t_x, big_t]))
        x, t_x, big_t = rows.T
        n = weights.sum()

        def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
            ll, grad = _bgnbd_ll(np.exp(theta), x, t_x, big_t, gradient=True)
            params = np.exp(theta)
            value = -(weights @ ll) / n + self.penalizer * np.sum(params**2)
            g = -(weights @ grad) / n * params + 2 * self.penalizer * params**2
            return float(value), g

        # Starting at 1 for every parameter is where the published fits start too.
        result = _minimise(objective, np.zeros(4), self.tol, self.max_iter)
        r, alpha, a, b = np.exp(result.x)
        self.params_ = {"r": float(r), "alpha": float(alpha), "a": float(a), "b": float(b)}
        self.log_likelihood_ = float(weights @ _bgnbd_ll(np.exp(result.x), x, t_x, big_t)[0])
        self.converged_ = bool(result.success)
        self.n_iter_ = int(result.nit)
        self.n_customers_ = int(n)
        return self

    def _p(self) -> tuple[float, float, float, float]:
        check_is_fitted(self)
        p = self.params_
        return p["r"], p["alpha"], p["a"], p["b"]

    def log_likelihood(self, X: Any) -> np.ndarray:
        """Each customer's log-likelihood under the fitted parameters."""
        x, t_x, big_t = _bgnbd_columns(X)
        return _bgnbd_ll(np.array(self._p()), x, t_x, big_t)[0]

    def probability_alive(self, X: Any) -> np.ndarray:
        """The chance each customer is still active at the end of their ``T``.

        A customer who never bought again is alive for sure: in BG/NBD one can only
        leave right after a purchase.
        """
        r, alpha, a, b = self._p()
        x, t_x, big_t = _bgnbd_columns(X)
        return 1.0 / (1.0 + _dropout_odds(r, alpha, a, b, x, t_x, big_t))

    def expected_purchases(self, t: float, X: Any) -> np.ndarray:
        """Purchases each customer is expected to make in the next ``t`` time units."""
        r, alpha, a, b = self._p()
        if not np.isfinite(t) or t < 0:
            raise InputError(f"t must be a non-negative number of time units, not {t!r}")
        x, t_x, big_t = _bgnbd_columns(X)
        if t == 0:
            return np.zeros_like(x)
        z = t / (alpha + big_t + t)
        log_ratio = (r + x) * (np.log(alpha + big_t) - np.log(alpha + big_t + t))
        bought = 1.0 - np.exp(log_ratio) * hyp2f1(r + x, b + x, a + b + x - 1.0, z)
        first = (a + b + x - 1.0) / (a - 1.0)
        return first * bought / (1.0 + _dropout_odds(r, alpha, a, b, x, t_x, big_t))

    def expected_purchases_new(self, t: float) -> float:
        """Purchases a new customer is expected to make in their first ``t`` time units."""
        r, alpha, a, b = self._p()
        z = t / (alpha + t)
        return float(
            (a + b - 1.0)
            / (a - 1.0)
            * (1.0 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1.0, z))
        )


def _dropout_odds(r, alpha, a, b, x, t_x, big_t) -> np.ndarray:
    """P(left) / P(alive): 0 without repeat purchases."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log_odds = (
            np.log(a)
            - np.log(np.where(x > 0, b + x - 1.0, 1.0))
            + (r + x) * (np.log(alpha + big_t) - np.log(alpha + t_x))
        )
    return np.where(x > 0, np.exp(np.minimum(log_odds, 700.0)), 0.0)


def _bgnbd_ll(
    params: np.ndarray, x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray, *, gradient: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """Each row's BG/NBD log-likelihood (equation 6 of the paper) and its gradient."""
    r, alpha, a, b = params
    repeat = x > 0
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + big_t)
    safe_b = np.where(repeat, b + x - 1.0, 1.0)
    a4 = np.where(repeat, np.log(a) - np.log(safe_b) - (r + x) * np.log(alpha + t_x), -np.inf)
    mix = np.logaddexp(a3, a4)
    ll = a1 + a2 + mix
    if not gradient:
        return ll, None
    w3 = np.exp(a3 - mix)
    w4 = np.exp(a4 - mix)
    d_r = digamma(r + x) - digamma(r) + np.log(alpha)
    d_r -= w3 * np.log(alpha + big_t) + w4 * np.log(alpha + t_x)
    d_alpha = r / alpha - w3 * (r + x) / (alpha + big_t) - w4 * (r + x) / (alpha + t_x)
    d_ab = digamma(a + b) - digamma(a + b + x)
    d_a = d_ab + w4 / a
    d_b = d_ab + digamma(b + x) - digamma(b) - w4 / safe_b
    return ll, np.column_stack([d_r, d_alpha, d_a, d_b])


def _bgnbd_columns(X: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, t_x, big_t = _matrix(X, ["frequency", "recency", "T"]).T
    if (x < 0).any() or (np.floor(x) != x).any():
        raise InputError("frequency must be a whole number of repeat purchases, 0 or more")
    if (t_x < 0).any() or (t_x > big_t + 1e-9).any():
        raise InputError(
            "recency must be between 0 and T (time from the first purchase to the last, "
            "and to the end of the observation)"
        )
    if ((x == 0) & (t_x > 0)).any():
        raise InputError("a customer without repeat purchases must have recency 0")
    return x, t_x, big_t


# -- Gamma-Gamma ----------------------------------------------------------------------------------
class GammaGammaModel(BaseEstimator):
    """The Gamma-Gamma model of spend per purchase (Fader, Hardie & Lee 2005; Fader & Hardie 2013).

    A customer's purchase values are gamma-distributed (shape ``p``) around a personal
    mean, whose scale is gamma-distributed across customers (``q``, ``v``). Fitted on
    customers with repeat purchases: ``X`` is ``frequency``, ``monetary_value`` (the
    mean of the repeat purchases, positive).

    >>> gg = GammaGammaModel().fit(summary.loc[summary.frequency > 0,
    ...                            ["frequency", "monetary_value"]])  # doctest: +SKIP
    >>> gg.expected_spend(summary[["frequency", "monetary_value"]])  # doctest: +SKIP
    """

    def __init__(self, penalizer: float = 0.0, tol: float = 1e-9, max_iter: int = 1000):
        self.penalizer = penalizer
        self.tol = tol
        self.max_iter = max_iter

    def fit(self, X: Any, y: Any = None) -> GammaGammaModel:
        """Fit ``p``, ``q``, ``v`` to customers with repeat purchases; returns the model."""
        _check_penalizer(self.penalizer)
        x, m = _matrix(X, ["frequency", "monetary_value"]).T
        if len(x) == 0 or (x <= 0).any() or (m <= 0).any():
            raise InputError(
                "Gamma-Gamma is fitted on customers with repeat purchases of positive value: "
                "keep the rows with frequency > 0 and monetary_value > 0"
            )
        rows, weights = _distinct_rows(np.column_stack([x, m]))
        x, m = rows.T
        n = weights.sum()

        def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
            params = np.exp(theta)
            ll, grad = _gg_ll(params, x, m, gradient=True)
            value = -(weights @ ll) / n + self.penalizer * np.sum(params**2)
            g = -(weights @ grad) / n * params + 2 * self.penalizer * params**2
            return float(value), g

        result = _minimise(objective, np.zeros(3), self.tol, self.max_iter)
        p, q, v = np.exp(result.x)
        self.params_ = {"p": float(p), "q": float(q), "v": float(v)}
        self.log_likelihood_ = float(weights @ _gg_ll(np.exp(result.x), x, m)[0])
        self.converged_ = bool(result.success)
        self.n_iter_ = int(result.nit)
        self.n_customers_ = int(n)
        return self

    def log_likelihood(self, X: Any) -> np.ndarray:
        """Each customer's log-likelihood of their average spend under the fitted parameters."""
        check_is_fitted(self)
        x, m = _matrix(X, ["frequency", "monetary_value"]).T
        params = np.array([self.params_[k] for k in ("p", "q", "v")])
        return _gg_ll(params, x, m)[0]

    def expected_spend(self, X: Any) -> np.ndarray:
        """Each customer's expected value per purchase, given their repeat purchases.

        A weighted mean of the population mean ``p v / (q - 1)`` and the customer's own
        average; without repeat purchases, the population mean.
        """
        check_is_fitted(self)
        p, q, v = (self.params_[k] for k in ("p", "q", "v"))
        x, m = _matrix(X, ["frequency", "monetary_value"]).T
        m = np.where(x > 0, m, 0.0)
        return p * (v + x * m) / (p * x + q - 1.0)

    def population_mean_spend(self) -> float:
        """The mean value per purchase across customers, ``p v / (q - 1)`` (needs ``q > 1``)."""
        check_is_fitted(self)
        p, q, v = (self.params_[k] for k in ("p", "q", "v"))
        return p * v / (q - 1.0) if q > 1 else float("inf")


def _gg_ll(
    params: np.ndarray, x: np.ndarray, m: np.ndarray, *, gradient: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    p, q, v = params
    px = p * x
    log_xm_v = np.log(x * m + v)
    ll = (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(v)
        + (px - 1.0) * np.log(m)
        + px * np.log(x)
        - (px + q) * log_xm_v
    )
    if not gradient:
        return ll, None
    d_p = x * (digamma(px + q) - digamma(px) + np.log(m) + np.log(x) - log_xm_v)
    d_q = digamma(px + q) - digamma(q) + np.log(v) - log_xm_v
    d_v = q / v - (px + q) / (x * m + v)
    return ll, np.column_stack([d_p, d_q, d_v])


# -- lifetime value -------------------------------------------------------------------------------
def customer_lifetime_value(
    bgnbd: BetaGeoModel,
    gg: GammaGammaModel,
    X: Any,
    horizon: int,
    *,
    time_unit: str = "week",
    discount_rate: float = 0.01,
) -> np.ndarray:
    """Each customer's expected revenue over the next ``horizon`` months, discounted.

    A month is an average calendar month (365.25 / 12 days); ``time_unit`` is the unit
    the models were fitted in (``day`` or ``week``). Month ``i``'s expected purchases
    (the increase of :meth:`BetaGeoModel.expected_purchases` over that month) times the
    expected spend per purchase are divided by ``(1 + discount_rate) ** i``; the result
    is their sum. ``X`` has ``frequency``, ``recency``, ``T``, ``monetary_value``.

    >>> clv = customer_lifetime_value(bgnbd, gg, summary, 12, time_unit="week")  # doctest: +SKIP
    """
    horizon = _check_horizon(horizon)
    discount_rate = _check_discount(discount_rate)
    per_month = DAYS_PER_MONTH / _unit_days(time_unit)
    data = _matrix(X, SUMMARY_COLUMNS)
    spend = gg.expected_spend(data[:, [0, 3]])
    bought = np.zeros(len(data))
    total = np.zeros(len(data))
    for month in range(1, horizon + 1):
        cumulative = bgnbd.expected_purchases(month * per_month, data[:, :3])
        total += (cumulative - bought) * spend / (1.0 + discount_rate) ** month
        bought = cumulative
    return total


# -- in a workspace -------------------------------------------------------------------------------
def run_clv(
    app: Strata,
    workspace: str | Workspace | None = None,
    *,
    as_of: ReferenceTime | None = None,
    time_unit: str = "week",
    horizon: int = 12,
    discount_rate: float = 0.01,
    save: bool = True,
) -> dict[str, Any]:
    """Fit BG/NBD and Gamma-Gamma to a workspace's orders and score every customer.

    With ``save``, the fit is stored as a new version of model ``clv`` and five
    prediction types are written (each row's ``details`` gives the inputs and parts):
    ``clv`` (value over ``horizon`` months, confidence = chance alive),
    ``expected_purchases`` (over the horizon), ``p_alive``, ``churn_risk`` (1 - p_alive)
    and ``expected_order_value``. Returns what was fitted and the top customers by CLV.

    >>> ref = ReferenceTime.of(dt.date(2026, 6, 30))
    >>> result = run_clv(app, "demo", as_of=ref)  # doctest: +SKIP
    >>> result["bgnbd"]["r"], result["customers"]  # doctest: +SKIP
    """
    from strata.models.store import ModelStore, write_predictions
    from strata.models.tracking import log_fit

    unit = _unit_days(time_unit)
    horizon = _check_horizon(horizon)
    discount_rate = _check_discount(discount_rate)
    ws = workspace if isinstance(workspace, Workspace) else app.workspace(workspace)
    plans.require_feature(ws, "predictive")
    ref = as_of or ReferenceTime.now()
    timings: dict[str, float] = {}

    started = time.perf_counter()
    from strata.segments.engine import Segments

    # The workspace's order event (its RFM setting), as every other order measure uses.
    order_event = Segments(app, ws).rfm_config().order_event
    summary = warehouse_summary(
        app.warehouse, ws.id, ref, time_unit=time_unit, order_event=order_event
    )
    timings["summary_s"] = time.perf_counter() - started
    if summary.empty:
        raise InputError(
            f"no orders before {ref} in workspace {ws.name!r}: import orders first, "
            "or choose a later --as-of"
        )
    repeaters = summary[(summary.frequency > 0) & (summary.monetary_value > 0)]
    if len(repeaters) < MIN_REPEAT_CUSTOMERS:
        raise InputError(
            f"only {len(repeaters)} customers ordered on more than one day before {ref}; "
            f"lifetime value needs at least {MIN_REPEAT_CUSTOMERS} with repeat purchases "
            "(import more orders, or choose a later --as-of)"
        )

    started = time.perf_counter()
    bgnbd = BetaGeoModel().fit(summary[["frequency", "recency", "T"]])
    gg = GammaGammaModel().fit(repeaters[["frequency", "monetary_value"]])
    timings["fit_s"] = time.perf_counter() - started

    started = time.perf_counter()
    rfm = summary[["frequency", "recency", "T"]]
    p_alive = bgnbd.probability_alive(rfm)
    purchases = bgnbd.expected_purchases(horizon * DAYS_PER_MONTH / unit, rfm)
    spend = gg.expected_spend(summary[["frequency", "monetary_value"]])
    clv = customer_lifetime_value(
        bgnbd, gg, summary, horizon, time_unit=time_unit, discount_rate=discount_rate
    )
    timings["score_s"] = time.perf_counter() - started

    params = {
        "time_unit": time_unit,
        "horizon_months": horizon,
        "discount_rate": discount_rate,
        "order_event": order_event,
        "penalizer": bgnbd.penalizer,
    }
    state = {"bgnbd": bgnbd.params_, "gamma_gamma": gg.params_}
    metrics = {
        "bgnbd_log_likelihood": bgnbd.log_likelihood_,
        "gamma_gamma_log_likelihood": gg.log_likelihood_,
        "customers": len(summary),
        "repeat_customers": len(repeaters),
        "mean_p_alive": float(p_alive.mean()),
        "total_clv": float(clv.sum()),
    }
    result: dict[str, Any] = {
        "customers": len(summary),
        "repeat_customers": len(repeaters),
        "as_of": str(ref),
        "time_unit": time_unit,
        "horizon": horizon,
        "horizon_unit": "month",
        "discount_rate": discount_rate,
        "bgnbd": {**bgnbd.params_, "log_likelihood": bgnbd.log_likelihood_},
        "gamma_gamma": {**gg.params_, "log_likelihood": gg.log_likelihood_},
        "total_clv": float(clv.sum()),
        "mean_p_alive": float(p_alive.mean()),
        "model_version": None,
    }

    if save:
        started = time.perf_counter()
        store = ModelStore(app, ws)
        fitted = store.save(
            kind="clv", name="clv", params=params, state=state, metrics=metrics, as_of=ref.instant
        )
        predicted_at = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
        details = _details_json(
            {
                "frequency": (summary.frequency.to_numpy(), 0),
                "recency": (summary.recency.to_numpy(), 4),
                "T": (summary["T"].to_numpy(), 4),
                "monetary_value": (summary.monetary_value.to_numpy(), 4),
                "p_alive": (p_alive, 6),
                "expected_purchases": (purchases, 6),
                "expected_order_value": (spend, 4),
            }
        )
        ids = pa.array(summary.customer_id.to_numpy(), pa.int64())
        no_confidence = pa.nulls(len(summary), pa.float64())
        no_details = pa.nulls(len(summary), pa.string())
        for kind, value, confidence in [
            ("clv", clv, p_alive),
            ("expected_purchases", purchases, p_alive),
            ("p_alive", p_alive, None),
            ("churn_risk", 1.0 - p_alive, None),
            ("expected_order_value", spend, None),
        ]:
            # One customer's inputs and parts are the same for all five types: the CLV and
            # churn-risk rows carry them (writing them five times was most of a 1M run).
            rows = pa.table(
                {
                    "customer_id": ids,
                    "value": _finite_or_null(value),
                    "confidence": (
                        no_confidence if confidence is None else _finite_or_null(confidence)
                    ),
                    "details": details if kind in {"clv", "churn_risk"} else no_details,
                }
            )
            write_predictions(
                app,
                ws.id,
                kind,
                rows,
                model_version=fitted.model_version,
                predicted_at=predicted_at,
            )
        timings["write_s"] = time.perf_counter() - started
        result["model_version"] = fitted.model_version
        log_fit(kind="clv", name="clv", params=params, metrics=metrics, state=state)
        result["segments"] = _vip_segments(app, ws, horizon)

    result["top_customers"] = _top_customers(app, ws, summary, clv, p_alive, purchases)
    result["timings"] = {k: round(v, 3) for k, v in timings.items()}
    return result


#: The share of customers with orders, by predicted lifetime value, that are VIPs.
VIP_PERCENT = 20


def _vip_segments(app: Strata, ws: Workspace, horizon: int) -> list[dict[str, Any]]:
    """Save the VIP segment (top 20 % by CLV) and refresh every segment reading these scores."""
    from strata.segments import nodes as N
    from strata.segments.engine import Segments

    segs = Segments(app, ws)
    rule = N.parse_rule({"type": "prediction", "prediction": "clv", "top_percent": VIP_PERCENT})
    clash = [s for s in segs.list() if s.name == "VIPs" and s.family != "clv"]
    if clash:
        raise InputError(
            "a segment named 'VIPs' already exists and is not the lifetime-value one: "
            "rename it, then predict again"
        )
    description = (
        f"The top {VIP_PERCENT} % of customers with orders by predicted lifetime value "
        f"over the next {horizon} months."
    )
    segs.save(
        N.SegmentSpec(name="VIPs", description=description, rule=rule),
        kind="prediction", source="system", family="clv", replace=True, evaluate=False,
    )  # fmt: skip
    refreshed = segs.after_predictions(
        {"clv", "expected_purchases", "p_alive", "churn_risk", "expected_order_value"}
    )
    return [{"segment": r.segment, "customers": r.members} for r in refreshed]


def _details_json(columns: dict[str, tuple[np.ndarray, int]]) -> pa.Array:
    """One compact JSON object per row, ``{"name": value, ...}``, rounded as given.

    Built column-wise in Arrow: a million rows through ``json.dumps`` take seconds, this
    a fraction of one. Values are numbers, so no escaping is needed; non-finite ones are
    ``null``.
    """
    parts: list[Any] = []
    for i, (name, (values, decimals)) in enumerate(columns.items()):
        rounded = pc.round(pa.array(values, pa.float64()), decimals)
        text = pc.cast(rounded, pa.string())
        finite = pc.is_finite(rounded)
        parts += [("{" if i == 0 else ",") + f'"{name}":', pc.if_else(finite, text, "null")]
    parts.append("}")
    return pc.binary_join_element_wise(*parts, "")


def _finite_or_null(values: np.ndarray) -> pa.Array:
    values = np.asarray(values, dtype="float64")
    return pa.array(values, pa.float64(), mask=~np.isfinite(values))


def _top_customers(app, ws, summary, clv, p_alive, purchases) -> list[dict[str, Any]]:
    # Ties broken by customer id, so the list is the same on every run and backend.
    order = np.lexsort((summary.customer_id.to_numpy(), -clv))[:TOP_CUSTOMERS]
    ids = summary.customer_id.to_numpy()[order].tolist()
    c = app.warehouse.table(ws.id, "customers")
    names = c.filter(c.customer_id.isin(ids)).select("customer_id", "external_id")
    external = {r["customer_id"]: r["external_id"] for r in names.to_pyarrow().to_pylist()}
    return [
        {
            "customer_id": int(ids[i]),
            "external_id": external.get(ids[i]),
            "clv": round(float(clv[j]), 2),
            "p_alive": round(float(p_alive[j]), 4),
            "expected_purchases": round(float(purchases[j]), 3),
        }
        for i, j in enumerate(order)
    ]


# -- helpers --------------------------------------------------------------------------------------
def _matrix(X: Any, columns: list[str]) -> np.ndarray:
    if isinstance(X, pd.DataFrame):
        missing = [c for c in columns if c not in X.columns]
        if missing:
            raise InputError(
                f"the data has no column {missing[0]!r}: give {', '.join(columns)} "
                "(or an array with those columns in that order)"
            )
        X = X[columns]
    try:
        data = np.asarray(X, dtype="float64")
    except (TypeError, ValueError):
        raise InputError(f"the data must be numbers: {', '.join(columns)}") from None
    if data.ndim != 2 or data.shape[1] != len(columns):
        raise InputError(
            f"expected {len(columns)} columns ({', '.join(columns)}), got an array of shape "
            f"{data.shape}"
        )
    if not np.isfinite(data).all():
        raise InputError(f"{', '.join(columns)} must be finite numbers (no NaN or infinity)")
    return data


def _distinct_rows(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows, counts = np.unique(data, axis=0, return_counts=True)
    return rows, counts.astype("float64")


def _minimise(objective, start: np.ndarray, tol: float, max_iter: int):
    # The optimiser's BLAS calls are on vectors of 3 or 4 numbers: threads only add their
    # start-up and, on a busy machine, waiting (one thread fits 2-3x faster here).
    with threadpool_limits(limits=1, user_api="blas"):
        return _minimise_here(objective, start, tol, max_iter)


def _minimise_here(objective, start: np.ndarray, tol: float, max_iter: int):
    result = optimize.minimize(
        objective,
        start,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": max_iter, "ftol": tol, "gtol": tol},
    )
    if not result.success or not np.isfinite(result.fun):
        # L-BFGS-B stops early on flat or rough stretches; Nelder-Mead does not need the
        # gradient to be smooth, and a second L-BFGS-B pass polishes where it ends.
        simplex = optimize.minimize(
            lambda th: objective(th)[0],
            result.x if np.isfinite(result.fun) else start,
            method="Nelder-Mead",
            options={"maxiter": 20 * max_iter, "xatol": 1e-10, "fatol": 1e-12},
        )
        result = optimize.minimize(
            objective, simplex.x, jac=True, method="L-BFGS-B", options={"maxiter": max_iter}
        )
    if not np.isfinite(result.x).all() or not np.isfinite(result.fun):
        raise InputError(
            "the model did not converge on this data: check it has enough customers with "
            "repeat purchases, or fit with a penalizer (e.g. 0.001)"
        )
    return result


def _unit_days(time_unit: str) -> float:
    if time_unit not in TIME_UNITS:
        raise InputError(f"unknown time unit {time_unit!r}: use {' or '.join(TIME_UNITS)}")
    return TIME_UNITS[time_unit]


def _check_horizon(horizon: Any) -> int:
    if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or horizon <= 0:
        raise InputError(
            f"the horizon must be a whole number of months, 1 or more, not {horizon!r}"
        )
    return int(horizon)


def _check_discount(rate: Any) -> float:
    try:
        value = float(rate)
    except (TypeError, ValueError):
        value = float("nan")
    if not np.isfinite(value) or value < 0 or value >= 1:
        raise InputError(
            f"the discount rate is per month, from 0 to below 1 (0.01 = 1 %), not {rate!r}"
        )
    return value


def _check_penalizer(penalizer: Any) -> None:
    if not isinstance(penalizer, int | float) or not np.isfinite(penalizer) or penalizer < 0:
        raise InputError(f"penalizer must be a number, 0 or more, not {penalizer!r}")
