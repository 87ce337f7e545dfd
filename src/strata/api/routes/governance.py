"""Approvals: drafts of segments, automations and syncs that send data out, versions and diffs."""

from fastapi import APIRouter

from strata.api.schemas import ERRORS

router = APIRouter(prefix="/workspaces/{workspace_id}", tags=["approvals"], responses=ERRORS)
