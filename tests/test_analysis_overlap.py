"""Segment overlap, against answers worked out by hand, on every warehouse backend.

The shop and its segments are those of ``tests/test_analysis_breakdown.py``, evaluated
as of 2024-06-15; customers named by number:

- ``Odd`` O = {1, 3, 5, 7, 9, 11, 13, 15, 17, 19} (10)
- ``France`` F = {1, 2, 11, 18} (4)
- ``Repeat buyers`` (3 orders or more) R = {1, 5, 7, 10, 14, 17} (6)
- ``Software`` S = {1, 3, 5, 11, 14, 19} (6)
- ``Empty`` E = {} (0)

Pairs: O∩F = {1, 11} (2), O∩R = {1, 5, 7, 17} (4), F∩R = {1} (1), R∩S = {1, 5, 14} (3).

On Online Retail, three rule segments saved in a copy of the data are compared with
the same sets computed by pandas from the CSV.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from strata.analysis.base import REGISTRY, Analyst
from strata.analysis.overlap import (
    OverlapParams,
    OverlapWithParams,
    intersections,
    overlap,
    overlap_with,
    sizes,
)
from strata.context import Strata
from strata.errors import InputError, NotFound
from strata.segments.engine import Segments
from strata.segments.nodes import SegmentSpec, parse_rule
from strata.segments.reference import ReferenceTime
from tests.conftest import ONLINE_RETAIL, _needs_data, duckdb_settings
from tests.test_analysis_breakdown import REF, load_shop
from tests.test_segment_rules import open_backend

CHOSEN = ["Odd", "France", "Repeat buyers", "Empty"]
NAN = float("nan")


@pytest.fixture(scope="module", params=["duckdb", "postgres", "spark"])
def answers(request, tmp_path_factory):
    """Each overlap analysis run once on the backend, through the registered runners."""
    with open_backend(request, request.param, tmp_path_factory.mktemp(request.param)) as app:
        segs = load_shop(app)
        an = Analyst(app, as_of=ReferenceTime.parse(REF))
        repeat_id = str(segs.get("Repeat buyers").id)
        # "Repeat buyers" by its catalog id: the answer names it.
        chosen = ["Odd", "France", repeat_id, "Empty"]
        tables = REGISTRY["overlap"].run(an, OverlapParams(segments=chosen, as_of=REF))
        tables |= REGISTRY["overlap-with"].run(
            an, OverlapWithParams(segment="Repeat buyers", as_of=REF)
        )
        yield tables


def pair(matrix: pd.DataFrame, a: str, b: str) -> dict:
    rows = matrix[(matrix.segment_a == a) & (matrix.segment_b == b)]
    assert len(rows) == 1
    return rows.iloc[0].to_dict()


def test_matrix_has_every_ordered_pair_in_the_given_order(answers):
    m = answers["matrix"]
    assert list(zip(m.segment_a, m.segment_b, strict=True)) == [
        (a, b) for a in CHOSEN for b in CHOSEN
    ]


@pytest.mark.parametrize(
    ("a", "b", "both", "a_only", "b_only", "jaccard", "share_of_a", "share_of_b"),
    [
        # |O| = 10 on the diagonal: everything shared with itself.
        ("Odd", "Odd", 10, 0, 0, 1.0, 1.0, 1.0),
        # O∩F = {1, 11}: union 10 + 4 − 2 = 12.
        ("Odd", "France", 2, 8, 2, 2 / 12, 2 / 10, 2 / 4),
        ("France", "Odd", 2, 2, 8, 2 / 12, 2 / 4, 2 / 10),
        # O∩R = {1, 5, 7, 17}: union 10 + 6 − 4 = 12.
        ("Odd", "Repeat buyers", 4, 6, 2, 4 / 12, 4 / 10, 4 / 6),
        # F∩R = {1}: union 4 + 6 − 1 = 9.
        ("France", "Repeat buyers", 1, 3, 5, 1 / 9, 1 / 4, 1 / 6),
        ("Repeat buyers", "France", 1, 5, 3, 1 / 9, 1 / 6, 1 / 4),
        # The empty segment: nothing shared; its own share is undefined.
        ("Odd", "Empty", 0, 10, 0, 0.0, 0.0, NAN),
        ("Empty", "Repeat buyers", 0, 0, 6, 0.0, NAN, 0.0),
        # Neither has anyone: no union, no Jaccard.
        ("Empty", "Empty", 0, 0, 0, NAN, NAN, NAN),
    ],
)
def test_pairs_have_the_hand_counted_overlap(
    answers, a, b, both, a_only, b_only, jaccard, share_of_a, share_of_b
):
    got = pair(answers["matrix"], a, b)
    assert (got["both"], got["a_only"], got["b_only"]) == (both, a_only, b_only)
    for name, want in [
        ("jaccard", jaccard),
        ("share_of_a", share_of_a),
        ("share_of_b", share_of_b),
    ]:
        if math.isnan(want):
            assert math.isnan(got[name]), name
        else:
            assert got[name] == pytest.approx(want), name


def test_intersections_count_each_exact_combination(answers):
    """Exactly: O only {3, 9, 13, 15, 19} 5; O & R only {5, 7, 17} 3; F only {2, 18} 2;
    R only {10, 14} 2; O & F only {11} 1; O & F & R {1} 1; F & R only: nobody (not
    shown). 5 + 3 + 2 + 2 + 1 + 1 = 14 = |O ∪ F ∪ R|. Ties by position: F before R."""
    got = answers["intersections"]
    assert list(zip(got.combination, got.degree, got.customers, strict=True)) == [
        ("Odd", 1, 5),
        ("Odd & Repeat buyers", 2, 3),
        ("France", 1, 2),
        ("Repeat buyers", 1, 2),
        ("Odd & France", 2, 1),
        ("Odd & France & Repeat buyers", 3, 1),
    ]
    assert got.members[1] == ["Odd", "Repeat buyers"]


def test_sizes_are_the_diagonal(answers):
    s = answers["sizes"]
    assert list(zip(s.segment, s.customers, strict=True)) == [
        ("Odd", 10),
        ("France", 4),
        ("Repeat buyers", 6),
        ("Empty", 0),
    ]


def test_overlap_with_lists_every_other_segment_most_shared_first(answers):
    """R = {1, 5, 7, 10, 14, 17} against the others:
    Odd: {1, 5, 7, 17} 4, 4/6, 4/10, Jaccard 4/(6 + 10 − 4) = 4/12;
    Software: {1, 5, 14} 3, 3/6, 3/6, 3/(6 + 6 − 3) = 3/9;
    France: {1} 1, 1/6, 1/4, 1/9; Empty: 0, 0, undefined, 0/6 = 0."""
    o = answers["overlap"]
    assert o.other_segment.tolist() == ["Odd", "Software", "France", "Empty"]
    assert o.both.tolist() == [4, 3, 1, 0]
    assert o.share_of_segment.tolist() == pytest.approx([4 / 6, 3 / 6, 1 / 6, 0.0])
    assert o.share_of_other.tolist()[:3] == pytest.approx([4 / 10, 3 / 6, 1 / 4])
    assert math.isnan(o.share_of_other[3])
    assert o.jaccard.tolist() == pytest.approx([4 / 12, 3 / 9, 1 / 9, 0.0])


# -- bad input ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    home = tmp_path_factory.mktemp("bad-input")
    settings = duckdb_settings(home)
    with Strata(settings) as app:
        load_shop(app)
        yield Analyst(app, as_of=ReferenceTime.parse(REF))


@pytest.mark.parametrize("chosen", [[], ["Odd"], ["Odd", " "]])
def test_fewer_than_two_segments_are_refused(shop, chosen):
    with pytest.raises(InputError, match="overlap compares 2 to 20 segments"):
        overlap(shop, chosen)


def test_more_than_twenty_segments_are_refused(shop):
    with pytest.raises(InputError, match="21 given"):
        intersections(shop, ["Odd"] * 21)


def test_a_segment_named_twice_is_refused(shop):
    odd_id = str(shop.segment("Odd").id)
    with pytest.raises(InputError, match="'Odd' is named twice"):
        overlap(shop, ["Odd", "France", odd_id])


def test_an_unknown_segment_is_not_found(shop):
    with pytest.raises(NotFound, match="no segment 'Nobody'"):
        overlap(shop, ["Odd", "Nobody"])
    with pytest.raises(NotFound, match="no segment 'Nobody'"):
        overlap_with(shop, "Nobody")


def test_overlap_with_needs_a_segment(shop):
    with pytest.raises(InputError, match="say which segment"):
        overlap_with(shop, "")


def test_the_analyses_are_registered_with_their_subjects():
    assert REGISTRY["overlap"].subject == "segments"
    assert REGISTRY["overlap"].params is OverlapParams
    assert REGISTRY["overlap-with"].subject == "segment"
    with pytest.raises(ValueError):
        OverlapWithParams()  # the segment is required


# -- Online Retail ---------------------------------------------------------------------------------
RETAIL_AS_OF = "2011-12-10"
RETAIL_SEGMENTS = {
    "UK": {"type": "attribute", "attribute": "country", "op": "eq", "value": "United Kingdom"},
    "Frequent": {"type": "trait", "trait": "total_orders", "op": "gte", "value": 5},
    "Big spenders": {"type": "trait", "trait": "total_revenue", "op": "gte", "value": 1000},
}


@pytest.fixture(scope="module")
def retail(tmp_path_factory):
    """A copy of Online Retail of our own (the shared one is read-only), with three
    overlapping rule segments saved as of 2011-12-10; the analyses' answers."""
    _needs_data(ONLINE_RETAIL)
    from strata.ingest.pipeline import run_import

    home = tmp_path_factory.mktemp("retail-overlap")
    settings = duckdb_settings(home)
    with Strata(settings) as app:
        run_import(app, ONLINE_RETAIL)
        segs = Segments(app)
        ref = ReferenceTime.parse(RETAIL_AS_OF)
        for name, rule in RETAIL_SEGMENTS.items():
            segs.save(SegmentSpec(name=name, rule=parse_rule(rule)), as_of=ref)
        an = Analyst(app, as_of=ref)
        names = list(RETAIL_SEGMENTS)
        matrix = overlap(an, names)
        yield {
            "matrix": matrix,
            "sizes": sizes(matrix),
            "intersections": intersections(an, names),
            "with": overlap_with(an, "UK"),
        }


@pytest.fixture(scope="module")
def retail_sets() -> dict[str, set[str]]:
    """The three segments' members (external ids) from the CSV alone.

    One customer per CustomerID; country: the last non-empty Country of its lines;
    orders: invoices not starting with C; revenue: the sum of quantity × unit price of
    all its lines, cancellations (negative) included. All lines are before 2011-12-10.
    """
    lines = pd.read_csv(ONLINE_RETAIL, dtype={"CustomerID": str, "InvoiceNo": str})
    lines = lines[lines.CustomerID.notna()]
    lines = lines.assign(
        customer=lines.CustomerID.str.removesuffix(".0"),
        amount=lines.Quantity * lines.UnitPrice,
        is_order=~lines.InvoiceNo.str.match(r"^[Cc]"),
    )
    assert pd.to_datetime(lines.InvoiceDate).max() < pd.Timestamp(RETAIL_AS_OF)
    country = lines.dropna(subset=["Country"]).groupby("customer").Country.last()
    orders = lines[lines.is_order].groupby("customer").InvoiceNo.nunique()
    revenue = lines.groupby("customer").amount.sum()
    return {
        "UK": set(country[country == "United Kingdom"].index),
        "Frequent": set(orders[orders >= 5].index),
        "Big spenders": set(revenue[revenue >= 1000 - 1e-9].index),
    }


@pytest.mark.slow
def test_retail_pairs_match_pandas(retail, retail_sets):
    m = retail["matrix"]
    names = list(RETAIL_SEGMENTS)
    for a in names:
        for b in names:
            got = pair(m, a, b)
            sa, sb = retail_sets[a], retail_sets[b]
            both = len(sa & sb)
            assert (got["both"], got["a_only"], got["b_only"]) == (both, len(sa - sb), len(sb - sa))
            assert got["jaccard"] == pytest.approx(both / len(sa | sb))
            assert got["share_of_a"] == pytest.approx(both / len(sa))
    # The segments really overlap, and none holds another.
    assert 0 < pair(m, "Frequent", "Big spenders")["jaccard"] < 1
    assert retail["sizes"].customers.tolist() == [len(retail_sets[n]) for n in names]


@pytest.mark.slow
def test_retail_intersections_match_pandas(retail, retail_sets):
    names = list(RETAIL_SEGMENTS)
    everyone = set().union(*retail_sets.values())
    exact: dict[str, int] = {}
    for customer in everyone:
        combo = " & ".join(n for n in names if customer in retail_sets[n])
        exact[combo] = exact.get(combo, 0) + 1
    got = retail["intersections"]
    assert dict(zip(got.combination, got.customers, strict=True)) == exact
    assert got.customers.tolist() == sorted(got.customers, reverse=True)
    assert got.customers.sum() == len(everyone)


@pytest.mark.slow
def test_retail_overlap_with_matches_pandas(retail, retail_sets):
    uk = retail_sets["UK"]
    got = retail["with"].set_index("other_segment")
    assert list(got.index) == sorted(
        ["Frequent", "Big spenders"], key=lambda n: (-len(uk & retail_sets[n]), n)
    )
    for name in ["Frequent", "Big spenders"]:
        other = retail_sets[name]
        assert got.loc[name, "both"] == len(uk & other)
        assert got.loc[name, "share_of_segment"] == pytest.approx(len(uk & other) / len(uk))
        assert got.loc[name, "share_of_other"] == pytest.approx(len(uk & other) / len(other))
