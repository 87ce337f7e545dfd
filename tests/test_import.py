"""Importing real files into both warehouses: figures, idempotency, atomicity."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from strata.ingest.pipeline import inspect_file, run_import
from strata.stats import workspace_stats
from tests.conftest import CDNOW_MASTER, CDNOW_SAMPLE, HEADERS, ONLINE_RETAIL, _needs_data


def test_online_retail_is_detected_and_imported_with_the_known_figures(app):
    _needs_data(ONLINE_RETAIL)
    report = run_import(app, ONLINE_RETAIL)
    assert report["preset"] == "transactions"
    assert report["rows_read"] == 541_909
    assert report["customers_created"] == 4_372
    assert report["orders"] == 18_536
    assert report["refunds"] == 3_654
    assert report["net_revenue"] == 8_300_065.81
    assert report["rows_skipped"] == {"no customer id": 135_080}
    assert report["events_created"] == 18_536 + 3_654
    # Repeated lines inside one invoice are kept as the file gives them.
    assert report["order_lines"] == 541_909 - 135_080

    again = run_import(app, ONLINE_RETAIL)
    assert again["customers_created"] == 0
    assert again["customers_updated"] == 0
    assert again["events_created"] == 0
    assert again["duplicates_skipped"] == 22_190

    stats = workspace_stats(app)
    assert (stats["customers"], stats["orders"], stats["refunds"]) == (4_372, 18_536, 3_654)
    assert stats["net_revenue"] == 8_300_065.81
    assert stats["order_lines"] == 406_829
    assert stats["first_event"] == "2010-12-01 08:26:00"


def test_cdnow_master_imports_as_23570_customers_and_69659_orders(app):
    _needs_data(CDNOW_MASTER)
    report = run_import(app, CDNOW_MASTER)
    assert report["preset"] == "cdnow"
    assert report["customers_created"] == 23_570
    assert report["orders"] == report["events_created"] == 69_659
    # The sample is a tenth of the master and uses the master's ids: nothing new.
    sample = run_import(app, CDNOW_SAMPLE)
    assert sample["preset"] == "cdnow"
    assert sample["orders"] == 6_919
    assert sample["customers_created"] == 0
    assert sample["events_created"] == 0


@pytest.mark.parametrize(
    ("name", "preset"),
    [
        ("shopify_orders_export_header.csv", "shopify"),
        ("shopify_orders_export_sample_redacted.csv", "shopify"),
        ("stripe_unified_payments_header.csv", "stripe"),
        ("stripe_legacy_payments_header.csv", "stripe"),
    ],
)
def test_export_headers_are_recognised_by_auto(name, preset):
    _needs_data(HEADERS / name)
    _, chosen, confidence, mapping = inspect_file(HEADERS / name)
    assert chosen.name == preset
    assert confidence >= 0.9
    assert {"order_id", "timestamp", "revenue"} <= set(mapping.fields)


def test_shopify_orders_take_totals_from_the_first_row_and_keep_every_line(duck_app):
    _needs_data(HEADERS)
    report = run_import(duck_app, HEADERS / "shopify_orders_export_sample_redacted.csv")
    assert report["customers_created"] == 2
    assert report["orders"] == 3
    assert report["order_lines"] == 7
    assert report["net_revenue"] == 1299.00 + 11594.00 + 17758.28
    ws = duck_app.workspace()
    events = duck_app.warehouse.table(ws.id, "events").to_pyarrow().to_pylist()
    by_order = {e["order_id"]: e for e in events}
    assert by_order["#1044"]["revenue"] == 17758.28
    # Times are stored in UTC: 10:36:16 -0500 is 15:36:16.
    assert by_order["#1044"]["timestamp"].isoformat() == "2025-12-06T15:36:16"


def test_stripe_payments_become_orders_refunds_and_skipped_failures(duck_app, tmp_path):
    _needs_data(HEADERS)
    header = (HEADERS / "stripe_unified_payments_header.csv").read_text().strip().split(",")
    rows = [
        {
            "id": "ch_1",
            "Created date (UTC)": "2024-03-01 10:00:00",
            "Amount": "20.00",
            "Amount Refunded": "0.00",
            "Currency": "usd",
            "Status": "Paid",
            "Captured": "true",
            "Customer ID": "cus_A",
            "Customer Email": "a@example.com",
        },
        {
            "id": "ch_2",
            "Created date (UTC)": "2024-03-02 10:00:00",
            "Amount": "50.00",
            "Amount Refunded": "15.00",
            "Refunded date (UTC)": "2024-03-05 09:00:00",
            "Currency": "usd",
            "Status": "Partially refunded",
            "Captured": "true",
            "Customer ID": "cus_B",
        },
        {
            "id": "ch_3",
            "Created date (UTC)": "2024-03-03 10:00:00",
            "Amount": "99.00",
            "Amount Refunded": "0.00",
            "Currency": "usd",
            "Status": "Failed",
            "Captured": "false",
            "Customer ID": "cus_A",
        },
    ]
    path = tmp_path / "unified_payments.csv"
    with open(path, "w", newline="") as f:
        import csv

        w = csv.DictWriter(f, fieldnames=header)
        w.writeheader()
        w.writerows(rows)
    report = run_import(duck_app, path)
    assert report["preset"] == "stripe"
    assert (report["orders"], report["refunds"]) == (2, 1)
    assert report["net_revenue"] == 20 + 50 - 15
    assert report["rows_skipped"] == {"payment not completed": 1}


def test_dry_run_shows_the_outcome_and_writes_nothing(app, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(
        "customer_id,order_id,timestamp,quantity,unit_price\n"
        "7,1,2024-01-01,2,5.00\n7,2,2024-01-02,1,3.50\n8,3,2024-01-02,1,1.00\n"
    )
    dry = run_import(app, path, dry_run=True)
    assert (dry["customers_created"], dry["events_created"]) == (2, 3)
    assert dry["import_id"] is None
    assert app.workspaces() == []
    real = run_import(app, path)
    assert (real["customers_created"], real["events_created"]) == (2, 3)
    dry_again = run_import(app, path, dry_run=True)
    assert (dry_again["customers_created"], dry_again["events_created"]) == (0, 0)
    assert dry_again["duplicates_skipped"] == 3


def test_workspaces_never_see_each_others_data(app, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("customer_id,order_id,timestamp,quantity,unit_price\n7,1,2024-01-01,2,5\n")
    other = tmp_path / "other.csv"
    other.write_text(
        "customer_id,order_id,timestamp,quantity,unit_price\n9,1,2024-01-01,1,1\n"
        "10,2,2024-01-01,1,1\n"
    )
    run_import(app, path, workspace="shop-a")
    report = run_import(app, other, workspace="shop-b")
    # Same order id in another workspace is a different order, not a duplicate.
    assert report["events_created"] == 2
    a, b = workspace_stats(app, "shop-a"), workspace_stats(app, "shop-b")
    assert (a["customers"], a["orders"], a["net_revenue"]) == (1, 1, 10.0)
    assert (b["customers"], b["orders"], b["net_revenue"]) == (2, 2, 2.0)


def test_customers_are_upserted_and_only_real_changes_count(app, tmp_path):
    first = tmp_path / "customers.csv"
    first.write_text("customer_id,email,country,company_size\n001,a@x.com,FR,12\n002,b@x.com,DE,\n")
    r1 = run_import(app, first)
    assert (r1["target"], r1["customers_created"]) == ("customers", 2)
    second = tmp_path / "customers2.csv"
    second.write_text(
        "customer_id,email,country,company_size\n001,a@x.com,FR,12\n002,,IT,\n003,c@x.com,ES,3\n"
    )
    r2 = run_import(app, second)
    assert (r2["customers_created"], r2["customers_updated"]) == (1, 1)
    ws = app.workspace()
    rows = {
        r["external_id"]: r
        for r in app.warehouse.table(ws.id, "customers").to_pyarrow().to_pylist()
    }
    # Leading zeros are kept; an empty cell never erases a stored value.
    assert set(rows) == {"001", "002", "003"}
    assert rows["002"]["country"] == "IT"
    assert rows["002"]["email"] == "b@x.com"
    assert rows["001"]["company_size"] == 12


def test_mapped_custom_attributes_become_typed_columns(app, tmp_path):
    data = tmp_path / "crm.csv"
    data.write_text(
        "Client,Mail,Tier,Seats,Renewal\nA1,a@x.com,gold,12,2025-03-01\n"
        "A2,b@x.com,silver,3,2025-07-15\n"
    )
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(
        "as: customers\nfields:\n  customer_id: Client\n  email: Mail\n"
        "attributes:\n  loyalty_tier: Tier\n"
        "  seats: {column: Seats, type: integer}\n"
        "  renewal_date: {column: Renewal, type: date}\n"
    )
    report = run_import(app, data, mapping_file=mapping)
    assert report["customers_created"] == 2
    ws = app.workspace()
    schema = app.warehouse.table(ws.id, "customers").schema()
    assert schema["seats"].is_integer()
    assert schema["renewal_date"].is_date()
    assert schema["loyalty_tier"].is_string()
    t = app.warehouse.table(ws.id, "customers")
    assert t.filter(t.seats > 5).external_id.to_pyarrow().to_pylist() == ["A1"]


def test_events_log_keeps_extra_columns_as_properties_and_collapses_repeats(app, tmp_path):
    path = tmp_path / "events.csv"
    path.write_text(
        "user_id,event,timestamp,path,revenue\n"
        "u1,page_view,2024-05-01 10:00:00,/home,\n"
        "u1,page_view,2024-05-01 10:00:00,/home,\n"
        "u1,Order Completed,2024-05-01 10:05:00,/checkout,42.5\n"
        "u2,email_open,2024-05-02 08:00:00,,\n"
    )
    report = run_import(app, path)
    assert report["preset"] == "events"
    assert report["events"] == {"email_open": 1, "order": 1, "page_view": 2}
    assert report["events_created"] == 3
    assert report["duplicates_skipped"] == 1
    assert report["net_revenue"] == 42.5
    ws = app.workspace()
    events = app.warehouse.table(ws.id, "events")
    view = events.filter(events.event_type == "page_view").properties.to_pyarrow().to_pylist()
    assert [json.loads(v) if isinstance(v, str) else v for v in view] == [{"path": "/home"}]


def _wait_for(path, proc, seconds=120):
    deadline = time.monotonic() + seconds
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"import ended early: {proc.stderr.read()}")
        if time.monotonic() > deadline:
            raise AssertionError("import never reached the pause point")
        time.sleep(0.05)


@pytest.mark.parametrize("stage", ["customers", "events"])
def test_a_killed_import_leaves_nothing_behind(settings, tmp_path, stage):
    _needs_data(CDNOW_MASTER)
    marker = tmp_path / "paused"
    env = {
        **os.environ,
        "STRATA_HOME": str(settings.home),
        "STRATA_DATABASE_URL": settings.database_url,
        "STRATA_WAREHOUSE_URL": settings.warehouse_url,
        "STRATA_TEST_PAUSE_IN_LOAD": f"{stage}:{marker}",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "strata.cli", "import", str(CDNOW_MASTER), "--json"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(marker, proc)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)
    from strata.catalog import ImportRun
    from strata.context import Strata

    with Strata(settings) as app:
        stats = workspace_stats(app)
        assert (stats["customers"], stats["events"], stats["order_lines"]) == (0, 0, 0)
        with app.session() as s:
            runs = s.query(ImportRun).all()
        assert [r.status for r in runs] == ["interrupted"]
        # And the same file then imports completely.
        report = run_import(app, CDNOW_MASTER)
        assert report["events_created"] == 69_659


def test_cli_import_json_has_every_documented_key(cli, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(
        "customer_id,order_id,timestamp,quantity,unit_price\n"
        "7,1,2024-01-01,2,5.00\n,2,2024-01-02,1,3.50\n7,C3,2024-01-03,-1,5.00\n"
    )
    result = cli("import", path, "--json", check=True)
    report = json.loads(result.stdout)
    for key in (
        "rows_read",
        "customers_created",
        "customers_updated",
        "orders",
        "refunds",
        "events_created",
        "duplicates_skipped",
        "rows_skipped",
        "net_revenue",
    ):
        assert key in report
    assert report["rows_skipped"] == {"no customer id": 1}
    assert (report["orders"], report["refunds"], report["net_revenue"]) == (1, 1, 5.0)
    stats = json.loads(cli("stats", "--json", check=True).stdout)
    assert {
        "customers",
        "orders",
        "refunds",
        "events",
        "net_revenue",
        "first_event",
        "last_event",
    } <= set(stats)
    assert stats["net_revenue"] == 5.0
    shown = cli("customers", "show", "7", check=True)
    assert "C3" in shown.stdout and "refund" in shown.stdout
    missing = cli("customers", "show", "nobody")
    assert missing.returncode == 3
    assert missing.stderr.strip().startswith("error: no customer 'nobody'")


def test_a_large_generated_business_loads_and_prints_clean_json(cli):
    # Long loads must not let the database draw progress bars into --json output.
    result = cli("generate", "--customers", "20000", "--end", "2026-06-30", "--json", check=True)
    report = json.loads(result.stdout)
    assert report["customers_created"] == 20_000
    assert report["events_created"] == sum(report["events"].values())
    again = json.loads(
        cli("generate", "--customers", "20000", "--end", "2026-06-30", "--json", check=True).stdout
    )
    assert again["events_created"] == 0
    assert again["duplicates_skipped"] == report["events_created"]
