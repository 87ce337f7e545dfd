"""The plan, its limits and this month's usage."""

from fastapi import APIRouter

from strata.api.schemas import ERRORS

router = APIRouter(prefix="/workspaces/{workspace_id}", tags=["plan"], responses=ERRORS)
