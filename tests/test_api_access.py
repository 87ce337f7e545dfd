"""The two access matrices, over every route of the app, through real HTTP.

* every role x every workspace route -> allowed, or 403 exactly when ``ACTIONS`` (and so
  docs/api.md) says the role may not do the route's action;
* every route that takes an id x an id from another workspace -> 404, never its data.

Routes are read from the app itself, so a new route is covered the day it is added
(and fails here if it forgets to declare its action).
"""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from strata.accounts import ACTIONS, ROLES, can
from strata.demo import generate_and_load
from tests.conftest import ApiServer, api_settings

WS_PREFIX = "/api/v1/workspaces/{workspace_id}"
#: Valid bodies for changes addressed by id, so that only the id can be what is wrong.
VALID_BODIES = {
    ("PATCH", WS_PREFIX + "/members/{member_id}"): {"role": "viewer"},
    ("PATCH", WS_PREFIX + "/segments/{segment_id}"): {"description": "changed"},
    ("PATCH", WS_PREFIX + "/email/servers/{destination_id}"): {"from_name": "x"},
    ("POST", WS_PREFIX + "/email/servers/{destination_id}/test"): {"to": "x@example.com"},
}
#: Routes a role check must not run for real (it would end the test's own workspace).
DESTRUCTIVE = {("DELETE", WS_PREFIX)}


def route_action(route: APIRoute) -> str | None:
    """The action a route declares through ``require(...)``, wherever it sits."""
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        action = getattr(dep.call, "action", None)
        if action is not None:
            return action
        stack.extend(dep.dependencies)
    return None


def workspace_routes(app) -> list[tuple[str, str, APIRoute]]:
    out = []
    for context in iter_route_contexts(app.routes):  # routers are included lazily
        route, path = context.original_route, context.path
        if isinstance(route, APIRoute) and path and path.startswith(WS_PREFIX):
            for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
                out.append((method, path, route))
    return out


def fill(path: str, route: APIRoute, workspace_id: int, ids: dict[str, str] | None = None) -> str:
    kinds = {p.name: p.field_info.annotation for p in route.dependant.path_params}

    def value(match: re.Match) -> str:
        name = match.group(1)
        if name == "workspace_id":
            return str(workspace_id)
        if ids is not None:
            return ids[name]
        return "999999" if kinds.get(name) is int else "no-such-thing"

    return re.sub(r"{(\w+)(?::path)?}", value, path)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = ApiServer(api_settings(tmp_path_factory.mktemp("access")))
    yield server
    server.close()


def test_every_workspace_route_declares_a_documented_action(server):
    routes = workspace_routes(server.app)
    assert len(routes) > 20
    missing = [f"{m} {p}" for m, p, r in routes if route_action(r) is None]
    assert missing == [], "routes without require(action)"
    unknown = {route_action(r) for _, _, r in routes} - set(ACTIONS)
    assert unknown == set()


def test_every_role_gets_exactly_what_the_role_table_allows(server):
    owner = server.owner()
    ws = owner.post("/api/v1/workspaces", json={"name": "matrix"}).json()["id"]
    clients = {role: server.user_with_role(ws, role) for role in ROLES if role != "owner"}
    clients["owner"] = owner
    wrong = []
    for method, path, route in workspace_routes(server.app):
        action = route_action(route)
        url = fill(path, route, ws)
        for role, client in clients.items():
            allowed = can(role, action)
            if allowed and (method, path) in DESTRUCTIVE:
                continue
            r = client.request(method, url, json={} if method in {"POST", "PUT", "PATCH"} else None)
            ok = r.status_code != 403 if allowed else r.status_code == 403
            if not ok or r.status_code >= 500 or r.status_code == 401:
                wrong.append(f"{role} {method} {url} ({action}): {r.status_code} {r.text[:120]}")
    assert wrong == []


def test_a_workspace_you_are_not_in_answers_404_on_every_route(server):
    owner = server.owner()
    theirs = owner.post("/api/v1/workspaces", json={"name": "theirs"}).json()["id"]
    mine = owner.post("/api/v1/workspaces", json={"name": "mine"}).json()["id"]
    me = server.user_with_role(mine, "admin")
    wrong = []
    for method, path, route in workspace_routes(server.app):
        url = fill(path, route, theirs)
        r = me.request(method, url, json={} if method in {"POST", "PUT", "PATCH"} else None)
        if r.status_code != 404 or "theirs" in r.text:
            wrong.append(f"{method} {url}: {r.status_code} {r.text[:120]}")
    assert wrong == []


def test_ids_from_another_workspace_answer_404_on_every_route_that_takes_one(server):
    """A member of workspace A sends, through A's routes, the ids of B's objects."""
    import pyarrow as pa

    from strata.actions.automations import Automations
    from strata.actions.campaigns import Campaigns
    from strata.actions.exports import Exports
    from strata.actions.syncs import Syncs
    from strata.actions.webhooks import Webhooks
    from strata.catalog import Destination
    from strata.ingest.pipeline import load_batch
    from strata.models.cluster import run_clustering
    from strata.models.store import ModelStore
    from strata.segments.engine import Segments
    from strata.warehouse import Batch

    app = server.service.app
    root = server.owner()
    a = root.post("/api/v1/workspaces", json={"name": "ids-a"}).json()["id"]
    b = root.post("/api/v1/workspaces", json={"name": "ids-b"}).json()["id"]
    me = server.user_with_role(a, "owner")
    # A holds customers of its own; B holds the generated shop and one of everything.
    load_batch(
        app,
        Batch(customers=pa.table({"external_id": ["A-1", "A-2"], "email": ["a1@a.io", None]})),
        {},
        workspace="ids-a",
        source="test",
        preset="test",
        target="customers",
    )
    report = generate_and_load(app, customers=150, workspace="ids-b")
    b_ws = app.workspace("ids-b")
    Segments(app, b_ws).save_static("Secret B list", ["C0000001", "C0000002"])
    segment_id = Segments(app, b_ws).get("Secret B list").id
    tag = {"kind": "tag", "tag": "secret"}
    automation = Automations(app, b_ws).create("Secret B flow", "Secret B list", "enter", tag)
    campaign = Campaigns(app, b_ws).create("Secret B campaign", "Secret B list", tag)
    export = Exports(app, b_ws).export("Secret B list", "csv")
    b_hook, _ = Webhooks(app, b_ws).create("Secret B hook", "https://hooks.b.example/in")
    b_msg = Webhooks(app, b_ws).enqueue(b_hook.id, "segment.entered", {"n": 1})
    b_syncs = Syncs(app, b_ws)
    b_dest = b_syncs.add_destination("Secret B dest", "hubspot", api_key="pat-secret-b-0000")
    b_sync = b_syncs.create(b_dest.id, "Secret B list", list_id="7")
    with app.session() as s:  # as Mailer.add_server stores it, without its DNS check
        smtp = Destination(
            workspace_id=b_ws.id,
            name="Secret B smtp",
            kind="smtp",
            config={
                "host": "smtp.b.example",
                "port": 587,
                "security": "starttls",
                "from_address": "b@b.example",
            },
        )
        s.add(smtp)
        s.commit()
    run_clustering(app, "ids-b", k=3)
    model_id = ModelStore(app, b_ws).list()[0].id
    job = server.service.jobs.submit(b, "test", {}, lambda progress: {"done": True})
    member = root.post(
        f"/api/v1/workspaces/{b}/members",
        json={"email": "b-member@example.com", "role": "viewer", "password": "long password b"},
    ).json()
    key = root.post(f"/api/v1/workspaces/{b}/keys", json={"name": "b", "kind": "read"}).json()
    upload = root.post(
        f"/api/v1/workspaces/{b}/imports",
        files={"file": ("b.csv", b"customer_id,email\nB-9,b9@b.io\n", "text/csv")},
    )
    assert upload.status_code == 201, upload.text
    secret_email = app.warehouse.table(b_ws.id, "customers").email.max().to_pyarrow().as_py()
    rights = root.post(f"/api/v1/workspaces/{b}/privacy/access", json={"external_id": "C0000001"})
    assert rights.status_code == 202, rights.text
    ids = {
        "segment_id": str(segment_id),
        "automation_id": str(automation.id),
        "campaign_id": str(campaign.id),
        "export_id": str(export.id),
        "destination_id": str(smtp.id),
        "sync_id": str(b_sync.id),
        "message_id": str(b_msg.id),
        "model_id": str(model_id),
        "import_id": str(report["import_id"]),
        "upload_id": str(upload.json()["id"]),
        "job_id": str(job.id),
        "member_id": str(member["id"]),
        "key_id": str(key["id"]),
        "external_id": "C0000001",
        "customer": "C0000001",
        "name": "Secret B tiers",
        "request_id": str(rights.json()["request"]["id"]),
    }
    checked, wrong = 0, []
    for method, path, route in workspace_routes(server.app):
        params = set(re.findall(r"{(\w+)", path)) - {"workspace_id"}
        if not params or (method == "PUT" and params == {"name"}):
            continue  # PUT by name creates in your own workspace: not an id of B's
        assert params <= set(ids), f"{path}: add an id of workspace B for {params - set(ids)}"
        url = fill(path, route, a, ids)
        body = VALID_BODIES.get((method, path), {} if method in {"POST", "PUT", "PATCH"} else None)
        r = me.request(method, url, json=body)
        checked += 1
        leaked = [s for s in ("Secret B list", secret_email, "b-member@example.com") if s in r.text]
        if r.status_code != 404 or leaked:
            wrong.append(f"{method} {url}: {r.status_code} {leaked} {r.text[:120]}")
    assert wrong == []
    assert checked >= 15
    # Nothing of B's was changed or deleted through A's routes.
    assert Segments(app, b_ws).get("Secret B list").customer_count == 2
    assert root.get(f"/api/v1/workspaces/{b}/keys").json()["items"][0]["revoked_at"] is None
    assert root.get(f"/api/v1/workspaces/{b}/members").json()["total"] == 2
