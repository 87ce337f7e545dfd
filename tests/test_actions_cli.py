"""The action commands end to end through the real ``strata`` command: a webhook
endpoint, an automation an import sets off, one pass of the runner, a campaign."""

from __future__ import annotations

import json

import pytest
from standardwebhooks.webhooks import Webhook

from tests.test_actions_api import Receiver
from tests.test_segments_cli import BIG_SPENDERS, ORDERS_1, ORDERS_2, _json

pytestmark = pytest.mark.parametrize("warehouse_url", ["duckdb"], indirect=True)


@pytest.fixture
def receiver(monkeypatch):
    r = Receiver()
    monkeypatch.setenv("STRATA_WEBHOOK_ALLOW", "127.0.0.1")
    yield r
    r.close()


def test_an_import_sets_off_an_automation_that_the_runner_sends_as_a_webhook(
    cli, tmp_path, receiver
):
    (tmp_path / "orders1.csv").write_text(ORDERS_1)
    (tmp_path / "orders2.csv").write_text(ORDERS_2)
    (tmp_path / "big.yaml").write_text(BIG_SPENDERS)
    _json(cli("import", tmp_path / "orders1.csv", "--json"))
    _json(cli("segments", "create", tmp_path / "big.yaml", "--json"))
    added = cli("webhooks", "add", "crm", receiver.url)
    assert added.returncode == 0, added.stderr
    secret = next(w for w in added.stdout.split() if w.startswith("whsec_"))
    made = _json(
        cli(
            "automations",
            "create",
            "Tell the CRM",
            "--segment",
            "Big spenders",
            "--on",
            "enter",
            "--do",
            "webhook",
            "--with",
            "destination=crm",
            "--json",
        )
    )
    assert made["action"]["kind"] == "webhook" and made["trigger"] == "enter"

    _json(cli("import", tmp_path / "orders2.csv", "--json"))  # A2 spends 940: enters
    pending = _json(cli("automations", "firings", "--json"))
    assert [(f["change"], f["status"]) for f in pending["items"]] == [("enter", "pending")]
    ran = cli("automations", "run")
    assert ran.returncode == 0, ran.stderr
    assert "acted on 1 firings" in ran.stdout and "1 webhook deliveries" in ran.stdout
    ((headers, body),) = receiver.wait(1)
    Webhook(secret).verify(body, headers)
    assert json.loads(body)["data"]["customer"]["external_id"] == "A2"
    done = _json(cli("automations", "firings", "--json"))["items"][0]
    assert done["status"] == "done" and headers["webhook-id"] in done["outcome"]


def test_a_campaign_from_the_command_line(cli, tmp_path):
    (tmp_path / "orders1.csv").write_text(ORDERS_1)
    (tmp_path / "big.yaml").write_text(BIG_SPENDERS)
    _json(cli("import", tmp_path / "orders1.csv", "--json"))
    _json(cli("segments", "create", tmp_path / "big.yaml", "--json"))
    made = _json(
        cli(
            "campaigns",
            "create",
            "Thank you",
            "--segment",
            "Big spenders",
            "--do",
            "tag",
            "--with",
            "tag=thanked",
            "--holdout",
            "0",
            "--goal",
            "order",
            "--json",
        )
    )
    assert made["status"] == "draft" and made["holdout_percent"] == 0
    assert _json(cli("campaigns", "launch", str(made["id"]), "--json"))["status"] == "running"
    assert cli("automations", "run").returncode == 0
    results = _json(cli("campaigns", "results", str(made["id"]), "--json"))
    assert results["acted"] == {"done": 1}
    assert results["treated"] == {"customers": 1, "converted": 0, "rate": 0.0}
    text = cli("campaigns", "results", str(made["id"])).stdout
    assert "treated" in text and "holdout" in text
    bad = cli("campaigns", "create", "x", "--segment", "Big spenders", "--do", "fax")
    assert bad.returncode == 2 and "needs a kind" in bad.stderr and "Traceback" not in bad.stderr
