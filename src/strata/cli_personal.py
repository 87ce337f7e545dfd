"""``strata personal-fields``: which customer columns hold personal data (masked for viewers)."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Which customer columns hold personal data (masked for viewers).",
    no_args_is_help=True,
)
