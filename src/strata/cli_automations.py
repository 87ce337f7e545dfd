"""``strata automations`` and ``strata campaigns``: act when customers enter or leave.

An action is ``--do KIND`` with its settings as ``--with key=value`` (repeatable; a value
is read as JSON when it can be, else as text), e.g.::

    strata automations create "Welcome" --segment "New customers" --on enter \\
        --do webhook --with destination=crm-hook --wait 1h
    strata campaigns create "Win back" --segment "At risk" --do email \\
        --with destination=smtp --template win-back.yaml --holdout 10 --goal order
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.table import Table

from strata.cli_common import JsonOpt, WorkspaceOpt, out
from strata.cli_common import open_app as _app
from strata.cli_common import print_json as _print_json
from strata.errors import InputError

automations_app = typer.Typer(
    help="Automations: when customers enter or leave a segment (or on a schedule), act.",
    no_args_is_help=True,
)
campaigns_app = typer.Typer(
    help="Campaigns: an action on a segment with a holdout, and its measured lift.",
    no_args_is_help=True,
)

DoOpt = Annotated[
    str,
    typer.Option(
        "--do",
        help="webhook, email, export, set_attribute, tag or add_to_segment.",
        show_default=False,
    ),
]
WithOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--with",
        help="A setting of the action as key=value: destination=NAME, format=csv, tag=vip, "
        "attribute=tier, value=gold, segment=NAME.",
        show_default=False,
    ),
]
TemplateOpt = Annotated[
    Path | None,
    typer.Option(
        "--template",
        help="E-mail template: a YAML or JSON file with subject, text and html.",
        exists=True,
        dir_okay=False,
        show_default=False,
    ),
]
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def action_of(kind: str, settings: list[str] | None, template: Path | None) -> dict[str, Any]:
    """The action dict from ``--do``, ``--with`` and ``--template``."""
    action: dict[str, Any] = {"kind": kind}
    for item in settings or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--with {item!r}: write it as key=value")
        try:
            action[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            action[key.strip()] = value
    if template is not None:
        try:
            action["template"] = yaml.safe_load(template.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise InputError(f"{template}: not YAML or JSON ({exc.problem})") from None
    return action


def seconds(text: str | None) -> int:
    """``90``, ``30s``, ``15m``, ``2h`` or ``3d`` as seconds.

    >>> seconds("2h"), seconds("90"), seconds(None)
    (7200, 90, 0)
    """
    if not text:
        return 0
    match = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", text)
    if not match:
        raise InputError(f"{text!r} is not a duration; write e.g. 90, 30s, 15m, 2h or 3d")
    return int(match.group(1)) * _UNITS.get(match.group(2) or "s", 1)


def _condition(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    path = Path(text)
    source = path.read_text(encoding="utf-8") if path.is_file() else text
    try:
        data = yaml.safe_load(source)
    except yaml.YAMLError as exc:
        raise InputError(f"--if: not a rule in YAML or JSON ({exc.problem})") from None
    if not isinstance(data, dict):
        raise InputError("--if takes a rule: a YAML/JSON object or a file holding one")
    return data


def _automation_row(a) -> dict[str, Any]:
    return {
        "id": a.id,
        "name": a.name,
        "segment_id": a.segment_id,
        "trigger": a.trigger,
        "every_minutes": a.every_minutes,
        "wait_seconds": a.wait_seconds,
        "condition": a.condition,
        "action": a.action,
        "status": a.status,
        "next_run_at": a.next_run_at,
    }


# -- automations ------------------------------------------------------------------------------
@automations_app.command("list")
def automations_list(workspace: WorkspaceOpt = None, json_: JsonOpt = False) -> None:
    """Every automation: when it fires, what it does, whether it is active."""
    from strata.actions.automations import Automations

    with _app() as strata:
        rows = [_automation_row(a) for a in Automations(strata, strata.workspace(workspace)).list()]
    if json_:
        _print_json(rows)
        return
    if not rows:
        out.print("no automations yet: try `strata automations create --help`")
        return
    table = Table("id", "name", "when", "wait", "does", "status", box=None, pad_edge=False)
    for r in rows:
        when = r["trigger"] + (f" every {r['every_minutes']} min" if r["every_minutes"] else "")
        does = r["action"]["kind"] + "".join(
            f" {k}={v}" for k, v in r["action"].items() if k not in {"kind", "template"}
        )
        table.add_row(str(r["id"]), r["name"], when, f"{r['wait_seconds']} s", does, r["status"])
    out.print(table)


@automations_app.command("create")
def automations_create(
    name: Annotated[str, typer.Argument(help="A name for the automation.")],
    segment: Annotated[str, typer.Option("--segment", help="The segment it listens to.")],
    on: Annotated[str, typer.Option("--on", help="enter, exit or schedule.")],
    do: DoOpt,
    with_: WithOpt = None,
    template: TemplateOpt = None,
    wait: Annotated[
        str | None, typer.Option("--wait", help="Wait before acting: 90, 30s, 15m, 2h, 3d.")
    ] = None,
    condition: Annotated[
        str | None,
        typer.Option("--if", help="A rule (YAML/JSON, or a file) that must hold when it acts."),
    ] = None,
    every: Annotated[
        int | None, typer.Option("--every", help="For --on schedule: minutes between runs.")
    ] = None,
    paused: Annotated[bool, typer.Option("--paused", help="Save it paused.")] = False,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Save an automation: when (--on) → optional --wait and --if → do (--do, --with)."""
    from strata.actions.automations import Automations

    with _app() as strata:
        a = Automations(strata, strata.workspace(workspace)).create(
            name,
            segment,
            on,
            action_of(do, with_, template),
            wait_seconds=seconds(wait),
            condition=_condition(condition),
            every_minutes=every,
            status="paused" if paused else "active",
        )
    if json_:
        _print_json(_automation_row(a))
    else:
        out.print(f"automation {a.id} {a.name!r} saved ({a.status})")


def _one(command: str):
    def run(
        automation_id: Annotated[int, typer.Argument(help="The automation's id.")],
        workspace: WorkspaceOpt = None,
        json_: JsonOpt = False,
    ) -> None:
        from strata.actions.automations import Automations

        with _app() as strata:
            autos = Automations(strata, strata.workspace(workspace))
            if command == "remove":
                autos.delete(automation_id)
                out.print(f"automation {automation_id} removed")
                return
            a = getattr(autos, {"show": "get"}.get(command, command))(automation_id)
        if json_ or command == "show":
            _print_json(_automation_row(a))
        else:
            out.print(f"automation {a.id} {a.name!r} is {a.status}")

    run.__doc__ = {
        "show": "One automation, as JSON.",
        "pause": "Stop listening; recorded firings wait until it resumes.",
        "resume": "Listen again and act on what waited.",
        "remove": "Delete an automation and its record of firings.",
    }[command]
    return run


for _command in ("show", "pause", "resume", "remove"):
    automations_app.command(_command)(_one(_command))


@automations_app.command("firings")
def automations_firings(
    automation_id: Annotated[
        int | None, typer.Argument(help="Only this automation's.", show_default=False)
    ] = None,
    status: Annotated[
        str | None,
        typer.Option(help="pending, done, skipped, held_out or failed.", show_default=False),
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Recorded firings: who entered or left, when, and what was done about it."""
    from strata.actions.automations import Automations

    with _app() as strata:
        total, rows = Automations(strata, strata.workspace(workspace)).firings(
            automation_id=automation_id, status=status, limit=limit
        )
    data = [
        {
            "id": f.id,
            "automation_id": f.automation_id,
            "customer_id": f.customer_id,
            "change": f.change,
            "at": f.at,
            "status": f.status,
            "outcome": f.outcome,
        }
        for f in rows
    ]
    if json_:
        _print_json({"total": total, "items": data})
        return
    table = Table("id", "automation", "customer", "change", "at", "status", "outcome", box=None)
    for f in data:
        table.add_row(
            *(str(f[k]) for k in ("id", "automation_id", "customer_id", "change", "at", "status")),
            (f["outcome"] or "")[:60],
        )
    out.print(table)
    out.print(f"{total:,} firings in all")


@automations_app.command("run")
def automations_run(
    watch: Annotated[
        bool, typer.Option("--watch", help="Keep running (a worker without `strata serve`).")
    ] = False,
) -> None:
    """Do what is due: scheduled runs, firings after their wait, webhooks and e-mail."""
    from strata.actions.automations import AutomationRunner

    with _app() as strata:
        runner = AutomationRunner(strata)
        while True:
            acted = runner.run_due()
            sent = _deliver(strata)
            if not watch:
                out.print(f"acted on {acted:,} firings; {sent}")
                return
            if not acted:
                time.sleep(1.0)


def _deliver(strata) -> str:
    """One pass of the webhook and e-mail senders (what `strata serve` does in the background)."""
    from strata.actions.email import MailSender
    from strata.actions.webhooks import WebhookSender

    hooks = WebhookSender(strata).deliver_due()
    mails = MailSender(strata).send_due()
    return f"{hooks:,} webhook deliveries, {mails:,} e-mails"


# -- campaigns --------------------------------------------------------------------------------
def _campaign_row(c) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "segment_id": c.segment_id,
        "kind": c.kind,
        "status": c.status,
        "holdout_percent": c.holdout_percent,
        "goal_event": c.goal_event,
        "started_at": c.started_at,
        "ended_at": c.ended_at,
    }


@campaigns_app.command("list")
def campaigns_list(workspace: WorkspaceOpt = None, json_: JsonOpt = False) -> None:
    """Every campaign, newest first."""
    from strata.actions.campaigns import Campaigns

    with _app() as strata:
        rows = [_campaign_row(c) for c in Campaigns(strata, strata.workspace(workspace)).list()]
    if json_:
        _print_json(rows)
        return
    if not rows:
        out.print("no campaigns yet: try `strata campaigns create --help`")
        return
    table = Table("id", "name", "does", "holdout", "goal", "status", "started", box=None)
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["name"],
            r["kind"],
            f"{r['holdout_percent']:g}%",
            r["goal_event"] or "-",
            r["status"],
            str(r["started_at"] or "-"),
        )
    out.print(table)


@campaigns_app.command("create")
def campaigns_create(
    name: Annotated[str, typer.Argument(help="A name for the campaign.")],
    segment: Annotated[str, typer.Option("--segment", help="Who it is for.")],
    do: DoOpt,
    with_: WithOpt = None,
    template: TemplateOpt = None,
    holdout: Annotated[
        float, typer.Option("--holdout", help="Percent of the audience held out (0-90).")
    ] = 10.0,
    goal: Annotated[
        str | None,
        typer.Option("--goal", help="Event type that measures success, e.g. order."),
    ] = None,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Save a draft campaign; `strata campaigns launch ID` starts it."""
    from strata.actions.campaigns import Campaigns

    with _app() as strata:
        c = Campaigns(strata, strata.workspace(workspace)).create(
            name,
            segment,
            action_of(do, with_, template),
            holdout_percent=holdout,
            goal_event=goal,
        )
    if json_:
        _print_json(_campaign_row(c))
    else:
        out.print(
            f"campaign {c.id} {c.name!r} saved as a draft; launch it with "
            f"`strata campaigns launch {c.id}`"
        )


def _campaign_step(command: str):
    def run(
        campaign_id: Annotated[int, typer.Argument(help="The campaign's id.")],
        workspace: WorkspaceOpt = None,
        json_: JsonOpt = False,
    ) -> None:
        from strata.actions.campaigns import Campaigns

        with _app() as strata:
            campaigns = Campaigns(strata, strata.workspace(workspace))
            if command == "remove":
                campaigns.delete(campaign_id)
                out.print(f"campaign {campaign_id} removed")
                return
            c = getattr(campaigns, command)(campaign_id)
        if json_:
            _print_json(_campaign_row(c))
        else:
            out.print(f"campaign {c.id} {c.name!r} is {c.status}")

    run.__doc__ = {
        "launch": "Start: act on every member but the holdout, and on everyone who enters.",
        "end": "Stop acting and keep the results measured up to now.",
        "remove": "Delete a campaign and its automation.",
    }[command]
    return run


for _command in ("launch", "end", "remove"):
    campaigns_app.command(_command)(_campaign_step(_command))


@campaigns_app.command("results")
def campaigns_results(
    campaign_id: Annotated[int, typer.Argument(help="The campaign's id.")],
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Goal rate of the treated group and the holdout, lift with its 95% interval, p-value."""
    from strata.actions.campaigns import Campaigns

    with _app() as strata:
        r = Campaigns(strata, strata.workspace(workspace)).results(campaign_id)
    if json_:
        _print_json(r)
        return
    table = Table("group", "customers", "converted", "rate", box=None, pad_edge=False)
    for group in ("treated", "holdout"):
        g = r[group]
        rate = "-" if g["rate"] is None else f"{g['rate']:.2%}"
        table.add_row(group, f"{g['customers']:,}", f"{g['converted']:,}", rate)
    out.print(table)
    if r["lift"] is None:
        out.print(r.get("note") or "no lift yet: both groups need customers")
        return
    if r["interval"] is None:
        out.print(f"lift {r['lift']:+.2%}: {r.get('note') or 'no interval'}")
        return
    low, high = r["interval"]
    out.print(
        f"lift {r['lift']:+.2%} (95% interval {low:+.2%} to {high:+.2%}), p = {r['p_value']:.3g}"
    )
