"""The web app's segment routes: the list's 30-day sparklines and the builder's pickers.

One generated business (400 customers) whose RFM segments and one rule segment were
evaluated 20 and 5 days ago and today, so their sizes move inside the window.
"""

from __future__ import annotations

import datetime as dt

import pytest

from strata.context import Strata
from strata.demo import generate_and_load
from strata.segments.engine import Segments, run_rfm
from strata.segments.nodes import SegmentSpec, parse_rule
from strata.segments.reference import ReferenceTime
from strata.stats import workspace_stats
from tests.conftest import ApiServer, api_settings

TODAY = dt.datetime.now(dt.UTC).date()
EVALUATED = [TODAY - dt.timedelta(days=20), TODAY - dt.timedelta(days=5), TODAY]
RECENT = {"type": "trait", "trait": "days_since_last_order", "op": "lte", "value": 60}


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    settings = api_settings(tmp_path_factory.mktemp("segments-web"))
    with Strata(settings) as app:
        generate_and_load(app, customers=400, seed=5, end=TODAY)
        segs = Segments(app)
        segs.save(SegmentSpec(name="Recent buyers", rule=parse_rule(RECENT)), evaluate=False)
        for day in EVALUATED:
            ref = ReferenceTime.parse(day.isoformat())
            run_rfm(segs, as_of=ref)
            segs.refresh(["Recent buyers"], as_of=ref)
        ws = app.workspace().id
        stats = workspace_stats(app)
    server = ApiServer(settings)
    yield server.user_with_role(ws, "viewer"), f"/api/v1/workspaces/{ws}/segments", stats
    server.close()


def _get(client, url: str, **params):
    r = client.get(url, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_trends_give_each_segments_size_day_by_day_as_its_history_says(shop):
    client, base, _ = shop
    trends = _get(client, f"{base}/trends", days=30)
    assert trends["days"] == [(TODAY - dt.timedelta(days=29 - i)).isoformat() for i in range(30)]
    listed = _get(client, base, limit=500)["items"]
    assert {t["segment_id"] for t in trends["segments"]} == {s["id"] for s in listed}
    moved = 0
    for segment in listed:
        sizes = next(t["sizes"] for t in trends["segments"] if t["segment_id"] == segment["id"])
        history = _get(client, f"{base}/{segment['id']}/history")
        for day, size in zip(trends["days"], sizes, strict=True):
            # An evaluation "as of" a day is recorded at the end of it.
            known = [h["members"] for h in history if h["as_of"][:10] <= day]
            # Before its first evaluation or creation a segment has no size at all.
            empty = 0 if day >= segment["created_at"][:10] else None
            assert size == (known[-1] if known else empty), (segment["name"], day)
        assert sizes[-1] == segment["customers"]
        assert sizes[0] is None, "every segment here was first evaluated inside the window"
        moved += len({n for n in sizes if n is not None}) > 1
    assert moved > 0, "some segment changed size inside the window"


def test_trends_refuse_a_window_of_one_day(shop):
    client, base, _ = shop
    assert client.get(f"{base}/trends", params={"days": 1}).status_code == 422


def test_fields_list_attributes_and_traits_with_their_kinds_and_the_event_types(shop):
    client, base, stats = shop
    fields = _get(client, f"{base}/fields")
    kinds = {f["name"]: f["kind"] for f in fields["attributes"]}
    assert kinds["country"] == "text" and kinds["company_size"] == "number"
    assert kinds["signup_date"] == "date" and kinds["created_at"] == "timestamp"
    assert "customer_id" not in kinds
    traits = {f["name"]: f["kind"] for f in fields["traits"]}
    assert traits["total_orders"] == "number" and traits["last_order_date"] == "date"
    assert traits["rfm_segment"] == "text"
    events = {e["name"]: e["events"] for e in fields["events"]}
    assert events == stats["events_by_type"]
    assert [e["events"] for e in fields["events"]] == sorted(events.values(), reverse=True)
    # Every kind the list gives is one the preview accepts for that attribute.
    rule = {"type": "attribute", "attribute": "company_size", "op": "gt", "value": 10}
    r = client.post(f"{base}/preview", json={"rule": rule, "sample": 0})
    assert r.status_code == 200, r.text
