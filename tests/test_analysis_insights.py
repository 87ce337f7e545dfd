"""Insights on a ten-customer shop worked out by hand, on every backend; on Online Retail
against pandas.

The shop, as of 2024-06-30 (orders and refunds; nothing else happened):

====  =======  ====  ===========================================  =======  =====  ========
cust  country  plan  money                                        revenue  order  recency
====  =======  ====  ===========================================  =======  =====  ========
1     FR       vip   order 100 on 05-01, order 100 on 06-20       200      2      10 days
2     FR       vip   order 300 on 06-25                           300      1      5
3     FR       vip   order 100 on 06-10, refund −50 on 06-12      50       1      20
4     FR       vip   –                                            0        0      –
5     FR       basic order 50 on 01-01                            50       1      181
6     DE       basic order 50 on 03-01                            50       1      121
7–10  DE       basic –                                            0        0      –
====  =======  ====  ===========================================  =======  =====  ========

Segment VIP (plan = vip) = {1, 2, 3, 4}, evaluated as of 2024-05-31 and 2024-06-30.

* VIP: 4 customers, 3 buyers, 4 orders, revenue 550, order revenue 600, recency 35/3.
* Base: 10 customers, 5 buyers, 6 orders, revenue 650, order revenue 700, recency 337/5.
* Revenue share 550/650 = 84.6 %, customer share 40.0 %, index 2.115 → "High-value".
* Average order value 600/4 = 150 against 700/6 = 116.67 (+29 %); orders per buyer 4/3
  against 6/5 (+11 %); days since the last order 11.7 against 67.4 (−83 %); 75 % ordered
  against 50 %.
* Attribute mix (4 tests: country FR/DE, plan vip/basic; Bonferroni × 4):
  - plan = vip: 4/4 against 0/6; pooled p = 0.4, se = √(0.4·0.6·(1/4 + 1/6)) = √0.1 =
    0.3162, z = 1/0.3162 = 3.162, two-sided p = 2·(1 − Φ(3.162)) = 0.00157, × 4 = 0.006.
  - country = FR: 4/4 against 1/6; pooled 0.5, se = √(0.25·0.41667) = 0.3227, z = 2.582,
    p = 2·(1 − Φ(2.582)) = 0.00982, × 4 = 0.039 < 0.05: 100 % against 17 %, 6.0×.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa
import pytest

from strata.analysis.base import Analyst, run_analysis
from strata.analysis.insights import InsightsParams, insights, two_proportion_p
from strata.context import Strata
from strata.errors import InputError, NotFound
from strata.segments.engine import Segments
from strata.segments.nodes import SegmentSpec, parse_rule
from strata.segments.reference import ReferenceTime
from strata.segments.rfm import ACTIONS
from strata.warehouse import Batch
from tests.conftest import RETAIL_RFM_DAYS
from tests.test_segment_rules import BACKENDS, open_backend

AS_OF = "2024-06-30"
PEOPLE = [(n, "FR" if n <= 5 else "DE", "vip" if n <= 4 else "basic") for n in range(1, 11)]
MONEY = [
    (1, "order", "2024-05-01 10:00", 100.0),
    (1, "order", "2024-06-20 10:00", 100.0),
    (2, "order", "2024-06-25 10:00", 300.0),
    (3, "order", "2024-06-10 10:00", 100.0),
    (3, "refund", "2024-06-12 10:00", -50.0),
    (5, "order", "2024-01-01 10:00", 50.0),
    (6, "order", "2024-03-01 10:00", 50.0),
    # After the reference time: never counted.
    (4, "order", "2024-07-02 10:00", 999.0),
]


def _batch() -> Batch:
    customers = pa.table(
        {
            "external_id": [f"c{n}" for n, _, _ in PEOPLE],
            "country": [c for _, c, _ in PEOPLE],
            "plan": [p for _, _, p in PEOPLE],
        }
    )
    events = pa.table(
        {
            "external_id": [f"c{n}" for n, *_ in MONEY],
            "event_type": [t for _, t, _, _ in MONEY],
            "timestamp": pa.array(
                [dt.datetime.fromisoformat(at) for _, _, at, _ in MONEY], pa.timestamp("us")
            ),
            "revenue": [r for *_, r in MONEY],
            "currency": ["EUR"] * len(MONEY),
            "order_id": [f"o{i}" for i in range(len(MONEY))],
            "properties": pa.array([None] * len(MONEY), pa.string()),
            "event_key": [f"k{i}" for i in range(len(MONEY))],
        }
    )
    return Batch(customers=customers, events=events)


@pytest.fixture(scope="module", params=BACKENDS)
def shop(request, tmp_path_factory):
    home = tmp_path_factory.mktemp(f"insights-{request.param}")
    with open_backend(request, request.param, home) as app:
        ws = app.workspace("default", create=True)
        app.warehouse.load(ws.id, _batch())
        segs = Segments(app)
        rule = parse_rule({"type": "attribute", "attribute": "plan", "op": "eq", "value": "vip"})
        segs.save(SegmentSpec(name="VIP", rule=rule), evaluate=False)
        for day in ("2024-05-31", AS_OF):
            segs.refresh(["VIP"], as_of=ReferenceTime.parse(day))
        an = Analyst(app, as_of=ReferenceTime.parse(AS_OF))
        yield insights(an, "VIP"), an


def _row(frame: pd.DataFrame, topic: str) -> dict:
    rows = frame[frame.topic == topic].to_dict("records")
    assert len(rows) == 1, f"{topic}: {rows}"
    return rows[0]


def test_findings_are_the_hand_worked_numbers(shop):
    frame, _ = shop
    assert list(frame.columns) == [
        "segment",
        "type",
        "topic",
        "text",
        "metric",
        "value",
        "baseline",
    ]
    assert set(frame.segment) == {"VIP"}
    size = _row(frame, "size")
    assert (size["value"], size["baseline"]) == (4, 10)
    assert size["text"] == "4 customers, 40.0% of the base."
    trend = _row(frame, "trend")
    assert trend["text"] == "Held steady over the last 30 days (4 → 4 members)."
    revenue = _row(frame, "revenue")
    assert revenue["value"] == pytest.approx(550 / 650)
    assert revenue["baseline"] == pytest.approx(0.4)
    assert revenue["text"] == "Brings 84.6% of revenue with 40.0% of customers (2.12× its share)."
    aov = _row(frame, "order value")
    assert (aov["value"], aov["baseline"]) == (pytest.approx(150.0), pytest.approx(700 / 6))
    assert aov["text"] == "Average order value 150.00, 29% higher than the base's 116.67."
    frequency = _row(frame, "frequency")
    assert frequency["value"] == pytest.approx(4 / 3)
    assert frequency["baseline"] == pytest.approx(6 / 5)
    recency = _row(frame, "recency")
    assert recency["value"] == pytest.approx(35 / 3)
    assert recency["baseline"] == pytest.approx(337 / 5)
    assert recency["text"] == "Days since the last order 11.7, 83% lower than the base's 67.4."
    buyers = _row(frame, "buyers")
    assert buyers["text"] == "75% have ordered, against 50% of the base."


def test_distinctive_values_pass_a_corrected_z_test(shop):
    frame, _ = shop
    found = frame[frame.topic == "attribute"].to_dict("records")
    assert [f["text"] for f in found] == [
        "plan = 'vip': 100% of the segment and none of the rest of the base (p = 0.006).",
        "country = 'FR' is 6.0× as common as in the rest of the base (100% against 17%, "
        "p = 0.039).",
    ]
    assert found[1]["value"] == 1.0
    assert found[1]["baseline"] == pytest.approx(1 / 6)


def test_z_test_by_hand():
    assert two_proportion_p(4, 4, 0, 6) == pytest.approx(0.001565, abs=2e-6)
    assert two_proportion_p(4, 4, 1, 6) == pytest.approx(0.00982, abs=2e-5)
    assert two_proportion_p(0, 0, 1, 6) == 1.0
    assert two_proportion_p(3, 3, 6, 6) == 1.0  # everyone has it: nothing to tell


def test_recommendation_follows_the_numbers(shop):
    frame, _ = shop
    actions = frame[frame.type == "recommendation"].to_dict("records")
    assert len(actions) == 1
    assert actions[0]["text"].startswith("High-value: 84.6% of revenue from 40.0% of customers.")
    assert actions[0]["value"] == pytest.approx((550 / 650) / 0.4)


def test_needs_one_known_segment(shop):
    _, an = shop
    with pytest.raises(InputError, match="one segment"):
        insights(an, None)
    with pytest.raises(NotFound, match="no segment 'Nope'"):
        insights(an, "Nope")


@pytest.mark.slow
def test_online_retail_champions_against_pandas(online_retail, retail_invoice_table):
    """Revenue share, order value and the RFM action of Champions as of 2011-12-10.

    Only the members' external ids are read from the warehouse; the money comes from
    the CSV: an order per invoice not starting with C, a refund per one that does.
    """
    day = RETAIL_RFM_DAYS[-1]
    with Strata(online_retail) as app:
        an = Analyst(app, as_of=ReferenceTime.parse(day))
        frame = insights(an, "Champions")
        members = set(
            an.members("Champions")
            .inner_join(an.customers(), "customer_id")
            .select("external_id")
            .to_pyarrow()
            .column("external_id")
            .to_pylist()
        )
        tables, _ = run_analysis(
            app, None, "insights", InsightsParams(segment="Champions", as_of=day)
        )
    inv = retail_invoice_table
    inv = inv[inv["at"] < pd.Timestamp(day) + pd.Timedelta(days=1)]
    inside = inv.customer.isin(members)
    share = inv.loc[inside, "revenue"].sum() / inv.revenue.sum()
    orders = inv[inv.is_order]
    in_orders = orders[orders.customer.isin(members)]
    assert len(members) == _row(frame, "size")["value"]
    assert _row(frame, "size")["baseline"] == inv.customer.nunique()
    assert _row(frame, "revenue")["value"] == pytest.approx(share, rel=1e-9)
    aov = _row(frame, "order value")
    assert aov["value"] == pytest.approx(in_orders.revenue.mean(), rel=1e-9)
    assert aov["baseline"] == pytest.approx(orders.revenue.mean(), rel=1e-9)
    action = frame[frame.type == "recommendation"].text.iloc[0]
    assert action.startswith(f"Champions: {ACTIONS['Champions']}.")
    pd.testing.assert_frame_equal(tables["insights"], frame)
