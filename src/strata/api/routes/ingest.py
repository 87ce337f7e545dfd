"""Live event ingest in the Segment tracking spec: /v1/identify, /v1/track, /v1/batch."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1", tags=["ingest"])
