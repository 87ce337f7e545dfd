"""One user in several workspaces with a different role in each (an agency): one sign-in,
each request judged by the role in the workspace its path names, no signing in again."""

from __future__ import annotations

from strata.demo import generate_and_load

PASSWORD = "correct horse battery staple"
EMAIL = "agency@example.com"
RULE = {"type": "attribute", "attribute": "external_id", "op": "exists"}


def _agency(api):
    """Workspaces A (the user is an analyst) and B (a viewer); the user's cookie client."""
    app = api.service.app
    generate_and_load(app, customers=120, workspace="client-a")
    generate_and_load(app, customers=120, seed=8, workspace="client-b")
    a, b = app.workspace("client-a").id, app.workspace("client-b").id
    owner = api.owner()
    r = owner.post(
        f"/api/v1/workspaces/{a}/members",
        json={"email": EMAIL, "role": "analyst", "password": PASSWORD},
    )
    assert r.status_code == 201, r.text
    r = owner.post(f"/api/v1/workspaces/{b}/members", json={"email": EMAIL, "role": "viewer"})
    assert r.status_code == 201, r.text
    b_member = r.json()["id"]
    user = api.client()  # a browser: the session lives in its cookie jar
    r = user.post("/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD})
    assert r.status_code == 200, r.text
    assert "strata_session" in user.cookies
    return a, b, b_member, user, owner


def _first_email(user, ws: int) -> str | None:
    r = user.get(f"/api/v1/workspaces/{ws}/customers", params={"limit": 1})
    assert r.status_code == 200, r.text
    return r.json()["items"][0].get("email")


def test_me_lists_every_workspace_with_the_role_in_each(api):
    a, b, _, user, _ = _agency(api)
    me = user.get("/api/v1/auth/me").json()
    assert me["user"]["email"] == EMAIL
    assert [(w["id"], w["role"]) for w in me["workspaces"]] == [(a, "analyst"), (b, "viewer")]


def test_one_cookie_acts_as_analyst_in_a_and_viewer_in_b_without_signing_in_again(api):
    a, b, _, user, owner = _agency(api)
    cookie = user.cookies["strata_session"]
    # Personal data: seen in A as it is, masked in B (the owner sees B's as it is).
    assert _first_email(user, a) == _first_email(owner, a)
    b_email, b_masked = _first_email(owner, b), _first_email(user, b)
    assert "***" in b_masked and b_masked != b_email and "***" not in b_email
    # Building segments: allowed in A, 403 in B; and back to A again.
    assert user.post(f"/api/v1/workspaces/{a}/segments", json={"name": "A1", "rule": RULE}
                     ).status_code == 201  # fmt: skip
    r = user.post(f"/api/v1/workspaces/{b}/segments", json={"name": "B1", "rule": RULE})
    assert r.status_code == 403 and "viewer" in r.json()["detail"]
    assert user.get(f"/api/v1/workspaces/{b}/segments").status_code == 200  # viewers read
    assert user.post(f"/api/v1/workspaces/{a}/segments", json={"name": "A2", "rule": RULE}
                     ).status_code == 201  # fmt: skip
    # Exports hold personal data: not for B's viewer.
    r = owner.post(f"/api/v1/workspaces/{b}/segments", json={"name": "B0", "rule": RULE})
    seg = r.json()["id"]
    assert user.get(f"/api/v1/workspaces/{b}/segments/{seg}/members.csv").status_code == 403
    assert user.get(f"/api/v1/workspaces/{a}/segments").json()["total"] == 2
    assert user.cookies["strata_session"] == cookie  # the same session all along


def test_removing_the_user_from_b_leaves_a_working_with_the_same_session(api):
    a, b, b_member, user, owner = _agency(api)
    assert owner.delete(f"/api/v1/workspaces/{b}/members/{b_member}").status_code == 204
    assert user.get(f"/api/v1/workspaces/{b}/customers").status_code == 404
    assert _first_email(user, a) == _first_email(owner, a)  # not masked
    me = user.get("/api/v1/auth/me").json()
    assert [(w["id"], w["role"]) for w in me["workspaces"]] == [(a, "analyst")]


def test_usage_is_counted_in_the_workspace_each_call_names(api):
    a, b, _, user, _ = _agency(api)
    api.service.meter.flush(api.service.app)
    for _ in range(3):
        user.get(f"/api/v1/workspaces/{a}/segments")
    user.get(f"/api/v1/workspaces/{b}/segments")
    pending = api.service.meter.pending()
    assert (pending.get((a, "api_calls")), pending.get((b, "api_calls"))) == (3, 1)
