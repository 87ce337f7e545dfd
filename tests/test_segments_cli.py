"""The segment commands end to end: real subprocesses, real files, every backend we serve.

Imports of a small orders file drive living memberships: a second import moves a
customer into a segment and the import's report says so.
"""

from __future__ import annotations

import json

import pytest

ORDERS_1 = """customer_id,email,country,order_id,order_date,amount
A1,a1@example.com,France,O1,2024-03-01,120.00
A2,a2@example.com,France,O2,2024-03-02,40.00
A3,a3@example.com,Spain,O3,2024-03-03,700.00
A3,a3@example.com,Spain,O4,2024-05-20,80.00
"""
ORDERS_2 = """customer_id,email,country,order_id,order_date,amount
A2,a2@example.com,France,O5,2024-06-01,900.00
"""

BIG_SPENDERS = """name: Big spenders
description: More than 500 spent in the first half of 2024.
rule:
  type: aggregate
  event: order
  fn: sum
  op: gt
  value: 500
  window: {dates: [2024-01-01, 2024-06-30]}
"""


def _json(result):
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def shop(cli, tmp_path):
    first = tmp_path / "orders1.csv"
    first.write_text(ORDERS_1)
    _json(cli("import", first, "--json"))
    rule = tmp_path / "big.yaml"
    rule.write_text(BIG_SPENDERS)
    return tmp_path


def test_preview_counts_and_samples_without_saving(cli, shop):
    preview = _json(
        cli("segments", "preview", shop / "big.yaml", "--as-of", "2024-06-30", "--json")
    )
    assert preview["count"] == 1
    assert [r["external_id"] for r in preview["sample"]] == ["A3"]
    assert _json(cli("segments", "list", "--json")) == []


def test_an_import_moves_customers_into_the_segments_it_affects(cli, shop):
    created = _json(cli("segments", "create", shop / "big.yaml", "--json"))
    assert (created["members"], created["joined"]) == (1, 1)

    second = shop / "orders2.csv"
    second.write_text(ORDERS_2)
    report = _json(cli("import", second, "--json"))
    moved = {r["segment"]: r for r in report["segments_refreshed"]}
    assert moved["Big spenders"]["joined"] == 1
    assert moved["Big spenders"]["members"] == 2
    assert moved["Big spenders"]["incremental"] is True

    members = _json(cli("segments", "members", "Big spenders", "--json"))
    assert sorted(m["external_id"] for m in members["members"]) == ["A2", "A3"]
    history = _json(cli("segments", "history", "--customer", "A2", "--json"))
    assert [(h["segment"], h["left"]) for h in history] == [("Big spenders", None)]


def test_explain_says_which_condition_holds_with_the_actual_value(cli, shop):
    _json(cli("segments", "create", shop / "big.yaml", "--json"))
    why = _json(cli("segments", "explain", "Big spenders", "a1@example.com", "--json"))
    assert why["member"] is False
    assert why["why"]["value"] == 120.0
    assert why["why"]["needs"] == "> 500"
    text = cli("segments", "explain", "Big spenders", "A3").stdout
    assert "✓ sum of revenue of order events from 2024-01-01 to 2024-06-30 is 780" in text


def test_apply_prints_a_plan_and_changes_nothing_without_yes(cli, shop):
    folder = shop / "segments"
    folder.mkdir()
    (folder / "big.yaml").write_text(BIG_SPENDERS)
    plan = _json(cli("segments", "apply", folder, "--json"))
    assert plan["applied"] is False
    assert [(p["action"], p["name"]) for p in plan["plan"]] == [("create", "Big spenders")]
    assert _json(cli("segments", "list", "--json")) == []
    done = _json(cli("segments", "apply", folder, "--yes", "--json"))
    assert done["refreshed"][0]["members"] >= 1
    again = _json(cli("segments", "apply", folder, "--json"))
    assert [p["action"] for p in again["plan"]] == ["unchanged"]


def test_rfm_json_has_every_segment_of_the_grid(cli, shop):
    rfm = _json(cli("rfm", "--as-of", "2024-06-30", "--json"))
    assert rfm["as_of"] == "2024-06-30"
    assert rfm["customers"] == 3
    assert len(rfm["segments"]) == 11
    assert sum(s["customers"] for s in rfm["segments"]) == 3
    assert round(sum(s["revenue"] for s in rfm["segments"]), 2) == 940.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("segments", "explain", "Nope", "A1"), "no segment named 'Nope'"),
        (("segments", "preview", "missing.yaml"), "no such file"),
        (("segments", "refresh", "--as-of", "yesterday"), "is not a date"),
        (("segments", "history"), "give a segment name, or --customer"),
        (("tiers", "create", "size", "--on", "country"), "tiers need a number"),
    ],
)
def test_bad_input_is_one_line_without_a_traceback(cli, shop, args, message):
    result = cli(*args)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_rule_with_a_type_mismatch_is_refused_and_nothing_is_saved(cli, shop):
    bad = shop / "bad.yaml"
    bad.write_text("name: Bad\nrule: {type: attribute, attribute: country, op: gt, value: 3}\n")
    result = cli("segments", "create", bad)
    assert result.returncode == 2
    assert "'country' is text" in result.stderr
    assert _json(cli("segments", "list", "--json")) == []
