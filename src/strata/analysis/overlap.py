"""Overlap: how far segments share customers, pairwise and combination by combination.

Membership is read from the stored history at the analyst's reference instant, so
every kind of segment (rules, RFM, static lists…) is compared alike. Each answer is
one grouped query in the warehouse; only the pairs or combinations come back.

>>> an = Analyst(app, as_of=ReferenceTime.parse("2011-12-10"))  # doctest: +SKIP
>>> overlap(an, ["Champions", "Big spenders"]).loc[1, "jaccard"]  # doctest: +SKIP
0.41...
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import ibis
import pandas as pd
from pydantic import Field

from strata.analysis.base import (
    Analyst,
    Params,
    SegmentRef,
    Tables,
    analysis,
    execute,
    timestamp_literal,
)
from strata.catalog import Segment
from strata.errors import InputError

#: How many segments one overlap compares (2^20 combinations at most).
MAX_SEGMENTS = 20


def overlap(an: Analyst, segments: Sequence[str | int]) -> pd.DataFrame:
    """Every ordered pair of ``segments`` (2 to 20, by name or id): how many they share.

    One row per pair ``(a, b)``, diagonal included, ``a`` then ``b`` in the given order:

    - ``segment_a``, ``segment_b``: the segments' names;
    - ``both``: customers in both at the reference instant (on the diagonal: the size);
    - ``a_only``: in ``a`` and not in ``b``; ``b_only``: in ``b`` and not in ``a``;
    - ``jaccard``: ``both`` / customers in either (null when neither has any);
    - ``share_of_a``: ``both`` / customers in ``a`` (null when ``a`` is empty);
    - ``share_of_b``: ``both`` / customers in ``b`` (null when ``b`` is empty).
    """
    chosen = _resolve(an, segments)
    m = _current(an, [s.id for s in chosen])
    a = m.select(seg_a=m.segment_id, cid=m.customer_id)
    b = m.select(seg_b=m.segment_id, cid_b=m.customer_id)
    pairs = a.inner_join(b, a.cid == b.cid_b)
    counts = execute(pairs.group_by(["seg_a", "seg_b"]).aggregate(both=pairs.count()))
    both = {
        (int(x), int(y)): int(n)
        for x, y, n in zip(counts.seg_a, counts.seg_b, counts.both, strict=True)
    }
    rows = []
    for sa in chosen:
        size_a = both.get((sa.id, sa.id), 0)
        for sb in chosen:
            size_b = both.get((sb.id, sb.id), 0)
            n = both.get((sa.id, sb.id), 0)
            union = size_a + size_b - n
            rows.append(
                {
                    "segment_a": sa.name,
                    "segment_b": sb.name,
                    "both": n,
                    "a_only": size_a - n,
                    "b_only": size_b - n,
                    "jaccard": n / union if union else math.nan,
                    "share_of_a": n / size_a if size_a else math.nan,
                    "share_of_b": n / size_b if size_b else math.nan,
                }
            )
    return _typed(pd.DataFrame(rows), ["both", "a_only", "b_only"])


def intersections(an: Analyst, segments: Sequence[str | int]) -> pd.DataFrame:
    """UpSet-style: customers in exactly each combination of ``segments`` (2 to 20).

    Each member gets a bit mask over the chosen segments (the sum of 2^i for the i-th
    segment it is in), and customers are counted per mask in the warehouse; customers
    in none of them are not counted. Only combinations that have customers are shown,
    most customers first, then by the combination's positions in the given order.

    Columns: ``combination`` (the names joined by `` & ``, in the given order),
    ``members`` (the same as a list), ``degree`` (how many segments), ``customers``
    (in exactly these segments and none of the other chosen ones).
    """
    chosen = _resolve(an, segments)
    m = _current(an, [s.id for s in chosen])
    bit = ibis.cases(
        *[(m.segment_id == s.id, ibis.literal(2**i, type="int64")) for i, s in enumerate(chosen)]
    )
    per_customer = m.group_by("customer_id").aggregate(mask=bit.sum().fill_null(0).cast("int64"))
    counts = execute(
        per_customer.group_by("mask").aggregate(customers=per_customer.count().cast("int64"))
    )
    rows = []
    for mask, n in zip(counts["mask"], counts.customers, strict=True):
        positions = [i for i in range(len(chosen)) if int(mask) >> i & 1]
        names = [chosen[i].name for i in positions]
        rows.append(
            {
                "combination": " & ".join(names),
                "members": names,
                "degree": len(names),
                "customers": int(n),
                "_key": tuple(positions),
            }
        )
    rows.sort(key=lambda r: (-r["customers"], r["_key"]))
    for r in rows:
        del r["_key"]
    frame = pd.DataFrame(rows, columns=["combination", "members", "degree", "customers"])
    return _typed(frame, ["degree", "customers"])


def combination_customers(
    an: Analyst, segments: Sequence[str | int], excluding: Sequence[str | int] = ()
) -> ibis.Table:
    """``customer_id`` of the customers in every one of ``segments`` (1 to 20, by name or
    id) and in none of ``excluding`` (at most 20) at the reference instant.

    An :func:`overlap` cell is a pair of segments and nothing excluded (as many as its
    ``both``); an :func:`intersections` bar is its ``members`` excluding the other chosen
    segments (as many as its ``customers``).
    """
    given = [s for s in segments if str(s).strip() != ""]
    if not 1 <= len(given) <= MAX_SEGMENTS or len(excluding) > MAX_SEGMENTS:
        raise InputError(
            f"name 1 to {MAX_SEGMENTS} segments the customers are in, "
            f"and at most {MAX_SEGMENTS} to exclude"
        )
    m = _current(an, None)
    ids = an.customers().select("customer_id")
    for ref in dict.fromkeys(given):
        ids = ids.semi_join(m.filter(m.segment_id == an.segment(ref).id), "customer_id")
    for ref in dict.fromkeys(excluding):
        ids = ids.anti_join(m.filter(m.segment_id == an.segment(ref).id), "customer_id")
    return ids


def sizes(matrix: pd.DataFrame) -> pd.DataFrame:
    """Each segment's size (``segment``, ``customers``), from the diagonal of :func:`overlap`."""
    diagonal = matrix[matrix.segment_a == matrix.segment_b]
    frame = pd.DataFrame({"segment": diagonal.segment_a, "customers": diagonal.both})
    return _typed(frame.reset_index(drop=True), ["customers"])


def overlap_with(an: Analyst, segment: str | int) -> pd.DataFrame:
    """How ``segment`` overlaps every other segment of the workspace.

    One row per other segment, most shared customers first, then by name:

    - ``other_segment``: its name;
    - ``both``: customers in both at the reference instant;
    - ``share_of_segment``: ``both`` / customers in ``segment`` (null when it is empty);
    - ``share_of_other``: ``both`` / customers in the other segment (null when empty);
    - ``jaccard``: ``both`` / customers in either (null when neither has any).
    """
    if segment is None or str(segment).strip() == "":
        raise InputError("say which segment to compare with the others (a name or an id)")
    seg = an.segment(segment)
    others = [s for s in an.segs.list() if s.id != seg.id]
    m = _current(an, None)
    mine = m.filter(m.segment_id == seg.id).select(_mine=m.customer_id)
    joined = m.left_join(mine, m.customer_id == mine._mine)
    counts = execute(
        joined.group_by("segment_id").aggregate(
            size=joined.count().cast("int64"),
            both=joined._mine.notnull().ifelse(1, 0).sum().fill_null(0).cast("int64"),
        )
    )
    found = {
        int(i): (int(n), int(b))
        for i, n, b in zip(counts.segment_id, counts["size"], counts.both, strict=True)
    }
    size = found.get(seg.id, (0, 0))[0]
    rows = []
    for other in others:
        other_size, n = found.get(other.id, (0, 0))
        union = size + other_size - n
        rows.append(
            {
                "other_segment": other.name,
                "both": n,
                "share_of_segment": n / size if size else math.nan,
                "share_of_other": n / other_size if other_size else math.nan,
                "jaccard": n / union if union else math.nan,
            }
        )
    rows.sort(key=lambda r: (-r["both"], r["other_segment"]))
    columns = ["other_segment", "both", "share_of_segment", "share_of_other", "jaccard"]
    return _typed(pd.DataFrame(rows, columns=columns), ["both"])


# -- pieces -------------------------------------------------------------------------------
def _resolve(an: Analyst, segments: Sequence[str | int] | None) -> list[Segment]:
    """The chosen segments, in order; refuses too few, too many and repeats."""
    given = [s for s in (segments or []) if str(s).strip() != ""]
    if not 2 <= len(given) <= MAX_SEGMENTS:
        raise InputError(
            f"overlap compares 2 to {MAX_SEGMENTS} segments; {len(given)} given: "
            "name at least two segments (by name or id)"
        )
    chosen = [an.segment(s) for s in given]
    seen: dict[int, str] = {}
    for ref, seg in zip(given, chosen, strict=True):
        if seg.id in seen:
            raise InputError(
                f"segment {seg.name!r} is named twice ({seen[seg.id]!r} and {str(ref)!r}): "
                "name each segment once"
            )
        seen[seg.id] = str(ref)
    return chosen


def _current(an: Analyst, segment_ids: list[int] | None) -> ibis.Table:
    """``segment_id``, ``customer_id`` of memberships current at the reference instant
    (of ``segment_ids``, or of every segment), one row per member."""
    m = an.table("memberships")
    t = timestamp_literal(an.ref.instant)
    m = m.filter(m.joined_at <= t, m.left_at.isnull() | (m.left_at > t))
    if segment_ids is not None:
        m = m.filter(m.segment_id.isin(segment_ids))
    # No distinct: a customer has at most one spell of a segment open at any instant
    # (each evaluation closes or opens spells), and distinct doubled the time on 1M rows.
    return m.select("segment_id", "customer_id")


def _typed(frame: pd.DataFrame, ints: list[str]) -> pd.DataFrame:
    floats = [c for c in ("jaccard", "share_of_a", "share_of_b") if c in frame.columns]
    floats += [c for c in ("share_of_segment", "share_of_other") if c in frame.columns]
    return frame.astype({**dict.fromkeys(ints, "int64"), **dict.fromkeys(floats, "float64")})


# -- the registered analyses ---------------------------------------------------------------
class OverlapParams(Params):
    segments: list[str] = Field(
        description=f"The segments to compare, by name or id: 2 to {MAX_SEGMENTS}.",
    )


class OverlapWithParams(Params):
    segment: SegmentRef = Field(description="The segment to compare with every other one.")


@analysis("overlap", OverlapParams, subject="segments")
def run_overlap(an: Analyst, p: OverlapParams) -> Tables:
    """How far chosen segments share customers: pairs with Jaccard, and exact combinations."""
    matrix = overlap(an, p.segments)
    return {
        "matrix": matrix,
        "intersections": intersections(an, p.segments),
        "sizes": sizes(matrix),
    }


@analysis("overlap-with", OverlapWithParams)
def run_overlap_with(an: Analyst, p: OverlapWithParams) -> Tables:
    """Which other segments share customers with one segment, most shared first."""
    return {"overlap": overlap_with(an, p.segment)}
