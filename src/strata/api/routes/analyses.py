"""Analyses: the numbers behind every segment (what ``strata analyze …`` prints).

One route per analysis of :data:`strata.analysis.REGISTRY`, made from its parameter
model, under ``/api/v1/workspaces/{workspace_id}/analyses/{name}``. The answer is the
analysis's named tables as columns and rows, or one of them as a CSV download
(``format=csv``) named after the analysis, the segment and the day.
"""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field, create_model

from strata import audit, plans
from strata.analysis import Spec, analyses, csv_text, file_stem, records, run_analysis
from strata.api.deps import Access, ServiceDep, require
from strata.api.schemas import ERRORS, Schema
from strata.errors import Forbidden, InputError

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
