"""Living membership through ``Segments``: joins and leaves over time, static lists,
tiers, the ICP score, incremental updates and segments as code.

The data is the hand-built shop of ``tests/test_segment_rules.py`` (customers ``c01`` …
``c20`` get the ids 1 … 20); the numbers below were worked out from its tables.
"""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pytest

from strata.errors import InputError, NotFound
from strata.segments.engine import (
    Segments,
    icp_summary,
    run_rfm,
    save_tiers,
    set_icp,
    tier_sets,
)
from strata.segments.icp import parse_config as parse_icp
from strata.segments.nodes import SegmentSpec, parse_rule
from strata.segments.reference import ReferenceTime
from strata.segments.rfm import DEFAULT_MAP
from strata.segments.tiers import parse_config as parse_tiers
from strata.warehouse import Batch
from tests.test_segment_rules import ICP, NEW_COLUMNS, shop_batch

RECENT_BUYERS = {"type": "performed", "event": "order", "window": {"last_days": 30}}


def at(text: str) -> ReferenceTime:
    return ReferenceTime.parse(text)


@pytest.fixture
def segs(app) -> Segments:
    ws = app.workspace(create=True)
    app.warehouse.load(ws.id, shop_batch(), new_columns=NEW_COLUMNS)
    return Segments(app)


def current(segs: Segments, name: str) -> set[int]:
    seg = segs.get(name)
    m = segs.wh.table(segs.ws.id, "memberships")
    rows = m.filter(m.segment_id == seg.id, m.left_at.isnull()).customer_id.to_pyarrow()
    return set(rows.to_pylist())


def rows_of(segs: Segments, name: str) -> list[tuple[int, dt.datetime, dt.datetime | None]]:
    seg = segs.get(name)
    m = segs.wh.table(segs.ws.id, "memberships")
    mine = m.filter(m.segment_id == seg.id).to_pyarrow().to_pylist()
    return sorted((r["customer_id"], r["joined_at"], r["left_at"]) for r in mine)


def spec(name: str, rule: dict, description: str | None = None) -> SegmentSpec:
    return SegmentSpec(name=name, rule=parse_rule(rule), description=description)


# -- joins and leaves over time ------------------------------------------------------------
def _recent_buyers_over_three_months(segs: Segments) -> list:
    _, first = segs.save(spec("Recent buyers", RECENT_BUYERS), as_of=at("2024-06-01"))
    second = segs.refresh(["Recent buyers"], as_of=at("2024-06-15"))
    third = segs.refresh(["Recent buyers"], as_of=at("2024-07-15"))
    return [first, *second, *third]


def test_refreshing_later_records_who_joined_and_who_left(segs):
    first, second, third = _recent_buyers_over_three_months(segs)
    # 1 June: orders from 3 May on. 15 June: from 17 May. 15 July: only customer 2's
    # order of 16 June, which was after the reference time until now.
    assert (first.members, first.joined, first.left) == (4, 4, 0)
    assert (second.members, second.joined, second.left) == (8, 5, 1)
    assert (third.members, third.joined, third.left) == (1, 0, 7)
    assert [r.as_of for r in (first, second, third)] == ["2024-06-01", "2024-06-15", "2024-07-15"]
    assert current(segs, "Recent buyers") == {2}

    june2, june16, july16 = (dt.datetime(2024, m, d) for m, d in ((6, 2), (6, 16), (7, 16)))
    assert rows_of(segs, "Recent buyers") == [
        (1, june2, july16),
        (2, june16, None),
        (3, june16, july16),
        (4, june2, july16),
        (7, june2, june16),
        (10, june16, july16),
        (11, june2, july16),
        (17, june16, july16),
        (18, june16, july16),
    ]
    seg = segs.get("Recent buyers")
    assert seg.customer_count == 1
    assert seg.evaluated_as_of == july16
    assert seg.as_of == july16  # pinned: a later plain refresh keeps this reference


def test_history_gives_the_size_after_each_evaluation(segs):
    _recent_buyers_over_three_months(segs)
    assert segs.history("Recent buyers") == [
        {"as_of": "2024-06-01", "joined": 4, "left": 0, "members": 4},
        {"as_of": "2024-06-15", "joined": 5, "left": 1, "members": 8},
        {"as_of": "2024-07-15", "joined": 0, "left": 7, "members": 1},
    ]


def test_customer_history_lists_every_segment_with_join_and_leave(segs):
    _recent_buyers_over_three_months(segs)
    segs.save_static("Callers", ["c07"])
    history = segs.customer_history("GINA@example.com")  # e-mails match in any case
    assert history[0] == {"segment": "Recent buyers", "joined": "2024-06-01", "left": "2024-06-15"}
    assert [(h["segment"], h["left"]) for h in history[1:]] == [("Callers", None)]
    assert segs.customer_history("c15") == []
    with pytest.raises(NotFound, match="no customer 'c99'"):
        segs.customer_history("c99")


def test_members_lists_the_current_members_and_since_when(segs):
    _recent_buyers_over_three_months(segs)
    total, rows = segs.members("Recent buyers")
    assert total == 1
    assert [(r["external_id"], r["joined"]) for r in rows] == [("c02", "2024-06-15")]


def test_refreshing_as_of_an_earlier_time_is_refused(segs):
    _recent_buyers_over_three_months(segs)
    before = rows_of(segs, "Recent buyers")
    with pytest.raises(InputError) as err:
        segs.refresh(["Recent buyers"], as_of=at("2024-06-15"))
    message = str(err.value)
    assert "was last evaluated as of 2024-07-15;" in message
    assert "cannot be refreshed as of 2024-06-15" in message
    assert "preview --as-of" in message
    assert rows_of(segs, "Recent buyers") == before


def test_refreshing_again_at_the_same_time_changes_nothing(segs):
    _recent_buyers_over_three_months(segs)
    before = rows_of(segs, "Recent buyers")
    (again,) = segs.refresh(["Recent buyers"])  # the pinned reference, 2024-07-15
    assert (again.as_of, again.joined, again.left, again.members) == ("2024-07-15", 0, 0, 1)
    assert rows_of(segs, "Recent buyers") == before


def test_saving_a_taken_name_is_refused(segs):
    segs.save(
        spec("French", {"type": "attribute", "attribute": "country", "op": "eq", "value": "France"})
    )
    with pytest.raises(InputError, match="a segment named 'French' already exists"):
        segs.save(spec("French", RECENT_BUYERS))


# -- static segments ---------------------------------------------------------------------------
def test_a_static_segment_matches_ids_and_emails_and_reports_the_rest(segs):
    result, unmatched = segs.save_static(
        "Newsletter", ["c01", "BOB@example.com", " c03 ", "nobody@example.com", "c99", ""]
    )
    assert (result.kind, result.members, result.joined, result.left) == ("static", 3, 3, 0)
    assert unmatched == ["c99", "nobody@example.com"]
    assert current(segs, "Newsletter") == {1, 2, 3}
    assert segs.get("Newsletter").kind == "static"
    assert segs.get("Newsletter").customer_count == 3


def test_an_existing_static_segment_needs_replace_or_append(segs):
    segs.save_static("Newsletter", ["c01", "c02", "c03"])
    with pytest.raises(InputError, match=r"say --replace .* or --append"):
        segs.save_static("Newsletter", ["c04"])
    assert current(segs, "Newsletter") == {1, 2, 3}

    appended, _ = segs.save_static("Newsletter", ["c04", "anna@example.com"], mode="append")
    assert (appended.members, appended.joined, appended.left) == (4, 1, 0)
    assert current(segs, "Newsletter") == {1, 2, 3, 4}

    replaced, _ = segs.save_static("Newsletter", ["eve@EXAMPLE.net"], mode="replace")
    assert (replaced.members, replaced.joined, replaced.left) == (1, 1, 4)
    assert current(segs, "Newsletter") == {5}


def test_a_static_list_cannot_take_a_rule_segments_name_or_be_empty(segs):
    segs.save(spec("Buyers", RECENT_BUYERS))
    with pytest.raises(InputError, match="'Buyers' is a rule segment, not a static list"):
        segs.save_static("Buyers", ["c01"], mode="replace")
    with pytest.raises(InputError, match="holds no customer ids or e-mails"):
        segs.save_static("Empty", [" ", ""])


def test_static_segments_are_read_from_their_members_in_rules(segs):
    segs.save_static("Callers", ["c05", "c06"])
    preview = segs.preview(
        parse_rule(
            {
                "type": "and",
                "conditions": [
                    {"type": "in_segment", "segment": "Callers"},
                    {"type": "performed", "event": "order"},
                ],
            }
        ),
        as_of=at("2024-06-15"),
    )
    assert preview.count == 1
    assert [r["external_id"] for r in preview.sample] == ["c05"]


def test_changing_a_static_list_refreshes_only_the_segments_naming_it(segs):
    segs.save_static("Callers", ["c05"])
    segs.save(spec("Called", {"type": "in_segment", "segment": "Callers"}))
    segs.save(spec("Buyers in June", RECENT_BUYERS), as_of=at("2024-06-15"))
    untouched = segs.get("Buyers in June").refreshed_at
    assert current(segs, "Called") == {5}

    segs.save_static("Callers", ["c06"], mode="append")
    assert current(segs, "Called") == {5, 6}
    segs.save_static("Unrelated", ["c01"])
    assert segs.get("Buyers in June").refreshed_at == untouched


# -- tiers ----------------------------------------------------------------------------------------
SMALL, MID, LARGE = {1, 11, 17}, {2, 7, 9, 12, 14, 18, 20}, {3, 4, 5, 8, 10, 13, 16}


def test_default_tiers_cut_at_one_and_ten(segs):
    results = save_tiers(segs, "size", parse_tiers({"on": "company_size"}), as_of=at("2024-06-15"))
    assert [(r.segment, r.kind, r.members) for r in results] == [
        ("Small Business", "tier", 3),
        ("Mid-Market", "tier", 7),
        ("Large Enterprise", "tier", 7),
    ]
    assert current(segs, "Small Business") == SMALL  # sizes 0 and 1
    assert current(segs, "Mid-Market") == MID  # 2 to 10, 10 included
    assert current(segs, "Large Enterprise") == LARGE  # 11 and above
    assert segs.get("Mid-Market").description == "Mid-Market: 1 < company_size ≤ 10"
    assert segs.get("Large Enterprise").family == "tiers:size"
    assert set(tier_sets(segs)) == {"size"}


@pytest.mark.parametrize(
    ("tiers", "message"),
    [
        (
            [
                {"name": "Small", "max": 10},
                {"name": "Medium", "min": 5, "max": 20},
                {"name": "Big"},
            ],
            "tiers 'Small' (up to 10) and 'Medium' (from above 5) overlap: start 'Medium' above 10",
        ),
        (
            [
                {"name": "Small", "max": 10},
                {"name": "Medium", "min": 15, "max": 20},
                {"name": "Big"},
            ],
            "tiers 'Small' (up to 10) and 'Medium' (above 15) leave a gap: values in (10, 15] "
            "would be in no tier",
        ),
        (
            [{"name": "Small"}, {"name": "Big"}],
            "tier 'Small' has no max but 'Big' comes after it: only the last tier may be "
            "open-ended",
        ),
        ([{"name": "Small", "max": 10}, {"name": "Small"}], "tier names must be different"),
        ([{"name": "All"}], "tiers need at least two ranges"),
    ],
    ids=["overlap", "gap", "open-in-the-middle", "same-names", "one-tier"],
)
def test_tiers_that_overlap_or_leave_gaps_are_refused(tiers, message):
    with pytest.raises(InputError) as err:
        parse_tiers({"on": "company_size", "tiers": tiers})
    assert str(err.value) == f"invalid tiers: {message}"


def test_tiers_need_a_numeric_attribute_or_trait(segs):
    with pytest.raises(InputError, match="tiers need a number: 'country' is string"):
        save_tiers(segs, "where", parse_tiers({"on": "country"}))
    with pytest.raises(InputError, match="'shoe_size' is neither a customer attribute nor a trait"):
        save_tiers(segs, "feet", parse_tiers({"on": "shoe_size"}))
    assert segs.list() == []


def test_custom_tiers_replace_the_set_and_a_reset_brings_back_the_defaults(segs):
    ref = at("2024-06-15")
    save_tiers(segs, "size", parse_tiers({"on": "company_size"}), as_of=ref)
    custom = parse_tiers(
        {"on": "company_size", "tiers": [{"name": "Tiny", "max": 5}, {"name": "Big"}]}
    )
    save_tiers(segs, "size", custom, as_of=ref)
    assert sorted(s.name for s in segs.list()) == ["Big", "Tiny"]
    assert current(segs, "Tiny") == {1, 2, 9, 11, 12, 17, 20}
    assert current(segs, "Big") == {3, 4, 5, 7, 8, 10, 13, 14, 16, 18}

    save_tiers(segs, "size", parse_tiers({"on": "company_size"}), as_of=ref)
    assert [s.name for s in segs.list()] == ["Small Business", "Mid-Market", "Large Enterprise"]
    assert current(segs, "Mid-Market") == MID
    assert segs.setting("tiers:size") == {
        "on": "company_size",
        "tiers": [
            {"name": "Small Business", "min": None, "max": 1.0},
            {"name": "Mid-Market", "min": 1.0, "max": 10.0},
            {"name": "Large Enterprise", "min": 10.0, "max": None},
        ],
    }


def test_tiers_on_a_trait(segs):
    save_tiers(segs, "buyers", parse_tiers({"on": "total_orders"}), as_of=at("2024-06-15"))
    # Customers who never ordered have 0 orders: small business, like those with one.
    assert current(segs, "Small Business") == {3, 6, 8, 9, 13, 15, 19}
    assert current(segs, "Large Enterprise") == set()


# -- the ICP score --------------------------------------------------------------------------------
def icp_of(segs: Segments, customer: int, as_of: str = "2024-06-15") -> float:
    rule = parse_rule({"type": "trait", "trait": "icp_score", "op": "gte", "value": 0})
    return segs.compiler(at(as_of)).explain(rule, customer).value


def test_icp_score_is_the_weighted_share_of_criteria_met(segs):
    set_icp(segs, parse_icp(ICP))
    # Carla: Software (weight 2), 12 employees (in 10-500, weight 1), revenue 25 on a
    # 0-1000 scale (0.025, weight 1): 100 × (2 + 1 + 0.025) / 4.
    assert icp_of(segs, 3) == pytest.approx(75.625)
    assert icp_of(segs, 5) == pytest.approx(100.0)  # every criterion in full
    assert icp_of(segs, 10) == pytest.approx(25.0)  # Finance, 1,000 people: revenue only
    assert icp_of(segs, 15) == pytest.approx(0.0)  # nothing known: missing scores 0

    set_icp(
        segs,
        parse_icp({**ICP, "criteria": [{**ICP["criteria"][0], "weight": 1}, *ICP["criteria"][1:]]}),
    )
    assert icp_of(segs, 3) == pytest.approx(100 * (1 + 1 + 0.025) / 3)


def test_icp_map_and_exists_criteria(segs):
    set_icp(
        segs,
        parse_icp(
            {
                "criteria": [
                    {"on": "plan", "map": {"pro": 1, "basic": 0.5}},
                    {"on": "email", "exists": True, "weight": 3},
                ]
            }
        ),
    )
    assert icp_of(segs, 1) == pytest.approx(100.0)  # pro, e-mail known
    assert icp_of(segs, 2) == pytest.approx(100 * (0.5 + 3) / 4)  # basic
    assert icp_of(segs, 3) == pytest.approx(75.0)  # free: not in the map
    assert icp_of(segs, 6) == pytest.approx(0.0)  # free, no e-mail


def test_icp_summary_spreads_customers_over_fifths(segs):
    summary = set_icp(segs, parse_icp(ICP))
    assert summary["customers"] == 20
    assert [c["rule"] for c in summary["criteria"]] == [
        "industry is one of Software",
        "company_size is between 10 and 500",
        "total_revenue scaled from 0 (0) to 1000 (1)",
    ]
    # Now (not 15 June) customer 2's order of 16 June counts: 560 revenue, score 14.
    assert summary["average"] == pytest.approx(29.1)
    assert [(b["band"], b["customers"]) for b in summary["bands"]] == [
        ("0–20", 8),
        ("20–40", 6),
        ("40–60", 3),
        ("60–80", 2),
        ("80–100", 1),
    ]
    earlier = icp_summary(segs, as_of=at("2024-06-15"))  # customer 2 scores 1.5
    assert earlier["average"] == pytest.approx(28.475, abs=0.005)


def test_icp_criteria_on_unknown_fields_are_refused_and_not_kept(segs):
    set_icp(segs, parse_icp(ICP))
    with pytest.raises(InputError, match="'shoe_size' is neither a customer attribute nor a trait"):
        set_icp(segs, parse_icp({"criteria": [{"on": "shoe_size", "range": [40, 44]}]}))
    assert segs.setting("icp")["criteria"][0]["on"] == "industry"
    with pytest.raises(InputError, match="needs exactly one of in, range, scale, map, exists"):
        parse_icp({"criteria": [{"on": "plan", "in": ["pro"], "range": [1, 2]}]})


# -- incremental updates -------------------------------------------------------------------------
REF = "2024-06-15"
INCREMENTAL_SEGMENTS = {
    "Buyers": RECENT_BUYERS,
    "Browsers": {"type": "performed", "event": "page_view", "times": {"op": "gte", "value": 2}},
    "French": {"type": "attribute", "attribute": "country", "op": "eq", "value": "France"},
    "Big spenders": {"type": "trait", "trait": "total_revenue", "op": "gt", "value": 400},
}


def _new_events() -> Batch:
    rows = [
        ("c06", "order", "2024-06-15 12:00", 600.0, "o6new"),
        ("c15", "page_view", "2024-06-15 08:00", None, None),
        ("c15", "page_view", "2024-06-15 08:05", None, None),
        ("c19", "page_view", "2024-06-15 09:00", None, None),
    ]
    events = pa.table(
        {
            "external_id": [r[0] for r in rows],
            "event_type": [r[1] for r in rows],
            "timestamp": pa.array(
                [dt.datetime.fromisoformat(r[2]) for r in rows], pa.timestamp("us")
            ),
            "revenue": pa.array([r[3] for r in rows], pa.float64()),
            "order_id": [r[4] for r in rows],
            "properties": [json.dumps({"channel": "web"}) for _ in rows],
            "event_key": [f"new:{i}" for i in range(len(rows))],
        }
    )
    customers = pa.table({"external_id": sorted({r[0] for r in rows})})
    return Batch(customers=customers, events=events)


def _incremental_setup(segs: Segments) -> None:
    for name, rule in INCREMENTAL_SEGMENTS.items():
        segs.save(spec(name, rule), as_of=at(REF))
    run_rfm(segs, as_of=at(REF))
    segs.wh.load(segs.ws.id, _new_events())


def _all_current(segs: Segments) -> dict[str, set[int]]:
    return {s.name: current(segs, s.name) for s in segs.list()}


def test_update_customers_touches_only_segments_reading_the_changed_events(segs):
    _incremental_setup(segs)
    views = segs.update_customers([6, 15, 19], event_types=["page_view"], new_customers=False)
    assert [(r.segment, r.incremental, r.joined, r.left) for r in views] == [
        ("Browsers", True, 2, 0)
    ]
    assert current(segs, "Browsers") == {1, 6, 13, 15, 19}
    assert 6 not in current(segs, "Buyers")  # its order was not said to have changed

    orders = segs.update_customers([6, 15, 19], event_types=["order"], new_customers=False)
    touched = {r.segment: r for r in orders}
    assert set(touched) == {"Buyers", "Big spenders", *DEFAULT_MAP}
    assert touched["Buyers"].incremental and touched["Big spenders"].incremental
    assert (touched["Buyers"].joined, touched["Big spenders"].joined) == (1, 1)
    assert not touched["Champions"].incremental  # new orders move everyone's RFM ranks
    assert current(segs, "Big spenders") == {1, 5, 6, 10}


def test_update_customers_gives_the_memberships_of_a_full_refresh(segs):
    _incremental_setup(segs)
    segs.update_customers([6, 15, 19], event_types=["order", "page_view"])
    incremental = _all_current(segs)
    assert incremental["Buyers"] == {1, 2, 3, 4, 6, 10, 11, 17, 18}
    assert incremental["Browsers"] == {1, 6, 13, 15, 19}

    full = segs.refresh()
    assert all(r.as_of == REF for r in full)
    assert [(r.segment, r.joined, r.left) for r in full if r.joined or r.left] == []
    assert _all_current(segs) == incremental


def test_a_long_list_of_customers_gives_the_memberships_of_a_full_refresh(segs):
    """Past ``ID_SET_STAGED`` ids DuckDB stages them as a table; the answer is the same."""
    from strata.warehouse.duckdb import ID_SET_STAGED

    _incremental_setup(segs)
    many = [6, 15, 19, *range(1000, 1000 + ID_SET_STAGED)]  # most of them unknown
    segs.update_customers(many, event_types=["order", "page_view"])
    incremental = _all_current(segs)
    assert incremental["Buyers"] == {1, 2, 3, 4, 6, 10, 11, 17, 18}
    assert incremental["Browsers"] == {1, 6, 13, 15, 19}
    segs.refresh()
    assert _all_current(segs) == incremental


def test_update_customers_with_attribute_changes_touches_attribute_segments(segs):
    _incremental_setup(segs)
    results = segs.update_customers(
        [1], event_types=[], attributes=["country"], new_customers=False
    )
    assert [r.segment for r in results] == ["French"]


# -- segments as code ----------------------------------------------------------------------------
def write(directory, name: str, text: str) -> None:
    (directory / name).write_text(text.strip() + "\n", encoding="utf-8")


FRENCH_YAML = """
name: French
description: customers in France
rule:
  type: attribute
  attribute: country
  op: eq
  value: France
"""
BUYERS_YAML = """
name: Recent buyers
rule: {type: performed, event: order, window: {last_days: 30}}
"""
CORE_YAML = """
name: Core
rule:
  type: or
  conditions:
    - {type: in_segment, segment: French}
    - {type: attribute, attribute: country, op: eq, value: Germany}
"""


def _plan(segs, directory) -> list[tuple[str, str, list[str]]]:
    return [(p.action, p.name, p.changes) for p in segs.plan(directory)]


def test_apply_creates_changes_keeps_and_deletes_from_a_directory(segs, tmp_path):
    folder = tmp_path / "segments"
    folder.mkdir()
    write(folder, "french.yaml", FRENCH_YAML)
    write(folder, "buyers.yml", BUYERS_YAML)
    write(folder, "more.yaml", CORE_YAML)  # names a segment created by the same apply
    write(folder, "notes.txt", "not a segment")
    assert _plan(segs, folder) == [
        ("create", "Recent buyers", []),
        ("create", "French", []),
        ("create", "Core", []),
    ]
    _, results = segs.apply(folder)
    assert {r.segment for r in results} == {"Recent buyers", "Core", "French"}
    assert current(segs, "Core") == {1, 2, 4, 5, 11, 12, 18, 19}
    assert {s.name: s.source for s in segs.list()} == {
        "Recent buyers": "code",
        "Core": "code",
        "French": "code",
    }
    assert segs.get("French").description == "customers in France"
    assert [p.action for p in segs.plan(folder)] == ["unchanged"] * 3

    write(folder, "french.yaml", FRENCH_YAML.replace("customers in France", "la France"))
    write(folder, "buyers.yml", BUYERS_YAML.replace("last_days: 30", "last_days: 7"))
    (folder / "more.yaml").unlink()
    assert _plan(segs, folder) == [
        ("change", "Recent buyers", ["rule"]),
        ("change", "French", ["description"]),
        ("delete", "Core", []),
    ]
    segs.apply(folder)
    assert sorted(s.name for s in segs.list()) == ["French", "Recent buyers"]
    assert segs.get("French").description == "la France"
    assert segs.get("Recent buyers").definition["window"] == {"last_days": 7}
    assert _plan(segs, folder) == [
        ("unchanged", "Recent buyers", []),
        ("unchanged", "French", []),
    ]


def test_a_file_may_name_a_segment_that_a_later_file_defines(segs, tmp_path):
    write(tmp_path, "a_core.yaml", CORE_YAML)
    write(tmp_path, "b_french.yaml", FRENCH_YAML)
    segs.apply(tmp_path)
    assert current(segs, "Core") == {1, 2, 4, 5, 11, 12, 18, 19}
    assert current(segs, "French") == {1, 2, 11, 18}


def test_apply_takes_over_a_hand_made_segment_and_leaves_others_alone(segs, tmp_path):
    segs.save(
        spec("French", {"type": "attribute", "attribute": "country", "op": "eq", "value": "France"})
    )
    segs.save(spec("Mine", RECENT_BUYERS))
    write(tmp_path, "french.yaml", FRENCH_YAML)
    assert _plan(segs, tmp_path) == [
        ("change", "French", ["description", "managed as code from now on"])
    ]
    segs.apply(tmp_path)
    assert segs.get("French").source == "code"
    assert segs.get("Mine").source == "cli"  # not in the files, not managed as code: kept


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("broken.yaml", "name: Broken\nrule: [unclosed", "broken.yaml is not valid YAML at line"),
        (
            "unknown.yaml",
            "name: Odd\nrule: {type: attribute, attribute: shoe_size, op: eq, value: 42}",
            "unknown attribute 'shoe_size'",
        ),
        (
            "dangling.yaml",
            "name: Dangling\nrule: {type: in_segment, segment: Nowhere}",
            "no segment named 'Nowhere'",
        ),
        (
            "cycle.yaml",
            "name: Loop\nrule: {type: in_segment, segment: Recent buyers}",
            "cycle",
        ),
        ("bare.yaml", "type: performed\nevent: order", "bare.yaml has a bare rule"),
        ("twice.yaml", FRENCH_YAML, "french.yaml both define 'French'"),
    ],
    ids=["yaml", "attribute", "dangling", "cycle", "bare", "duplicate"],
)
def test_a_bad_file_makes_apply_change_nothing(segs, tmp_path, name, text, message):
    write(tmp_path, "french.yaml", FRENCH_YAML)
    write(tmp_path, "buyers.yml", BUYERS_YAML)
    segs.apply(tmp_path)
    before = {s.name: (s.definition, s.description, s.evaluated_as_of) for s in segs.list()}
    members = _all_current(segs)

    write(tmp_path, "buyers.yml", BUYERS_YAML.replace("last_days: 30", "last_days: 7"))
    if name == "cycle.yaml":  # Recent buyers now names Loop, and Loop names it back
        write(
            tmp_path,
            "buyers.yml",
            "name: Recent buyers\nrule: {type: in_segment, segment: Loop}",
        )
    write(tmp_path, name, text)
    with pytest.raises(InputError) as err:
        segs.apply(tmp_path)
    assert message in str(err.value)
    assert "\n" not in str(err.value)
    after = {s.name: (s.definition, s.description, s.evaluated_as_of) for s in segs.list()}
    assert after == before
    assert _all_current(segs) == members


def test_apply_refuses_to_delete_a_segment_another_file_still_names(segs, tmp_path):
    write(tmp_path, "french.yaml", FRENCH_YAML)
    write(tmp_path, "more.yaml", CORE_YAML)
    segs.apply(tmp_path)
    (tmp_path / "french.yaml").unlink()
    with pytest.raises(
        InputError, match="'Core' refers to 'French', which the directory no longer"
    ):
        segs.apply(tmp_path)
    assert sorted(s.name for s in segs.list()) == ["Core", "French"]


def test_apply_refuses_a_folder_without_yaml(segs, tmp_path):
    with pytest.raises(InputError, match=r"holds no \.yaml files"):
        segs.apply(tmp_path)
    with pytest.raises(InputError, match="is not a directory"):
        segs.plan(tmp_path / "missing")


def test_each_customer_keeps_its_previous_rfm_segment_and_when_it_changed(segs):
    run_rfm(segs, as_of=at("2024-03-31"))
    run_rfm(segs, as_of=at("2024-07-31"))
    movers = []
    for cid in range(1, 21):
        external = f"c{cid:02d}"
        state = segs.rfm_state(external)
        history = [h for h in segs.customer_history(external) if h["segment"] in DEFAULT_MAP]
        if state["previous"] is not None:
            movers.append(external)
            # The stint that ended is the previous segment; the new one began then.
            assert state["changed"] == "2024-07-31"
            assert state["since"] == "2024-07-31"
            assert state["previous"] != state["segment"]
            assert [h["segment"] for h in history][-2:] == [state["previous"], state["segment"]]
        elif state["segment"] is not None:
            assert [h["left"] for h in history] == [None]
    assert movers, "four months later some customer must have moved between RFM segments"


def test_a_full_refresh_reads_named_segments_fresh_members_and_agrees_with_inlining(segs):
    run_rfm(segs, as_of=at("2024-06-30"))
    segs.save(spec("Recent buyers", RECENT_BUYERS), as_of=at("2024-06-30"))
    rule = {
        "type": "and",
        "conditions": [
            {"type": "in_segment", "segment": "Recent buyers"},
            {"type": "not_in_segment", "segment": "Champions"},
        ],
    }
    segs.save(spec("Recent non-champions", rule), as_of=at("2024-06-30"))
    results = segs.refresh(as_of=at("2024-07-31"))
    order = [r.segment for r in results]
    # Named segments are evaluated before the segments naming them.
    assert order.index("Recent buyers") < order.index("Recent non-champions")
    assert order.index("Champions") < order.index("Recent non-champions")
    inlined = segs.compiler(at("2024-07-31")).members(parse_rule(rule)).to_pyarrow()
    assert current(segs, "Recent non-champions") == set(inlined.column("customer_id").to_pylist())
    assert current(segs, "Recent non-champions") == current(segs, "Recent buyers") - current(
        segs, "Champions"
    )
