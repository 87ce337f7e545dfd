"""Erasure: one person put everywhere Strata keeps data, erased, then searched for.

The search is generic, not a list of places the erasure knows: every column of every
catalog table (reflected), every column of every warehouse table of the workspace, the
bytes of every file under ``$STRATA_HOME`` (the DuckDB warehouse and SQLite catalog
included) and of the Spark warehouse's folder, and every key and value in Redis. It
looks for the e-mail, the external id, the phone, the name, the plain SHA-256 of the
normalised e-mail and phone (Google's and Meta's forms) and, in ``customer_id``
columns, the person's internal id.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
from pathlib import Path

import orjson
import pyarrow as pa
import pytest
import sqlalchemy as sa

from strata.actions import normalize as nz
from strata.actions.email import Mailer, email_hash
from strata.actions.exports import FORMATS, Exports
from strata.actions.webhooks import Webhooks, WebhookSender
from strata.catalog import AuditEntry
from strata.catalog.models import (
    Automation,
    Destination,
    RightsRequest,
    Suppression,
    Sync,
    SyncMember,
    TriggerFiring,
    Unsubscribe,
    utcnow,
)
from strata.context import Strata
from strata.errors import ImportRefused, InputError, NotFound
from strata.ingest.live import LiveIngest, parse_calls
from strata.ingest.pipeline import run_import
from strata.privacy.rights import Rights
from strata.privacy.subjects import REFUSED
from strata.profiles import LocalProfileCache, RedisProfileCache, namespace, profile
from strata.segments.engine import Segments
from strata.uploads import Uploads
from strata.warehouse import schema as S
from tests.test_webhooks import Receiver

EMAIL = "Ada.Lovelace@Example.org"
EXT = "CUST-ADA-7731"
PHONE = "+44 20 7946 0123"
NAME = "Ada Quillfeather"
OTHERS = [("CUST-BOB-1001", "bob.stone@example.net"), ("CUST-CY-2002", "cy.vance@example.com")]

CUSTOMERS_CSV = (
    "customer_id,email,name,phone,country\n"
    f"{EXT},{EMAIL},{NAME},{PHONE},GB\n"
    + "".join(f"{ext},{mail},Other Person {i},,FR\n" for i, (ext, mail) in enumerate(OTHERS))
)
ORDERS_CSV = (
    "customer_id,order_id,timestamp,quantity,unit_price\n"
    f"{EXT},A-1,2024-01-05,2,10\n{EXT},A-2,2024-02-05,1,30\n"
    f"{OTHERS[0][0]},B-1,2024-01-07,1,5\n{OTHERS[1][0]},C-1,2024-03-01,3,2\n"
)
# A bad row whose bad value is the person's e-mail: the import log quotes it.
BAD_CSV = (
    "customer_id,order_id,timestamp,quantity,unit_price\n"
    f"{EXT},A-9,{EMAIL},1,1\n{OTHERS[0][0]},B-9,2024-04-01,1,1\n"
)
REDIS_URL = os.environ.get("STRATA_TEST_REDIS_URL")


def needles() -> list[str]:
    """What must not be found anywhere after the erasure (lower-cased)."""
    mail = EMAIL.strip().lower()
    phone_g = nz.google_phone(PHONE, "GB")
    phone_m = nz.meta_phone(PHONE, "GB")
    forms = [
        mail,
        EXT,
        PHONE,
        NAME,
        "ada.lovelace",
        "quillfeather",
        nz.sha256_hex(nz.google_email(mail)),
        nz.sha256_hex(nz.meta_email(mail)),
        hashlib.sha256(mail.encode()).hexdigest(),
        nz.sha256_hex(phone_g),
        nz.sha256_hex(phone_m),
        phone_m,
    ]
    return sorted({f.lower() for f in forms if f})


# -- the person, everywhere -------------------------------------------------------------------
@dataclasses.dataclass
class World:
    app: Strata
    ws_id: int
    ada: int
    others: list[int]
    home: Path
    redis: RedisProfileCache | None


def _write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / "in" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def build_world(app: Strata, tmp_path: Path) -> World:
    files = tmp_path.parent / (tmp_path.name + "-in")
    run_import(app, _write(files, "customers.csv", CUSTOMERS_CSV), workspace="shop")
    run_import(app, _write(files, "orders.csv", ORDERS_CSV), workspace="shop")
    bad = run_import(app, _write(files, "bad.csv", BAD_CSV), workspace="shop")
    assert any(EMAIL in str(e.get("value")) for e in bad["errors"])  # the log quotes it
    ws = app.workspace("shop")
    c = app.warehouse.table(ws.id, "customers")
    rows = c.select("external_id", "customer_id").to_pyarrow().to_pylist()
    ids = {r["external_id"]: r["customer_id"] for r in rows}
    ada = ids[EXT]

    # Live events: one message loaded, one left queued (an unloaded batch).
    ingest = LiveIngest(app, write_lock=threading.RLock())
    ingest.start()
    ingest.accept(
        ws.id,
        parse_calls(
            [
                {"type": "track", "userId": EXT, "event": "Viewed Hat"},
                {"type": "track", "userId": OTHERS[0][0], "event": "Viewed Hat"},
            ],
            utcnow(),
        ),
    )
    assert ingest.wait_idle(30)
    ingest.stop()
    queued = parse_calls(
        [
            {"type": "identify", "userId": EXT, "traits": {"email": EMAIL, "name": NAME}},
            {"type": "track", "userId": OTHERS[1][0], "event": "Viewed Hat"},
        ],
        utcnow(),
    )
    ingest.accept(ws.id, queued)

    # Predictions and segments.
    app.warehouse.replace_predictions(
        ws.id,
        "churn",
        pa.table(
            {
                "customer_id": pa.array([ada, *[ids[o] for o, _ in OTHERS]], pa.int64()),
                "value": [0.9, 0.1, 0.2],
                "details": ['{"why": "few orders"}'] * 3,
            }
        ),
    )
    segs = Segments(app, ws)
    segs.save_static("VIP", [EXT, OTHERS[0][0]])

    # Exports in every format.
    for fmt in FORMATS:
        Exports(app, ws).export("VIP", fmt)

    # Webhooks: one delivered to a real receiver, one left pending (payload only).
    receiver = Receiver()
    try:
        hooks = Webhooks(app, ws)
        dest, _ = hooks.create("CRM hook", receiver.url)
        hooks.enqueue(dest.id, "segment.entered", {"customer": {"id": EXT}}, customer_id=ada)
        hooks.enqueue(dest.id, "segment.entered", {"customer": {"id": OTHERS[0][0]}})
        sender = WebhookSender(app, schedule=(0.01,), poll=0.2)
        sender.deliver_due()
        assert len(receiver.requests) == 2
    finally:
        receiver.close()
    hooks.enqueue(dest.id, "segment.entered", {"customer": {"email": EMAIL, "name": NAME}})

    # E-mail queued for them, and their unsubscription.
    mailer = Mailer(app, ws)
    smtp = mailer.add_server("Mail", "127.0.0.1", 2525, from_address="shop@example.com")
    mailer.queue(
        smtp.id,
        {"subject": "Hi {{ customer.name }}", "text": "Hello {{ customer.email }}"},
        {"customer_id": ada, "email": EMAIL, "name": NAME},
    )

    # A sync to a marketing tool, an automation's firings (rows as those modules write).
    vip = segs.get("VIP")
    with app.session() as s:
        tool = Destination(workspace_id=ws.id, name="Newsletter", kind="mailchimp", config={})
        s.add(tool)
        s.flush()
        sync = Sync(workspace_id=ws.id, destination_id=tool.id, segment_id=vip.id, config={})
        s.add(sync)
        s.flush()
        s.add(SyncMember(sync_id=sync.id, customer_id=ada, email=EMAIL.lower(), remote_id="r1"))
        s.add(SyncMember(sync_id=sync.id, customer_id=ids[OTHERS[0][0]], email=OTHERS[0][1]))
        auto = Automation(
            workspace_id=ws.id,
            name="Welcome",
            segment_id=vip.id,
            trigger="enter",
            action={"kind": "webhook", "destination": dest.id},
        )
        s.add(auto)
        s.flush()
        for cid, status in ((ada, "done"), (ada, "pending"), (ids[OTHERS[0][0]], "done")):
            s.add(
                TriggerFiring(
                    workspace_id=ws.id,
                    automation_id=auto.id,
                    segment_id=vip.id,
                    customer_id=cid,
                    change="entered",
                    at=utcnow(),
                    due_at=utcnow(),
                    status=status,
                )
            )
        s.add(Unsubscribe(workspace_id=ws.id, email_hash=email_hash(EMAIL), source="link"))
        s.commit()

    # A file uploaded and not imported yet.
    with Uploads(app.settings.home).receive(ws.id, "more.csv") as incoming:
        incoming.write(f"customer_id,email\n{EXT},{EMAIL}\n".encode())

    # An earlier access request of theirs (a file of everything).
    rights = Rights(app, ws)
    req = rights.request("access", email=EMAIL)
    rights.run(req.id)
    assert EXT in rights.file(req.id).read_text()

    # Their cached profile: in Redis when the tests have one (else in this process), in
    # an older generation too (a whole-workspace invalidation leaves those to expire).
    cache = app.profile_cache
    cache.put(ws.id, EXT, profile(app, ws.id, EXT))
    cache.invalidate(ws.id)
    cache.put(ws.id, EXT, profile(app, ws.id, EXT))
    assert cache.get(ws.id, EXT) is not None
    redis = cache if isinstance(cache, RedisProfileCache) else None
    return World(app, ws.id, ada, [ids[o] for o, _ in OTHERS], app.settings.home, redis)


# -- the search -------------------------------------------------------------------------------
def _text(value) -> str:
    if isinstance(value, bytes | memoryview):
        return bytes(value).decode("utf-8", errors="replace").lower()
    return str(value).lower()


def search_catalog(app: Strata, ada: int) -> list[str]:
    found = []
    engine = app.sessions.kw["bind"]
    meta = sa.MetaData()
    meta.reflect(engine)
    with engine.connect() as con:
        for table in meta.sorted_tables:
            for row in con.execute(sa.select(table)).mappings():
                for column, value in row.items():
                    if value is None:
                        continue
                    text = _text(value)
                    hits = [n for n in needles() if n in text]
                    if column == "customer_id" and value == ada:
                        hits.append("internal id")
                    if hits:
                        found.append(f"{table.name}.{column}: {hits}")
    return found


def search_warehouse(app: Strata, ws_id: int, ada: int) -> list[str]:
    found = []
    for name in S.TABLES:
        for row in app.warehouse.table(ws_id, name).to_pyarrow().to_pylist():
            for column, value in row.items():
                if value is None:
                    continue
                hits = [n for n in needles() if n in _text(value)]
                if column == "customer_id" and value == ada:
                    hits.append("internal id")
                if hits:
                    found.append(f"{name}.{column}: {hits}")
    return found


def search_files(*roots: Path) -> list[str]:
    wanted = [n.encode() for n in needles()]
    found = []
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file():
                data = path.read_bytes().lower()
                hits = [w.decode() for w in wanted if w in data]
                if hits:
                    found.append(f"{path.relative_to(root)}: {hits}")
    return found


def search_redis(ns: str) -> list[str]:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    found = []
    try:
        for key in client.scan_iter(match=f"{ns}*"):
            value = client.get(key) if client.type(key) == b"string" else b""
            text = (key + b" " + (value or b"")).decode("utf-8", errors="replace").lower()
            hits = [n for n in needles() if n in text]
            if hits:
                found.append(f"{key!r}: {hits}")
    finally:
        client.close()
    return found


def search_everything(world: World, *extra_roots: Path) -> list[str]:
    found = search_catalog(world.app, world.ada)
    found += search_warehouse(world.app, world.ws_id, world.ada)
    found += search_files(world.home, *extra_roots)
    if world.redis is not None:
        found += search_redis(namespace(world.app.settings))
    return found


# -- tests ------------------------------------------------------------------------------------
@pytest.fixture
def hook_settings(settings):
    return dataclasses.replace(
        settings, webhook_allow=("127.0.0.1",), redis_url=REDIS_URL, workspace="shop"
    )


@pytest.fixture
def world(hook_settings, tmp_path):
    with Strata(hook_settings) as app:
        yield build_world(app, tmp_path)


def test_the_world_holds_the_person_everywhere_before_the_erasure(world):
    found = search_everything(world)
    places = {f.split(":")[0] for f in found}
    expected = {
        "customers.email",
        "events.customer_id",
        "order_items.customer_id",
        "memberships.customer_id",
        "predictions.customer_id",
        "webhook_messages.payload",
        "email_messages.to_address",
        "sync_members.email",
        "trigger_firings.customer_id",
        "ingest_batches.payload",
        "import_runs.errors",
    }
    assert expected <= places, sorted(places)
    assert any(f.startswith("exports/") for f in found)
    assert any(f.startswith("uploads/") for f in found)
    assert any(f.startswith("rights/") for f in found)
    if world.redis is not None:
        assert any(f.startswith("b'strata") for f in found)


def test_after_an_erasure_no_store_cache_or_file_finds_the_person(world):
    app, ws = world.app, app_ws(world)
    before = _counts(app, world.ws_id)
    rights = Rights(app, ws)
    req = rights.request("erasure", email="  ada.lovelace@EXAMPLE.org ")
    receipt = rights.run(req.id)

    assert search_everything(world) == []
    assert app.profile_cache.get(world.ws_id, EXT) is None

    # Other customers are untouched.
    after = _counts(app, world.ws_id)
    assert after["customers"] == before["customers"] - 1 == 2
    assert after["events"] == before["events"] - receipt["warehouse"]["events"]
    assert receipt["warehouse"]["events"] >= 3  # two orders and a live event
    assert after["order_items"] == before["order_items"] - receipt["warehouse"]["order_items"]
    assert after["memberships"] == 1 and after["predictions"] == 2

    # The receipt: counts per store, outside tools by name, nothing of the person.
    assert receipt["warehouse"]["customers"] == 1
    assert receipt["catalog"]["sync_members"] == 1
    assert receipt["catalog"]["trigger_firings"] == 2
    assert receipt["catalog"]["webhook_messages"] == 2
    assert receipt["catalog"]["email_messages"] == 1
    assert receipt["catalog"]["unsubscribes"] == 1
    assert receipt["catalog"]["ingest_messages"] == 1
    assert receipt["files"]["exports_rewritten"] == len(FORMATS)
    assert receipt["files"]["uploads_deleted"] == 1
    assert receipt["files"]["access_files_deleted"] == 1
    assert receipt["suppressions"] == 2  # the e-mail and the external id
    outside = {(o["kind"], o["destination"]) for o in receipt["outside"]}
    assert outside == {("sync", "Newsletter"), ("webhook", "CRM hook")}
    assert not [n for n in needles() if n in orjson.dumps(receipt).decode().lower()]

    # Export files keep the other member, and their rows and SHA-256 say so.
    for row in Exports(app, ws).list()[1]:
        path = app.settings.home / row.path
        assert row.rows == 1
        assert row.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()

    # The request holds no identifier any more; exactly one audit entry names it.
    with app.session() as s:
        done = s.get(RightsRequest, req.id)
        entries = s.scalars(sa.select(AuditEntry).where(AuditEntry.action == "customer.erase"))
        entries = list(entries)
    assert done.status == "done" and done.sealed_subject is None
    assert [e.target_id for e in entries] == [str(req.id)]

    # Other people's queued live events are still queued.
    with app.session() as s:
        payloads = [
            orjson.loads(p) for p in s.scalars(sa.text("select payload from ingest_batches"))
        ]
    assert [m["userId"] for p in payloads for m in p] == [OTHERS[1][0]]


def test_an_erased_person_is_refused_on_import_and_ingest_until_they_consent(world, tmp_path):
    app, ws = world.app, app_ws(world)
    rights = Rights(app, ws)
    rights.run(rights.request("erasure", external_id=EXT).id)
    files = tmp_path.parent / (tmp_path.name + "-again")

    report = run_import(app, _write(files, "customers.csv", CUSTOMERS_CSV), workspace="shop")
    assert report["rows_skipped"][REFUSED] == 1
    assert report["customers_created"] == 0
    with pytest.raises(ImportRefused, match="erased on request"):
        run_import(app, _write(files, "o.csv", ORDERS_CSV), workspace="shop", strict=True)
    report = run_import(app, _write(files, "orders.csv", ORDERS_CSV), workspace="shop")
    assert report["rows_skipped"][REFUSED] == 2 and report["events_created"] == 0

    # A live message acknowledged before the erasure is refused by the loader.
    ingest = LiveIngest(app, write_lock=threading.RLock())
    ingest.accept(
        ws.id,
        parse_calls([{"type": "identify", "userId": EXT, "traits": {"email": EMAIL}}], utcnow()),
    )
    ingest.start()
    try:
        assert ingest.wait_idle(30)
    finally:
        ingest.stop()
    assert ingest.counts["refused_erased"] >= 1
    assert search_warehouse(app, world.ws_id, -1) == []
    with pytest.raises(NotFound, match="already erased on request"):
        rights.request("erasure", email=EMAIL)

    # Consent: each identifier released, then the person imports again.
    assert rights.consent(external_id=EXT) == 1
    assert rights.consent(email=EMAIL) == 1
    with app.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Suppression)) == 0
        consents = s.scalar(
            sa.select(sa.func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "customer.consent")
        )
    assert consents == 2
    report = run_import(app, _write(files, "again.csv", CUSTOMERS_CSV), workspace="shop")
    assert report["customers_created"] == 1 and REFUSED not in report["rows_skipped"]


def test_bad_requests_give_one_clear_error_and_change_nothing(world):
    app, ws = world.app, app_ws(world)
    rights = Rights(app, ws)
    before = (_counts(app, world.ws_id), _catalog_rows(app))
    with pytest.raises(NotFound, match="no customer with that e-mail"):
        rights.request("erasure", email="nobody@example.org")
    with pytest.raises(InputError, match="exactly one of e-mail or external id"):
        rights.request("erasure", email=EMAIL, external_id=EXT)
    with pytest.raises(InputError, match="exactly one"):
        rights.request("erasure")
    with pytest.raises(InputError, match="has no @"):
        rights.request("erasure", email="not-an-address")
    with pytest.raises(NotFound, match="no suppression"):
        rights.consent(email=EMAIL)
    assert (_counts(app, world.ws_id), _catalog_rows(app)) == before


def test_the_in_process_cache_forgets_a_customer_by_id_and_external_id():
    cache = LocalProfileCache()
    cache.put(1, EXT, {"customer_id": 7, "email": EMAIL})
    cache.put(1, "OTHER", {"customer_id": 8})
    cache.put(2, EXT, {"customer_id": 7})  # another workspace's customer 7
    assert cache.forget(1, [7], [EXT]) == 1  # one profile (and the id it was found by)
    assert cache.get(1, EXT) is None and (1, EXT) not in cache._ids
    assert cache.get(1, "OTHER") is not None and cache.get(2, EXT) is not None


@pytest.mark.skipif(not REDIS_URL, reason="STRATA_TEST_REDIS_URL is not set: no Redis to test")
def test_redis_forgets_a_customer_in_every_generation():
    import redis

    cache = RedisProfileCache.from_url(REDIS_URL, namespace=f"strata-test-{os.getpid()}-forget")
    try:
        cache.put(1, EXT, {"customer_id": 7, "email": EMAIL})
        cache.invalidate(1)  # a new generation: the old keys stay until they expire
        cache.put(1, EXT, {"customer_id": 7, "email": EMAIL})
        cache.put(1, "OTHER", {"customer_id": 8})
        assert cache.forget(1, [7], [EXT]) == 4
        client = redis.Redis.from_url(REDIS_URL)
        keys = [k.decode() for k in client.scan_iter(match=f"{cache.namespace}*")]
        client.close()
        assert not [k for k in keys if EXT in k or k.endswith(":c:7")]
        assert cache.get(1, "OTHER") is not None
    finally:
        cache.client.delete(*cache.client.scan_iter(match=f"{cache.namespace}*"))
        cache.close()


def app_ws(world: World):
    return world.app.workspace("shop")


def _counts(app: Strata, ws_id: int) -> dict[str, int]:
    return {n: int(app.warehouse.table(ws_id, n).count().execute()) for n in S.TABLES}


def _catalog_rows(app: Strata) -> dict[str, int]:
    engine = app.sessions.kw["bind"]
    meta = sa.MetaData()
    meta.reflect(engine)
    with engine.connect() as con:
        return {
            t.name: con.execute(sa.select(sa.func.count()).select_from(t)).scalar()
            for t in meta.sorted_tables
        }


def test_an_erasure_on_spark_leaves_no_parquet_file_holding_the_person(spark_url, tmp_path):
    from strata.config import Settings

    settings = Settings(
        home=tmp_path / "home",
        database_url=f"sqlite:///{tmp_path / 'home' / 'catalog.db'}",
        warehouse_url=spark_url,
        spark_location=tmp_path / "spark",
        workspace="shop",
    )
    with Strata(settings) as app:
        files = tmp_path / "in"
        run_import(app, _write(files, "customers.csv", CUSTOMERS_CSV))
        run_import(app, _write(files, "orders.csv", ORDERS_CSV))
        ws = app.workspace("shop")
        Segments(app, ws).save_static("VIP", [EXT, OTHERS[0][0]])
        assert search_files(tmp_path / "spark")  # Parquet holds them (plain strings)
        rights = Rights(app, ws)
        receipt = rights.run(rights.request("erasure", email=EMAIL).id)
        assert receipt["warehouse"]["customers"] == 1
        assert search_files(tmp_path / "spark", settings.home) == []
        assert _counts(app, ws.id)["customers"] == 2
        c = app.warehouse.table(ws.id, "customers")
        assert sorted(c.external_id.to_pyarrow().to_pylist()) == sorted(o for o, _ in OTHERS)
