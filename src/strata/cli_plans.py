"""``strata plan``: the workspace's plan, its limits and this month's usage."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="The workspace's plan, its limits and this month's usage.",
    no_args_is_help=True,
)
