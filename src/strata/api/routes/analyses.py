"""Analyses: the numbers behind every segment (what ``strata analyze …`` prints).

One route per analysis of :data:`strata.analysis.REGISTRY`, made from its parameter
model, under ``/api/v1/workspaces/{workspace_id}/analyses/{name}``. The answer is the
analysis's named tables as columns and rows, or one of them as a CSV download
(``format=csv``) named after the analysis, the segment and the day.
"""

import datetime as dt
from typing import Annotated, Any, Literal

import ibis
from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field, create_model

from strata import audit, plans
from strata.analysis import (
    Analyst,
    Params,
    PeriodParams,
    Spec,
    analyses,
    csv_text,
    file_stem,
    records,
    run_analysis,
)
from strata.analysis.base import SegmentRef, customers_page
from strata.analysis.cohorts import CohortPeriod
from strata.analysis.cohorts import cohort_customers as cohort_ids
from strata.analysis.journeys import MAX_STEPS, Mode
from strata.analysis.journeys import journey_customers as journey_ids
from strata.analysis.overlap import MAX_SEGMENTS, combination_customers
from strata.analysis.rfm_grid import Axis, rfm_cell_customers
from strata.analysis.rfm_grid import rfm_grid as grid_cells
from strata.analysis.rfm_migration import NONE, RfmMigrationParams, migration_customers
from strata.api.deps import Access, ServiceDep, require
from strata.api.schemas import ERRORS, PageOf, Schema
from strata.context import Strata
from strata.errors import Forbidden, InputError
from strata.segments.reference import ReferenceTime

router = APIRouter(
    prefix="/workspaces/{workspace_id}/analyses", tags=["analyses"], responses=ERRORS
)

Reader = Annotated[Access, Depends(require("analyses.read"))]


class TablePublic(Schema):
    columns: list[str]
    rows: list[dict[str, Any]]


class AnalysisPublic(Schema):
    analysis: str
    workspace: str
    as_of: str = Field(description="The reference time the analysis was computed at.")
    params: dict[str, Any]
    tables: dict[str, TablePublic] = Field(
        description="The analysis's tables by name; the first is the main one."
    )


class AnalysisInfo(Schema):
    name: str
    summary: str
    tables_path: str
    params: dict[str, Any] = Field(description="JSON Schema of the query parameters.")


@router.get("", response_model=list[AnalysisInfo])
def list_analyses(access: Reader) -> list[dict[str, Any]]:
    """Every analysis, with what it computes and the parameters it takes."""
    base = f"/api/v1/workspaces/{access.workspace.id}/analyses"
    return [
        {
            "name": spec.name,
            "summary": spec.summary,
            "tables_path": f"{base}/{spec.name}",
            "params": spec.params.model_json_schema(),
        }
        for spec in analyses().values()
    ]


class _Output(BaseModel):
    format: Literal["json", "csv"] = Field(
        "json", description="json: every table; csv: one table as a file download."
    )
    table: str | None = Field(
        None, max_length=40, description="With format=csv: which table (default: the main one)."
    )


def _route(spec: Spec):
    """The route of one analysis: its parameters as query parameters."""
    query_model = create_model(f"{spec.params.__name__}Query", __base__=(spec.params, _Output))
    own = set(spec.params.model_fields)

    def analysis_route(
        access: Reader,
        svc: ServiceDep,
        query: Annotated[query_model, Query()],  # type: ignore[valid-type]
    ):
        params = spec.params(**query.model_dump(include=own))
        _refuse_personal(access, params)
        with svc.reading() as app:
            tables, an = run_analysis(app, access.workspace, spec.name, params)
            if query.format == "csv":
                name = query.table or next(iter(tables))
                if name not in tables:
                    raise InputError(
                        f"{spec.name} has no table {name!r}; its tables: {', '.join(tables)}"
                    )
                stem = file_stem(an, spec, params, None if name == next(iter(tables)) else name)
                with app.session() as s:
                    audit.record(
                        s,
                        access.workspace.id,
                        "analysis.download",
                        f"downloaded {spec.name} ({name}) as CSV",
                        target_type="analysis",
                        target_id=spec.name,
                        details={"table": name},
                    )
                    s.commit()
                plans.count_usage(app, access.workspace.id, "exports")
                return Response(
                    access.masker.csv(csv_text(tables[name])),  # e.g. top customers' e-mails
                    media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{stem}.csv"'},
                )
            return {
                "analysis": spec.name,
                "workspace": access.workspace.name,
                "as_of": str(an.ref),
                "params": params.model_dump(mode="json"),
                "tables": {
                    key: {
                        "columns": [str(c) for c in frame.columns],
                        "rows": access.masker.rows(records(frame)),
                    }
                    for key, frame in tables.items()
                },
            }

    analysis_route.__name__ = f"analysis_{spec.name.replace('-', '_')}"
    analysis_route.__doc__ = _doc(spec)
    router.add_api_route(
        f"/{spec.name}",
        analysis_route,
        methods=["GET"],
        response_model=AnalysisPublic,
        summary=spec.summary,
        responses={200: {"content": {"text/csv": {}}}},
    )


def _doc(spec: Spec) -> str:
    doc = (spec.run.__doc__ or spec.summary).strip()
    return doc + "\n\nWith `format=csv`, one table as a CSV file named after the analysis."


def _refuse_personal(access: Access, params: BaseModel) -> None:
    """Viewers see personal data masked, so they get no breakdown of a personal field."""
    attribute = getattr(params, "attribute", None)
    if access.masked and isinstance(attribute, str) and access.masker.is_personal(attribute):
        raise Forbidden(
            f"{attribute!r} is personal data, which your role (viewer) sees masked; "
            "break down a non-personal attribute, or ask an admin for a role that sees it"
        )


for _spec in analyses().values():
    _route(_spec)


# -- the RFM grid and drill-downs: the customers behind one cell of a chart ------------------
# The web app's charts draw the analyses above; clicking a cell lists its customers. Each
# drill-down is the library function next to the aggregate it drills into (the same
# membership instants, scores, cohorts and journey steps), so a cell's count and its
# list's total always agree.


class _Paged(BaseModel):
    limit: int = Field(50, ge=1, le=500, description="Customers per page.")
    offset: int = Field(0, ge=0, le=10**9, description="Customers to skip.")


class DrillRow(Schema):
    customer_id: int
    external_id: str | None
    name: str | None
    email: str | None
    country: str | None


def _page(access: Access, an: Analyst, ids: ibis.Table, page: _Paged) -> dict[str, Any]:
    """One page of ``ids``' customers, personal data masked for viewers."""
    rows, total = customers_page(an, ids, page.limit, page.offset)
    return {
        "items": access.masker.rows(rows),
        "total": total,
        "limit": page.limit,
        "offset": page.offset,
    }


def _analyst(app: Strata, access: Access, as_of: str | None) -> Analyst:
    return Analyst(app, access.workspace, as_of=ReferenceTime.parse(as_of))


# RFM grid -----------------------------------------------------------------------------------
class RfmGridQuery(Params):
    axis: Axis = Field(
        "frequency",
        description="The grid's second score: frequency, or fm (the mean of frequency and "
        "monetary, rounded half up: the grid the RFM segments are cut from).",
    )


class RfmCell(Schema):
    recency: int = Field(description="Recency score, 1 (longest ago) to bins (most recent).")
    score: int = Field(description="The second score (frequency or FM), 1 to bins.")
    customers: int
    revenue: float = Field(description="Their net revenue (orders less refunds), in total.")
    average_revenue: float
    average_orders: float
    segment: str | None = Field(
        description="With axis=fm, the RFM segment the cell belongs to; null otherwise."
    )


class RfmGridAnswer(Schema):
    as_of: str
    axis: str
    bins: int
    customers: int = Field(description="Customers with at least one order, in every cell.")
    cells: list[RfmCell] = Field(description="The cells that have customers.")


@router.get("/rfm-grid", response_model=RfmGridAnswer)
def rfm_grid(
    access: Reader, svc: ServiceDep, query: Annotated[RfmGridQuery, Query()]
) -> dict[str, Any]:
    """The RFM grid: customers with orders by recency score and frequency (or FM) score,
    with each cell's revenue and orders, scored at ``as_of`` as ``strata rfm`` scores them.
    """
    with svc.reading() as app:
        an = _analyst(app, access, query.as_of)
        cells = grid_cells(an, query.axis)
        bins = an.segs.rfm_config().bins
    return {
        "as_of": str(an.ref),
        "axis": query.axis,
        "bins": bins,
        "customers": int(cells.customers.sum()),
        "cells": records(cells),
    }


class RfmCellQuery(RfmGridQuery, _Paged):
    recency: int = Field(ge=1, le=10, description="The cell's recency score.")
    score: int = Field(ge=1, le=10, description="The cell's frequency (or FM) score.")


@router.get("/rfm-grid/customers", response_model=PageOf[DrillRow])
def rfm_grid_customers(
    access: Reader, svc: ServiceDep, query: Annotated[RfmCellQuery, Query()]
) -> dict[str, Any]:
    """The customers of one cell of the RFM grid, a page at a time."""
    with svc.reading() as app:
        an = _analyst(app, access, query.as_of)
        ids = rfm_cell_customers(an, query.recency, query.score, query.axis)
        return _page(access, an, ids, query)


# Overlap ------------------------------------------------------------------------------------
class OverlapCellQuery(Params, _Paged):
    segments: list[str] = Field(
        description=f"Segments the customers are in, all of them (by name or id): "
        f"1 to {MAX_SEGMENTS}."
    )
    excluding: list[str] = Field(
        default_factory=list,
        description="Segments they are in none of: the other segments of an UpSet bar.",
    )


@router.get("/overlap/customers", response_model=PageOf[DrillRow])
def overlap_customers(
    access: Reader, svc: ServiceDep, query: Annotated[OverlapCellQuery, Query()]
) -> dict[str, Any]:
    """The customers behind an overlap cell (in every one of ``segments``) or an UpSet bar
    (in exactly ``segments``, and in none of ``excluding``), at ``as_of``."""
    with svc.reading() as app:
        an = _analyst(app, access, query.as_of)
        ids = combination_customers(an, query.segments, query.excluding)
        return _page(access, an, ids, query)


# RFM migration ------------------------------------------------------------------------------
class MigrationCellQuery(RfmMigrationParams, _Paged):
    from_segment: str = Field(
        max_length=200, description=f"RFM segment on the first date, or {NONE}."
    )
    to_segment: str = Field(
        max_length=200, description=f"RFM segment on the second date, or {NONE}."
    )


@router.get("/rfm-migration/customers", response_model=PageOf[DrillRow])
def rfm_migration_customers(
    access: Reader, svc: ServiceDep, query: Annotated[MigrationCellQuery, Query()]
) -> dict[str, Any]:
    """The customers who moved from one RFM segment to another between the two dates (the
    same as ``rfm-migration``: membership at the end of each day, ``(none)`` for none)."""
    with svc.reading() as app:
        an = _analyst(app, access, query.as_of)
        ids = migration_customers(
            an,
            query.from_date,
            query.to_date,
            from_segment=query.from_segment,
            to_segment=query.to_segment,
        )
        return _page(access, an, ids, query)


# Cohorts ------------------------------------------------------------------------------------
class CohortCellQuery(Params, _Paged):
    segment: SegmentRef = None
    period: CohortPeriod = Field("month", description="Cohort and offset period.")
    cohort: dt.date = Field(description="The cohort: the first day of its period.")
    period_offset: int | None = Field(
        None,
        ge=0,
        le=10_000,
        description="Periods after the cohort's: its customers who ordered then. "
        "Leave out for the whole cohort.",
    )


@router.get("/cohorts/customers", response_model=PageOf[DrillRow])
def cohort_customers(
    access: Reader, svc: ServiceDep, query: Annotated[CohortCellQuery, Query()]
) -> dict[str, Any]:
    """The customers of one acquisition cohort, or those of them who ordered in the period
    ``period_offset`` periods later: one cell of the ``cohorts`` retention matrix."""
    with svc.reading() as app:
        an = _analyst(app, access, query.as_of)
        ids = cohort_ids(
            an,
            query.segment,
            period=query.period,
            cohort=query.cohort,
            period_offset=query.period_offset,
        )
        return _page(access, an, ids, query)


# Journeys -----------------------------------------------------------------------------------
class JourneyCellQuery(PeriodParams, _Paged):
    segment: SegmentRef = None
    mode: Mode = "first"
    steps: int = Field(4, ge=1, le=MAX_STEPS, description="How many steps the journeys follow.")
    event: str | None = Field(None, max_length=200, description="The anchor event type.")
    collapse_repeats: bool = True
    step: int = Field(
        ge=-MAX_STEPS, le=MAX_STEPS, description="The node's (or link source's) step."
    )
    source_event: str = Field(max_length=200, description="The event type at that step.")
    target_event: str | None = Field(
        None, max_length=200, description="A link's event type at the next step; none: a node."
    )


@router.get("/journeys/customers", response_model=PageOf[DrillRow])
def journey_customers(
    access: Reader, svc: ServiceDep, query: Annotated[JourneyCellQuery, Query()]
) -> dict[str, Any]:
    """The customers behind a Sankey node (``source_event`` at ``step``) or link (then
    ``target_event`` at the next step) of ``journeys`` with the same parameters."""
    with svc.reading() as app:
        an = _analyst(app, access, query.as_of)
        ids = journey_ids(
            an,
            query.segment,
            step=query.step,
            source_event=query.source_event,
            target_event=query.target_event,
            mode=query.mode,
            steps=query.steps,
            event=query.event,
            collapse_repeats=query.collapse_repeats,
            since=query.since,
            until=query.until,
        )
        return _page(access, an, ids, query)
