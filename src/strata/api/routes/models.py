"""Models: fit clusters, lifetime value, churn, propensity and lookalikes; read their results.

Routes under ``/api/v1/workspaces/{workspace_id}``, thin shells over the functions that
``strata cluster``, ``strata predict …``, ``strata lookalike`` and ``strata anomalies``
call. Fits run as background jobs (202 and a job to follow); the job's result is what
the command prints with ``--json``.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any, Literal

import ibis
import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query
from pydantic import Field

from strata import plans
from strata.api.deps import Access, PageDep, ServiceDep, require
from strata.api.routes.segments import segment_of
from strata.api.schemas import ERRORS, JobPublic, PageOf, Schema
from strata.api.state import Service
from strata.catalog import Model, Segment
from strata.errors import InputError, NotFound
from strata.models.store import jsonable
from strata.segments import nodes as N
from strata.segments.reference import ReferenceTime

router = APIRouter(prefix="/workspaces/{workspace_id}", tags=["models"], responses=ERRORS)

AsOf = Annotated[
    str | None,
    Field(
        max_length=40,
        description="Reference time of the data: YYYY-MM-DD (the end of that day), an ISO "
        "date-time (UTC), or now (the default).",
    ),
]
Features = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=120)]] | None,
    Field(
        max_length=100,
        description="Features: recency, frequency, monetary, tenure, average_order_value, "
        "distinct_products, events_<type>, traits or number attributes (default: the "
        "behavioural set).",
    ),
]


# -- bodies and answers ---------------------------------------------------------------------
class ModelPublic(Schema):
    id: int
    kind: str = Field(description="cluster, clv, churn, propensity or lookalike")
    name: str
    version: int
    model_version: str = Field(description="How its predictions name it: name@version.")
    params: dict[str, Any]
    metrics: dict[str, Any]
    as_of: dt.datetime = Field(description="Reference time of the data it was fitted on.")
    created_at: dt.datetime


class ModelDetail(ModelPublic):
    state: dict[str, Any] = Field(description="What it learned (centres, coefficients…).")


class ClusterRequest(Schema):
    k: int | Literal["auto"] = Field(
        "auto", description="Number of clusters (2 to 20), or auto (the best of 3 to 8)."
    )
    method: Literal["kmeans", "gmm"] = "kmeans"
    features: Features = None
    name: Annotated[str, Field(min_length=1, max_length=100)] = "behaviour"
    as_of: AsOf = None


class ClusterPublic(Schema):
    index: int
    name: str
    description: str
    customers: int | None = Field(description="Members of its segment at the last evaluation.")
    segment_id: int | None
    profile: list[dict[str, Any]] = Field(description="Each feature's mean against the base.")


class ClusterModelPublic(Schema):
    model_id: int
    model_version: str
    name: str
    method: str | None
    k: int | None
    silhouette: float | None
    features: list[str]
    as_of: dt.datetime
    clusters: list[ClusterPublic]


class ClvRequest(Schema):
    as_of: AsOf = None
    time_unit: Literal["day", "week"] = "week"
    horizon: Annotated[int, Field(ge=1, le=120, description="Months of future value.")] = 12
    discount_rate: Annotated[float, Field(ge=0, le=1, description="Per month.")] = 0.01


class ChurnRequest(Schema):
    label: Annotated[
        str | None,
        Field(
            max_length=120,
            description="A yes/no attribute saying who churned (default: the generator's "
            "recorded churners, validated out of time).",
        ),
    ] = None
    horizon_days: Annotated[int, Field(ge=1, le=3650)] = 90
    cutoff: AsOf = None
    high: Annotated[float, Field(ge=0, le=1, description="Lowest risk of 'high'.")] = 0.7
    medium: Annotated[float, Field(ge=0, le=1, description="Lowest risk of 'medium'.")] = 0.3
    as_of: AsOf = None


class PropensityRequest(Schema):
    days: Annotated[int, Field(ge=1, le=3650, description="An order within this many days.")] = 30
    as_of: AsOf = None


class LookalikeRequest(Schema):
    seed: Annotated[int, Field(ge=1, le=2**31 - 1, description="The seed segment's id.")]
    top: Annotated[int, Field(ge=1, le=100_000, description="How many to return.")] = 100
    save_as: Annotated[
        str | None, Field(min_length=1, max_length=200, description="Save as a static segment.")
    ] = None
    features: Features = None
    min_score: Annotated[float | None, Field(ge=0, le=1)] = None
    method: Literal["classifier", "centroid"] = "classifier"
    as_of: AsOf = None


class PredictionRow(Schema):
    customer_id: int
    external_id: str | None
    name: str | None
    value: float | None
    confidence: float | None
    model_version: str | None
    predicted_at: dt.datetime | None
    details: Any = Field(None, description="Why: the inputs or top factors (JSON).")


# -- helpers --------------------------------------------------------------------------------
def _ref(as_of: str | None) -> ReferenceTime | None:
    return None if as_of is None else ReferenceTime.parse(as_of)


def _model_row(m: Model) -> dict[str, Any]:
    return {
        "id": m.id,
        "kind": m.kind,
        "name": m.name,
        "version": m.version,
        "model_version": f"{m.name}@{m.version}",
        "params": m.params,
        "metrics": m.metrics,
        "as_of": m.as_of,
        "created_at": m.created_at,
        "state": m.state,
    }


def _submit(svc: Service, access: Access, kind: str, body: Schema, stage: str, fit) -> Any:
    """A job running ``fit(app)`` with the warehouse to itself; its result made JSON-able."""

    def work(progress) -> dict[str, Any]:
        progress(0.05, stage)
        with svc.writing() as app:
            result = fit(app)
        return jsonable(result)

    params = body.model_dump()
    return svc.jobs.submit(access.workspace.id, kind, params, work, created_by=access.user_id)


# -- fitted models --------------------------------------------------------------------------
@router.get("/models", response_model=PageOf[ModelPublic])
def list_models(
    access: Annotated[Access, Depends(require("models.read"))],
    svc: ServiceDep,
    page: PageDep,
    kind: Annotated[str | None, Query(max_length=32, description="Only this kind.")] = None,
    name: Annotated[str | None, Query(max_length=120, description="Only this model.")] = None,
):
    """Every fitted version of every model, newest first, with its parameters and metrics."""
    where = [Model.workspace_id == access.workspace.id]
    if kind is not None:
        where.append(Model.kind == kind)
    if name is not None:
        where.append(Model.name == name)
    with svc.app.session() as s:
        total, rows = page.rows(s, sa.select(Model).where(*where).order_by(Model.id.desc()))
    items = [_model_row(m) for m in rows]
    return page.answer(items, total)


@router.get("/models/{model_id}", response_model=ModelDetail)
def get_model(
    model_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    access: Annotated[Access, Depends(require("models.read"))],
    svc: ServiceDep,
):
    """One fitted version: parameters, metrics and what it learned."""
    with svc.app.session() as s:
        m = s.get(Model, model_id)
    if m is None or m.workspace_id != access.workspace.id:
        raise NotFound(f"no model {model_id} in this workspace")
    return _model_row(m)


# -- clusters -------------------------------------------------------------------------------
@router.post("/models/clusters", response_model=JobPublic, status_code=202)
def fit_clusters(
    body: ClusterRequest,
    access: Annotated[Access, Depends(require("models.run"))],
    svc: ServiceDep,
):
    """Group customers by behaviour (a job, like ``strata cluster``): each cluster is
    named, described, profiled and saved as a segment of the family ``cluster:<name>``."""
    from strata.models.cluster import parse_k, run_clustering

    k = parse_k(body.k)  # a k out of range answers 422 now, not as a failed job
    plans.require_clustering(access.workspace, body.method, body.features)  # 402 now, too
    ref = _ref(body.as_of)
    ws = access.workspace

    def fit(app):
        return run_clustering(
            app, ws, features=body.features, k=k, method=body.method, as_of=ref,
            name=body.name.strip(),
        )  # fmt: skip

    return _submit(svc, access, "cluster", body, "fitting clusters", fit)


@router.get("/clusters", response_model=ClusterModelPublic)
def get_clusters(
    access: Annotated[Access, Depends(require("models.read"))],
    svc: ServiceDep,
    name: Annotated[
        str | None, Query(max_length=120, description="The model (default: the latest fitted).")
    ] = None,
):
    """The clusters of the latest cluster model: name, description, size and profile."""
    where = [Model.workspace_id == access.workspace.id, Model.kind == "cluster"]
    if name is not None:
        where.append(Model.name == name)
    with svc.app.session() as s:
        m = s.scalar(sa.select(Model).where(*where).order_by(Model.id.desc()).limit(1))
        if m is None:
            raise NotFound(
                "no cluster model fitted in this workspace"
                + (f" named {name!r}" if name else "")
                + ": fit one with POST …/models/clusters"
            )
        family = s.scalars(
            sa.select(Segment).where(
                Segment.workspace_id == access.workspace.id,
                Segment.family == f"cluster:{m.name}",
            )
        ).all()
    segments = {
        N.parse_rule(seg.definition).cluster: seg
        for seg in family
        if seg.definition and seg.definition.get("type") == "cluster"
    }
    clusters = []
    for c in m.state.get("clusters", []):
        seg = segments.get(c["index"])
        clusters.append(
            {
                **c,
                "customers": seg.customer_count if seg else None,
                "segment_id": seg.id if seg else None,
            }
        )
    return {
        "model_id": m.id,
        "model_version": f"{m.name}@{m.version}",
        "name": m.name,
        "method": m.params.get("method"),
        "k": m.metrics.get("k"),
        "silhouette": m.metrics.get("silhouette"),
        "features": m.params.get("features", []),
        "as_of": m.as_of,
        "clusters": clusters,
    }


# -- predictions ----------------------------------------------------------------------------
@router.post("/predictions/clv", response_model=JobPublic, status_code=202)
def predict_clv(
    body: ClvRequest,
    access: Annotated[Access, Depends(require("models.run"))],
    svc: ServiceDep,
):
    """Lifetime value with BG/NBD and Gamma-Gamma, and the chance each customer is alive
    (a job, like ``strata predict clv``); the top 20 % by value become the segment VIPs."""
    from strata.models.clv import run_clv

    plans.require_feature(access.workspace, "predictive")
    ref = _ref(body.as_of)
    ws = access.workspace

    def fit(app):
        return run_clv(
            app, ws, as_of=ref, time_unit=body.time_unit, horizon=body.horizon,
            discount_rate=body.discount_rate,
        )  # fmt: skip

    return _submit(svc, access, "predict.clv", body, "fitting BG/NBD and Gamma-Gamma", fit)


@router.post("/predictions/churn", response_model=JobPublic, status_code=202)
def predict_churn(
    body: ChurnRequest,
    access: Annotated[Access, Depends(require("models.run"))],
    svc: ServiceDep,
):
    """Churn risk from labels with gradient boosting (a job, like ``strata predict churn``);
    the risk bands become the segments "Churn risk: high / medium / low"."""
    from strata.models.churn import run_churn

    plans.require_feature(access.workspace, "predictive")
    if body.medium > body.high:
        raise InputError(f"medium ({body.medium}) must not be above high ({body.high})")
    ref, cutoff = _ref(body.as_of), _ref(body.cutoff)
    ws = access.workspace

    def fit(app):
        return run_churn(
            app, ws, label=body.label, as_of=ref, horizon_days=body.horizon_days,
            cutoff=cutoff, bands={"high": body.high, "medium": body.medium},
        )  # fmt: skip

    return _submit(svc, access, "predict.churn", body, "fitting the churn model", fit)


@router.post("/predictions/propensity", response_model=JobPublic, status_code=202)
def predict_propensity(
    body: PropensityRequest,
    access: Annotated[Access, Depends(require("models.run"))],
    svc: ServiceDep,
):
    """The chance of an order in the next ``days`` days (a job, like ``strata predict
    propensity``); the top 20 % become the segment "Likely to buy in N days"."""
    from strata.models.churn import run_propensity

    plans.require_feature(access.workspace, "predictive")
    ref = _ref(body.as_of)
    ws = access.workspace

    def fit(app):
        return run_propensity(app, ws, days=body.days, as_of=ref)

    return _submit(svc, access, "predict.propensity", body, "fitting the propensity model", fit)


@router.get("/predictions", response_model=PageOf[PredictionRow])
def list_predictions(
    access: Annotated[Access, Depends(require("models.read"))],
    svc: ServiceDep,
    page: PageDep,
    type: Annotated[
        str,
        Query(
            min_length=1,
            max_length=120,
            description="Prediction type: clv, churn_risk, p_alive, propensity_30d, "
            "cluster:<model>, lookalike:<seed>…",
        ),
    ],
    order: Annotated[Literal["desc", "asc"], Query(description="By value.")] = "desc",
):
    """Stored scores of one type, highest first, with the customers' ids (names masked for
    viewers) and why each score is what it is."""
    with svc.reading() as app:
        wh = app.warehouse
        p = wh.table(access.workspace.id, "predictions")
        mine = p.filter(p.prediction_type == type)
        customers = wh.table(access.workspace.id, "customers").select(
            "customer_id", "external_id", "name"
        )
        key = ibis.desc("value") if order == "desc" else ibis.asc("value")
        rows = (
            mine.inner_join(customers, "customer_id")
            .select(*_PREDICTION_COLUMNS)
            .order_by([key, "customer_id"])
            .limit(page.limit, offset=page.offset)
            .to_pyarrow()
            .to_pylist()
        )
        total = int(mine.count().to_pyarrow().as_py())
    for r in rows:
        r["details"] = _json(r["details"])
    return page.answer(access.masker.rows(rows), total)


_PREDICTION_COLUMNS = list(PredictionRow.model_fields)


def _json(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


# -- lookalikes and anomalies ---------------------------------------------------------------
@router.post("/lookalikes", response_model=JobPublic, status_code=202)
def find_lookalikes(
    body: LookalikeRequest,
    access: Annotated[Access, Depends(require("models.run"))],
    svc: ServiceDep,
):
    """Customers most like a seed segment's members, with the features that make them
    alike (a job, like ``strata lookalike``); ``save_as`` keeps the top ones as a static
    segment."""
    from strata.models import lookalike

    plans.require_feature(access.workspace, "predictive")
    seed = segment_of(svc.app, access, body.seed)
    ref = _ref(body.as_of)
    ws = access.workspace

    def fit(app):
        return lookalike.find_lookalikes(
            app, ws, seed.name, top=body.top, as_of=ref, features=body.features,
            save_as=body.save_as, min_score=body.min_score, method=body.method,
        )  # fmt: skip

    return _submit(svc, access, "lookalike", body, f"scoring customers like {seed.name}", fit)


@router.get("/anomalies")
def find_anomalies(
    access: Annotated[Access, Depends(require("models.read"))],
    svc: ServiceDep,
    segment: Annotated[
        list[int] | None, Query(description="Segment ids to check (default: every segment).")
    ] = None,
    days: Annotated[int, Query(ge=7, le=3650, description="Days to look back over.")] = 90,
    threshold: Annotated[float, Query(gt=0, le=100, description="Robust z-score.")] = 3.5,
    as_of: Annotated[str | None, Query(max_length=40)] = None,
) -> dict[str, Any]:
    """Unusual days of revenue, orders and segment sizes, allowing for the day of the week
    (like ``strata anomalies``); computed on request, nothing is stored."""
    from strata.models import anomaly

    ref = _ref(as_of)
    names = None
    if segment:
        names = [segment_of(svc.app, access, i).name for i in segment]
    with svc.reading() as app:
        result = anomaly.find_anomalies(
            app, access.workspace, as_of=ref, days=days, segments=names, threshold=threshold
        )
    return jsonable(result)
