"""Fitted models in the catalog, and their scores in the warehouse.

Every fit is saved as a new version of a named model (:class:`strata.catalog.Model`),
with the parameters it was given, what it learned and how well it did. Its scores go
to the warehouse's ``predictions`` table, one row per customer and prediction type,
naming the version that made them.

>>> store = ModelStore(app, app.workspace("demo"))  # doctest: +SKIP
>>> fitted = store.save(kind="clv", name="clv", params={}, state={}, metrics={},
...                     as_of=dt.datetime(2026, 12, 1))  # doctest: +SKIP
>>> fitted.model_version  # doctest: +SKIP
'clv@1'
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import sqlalchemy as sa

from strata.catalog import Model, Workspace
from strata.errors import NotFound

if TYPE_CHECKING:
    import pandas as pd

    from strata.context import Strata


@dataclass(frozen=True)
class FittedModel:
    """One saved version of a model."""

    id: int
    kind: str
    name: str
    version: int
    params: dict[str, Any]
    state: dict[str, Any]
    metrics: dict[str, Any]
    as_of: dt.datetime
    created_at: dt.datetime

    @property
    def model_version(self) -> str:
        """How predictions name it: ``name@version``."""
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "version": self.version,
            "model_version": self.model_version,
            "params": self.params,
            "metrics": self.metrics,
            "as_of": self.as_of.isoformat(sep=" "),
            "created_at": self.created_at.isoformat(sep=" ", timespec="seconds"),
        }


class ModelStore:
    """The fitted models of one workspace."""

    def __init__(self, app: Strata, workspace: Workspace):
        self.app = app
        self.ws = workspace

    def save(
        self,
        *,
        kind: str,
        name: str,
        params: dict[str, Any],
        state: dict[str, Any],
        metrics: dict[str, Any],
        as_of: dt.datetime,
    ) -> FittedModel:
        """Store a new version of ``name`` (the first is 1); returns it."""
        with self.app.session() as s:
            latest = s.scalar(
                sa.select(sa.func.max(Model.version)).where(
                    Model.workspace_id == self.ws.id, Model.name == name
                )
            )
            row = Model(
                workspace_id=self.ws.id,
                kind=kind,
                name=name,
                version=(latest or 0) + 1,
                params=jsonable(params),
                state=jsonable(state),
                metrics=jsonable(metrics),
                as_of=as_of.replace(tzinfo=None),
            )
            s.add(row)
            s.commit()
            return _fitted(row)

    def latest(self, name: str) -> FittedModel | None:
        """The newest version of ``name``, or ``None`` if it was never fitted."""
        with self.app.session() as s:
            row = s.scalar(
                sa.select(Model)
                .where(Model.workspace_id == self.ws.id, Model.name == name)
                .order_by(Model.version.desc())
                .limit(1)
            )
            return None if row is None else _fitted(row)

    def get(self, name: str) -> FittedModel:
        """The newest version of ``name``; a clear error if there is none."""
        fitted = self.latest(name)
        if fitted is None:
            raise NotFound(
                f"no model named {name!r} has been fitted in workspace {self.ws.name!r}; "
                "fit it first (see `strata cluster` and `strata predict --help`)"
            )
        return fitted

    def list(self) -> list[FittedModel]:
        """The newest version of every model, by name."""
        with self.app.session() as s:
            newest = (
                sa.select(Model.name, sa.func.max(Model.version).label("v"))
                .where(Model.workspace_id == self.ws.id)
                .group_by(Model.name)
                .subquery()
            )
            rows = s.scalars(
                sa.select(Model)
                .join(newest, (Model.name == newest.c.name) & (Model.version == newest.c.v))
                .where(Model.workspace_id == self.ws.id)
                .order_by(Model.name)
            )
            return [_fitted(r) for r in rows]


def write_predictions(
    app: Strata,
    workspace_id: int,
    prediction_type: str,
    rows: pa.Table | pd.DataFrame,
    *,
    model_version: str,
    predicted_at: dt.datetime,
) -> int:
    """Replace the stored predictions of ``prediction_type`` with ``rows``; returns the count.

    ``rows`` has ``customer_id`` and ``value``, optionally ``confidence`` and
    ``details`` (JSON text saying why). Cached personalization profiles of the
    workspace are dropped, since they carry the predictions.
    """
    table = rows if isinstance(rows, pa.Table) else pa.Table.from_pandas(rows, preserve_index=False)
    n = table.num_rows
    table = table.append_column("model_version", pa.array([model_version] * n, pa.string()))
    stamp = predicted_at.replace(tzinfo=None)
    table = table.append_column("predicted_at", pa.array([stamp] * n, pa.timestamp("us")))
    written = app.warehouse.replace_predictions(workspace_id, prediction_type, table)
    app.members_changed(workspace_id)
    return written


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars and arrays as plain Python, and NaN as ``None``."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def details_json(value: dict[str, Any]) -> str:
    """One prediction's details as compact JSON text."""
    return json.dumps(jsonable(value), separators=(",", ":"), ensure_ascii=False)


def _fitted(row: Model) -> FittedModel:
    return FittedModel(
        id=row.id,
        kind=row.kind,
        name=row.name,
        version=row.version,
        params=dict(row.params),
        state=dict(row.state),
        metrics=dict(row.metrics),
        as_of=row.as_of,
        created_at=row.created_at,
    )
