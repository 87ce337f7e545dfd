"""The personalization API over real HTTP: profiles, keys, rate limits and a cache that
membership changes keep exact (in process and in Redis)."""

from __future__ import annotations

import base64
import datetime as dt
import os
import uuid
from dataclasses import dataclass

import pyarrow as pa
import pytest

from strata.api.routes.profiles import ProfileSegments
from strata.demo import generate_and_load
from strata.errors import TooManyRequests
from strata.models.store import write_predictions
from strata.profiles import LocalProfileCache, RedisProfileCache, profile, profiles
from strata.ratelimit import RateLimiter, RedisRateLimiter
from strata.segments.engine import Segments, run_rfm
from strata.segments.nodes import SegmentSpec
from strata.warehouse import Batch
from tests.conftest import ApiServer, api_settings

REDIS_URL = os.environ.get("STRATA_TEST_REDIS_URL")
needs_redis = pytest.mark.skipif(
    not REDIS_URL, reason="STRATA_TEST_REDIS_URL is not set: no Redis server to test against"
)
OTHERS = ["only-in-other-1", "only-in-other-2"]
PRO_PLAN = {"type": "attribute", "attribute": "plan", "op": "in", "value": ["pro"]}


@dataclass
class Shop:
    server: ApiServer
    owner: object
    ws: int
    other_ws: int
    read_key: str
    write_key: str
    #: external id -> customer id of every customer of "shop"
    ids: dict[str, int]

    def get(self, external_id: str, key: str | None = None, **params):
        client = self.server.client(key or self.read_key)
        return client.get(f"/api/v1/profiles/{external_id}/segments", params=params)


def make_key(owner, ws: int, kind: str = "read") -> dict:
    r = owner.post(f"/api/v1/workspaces/{ws}/keys", json={"name": f"web-{kind}", "kind": kind})
    assert r.status_code == 201, r.text
    return r.json()


def open_shop(server: ApiServer) -> Shop:
    """Workspaces "shop" (300 customers, RFM, churn scores) and "other" (2 customers)."""
    owner = server.owner()
    ws = owner.post("/api/v1/workspaces", json={"name": "shop"}).json()["id"]
    other = owner.post("/api/v1/workspaces", json={"name": "other"}).json()["id"]
    with server.service.writing() as app:
        generate_and_load(app, customers=300, workspace="shop")
        app.warehouse.load(other, Batch(pa.table({"external_id": OTHERS, "plan": ["pro"] * 2})))
        run_rfm(Segments(app, "shop"))
        customers = app.warehouse.table(ws, "customers").to_pyarrow()
        ids = dict(
            zip(
                customers.column("external_id").to_pylist(),
                customers.column("customer_id").to_pylist(),
                strict=True,
            )
        )
        scores = pa.table(
            {
                "customer_id": pa.array(sorted(ids.values()), pa.int64()),
                "value": pa.array([(i % 10) / 10 for i in sorted(ids.values())], pa.float64()),
                "confidence": pa.array([0.9] * len(ids), pa.float64()),
            }
        )
        write_predictions(
            app,
            ws,
            "churn",
            scores,
            model_version="churn@3",
            predicted_at=dt.datetime(2026, 6, 30, 12, 0),
        )
    read = make_key(owner, ws, "read")["key"]
    write = make_key(owner, ws, "write")["key"]
    return Shop(server, owner, ws, other, read, write, ids)


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """One server for the module (generating the businesses takes a second or two)."""
    server = ApiServer(api_settings(tmp_path_factory.mktemp("profiles")))
    try:
        yield open_shop(server)
    finally:
        server.close()


def current_segments(shop: Shop, external_id: str) -> dict[int, dt.datetime]:
    """Segment id -> joined_at of the customer's open memberships, from the warehouse."""
    with shop.server.service.reading() as app:
        m = app.warehouse.table(shop.ws, "memberships")
        rows = (
            m.filter(m.customer_id == shop.ids[external_id], m.left_at.isnull())
            .to_pyarrow()
            .to_pylist()
        )
    return {r["segment_id"]: r["joined_at"] for r in rows}


def someone_in_a_segment(shop: Shop) -> str:
    return next(e for e in sorted(shop.ids) if current_segments(shop, e))


# -- what a profile holds ----------------------------------------------------------------------
def test_a_profile_has_current_segments_joined_at_and_predictions(shop):
    external_id = someone_in_a_segment(shop)
    r = shop.get(external_id)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    body = ProfileSegments.model_validate(r.json())  # the documented schema
    assert body.external_id == external_id
    expected = current_segments(shop, external_id)
    assert {s.id: s.joined_at for s in body.segments} == expected
    assert all(s.name and s.kind for s in body.segments)
    assert body.traits == {}  # none asked for
    churn = body.predictions["churn"]
    assert churn.value == (shop.ids[external_id] % 10) / 10
    assert churn.confidence == 0.9 and churn.model_version == "churn@3"
    assert churn.predicted_at == dt.datetime(2026, 6, 30, 12, 0)


def test_only_the_traits_asked_for_are_returned(shop):
    external_id = sorted(shop.ids)[5]
    with shop.server.service.reading() as app:
        full = profile(app, shop.ws, external_id)
    r = shop.get(external_id, traits="email,plan, country,no_such_trait")
    assert r.status_code == 200, r.text
    traits = r.json()["traits"]
    assert traits == {k: full["traits"][k] for k in ("email", "plan", "country")}
    assert traits["email"] and "@" in traits["email"]
    # Cached or not, the answer is the same (the cache keeps every trait).
    again = shop.get(external_id, traits="signup_date")
    assert again.headers["x-strata-cache"] == "hit"
    assert again.json()["traits"] == {"signup_date": full["traits"]["signup_date"].isoformat()}


def test_profiles_read_together_are_the_profiles_read_one_by_one(shop):
    wanted = [*sorted(shop.ids)[10:40], "nobody", *OTHERS]
    with shop.server.service.reading() as app:
        together = profiles(app, shop.ws, wanted)
        one_by_one = {e: profile(app, shop.ws, e) for e in wanted}
    assert together == {e: p for e, p in one_by_one.items() if p is not None}
    assert len(together) == 30


def test_many_misses_at_once_each_get_their_own_profile(shop):
    import concurrent.futures

    wanted = sorted(shop.ids)[100:160]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda e: (e, shop.get(e)), wanted + wanted[:10]))
    for external_id, r in answers:
        assert r.status_code == 200, r.text
        assert r.json()["external_id"] == external_id
        assert {s["id"] for s in r.json()["segments"]} == set(current_segments(shop, external_id))


def test_the_key_is_accepted_as_basic_user_name(shop):
    external_id = sorted(shop.ids)[0]
    token = base64.b64encode(f"{shop.read_key}:".encode()).decode()
    client = shop.server.client()
    r = client.get(
        f"/api/v1/profiles/{external_id}/segments", headers={"Authorization": f"Basic {token}"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["external_id"] == external_id


def test_an_unknown_customer_answers_404(shop):
    r = shop.get("nobody-by-this-id")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert "nobody-by-this-id" in r.json()["detail"]


def test_a_missing_write_or_made_up_key_answers_401(shop):
    external_id = sorted(shop.ids)[0]
    anonymous = shop.server.client().get(f"/api/v1/profiles/{external_id}/segments")
    assert anonymous.status_code == 401
    write = shop.get(external_id, key=shop.write_key)
    assert write.status_code == 401 and "write key" in write.json()["detail"]
    assert shop.get(external_id, key="sk_made_up").status_code == 401
    assert shop.get(external_id).status_code == 200


def test_a_revoked_key_answers_401(shop):
    key = make_key(shop.owner, shop.ws, "read")
    external_id = sorted(shop.ids)[1]
    assert shop.get(external_id, key=key["key"]).status_code == 200
    r = shop.owner.delete(f"/api/v1/workspaces/{shop.ws}/keys/{key['id']}")
    assert r.status_code == 200, r.text
    assert shop.get(external_id, key=key["key"]).status_code == 401


def test_a_key_cannot_read_another_workspaces_customer(shop):
    only_there = OTHERS[0]
    other_key = make_key(shop.owner, shop.other_ws, "read")["key"]
    assert shop.get(only_there, key=other_key).status_code == 200
    r = shop.get(only_there)  # the shop's key
    assert r.status_code == 404


def test_the_response_schema_is_documented(shop):
    spec = shop.server.client().get("/api/v1/openapi.json").json()
    op = spec["paths"]["/api/v1/profiles/{external_id}/segments"]["get"]
    ok = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["$ref"].endswith("/ProfileSegments")
    assert {"401", "404", "429"} <= set(op["responses"])
    fields = spec["components"]["schemas"]["ProfileSegments"]["properties"]
    assert {"external_id", "segments", "traits", "predictions"} <= set(fields)
    assert op["security"]  # the bearer and basic schemes


# -- the cache stays exact ---------------------------------------------------------------------
def test_a_static_segment_shows_at_once(shop):
    external_id = sorted(shop.ids)[7]
    first = shop.get(external_id)
    assert shop.get(external_id).headers["x-strata-cache"] == "hit"
    with shop.server.service.writing() as app:
        Segments(app, "shop").save_static("VIP list", [external_id])
    r = shop.get(external_id)
    assert r.headers["x-strata-cache"] == "miss"
    names = {s["name"] for s in r.json()["segments"]}
    assert names == {s["name"] for s in first.json()["segments"]} | {"VIP list"}


def test_new_predictions_show_at_once(shop):
    external_id = sorted(shop.ids)[11]
    shop.get(external_id)
    assert shop.get(external_id).headers["x-strata-cache"] == "hit"
    with shop.server.service.writing() as app:
        scores = pa.table(
            {"customer_id": pa.array([shop.ids[external_id]], pa.int64()), "value": [0.77]}
        )
        write_predictions(
            app, shop.ws, "propensity", scores, model_version="p@1", predicted_at=dt.datetime.now()
        )
    r = shop.get(external_id)
    assert r.headers["x-strata-cache"] == "miss"
    assert r.json()["predictions"]["propensity"]["value"] == 0.77


def test_a_trait_sent_live_shows_once_loaded(shop):
    import time

    external_id = sorted(shop.ids)[13]
    assert shop.get(external_id, traits="plan").status_code == 200  # now cached
    auth = base64.b64encode(f"{shop.write_key}:".encode()).decode()
    sent = shop.server.client().post(
        "/v1/identify",
        json={"userId": external_id, "traits": {"plan": "enterprise-live"}},
        headers={"Authorization": f"Basic {auth}"},
    )
    assert sent.status_code == 200, sent.text
    deadline = time.monotonic() + 20
    while shop.get(external_id, traits="plan").json()["traits"].get("plan") != "enterprise-live":
        assert time.monotonic() < deadline, "the cached profile kept the old trait"
        time.sleep(0.1)


def test_an_incremental_refresh_drops_exactly_the_customers_it_changed(shop):
    with shop.server.service.writing() as app:
        Segments(app, "shop").save(SegmentSpec(name="Pro plan", rule=PRO_PLAN))
    with shop.server.service.reading() as app:
        c = app.warehouse.table(shop.ws, "customers")
        not_pro = c.filter(c.plan != "pro").external_id.to_pyarrow().to_pylist()
    mover, bystander = sorted(not_pro)[:2]
    for external_id in (mover, bystander):
        r = shop.get(external_id, traits="plan")
        assert "Pro plan" not in {s["name"] for s in r.json()["segments"]}
        assert shop.get(external_id).headers["x-strata-cache"] == "hit"

    with shop.server.service.writing() as app:
        app.warehouse.load(shop.ws, Batch(pa.table({"external_id": [mover], "plan": ["pro"]})))
        Segments(app, "shop").update_customers(
            [shop.ids[mover]], event_types=[], attributes=["plan"], new_customers=False
        )

    r = shop.get(mover, traits="plan")
    assert r.headers["x-strata-cache"] == "miss"
    assert "Pro plan" in {s["name"] for s in r.json()["segments"]}
    assert r.json()["traits"] == {"plan": "pro"}
    # Only the customers the refresh named were dropped.
    assert shop.get(bystander).headers["x-strata-cache"] == "hit"


def test_a_read_racing_an_invalidation_is_not_cached():
    cache = LocalProfileCache()
    old = {"customer_id": 4, "external_id": "c4", "segments": [], "traits": {}, "predictions": {}}
    stamp = cache.stamp(1)  # a miss starts reading the warehouse
    cache.invalidate(1, [4])  # a refresh lands meanwhile
    cache.put(1, "c4", old, stamp)
    assert cache.get(1, "c4") is None
    cache.put(1, "c4", old, cache.stamp(1))
    assert cache.get(1, "c4") == old
    cache.invalidate(2)  # another workspace: no effect
    assert cache.get(1, "c4") == old
    cache.invalidate(1)
    assert cache.get(1, "c4") is None


def test_the_in_process_cache_is_bounded():
    cache = LocalProfileCache(max_entries=3)
    for i in range(5):
        cache.put(1, f"c{i}", {"customer_id": i, "traits": {}})
    assert len(cache) == 3
    assert cache.get(1, "c0") is None and cache.get(1, "c4") is not None


# -- rate limits -------------------------------------------------------------------------------
def test_over_the_rate_limit_answers_429_with_retry_after(tmp_path):
    server = ApiServer(api_settings(tmp_path, key_rate_limit=5))
    try:
        owner = server.owner()
        ws = owner.post("/api/v1/workspaces", json={"name": "shop"}).json()["id"]
        key = make_key(owner, ws)["key"]
        other_key = make_key(owner, ws)["key"]
        client = server.client(key)
        codes = [client.get("/api/v1/profiles/x/segments").status_code for _ in range(20)]
        assert codes[:10] == [404] * 10  # a burst of twice the rate (no data: 404)
        assert 429 in codes[10:]
        r = client.get("/api/v1/profiles/x/segments")
        assert r.status_code == 429
        assert r.headers["content-type"] == "application/problem+json"
        assert int(r.headers["retry-after"]) >= 1
        # Limits are per key.
        assert server.client(other_key).get("/api/v1/profiles/x/segments").status_code == 404
    finally:
        server.close()


def test_a_bucket_allows_bursts_of_twice_the_rate_then_refills_at_the_rate():
    limiter = RateLimiter(rate=2)
    for _ in range(4):
        limiter.hit("k")
    with pytest.raises(TooManyRequests) as caught:
        limiter.hit("k")
    assert caught.value.retry_after == 1
    limiter.hit("other key")
    limiter._buckets["k"][1] -= 1.0  # a second later: two more requests
    limiter.hit("k")
    limiter.hit("k")
    with pytest.raises(TooManyRequests):
        limiter.hit("k")


# -- Redis -------------------------------------------------------------------------------------
@pytest.fixture
def redis_namespace():
    """A key prefix of this test's own; its keys are deleted afterwards."""
    import redis

    namespace = f"strata-test:{uuid.uuid4().hex[:12]}"
    yield namespace
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def redis_cache(namespace: str) -> RedisProfileCache:
    return RedisProfileCache.from_url(REDIS_URL, namespace=namespace)


@needs_redis
def test_redis_caches_are_invalidated_across_processes(redis_namespace):
    one, two = redis_cache(redis_namespace), redis_cache(redis_namespace)
    try:
        prof = {
            "customer_id": 42,
            "external_id": "c42",
            "segments": [{"id": 1, "name": "VIP", "kind": "static", "joined_at": "2026-06-01"}],
            "traits": {"plan": "pro", "since": dt.date(2025, 1, 2)},
            "predictions": {},
        }
        assert one.get(7, "c42") is None
        one.put(7, "c42", prof, one.stamp(7))
        assert two.get(7, "c42") == {**prof, "traits": {"plan": "pro", "since": "2025-01-02"}}
        assert two.get(8, "c42") is None  # workspaces apart

        two.invalidate(7, [41, 42])
        assert one.get(7, "c42") is None

        stamp = one.stamp(7)
        two.invalidate(7, [99])  # any invalidation while a miss reads: its put is dropped
        one.put(7, "c42", prof, stamp)
        assert two.get(7, "c42") is None
        one.put(7, "c42", prof, one.stamp(7))
        assert two.get(7, "c42") is not None

        two.invalidate(7)  # the whole workspace
        assert one.get(7, "c42") is None
    finally:
        one.close()
        two.close()


@needs_redis
def test_an_invalidation_redis_missed_is_sent_before_the_next_read(redis_namespace):
    import redis

    cache, other = redis_cache(redis_namespace), redis_cache(redis_namespace)
    try:
        prof = {"customer_id": 5, "external_id": "c5", "segments": [], "traits": {}}
        cache.put(3, "c5", prof, cache.stamp(3))
        script = cache._invalidate

        def down(*args, **kwargs):
            raise redis.ConnectionError("Redis is restarting")

        cache._invalidate = down
        cache.invalidate(3, [5])
        cache._invalidate = script
        assert cache.get(3, "c5") is None  # paused, then not trusted for workspace 3
        assert other.get(3, "c5") == prof  # what another process still sees...
        cache._paused_until = 0.0  # Redis is back
        assert cache.get(3, "c5") is None
        assert other.get(3, "c5") is None  # ...until the missed invalidation is sent
        cache.put(3, "c5", prof, cache.stamp(3))
        assert other.get(3, "c5") == prof
    finally:
        cache.close()
        other.close()


@needs_redis
def test_redis_rate_limits_are_shared_by_processes(redis_namespace):
    one = RedisRateLimiter.from_url(REDIS_URL, 5, namespace=redis_namespace)
    two = RedisRateLimiter.from_url(REDIS_URL, 5, namespace=redis_namespace)
    try:
        for i in range(10):
            (one if i % 2 else two).hit(3)
        with pytest.raises(TooManyRequests) as caught:
            one.hit(3)
        assert caught.value.retry_after == 1
        two.hit(4)  # another key
    finally:
        one.close()
        two.close()


@needs_redis
def test_the_api_with_redis_answers_fresh_profiles(tmp_path):
    server = ApiServer(api_settings(tmp_path, redis_url=REDIS_URL))
    try:
        assert isinstance(server.service.app.profile_cache, RedisProfileCache)
        shop = open_shop(server)
        external_id = sorted(shop.ids)[3]
        first = shop.get(external_id, traits="email")
        assert first.status_code == 200, first.text
        assert shop.get(external_id).headers["x-strata-cache"] == "hit"
        with server.service.writing() as app:
            Segments(app, "shop").save_static("Redis VIP", [external_id])
        r = shop.get(external_id)
        assert r.headers["x-strata-cache"] == "miss"
        assert "Redis VIP" in {s["name"] for s in r.json()["segments"]}
        assert r.json()["predictions"] == first.json()["predictions"]
    finally:
        server.close()
        _forget_namespace(server)


def _forget_namespace(server: ApiServer) -> None:
    import redis

    from strata.profiles import namespace

    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{namespace(server.service.settings)}:*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def test_the_api_answers_when_redis_is_down(tmp_path, caplog):
    # Nothing listens on port 1: every Redis call fails at once.
    server = ApiServer(api_settings(tmp_path, redis_url="redis://127.0.0.1:1/0"))
    try:
        shop = open_shop(server)
        external_id = someone_in_a_segment(shop)
        r = shop.get(external_id, traits="plan")
        assert r.status_code == 200, r.text
        assert {s["id"] for s in r.json()["segments"]} == set(current_segments(shop, external_id))
        assert shop.get(external_id).status_code == 200
    finally:
        server.close()
    assert any("Redis failed" in rec.getMessage() for rec in caplog.records)
