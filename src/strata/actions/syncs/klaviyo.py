"""Klaviyo (JSON:API, revision-dated): a segment is a list of profiles.

A run adds people with a bulk import job that upserts their profiles and puts them on
the list (``POST /api/profile-bulk-import-jobs``, up to 10,000 profiles per job), waits
for the job to complete, then reads the imported profiles' ids back
(``GET /api/profile-bulk-import-jobs/{id}/profiles``, 100 per page): only those are
recorded as synced. Leavers come off the list by profile id
(``DELETE /api/lists/{id}/relationships/profiles``, 1,000 per call); their profiles and
consent stay as they are.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

from strata.actions.syncs.http import SyncFailed, ToolClient, chunks, title_and_detail
from strata.errors import InputError

TITLE = "Klaviyo"
KEY_NAME = "private API key"
BASE_URL = "https://a.klaviyo.com"
#: The API revision requests are made for (a destination may pin another).
REVISION = "2026-04-15"
JSON_API = "application/vnd.api+json"
#: Profiles per bulk import job, per removal call, and per page read back.
IMPORT_BATCH = 10_000
REMOVE_BATCH = 1_000
PAGE = 100
_REVISION = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z0-9]+)?$")


def check_config(api_key: str, config: dict[str, Any]) -> dict[str, Any]:
    revision = config.get("revision", REVISION)
    if not isinstance(revision, str) or not _REVISION.match(revision):
        raise InputError(f"revision must be a Klaviyo API revision like {REVISION}")
    return {"revision": revision}


def connection(api_key: str, config: dict[str, Any]) -> tuple[str, dict[str, str]]:
    headers = {
        "Authorization": f"Klaviyo-API-Key {api_key}",
        "revision": config.get("revision", REVISION),
        "Accept": JSON_API,
        "Content-Type": JSON_API,
    }
    return config.get("base_url") or BASE_URL, headers


def message(body: Any) -> str:
    """The first of Klaviyo's JSON:API ``errors``: its title and detail."""
    errors = body.get("errors") if isinstance(body, dict) else None
    if not errors or not isinstance(errors[0], dict):
        return ""
    return title_and_detail(errors[0].get("title"), errors[0].get("detail"))


class Klaviyo:
    """Keeps a Klaviyo list holding exactly the segment's members."""

    def __init__(
        self,
        client: ToolClient,
        sync_config: dict[str, Any],
        config: dict[str, Any],
        *,
        poll_every: float = 2.0,
        wait_at_most: float = 600.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.client = client
        self.list_id = sync_config["list_id"]
        self.poll_every = poll_every
        self.wait_at_most = wait_at_most
        self.sleep = sleep
        self.rejected: dict[str, str] = {}
        self.config_updates: dict[str, Any] = {}

    def add(self, emails: list[str]) -> Iterator[dict[str, str]]:
        """Each import job's addresses now on the list: email -> profile id."""
        for batch in chunks(emails, IMPORT_BATCH):
            job = self._start(batch)
            attributes = self._wait(job)
            ids = self._imported(job["id"])
            missing = [e for e in batch if e not in ids]
            if missing:
                reasons = self._errors(job["id"]) if attributes.get("failed_count") else {}
                for e in missing:
                    self.rejected[e] = reasons.get(e, "Klaviyo did not import it")
            yield {e: ids[e] for e in batch if e in ids}

    def remove(self, people: list[tuple[str, str | None]]) -> Iterator[list[str]]:
        """Each batch of addresses taken off the list (by their profile ids)."""
        known = [(email, pid) for email, pid in people if pid]
        for batch in chunks(known, REMOVE_BATCH):
            self.client.call(
                "DELETE",
                f"/api/lists/{self.list_id}/relationships/profiles",
                json_body={"data": [{"type": "profile", "id": pid} for _, pid in batch]},
            )
            yield [email for email, _ in batch]
        # Without a profile id nothing can be removed, and nothing was ever added.
        unknown = [email for email, pid in people if not pid]
        if unknown:
            yield unknown

    def _start(self, emails: list[str]) -> dict[str, Any]:
        body = {
            "data": {
                "type": "profile-bulk-import-job",
                "attributes": {
                    "profiles": {
                        "data": [{"type": "profile", "attributes": {"email": e}} for e in emails]
                    }
                },
                "relationships": {"lists": {"data": [{"type": "list", "id": self.list_id}]}},
            }
        }
        answer = self.client.call("POST", "/api/profile-bulk-import-jobs", json_body=body)
        return (answer.body or {})["data"]

    def _wait(self, job: dict[str, Any]) -> dict[str, Any]:
        """The job's attributes once complete; it may take a while on Klaviyo's side."""
        deadline = time.monotonic() + self.wait_at_most
        attributes = job.get("attributes") or {}
        while attributes.get("status") != "complete":
            if attributes.get("status") == "cancelled":
                raise SyncFailed(
                    f"Klaviyo cancelled import job {job['id']}; run the sync again "
                    "(nothing of that job was recorded)"
                )
            if time.monotonic() >= deadline:
                raise SyncFailed(
                    f"Klaviyo's import job {job['id']} is still {attributes.get('status')} "
                    f"after {self.wait_at_most:.0f} s; run the sync again later (it sends "
                    "only what was not confirmed, and sending twice is harmless)"
                )
            self.sleep(self.poll_every)
            answer = self.client.call("GET", f"/api/profile-bulk-import-jobs/{job['id']}")
            attributes = ((answer.body or {}).get("data") or {}).get("attributes") or {}
        return attributes

    def _imported(self, job_id: str) -> dict[str, str]:
        """email -> profile id of every profile the job imported."""
        ids: dict[str, str] = {}
        for row in self._pages(
            f"/api/profile-bulk-import-jobs/{job_id}/profiles", {"fields[profile]": "email"}
        ):
            email = str((row.get("attributes") or {}).get("email") or "").lower()
            if email and row.get("id"):
                ids[email] = str(row["id"])
        return ids

    def _errors(self, job_id: str) -> dict[str, str]:
        """email -> why, for the first page of the job's import errors."""
        answer = self.client.call(
            "GET",
            f"/api/profile-bulk-import-jobs/{job_id}/import-errors",
            params={"page[size]": PAGE},
        )
        reasons: dict[str, str] = {}
        for row in (answer.body or {}).get("data") or []:
            attributes = row.get("attributes") or {}
            payload = attributes.get("original_payload") or {}
            email = (
                (payload.get("attributes") or payload).get("email")
                if isinstance(payload, dict)
                else None
            )
            if email:
                reasons[str(email).lower()] = str(
                    attributes.get("detail") or attributes.get("title")
                )
        return reasons

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every row of a cursor-paginated collection (the cursor is read from links.next)."""
        params = {**params, "page[size]": PAGE}
        while True:
            answer = self.client.call("GET", path, params=params)
            body = answer.body or {}
            yield from body.get("data") or []
            cursor = _cursor((body.get("links") or {}).get("next"))
            if not cursor:
                return
            params = {**params, "page[cursor]": cursor}


def _cursor(next_link: str | None) -> str | None:
    """The ``page[cursor]`` of a next link; the link itself is not followed (its host could
    be anything), only its cursor is sent to the destination's own address."""
    if not next_link:
        return None
    values = parse_qs(urlsplit(next_link).query).get("page[cursor]")
    return values[0] if values else None
