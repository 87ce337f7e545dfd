"""``strata personal-fields``: which customer columns hold personal data (masked for viewers).

A thin shell over :class:`strata.personal.PersonalFields`. The command line itself
shows data unmasked: its users are trusted operators of the install; masking is for
the API's and web app's viewer role.
"""

from __future__ import annotations

from typing import Annotated

import typer

from strata.cli_common import JsonOpt, WorkspaceOpt, out
from strata.cli_common import open_app as _open
from strata.cli_common import print_json as _print_json

app = typer.Typer(
    help="Which customer columns hold personal data (masked for viewers).",
    no_args_is_help=True,
)

Columns = Annotated[list[str], typer.Argument(help="Customer column names.", show_default=False)]


def _fields(strata, workspace: str | None):
    from strata.personal import PersonalFields

    return PersonalFields(strata, workspace)


def _show(listing: dict, json_: bool) -> None:
    if json_:
        _print_json(listing)
        return
    out.print(f"personal by default: {', '.join(listing['defaults'])}")
    out.print(f"and {listing['patterns']}")
    out.print(f"marked by this workspace: {', '.join(listing['marked']) or '(none)'}")
    out.print(
        f"personal customer columns here: {', '.join(listing['customer_columns']) or '(none)'}"
    )


@app.command("list")
def list_(workspace: WorkspaceOpt = None, json_: JsonOpt = False) -> None:
    """The defaults, the columns the workspace marked, and its personal customer columns."""
    with _open() as strata:
        listing = _fields(strata, workspace).listing()
    _show(listing, json_)


@app.command("add")
def add(columns: Columns, workspace: WorkspaceOpt = None, json_: JsonOpt = False) -> None:
    """Mark columns personal: viewers of the API and web app see them masked."""
    with _open() as strata:
        fields = _fields(strata, workspace)
        fields.add(columns)
        listing = fields.listing()
    _show(listing, json_)


@app.command("remove")
def remove(columns: Columns, workspace: WorkspaceOpt = None, json_: JsonOpt = False) -> None:
    """Un-mark columns the workspace marked (the defaults always stay personal)."""
    with _open() as strata:
        fields = _fields(strata, workspace)
        fields.remove(columns)
        listing = fields.listing()
    _show(listing, json_)
