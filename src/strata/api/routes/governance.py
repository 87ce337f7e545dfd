"""Approvals: drafts of segments, automations and syncs that send data out, versions and diffs.

Routes under ``/api/v1/workspaces/{workspace_id}``, each a thin shell over
:mod:`strata.governance` (what ``strata approvals …`` calls):

- ``GET /approvals``: whether the workspace requires approval, and the changes waiting;
- ``PUT /approvals/settings``: turn approvals on or off (``approvals.review``);
- ``POST /approvals/{segments|automations|syncs}/{id}/approve`` and ``…/reject``
  (``approvals.review``: owners and admins);
- ``GET /versions/{segments|automations|syncs}/{id}`` and ``…/diff?from=&to=``.
"""

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query
from pydantic import Field

from strata import governance
from strata.api.deps import Access, ServiceDep, require
from strata.api.schemas import ERRORS, Schema
from strata.catalog.models import ObjectVersion

router = APIRouter(prefix="/workspaces/{workspace_id}", tags=["approvals"], responses=ERRORS)

Reviewer = Annotated[Access, Depends(require("approvals.review"))]
VersionNo = Annotated[int | None, Query(ge=0, le=2**31 - 1)]


class ApprovalSettings(Schema):
    require_approval: bool = Field(
        description="Whether segments, automations and syncs that send data out wait for "
        "an owner's or admin's approval after each change."
    )


class Review(Schema):
    note: Annotated[str | None, Field(max_length=2000, description="Why, for the record.")] = None


class Change(Schema):
    path: str = Field(description="Where, e.g. ``action.destination`` or ``definition.value[1]``.")
    change: Literal["added", "removed", "changed"]
    old: Any = None
    new: Any = None


class Pending(Schema):
    object_type: Literal["segment", "automation", "sync"]
    object_id: int
    name: str = Field(description="A segment's or automation's name; a sync's id.")
    version: int = Field(description="The version that waits.")
    approved_version: int | None = Field(description="The last approved one; None if new.")
    created_by: int | None
    created_at: dt.datetime
    changes: list[Change] = Field(description="From the last approved version to this one.")


class ApprovalsPublic(Schema):
    require_approval: bool
    pending: list[Pending]


class VersionPublic(Schema):
    version: int
    status: Literal["draft", "approved", "rejected", "superseded"]
    snapshot: dict[str, Any] = Field(description="The fields a change can touch, as they were.")
    created_by: int | None
    created_at: dt.datetime
    reviewed_by: int | None
    reviewed_at: dt.datetime | None
    note: str | None


class DiffPublic(Schema):
    from_: int = Field(alias="from", serialization_alias="from")
    to: int
    changes: list[Change]


def _version(v: ObjectVersion) -> dict[str, Any]:
    return {
        "version": v.version,
        "status": v.status,
        "snapshot": v.snapshot,
        "created_by": v.created_by,
        "created_at": v.created_at,
        "reviewed_by": v.reviewed_by,
        "reviewed_at": v.reviewed_at,
        "note": v.note,
    }


@router.get("/approvals", response_model=ApprovalsPublic)
def list_approvals(access: Annotated[Access, Depends(require("actions.read"))], svc: ServiceDep):
    """Whether approvals are required, and every change waiting for one, oldest first."""
    with svc.app.session() as s:
        from strata.catalog import Workspace

        required = s.get(Workspace, access.workspace.id).require_approval
    pending = governance.pending(svc.app, access.workspace)
    pending = [{**p, "changes": access.masker.changes(p["changes"])} for p in pending]
    return {"require_approval": required, "pending": pending}


@router.put("/approvals/settings", response_model=ApprovalSettings)
def set_approvals(body: ApprovalSettings, access: Reviewer, svc: ServiceDep):
    """Turn approvals on (what exists stays approved) or off (drafts stay drafts)."""
    row = governance.set_required(svc.app, access.workspace, body.require_approval)
    return {"require_approval": row.require_approval}


def _add_routes(object_type: str, plural: str, param: str, read: str) -> None:
    """approve, reject, versions and diff of one kind of object, its id named ``param``."""
    Id = Annotated[
        int, Path(alias=param, ge=1, le=2**31 - 1, description=f"The {object_type}'s id.")
    ]
    Reader = Annotated[Access, Depends(require(read))]
    a = "an" if object_type[0] in "aeiou" else "a"

    def approve(
        object_id: Id,
        access: Reviewer,
        svc: ServiceDep,
        body: Annotated[Review | None, Body()] = None,
    ):
        v = governance.approve(
            svc.app, access.workspace, object_type, object_id, body.note if body else None
        )
        svc.actions.automations.wake()  # held firings and due syncs may act now
        return _version(v)

    def reject(
        object_id: Id,
        access: Reviewer,
        svc: ServiceDep,
        body: Annotated[Review | None, Body()] = None,
    ):
        with svc.writing() as app:  # restoring a segment evaluates it again
            v = governance.reject(
                app, access.workspace, object_type, object_id, body.note if body else None
            )
        return _version(v)

    def versions(object_id: Id, access: Reader, svc: ServiceDep):
        return [
            {**_version(v), "snapshot": access.masker.conditions(v.snapshot)}  # rule values
            for v in governance.versions(svc.app, access.workspace, object_type, object_id)
        ]

    def diff(
        object_id: Id,
        access: Reader,
        svc: ServiceDep,
        from_: Annotated[VersionNo, Query(alias="from")] = None,
        to: VersionNo = None,
    ):
        out = governance.compare(svc.app, access.workspace, object_type, object_id, from_, to)
        return {**out, "changes": access.masker.changes(out["changes"])}

    docs: dict[str, tuple[str, Callable[..., Any], str, Any]] = {
        "approve": (
            "POST",
            approve,
            f"/approvals/{plural}/{{{param}}}/approve",
            VersionPublic,
        ),
        "reject": ("POST", reject, f"/approvals/{plural}/{{{param}}}/reject", VersionPublic),
        "versions": ("GET", versions, f"/versions/{plural}/{{{param}}}", list[VersionPublic]),
        "diff": ("GET", diff, f"/versions/{plural}/{{{param}}}/diff", DiffPublic),
    }
    summaries = {
        "approve": f"Approve the change waiting on {a} {object_type}: it acts again, as it now "
        "is. 403 for the change's own author (four eyes), 409 if nothing waits.",
        "reject": f"Reject the change waiting on {a} {object_type}; its last approved version "
        "is restored (a never-approved one stays a draft).",
        "versions": f"Every version of {a} {object_type}, oldest first, with its review.",
        "diff": f"What changed between two versions of {a} {object_type} (default: the newest "
        "and the one before; from=0 compares with nothing).",
    }
    for verb, (method, fn, path, model) in docs.items():
        fn.__doc__ = summaries[verb]
        router.add_api_route(
            path,
            fn,
            methods=[method],
            response_model=model,
            name=f"{verb}_{object_type}",
            response_model_by_alias=True,
        )


_add_routes("segment", "segments", "segment_id", "segments.read")
_add_routes("automation", "automations", "automation_id", "actions.read")
_add_routes("sync", "syncs", "sync_id", "actions.read")
