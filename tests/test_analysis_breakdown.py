"""Demographic breakdown, against answers worked out by hand, on every warehouse backend.

A small shop of 20 customers (``c01`` … ``c20``, named here by number) is written out
below; the reference time is 2024-06-15 (events up to the end of that day count).
Segments, saved as rules evaluated at that time:

- ``Odd``: customers 1, 3, 5, …, 19 (10 customers);
- ``France``: country France: 1, 2, 11, 18 (4);
- ``Empty``: country Atlantis: nobody.

On Online Retail the same analysis is checked against pandas reading the CSV itself.
"""

from __future__ import annotations

import datetime as dt
import math

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy.stats import chi2_contingency
from scipy.stats import fisher_exact as scipy_fisher

from strata.analysis.base import REGISTRY, Analyst
from strata.analysis.breakdown import BreakdownParams, breakdown, holm
from strata.context import Strata
from strata.errors import InputError, NotFound
from strata.segments.engine import Segments
from strata.segments.nodes import SegmentSpec, parse_rule
from strata.segments.reference import ReferenceTime
from strata.warehouse import Batch
from tests.conftest import ONLINE_RETAIL, RETAIL_RFM_DAYS, _needs_data, duckdb_settings
from tests.test_segment_rules import EVENT_SCHEMA, open_backend

REF = "2024-06-15"
D = dt.date

# -- the shop ------------------------------------------------------------------------------
# number, country, gender, company_size, signup_date, industry, vip (a custom true/false)
# Customer 8's gender is empty text: it counts as missing, like a null.
# fmt: off
CUSTOMERS: list[tuple] = [
    (1, "France", "female", 1, D(2022, 1, 10), "Software", True),
    (2, "France", "male", 5, D(2023, 3, 5), "Retail", False),
    (3, "Spain", "female", 12, D(2024, 6, 1), "Software", False),
    (4, "Germany", "male", 50, D(2024, 5, 20), "Retail", None),
    (5, "Germany", "female", 200, D(2021, 12, 31), "Software", True),
    (6, "United States", "male", None, D(2024, 6, 15), "Retail", None),
    (7, "Italy", "female", 10, D(2023, 12, 1), "Retail", None),
    (8, None, "", 11, D(2022, 6, 15), "Retail", None),
    (9, "United States", "female", 2, D(2020, 2, 29), "Retail", None),
    (10, "United Kingdom", "male", 1000, D(2024, 1, 1), "Retail", True),
    (11, "France", "female", 0, D(2024, 3, 16), "Software", None),
    (12, "Germany", "male", 3, D(2023, 6, 15), "Retail", None),
    (13, "Spain", "female", 25, D(2024, 2, 15), "Retail", None),
    (14, "Sweden", "male", 7, D(2022, 11, 30), "Software", None),
    (15, "Poland", "female", None, D(2024, 6, 10), "Retail", None),
    (16, "United States", "male", 150, D(2019, 8, 8), "Retail", True),
    (17, "Canada", "other", 1, D(2024, 6, 17), "Retail", None),
    (18, "France", "female", 9, D(2023, 9, 9), "Retail", None),
    (19, "Germany", "male", None, D(2024, 6, 14), "Software", None),
    (20, "United States", "female", 4, D(2021, 5, 5), "Retail", None),
]
# fmt: on

# Orders per customer (dates); customer 3's second order is after the reference time and
# does not count, customer 4's refund is no order. Orders known at 2024-06-15:
# 1: 5, 2: 2, 3: 1, 4: 2, 5: 4, 7: 3, 10: 3, 14: 3, 17: 4; the 11 others 0.
ORDERS: dict[int, list[str]] = {
    1: ["2024-01-15", "2024-04-20", "2024-05-20", "2024-06-01", "2024-06-14"],
    2: ["2023-12-24", "2024-06-15"],
    3: ["2024-06-10", "2024-06-16"],
    4: ["2024-05-25", "2024-05-26"],
    5: ["2023-06-01", "2023-07-01", "2023-08-01", "2023-09-01"],
    7: ["2024-04-20", "2024-05-01", "2024-05-10"],
    10: ["2024-03-17", "2024-03-20", "2024-06-05"],
    14: ["2024-01-01", "2024-01-31", "2024-02-01"],
    17: ["2024-06-12", "2024-06-13", "2024-06-14", "2024-06-15"],
}
REFUNDS: dict[int, str] = {4: "2024-05-28"}

SEGMENTS = [
    (
        "Odd",
        {
            "type": "attribute",
            "attribute": "external_id",
            "op": "in",
            "value": [f"c{n:02d}" for n in range(1, 21, 2)],
        },
    ),
    ("France", {"type": "attribute", "attribute": "country", "op": "eq", "value": "France"}),
    ("Repeat buyers", {"type": "trait", "trait": "total_orders", "op": "gte", "value": 3}),
    ("Software", {"type": "attribute", "attribute": "industry", "op": "eq", "value": "Software"}),
    ("Empty", {"type": "attribute", "attribute": "country", "op": "eq", "value": "Atlantis"}),
]


def shop_batch() -> Batch:
    customers = pa.table(
        {
            "external_id": [f"c{c[0]:02d}" for c in CUSTOMERS],
            "country": pa.array([c[1] for c in CUSTOMERS], pa.string()),
            "gender": pa.array([c[2] for c in CUSTOMERS], pa.string()),
            "company_size": pa.array([c[3] for c in CUSTOMERS], pa.int64()),
            "signup_date": pa.array([c[4] for c in CUSTOMERS], pa.date32()),
            "industry": pa.array([c[5] for c in CUSTOMERS], pa.string()),
            "vip": pa.array([c[6] for c in CUSTOMERS], pa.bool_()),
        }
    )
    rows = []
    for n, days in ORDERS.items():
        for i, day in enumerate(days):
            at = dt.datetime.fromisoformat(f"{day} 10:00")
            order_id = f"o{n}-{i}"
            rows.append(
                (f"c{n:02d}", "order", at, 10.0, "EUR", order_id, "{}", f"order:{order_id}")
            )
    for n, day in REFUNDS.items():
        at = dt.datetime.fromisoformat(f"{day} 10:00")
        rows.append((f"c{n:02d}", "refund", at, -5.0, "EUR", f"r{n}", "{}", f"refund:r{n}"))
    events = pa.Table.from_pylist(
        [dict(zip(EVENT_SCHEMA.names, r, strict=True)) for r in rows], EVENT_SCHEMA
    )
    return Batch(customers=customers, events=events)


def load_shop(app: Strata) -> Segments:
    """The shop loaded into a new workspace, its segments saved as of ``REF``."""
    ws = app.workspace(create=True)
    app.warehouse.load(ws.id, shop_batch(), new_columns={"vip": ibis.dtype("boolean")})
    segs = Segments(app)
    for name, rule in SEGMENTS:
        segs.save(SegmentSpec(name=name, rule=parse_rule(rule)), as_of=ReferenceTime.parse(REF))
    return segs


# -- every analysis once per backend ---------------------------------------------------------
@pytest.fixture(scope="module", params=["duckdb", "postgres", "spark"])
def answers(request, tmp_path_factory):
    """Each breakdown of the suite, run once on the backend (Spark pays per query)."""
    with open_backend(request, request.param, tmp_path_factory.mktemp(request.param)) as app:
        load_shop(app)
        an = Analyst(app, as_of=ReferenceTime.parse(REF))
        # Through the registered runner once, as the API and the CLI run it.
        params = BreakdownParams(segment="Odd", attribute="gender", limit=2, as_of=REF)
        tables = REGISTRY["breakdown"].run(an, params)
        yield {
            "gender": tables["breakdown"],
            "total_orders": breakdown(an, "Odd", "total_orders"),
            "company_size": breakdown(an, "Odd", "company_size", bins=4),
            "signup_date": breakdown(an, "Odd", "signup_date"),
            "vip": breakdown(an, "France", "vip"),
            "country": breakdown(an, None, "country", limit=3),
            "empty": breakdown(an, "Empty", "gender"),
        }


def column(frame: pd.DataFrame, name: str) -> list:
    return frame[name].tolist()


def test_text_values_fold_into_other_and_missing_with_z_and_fisher_tests(answers):
    """Gender in Odd, limit 2.

    ========  ==================  ==================  ====  ========
    value     Odd (10)            rest (10)           base  index
    ========  ==================  ==================  ====  ========
    female    8: 1 3 5 7 9 11 13 15  2: 18 20         10    0.8/0.5 = 160
    male      1: 19               7: 2 4 6 10 12 14 16  8   0.1/0.4 = 25
    (other)   1: 17 (other)       0                   1     0.1/0.05 = 200
    (missing) 0                   1: 8 (empty text)   1     0
    ========  ==================  ==================  ====  ========

    female: pooled p = 10/20 = 0.5, every expected count 10 × 0.5 = 5 ≥ 5 → z-test:
    se = √(0.5 × 0.5 × (1/10 + 1/10)) = √0.05 = 0.2236068; z = (0.8 − 0.2) / se =
    2.6832816; p = erfc(z / √2) = 0.0072903.
    male: expected 10 × 8/20 = 4 < 5 → Fisher: 20 customers, 8 male, 10 drawn;
    C(20,10) = 184756; P(1) = C(8,1)·C(12,9) = 8·220 = 1760, P(7) = 8·C(12,3) = 1760,
    P(0) = C(12,10) = 66, P(8) = C(12,2) = 66; every other P ≥ P(2) = 28·495 = 13860;
    p = (66 + 1760 + 1760 + 66) / 184756 = 3652 / 184756 = 0.0197666.
    (other) and (missing): one customer, split 1/0: Fisher p = 1.
    Holm over 4 p-values: female 4 × 0.0072903 = 0.0291612 < 0.05 → over; male
    max(0.0291612, 3 × 0.0197666) = 0.0592998 ≥ 0.05 → as base, though p < 0.05 alone.
    """
    g = answers["gender"]
    assert column(g, "value") == ["female", "male", "(other)", "(missing)"]
    assert column(g, "segment_customers") == [8, 1, 1, 0]
    assert column(g, "base_customers") == [10, 8, 1, 1]
    assert column(g, "segment_share") == pytest.approx([0.8, 0.1, 0.1, 0.0])
    assert column(g, "base_share") == pytest.approx([0.5, 0.4, 0.05, 0.05])
    assert column(g, "index") == pytest.approx([160.0, 25.0, 200.0, 0.0])
    assert column(g, "test") == ["z", "fisher", "fisher", "fisher"]
    assert column(g, "p_value") == pytest.approx([0.0072903, 3652 / 184756, 1.0, 1.0], rel=1e-4)
    assert column(g, "p_adjusted") == pytest.approx([0.0291612, 0.0592998, 1.0, 1.0], rel=1e-4)
    assert column(g, "significant") == [True, False, False, False]
    assert column(g, "representation") == ["over", "as base", "as base", "as base"]


def test_whole_numbers_spanning_few_values_get_one_group_each(answers):
    """Total orders (a trait) in Odd: 0 to 5 spans 6 values ≤ 10 bins, one group each.

    base: 0: 6 8 9 11 12 13 15 16 18 19 20 (11), 1: 3, 2: 2 4, 3: 7 10 14, 4: 5 17, 5: 1
    Odd:  0: 9 11 13 15 19 (5), 1: 3, 2: none, 3: 7, 4: 5 17, 5: 1
    Customer 3's order of 2024-06-16 is after the reference time; a refund is no order.
    Row "2": 0 of 10 against 2 of 10: Fisher, P(0) = P(2) = C(18,10)/C(20,10) =
    43758/184756 each, P(1) = 2·C(18,9)/C(20,10) = 97240/184756 > them: p = 87516/184756.
    """
    t = answers["total_orders"]
    assert column(t, "value") == ["0", "1", "2", "3", "4", "5"]
    assert column(t, "base_customers") == [11, 1, 2, 3, 2, 1]
    assert column(t, "segment_customers") == [5, 1, 0, 1, 2, 1]
    assert t.p_value[2] == pytest.approx(87516 / 184756)
    assert column(t, "index") == pytest.approx(
        [50 / 55 * 100, 200.0, 0.0, 1 / 3 * 100 * 2, 200.0, 200.0]
    )


def test_numbers_fall_in_equal_width_bins_with_empty_ones_shown(answers):
    """Company size in Odd, 4 bins between the base's 0 and 1000 (width 250).

    base: [0, 250): every known size but customer 10's 1000 → 16; [250, 500): 0;
    [500, 750): 0; [750, 1000]: 10 → 1; missing: 6 15 19 → 3.
    Odd: [0, 250): 1 3 5 7 9 11 13 17 → 8; last bin: 0; missing: 15 19 → 2.
    """
    c = answers["company_size"]
    assert column(c, "value") == ["0–250", "250–500", "500–750", "750–1000", "(missing)"]
    assert column(c, "base_customers") == [16, 0, 0, 1, 3]
    assert column(c, "segment_customers") == [8, 0, 0, 0, 2]
    assert column(c, "index")[0] == pytest.approx(100.0)
    assert math.isnan(c["index"][1]) and math.isnan(c.p_value[1])
    assert pd.isna(c.test[1])
    assert column(c, "index")[4] == pytest.approx(0.2 / 0.15 * 100)


def test_dates_group_by_year(answers):
    """Signup year in Odd.

    base: 2019: 16; 2020: 9; 2021: 5 20; 2022: 1 8 14; 2023: 2 7 12 18;
    2024: 3 4 6 10 11 13 15 17 19 → 1, 1, 2, 3, 4, 9.
    Odd: 2019: none; 2020: 9; 2021: 5; 2022: 1; 2023: 7; 2024: 3 11 13 15 17 19 → 0 1 1 1 1 6.
    """
    s = answers["signup_date"]
    assert column(s, "value") == ["2019", "2020", "2021", "2022", "2023", "2024"]
    assert column(s, "base_customers") == [1, 1, 2, 3, 4, 9]
    assert column(s, "segment_customers") == [0, 1, 1, 1, 1, 6]
    assert column(s, "index")[-1] == pytest.approx(0.6 / 0.45 * 100)


def test_booleans_are_false_true_and_missing(answers):
    """VIP in France (1, 2, 11, 18): true 1 (base 1 5 10 16), false 2 (base 2 3),
    missing 11 18 (base: the 14 others). Index of false: (1/4) / (2/20) × 100 = 250."""
    v = answers["vip"]
    assert column(v, "value") == ["false", "true", "(missing)"]
    assert column(v, "segment_customers") == [1, 1, 2]
    assert column(v, "base_customers") == [2, 4, 14]
    assert column(v, "index") == pytest.approx([250.0, 125.0, 0.5 / 0.7 * 100])


def test_the_whole_base_against_itself_is_as_base_without_tests(answers):
    """Country of everyone, limit 3: France, Germany, United States have 4 each; the
    other 7 known countries fold into (other); customer 8 has none."""
    c = answers["country"]
    assert column(c, "value") == ["France", "Germany", "United States", "(other)", "(missing)"]
    assert column(c, "base_customers") == [4, 4, 4, 7, 1]
    assert column(c, "segment_customers") == [4, 4, 4, 7, 1]
    assert column(c, "index") == pytest.approx([100.0] * 5)
    assert c.p_value.isna().all()
    assert column(c, "representation") == ["as base"] * 5


def test_an_empty_segment_gives_zeros_not_an_error(answers):
    e = answers["empty"]
    assert column(e, "value") == ["female", "male", "other", "(missing)"]
    assert column(e, "segment_customers") == [0, 0, 0, 0]
    assert column(e, "base_customers") == [10, 8, 1, 1]
    assert column(e, "segment_share") == [0.0] * 4
    assert not e.significant.any()


# -- bad input ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    home = tmp_path_factory.mktemp("bad-input")
    settings = duckdb_settings(home)
    with Strata(settings) as app:
        load_shop(app)
        yield Analyst(app, as_of=ReferenceTime.parse(REF))


@pytest.mark.parametrize("attribute", ["email", "name", "phone", "external_id", "work_email"])
def test_personal_identifiers_are_refused(shop, attribute):
    with pytest.raises(InputError, match="breakdown shows groups, not people"):
        breakdown(shop, "Odd", attribute)


def test_an_unknown_attribute_names_the_known_ones(shop):
    with pytest.raises(InputError, match="'shoe_size' is neither a customer attribute nor a trait"):
        breakdown(shop, "Odd", "shoe_size")


def test_an_unknown_segment_is_not_found(shop):
    with pytest.raises(NotFound, match="no segment 'Nobody'"):
        breakdown(shop, "Nobody", "country")


def test_bins_and_limit_below_one_are_refused(shop):
    with pytest.raises(InputError, match="at least 1"):
        breakdown(shop, "Odd", "company_size", bins=0)


def test_the_params_are_bounded_and_registered():
    with pytest.raises(ValueError):
        BreakdownParams(attribute="country", bins=0)
    with pytest.raises(ValueError):
        BreakdownParams(attribute="country", limit=10_000)
    spec = REGISTRY["breakdown"]
    assert spec.params is BreakdownParams and spec.subject == "segment"
    assert "segment" in spec.summary


def test_holm_adjusts_step_down():
    # Sorted 0.01, 0.03, 0.04 (m = 3): 3 × 0.01 = 0.03; max(0.03, 2 × 0.03) = 0.06;
    # max(0.06, 1 × 0.04) = 0.06. NaN is not a test.
    assert holm([0.01, 0.04, float("nan"), 0.03])[:2] == pytest.approx([0.03, 0.06])
    assert math.isnan(holm([0.01, 0.04, float("nan"), 0.03])[2])


# -- Online Retail -------------------------------------------------------------------------------
@pytest.mark.slow
def test_country_of_champions_matches_pandas_on_online_retail(online_retail):
    """Country of RFM "Champions" as of 2011-12-10 against the CSV read by pandas.

    Mapping: one customer per CustomerID (lines without one dropped), its country the
    last non-empty Country of its lines in file order. Only the Champions' ids are read
    from the warehouse.
    """
    _needs_data(ONLINE_RETAIL)
    as_of = RETAIL_RFM_DAYS[-1]
    with Strata(online_retail) as app:
        an = Analyst(app, as_of=ReferenceTime.parse(as_of))
        got = breakdown(an, "Champions", "country")
        champions = an.members("Champions").inner_join(an.customers(), "customer_id")
        ids = set(champions.select("external_id").to_pyarrow().column(0).to_pylist())

    lines = pd.read_csv(ONLINE_RETAIL, dtype={"CustomerID": str, "InvoiceNo": str})
    lines = lines[lines.CustomerID.notna()]
    lines = lines.assign(customer=lines.CustomerID.str.removesuffix(".0"))
    country = lines.dropna(subset=["Country"]).groupby("customer", sort=False).Country.last()
    people = pd.DataFrame({"country": country}).reindex(lines.customer.unique())
    people["champion"] = people.index.isin(ids)
    assert people.champion.sum() == len(ids) > 100
    base = people.country.fillna("(missing)").value_counts()
    seg = people[people.champion].country.fillna("(missing)").value_counts()
    named = base.drop("(missing)", errors="ignore")
    named = named.sort_index().sort_values(ascending=False, kind="stable")
    top = list(named.index[:20])
    rest = [c for c in named.index if c not in top]
    expected = [(c, int(seg.get(c, 0)), int(base[c])) for c in top]
    if rest:
        expected.append(("(other)", int(seg.reindex(rest).fillna(0).sum()), int(base[rest].sum())))
    if "(missing)" in base:
        expected.append(("(missing)", int(seg.get("(missing)", 0)), int(base["(missing)"])))
    assert list(zip(got.value, got.segment_customers, got.base_customers, strict=True)) == expected

    # The tests, from scipy's own routines: the pooled z-test is the chi-square test
    # without continuity correction (z² = χ²); Fisher where an expected count is < 5.
    n1, n = len(ids), len(people)
    p_values = []
    for _, a, b in expected:
        table = np.array([[a, n1 - a], [b - a, n - n1 - (b - a)]])
        _chi2, p, _, exp = chi2_contingency(table, correction=False)
        p_values.append(p if exp.min() >= 5 else scipy_fisher(table).pvalue)
    assert got.p_value.tolist() == pytest.approx(p_values, rel=1e-6, abs=1e-12)
    # Holm by hand: sorted p × (m − rank), running maximum, capped at 1.
    order = np.argsort(p_values, kind="stable")
    m = len(p_values)
    adjusted = np.maximum.accumulate(np.minimum(1, np.array(p_values)[order] * (m - np.arange(m))))
    significant = np.empty(m, bool)
    significant[order] = adjusted < 0.05
    assert got.significant.tolist() == significant.tolist()
    uk = got.set_index("value").loc["United Kingdom"]
    assert uk["index"] == pytest.approx(100 * (uk.segment_customers / n1) / (uk.base_customers / n))
    # Every customer is counted once: the groups add up to the segment and the base.
    assert (got.segment_customers.sum(), got.base_customers.sum()) == (n1, n)
    assert set(got.test) == {"z", "fisher"}
