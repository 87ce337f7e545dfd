"""``strata approvals``: approvals of segments, automations and syncs that send data out."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Approve segments, automations and syncs that send data out; versions and diffs.",
    no_args_is_help=True,
)
