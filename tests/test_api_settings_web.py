"""What the web app's settings screen reads that no other screen does: the plans a
workspace may move to, and what each feature means."""

from __future__ import annotations

from strata import plans
from strata.demo import generate_and_load


def test_every_plan_is_listed_cheapest_first_with_its_features_in_words(api):
    ws = api.service.app.workspace("shop", create=True).id
    viewer = api.user_with_role(ws, "viewer")  # every role may read what a plan offers
    r = viewer.get(f"/api/v1/workspaces/{ws}/plans")
    assert r.status_code == 200, r.text
    body = r.json()
    assert [p["name"] for p in body["plans"]] == [
        "starter",
        "growth",
        "professional",
        "enterprise",
        "unlimited",
    ]
    starter = body["plans"][0]
    assert starter == plans.PLANS["starter"].to_dict()
    assert starter["max_segments"] == 5
    assert body["features"]["api_access"] == "API access (workspace API keys)"
    assert set(body["features"]) == set(plans.FEATURES)


def test_icp_criteria_come_back_as_stored_with_the_spread_of_scores(api):
    generate_and_load(api.service.app, customers=150, workspace="shop")
    ws = api.service.app.workspace("shop").id
    owner = api.owner()
    url = f"/api/v1/workspaces/{ws}/settings/icp"
    assert owner.get(url).status_code == 404  # nothing set yet
    criteria = [
        {"on": "country", "in": ["US", "DE"], "weight": 3},
        {"on": "total_revenue", "scale": [0, 2000], "weight": 2, "label": "spends"},
    ]
    put = owner.put(url, json={"criteria": criteria})
    assert put.status_code == 200, put.text
    body = owner.get(url).json()
    stored = body["config"]["criteria"]
    assert stored[0]["in"] == ["US", "DE"] and stored[0]["weight"] == 3
    assert stored[1]["scale"] == [0, 2000] and stored[1]["label"] == "spends"
    assert body["criteria"][1] == {"on": "total_revenue", "weight": 2.0, "rule": "spends"}
    assert sum(b["customers"] for b in body["bands"]) == body["customers"] == 150
    assert 0 <= body["average"] <= 100
