"""The ideal-customer-profile (ICP) score: a weighted sum of criteria, 0 to 100.

Each criterion maps one attribute or trait to a number from 0 to 1:

* ``in: [a, b]`` — 1 when the value is one of these;
* ``range: [low, high]`` — 1 inside the sweet spot (both ends included);
* ``scale: [low, high]`` — 0 at ``low``, 1 at ``high``, linear between, clamped
  (``high < low`` scores small values best);
* ``map: {value: score}`` — a score per value;
* ``exists: true`` — 1 when the value is present.

A missing value scores 0. The score is ``100 × Σ weight·criterion / Σ weight``
and is the trait ``icp_score``, usable in any condition and in tiers.

>>> config = parse_config({"criteria": [
...     {"on": "industry", "in": ["Software"], "weight": 2},
...     {"on": "company_size", "range": [50, 500]},
... ]})
>>> [c.kind for c in config.criteria]
['in', 'range']
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ibis
import ibis.expr.types as ir
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from strata.errors import InputError

KINDS = ("in", "range", "scale", "map", "exists")
_ONE = ibis.literal(1.0, type="float64")
_ZERO = ibis.literal(0.0, type="float64")


class Criterion(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    #: An attribute (customer column) or a trait (``total_revenue``…).
    on: str
    weight: float = Field(default=1.0, gt=0)
    label: str | None = None
    in_: list[str | int | float | bool] | None = Field(default=None, alias="in", min_length=1)
    range: list[float] | None = None
    scale: list[float] | None = None
    map: dict[str, float] | None = None
    exists: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _yaml_on(cls, data: Any) -> Any:
        # YAML 1.1 reads a bare `on:` key as the boolean true.
        if isinstance(data, dict) and True in data and "on" not in data:
            data = {("on" if k is True else k): v for k, v in data.items()}
        return data

    @model_validator(mode="after")
    def _one_kind(self) -> Criterion:
        if self.on == "icp_score":
            raise ValueError("a criterion cannot score the ICP score itself")
        given = [k for k in KINDS if getattr(self, "in_" if k == "in" else k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"criterion on {self.on!r} needs exactly one of {', '.join(KINDS)}; got "
                f"{', '.join(given) or 'none'}"
            )
        for name in ("range", "scale"):
            pair = getattr(self, name)
            if pair is not None and len(pair) != 2:
                raise ValueError(f"'{name}' needs two numbers: [low, high]")
        if self.range is not None and self.range[0] > self.range[1]:
            raise ValueError("'range' needs low <= high")
        if self.scale is not None and self.scale[0] == self.scale[1]:
            raise ValueError("'scale' needs two different numbers")
        if self.map is not None and any(not 0 <= v <= 1 for v in self.map.values()):
            raise ValueError("'map' scores must be between 0 and 1")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in KINDS if getattr(self, "in_" if k == "in" else k) is not None)

    def describe(self) -> str:
        rule = {
            "in": lambda: f"is one of {', '.join(map(str, self.in_ or []))}",
            "range": lambda: f"is between {self.range[0]:g} and {self.range[1]:g}",
            "scale": lambda: f"scaled from {self.scale[0]:g} (0) to {self.scale[1]:g} (1)",
            "map": lambda: "scored " + ", ".join(f"{k}={v:g}" for k, v in self.map.items()),
            "exists": lambda: "is known",
        }[self.kind]()
        return self.label or f"{self.on} {rule}"

    def score(self, value: ir.Value) -> ir.FloatingValue:
        """This criterion's 0–1 score of ``value``; 0 where the value is missing."""
        kind = self.kind
        if kind == "in":
            s = value.isin(self.in_).ifelse(_ONE, _ZERO)
        elif kind == "range":
            s = value.between(self.range[0], self.range[1]).ifelse(_ONE, _ZERO)
        elif kind == "scale":
            low, high = self.scale
            s = ((value.cast("float64") - low) / (high - low)).clip(lower=0.0, upper=1.0)
        elif kind == "map":
            s = ibis.cases(
                *[
                    (value.cast("string") == k, ibis.literal(v, type="float64"))
                    for k, v in self.map.items()
                ]
            )
        else:
            s = value.notnull().ifelse(_ONE, _ZERO)
        return s.cast("float64").fill_null(0.0)


class IcpConfig(BaseModel):
    """The workspace setting ``icp``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    criteria: list[Criterion] = Field(min_length=1)

    def score(self, value_of: Callable[[str], ir.Value]) -> ir.FloatingValue:
        """``100 × Σ weight·score / Σ weight``; ``value_of(name)`` gives an attribute or trait."""
        total = sum(c.weight for c in self.criteria)
        weighted = [c.score(value_of(c.on)) * (c.weight / total) for c in self.criteria]
        acc = weighted[0]
        for w in weighted[1:]:
            acc = acc + w
        # Ibis writes float literals bare and drops casts it thinks are no-ops, so
        # PostgreSQL would compute in numeric; a cast through decimal makes it a double.
        return (acc * 100.0).cast("decimal(18, 9)").cast("float64")


def parse_config(data: dict[str, Any]) -> IcpConfig:
    try:
        return IcpConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise InputError(
            f"invalid ICP criteria: {err['msg'].removeprefix('Value error, ')} (at {loc})"
        ) from None
