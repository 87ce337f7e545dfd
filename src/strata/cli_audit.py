"""``strata audit``: the audit log."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="The audit log: who did what, and when.",
    no_args_is_help=True,
)
