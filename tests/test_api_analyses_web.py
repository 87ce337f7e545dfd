"""The web app's analysis routes: the RFM grid, and the customers behind each chart cell.

Every drill-down must list exactly the customers its cell counts, so each test takes
cells from the aggregate's own answer and checks the list's total (and, over pages,
its customers) against the cell. One generated business (600 customers) with RFM and
two rule segments evaluated as of 2026-03-31 and 2026-06-30 serves every test.
"""

from __future__ import annotations

import pandas as pd
import pytest

from strata.context import Strata
from strata.demo import generate_and_load
from strata.segments.engine import Segments, run_rfm
from strata.segments.nodes import SegmentSpec, parse_rule
from strata.segments.reference import ReferenceTime
from tests.conftest import ApiServer, api_settings

DAYS = ("2026-03-31", "2026-06-30")
AS_OF = DAYS[-1]
RULES = {
    "Big spenders": {"type": "trait", "trait": "total_revenue", "op": "gte", "value": 300},
    "Software": {"type": "attribute", "attribute": "industry", "op": "eq", "value": "Software"},
}


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    settings = api_settings(tmp_path_factory.mktemp("analyses-web"))
    with Strata(settings) as app:
        generate_and_load(app, customers=600, seed=11, end=pd.Timestamp(AS_OF).date())
        segs = Segments(app)
        for name, rule in RULES.items():
            segs.save(SegmentSpec(name=name, rule=parse_rule(rule)), evaluate=False)
        for day in DAYS:
            run_rfm(segs, as_of=ReferenceTime.parse(day))
            segs.refresh(list(RULES), as_of=ReferenceTime.parse(day))
        ws = app.workspace().id
    server = ApiServer(settings)
    yield server, server.user_with_role(ws, "analyst"), f"/api/v1/workspaces/{ws}/analyses"
    server.close()


def _get(client, url: str, **params) -> dict:
    r = client.get(url, params={"as_of": AS_OF, **params})
    assert r.status_code == 200, r.text
    return r.json()


def _all_ids(client, url: str, **params) -> list[str]:
    """Every customer of a drill-down, page after page."""
    ids, offset = [], 0
    while True:
        page = _get(client, url, limit=100, offset=offset, **params)
        ids += [row["external_id"] for row in page["items"]]
        offset += 100
        if offset >= page["total"]:
            return ids


def test_rfm_grid_cells_add_up_and_fm_cells_name_their_segment(shop):
    _, client, base = shop
    grid = _get(client, f"{base}/rfm-grid")
    assert grid["bins"] == 5 and grid["axis"] == "frequency"
    assert sum(c["customers"] for c in grid["cells"]) == grid["customers"] > 0
    assert all(c["segment"] is None for c in grid["cells"])
    fm = _get(client, f"{base}/rfm-grid", axis="fm")
    assert fm["customers"] == grid["customers"]
    champions = [c for c in fm["cells"] if c["recency"] == 5 and c["score"] >= 4]
    assert champions and all(c["segment"] == "Champions" for c in champions)
    # The FM grid is the map the RFM segments were cut from, at the same instant.
    sizes = _get(client, f"{base}/overlap", segments=["Champions", "Lost"])["tables"]["sizes"]
    for row in sizes["rows"]:
        in_grid = sum(c["customers"] for c in fm["cells"] if c["segment"] == row["segment"])
        assert in_grid == row["customers"], row["segment"]
    for cell in fm["cells"]:
        assert cell["average_revenue"] == pytest.approx(
            cell["revenue"] / cell["customers"], abs=0.01
        )


def test_an_rfm_cell_lists_exactly_its_customers(shop):
    _, client, base = shop
    grid = _get(client, f"{base}/rfm-grid")
    cell = max(grid["cells"], key=lambda c: c["customers"])
    url = f"{base}/rfm-grid/customers"
    listed = _all_ids(client, url, recency=cell["recency"], score=cell["score"])
    assert len(listed) == len(set(listed)) == cell["customers"]
    other = _all_ids(client, url, recency=cell["recency"], score=cell["score"] % 5 + 1)
    assert not set(listed) & set(other)


def test_an_overlap_cell_and_an_upset_bar_list_their_customers(shop):
    _, client, base = shop
    chosen = ["Champions", "Big spenders", "Software"]
    answer = _get(client, f"{base}/overlap", segments=chosen)["tables"]
    pair = next(
        r
        for r in answer["matrix"]["rows"]
        if (r["segment_a"], r["segment_b"]) == ("Champions", "Big spenders")
    )
    assert pair["both"] > 0
    url = f"{base}/overlap/customers"
    both = _get(client, url, segments=["Champions", "Big spenders"], limit=1)
    assert both["total"] == pair["both"]
    size = _get(client, url, segments=["Software"], limit=1)
    assert size["total"] == next(
        r["customers"] for r in answer["sizes"]["rows"] if r["segment"] == "Software"
    )
    for bar in answer["intersections"]["rows"]:
        others = [s for s in chosen if s not in bar["members"]]
        exact = _get(client, url, segments=bar["members"], excluding=others, limit=1)
        assert exact["total"] == bar["customers"], bar["combination"]


def test_a_migration_flow_lists_the_customers_who_moved(shop):
    _, client, base = shop
    moves = _get(client, f"{base}/rfm-migration", from_date=DAYS[0])["tables"]["migration"]
    url = f"{base}/rfm-migration/customers"
    assert moves["rows"]
    for move in moves["rows"]:
        page = _get(
            client,
            url,
            from_date=DAYS[0],
            from_segment=move["from_segment"],
            to_segment=move["to_segment"],
            limit=1,
        )
        assert page["total"] == move["customers"], move
    r = client.get(
        url,
        params={"from_date": DAYS[0], "from_segment": "(none)", "to_segment": "(none)"},
    )
    assert r.status_code == 422


def test_a_cohort_cell_lists_the_cohort_customers_who_ordered_then(shop):
    _, client, base = shop
    rows = _get(client, f"{base}/cohorts", period="quarter")["tables"]["cohorts"]["rows"]
    url = f"{base}/cohorts/customers"
    for row in rows[:12]:
        cell = _get(
            client,
            url,
            period="quarter",
            cohort=row["cohort"],
            period_offset=row["period_offset"],
            limit=1,
        )
        assert cell["total"] == row["customers"], row
    whole = _get(client, url, period="quarter", cohort=rows[0]["cohort"], limit=1)
    assert whole["total"] == rows[0]["cohort_size"]


def test_a_sankey_link_and_node_list_their_customers(shop):
    _, client, base = shop
    params = {"segment": "Champions", "steps": 3}
    tables = _get(client, f"{base}/journeys", **params)["tables"]
    url = f"{base}/journeys/customers"
    for link in tables["links"]["rows"][:8]:
        page = _get(
            client,
            url,
            **params,
            step=link["step"],
            source_event=link["source_event"],
            target_event=link["target_event"],
            limit=1,
        )
        assert page["total"] == link["customers"], link
    node = tables["nodes"]["rows"][0]
    page = _get(client, url, **params, step=node["step"], source_event=node["event_type"])
    assert page["total"] == node["customers"]


def test_viewers_see_drilled_customers_masked(shop):
    server, _, base = shop
    ws = int(base.split("/")[4])
    viewer = server.user_with_role(ws, "viewer")
    url = f"{base}/overlap/customers"
    masked = _get(viewer, url, segments=["Champions"], limit=5)["items"]
    plain = _get(shop[1], url, segments=["Champions"], limit=5)["items"]
    assert [r["external_id"] for r in masked] == [r["external_id"] for r in plain]
    assert all(m["email"] != p["email"] for m, p in zip(masked, plain, strict=True))
