"""Segments of one workspace: save, preview, refresh, explain, history.

Every kind of segment (rules, RFM, tiers, static lists) writes its members to the
warehouse's ``memberships`` table through :meth:`Warehouse.apply_members`, which
records who joined and who left at each evaluation, so sizes over time and each
customer's history can be read back for all of them alike.

>>> segs = Segments(app)  # doctest: +SKIP
>>> segs.preview(parse_rule({"type": "trait", "trait": "total_orders", "op": "gte",
...                          "value": 5})).count  # doctest: +SKIP
812
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from strata import audit, governance, plans
from strata.catalog import Segment, Setting, Workspace
from strata.catalog.models import utcnow
from strata.context import Strata
from strata.errors import InputError, NotFound
from strata.models.store import ModelStore
from strata.segments import nodes as N
from strata.segments import rfm as rfm_mod
from strata.segments.compile import (
    RULE_KINDS,
    Compiler,
    Context,
    Explained,
    SegmentRef,
    _scalar,
)
from strata.segments.icp import IcpConfig
from strata.segments.icp import parse_config as parse_icp
from strata.segments.reference import ReferenceTime
from strata.segments.tiers import TierConfig
from strata.segments.tiers import parse_config as parse_tiers

#: Above this many touched customers, an import refreshes segments in full.
INCREMENTAL_LIMIT = 5_000
#: Traits whose value for one customer depends on every other customer's.
GLOBAL_TRAITS = {"rfm_recency", "rfm_frequency", "rfm_monetary", "rfm_segment"}


def _at_one_instant(method):
    """Segments a call evaluates "now" share one instant: a rule naming another then reads
    the members just stored instead of compiling it again, and every segment's history
    moves by the same step (now has microseconds, so two calls rarely share one)."""

    @functools.wraps(method)
    def at_one_instant(self, *args, **kwargs):
        if self._now is not None:  # called from within such a call
            return method(self, *args, **kwargs)
        self._now = ReferenceTime.now()
        try:
            return method(self, *args, **kwargs)
        finally:
            self._now = None

    return at_one_instant


@dataclass
class Preview:
    count: int
    sample: list[dict[str, Any]]
    as_of: str
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Refreshed:
    segment: str
    kind: str
    members: int
    joined: int
    left: int
    as_of: str
    seconds: float
    incremental: bool = False
    #: The reference instant it was evaluated at (not shown; orders later evaluations).
    evaluated_at: dt.datetime | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        del out["evaluated_at"]
        return out


@dataclass
class PlanItem:
    action: str  # create, change, unchanged, delete
    name: str
    file: str | None = None
    changes: list[str] = field(default_factory=list)


class Segments:
    """The segments of one workspace (default: the configured one)."""

    def __init__(self, app: Strata, workspace: str | Workspace | None = None):
        self.app = app
        self.ws = workspace if isinstance(workspace, Workspace) else app.workspace(workspace)
        self.wh = app.warehouse
        #: The instant "now" means during one refresh (see :func:`_at_one_instant`).
        self._now: ReferenceTime | None = None

    # -- catalog --------------------------------------------------------------------------
    def list(self) -> list[Segment]:
        with self.app.session() as s:
            return list(
                s.scalars(
                    sa.select(Segment)
                    .where(Segment.workspace_id == self.ws.id)
                    .order_by(Segment.family.is_not(None), Segment.family, Segment.id)
                )
            )

    def get(self, name: str) -> Segment:
        with self.app.session() as s:
            seg = s.scalar(
                sa.select(Segment).where(Segment.workspace_id == self.ws.id, Segment.name == name)
            )
        if seg is None:
            raise NotFound(
                f"no segment named {name!r} in workspace {self.ws.name!r}; "
                "list them with `strata segments list`"
            )
        return seg

    def setting(self, key: str) -> dict[str, Any] | None:
        # A refresh compiles many segments; read each setting once per Segments.
        cache = self.__dict__.setdefault("_settings", {})
        if key not in cache:
            cache[key] = self._read_setting(key)
        return None if cache[key] is None else dict(cache[key])

    def _read_setting(self, key: str) -> dict[str, Any] | None:
        with self.app.session() as s:
            row = s.scalar(
                sa.select(Setting).where(Setting.workspace_id == self.ws.id, Setting.key == key)
            )
            return dict(row.value) if row else None

    def set_setting(self, key: str, value: dict[str, Any] | None, *, audited: bool = True) -> None:
        self.__dict__.pop("_settings", None)
        with self.app.session() as s:
            row = s.scalar(
                sa.select(Setting).where(Setting.workspace_id == self.ws.id, Setting.key == key)
            )
            if value is None:
                if row is not None:
                    s.delete(row)
            elif row is None:
                s.add(Setting(workspace_id=self.ws.id, key=key, value=value))
            else:
                row.value = value
            if audited:
                _audit_setting(s, self.ws.id, key, value)
            s.commit()

    def settings_like(self, prefix: str) -> dict[str, dict[str, Any]]:
        with self.app.session() as s:
            rows = s.scalars(
                sa.select(Setting).where(
                    Setting.workspace_id == self.ws.id, Setting.key.startswith(prefix)
                )
            )
            return {r.key: dict(r.value) for r in rows}

    def rfm_config(self) -> rfm_mod.RfmConfig:
        stored = self.setting("rfm")
        return rfm_mod.parse_config(stored) if stored else rfm_mod.default_config()

    def icp_config(self) -> IcpConfig | None:
        stored = self.setting("icp")
        return parse_icp(stored) if stored else None

    # -- compiling ------------------------------------------------------------------------
    def refs(self, segments: Iterable[Segment] | None = None) -> dict[str, SegmentRef]:
        return {
            seg.name: SegmentRef(
                seg.id, seg.name, seg.kind, N.parse_rule(seg.definition) if seg.definition else None
            )
            for seg in (self.list() if segments is None else segments)
        }

    def compiler(
        self,
        ref: ReferenceTime,
        *,
        customer_ids: Sequence[int] | None = None,
        refs: dict[str, SegmentRef] | None = None,
        stored: frozenset[str] = frozenset(),
        sample: tuple[str, int] | None = None,
    ) -> Compiler:
        return Compiler(
            Context(
                warehouse=self.wh,
                workspace_id=self.ws.id,
                ref=ref,
                segments=self.refs() if refs is None else refs,
                rfm=self.rfm_config(),
                icp=self.icp_config(),
                customer_ids=customer_ids,
                stored=stored,
                model=ModelStore(self.app, self.ws).get,
                sample=sample,
            )
        )

    def check(self, name: str, rule: N.Rule, refs: dict[str, SegmentRef] | None = None) -> None:
        """Refuse a rule that names itself (directly or through others) or cannot compile."""
        refs = dict(self.refs() if refs is None else refs)
        refs[name] = SegmentRef(refs[name].id if name in refs else -1, name, "rule", rule)
        self.compiler(ReferenceTime.now(), refs=refs).members(rule)

    # -- preview --------------------------------------------------------------------------
    def preview(
        self, rule: N.Rule, *, as_of: ReferenceTime | None = None, sample: int = 10
    ) -> Preview:
        """How many customers match ``rule`` and a few of them, without saving anything."""
        started = time.perf_counter()
        ref = as_of or ReferenceTime.now()
        members = self.compiler(ref).members(rule)
        customers = self.wh.table(self.ws.id, "customers")
        # One query: the count rides along with the first rows.
        rows = (
            members.mutate(_n=members.customer_id.count().over(ibis.window()))
            .order_by("customer_id")
            .limit(sample)
            .inner_join(customers, "customer_id")
            .select("_n", "customer_id", "external_id", "email", "name")
            .order_by("customer_id")
            .to_pyarrow()
            .to_pylist()
        )
        # No rows: nobody matches, or no sample was asked for (then count apart).
        count = int(rows[0]["_n"]) if rows else 0
        if not rows and sample == 0:
            count = _scalar(members.count())
        for r in rows:
            del r["_n"]
        return Preview(count, rows, str(ref), round(time.perf_counter() - started, 4))

    # -- saving ---------------------------------------------------------------------------
    def save(
        self,
        spec: N.SegmentSpec,
        *,
        kind: str = "rule",
        source: str = "cli",
        family: str | None = None,
        as_of: ReferenceTime | None = None,
        replace: bool = False,
        evaluate: bool = True,
        refs: dict[str, SegmentRef] | None = None,
        check_plan: bool = True,
    ) -> tuple[Segment, Refreshed | None]:
        """Create (or with ``replace``, change) a rule segment, then evaluate it.

        A new segment counts toward the plan's segment limit (:mod:`strata.plans`)
        unless ``check_plan`` is false (:meth:`apply` checks the whole set at once)."""
        rule_data = N.rule_json(spec.rule)
        with self.app.session() as s:
            seg = s.scalar(
                sa.select(Segment).where(
                    Segment.workspace_id == self.ws.id, Segment.name == spec.name
                )
            )
            if seg is not None and not replace:
                raise InputError(
                    f"a segment named {spec.name!r} already exists: choose another name, "
                    "or change it with `strata segments apply`"
                )
            if seg is not None and seg.kind not in RULE_KINDS:
                raise InputError(f"{spec.name!r} is a {seg.kind} segment; its rule cannot be set")
            self.check(spec.name, spec.rule, refs)
            created = seg is None
            if seg is None and check_plan and kind in plans.COUNTED_KINDS:
                plans.check_segments(s, self.ws)
            if seg is None:
                seg = Segment(workspace_id=self.ws.id, name=spec.name, kind=kind)
                s.add(seg)
            seg.description = spec.description
            seg.definition = rule_data
            seg.source = source
            seg.family = family
            seg.as_of = as_of.instant if as_of and as_of.fixed else None
            if source != "system":  # Strata's own segments: audited with their setting
                _audit_saved(s, seg)
            governance.track(s, self.ws.id, "segment", seg, new=created)
            s.commit()
            s.refresh(seg)
        result = self._refresh_one(seg, as_of) if evaluate else None
        return self.get(spec.name), result

    def dependents(self, name: str) -> list[str]:
        """Rule segments that name ``name``, directly or through others."""
        rules = {
            s.name: N.referenced_segments(N.parse_rule(s.definition))
            for s in self.list()
            if s.definition
        }
        found: list[str] = []
        frontier = {name}
        while frontier:
            frontier = {n for n, uses in rules.items() if uses & frontier and n not in found}
            found += sorted(frontier)
        return found

    def delete(self, name: str) -> None:
        seg = self.get(name)
        users = [
            other.name
            for other in self.list()
            if other.definition and name in N.referenced_segments(N.parse_rule(other.definition))
        ]
        if users:
            raise InputError(
                f"segment {name!r} is used by {', '.join(map(repr, users))}: change those first"
            )
        self.wh.delete_members(self.ws.id, seg.id)
        self.app.members_changed(self.ws.id)
        with self.app.session() as s:
            s.delete(s.get(Segment, seg.id))
            if seg.source != "system":
                audit.record(
                    s,
                    self.ws.id,
                    "segment.delete",
                    f"deleted segment {seg.name!r}",
                    target_type="segment",
                    target_id=seg.id,
                    details={"kind": seg.kind},
                )
            s.commit()

    def save_static(
        self,
        name: str,
        values: Sequence[str],
        *,
        mode: str | None = None,
        description: str | None = None,
    ) -> tuple[Refreshed, list[str]]:
        """A segment from a list of customer ids or e-mails; returns the unmatched values.

        A new segment takes the list as it is; an existing one needs ``mode``:
        ``replace`` (the list becomes the members) or ``append`` (they are added).
        """
        started = time.perf_counter()
        cleaned = sorted({v.strip() for v in values if v and v.strip()})
        if not cleaned:
            raise InputError("the list holds no customer ids or e-mails")
        with self.app.session() as s:
            seg = s.scalar(
                sa.select(Segment).where(Segment.workspace_id == self.ws.id, Segment.name == name)
            )
            if seg is not None and seg.kind != "static":
                raise InputError(f"{name!r} is a {seg.kind} segment, not a static list")
            if seg is not None and mode not in {"replace", "append"}:
                raise InputError(
                    f"static segment {name!r} exists: say --replace (the list becomes its "
                    "members) or --append (the list is added to them)"
                )
            created = seg is None
            if seg is None:
                plans.check_segments(s, self.ws)
                seg = Segment(workspace_id=self.ws.id, name=name, kind="static", source="cli")
                s.add(seg)
            if description is not None:
                seg.description = description
            _audit_saved(s, seg, also=[f"members ({mode})"] if mode else [])
            governance.track(s, self.ws.id, "segment", seg, new=created)
            s.commit()
            s.refresh(seg)
        customers = self.wh.table(self.ws.id, "customers")
        wanted = ibis.memtable(pa.table({"v": cleaned, "lv": [v.lower() for v in cleaned]}))
        by_id = customers.inner_join(wanted, customers.external_id == wanted.v).select(
            customers.customer_id, wanted.v
        )
        by_mail = customers.inner_join(wanted, customers.email.lower() == wanted.lv).select(
            customers.customer_id, wanted.v
        )
        found = by_id.union(by_mail).to_pyarrow()
        matched = set(found.column("v").to_pylist())
        ids = sorted(set(found.column("customer_id").to_pylist()))
        ref = ReferenceTime.now()
        if mode == "append":
            m = self.wh.table(self.ws.id, "memberships")
            current = m.filter(m.segment_id == seg.id, m.left_at.isnull()).customer_id
            ids = sorted(set(ids) | set(current.to_pyarrow().to_pylist()))
        change = self.wh.apply_members(self.ws.id, seg.id, _id_table(ids), ref.instant)
        self._record(seg.id, change.members, ref)
        if change.joined or change.left:
            self.app.members_changed(self.ws.id)
            self.app.segment_changed(self.ws.id, seg.id, ref.instant)
        self.refresh(self.dependents(name))
        unmatched = [v for v in cleaned if v not in matched]
        return (
            Refreshed(
                name,
                "static",
                change.members,
                change.joined,
                change.left,
                str(ref),
                round(time.perf_counter() - started, 4),
            ),
            unmatched,
        )

    # -- refreshing -----------------------------------------------------------------------
    @_at_one_instant
    def refresh(
        self,
        names: Sequence[str] | None = None,
        *,
        as_of: ReferenceTime | None = None,
        customer_ids: Sequence[int] | None = None,
    ) -> list[Refreshed]:
        """Re-evaluate dynamic segments (all, or ``names``) and record who joined and left.

        Without ``as_of`` each segment uses its pinned reference time if it has one,
        else now. With ``customer_ids`` only those customers are re-evaluated.
        """
        segments = [self.get(n) for n in names] if names is not None else self.list()
        dynamic = [s for s in segments if s.kind in RULE_KINDS]
        results: list[Refreshed] = []
        rfm_family = [s for s in dynamic if s.family == "rfm"]
        if rfm_family and customer_ids is None:
            results += self._refresh_rfm(rfm_family, as_of)
            dynamic = [s for s in dynamic if s.family != "rfm"]
        for clusters in _by_cluster_model(dynamic).values():
            results += self._refresh_clusters(clusters, as_of, customer_ids=customer_ids)
            dynamic = [s for s in dynamic if s not in clusters]
        refs = self.refs()
        # Segments named by others go first, so the others read their fresh members.
        done = {r.segment: r.evaluated_at for r in results}
        for seg in in_dependency_order(dynamic):
            result = self._refresh_one(
                seg, as_of, customer_ids=customer_ids, refs=refs, evaluated=done
            )
            done[result.segment] = result.evaluated_at
            results.append(result)
        return results

    @_at_one_instant
    def update_customers(
        self,
        customer_ids: Sequence[int],
        *,
        event_types: Iterable[str] | None = None,
        attributes: Iterable[str] | None = None,
        new_customers: bool = True,
        defer_global: bool = False,
    ) -> list[Refreshed]:
        """Re-evaluate only ``customer_ids``, only in segments their change can move.

        ``event_types`` and ``attributes`` say what changed (``None``: anything).
        Segments ranking customers against each other (RFM) are refreshed in full, or,
        with ``defer_global``, left alone for a later scheduled refresh (live ingest: a
        full ranking on every micro-batch would cost more than the batch).
        """
        segments = [s for s in self.list() if s.kind in RULE_KINDS]
        refs = self.refs(self.list())
        events = None if event_types is None else set(event_types)
        # Saying which events changed and nothing about attributes means none changed.
        if attributes is None and event_types is not None:
            attributes = ()
        attrs = None if attributes is None else set(attributes)
        partial, full = [], []
        for seg in segments:
            deps = dependencies(N.parse_rule(seg.definition), refs)
            if deps.is_global and defer_global:
                continue
            if deps.is_global and (events is None or deps.events_match(events)):
                full.append(seg.name)  # new orders move everyone's ranks
            elif new_customers or deps.touched_by(events, attrs):
                partial.append(seg)
        results = self.refresh(full) if full else []
        ids = sorted({int(i) for i in customer_ids})
        if ids:
            rfm_family = [s for s in partial if s.family == "rfm"]
            if rfm_family:
                results += self._refresh_rfm(rfm_family, None, customer_ids=ids)
            clustered = set()
            for clusters in _by_cluster_model(partial).values():
                results += self._refresh_clusters(clusters, None, customer_ids=ids)
                clustered |= {c.id for c in clusters}
            for seg in partial:
                if seg.family != "rfm" and seg.id not in clustered:
                    results.append(self._refresh_one(seg, None, customer_ids=ids, refs=refs))
        return results

    def after_predictions(
        self, prediction_types: Iterable[str], *, skip: Iterable[str] = ()
    ) -> list[Refreshed]:
        """Refresh the segments whose rules read any of ``prediction_types`` (directly or
        through a segment they name), once a model has stored new scores; ``skip`` names
        segments the caller refreshes itself."""
        types, skipped = set(prediction_types), set(skip)
        segments = [s for s in self.list() if s.kind in RULE_KINDS and s.name not in skipped]
        refs = self.refs(segments)
        reading = [
            s.name for s in segments if types & predictions_read(N.parse_rule(s.definition), refs)
        ]
        return self.refresh(reading) if reading else []

    def after_import(self, import_id: int, started_at: dt.datetime) -> list[Refreshed]:
        """Bring segments up to date with what one import changed."""
        if not any(s.kind in RULE_KINDS for s in self.list()):
            self.app.members_changed(self.ws.id)  # no segments, but traits may have changed
            return []
        events = self.wh.table(self.ws.id, "events")
        customers = self.wh.table(self.ws.id, "customers")
        new_events = events.filter(events.import_id == import_id)
        touched = (
            customers.filter(customers.updated_at >= ibis.literal(started_at, type="timestamp"))
            .select("customer_id")
            .union(new_events.select("customer_id"))
            .distinct()
        )
        count = _scalar(touched.count())
        if count == 0:
            return []
        if count > INCREMENTAL_LIMIT:
            self.app.members_changed(self.ws.id)  # traits changed too: drop cached profiles
            return self.refresh()
        ids = touched.to_pyarrow().column("customer_id").to_pylist()
        self.app.members_changed(self.ws.id, ids)
        types = new_events.select("event_type").distinct().to_pyarrow()
        changed = customers.filter(
            customers.updated_at >= ibis.literal(started_at, type="timestamp")
        ).count()
        return self.update_customers(
            ids,
            event_types=types.column("event_type").to_pylist(),
            # Created or updated customers may now match any segment.
            new_customers=bool(_scalar(changed)),
        )

    def _refresh_one(
        self,
        seg: Segment,
        as_of: ReferenceTime | None,
        *,
        customer_ids: Sequence[int] | None = None,
        refs: dict[str, SegmentRef] | None = None,
        evaluated: dict[str, dt.datetime] | None = None,
    ) -> Refreshed:
        """Evaluate one rule segment; ``evaluated`` names segments just refreshed (and when)."""
        started = time.perf_counter()
        ref = self._reference(seg, as_of)
        rule = N.parse_rule(seg.definition)
        stored = frozenset(n for n, t in (evaluated or {}).items() if t == ref.instant)
        members = self.compiler(ref, customer_ids=customer_ids, refs=refs, stored=stored).members(
            rule
        )
        within = None if customer_ids is None else _id_table(customer_ids)
        return self._apply(seg, members, ref, as_of, within, started)

    def _apply(
        self,
        seg: Segment,
        members: ibis.Table | pa.Table,
        ref: ReferenceTime,
        pin: ReferenceTime | None,
        within: pa.Table | None,
        started: float,
    ) -> Refreshed:
        """Store one evaluation's members and counts; say what changed."""
        change = self.wh.apply_members(self.ws.id, seg.id, members, ref.instant, within=within)
        self._record(seg.id, change.members, ref, pin=pin)
        if change.joined or change.left:
            ids = None if within is None else within.column("customer_id").to_pylist()
            self.app.members_changed(self.ws.id, ids)
            self.app.segment_changed(self.ws.id, seg.id, ref.instant)
        return Refreshed(
            seg.name,
            seg.kind,
            change.members,
            change.joined,
            change.left,
            str(ref),
            round(time.perf_counter() - started, 4),
            incremental=within is not None,
            evaluated_at=ref.instant,
        )

    def _refresh_rfm(
        self,
        family: list[Segment],
        as_of: ReferenceTime | None,
        *,
        customer_ids: Sequence[int] | None = None,
    ) -> list[Refreshed]:
        """All RFM segments from one scoring pass, split by segment name."""
        started = time.perf_counter()
        ref = self._reference(family[0], as_of)
        scored = rfm_scores(self, ref).select("customer_id", "rfm_segment")
        within = None
        if customer_ids is not None:
            # Scores rank everyone; only these customers' memberships are updated.
            scored = scored.filter(scored.customer_id.isin(list(customer_ids)))
            within = _id_table(customer_ids)
        scores = scored.to_pyarrow()
        names = scores.column("rfm_segment")
        results = []
        for seg in family:
            mine = pc.equal(names, N.parse_rule(seg.definition).value)
            ids = scores.filter(mine).select(["customer_id"])
            results.append(self._apply(seg, ids, ref, as_of, within, started))
            started = time.perf_counter()
        return results

    def _refresh_clusters(
        self,
        family: list[Segment],
        as_of: ReferenceTime | None,
        *,
        customer_ids: Sequence[int] | None = None,
    ) -> list[Refreshed]:
        """The cluster segments of one model from one assignment pass, split by cluster.

        Each segment alone would measure every customer's features again (k times the
        work); the assignment is the same expression its ``cluster`` condition compiles to.
        """
        from strata.models.cluster import assignment_table

        started = time.perf_counter()
        ref = self._reference(family[0], as_of)
        model = N.parse_rule(family[0].definition).model
        fitted = ModelStore(self.app, self.ws).get(model)
        compiler = self.compiler(ref, customer_ids=customer_ids)
        assigned = (
            assignment_table(compiler, fitted.state, confidence=False)
            .select("customer_id", "index")
            .to_pyarrow()
        )
        within = None if customer_ids is None else _id_table(customer_ids)
        results = []
        for seg in family:
            mine = pc.equal(assigned.column("index"), N.parse_rule(seg.definition).cluster)
            ids = assigned.filter(mine).select(["customer_id"])
            results.append(self._apply(seg, ids, ref, as_of, within, started))
            started = time.perf_counter()
        return results

    def _reference(self, seg: Segment, as_of: ReferenceTime | None) -> ReferenceTime:
        now = self._now or ReferenceTime.now()
        ref = as_of or (ReferenceTime.of(seg.as_of) if seg.as_of else now)
        if seg.evaluated_as_of and ref.instant < seg.evaluated_as_of:
            raise InputError(
                f"segment {seg.name!r} was last evaluated as of "
                f"{ReferenceTime.of(seg.evaluated_as_of)}; its history only moves forward, "
                f"so it cannot be refreshed as of {ref}. "
                "Use `strata segments preview --as-of` to look back without saving"
            )
        return ref

    def _record(
        self, segment_id: int, members: int, ref: ReferenceTime, pin: ReferenceTime | None = None
    ) -> None:
        with self.app.session() as s:
            seg = s.get(Segment, segment_id)
            seg.customer_count = members
            seg.refreshed_at = utcnow()
            seg.evaluated_as_of = ref.instant
            if pin is not None:
                seg.as_of = ref.instant if pin.fixed else None
            s.commit()

    # -- reading back ---------------------------------------------------------------------
    def members(
        self, name: str, *, limit: int = 50, offset: int = 0
    ) -> tuple[int, list[dict[str, Any]]]:
        """Current members (total and one page), with who they are and since when."""
        seg = self.get(name)
        m = self.wh.table(self.ws.id, "memberships")
        current = m.filter(m.segment_id == seg.id, m.left_at.isnull())
        customers = self.wh.table(self.ws.id, "customers")
        page = (
            current.inner_join(customers, "customer_id")
            .select("customer_id", "external_id", "email", "name", "country", "joined_at")
            .order_by("customer_id")
            .limit(limit, offset=offset)
        )
        rows = page.to_pyarrow().to_pylist()
        for r in rows:
            r["joined"] = str(ReferenceTime.of(r.pop("joined_at")))
        return _scalar(current.count()), rows

    def history(self, name: str) -> list[dict[str, Any]]:
        """Size after each evaluation that changed it: ``at, joined, left, members``."""
        seg = self.get(name)
        m = self.wh.table(self.ws.id, "memberships")
        mine = m.filter(m.segment_id == seg.id)
        joins = mine.group_by(at=mine.joined_at).aggregate(n=mine.count()).to_pyarrow()
        gone = mine.filter(mine.left_at.notnull())
        lefts = gone.group_by(at=gone.left_at).aggregate(n=gone.count()).to_pyarrow()
        steps: dict[dt.datetime, list[int]] = {}
        for at, n in zip(
            joins.column("at").to_pylist(), joins.column("n").to_pylist(), strict=True
        ):
            steps.setdefault(at, [0, 0])[0] += n
        for at, n in zip(
            lefts.column("at").to_pylist(), lefts.column("n").to_pylist(), strict=True
        ):
            steps.setdefault(at, [0, 0])[1] += n
        size, out = 0, []
        for at in sorted(steps):
            joined, left = steps[at]
            size += joined - left
            out.append(
                {
                    "as_of": str(ReferenceTime.of(at)),
                    "joined": joined,
                    "left": left,
                    "members": size,
                }
            )
        return out

    def customer_history(self, customer: str) -> list[dict[str, Any]]:
        """Every segment one customer has been in, with when they joined and left."""
        cid = self.customer_id(customer)
        m = self.wh.table(self.ws.id, "memberships")
        rows = (
            m.filter(m.customer_id == cid)
            .order_by(["joined_at", "segment_id"])
            .to_pyarrow()
            .to_pylist()
        )
        names = {s.id: s.name for s in self.list()}
        return [
            {
                "segment": names.get(r["segment_id"], f"#{r['segment_id']} (deleted)"),
                "joined": str(ReferenceTime.of(r["joined_at"])),
                "left": str(ReferenceTime.of(r["left_at"])) if r["left_at"] else None,
            }
            for r in rows
        ]

    def rfm_state(self, customer: str) -> dict[str, Any]:
        """A customer's RFM segment, since when, and the one before it (for migrations)."""
        family = {s.name for s in self.list() if s.family == "rfm"}
        stints = [h for h in self.customer_history(customer) if h["segment"] in family]
        now = next((h for h in reversed(stints) if h["left"] is None), None)
        before = [h for h in stints if h["left"] is not None]
        previous = before[-1] if before else None
        return {
            "customer": customer,
            "segment": now["segment"] if now else None,
            "since": now["joined"] if now else None,
            "previous": previous["segment"] if previous else None,
            "changed": previous["left"] if previous else None,
        }

    def customer_id(self, customer: str | int) -> int:
        """A customer's internal id from their external id or e-mail."""
        customers = self.wh.table(self.ws.id, "customers")
        text = str(customer).strip()
        match = customers.filter(
            (customers.external_id == text) | (customers.email.lower() == text.lower())
        ).select("customer_id")
        rows = match.limit(2).to_pyarrow().column("customer_id").to_pylist()
        if not rows:
            raise NotFound(
                f"no customer {text!r} in workspace {self.ws.name!r}: give the id from your "
                "data or the e-mail"
            )
        return int(rows[0])

    def explain(
        self, name: str, customer: str, *, as_of: ReferenceTime | None = None
    ) -> dict[str, Any]:
        """Why a customer is (or is not) in a segment, condition by condition."""
        seg = self.get(name)
        cid = self.customer_id(customer)
        m = self.wh.table(self.ws.id, "memberships")
        stored = (
            m.filter(m.segment_id == seg.id, m.customer_id == cid, m.left_at.isnull())
            .count()
            .to_pyarrow()
            .as_py()
        )
        out: dict[str, Any] = {
            "segment": seg.name,
            "kind": seg.kind,
            "customer": customer,
            "member": bool(stored),
        }
        if seg.kind not in RULE_KINDS or not seg.definition:
            out["reason"] = (
                "on the uploaded list" if stored else "not on the uploaded list"
            ) + f" of static segment {seg.name!r}"
            return out
        ref = as_of or (ReferenceTime.of(seg.evaluated_as_of) if seg.evaluated_as_of else None)
        ref = ref or ReferenceTime.now()
        explained = self.compiler(ref, customer_ids=[cid]).explain(
            N.parse_rule(seg.definition), cid
        )
        assert explained is not None
        out.update(as_of=str(ref), matches=explained.holds, why=explained.to_dict())
        if seg.family == "rfm":
            out["rfm"] = self.rfm_state(customer)
        out["text"] = render(explained)
        return out

    # -- segments as code -----------------------------------------------------------------
    def plan(self, directory: str | Path) -> list[PlanItem]:
        """Compare YAML files in ``directory`` with the saved segments managed as code."""
        specs = read_specs(directory)
        existing = {s.name: s for s in self.list()}
        plan: list[PlanItem] = []
        for path, spec in specs:
            seg = existing.get(spec.name)
            if seg is None:
                plan.append(PlanItem("create", spec.name, path))
                continue
            if seg.kind != "rule":
                raise InputError(
                    f"{path}: {spec.name!r} is a {seg.kind} segment; code can only manage rule "
                    "segments: rename it in the file"
                )
            changes = []
            if seg.definition != N.rule_json(spec.rule):
                changes.append("rule")
            if (seg.description or None) != (spec.description or None):
                changes.append("description")
            if seg.source != "code":
                changes.append("managed as code from now on")
            plan.append(PlanItem("change" if changes else "unchanged", spec.name, path, changes))
        names = {spec.name for _, spec in specs}
        for seg in existing.values():
            if seg.source == "code" and seg.name not in names:
                plan.append(PlanItem("delete", seg.name))
        return plan

    def apply(self, directory: str | Path) -> tuple[list[PlanItem], list[Refreshed]]:
        """Carry out :meth:`plan`: create and change first, then delete."""
        plan = self.plan(directory)
        specs = {spec.name: spec for _, spec in read_specs(directory)}
        # Check the whole new set first, so a bad file changes nothing.
        refs = self.refs()
        for item in plan:
            if item.action in {"create", "change"}:
                spec = specs[item.name]
                refs[item.name] = SegmentRef(
                    refs[item.name].id if item.name in refs else -1, item.name, "rule", spec.rule
                )
        for item in plan:
            if item.action == "delete":
                refs.pop(item.name, None)
        for item in plan:
            if item.action in {"create", "change"}:
                self.check(item.name, specs[item.name].rule, refs)
        going = {item.name for item in plan if item.action == "delete"}
        for name, ref in refs.items():
            used = N.referenced_segments(ref.rule) & going if ref.rule else set()
            if used:
                raise InputError(
                    f"{name!r} refers to {', '.join(map(repr, sorted(used)))}, which the "
                    "directory no longer defines: change it too, or keep the file"
                )
        # The plan's segment limit, on the set as it will be (deletes run last).
        creates = sum(item.action == "create" for item in plan)
        with self.app.session() as s:
            plans.check_segments(s, self.ws, creates - len(going))
        # Save every definition, then evaluate, so segments may name each other freely.
        for item in plan:
            if item.action in {"create", "change"}:
                self.save(
                    specs[item.name], source="code", replace=True, evaluate=False, refs=refs,
                    check_plan=False,
                )  # fmt: skip
        results = []
        for item in plan:
            if item.action in {"create", "change"}:
                results += self.refresh([item.name])
        for item in plan:
            if item.action == "delete":
                self.delete(item.name)
        return plan, results


# -- dependencies -------------------------------------------------------------------------
def in_dependency_order(segments: Sequence[Segment]) -> list[Segment]:
    """``segments`` with every segment after those (among them) its rule names."""
    by_name = {s.name: s for s in segments}
    order: list[Segment] = []
    seen: set[str] = set()

    def visit(seg: Segment) -> None:
        if seg.name in seen:
            return
        seen.add(seg.name)  # cycles are refused on save; this only stops a loop
        if seg.definition:
            for name in sorted(N.referenced_segments(N.parse_rule(seg.definition))):
                if name in by_name:
                    visit(by_name[name])
        order.append(seg)

    for seg in segments:
        visit(seg)
    return order


def predictions_read(
    rule: N.Rule, refs: dict[str, SegmentRef], _seen: frozenset[str] = frozenset()
) -> set[str]:
    """The prediction types ``rule`` reads, including through segments it names."""
    found: set[str] = set()
    for node in N.walk(rule):
        if isinstance(node, N.Prediction):
            found.add(node.prediction)
        elif isinstance(node, N.InSegment | N.NotInSegment):
            ref = refs.get(node.segment)
            if ref and ref.rule is not None and node.segment not in _seen:
                found |= predictions_read(ref.rule, refs, _seen | {node.segment})
    return found


@dataclass
class Dependencies:
    """What a rule reads: which attributes, which event types (``None``: any)."""

    attributes: set[str] = field(default_factory=set)
    events: set[str] | None = field(default_factory=set)
    is_global: bool = False

    def events_match(self, events: set[str]) -> bool:
        return self.events is None or bool(self.events & events)

    def touched_by(self, events: set[str] | None, attributes: set[str] | None) -> bool:
        if events is None or attributes is None:
            return True
        return self.events_match(events) or bool(self.attributes & attributes)


_ORDER_TRAITS = {
    "total_orders",
    "total_revenue",
    "average_order_value",
    "first_order_date",
    "last_order_date",
    "days_since_last_order",
    "distinct_products",
}


def dependencies(
    rule: N.Rule, refs: dict[str, SegmentRef], _seen: frozenset[str] = frozenset()
) -> Dependencies:
    deps = Dependencies()

    def add_events(names: Iterable[str] | None) -> None:
        if names is None or deps.events is None:
            deps.events = None
        else:
            deps.events |= set(names)

    for node in N.walk(rule):
        if isinstance(node, N.Attribute):
            deps.attributes.add(node.attribute)
        elif isinstance(node, N.Trait):
            if node.trait in GLOBAL_TRAITS:
                deps.is_global = True
                add_events({"order", "refund"})
            elif node.trait in _ORDER_TRAITS:
                add_events({"order", "refund"})
            elif node.trait == "most_frequent":
                add_events({node.event} if node.event else None)
            elif node.trait == "icp_score":
                add_events(None)
                deps.attributes.add("*")
        elif isinstance(node, N.EventScope):
            names = node.event if isinstance(node.event, list) else [node.event]
            add_events(None if "*" in names else names)
        elif isinstance(node, N.Cluster):
            # Features read every kind of event and any attribute the model names.
            add_events(None)
            deps.attributes.add("*")
        elif isinstance(node, N.InSegment | N.NotInSegment):
            ref = refs.get(node.segment)
            if ref and ref.rule is not None and node.segment not in _seen:
                inner = dependencies(ref.rule, refs, _seen | {node.segment})
                deps.attributes |= inner.attributes
                add_events(inner.events)
                deps.is_global |= inner.is_global
    return deps


# -- RFM ----------------------------------------------------------------------------------
def rfm_scores(
    segs: Segments, ref: ReferenceTime, config: rfm_mod.RfmConfig | None = None
) -> ibis.Table:
    """Per customer with orders: scores, segment, days since last order, orders, revenue."""
    return segs.compiler(ref).rfm_scores(config)


def run_rfm(
    segs: Segments,
    *,
    as_of: ReferenceTime | None = None,
    save: bool = True,
    config: rfm_mod.RfmConfig | None = None,
) -> dict[str, Any]:
    """Score every customer with orders, save the 11 RFM segments, return the summary.

    ``{"as_of": …, "customers": N, "segments": [{"name", "customers", "revenue"}, …]}``
    """
    ref = as_of or ReferenceTime.now()
    if config is not None and save:
        segs.set_setting("rfm", config.model_dump(mode="json"))
    config = config or segs.rfm_config()
    if save:
        ensure_rfm_segments(segs, config)
        segs.refresh([s.name for s in segs.list() if s.family == "rfm"], as_of=ref)
    scored = rfm_scores(segs, ref, config)
    summary = (
        scored.group_by("rfm_segment")
        .aggregate(customers=scored.count(), revenue=scored.total_revenue.sum())
        .to_pyarrow()
        .to_pylist()
    )
    by_name = {r["rfm_segment"]: r for r in summary}
    segments = [
        {
            "name": name,
            "customers": int(by_name.get(name, {}).get("customers") or 0),
            "revenue": round(float(by_name.get(name, {}).get("revenue") or 0.0), 2),
            "action": rfm_mod.ACTIONS.get(name),
        }
        for name in config.map
    ]
    return {
        "as_of": str(ref),
        "customers": sum(s["customers"] for s in segments),
        "segments": segments,
    }


def ensure_rfm_segments(segs: Segments, config: rfm_mod.RfmConfig) -> None:
    """One segment per RFM name (kind ``rfm``); names dropped from the map are deleted."""
    existing = {s.name: s for s in segs.list() if s.family == "rfm"}
    for name in config.map:
        rule = N.parse_rule({"type": "trait", "trait": "rfm_segment", "op": "eq", "value": name})
        if name in existing and existing[name].definition == N.rule_json(rule):
            continue
        clash = name not in existing and any(s.name == name for s in segs.list())
        if clash:
            raise InputError(
                f"a segment named {name!r} already exists and is not an RFM segment: rename it"
            )
        segs.save(
            N.SegmentSpec(name=name, description=rfm_mod.ACTIONS.get(name), rule=rule),
            kind="rfm",
            source="system",
            family="rfm",
            replace=True,
            evaluate=False,
        )
    for name in set(existing) - set(config.map):
        segs.delete(name)


# -- helpers ------------------------------------------------------------------------------
def _audit_saved(s, seg: Segment, also: Sequence[str] = ()) -> None:
    """The ``segment.create`` or ``segment.update`` entry of a save, before its commit.

    It names the fields that changed, never their values: a rule may hold an e-mail.
    """
    state = sa.inspect(seg)
    if state.pending:
        s.flush()  # the new segment's id
        audit.record(
            s,
            seg.workspace_id,
            "segment.create",
            f"created {seg.kind} segment {seg.name!r}",
            target_type="segment",
            target_id=seg.id,
            details={"kind": seg.kind},
        )
        return
    changed = [a.key for a in state.attrs if a.history.has_changes()] + list(also)
    audit.record(
        s,
        seg.workspace_id,
        "segment.update",
        f"changed segment {seg.name!r}" + (f": {', '.join(changed)}" if changed else ""),
        target_type="segment",
        target_id=seg.id,
        details={"changed": changed},
    )


def _audit_setting(s, workspace_id: int, key: str, value: dict[str, Any] | None) -> None:
    """The ``segment.settings`` entry of an RFM grid, tier set or ICP change."""
    what = f"tier set {key.removeprefix('tiers:')!r}" if key.startswith("tiers:") else key
    audit.record(
        s,
        workspace_id,
        "segment.settings",
        f"{'cleared' if value is None else 'set'} the {what} settings",
        target_type="setting",
        target_id=key,
        details={"setting": key, "value": value},
    )


def _by_cluster_model(segments: Sequence[Segment]) -> dict[str, list[Segment]]:
    """Cluster segments whose rule is a bare ``cluster`` condition, by model name."""
    out: dict[str, list[Segment]] = {}
    for seg in segments:
        if seg.kind == "cluster" and seg.definition and seg.definition.get("type") == "cluster":
            out.setdefault(seg.definition["model"], []).append(seg)
    return out


def _id_table(customer_ids: Sequence[int]) -> pa.Table:
    return pa.table({"customer_id": pa.array(list(customer_ids), pa.int64())})


def read_specs(directory: str | Path) -> list[tuple[str, N.SegmentSpec]]:
    """Every ``*.yaml`` / ``*.yml`` file of ``directory`` (one segment each), sorted."""
    root = Path(directory)
    if not root.is_dir():
        raise InputError(f"{directory} is not a directory of segment YAML files")
    files = sorted([*root.glob("*.yaml"), *root.glob("*.yml")])
    if not files:
        raise InputError(f"{directory} holds no .yaml files: write one segment per file")
    specs, seen = [], {}
    for path in files:
        spec = N.load_spec(path.read_text(encoding="utf-8"), source=path.name)
        if spec.name in seen:
            raise InputError(
                f"{path.name} and {seen[spec.name]} both define {spec.name!r}: names are unique"
            )
        seen[spec.name] = path.name
        specs.append((path.name, spec))
    return specs


def render(explained: Explained, depth: int = 0) -> str:
    """An explanation as indented text with ✓ and ✗."""
    mark = "✓" if explained.holds else "✗"
    pad = "  " * depth
    if explained.children:
        lines = [f"{pad}{mark} {explained.text}"]
        lines += [render(c, depth + 1) for c in explained.children]
        return "\n".join(lines)
    value = explained.to_dict().get("value")
    shown = "none" if value is None else value
    line = f"{pad}{mark} {explained.text} is {shown}, needs {explained.needs}"
    if explained.details:
        line += (
            " (" + ", ".join(f"{k} {v}" for k, v in explained.to_dict()["details"].items()) + ")"
        )
    return line


# -- tiers and ICP ------------------------------------------------------------------------
def save_tiers(
    segs: Segments, name: str, config: TierConfig, *, as_of: ReferenceTime | None = None
) -> list[Refreshed]:
    """Store a tier set and make one segment per tier (kind ``tier``), then evaluate them."""
    family = f"tiers:{name}"
    compiler = segs.compiler(ReferenceTime.now())
    dtype = compiler.field_type(config.on)
    if not dtype.is_numeric():
        raise InputError(f"tiers need a number: {config.on!r} is {dtype}")
    others = {s.name: s for s in segs.list() if s.family != family}
    for tier, _rule in config.rules():
        if tier in others:
            raise InputError(
                f"a segment named {tier!r} already exists outside tiers {name!r}: rename the tier"
            )
    segs.set_setting(family, config.model_dump(mode="json"))
    existing = {s.name for s in segs.list() if s.family == family}
    described = dict(zip([t.name for t in config.tiers], config.describe(), strict=True))
    for tier, rule in config.rules():
        segs.save(
            N.SegmentSpec(name=tier, description=described[tier], rule=rule),
            kind="tier",
            source="system",
            family=family,
            replace=True,
            evaluate=False,
        )
    for gone in existing - {t.name for t in config.tiers}:
        segs.delete(gone)
    return segs.refresh([t.name for t in config.tiers], as_of=as_of)


def tier_sets(segs: Segments) -> dict[str, TierConfig]:
    return {
        key.removeprefix("tiers:"): parse_tiers(value)
        for key, value in segs.settings_like("tiers:").items()
    }


def set_icp(segs: Segments, config: IcpConfig) -> dict[str, Any]:
    """Store ICP criteria after checking each names a usable attribute or trait."""
    compiler = segs.compiler(ReferenceTime.now())
    for criterion in config.criteria:
        compiler.field_type(criterion.on)
    previous = segs.setting("icp")
    value = config.model_dump(mode="json", by_alias=True, exclude_none=True)
    segs.set_setting("icp", value, audited=False)  # audited once they compute
    try:
        summary = icp_summary(segs)
    except Exception:
        segs.set_setting("icp", previous, audited=False)  # not computing: not kept
        raise
    with segs.app.session() as s:
        _audit_setting(s, segs.ws.id, "icp", value)
        s.commit()
    return summary


def icp_summary(segs: Segments, *, as_of: ReferenceTime | None = None) -> dict[str, Any]:
    """The criteria, and how customers' scores spread over 0–100 in fifths."""
    config = segs.icp_config()
    if config is None:
        raise NotFound("no ICP criteria are set: write them in YAML and run `strata icp set FILE`")
    ref = as_of or ReferenceTime.now()
    compiler = segs.compiler(ref)
    value, _ = compiler.trait("icp_score")
    wide = compiler.wide()
    scored = wide.select(score=value(wide))
    band = (scored.score // 20).clip(upper=4).cast("int64")
    rows = (
        scored.mutate(band=band)
        .group_by("band")
        .aggregate(customers=ibis._.count(), average=ibis._.score.mean())
        .order_by("band")
        .to_pyarrow()
        .to_pylist()
    )
    total = sum(r["customers"] for r in rows)
    mean = sum(r["average"] * r["customers"] for r in rows) / total if total else 0.0
    return {
        "as_of": str(ref),
        "criteria": [
            {"on": c.on, "weight": c.weight, "rule": c.describe()} for c in config.criteria
        ],
        "customers": total,
        "average": round(mean, 2),
        "bands": [
            {
                "band": f"{r['band'] * 20}–{r['band'] * 20 + 20}",
                "customers": r["customers"],
            }
            for r in rows
        ],
    }


def refresh_after_import(app: Strata, report: dict[str, Any]) -> list[Refreshed]:
    """Bring a workspace's segments up to date after the import that wrote ``report``."""
    from strata.catalog import ImportRun

    if report.get("dry_run") or not report.get("import_id"):
        return []
    with app.session() as s:
        run = s.get(ImportRun, report["import_id"])
        if run is None or run.status != "succeeded":
            return []
        workspace = s.get(Workspace, run.workspace_id)
    return Segments(app, workspace).after_import(run.id, run.started_at)
