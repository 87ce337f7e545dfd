"""Data rights (erasure, access), suppressions, retention and personal fields."""

from fastapi import APIRouter

from strata.api.schemas import ERRORS

router = APIRouter(prefix="/workspaces/{workspace_id}/privacy", tags=["privacy"], responses=ERRORS)
