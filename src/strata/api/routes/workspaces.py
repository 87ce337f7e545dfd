"""Workspaces, their members and roles, and their API keys."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Response
from pydantic import Field

from strata import audit
from strata.accounts import ROLES
from strata.api.deps import Access, PageDep, PrincipalDep, ServiceDep, require
from strata.api.schemas import ERRORS, PageOf, Schema
from strata.catalog import Workspace
from strata.errors import InputError
from strata.stats import workspace_stats

router = APIRouter(prefix="/workspaces", tags=["workspaces"], responses=ERRORS)

Role = Literal["owner", "admin", "analyst", "marketer", "viewer"]
assert set(Role.__args__) == set(ROLES)


class WorkspaceCreate(Schema):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    industry: Annotated[str | None, Field(max_length=100)] = None
    timezone: Annotated[str | None, Field(max_length=64)] = None


class WorkspaceUpdate(Schema):
    name: Annotated[str | None, Field(min_length=1, max_length=100)] = None
    industry: Annotated[str | None, Field(max_length=100)] = None
    timezone: Annotated[str | None, Field(max_length=64)] = None


class WorkspacePublic(Schema):
    id: int
    name: str
    industry: str | None
    timezone: str
    plan: str
    created_at: dt.datetime
    role: str | None = None


class MemberCreate(Schema):
    email: Annotated[str, Field(min_length=3, max_length=320)]
    role: Role
    name: Annotated[str | None, Field(max_length=200)] = None
    password: Annotated[
        str | None,
        Field(max_length=1024, description="For a new user; one is generated if not given."),
    ] = None


class MemberUpdate(Schema):
    role: Role


class MemberPublic(Schema):
    id: int
    user_id: int
    email: str
    name: str | None
    role: str
    created_at: dt.datetime


class MemberCreated(MemberPublic):
    password: str | None = Field(
        None, description="The generated password of a new user, shown once."
    )


class KeyCreate(Schema):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    kind: Literal["write", "read"] = Field(
        description="write: event ingest (/v1/*); read: the personalization API"
    )


class KeyPublic(Schema):
    id: int
    name: str
    kind: str
    prefix: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


class KeyCreated(KeyPublic):
    key: str = Field(description="The key itself: shown this once, stored only as a hash.")


def _ws(ws: Workspace, role: str | None) -> WorkspacePublic:
    return WorkspacePublic.model_validate(ws).model_copy(update={"role": role})


def _member(m, u) -> dict:
    return {
        "id": m.id,
        "user_id": u.id,
        "email": u.email,
        "name": u.name,
        "role": m.role,
        "created_at": m.created_at,
    }


@router.get("", response_model=PageOf[WorkspacePublic])
def list_workspaces(principal: PrincipalDep, svc: ServiceDep, page: PageDep):
    """The workspaces you are a member of, with your role in each."""
    rows = svc.accounts.workspaces_of(principal.user)
    items = [_ws(w, r) for w, r in page.window(rows)]
    return page.answer(items, len(rows))


@router.post("", response_model=WorkspacePublic, status_code=201)
def create_workspace(body: WorkspaceCreate, principal: PrincipalDep, svc: ServiceDep):
    """A new workspace; you are its owner."""
    ws = svc.accounts.create_workspace(
        principal.user, body.name, industry=body.industry, timezone=body.timezone
    )
    return _ws(ws, "owner")


@router.get("/{workspace_id}", response_model=WorkspacePublic)
def get_workspace(access: Annotated[Access, Depends(require("workspace.read"))]):
    """One workspace."""
    return _ws(access.workspace, access.role)


@router.get("/{workspace_id}/stats")
def get_stats(access: Annotated[Access, Depends(require("workspace.read"))], svc: ServiceDep):
    """What the workspace holds: customers, events by type, orders, revenue, date range."""
    with svc.reading() as app:
        return workspace_stats(app, access.workspace.name)


@router.patch("/{workspace_id}", response_model=WorkspacePublic)
def update_workspace(
    body: WorkspaceUpdate,
    access: Annotated[Access, Depends(require("workspace.update"))],
    svc: ServiceDep,
):
    """Rename the workspace or change its industry or time zone."""
    with svc.app.session() as s:
        ws = s.get(Workspace, access.workspace.id)
        changes = body.model_dump(exclude_unset=True)
        if changes.get("name") is not None:
            name = changes["name"].strip()
            taken = s.scalar(
                sa.select(Workspace.id).where(Workspace.name == name, Workspace.id != ws.id)
            )
            if taken is not None or not name:
                raise InputError(f"a workspace named {name!r} already exists; choose another name")
            changes["name"] = name
        changed = {}
        for key, value in changes.items():
            if value is not None and getattr(ws, key) != value:
                changed[key] = [getattr(ws, key), value]
                setattr(ws, key, value)
        if changed:
            audit.record(
                s,
                ws.id,
                "workspace.update",
                f"changed the workspace's {', '.join(changed)}",
                target_type="workspace",
                target_id=ws.id,
                details=changed,
            )
        s.commit()
        return _ws(ws, access.role)


@router.delete("/{workspace_id}", status_code=204)
def delete_workspace(
    access: Annotated[Access, Depends(require("workspace.delete"))], svc: ServiceDep
) -> Response:
    """Delete the workspace's catalog entries (segments, imports, keys, members).

    Its warehouse data is dropped as well.
    """
    with svc.writing() as app:
        app.warehouse.drop_workspace(access.workspace.id)
        app.members_changed(access.workspace.id)
        with app.session() as s:
            s.delete(s.get(Workspace, access.workspace.id))
            # Kept after the workspace is gone: the log's workspace_id is no foreign key.
            audit.record(
                s,
                access.workspace.id,
                "workspace.delete",
                f"deleted workspace {access.workspace.name!r} and all its data",
                target_type="workspace",
                target_id=access.workspace.id,
            )
            s.commit()

    return Response(status_code=204)


# -- members --------------------------------------------------------------------------------
@router.get("/{workspace_id}/members", response_model=PageOf[MemberPublic])
def list_members(
    access: Annotated[Access, Depends(require("members.read"))], svc: ServiceDep, page: PageDep
):
    """Who has access, with which role."""
    rows = svc.accounts.members(access.workspace.id)
    items = [_member(m, u) for m, u in page.window(rows)]
    return page.answer(items, len(rows))


@router.post("/{workspace_id}/members", response_model=MemberCreated, status_code=201)
def add_member(
    body: MemberCreate,
    access: Annotated[Access, Depends(require("members.manage"))],
    svc: ServiceDep,
):
    """Give someone a role (a new user is created for an unknown e-mail)."""
    member, user, generated = svc.accounts.add_member(
        access.workspace.id,
        body.email,
        body.role,
        by_role=access.role,
        password=body.password,
        name=body.name,
    )
    return {**_member(member, user), "password": generated}


@router.patch("/{workspace_id}/members/{member_id}", response_model=MemberPublic)
def change_member(
    member_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    body: MemberUpdate,
    access: Annotated[Access, Depends(require("members.manage"))],
    svc: ServiceDep,
):
    """Change a member's role (only an owner grants or takes away owner)."""
    svc.accounts.change_role(access.workspace.id, member_id, body.role, by_role=access.role)
    return _member(*svc.accounts.member(access.workspace.id, member_id))


@router.delete("/{workspace_id}/members/{member_id}", status_code=204)
def remove_member(
    member_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    access: Annotated[Access, Depends(require("members.manage"))],
    svc: ServiceDep,
) -> Response:
    """Take someone's access to this workspace away."""
    svc.accounts.remove_member(access.workspace.id, member_id, by_role=access.role)
    return Response(status_code=204)


# -- API keys -------------------------------------------------------------------------------
@router.get("/{workspace_id}/keys", response_model=PageOf[KeyPublic])
def list_keys(
    access: Annotated[Access, Depends(require("keys.manage"))], svc: ServiceDep, page: PageDep
):
    """The workspace's API keys (never the keys themselves), with when each was last used."""
    rows = svc.accounts.keys(access.workspace.id)
    return page.answer(page.window(rows), len(rows))


@router.post("/{workspace_id}/keys", response_model=KeyCreated, status_code=201)
def create_key(
    body: KeyCreate, access: Annotated[Access, Depends(require("keys.manage"))], svc: ServiceDep
):
    """A new key. The answer holds the key itself, which is never shown again."""
    key, secret = svc.accounts.create_key(
        access.workspace.id, body.name, body.kind, by=access.user_id
    )
    return {**KeyPublic.model_validate(key).model_dump(), "key": secret}


@router.delete("/{workspace_id}/keys/{key_id}", response_model=KeyPublic)
def revoke_key(
    key_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    access: Annotated[Access, Depends(require("keys.manage"))],
    svc: ServiceDep,
):
    """Revoke a key: it stops working at once (it stays listed, marked revoked)."""
    key = svc.accounts.revoke_key(access.workspace.id, key_id)
    svc.forget_key(key.key_hash)
    return key
