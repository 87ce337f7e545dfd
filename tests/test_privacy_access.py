"""Data rights through the API and the command line: access files, erasure as a background
job with a receipt, consent, suppressions, live ingest refusing erased people."""

from __future__ import annotations

import hashlib
import json
import stat
import time
from pathlib import Path

import httpx
import ibis
import pyarrow as pa
import pytest
import sqlalchemy as sa

from strata.catalog import AuditEntry
from strata.context import Strata
from strata.ingest.pipeline import run_import
from strata.privacy.rights import Rights
from strata.segments.engine import Segments
from strata.warehouse import Batch

EMAIL = "Grace.Hopper@Example.org"
EXT = "CUST-GH-0042"
CSV = (
    "customer_id,email,name,phone,country,tier\n"
    f"{EXT},{EMAIL},Grace Hopper,+1 650 555 0142,US,gold\n"
    "CUST-OT-0001,other@example.org,Other One,,FR,silver\n"
)
ORDERS = (
    "customer_id,order_id,timestamp,quantity,unit_price\n"
    f"{EXT},G-1,2024-01-05,2,10\nCUST-OT-0001,O-1,2024-01-07,1,5\n"
)


def _load(app: Strata, tmp_path, workspace: str) -> None:
    folder = tmp_path.parent / f"{tmp_path.name}-in"
    folder.mkdir(exist_ok=True)
    (folder / "c.csv").write_text(CSV)
    (folder / "o.csv").write_text(ORDERS)
    run_import(app, folder / "c.csv", workspace=workspace)
    run_import(app, folder / "o.csv", workspace=workspace)
    ws = app.workspace(workspace)
    tiers = pa.table({"external_id": [EXT, "CUST-OT-0001"], "tier": ["gold", "silver"]})
    app.warehouse.load(ws.id, Batch(tiers), new_columns={"tier": ibis.dtype("string")})
    Segments(app, app.workspace(workspace)).save_static("Gold", [EXT])


# -- the library ------------------------------------------------------------------------------
def test_an_access_file_holds_everything_about_the_person_and_only_them(duck_app, tmp_path):
    app = duck_app
    _load(app, tmp_path, "shop")
    rights = Rights(app, "shop")
    req = rights.request("access", external_id=EXT)
    receipt = rights.run(req.id)
    path = rights.file(req.id)
    data = path.read_bytes()
    doc = json.loads(data)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert rights.get(req.id).file_sha256 == hashlib.sha256(data).hexdigest()
    assert [c["external_id"] for c in doc["customers"]] == [EXT]
    assert doc["customers"][0]["tier"] == "gold"  # custom columns too
    assert [e["order_id"] for e in doc["events"]] == ["G-1"]
    assert doc["events"][0]["order_items"][0]["quantity"] == 2
    assert [m["segment"] for m in doc["segment_memberships"]] == ["Gold"]
    assert doc["suppressed"] is False
    assert b"other@example.org" not in data and b"CUST-OT-0001" not in data
    assert receipt["events"] == 1 and receipt["customers"] == 1
    # The request keeps no identifier once done; one audit entry names the request.
    done = rights.get(req.id)
    assert done.status == "done" and done.sealed_subject is None
    with app.session() as s:
        entries = list(
            s.scalars(sa.select(AuditEntry).where(AuditEntry.action == "customer.access"))
        )
    assert [e.target_id for e in entries] == [str(req.id)]
    assert EXT not in json.dumps([e.summary for e in entries] + [e.details for e in entries])


# -- the API ----------------------------------------------------------------------------------
@pytest.fixture
def server(api, tmp_path):
    owner = api.owner()
    r = owner.post("/api/v1/workspaces", json={"name": "shop"})
    assert r.status_code == 201, r.text
    ws_id = r.json()["id"]
    with api.service.writing() as app:
        _load(app, tmp_path, "shop")
    key = owner.post(f"/api/v1/workspaces/{ws_id}/keys", json={"name": "site", "kind": "write"})
    return api, owner, ws_id, api.client(auth=(key.json()["key"], ""))


def _wait_done(client: httpx.Client, base: str, request_id: int) -> dict:
    deadline = time.monotonic() + 30
    while True:
        body = client.get(f"{base}/requests/{request_id}").json()
        if body["status"] in {"done", "failed"}:
            return body
        assert time.monotonic() < deadline, f"request {request_id} still {body['status']}"
        time.sleep(0.05)


def test_an_erasure_through_the_api_runs_as_a_job_and_refuses_later_ingest(server):
    api, owner, ws_id, site = server
    base = f"/api/v1/workspaces/{ws_id}/privacy"

    r = owner.post(f"{base}/erasures", json={"email": EMAIL.upper()})
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert accepted["request"]["kind"] == "erasure" and accepted["job"]["kind"] == "privacy.erasure"
    assert EMAIL.lower() not in r.text.lower()
    done = _wait_done(owner, base, accepted["request"]["id"])
    assert done["status"] == "done", done["message"]
    assert done["receipt"]["warehouse"]["customers"] == 1
    assert done["receipt"]["warehouse"]["events"] == 1
    assert done["job_id"] == accepted["job"]["id"]

    listed = owner.get(f"{base}/requests").json()
    assert [i["id"] for i in listed["items"]] == [done["id"]]
    summary = owner.get(f"{base}/suppressions").json()
    assert summary["total"] == 2 and summary["kinds"]["email"]["count"] == 1
    assert EMAIL.lower() not in json.dumps(summary).lower()

    # Live ingest: a call about them refuses the whole request; nothing is queued.
    r = site.post("/v1/identify", json={"userId": EXT, "traits": {"plan": "pro"}})
    assert r.status_code == 400 and "erased on request" in r.json()["detail"]
    r = site.post(
        "/v1/batch",
        json={
            "batch": [
                {"type": "track", "userId": "CUST-OT-0001", "event": "Viewed"},
                {"type": "identify", "userId": "NEW-1", "traits": {"email": EMAIL}},
            ]
        },
    )
    assert r.status_code == 400 and r.json()["detail"].startswith("batch[1]:")
    with api.service.app.session() as s:
        queued = s.scalar(sa.text("select count(*) from ingest_batches"))
    assert queued == 0

    # Consent, then the same call is accepted and loaded.
    r = owner.post(f"{base}/consent", json={"external_id": EXT})
    assert r.status_code == 200 and r.json() == {"released": 1}
    r = owner.post(f"{base}/consent", json={"external_id": EXT})
    assert r.status_code == 404
    r = site.post("/v1/identify", json={"userId": EXT, "traits": {"plan": "pro"}})
    assert r.status_code == 200, r.text
    assert api.service.ingest.wait_idle(20)
    with api.service.reading() as app:
        c = app.warehouse.table(ws_id, "customers")
        assert c.filter(c.external_id == EXT).count().execute() == 1


def test_an_access_request_through_the_api_gives_a_file_to_download(server):
    _, owner, ws_id, _ = server
    base = f"/api/v1/workspaces/{ws_id}/privacy"
    r = owner.post(f"{base}/access", json={"external_id": EXT})
    assert r.status_code == 202, r.text
    done = _wait_done(owner, base, r.json()["request"]["id"])
    assert done["status"] == "done" and done["has_file"]
    r = owner.get(f"{base}/requests/{done['id']}/file")
    assert r.status_code == 200
    assert hashlib.sha256(r.content).hexdigest() == done["file_sha256"]
    assert r.json()["customers"][0]["email"] == EMAIL.lower()


def test_bad_requests_answer_one_clear_error(server):
    _, owner, ws_id, _ = server
    base = f"/api/v1/workspaces/{ws_id}/privacy"
    cases = [
        ({"email": EMAIL, "external_id": EXT}, 422, "exactly one"),
        ({}, 422, "exactly one"),
        ({"email": "nobody@example.org"}, 404, "no customer with that e-mail"),
    ]
    for body, status, words in cases:
        r = owner.post(f"{base}/erasures", json=body)
        assert r.status_code == status and words in r.json()["detail"], r.text
    assert owner.get(f"{base}/requests").json()["total"] == 0
    r = owner.get(f"{base}/requests/999/file")
    assert r.status_code == 404


def test_only_those_who_manage_privacy_may_use_the_routes(server):
    api, _, ws_id, _ = server
    base = f"/api/v1/workspaces/{ws_id}/privacy"
    viewer = api.user_with_role(ws_id, "viewer")
    assert viewer.post(f"{base}/erasures", json={"email": EMAIL}).status_code == 403
    assert viewer.get(f"{base}/settings").status_code == 403


def test_retention_is_set_and_read_through_the_api(server):
    _, owner, ws_id, _ = server
    base = f"/api/v1/workspaces/{ws_id}/privacy"
    assert owner.get(f"{base}/settings").json() == {"retention_days": None}
    r = owner.put(f"{base}/settings", json={"retention_days": 365})
    assert r.status_code == 200 and r.json() == {"retention_days": 365}
    assert owner.get(f"{base}/settings").json() == {"retention_days": 365}
    assert owner.put(f"{base}/settings", json={"retention_days": 0}).status_code == 422


# -- the command line -------------------------------------------------------------------------
def test_the_command_line_erases_with_a_receipt_and_exports_access(cli, settings, tmp_path):
    with Strata(settings) as app:
        _load(app, tmp_path, "default")
    r = cli("privacy", "access", "--id", EXT, "--json", check=True)
    info = json.loads(r.stdout)
    assert info["status"] == "done" and EXT in Path(info["path"]).read_text()

    r = cli("privacy", "erase", "--email", EMAIL, check=True)
    assert "1 customer record(s) erased" in r.stdout
    assert "customers 1" in r.stdout and EMAIL.lower() not in r.stdout.lower()
    r = cli("privacy", "erase", "--email", EMAIL)
    assert r.returncode != 0 and "already erased on request" in r.stderr
    r = cli("privacy", "requests", "--json", check=True)
    assert [q["kind"] for q in json.loads(r.stdout)["requests"]] == ["erasure", "access"]
    r = cli("privacy", "consent", "--email", EMAIL, check=True)
    assert "released 1 suppression entry" in r.stdout
