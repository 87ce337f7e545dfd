"""Approvals: versions of segments, automations and syncs, their review, and diffs.

Every create or change of a segment, automation or sync saves a version: a snapshot of
the fields a change can touch (:data:`FIELDS`), whether the workspace requires approval
or not, so the history and its diffs are always there.

With ``Workspace.require_approval`` on, what *sends data out* waits for an owner or admin:

- a new sync, and any change to one;
- a new automation whose action sends (``webhook``, ``email``, ``export``), and any change
  to one (pausing, resuming and renaming excepted: they send nothing new);
- a segment whose rule or reference time changes while a sending automation or a sync
  uses it, directly or through a rule that names it (``in_segment``).

Such an object is a *draft* (``review_status``) and does not act at all until it is
approved: a draft automation records no firings and acts on none it had recorded (they
wait, as for a paused one), scheduled runs skip it, a draft sync does not run, a campaign
on a draft cannot launch, and a draft segment cannot be exported; an automation or sync on
a draft segment waits too. Rejecting a change restores the last approved version (a new
version, approved, says so); an object never approved stays a draft after a rejection.

>>> first = {"definition": {"attribute": "country", "op": "eq", "value": "GB"}}
>>> second = {"definition": {"attribute": "country", "op": "in", "value": ["GB", "IE"]}}
>>> [(c["path"], c["old"], c["new"]) for c in diff(first, second)]
[('definition.op', 'eq', 'in'), ('definition.value', 'GB', ['GB', 'IE'])]
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import shlex
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from strata import audit
from strata.catalog import Automation, Destination, Segment, Sync, Workspace
from strata.catalog.models import ObjectVersion, utcnow
from strata.errors import Conflict, Forbidden, InputError, NotFound

OBJECT_TYPES = ("segment", "automation", "sync")
#: Automation actions that send data out of Strata.
SENDING_ACTIONS = frozenset({"webhook", "email", "export"})
#: What a version holds of each kind of object.
FIELDS: dict[str, tuple[str, ...]] = {
    "segment": ("name", "kind", "description", "definition", "as_of"),
    "automation": (
        "name",
        "segment",
        "trigger",
        "wait_seconds",
        "condition",
        "action",
        "every_minutes",
        "status",
    ),
    "sync": ("destination", "segment", "config"),
}
#: Changes to these alone need no review: they send nothing new (pausing stops sending;
#: resuming sends what was approved; a name or description is not what is sent).
_UNREVIEWED = frozenset({"name", "description", "status"})
#: A sync's settings a person sets (the rest are kept by its runs, e.g. a tag's id).
_SYNC_CONFIG = ("list_id", "tag", "auto")
_MODELS: dict[str, type] = {"segment": Segment, "automation": Automation, "sync": Sync}

#: Set while a rejected change is undone: the restored version is approved as it is.
_restoring: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "strata_restoring", default=None
)


# -- versions ---------------------------------------------------------------------------------
def track(
    session: Session, workspace_id: int, object_type: str, row: Any, *, new: bool | None = None
) -> ObjectVersion | None:
    """Save a version of ``row`` if it is new or changed, in review where the workspace asks.

    Call it in the session that changes ``row``, after the changes and before the commit
    (the version is written with the change), and before anything flushes the session:
    the old values are read from the session's history. ``new`` says the row was created
    in this session (needed once a flush gave it its id). The answer is the new version,
    or None if nothing changed.

    >>> with app.session() as s:  # doctest: +SKIP
    ...     row = s.get(Automation, 3)
    ...     row.wait_seconds = 3600
    ...     track(s, row.workspace_id, "automation", row).status
    'draft'
    """
    if new is None:
        state = sa.inspect(row)
        new = state.transient or state.pending
    # Read the old values before anything flushes: a flush forgets them.
    before_raw = None if new else _raw(row, object_type, old=True)
    after_raw = _raw(row, object_type, old=False)
    session.flush()
    before = None if before_raw is None else _named(session, object_type, before_raw)
    after = _named(session, object_type, after_raw)
    versions = sa.select(ObjectVersion).where(
        ObjectVersion.object_type == object_type, ObjectVersion.object_id == row.id
    )
    if new:  # an id the catalog used before (SQLite reuses them): not this object's past
        session.execute(
            sa.delete(ObjectVersion).where(
                ObjectVersion.object_type == object_type, ObjectVersion.object_id == row.id
            )
        )
        latest = None
    else:
        latest = session.scalars(versions.order_by(ObjectVersion.version.desc())).first()
        if latest is not None and before == after:
            return None
        if latest is None and before != after:
            # Kept since before versions were: its old state becomes version 1.
            latest = ObjectVersion(
                workspace_id=workspace_id,
                object_type=object_type,
                object_id=row.id,
                version=1,
                snapshot=before,
                status="approved",
                note="as it was before versions were kept",
            )
            session.add(latest)
        elif latest is None:  # unchanged, and never versioned: version 1 is how it is
            before = after
    restoring = _restoring.get()
    ws = session.get(Workspace, workspace_id)
    review = restoring is None and (
        row.review_status == "draft"
        or (
            ws.require_approval
            and _needs_review(before, after)
            and sends_out(session, workspace_id, object_type, row)
        )
    )
    if review:  # one change waits at a time: the newest, which includes the others
        for older in session.scalars(versions.where(ObjectVersion.status == "draft")):
            older.status = "superseded"
    version = ObjectVersion(
        workspace_id=workspace_id,
        object_type=object_type,
        object_id=row.id,
        version=latest.version + 1 if latest is not None else 1,
        snapshot=after,
        status="draft" if review else "approved",
        created_by=audit.current_actor().user_id,
        note=restoring,
    )
    session.add(version)
    row.review_status = "draft" if review else "approved"
    return version


def _raw(row: Any, object_type: str, *, old: bool) -> dict[str, Any]:
    columns = {
        "segment": ("name", "kind", "description", "definition", "as_of"),
        "automation": (
            "name",
            "segment_id",
            "trigger",
            "wait_seconds",
            "condition",
            "action",
            "every_minutes",
            "status",
        ),
        "sync": ("destination_id", "segment_id", "config"),
    }[object_type]
    state = sa.inspect(row)
    out = {}
    for column in columns:
        value = getattr(row, column)
        if old:
            history = state.attrs[column].history
            if history.deleted:
                value = history.deleted[0]
            elif history.unchanged:
                value = history.unchanged[0]
        out[column] = value
    return out


def _named(session: Session, object_type: str, raw: dict[str, Any]) -> dict[str, Any]:
    """A snapshot as people read it: names rather than ids, times as ISO text."""
    out = dict(raw)
    if "segment_id" in out:
        seg = session.get(Segment, out.pop("segment_id"))
        out["segment"] = seg.name if seg is not None else None
    if "destination_id" in out:
        dest = session.get(Destination, out.pop("destination_id"))
        out["destination"] = dest.name if dest is not None else None
    if object_type == "sync":
        out["config"] = {k: v for k, v in (out["config"] or {}).items() if k in _SYNC_CONFIG}
    if isinstance(out.get("as_of"), dt.datetime):
        out["as_of"] = out["as_of"].isoformat()
    return {field: out.get(field) for field in FIELDS[object_type]}


def _needs_review(before: dict[str, Any] | None, after: dict[str, Any]) -> bool:
    if before is None:
        return True
    changed = {k for k in after if before.get(k) != after.get(k)}
    return bool(changed - _UNREVIEWED)


def sends_out(session: Session, workspace_id: int, object_type: str, row: Any) -> bool:
    """Whether ``row`` sends data out of Strata (so, with approvals on, needs review)."""
    if object_type == "sync":
        return True
    if object_type == "automation":
        return (row.action or {}).get("kind") in SENDING_ACTIONS
    return row.name in sending_segments(session, workspace_id)


def sending_segments(session: Session, workspace_id: int) -> set[str]:
    """Names of segments whose members a sending automation or a sync sends, directly or
    through a rule that names them."""
    from strata.segments import nodes as N

    definitions = dict(
        session.execute(
            sa.select(Segment.name, Segment.definition).where(Segment.workspace_id == workspace_id)
        ).all()
    )
    names = dict(
        session.execute(
            sa.select(Segment.id, Segment.name).where(Segment.workspace_id == workspace_id)
        ).all()
    )
    roots: set[str] = set()
    for segment_id, action, condition in session.execute(
        sa.select(Automation.segment_id, Automation.action, Automation.condition).where(
            Automation.workspace_id == workspace_id
        )
    ):
        if (action or {}).get("kind") in SENDING_ACTIONS:
            roots.add(names.get(segment_id, ""))
            if condition:
                roots |= N.referenced_segments(N.parse_rule(condition))
    for (segment_id,) in session.execute(
        sa.select(Sync.segment_id).where(Sync.workspace_id == workspace_id)
    ):
        roots.add(names.get(segment_id, ""))
    found: set[str] = set()
    frontier = roots
    while frontier:
        found |= frontier
        frontier = {
            used
            for name in frontier
            if definitions.get(name)
            for used in N.referenced_segments(N.parse_rule(definitions[name]))
        } - found
    return found


# -- reading ----------------------------------------------------------------------------------
def check_approved(object_type: str, row: Any) -> None:
    """Refuse to act on a draft, saying who can approve it and how."""
    if row is not None and row.review_status == "draft":
        ref = _ref(object_type, row)
        raise Conflict(
            f"{object_type} {ref!r} changed and waits for approval; an admin approves it "
            f"with `strata approvals approve {object_type} {shlex.quote(str(ref))}`"
        )


def _ref(object_type: str, row: Any) -> str | int:
    return row.id if object_type == "sync" else row.name


def _check_type(object_type: str) -> None:
    if object_type not in OBJECT_TYPES:
        raise InputError(f"object type {object_type!r} is not one of {', '.join(OBJECT_TYPES)}")


def find(app, ws: Workspace, object_type: str, ref: int | str) -> Any:
    """A segment (by name or id), automation (by name or id) or sync (by id) of ``ws``."""
    _check_type(object_type)
    model = _MODELS[object_type]
    with app.session() as s:
        row = None
        if isinstance(ref, int) or str(ref).isdigit():
            row = s.get(model, int(ref))
            if row is not None and row.workspace_id != ws.id:
                row = None
        if row is None and object_type != "sync":
            row = s.scalar(sa.select(model).where(model.workspace_id == ws.id, model.name == ref))
    if row is None:
        raise NotFound(
            f"no {object_type} {ref!r} in this workspace; "
            "list what waits with `strata approvals list`"
        )
    return row


def versions(app, ws: Workspace, object_type: str, ref: int | str) -> list[ObjectVersion]:
    """Every version of one object, oldest first.

    >>> [v.version for v in versions(app, ws, "segment", "VIP")]  # doctest: +SKIP
    [1, 2, 3]
    """
    row = find(app, ws, object_type, ref)
    with app.session() as s:
        return list(
            s.scalars(
                sa.select(ObjectVersion)
                .where(ObjectVersion.object_type == object_type, ObjectVersion.object_id == row.id)
                .order_by(ObjectVersion.version)
            )
        )


def compare(
    app,
    ws: Workspace,
    object_type: str,
    ref: int | str,
    from_: int | None = None,
    to: int | None = None,
) -> dict[str, Any]:
    """What changed between two versions (default: the newest and the one before).

    >>> compare(app, ws, "automation", "welcome")["changes"]  # doctest: +SKIP
    [{'path': 'wait_seconds', 'change': 'changed', 'old': 0, 'new': 3600}]
    """
    found = {v.version: v for v in versions(app, ws, object_type, ref)}
    if not found:
        raise NotFound(
            f"{object_type} {ref!r} has no versions yet; they start with its next change"
        )
    to = max(found) if to is None else to
    from_ = to - 1 if from_ is None else from_
    for n in (from_, to):
        if n not in found and not (n == 0 and n == from_):
            raise NotFound(
                f"{object_type} {ref!r} has no version {n}; it has versions 1 to {max(found)}"
            )
    old = found[from_].snapshot if from_ in found else {}
    return {"from": from_, "to": to, "changes": diff(old, found[to].snapshot)}


def pending(app, ws: Workspace) -> list[dict[str, Any]]:
    """Changes waiting for approval, oldest first, each with what it changes.

    The diff is against the last approved version (everything, for a new object).
    """
    out = []
    with app.session() as s:
        drafts = s.scalars(
            sa.select(ObjectVersion)
            .where(ObjectVersion.workspace_id == ws.id, ObjectVersion.status == "draft")
            .order_by(ObjectVersion.created_at, ObjectVersion.id)
        ).all()
        for v in drafts:
            row = s.get(_MODELS[v.object_type], v.object_id)
            if row is None or row.workspace_id != ws.id:
                continue  # deleted while it waited
            approved = _latest(s, v.object_type, v.object_id, "approved", before=v.version)
            out.append(
                {
                    "object_type": v.object_type,
                    "object_id": v.object_id,
                    "name": str(_ref(v.object_type, row)),
                    "version": v.version,
                    "approved_version": approved.version if approved else None,
                    "created_by": v.created_by,
                    "created_at": v.created_at,
                    "changes": diff(approved.snapshot if approved else {}, v.snapshot),
                }
            )
    return out


def diff(old: Any, new: Any, path: str = "") -> list[dict[str, Any]]:
    """Field-level differences between two JSON values: one entry per path that was
    ``added``, ``removed`` or ``changed``, with its old and new value.

    >>> diff({"a": 1, "b": [1, 2]}, {"a": 1, "b": [1, 3], "c": None})
    [{'path': 'b[1]', 'change': 'changed', 'old': 2, 'new': 3}, {'path': 'c', 'change': 'added', 'old': None, 'new': None}]
    """  # noqa: E501 (a doctest's answer is one line)
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(old.keys() | new.keys(), key=str):
            at = f"{path}.{key}" if path else str(key)
            if key not in new:
                out.append({"path": at, "change": "removed", "old": old[key], "new": None})
            elif key not in old:
                out.append({"path": at, "change": "added", "old": None, "new": new[key]})
            else:
                out += diff(old[key], new[key], at)
        return out
    if isinstance(old, list) and isinstance(new, list) and old and new:
        out = []
        for i in range(max(len(old), len(new))):
            at = f"{path}[{i}]"
            if i >= len(new):
                out.append({"path": at, "change": "removed", "old": old[i], "new": None})
            elif i >= len(old):
                out.append({"path": at, "change": "added", "old": None, "new": new[i]})
            else:
                out += diff(old[i], new[i], at)
        return out
    if old == new and type(old) is type(new):
        return []
    return [{"path": path, "change": "changed", "old": old, "new": new}]


# -- review -----------------------------------------------------------------------------------
def approve(
    app, ws: Workspace, object_type: str, ref: int | str, note: str | None = None
) -> ObjectVersion:
    """Approve the change waiting on one object: it acts again, as it now is.

    Four eyes: a signed-in user does not approve their own change; an installation with
    one admin approves from the server's command line (``strata approvals approve``).
    """
    row = find(app, ws, object_type, ref)
    with app.session() as s:
        draft = _draft(s, object_type, row)
        _check_reviewer(draft, "approve")
        draft.status = "approved"
        _reviewed(draft, note)
        s.get(_MODELS[object_type], row.id).review_status = "approved"
        audit.record(
            s,
            ws.id,
            "approval.approve",
            f"approved version {draft.version} of {object_type} {_ref(object_type, row)!r}",
            target_type=object_type,
            target_id=row.id,
            details={"version": draft.version, "note": note},
        )
        s.commit()
        s.refresh(draft)
        return draft


def reject(
    app, ws: Workspace, object_type: str, ref: int | str, note: str | None = None
) -> ObjectVersion:
    """Reject the change waiting on one object and restore its last approved version.

    The restored state is saved as a new, approved version; an object that was never
    approved stays a draft (it does not act; change it again or delete it). The answer
    is the rejected version.
    """
    row = find(app, ws, object_type, ref)
    with app.session() as s:
        draft = _draft(s, object_type, row)
        _check_reviewer(draft, "reject")
        last = _latest(s, object_type, row.id, "approved")
    if last is not None:
        with _restored(f"restored version {last.version}: version {draft.version} was rejected"):
            _restore(app, ws, object_type, row, last.snapshot)
    with app.session() as s:
        draft = s.get(ObjectVersion, draft.id)
        draft.status = "rejected"
        _reviewed(draft, note)
        if last is not None:
            s.get(_MODELS[object_type], row.id).review_status = "approved"
        audit.record(
            s,
            ws.id,
            "approval.reject",
            f"rejected version {draft.version} of {object_type} {_ref(object_type, row)!r}"
            + (f"; restored version {last.version}" if last is not None else ""),
            target_type=object_type,
            target_id=row.id,
            details={
                "version": draft.version,
                "restored": last.version if last is not None else None,
                "note": note,
            },
        )
        s.commit()
        s.refresh(draft)
        return draft


def _latest(
    session: Session, object_type: str, object_id: int, status: str, *, before: int | None = None
) -> ObjectVersion | None:
    """The newest version of an object with ``status`` (older than ``before`` if given)."""
    query = sa.select(ObjectVersion).where(
        ObjectVersion.object_type == object_type,
        ObjectVersion.object_id == object_id,
        ObjectVersion.status == status,
    )
    if before is not None:
        query = query.where(ObjectVersion.version < before)
    return session.scalars(query.order_by(ObjectVersion.version.desc())).first()


def _draft(session: Session, object_type: str, row: Any) -> ObjectVersion:
    draft = _latest(session, object_type, row.id, "draft")
    if draft is None:
        raise Conflict(
            f"{object_type} {_ref(object_type, row)!r} has no change waiting for approval; "
            "see what waits with `strata approvals list`"
        )
    return draft


def _check_reviewer(draft: ObjectVersion, doing: str) -> None:
    actor = audit.current_actor()
    if actor.user_id is not None and draft.created_by == actor.user_id:
        raise Forbidden(
            f"you made this change, so another owner or admin must {doing} it (four eyes); "
            f"with a single admin, {doing} it on the server: `strata approvals {doing} …`"
        )


def _reviewed(version: ObjectVersion, note: str | None) -> None:
    version.reviewed_by = audit.current_actor().user_id
    version.reviewed_at = utcnow()
    version.note = note


@contextlib.contextmanager
def _restored(note: str) -> Iterator[None]:
    token = _restoring.set(note)
    try:
        yield
    finally:
        _restoring.reset(token)


def _restore(app, ws: Workspace, object_type: str, row: Any, snap: dict[str, Any]) -> None:
    """Put an object back as a version describes it, through the code that changes it."""
    if object_type == "automation":
        from strata.actions.automations import Automations

        Automations(app, ws).update(row.id, **{k: snap.get(k) for k in FIELDS["automation"]})
        return
    if object_type == "segment" and snap.get("definition") is not None:
        from strata.segments import nodes as N
        from strata.segments.engine import Segments
        from strata.segments.reference import ReferenceTime

        as_of = snap.get("as_of")
        spec = N.SegmentSpec(
            name=row.name,
            description=snap.get("description"),
            rule=N.parse_rule(snap["definition"]),
        )
        Segments(app, ws).save(
            spec,
            replace=True,
            source=row.source,
            family=row.family,
            as_of=ReferenceTime.of(dt.datetime.fromisoformat(as_of)) if as_of else None,
        )
        return
    with app.session() as s:  # a static segment's description, a sync's settings
        current = s.get(_MODELS[object_type], row.id)
        if object_type == "segment":
            current.description = snap.get("description")
        else:
            kept = {k: v for k, v in (current.config or {}).items() if k not in _SYNC_CONFIG}
            current.config = {**kept, **(snap.get("config") or {})}
        track(s, ws.id, object_type, current)
        s.commit()


# -- the workspace's setting ------------------------------------------------------------------
def set_required(app, ws: Workspace, required: bool) -> Workspace:
    """Turn approvals on or off for a workspace.

    Turning them on puts nothing into review: what exists is approved as it is (each
    object without a version gets one). Turning them off approves nothing: drafts stay
    drafts until an admin approves them.
    """
    with app.session() as s:
        row = s.get(Workspace, ws.id)
        if required and not row.require_approval:
            for object_type, model in _MODELS.items():
                have = sa.select(ObjectVersion.object_id).where(
                    ObjectVersion.object_type == object_type
                )
                for obj in s.scalars(
                    sa.select(model).where(model.workspace_id == ws.id, model.id.not_in(have))
                ):
                    s.add(
                        ObjectVersion(
                            workspace_id=ws.id,
                            object_type=object_type,
                            object_id=obj.id,
                            version=1,
                            snapshot=_named(s, object_type, _raw(obj, object_type, old=False)),
                            status=obj.review_status,
                            note="as it was when approvals were turned on",
                        )
                    )
        if row.require_approval != required:
            row.require_approval = required
            audit.record(
                s,
                ws.id,
                "workspace.approvals",
                f"approvals turned {'on' if required else 'off'}",
                target_type="workspace",
                target_id=ws.id,
                details={"require_approval": required},
            )
        s.commit()
        s.refresh(row)
        return row
