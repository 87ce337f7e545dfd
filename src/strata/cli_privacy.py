"""``strata privacy``: erasure and access requests, retention, personal fields."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Data rights: erasure and access requests, suppressions, retention, personal fields.",
    no_args_is_help=True,
)
