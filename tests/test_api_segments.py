"""The segment routes, over real HTTP, on a generated business of 400 customers."""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass

import pytest

from strata.demo import generate_and_load
from tests.conftest import ApiServer, api_settings

MANY_ORDERS = {"type": "trait", "trait": "total_orders", "op": "gte", "value": 3}
SOME_ORDERS = {"type": "trait", "trait": "total_orders", "op": "gte", "value": 1}


@dataclass
class Shop:
    server: ApiServer
    owner: object
    ws: int
    base: str
    other_base: str


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """One server and workspace with data for the whole module (generating takes seconds)."""
    server = ApiServer(api_settings(tmp_path_factory.mktemp("api-segments")))
    try:
        owner = server.owner()
        ws = owner.post("/api/v1/workspaces", json={"name": "shop"}).json()["id"]
        other = owner.post("/api/v1/workspaces", json={"name": "other"}).json()["id"]
        with server.service.writing() as app:
            generate_and_load(app, customers=400, workspace="shop")
        yield Shop(server, owner, ws, f"/api/v1/workspaces/{ws}", f"/api/v1/workspaces/{other}")
    finally:
        server.close()


def create(shop: Shop, name: str, rule: dict, **extra) -> dict:
    r = shop.owner.post(f"{shop.base}/segments", json={"name": name, "rule": rule, **extra})
    assert r.status_code == 201, r.text
    return r.json()


def wait(client, base: str, job: dict, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(f"{base}/jobs/{job['id']}")
        assert r.status_code == 200, r.text
        if r.json()["status"] in {"succeeded", "failed", "interrupted"}:
            return r.json()
        assert time.monotonic() < deadline, f"job {job['id']} still {r.json()['status']}"
        time.sleep(0.05)


def test_preview_create_read_change_and_delete_a_segment(shop):
    before = shop.owner.get(f"{shop.base}/segments").json()["total"]
    r = shop.owner.post(f"{shop.base}/segments/preview", json={"rule": MANY_ORDERS, "sample": 3})
    assert r.status_code == 200, r.text
    preview = r.json()
    assert preview["count"] > 0 and len(preview["sample"]) == 3
    assert shop.owner.get(f"{shop.base}/segments").json()["total"] == before  # nothing saved

    seg = create(shop, "Repeat buyers", MANY_ORDERS, description="three orders or more")
    assert seg["customers"] == preview["count"] == seg["evaluation"]["members"]
    assert seg["kind"] == "rule" and seg["rule"]["trait"] == "total_orders"

    got = shop.owner.get(f"{shop.base}/segments/{seg['id']}")
    assert got.status_code == 200 and got.json()["customers"] == seg["customers"]
    listed = shop.owner.get(f"{shop.base}/segments", params={"kind": "rule"}).json()
    assert seg["id"] in [s["id"] for s in listed["items"]]

    r = shop.owner.patch(
        f"{shop.base}/segments/{seg['id']}", json={"rule": SOME_ORDERS, "name": "Buyers"}
    )
    assert r.status_code == 200, r.text
    changed = r.json()
    assert changed["name"] == "Buyers" and changed["description"] == "three orders or more"
    assert changed["customers"] > seg["customers"]
    assert changed["evaluation"]["joined"] == changed["customers"] - seg["customers"]
    r = shop.owner.patch(f"{shop.base}/segments/{seg['id']}", json={"description": "any order"})
    assert r.status_code == 200 and r.json()["review_status"] == "approved"
    versions = shop.owner.get(f"{shop.base}/versions/segments/{seg['id']}").json()
    assert [v["snapshot"]["description"] for v in versions] == [
        "three orders or more",  # created
        "three orders or more",  # new rule
        "three orders or more",  # renamed
        "any order",
    ]

    assert shop.owner.delete(f"{shop.base}/segments/{seg['id']}").status_code == 204
    assert shop.owner.get(f"{shop.base}/segments/{seg['id']}").status_code == 404


def test_a_second_segment_of_the_same_name_is_a_conflict(shop):
    create(shop, "Twice", MANY_ORDERS)
    r = shop.owner.post(f"{shop.base}/segments", json={"name": "Twice", "rule": MANY_ORDERS})
    assert r.status_code == 409
    assert "already exists" in r.json()["detail"]


def test_members_come_in_pages_and_viewers_see_them_masked(shop):
    seg = create(shop, "Paged", SOME_ORDERS)
    url = f"{shop.base}/segments/{seg['id']}/members"
    page = shop.owner.get(url, params={"limit": 5, "offset": 5}).json()
    assert (page["total"], page["limit"], page["offset"]) == (seg["customers"], 5, 5)
    assert len(page["items"]) == 5
    first = shop.owner.get(url, params={"limit": 5}).json()["items"]
    assert {m["customer_id"] for m in first}.isdisjoint(m["customer_id"] for m in page["items"])

    analyst = shop.server.user_with_role(shop.ws, "analyst")
    seen = analyst.get(url, params={"limit": 5}).json()["items"]
    assert seen == first
    assert all("***" not in m["email"] and "@" in m["email"] for m in seen if m["email"])

    viewer = shop.server.user_with_role(shop.ws, "viewer")
    masked = viewer.get(url, params={"limit": 5}).json()["items"]
    for plain, hidden in zip(first, masked, strict=True):
        assert hidden["external_id"] == plain["external_id"]
        if plain["email"]:
            local, domain = plain["email"].split("@")
            assert hidden["email"] == f"{local[0]}***@{domain}"
        if plain["name"]:
            assert hidden["name"] == plain["name"][0] + "***"
    sample = viewer.post(f"{shop.base}/segments/preview", json={"rule": SOME_ORDERS}).json()
    assert all(s["email"] is None or "***@" in s["email"] for s in sample["sample"])


def test_viewers_may_not_create_change_refresh_or_export(shop):
    seg = create(shop, "Viewers look", MANY_ORDERS)
    viewer = shop.server.user_with_role(shop.ws, "viewer")
    r = viewer.post(f"{shop.base}/segments", json={"name": "Mine", "rule": MANY_ORDERS})
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("application/problem+json")
    assert viewer.patch(f"{shop.base}/segments/{seg['id']}", json={}).status_code == 403
    assert viewer.post(f"{shop.base}/segments/{seg['id']}/refresh").status_code == 403
    assert viewer.get(f"{shop.base}/segments/{seg['id']}/members.csv").status_code == 403
    assert viewer.get(f"{shop.base}/segments/{seg['id']}").status_code == 200


def test_a_rule_that_does_not_parse_answers_422_with_the_reason(shop):
    bad = {"type": "attribute", "attribute": "country", "op": "eq", "valeu": "US"}
    for method, path, body in [
        ("post", "/segments", {"name": "Bad", "rule": bad}),
        ("post", "/segments/preview", {"rule": bad}),
        ("post", "/segments/preview", {"rule": {"type": "nonsense"}}),
    ]:
        r = getattr(shop.owner, method)(shop.base + path, json=body)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["detail"].startswith("invalid segment rule:")
    unknown = {"type": "attribute", "attribute": "shoe_size", "op": "eq", "value": 4}
    r = shop.owner.post(f"{shop.base}/segments/preview", json={"rule": unknown})
    assert r.status_code == 422 and "shoe_size" in r.json()["detail"]
    assert shop.owner.get(f"{shop.base}/segments", params={"kind": "rule"}).status_code == 200
    r = shop.owner.post(f"{shop.base}/segments", json={"name": "No rule"})
    assert r.status_code == 422 and "rule" in r.json()["detail"]


def test_explain_by_customer_id_or_email(shop):
    seg = create(shop, "Explained", MANY_ORDERS)
    member = shop.owner.get(f"{shop.base}/segments/{seg['id']}/members").json()["items"][0]
    r = shop.owner.get(f"{shop.base}/segments/{seg['id']}/explain/{member['external_id']}")
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["member"] is True and data["matches"] is True
    assert data["why"]["holds"] is True and "total orders" in data["text"]
    by_mail = shop.owner.get(f"{shop.base}/segments/{seg['id']}/explain/{member['email']}")
    assert by_mail.json()["member"] is True
    r = shop.owner.get(f"{shop.base}/segments/{seg['id']}/explain/nobody-here")
    assert r.status_code == 404 and "nobody-here" in r.json()["detail"]


def test_viewers_see_explanations_with_personal_values_masked(shop):
    rule = {"type": "attribute", "attribute": "email", "op": "contains", "value": "@"}
    seg = create(shop, "Has mail", rule)
    member = shop.owner.get(f"{shop.base}/segments/{seg['id']}/members").json()["items"][0]
    viewer = shop.server.user_with_role(shop.ws, "viewer")
    data = viewer.get(f"{shop.base}/segments/{seg['id']}/explain/{member['external_id']}").json()
    assert data["member"] is True
    assert data["why"]["value"] != member["email"] and "***@" in data["why"]["value"]
    assert member["email"] not in data["text"]


def test_history_grows_with_each_refresh_job(shop):
    seg = create(shop, "Refreshed", SOME_ORDERS, as_of="2020-01-01")
    assert seg["pinned_as_of"] == "2020-01-01" and seg["customers"] == 0
    r = shop.owner.post(f"{shop.base}/segments/{seg['id']}/refresh", json={"as_of": "now"})
    assert r.status_code == 202, r.text
    job = wait(shop.owner, shop.base, r.json())
    assert job["status"] == "succeeded", job["message"]
    [done] = job["result"]["refreshed"]
    assert done["segment"] == "Refreshed" and done["joined"] == done["members"] > 0

    history = shop.owner.get(f"{shop.base}/segments/{seg['id']}/history").json()
    assert history[-1]["members"] == done["members"]
    again = shop.owner.get(f"{shop.base}/segments/{seg['id']}").json()
    assert again["customers"] == done["members"] and again["pinned_as_of"] is None

    r = shop.owner.post(f"{shop.base}/segments/refresh", json={"names": ["Refreshed"]})
    assert r.status_code == 202
    job = wait(shop.owner, shop.base, r.json())
    assert job["status"] == "succeeded" and len(job["result"]["refreshed"]) == 1
    r = shop.owner.post(f"{shop.base}/segments/refresh", json={"names": ["No such"]})
    assert r.status_code == 404
    r = shop.owner.post(f"{shop.base}/segments/refresh")
    job = wait(shop.owner, shop.base, r.json())
    assert job["status"] == "succeeded" and len(job["result"]["refreshed"]) >= 1


def test_members_download_as_csv_with_their_personal_data(shop):
    seg = create(shop, "Exported", SOME_ORDERS)
    marketer = shop.server.user_with_role(shop.ws, "marketer")
    r = marketer.get(f"{shop.base}/segments/{seg['id']}/members.csv")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == seg["customers"]
    assert {"external_id", "email", "name", "phone", "joined_at"} <= set(rows[0])
    assert len({row["external_id"] for row in rows}) == len(rows)
    assert any("@" in row["email"] and "***" not in row["email"] for row in rows)


def test_exported_text_that_a_spreadsheet_would_run_is_defused(shop):
    import pyarrow as pa

    from strata.warehouse import Batch

    evil = '=HYPERLINK("http://example.invalid","click")'
    with shop.server.service.writing() as app:
        app.warehouse.load(shop.ws, Batch(pa.table({"external_id": ["X-EVIL"], "name": [evil]})))
    r = shop.owner.post(
        f"{shop.base}/segments",
        json={"name": "Evil", "kind": "static", "customers": ["X-EVIL"]},
    )
    assert r.status_code == 201, r.text
    rows = list(
        csv.DictReader(
            io.StringIO(shop.owner.get(f"{shop.base}/segments/{r.json()['id']}/members.csv").text)
        )
    )
    assert [row["name"] for row in rows] == ["'" + evil]


def test_static_segments_take_a_list_of_ids_or_emails(shop):
    members = shop.owner.get(
        f"{shop.base}/segments/{create(shop, 'Source', SOME_ORDERS)['id']}/members",
        params={"limit": 3},
    ).json()["items"]
    values = [members[0]["external_id"], members[1]["email"].upper(), "C-NOT-THERE"]
    r = shop.owner.post(
        f"{shop.base}/segments", json={"name": "Guests", "kind": "static", "customers": values}
    )
    assert r.status_code == 201, r.text
    seg = r.json()
    assert seg["kind"] == "static" and seg["customers"] == 2
    assert (seg["unmatched"], seg["unmatched_sample"]) == (1, ["C-NOT-THERE"])
    r = shop.owner.patch(
        f"{shop.base}/segments/{seg['id']}",
        json={"customers": [members[2]["external_id"]], "mode": "append"},
    )
    assert r.status_code == 200 and r.json()["customers"] == 3
    r = shop.owner.patch(f"{shop.base}/segments/{seg['id']}", json={"rule": SOME_ORDERS})
    assert r.status_code == 422 and "static" in r.json()["detail"]


def test_a_segment_used_by_another_cannot_be_deleted_or_renamed(shop):
    base_seg = create(shop, "Base", MANY_ORDERS)
    create(shop, "Uses base", {"type": "in_segment", "segment": "Base"})
    r = shop.owner.delete(f"{shop.base}/segments/{base_seg['id']}")
    assert r.status_code == 409 and "Uses base" in r.json()["detail"]
    r = shop.owner.patch(f"{shop.base}/segments/{base_seg['id']}", json={"name": "Renamed"})
    assert r.status_code == 409
    assert shop.owner.get(f"{shop.base}/segments/{base_seg['id']}").json()["name"] == "Base"


def test_other_workspace_ids_answer_404(shop):
    seg = create(shop, "Mine only", MANY_ORDERS)
    other, sid = shop.other_base, seg["id"]
    owner = shop.owner
    answers = [
        owner.get(f"{other}/segments/{sid}"),
        owner.patch(f"{other}/segments/{sid}", json={"description": "x"}),
        owner.delete(f"{other}/segments/{sid}"),
        owner.get(f"{other}/segments/{sid}/members"),
        owner.get(f"{other}/segments/{sid}/members.csv"),
        owner.get(f"{other}/segments/{sid}/explain/anyone"),
        owner.get(f"{other}/segments/{sid}/history"),
        owner.post(f"{other}/segments/{sid}/refresh"),
    ]
    assert [r.status_code for r in answers] == [404] * len(answers)
    assert owner.get(f"{shop.base}/segments/{sid}").status_code == 200
    assert owner.get(f"{shop.base}/segments/{2**31}").status_code == 422
