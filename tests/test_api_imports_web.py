"""What the web app's onboarding asks of the imports routes beyond upload and confirm."""

from __future__ import annotations

import csv
import io
import time

from strata.ingest.mapping import FIELDS
from strata.ingest.presets import registry


def test_presets_list_every_preset_with_its_fields_types_and_required_ones(api):
    owner = api.owner()
    ws = owner.post("/api/v1/workspaces", json={"name": "shop"}).json()["id"]

    r = owner.get(f"/api/v1/workspaces/{ws}/imports/presets")

    assert r.status_code == 200, r.text
    presets = {p["name"]: p for p in r.json()}
    assert list(presets) == list(registry())
    events = presets["events"]
    assert events["target"] == "events" and events["title"] == "an event log"
    fields = {f["name"]: f for f in events["fields"]}
    assert fields["timestamp"] == {
        "name": "timestamp",
        "type": "timestamp",
        "help": "when it happened",
        "required": True,
    }
    assert fields["revenue"]["type"] == "number" and not fields["revenue"]["required"]
    assert "unit_price" not in fields  # an event log has no order lines
    assert presets["customers"]["target"] == "customers"
    # A preset that reads fixed columns still takes any field a mapping names.
    cdnow = {f["name"]: f["required"] for f in presets["cdnow"]["fields"]}
    assert set(cdnow) == set(FIELDS)
    assert [f for f, required in cdnow.items() if required] == [
        "customer_id",
        "timestamp",
        "revenue",
    ]


def test_viewers_may_read_the_presets(api):
    owner = api.owner()
    ws = owner.post("/api/v1/workspaces", json={"name": "shop"}).json()["id"]
    viewer = api.user_with_role(ws, "viewer")

    assert viewer.get(f"/api/v1/workspaces/{ws}/imports/presets").status_code == 200


def test_bad_rows_download_as_csv_masked_for_viewers(api, tmp_path):
    owner = api.owner()
    ws = owner.post("/api/v1/workspaces", json={"name": "shop"}).json()["id"]
    path = tmp_path / "customers.csv"
    path.write_text(
        "customer_id,email,birth_date\nc1,ann@example.com,1990-01-01\nc2,bob@example.com,nope\n"
    )
    with open(path, "rb") as f:
        up = owner.post(f"/api/v1/workspaces/{ws}/imports", files={"file": ("c.csv", f)}).json()
    job = owner.post(f"/api/v1/workspaces/{ws}/imports/{up['id']}/confirm").json()
    deadline = time.monotonic() + 30
    while job["status"] not in {"succeeded", "failed"}:
        assert time.monotonic() < deadline, "the import did not finish"
        time.sleep(0.05)
        job = owner.get(f"/api/v1/workspaces/{ws}/jobs/{job['id']}").json()
    import_id = job["result"]["import_id"]

    r = owner.get(f"/api/v1/workspaces/{ws}/imports/{import_id}/errors.csv")

    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert f"import-{import_id}-bad-rows.csv" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(r["row"], r["column"], r["value"]) for r in rows] == [("3", "birth_date", "nope")]
    assert rows[0]["reason"]
    viewer = api.user_with_role(ws, "viewer")
    masked = viewer.get(f"/api/v1/workspaces/{ws}/imports/{import_id}/errors.csv")
    (masked_row,) = csv.DictReader(io.StringIO(masked.text))
    assert masked_row["value"] == "n***"
