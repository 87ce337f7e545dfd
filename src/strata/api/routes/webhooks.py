"""Webhook endpoints, their delivery log, replays.

Routes under ``/api/v1/workspaces/{workspace_id}/webhooks``, each a thin shell over
:class:`strata.actions.webhooks.Webhooks` (what ``strata webhooks …`` calls). A signing
secret is returned twice only: when the endpoint is created and when it is rotated.
Message payloads hold customers' personal data, so reading the log takes
``destinations.read``, which viewers do not have.
"""

import datetime as dt
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import Field

from strata.actions.webhooks import STATUSES, Webhooks, describe
from strata.api.deps import Access, PageDep, ServiceDep, require
from strata.api.schemas import ERRORS, PageOf, Schema
from strata.catalog import WebhookMessage

router = APIRouter(
    prefix="/workspaces/{workspace_id}/webhooks", tags=["webhooks"], responses=ERRORS
)

DestinationId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The endpoint's id.")]
MessageId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The message's catalog id.")]
ReadAccess = Annotated[Access, Depends(require("destinations.read"))]
ManageAccess = Annotated[Access, Depends(require("destinations.manage"))]
WriteAccess = Annotated[Access, Depends(require("actions.write"))]
Url = Annotated[str, Field(min_length=1, max_length=2000, description="http:// or https:// URL.")]
EventType = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.]+$")]
EventTypes = Annotated[
    list[EventType] | None,
    Field(
        max_length=100,
        description="Event types to send, e.g. segment.entered; null: every type.",
    ),
]


# -- bodies and answers ---------------------------------------------------------------------
class WebhookCreate(Schema):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    url: Url
    event_types: EventTypes = None


class WebhookUpdate(Schema):
    name: Annotated[str | None, Field(min_length=1, max_length=200)] = None
    url: Url | None = None
    event_types: EventTypes = Field(
        None, description="Event types to send; null: every type; absent: unchanged."
    )


class WebhookPublic(Schema):
    id: int
    name: str
    url: str
    event_types: list[str] | None = Field(description="Types sent; null: every type.")
    status: str = Field(description="active or disabled")
    disabled_reason: str | None = Field(description="Why it is disabled (e.g. 410 Gone).")
    previous_secret_expires_at: dt.datetime | None = Field(
        description="After a rotation: until when the previous secret also signs (UTC)."
    )
    created_at: dt.datetime
    updated_at: dt.datetime


class WebhookCreated(WebhookPublic):
    secret: str = Field(
        description="The signing secret (whsec_…): shown this once, never again.",
        json_schema_extra={"readOnly": True},
    )


class SecretRotated(Schema):
    secret: str = Field(description="The new signing secret: shown this once, never again.")
    previous_secret_expires_at: dt.datetime = Field(
        description="Until when the previous secret also signs (UTC)."
    )


class MessagePublic(Schema):
    id: int
    msg_id: str = Field(description="Its webhook-id header, the same on every attempt.")
    destination_id: int
    event_type: str
    status: str = Field(description=", ".join(STATUSES))
    attempts: int = Field(description="Attempts since it was queued (or last replayed).")
    next_attempt_at: dt.datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: dt.datetime
    delivered_at: dt.datetime | None


class AttemptPublic(Schema):
    id: int
    at: dt.datetime
    status_code: int | None
    error: str | None = Field(description="Why it failed: timeout, refused, redirect, HTTP 500…")
    duration_ms: float | None
    response: str | None = Field(description="The first kilobyte of the answer's body.")


class MessageDetail(MessagePublic):
    payload: dict[str, Any] = Field(description="The JSON body exactly as signed and sent.")
    attempt_log: list[AttemptPublic]


def _hooks(access: Access, svc) -> Webhooks:
    return Webhooks(svc.strata(), access.workspace)


def _wake(svc) -> None:
    svc.actions.webhooks.wake()


def _detail(hooks: Webhooks, msg: WebhookMessage) -> dict[str, Any]:
    data = MessagePublic.model_validate(msg).model_dump()
    return {**data, "payload": json.loads(msg.payload), "attempt_log": hooks.attempts(msg.id)}


# -- messages (before /{destination_id}, whose paths they would otherwise look like) -----------
@router.get("/messages/{message_id}", response_model=MessageDetail)
def get_message(message_id: MessageId, access: ReadAccess, svc: ServiceDep):
    """One message: its payload and every attempt (status, error, time taken, answer)."""
    hooks = _hooks(access, svc)
    return _detail(hooks, hooks.message(message_id))


@router.post("/messages/{message_id}/replay", response_model=MessagePublic)
def replay_message(message_id: MessageId, access: WriteAccess, svc: ServiceDep):
    """Send the message again now, with the same webhook-id (409 while it is in flight)."""
    msg = _hooks(access, svc).replay(message_id)
    _wake(svc)
    return msg


# -- endpoints ------------------------------------------------------------------------------
@router.post("", response_model=WebhookCreated, status_code=201)
def create_webhook(body: WebhookCreate, access: ManageAccess, svc: ServiceDep):
    """Add an endpoint. The answer holds its signing secret, shown this once."""
    dest, secret = _hooks(access, svc).create(
        body.name, body.url, event_types=body.event_types, created_by=access.user_id
    )
    return {**describe(dest), "secret": secret}


@router.get("", response_model=PageOf[WebhookPublic])
def list_webhooks(access: ReadAccess, svc: ServiceDep, page: PageDep):
    """The workspace's endpoints (never their secrets)."""
    rows = [describe(d) for d in _hooks(access, svc).list()]
    return page.answer(page.window(rows), len(rows))


@router.get("/{destination_id}", response_model=WebhookPublic)
def get_webhook(destination_id: DestinationId, access: ReadAccess, svc: ServiceDep):
    """One endpoint (never its secret)."""
    return describe(_hooks(access, svc).get(destination_id))


@router.patch("/{destination_id}", response_model=WebhookPublic)
def update_webhook(
    destination_id: DestinationId, body: WebhookUpdate, access: ManageAccess, svc: ServiceDep
):
    """Change the name, the URL or the event types."""
    changes: dict[str, Any] = {"name": body.name, "url": body.url}
    if "event_types" in body.model_fields_set:
        changes["event_types"] = body.event_types
    return describe(_hooks(access, svc).update(destination_id, **changes))


@router.delete("/{destination_id}", status_code=204, response_class=Response)
def delete_webhook(destination_id: DestinationId, access: ManageAccess, svc: ServiceDep):
    """Remove the endpoint with its messages and their log."""
    _hooks(access, svc).delete(destination_id)
    return Response(status_code=204)


@router.post("/{destination_id}/rotate-secret", response_model=SecretRotated)
def rotate_secret(destination_id: DestinationId, access: ManageAccess, svc: ServiceDep):
    """A new signing secret; for 24 hours every webhook is signed with both."""
    hooks = _hooks(access, svc)
    secret = hooks.rotate_secret(destination_id)
    info = describe(hooks.get(destination_id))
    return {"secret": secret, "previous_secret_expires_at": info["previous_secret_expires_at"]}


@router.post("/{destination_id}/enable", response_model=WebhookPublic)
def enable_webhook(destination_id: DestinationId, access: ManageAccess, svc: ServiceDep):
    """Send to the endpoint again (after a 410 Gone, say); its waiting messages go at once."""
    dest = _hooks(access, svc).enable(destination_id)
    _wake(svc)
    return describe(dest)


@router.post("/{destination_id}/disable", response_model=WebhookPublic)
def disable_webhook(
    destination_id: DestinationId,
    access: ManageAccess,
    svc: ServiceDep,
    reason: Annotated[str | None, Query(max_length=500, description="Why.")] = None,
):
    """Stop sending to the endpoint; its messages wait until it is enabled."""
    return describe(_hooks(access, svc).disable(destination_id, reason))


@router.post("/{destination_id}/test", response_model=MessagePublic, status_code=202)
def test_webhook(destination_id: DestinationId, access: WriteAccess, svc: ServiceDep):
    """Queue a webhook.test message to the endpoint; it goes at once."""
    msg = _hooks(access, svc).send_test(destination_id)
    _wake(svc)
    return msg


@router.get("/{destination_id}/messages", response_model=PageOf[MessagePublic])
def list_messages(
    destination_id: DestinationId,
    access: ReadAccess,
    svc: ServiceDep,
    page: PageDep,
    status: Annotated[
        str | None, Query(max_length=16, description=f"Only these: {', '.join(STATUSES)}.")
    ] = None,
):
    """The endpoint's delivery log, newest first."""
    total, rows = _hooks(access, svc).messages(
        destination_id, status=status, limit=page.limit, offset=page.offset
    )
    return page.answer(rows, total)
