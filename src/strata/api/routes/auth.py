"""Sign in and out, who am I, change password."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Request, Response
from pydantic import Field

from strata.accounts import SESSION_DAYS
from strata.api.deps import SESSION_COOKIE, PrincipalDep, ServiceDep
from strata.api.schemas import ERRORS, Schema

router = APIRouter(prefix="/auth", tags=["auth"], responses=ERRORS)


class Login(Schema):
    email: Annotated[str, Field(min_length=3, max_length=320)]
    password: Annotated[str, Field(min_length=1, max_length=1024)]


class UserPublic(Schema):
    id: int
    email: str
    name: str | None
    is_owner: bool
    created_at: dt.datetime


class WorkspaceRole(Schema):
    id: int
    name: str
    role: str


class Me(Schema):
    user: UserPublic
    workspaces: list[WorkspaceRole]


class LoginResult(Me):
    token: str = Field(description="A bearer token for scripts; browsers use the cookie.")
    expires_in: int


class PasswordChange(Schema):
    current_password: Annotated[str, Field(min_length=1, max_length=1024)]
    new_password: Annotated[str, Field(min_length=1, max_length=1024)]


def _me(svc, user) -> dict:
    return {
        "user": UserPublic.model_validate(user),
        "workspaces": [
            WorkspaceRole(id=w.id, name=w.name, role=r) for w, r in svc.accounts.workspaces_of(user)
        ],
    }


@router.post("/login", response_model=LoginResult, responses={429: ERRORS[401]})
def login(body: Login, request: Request, response: Response, svc: ServiceDep):
    """Sign in with e-mail and password: sets the session cookie and returns a bearer token.

    Five failed tries for one e-mail within 15 minutes (or twenty from one address)
    answer 429 with ``Retry-After``.
    """
    address = request.client.host if request.client else None
    user, token = svc.accounts.login(
        body.email, body.password, address=address, user_agent=request.headers.get("user-agent", "")
    )
    max_age = SESSION_DAYS * 86400
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        httponly=True,
        secure=svc.settings.cookie_secure,
        samesite="strict",
        path="/",
    )
    return {**_me(svc, user), "token": token, "expires_in": max_age}


@router.post("/logout", status_code=204)
def logout(principal: PrincipalDep, response: Response, svc: ServiceDep) -> Response:
    """End this session (the cookie or token stops working)."""
    svc.accounts.logout(principal)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/me", response_model=Me)
def me(principal: PrincipalDep, svc: ServiceDep):
    """The signed-in user and their workspaces with their role in each."""
    return _me(svc, principal.user)


@router.post("/password", status_code=204)
def change_password(body: PasswordChange, principal: PrincipalDep, svc: ServiceDep) -> Response:
    """Change your password; your other sessions are signed out."""
    svc.accounts.change_password(principal, body.current_password, body.new_password)
    return Response(status_code=204)
