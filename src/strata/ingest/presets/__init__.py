"""Presets: what a known kind of file means, and how to recognise one.

Each preset scores a file (0–1, how sure it is the file is of its kind), maps its
columns and turns its rows into *lines* (:mod:`strata.ingest.lines`).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from strata.errors import InputError
from strata.ingest import mapping as M
from strata.ingest.lines import Problems, customer_columns, customer_identity, typed_fields
from strata.ingest.readers import RawTable


class Preset:
    name: str = ""
    target: str = "events"
    title: str = ""
    #: Fields this preset reads; detection looks only for these.
    fields: list[str] = []
    required: list[str] = []

    def score(self, raw: RawTable) -> float:
        raise NotImplementedError

    def mapping(self, raw: RawTable, given: M.Mapping | None = None) -> M.Mapping:
        """The detected mapping, or ``given`` checked against the file."""
        mapping = given if given is not None and given.fields else detect(raw, self.fields)
        if given is not None:
            mapping.attributes = given.attributes
            mapping.date_format = given.date_format
        mapping.preset, mapping.target = self.name, self.target
        for name, column in [
            *mapping.fields.items(),
            *((a, s.column) for a, s in mapping.attributes.items()),
        ]:
            if column not in raw.columns:
                raise InputError(
                    f"the mapping puts {name} in column {column!r}, which the "
                    f"file does not have; its columns are: {', '.join(raw.columns)}"
                )
        self.check_required(mapping, raw)
        return mapping

    def missing(self, mapping: M.Mapping) -> list[str]:
        """Required fields the mapping lacks."""
        return [f for f in self.required if f not in mapping.fields]

    def check_required(self, mapping: M.Mapping, raw: RawTable) -> None:
        missing = self.missing(mapping)
        if missing:
            raise InputError(
                f"no column found for {', '.join(missing)} (as {self.title}); the file has "
                f"{', '.join(raw.columns[:20])}{'…' if len(raw.columns) > 20 else ''}: "
                "name the columns in a --mapping file"
            )

    def lines(self, raw: RawTable, mapping: M.Mapping, problems: Problems) -> pa.Table:
        raise NotImplementedError

    # shared by the presets that read customer columns
    def _customer_part(
        self, raw: RawTable, mapping: M.Mapping, problems: Problems, required: list[str]
    ) -> tuple[dict, dict, np.ndarray]:
        fields, keep = typed_fields(raw, mapping, problems, required)
        ext, keep = customer_identity(fields, problems, keep)
        return {"external_id": ext, **customer_columns(fields, mapping)}, fields, keep


def detect(raw: RawTable, fields: list[str]) -> M.Mapping:
    """:func:`strata.ingest.mapping.detect` on a file, reusing its value checks."""
    fits = raw.__dict__.setdefault("_value_fits", {})
    return M.detect(raw.table, fields, fits)


def has_customer(mapping: M.Mapping) -> bool:
    return "customer_id" in mapping.fields or "email" in mapping.fields


def header_score(raw: RawTable, signature: list[str]) -> float:
    """Share of ``signature`` headers (normalised) that the file has."""
    have = {M.normalise_header(c) for c in raw.columns}
    return sum(M.normalise_header(s) in have for s in signature) / len(signature)


def registry() -> dict[str, Preset]:
    from strata.ingest.presets.cdnow import CDNow
    from strata.ingest.presets.generic import Customers, Events, Transactions
    from strata.ingest.presets.shopify import ShopifyOrders
    from strata.ingest.presets.stripe import StripePayments

    presets = [Customers(), Transactions(), Events(), ShopifyOrders(), StripePayments(), CDNow()]
    return {p.name: p for p in presets}


def choose(raw: RawTable, name: str | None, target: str | None) -> tuple[Preset, float]:
    """The preset named, or the best-scoring one for ``auto``."""
    presets = registry()
    if name and name != "auto":
        if name not in presets:
            raise InputError(f"unknown preset {name!r}; choose one of: auto, {', '.join(presets)}")
        return presets[name], 1.0
    candidates = [p for p in presets.values() if target is None or p.target == target]
    scored = sorted(((p.score(raw), p) for p in candidates), key=lambda s: -s[0])
    best_score, best = scored[0]
    if best_score < 0.5:
        raise InputError(
            "cannot tell what this file holds (no preset fits its columns: "
            f"{', '.join(raw.columns[:12])}); pass --preset NAME or --mapping FILE"
        )
    return best, best_score
