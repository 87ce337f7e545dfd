"""Imports through real HTTP: upload, inspect, confirm as a job, reports and bad rows."""

from __future__ import annotations

import gzip
import time

from tests.conftest import ONLINE_RETAIL, _needs_data

ORDERS = (
    "customer_id,order_id,timestamp,quantity,unit_price,email\n"
    "7,1,2024-01-01,2,5.00,ann@example.com\n"
    "7,2,2024-01-02,1,3.50,ann@example.com\n"
    "8,3,2024-01-02,1,1.00,bob@example.com\n"
)
# Row 3 has a date no one can read; row 5 has no customer: both are left out.
ORDERS_WITH_BAD_ROWS = (
    "customer_id,order_id,timestamp,quantity,unit_price\n"
    "7,1,2024-01-01,2,5.00\n"
    "7,2,not a date,1,3.50\n"
    "8,3,2024-01-02,1,1.00\n"
    ",4,2024-01-03,1,1.00\n"
)


def _workspace(client, name="shop") -> int:
    r = client.post("/api/v1/workspaces", json={"name": name})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _upload(client, ws: int, path, **form):
    with open(path, "rb") as f:
        return client.post(
            f"/api/v1/workspaces/{ws}/imports",
            files={"file": (path.name, f, "text/csv")},
            data=form,
        )


def _wait(client, ws: int, job: dict, seconds: float = 30) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        r = client.get(f"/api/v1/workspaces/{ws}/jobs/{job['id']}")
        assert r.status_code == 200, r.text
        if r.json()["status"] in {"succeeded", "failed", "interrupted"}:
            return r.json()
        assert time.monotonic() < deadline, f"job still {r.json()['status']}"
        time.sleep(0.05)


def _import(client, ws: int, path, **confirm) -> dict:
    up = _upload(client, ws, path)
    assert up.status_code == 201, up.text
    r = client.post(f"/api/v1/workspaces/{ws}/imports/{up.json()['id']}/confirm", json=confirm)
    assert r.status_code == 202, r.text
    job = _wait(client, ws, r.json())
    assert job["status"] == "succeeded", job["message"]
    return job["result"]


def test_upload_shows_the_mapping_and_preview_then_confirm_imports_as_a_job(api, tmp_path):
    owner = api.owner()
    ws = _workspace(owner)
    path = tmp_path / "orders.csv"
    path.write_text(ORDERS)

    r = _upload(owner, ws, path)
    assert r.status_code == 201, r.text
    up = r.json()
    assert (up["preset"], up["target"], up["file_name"]) == ("transactions", "events", "orders.csv")
    assert up["mapping"]["fields"]["order_id"] == "order_id"
    assert up["mapping"]["fields"]["customer_id"] == "customer_id"
    by_column = {c["column"]: c["field"] for c in up["columns"]}
    assert by_column["unit_price"] == "unit_price"
    assert up["rows"] == 3 and up["malformed_rows"] == 0 and up["rows_skipped"] == {}
    assert up["preview"][0]["order_id"] == "1"
    assert up["preview_mapped"][0]["external_id"] == "7"
    # Stored under $STRATA_HOME/uploads/ws_<id>/<random>/<name>, nothing imported yet.
    assert (tmp_path / "uploads" / f"ws_{ws}" / up["id"] / "orders.csv").read_text() == ORDERS
    assert owner.get(f"/api/v1/workspaces/{ws}/imports").json()["total"] == 0

    r = owner.post(f"/api/v1/workspaces/{ws}/imports/{up['id']}/confirm")
    assert r.status_code == 202, r.text
    assert r.json()["kind"] == "import"
    job = _wait(owner, ws, r.json())
    assert job["status"] == "succeeded", job["message"]
    report = job["result"]
    assert (report["customers_created"], report["orders"], report["events_created"]) == (2, 3, 3)
    assert report["net_revenue"] == 14.5
    assert report["source"] == "orders.csv"  # not where the server keeps it
    import_id = report["import_id"]

    listed = owner.get(f"/api/v1/workspaces/{ws}/imports").json()
    assert listed["total"] == 1
    assert listed["items"][0]["id"] == import_id
    assert listed["items"][0]["status"] == "succeeded"
    assert listed["items"][0]["summary"]["orders"] == 3
    shown = owner.get(f"/api/v1/workspaces/{ws}/imports/{import_id}").json()
    assert shown["report"]["events_created"] == 3
    assert shown["bad_rows"] == 0
    # An imported upload gives its disk space back and cannot be imported twice by mistake.
    assert not (tmp_path / "uploads" / f"ws_{ws}" / up["id"] / "orders.csv").exists()
    again = owner.post(f"/api/v1/workspaces/{ws}/imports/{up['id']}/confirm")
    assert again.status_code == 409


def test_dry_run_and_an_overriding_mapping_are_honoured(api, tmp_path):
    owner = api.owner()
    ws = _workspace(owner)
    path = tmp_path / "crm.csv"
    path.write_text("Client,Mail,Seats\nA1,a@x.com,12\nA2,b@x.com,3\n")
    mapping = "as: customers\nfields:\n  customer_id: Client\n  email: Mail\n"
    mapping += "attributes:\n  seats: {column: Seats, type: integer}\n"
    dry = _import(owner, ws, path, mapping=mapping, dry_run=True)
    assert dry["dry_run"] is True and dry["import_id"] is None
    assert dry["customers_created"] == 2
    assert owner.get(f"/api/v1/workspaces/{ws}/imports").json()["total"] == 0

    real = _import(owner, ws, path, mapping=mapping)
    assert (real["target"], real["customers_created"]) == ("customers", 2)
    assert real["mapping"]["attributes"]["seats"] == {"column": "Seats", "type": "integer"}

    bad = _upload(owner, ws, path)
    r = owner.post(
        f"/api/v1/workspaces/{ws}/imports/{bad.json()['id']}/confirm",
        json={"mapping": "fields:\n  no_such_field: Client\n"},
    )
    assert r.status_code == 422
    assert "no_such_field" in r.json()["detail"]


def test_bad_rows_are_reported_row_by_row_and_paginated(api, tmp_path):
    owner = api.owner()
    ws = _workspace(owner)
    path = tmp_path / "orders.csv"
    path.write_text(ORDERS_WITH_BAD_ROWS)
    up = _upload(owner, ws, path).json()
    assert up["rows_skipped"] == {"invalid timestamp": 1, "no customer id": 1}
    assert up["errors"][0]["row"] == 3

    report = _import(owner, ws, path)
    assert report["orders"] == 2
    assert report["rows_skipped"] == {"invalid timestamp": 1, "no customer id": 1}
    errors = owner.get(f"/api/v1/workspaces/{ws}/imports/{report['import_id']}/errors").json()
    assert errors["total"] >= 1
    first = errors["items"][0]
    assert (first["row"], first["column"]) == (3, "timestamp")
    assert first["reason"] and first["value"] == "not a date"
    page = owner.get(
        f"/api/v1/workspaces/{ws}/imports/{report['import_id']}/errors",
        params={"limit": 1, "offset": errors["total"]},
    ).json()
    assert page["items"] == [] and page["total"] == errors["total"]


def test_an_unreadable_file_answers_422_and_nothing_is_stored(api, tmp_path):
    owner = api.owner()
    ws = _workspace(owner)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    r = _upload(owner, ws, empty)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "empty" in r.json()["detail"]
    binary = tmp_path / "report.xls"
    binary.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600)
    r = _upload(owner, ws, binary)
    assert r.status_code == 422
    assert ".xls" in r.json()["detail"]
    folder = tmp_path / "uploads" / f"ws_{ws}"
    assert not folder.exists() or list(folder.iterdir()) == []
    assert owner.get(f"/api/v1/workspaces/{ws}/imports").json()["total"] == 0


def test_bad_form_input_answers_422_never_500(api, tmp_path):
    owner = api.owner()
    ws = _workspace(owner)
    path = tmp_path / "orders.csv"
    path.write_text(ORDERS)
    url = f"/api/v1/workspaces/{ws}/imports"
    assert owner.post(url, json={"file": "x"}).status_code == 422
    assert owner.post(url, data={"preset": "auto"}, files={"x": ("a", b"1")}).status_code == 422
    assert _upload(owner, ws, path, preset="nope").status_code == 422
    assert _upload(owner, ws, path, target="things").status_code == 422
    r = _upload(owner, ws, path, mapping="fields: [unclosed")
    assert r.status_code == 422 and "mapping" in r.json()["detail"]
    assert owner.post(f"{url}/{'0' * 32}/confirm").status_code == 404
    assert owner.post(f"{url}/not-an-id/confirm").status_code == 422
    assert owner.get(f"{url}/0").status_code == 422
    assert owner.get(f"{url}/{2**40}").status_code == 422


def test_a_file_over_the_size_limit_answers_413_and_is_not_kept(api, tmp_path, monkeypatch):
    import strata.uploads

    monkeypatch.setattr(strata.uploads, "MAX_UPLOAD", 1000)
    owner = api.owner()
    ws = _workspace(owner)
    path = tmp_path / "orders.csv"
    path.write_text(ORDERS.splitlines(keepends=True)[0] + ORDERS.split("\n", 1)[1] * 100)
    r = _upload(owner, ws, path)  # streamed: stopped as it passes the limit
    assert r.status_code == 413, r.text
    big = tmp_path / "big.csv"
    big.write_bytes(b"a,b\n" + b"1,2\n" * 600_000)
    assert _upload(owner, ws, big).status_code == 413  # refused by its Content-Length
    folder = tmp_path / "uploads" / f"ws_{ws}"
    assert not folder.exists() or list(folder.iterdir()) == []


def test_ids_of_another_workspace_answer_404(api, tmp_path):
    owner = api.owner()
    a, b = _workspace(owner, "shop-a"), _workspace(owner, "shop-b")
    path = tmp_path / "orders.csv"
    path.write_text(ORDERS)
    report = _import(owner, a, path)
    up = _upload(owner, a, path).json()
    import_id = report["import_id"]
    assert owner.get(f"/api/v1/workspaces/{a}/imports/{import_id}").status_code == 200
    assert owner.get(f"/api/v1/workspaces/{b}/imports/{import_id}").status_code == 404
    assert owner.get(f"/api/v1/workspaces/{b}/imports/{import_id}/errors").status_code == 404
    assert owner.post(f"/api/v1/workspaces/{b}/imports/{up['id']}/confirm").status_code == 404
    assert owner.get(f"/api/v1/workspaces/{b}/imports").json()["total"] == 0
    # The upload is still there for its own workspace.
    confirmed = owner.post(f"/api/v1/workspaces/{a}/imports/{up['id']}/confirm")
    assert confirmed.status_code == 202
    assert _wait(owner, a, confirmed.json())["result"]["duplicates_skipped"] == 3


def test_viewers_list_imports_but_may_not_upload_and_see_bad_values_masked(api, tmp_path):
    owner = api.owner()
    ws = _workspace(owner)
    path = tmp_path / "customers.csv"
    path.write_text(
        "customer_id,email,birth_date\nc1,ann@example.com,1990-01-01\nc2,bob@example.com,nope\n"
    )
    report = _import(owner, ws, path)
    viewer = api.user_with_role(ws, "viewer")
    r = _upload(viewer, ws, path)
    assert r.status_code == 403
    assert viewer.get(f"/api/v1/workspaces/{ws}/imports").status_code == 200
    assert viewer.get(f"/api/v1/workspaces/{ws}/imports/{report['import_id']}").status_code == 200
    errors = viewer.get(f"/api/v1/workspaces/{ws}/imports/{report['import_id']}/errors").json()
    assert errors["items"][0]["column"] == "birth_date"
    assert errors["items"][0]["value"] == "n***"
    clear = owner.get(f"/api/v1/workspaces/{ws}/imports/{report['import_id']}/errors").json()
    assert clear["items"][0]["value"] == "nope"
    analyst = api.user_with_role(ws, "analyst")
    assert _upload(analyst, ws, path).status_code == 201


def test_the_first_2000_lines_of_online_retail_upload_and_import(api, tmp_path):
    _needs_data(ONLINE_RETAIL)
    path = tmp_path / "online_retail_head.csv"
    with gzip.open(ONLINE_RETAIL, "rt", encoding="utf-8", newline="") as src:
        head = [line for _, line in zip(range(2000), src, strict=False)]
    path.write_text("".join(head), encoding="utf-8")
    owner = api.owner()
    ws = _workspace(owner)
    up = _upload(owner, ws, path).json()
    assert up["preset"] == "transactions"
    assert up["mapping"]["fields"]["order_id"] == "InvoiceNo"
    assert up["mapping"]["fields"]["customer_id"] == "CustomerID"
    assert up["rows"] == 1999
    assert up["preview"][0]["InvoiceNo"] == "536365"
    r = owner.post(f"/api/v1/workspaces/{ws}/imports/{up['id']}/confirm")
    job = _wait(owner, ws, r.json())
    assert job["status"] == "succeeded", job["message"]
    report = job["result"]
    assert report["rows_read"] == 1999
    assert report["orders"] > 50 and report["customers_created"] > 20
    assert report["preset"] == "transactions"
    stats = owner.get(f"/api/v1/workspaces/{ws}/stats").json()
    assert stats["orders"] == report["orders"]


def test_uploads_older_than_a_week_are_pruned_and_newer_ones_kept(tmp_path):
    import datetime as dt

    from strata.uploads import KEEP_DAYS, Uploads

    uploads = Uploads(tmp_path)
    made = []
    for name in ("old.csv", "new.csv"):
        with uploads.receive(1, name) as incoming:
            incoming.write(b"customer_id,email\n1,a@b.io\n")
        made.append(incoming.upload)
    old, new = made
    old.created_at = (
        dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=KEEP_DAYS, hours=1)
    ).isoformat()
    old.save()
    assert uploads.prune() == 1
    assert not old.folder.exists()
    assert uploads.get(1, new.id).path.exists()
