"""One compiler from segment rules to Ibis expressions, for every backend.

A rule becomes a filter over one wide table: the workspace's customers, left-joined
to a per-customer table for each distinct thing the rule measures (a trait, the
events of a condition's scope, membership of a static segment). Each node kind has
one ``_visit_<type>`` method returning a function from that wide table to a boolean
column, so the joins are built once and every condition reads its own columns.

Time-relative conditions use Python-computed bounds (:class:`ReferenceTime`), so no
backend's date arithmetic is involved; user values are Ibis literals, never SQL text.

>>> compiler = Compiler(context)  # doctest: +SKIP
>>> compiler.members(parse_rule({...})).count().execute()  # doctest: +SKIP
1234
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.datatypes as dtypes
import ibis.expr.types as ir

from strata.errors import InputError
from strata.segments import nodes as N

if TYPE_CHECKING:
    from strata.models.store import FittedModel
from strata.segments.icp import IcpConfig
from strata.segments.reference import ReferenceTime
from strata.segments.rfm import RfmConfig, default_config
from strata.warehouse import Warehouse

Pred = Callable[[ibis.Table], ir.BooleanValue]
ValueFn = Callable[[ibis.Table], ir.Value]

#: Kinds of segment whose rule is inlined where another rule names them; the others
#: (static lists, lookalikes) are read from their stored members.
RULE_KINDS = {"rule", "rfm", "tier", "cluster", "prediction"}
#: Event types that make up a customer's orders and refunds.
REFUND_EVENT = "refund"
_P = 2_147_483_647  # a prime below 2**31: products of two such numbers fit in int64


@dataclass(frozen=True)
class SegmentRef:
    """What a rule needs to know of a segment it names."""

    id: int
    name: str
    kind: str
    rule: N.Rule | None


@dataclass
class Context:
    warehouse: Warehouse
    workspace_id: int
    ref: ReferenceTime
    segments: Mapping[str, SegmentRef] = field(default_factory=dict)
    rfm: RfmConfig = field(default_factory=default_config)
    icp: IcpConfig | None = None
    #: Evaluate only these customers (incremental updates, explain).
    customer_ids: Sequence[int] | None = None
    #: Segments whose stored members were just evaluated at this same reference time:
    #: rules naming them read those members instead of compiling them again.
    stored: frozenset[str] = frozenset()
    #: The newest fitted version of a model, by name (``cluster`` conditions need it).
    model: Callable[[str], FittedModel] | None = None
    #: Evaluate only a deterministic slice of customers, ``(salt, keep)``: those whose
    #: :func:`bucket` is below ``keep`` (of 10,000). Models train on such a sample.
    sample: tuple[str, int] | None = None


@dataclass
class Leaf:
    """A condition as explain shows it: what it asks, and the value it looked at."""

    text: str
    value: ValueFn | None
    needs: str
    details: dict[str, ValueFn] = field(default_factory=dict)
    #: For a segment named by the rule and compiled in place: that segment's rule.
    inlined: N.Rule | None = None


@dataclass
class Explained:
    holds: bool
    text: str
    value: Any = None
    needs: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    children: list[Explained] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"holds": self.holds, "condition": self.text}
        if self.children:
            out["conditions"] = [c.to_dict() for c in self.children]
        else:
            out["value"] = _plain(self.value)
            out["needs"] = self.needs
            if self.details:
                out["details"] = {k: _plain(v) for k, v in self.details.items()}
        return out


class Compiler:
    """Compiles rules against one workspace at one reference time."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.customers = ctx.warehouse.table(ctx.workspace_id, "customers")
        self._derived: dict[str, ibis.Table] = {}
        self._names: dict[str, str] = {}  # derived key -> column prefix
        self._inlining: list[str] = []
        self._events: ibis.Table | None = None
        self._known_events: ibis.Table | None = None
        #: Every node visited, in order, with how to show it (for explain).
        self.trace: list[tuple[N.Rule, Pred, Leaf | None]] = []

    # -- entry points ---------------------------------------------------------------------
    def members(self, rule: N.Rule) -> ibis.Table:
        """``customer_id`` of every customer matching ``rule``."""
        pred = self._visit(rule)
        wide = self.wide()
        return wide.filter(pred(wide)).select("customer_id")

    def wide(self) -> ibis.Table:
        """Customers with every per-customer column the visited rules need."""
        base = self._restrict(self.customers)
        wide = base
        keys = []
        for key, table in self._derived.items():
            k = f"{self._names[key]}_k"
            keys.append(k)
            wide = wide.left_join(table, wide.customer_id == table[k])
        return wide.drop(*keys) if keys else wide

    def explain(self, rule: N.Rule, customer_id: int) -> Explained | None:
        """Which conditions hold for one customer, with the values they looked at."""
        self.trace.clear()
        self._visit(rule)
        wide = self.wide()
        wide = wide.filter(wide.customer_id == int(customer_id))
        columns: dict[str, ir.Value] = {}
        for i, (_node, pred, leaf) in enumerate(self.trace):
            columns[f"_h{i}"] = pred(wide)
            if leaf is not None and leaf.value is not None:
                columns[f"_v{i}"] = leaf.value(wide)
            for j, fn in enumerate(leaf.details.values() if leaf else []):
                columns[f"_d{i}_{j}"] = fn(wide)
        row = wide.select(**columns).to_pyarrow().to_pylist()
        if not row:
            return None
        values = row[0]
        index = {id(node): i for i, (node, _p, _l) in enumerate(self.trace)}

        def build(node: N.Rule) -> Explained:
            i = index[id(node)]
            leaf = self.trace[i][2]
            holds = bool(values[f"_h{i}"])
            if isinstance(node, N.And | N.Or):
                word = "all of" if isinstance(node, N.And) else "any of"
                return Explained(holds, word, children=[build(c) for c in node.conditions])
            if isinstance(node, N.Not):
                return Explained(holds, "not", children=[build(node.condition)])
            assert leaf is not None
            if leaf.inlined is not None:  # a named segment: show its own tree
                return Explained(holds, leaf.text, children=[build(leaf.inlined)])
            details = {name: values[f"_d{i}_{j}"] for j, name in enumerate(leaf.details)}
            return Explained(holds, leaf.text, values.get(f"_v{i}"), leaf.needs, details=details)

        return build(rule)

    # -- dispatch -------------------------------------------------------------------------
    def _visit(self, node: N.Rule) -> Pred:
        method = getattr(self, f"_visit_{node.type}", None)
        if method is None:  # pragma: no cover - the union and the visitors list the same types
            raise NotImplementedError(f"no compiler for condition type {node.type!r}")
        pred, leaf = method(node)
        self.trace.append((node, pred, leaf))
        return pred

    def _visit_and(self, node: N.And) -> tuple[Pred, None]:
        preds = [self._visit(c) for c in node.conditions]
        return (lambda w: ibis.and_(*[p(w) for p in preds])), None

    def _visit_or(self, node: N.Or) -> tuple[Pred, None]:
        preds = [self._visit(c) for c in node.conditions]
        return (lambda w: ibis.or_(*[p(w) for p in preds])), None

    def _visit_not(self, node: N.Not) -> tuple[Pred, None]:
        inner = self._visit(node.condition)
        return (lambda w: ~inner(w)), None

    def _visit_attribute(self, node: N.Attribute) -> tuple[Pred, Leaf]:
        name = node.attribute
        schema = self.customers.schema()
        if name not in schema:
            hint = " (it is a trait: use type 'trait')" if name in N.TRAITS else ""
            raise InputError(
                f"unknown attribute {name!r}{hint}; customers have: "
                + ", ".join(c for c in schema.names if c != "customer_id")
            )
        return self._compare(lambda w: w[name], schema[name], node, name)

    def _visit_trait(self, node: N.Trait) -> tuple[Pred, Leaf]:
        value, dtype = self.trait(node.trait, node.property, node.event)
        label = node.trait.replace("_", " ")
        if node.trait == "most_frequent":
            label = f"most frequent {node.property}" + (f" of {node.event}" if node.event else "")
        pred, leaf = self._compare(value, dtype, node, label)
        if node.trait == "rfm_segment":
            leaf.details = {
                "recency score": self.trait("rfm_recency")[0],
                "frequency score": self.trait("rfm_frequency")[0],
                "monetary score": self.trait("rfm_monetary")[0],
                "days since last order": self.trait("days_since_last_order")[0],
                "orders": self.trait("total_orders")[0],
                "revenue": self.trait("total_revenue")[0],
            }
        return pred, leaf

    def _visit_performed(self, node: N.Performed) -> tuple[Pred, Leaf]:
        count = self._scope_column(node, None, "n")
        times = node.times or N.Comparison(op="gte", value=1)
        label = f"number of {_scope_text(node)}"
        return self._compare(count, dtypes.int64, times, label)

    def _visit_not_performed(self, node: N.NotPerformed) -> tuple[Pred, Leaf]:
        count = self._scope_column(node, None, "n")
        return self._compare(
            count, dtypes.int64, N.Comparison(op="eq", value=0), f"number of {_scope_text(node)}"
        )

    def _visit_aggregate(self, node: N.Aggregate) -> tuple[Pred, Leaf]:
        value = self._scope_column(node, node.of, node.fn)
        measure = "events" if node.fn == "count" else node.of
        label = f"{_FN_TEXT[node.fn]} {measure} of {_scope_text(node)}"
        dtype = dtypes.int64 if node.fn == "count" else dtypes.float64
        return self._compare(value, dtype, node, label)

    def _visit_in_segment(self, node: N.InSegment | N.NotInSegment) -> tuple[Pred, Leaf]:
        name = node.segment
        ref = self.ctx.segments.get(name)
        if ref is None:
            raise InputError(
                f"no segment named {name!r}: create it first, or check the name with "
                "`strata segments list`"
            )
        if ref.kind in RULE_KINDS and ref.rule is not None and name not in self.ctx.stored:
            if name in self._inlining:
                path = " → ".join([*self._inlining, name])
                raise InputError(f"segments refer to each other in a cycle ({path}): break it")
            self._inlining.append(name)
            try:
                inner = self._visit(ref.rule)
            finally:
                self._inlining.pop()
            # The leaf points at the inlined rule, so explain shows the segment's own tree.
            return inner, Leaf(f"in segment {name!r}", None, "", inlined=ref.rule)
        key = f"member:{ref.id}"
        if key not in self._derived:
            m = self.ctx.warehouse.table(self.ctx.workspace_id, "memberships")
            current = m.filter(m.segment_id == ref.id, m.left_at.isnull())
            prefix = self._prefix(key)
            self._derived[key] = current.select(
                **{f"{prefix}_k": current.customer_id, f"{prefix}_in": ibis.literal(1)}
            ).distinct()
        column = f"{self._names[key]}_in"
        pred: Pred = lambda w: w[column].notnull()  # noqa: E731
        value: ValueFn = lambda w: w[column].notnull()  # noqa: E731
        return pred, Leaf(f"member of {name!r}", value, "member")

    def _visit_not_in_segment(self, node: N.NotInSegment) -> tuple[Pred, Leaf]:
        inner, leaf = self._visit_in_segment(node)
        if leaf.inlined is not None:  # explain shows the named segment's tree under it
            return (lambda w: ~inner(w)), Leaf(
                f"not in segment {node.segment!r}", None, "", inlined=leaf.inlined
            )
        return (lambda w: ~inner(w)), Leaf(
            f"not a member of {node.segment!r}", leaf.value, "not a member"
        )

    def _visit_random_bucket(self, node: N.RandomBucket) -> tuple[Pred, Leaf]:
        lo, hi = round(node.from_ * 100), round(node.to * 100)
        value = lambda w: bucket(w.customer_id, node.salt) / 100.0  # noqa: E731
        pred: Pred = lambda w: bucket(w.customer_id, node.salt).between(lo, hi - 1)  # noqa: E731
        text = f"random bucket {node.from_:g}–{node.to:g}%"
        return pred, Leaf(text, value, f"in [{node.from_:g}, {node.to:g})")

    def _visit_prediction(self, node: N.Prediction) -> tuple[Pred, Leaf]:
        name = node.prediction
        p = self._add(f"prediction:{name}", self._predictions(name))
        value: ValueFn = lambda w: w[f"{p}_value"]  # noqa: E731
        label = f"predicted {name.replace('_', ' ')}"
        ranked = node.ranked
        if ranked is None:
            pred, leaf = self._compare(value, dtypes.float64, node.comparison(), label)
        else:
            side, percent = ranked
            rank, scored = f"{p}_{side}_rank", f"{p}_scored"

            def pred(w: ibis.Table) -> ir.BooleanValue:
                # The first ceil(n × percent / 100) by rank (0-based, ids break ties).
                cut = (w[scored] * (percent / 100.0) - 1e-9).ceil()
                return (w[rank] < cut).fill_null(False)

            leaf = Leaf(label, value, f"in the {side} {percent:g}% of scored customers")
            leaf.details = {"rank": lambda w: w[rank] + 1, "of": lambda w: w[scored]}
        leaf.details["model"] = lambda w: w[f"{p}_model_version"]
        return pred, leaf

    def _predictions(self, name: str) -> ibis.Table:
        """One row per customer scored ``name``: value, ranks both ways, how many scored."""
        t = self.ctx.warehouse.table(self.ctx.workspace_id, "predictions")
        t = t.filter(t.prediction_type == name, t.value.notnull())
        if f"prediction:{name}" not in self._derived and not _scalar(t.limit(1).count()):
            p = self.ctx.warehouse.table(self.ctx.workspace_id, "predictions")
            stored = sorted(p.select("prediction_type").distinct().to_pyarrow()[0].to_pylist())
            raise InputError(
                f"no customer has a stored {name!r} prediction yet: fit the model first "
                "(strata predict clv | churn | propensity)"
                + (f"; stored predictions: {', '.join(stored)}" if stored else "")
            )
        return t.select(
            "customer_id",
            "value",
            "model_version",
            top_rank=ibis.row_number().over(order_by=[t.value.desc(), t.customer_id]),
            bottom_rank=ibis.row_number().over(order_by=[t.value.asc(), t.customer_id]),
            scored=t.customer_id.count().over(ibis.window()),
        )

    def _visit_cluster(self, node: N.Cluster) -> tuple[Pred, Leaf]:
        from strata.models.cluster import assignment

        if self.ctx.model is None:  # pragma: no cover - Segments always gives one
            raise InputError("cluster conditions need the workspace's fitted models")
        fitted = self.ctx.model(node.model)
        clusters = fitted.state.get("clusters", [])
        if fitted.kind != "cluster" or not 0 <= node.cluster < len(clusters):
            raise InputError(
                f"model {node.model!r} has no cluster {node.cluster}"
                + (f": its clusters are 0 to {len(clusters) - 1}" if clusters else "")
            )
        index, distance = assignment(self, fitted)
        pred: Pred = lambda w: (index(w) == node.cluster).fill_null(False)  # noqa: E731
        name = clusters[node.cluster].get("name", f"cluster {node.cluster}")
        leaf = Leaf(
            f"nearest cluster of model {fitted.model_version}",
            index,
            f"cluster {node.cluster} ({name})",
            details={"distance to its centre": distance},
        )
        return pred, leaf

    # -- comparisons ----------------------------------------------------------------------
    def _compare(
        self, value: ValueFn, dtype: dtypes.DataType, node: N.Comparison, label: str
    ) -> tuple[Pred, Leaf]:
        build = _comparison(dtype, node, self.ctx.ref, label)
        pred: Pred = lambda w: build(value(w)).fill_null(False)  # noqa: E731
        return pred, Leaf(label, value, _needs_text(node))

    # -- per-customer tables --------------------------------------------------------------
    def _prefix(self, key: str) -> str:
        if key not in self._names:
            self._names[key] = f"_x{len(self._names)}"
        return self._names[key]

    def _add(self, key: str, table: ibis.Table, key_column: str = "customer_id") -> str:
        """Register a per-customer table (one row per customer); returns its prefix."""
        if key not in self._derived:
            prefix = self._prefix(key)
            self._derived[key] = table.rename(
                {f"{prefix}_k" if c == key_column else f"{prefix}_{c}": c for c in table.columns}
            )
        return self._names[key]

    def per_customer(self, key: str, table: ibis.Table) -> str:
        """Join ``table`` (one row per ``customer_id``) into the wide table once per ``key``.

        Returns the prefix of its columns there: column ``c`` is read as ``w[prefix + "_" + c]``.
        Models use it to measure features the traits do not cover.
        """
        return self._add(key, table)

    def events(self, *, restricted: bool = True) -> ibis.Table:
        """Events known at the reference instant (of the evaluated customers)."""
        if self._known_events is None:
            e = self.ctx.warehouse.table(self.ctx.workspace_id, "events")
            self._known_events = e.filter(e.timestamp < _ts(self.ctx.ref.instant))
        return self._restrict(self._known_events) if restricted else self._known_events

    def _restrict(self, t: ibis.Table) -> ibis.Table:
        """``t`` (with ``customer_id``) cut to the customers being evaluated."""
        if self.ctx.customer_ids is not None:
            ids = self.__dict__.get("_id_set")
            if ids is None:  # staged once per compiler, however many tables it restricts
                ids = self.__dict__["_id_set"] = self.ctx.warehouse.id_set(self.ctx.customer_ids)
            t = t.filter(t.customer_id.isin(ids))
        if self.ctx.sample is not None:
            salt, keep = self.ctx.sample
            t = t.filter(bucket(t.customer_id, salt) < keep)
        return t

    def orders(self, *, restricted: bool = True) -> ibis.Table:
        """Per customer with orders: counts, revenue and first / last order time."""
        e = self.events(restricted=restricted)
        order_type = self.ctx.rfm.order_event
        e = e.filter(e.event_type.isin([order_type, REFUND_EVENT]))
        is_order = e.event_type == order_type
        revenue = e.revenue.fill_null(0.0)
        agg = e.group_by("customer_id").aggregate(
            total_orders=is_order.ifelse(1, 0).sum().cast("int64"),
            total_revenue=revenue.sum(),
            order_revenue=is_order.ifelse(revenue, 0.0).sum(),
            first_order=is_order.ifelse(e.timestamp, ibis.null("timestamp")).min(),
            last_order=is_order.ifelse(e.timestamp, ibis.null("timestamp")).max(),
        )
        day_epoch = _day_epoch(self.ctx.ref.day)
        return agg.mutate(
            days_since_last_order=(
                (day_epoch - agg.last_order.date().epoch_seconds()) // 86400
            ).cast("int64"),
        )

    def trait(
        self, trait: str, prop: str | None = None, event: str | None = None
    ) -> tuple[ValueFn, dtypes.DataType]:
        if trait in {
            "total_orders",
            "total_revenue",
            "average_order_value",
            "first_order_date",
            "last_order_date",
            "days_since_last_order",
        }:
            p = self._add("orders", self.orders())
            if trait == "total_orders":
                return (lambda w: w[f"{p}_total_orders"].fill_null(0)), dtypes.int64
            if trait == "total_revenue":
                return (lambda w: w[f"{p}_total_revenue"].fill_null(0.0)), dtypes.float64
            if trait == "average_order_value":
                return (
                    lambda w: ibis.ifelse(
                        w[f"{p}_total_orders"] > 0,
                        w[f"{p}_order_revenue"] / w[f"{p}_total_orders"],
                        ibis.null("float64"),
                    )
                ), dtypes.float64
            if trait == "first_order_date":
                return (lambda w: w[f"{p}_first_order"].date()), dtypes.date
            if trait == "last_order_date":
                return (lambda w: w[f"{p}_last_order"].date()), dtypes.date
            return (lambda w: w[f"{p}_days_since_last_order"]), dtypes.int64
        if trait == "distinct_products":
            p = self._add("products", self._products())
            return (lambda w: w[f"{p}_n"].fill_null(0)), dtypes.int64
        if trait == "most_frequent":
            key = f"mode:{prop}:{event or '*'}"
            p = self._add(key, self._mode(prop or "", event))
            return (lambda w: w[f"{p}_value"]), dtypes.string
        if trait.startswith("rfm_"):
            p = self._add("rfm", self._rfm())
            dtype = dtypes.string if trait == "rfm_segment" else dtypes.int64
            return (lambda w: w[f"{p}_{trait}"]), dtype
        if trait == "icp_score":
            icp = self.ctx.icp
            if icp is None:
                raise InputError(
                    "no ICP criteria are set for this workspace: set them with "
                    "`strata icp set FILE` first"
                )
            getters = {c.on: self._field(c.on) for c in icp.criteria}
            return (lambda w: icp.score(lambda name: getters[name](w))), dtypes.float64
        raise InputError(f"unknown trait {trait!r}")  # pragma: no cover - validated in nodes

    def _field(self, name: str) -> ValueFn:
        """An attribute or a trait, by name (ICP criteria and tiers name either)."""
        if name in N.TRAITS and name != "most_frequent":
            return self.trait(name)[0]
        schema = self.customers.schema()
        if name not in schema:
            raise InputError(
                f"{name!r} is neither a customer attribute nor a trait; attributes: "
                + ", ".join(c for c in schema.names if c != "customer_id")
                + "; traits: "
                + ", ".join(sorted(t for t in N.TRAITS if t != "most_frequent"))
            )
        return lambda w: w[name]

    def field_type(self, name: str) -> dtypes.DataType:
        if name in N.TRAITS and name != "most_frequent":
            return self.trait(name)[1]
        self._field(name)
        return self.customers.schema()[name]

    def _products(self) -> ibis.Table:
        ctx = self.ctx
        items = ctx.warehouse.table(ctx.workspace_id, "order_items")
        e = self.events()
        orders = e.filter(e.event_type == ctx.rfm.order_event).select("event_id")
        if ctx.customer_ids is not None:
            items = items.filter(items.customer_id.isin(list(ctx.customer_ids)))
        known = items.semi_join(orders, items.event_id == orders.event_id)
        product = known.product_id.fill_null(known.product_name)
        return known.group_by("customer_id").aggregate(n=product.nunique().cast("int64"))

    def _mode(self, prop: str, event: str | None) -> ibis.Table:
        e = self.events()
        if event:
            e = e.filter(e.event_type == event)
        e = e.select("customer_id", value=self._property(e, prop))
        e = e.filter(e.value.notnull())
        counts = e.group_by(["customer_id", "value"]).aggregate(n=e.count())
        ranked = counts.mutate(
            rn=ibis.row_number().over(
                group_by=counts.customer_id, order_by=[counts.n.desc(), counts.value]
            )
        )
        return ranked.filter(ranked.rn == 0).select("customer_id", "value")

    def rfm_scores(self, config: RfmConfig | None = None) -> ibis.Table:
        """Per customer with orders: RFM scores and segment, orders, revenue, recency.

        Scores are ranks among all customers with orders, even when only a few are
        being evaluated.
        """
        from strata.segments.rfm import scores

        orders = self.orders(restricted=False)
        orders = orders.filter(orders.total_orders > 0)
        return scores(orders, "days_since_last_order", config or self.ctx.rfm)

    def _rfm(self) -> ibis.Table:
        return self.rfm_scores().select(
            "customer_id", "rfm_recency", "rfm_frequency", "rfm_monetary", "rfm_segment"
        )

    def _scope_column(self, node: N.EventScope, measure: str | None, fn: str) -> ValueFn:
        """A column of the per-customer aggregate of ``node``'s events (``n`` or ``fn``)."""
        scope = {
            "event": node.event,
            "window": node.window.model_dump(mode="json", exclude_none=True),
            "where": [f.model_dump(mode="json", exclude_defaults=True) for f in node.where],
            "of": measure,
        }
        key = "scope:" + json.dumps(scope, sort_keys=True, default=str)
        if key not in self._derived:
            e = self._scoped_events(node)
            if measure is None:
                table = e.group_by("customer_id").aggregate(n=e.count())
            else:
                m = e.revenue if measure == "revenue" else _as_number(self._property(e, measure))
                table = e.group_by("customer_id").aggregate(
                    n=e.count(), sum=m.sum(), avg=m.mean(), min=m.min(), max=m.max()
                )
            self._add(key, table)
        p = self._names[key]
        if fn in {"n", "count"}:
            # "count" counts the matching events, whatever the measure.
            return lambda w: w[f"{p}_n"].fill_null(0)
        if fn == "sum":
            return lambda w: w[f"{p}_sum"].fill_null(0.0)
        return lambda w: w[f"{p}_{fn}"]

    def _scoped_events(self, node: N.EventScope) -> ibis.Table:
        e = self.events()
        events = node.event if isinstance(node.event, list) else [node.event]
        if "*" not in events:
            e = e.filter(e.event_type.isin(events))
        ref, w = self.ctx.ref, node.window
        if w.last_days is not None:
            e = e.filter(e.timestamp >= _ts(ref.day_start(w.last_days - 1)))
        elif w.days_ago is not None:
            near, far = w.days_ago
            e = e.filter(
                e.timestamp >= _ts(ref.day_start(far)), e.timestamp < _ts(ref.day_start(near - 1))
            )
        elif w.dates is not None:
            start, end = w.dates
            e = e.filter(
                e.timestamp >= _ts(dt.datetime.combine(start, dt.time(0))),
                e.timestamp < _ts(dt.datetime.combine(end + dt.timedelta(days=1), dt.time(0))),
            )
        for f in node.where:
            value = self._property(e, f.property)
            numeric = f.op in {"lt", "lte", "gt", "gte", "between"} or _is_number(f.value)
            if numeric:
                build = _comparison(dtypes.float64, f, ref, f.property)
                e = e.filter(build(_as_number(value)).fill_null(False))
            else:
                build = _comparison(dtypes.string, _as_text(f), ref, f.property)
                e = e.filter(build(value).fill_null(False))
        return e

    def _property(self, events: ibis.Table, name: str) -> ir.StringValue:
        """An event property as text, with each backend's own JSON function."""
        dialect = self.ctx.warehouse.dialect
        if dialect == "duckdb":
            return _duck_json_text(events.properties, f"$.{name}")
        if dialect == "postgres":
            return _pg_json_text(events.properties, name)
        return _spark_json_text(events.properties.cast("string"), f"$.{name}")


# -- pieces shared by the visitors ------------------------------------------------------
_FN_TEXT = {
    "sum": "sum of",
    "avg": "average",
    "min": "smallest",
    "max": "largest",
    "count": "count",
}


@ibis.udf.scalar.builtin(name="json_extract_string")
def _duck_json_text(j: dtypes.JSON, path: str) -> str: ...


@ibis.udf.scalar.builtin(name="json_extract_path_text")
def _pg_json_text(j: dtypes.JSON, key: str) -> str: ...


@ibis.udf.scalar.builtin(name="get_json_object")
def _spark_json_text(j: str, path: str) -> str: ...


def bucket(customer_id: ir.IntegerValue, salt: str = "") -> ir.IntegerValue:
    """A stable pseudo-random number 0–9999 from the customer id, the same on every backend.

    Squaring and multiplying modulo a prime below 2**31, with four constants drawn
    from the salt, in plain int64 arithmetic (no backend's own hash function, which
    differ). The squarings make it non-linear, so slices with different salts are
    independent: two 10 % slices share about 1 % of customers.
    """
    digest = hashlib.sha256(salt.encode()).digest()
    s1, s2, s3, s4 = (int.from_bytes(digest[i : i + 4], "big") % _P for i in range(0, 16, 4))
    h = (customer_id.cast("int64") % _P + s1) % _P
    h = (h * h + s2) % _P
    h = (h * 48_271 + s3) % _P
    h = (h * h + s4) % _P
    return h % 10_000


def _scalar(expr: ibis.Scalar) -> Any:
    """A scalar's value, through Arrow (pandas conversions differ by backend and version)."""
    return expr.to_pyarrow().as_py()


def _ts(value: dt.datetime) -> ir.TimestampScalar:
    return ibis.literal(value, type="timestamp")


def _day_epoch(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days * 86400


_NUMBER = r"^\s*-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?\s*$"


def _as_number(text: ir.StringValue) -> ir.FloatingValue:
    """Text to a number where it is one, else null (no backend's failing cast involved)."""
    return ibis.ifelse(text.re_search(_NUMBER), text.cast("float64"), ibis.null("float64"))


def _is_number(value: Any) -> bool:
    if isinstance(value, list):
        return bool(value) and all(_is_number(v) for v in value)
    return isinstance(value, int | float) and not isinstance(value, bool)


def _as_text(f: N.PropertyFilter) -> N.PropertyFilter:
    """JSON booleans read back as ``true`` / ``false``."""

    def text(v: Any) -> Any:
        if isinstance(v, bool):
            return "true" if v else "false"
        return str(v) if v is not None else None

    value = [text(v) for v in f.value] if isinstance(f.value, list) else text(f.value)
    return f.model_copy(update={"value": value})


def _comparison(
    dtype: dtypes.DataType, node: N.Comparison, ref: ReferenceTime, label: str
) -> Callable[[ir.Value], ir.BooleanValue]:
    """How ``node`` tests a value of type ``dtype``; raises ``InputError`` if it cannot."""
    op = node.op
    kind = value_kind(dtype)
    if op in N.UNARY_OPS:

        def present(v: ir.Value) -> ir.BooleanValue:
            return v.notnull() & (v != "") if kind == "text" else v.notnull()

        return present if op == "exists" else (lambda v: ~present(v))
    if op in N.DATE_OPS and kind not in {"date", "timestamp"}:
        raise InputError(f"{label!r} is {_KIND_TEXT[kind]}: '{op}' works on dates only")
    if op in N.TEXT_OPS and kind != "text":
        raise InputError(f"{label!r} is {_KIND_TEXT[kind]}: '{op}' works on text only")
    if op in {"lt", "lte", "gt", "gte", "between"} and kind in {"text", "boolean"}:
        raise InputError(
            f"{label!r} is {_KIND_TEXT[kind]}: use eq, neq, in, not_in, contains, starts_with "
            "or ends_with"
        )

    if op in N.DAY_OPS:
        return _day_comparison(kind, node, ref)
    if op in N.TEXT_OPS:
        needle = str(node.value).lower()
        method = {"contains": "contains", "starts_with": "startswith", "ends_with": "endswith"}[op]
        return lambda v: getattr(v.lower(), method)(needle)

    values = node.value if isinstance(node.value, list) else [node.value]
    lits = [_coerce(x, kind, label, op) for x in values]
    lit = lits[0]
    # A plain date against a timestamp column means that whole day.
    whole_day = kind == "timestamp" and _is_day(values[0])
    day_end = _ts(_next_midnight(lit.date())) if whole_day else None
    if op == "eq":
        return (lambda v: (v >= lit) & (v < day_end)) if whole_day else (lambda v: v == lit)
    if op == "neq":
        # "is not France" includes customers whose country is unknown.
        if whole_day:
            return lambda v: v.isnull() | (v < lit) | (v >= day_end)
        return lambda v: v.isnull() | (v != lit)
    if op in {"lt", "before"}:
        return lambda v: v < lit
    if op == "lte":
        return (lambda v: v < day_end) if whole_day else (lambda v: v <= lit)
    if op in {"gt", "after"}:
        return (lambda v: v >= day_end) if whole_day else (lambda v: v > lit)
    if op == "gte":
        return lambda v: v >= lit
    if op == "between":
        low, high = lits
        if kind == "timestamp" and _is_day(values[1]):
            high_end = _ts(_next_midnight(high.date()))
            return lambda v: (v >= low) & (v < high_end)
        return lambda v: v.between(low, high)
    if op == "in":
        return lambda v: v.isin(lits)
    if op == "not_in":
        return lambda v: v.isnull() | ~v.isin(lits)
    raise InputError(f"operator {op!r} does not apply here")  # pragma: no cover


def _day_comparison(
    kind: str, node: N.Comparison, ref: ReferenceTime
) -> Callable[[ir.Value], ir.BooleanValue]:
    n = int(node.value)
    today = ref.day
    if node.yearly:
        # Birthdays and anniversaries: the month and day fall in the window, any year.
        days = (
            [today - dt.timedelta(days=i) for i in range(n)]
            if node.op == "within_last_days"
            else [today + dt.timedelta(days=i) for i in range(n)]
        )
        keys = sorted({d.month * 100 + d.day for d in days})
        if any(d.month == 2 and d.day == 28 and not calendar.isleap(d.year) for d in days):
            keys.append(229)  # born on 29 February: celebrated on the 28th in other years
        return lambda v: (v.month() * 100 + v.day()).isin(keys)
    if node.op == "within_last_days":
        first = today - dt.timedelta(days=max(n - 1, 0))
        last = today
    elif node.op == "within_next_days":
        first, last = today, today + dt.timedelta(days=max(n - 1, 0))
    else:  # more_than_days_ago
        cutoff = today - dt.timedelta(days=n)
        if kind == "timestamp":
            return lambda v: v < _ts(dt.datetime.combine(cutoff, dt.time(0)))
        return lambda v: v < cutoff
    if kind == "timestamp":
        lo = _ts(dt.datetime.combine(first, dt.time(0)))
        hi = _ts(_next_midnight(last))
        return lambda v: (v >= lo) & (v < hi)
    return lambda v: v.between(first, last)


def _next_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0))


def _is_day(value: Any) -> bool:
    if isinstance(value, dt.datetime):
        return False
    if isinstance(value, dt.date):
        return True
    return isinstance(value, str) and len(value.strip()) == 10


_KIND_TEXT = {
    "text": "text",
    "number": "a number",
    "date": "a date",
    "timestamp": "a date and time",
    "boolean": "true/false",
}


def value_kind(dtype: dtypes.DataType) -> str:
    """A column's kind of value, as operators are checked against it."""
    if dtype.is_string():
        return "text"
    if dtype.is_boolean():
        return "boolean"
    if dtype.is_numeric():
        return "number"
    if dtype.is_date():
        return "date"
    if dtype.is_timestamp():
        return "timestamp"
    return "text"


def _coerce(value: Any, kind: str, label: str, op: str) -> Any:
    """A user's value as the column's type, or ``InputError`` saying what was expected."""
    try:
        if kind == "text":
            if isinstance(value, bool):
                return "true" if value else "false"
            return str(value)
        if kind == "boolean":
            if isinstance(value, bool):
                return value
            if str(value).strip().lower() in {"true", "yes", "1"}:
                return True
            if str(value).strip().lower() in {"false", "no", "0"}:
                return False
            raise ValueError
        if kind == "number":
            if isinstance(value, bool):
                raise ValueError
            return float(value) if not isinstance(value, int) else value
        if kind in {"date", "timestamp"}:
            if isinstance(value, dt.datetime):
                return value if kind == "timestamp" else value.date()
            if isinstance(value, dt.date):
                return value if kind == "date" else dt.datetime.combine(value, dt.time(0))
            text = str(value).strip()
            if len(text) == 10:
                day = dt.date.fromisoformat(text)
                return day if kind == "date" else dt.datetime.combine(day, dt.time(0))
            stamp = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            if stamp.tzinfo is not None:  # the warehouse keeps UTC
                stamp = stamp.astimezone(dt.UTC).replace(tzinfo=None)
            return stamp.date() if kind == "date" else stamp
    except ValueError:
        pass
    raise InputError(
        f"{label!r} is {_KIND_TEXT[kind]}: {value!r} cannot be compared with it ('{op}')"
    )


def _needs_text(node: N.Comparison) -> str:
    symbols = {"eq": "=", "neq": "≠", "lt": "<", "lte": "≤", "gt": ">", "gte": "≥"}
    v = node.value
    if node.op in symbols:
        return f"{symbols[node.op]} {_fmt(v)}"
    if node.op == "between":
        return f"between {_fmt(v[0])} and {_fmt(v[1])}"
    if node.op in {"in", "not_in"}:
        word = "one of" if node.op == "in" else "none of"
        return f"{word} {', '.join(_fmt(x) for x in v)}"
    if node.op in N.UNARY_OPS:
        return "present" if node.op == "exists" else "missing"
    if node.op in N.DAY_OPS:
        every = " (any year)" if node.yearly else ""
        return f"{node.op.replace('_', ' ').replace('days', f'{v} days')}{every}"
    return f"{node.op.replace('_', ' ')} {_fmt(v)}"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return str(value)


def _scope_text(node: N.EventScope) -> str:
    events = node.event if isinstance(node.event, list) else [node.event]
    what = "events" if "*" in events else f"{' / '.join(events)} events"
    w = node.window
    if w.last_days is not None:
        what += f" in the last {w.last_days} days"
    elif w.days_ago is not None:
        what += f" between {w.days_ago[0]} and {w.days_ago[1]} days ago"
    elif w.dates is not None:
        what += f" from {w.dates[0]} to {w.dates[1]}"
    if node.where:
        what += " where " + " and ".join(f"{f.property} {_needs_text(f)}" for f in node.where)
    return what


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 2)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value
