"""Personal fields: which customer columns hold personal data (masked for viewers)."""

from fastapi import APIRouter

from strata.api.schemas import ERRORS

router = APIRouter(
    prefix="/workspaces/{workspace_id}/personal-fields", tags=["privacy"], responses=ERRORS
)
