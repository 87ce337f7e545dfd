"""Imports: routes under /api/v1/workspaces/{workspace_id}/…"""

from __future__ import annotations

from fastapi import APIRouter

from strata.api.schemas import ERRORS

router = APIRouter(prefix="/workspaces/{workspace_id}", tags=["imports"], responses=ERRORS)
