"""Profiles for personalization: a customer's current segments, traits and predictions,
cached in process or in Redis and invalidated when memberships change.

(Skeleton: the personalization work fills this in; the contract below is what the
rest of Strata calls.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from strata.config import Settings


class ProfileCache:
    """Cached profiles of all workspaces: in this process, or in Redis (``redis_url``)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> ProfileCache:
        return cls()

    def get(self, workspace_id: int, external_id: str) -> dict[str, Any] | None:
        return None

    def put(self, workspace_id: int, external_id: str, profile: dict[str, Any]) -> None:
        return None

    def invalidate(self, workspace_id: int, customer_ids: Sequence[int] | None = None) -> None:
        """Forget the profiles of ``customer_ids`` (None: every profile of the workspace)."""
        return None

    def close(self) -> None:
        return None
