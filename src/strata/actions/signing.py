"""Standard Webhooks signatures: secrets, message ids, headers and rotation.

Every webhook carries three headers (https://www.standardwebhooks.com/):

- ``webhook-id``: the message id, the same on every attempt (the receiver's
  idempotency key);
- ``webhook-timestamp``: when this attempt was made, in whole seconds since the epoch;
- ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``, one
  per valid secret, separated by spaces.

A secret is ``whsec_`` and the base64 of 24 to 64 random bytes; the HMAC key is those
bytes. After a rotation the replaced secret keeps signing for :data:`PREVIOUS_VALID`
beside the new one, so a receiver can switch over without losing a message.

>>> secret = new_secret()
>>> headers = webhook_headers([secret], "msg_1", 1674087231, b"{}")
>>> sorted(headers)
['content-type', 'webhook-id', 'webhook-signature', 'webhook-timestamp']
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import os
import secrets as _random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from strata.errors import InputError

PREFIX = "whsec_"
#: Bytes of a new secret (the specification allows 24 to 64).
SECRET_BYTES = 32
MIN_BYTES, MAX_BYTES = 24, 64
#: How long a replaced secret keeps signing after a rotation.
PREVIOUS_VALID = dt.timedelta(hours=24)


def new_secret(nbytes: int = SECRET_BYTES) -> str:
    """A fresh signing secret: ``whsec_`` and the base64 of ``nbytes`` random bytes."""
    if not MIN_BYTES <= nbytes <= MAX_BYTES:
        raise InputError(f"a signing secret has {MIN_BYTES} to {MAX_BYTES} bytes, not {nbytes}")
    return PREFIX + base64.b64encode(os.urandom(nbytes)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret (its base64-decoded part)."""
    if not secret.startswith(PREFIX):
        raise InputError("a signing secret starts with whsec_")
    try:
        key = base64.b64decode(secret[len(PREFIX) :], validate=True)
    except binascii.Error:
        raise InputError("a signing secret is whsec_ and base64 text") from None
    if not MIN_BYTES <= len(key) <= MAX_BYTES:
        raise InputError(f"a signing secret holds {MIN_BYTES} to {MAX_BYTES} bytes")
    return key


def new_msg_id() -> str:
    """A message id: ``msg_``, the time in milliseconds (hex) and 64 random bits.

    Ids sort by creation and never hold a ``.``, which would blur the signed content.
    """
    return f"msg_{time.time_ns() // 1_000_000:012x}{_random.token_hex(8)}"


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One signature: ``v1,`` and the base64 HMAC-SHA256 of ``{id}.{timestamp}.{body}``."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def webhook_headers(
    secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The headers of one attempt, signed with every valid secret."""
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp)),
        "webhook-signature": " ".join(sign(s, msg_id, timestamp, body) for s in secrets),
    }


@dataclass(frozen=True)
class Keyring:
    """An endpoint's secrets: the current one, and the one it replaced until it expires.

    >>> ring = Keyring(new_secret())
    >>> now = dt.datetime(2025, 1, 1)
    >>> rotated = ring.rotate(now)
    >>> len(rotated.valid(now)), len(rotated.valid(now + dt.timedelta(hours=25)))
    (2, 1)
    """

    current: str
    previous: str | None = None
    previous_expires_at: dt.datetime | None = None

    def valid(self, now: dt.datetime) -> list[str]:
        """The secrets that sign at ``now`` (naive UTC): the current one first."""
        keep = self.previous and self.previous_expires_at and now < self.previous_expires_at
        return [self.current, self.previous] if keep else [self.current]

    def rotate(self, now: dt.datetime) -> Keyring:
        """A new current secret; the current one signs :data:`PREVIOUS_VALID` longer.

        A secret replaced earlier is dropped now: two secrets at most.
        """
        return Keyring(new_secret(), self.current, now + PREVIOUS_VALID)

    def to_dict(self) -> dict[str, Any]:
        expires = self.previous_expires_at
        return {
            "current": self.current,
            "previous": self.previous,
            "previous_expires_at": expires.isoformat() if expires else None,
        }

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> Keyring:
        expires = value.get("previous_expires_at")
        return cls(
            value["current"],
            value.get("previous"),
            dt.datetime.fromisoformat(expires) if expires else None,
        )
