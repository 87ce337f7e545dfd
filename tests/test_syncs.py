"""Syncs to Mailchimp, Klaviyo and HubSpot, against a local server that imitates them.

The fake (:mod:`tests.fake_marketing`) checks every request against the shape the tools
document and refuses anything else with a reason, so each test also asserts
``fake.refused == []``. Tests assert the exact requests a run sends: everyone first,
then only entries and exits, then nothing.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from strata.actions.secrets import Sealer
from strata.actions.syncs import SYNC_KINDS, SyncFailed, Syncs
from strata.catalog import Destination, SyncMember
from strata.context import Strata
from strata.errors import Conflict, InputError, NotFound
from strata.ingest.pipeline import run_import
from strata.segments.engine import Segments
from tests.conftest import ApiServer, api_settings, duckdb_settings
from tests.fake_marketing import JSON_API, FakeMarketing

#: The list each tool's syncs go to in the fake.
LIST = {"mailchimp": "aud1", "klaviyo": "LiSt01", "hubspot": "7"}
TAG = "Strata VIP"
#: Customers: C2 has no e-mail, C8 shares C1's address.
PEOPLE = {
    "C1": "a@shop.io",
    "C2": "",
    "C3": "b@shop.io",
    "C4": "c@shop.io",
    "C5": "d@shop.io",
    "C6": "e@shop.io",
    "C7": "f@shop.io",
    "C8": "A@Shop.io",
}


@pytest.fixture
def fake():
    with FakeMarketing() as server:
        yield server


def write_customers(path: Path, people: dict[str, str]) -> Path:
    path.write_text("customer_id,email\n" + "".join(f"{c},{e}\n" for c, e in people.items()))
    return path


@pytest.fixture
def app(tmp_path):
    settings = dataclasses.replace(duckdb_settings(tmp_path), webhook_allow=("127.0.0.1",))
    with Strata(settings) as strata:
        strata.workspace("default", create=True)
        run_import(strata, write_customers(tmp_path / "people.csv", PEOPLE))
        yield strata


class Sleeps(list):
    """Records the pauses a run asks for instead of taking them."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps():
    return Sleeps()


def syncs_of(app: Strata, sleeps: Sleeps) -> Syncs:
    return Syncs(app, sleep=sleeps, poll_every=0.0, timeout=10)


def connect(syncs: Syncs, fake: FakeMarketing, kind: str, name: str | None = None):
    dest = syncs.add_destination(
        name or kind, kind, api_key=fake.key(kind), config={"base_url": fake.base(kind)}
    )
    tag = TAG if kind == "mailchimp" else None
    return dest, syncs.create(dest.id, "VIP", list_id=LIST[kind], tag=tag)


def members(app: Strata, ids: list[str]) -> None:
    segs = Segments(app)
    try:
        segs.get("VIP")
    except NotFound:
        segs.save_static("VIP", ids)
    else:
        segs.save_static("VIP", ids, mode="replace")


def rows(app: Strata, sync_id: int) -> set[tuple[int, str, str | None]]:
    with app.session() as s:
        return {
            tuple(r)
            for r in s.execute(
                sa.select(SyncMember.customer_id, SyncMember.email, SyncMember.remote_id).where(
                    SyncMember.sync_id == sync_id
                )
            )
        }


def calls(fake: FakeMarketing, tool: str) -> list[tuple]:
    return [(r.method, r.path, r.query, r.body) for r in fake.sent(tool)]


def counts(result: dict) -> dict:
    keys = ("added", "removed", "skipped_no_email", "rejected", "requests", "full")
    return {k: result[k] for k in keys}


# -- first everyone, then only changes, then nothing ------------------------------------------
def test_mailchimp_gets_everyone_then_only_entries_and_exits_then_nothing(app, fake, sleeps):
    syncs = syncs_of(app, sleeps)
    members(app, ["C1", "C2", "C3", "C4"])
    _, sync = connect(syncs, fake, "mailchimp")

    first = syncs.run(sync.id)
    assert counts(first) == {
        "added": 3,
        "removed": 0,
        "skipped_no_email": 1,
        "rejected": 0,
        "requests": 4,
        "full": True,
    }
    tag_id = syncs.get(sync.id).config["tag_id"]
    assert calls(fake, "mailchimp") == [
        (
            "POST",
            "/lists/aud1",
            {},
            {
                "members": [
                    {"email_address": "a@shop.io", "status": "transactional"},
                    {"email_address": "b@shop.io", "status": "transactional"},
                    {"email_address": "c@shop.io", "status": "transactional"},
                ],
                "update_existing": False,
            },
        ),
        ("GET", "/lists/aud1/segments", {"type": "static", "count": "1000", "offset": "0"}, None),
        ("POST", "/lists/aud1/segments", {}, {"name": TAG, "static_segment": []}),
        (
            "POST",
            f"/lists/aud1/segments/{tag_id}",
            {},
            {"members_to_add": ["a@shop.io", "b@shop.io", "c@shop.io"]},
        ),
    ]
    key = base64.b64decode(fake.sent()[0].headers["authorization"].split()[1]).decode()
    assert key.endswith(":" + fake.mailchimp_key)
    assert fake.tagged("aud1", TAG) == {"a@shop.io", "b@shop.io", "c@shop.io"}

    # C4 (c@) leaves, C5 and C6 (d@, e@) enter.
    fake.clear()
    members(app, ["C1", "C2", "C3", "C5", "C6"])
    second = syncs.run(sync.id)
    assert counts(second) == {
        "added": 2,
        "removed": 1,
        "skipped_no_email": 1,
        "rejected": 0,
        "requests": 3,
        "full": False,
    }
    assert calls(fake, "mailchimp") == [
        ("POST", f"/lists/aud1/segments/{tag_id}", {}, {"members_to_remove": ["c@shop.io"]}),
        (
            "POST",
            "/lists/aud1",
            {},
            {
                "members": [
                    {"email_address": "d@shop.io", "status": "transactional"},
                    {"email_address": "e@shop.io", "status": "transactional"},
                ],
                "update_existing": False,
            },
        ),
        (
            "POST",
            f"/lists/aud1/segments/{tag_id}",
            {},
            {"members_to_add": ["d@shop.io", "e@shop.io"]},
        ),
    ]
    assert fake.tagged("aud1", TAG) == {"a@shop.io", "b@shop.io", "d@shop.io", "e@shop.io"}
    assert "c@shop.io" in fake.mc_members["aud1"]  # untagged, still in the audience

    fake.clear()
    third = syncs.run(sync.id)
    assert counts(third) == {**counts(second), "added": 0, "removed": 0, "requests": 0}
    assert fake.sent() == []
    assert {e for _, e, _ in rows(app, sync.id)} == {
        "a@shop.io",
        "b@shop.io",
        "d@shop.io",
        "e@shop.io",
    }
    assert syncs.get(sync.id).status == "ok"
    assert fake.refused == []


def test_klaviyo_gets_everyone_then_only_entries_and_exits_then_nothing(app, fake, sleeps):
    syncs = syncs_of(app, sleeps)
    members(app, ["C1", "C2", "C3", "C4"])
    _, sync = connect(syncs, fake, "klaviyo")

    first = syncs.run(sync.id)
    assert counts(first)["added"] == 3 and first["requests"] == 3 and first["full"]
    job = next(iter(fake.kl_jobs))
    assert calls(fake, "klaviyo") == [
        (
            "POST",
            "/api/profile-bulk-import-jobs",
            {},
            {
                "data": {
                    "type": "profile-bulk-import-job",
                    "attributes": {
                        "profiles": {
                            "data": [
                                {"type": "profile", "attributes": {"email": e}}
                                for e in ("a@shop.io", "b@shop.io", "c@shop.io")
                            ]
                        }
                    },
                    "relationships": {"lists": {"data": [{"type": "list", "id": "LiSt01"}]}},
                }
            },
        ),
        ("GET", f"/api/profile-bulk-import-jobs/{job}", {}, None),
        (
            "GET",
            f"/api/profile-bulk-import-jobs/{job}/profiles",
            {"fields[profile]": "email", "page[size]": "100"},
            None,
        ),
    ]
    headers = fake.sent()[0].headers
    assert headers["authorization"] == f"Klaviyo-API-Key {fake.klaviyo_key}"
    assert headers["revision"] == "2026-04-15"
    assert headers["content-type"] == headers["accept"] == JSON_API
    assert fake.klaviyo_list("LiSt01") == {"a@shop.io", "b@shop.io", "c@shop.io"}
    # The profile ids Klaviyo answered are what the sync remembers.
    assert {(e, r) for _, e, r in rows(app, sync.id)} == {
        (e, fake.kl_profiles[e]) for e in ("a@shop.io", "b@shop.io", "c@shop.io")
    }

    fake.clear()
    members(app, ["C1", "C2", "C3", "C5", "C6"])
    second = syncs.run(sync.id)
    assert (second["added"], second["removed"], second["requests"]) == (2, 1, 4)
    sent = calls(fake, "klaviyo")
    assert sent[0] == (
        "DELETE",
        "/api/lists/LiSt01/relationships/profiles",
        {},
        {"data": [{"type": "profile", "id": fake.kl_profiles["c@shop.io"]}]},
    )
    profiles = sent[1][3]["data"]["attributes"]["profiles"]["data"]
    assert [p["attributes"]["email"] for p in profiles] == ["d@shop.io", "e@shop.io"]
    assert [c[0] for c in sent[1:]] == ["POST", "GET", "GET"]
    assert fake.klaviyo_list("LiSt01") == {"a@shop.io", "b@shop.io", "d@shop.io", "e@shop.io"}

    fake.clear()
    assert syncs.run(sync.id)["requests"] == 0 and fake.sent() == []
    assert fake.refused == []


def test_hubspot_gets_everyone_then_only_entries_and_exits_then_nothing(app, fake, sleeps):
    syncs = syncs_of(app, sleeps)
    members(app, ["C1", "C2", "C3", "C4"])
    _, sync = connect(syncs, fake, "hubspot")

    first = syncs.run(sync.id)
    assert counts(first) == {
        "added": 3,
        "removed": 0,
        "skipped_no_email": 1,
        "rejected": 0,
        "requests": 2,
        "full": True,
    }
    ids = {e: fake.hs_contacts[e] for e in ("a@shop.io", "b@shop.io", "c@shop.io")}
    assert calls(fake, "hubspot") == [
        (
            "POST",
            "/crm/v3/objects/contacts/batch/upsert",
            {},
            {
                "inputs": [
                    {"idProperty": "email", "id": e, "properties": {"email": e}}
                    for e in ("a@shop.io", "b@shop.io", "c@shop.io")
                ]
            },
        ),
        ("PUT", "/crm/v3/lists/7/memberships/add", {}, list(ids.values())),
    ]
    assert fake.sent()[0].headers["authorization"] == f"Bearer {fake.hubspot_token}"
    assert fake.hubspot_list("7") == set(ids)

    fake.clear()
    members(app, ["C1", "C2", "C3", "C5", "C6"])
    second = syncs.run(sync.id)
    assert (second["added"], second["removed"], second["requests"]) == (2, 1, 3)
    sent = calls(fake, "hubspot")
    assert sent[0] == ("PUT", "/crm/v3/lists/7/memberships/remove", {}, [ids["c@shop.io"]])
    assert [i["id"] for i in sent[1][3]["inputs"]] == ["d@shop.io", "e@shop.io"]
    assert sent[2] == (
        "PUT",
        "/crm/v3/lists/7/memberships/add",
        {},
        [fake.hs_contacts["d@shop.io"], fake.hs_contacts["e@shop.io"]],
    )
    assert fake.hubspot_list("7") == {"a@shop.io", "b@shop.io", "d@shop.io", "e@shop.io"}

    fake.clear()
    assert syncs.run(sync.id)["requests"] == 0 and fake.sent() == []
    assert fake.refused == []


def test_customers_sharing_an_address_are_one_person_in_the_tool(app, fake, sleeps):
    """C1 and C8 share a@ (in other case): it is sent once, and stays while one of them is in."""
    syncs = syncs_of(app, sleeps)
    members(app, ["C1", "C8", "C3"])
    _, sync = connect(syncs, fake, "hubspot")
    first = syncs.run(sync.id)
    assert first["added"] == 2 and first["members"] == 2
    assert {(c, e) for c, e, _ in rows(app, sync.id)} == {
        (1, "a@shop.io"),
        (8, "a@shop.io"),
        (3, "b@shop.io"),
    }
    fake.clear()
    members(app, ["C8", "C3"])  # C1 leaves, its address stays through C8
    again = syncs.run(sync.id)
    assert (again["added"], again["removed"], again["requests"]) == (0, 0, 0)
    assert {c for c, _, _ in rows(app, sync.id)} == {8, 3}
    members(app, ["C3"])
    assert syncs.run(sync.id)["removed"] == 1
    assert fake.hubspot_list("7") == {"b@shop.io"}


def test_full_sends_everyone_again(app, fake, sleeps):
    syncs = syncs_of(app, sleeps)
    members(app, ["C1", "C3"])
    _, sync = connect(syncs, fake, "mailchimp")
    syncs.run(sync.id)
    fake.clear()
    again = syncs.run(sync.id, full=True)
    assert again["full"] and again["added"] == 2
    # Already in the audience (ERROR_CONTACT_EXISTS) and already tagged: both fine.
    assert [r.path for r in fake.sent()] == [
        "/lists/aud1",
        f"/lists/aud1/segments/{syncs.get(sync.id).config['tag_id']}",
    ]
    assert fake.refused == []


# -- batch limits ---------------------------------------------------------------------------------
def test_every_tool_gets_batches_within_its_documented_limits(tmp_path, fake, sleeps):
    settings = dataclasses.replace(duckdb_settings(tmp_path), webhook_allow=("127.0.0.1",))
    people = {f"P{i:04d}": f"p{i:04d}@shop.io" for i in range(1, 1201)}
    with Strata(settings) as app:
        app.workspace("default", create=True)
        run_import(app, write_customers(tmp_path / "many.csv", people))
        members(app, list(people))
        syncs = syncs_of(app, sleeps)
        made = {kind: connect(syncs, fake, kind)[1] for kind in SYNC_KINDS}
        for kind, sync in made.items():
            assert syncs.run(sync.id)["added"] == 1200, kind

        def sizes(method: str, path_end: str, field=None) -> list[int]:
            out = []
            for r in fake.sent():
                if r.method == method and r.path.endswith(path_end):
                    body = r.body if field is None else field(r.body)
                    out.append(len(body))
            return out

        assert sizes("POST", "/lists/aud1", lambda b: b["members"]) == [500, 500, 200]
        tag_id = syncs.get(made["mailchimp"].id).config["tag_id"]
        assert sizes("POST", f"/segments/{tag_id}", lambda b: b["members_to_add"]) == [
            500,
            500,
            200,
        ]
        jobs = [r.body for r in fake.sent("klaviyo") if r.method == "POST"]
        assert [len(j["data"]["attributes"]["profiles"]["data"]) for j in jobs] == [1200]
        assert len([r for r in fake.sent("klaviyo") if r.path.endswith("/profiles")]) == 12
        assert sizes("POST", "/batch/upsert", lambda b: b["inputs"]) == [100] * 12
        assert sizes("PUT", "/memberships/add") == [100] * 12
        assert len(fake.tagged("aud1", TAG)) == len(fake.klaviyo_list("LiSt01")) == 1200
        assert len(fake.hubspot_list("7")) == 1200

        fake.clear()
        members(app, ["P0001"])  # 1,199 leave
        for kind, sync in made.items():
            assert syncs.run(sync.id)["removed"] == 1199, kind
        assert sizes("POST", f"/segments/{tag_id}", lambda b: b["members_to_remove"]) == [
            500,
            500,
            199,
        ]
        assert sizes("DELETE", "/relationships/profiles", lambda b: b["data"]) == [1000, 199]
        assert sizes("PUT", "/memberships/remove") == [100] * 11 + [99]
        assert fake.tagged("aud1", TAG) == fake.klaviyo_list("LiSt01") == {"p0001@shop.io"}
        assert fake.hubspot_list("7") == {"p0001@shop.io"}
    assert fake.refused == []


# -- failures ------------------------------------------------------------------------------------
EXPECTED_401 = {
    "mailchimp": "Mailchimp answered 401: API Key Invalid: Your API key may be invalid, or "
    "you've attempted to access the wrong datacenter; check the API key of destination "
    "'mailchimp'",
    "klaviyo": "Klaviyo answered 401: Authentication credentials were not provided: Missing "
    "or invalid private key; check the private API key of destination 'klaviyo'",
    "hubspot": "HubSpot answered 401: Authentication credentials not found. This API supports "
    "OAuth 2.0 authentication and you can find more details at "
    "https://developers.hubspot.com/docs/methods/auth/oauth-overview; check the private app "
    "token of destination 'hubspot'",
}


@pytest.mark.parametrize("kind", SYNC_KINDS)
def test_a_refused_key_fails_in_one_clear_line_and_records_nothing(app, fake, sleeps, kind):
    syncs = syncs_of(app, sleeps)
    members(app, ["C1", "C3", "C4"])
    _, sync = connect(syncs, fake, kind)
    syncs.run(sync.id)
    before = rows(app, sync.id)
    members(app, ["C1", "C3", "C5", "C6"])
    fake.rotate_key(kind)  # the key was revoked in the tool

    with pytest.raises(SyncFailed) as failed:
        syncs.run(sync.id)
    assert str(failed.value) == EXPECTED_401[kind]
    assert rows(app, sync.id) == before
    stored = syncs.get(sync.id)
    assert stored.status == "failed" and stored.last_result["error"] == EXPECTED_401[kind]
    assert fake.refused == []


def test_a_failure_half_way_keeps_what_was_confirmed_and_the_next_run_sends_the_rest(
    tmp_path, fake, sleeps
):
    settings = dataclasses.replace(duckdb_settings(tmp_path), webhook_allow=("127.0.0.1",))
    people = {f"P{i:03d}": f"p{i:03d}@shop.io" for i in range(1, 251)}
    with Strata(settings) as app:
        app.workspace("default", create=True)
        run_import(app, write_customers(tmp_path / "p.csv", people))
        members(app, list(people))
        syncs = syncs_of(app, sleeps)
        _, sync = connect(syncs, fake, "hubspot")
        # upsert 1, add 1, then the second upsert fails.
        fake.fail(
            "hubspot",
            500,
            {"status": "error", "message": "Internal error", "category": "INTERNAL_ERROR"},
            after=2,
        )
        with pytest.raises(
            SyncFailed,
            match=r"^HubSpot answered 500: Internal error; HubSpot has a problem on its side",
        ):
            syncs.run(sync.id)
        assert len(rows(app, sync.id)) == 100
        assert syncs.get(sync.id).last_result["added"] == 100

        fake.clear()
        result = syncs.run(sync.id)
        assert (result["added"], result["full"]) == (150, False)
        upserted = [
            i["id"] for r in fake.sent() if r.path.endswith("/upsert") for i in r.body["inputs"]
        ]
        assert upserted == sorted(people.values())[100:]
        assert len(rows(app, sync.id)) == 250 and len(fake.hubspot_list("7")) == 250
    assert fake.refused == []


def test_an_answer_of_another_shape_fails_in_one_line_too(app, fake, sleeps):
    syncs = syncs_of(app, sleeps)
    members(app, ["C1"])
    _, sync = connect(syncs, fake, "klaviyo")
    fake.fail("klaviyo", 202, {"job": "somewhere else"})
    with pytest.raises(
        SyncFailed, match=r"^Klaviyo answered in a form Strata cannot read \(KeyError"
    ):
        syncs.run(sync.id)
    assert syncs.get(sync.id).status == "failed" and rows(app, sync.id) == set()


RATE_LIMITED = {
    "mailchimp": {"title": "Too Many Requests", "status": 429, "detail": "slow down"},
    "klaviyo": {
        "errors": [
            {
                "id": "x",
                "code": "throttled",
                "title": "Request was throttled.",
                "detail": "Expected available in 3 seconds.",
            }
        ]
    },
    "hubspot": {
        "status": "error",
        "message": "You have reached your secondly limit.",
        "errorType": "RATE_LIMIT",
    },
}


@pytest.mark.parametrize("kind", SYNC_KINDS)
def test_a_429_is_waited_out_as_retry_after_says_and_sent_again(app, fake, sleeps, kind):
    syncs = syncs_of(app, sleeps)
    members(app, ["C1", "C3"])
    _, sync = connect(syncs, fake, kind)
    fake.fail(kind, 429, RATE_LIMITED[kind], headers={"Retry-After": "3"})
    result = syncs.run(sync.id)
    assert result["added"] == 2
    assert sleeps[0] == 3.0
    first, second = fake.sent()[:2]
    assert first.status == 429 and 200 <= second.status < 300
    assert (first.method, first.path, first.body) == (second.method, second.path, second.body)
    assert result["requests"] == len(fake.sent())
    assert fake.refused == []


REFUSAL = {
    "mailchimp": "<address> looks fake or invalid, please enter a real email address.",
    "klaviyo": "Invalid email address",
    "hubspot": 'Property values were not valid: [{"isValid": false, "message": "Email address '
    '<address> is invalid", "error": "INVALID_EMAIL", "name": "email"}]',
}


@pytest.mark.parametrize("kind", SYNC_KINDS)
def test_an_address_the_tool_refuses_is_counted_and_tried_again_next_run(
    tmp_path, fake, sleeps, kind
):
    settings = dataclasses.replace(duckdb_settings(tmp_path), webhook_allow=("127.0.0.1",))
    with Strata(settings) as app:
        app.workspace("default", create=True)
        people = {"G1": "good@shop.io", "B1": "bad@shop.invalid"}
        run_import(app, write_customers(tmp_path / "g.csv", people))
        members(app, ["G1", "B1"])
        syncs = syncs_of(app, sleeps)
        _, sync = connect(syncs, fake, kind)
        result = syncs.run(sync.id)
        assert (result["added"], result["rejected"]) == (1, 1)
        # The reason is kept without the address: every role may read a sync's result.
        assert result["rejections"] == {REFUSAL[kind]: 1}
        assert "bad@shop.invalid" not in json.dumps(syncs.get(sync.id).last_result)
        assert {e for _, e, _ in rows(app, sync.id)} == {"good@shop.io"}
        fake.clear()
        again = syncs.run(sync.id)
        assert (again["added"], again["rejected"]) == (0, 1)
        assert "bad@shop.invalid" in json.dumps([r.body for r in fake.sent()])
        assert "good@shop.io" not in json.dumps([r.body for r in fake.sent()])
    assert fake.refused == []


def test_a_klaviyo_import_job_is_waited_for_and_a_slow_one_is_left_to_the_next_run(
    app, fake, sleeps
):
    fake.klaviyo_polls = 3
    syncs = Syncs(app, sleep=sleeps, poll_every=0.25)
    members(app, ["C1", "C3"])
    _, sync = connect(syncs, fake, "klaviyo")
    assert syncs.run(sync.id)["added"] == 2
    assert sleeps == [0.25, 0.25, 0.25]
    assert [r.path.rsplit("/", 1)[-1] for r in fake.sent()][1:4] == [next(iter(fake.kl_jobs))] * 3

    members(app, ["C1", "C3", "C4"])
    impatient = Syncs(app, sleep=sleeps, poll_every=0.25, wait_at_most=0.0)
    with pytest.raises(SyncFailed, match=r"import job job\d+ is still queued after 0 s; run"):
        impatient.run(sync.id)
    assert {e for _, e, _ in rows(app, sync.id)} == {"a@shop.io", "b@shop.io"}
    assert syncs.run(sync.id)["added"] == 1  # sent again, now confirmed
    assert fake.refused == []


def test_a_static_list_is_required_in_hubspot(app, fake, sleeps):
    syncs = syncs_of(app, sleeps)
    members(app, ["C1"])
    dest = syncs.add_destination(
        "hs", "hubspot", api_key=fake.hubspot_token, config={"base_url": fake.base("hubspot")}
    )
    sync = syncs.create(dest.id, "VIP", list_id="8")
    with pytest.raises(SyncFailed, match="HubSpot answered 400: List 8 has processingType DYNAMIC"):
        syncs.run(sync.id)
    assert rows(app, sync.id) == set()


def test_a_second_run_of_a_sync_is_refused_while_the_first_runs(app, fake, sleeps):
    import threading
    import time

    syncs = syncs_of(app, sleeps)
    members(app, ["C1", "C3"])
    _, sync = connect(syncs, fake, "hubspot")
    fake.hold()
    results = []
    first = threading.Thread(target=lambda: results.append(syncs.run(sync.id)))
    first.start()
    try:
        deadline = time.monotonic() + 10
        while not fake.sent() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert fake.sent(), "the first run never called HubSpot"
        with pytest.raises(Conflict, match=f"sync {sync.id} is running"):
            syncs.run(sync.id)
    finally:
        fake.release()
        first.join(timeout=30)
    assert results[0]["added"] == 2
    assert syncs.run(sync.id)["requests"] == 0  # free again once it ended


# -- checks before anything is sent -------------------------------------------------------------
def test_destinations_and_syncs_are_checked_before_anything_is_sent(app, fake, sleeps):
    syncs = syncs_of(app, sleeps)
    members(app, ["C1"])
    with pytest.raises(InputError, match="ends with its data center"):
        syncs.add_destination("mc", "mailchimp", api_key="0123456789abcdef")
    with pytest.raises(InputError, match="kind must be one of mailchimp, klaviyo, hubspot"):
        syncs.add_destination("x", "webhook", api_key="0123456789abcdef")
    with pytest.raises(InputError, match="unknown setting"):
        syncs.add_destination("k", "klaviyo", api_key="pk_0123456789", config={"list": "x"})
    with pytest.raises(InputError, match="base_url must be"):
        syncs.add_destination(
            "k", "klaviyo", api_key="pk_0123456789", config={"base_url": "file:///etc"}
        )
    with pytest.raises(InputError, match="printable"):
        syncs.add_destination("k", "klaviyo", api_key="pk_01234\r\nX-Evil: 1")
    dest = syncs.add_destination("k", "klaviyo", api_key="pk_0123456789")
    assert dest.config == {"revision": "2026-04-15", "key_hint": "…6789"}
    with pytest.raises(Conflict):
        syncs.add_destination("k", "hubspot", api_key="pat-0123456789")
    with pytest.raises(InputError, match="list_id must be"):
        syncs.create(dest.id, "VIP", list_id="../../admin")
    with pytest.raises(InputError, match="only Mailchimp syncs take a tag"):
        syncs.create(dest.id, "VIP", list_id="LiSt01", tag="x")
    with pytest.raises(NotFound):
        syncs.create(dest.id, "No such segment", list_id="LiSt01")
    sync = syncs.create("k", "VIP", list_id="LiSt01")
    with pytest.raises(Conflict):
        syncs.create(dest.id, "VIP", list_id="other")
    mc = syncs.add_destination("mc", "mailchimp", api_key="0123456789abcdef-us6")
    assert mc.config["data_center"] == "us6" and mc.config["status_if_new"] == "transactional"
    assert mc.config["key_hint"] == "…cdef"
    assert syncs.create(mc.id, "VIP", list_id="aud1").config["tag"] == "VIP"
    syncs.remove_destination("k")
    with pytest.raises(NotFound):
        syncs.get(sync.id)
    assert fake.sent() == []


def test_tool_addresses_go_through_the_guard_on_outgoing_requests(app, fake, sleeps):
    syncs = syncs_of(app, sleeps)
    members(app, ["C1"])
    with pytest.raises(InputError, match="localhost is an internal name: syncs cannot reach it"):
        syncs.add_destination(
            "hs", "hubspot", api_key=fake.hubspot_token, config={"base_url": "http://localhost/x"}
        )
    dest, sync = connect(syncs, fake, "hubspot")
    # An address that passed when saved is checked again on every connection.
    with app.session() as s:
        row = s.get(Destination, dest.id)
        row.config = {
            **row.config,
            "base_url": fake.base("hubspot").replace("127.0.0.1", "localhost"),
        }
        s.commit()
    with pytest.raises(SyncFailed, match=r"^HubSpot may not be called at http://localhost:\d+/"):
        syncs.run(sync.id)
    assert fake.sent() == [] and rows(app, sync.id) == set()


# -- credentials ---------------------------------------------------------------------------------
def _router_in(server: ApiServer) -> None:
    from strata.api.routes import syncs as routes

    prefix = "/api/v1/workspaces/{workspace_id}/syncs"
    if not any(getattr(r, "path", "").startswith(prefix) for r in server.app.routes):
        server.app.include_router(routes.router, prefix="/api/v1")


@pytest.fixture
def api(tmp_path):
    server = ApiServer(api_settings(tmp_path, webhook_allow=("127.0.0.1",)))
    _router_in(server)
    yield server
    server.close()


def test_keys_are_sealed_at_rest_and_never_in_an_answer(api, fake, tmp_path):
    owner = api.owner()
    ws = owner.post("/api/v1/workspaces", json={"name": "shop"}).json()["id"]
    with api.service.writing() as app:
        run_import(app, write_customers(tmp_path / "c.csv", PEOPLE), workspace="shop")
        Segments(app, "shop").save_static("VIP", ["C1", "C3"])
        segment_id = Segments(app, "shop").get("VIP").id
    base = f"/api/v1/workspaces/{ws}/syncs"
    answers = []
    made = {}
    for kind in SYNC_KINDS:
        r = owner.post(
            f"{base}/destinations",
            json={
                "name": kind,
                "kind": kind,
                "api_key": fake.key(kind),
                "config": {"base_url": fake.base(kind)},
            },
        )
        assert r.status_code == 201, r.text
        assert r.json()["key_hint"] == "…" + fake.key(kind).removesuffix("-us6")[-4:]
        answers.append(r.text)
        r = owner.post(
            base,
            json={
                "destination_id": r.json()["id"],
                "segment_id": segment_id,
                "list_id": LIST[kind],
            },
        )
        assert r.status_code == 201, r.text
        made[kind] = r.json()
        answers.append(r.text)
        run = owner.post(f"{base}/{made[kind]['id']}/run")
        assert run.status_code == 200, run.text
        assert run.json()["added"] == 2 and run.json()["full"] is True
        answers.append(run.text)
    for path in ("/destinations", "", f"/{made['klaviyo']['id']}"):
        r = owner.get(base + path)
        assert r.status_code == 200, r.text
        answers.append(r.text)
    assert owner.get(f"{base}/{made['hubspot']['id']}").json()["synced_members"] == 2
    for kind in SYNC_KINDS:
        assert not any(fake.key(kind) in text for text in answers), kind

    # At rest: the raw catalog row holds none of the key, and the sealed value opens to it.
    with sqlite3.connect(tmp_path / "catalog.db") as con:
        raw = con.execute("SELECT * FROM destinations ORDER BY id").fetchall()
    con.close()
    sealer = Sealer(api.service.settings)
    for kind, row in zip(SYNC_KINDS, raw, strict=True):
        assert fake.key(kind) not in repr(row)
        sealed = next(v for v in row if isinstance(v, str) and v.startswith("gAAAA"))
        assert sealer.unseal(sealed) == {"api_key": fake.key(kind)}
    assert fake.refused == []


def test_the_api_answers_a_refusal_with_502_and_roles_apply(api, fake, tmp_path):
    owner = api.owner()
    ws = owner.post("/api/v1/workspaces", json={"name": "shop"}).json()["id"]
    with api.service.writing() as app:
        run_import(app, write_customers(tmp_path / "c.csv", PEOPLE), workspace="shop")
        Segments(app, "shop").save_static("VIP", ["C1"])
        segment_id = Segments(app, "shop").get("VIP").id
    base = f"/api/v1/workspaces/{ws}/syncs"
    marketer = api.user_with_role(ws, "marketer")
    viewer = api.user_with_role(ws, "viewer")
    body = {
        "name": "mc",
        "kind": "mailchimp",
        "api_key": "wrong-key-0000-us6",
        "config": {"base_url": fake.base("mailchimp")},
    }
    assert marketer.post(f"{base}/destinations", json=body).status_code == 403
    r = owner.post(f"{base}/destinations", json=body)
    assert r.status_code == 201
    assert viewer.get(f"{base}/destinations").status_code == 403
    assert marketer.get(f"{base}/destinations").status_code == 200
    r = marketer.post(
        base, json={"destination_id": r.json()["id"], "segment_id": segment_id, "list_id": "aud1"}
    )
    assert r.status_code == 201, r.text
    sync_id = r.json()["id"]
    assert viewer.post(f"{base}/{sync_id}/run").status_code == 403
    assert viewer.get(f"{base}/{sync_id}").status_code == 200
    run = marketer.post(f"{base}/{sync_id}/run")
    assert run.status_code == 502
    assert run.json()["detail"].startswith("Mailchimp answered 401: API Key Invalid")
    assert owner.get(f"{base}/{sync_id}").json()["status"] == "failed"
    assert owner.post(f"{base}/{sync_id + 100}/run").status_code == 404
    assert owner.delete(f"{base}/{sync_id}").status_code == 204
    assert owner.get(f"{base}/{sync_id}").status_code == 404


# -- the command line -----------------------------------------------------------------------------
def test_the_commands_add_a_destination_create_run_and_remove_a_sync(tmp_path, fake):
    from typer.testing import CliRunner

    from strata.cli_syncs import app as syncs_app

    settings = duckdb_settings(tmp_path)
    with Strata(settings) as app:
        app.workspace("default", create=True)
        run_import(app, write_customers(tmp_path / "c.csv", PEOPLE))
        Segments(app).save_static("VIP", ["C1", "C2", "C3"])
    env = {
        "STRATA_HOME": str(tmp_path),
        "STRATA_DATABASE_URL": settings.database_url,
        "STRATA_WAREHOUSE_URL": settings.warehouse_url,
        "STRATA_WEBHOOK_ALLOW": "127.0.0.1",
        "MC_KEY": fake.mailchimp_key,
        "COLUMNS": "200",
    }
    runner = CliRunner()

    def strata(*args: str):
        result = runner.invoke(syncs_app, list(args), env=env)
        assert result.exit_code == 0, (args, result.output, result.exception)
        return result.output

    out = strata(
        "destination-add",
        "mc",
        "--kind",
        "mailchimp",
        "--api-key-env",
        "MC_KEY",
        "--base-url",
        fake.base("mailchimp"),
    )
    assert "…cdef" in out and fake.mailchimp_key not in out
    listed = strata("destinations")
    assert "mc" in listed and fake.mailchimp_key not in listed
    assert "Sync 1" in strata("create", "mc", "VIP", "--list-id", "aud1", "--tag", TAG)
    assert "+2 added" in strata("run", "1")
    assert "aud1 / Strata VIP" in strata("list")
    assert fake.tagged("aud1", TAG) == {"a@shop.io", "b@shop.io"}
    assert "Removed sync 1" in strata("remove", "1")
    failed = runner.invoke(
        syncs_app,
        ["destination-add", "x", "--kind", "hubspot", "--api-key-env", "UNSET_VAR"],
        env=env,
    )
    assert isinstance(failed.exception, InputError)
    assert fake.refused == []


def test_a_segment_change_makes_its_sync_due_and_the_runner_sends_it(app, fake, sleeps):
    from strata.actions.automations import AutomationRunner
    from strata.actions.triggers import SYNC_EVERY
    from strata.catalog import Sync
    from strata.catalog.models import utcnow

    syncs = syncs_of(app, sleeps)
    members(app, ["C1", "C3"])
    _, sync = connect(syncs, fake, "hubspot")
    assert syncs.get(sync.id).due_at is None  # made after the change: nothing due yet
    syncs.run(sync.id)
    fake.clear()

    members(app, ["C1", "C3", "C4"])  # C4 enters
    due = syncs.get(sync.id).due_at
    # Just synced: due once the minimum interval has passed, not at once.
    assert due == syncs.get(sync.id).last_synced_at + SYNC_EVERY
    runner = AutomationRunner(app)
    runner.run_due()
    assert fake.sent() == []
    with app.session() as s:
        s.get(Sync, sync.id).due_at = utcnow()
        s.commit()
    runner.run_due()
    assert fake.hubspot_list("7") == {"a@shop.io", "b@shop.io", "c@shop.io"}
    assert syncs.get(sync.id).due_at is None
    assert fake.refused == []
