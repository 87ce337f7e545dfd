"""Tiers: named ranges of one numeric attribute or trait, each a segment.

The earlier ICP dashboard split customers by printer count into Small Business
(up to 1), Mid-Market (up to 10) and Large Enterprise (above); those are the
defaults. Each tier takes the values above the previous tier's ``max`` up to its
own ``max`` (included); the first has no lower bound and the last no upper one,
unless given. Tiers that overlap or leave a gap are refused.

>>> config = parse_config({"on": "company_size"})
>>> [(t.name, t.min, t.max) for t in config.tiers]
[('Small Business', None, 1.0), ('Mid-Market', 1.0, 10.0), ('Large Enterprise', 10.0, None)]
"""

from __future__ import annotations

import itertools
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from strata.errors import InputError
from strata.segments import nodes as N

DEFAULT_TIERS: list[dict[str, Any]] = [
    {"name": "Small Business", "max": 1},
    {"name": "Mid-Market", "max": 10},
    {"name": "Large Enterprise"},
]


class Tier(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    #: Values above this (not included); none: no lower bound.
    min: float | None = None
    #: Values up to this (included); none: no upper bound.
    max: float | None = None


class TierConfig(BaseModel):
    """The workspace setting ``tiers:<name>``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    on: str = Field(min_length=1)
    tiers: list[Tier]

    @model_validator(mode="before")
    @classmethod
    def _fill_mins(cls, data: Any) -> Any:
        if isinstance(data, dict) and True in data and "on" not in data:
            # YAML 1.1 reads a bare `on:` key as the boolean true.
            data = {("on" if k is True else k): v for k, v in data.items()}
        # A tier without "min" starts where the one before it ends.
        if isinstance(data, dict) and data.get("tiers") is None:
            data = {**data, "tiers": DEFAULT_TIERS}
        if isinstance(data, dict) and isinstance(data.get("tiers"), list):
            tiers, previous = [], None
            for t in data["tiers"]:
                t = dict(t) if isinstance(t, dict) else t
                if isinstance(t, dict) and t.get("min") is None and previous is not None:
                    t["min"] = previous
                previous = t.get("max") if isinstance(t, dict) else None
                tiers.append(t)
            data = {**data, "tiers": tiers}
        return data

    @model_validator(mode="after")
    def _contiguous(self) -> TierConfig:
        tiers = self.tiers
        if len(tiers) < 2:
            raise ValueError("tiers need at least two ranges")
        names = [t.name for t in tiers]
        if len(set(names)) != len(names):
            raise ValueError("tier names must be different")
        for t in tiers:
            if t.min is not None and t.max is not None and t.min >= t.max:
                raise ValueError(f"tier {t.name!r} is empty: its max must be above its min")
        for a, b in itertools.pairwise(tiers):
            if a.max is None:
                raise ValueError(
                    f"tier {a.name!r} has no max but {b.name!r} comes after it: only the last "
                    "tier may be open-ended"
                )
            if b.min is None or b.min < a.max:
                raise ValueError(
                    f"tiers {a.name!r} (up to {a.max:g}) and {b.name!r} (from "
                    f"{'any value' if b.min is None else f'above {b.min:g}'}) overlap: "
                    f"start {b.name!r} above {a.max:g}"
                )
            if b.min > a.max:
                raise ValueError(
                    f"tiers {a.name!r} (up to {a.max:g}) and {b.name!r} (above {b.min:g}) leave "
                    f"a gap: values in ({a.max:g}, {b.min:g}] would be in no tier"
                )
        return self

    def rules(self) -> list[tuple[str, N.Rule]]:
        """Each tier's name and rule (``on`` compared with its bounds)."""
        kind = "trait" if self.on in N.TRAITS else "attribute"
        out = []
        for t in self.tiers:
            parts = []
            if t.min is not None:
                parts.append({"type": kind, kind: self.on, "op": "gt", "value": t.min})
            if t.max is not None:
                parts.append({"type": kind, kind: self.on, "op": "lte", "value": t.max})
            rule = parts[0] if len(parts) == 1 else {"type": "and", "conditions": parts}
            out.append((t.name, N.parse_rule(rule)))
        return out

    def describe(self) -> list[str]:
        out = []
        for t in self.tiers:
            if t.min is None:
                out.append(f"{t.name}: {self.on} ≤ {t.max:g}")
            elif t.max is None:
                out.append(f"{t.name}: {self.on} > {t.min:g}")
            else:
                out.append(f"{t.name}: {t.min:g} < {self.on} ≤ {t.max:g}")
        return out


def parse_config(data: dict[str, Any]) -> TierConfig:
    try:
        return TierConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise InputError(f"invalid tiers: {err['msg'].removeprefix('Value error, ')}") from None


def parse_tier_option(text: str) -> dict[str, Any]:
    """``"Mid-Market<=10"`` or ``"Large Enterprise"`` (the last, open-ended) from the CLI."""
    name, sep, bound = text.partition("<=")
    if not name.strip():
        raise InputError(f"--tier {text!r} needs a name, e.g. 'Mid-Market<=10'")
    if not sep:
        return {"name": name.strip()}
    try:
        return {"name": name.strip(), "max": float(bound)}
    except ValueError:
        raise InputError(f"--tier {text!r}: {bound.strip()!r} is not a number") from None
