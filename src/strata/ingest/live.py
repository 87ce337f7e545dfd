"""Live event ingest: Segment-spec calls in, durably queued, loaded into the warehouse,
memberships of the touched customers updated incrementally.

(Skeleton: the live-ingest work fills this in; the contract below is what the
service calls.)
"""

from __future__ import annotations

import threading
from typing import Any

from strata.context import Strata


class LiveIngest:
    """The queue of accepted events and the loader that empties it."""

    def __init__(self, app: Strata, *, write_lock: threading.RLock):
        self.app = app
        self.write_lock = write_lock

    def accept(self, workspace_id: int, messages: list[dict[str, Any]]) -> int:
        """Store validated messages durably; returns how many. Called before the 200."""
        raise NotImplementedError

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None
