"""The web app's side of the server: its schema file is current, and ``strata serve``
serves a build at ``/`` without shadowing the API."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from tests.conftest import ApiServer, api_settings

ROOT = Path(__file__).resolve().parent.parent


def _export_openapi():
    spec = importlib.util.spec_from_file_location(
        "export_openapi", ROOT / "scripts" / "export_openapi.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_web_apps_schema_file_is_the_apis_schema():
    """The client's types are generated from web/openapi.json: it must be the app's own."""
    current = (ROOT / "web" / "openapi.json").read_text(encoding="utf-8")
    assert current == _export_openapi().render(), (
        "web/openapi.json is out of date: run .venv/bin/python scripts/export_openapi.py"
    )
    assert "/api/v1/workspaces/{workspace_id}/segments" in json.loads(current)["paths"]


@pytest.fixture
def built(tmp_path):
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><div id=root>strata app</div>")
    (dist / "assets" / "app.js").write_text("console.log('strata')")
    return dist


def test_the_build_is_served_at_root_and_app_routes_load_its_page(tmp_path, built):
    server = ApiServer(api_settings(tmp_path), web_dist=built)
    client = server.client()
    try:
        for path in ("/", "/login", "/w/1/segments"):
            r = client.get(path)
            assert r.status_code == 200 and "strata app" in r.text, path
        js = client.get("/assets/app.js")
        assert js.status_code == 200 and "console.log" in js.text
        assert client.get("/assets/missing.js").status_code == 404
    finally:
        server.close()


def test_the_api_keeps_its_own_answers_next_to_the_app(tmp_path, built):
    server = ApiServer(api_settings(tmp_path), web_dist=built)
    client = server.client()
    try:
        assert client.get("/api/v1/health").json()["status"] == "ok"
        missing = client.get("/api/v1/no-such-thing")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")
        assert client.get("/api/v1/auth/me").status_code == 401
        assert client.get("/v1/nothing").status_code in {404, 405}
        assert "strata app" not in client.get("/v1/nothing").text
    finally:
        server.close()


def test_without_a_build_nothing_is_mounted(tmp_path):
    server = ApiServer(api_settings(tmp_path), web_dist=tmp_path / "no-build")
    try:
        client = server.client()
        assert client.get("/").status_code == 404
        assert client.get("/api/v1/health").status_code == 200
    finally:
        server.close()


def test_serve_can_serve_a_build_from_elsewhere(tmp_path, built, monkeypatch):
    """``strata serve --web-dist`` reaches every worker through STRATA_WEB_DIST."""
    from strata.api.serve import app_from_env

    monkeypatch.setenv("STRATA_HOME", str(tmp_path))
    monkeypatch.delenv("STRATA_DATABASE_URL", raising=False)
    monkeypatch.delenv("STRATA_WAREHOUSE_URL", raising=False)
    monkeypatch.setenv("STRATA_WEB_DIST", str(built))
    app = app_from_env()
    (mounted,) = [route for route in app.routes if getattr(route, "name", "") == "web"]
    assert Path(mounted.app.directory) == built
