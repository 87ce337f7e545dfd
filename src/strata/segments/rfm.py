"""RFM: recency, frequency and monetary scores, and the 11 named segments.

Scores are relative to the workspace's own customers with at least one order
before the reference time. For each measure, those customers are sorted from
worst to best (longest since the last order, fewest orders, least revenue at 6
decimals), ties broken by customer id, and cut into ``bins`` groups as equal as possible (the
first groups take one more when the count does not divide): SQL's ``NTILE``.
The groups are numbered 1 (worst) to ``bins`` (best).

The named segment comes from a grid of recency against ``FM``, the mean of the
frequency and monetary scores rounded half up. Every cell of the grid belongs to
exactly one segment; :func:`check_config` refuses a map that leaves a cell empty
or puts one in two segments.

>>> default_config().segment_of(5, 5)
'Champions'
>>> default_config().segment_of(1, 1)
'Lost'
"""

from __future__ import annotations

import re
from typing import Any

import ibis
import ibis.expr.types as ir
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from strata.errors import InputError

#: The standard grid: segment → cells ``"R:FM"``, each side a score or a range ``a-b``.
DEFAULT_MAP: dict[str, list[str]] = {
    "Champions": ["5:4-5"],
    "Loyal Customers": ["3-4:4-5"],
    "Potential Loyalists": ["4-5:2-3"],
    "New Customers": ["5:1"],
    "Promising": ["4:1"],
    "Need Attention": ["3:3"],
    "About to Sleep": ["3:1-2"],
    "At Risk": ["1-2:3-4"],
    "Can't Lose Them": ["1-2:5"],
    "Hibernating": ["2:1-2"],
    "Lost": ["1:1-2"],
}

#: What each default segment suggests doing, shown with the numbers.
ACTIONS = {
    "Champions": "reward them: early access, referrals, reviews",
    "Loyal Customers": "upsell higher-value products; ask for reviews",
    "Potential Loyalists": "offer membership or loyalty programmes",
    "New Customers": "onboard well; build the relationship early",
    "Promising": "build brand awareness; free trials",
    "Need Attention": "limited-time offers based on past purchases",
    "About to Sleep": "share popular products; reconnect with discounts",
    "At Risk": "personal win-back e-mails with offers",
    "Can't Lose Them": "win them back with new products; talk to them",
    "Hibernating": "offer relevant products and special discounts",
    "Lost": "revive interest with a reach-out campaign, or let go",
}

_CELL = re.compile(r"^\s*(\d+)(?:\s*-\s*(\d+))?\s*:\s*(\d+)(?:\s*-\s*(\d+))?\s*$")


class RfmConfig(BaseModel):
    """Bins and the segment map; stored as the workspace setting ``rfm``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bins: int = Field(default=5, ge=2, le=10)
    map: dict[str, list[str]] = Field(default_factory=lambda: dict(DEFAULT_MAP))
    #: The event types that are orders (frequency counts them; refunds lower revenue).
    order_event: str = "order"

    @model_validator(mode="after")
    def _grid(self) -> RfmConfig:
        self.cells()  # raises on overlaps and gaps
        return self

    def cells(self) -> dict[tuple[int, int], str]:
        """``(R, FM) → segment`` for every cell of the grid."""
        owner: dict[tuple[int, int], str] = {}
        for name, specs in self.map.items():
            if not name.strip():
                raise ValueError("an RFM segment needs a name")
            for spec in specs:
                m = _CELL.match(spec)
                if not m:
                    raise ValueError(f"RFM cell {spec!r} of {name!r} must look like '4-5:1-2'")
                r_lo, r_hi = int(m[1]), int(m[2] or m[1])
                f_lo, f_hi = int(m[3]), int(m[4] or m[3])
                if not (1 <= r_lo <= r_hi <= self.bins and 1 <= f_lo <= f_hi <= self.bins):
                    raise ValueError(
                        f"RFM cell {spec!r} of {name!r} is outside the grid 1..{self.bins}"
                    )
                for r in range(r_lo, r_hi + 1):
                    for fm in range(f_lo, f_hi + 1):
                        if (r, fm) in owner:
                            raise ValueError(
                                f"RFM cell R={r}, FM={fm} is in both {owner[(r, fm)]!r} and "
                                f"{name!r}: each cell belongs to one segment"
                            )
                        owner[(r, fm)] = name
        missing = [
            f"R={r}, FM={fm}"
            for r in range(1, self.bins + 1)
            for fm in range(1, self.bins + 1)
            if (r, fm) not in owner
        ]
        if missing:
            raise ValueError(
                f"RFM cells {', '.join(missing[:5])}{' …' if len(missing) > 5 else ''} "
                "are in no segment: every cell needs one"
            )
        return owner

    def segment_of(self, r: int, fm: int) -> str:
        return self.cells()[(r, fm)]


def default_config() -> RfmConfig:
    return RfmConfig()


def parse_config(data: dict[str, Any]) -> RfmConfig:
    try:
        return RfmConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise InputError(
            f"invalid RFM settings: {err['msg'].removeprefix('Value error, ')}"
        ) from None


def fm_score(f: ir.IntegerValue, m: ir.IntegerValue) -> ir.IntegerValue:
    """The mean of F and M rounded half up, in integers: ``(F + M + 1) // 2``."""
    return ((f + m + 1) // 2).cast("int64")


def scores(orders: ibis.Table, days_since: str, config: RfmConfig) -> ibis.Table:
    """Add ``rfm_recency``, ``rfm_frequency``, ``rfm_monetary`` and ``rfm_segment``.

    ``orders`` has one row per customer with at least one order: ``customer_id``,
    ``total_orders``, ``total_revenue`` and the column ``days_since``.
    """
    bins = config.bins
    cid = orders.customer_id
    # ibis's ntile is 0-based; the customer id makes the order total, so every
    # backend cuts the same groups. Revenue is ranked at 6 decimals: sums of the same
    # amounts differ in their last bits from one backend (or plan) to another, and that
    # noise must not break ties that the customer id should.
    scored = orders.mutate(
        rfm_recency=(ibis.ntile(bins).over(order_by=[orders[days_since].desc(), cid]) + 1).cast(
            "int64"
        ),
        rfm_frequency=(ibis.ntile(bins).over(order_by=[orders.total_orders, cid]) + 1).cast(
            "int64"
        ),
        rfm_monetary=(
            ibis.ntile(bins).over(order_by=[orders.total_revenue.round(6), cid]) + 1
        ).cast("int64"),
    )
    cell = scored.rfm_recency * 100 + fm_score(scored.rfm_frequency, scored.rfm_monetary)
    branches = [(cell == r * 100 + fm, name) for (r, fm), name in sorted(config.cells().items())]
    return scored.mutate(rfm_segment=ibis.cases(*branches))
