"""Triggers, automations and campaigns over the hand-built shop of ``test_segment_rules``.

Customers ``c01`` … ``c20`` have the ids 1 … 20; "Recent buyers" (an order in the last 30
days) has 4 members as of 1 June 2024, gains 5 and loses 1 by 15 June, and loses 7 more by
15 July (worked out in ``tests/test_memberships.py``). Runs on DuckDB and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
import sqlalchemy as sa
from scipy.stats import chi2_contingency

from strata.actions.automations import AutomationRunner, Automations
from strata.actions.campaigns import Campaigns, in_holdout, lift
from strata.catalog import Campaign, TriggerFiring
from strata.catalog.models import utcnow
from strata.errors import InputError, NotFound
from strata.segments.engine import Segments
from strata.warehouse import Batch
from tests.test_memberships import RECENT_BUYERS, at, current, spec
from tests.test_segment_rules import EVENT_SCHEMA, NEW_COLUMNS, _table, shop_batch


@pytest.fixture
def segs(app) -> Segments:
    ws = app.workspace(create=True)
    app.warehouse.load(ws.id, shop_batch(), new_columns=NEW_COLUMNS)
    segs = Segments(app)
    segs.save(spec("Recent buyers", RECENT_BUYERS), as_of=at("2024-06-01"))
    return segs


def firings(app, **where) -> list[TriggerFiring]:
    with app.session() as s:
        q = sa.select(TriggerFiring).order_by(TriggerFiring.id)
        for key, value in where.items():
            q = q.where(getattr(TriggerFiring, key) == value)
        return list(s.scalars(q))


def make_due(app) -> None:
    """End every wait now (instead of sleeping through it)."""
    with app.session() as s:
        s.execute(sa.update(TriggerFiring).values(due_at=utcnow() - dt.timedelta(seconds=1)))
        s.commit()


def tag_of(segs: Segments, name: str) -> dict[int, object]:
    customers = segs.wh.table(segs.ws.id, "customers")
    if name not in customers.columns:
        return {}
    rows = customers.select("customer_id", name).to_pyarrow().to_pylist()
    return {r["customer_id"]: r[name] for r in rows if r[name] is not None}


# -- triggers ---------------------------------------------------------------------------------
def test_each_entry_and_exit_is_recorded_once_per_listening_automation(segs):
    autos = Automations(segs.app, segs.ws)
    enter = autos.create("hello", "Recent buyers", "enter", {"kind": "tag", "tag": "hello"})
    leave = autos.create("bye", "Recent buyers", "exit", {"kind": "tag", "tag": "bye"})
    before = current(segs, "Recent buyers")
    segs.refresh(["Recent buyers"], as_of=at("2024-06-15"))
    after = current(segs, "Recent buyers")
    entered = {f.customer_id for f in firings(segs.app, automation_id=enter.id)}
    left = {f.customer_id for f in firings(segs.app, automation_id=leave.id)}
    assert entered == after - before and len(entered) == 5
    assert left == before - after and len(left) == 1
    assert {f.change for f in firings(segs.app)} == {"enter", "exit"}
    # The firing is stamped with the evaluation instant (midnight after 15 June).
    assert {f.at for f in firings(segs.app)} == {dt.datetime(2024, 6, 16)}
    # A refresh that changes nothing records nothing more.
    segs.refresh(["Recent buyers"], as_of=at("2024-06-15"))
    assert len(firings(segs.app)) == 6


def test_a_paused_automation_records_no_firings(segs):
    autos = Automations(segs.app, segs.ws)
    a = autos.create("hello", "Recent buyers", "enter", {"kind": "tag", "tag": "hello"})
    autos.pause(a.id)
    segs.refresh(["Recent buyers"], as_of=at("2024-06-15"))
    assert firings(segs.app) == []


# -- acting -----------------------------------------------------------------------------------
def test_the_runner_tags_who_entered_and_records_what_it_did(segs):
    autos = Automations(segs.app, segs.ws)
    a = autos.create("vip", "Recent buyers", "enter", {"kind": "tag", "tag": "vip"})
    before = current(segs, "Recent buyers")
    segs.refresh(["Recent buyers"], as_of=at("2024-06-15"))
    entered = current(segs, "Recent buyers") - before
    assert AutomationRunner(segs.app).run_due() == 5
    assert tag_of(segs, "tag_vip") == dict.fromkeys(entered, True)
    done = firings(segs.app, automation_id=a.id)
    assert {f.status for f in done} == {"done"}
    assert all(f.done_at is not None and f.outcome == "tag_vip = true" for f in done)
    # Nothing is done twice.
    assert AutomationRunner(segs.app).run_due() == 0


def test_after_a_wait_only_customers_still_in_the_segment_are_acted_on(segs):
    autos = Automations(segs.app, segs.ws)
    autos.create(
        "later", "Recent buyers", "enter", {"kind": "tag", "tag": "later"}, wait_seconds=3600
    )
    before = current(segs, "Recent buyers")
    segs.refresh(["Recent buyers"], as_of=at("2024-06-15"))
    entered = current(segs, "Recent buyers") - before
    runner = AutomationRunner(segs.app)
    assert runner.run_due() == 0  # still waiting
    segs.refresh(["Recent buyers"], as_of=at("2024-07-15"))  # 7 of the 8 leave
    still = current(segs, "Recent buyers")
    make_due(segs.app)
    assert runner.run_due() == 5
    by_status = {}
    for f in firings(segs.app):
        by_status.setdefault(f.status, set()).add(f.customer_id)
    assert by_status["done"] == entered & still
    assert by_status["skipped"] == entered - still
    assert {f.outcome for f in firings(segs.app, status="skipped")} == {"no longer in the segment"}
    assert set(tag_of(segs, "tag_later")) == entered & still


def test_a_condition_is_checked_when_the_automation_acts(segs):
    autos = Automations(segs.app, segs.ws)
    condition = {"type": "attribute", "attribute": "country", "op": "eq", "value": "France"}
    autos.create("fr", "Recent buyers", "enter", {"kind": "tag", "tag": "fr"}, condition=condition)
    before = current(segs, "Recent buyers")
    segs.refresh(["Recent buyers"], as_of=at("2024-06-15"))
    entered = current(segs, "Recent buyers") - before
    customers = segs.wh.table(segs.ws.id, "customers")
    french = set(
        customers.filter(customers.country == "France").customer_id.to_pyarrow().to_pylist()
    )
    AutomationRunner(segs.app).run_due()
    assert set(tag_of(segs, "tag_fr")) == entered & french
    skipped = {f.customer_id for f in firings(segs.app, status="skipped")}
    assert skipped == entered - french and skipped  # the shop has both kinds among them


def test_set_attribute_and_add_to_a_static_segment(segs):
    autos = Automations(segs.app, segs.ws)
    autos.create(
        "tier",
        "Recent buyers",
        "enter",
        {"kind": "set_attribute", "attribute": "loyalty_note", "value": "came back"},
    )
    autos.create("list", "Recent buyers", "enter", {"kind": "add_to_segment", "segment": "Won"})
    before = current(segs, "Recent buyers")
    segs.refresh(["Recent buyers"], as_of=at("2024-06-15"))
    entered = current(segs, "Recent buyers") - before
    AutomationRunner(segs.app).run_due()
    assert tag_of(segs, "loyalty_note") == dict.fromkeys(entered, "came back")
    assert segs.get("Won").kind == "static"
    assert current(segs, "Won") == entered


def test_a_scheduled_automation_acts_on_every_member_each_time(segs):
    autos = Automations(segs.app, segs.ws)
    a = autos.create(
        "weekly", "Recent buyers", "schedule", {"kind": "tag", "tag": "weekly"}, every_minutes=60
    )
    runner = AutomationRunner(segs.app)
    assert runner.run_due() == 0  # first run in an hour
    with segs.app.session() as s:
        from strata.catalog import Automation

        s.get(Automation, a.id).next_run_at = utcnow() - dt.timedelta(minutes=1)
        s.commit()
    assert runner.run_due() == 4
    members = current(segs, "Recent buyers")
    assert {f.customer_id for f in firings(segs.app)} == members
    assert {f.change for f in firings(segs.app)} == {"schedule"}
    assert Automations(segs.app, segs.ws).get(a.id).next_run_at > utcnow()
    assert runner.run_due() == 0  # not again until the next hour


def test_bad_automations_are_refused_with_a_clear_message(segs):
    autos = Automations(segs.app, segs.ws)
    tag = {"kind": "tag", "tag": "x"}
    with pytest.raises(InputError, match="trigger 'sometimes'"):
        autos.create("a", "Recent buyers", "sometimes", tag)
    with pytest.raises(NotFound):
        autos.create("a", "No such segment", "enter", tag)
    with pytest.raises(InputError, match="needs a kind"):
        autos.create("a", "Recent buyers", "enter", {"kind": "fax"})
    with pytest.raises(InputError, match="every_minutes"):
        autos.create("a", "Recent buyers", "schedule", tag)
    with pytest.raises(InputError, match="kept by Strata"):
        autos.create(
            "a",
            "Recent buyers",
            "enter",
            {"kind": "set_attribute", "attribute": "external_id", "value": "x"},
        )
    with pytest.raises(InputError, match="holds"):
        autos.create(
            "a",
            "Recent buyers",
            "enter",
            {"kind": "set_attribute", "attribute": "country", "value": 3},
        )
    with pytest.raises(NotFound, match="no webhook endpoint 999"):
        autos.create("a", "Recent buyers", "enter", {"kind": "webhook", "destination": 999})
    autos.create("a", "Recent buyers", "enter", tag)
    with pytest.raises(InputError, match="already exists"):
        autos.create("a", "Recent buyers", "exit", tag)
    assert [a.name for a in autos.list()] == ["a"]


# -- campaigns --------------------------------------------------------------------------------
def test_the_holdout_split_is_stable_and_close_to_its_share():
    ids = range(1, 20_001)
    held = [i for i in ids if in_holdout("salt", i, 10.0)]
    assert held == [i for i in ids if in_holdout("salt", i, 10.0)]
    assert 0.09 < len(held) / 20_000 < 0.11
    # Another campaign (another salt) draws another holdout.
    other = {i for i in ids if in_holdout("pepper", i, 10.0)}
    assert len(other & set(held)) < len(held) * 0.2


def test_lift_matches_an_independent_test_of_the_same_counts():
    result = lift((130, 1000), (40, 500))
    expected_p = chi2_contingency([[130, 870], [40, 460]], correction=False).pvalue
    assert result["p_value"] == pytest.approx(expected_p, rel=1e-9)
    assert result["lift"] == pytest.approx(0.13 - 0.08)
    assert result["relative_lift"] == pytest.approx(0.05 / 0.08)
    low, high = result["interval"]
    se = (0.13 * 0.87 / 1000 + 0.08 * 0.92 / 500) ** 0.5
    assert (low, high) == pytest.approx((0.05 - 1.959964 * se, 0.05 + 1.959964 * se))
    assert lift((0, 0), (0, 0))["lift"] is None
    nothing = lift((0, 50), (0, 10))  # no goal event yet: no interval pretending certainty
    assert (
        nothing["lift"] == 0 and nothing["interval"] is None and "no goal events" in nothing["note"]
    )


def _orders(customer_ids, when: dt.datetime) -> Batch:
    rows = [
        (f"c{c:02d}", "order", when, 10.0, "EUR", f"late-{c}", None, f"late-{c}")
        for c in customer_ids
    ]
    customers = pa.table({"external_id": pa.array([f"c{c:02d}" for c in customer_ids])})
    return Batch(customers=customers, events=_table(rows, EVENT_SCHEMA))


def test_a_campaign_holds_out_its_share_and_measures_lift(segs):
    campaigns = Campaigns(segs.app, segs.ws)
    c = campaigns.create(
        "Win back",
        "Recent buyers",
        {"kind": "tag", "tag": "offer"},
        holdout_percent=50,
        goal_event="order",
    )
    assert c.status == "draft"
    assert AutomationRunner(segs.app).run_due() == 0  # a draft does nothing
    members = current(segs, "Recent buyers")
    # A salt that splits these four members into two non-empty groups.
    salt = next(
        f"s{n}" for n in range(100) if 0 < sum(in_holdout(f"s{n}", i, 50) for i in members) < 4
    )
    with segs.app.session() as s:
        s.get(Campaign, c.id).salt = salt
        s.commit()
    held = {i for i in members if in_holdout(salt, i, 50)}
    started = campaigns.launch(c.id).started_at
    AutomationRunner(segs.app).run_due()
    assert set(tag_of(segs, "tag_offer")) == members - held
    assert {f.customer_id for f in firings(segs.app, status="held_out")} == held
    # Orders after the launch: every treated member, no held-out one.
    after = started + dt.timedelta(milliseconds=1)
    segs.app.warehouse.load(segs.ws.id, _orders(sorted(members - held), after))
    result = campaigns.results(c.id)
    assert result["treated"]["customers"] == len(members - held)
    assert result["holdout"]["customers"] == len(held)
    assert result["treated"]["converted"] == len(members - held)
    assert result["holdout"]["converted"] == 0
    ended = campaigns.end(c.id)
    assert ended.status == "ended" and ended.metrics["treated"]["rate"] == 1.0
    with pytest.raises(InputError, match="only a draft"):
        campaigns.launch(c.id)


def test_entries_and_exits_are_read_back_exactly_on_spark(spark_url, tmp_path):
    from strata.config import Settings
    from strata.context import Strata

    settings = Settings(
        home=tmp_path, database_url=f"sqlite:///{tmp_path / 'c.db'}", warehouse_url=spark_url
    )
    with Strata(settings) as app:
        ws = app.workspace(create=True)
        app.warehouse.load(ws.id, shop_batch(), new_columns=NEW_COLUMNS)
        segs = Segments(app)
        segs.save(spec("Recent buyers", RECENT_BUYERS), as_of=at("2024-06-01"))
        autos = Automations(app, segs.ws)
        autos.create("hello", "Recent buyers", "enter", {"kind": "tag", "tag": "hello"})
        autos.create("bye", "Recent buyers", "exit", {"kind": "tag", "tag": "bye"})
        before = current(segs, "Recent buyers")
        segs.refresh(["Recent buyers"], as_of=at("2024-06-15"))
        after = current(segs, "Recent buyers")
        got = {(f.change, f.customer_id) for f in firings(app)}
        assert got == {("enter", i) for i in after - before} | {("exit", i) for i in before - after}
        assert len(got) == 6


def test_an_automation_emails_and_exports_the_customers_who_entered(tmp_path):
    import dataclasses

    from strata.actions.email import Mailer, MailSender
    from strata.actions.exports import Exports
    from strata.context import Strata
    from tests.conftest import duckdb_settings
    from tests.test_email import Smtp

    settings = dataclasses.replace(duckdb_settings(tmp_path), webhook_allow=("127.0.0.1",))
    smtp = Smtp().start()
    try:
        with Strata(settings) as app:
            ws = app.workspace(create=True)
            app.warehouse.load(ws.id, shop_batch(), new_columns=NEW_COLUMNS)
            segs = Segments(app)
            segs.save(spec("Recent buyers", RECENT_BUYERS), as_of=at("2024-06-01"))
            Mailer(app, ws).add_server(
                "shop smtp",
                "127.0.0.1",
                smtp.port,
                security="none",
                from_address="news@shop.example",
            )
            template = {"subject": "Welcome back, {{ customer.first_name }}", "text": "Hi!"}
            autos = Automations(app, ws)
            autos.create(
                "mail",
                "Recent buyers",
                "enter",
                {"kind": "email", "destination": "shop smtp", "template": template},
            )
            autos.create("file", "Recent buyers", "enter", {"kind": "export", "format": "csv"})
            before = current(segs, "Recent buyers")
            segs.refresh(["Recent buyers"], as_of=at("2024-06-15"))
            entered = current(segs, "Recent buyers") - before
            assert AutomationRunner(app).run_due() == 2 * len(entered)
            MailSender(app).send_due()
            customers = segs.wh.table(ws.id, "customers")
            rows = customers.filter(customers.customer_id.isin(list(entered))).to_pyarrow()
            emails = {e.lower() for e in rows.column("email").to_pylist() if e}
            got = smtp.inbox.messages()
            assert {m["To"].addresses[0].addr_spec.lower() for m in got} == emails
            first = {
                (r["email"] or "").lower(): (r["name"] or "").split(" ")[0]
                for r in rows.to_pylist()
            }
            for m in got:
                expected = f"Welcome back, {first[m['To'].addresses[0].addr_spec.lower()]}"
                assert m["Subject"] == expected.strip()
            total, files = Exports(app, ws).list()
            assert total == 1 and files[0].rows == len(entered)
            written = Exports(app, ws).path(files[0].id).read_text().splitlines()
            assert len(written) == 1 + len(entered)
    finally:
        smtp.stop()


def test_a_bad_secret_key_is_one_clear_line_and_the_command_makes_a_good_one(tmp_path):
    import dataclasses
    import subprocess
    import sys

    from cryptography.fernet import Fernet

    from strata.actions.secrets import Sealer
    from strata.errors import ConfigError
    from tests.conftest import duckdb_settings

    settings = duckdb_settings(tmp_path)
    with pytest.raises(ConfigError, match="strata secret-key"):
        Sealer(dataclasses.replace(settings, secret_key="not-a-key"))
    made = subprocess.run(
        [sys.executable, "-m", "strata.cli", "secret-key"], capture_output=True, text=True
    )
    key = made.stdout.strip()
    Fernet(key.encode())  # a valid key
    sealer = Sealer(dataclasses.replace(settings, secret_key=key))
    assert sealer.unseal(sealer.seal({"password": "p"})) == {"password": "p"}
    # Without a key, one is made in the home folder, readable by its owner only.
    generated = Sealer(settings)
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
    assert Sealer(settings).unseal(generated.seal({"a": 1})) == {"a": 1}
    with pytest.raises(ConfigError, match="cannot be unsealed"):
        sealer.unseal(generated.seal({"a": 1}))


@pytest.mark.parametrize("catalog", ["sqlite", "postgres"])
def test_two_runners_racing_never_act_on_a_firing_twice(request, tmp_path, catalog):
    import dataclasses
    import threading

    from strata.actions.automations import Stores
    from strata.actions.webhooks import Webhooks
    from strata.catalog import WebhookMessage
    from strata.context import Strata
    from tests.conftest import duckdb_settings

    settings = duckdb_settings(tmp_path)
    if catalog == "postgres":
        url = request.getfixturevalue("postgres_database")
        settings = dataclasses.replace(settings, database_url=url)
    with Strata(settings) as app:
        ws = app.workspace(create=True)
        app.warehouse.load(ws.id, shop_batch(), new_columns=NEW_COLUMNS)
        segs = Segments(app)
        segs.save_static("list", ["c01"])
        dest, _ = Webhooks(app, ws).create("hook", "https://hooks.example.com/in")
        Automations(app, ws).create(
            "hook", "list", "enter", {"kind": "webhook", "destination": dest.id}
        )
        segs.save_static("list", [f"c{i:02d}" for i in range(1, 21)], mode="replace")
        assert len(firings(app)) == 19
        stores = Stores(app)  # one warehouse turn, as in one server
        runners = [AutomationRunner(app, stores=stores, batch=3) for _ in range(2)]
        acted = [0, 0]

        def run(i: int) -> None:
            while (n := runners[i].run_due()) > 0:
                acted[i] += n

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(acted) == 19
        with app.session() as s:
            sent = s.scalars(sa.select(WebhookMessage.payload)).all()
        assert len(sent) == 19  # one webhook per entry, none twice
        assert {f.status for f in firings(app)} == {"done"}
