"""``strata plan``: the workspace's plan, its limits and this month's usage.

A thin shell over :mod:`strata.plans`; the library is imported when a command runs, so
``strata --help`` stays quick.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from strata.cli_common import JsonOpt, WorkspaceOpt, out
from strata.cli_common import open_app as _open
from strata.cli_common import print_json as _print_json

app = typer.Typer(
    help="The workspace's plan, its limits and this month's usage.",
    no_args_is_help=True,
)


def _limit(n: int | None) -> str:
    return "unlimited" if n is None else f"{n:,}"


def _print_plan(plan: dict[str, Any]) -> None:
    price = "custom" if plan["monthly_price"] is None else f"${plan['monthly_price']} a month"
    out.print(f"plan: {plan['title']} ({plan['name']}, {price})")
    out.print(f"  customers: up to {_limit(plan['max_customers'])}")
    out.print(f"  segments: up to {_limit(plan['max_segments'])} (rule and static)")
    out.print(f"  features: {', '.join(plan['features']) or 'none of the gated ones'}")


@app.command("list")
def list_(json_: JsonOpt = False) -> None:
    """Every plan: price, customer and segment limits, features."""
    from strata import plans

    rows = [p.to_dict() for p in plans.PLANS.values()]
    if json_:
        _print_json({"plans": rows})
        return
    table = Table(box=None, pad_edge=False)
    for col in ("plan", "price", "customers", "segments", "features"):
        table.add_column(col)
    for p in rows:
        price = "custom" if p["monthly_price"] is None else f"${p['monthly_price']}"
        table.add_row(
            p["name"],
            price,
            _limit(p["max_customers"]),
            _limit(p["max_segments"]),
            ", ".join(p["features"]) or "-",
        )
    out.print(table)


@app.command("show")
def show(workspace: WorkspaceOpt = None, json_: JsonOpt = False) -> None:
    """The workspace's plan: its limits and features."""
    from strata import plans

    with _open() as strata:
        plan = plans.plan_of(strata.workspace(workspace)).to_dict()
    if json_:
        _print_json(plan)
        return
    _print_plan(plan)


@app.command("set")
def set_(
    plan: Annotated[
        str, typer.Argument(help="starter, growth, professional, enterprise or unlimited.")
    ],
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Move the workspace to another plan (refused if it already holds more than it allows)."""
    from strata import plans

    with _open() as strata:
        chosen = plans.set_plan(strata, strata.workspace(workspace), plan.strip().lower())
    if json_:
        _print_json(chosen.to_dict())
        return
    out.print(f"the workspace is on the {chosen.title} plan")


@app.command("usage")
def usage(workspace: WorkspaceOpt = None, json_: JsonOpt = False) -> None:
    """Customers and segments now against the plan's limits; this month's events
    ingested, API calls and exports, and earlier months."""
    from strata import plans

    with _open() as strata:
        data = plans.usage(strata, strata.workspace(workspace))
    if json_:
        _print_json(data)
        return
    plan = data["plan"]
    out.print(f"plan: {plan['title']} ({plan['name']})")
    out.print(f"customers: {data['customers']:,} of {_limit(plan['max_customers'])}")
    out.print(
        f"segments: {data['segments']:,} of {_limit(plan['max_segments'])} "
        f"(rule and static; {data['segments_all_kinds']:,} of every kind)"
    )
    table = Table(box=None, pad_edge=False)
    for col in ("month", "events ingested", "API calls", "exports"):
        table.add_column(col)
    for m in [data["this_month"], *data["history"]]:
        table.add_row(
            m["month"], f"{m['events_ingested']:,}", f"{m['api_calls']:,}", f"{m['exports']:,}"
        )
    out.print(table)
