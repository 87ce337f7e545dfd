"""Looking up a workspace's destinations (webhook endpoints, SMTP servers, marketing tools).

Every kind lives in one ``destinations`` table; each part of :mod:`strata.actions`
sees only its own kinds, so an id of another kind answers "not found" like an id of
another workspace.
"""

from __future__ import annotations

from collections.abc import Collection

import sqlalchemy as sa

from strata.catalog import Destination, Workspace
from strata.context import Strata
from strata.errors import NotFound


def destinations_of(app: Strata, ws: Workspace, kinds: Collection[str]) -> list[Destination]:
    """The workspace's destinations of ``kinds``, oldest first."""
    with app.session() as s:
        return list(
            s.scalars(
                sa.select(Destination)
                .where(Destination.workspace_id == ws.id, Destination.kind.in_(list(kinds)))
                .order_by(Destination.id)
            )
        )


def destination_of(
    app: Strata,
    ws: Workspace,
    ref: int | str,
    kinds: Collection[str],
    label: str,
    hint: str = "",
) -> Destination:
    """The destination ``ref`` (its id, or its name) of one of ``kinds``, or
    :class:`NotFound` saying there is no such ``label`` in this workspace (and ``hint``)."""
    query = sa.select(Destination).where(
        Destination.workspace_id == ws.id, Destination.kind.in_(list(kinds))
    )
    if isinstance(ref, int) or str(ref).isdigit():
        query = query.where(Destination.id == int(ref))
    else:
        query = query.where(Destination.name == str(ref))
    with app.session() as s:
        dest = s.scalar(query)
    if dest is None:
        raise NotFound(f"no {label} {ref!r} in this workspace" + (f"; {hint}" if hint else ""))
    return dest
