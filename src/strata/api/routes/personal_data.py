"""Personal fields: which customer columns hold personal data (masked for viewers).

Routes under ``/api/v1/workspaces/{workspace_id}/personal-fields``, a thin shell over
:class:`strata.personal.PersonalFields` (what ``strata personal-fields …`` calls).
Everyone may read the list; changing it needs ``privacy.manage`` and is audited
(``personal_fields.update``). The defaults always stay personal.
"""

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import Field

from strata.api.deps import Access, ServiceDep, require
from strata.api.schemas import ERRORS, Schema
from strata.personal import PersonalFields

router = APIRouter(
    prefix="/workspaces/{workspace_id}/personal-fields", tags=["privacy"], responses=ERRORS
)

Column = Annotated[str, Field(min_length=1, max_length=63, pattern="^[A-Za-z][A-Za-z0-9_]*$")]


class PersonalFieldsPublic(Schema):
    defaults: list[str] = Field(description="Personal in every workspace; cannot be un-marked.")
    patterns: str = Field(description="Column names that are personal by their words.")
    marked: list[str] = Field(description="Columns this workspace marked personal.")
    customer_columns: list[str] = Field(
        description="The workspace's customer columns that are personal (masked for viewers)."
    )


class PersonalFieldsUpdate(Schema):
    marked: Annotated[list[Column], Field(max_length=500)] = Field(
        description="The columns the workspace marks personal (replaces the list; "
        "defaults may be named and are always personal)."
    )


@router.get("", response_model=PersonalFieldsPublic)
def get_personal_fields(
    access: Annotated[Access, Depends(require("customers.read"))], svc: ServiceDep
):
    """Which customer columns are personal here: the defaults and those the workspace marked."""
    with svc.reading() as app:
        return PersonalFields(app, access.workspace).listing()


@router.put("", response_model=PersonalFieldsPublic)
def put_personal_fields(
    body: PersonalFieldsUpdate,
    access: Annotated[Access, Depends(require("privacy.manage"))],
    svc: ServiceDep,
):
    """Replace the columns the workspace marks personal; viewers see them masked at once."""
    with svc.reading() as app:
        fields = PersonalFields(app, access.workspace)
        fields.replace(body.marked)
        return fields.listing()
