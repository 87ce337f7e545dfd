"""What the web app's segment and customer screens ask of the customers routes, through
real HTTP: a segment's members searched and ordered, and a customer's events page by page."""

from __future__ import annotations

import pytest

from tests.test_api_customers import Shop, _buyer, _load, _wait, _workspace


@pytest.fixture
def shop(api) -> Shop:
    owner = api.owner()
    ws = _workspace(owner, "shop")
    _load(api, "shop")
    _wait(
        owner, Shop(owner, ws, "shop"), owner.post(f"/api/v1/workspaces/{ws}/rfm", json={}).json()
    )
    return Shop(owner, ws, "shop")


def _largest_segment(shop: Shop) -> dict:
    segments = shop.owner.get(shop.url("/segments"), params={"limit": 100}).json()["items"]
    return max(segments, key=lambda s: s["customers"] or 0)


def test_a_segments_members_are_searched_and_ordered_like_its_member_list(shop):
    o = shop.owner
    seg = _largest_segment(shop)
    members = o.get(shop.url(f"/segments/{seg['id']}/members"), params={"limit": 500}).json()
    listed = o.get(shop.url("/customers"), params={"segment": seg["id"], "limit": 500}).json()
    assert listed["total"] == members["total"] == seg["customers"] > 10
    assert [c["external_id"] for c in listed["items"]] == [
        m["external_id"] for m in members["items"]
    ]
    assert all(c["joined"] for c in listed["items"])

    last = members["items"][-1]
    found = o.get(shop.url("/customers"), params={"segment": seg["id"], "q": last["name"]}).json()
    assert last["external_id"] in [c["external_id"] for c in found["items"]]
    assert found["total"] < members["total"]

    by_name = o.get(
        shop.url("/customers"),
        params={"segment": seg["id"], "sort": "name", "order": "desc", "limit": 500},
    ).json()["items"]
    names = [c["name"] for c in by_name]
    assert names == sorted(names, reverse=True) and names != [m["name"] for m in members["items"]]


def test_ordering_by_join_time_needs_a_segment_and_viewers_cannot_order_by_personal_data(api, shop):
    o = shop.owner
    assert o.get(shop.url("/customers"), params={"sort": "joined"}).status_code == 422
    assert o.get(shop.url("/customers"), params={"sort": "shoe_size"}).status_code == 422
    assert o.get(shop.url("/customers"), params={"segment": 999999}).status_code == 404
    viewer = api.user_with_role(shop.id, "viewer")
    refused = viewer.get(shop.url("/customers"), params={"sort": "email"})
    assert refused.status_code == 403 and "personal" in refused.json()["detail"]
    assert viewer.get(shop.url("/customers"), params={"sort": "country"}).status_code == 200


def test_a_customers_events_come_newest_first_page_by_page(shop):
    o = shop.owner
    ext = _buyer(shop)["external_id"]
    profile = o.get(shop.url(f"/customers/{ext}"), params={"timeline": 1000}).json()
    first = o.get(shop.url(f"/customers/{ext}/events"), params={"limit": 3}).json()
    assert first["total"] == profile["events"] > 3
    assert first["items"] == profile["timeline"][:3]
    second = o.get(shop.url(f"/customers/{ext}/events"), params={"limit": 3, "offset": 3}).json()
    assert second["items"] == profile["timeline"][3:6]

    orders = o.get(shop.url(f"/customers/{ext}/events"), params={"event_type": "order"}).json()
    assert orders["total"] == profile["orders"]
    assert all(e["event_type"] == "order" and e["lines"] for e in orders["items"])
    assert o.get(shop.url("/customers/nobody/events")).status_code == 404


def test_the_customers_behind_a_breakdowns_bar_are_its_count(api, shop):
    o = shop.owner
    seg = _largest_segment(shop)
    for attribute in ("country", "industry"):
        answer = o.get(
            shop.url("/analyses/breakdown"),
            params={"segment": seg["id"], "attribute": attribute, "limit": 50},
        ).json()
        for bar in answer["tables"]["breakdown"]["rows"]:
            if bar["value"] == "(other)":
                continue
            value = {} if bar["value"] == "(missing)" else {"value": bar["value"]}
            behind = o.get(
                shop.url("/customers"),
                params={"segment": seg["id"], "attribute": attribute, **value},
            ).json()
            assert behind["total"] == bar["segment_customers"], (attribute, bar["value"])
    assert o.get(shop.url("/customers"), params={"attribute": "shoe_size"}).status_code == 422
    assert o.get(shop.url("/customers"), params={"attribute": "company_size"}).status_code == 422
    viewer = api.user_with_role(shop.id, "viewer")
    assert viewer.get(shop.url("/customers"), params={"attribute": "email"}).status_code == 403
