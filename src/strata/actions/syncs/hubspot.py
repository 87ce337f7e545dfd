"""HubSpot (CRM API v3, private app token): a segment is a MANUAL (static) contact list.

A run upserts contacts by e-mail, 100 per call (``POST
/crm/v3/objects/contacts/batch/upsert`` with ``idProperty: email``), which answers their
record ids, and puts those on the list (``PUT /crm/v3/lists/{listId}/memberships/add``).
Leavers come off the list by record id (``PUT …/memberships/remove``); their contacts
stay in the CRM. The list must be a MANUAL (or SNAPSHOT) list: HubSpot computes the
members of an active list itself and refuses changes to them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from strata.actions.syncs.http import ToolClient, chunks

TITLE = "HubSpot"
KEY_NAME = "private app token"
BASE_URL = "https://api.hubapi.com"
#: Contacts per batch upsert (the documented limit) and record ids per membership change.
UPSERT_BATCH = 100
MEMBERSHIP_BATCH = 100


def check_config(api_key: str, config: dict[str, Any]) -> dict[str, Any]:
    return {}


def connection(api_key: str, config: dict[str, Any]) -> tuple[str, dict[str, str]]:
    headers = {
        "Authorization": f"Bearer {api_key}",
        "Accept": "application/json",
        "Content-Type": "application/json",
    }
    return config.get("base_url") or BASE_URL, headers


def message(body: Any) -> str:
    """HubSpot's error ``message`` (its ``category`` when there is none)."""
    if not isinstance(body, dict):
        return ""
    return str(body.get("message") or body.get("category") or "")


class HubSpot:
    """Keeps a MANUAL HubSpot list holding exactly the segment's members."""

    def __init__(self, client: ToolClient, sync_config: dict[str, Any], config: dict[str, Any]):
        self.client = client
        self.list_id = sync_config["list_id"]
        self.rejected: dict[str, str] = {}
        self.config_updates: dict[str, Any] = {}

    def add(self, emails: list[str]) -> Iterator[dict[str, str]]:
        """Each batch of addresses whose contacts are now on the list: email -> record id."""
        for batch in chunks(emails, UPSERT_BATCH):
            ids = self._upsert(batch)
            missing: set[str] = set()
            for id_batch in chunks(list(ids.values()), MEMBERSHIP_BATCH):
                missing |= self._membership("add", id_batch)
            for e, record in ids.items():
                if record in missing:
                    self.rejected[e] = "HubSpot did not find the contact it had just answered"
            yield {e: record for e, record in ids.items() if record not in missing}

    def remove(self, people: list[tuple[str, str | None]]) -> Iterator[list[str]]:
        """Each batch of addresses taken off the list (by their record ids)."""
        known = [(email, record) for email, record in people if record]
        for batch in chunks(known, MEMBERSHIP_BATCH):
            # A record HubSpot reports missing is not on the list either: removed all the same.
            self._membership("remove", [record for _, record in batch])
            yield [email for email, _ in batch]
        unknown = [email for email, record in people if not record]
        if unknown:
            yield unknown

    def _upsert(self, emails: list[str]) -> dict[str, str]:
        inputs = [{"idProperty": "email", "id": e, "properties": {"email": e}} for e in emails]
        answer = self.client.call(
            "POST", "/crm/v3/objects/contacts/batch/upsert", json_body={"inputs": inputs}
        )
        body = answer.body or {}
        ids: dict[str, str] = {}
        for result in body.get("results") or []:
            email = str((result.get("properties") or {}).get("email") or "").lower()
            if email and result.get("id") is not None:
                ids[email] = str(result["id"])
        reason = "; ".join(str(err.get("message") or "") for err in body.get("errors") or [])
        for e in emails:
            if e not in ids:
                self.rejected[e] = reason or "HubSpot did not create or update the contact"
        return ids

    def _membership(self, change: str, records: list[str]) -> set[str]:
        """Add or remove ``records``; the ids HubSpot reported missing."""
        answer = self.client.call(
            "PUT", f"/crm/v3/lists/{self.list_id}/memberships/{change}", json_body=records
        )
        return {str(r) for r in (answer.body or {}).get("recordIdsMissing") or []}
