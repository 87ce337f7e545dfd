"""Catalog tables: what Strata knows about the data, not the data itself.

Workspaces, import runs with their reports, segment definitions and campaigns live
here (SQLite by default, PostgreSQL in production). Customers, events, memberships
and predictions live in the warehouse (:mod:`strata.warehouse`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import JSON, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Workspace(Base):
    """An organization's data space; nothing in one workspace is visible from another."""

    __tablename__ = "workspaces"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    industry: Mapped[str | None] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    #: The plan whose limits apply (:mod:`strata.plans`); self-hosted installs: unlimited.
    plan: Mapped[str] = mapped_column(String(32), default="unlimited")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Whether segments, automations and syncs that send data out need an admin's approval.
    require_approval: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    #: Events older than this many days are deleted on a schedule; none keeps them all.
    retention_days: Mapped[int | None] = mapped_column(Integer)

    imports: Mapped[list[ImportRun]] = relationship(
        back_populates="workspace", cascade="all, delete-orphan"
    )


class ImportRun(Base):
    """One run of ``strata import``: what was read, what it did, and each bad row."""

    __tablename__ = "import_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    source: Mapped[str] = mapped_column(Text)
    source_sha256: Mapped[str | None] = mapped_column(String(64))
    preset: Mapped[str | None] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(16))  # customers | events
    #: running, succeeded, failed, interrupted or dry_run
    status: Mapped[str] = mapped_column(String(16), default="running")
    pid: Mapped[int | None] = mapped_column(Integer)
    mapping: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: Bad rows as ``{"row": n, "column": c, "reason": r}``, at most ``MAX_STORED_ERRORS``.
    errors: Mapped[list[Any] | None] = mapped_column(JSON)
    message: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]

    workspace: Mapped[Workspace] = relationship(back_populates="imports")


class Segment(Base):
    """A segment definition (rules, RFM, cluster, prediction…); members live in the warehouse."""

    __tablename__ = "segments"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    #: rule, rfm, tier, static, cluster or prediction.
    kind: Mapped[str] = mapped_column(String(32))
    description: Mapped[str | None] = mapped_column(Text)
    #: The rule tree as JSON (:mod:`strata.segments.nodes`); none for static segments.
    definition: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: Who manages it: ``cli`` (by hand), ``code`` (``segments apply``) or ``system``.
    source: Mapped[str] = mapped_column(String(16), default="cli")
    #: Generated families: ``rfm`` or ``tiers:<name>``.
    family: Mapped[str | None] = mapped_column(String(120), index=True)
    #: A fixed reference time for its time-relative conditions; none means "now".
    as_of: Mapped[datetime | None]
    #: The reference time of the last evaluation; history only moves forward from it.
    evaluated_as_of: Mapped[datetime | None]
    customer_count: Mapped[int | None]
    refreshed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    #: approved, or draft (changed while the workspace requires approval: it does not act
    #: until an admin approves it; see :mod:`strata.governance`).
    review_status: Mapped[str] = mapped_column(
        String(16), default="approved", server_default="approved"
    )


class Setting(Base):
    """A workspace's configuration of a built-in segmentation (RFM grid, ICP, tiers)."""

    __tablename__ = "workspace_settings"
    __table_args__ = (UniqueConstraint("workspace_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    #: ``rfm``, ``icp`` or ``tiers:<name>``.
    key: Mapped[str] = mapped_column(String(120))
    value: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Campaign(Base):
    """An action on a segment with a holdout: who got it, who was held out, and the lift.

    Members are split by a stable hash of ``salt`` and their id, so the same customer
    is always in the same group; :mod:`strata.actions.campaigns` measures the lift.
    """

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    segment_id: Mapped[int | None] = mapped_column(ForeignKey("segments.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(200))
    #: The action's kind (webhook, email, export, set_attribute, tag, add_to_segment).
    kind: Mapped[str] = mapped_column(String(32))
    #: draft, running or ended.
    status: Mapped[str] = mapped_column(String(16), default="draft")
    holdout_percent: Mapped[float] = mapped_column(default=0.0)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: The automation that acts for it (members who enter while it runs are included).
    automation_id: Mapped[int | None] = mapped_column(
        ForeignKey("automations.id", ondelete="SET NULL")
    )
    #: The event type whose rate measures success (e.g. ``order``).
    goal_event: Mapped[str | None] = mapped_column(String(100))
    salt: Mapped[str | None] = mapped_column(String(32))
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]


class Model(Base):
    """One fitted version of a model (clusters, lifetime value, churn…) of a workspace.

    Fitting again adds a version; predictions name the version that made them
    (``name@version``), so a score can always be traced to its parameters.
    """

    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("workspace_id", "name", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    #: cluster, clv, churn, propensity or lookalike.
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(120))
    version: Mapped[int] = mapped_column(Integer)
    #: The estimator's parameters as given (``get_params``).
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: What was learned and is needed to score again (centroids, coefficients…).
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: How good it is (silhouette, AUC, log-likelihood…), as measured when fitted.
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: The reference time of the data it was fitted on.
    as_of: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    """A person who signs in; what they may do is set per workspace by :class:`Member`.

    The installation's owner (``is_owner``) is created on first run and acts as owner in
    every workspace, including ones the command line makes later.
    """

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    #: argon2id hash (``argon2-cffi``): parameters and salt travel with it.
    password_hash: Mapped[str] = mapped_column(String(255))
    is_owner: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class Member(Base):
    """A user's role in one workspace: owner, admin, analyst, marketer or viewer."""

    __tablename__ = "workspace_members"
    __table_args__ = (UniqueConstraint("workspace_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuthSession(Base):
    """A signed-in session: a browser's cookie or a script's bearer token (stored hashed)."""

    __tablename__ = "auth_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    #: SHA-256 of the token; the token itself is shown once and never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    user_agent: Mapped[str | None] = mapped_column(String(300))


class LoginFailure(Base):
    """A failed sign-in, counted to slow down password guessing (per e-mail and per address)."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), index=True)
    address: Mapped[str | None] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class ApiKey(Base):
    """A workspace's key for machines: ``write`` (event ingest) or ``read`` (personalization)."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    #: write or read.
    kind: Mapped[str] = mapped_column(String(8))
    #: The first characters of the key, shown in lists so a person can tell keys apart.
    prefix: Mapped[str] = mapped_column(String(16))
    #: SHA-256 of the key (keys are long random strings, so a slow hash adds nothing).
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class Job(Base):
    """Long work (an import, a refresh, a model fit) run in the background, with progress."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    #: queued, running, succeeded, failed or interrupted.
    status: Mapped[str] = mapped_column(String(16), default="queued")
    #: 0 to 1, and what it is doing now.
    progress: Mapped[float] = mapped_column(default=0.0)
    stage: Mapped[str | None] = mapped_column(String(200))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    message: Mapped[str | None] = mapped_column(Text)
    pid: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class IngestBatch(Base):
    """Events accepted by the live ingest API, kept until they are in the warehouse.

    A request is acknowledged only once its row is committed here, so a server that
    dies loses nothing it acknowledged: the loader takes rows in ``id`` order, loads
    them (the warehouse skips a ``messageId`` it already has) and then deletes them.
    """

    __tablename__ = "ingest_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    #: The validated calls as JSON (orjson bytes): a list of Segment-spec messages.
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    events: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


# -- acting on segments (strata.actions) ---------------------------------------------------


class Destination(Base):
    """Where a workspace sends data: a webhook endpoint, an SMTP server, a marketing tool.

    ``config`` holds what may be shown (URL, host, list id…); ``sealed`` holds the
    secrets (signing secrets, passwords, API keys), sealed by :mod:`strata.actions.secrets`.
    """

    __tablename__ = "destinations"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    #: webhook, smtp, mailchimp, klaviyo or hubspot.
    kind: Mapped[str] = mapped_column(String(16))
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    sealed: Mapped[str | None] = mapped_column(Text)
    #: active or disabled (by hand, or a webhook endpoint that answered 410 Gone).
    status: Mapped[str] = mapped_column(String(16), default="active")
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WebhookMessage(Base):
    """One webhook to send to one endpoint; ``msg_id`` is its ``webhook-id`` on every attempt."""

    __tablename__ = "webhook_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    destination_id: Mapped[int] = mapped_column(
        ForeignKey("destinations.id", ondelete="CASCADE"), index=True
    )
    msg_id: Mapped[str] = mapped_column(String(64), unique=True)
    #: The customer the message is about (none for tests): found and removed on erasure.
    customer_id: Mapped[int | None] = mapped_column(Integer, index=True)
    event_type: Mapped[str] = mapped_column(String(100))
    #: The JSON body exactly as sent (and signed).
    payload: Mapped[str] = mapped_column(Text)
    #: pending, delivering, delivered, failed (retries used up) or cancelled.
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(index=True)
    #: A sender holding it until then; another sender leaves it alone.
    locked_until: Mapped[datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]


class WebhookAttempt(Base):
    """One try at delivering a webhook: the delivery log."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_messages.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer)
    #: Why it failed (timeout, refused, redirect…); none when it succeeded.
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[float | None]
    #: The first kilobyte of the response body.
    response: Mapped[str | None] = mapped_column(Text)


class EmailMessage(Base):
    """One e-mail to one customer, rendered and waiting to be (or already) sent."""

    __tablename__ = "email_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    destination_id: Mapped[int | None] = mapped_column(
        ForeignKey("destinations.id", ondelete="SET NULL"), index=True
    )
    automation_id: Mapped[int | None] = mapped_column(
        ForeignKey("automations.id", ondelete="SET NULL")
    )
    customer_id: Mapped[int | None] = mapped_column(Integer)
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    #: pending, sent, failed or suppressed (unsubscribed).
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    #: The Message-ID header it was sent with.
    message_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]


class Unsubscribe(Base):
    """An address that asked for no more e-mail from a workspace (kept as a SHA-256)."""

    __tablename__ = "unsubscribes"
    __table_args__ = (UniqueConstraint("workspace_id", "email_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    email_hash: Mapped[str] = mapped_column(String(64))
    #: link, one-click (RFC 8058) or api.
    source: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class ExportFile(Base):
    """A file of a segment's members that Strata wrote and still holds."""

    __tablename__ = "exports"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    segment_id: Mapped[int | None] = mapped_column(ForeignKey("segments.id", ondelete="SET NULL"))
    #: csv, mailchimp, klaviyo, hubspot, google, google_hashed or meta.
    format: Mapped[str] = mapped_column(String(32))
    path: Mapped[str] = mapped_column(Text)
    rows: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Sync(Base):
    """A segment kept in step with a list in a marketing tool (a destination)."""

    __tablename__ = "syncs"
    __table_args__ = (UniqueConstraint("destination_id", "segment_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    destination_id: Mapped[int] = mapped_column(
        ForeignKey("destinations.id", ondelete="CASCADE"), index=True
    )
    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"))
    #: The remote list (Mailchimp audience and tag, Klaviyo list, HubSpot list) and options.
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: new, ok or failed.
    status: Mapped[str] = mapped_column(String(16), default="new")
    last_synced_at: Mapped[datetime | None]
    #: When to run again on its own: set when the segment changes (see strata.actions.triggers).
    due_at: Mapped[datetime | None] = mapped_column(index=True)
    last_result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: approved, or draft (changed while the workspace requires approval: it does not act
    #: until an admin approves it; see :mod:`strata.governance`).
    review_status: Mapped[str] = mapped_column(
        String(16), default="approved", server_default="approved"
    )


class SyncMember(Base):
    """A customer a sync has pushed to the remote list (so later runs send only changes)."""

    __tablename__ = "sync_members"
    __table_args__ = (UniqueConstraint("sync_id", "customer_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sync_id: Mapped[int] = mapped_column(ForeignKey("syncs.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[int] = mapped_column(Integer)
    email: Mapped[str | None] = mapped_column(String(320))
    #: The tool's own id for the person, where it has one (Klaviyo profile, HubSpot contact).
    remote_id: Mapped[str | None] = mapped_column(String(200))
    synced_at: Mapped[datetime] = mapped_column(default=utcnow)


class Automation(Base):
    """When (enter, exit, schedule) → optional wait and condition → do (an action)."""

    __tablename__ = "automations"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    segment_id: Mapped[int] = mapped_column(
        ForeignKey("segments.id", ondelete="CASCADE"), index=True
    )
    #: enter, exit or schedule.
    trigger: Mapped[str] = mapped_column(String(16))
    #: For ``schedule``: minutes between runs; each run acts on every member.
    every_minutes: Mapped[int | None] = mapped_column(Integer)
    next_run_at: Mapped[datetime | None]
    wait_seconds: Mapped[int] = mapped_column(Integer, default=0)
    #: A rule (:mod:`strata.segments.nodes`) the customer must still match when it acts.
    condition: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: What to do: ``{"kind": "webhook", "destination": 3, ...}`` (see :mod:`strata.actions`).
    action: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: active or paused.
    status: Mapped[str] = mapped_column(String(16), default="active")
    #: approved, or draft (changed while the workspace requires approval: it does not act
    #: until an admin approves it; see :mod:`strata.governance`).
    review_status: Mapped[str] = mapped_column(
        String(16), default="approved", server_default="approved"
    )
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class TriggerFiring(Base):
    """One customer's entry to, exit from, or scheduled turn in a segment, for one automation."""

    __tablename__ = "trigger_firings"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    automation_id: Mapped[int] = mapped_column(
        ForeignKey("automations.id", ondelete="CASCADE"), index=True
    )
    segment_id: Mapped[int] = mapped_column(Integer)
    customer_id: Mapped[int] = mapped_column(Integer)
    #: enter, exit, schedule or launch (a campaign's members when it starts).
    change: Mapped[str] = mapped_column(String(16))
    #: The evaluation instant of the change.
    at: Mapped[datetime]
    #: When to act (``at`` plus the automation's wait).
    due_at: Mapped[datetime] = mapped_column(index=True)
    #: pending, done, skipped (condition not met), held_out (campaign holdout) or failed.
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    outcome: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_at: Mapped[datetime | None]


class AuditEntry(Base):
    """One thing someone did (:mod:`strata.audit`). Append-only: the catalog refuses to
    change or delete a row (triggers made by migration 0006), and entries outlive the
    workspace they are about, so ``workspace_id`` is no foreign key."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int | None] = mapped_column(Integer, index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    #: The user who acted (none for API keys, the command line and Strata itself).
    actor_id: Mapped[int | None] = mapped_column(Integer, index=True)
    #: Who, in words: a user's e-mail, ``key sk_write_…``, ``cli:<os user>`` or ``strata``.
    actor: Mapped[str] = mapped_column(String(320))
    #: What, as ``<object>.<verb>`` (``segment.create``): see ``strata.audit.ACTIONS``.
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64))
    #: One line in words (never a customer's personal data).
    summary: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    request_id: Mapped[str | None] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(String(64))


class Suppression(Base):
    """A person erased on request: keyed hashes of their identifiers, so that a later
    import or ingest of them is refused until they consent again (:mod:`strata.privacy`)."""

    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("workspace_id", "kind", "digest"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    #: email or external_id.
    kind: Mapped[str] = mapped_column(String(16))
    #: HMAC-SHA256 of the normalised identifier under the workspace's own salt.
    digest: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[int | None] = mapped_column(
        ForeignKey("rights_requests.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RightsRequest(Base):
    """A data subject's erasure or access request, and its receipt."""

    __tablename__ = "rights_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    #: erasure or access.
    kind: Mapped[str] = mapped_column(String(16))
    #: queued, running, done or failed.
    status: Mapped[str] = mapped_column(String(16), default="queued")
    #: The keyed hash of the identifier asked about (what the receipt shows of the person).
    subject_digest: Mapped[str] = mapped_column(String(64))
    #: The identifier itself, sealed, only until the request is done.
    sealed_subject: Mapped[str | None] = mapped_column(Text)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    #: What was done, store by store (counts, never personal data).
    receipt: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: An access request's file (under ``$STRATA_HOME/rights``) and its SHA-256.
    file_path: Mapped[str | None] = mapped_column(Text)
    file_sha256: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str | None] = mapped_column(Text)


class ObjectVersion(Base):
    """One saved version of a segment, automation or sync, and its review."""

    __tablename__ = "object_versions"
    __table_args__ = (UniqueConstraint("object_type", "object_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    #: segment, automation or sync.
    object_type: Mapped[str] = mapped_column(String(16))
    object_id: Mapped[int] = mapped_column(Integer, index=True)
    version: Mapped[int] = mapped_column(Integer)
    #: What it was: the fields a change can touch.
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: draft, approved, rejected or superseded.
    status: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reviewed_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(Text)


class UsageCounter(Base):
    """A workspace's count of one metered thing in one calendar month (UTC)."""

    __tablename__ = "usage_counters"
    __table_args__ = (UniqueConstraint("workspace_id", "month", "metric"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    #: ``YYYY-MM``.
    month: Mapped[str] = mapped_column(String(7))
    #: events_ingested, api_calls or exports.
    metric: Mapped[str] = mapped_column(String(32))
    count: Mapped[int] = mapped_column(sa.BigInteger, default=0)
