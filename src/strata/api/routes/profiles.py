"""The personalization API: a profile's current segments, traits and predictions."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["personalization"])
