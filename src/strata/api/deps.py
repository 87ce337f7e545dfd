"""Dependencies shared by the routes, as ``Annotated`` aliases.

``require(action)`` is how a route says what it does: it signs the caller in, finds
the workspace in the path (a workspace they are not a member of answers 404, as if
it did not exist) and checks their role against :data:`strata.accounts.ACTIONS`
(403 if it does not allow the action).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, Path, Query, Request
from sqlalchemy.orm import Session

from strata import audit
from strata.accounts import SEES_PERSONAL_DATA, Principal, can
from strata.api.masking import Masker
from strata.api.requestid import current_request_id
from strata.api.state import Service
from strata.audit import Actor
from strata.catalog import Workspace
from strata.context import Strata
from strata.errors import Forbidden, NotFound, Unauthorized
from strata.personal import marked_in

SESSION_COOKIE = "strata_session"


def get_service(request: Request) -> Service:
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(get_service)]


def session_token(request: Request) -> str | None:
    """A bearer token (scripts) or the session cookie (browsers)."""
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(SESSION_COOKIE)


def get_principal(request: Request, svc: ServiceDep) -> Principal:
    token = session_token(request)
    if not token:
        raise Unauthorized("sign in first (POST /api/v1/auth/login), then send the cookie or token")
    principal = svc.accounts.authenticate(token)
    audit.set_actor(
        Actor(
            user_id=principal.user.id,
            label=principal.user.email,
            request_id=current_request_id(),
            address=request.client.host if request.client else None,
        )
    )
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


@dataclass(frozen=True)
class Access:
    """A request's caller, workspace and role in it."""

    principal: Principal
    workspace: Workspace
    role: str
    #: The columns the workspace marked personal (read for viewers only).
    personal: frozenset[str] = frozenset()

    @property
    def user_id(self) -> int:
        return self.principal.user.id

    @property
    def masked(self) -> bool:
        """Whether personal data must be masked for this caller (viewers)."""
        return self.role not in SEES_PERSONAL_DATA

    @property
    def masker(self) -> Masker:
        """How this caller sees personal data (:class:`strata.api.masking.Masker`)."""
        return Masker(self.personal, active=self.masked)

    def mask(self, data: Any) -> Any:
        """``data`` with personal values masked if this caller is a viewer, else as is."""
        return self.masker.mask(data)


def require(action: str):
    """A dependency: the caller may do ``action`` in the path's workspace."""

    def dependency(
        principal: PrincipalDep,
        svc: ServiceDep,
        workspace_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    ) -> Access:
        role = svc.accounts.role(principal.user, workspace_id)
        if role is None:
            raise NotFound(f"no workspace {workspace_id}")
        svc.count_call(workspace_id)  # in memory; see strata.plans.Meter
        if not can(role, action):
            raise Forbidden(f"your role ({role}) may not {action.replace('.', ' ')}")
        with svc.app.session() as s:
            ws = s.get(Workspace, workspace_id)
            # Read per request, not cached: another worker may have just marked a field.
            marked = marked_in(s, workspace_id) if role not in SEES_PERSONAL_DATA else frozenset()
        return Access(principal, ws, role, marked)

    dependency.action = action  # read by the role-matrix test and the docs
    return dependency


def get_strata(svc: ServiceDep) -> Strata:
    return svc.strata()


StrataDep = Annotated[Strata, Depends(get_strata)]


@dataclass(frozen=True)
class Page:
    """The page a list route was asked for, and how it answers."""

    limit: int
    offset: int

    def window(self, rows: list) -> list:
        """This page of a list held whole."""
        return rows[self.offset : self.offset + self.limit]

    def rows(self, session: Session, query: sa.Select) -> tuple[int, list]:
        """The total a catalog query matches, and this page of its rows (in its order)."""
        count = sa.select(sa.func.count()).select_from(query.order_by(None).subquery())
        total = session.scalar(count) or 0
        return total, list(session.scalars(query.limit(self.limit).offset(self.offset)))

    def answer(self, items: list, total: int | None) -> dict:
        """The body of :class:`strata.api.schemas.PageOf`."""
        return {"items": items, "total": total or 0, "limit": self.limit, "offset": self.offset}


def get_page(
    limit: Annotated[int, Query(ge=1, le=500, description="Items per page.")] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9, description="Items to skip.")] = 0,
) -> Page:
    return Page(limit, offset)


PageDep = Annotated[Page, Depends(get_page)]
