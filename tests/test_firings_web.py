"""Automation firings name their customers by external id too, so a screen can link each
firing to the customer's profile. A generated business (300 customers) where "Big
spenders" gains members between two evaluations gives an automation firings to list.
"""

from __future__ import annotations

import datetime as dt

import pytest

from strata.actions.automations import Automations, external_ids
from strata.context import Strata
from strata.demo import generate_and_load
from strata.segments.engine import Segments
from strata.segments.nodes import SegmentSpec, parse_rule
from strata.segments.reference import ReferenceTime
from tests.conftest import ApiServer, api_settings

END = dt.date(2026, 6, 30)
BIG_SPENDERS = {"type": "trait", "trait": "total_revenue", "op": "gte", "value": 300}


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    settings = api_settings(tmp_path_factory.mktemp("firings-web"))
    with Strata(settings) as app:
        generate_and_load(app, customers=300, seed=5, end=END)
        segs = Segments(app)
        spec = SegmentSpec(name="Big spenders", rule=parse_rule(BIG_SPENDERS))
        segs.save(spec, as_of=ReferenceTime.parse("2026-01-31"))
        auto = Automations(app, segs.ws).create(
            "welcome", "Big spenders", "enter", {"kind": "tag", "tag": "big"}
        )
        segs.refresh(["Big spenders"], as_of=ReferenceTime.parse(str(END)))
        customers = app.warehouse.table(segs.ws.id, "customers")
        rows = customers.select("customer_id", "external_id").to_pyarrow().to_pylist()
        known = {r["customer_id"]: r["external_id"] for r in rows}
        ws = segs.ws.id
    server = ApiServer(settings)
    client = server.user_with_role(ws, "viewer")
    yield client, f"/api/v1/workspaces/{ws}", auto.id, known
    server.close()


def test_every_firing_names_its_customer_by_external_id_page_after_page(shop):
    client, base, automation_id, known = shop
    url = f"{base}/automations/{automation_id}/firings"
    seen, offset = [], 0
    while True:
        page = client.get(url, params={"limit": 7, "offset": offset}).json()
        seen += page["items"]
        offset += 7
        if offset >= page["total"]:
            break
    assert len(seen) == page["total"] > 7
    for firing in seen:
        assert firing["external_id"] == known[firing["customer_id"]], firing
    everything = client.get(f"{base}/firings", params={"limit": 500}).json()["items"]
    assert {f["id"]: f["external_id"] for f in everything} == {
        f["id"]: f["external_id"] for f in seen
    }


def test_external_ids_are_looked_up_together_and_skip_unknown_customers(tmp_path):
    with Strata(api_settings(tmp_path)) as app:
        generate_and_load(app, customers=20, seed=5, end=END)
        ws = app.workspace().id
        customers = app.warehouse.table(ws, "customers")
        first = customers.order_by("customer_id").limit(2).to_pyarrow().to_pylist()
        ids = [r["customer_id"] for r in first]
        found = external_ids(app, ws, [*ids, ids[0], 10**9])
        assert found == {r["customer_id"]: r["external_id"] for r in first}
        assert external_ids(app, ws, []) == {}
