"""Segment definitions: a typed tree of small condition nodes.

A definition is written by people as YAML, stored as JSON in the catalog and
validated here, at the edge; the compiler (:mod:`strata.segments.compile`) trusts
what passes. Each node kind is a small immutable class with a literal ``type``:

>>> rule = parse_rule({
...     "type": "and",
...     "conditions": [
...         {"type": "attribute", "attribute": "country", "op": "eq", "value": "France"},
...         {"type": "aggregate", "event": "order", "fn": "sum", "op": "gt", "value": 500,
...          "window": {"last_days": 90}},
...     ],
... })
>>> [c.type for c in rule.conditions]
['attribute', 'aggregate']

``docs/segments.md`` documents every node and operator with examples.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from strata.errors import InputError

#: Operators of attribute, trait, aggregate and property conditions.
Op = Literal[
    "eq",
    "neq",
    "lt",
    "lte",
    "gt",
    "gte",
    "between",
    "in",
    "not_in",
    "contains",
    "starts_with",
    "ends_with",
    "exists",
    "missing",
    "before",
    "after",
    "within_last_days",
    "within_next_days",
    "more_than_days_ago",
]
#: Operators that take no value.
UNARY_OPS = {"exists", "missing"}
#: Operators whose value is a number of days.
DAY_OPS = {"within_last_days", "within_next_days", "more_than_days_ago"}
#: Operators that only make sense on dates and timestamps.
DATE_OPS = {"before", "after", *DAY_OPS}
#: Operators that only make sense on text.
TEXT_OPS = {"contains", "starts_with", "ends_with"}
#: Operators of a numeric comparison, for counts and scores.
NUMBER_OPS = {"eq", "neq", "lt", "lte", "gt", "gte", "between"}

Scalar = str | bool | int | float | dt.date | dt.datetime
Value = Scalar | list[Scalar] | None

#: Traits: per-customer values computed from events, usable like attributes.
TRAITS = {
    "total_orders": "number of orders",
    "total_revenue": "revenue of orders net of refunds",
    "average_order_value": "order revenue divided by the number of orders",
    "first_order_date": "date of the first order",
    "last_order_date": "date of the last order",
    "days_since_last_order": "days from the last order to the reference date",
    "distinct_products": "number of different products ordered",
    "most_frequent": "most frequent value of an event property (needs `property`)",
    "rfm_recency": "RFM recency score, 1 (longest ago) to 5 (most recent)",
    "rfm_frequency": "RFM frequency score, 1 to 5",
    "rfm_monetary": "RFM monetary score, 1 to 5",
    "rfm_segment": "RFM segment name (Champions, At Risk, …)",
    "icp_score": "ideal-customer-profile score, 0 to 100",
}

_PROPERTY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_PREDICTION = re.compile(r"^[a-z][a-z0-9_:]{0,119}$")


class Node(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Comparison(Node):
    """``op`` and ``value``, checked for shape here and for type by the compiler."""

    op: Op
    value: Value = None
    #: With ``within_last_days`` / ``within_next_days`` on a date: compare the day of
    #: the year only (birthdays, anniversaries, renewals).
    yearly: bool = False

    @model_validator(mode="after")
    def _check_value(self) -> Comparison:
        op, value = self.op, self.value
        if op in UNARY_OPS:
            if value not in (None, True):
                raise ValueError(f"'{op}' takes no value")
        elif value is None:
            raise ValueError(f"'{op}' needs a value")
        elif op == "between":
            if not (isinstance(value, list) and len(value) == 2):
                raise ValueError("'between' needs a list of two values: [low, high]")
            low, high = _number(value[0]), _number(value[1])
            if low is not None and high is not None and low > high:
                raise ValueError(f"'between' needs low <= high, got {value}")
        elif op in {"in", "not_in"}:
            if not isinstance(value, list) or not value:
                raise ValueError(f"'{op}' needs a non-empty list of values")
        elif isinstance(value, list):
            raise ValueError(f"'{op}' takes one value, not a list")
        least = 0 if op == "more_than_days_ago" else 1
        if op in DAY_OPS and not (
            isinstance(value, int) and not isinstance(value, bool) and value >= least
        ):
            raise ValueError(f"'{op}' needs a whole number of days ({least} or more)")
        if op in TEXT_OPS and not isinstance(value, str):
            raise ValueError(f"'{op}' needs text")
        if self.yearly and op not in {"within_last_days", "within_next_days"}:
            raise ValueError("'yearly' goes with within_last_days or within_next_days")
        return self


class And(Node):
    """All conditions hold."""

    type: Literal["and"] = "and"
    conditions: list[Rule] = Field(min_length=1)


class Or(Node):
    """At least one condition holds."""

    type: Literal["or"] = "or"
    conditions: list[Rule] = Field(min_length=1)


class Not(Node):
    """The condition does not hold."""

    type: Literal["not"] = "not"
    condition: Rule


class Attribute(Comparison):
    """A customer column compared with a value: ``country eq France``."""

    type: Literal["attribute"] = "attribute"
    attribute: str


class Trait(Comparison):
    """A computed trait compared with a value: ``total_revenue gt 500``."""

    type: Literal["trait"] = "trait"
    trait: str
    #: For ``most_frequent``: the event property, and optionally which events count.
    property: str | None = None
    event: str | None = None

    @model_validator(mode="after")
    def _check_trait(self) -> Trait:
        if self.trait not in TRAITS:
            raise ValueError(
                f"unknown trait {self.trait!r}; traits are: {', '.join(sorted(TRAITS))}"
            )
        if self.trait == "most_frequent":
            if not self.property:
                raise ValueError("trait 'most_frequent' needs a 'property'")
            _check_property(self.property)
        elif self.property or self.event:
            raise ValueError("only trait 'most_frequent' takes 'property' and 'event'")
        return self


class Window(Node):
    """Which events count by time: one of ``last_days``, ``days_ago``, ``dates``; none = ever."""

    last_days: int | None = Field(default=None, ge=1)
    #: ``[N, M]``: between N and M days before the reference time (N <= M).
    days_ago: list[int] | None = None
    #: ``[from, to]``: between two dates, both included.
    dates: list[dt.date] | None = None

    @model_validator(mode="after")
    def _one(self) -> Window:
        given = [k for k in ("last_days", "days_ago", "dates") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"a window takes one of last_days, days_ago, dates; got {given}")
        days_ago = self.days_ago
        if days_ago is not None and (len(days_ago) != 2 or not 0 <= days_ago[0] <= days_ago[1]):
            raise ValueError("'days_ago' needs [N, M] with 0 <= N <= M")
        if self.dates is not None and (len(self.dates) != 2 or self.dates[0] > self.dates[1]):
            raise ValueError("'dates' needs [from, to] with from <= to")
        return self


class PropertyFilter(Comparison):
    """An event property compared with a value: ``channel eq web``."""

    property: str

    @model_validator(mode="after")
    def _check_name(self) -> PropertyFilter:
        _check_property(self.property)
        if self.op in DATE_OPS:
            raise ValueError(f"'{self.op}' does not apply to event properties")
        return self


class EventScope(Node):
    """Which events a condition looks at: type(s), time window, property filters."""

    #: An event type, a list of them, or ``"*"`` for any event.
    event: str | list[str]
    window: Window = Window()
    where: list[PropertyFilter] = []

    @model_validator(mode="after")
    def _check_event(self) -> EventScope:
        events = self.event if isinstance(self.event, list) else [self.event]
        if not events or any(not isinstance(e, str) or not e.strip() for e in events):
            raise ValueError("'event' needs an event type, a list of them, or '*'")
        return self


class Performed(EventScope):
    """Did the event: at least once, or ``times`` compared with a count."""

    type: Literal["performed"] = "performed"
    #: ``{op: gte, value: 3}``; default: at least once.
    times: Comparison | None = None

    @model_validator(mode="after")
    def _check_times(self) -> Performed:
        if self.times is not None:
            if self.times.op not in NUMBER_OPS:
                raise ValueError(f"'times' compares a count: use one of {sorted(NUMBER_OPS)}")
            values = self.times.value if isinstance(self.times.value, list) else [self.times.value]
            if any(_number(v) is None or _number(v) < 0 for v in values):
                raise ValueError("'times' needs a count of 0 or more")
        return self


class NotPerformed(EventScope):
    """Never did the event (in the window, matching the filters)."""

    type: Literal["not_performed"] = "not_performed"


class Aggregate(EventScope, Comparison):
    """Sum / average / min / max / count over the matching events, compared with a value."""

    type: Literal["aggregate"] = "aggregate"
    fn: Literal["sum", "avg", "min", "max", "count"]
    #: The measure: ``revenue``, or a numeric event property.
    of: str = "revenue"

    @model_validator(mode="after")
    def _check_fn(self) -> Aggregate:
        if self.op not in NUMBER_OPS | UNARY_OPS:
            raise ValueError(f"an aggregate compares a number: use one of {sorted(NUMBER_OPS)}")
        if self.of != "revenue":
            _check_property(self.of)
        return self


class InSegment(Node):
    """Is a current member of another segment."""

    type: Literal["in_segment"] = "in_segment"
    segment: str


class NotInSegment(Node):
    """Is not a current member of another segment."""

    type: Literal["not_in_segment"] = "not_in_segment"
    segment: str


class RandomBucket(Node):
    """A stable pseudo-random slice of customers: ``from`` <= bucket < ``to`` percent.

    The bucket depends only on the customer id and ``salt``, so the same customer
    lands in the same slice on every backend and every refresh.
    """

    type: Literal["random_bucket"] = "random_bucket"
    from_: float = Field(alias="from", ge=0, le=100)
    to: float = Field(ge=0, le=100)
    salt: str = ""

    @model_validator(mode="after")
    def _range(self) -> RandomBucket:
        if self.from_ >= self.to:
            raise ValueError("'from' must be below 'to' (percent of customers, 0 to 100)")
        return self


class Prediction(Node):
    """A score a model stored for the customer (``strata predict …``).

    Either compared with ``op`` and ``value`` (``churn_risk`` ``gt`` 0.7), or ranked:
    ``top_percent: 20`` holds for the fifth of scored customers with the highest values
    (ties broken by customer id, so the same customers on every backend).
    """

    type: Literal["prediction"] = "prediction"
    prediction: str
    op: Op | None = None
    value: Value = None
    top_percent: float | None = Field(default=None, gt=0, le=100)
    bottom_percent: float | None = Field(default=None, gt=0, le=100)

    @model_validator(mode="after")
    def _one_form(self) -> Prediction:
        if not _PREDICTION.match(self.prediction):
            raise ValueError(
                f"prediction name {self.prediction!r} is not allowed: use lower-case letters, "
                "digits, '_' and ':' (e.g. churn_risk, clv, propensity_30d)"
            )
        forms = [self.op is not None, self.top_percent is not None, self.bottom_percent is not None]
        if sum(forms) != 1:
            raise ValueError(
                "a prediction condition needs exactly one of: op (with value), top_percent "
                "or bottom_percent"
            )
        if self.op is not None:
            if self.op not in NUMBER_OPS | UNARY_OPS:
                raise ValueError(
                    f"'{self.op}' does not compare scores; use one of "
                    + ", ".join(sorted(NUMBER_OPS | UNARY_OPS))
                )
            self.comparison()
        elif self.value is not None:
            raise ValueError("top_percent and bottom_percent take no value")
        return self

    def comparison(self) -> Comparison:
        """The ``op`` / ``value`` part as a plain comparison."""
        return Comparison(op=self.op or "exists", value=self.value)

    @property
    def ranked(self) -> tuple[str, float] | None:
        """``("top", 20.0)`` for ``top_percent: 20``; ``None`` for a comparison."""
        if self.top_percent is not None:
            return "top", self.top_percent
        if self.bottom_percent is not None:
            return "bottom", self.bottom_percent
        return None


class Cluster(Node):
    """Assigned to one cluster of a fitted clustering model (``strata cluster``).

    Evaluated in the warehouse: the customer's features, scaled as when the model was
    fitted, go to the nearest stored centroid.
    """

    type: Literal["cluster"] = "cluster"
    model: str = Field(min_length=1, max_length=120)
    cluster: int = Field(ge=0)


Rule = Annotated[
    And
    | Or
    | Not
    | Attribute
    | Trait
    | Performed
    | NotPerformed
    | Aggregate
    | InSegment
    | NotInSegment
    | RandomBucket
    | Prediction
    | Cluster,
    Field(discriminator="type"),
]
NODE_TYPES = (
    And,
    Or,
    Not,
    Attribute,
    Trait,
    Performed,
    NotPerformed,
    Aggregate,
    InSegment,
    NotInSegment,
    RandomBucket,
    Prediction,
    Cluster,
)
for _cls in (And, Or, Not):
    _cls.model_rebuild()

_RULE = TypeAdapter(Rule)


class SegmentSpec(Node):
    """One segment as written in a YAML file: a name, a description and a rule."""

    name: str = Field(min_length=1, max_length=200)
    description: str | None = None
    rule: Rule


def parse_rule(data: Any) -> Rule:
    """Validate a rule given as plain data (from JSON or YAML); ``InputError`` if wrong."""
    try:
        return _RULE.validate_python(data)
    except ValidationError as exc:
        raise InputError(f"invalid segment rule: {_first_error(exc)}") from None


def rule_json(rule: Rule) -> dict[str, Any]:
    """The rule as JSON-ready data, as stored in the catalog."""
    return _drop_defaults(_RULE.dump_python(rule, mode="json", by_alias=True, exclude_none=True))


def _drop_defaults(data: Any) -> Any:
    """Leave out what a person would not write (``yearly: false``, an empty window…)."""
    if isinstance(data, list):
        return [_drop_defaults(v) for v in data]
    if not isinstance(data, dict):
        return data
    return {
        k: _drop_defaults(v)
        for k, v in data.items()
        if k in ("type", "value")
        or not (v is False or (isinstance(v, str | list | dict) and not v))
    }


def load_spec(text: str, source: str = "definition") -> SegmentSpec:
    """Read one segment definition from YAML (or JSON) text."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise InputError(f"{source} is not valid YAML{where}: fix the syntax") from None
    if not isinstance(data, dict):
        raise InputError(f"{source} must be a mapping with 'name' and 'rule'")
    if "rule" not in data and "type" in data:
        raise InputError(f"{source} has a bare rule: put it under 'rule:' and add a 'name:'")
    try:
        return SegmentSpec.model_validate(data)
    except ValidationError as exc:
        raise InputError(f"{source}: {_first_error(exc)}") from None


def walk(rule: Rule) -> Iterator[Rule]:
    """Every node of ``rule``, parents before children."""
    yield rule
    if isinstance(rule, And | Or):
        for child in rule.conditions:
            yield from walk(child)
    elif isinstance(rule, Not):
        yield from walk(rule.condition)


def referenced_segments(rule: Rule) -> set[str]:
    """Names of the segments ``rule`` refers to (not those they refer to in turn)."""
    return {n.segment for n in walk(rule) if isinstance(n, InSegment | NotInSegment)}


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    # Discriminated unions put the tag in the location; keep it, it says which node.
    loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "union_tag_invalid":
        tags = ", ".join(sorted(n.model_fields["type"].default for n in NODE_TYPES))
        msg = f"unknown condition type {err['input'].get('type')!r}; use one of: {tags}"
    elif err["type"] == "union_tag_not_found":
        msg = "each condition needs a 'type' (and, or, not, attribute, trait, performed, …)"
    elif err["type"] == "extra_forbidden":
        msg = f"unknown key {err['loc'][-1]!r}"
    return f"{msg} (at {loc})" if loc else msg


def _check_property(name: str) -> str:
    if not _PROPERTY.match(name):
        raise ValueError(
            f"property name {name!r} is not allowed: use letters, digits and '_' "
            "(at most 64, starting with a letter or '_')"
        )
    return name


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    return None
