"""Background jobs: follow an import, refresh or model fit."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from strata.api.deps import Access, PageDep, ServiceDep, require
from strata.api.masking import Masker
from strata.api.schemas import ERRORS, JobPublic, PageOf

router = APIRouter(prefix="/workspaces/{workspace_id}/jobs", tags=["jobs"], responses=ERRORS)


@router.get("", response_model=PageOf[JobPublic])
def list_jobs(
    access: Annotated[Access, Depends(require("jobs.read"))], svc: ServiceDep, page: PageDep
):
    """The workspace's jobs, newest first."""
    total, rows = svc.jobs.list(access.workspace.id, limit=page.limit, offset=page.offset)
    return page.answer([_public(job, access.masker) for job in rows], total)


@router.get("/{job_id}", response_model=JobPublic)
def get_job(
    job_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    access: Annotated[Access, Depends(require("jobs.read"))],
    svc: ServiceDep,
):
    """One job: status, progress (0 to 1), what it is doing, and its result or error."""
    return _public(svc.jobs.get(access.workspace.id, job_id), access.masker)


def _public(job, masker: Masker) -> JobPublic:
    """A job as the caller may see it: a viewer gets personal values in its result masked
    (an import's report quotes bad values; other results may hold customers)."""
    out = JobPublic.model_validate(job)
    if not masker.active or not out.result:
        return out
    result = masker.import_report(out.result) if out.kind == "import" else masker.mask(out.result)
    return out.model_copy(update={"result": result})
