"""Accounts through real HTTP: sign-in, sessions, tokens, throttling, workspaces, members, keys."""

from __future__ import annotations

import httpx

from strata.accounts import MAX_FAILURES
from strata.api.deps import SESSION_COOKIE
from strata.catalog import ApiKey, AuthSession, User

PASSWORD = "correct horse battery staple"


def _workspace(client, name="shop") -> int:
    r = client.post("/api/v1/workspaces", json={"name": name})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_first_run_creates_one_owner_with_an_argon2id_password(api):
    with api.service.app.session() as s:
        users = s.query(User).all()
    assert [u.email for u in users] == [api.owner_email]
    assert users[0].is_owner
    assert users[0].password_hash.startswith("$argon2id$")
    assert api.owner_password not in users[0].password_hash


def test_login_sets_an_http_only_strict_cookie_and_returns_a_bearer_token(api):
    r = api.client().post(
        "/api/v1/auth/login", json={"email": api.owner_email, "password": api.owner_password}
    )
    assert r.status_code == 200
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    token = r.json()["token"]
    # The cookie alone signs a browser in; the token alone signs a script in.
    by_cookie = api.client(cookies={SESSION_COOKIE: token}).get("/api/v1/auth/me")
    by_token = api.client(token).get("/api/v1/auth/me")
    assert by_cookie.json()["user"]["email"] == by_token.json()["user"]["email"] == api.owner_email
    with api.service.app.session() as s:
        stored = [row.token_hash for row in s.query(AuthSession)]
    assert token not in stored and len(stored[0]) == 64


def test_secure_cookie_by_default(tmp_path):
    from tests.conftest import ApiServer, api_settings

    settings = api_settings(tmp_path)
    server = ApiServer(settings.__class__(**{**settings.__dict__, "cookie_secure": True}))
    try:
        r = server.client().post(
            "/api/v1/auth/login",
            json={"email": server.owner_email, "password": server.owner_password},
        )
        assert "Secure" in r.headers["set-cookie"]
    finally:
        server.close()


def test_requests_without_credentials_answer_401_problem_details(api):
    for path in ("/api/v1/auth/me", "/api/v1/workspaces", "/api/v1/workspaces/1/jobs"):
        r = api.client().get(path)
        assert r.status_code == 401
        assert r.headers["content-type"].startswith("application/problem+json")
        body = r.json()
        assert body["status"] == 401 and body["title"] == "Unauthorized" and body["detail"]
        assert body["request_id"] == r.headers["x-request-id"]
    assert api.client("sts_not-a-token").get("/api/v1/auth/me").status_code == 401


def test_request_id_is_echoed_when_given(api):
    r = api.client().get("/api/v1/health", headers={"X-Request-ID": "trace-42"})
    assert r.headers["x-request-id"] == "trace-42"
    r = api.client().get("/api/v1/health", headers={"X-Request-ID": "bad id\twith tab"})
    assert r.headers["x-request-id"] != "bad id\twith tab" and len(r.headers["x-request-id"]) == 32


def test_logout_ends_the_session(api):
    owner = api.owner()
    assert owner.get("/api/v1/auth/me").status_code == 200
    assert owner.post("/api/v1/auth/logout").status_code == 204
    assert owner.get("/api/v1/auth/me").status_code == 401


def test_password_change_signs_out_other_sessions_and_needs_the_current_password(api):
    first, second = api.owner(), api.owner()
    bad = first.post(
        "/api/v1/auth/password",
        json={"current_password": "wrong", "new_password": "another long password"},
    )
    assert bad.status_code == 422
    ok = first.post(
        "/api/v1/auth/password",
        json={"current_password": api.owner_password, "new_password": "another long password"},
    )
    assert ok.status_code == 204
    assert first.get("/api/v1/auth/me").status_code == 200
    assert second.get("/api/v1/auth/me").status_code == 401
    relogin = api.client().post(
        "/api/v1/auth/login", json={"email": api.owner_email, "password": "another long password"}
    )
    assert relogin.status_code == 200
    short = first.post(
        "/api/v1/auth/password",
        json={"current_password": "another long password", "new_password": "short"},
    )
    assert short.status_code == 422 and "10 characters" in short.json()["detail"]


def test_repeated_failed_logins_are_throttled_with_retry_after(api):
    client = api.client()
    for _ in range(MAX_FAILURES):
        r = client.post("/api/v1/auth/login", json={"email": api.owner_email, "password": "nope"})
        assert r.status_code == 401
    r = client.post("/api/v1/auth/login", json={"email": api.owner_email, "password": "nope"})
    assert r.status_code == 429
    assert 1 <= int(r.headers["retry-after"]) <= 15 * 60
    # Even the right password waits: guessing must not be able to tell.
    r = client.post(
        "/api/v1/auth/login", json={"email": api.owner_email, "password": api.owner_password}
    )
    assert r.status_code == 429


def test_workspaces_are_listed_only_to_their_members(api):
    owner = api.owner()
    shop, other = _workspace(owner, "shop"), _workspace(owner, "other")
    analyst = api.user_with_role(shop, "analyst")
    listed = analyst.get("/api/v1/workspaces").json()
    assert [(w["id"], w["role"]) for w in listed["items"]] == [(shop, "analyst")]
    assert listed["total"] == 1
    assert analyst.get(f"/api/v1/workspaces/{other}").status_code == 404
    assert analyst.get(f"/api/v1/workspaces/{shop}").json()["name"] == "shop"
    taken = owner.post("/api/v1/workspaces", json={"name": "shop"})
    assert taken.status_code == 422 and "already exists" in taken.json()["detail"]


def test_workspace_update_and_delete(api):
    owner = api.owner()
    ws = _workspace(owner)
    admin = api.user_with_role(ws, "admin")
    assert (
        admin.patch(f"/api/v1/workspaces/{ws}", json={"timezone": "Europe/Paris"}).json()[
            "timezone"
        ]
        == "Europe/Paris"
    )
    assert admin.delete(f"/api/v1/workspaces/{ws}").status_code == 403
    assert owner.delete(f"/api/v1/workspaces/{ws}").status_code == 204
    assert owner.get(f"/api/v1/workspaces/{ws}").status_code == 404


def test_members_roles_and_owner_rules(api):
    owner = api.owner()
    ws = _workspace(owner)
    admin = api.user_with_role(ws, "admin")
    # A new user gets a generated password, shown once.
    r = admin.post(
        f"/api/v1/workspaces/{ws}/members", json={"email": "new@example.com", "role": "marketer"}
    )
    assert r.status_code == 201 and len(r.json()["password"]) >= 12
    member_id = r.json()["id"]
    assert (
        api.login("new@example.com", r.json()["password"]).get("/api/v1/auth/me").status_code == 200
    )
    # Admins manage members but cannot make owners.
    assert (
        admin.patch(f"/api/v1/workspaces/{ws}/members/{member_id}", json={"role": "owner"})
    ).status_code == 403
    r = admin.patch(f"/api/v1/workspaces/{ws}/members/{member_id}", json={"role": "analyst"})
    assert r.status_code == 200 and r.json()["role"] == "analyst"
    bad = admin.patch(f"/api/v1/workspaces/{ws}/members/{member_id}", json={"role": "god"})
    assert bad.status_code == 422
    members = owner.get(f"/api/v1/workspaces/{ws}/members").json()
    owner_row = next(m for m in members["items"] if m["role"] == "owner")
    # The last owner cannot be removed or demoted.
    last = owner.delete(f"/api/v1/workspaces/{ws}/members/{owner_row['id']}")
    assert last.status_code == 422 and "at least one owner" in last.json()["detail"]
    assert owner.delete(f"/api/v1/workspaces/{ws}/members/{member_id}").status_code == 204
    assert owner.get(f"/api/v1/workspaces/{ws}/members").json()["total"] == 2


def test_api_keys_are_shown_once_stored_hashed_and_revocable(api):
    owner = api.owner()
    ws = _workspace(owner)
    r = owner.post(f"/api/v1/workspaces/{ws}/keys", json={"name": "site", "kind": "write"})
    assert r.status_code == 201
    key = r.json()
    assert key["key"].startswith("sk_write_") and key["key"].startswith(key["prefix"])
    listed = owner.get(f"/api/v1/workspaces/{ws}/keys").json()["items"]
    assert "key" not in listed[0] and listed[0]["prefix"] == key["prefix"]
    with api.service.app.session() as s:
        stored = s.get(ApiKey, key["id"])
    assert stored.key_hash != key["key"] and key["key"] not in stored.key_hash
    # A use of the key is recorded (written in batches; flushed here).
    api.service.api_key(key["key"], "write")
    api.service.flush_key_use()
    assert owner.get(f"/api/v1/workspaces/{ws}/keys").json()["items"][0]["last_used_at"]
    revoked = owner.delete(f"/api/v1/workspaces/{ws}/keys/{key['id']}")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    import pytest

    from strata.errors import Unauthorized

    with pytest.raises(Unauthorized):
        api.service.api_key(key["key"], "write")
    bad = owner.post(f"/api/v1/workspaces/{ws}/keys", json={"name": "x", "kind": "admin"})
    assert bad.status_code == 422


def test_lists_are_paginated(api):
    owner = api.owner()
    ws = _workspace(owner)
    for i in range(5):
        owner.post(f"/api/v1/workspaces/{ws}/keys", json={"name": f"k{i}", "kind": "read"})
    page = owner.get(f"/api/v1/workspaces/{ws}/keys", params={"limit": 2, "offset": 2}).json()
    assert page["total"] == 5 and page["limit"] == 2 and page["offset"] == 2
    assert [k["name"] for k in page["items"]] == ["k2", "k3"]
    too_big = owner.get(f"/api/v1/workspaces/{ws}/keys", params={"limit": 100000})
    assert too_big.status_code == 422


def test_openapi_schema_is_served_and_versioned(api):
    schema = httpx.get(f"{api.url}/api/v1/openapi.json").json()
    assert schema["info"]["title"] == "Strata"
    assert all(p.startswith(("/api/v1/", "/v1/")) for p in schema["paths"])
