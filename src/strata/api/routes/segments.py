"""Segments: create, preview, change and delete them; members, explanations, history.

Routes under ``/api/v1/workspaces/{workspace_id}/segments``, each a thin shell over
:class:`strata.segments.engine.Segments` (what ``strata segments …`` calls). Segments
are addressed by their catalog id; an id of another workspace answers 404.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterator
from typing import Annotated, Any, Literal

import ibis
import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import Field

from strata import audit, governance, plans
from strata.api.deps import Access, PageDep, ServiceDep, require
from strata.api.masking import Masker, mask_value
from strata.api.schemas import ERRORS, JobPublic, PageOf, ReviewStatus, Schema
from strata.api.state import Service
from strata.catalog import Segment
from strata.context import Strata
from strata.csvsafe import neutralise
from strata.errors import Conflict, InputError, NotFound
from strata.models.store import jsonable
from strata.segments import nodes as N
from strata.segments.compile import value_kind
from strata.segments.engine import Segments
from strata.segments.reference import ReferenceTime
from strata.segments.trends import daily_sizes

router = APIRouter(prefix="/workspaces/{workspace_id}", tags=["segments"], responses=ERRORS)

SegmentId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The segment's catalog id.")]
AsOf = Annotated[
    str | None,
    Field(
        max_length=40,
        description="Reference time: YYYY-MM-DD (the end of that day), an ISO date-time "
        "(UTC), or now. Given when saving, it pins the segment to that time.",
    ),
]
#: Rows per warehouse read while streaming a CSV export.
CSV_BATCH = 5_000


# -- bodies and answers ---------------------------------------------------------------------
class SegmentCreate(Schema):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str | None, Field(max_length=2000)] = None
    kind: Literal["rule", "static"] = "rule"
    rule: dict[str, Any] | None = Field(
        None, description="The rule tree (see docs/segments.md), for a rule segment."
    )
    customers: Annotated[
        list[Annotated[str, Field(max_length=320)]] | None,
        Field(max_length=100_000, description="Customer ids or e-mails, for a static segment."),
    ] = None
    as_of: AsOf = None


class SegmentUpdate(Schema):
    name: Annotated[str | None, Field(min_length=1, max_length=200)] = None
    description: Annotated[str | None, Field(max_length=2000)] = None
    rule: dict[str, Any] | None = Field(None, description="A new rule (rule segments).")
    customers: Annotated[
        list[Annotated[str, Field(max_length=320)]] | None,
        Field(max_length=100_000, description="A new list (static segments), see mode."),
    ] = None
    mode: Literal["replace", "append"] = Field(
        "replace", description="Static segments: the list replaces the members, or is added."
    )
    as_of: AsOf = None


class SegmentPublic(Schema):
    id: int
    name: str
    kind: str = Field(description="rule, rfm, tier, static, cluster or prediction")
    family: str | None
    source: str
    description: str | None
    customers: int | None = Field(description="Members at the last evaluation.")
    as_of: str | None = Field(description="Reference time of the last evaluation.")
    pinned_as_of: str | None = Field(description="The fixed reference time, if pinned.")
    refreshed_at: dt.datetime | None
    rule: dict[str, Any] | None
    created_at: dt.datetime
    updated_at: dt.datetime
    review_status: ReviewStatus


class SegmentSaved(SegmentPublic):
    evaluation: dict[str, Any] | None = Field(
        None, description="What the evaluation did: members, joined, left, as_of, seconds."
    )
    unmatched: int | None = Field(None, description="Static: values that matched no customer.")
    unmatched_sample: list[str] | None = None


class PreviewRequest(Schema):
    rule: dict[str, Any]
    as_of: AsOf = None
    sample: Annotated[int, Field(ge=0, le=1000, description="Members to show.")] = 10


class PreviewPublic(Schema):
    count: int
    sample: list[dict[str, Any]]
    as_of: str
    seconds: float


class MemberRow(Schema):
    customer_id: int
    external_id: str | None
    email: str | None
    name: str | None
    country: str | None
    joined: str


class HistoryPoint(Schema):
    as_of: str
    joined: int
    left: int
    members: int


class RefreshRequest(Schema):
    names: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=200)]] | None,
        Field(max_length=1000, description="Segments to refresh (default: every dynamic one)."),
    ] = None
    as_of: AsOf = None


class RefreshOne(Schema):
    as_of: AsOf = None


FieldKind = Literal["text", "number", "date", "timestamp", "boolean"]


class RuleField(Schema):
    name: str
    kind: FieldKind = Field(description="Decides which operators and values apply.")
    description: str | None = None


class EventTypeCount(Schema):
    name: str
    events: int


class RuleFields(Schema):
    attributes: list[RuleField] = Field(description="Customer columns, for attribute conditions.")
    traits: list[RuleField] = Field(description="Values computed from events, for traits.")
    events: list[EventTypeCount] = Field(description="Event types seen, most frequent first.")


class SegmentTrend(Schema):
    segment_id: int
    sizes: list[int | None] = Field(
        description="Members at the end of each day, the last being now; null before the "
        "segment existed."
    )


class SegmentTrends(Schema):
    days: list[dt.date] = Field(description="The days, oldest first (UTC).")
    segments: list[SegmentTrend]


#: The kind of each trait's value (docs/segments.md, "trait").
TRAIT_KINDS: dict[str, FieldKind] = {
    "first_order_date": "date",
    "last_order_date": "date",
    "most_frequent": "text",
    "rfm_segment": "text",
}


# -- helpers --------------------------------------------------------------------------------
def _ref(as_of: str | None) -> ReferenceTime | None:
    return None if as_of is None else ReferenceTime.parse(as_of)


def _when(t: dt.datetime | None) -> str | None:
    return None if t is None else str(ReferenceTime.of(t))


def _public(seg: Segment, masker: Masker | None = None) -> dict[str, Any]:
    """A segment; with a viewer's ``masker``, a rule's values of personal columns masked
    (a rule may name a person: ``email eq jane@example.com``)."""
    return {
        "id": seg.id,
        "name": seg.name,
        "kind": seg.kind,
        "family": seg.family,
        "source": seg.source,
        "description": seg.description,
        "customers": seg.customer_count,
        "as_of": _when(seg.evaluated_as_of),
        "pinned_as_of": _when(seg.as_of),
        "refreshed_at": seg.refreshed_at,
        "rule": masker.conditions(seg.definition) if masker else seg.definition,
        "created_at": seg.created_at,
        "updated_at": seg.updated_at,
        "review_status": seg.review_status,
    }


def segment_of(app: Strata, access: Access, segment_id: int) -> Segment:
    """The segment ``segment_id`` of the caller's workspace (404 for any other)."""
    with app.session() as s:
        seg = s.get(Segment, segment_id)
    if seg is None or seg.workspace_id != access.workspace.id:
        raise NotFound(f"no segment {segment_id} in this workspace")
    return seg


def _job(svc: Service, access: Access, kind: str, params: dict[str, Any], work) -> Any:
    return svc.jobs.submit(access.workspace.id, kind, params, work, created_by=access.user_id)


def _refuse_if_used(segs: Segments, name: str, doing: str) -> None:
    users = segs.dependents(name)
    if users:
        raise Conflict(
            f"segment {name!r} is used by {', '.join(map(repr, users))}: "
            f"change those before you {doing} it"
        )


def _mask_why(node: dict[str, Any], masker: Masker) -> dict[str, Any]:
    """An explanation tree with the values of personal columns masked."""
    out = dict(node)
    if "conditions" in out:
        out["conditions"] = [_mask_why(c, masker) for c in out["conditions"]]
    elif masker.is_personal(str(out.get("condition", ""))):
        out["value"] = masker.value(out["condition"], out.get("value"))
    return out


def _render(node: dict[str, Any], depth: int = 0) -> str:
    """An explanation tree as lines with ✓ and ✗ (as ``strata segments explain``)."""
    mark = "✓" if node["holds"] else "✗"
    pad = "  " * depth
    if "conditions" in node:
        lines = [f"{pad}{mark} {node['condition']}"]
        return "\n".join(lines + [_render(c, depth + 1) for c in node["conditions"]])
    value = "none" if node.get("value") is None else node["value"]
    line = f"{pad}{mark} {node['condition']} is {value}, needs {node['needs']}"
    if node.get("details"):
        line += " (" + ", ".join(f"{k} {v}" for k, v in node["details"].items()) + ")"
    return line


# -- list, create, read, change, delete ----------------------------------------------------
@router.get("/segments", response_model=PageOf[SegmentPublic])
def list_segments(
    access: Annotated[Access, Depends(require("segments.read"))],
    svc: ServiceDep,
    page: PageDep,
    kind: Annotated[str | None, Query(max_length=32, description="Only this kind.")] = None,
    family: Annotated[
        str | None, Query(max_length=120, description="Only this family, e.g. rfm.")
    ] = None,
):
    """The workspace's segments (rule ones first, then families), with their sizes."""
    with svc.reading() as app:
        rows = Segments(app, access.workspace).list()
    rows = [
        s
        for s in rows
        if (kind is None or s.kind == kind) and (family is None or s.family == family)
    ]
    items = [_public(s, access.masker) for s in page.window(rows)]
    return page.answer(items, len(rows))


@router.post("/segments", response_model=SegmentSaved, status_code=201)
def create_segment(
    body: SegmentCreate,
    access: Annotated[Access, Depends(require("segments.write"))],
    svc: ServiceDep,
):
    """Save a segment and evaluate it, like ``strata segments create``.

    A rule segment takes ``rule`` (and ``as_of``, which pins it); a static segment
    (``kind: static``) takes ``customers``, a list of customer ids or e-mails. The answer
    is the segment with its size and what the evaluation did.
    """
    ref = _ref(body.as_of)
    name = body.name.strip()
    if not name:
        raise InputError("a segment needs a name")
    if body.kind == "rule":
        if body.rule is None or body.customers is not None:
            raise InputError("a rule segment takes 'rule' (and no 'customers')")
        spec = N.SegmentSpec(name=name, description=body.description, rule=N.parse_rule(body.rule))
    elif body.customers is None or body.rule is not None:
        raise InputError("a static segment takes 'customers', a list of ids or e-mails")
    with svc.writing() as app:
        segs = Segments(app, access.workspace)
        with app.session() as s:
            taken = s.scalar(
                sa.select(Segment.id).where(
                    Segment.workspace_id == access.workspace.id, Segment.name == name
                )
            )
        if taken is not None:
            raise Conflict(
                f"a segment named {name!r} already exists (id {taken}): choose another name, "
                "or change that one with PATCH"
            )
        if body.kind == "rule":
            seg, result = segs.save(spec, as_of=ref, source="api")
            return {**_public(seg), "evaluation": result.to_dict() if result else None}
        result, unmatched = segs.save_static(name, body.customers, description=body.description)
        seg = segs.get(name)
    return {
        **_public(seg),
        "evaluation": result.to_dict(),
        "unmatched": len(unmatched),
        "unmatched_sample": unmatched[:10],
    }


@router.post("/segments/preview", response_model=PreviewPublic)
def preview_segment(
    body: PreviewRequest,
    access: Annotated[Access, Depends(require("segments.read"))],
    svc: ServiceDep,
):
    """How many customers a rule matches and the first few of them; nothing is saved."""
    rule = N.parse_rule(body.rule)
    ref = _ref(body.as_of)
    with svc.reading() as app:
        preview = Segments(app, access.workspace).preview(rule, as_of=ref, sample=body.sample)
    data = preview.to_dict()
    data["sample"] = access.masker.rows(data["sample"])
    return data


@router.get("/segments/fields", response_model=RuleFields)
def rule_fields(
    access: Annotated[Access, Depends(require("segments.read"))],
    svc: ServiceDep,
):
    """What a rule can name: customer attributes and traits with the kind of their
    values, and the event types seen (for a segment builder's pickers)."""
    with svc.reading() as app:
        wh = app.warehouse
        schema = wh.customer_schema(access.workspace.id)
        try:
            events = wh.table(access.workspace.id, "events")
        except NotFound:  # no data yet: no event types
            seen = []
        else:
            seen = (
                events.group_by("event_type")
                .aggregate(n=events.count())
                .order_by([ibis.desc("n"), "event_type"])
                .to_pyarrow()
                .to_pylist()
            )
    return {
        "attributes": [
            {"name": name, "kind": value_kind(dtype)}
            for name, dtype in schema.items()
            if name != "customer_id"
        ],
        "traits": [
            {"name": name, "kind": TRAIT_KINDS.get(name, "number"), "description": text}
            for name, text in N.TRAITS.items()
        ],
        "events": [{"name": r["event_type"], "events": r["n"]} for r in seen],
    }


@router.get("/segments/trends", response_model=SegmentTrends)
def segment_trends(
    access: Annotated[Access, Depends(require("segments.read"))],
    svc: ServiceDep,
    days: Annotated[int, Query(ge=2, le=366, description="How many days back.")] = 30,
):
    """Every segment's size at the end of each of the last ``days`` days (null before it
    existed), for the sparklines of a segment list: one answer instead of one history
    per segment."""
    with svc.reading() as app:
        return daily_sizes(app, access.workspace, days)


@router.post("/segments/refresh", response_model=JobPublic, status_code=202)
def refresh_segments(
    access: Annotated[Access, Depends(require("segments.refresh"))],
    svc: ServiceDep,
    body: RefreshRequest | None = None,
):
    """Re-evaluate every dynamic segment, or those named, in the background (a job).

    The job's result lists each segment with its members, who joined and who left.
    """
    body = body or RefreshRequest()
    ref = _ref(body.as_of)
    names = body.names
    if names is not None:
        with svc.reading() as app:
            segs = Segments(app, access.workspace)
            for name in names:
                segs.get(name)  # unknown names answer 404 now, not as a failed job
    ws = access.workspace

    def work(progress) -> dict[str, Any]:
        progress(0.05, "refreshing segments")
        with svc.writing() as app:
            results = Segments(app, ws).refresh(names, as_of=ref)
        return {"refreshed": [r.to_dict() for r in results]}

    return _job(svc, access, "segments.refresh", body.model_dump(), work)


@router.get("/segments/{segment_id}", response_model=SegmentPublic)
def get_segment(
    segment_id: SegmentId,
    access: Annotated[Access, Depends(require("segments.read"))],
    svc: ServiceDep,
):
    """One segment: kind, rule, size and the reference time it was evaluated at."""
    return _public(segment_of(svc.app, access, segment_id), access.masker)


@router.patch("/segments/{segment_id}", response_model=SegmentSaved)
def update_segment(
    segment_id: SegmentId,
    body: SegmentUpdate,
    access: Annotated[Access, Depends(require("segments.write"))],
    svc: ServiceDep,
):
    """Change a rule or static segment's name, description, rule or list.

    A new rule (or ``as_of``) re-evaluates the segment, keeping its history: the
    evaluation records who joined and who left. A static segment takes a new
    ``customers`` list (``mode``: replace or append). RFM, tier, cluster and prediction
    segments are managed by Strata and are not changed here.
    """
    changes = body.model_dump(exclude_unset=True)
    seg = segment_of(svc.app, access, segment_id)
    if seg.kind not in {"rule", "static"}:
        raise InputError(
            f"{seg.name!r} is a {seg.kind} segment managed by Strata; "
            "only rule and static segments are changed here"
        )
    if seg.kind == "rule" and changes.get("customers") is not None:
        raise InputError(f"{seg.name!r} is a rule segment: change its 'rule', not 'customers'")
    if seg.kind == "static" and (changes.get("rule") is not None or "as_of" in changes):
        raise InputError(f"{seg.name!r} is a static segment: it has no rule; send 'customers'")
    rule = N.parse_rule(changes["rule"]) if changes.get("rule") is not None else None
    ref = _ref(body.as_of)
    new_name = (changes.get("name") or seg.name).strip()
    out: dict[str, Any] = {}
    with svc.writing() as app:
        segs = Segments(app, access.workspace)
        if new_name != seg.name:
            _refuse_if_used(segs, seg.name, "rename")
            with app.session() as s:
                taken = s.scalar(
                    sa.select(Segment.id).where(
                        Segment.workspace_id == access.workspace.id, Segment.name == new_name
                    )
                )
            if taken is not None:
                raise Conflict(f"a segment named {new_name!r} already exists (id {taken})")
        if rule is not None or ref is not None:
            spec = N.SegmentSpec(
                name=seg.name,
                description=changes.get("description", seg.description),
                rule=rule or N.parse_rule(seg.definition),
            )
            # Without a new as_of a pinned segment stays pinned to its time.
            keep = ReferenceTime.of(seg.as_of) if seg.as_of else None
            _, result = segs.save(spec, as_of=ref or keep, source=seg.source, replace=True)
            out["evaluation"] = result.to_dict() if result else None
        if seg.kind == "static" and changes.get("customers") is not None:
            result, unmatched = segs.save_static(seg.name, body.customers, mode=body.mode)
            out.update(
                evaluation=result.to_dict(),
                unmatched=len(unmatched),
                unmatched_sample=unmatched[:10],
            )
        with app.session() as s:
            row = s.get(Segment, seg.id)
            row.name = new_name
            if "description" in changes:
                row.description = changes["description"]
            state = sa.inspect(row)
            changed = [k for k in ("name", "description") if state.attrs[k].history.has_changes()]
            if changed:  # a version of its own (a new name or description needs no review)
                governance.track(s, access.workspace.id, "segment", row)
            if changed and not out:  # else the save of the new rule or list wrote the entry
                audit.record(
                    s,
                    access.workspace.id,
                    "segment.update",
                    f"changed segment {row.name!r}: {', '.join(changed)}",
                    target_type="segment",
                    target_id=row.id,
                    details={"changed": changed},
                )
            s.commit()
            s.refresh(row)
            return {**_public(row), **out}


@router.delete("/segments/{segment_id}", status_code=204)
def delete_segment(
    segment_id: SegmentId,
    access: Annotated[Access, Depends(require("segments.write"))],
    svc: ServiceDep,
) -> Response:
    """Delete a segment and its membership history (409 while other segments use it)."""
    seg = segment_of(svc.app, access, segment_id)
    with svc.writing() as app:
        segs = Segments(app, access.workspace)
        _refuse_if_used(segs, seg.name, "delete")
        segs.delete(seg.name)
    return Response(status_code=204)


# -- members, explanations, history ---------------------------------------------------------
@router.get("/segments/{segment_id}/members", response_model=PageOf[MemberRow])
def list_members(
    segment_id: SegmentId,
    access: Annotated[Access, Depends(require("segments.read"))],
    svc: ServiceDep,
    page: PageDep,
):
    """The segment's current members, a page at a time, with the time each joined.

    Personal data (e-mail, name) is masked for viewers.
    """
    seg = segment_of(svc.app, access, segment_id)
    with svc.reading() as app:
        total, rows = Segments(app, access.workspace).members(
            seg.name, limit=page.limit, offset=page.offset
        )
    return page.answer(access.masker.rows(rows), total)


@router.get(
    "/segments/{segment_id}/members.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "The members as CSV."}},
)
def export_members(
    segment_id: SegmentId,
    access: Annotated[Access, Depends(require("segments.export"))],
    svc: ServiceDep,
) -> StreamingResponse:
    """Download every current member with all their attributes (personal data included), as
    CSV, streamed; the last column is when they joined."""
    seg = segment_of(svc.app, access, segment_id)
    with svc.app.session() as s:
        audit.record(
            s,
            access.workspace.id,
            "segment.download",
            f"downloaded the members of segment {seg.name!r} as CSV",
            target_type="segment",
            target_id=seg.id,
        )
        s.commit()
    slug = re.sub(r"[^A-Za-z0-9]+", "-", seg.name).strip("-").lower() or "segment"
    plans.count_usage(svc.app, access.workspace.id, "exports")
    return StreamingResponse(
        _csv_rows(svc, access.workspace.id, seg.id),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{slug}-{seg.id}.csv"'},
    )


def _csv_rows(svc: Service, workspace_id: int, segment_id: int) -> Iterator[str]:
    # Each batch is read on whichever thread Starlette iterates on, so each takes the
    # stores afresh; pages follow the customer number, so none is read twice.
    last, header = -1, None
    while True:
        with svc.reading() as app:
            wh = app.warehouse
            m = wh.table(workspace_id, "memberships")
            customers = wh.table(workspace_id, "customers")
            current = m.filter(
                m.segment_id == segment_id, m.left_at.isnull(), m.customer_id > last
            ).select("customer_id", "joined_at")
            columns = [c for c in customers.columns if c != "customer_id"]
            batch = (
                current.inner_join(customers, "customer_id")
                .select("customer_id", *columns, "joined_at")
                .order_by("customer_id")
                .limit(CSV_BATCH)
                .to_pyarrow()
                .to_pylist()
            )
        buf = io.StringIO()
        writer = csv.writer(buf)
        if header is None:
            header = [*columns, "joined_at"]
            writer.writerow(header)
        for row in batch:
            writer.writerow([neutralise(row[c]) for c in header])
        yield buf.getvalue()
        if len(batch) < CSV_BATCH:
            return
        last = batch[-1]["customer_id"]


@router.get("/segments/{segment_id}/explain/{customer}")
def explain_membership(
    segment_id: SegmentId,
    customer: Annotated[
        str, Path(min_length=1, max_length=320, description="Customer id or e-mail.")
    ],
    access: Annotated[Access, Depends(require("segments.read"))],
    svc: ServiceDep,
    as_of: Annotated[str | None, Query(max_length=40, description="Another time.")] = None,
) -> dict[str, Any]:
    """Why a customer is or is not a member: each condition, the value it looked at and
    what it needs (``member``: in the stored members; ``matches``: the rule holds at
    ``as_of``, by default the time of the last evaluation)."""
    seg = segment_of(svc.app, access, segment_id)
    ref = _ref(as_of)
    with svc.reading() as app:
        data = Segments(app, access.workspace).explain(seg.name, customer, as_of=ref)
    data = jsonable(data)
    if access.masked and "why" in data:
        data["customer"] = mask_value("email" if "@" in customer else "id", customer)
        data["why"] = _mask_why(data["why"], access.masker)
        data["text"] = _render(data["why"])
        if isinstance(data.get("rfm"), dict):
            data["rfm"]["customer"] = data["customer"]
    elif access.masked:
        data["customer"] = mask_value("email" if "@" in customer else "id", customer)
    return data


@router.get("/segments/{segment_id}/history", response_model=list[HistoryPoint])
def segment_history(
    segment_id: SegmentId,
    access: Annotated[Access, Depends(require("segments.read"))],
    svc: ServiceDep,
):
    """The segment's size after each evaluation that changed it: who joined, who left."""
    seg = segment_of(svc.app, access, segment_id)
    with svc.reading() as app:
        return Segments(app, access.workspace).history(seg.name)


@router.post("/segments/{segment_id}/refresh", response_model=JobPublic, status_code=202)
def refresh_segment(
    segment_id: SegmentId,
    access: Annotated[Access, Depends(require("segments.refresh"))],
    svc: ServiceDep,
    body: RefreshOne | None = None,
):
    """Re-evaluate one dynamic segment in the background (a job); static ones never change."""
    seg = segment_of(svc.app, access, segment_id)
    if seg.kind == "static":
        raise InputError(f"{seg.name!r} is a static list: change it by sending a new list")
    ref = _ref(body.as_of if body else None)
    ws = access.workspace

    def work(progress) -> dict[str, Any]:
        progress(0.05, f"refreshing {seg.name}")
        with svc.writing() as app:
            results = Segments(app, ws).refresh([seg.name], as_of=ref)
        return {"refreshed": [r.to_dict() for r in results]}

    params = {"segment_id": seg.id, "segment": seg.name, "as_of": body.as_of if body else None}
    return _job(svc, access, "segments.refresh", params, work)
