"""The model routes, over real HTTP: each fit is a job, fitted once for the module."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest

from strata.demo import generate_and_load
from tests.conftest import ApiServer, api_settings

HIGH_MEDIUM_LOW = ("high", "medium", "low")


@dataclass
class Fitted:
    server: ApiServer
    owner: object
    ws: int
    base: str
    other_base: str
    jobs: dict[str, dict] = field(default_factory=dict)


def wait(client, base: str, job: dict, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(f"{base}/jobs/{job['id']}")
        assert r.status_code == 200, r.text
        if r.json()["status"] in {"succeeded", "failed", "interrupted"}:
            return r.json()
        assert time.monotonic() < deadline, f"job {job['id']} still {r.json()['status']}"
        time.sleep(0.05)


def run(client, base: str, path: str, body: dict) -> dict:
    r = client.post(f"{base}{path}", json=body)
    assert r.status_code == 202, r.text
    assert r.json()["status"] in {"queued", "running", "succeeded"}
    return wait(client, base, r.json())


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """A workspace of 400 generated customers with clusters, CLV and churn fitted once."""
    server = ApiServer(api_settings(tmp_path_factory.mktemp("api-models")))
    try:
        owner = server.owner()
        ws = owner.post("/api/v1/workspaces", json={"name": "shop"}).json()["id"]
        other = owner.post("/api/v1/workspaces", json={"name": "other"}).json()["id"]
        with server.service.writing() as app:
            generate_and_load(app, customers=400, workspace="shop")
        fitted = Fitted(
            server, owner, ws, f"/api/v1/workspaces/{ws}", f"/api/v1/workspaces/{other}"
        )
        analyst = server.user_with_role(ws, "analyst")
        fitted.jobs["cluster"] = run(analyst, fitted.base, "/models/clusters", {"k": 4})
        fitted.jobs["clv"] = run(analyst, fitted.base, "/predictions/clv", {})
        fitted.jobs["churn"] = run(analyst, fitted.base, "/predictions/churn", {})
        yield fitted
    finally:
        server.close()


def test_a_cluster_job_fits_and_the_clusters_can_be_read(shop):
    job = shop.jobs["cluster"]
    assert job["status"] == "succeeded", job["message"]
    assert job["kind"] == "cluster" and job["params"]["k"] == 4 and job["progress"] == 1.0
    assert job["result"]["k"] == 4 and job["result"]["model_version"] == "behaviour@1"

    r = shop.owner.get(f"{shop.base}/clusters")
    assert r.status_code == 200, r.text
    clusters = r.json()
    assert clusters["model_version"] == "behaviour@1" and clusters["k"] == 4
    assert len(clusters["clusters"]) == 4
    assert sum(c["customers"] for c in clusters["clusters"]) == job["result"]["customers"]
    for c in clusters["clusters"]:
        assert c["name"] and c["description"] and c["profile"]
        seg = shop.owner.get(f"{shop.base}/segments/{c['segment_id']}").json()
        assert seg["kind"] == "cluster" and seg["customers"] == c["customers"]
    assert shop.owner.get(f"{shop.base}/clusters", params={"name": "nope"}).status_code == 404


def test_clv_and_churn_jobs_store_scores_that_list_by_value(shop):
    clv = shop.jobs["clv"]
    assert clv["status"] == "succeeded", clv["message"]
    assert clv["result"]["customers"] > 0 and clv["result"]["bgnbd"]["r"] > 0
    churn = shop.jobs["churn"]
    assert churn["status"] == "succeeded", churn["message"]
    assert churn["result"]["customers_scored"] > 0 and 0 <= churn["result"]["auc"] <= 1

    page = shop.owner.get(f"{shop.base}/predictions", params={"type": "clv", "limit": 10}).json()
    assert page["total"] == clv["result"]["customers"]
    values = [p["value"] for p in page["items"]]
    assert values == sorted(values, reverse=True) and len(values) == 10
    top = clv["result"]["top_customers"][0]
    assert page["items"][0]["external_id"] == top["external_id"]
    assert page["items"][0]["model_version"] == "clv@1"
    assert isinstance(page["items"][0]["details"], dict)

    risk = shop.owner.get(f"{shop.base}/predictions", params={"type": "churn_risk"}).json()
    assert risk["total"] == churn["result"]["customers_scored"]
    assert risk["items"][0]["model_version"] == "churn@1"  # scored after clv, so it replaced it
    bands = shop.owner.get(f"{shop.base}/segments", params={"family": "churn"}).json()
    assert {s["name"] for s in bands["items"]} == {f"Churn risk: {b}" for b in HIGH_MEDIUM_LOW}
    nothing = shop.owner.get(f"{shop.base}/predictions", params={"type": "unknown"}).json()
    assert nothing["total"] == 0 and nothing["items"] == []


def test_viewers_see_prediction_names_masked(shop):
    params = {"type": "clv", "limit": 20}
    plain = shop.owner.get(f"{shop.base}/predictions", params=params).json()["items"]
    viewer = shop.server.user_with_role(shop.ws, "viewer")
    masked = viewer.get(f"{shop.base}/predictions", params=params).json()["items"]
    named = [(p, m) for p, m in zip(plain, masked, strict=True) if p["name"]]
    assert named
    for p, m in named:
        assert m["external_id"] == p["external_id"] and m["value"] == p["value"]
        assert m["name"] == p["name"][0] + "***"


def test_models_list_every_version_and_show_one(shop):
    page = shop.owner.get(f"{shop.base}/models").json()
    kinds = {m["kind"] for m in page["items"]}
    assert {"cluster", "clv", "churn"} <= kinds and page["total"] == len(page["items"])
    one = shop.owner.get(f"{shop.base}/models", params={"limit": 1, "offset": 1}).json()
    assert (one["total"], one["limit"], one["offset"]) == (page["total"], 1, 1)
    assert one["items"][0]["id"] == page["items"][1]["id"]
    cluster = next(m for m in page["items"] if m["kind"] == "cluster")
    r = shop.owner.get(f"{shop.base}/models/{cluster['id']}")
    assert r.status_code == 200 and r.json()["state"]["clusters"]
    assert r.json()["model_version"] == "behaviour@1"


def test_propensity_and_lookalike_jobs(shop):
    job = run(shop.owner, shop.base, "/predictions/propensity", {"days": 30})
    assert job["status"] == "succeeded", job["message"]
    assert job["result"]["customers_scored"] > 0

    seed = shop.owner.post(
        f"{shop.base}/segments",
        json={"name": "Seed", "rule": {"type": "trait", "trait": "total_orders", "op": "gte",
                                        "value": 3}},
    ).json()  # fmt: skip
    body = {"seed": seed["id"], "top": 20, "save_as": "Like the seed"}
    job = run(shop.owner, shop.base, "/lookalikes", body)
    assert job["status"] == "succeeded", job["message"]
    assert len(job["result"]["top"]) == 20 and job["result"]["seed_customers"] == seed["customers"]
    saved = shop.owner.get(f"{shop.base}/segments", params={"kind": "static"}).json()["items"]
    assert [s["customers"] for s in saved if s["name"] == "Like the seed"] == [20]


def test_anomalies_are_computed_on_request(shop):
    r = shop.owner.get(f"{shop.base}/anomalies", params={"days": 60})
    assert r.status_code == 200, r.text
    data = r.json()
    assert {"anomalies", "as_of", "checked", "days"} <= set(data)
    assert {"daily revenue", "daily orders"} <= {c["metric"] for c in data["checked"]}
    assert all(flag["sentence"] for flag in data["anomalies"])
    assert shop.owner.get(f"{shop.base}/anomalies", params={"days": 0}).status_code == 422


def test_viewers_may_read_models_but_not_fit_them(shop):
    viewer = shop.server.user_with_role(shop.ws, "viewer")
    assert viewer.get(f"{shop.base}/models").status_code == 200
    assert viewer.get(f"{shop.base}/clusters").status_code == 200
    for path in ("/models/clusters", "/predictions/clv", "/predictions/churn"):
        assert viewer.post(f"{shop.base}{path}", json={}).status_code == 403


def test_bad_options_answer_422_before_any_job(shop):
    jobs_before = shop.owner.get(f"{shop.base}/jobs").json()["total"]
    bad = [
        ("/models/clusters", {"k": "many"}),
        ("/models/clusters", {"k": 1000}),
        ("/models/clusters", {"method": "dbscan"}),
        ("/models/clusters", {"as_of": "yesterday-ish"}),
        ("/predictions/clv", {"time_unit": "year"}),
        ("/predictions/churn", {"high": 0.2, "medium": 0.5}),
        ("/lookalikes", {"seed": 0}),
    ]
    for path, body in bad:
        r = shop.owner.post(f"{shop.base}{path}", json=body)
        assert r.status_code == 422, (path, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    assert shop.owner.get(f"{shop.base}/jobs").json()["total"] == jobs_before


def test_other_workspace_ids_answer_404(shop):
    model_id = shop.owner.get(f"{shop.base}/models").json()["items"][0]["id"]
    seg_id = shop.owner.get(f"{shop.base}/segments").json()["items"][0]["id"]
    other = shop.other_base
    answers = [
        shop.owner.get(f"{other}/models/{model_id}"),
        shop.owner.post(f"{other}/lookalikes", json={"seed": seg_id}),
        shop.owner.get(f"{other}/anomalies", params={"segment": seg_id}),
        shop.owner.get(f"{other}/clusters"),
    ]
    assert [r.status_code for r in answers] == [404] * len(answers)
    assert shop.owner.get(f"{shop.base}/models/{model_id}").status_code == 200
