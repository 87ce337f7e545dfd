"""Mailchimp (Marketing API 3.0): a segment is a TAG on the members of an audience.

A run adds people to the audience in batches of 500 (``POST /lists/{list_id}``, the
documented batch limit), then tags them through the tag's static segment
(``POST /lists/{list_id}/segments/{segment_id}`` with ``members_to_add``, 500 at most);
people who leave the segment lose the tag (``members_to_remove``) and stay in the
audience, as Mailchimp recommends (deleting contacts loses their history).

New contacts get the status ``transactional`` by default: Strata does not know whether
a customer agreed to marketing e-mail, and Mailchimp's terms forbid marking people
``subscribed`` without that consent. Say ``status_if_new: subscribed`` in the
destination's config when your data holds that consent. Existing contacts keep their
status (``update_existing: false``), so a sync never re-subscribes someone who
unsubscribed.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from typing import Any

from strata.actions.syncs.http import SyncFailed, ToolClient, chunks, title_and_detail
from strata.errors import InputError

TITLE = "Mailchimp"
KEY_NAME = "API key"
#: Members per batch subscribe call and per ``members_to_add``/``members_to_remove``.
BATCH = 500
#: Tags per page when looking the tag up by name (the documented maximum ``count``).
PAGE = 1000
STATUSES = ("transactional", "subscribed", "pending")
DEFAULT_STATUS = "transactional"
#: The error code of a batch subscribe for an address already in the audience.
EXISTS = "ERROR_CONTACT_EXISTS"
_DATA_CENTER = re.compile(r"^[a-z]{2,5}[0-9]{1,3}$")


def check_config(api_key: str, config: dict[str, Any]) -> dict[str, Any]:
    """The destination's settings: its data center (from the key) and status of new contacts."""
    status = config.get("status_if_new", DEFAULT_STATUS)
    if status not in STATUSES:
        raise InputError(f"status_if_new must be one of {', '.join(STATUSES)}, not {status!r}")
    out: dict[str, Any] = {"status_if_new": status}
    _, _, dc = api_key.rpartition("-")
    if _DATA_CENTER.match(dc):
        out["data_center"] = dc
    elif not config.get("base_url"):
        raise InputError(
            "a Mailchimp API key ends with its data center, like …-us6; "
            "copy the whole key from Mailchimp (Profile → Extras → API keys)"
        )
    return out


def connection(api_key: str, config: dict[str, Any]) -> tuple[str, dict[str, str]]:
    base = config.get("base_url") or f"https://{config['data_center']}.api.mailchimp.com/3.0"
    token = base64.b64encode(f"strata:{api_key}".encode()).decode()
    headers = {
        "Authorization": f"Basic {token}",
        "Accept": "application/json",
        "Content-Type": "application/json",
    }
    return base, headers


def message(body: Any) -> str:
    """Mailchimp's problem details: ``title`` and ``detail``."""
    if not isinstance(body, dict):
        return ""
    return title_and_detail(body.get("title"), body.get("detail"))


def subscriber_hash(email: str) -> str:
    """Mailchimp's id of a member: the MD5 of the lower-cased address."""
    return hashlib.md5(email.lower().encode()).hexdigest()


class Mailchimp:
    """Pushes e-mails into an audience and keeps a tag on exactly the segment's members."""

    def __init__(self, client: ToolClient, sync_config: dict[str, Any], config: dict[str, Any]):
        self.client = client
        self.list_id = sync_config["list_id"]
        self.tag = sync_config["tag"]
        self.tag_id = sync_config.get("tag_id")
        self.status = config.get("status_if_new", DEFAULT_STATUS)
        #: Addresses Mailchimp refused, and why; they are tried again next run.
        self.rejected: dict[str, str] = {}
        #: What to remember in the sync's config (the tag's segment id).
        self.config_updates: dict[str, Any] = {}

    def add(self, emails: list[str]) -> Iterator[dict[str, str]]:
        """Each batch of addresses confirmed in the audience with the tag: email -> member id."""
        for batch in chunks(emails, BATCH):
            members = [{"email_address": e, "status": self.status} for e in batch]
            answer = self.client.call(
                "POST",
                f"/lists/{self.list_id}",
                json_body={"members": members, "update_existing": False},
            )
            present = self._in_audience(answer.body or {})
            wanted = [e for e in batch if e in present]
            refused = self._tag(wanted, "members_to_add")
            self.rejected.update(refused)
            yield {e: subscriber_hash(e) for e in wanted if e not in refused}

    def remove(self, people: list[tuple[str, str | None]]) -> Iterator[list[str]]:
        """Each batch of addresses whose tag is gone (they stay in the audience)."""
        for batch in chunks([email for email, _ in people], BATCH):
            self._tag(batch, "members_to_remove")
            # An address not in the audience, or without the tag, is as good as removed.
            yield batch

    def _in_audience(self, body: dict[str, Any]) -> set[str]:
        present = {
            str(m.get("email_address", "")).lower()
            for m in (body.get("new_members") or []) + (body.get("updated_members") or [])
        }
        for error in body.get("errors") or []:
            address = str(error.get("email_address", "")).lower()
            if error.get("error_code") == EXISTS:
                present.add(address)
            elif address:
                self.rejected[address] = str(error.get("error") or "refused by Mailchimp")
        return present

    def _tag(self, emails: list[str], field: str) -> dict[str, str]:
        """Add or remove the tag; the addresses Mailchimp refused, and why."""
        if not emails:
            return {}
        segment_id = self._tag_id()
        try:
            answer = self.client.call(
                "POST", f"/lists/{self.list_id}/segments/{segment_id}", json_body={field: emails}
            )
        except SyncFailed as exc:
            if " answered 404:" in str(exc) and self.tag_id is not None:
                self.config_updates["tag_id"] = None  # deleted in Mailchimp: look it up again
                raise SyncFailed(
                    f"{exc}; the tag {self.tag!r} may have been deleted in Mailchimp: "
                    "run the sync again with --full to tag everyone again"
                ) from None
            raise
        refused: dict[str, str] = {}
        for error in (answer.body or {}).get("errors") or []:
            text = str(error.get("error") or "") or "Mailchimp did not tag it"
            if "already" in text.lower():  # already tagged: that is what we want
                continue
            for address in error.get("email_addresses") or []:
                refused[str(address).lower()] = text
        return refused

    def _tag_id(self) -> str:
        """The id of the tag's static segment: remembered, found by name, or created."""
        if self.tag_id is None:
            self.tag_id = self._find_tag() or self._create_tag()
            self.config_updates["tag_id"] = self.tag_id
        return self.tag_id

    def _find_tag(self) -> str | None:
        offset = 0
        while True:
            answer = self.client.call(
                "GET",
                f"/lists/{self.list_id}/segments",
                params={"type": "static", "count": PAGE, "offset": offset},
            )
            segments = (answer.body or {}).get("segments") or []
            for seg in segments:
                if str(seg.get("name", "")).casefold() == self.tag.casefold():
                    return str(seg["id"])
            offset += len(segments)
            if not segments or offset >= int((answer.body or {}).get("total_items") or 0):
                return None

    def _create_tag(self) -> str:
        answer = self.client.call(
            "POST",
            f"/lists/{self.list_id}/segments",
            json_body={"name": self.tag, "static_segment": []},
        )
        return str((answer.body or {})["id"])
