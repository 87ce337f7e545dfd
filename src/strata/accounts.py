"""People and machines: users, sessions, workspace roles, API keys.

Passwords are hashed with argon2id; session tokens and API keys are long random
strings stored as SHA-256 hashes and shown once. Roles are per workspace:

>>> can("analyst", "segments.write"), can("viewer", "segments.write")
(True, False)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from strata import audit, plans
from strata.catalog import ApiKey, AuthSession, LoginFailure, Member, User, Workspace
from strata.catalog.models import utcnow
from strata.context import Strata, new_workspace
from strata.errors import Forbidden, InputError, NotFound, TooManyRequests, Unauthorized

#: Roles from most to least powerful.
ROLES = ("owner", "admin", "analyst", "marketer", "viewer")
_EVERYONE = frozenset(ROLES)
_BUILDERS = frozenset({"owner", "admin", "analyst"})
_MANAGERS = frozenset({"owner", "admin"})
_SENDERS = frozenset({"owner", "admin", "analyst", "marketer"})

#: Every action a route can require, and the roles allowed to do it. ``docs/api.md``
#: shows this table; ``tests/test_api_roles.py`` checks every route against it.
ACTIONS: dict[str, tuple[frozenset[str], str]] = {
    "workspace.read": (_EVERYONE, "see the workspace, its settings and its figures"),
    "workspace.update": (_MANAGERS, "rename the workspace, change its time zone"),
    "workspace.delete": (frozenset({"owner"}), "delete the workspace and all its data"),
    "members.read": (_EVERYONE, "list the members and their roles"),
    "members.manage": (_MANAGERS, "add, change and remove members (only owners make owners)"),
    "keys.manage": (_MANAGERS, "create, list and revoke API keys"),
    "imports.read": (_EVERYONE, "list imports, read their reports and bad rows"),
    "imports.create": (_BUILDERS, "upload and import files"),
    "customers.read": (_EVERYONE, "search customers and read profiles (masked for viewers)"),
    "segments.read": (_EVERYONE, "list segments, members, history, explanations, previews"),
    "segments.write": (_BUILDERS, "create, change and delete segments; RFM, tiers and ICP"),
    "segments.refresh": (_BUILDERS, "re-evaluate segments"),
    "segments.export": (
        _SENDERS,
        "download a segment's members with their personal data",
    ),
    "analyses.read": (
        _EVERYONE,
        "run analyses: growth, revenue, behaviour, breakdowns, overlap, cohorts, journeys",
    ),
    "models.read": (_EVERYONE, "list fitted models, clusters and predictions"),
    "models.run": (_BUILDERS, "fit models: clusters, lifetime value, churn, propensity"),
    "jobs.read": (_EVERYONE, "follow background jobs"),
    "destinations.read": (
        _SENDERS,
        "list webhooks, SMTP servers and marketing-tool connections, with delivery logs",
    ),
    "destinations.manage": (
        _MANAGERS,
        "add, change, rotate and remove destinations and their credentials",
    ),
    "actions.read": (_EVERYONE, "list automations, campaigns, trigger firings and lift"),
    "actions.write": (
        _SENDERS,
        "create and run automations, campaigns and syncs; replay webhooks; send e-mail",
    ),
    "privacy.manage": (
        _MANAGERS,
        "erase customers, answer access requests, set retention and personal fields",
    ),
    "audit.read": (_MANAGERS, "read and export the audit log"),
    "approvals.review": (
        _MANAGERS,
        "approve or reject segments, automations and syncs that send data out",
    ),
    "usage.read": (_EVERYONE, "see the plan, its limits and this month's usage"),
    "plan.manage": (frozenset({"owner"}), "change the workspace's plan"),
}

#: Roles that see personal data (e-mail, name, phone…) unmasked.
SEES_PERSONAL_DATA = frozenset({"owner", "admin", "analyst", "marketer"})

SESSION_DAYS = 14
#: Failed sign-ins allowed per e-mail (and 4x that per address) within the window.
MAX_FAILURES = 5
FAILURE_WINDOW = dt.timedelta(minutes=15)
MIN_PASSWORD = 10
KEY_KINDS = ("write", "read")

_hasher = PasswordHasher()  # argon2id with the library's (RFC 9106 low-memory) defaults
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def can(role: str | None, action: str) -> bool:
    """Whether ``role`` may do ``action`` (an unknown action is a programming error)."""
    return role is not None and role in ACTIONS[action][0]


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InputError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise InputError("a password can have at most 1,024 characters")


def _normal_email(email: str) -> str:
    email = email.strip().lower()
    if not _EMAIL.match(email) or len(email) > 320:
        raise InputError(f"{email!r} is not an e-mail address")
    return email


@dataclass(frozen=True)
class Principal:
    """Who is calling: a signed-in user (and the session they use)."""

    user: User
    session_id: int | None = None


@dataclass(frozen=True)
class KeyPrincipal:
    """A machine calling with a workspace's API key."""

    key_id: int
    workspace_id: int
    kind: str


class Accounts:
    """Users, sessions, members and keys of one installation's catalog."""

    def __init__(self, app: Strata):
        self.app = app

    # -- users ----------------------------------------------------------------------------
    def create_user(
        self, email: str, password: str, *, name: str | None = None, is_owner: bool = False
    ) -> User:
        email = _normal_email(email)
        _check_password(password)
        with self.app.session() as s:
            if s.scalar(sa.select(User.id).where(User.email == email)) is not None:
                raise InputError(f"a user with e-mail {email} already exists")
            user = User(
                email=email, name=name, password_hash=_hasher.hash(password), is_owner=is_owner
            )
            s.add(user)
            s.commit()
            return user

    def ensure_owner(self, email: str, password: str | None = None) -> tuple[User, str | None]:
        """The first run's owner: created if there is no user yet.

        Returns the owner and, when it was just created without a given password,
        the generated one (shown once).
        """
        with self.app.session() as s:
            owner = s.scalar(sa.select(User).where(User.is_owner).order_by(User.id))
            if owner is not None:
                return owner, None
        generated = None
        if password is None:
            password = generated = secrets.token_urlsafe(12)
        return self.create_user(email, password, name="Owner", is_owner=True), generated

    def user(self, user_id: int) -> User:
        with self.app.session() as s:
            user = s.get(User, user_id)
        if user is None:
            raise NotFound(f"no user {user_id}")
        return user

    def user_by_email(self, email: str) -> User | None:
        with self.app.session() as s:
            return s.scalar(sa.select(User).where(User.email == email.strip().lower()))

    # -- sessions -------------------------------------------------------------------------
    def login(
        self, email: str, password: str, *, address: str | None = None, user_agent: str = ""
    ) -> tuple[User, str]:
        """Check a password; a new session token for the user. Throttled per e-mail and
        per client address: too many failures answer :class:`TooManyRequests`."""
        email = email.strip().lower()
        now = utcnow()
        with self.app.session() as s:
            since = now - FAILURE_WINDOW
            by_email = s.scalars(
                sa.select(LoginFailure.at).where(
                    LoginFailure.email == email, LoginFailure.at > since
                )
            ).all()
            by_address = (
                s.scalars(
                    sa.select(LoginFailure.at).where(
                        LoginFailure.address == address, LoginFailure.at > since
                    )
                ).all()
                if address
                else []
            )
            for failures, limit in ((by_email, MAX_FAILURES), (by_address, 4 * MAX_FAILURES)):
                if len(failures) >= limit:
                    wait = min(failures) + FAILURE_WINDOW - now
                    raise TooManyRequests(
                        "too many failed sign-ins; wait before trying again",
                        retry_after=max(1, int(wait.total_seconds()) + 1),
                    )
            user = s.scalar(sa.select(User).where(User.email == email))
            if user is None or not _verify(user.password_hash, password):
                s.add(LoginFailure(email=email, address=address, at=now))
                s.commit()
                raise Unauthorized("wrong e-mail or password")
            s.execute(sa.delete(LoginFailure).where(LoginFailure.email == email))
            if _hasher.check_needs_rehash(user.password_hash):
                user.password_hash = _hasher.hash(password)
            token = "sts_" + secrets.token_urlsafe(32)
            s.add(
                AuthSession(
                    user_id=user.id,
                    token_hash=digest(token),
                    expires_at=now + dt.timedelta(days=SESSION_DAYS),
                    user_agent=(user_agent or "")[:300] or None,
                )
            )
            s.commit()
            return user, token

    def authenticate(self, token: str) -> Principal:
        """The user a session token belongs to; :class:`Unauthorized` if none or expired."""
        now = utcnow()
        with self.app.session() as s:
            row = s.execute(
                sa.select(AuthSession, User)
                .join(User, User.id == AuthSession.user_id)
                .where(AuthSession.token_hash == digest(token))
            ).first()
            if row is None or row[0].expires_at <= now:
                raise Unauthorized("not signed in, or the session expired; sign in again")
            session, user = row
            # Written at most once a minute: a busy script should not write on every call.
            if session.last_used_at is None or now - session.last_used_at > dt.timedelta(minutes=1):
                session.last_used_at = now
                s.commit()
            return Principal(user=user, session_id=session.id)

    def logout(self, principal: Principal) -> None:
        with self.app.session() as s:
            s.execute(sa.delete(AuthSession).where(AuthSession.id == principal.session_id))
            s.commit()

    def change_password(self, principal: Principal, current: str, new: str) -> None:
        """Change a password; every other session of the user is signed out."""
        _check_password(new)
        with self.app.session() as s:
            user = s.get(User, principal.user.id)
            if not _verify(user.password_hash, current):
                raise InputError("the current password is wrong")
            user.password_hash = _hasher.hash(new)
            user.password_changed_at = utcnow()
            s.execute(
                sa.delete(AuthSession).where(
                    AuthSession.user_id == user.id, AuthSession.id != principal.session_id
                )
            )
            s.commit()

    # -- workspaces and roles -------------------------------------------------------------
    def role(self, user: User, workspace_id: int) -> str | None:
        """``user``'s role in a workspace, or None when they may not see it."""
        with self.app.session() as s:
            if s.get(Workspace, workspace_id) is None:
                return None
            if user.is_owner:
                return "owner"
            return s.scalar(
                sa.select(Member.role).where(
                    Member.workspace_id == workspace_id, Member.user_id == user.id
                )
            )

    def workspaces_of(self, user: User) -> list[tuple[Workspace, str]]:
        with self.app.session() as s:
            if user.is_owner:
                return [
                    (w, "owner") for w in s.scalars(sa.select(Workspace).order_by(Workspace.id))
                ]
            rows = s.execute(
                sa.select(Workspace, Member.role)
                .join(Member, Member.workspace_id == Workspace.id)
                .where(Member.user_id == user.id)
                .order_by(Workspace.id)
            ).all()
            return [(w, r) for w, r in rows]

    def create_workspace(self, user: User, name: str, **fields: str | None) -> Workspace:
        name = name.strip()
        if not name or len(name) > 100:
            raise InputError("a workspace name must have 1 to 100 characters")
        with self.app.session() as s:
            if s.scalar(sa.select(Workspace.id).where(Workspace.name == name)) is not None:
                raise InputError(f"a workspace named {name!r} already exists; choose another name")
            ws = new_workspace(s, self.app.settings, name, **fields)
            s.add(Member(workspace_id=ws.id, user_id=user.id, role="owner"))
            s.commit()
            return ws

    def members(self, workspace_id: int) -> list[tuple[Member, User]]:
        with self.app.session() as s:
            return [
                (m, u)
                for m, u in s.execute(
                    sa.select(Member, User)
                    .join(User, User.id == Member.user_id)
                    .where(Member.workspace_id == workspace_id)
                    .order_by(Member.id)
                )
            ]

    def add_member(
        self,
        workspace_id: int,
        email: str,
        role: str,
        *,
        by_role: str,
        password: str | None = None,
        name: str | None = None,
    ) -> tuple[Member, User, str | None]:
        """Give a user (made now if new, with ``password`` or a generated one) a role."""
        self._check_grant(role, by_role)
        user, generated = self.user_by_email(email), None
        if user is None:
            if password is None:
                password = generated = secrets.token_urlsafe(12)
            user = self.create_user(email, password, name=name)
        with self.app.session() as s:
            exists = s.scalar(
                sa.select(Member).where(
                    Member.workspace_id == workspace_id, Member.user_id == user.id
                )
            )
            if exists is not None:
                raise InputError(
                    f"{user.email} is already a member ({exists.role}); change the role"
                )
            member = Member(workspace_id=workspace_id, user_id=user.id, role=role)
            s.add(member)
            s.flush()
            audit.record(
                s,
                workspace_id,
                "member.add",
                f"gave {user.email} the role {role}",
                target_type="member",
                target_id=member.id,
                details={"user_id": user.id, "role": role},
            )
            s.commit()
            return member, user, generated

    def member(self, workspace_id: int, member_id: int) -> tuple[Member, User]:
        with self.app.session() as s:
            row = s.execute(
                sa.select(Member, User)
                .join(User, User.id == Member.user_id)
                .where(Member.id == member_id, Member.workspace_id == workspace_id)
            ).first()
        if row is None:
            raise NotFound(f"no member {member_id} in this workspace")
        return row[0], row[1]

    def change_role(self, workspace_id: int, member_id: int, role: str, *, by_role: str) -> Member:
        member, user = self.member(workspace_id, member_id)
        self._check_grant(role, by_role)
        if member.role == "owner" and by_role != "owner":
            raise Forbidden("only an owner can change an owner's role")
        with self.app.session() as s:
            if member.role == "owner" and role != "owner":
                self._keep_an_owner(s, workspace_id, member.id)
            row = s.get(Member, member.id)
            before, row.role = row.role, role
            audit.record(
                s,
                workspace_id,
                "member.role",
                f"changed {user.email}'s role from {before} to {role}",
                target_type="member",
                target_id=member.id,
                details={"user_id": member.user_id, "role": [before, role]},
            )
            s.commit()
            return row

    def remove_member(self, workspace_id: int, member_id: int, *, by_role: str) -> None:
        member, user = self.member(workspace_id, member_id)
        if member.role == "owner" and by_role != "owner":
            raise Forbidden("only an owner can remove an owner")
        with self.app.session() as s:
            if member.role == "owner":
                self._keep_an_owner(s, workspace_id, member.id)
            s.execute(sa.delete(Member).where(Member.id == member.id))
            audit.record(
                s,
                workspace_id,
                "member.remove",
                f"removed {user.email} ({member.role})",
                target_type="member",
                target_id=member.id,
                details={"user_id": member.user_id, "role": member.role},
            )
            s.commit()

    @staticmethod
    def _check_grant(role: str, by_role: str) -> None:
        if role not in ROLES:
            raise InputError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
        if role == "owner" and by_role != "owner":
            raise Forbidden("only an owner can make another owner")

    @staticmethod
    def _keep_an_owner(s, workspace_id: int, leaving: int) -> None:
        others = s.scalar(
            sa.select(sa.func.count()).where(
                Member.workspace_id == workspace_id, Member.role == "owner", Member.id != leaving
            )
        )
        if not others:
            raise InputError("a workspace keeps at least one owner; make someone else owner first")

    # -- API keys -------------------------------------------------------------------------
    def create_key(
        self, workspace_id: int, name: str, kind: str, *, by: int | None = None
    ) -> tuple[ApiKey, str]:
        """A new key; returns its row and the key itself, which is never shown again."""
        if kind not in KEY_KINDS:
            raise InputError(f"unknown key kind {kind!r}; use write (ingest) or read")
        name = name.strip()
        if not name or len(name) > 200:
            raise InputError("a key needs a name of 1 to 200 characters")
        secret = f"sk_{kind}_{secrets.token_urlsafe(24)}"
        with self.app.session() as s:
            ws = s.get(Workspace, workspace_id)
            if ws is not None:
                plans.require_feature(ws, "api_access")  # API keys are the plan's API access
            key = ApiKey(
                workspace_id=workspace_id,
                name=name,
                kind=kind,
                prefix=secret[: len(kind) + 8],
                key_hash=digest(secret),
                created_by=by,
            )
            s.add(key)
            s.flush()
            # The prefix names the key in the log; the secret is never written anywhere.
            audit.record(
                s,
                workspace_id,
                "key.create",
                f"created {kind} API key {name!r} ({key.prefix}…)",
                target_type="key",
                target_id=key.id,
                details={"kind": kind, "prefix": key.prefix},
            )
            s.commit()
            return key, secret

    def keys(self, workspace_id: int) -> list[ApiKey]:
        with self.app.session() as s:
            return list(
                s.scalars(
                    sa.select(ApiKey).where(ApiKey.workspace_id == workspace_id).order_by(ApiKey.id)
                )
            )

    def revoke_key(self, workspace_id: int, key_id: int) -> ApiKey:
        with self.app.session() as s:
            key = s.get(ApiKey, key_id)
            if key is None or key.workspace_id != workspace_id:
                raise NotFound(f"no API key {key_id} in this workspace")
            if key.revoked_at is None:
                key.revoked_at = utcnow()
                audit.record(
                    s,
                    workspace_id,
                    "key.revoke",
                    f"revoked API key {key.name!r} ({key.prefix}…)",
                    target_type="key",
                    target_id=key.id,
                    details={"prefix": key.prefix},
                )
                s.commit()

            return key

    def key_for(self, secret: str) -> ApiKey | None:
        """The live (not revoked) key with this secret, or None."""
        with self.app.session() as s:
            key = s.scalar(sa.select(ApiKey).where(ApiKey.key_hash == digest(secret)))
        return key if key is not None and key.revoked_at is None else None

    def touch_keys(self, used: dict[int, dt.datetime]) -> None:
        """Record when keys were last used (batched by the caller)."""
        if not used:
            return
        with self.app.session() as s:
            for key_id, at in used.items():
                s.execute(sa.update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=at))
            s.commit()


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
