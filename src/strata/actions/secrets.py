"""Credentials at rest: sealed with the installation's key, never stored in clear.

Destinations keep their passwords, API keys and webhook signing secrets sealed
(Fernet: AES-128-CBC with an HMAC-SHA256 tag), so a copy of the catalog alone gives
none of them away. The key is ``STRATA_SECRET_KEY``, or a file ``secret.key`` that
the first run writes into ``STRATA_HOME`` (readable by its owner only).

>>> sealed = Sealer(settings).seal({"api_key": "abc"})  # doctest: +SKIP
>>> Sealer(settings).unseal(sealed)  # doctest: +SKIP
{'api_key': 'abc'}
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from strata.config import Settings
from strata.errors import ConfigError

KEY_FILE = "secret.key"


class Sealer:
    """Seals and unseals JSON values with the installation's key; signs short tokens."""

    def __init__(self, settings: Settings):
        self._key = _key(settings)
        self._fernet = Fernet(self._key)

    def seal(self, value: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(value, sort_keys=True).encode()).decode()

    def unseal(self, token: str | None) -> dict[str, Any]:
        if not token:
            return {}
        try:
            return json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken:
            raise ConfigError(
                "stored credentials cannot be unsealed: STRATA_SECRET_KEY (or secret.key) "
                "is not the key they were sealed with; restore it or enter the credentials again"
            ) from None

    def sign(self, purpose: str, message: str) -> str:
        """An HMAC-SHA256 of ``message`` for ``purpose`` (hex), e.g. for unsubscribe links."""
        key = hmac.new(self._key, purpose.encode(), hashlib.sha256).digest()
        return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()

    def verify(self, purpose: str, message: str, signature: str) -> bool:
        return hmac.compare_digest(self.sign(purpose, message), signature)


def _key(settings: Settings) -> bytes:
    if settings.secret_key:
        key = settings.secret_key.encode()
        try:
            Fernet(key)
        except ValueError:
            raise ConfigError(
                "STRATA_SECRET_KEY is not a Fernet key (urlsafe base64 of 32 bytes); make one "
                "with `strata secret-key`"
            ) from None
        return key
    path = Path(settings.home) / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process wrote it first
            pass
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(Fernet.generate_key())
    key = path.read_bytes().strip()
    try:
        Fernet(key)
    except ValueError:
        raise ConfigError(
            f"{path} does not hold a Fernet key; delete it or set STRATA_SECRET_KEY"
        ) from None
    return key
