"""``strata analyze NAME``: every analysis of :mod:`strata.analysis` as a command.

The commands are made from each analysis's parameter model, as the API's routes are:
a ``segment`` parameter becomes the SEGMENT argument, ``segments`` the SEGMENTS…
arguments, every other parameter an option (``--period week``). Output is tables for
people, ``--json`` for scripts, or ``--csv`` files named after the analysis, the
segment and the day.
"""

from __future__ import annotations

import datetime as dt
import functools
import inspect
import json
import sys
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import click
import typer
from rich.console import Console
from rich.table import Table

from strata.analysis import Spec, analyses, csv_text, file_stem, records, run_analysis
from strata.errors import InputError

analyze_app = typer.Typer(no_args_is_help=True)

out = Console()
#: Rows of a table shown on screen (``--json`` and ``--csv`` have them all).
SHOWN_ROWS = 40
#: Parameters every command has, whatever the analysis.
_COMMON = {"as_of"}


def _option_type(annotation: Any) -> tuple[Any, dict[str, Any]]:
    """The type Typer parses a parameter as, and extra ``typer.Option`` settings."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return _option_type(args[0])
    if origin is typing.Annotated:
        return _option_type(args[0])
    if origin is Literal:
        return annotation, {}
    if origin is list:
        return list[str], {}
    if annotation is dt.date:
        return str, {"metavar": "YYYY-MM-DD"}
    if annotation in (str, int, float, bool):
        return annotation, {}
    raise TypeError(f"analysis parameters cannot be of type {annotation!r}")  # programming error


def _parameters(spec: Spec) -> list[inspect.Parameter]:
    params = []
    for name, field in spec.params.model_fields.items():
        if name in _COMMON:
            continue
        kind, extra = _option_type(field.annotation)
        default = None if field.is_required() else field.default
        help_text = field.description or ""
        if name == "segment":
            info = typer.Argument(help=help_text, show_default=False, metavar="[SEGMENT]")
            kind = str | None
        elif name == "segments":
            info = typer.Argument(help=help_text, show_default=False, metavar="[SEGMENTS]...")
            kind = list[str] | None
            default = None
        else:
            flag = "--" + name.replace("_", "-")
            decls = [f"{flag}/--no-{flag[2:]}"] if kind is bool else [flag]
            info = typer.Option(*decls, help=help_text, show_default=default is not None, **extra)
            if default is None and not field.is_required():
                kind = kind | None
        params.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=Annotated[kind, info],
                default=inspect.Parameter.empty if field.is_required() else default,
            )
        )
    common = {
        "workspace": Annotated[
            str | None,
            typer.Option(
                "--workspace",
                "-w",
                help="Workspace (default: $STRATA_WORKSPACE).",
                show_default=False,
            ),
        ],
        "as_of": Annotated[
            str | None,
            typer.Option(
                "--as-of",
                help="Reference time: YYYY-MM-DD (the end of that day), "
                "an ISO date-time (UTC), or 'now'.",
                show_default=False,
            ),
        ],
        "as_json": Annotated[bool, typer.Option("--json", help="Print every table as JSON.")],
        "as_csv": Annotated[
            bool,
            typer.Option(
                "--csv",
                help="Write every table to a CSV file named after the "
                "analysis, the segment and the day (see --dir).",
            ),
        ],
        "directory": Annotated[
            Path, typer.Option("--dir", help="Folder for the --csv files.", file_okay=False)
        ],
    }
    defaults = {"as_json": False, "as_csv": False, "directory": Path(".")}
    for name, annotation in common.items():
        params.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=annotation,
                default=defaults.get(name),
            )
        )
    # Required options first, as Python signatures need.
    return sorted(params, key=lambda p: p.default is not inspect.Parameter.empty)


def _command(spec: Spec):
    own = set(spec.params.model_fields)

    def command(**kwargs: Any) -> None:
        from pydantic import ValidationError

        from strata.context import Strata

        values = {k: v for k, v in kwargs.items() if k in own and v is not None}
        if "segments" in values:
            values["segments"] = list(values["segments"])
        try:
            params = spec.params(**values)
        except ValidationError as exc:
            raise InputError(_one_line(exc)) from None
        with Strata() as app:
            tables, an = run_analysis(app, kwargs["workspace"], spec.name, params)
            stems = {
                key: file_stem(an, spec, params, None if i == 0 else key)
                for i, key in enumerate(tables)
            }
            as_of = str(an.ref)
        if kwargs["as_csv"]:
            folder: Path = kwargs["directory"]
            folder.mkdir(parents=True, exist_ok=True)
            for key, frame in tables.items():
                path = folder / f"{stems[key]}.csv"
                path.write_text(csv_text(frame), encoding="utf-8")
                out.print(f"wrote {path} ({len(frame):,} rows)", highlight=False)
            return
        if kwargs["as_json"]:
            data = {
                "analysis": spec.name,
                "as_of": as_of,
                "params": params.model_dump(mode="json"),
                "tables": {key: records(frame) for key, frame in tables.items()},
            }
            sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
            return
        for key, frame in tables.items():
            _show(f"{spec.name} · {key} · as of {as_of}", frame)

    command.__signature__ = inspect.Signature(_parameters(spec))  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in _parameters(spec)}
    command.__doc__ = (spec.run.__doc__ or spec.summary).strip()
    command.__name__ = spec.name.replace("-", "_")
    return command


def _one_line(exc: Exception) -> str:
    """A pydantic error as one line: which option, and what was wrong with it."""
    parts = []
    for error in getattr(exc, "errors", lambda: [])():
        where = ".".join(str(x) for x in error.get("loc", ())) or "input"
        parts.append(f"--{where.replace('_', '-')}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or str(exc)


def _show(title: str, frame) -> None:
    table = Table(title=title, title_justify="left")
    for column in frame.columns:
        table.add_column(str(column), overflow="fold")
    for row in records(frame.head(SHOWN_ROWS)):
        table.add_row(*(_fmt(v) for v in row.values()))
    out.print(table)
    if len(frame) > SHOWN_ROWS:
        out.print(f"… {len(frame) - SHOWN_ROWS:,} more rows (--json or --csv for all)")


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1 else f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, list):
        return " & ".join(map(str, value))
    return str(value)


@functools.cache
def analyze_group() -> click.Group:
    """The ``strata analyze`` commands, one per analysis (``strata.cli`` delegates here)."""
    for spec in analyses().values():
        analyze_app.command(spec.name, help=_help(spec))(_command(spec))
    return typer.main.get_group(analyze_app)


def _help(spec: Spec) -> str:
    return (spec.run.__doc__ or spec.summary).strip()
