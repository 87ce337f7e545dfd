"""Response and request bodies shared by several routes."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class Schema(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class PageOf(Schema, Generic[T]):
    """One page of a list: ``items``, the ``total`` across pages, and where it starts."""

    items: list[T]
    total: int
    limit: int
    offset: int


class JobPublic(Schema):
    id: int
    kind: str
    status: str = Field(description="queued, running, succeeded, failed or interrupted")
    progress: float
    stage: str | None
    params: dict[str, Any]
    result: dict[str, Any] | None
    message: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


class Problem(Schema):
    """An error, as RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    request_id: str


#: Error answers every route may give, for the OpenAPI schema.
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "description": text}
    for code, text in (
        (401, "not signed in"),
        (403, "the role does not allow this"),
        (404, "not found in this workspace"),
        (422, "invalid input"),
    )
}


#: The review state of a segment, automation or sync (:mod:`strata.governance`).
ReviewStatus = Annotated[
    str,
    Field(
        description="approved, or draft: changed while the workspace requires approval and "
        "waiting for an admin; a draft does not act"
    ),
]
