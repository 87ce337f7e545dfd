"""Write docs/cli.md from the ``strata`` command's own help (datasette's way).

Run: ``.venv/bin/python scripts/make_cli_doc.py``. ``tests/test_docs.py`` checks the page
names every command and option.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer
from typer.testing import CliRunner

from strata.cli import app


def commands(group, prefix=("strata",)):
    """(path, command) for every command under ``group``, depth first."""
    import click
    import typer.core

    ctx = click.Context(group)  # list_commands, not .commands: `analyze` makes them lazily
    for name in sorted(group.list_commands(ctx)):
        cmd = group.get_command(ctx, name)
        path = (*prefix, name)
        yield path, cmd
        if isinstance(cmd, typer.core.TyperGroup):
            yield from commands(cmd, path)


def render() -> str:
    os.environ["COLUMNS"] = "100"
    os.environ["NO_COLOR"] = "1"
    runner = CliRunner()
    root = typer.main.get_command(app)
    parts = [
        "# The `strata` command\n",
        "Generated from `strata … --help` by `scripts/make_cli_doc.py`. Every command "
        "takes `--workspace/-w NAME` where it reads a workspace (default: "
        "`$STRATA_WORKSPACE`, else `default`), and prints JSON with `--json` where offered."
        " An error prints one line `error: …` and exits 2 (bad input), 3 (not found) or "
        "1.\n",
    ]
    for path, _ in [(("strata",), root), *commands(root)]:
        result = runner.invoke(app, [*path[1:], "--help"], prog_name="strata")
        text = "\n".join(line.rstrip() for line in result.output.strip("\n").splitlines())
        parts.append(f"## `{' '.join(path)}`\n\n```text\n{text}\n```\n")
    return "\n".join(parts)


if __name__ == "__main__":
    target = Path(__file__).resolve().parent.parent / "docs" / "cli.md"
    target.write_text(render())
    print(f"wrote {target}")
