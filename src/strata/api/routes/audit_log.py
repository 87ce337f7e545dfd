"""The audit log: who did what, and when (append-only, filterable, exportable)."""

from fastapi import APIRouter

from strata.api.schemas import ERRORS

router = APIRouter(prefix="/workspaces/{workspace_id}/audit", tags=["audit"], responses=ERRORS)
