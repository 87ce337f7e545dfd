"""The plan, its limits and this month's usage.

Routes under ``/api/v1/workspaces/{workspace_id}``, thin shells over :mod:`strata.plans`
(what ``strata plan …`` calls). Everyone in a workspace may read its plan and usage
(``usage.read``); only its owner may change the plan (``plan.manage``).
"""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import Field

from strata import plans
from strata.api.deps import Access, ServiceDep, require
from strata.api.schemas import ERRORS, Schema

router = APIRouter(prefix="/workspaces/{workspace_id}", tags=["plan"], responses=ERRORS)

Reader = Annotated[Access, Depends(require("usage.read"))]
PlanName = Literal[tuple(plans.PLANS)]  # type: ignore[valid-type]


class PlanPublic(Schema):
    name: str = Field(description="starter, growth, professional, enterprise or unlimited.")
    title: str
    monthly_price: int | None = Field(description="US dollars a month; None: custom or free.")
    max_customers: int | None = Field(description="None: no limit.")
    max_segments: int | None = Field(description="Rule and static segments; None: no limit.")
    features: list[str] = Field(
        description="ml_segmentation, realtime, api_access, predictive, custom_algorithms."
    )


class PlanChange(Schema):
    plan: PlanName = Field(description="The plan to move to (see docs/plans.md).")


class MonthUsage(Schema):
    month: str = Field(description="YYYY-MM (UTC).")
    events_ingested: int = Field(description="Events stored by imports and live ingest.")
    api_calls: int = Field(description="Authenticated API requests in the workspace.")
    exports: int = Field(description="Export files, members CSV and analysis CSV downloads.")


class UsagePublic(Schema):
    workspace_id: int
    plan: PlanPublic
    customers: int = Field(description="Customers held now.")
    segments: int = Field(description="Segments counted by the plan (rule and static) now.")
    segments_all_kinds: int = Field(description="Every segment, generated families included.")
    this_month: MonthUsage
    history: list[MonthUsage] = Field(description="Earlier months, newest first.")


@router.get("/usage", response_model=UsagePublic)
def get_usage(access: Reader, svc: ServiceDep) -> dict[str, Any]:
    """The plan and its limits, what the workspace holds now (customers, segments) and
    what it used this month and before (events ingested, API calls, exports)."""
    svc.meter.flush(svc.app)  # API calls are counted in memory: write them first
    with svc.reading() as app:
        return plans.usage(app, access.workspace)


class PlanCatalog(Schema):
    plans: list[PlanPublic] = Field(description="Every plan, cheapest first.")
    features: dict[str, str] = Field(description="What each feature gates, in words.")


@router.get("/plans", response_model=PlanCatalog)
def list_plans(access: Reader) -> dict[str, Any]:
    """Every plan the workspace could move to, with its price, limits and features, and
    what each feature means (``strata plan list``): what a change of plan offers."""
    order = [*plans.TIERS, *(n for n in plans.PLANS if n not in plans.TIERS)]
    return {
        "plans": [plans.PLANS[n].to_dict() for n in order],
        "features": dict(plans.FEATURES),
    }


@router.get("/plan", response_model=PlanPublic)
def get_plan(access: Reader) -> dict[str, Any]:
    """The workspace's plan: its price, limits and features."""
    return plans.plan_of(access.workspace).to_dict()


@router.put("/plan", response_model=PlanPublic)
def set_plan(
    body: PlanChange,
    access: Annotated[Access, Depends(require("plan.manage"))],
    svc: ServiceDep,
) -> dict[str, Any]:
    """Move the workspace to another plan (owner only; one audit entry). A plan the
    workspace already outgrows (more customers or segments than it allows) is refused
    with 402, and nothing changes."""
    with svc.reading() as app:
        plan = plans.set_plan(app, access.workspace, body.plan)
    svc.forget_plan(access.workspace.id)
    return plan.to_dict()
