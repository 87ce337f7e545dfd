"""Every setting and every command is documented, and the CLI page is current."""

from __future__ import annotations

import re

import typer

from strata.cli import app
from strata.config import SETTINGS
from tests.conftest import ROOT


def test_every_setting_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for name in SETTINGS:
        assert f"`{name}`" in readme, name


def test_readme_opens_with_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```")[1]
    assert "make demo" in first_block and "make test" in first_block


def test_every_command_and_option_is_in_docs_cli():
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    from make_cli_doc import commands

    doc = (ROOT / "docs" / "cli.md").read_text()
    root = typer.main.get_command(app)
    for path, cmd in commands(root):
        assert f"## `{' '.join(path)}`" in doc, path
        for param in cmd.params:
            for opt in param.opts:
                if opt.startswith("--"):
                    assert re.search(rf"{re.escape(opt)}\b", doc), (path, opt)


def test_every_import_report_key_is_documented():
    doc = (ROOT / "docs" / "import.md").read_text()
    for key in (
        "rows_read",
        "customers_created",
        "customers_updated",
        "orders",
        "refunds",
        "events_created",
        "duplicates_skipped",
        "rows_skipped",
        "net_revenue",
    ):
        assert f"`{key}`" in doc, key


def test_docs_api_lists_every_route_and_the_role_table_as_the_code_has_them():
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    from make_api_doc import MARKER, render

    doc = (ROOT / "docs" / "api.md").read_text()
    assert MARKER in doc
    assert doc.split(MARKER)[1] == render().split(MARKER)[1], (
        "docs/api.md is out of date: run .venv/bin/python scripts/make_api_doc.py"
    )


def test_docs_analysis_describes_every_analysis_as_the_code_has_it():
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    from make_analysis_doc import MARKER, render

    doc = (ROOT / "docs" / "analysis.md").read_text()
    assert MARKER in doc
    assert doc.split(MARKER)[1] == render().split(MARKER)[1], (
        "docs/analysis.md is out of date: run .venv/bin/python scripts/make_analysis_doc.py"
    )


def test_every_file_the_readme_links_or_shows_exists():
    """The README's links and screenshots name files of the checkout."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)", readme)
    local = [t for t in targets if "://" not in t]
    assert any(t.startswith("docs/screens/") for t in local)
    missing = [t for t in local if not (ROOT / t).exists()]
    assert not missing, f"the README names files that do not exist: {missing}"
