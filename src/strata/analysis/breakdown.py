"""Demographic breakdown: how one attribute or trait spreads in a segment against the base.

Counting happens in the warehouse, in one query: every customer's value (or value
group) beside a flag saying whether they are a member, grouped by the value. Only the
few groups come back, and the statistics are worked out on them in Python.

>>> an = Analyst(app, as_of=ReferenceTime.parse("2011-12-10"))  # doctest: +SKIP
>>> breakdown(an, "Champions", "country", limit=5)[["value", "index"]]  # doctest: +SKIP
            value       index
0  United Kingdom   97.613...
"""

from __future__ import annotations

import math
import re

import ibis
import pandas as pd
from pydantic import Field
from scipy.stats import fisher_exact

from strata.analysis.base import Analyst, Params, SegmentRef, Tables, analysis, execute
from strata.errors import InputError

#: Groups from the rest of the base (base minus segment) are compared with a z-test when
#: every expected cell count reaches this; below it, Fisher's exact test.
MIN_EXPECTED = 5
#: Significance level, after the Holm–Bonferroni correction over the values shown.
ALPHA = 0.05
MISSING, OTHER = "(missing)", "(other)"

#: Columns that tell who a customer is; a breakdown shows groups, never people.
IDENTIFIERS = frozenset({"customer_id", "external_id", "email", "name", "phone"})
_IDENTIFYING_WORDS = re.compile(
    r"(^|_)(e?mail|name|phone|mobile|address|street|ip)(_|$)|^ip_address$"
)
_NOT_IDENTIFYING = frozenset({"company_name", "product_name"})


def breakdown(
    an: Analyst,
    segment: str | int | None,
    attribute: str,
    *,
    limit: int = 20,
    bins: int = 10,
) -> pd.DataFrame:
    """How ``attribute`` is distributed in ``segment`` compared with the whole base.

    ``attribute`` is a column of the customers table (custom mapped ones included) or
    a trait (``rfm_segment``, ``total_orders``…, as segment rules know them, measured at
    the analyst's reference time). Values are grouped by kind:

    - text: the ``limit`` values most frequent in the base (ties: by value), the rest
      folded into ``(other)``;
    - numbers: ``bins`` equal-width bins between the base's smallest and largest value,
      labelled ``a–b`` and holding ``a ≤ x < b`` (the last one also ``x = b``); bins that
      hold nobody are shown too. Whole numbers spanning fewer than ``bins`` values get
      one group per number, labelled with it;
    - dates and date-times: by calendar year (``2024``), years holding nobody left out;
    - true/false: ``false`` and ``true``.

    Null (and empty text) is the value ``(missing)``, always last (``(other)`` just
    before it). Rows are in that order: text by base count, then bins or years upward.

    One row per value, with columns:

    - ``value``: the value or group, as text;
    - ``segment_customers``: members of the segment with that value;
    - ``segment_share``: ``segment_customers`` / members of the segment (0 when empty);
    - ``base_customers``: customers of the whole base with that value;
    - ``base_share``: ``base_customers`` / customers in the base;
    - ``index``: 100 × ``segment_share`` / ``base_share`` (100: as common as in the
      base; null when the value has no customers or the segment is empty);
    - ``test``: how the segment was compared with the rest of the base (the base minus
      the segment) for this value: ``z`` (two-proportion z-test, pooled, two-sided)
      when all four expected counts are at least 5, else ``fisher`` (Fisher's exact
      test, two-sided); null when there is nothing to compare (an empty segment, a
      segment holding the whole base, a value nobody has);
    - ``p_value``: that test's two-sided p-value, before correction (null without test);
    - ``p_adjusted``: the p-value after the Holm–Bonferroni correction over the tested
      values of this answer;
    - ``significant``: ``p_adjusted < 0.05``;
    - ``representation``: ``over`` or ``under`` when significant with ``index`` above
      or below 100, else ``as base``.

    Personal identifiers (e-mail, name, phone, ids) are refused with ``InputError``.
    """
    if limit < 1 or bins < 1:
        raise InputError(f"limit and bins must be at least 1 (got limit={limit}, bins={bins})")
    name = _check_attribute(attribute)
    compiler = an.segs.compiler(an.ref)
    dtype = compiler.field_type(name)  # raises InputError naming attributes and traits
    value_of = compiler._field(name)
    wide = compiler.wide()
    values = wide.select("customer_id", v=value_of(wide))

    if segment is None or str(segment).strip() == "":
        flagged = values.mutate(s=ibis.literal(1, type="int64"))
    else:
        members = an.members(segment)
        # One row per member: a customer has one open spell of a segment at an instant.
        members = members.select(_member=members.customer_id)
        joined = values.left_join(members, values.customer_id == members._member)
        flagged = joined.select("v", s=joined._member.notnull().ifelse(1, 0).cast("int64"))

    if dtype.is_boolean():
        # Not ifelse: a null would read as false.
        truth = ibis.cases((flagged.v, "true"), (~flagged.v, "false"), else_=ibis.null("string"))
        counts = _counts(flagged, truth)
        rows = _fixed_order(counts, ["false", "true"])
    elif dtype.is_date() or dtype.is_timestamp():
        counts = _counts(flagged, flagged.v.year().cast("float64"))
        rows = [(str(int(k)), seg, base) for k, seg, base in _sorted_keys(counts)]
        rows += _missing(counts)
    elif dtype.is_numeric():
        rows = _number_rows(flagged, bins, integer=dtype.is_integer())
    else:
        rows = _text_rows(flagged, limit)
    return _statistics(rows)


def _check_attribute(attribute: str) -> str:
    name = (attribute or "").strip()
    if not name:
        raise InputError("say which attribute or trait to break down, e.g. country")
    lowered = name.lower()
    if lowered in IDENTIFIERS or (
        lowered not in _NOT_IDENTIFYING and _IDENTIFYING_WORDS.search(lowered)
    ):
        raise InputError(
            f"{name!r} identifies people and a breakdown shows groups, not people: "
            "choose an attribute such as country, industry, plan or a trait"
        )
    return name


# -- counting in the warehouse ---------------------------------------------------------------
Row = tuple[str, int, int]  # value, segment customers, base customers


def _counts(flagged: ibis.Table, key: ibis.Value) -> list[tuple[object, int, int]]:
    """``(key, segment, base)`` per key, nulls as the key ``None``; one query."""
    t = flagged.select(k=key, s=flagged.s)
    g = t.group_by("k").aggregate(
        seg=t.s.sum().fill_null(0).cast("int64"), base=t.count().cast("int64")
    )
    frame = execute(g)
    return [(k, int(s), int(b)) for k, s, b in zip(frame.k, frame.seg, frame.base, strict=True)]


def _is_null(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _sorted_keys(counts: list[tuple[object, int, int]]) -> list[tuple[object, int, int]]:
    return sorted((c for c in counts if not _is_null(c[0])), key=lambda c: c[0])


def _missing(counts: list[tuple[object, int, int]]) -> list[Row]:
    seg = sum(c[1] for c in counts if _is_null(c[0]))
    base = sum(c[2] for c in counts if _is_null(c[0]))
    return [(MISSING, seg, base)] if base else []


def _fixed_order(counts: list[tuple[object, int, int]], order: list[str]) -> list[Row]:
    found = {k: (s, b) for k, s, b in counts if not _is_null(k)}
    return [(k, *found[k]) for k in order if k in found] + _missing(counts)


def _text_rows(flagged: ibis.Table, limit: int) -> list[Row]:
    """The ``limit`` most common values in the base, the rest as ``(other)``; one query.

    The cut is made in the warehouse (a text attribute may hold millions of distinct
    values); ties at the cut go by value in the warehouse's own ordering of text.
    """
    v = flagged.v.cast("string")
    t = flagged.select(v=ibis.ifelse(v == "", ibis.null("string"), v), s=flagged.s)
    g = t.group_by("v").aggregate(
        seg=t.s.sum().fill_null(0).cast("int64"), base=t.count().cast("int64")
    )
    ranked = g.mutate(
        rank=ibis.row_number().over(order_by=[g.v.isnull(), g.base.desc(), g.v]).cast("int64")
    )
    label = ibis.cases(
        (ranked.v.isnull(), ibis.literal(MISSING)),
        (ranked.rank < limit, ranked.v),
        else_=ibis.literal(OTHER),
    )
    folded = ranked.group_by(value=label).aggregate(
        seg=ranked.seg.sum().fill_null(0).cast("int64"),
        base=ranked.base.sum().fill_null(0).cast("int64"),
    )
    frame = execute(folded)
    rows = [
        (str(v), int(s), int(b)) for v, s, b in zip(frame.value, frame.seg, frame.base, strict=True)
    ]
    place = {OTHER: 1, MISSING: 2}
    return sorted(rows, key=lambda r: (place.get(r[0], 0), -r[2], r[0]))


def _number_rows(flagged: ibis.Table, bins: int, *, integer: bool) -> list[Row]:
    """Equal-width bins between the base's min and max (whole numbers: one per number
    when they span at most ``bins`` values); one query, the bounds from window functions."""
    v = flagged.v.cast("float64")
    t = flagged.select(v=v, s=flagged.s)
    t = t.mutate(lo=t.v.min().over(ibis.window()), hi=t.v.max().over(ibis.window()))
    span = t.hi - t.lo
    by_width = ((t.v - t.lo) * float(bins) / span.nullif(0.0)).floor().clip(upper=bins - 1)
    if integer:
        per_number = (t.hi - t.lo + 1) <= bins
        index = ibis.cases((span == 0, 0.0), (per_number, t.v - t.lo), else_=by_width)
    else:
        index = ibis.ifelse(span == 0, 0.0, by_width)
    keyed = t.select(
        k=ibis.ifelse(t.v.isnull(), ibis.null("float64"), index.cast("int64").cast("float64")),
        s=t.s,
        lo=t.lo,
        hi=t.hi,
    )
    g = keyed.group_by("k").aggregate(
        seg=keyed.s.sum().fill_null(0).cast("int64"),
        base=keyed.count().cast("int64"),
        lo=keyed.lo.max(),
        hi=keyed.hi.max(),
    )
    frame = execute(g)
    present = frame[frame.k.notna()]
    counts = {
        int(k): (int(s), int(b))
        for k, s, b in zip(present.k, present.seg, present.base, strict=True)
    }
    missing = frame[frame.k.isna()]
    rows: list[Row] = []
    if counts:
        lo, hi = float(present.lo.iloc[0]), float(present.hi.iloc[0])
        if hi == lo:
            labels = [_number(lo)]
        elif integer and hi - lo + 1 <= bins:
            labels = [_number(lo + i) for i in range(int(hi - lo) + 1)]
        else:
            width = (hi - lo) / bins
            edges = [lo + i * width for i in range(bins)] + [hi]
            labels = [f"{_number(edges[i])}–{_number(edges[i + 1])}" for i in range(bins)]
        rows = [(label, *counts.get(i, (0, 0))) for i, label in enumerate(labels)]
    if len(missing):
        rows.append((MISSING, int(missing.seg.sum()), int(missing.base.sum())))
    return rows


def _number(x: float) -> str:
    """A bin edge as people write it: whole numbers plainly, others to 2 decimals."""
    if abs(x - round(x)) < 1e-9:
        return f"{round(x):d}"
    return f"{x:.2f}".rstrip("0").rstrip(".")


# -- the statistics, on the few rows -----------------------------------------------------------
def _statistics(rows: list[Row]) -> pd.DataFrame:
    n_seg = sum(r[1] for r in rows)
    n_base = sum(r[2] for r in rows)
    n_rest = n_base - n_seg
    records = []
    for value, seg, base in rows:
        seg_share = seg / n_seg if n_seg else 0.0
        base_share = base / n_base if n_base else 0.0
        index = 100.0 * seg_share / base_share if base_share and n_seg else math.nan
        test, p = _test(seg, n_seg, base - seg, n_rest)
        records.append(
            {
                "value": value,
                "segment_customers": seg,
                "segment_share": seg_share,
                "base_customers": base,
                "base_share": base_share,
                "index": index,
                "test": test,
                "p_value": p,
            }
        )
    frame = pd.DataFrame(
        records,
        columns=[
            "value",
            "segment_customers",
            "segment_share",
            "base_customers",
            "base_share",
            "index",
            "test",
            "p_value",
        ],
    )
    frame = frame.astype(
        {
            "segment_customers": "int64",
            "base_customers": "int64",
            "segment_share": "float64",
            "base_share": "float64",
            "index": "float64",
            "p_value": "float64",
        }
    )
    frame["p_adjusted"] = holm(frame.p_value.tolist())
    frame["significant"] = (frame.p_adjusted < ALPHA).astype(bool)
    frame["representation"] = [
        ("over" if index > 100 else "under" if index < 100 else "as base") if sig else "as base"
        for sig, index in zip(frame.significant, frame["index"], strict=True)
    ]
    return frame


def _test(a: int, n1: int, b: int, n2: int) -> tuple[str | None, float]:
    """Two-sided p-value that ``a / n1`` (the segment) and ``b / n2`` (the rest) differ.

    z-test with the pooled proportion when every expected count is at least
    :data:`MIN_EXPECTED`, Fisher's exact test otherwise; ``(None, nan)`` without a
    comparison to make.
    """
    if n1 == 0 or n2 == 0 or a + b == 0:
        return None, math.nan
    pooled = (a + b) / (n1 + n2)
    expected = (n1 * pooled, n1 * (1 - pooled), n2 * pooled, n2 * (1 - pooled))
    if min(expected) >= MIN_EXPECTED:
        se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        z = (a / n1 - b / n2) / se
        return "z", math.erfc(abs(z) / math.sqrt(2))
    _, p = fisher_exact([[a, n1 - a], [b, n2 - b]], alternative="two-sided")
    return "fisher", min(1.0, float(p))


def holm(p_values: list[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (NaN stays NaN and is not counted).

    >>> [round(p, 3) for p in holm([0.01, 0.04, 0.03])]
    [0.03, 0.06, 0.06]
    """
    tested = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    m = len(tested)
    out = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


# -- the registered analysis ---------------------------------------------------------------
class BreakdownParams(Params):
    segment: SegmentRef = None
    attribute: str = Field(
        min_length=1,
        max_length=63,
        description="A customer attribute (country, industry, plan, signup_date, a custom "
        "column…) or a trait (rfm_segment, total_orders…) to break down.",
    )
    limit: int = Field(
        20, ge=1, le=200, description="Text values shown, most common first; the rest is (other)."
    )
    bins: int = Field(10, ge=1, le=100, description="Equal-width bins for a number.")


@analysis("breakdown", BreakdownParams)
def run_breakdown(an: Analyst, p: BreakdownParams) -> Tables:
    """How an attribute or trait spreads in a segment against the whole base, with significance."""
    return {"breakdown": breakdown(an, p.segment, p.attribute, limit=p.limit, bins=p.bins)}


__all__ = ["BreakdownParams", "breakdown", "holm", "run_breakdown"]
