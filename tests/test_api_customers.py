"""Customers and segment settings through real HTTP: search, profiles, history, predictions,
masking for viewers; the RFM grid, tier sets and ICP criteria."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from strata.demo import generate_and_load

RFM_NAMES = {"Champions", "Loyal Customers", "Lost", "Hibernating", "At Risk"}


@dataclass
class Shop:
    owner: object
    id: int
    name: str

    def url(self, path: str) -> str:
        return f"/api/v1/workspaces/{self.id}{path}"


def _workspace(client, name: str) -> int:
    r = client.post("/api/v1/workspaces", json={"name": name})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _load(api, name: str, customers: int = 300, seed: int = 7) -> None:
    with api.service.writing() as app:
        generate_and_load(app, customers=customers, seed=seed, workspace=name)


@pytest.fixture
def shop(api) -> Shop:
    owner = api.owner()
    ws = _workspace(owner, "shop")
    _load(api, "shop")
    return Shop(owner, ws, "shop")


def _wait(client, shop: Shop, job: dict, seconds: float = 30) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        body = client.get(shop.url(f"/jobs/{job['id']}")).json()
        if body["status"] in {"succeeded", "failed", "interrupted"}:
            assert body["status"] == "succeeded", body["message"]
            return body["result"]
        assert time.monotonic() < deadline, f"job still {body['status']}"
        time.sleep(0.05)


def _buyer(shop: Shop) -> dict:
    """A customer with orders and an e-mail."""
    for c in shop.owner.get(shop.url("/customers"), params={"limit": 50}).json()["items"]:
        p = shop.owner.get(shop.url(f"/customers/{c['external_id']}"), params={"timeline": 0})
        if p.json()["orders"] > 1 and c["email"]:
            return c
    raise AssertionError("no customer with orders among the first 50")


# -- customers --------------------------------------------------------------------------------
def test_search_finds_customers_by_id_email_or_name_page_by_page(shop):
    o = shop.owner
    everyone = o.get(shop.url("/customers"), params={"limit": 10}).json()
    assert everyone["total"] == 300 and len(everyone["items"]) == 10
    first = everyone["items"][0]
    assert {"external_id", "email", "name", "customer_id"} <= set(first)

    by_id = o.get(shop.url("/customers"), params={"q": first["external_id"]}).json()
    assert [c["external_id"] for c in by_id["items"]] == [first["external_id"]]
    local = first["email"].split("@")[0].upper()  # any case
    by_email = o.get(shop.url("/customers"), params={"q": local}).json()
    assert first["external_id"] in [c["external_id"] for c in by_email["items"]]
    surname = first["name"].split()[-1].lower()
    by_name = o.get(shop.url("/customers"), params={"q": surname}).json()
    assert all(surname in c["name"].lower() for c in by_name["items"])
    assert first["external_id"] in [c["external_id"] for c in by_name["items"]]
    # Wildcards are plain characters, never patterns.
    assert o.get(shop.url("/customers"), params={"q": "%"}).json()["total"] == 0
    second = o.get(shop.url("/customers"), params={"limit": 10, "offset": 10}).json()
    assert second["items"][0]["customer_id"] > everyone["items"][-1]["customer_id"]
    assert o.get(shop.url("/customers"), params={"q": "x" * 201}).status_code == 422


def test_profile_has_totals_timeline_segments_and_predictions(shop):
    o = shop.owner
    buyer = _buyer(shop)
    ext = buyer["external_id"]
    p = o.get(shop.url(f"/customers/{ext}"), params={"timeline": 3}).json()
    assert p["customer"]["external_id"] == ext
    assert p["customer"]["email"] == buyer["email"]
    assert p["orders"] > 1 and p["net_revenue"] != 0
    assert 1 <= len(p["timeline"]) <= 3
    times = [e["timestamp"] for e in p["timeline"]]
    assert times == sorted(times, reverse=True)
    assert {"event_type", "revenue", "order_id"} <= set(p["timeline"][0])

    job = o.post(shop.url("/rfm"), json={})
    assert job.status_code == 202
    rfm = _wait(o, shop, job.json())
    assert rfm["customers"] > 100 and len(rfm["segments"]) == 11
    history = o.get(shop.url(f"/customers/{ext}/segments")).json()
    assert history["external_id"] == ext
    current = [h for h in history["segments"] if h["left"] is None]
    assert current and all(h["joined"] for h in current)
    assert history["rfm"]["segment"] in {h["segment"] for h in current}

    predictions = o.get(shop.url(f"/customers/{ext}/predictions")).json()
    assert predictions["external_id"] == ext
    assert isinstance(predictions["predictions"], list)
    for row in predictions["predictions"]:
        assert {"prediction_type", "value", "model_version"} <= set(row)


def test_viewers_see_personal_data_masked_analysts_in_clear(api, shop):
    buyer = _buyer(shop)
    ext, email = buyer["external_id"], buyer["email"]
    viewer = api.user_with_role(shop.id, "viewer")
    analyst = api.user_with_role(shop.id, "analyst")

    seen = viewer.get(shop.url(f"/customers/{ext}")).json()["customer"]
    assert seen["external_id"] == ext
    assert seen["email"] != email and "***" in seen["email"]
    assert seen["name"] != buyer["name"]
    listed = viewer.get(shop.url("/customers"), params={"q": ext}).json()["items"]
    assert listed[0]["email"] != email and "***" in listed[0]["email"]
    assert email not in viewer.get(shop.url("/customers"), params={"limit": 500}).text
    # Searching by e-mail would read hidden values back letter by letter: ids only.
    assert viewer.get(shop.url("/customers"), params={"q": email}).json()["total"] == 0
    assert viewer.get(shop.url(f"/customers/{email}/segments")).status_code == 404

    clear = analyst.get(shop.url(f"/customers/{ext}")).json()["customer"]
    assert clear["email"] == email and clear["name"] == buyer["name"]
    found = analyst.get(shop.url("/customers"), params={"q": email}).json()["items"]
    assert [c["external_id"] for c in found] == [ext]


def test_unknown_customers_and_customers_of_another_workspace_answer_404(api, shop, tmp_path):
    from strata.ingest.pipeline import run_import

    o = shop.owner
    other = _workspace(o, "other")
    path = tmp_path / "customers.csv"
    path.write_text("customer_id,email\nONLY-THERE,only@example.com\n")
    with api.service.writing() as app:
        run_import(app, path, workspace="other")
    there = f"/api/v1/workspaces/{other}/customers/ONLY-THERE"
    assert o.get(there).status_code == 200
    for path in ("", "/segments", "/predictions"):
        assert o.get(shop.url(f"/customers/ONLY-THERE{path}")).status_code == 404
        assert o.get(shop.url(f"/customers/NOPE{path}")).status_code == 404
    assert o.get(shop.url("/customers"), params={"q": "ONLY-THERE"}).json()["total"] == 0
    r = o.get(shop.url("/customers/NOPE"))
    assert r.headers["content-type"].startswith("application/problem+json")
    assert o.get(f"/api/v1/workspaces/{shop.id + 100}/customers").status_code == 404
    assert o.get(shop.url("/customers/x"), params={"timeline": 5000}).status_code == 422
    empty = _workspace(o, "empty")
    listed = o.get(f"/api/v1/workspaces/{empty}/customers").json()
    assert (listed["total"], listed["items"]) == (0, [])


# -- segment settings -------------------------------------------------------------------------
def test_rfm_grid_is_set_checked_and_reset(api, shop):
    o = shop.owner
    standard = o.get(shop.url("/settings/rfm")).json()
    assert standard["standard"] is True and standard["bins"] == 5 and len(standard["map"]) == 11

    grid = {
        "bins": 3,
        "map": {
            "Best": ["3:3"],
            "Promising": ["3:1-2"],
            "Steady": ["2:2-3"],
            "Slipping": ["1:3", "2:1"],
            "Gone": ["1:1-2"],
        },
    }
    r = o.put(shop.url("/settings/rfm"), json=grid)
    assert r.status_code == 202 and r.json()["kind"] == "rfm"
    result = _wait(o, shop, r.json())
    assert [s["name"] for s in result["segments"]] == list(grid["map"])
    stored = o.get(shop.url("/settings/rfm")).json()
    assert (stored["bins"], stored["standard"]) == (3, False)

    gap = {"bins": 3, "map": {"Best": ["3:3"]}}
    r = o.put(shop.url("/settings/rfm"), json=gap)
    assert r.status_code == 422 and "no segment" in r.json()["detail"]
    assert o.get(shop.url("/settings/rfm")).json()["bins"] == 3  # the refused grid is not kept

    viewer = api.user_with_role(shop.id, "viewer")
    assert viewer.get(shop.url("/settings/rfm")).status_code == 200
    assert viewer.put(shop.url("/settings/rfm"), json=grid).status_code == 403
    assert viewer.delete(shop.url("/settings/rfm")).status_code == 403
    assert viewer.post(shop.url("/rfm")).status_code == 403

    r = o.delete(shop.url("/settings/rfm"))
    assert r.status_code == 202
    assert len(_wait(o, shop, r.json())["segments"]) == 11
    assert o.get(shop.url("/settings/rfm")).json()["standard"] is True
    assert o.post(shop.url("/rfm"), json={"as_of": "yesterday"}).status_code == 422


def test_tier_sets_are_created_listed_and_deleted(api, shop):
    o = shop.owner
    body = {
        "on": "total_revenue",
        "tiers": [
            {"name": "Bronze", "max": 100},
            {"name": "Silver", "max": 1000},
            {"name": "Gold"},
        ],
    }
    r = o.put(shop.url("/tiers/value"), json=body)
    assert r.status_code == 202 and r.json()["kind"] == "tiers"
    result = _wait(o, shop, r.json())
    assert [s["segment"] for s in result["segments"]] == ["Bronze", "Silver", "Gold"]
    assert sum(s["members"] for s in result["segments"]) > 0
    listed = o.get(shop.url("/tiers")).json()
    assert listed["total"] == 1
    assert listed["items"][0]["name"] == "value"
    assert listed["items"][0]["rules"][1] == "Silver: 100 < total_revenue ≤ 1000"

    overlap = {"on": "total_revenue", "tiers": [{"name": "A", "max": 10}, {"name": "B", "max": 5}]}
    assert o.put(shop.url("/tiers/value"), json=overlap).status_code == 422
    viewer = api.user_with_role(shop.id, "viewer")
    assert viewer.get(shop.url("/tiers")).status_code == 200
    assert viewer.put(shop.url("/tiers/value"), json=body).status_code == 403
    assert viewer.delete(shop.url("/tiers/value")).status_code == 403

    assert o.delete(shop.url("/tiers/value")).status_code == 204
    assert o.get(shop.url("/tiers")).json()["total"] == 0
    assert o.delete(shop.url("/tiers/value")).status_code == 404


def test_icp_criteria_are_set_and_shown(api, shop):
    o = shop.owner
    assert o.get(shop.url("/settings/icp")).status_code == 404
    criteria = {
        "criteria": [
            {"on": "plan", "map": {"pro": 1, "basic": 0.5}, "weight": 2},
            {"on": "total_revenue", "scale": [0, 500]},
        ]
    }
    r = o.put(shop.url("/settings/icp"), json=criteria)
    assert r.status_code == 200, r.text
    summary = r.json()
    assert summary["customers"] == 300
    assert sum(b["customers"] for b in summary["bands"]) == 300
    assert [c["on"] for c in summary["criteria"]] == ["plan", "total_revenue"]
    shown = o.get(shop.url("/settings/icp")).json()
    assert shown["average"] == summary["average"]
    assert shown["config"]["criteria"][0]["map"] == {"pro": 1, "basic": 0.5}

    r = o.put(shop.url("/settings/icp"), json={"criteria": [{"on": "no_such_field", "exists": 1}]})
    assert r.status_code == 422
    both = {"criteria": [{"on": "plan", "exists": True, "range": [1, 2]}]}
    assert o.put(shop.url("/settings/icp"), json=both).status_code == 422
    assert o.get(shop.url("/settings/icp")).json()["average"] == summary["average"]

    viewer = api.user_with_role(shop.id, "viewer")
    assert viewer.get(shop.url("/settings/icp")).status_code == 200
    assert viewer.put(shop.url("/settings/icp"), json=criteria).status_code == 403
