"""Event retention: events older than N days go, with their order lines and the catalog
rows of that age that hold customer data; newer ones and everything else stay."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pyarrow as pa
import pytest
import sqlalchemy as sa

from strata.actions.workers import ActionWorkers
from strata.audit import ACTIONS
from strata.catalog import AuditEntry
from strata.catalog.models import (
    Automation,
    Destination,
    EmailMessage,
    TriggerFiring,
    WebhookAttempt,
    WebhookMessage,
)
from strata.errors import InputError
from strata.privacy import retention
from strata.segments.engine import Segments
from strata.warehouse import Batch

NOW = dt.datetime(2025, 3, 31, 15, 30)
DAY = dt.timedelta(days=1)


def _load(app, ws_id: int) -> None:
    """Two customers; orders 40, 31, 30 and 2 days before ``NOW`` (each with a line)."""
    when = [NOW - 40 * DAY, NOW - 31 * DAY, NOW - 30 * DAY + dt.timedelta(hours=1), NOW - 2 * DAY]
    events = pa.table(
        {
            "external_id": ["a", "b", "a", "b"],
            "event_type": ["order"] * 4,
            "timestamp": pa.array(when, pa.timestamp("us")),
            "revenue": [1.0, 2.0, 3.0, 4.0],
            "currency": ["EUR"] * 4,
            "order_id": ["o1", "o2", "o3", "o4"],
            "properties": [None] * 4,
            "event_key": ["k1", "k2", "k3", "k4"],
        }
    )
    items = pa.table(
        {
            "event_key": ["k1", "k2", "k3", "k4"],
            "line_no": pa.array([1, 1, 1, 1], pa.int32()),
            "product_id": ["p"] * 4,
            "product_name": ["P"] * 4,
            "quantity": [1.0] * 4,
            "unit_price": [1.0, 2.0, 3.0, 4.0],
        }
    )
    customers = pa.table({"external_id": ["a", "b"], "email": ["a@x.io", "b@x.io"]})
    app.warehouse.load(ws_id, Batch(customers, events, items))


def _catalog_rows(app, ws_id: int) -> None:
    """Webhook messages, e-mails and firings: old and new, finished and pending."""
    Segments(app, app.workspace("shop")).save_static("All", ["a", "b"])
    seg = Segments(app, app.workspace("shop")).get("All")
    with app.session() as s:
        dest = Destination(workspace_id=ws_id, name="hook", kind="webhook", config={})
        s.add(dest)
        s.flush()
        auto = Automation(
            workspace_id=ws_id,
            name="A",
            segment_id=seg.id,
            trigger="enter",
            action={"kind": "webhook", "destination": dest.id},
        )
        s.add(auto)
        s.flush()
        for i, (age, status) in enumerate(
            [(40, "delivered"), (40, "failed"), (40, "pending"), (2, "delivered")]
        ):
            msg = WebhookMessage(
                workspace_id=ws_id,
                destination_id=dest.id,
                msg_id=f"msg_{i}",
                customer_id=1,
                event_type="segment.entered",
                payload="{}",
                status=status,
                created_at=NOW - age * DAY,
            )
            s.add(msg)
            s.flush()
            s.add(WebhookAttempt(message_id=msg.id, at=NOW - age * DAY, status_code=200))
        for age, status in [(40, "sent"), (40, "failed"), (40, "pending"), (2, "sent")]:
            s.add(
                EmailMessage(
                    workspace_id=ws_id,
                    customer_id=1,
                    to_address="a@x.io",
                    subject="s",
                    body_text="t",
                    status=status,
                    created_at=NOW - age * DAY,
                )
            )
        for age, status in [(40, "done"), (40, "pending"), (2, "done")]:
            s.add(
                TriggerFiring(
                    workspace_id=ws_id,
                    automation_id=auto.id,
                    segment_id=seg.id,
                    customer_id=1,
                    change="entered",
                    at=NOW - age * DAY,
                    due_at=NOW - age * DAY,
                    status=status,
                )
            )
        s.commit()


@pytest.fixture
def shop(app):
    ws = app.workspace("shop", create=True)
    _load(app, ws.id)
    _catalog_rows(app, ws.id)
    return ws


def _count(app, model, ws_id: int | None = None) -> int:
    q = sa.select(sa.func.count()).select_from(model)
    if ws_id is not None:
        q = q.where(model.workspace_id == ws_id)
    with app.session() as s:
        return s.scalar(q)


def test_the_cutoff_is_midnight_utc_n_days_ago():
    assert retention.cutoff(30, now=NOW) == dt.datetime(2025, 3, 1)
    assert retention.cutoff(1, now=dt.datetime(2025, 1, 1, 0, 0, 1)) == dt.datetime(2024, 12, 31)


def test_a_run_deletes_what_is_older_than_the_retention_and_nothing_else(app, shop):
    retention.set_retention(app, shop, 30)
    result = retention.apply(app, shop, now=NOW)

    assert result["cutoff"] == "2025-03-01T00:00:00"
    # Orders 40 and 31 days old went; 30 days (after midnight of the cut-off day) stays.
    assert result["warehouse"] == {"events": 2, "order_items": 2}
    events = app.warehouse.table(shop.id, "events")
    assert sorted(events.order_id.to_pyarrow().to_pylist()) == ["o3", "o4"]
    items = app.warehouse.table(shop.id, "order_items")
    assert sorted(items.unit_price.to_pyarrow().to_pylist()) == [3.0, 4.0]
    assert int(app.warehouse.table(shop.id, "customers").count().execute()) == 2
    assert int(app.warehouse.table(shop.id, "memberships").count().execute()) == 2

    # Finished old messages and firings went; pending and recent ones stay.
    assert result["catalog"] == {
        "webhook_messages": 2,
        "webhook_attempts": 2,
        "email_messages": 2,
        "trigger_firings": 1,
    }
    with app.session() as s:
        hooks = sorted(s.scalars(sa.select(WebhookMessage.status)))
        mails = sorted(s.scalars(sa.select(EmailMessage.status)))
        firings = sorted(s.scalars(sa.select(TriggerFiring.status)))
    assert hooks == ["delivered", "pending"]
    assert mails == ["pending", "sent"]
    assert firings == ["done", "pending"]
    assert _count(app, WebhookAttempt) == 2

    # A second run finds nothing more, and writes no audit entry.
    again = retention.apply(app, shop, now=NOW)
    assert again["warehouse"] == {"events": 0, "order_items": 0}
    with app.session() as s:
        runs = list(
            s.scalars(sa.select(AuditEntry).where(AuditEntry.action == "privacy.retention_run"))
        )
    assert [(r.actor, r.workspace_id) for r in runs] == [("strata", shop.id)]


def test_setting_and_turning_off_retention_is_audited_once_each(app, shop):
    retention.set_retention(app, shop, 90)
    retention.set_retention(app, shop, None)
    with app.session() as s:
        entries = list(
            s.scalars(sa.select(AuditEntry).where(AuditEntry.action == "privacy.retention"))
        )
    assert [e.details for e in entries] == [
        {"before": None, "after": 90},
        {"before": 90, "after": None},
    ]
    assert retention.apply(app, shop, now=NOW) == {"retention_days": None}
    assert int(app.warehouse.table(shop.id, "events").count().execute()) == 4
    assert "privacy.retention_run" in ACTIONS


@pytest.mark.parametrize("days", [0, -1, retention.MAX_DAYS + 1, True])
def test_a_bad_retention_is_refused_and_changes_nothing(app, shop, days):
    with pytest.raises(InputError, match="whole number of days"):
        retention.set_retention(app, shop, days)
    assert app.workspace("shop").retention_days is None


def test_a_server_applies_retention_in_the_background(app, shop):
    retention.set_retention(app, shop, 1)  # everything loaded is older than a day
    workers = ActionWorkers(app)
    worker = workers.retention
    lock = threading.RLock()
    worker.writing = lambda: _locked(lock, app)
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while worker.runs < 1:
            assert time.monotonic() < deadline, "the retention worker never ran"
            time.sleep(0.02)
    finally:
        worker.stop()
    assert int(app.warehouse.table(shop.id, "events").count().execute()) == 0


class _locked:
    """The service's ``writing()``: the stores, with the write lock held."""

    def __init__(self, lock, app):
        self.lock, self.app = lock, app

    def __enter__(self):
        self.lock.acquire()
        return self.app

    def __exit__(self, *exc):
        self.lock.release()


def test_the_command_line_sets_shows_and_runs_retention(cli, app, shop):
    app.__dict__.pop("warehouse").close()  # a DuckDB file is opened by one process at a time
    r = cli("privacy", "retention", "--workspace", "shop", "--days", "30", check=True)
    assert "kept 30 days" in r.stdout
    r = cli("privacy", "retention", "run", "--workspace", "shop", "--json", check=True)
    assert '"retention_days": 30' in r.stdout and '"events": 4' in r.stdout
    r = cli("privacy", "retention", "--workspace", "shop", "--off", check=True)
    assert "for ever" in r.stdout
    assert app.workspace("shop").retention_days is None


def test_the_docstring_examples_of_the_privacy_modules_run():
    import doctest

    from strata.privacy import subjects

    for module in (retention, subjects):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__
