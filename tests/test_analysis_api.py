"""Every analysis through the API and the CLI: the same tables as the library, CSV files
named after the analysis, the segment and the day, and one-line errors.

One generated business (600 customers) with RFM and two rule segments evaluated as of
2026-03-31 and 2026-06-30 serves every test here.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from strata.analysis import analyses, records, run_analysis
from strata.context import Strata
from strata.demo import generate_and_load
from strata.segments.engine import Segments, run_rfm
from strata.segments.nodes import SegmentSpec, parse_rule
from strata.segments.reference import ReferenceTime
from tests.conftest import ApiServer, api_settings

DAYS = ("2026-03-31", "2026-06-30")
AS_OF = DAYS[-1]
RULES = {
    "Big spenders": {"type": "trait", "trait": "total_revenue", "op": "gte", "value": 300},
    "Software": {"type": "attribute", "attribute": "industry", "op": "eq", "value": "Software"},
}
#: Parameters each analysis is called with here; every registered analysis has a case.
CASES: dict[str, dict] = {
    "growth": {"segment": "Champions", "period": "month"},
    "revenue": {"segments": ["Champions", "Big spenders"]},
    "pareto": {"segment": "Big spenders", "points": 10},
    "event-mix": {"segment": "Champions"},
    "purchase-frequency": {"segment": "Champions"},
    "order-gaps": {"segment": "Champions"},
    "heatmap": {"segment": "Champions"},
    "top-products": {"segment": "Champions", "limit": 5},
    "breakdown": {"segment": "Champions", "attribute": "country"},
    "overlap": {"segments": ["Champions", "Big spenders", "Software"]},
    "overlap-with": {"segment": "Big spenders"},
    "compare": {"segments": ["Champions", "At Risk"], "metric": "total_revenue"},
    "cohorts": {"segment": "Big spenders"},
    "journeys": {"segment": "Champions"},
    "rfm-migration": {"from_date": DAYS[0]},
    "insights": {"segment": "Big spenders"},
}


def _build(home):
    """The shop in ``home``: its settings, and each case's tables from the library."""
    settings = api_settings(home)
    with Strata(settings) as app:
        generate_and_load(app, customers=600, seed=11, end=pd.Timestamp(AS_OF).date())
        segs = Segments(app)
        for name, rule in RULES.items():
            segs.save(SegmentSpec(name=name, rule=parse_rule(rule)), evaluate=False)
        for day in DAYS:
            run_rfm(segs, as_of=ReferenceTime.parse(day))
            segs.refresh(list(RULES), as_of=ReferenceTime.parse(day))
        expected = {
            name: run_analysis(app, None, name, analyses()[name].params(as_of=AS_OF, **values))[0]
            for name, values in CASES.items()
        }
        return settings, app.workspace().id, expected


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    settings, ws_id, expected = _build(tmp_path_factory.mktemp("analyses-api"))
    server = ApiServer(settings)
    yield server, ws_id, expected
    server.close()


def _same(a, b) -> bool:
    """Equal, floats within 1e-9 (a warehouse may add them up in another order)."""
    if isinstance(a, float) or isinstance(b, float):
        return a == pytest.approx(b, rel=1e-9, abs=1e-12)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _query(values: dict) -> dict:
    return {"as_of": AS_OF, **values}


def test_every_analysis_has_a_case():
    assert set(CASES) == set(analyses())


def test_every_analysis_answers_over_http_with_the_library_tables(shop):
    server, ws, expected = shop
    client = server.user_with_role(ws, "analyst")
    listed = client.get(f"/api/v1/workspaces/{ws}/analyses")
    assert listed.status_code == 200
    assert [a["name"] for a in listed.json()] == list(analyses())
    for name, values in CASES.items():
        r = client.get(f"/api/v1/workspaces/{ws}/analyses/{name}", params=_query(values))
        assert r.status_code == 200, (name, r.text)
        body = r.json()
        assert body["analysis"] == name and body["as_of"] == AS_OF
        tables = expected[name]
        assert list(body["tables"]) == list(tables), name
        for key, frame in tables.items():
            assert body["tables"][key]["columns"] == list(frame.columns), (name, key)
            assert _same(body["tables"][key]["rows"], records(frame)), (name, key)
        assert len(next(iter(tables.values()))) > 0, f"{name}: empty main table on the shop"


def test_csv_download_is_named_after_analysis_segment_and_day(shop):
    server, ws, expected = shop
    client = server.user_with_role(ws, "marketer")
    url = f"/api/v1/workspaces/{ws}/analyses/growth"
    r = client.get(url, params=_query({**CASES["growth"], "format": "csv"}))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == (
        f'attachment; filename="growth-Champions-{AS_OF}.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(r.text)))
    frame = expected["growth"]["growth"]
    assert len(rows) == len(frame)
    assert [int(x["members"]) for x in rows] == frame["members"].tolist()
    r = client.get(url, params=_query({**CASES["growth"], "format": "csv", "table": "summary"}))
    assert r.headers["content-disposition"].endswith(f'"growth-summary-Champions-{AS_OF}.csv"')
    r = client.get(url, params=_query({**CASES["growth"], "format": "csv", "table": "nope"}))
    assert r.status_code == 422
    assert "no table 'nope'" in r.json()["detail"]
    many = client.get(
        f"/api/v1/workspaces/{ws}/analyses/overlap",
        params=_query({**CASES["overlap"], "format": "csv"}),
    )
    assert many.headers["content-disposition"].endswith(
        f'"overlap-Champions-Big_spenders-Software-{AS_OF}.csv"'
    )


def test_viewers_get_aggregates_but_no_breakdown_of_personal_data(shop):
    server, ws, _ = shop
    viewer = server.user_with_role(ws, "viewer")
    url = f"/api/v1/workspaces/{ws}/analyses/breakdown"
    assert viewer.get(url, params=_query(CASES["breakdown"])).status_code == 200
    r = viewer.get(url, params=_query({"segment": "Champions", "attribute": "birth_date"}))
    assert r.status_code == 403
    assert "personal data" in r.json()["detail"]
    analyst = server.user_with_role(ws, "analyst")
    r = analyst.get(url, params=_query({"segment": "Champions", "attribute": "birth_date"}))
    assert r.status_code == 200, r.text


def test_bad_input_is_a_problem_with_one_line(shop):
    server, ws, _ = shop
    client = server.owner()
    base = f"/api/v1/workspaces/{ws}/analyses"
    r = client.get(f"{base}/growth", params={"segment": "Nobody"})
    assert r.status_code == 404
    assert r.json()["detail"].startswith("no segment 'Nobody'")
    r = client.get(f"{base}/growth", params={"segment": "Champions", "period": "fortnight"})
    assert r.status_code == 422
    assert "period" in r.json()["detail"]
    r = client.get(f"{base}/growth", params={"segment": "Champions", "colour": "red"})
    assert r.status_code == 422
    assert "colour" in r.json()["detail"]
    r = client.get(f"{base}/breakdown", params={"attribute": "shoe_size"})
    assert r.status_code == 422
    assert "\n" not in r.json()["detail"]
    assert client.get(f"{base}/nothing").status_code == 404


# -- the CLI ---------------------------------------------------------------------------------
def _strata(settings, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "STRATA_HOME": str(settings.home),
        "STRATA_DATABASE_URL": settings.database_url,
        "STRATA_WAREHOUSE_URL": settings.warehouse_url,
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "strata.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.fixture(scope="module")
def cli_shop(tmp_path_factory):
    """The shop again, in stores no server holds (a DuckDB file has one process at a time)."""
    settings, _, expected = _build(tmp_path_factory.mktemp("analyses-cli"))
    return settings, expected


def test_cli_json_and_csv_match_the_library(cli_shop, tmp_path):
    settings, expected = cli_shop
    result = _strata(
        settings, "analyze", "growth", "Champions", "--period", "month", "--as-of", AS_OF, "--json"
    )
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["tables"]["growth"] == json.loads(json.dumps(records(expected["growth"]["growth"])))
    result = _strata(
        settings,
        "analyze",
        "overlap",
        "Champions",
        "Big spenders",
        "Software",
        "--as-of",
        AS_OF,
        "--csv",
        "--dir",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    files = sorted(p.name for p in tmp_path.iterdir())
    assert f"overlap-Champions-Big_spenders-Software-{AS_OF}.csv" in files
    assert len(files) == len(expected["overlap"])
    written = pd.read_csv(tmp_path / f"overlap-Champions-Big_spenders-Software-{AS_OF}.csv")
    assert len(written) == len(next(iter(expected["overlap"].values())))


def test_cli_lists_every_analysis_and_errors_in_one_line(cli_shop):
    settings, _ = cli_shop
    helped = _strata(settings, "analyze", "--help")
    assert helped.returncode == 0
    for name in analyses():
        assert name in helped.stdout
    bad = _strata(settings, "analyze", "growth", "Nobody", "--as-of", AS_OF)
    assert bad.returncode != 0
    assert "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines() == [
        "error: no segment 'Nobody' in workspace 'default': give a name or id from "
        "`strata segments list`"
    ]
    bad = _strata(settings, "analyze", "growth", "Champions", "--since", "tomorrow")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "--since" in bad.stderr
