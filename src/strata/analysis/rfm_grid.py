"""The RFM grid: customers with orders by recency score and a second score, cell by cell.

Customers are scored at the analyst's reference instant as ``strata rfm`` scores them.
The second axis is the frequency score, or FM (the mean of frequency and monetary,
rounded half up): the grid the RFM segments are cut from, so with it each cell names
the RFM segment it belongs to.

>>> an = Analyst(app, as_of=ReferenceTime.parse("2011-12-10"))  # doctest: +SKIP
>>> rfm_grid(an, axis="fm").head(2)  # doctest: +SKIP
"""

from __future__ import annotations

import typing
from typing import Literal

import ibis
import pandas as pd

from strata.analysis.base import Analyst, execute
from strata.errors import InputError
from strata.segments.engine import rfm_scores
from strata.segments.rfm import fm_score

Axis = Literal["frequency", "fm"]
AXES: tuple[str, ...] = typing.get_args(Axis)
GRID_COLUMNS = [
    "recency",
    "score",
    "customers",
    "revenue",
    "average_revenue",
    "average_orders",
    "segment",
]


def rfm_grid(an: Analyst, axis: Axis = "frequency") -> pd.DataFrame:
    """The cells of the RFM grid that have customers, by ``recency`` then ``score``:

    * ``recency`` (int): the recency score, 1 (longest ago) to the bins (most recent);
    * ``score`` (int): the frequency (or FM) score, 1 to the bins;
    * ``customers``: customers with orders in the cell;
    * ``revenue``: their net revenue (orders less refunds) in total, to the cent;
    * ``average_revenue``, ``average_orders``: per customer, to two decimals;
    * ``segment``: with ``axis="fm"``, the RFM segment the cell belongs to (else null).
    """
    scored = _scored(an, axis)
    cells = execute(
        scored.group_by("recency", "score")
        .aggregate(
            customers=scored.count().cast("int64"),
            revenue=scored.total_revenue.sum().cast("float64"),
            orders=scored.total_orders.sum().cast("float64"),
        )
        .order_by("recency", "score")
    )
    owner = an.segs.rfm_config().cells() if axis == "fm" else {}
    revenue = cells.revenue.fillna(0.0)
    orders = cells.orders.fillna(0.0)
    cells["average_revenue"] = (revenue / cells.customers).round(2)
    cells["average_orders"] = (orders / cells.customers).round(2)
    cells["revenue"] = revenue.round(2)
    cells["segment"] = [
        owner.get((int(r), int(s))) for r, s in zip(cells.recency, cells.score, strict=True)
    ]
    return cells.astype({"recency": "int64", "score": "int64", "customers": "int64"})[GRID_COLUMNS]


def rfm_cell_customers(
    an: Analyst, recency: int, score: int, axis: Axis = "frequency"
) -> ibis.Table:
    """``customer_id`` of the customers of one cell of :func:`rfm_grid` with the same
    ``axis``: as many as its ``customers``."""
    scored = _scored(an, axis)
    return scored.filter(scored.recency == recency, scored.score == score).select("customer_id")


def _scored(an: Analyst, axis: str) -> ibis.Table:
    """Per customer with orders: ``recency``, ``score`` (the grid's second axis), orders
    and revenue, scored at the analyst's reference instant."""
    if axis not in AXES:
        raise InputError(f"axis {axis!r} is not one of {', '.join(AXES)}")
    scored = rfm_scores(an.segs, an.ref)
    second = (
        scored.rfm_frequency
        if axis == "frequency"
        else fm_score(scored.rfm_frequency, scored.rfm_monetary)
    )
    return scored.select(
        "customer_id",
        "total_orders",
        "total_revenue",
        recency=scored.rfm_recency.cast("int64"),
        score=second.cast("int64"),
    )
