"""RFM on Online Retail as of 2011-12-10, checked against an independent pandas computation.

The pandas side reads the CSV itself and follows the documented definitions: an
order is an invoice not starting with ``C`` (the importer's refund marker), of a
line with a customer id; its revenue is the sum of quantity × unit price of its
lines; frequency is the number of orders, monetary the net revenue of orders and
refunds, recency the days from the last order's date to 2011-12-10. Scores are
NTILE(5) over the customers with an order, worst first, ties broken by the
internal customer id (read from the warehouse, the only thing taken from it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from strata.config import Settings
from strata.context import Strata
from strata.errors import InputError
from strata.ingest.pipeline import run_import
from strata.segments import rfm as rfm_mod
from strata.segments.engine import Segments, rfm_scores, run_rfm
from strata.segments.reference import ReferenceTime
from tests.conftest import ONLINE_RETAIL, _needs_data
from tests.test_segment_rules import _postgres_database

pytestmark = pytest.mark.slow

AS_OF = "2011-12-10"
CUSTOMERS_WITH_ORDERS = 4_339

# The standard grid, written out cell by cell: R (rows, 5 = most recent) × FM.
GRID = {
    5: ["New Customers", "Potential Loyalists", "Potential Loyalists", "Champions", "Champions"],
    4: [
        "Promising",
        "Potential Loyalists",
        "Potential Loyalists",
        "Loyal Customers",
        "Loyal Customers",
    ],
    3: ["About to Sleep", "About to Sleep", "Need Attention", "Loyal Customers", "Loyal Customers"],
    2: ["Hibernating", "Hibernating", "At Risk", "At Risk", "Can't Lose Them"],
    1: ["Lost", "Lost", "At Risk", "At Risk", "Can't Lose Them"],
}


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def retail(request, tmp_path_factory):
    """Online Retail imported once per backend, RFM saved as of 2011-12-10; the settings.

    No connection stays open between tests, so the CLI can open the DuckDB file.
    """
    _needs_data(ONLINE_RETAIL)
    home = tmp_path_factory.mktemp(f"retail-{request.param}")
    if request.param == "duckdb":
        url = f"duckdb://{home / 'warehouse.duckdb'}"
        yield _setup(home, url)
    else:
        with _postgres_database() as url:
            yield _setup(home, url)


def _setup(home, url: str) -> dict:
    settings = Settings(
        home=home, database_url=f"sqlite:///{home / 'catalog.db'}", warehouse_url=url
    )
    with Strata(settings) as app:
        report = run_import(app, ONLINE_RETAIL)
        assert report["preset"] == "transactions"
        segs = Segments(app)
        summary = run_rfm(segs, as_of=ReferenceTime.parse(AS_OF))
        scores = rfm_scores(segs, ReferenceTime.parse(AS_OF)).to_pyarrow().to_pandas()
        customers = app.warehouse.table(segs.ws.id, "customers")
        ids = customers.select("customer_id", "external_id").to_pyarrow().to_pandas()
    return {"settings": settings, "summary": summary, "scores": scores, "ids": ids}


@pytest.fixture(scope="module")
def measures() -> pd.DataFrame:
    """Frequency, monetary and recency per external customer id, from the CSV alone."""
    _needs_data(ONLINE_RETAIL)
    lines = pd.read_csv(
        ONLINE_RETAIL, dtype={"InvoiceNo": str, "StockCode": str, "CustomerID": str}
    )
    lines = lines[lines.CustomerID.notna()].copy()
    lines["customer"] = lines.CustomerID.str.removesuffix(".0")
    lines["amount"] = lines.Quantity * lines.UnitPrice
    lines["cancelled"] = lines.InvoiceNo.str.match(r"^[Cc]\d")
    lines["at"] = pd.to_datetime(lines.InvoiceDate)
    invoices = (
        lines.groupby(["cancelled", "InvoiceNo"])
        .agg(customer=("customer", "first"), at=("at", "min"), revenue=("amount", "sum"))
        .reset_index()
    )
    # The importer turns an invoice with a negative total into a refund too; none here.
    assert not ((~invoices.cancelled) & (invoices.revenue < 0)).any()
    invoices["is_order"] = ~invoices.cancelled
    # Cancellations carry negative quantities: their revenue is already negative.
    per = invoices.groupby("customer").agg(
        frequency=("is_order", "sum"), monetary=("revenue", "sum")
    )
    last = invoices[invoices.is_order].groupby("customer")["at"].max()
    per = per[per.frequency > 0].join(last.rename("last"))
    per["recency"] = (pd.Timestamp(AS_OF) - per["last"].dt.normalize()).dt.days
    return per


@pytest.fixture(scope="module")
def expected(retail, measures) -> pd.DataFrame:
    """R, F, M and the segment per external customer id; only the tie-break id is read
    from the warehouse."""
    per = measures.copy()
    per["cid"] = retail["ids"].set_index("external_id").customer_id.reindex(per.index).to_numpy()
    assert per.cid.notna().all()

    def ntile(measure: str, worst_first_ascending: bool) -> pd.Series:
        ranked = per.sort_values(
            [measure, "cid"], ascending=[worst_first_ascending, True], kind="mergesort"
        )
        score = np.empty(len(ranked), dtype=int)
        for group, rows in enumerate(np.array_split(np.arange(len(ranked)), 5), start=1):
            score[rows] = group
        return pd.Series(score, index=ranked.index).reindex(per.index)

    per["R"] = ntile("recency", False)  # most days since the last order: score 1
    per["F"] = ntile("frequency", True)
    # Revenue is ranked at 6 decimals, so float noise in sums never decides a tie.
    per["monetary_rank"] = per.monetary.round(6)
    per["M"] = ntile("monetary_rank", True)
    fm = (per.F + per.M + 1) // 2
    per["segment"] = [GRID[r][f - 1] for r, f in zip(per.R, fm, strict=True)]
    return per


def _product(retail) -> pd.DataFrame:
    scores = retail["scores"].merge(retail["ids"], on="customer_id")
    return scores.set_index("external_id")


def test_pandas_side_finds_the_known_customers_with_orders(expected):
    assert len(expected) == CUSTOMERS_WITH_ORDERS
    assert expected.frequency.sum() == 18_536


@pytest.mark.parametrize(
    ("score", "column"),
    [("R", "rfm_recency"), ("F", "rfm_frequency"), ("M", "rfm_monetary")],
)
def test_scores_equal_an_independent_pandas_computation(retail, expected, score, column):
    product = _product(retail)
    assert sorted(product.index) == sorted(expected.index)
    ours = product[column].reindex(expected.index)
    wrong = expected[ours != expected[score]]
    assert wrong.empty, wrong.head()


def test_measures_equal_the_pandas_ones(retail, expected):
    product = _product(retail).reindex(expected.index)
    assert (product.total_orders == expected.frequency).all()
    assert (product.days_since_last_order == expected.recency).all()
    assert np.allclose(product.total_revenue, expected.monetary, atol=1e-6)


def test_segments_follow_the_standard_grid(retail, expected):
    product = _product(retail).reindex(expected.index)
    wrong = expected[product.rfm_segment != expected.segment]
    assert wrong.empty, wrong.head()


def test_every_customer_with_an_order_is_in_exactly_one_rfm_segment(retail, expected):
    summary = retail["summary"]
    assert summary["as_of"] == AS_OF
    assert summary["customers"] == CUSTOMERS_WITH_ORDERS
    assert [s["name"] for s in summary["segments"]] == list(rfm_mod.DEFAULT_MAP)
    assert sum(s["customers"] for s in summary["segments"]) == CUSTOMERS_WITH_ORDERS
    counts = expected.segment.value_counts()
    assert {s["name"]: s["customers"] for s in summary["segments"]} == {
        name: int(counts.get(name, 0)) for name in rfm_mod.DEFAULT_MAP
    }
    revenue = expected.groupby("segment").monetary.sum()
    for s in summary["segments"]:
        assert s["revenue"] == pytest.approx(float(revenue.get(s["name"], 0.0)), abs=0.01)

    with Strata(retail["settings"]) as app:
        segs = Segments(app)
        family = {s.id: s.name for s in segs.list() if s.family == "rfm"}
        assert sorted(family.values()) == sorted(rfm_mod.DEFAULT_MAP)
        m = app.warehouse.table(segs.ws.id, "memberships")
        current = m.filter(m.left_at.isnull(), m.segment_id.isin(list(family)))
        rows = current.select("segment_id", "customer_id").to_pyarrow()
        ids = retail["ids"].set_index("customer_id").external_id
        stored = pd.DataFrame(
            {
                "customer": ids.reindex(rows.column("customer_id").to_numpy()).to_numpy(),
                "segment": [family[i] for i in rows.column("segment_id").to_pylist()],
            }
        )
        assert stored.customer.is_unique
        assert len(stored) == CUSTOMERS_WITH_ORDERS
        assert (
            stored.set_index("customer").segment.reindex(expected.index) == expected.segment
        ).all()
        stored_counts = stored.segment.value_counts()
        for seg in segs.list():
            if seg.family == "rfm":
                assert seg.customer_count == int(counts.get(seg.name, 0))
                assert int(stored_counts.get(seg.name, 0)) == seg.customer_count


def _strata(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "STRATA_HOME": str(settings.home),
        "STRATA_DATABASE_URL": settings.database_url,
        "STRATA_WAREHOUSE_URL": settings.warehouse_url,
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "strata.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def test_rfm_command_prints_the_eleven_segments_as_json(retail, expected):
    result = _strata(retail["settings"], "rfm", "--as-of", AS_OF, "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["as_of"] == AS_OF
    assert out["customers"] == CUSTOMERS_WITH_ORDERS
    assert len(out["segments"]) == 11
    assert all({"name", "customers", "revenue"} <= set(s) for s in out["segments"])
    counts = expected.segment.value_counts()
    assert {s["name"]: s["customers"] for s in out["segments"]} == {
        name: int(counts.get(name, 0)) for name in rfm_mod.DEFAULT_MAP
    }
    assert sum(s["customers"] for s in out["segments"]) == CUSTOMERS_WITH_ORDERS


# -- custom grids --------------------------------------------------------------------------------
def _map_without(name: str) -> dict[str, list[str]]:
    return {k: v for k, v in rfm_mod.DEFAULT_MAP.items() if k != name}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"map": {**rfm_mod.DEFAULT_MAP, "Champions": ["5:3-5"]}},
            "RFM cell R=5, FM=3 is in both 'Champions' and 'Potential Loyalists': each cell "
            "belongs to one segment",
        ),
        (
            {"map": _map_without("New Customers")},
            "RFM cells R=5, FM=1 are in no segment: every cell needs one",
        ),
        (
            {"map": {**_map_without("Lost"), "Lost": ["1:1"]}},
            "RFM cells R=1, FM=2 are in no segment",
        ),
        (
            {"bins": 3, "map": {"Best": ["3:1-3"], "Rest": ["1-2:1-3"], "Extra": ["1:3"]}},
            "RFM cell R=1, FM=3 is in both 'Rest' and 'Extra'",
        ),
        (
            {"map": {**rfm_mod.DEFAULT_MAP, "Champions": ["6:4-5"]}},
            "RFM cell '6:4-5' of 'Champions' is outside the grid 1..5",
        ),
        (
            {"map": {**rfm_mod.DEFAULT_MAP, "Champions": ["five:4"]}},
            "RFM cell 'five:4' of 'Champions' must look like '4-5:1-2'",
        ),
    ],
    ids=["overlap", "gap", "gap-in-a-range", "overlap-3-bins", "outside", "unreadable"],
)
def test_a_custom_grid_with_overlaps_or_gaps_is_refused_naming_the_cell(config, message):
    with pytest.raises(InputError) as err:
        rfm_mod.parse_config(config)
    assert str(err.value).startswith("invalid RFM settings: ")
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_a_custom_grid_that_covers_every_cell_once_is_accepted():
    config = rfm_mod.parse_config(
        {
            "bins": 3,
            "map": {"Best": ["3:2-3"], "New": ["3:1"], "Middle": ["2:1-3"], "Gone": ["1:1-3"]},
        }
    )
    assert len(config.cells()) == 9
    assert config.segment_of(3, 1) == "New"
    assert config.segment_of(1, 3) == "Gone"


def test_rfm_command_refuses_an_overlapping_grid_and_keeps_the_old_one(retail, tmp_path):
    bad = tmp_path / "rfm.yaml"
    bad.write_text("map:\n  Everyone: ['1-5:1-5']\n  Champions: ['5:5']\n")
    result = _strata(retail["settings"], "rfm", "--as-of", AS_OF, "--config", str(bad))
    assert result.returncode == 2
    assert "RFM cell R=5, FM=5 is in both 'Everyone' and 'Champions'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    with Strata(retail["settings"]) as app:
        segs = Segments(app)
        assert segs.setting("rfm") is None
        assert sorted(s.name for s in segs.list() if s.family == "rfm") == sorted(
            rfm_mod.DEFAULT_MAP
        )
