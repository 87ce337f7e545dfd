"""The Spark warehouse: Parquet files committed by a manifest, checked against DuckDB.

One Spark session serves the whole file (``spark_session``); each test has a folder of
its own (``spark_url``).
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import ibis
import pyarrow as pa
import pytest

import strata.warehouse.base
from strata.config import Settings
from strata.context import Strata
from strata.errors import ConfigError, NotFound
from strata.ingest.pipeline import run_import
from strata.stats import workspace_stats
from strata.warehouse import Batch, connect
from strata.warehouse.spark import MANIFEST, SparkWarehouse, parse_url
from tests.conftest import CDNOW_SAMPLE, _needs_data

T0 = datetime.datetime(2024, 3, 1, 9, 30)


def day(n: int) -> datetime.timedelta:
    return datetime.timedelta(days=n)


# -- small factories ----------------------------------------------------------------------------
def customers(ids: list[str], **attrs: list) -> pa.Table:
    return pa.table({"external_id": ids, **attrs})


def events(*rows: tuple[str, str, int, float]) -> pa.Table:
    """Orders as ``(customer, order key, day after T0, revenue)``."""
    return pa.table(
        {
            "external_id": [r[0] for r in rows],
            "event_type": ["order"] * len(rows),
            "timestamp": pa.array([T0 + day(r[2]) for r in rows], pa.timestamp("us")),
            "revenue": [float(r[3]) for r in rows],
            "currency": ["EUR"] * len(rows),
            "order_id": [r[1] for r in rows],
            "properties": [json.dumps({"day": r[2]}) for r in rows],
            "event_key": [f"order:{r[1]}" for r in rows],
        }
    )


def items(*rows: tuple[str, int, str, float]) -> pa.Table:
    """Order lines as ``(order key, line number, product, quantity)``."""
    return pa.table(
        {
            "event_key": [f"order:{r[0]}" for r in rows],
            "line_no": pa.array([r[1] for r in rows], pa.int32()),
            "product_id": [r[2] for r in rows],
            "product_name": [r[2].upper() for r in rows],
            "quantity": [float(r[3]) for r in rows],
            "unit_price": [2.5] * len(rows),
        }
    )


def shop() -> Batch:
    """Four customers, six orders (one repeated in the batch), five order lines."""
    return Batch(
        customers(["c1", "c2", "c3", "c4"], email=["a@x.com", "b@x.com", None, "d@x.com"]),
        events(
            ("c1", "o1", 0, 10),
            ("c1", "o2", 3, 25),
            ("c2", "o3", 1, 7.5),
            ("c3", "o4", 2, 40),
            ("c3", "o4", 2, 40),
            ("c4", "o5", 9, 12),
        ),
        items(("o1", 1, "p1", 1), ("o1", 2, "p2", 3), ("o3", 1, "p1", 2), ("o4", 1, "p3", 1)),
    )


def rows(wh, name: str, ws: int = 1) -> list[dict]:
    table = wh.table(ws, name).to_pyarrow().to_pylist()
    return sorted(table, key=lambda r: json.dumps(r, default=str, sort_keys=True))


def snapshot(wh, ws: int = 1) -> dict[str, list[dict]]:
    return {name: rows(wh, name, ws) for name in ("customers", "events", "order_items")}


def parts_on_disk(wh: SparkWarehouse, ws: str = "ws_1") -> set[str]:
    folder = wh.location / ws
    return {
        f"{table.name}/{part.name}"
        for table in folder.iterdir()
        if table.is_dir() and not table.name.startswith("_")
        for part in table.iterdir()
    }


def parts_named(wh: SparkWarehouse, ws: str = "ws_1") -> set[str]:
    manifest = json.loads((wh.location / ws / MANIFEST).read_text())
    named = {p["path"] for entry in manifest["tables"].values() for p in entry["parts"]}
    return named | set(manifest["retained"])


# -- loading ------------------------------------------------------------------------------------
def test_reloading_changes_nothing_and_new_events_take_the_next_ids(spark_url):
    wh = connect(spark_url)
    first = wh.load(1, shop())
    assert (first.customers_created, first.events_created, first.items_created) == (4, 5, 4)
    assert first.duplicates_skipped == 1
    before = snapshot(wh)
    manifest = (wh.location / "ws_1" / MANIFEST).read_text()

    again = wh.load(1, shop())
    assert (again.customers_created, again.customers_updated, again.events_created) == (0, 0, 0)
    assert (again.duplicates_skipped, again.items_created) == (6, 0)
    assert snapshot(wh) == before
    # Nothing to commit: the manifest was not even written again.
    assert (wh.location / "ws_1" / MANIFEST).read_text() == manifest
    by_key = {e["event_key"]: e for e in before["events"]}
    assert [by_key[f"order:o{i}"]["event_id"] for i in range(1, 6)] == [1, 2, 3, 4, 5]
    assert by_key["order:o2"]["timestamp"] == T0 + day(3)
    assert json.loads(by_key["order:o2"]["properties"]) == {"day": 3}  # JSON is kept as text

    more = Batch(
        customers(["c1", "c5"]),
        events(("c1", "o1", 0, 10), ("c5", "o6", 12, 99), ("c1", "o7", 13, 5)),
        items(("o1", 3, "p9", 1), ("o6", 1, "p1", 2), ("o6", 2, "p4", 1), ("o7", 1, "p2", 1)),
    )
    result = wh.load(1, more)
    assert (result.customers_created, result.events_created) == (1, 2)
    assert (result.duplicates_skipped, result.items_created) == (1, 3)
    after = snapshot(wh)
    ev = {e["event_key"]: e for e in after["events"]}
    # Ids are max + 1 + the place in the batch, as in base.py: gaps are fine.
    assert (ev["order:o6"]["event_id"], ev["order:o7"]["event_id"]) == (5 + 1 + 1, 5 + 1 + 2)
    c5 = next(c for c in after["customers"] if c["external_id"] == "c5")
    assert ev["order:o6"]["customer_id"] == c5["customer_id"] == 4 + 1 + 1

    def lines(snap: dict) -> set[tuple]:
        return {(i["event_id"], i["line_no"], i["product_id"]) for i in snap["order_items"]}

    # The lines of an order stored before are not added; the new orders' lines are.
    assert lines(after) - lines(before) == {(7, 1, "p1"), (7, 2, "p4"), (8, 1, "p2")}
    assert parts_on_disk(wh) == parts_named(wh)


def test_customer_attributes_are_updated_and_new_columns_are_typed(spark_url):
    wh = connect(spark_url)
    wh.load(1, Batch(customers(["c1", "c2"], email=["a@x.com", "b@x.com"], country=["FR", "DE"])))
    stored = {c["external_id"]: c for c in rows(wh, "customers")}
    update = customers(
        ["c1", "c2", "c3"],
        email=[None, "b@x.com", "c@x.com"],
        country=["FR", "IT", "ES"],
        seats=pa.array([None, 12, 3], pa.int64()),
        renewal=pa.array([None, datetime.date(2025, 3, 1), None], pa.date32()),
    )
    result = wh.load(
        1, Batch(update), new_columns={"seats": ibis.dtype("int64"), "renewal": ibis.dtype("date")}
    )
    assert (result.customers_created, result.customers_updated) == (1, 1)
    schema = wh.table(1, "customers").schema()
    assert schema["seats"].is_integer() and schema["renewal"].is_date()
    assert wh.customer_schema(1) == schema
    now = {c["external_id"]: c for c in rows(wh, "customers")}
    assert now["c2"]["country"] == "IT" and now["c2"]["seats"] == 12
    assert now["c2"]["renewal"] == datetime.date(2025, 3, 1)
    assert now["c2"]["updated_at"] > stored["c2"]["updated_at"]
    # An empty cell never erases a value; an unchanged customer keeps its timestamps.
    assert now["c1"] == {**stored["c1"], "seats": None, "renewal": None}
    assert now["c3"]["customer_id"] == 2 + 1 + 2
    t = wh.table(1, "customers")
    assert t.filter(t.seats > 5).external_id.to_pyarrow().to_pylist() == ["c2"]


def test_a_dry_run_into_a_new_workspace_counts_everything_and_writes_nothing(spark_url):
    wh = connect(spark_url)
    dry = wh.load(1, shop(), dry_run=True)
    assert (dry.customers_created, dry.events_created, dry.items_created) == (4, 5, 4)
    with pytest.raises(NotFound, match="holds no data yet"):
        wh.table(1, "customers")
    assert wh.ibis.list_tables(database="ws_1") == []
    assert not list(wh.location.rglob("*.parquet"))
    assert not (wh.location / "ws_1" / MANIFEST).exists()


# -- all or nothing -----------------------------------------------------------------------------
def test_only_a_commit_changes_what_readers_see(spark_url, monkeypatch):
    wh = connect(spark_url)
    wh.load(1, shop())
    before = snapshot(wh)
    on_disk = parts_on_disk(wh)
    more = Batch(
        customers(["c1", "c9"], email=["changed@x.com", "z@x.com"]),
        events(("c9", "o9", 1, 1)),
        items(("o9", 1, "p1", 1)),
    )

    dry = wh.load(1, more, dry_run=True)
    assert (dry.customers_created, dry.customers_updated, dry.items_created) == (1, 1, 1)
    assert snapshot(wh) == before

    def fail(stage: str) -> None:
        if stage == "events":  # customers, events and order lines are written by now
            raise RuntimeError("disk on fire")

    monkeypatch.setattr(strata.warehouse.base, "_fault_point", fail)
    with pytest.raises(RuntimeError, match="disk on fire"):
        wh.load(1, more)
    monkeypatch.undo()
    assert snapshot(wh) == before
    assert parts_on_disk(wh) == on_disk

    # A killed writer cannot clean up: it leaves parts that no manifest names, its
    # staging folder and maybe a manifest draft. Readers, old or new, never see them.
    folder = wh.location / "ws_1"
    for part in sorted(on_disk):
        shutil.copytree(folder / part, folder / f"{part.split('/')[0]}/v999999-killed")
    (folder / "_staging" / "dead").mkdir(parents=True)
    (folder / f"{MANIFEST}.dead.tmp").write_text("{")
    assert snapshot(wh) == before
    assert snapshot(SparkWarehouse(spark_url, "local[2]", wh.location)) == before

    # The next writer gets the lock (the failed one let it go) and clears all of it.
    result = wh.load(1, more)
    assert (result.customers_created, result.customers_updated, result.items_created) == (1, 1, 1)
    assert parts_on_disk(wh) == parts_named(wh)
    assert not any("killed" in p for p in parts_on_disk(wh))
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith("_")) == [
        "_lock",
        MANIFEST,
    ]


def test_a_second_writer_waits_for_the_first(spark_url):
    wh = connect(spark_url)
    folder = wh.location / "ws_1"
    folder.mkdir()
    done: list = []
    with open(folder / "_lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as another process's load holds it
        writer = threading.Thread(target=lambda: done.append(wh.load(1, shop())))
        writer.start()
        time.sleep(1.0)
        assert writer.is_alive() and not done
        assert not (folder / MANIFEST).exists()
    writer.join(timeout=120)
    assert done[0].customers_created == 4


# -- reading and memberships, against DuckDB ---------------------------------------------------
@pytest.fixture(scope="module")
def shops(spark_session, tmp_path_factory) -> dict:
    """The same shop loaded into a Spark and a DuckDB warehouse."""
    location = tmp_path_factory.mktemp("spark")
    loaded = {"spark": connect(f"spark://local[2]?location={location}")}
    loaded["duckdb"] = connect("duckdb://:memory:")
    for wh in loaded.values():
        wh.load(1, shop())
    return loaded


def test_queries_over_several_tables_give_what_duckdb_gives(shops):
    def answers(wh) -> dict:
        c, e, i = (wh.table(1, n) for n in ("customers", "events", "order_items"))
        joined = c.inner_join(e, "customer_id")
        per_customer = joined.group_by("external_id").aggregate(
            orders=joined.count(), revenue=joined.revenue.sum(), last=joined.timestamp.max()
        )
        ranked = e.mutate(
            n=ibis.row_number().over(group_by=e.customer_id, order_by=e.timestamp),
            running=e.revenue.sum().over(group_by=e.customer_id, order_by=e.timestamp),
        )
        firsts = ranked.filter(ranked.n == 0).select("customer_id", "order_id", "running")
        lines = i.inner_join(e, "event_id").group_by(e.order_id).aggregate(q=i.quantity.sum())
        recent = e.filter(e.timestamp >= T0 + day(2)).count()
        return {
            "per_customer": per_customer.order_by("external_id").to_pyarrow().to_pylist(),
            "firsts": firsts.order_by("customer_id").to_pyarrow().to_pylist(),
            "lines": lines.order_by("order_id").to_pyarrow().to_pylist(),
            "recent": int(recent.execute()),
        }

    on_spark = answers(shops["spark"])
    assert on_spark == answers(shops["duckdb"])
    assert on_spark["recent"] == 3
    assert on_spark["per_customer"][0] == {
        "external_id": "c1",
        "orders": 2,
        "revenue": 35.0,
        "last": T0 + day(3),
    }


def test_memberships_change_as_on_duckdb(shops):
    t1, t2, t3 = (T0 + day(d) for d in (30, 31, 32))

    def ids(*values: int) -> pa.Table:
        return pa.table({"customer_id": pa.array(values, pa.int64())})

    def apply(wh) -> list:
        c, e = wh.table(1, "customers"), wh.table(1, "events")
        # A segment's rules arrive as an expression over the warehouse's own tables.
        spenders = c.semi_join(
            e.group_by("customer_id").aggregate(total=e.revenue.sum()).filter(ibis._.total > 9),
            "customer_id",
        ).select("customer_id", confidence=ibis.literal(0.5))
        changes = [
            wh.apply_members(1, 7, ids(1, 2, 3), t1),
            wh.apply_members(1, 7, spenders, t2),  # 1 3 4: 4 joins, 2 leaves
            wh.apply_members(1, 8, ids(2), t2),
            wh.apply_members(1, 7, ids(2), t3, within=ids(2, 3)),  # only 2 and 3 considered
            wh.apply_members(1, 7, ids(2), t3, within=ids(2, 3)),  # nothing left to change
        ]
        deleted = wh.delete_members(1, 8)
        return [changes, deleted, rows(wh, "memberships")]

    on_spark = apply(shops["spark"])
    assert on_spark == apply(shops["duckdb"])
    changes, deleted, memberships = on_spark
    assert [(c.joined, c.left, c.members) for c in changes] == [
        (3, 0, 3),
        (1, 1, 3),
        (1, 0, 1),
        (1, 1, 3),
        (0, 0, 3),
    ]
    assert deleted == 1
    assert {(m["customer_id"], m["left_at"]) for m in memberships} == {
        (1, None),
        (2, t2),
        (2, None),
        (3, t3),
        (4, None),
    }
    assert next(m for m in memberships if m["customer_id"] == 4)["confidence"] == 0.5


# -- a real import through the command line -----------------------------------------------------
def test_the_cli_continues_an_import_from_the_files_alone_and_counts_like_duckdb(
    spark_url, tmp_path
):
    _needs_data(CDNOW_SAMPLE)
    head = tmp_path / "cdnow_head.txt"
    head.write_text("".join(CDNOW_SAMPLE.read_text().splitlines(keepends=True)[:3000]))
    spark = Settings(
        home=tmp_path, database_url=f"sqlite:///{tmp_path / 'catalog.db'}", warehouse_url=spark_url
    )
    duck = Settings(
        home=tmp_path / "duck",
        database_url=f"sqlite:///{tmp_path / 'duck.db'}",
        warehouse_url="duckdb://:memory:",
    )
    with Strata(spark) as app:
        run_import(app, head, preset="cdnow")

    # A new process, in another time zone, knows what is stored only from the files.
    env = {
        **os.environ,
        "STRATA_HOME": str(spark.home),
        "STRATA_DATABASE_URL": spark.database_url,
        "STRATA_WAREHOUSE_URL": spark_url,
        "TZ": "America/New_York",
    }
    strata = [sys.executable, "-m", "strata.cli"]
    result = subprocess.run(
        [*strata, "import", str(CDNOW_SAMPLE), "--preset", "cdnow", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)  # stdout holds the JSON and nothing else

    with Strata(duck) as app:
        run_import(app, head, preset="cdnow")
        expected = run_import(app, CDNOW_SAMPLE, preset="cdnow")
        expected_stats = workspace_stats(app)
    for key in ("customers_created", "events_created", "duplicates_skipped", "orders"):
        assert report[key] == expected[key], key
    assert report["duplicates_skipped"] == 3_000  # the first 3,000 lines were stored already
    with Strata(spark) as app:
        stats = workspace_stats(app)
    assert stats == expected_stats
    assert (stats["customers"], stats["orders"]) == (2_357, 6_919)


# -- settings -----------------------------------------------------------------------------------
def test_spark_urls_give_the_master_and_the_location(tmp_path):
    assert parse_url("spark://local[2]") == ("local[2]", None)
    assert parse_url("spark://local[*]?location=/data/w") == ("local[*]", Path("/data/w"))
    assert parse_url("spark://local") == ("local", None)
    assert parse_url("spark://master.example:7077") == ("spark://master.example:7077", None)
    with pytest.raises(ConfigError, match="unsupported Spark URL"):
        parse_url("spark://yarn/cluster")
    with pytest.raises(ConfigError, match="unknown parameter 'path'"):
        parse_url("spark://local?path=/x")
    home = Settings.from_env({"STRATA_HOME": str(tmp_path)})
    assert home.spark_location == tmp_path / "spark"
    chosen = Settings.from_env({"STRATA_HOME": "/x", "STRATA_SPARK_LOCATION": str(tmp_path)})
    assert chosen.spark_location == tmp_path
