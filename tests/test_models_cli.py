"""The model commands end to end: the real ``strata`` command on a generated business.

One business of 1,500 customers (DuckDB) is generated once for the module; each
command's JSON has the documented shape, its segments exist, and bad input is one line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

END = "2026-06-30"


@pytest.fixture(scope="module")
def strata(tmp_path_factory):
    home = tmp_path_factory.mktemp("models-cli")
    env = {
        **os.environ,
        "STRATA_HOME": str(home),
        "STRATA_DATABASE_URL": f"sqlite:///{home / 'catalog.db'}",
        "STRATA_WAREHOUSE_URL": f"duckdb://{home / 'warehouse.duckdb'}",
        "STRATA_WORKSPACE": "shop",
        "COLUMNS": "200",
    }
    env.pop("MLFLOW_TRACKING_URI", None)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "strata.cli", *args],
            capture_output=True, text=True, env=env, timeout=600,
        )  # fmt: skip

    made = run("generate", "--customers", "1500", "--seed", "11", "--end", END)
    assert made.returncode == 0, made.stderr
    return run


def _json(result: subprocess.CompletedProcess):
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _one_line_error(result: subprocess.CompletedProcess, text: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and lines[0].startswith("error:"), result.stderr
    assert text in result.stderr.replace("\n", " ")


def test_cluster_prints_k_silhouette_and_named_clusters_that_are_segments(strata):
    out = _json(strata("cluster", "--json", "--as-of", END))
    assert 3 <= out["k"] <= 8 and len(out["clusters"]) == out["k"]
    assert -1 <= out["silhouette"] <= 1
    assert sum(c["customers"] for c in out["clusters"]) == 1500
    for c in out["clusters"]:
        assert c["name"] and c["description"].startswith(c["name"])
    listed = {s["name"]: s for s in _json(strata("segments", "list", "--json"))}
    for c in out["clusters"]:
        assert listed[c["name"]]["customers"] == c["customers"]
    again = _json(strata("cluster", "--json", "--as-of", END))
    assert [c["name"] for c in again["clusters"]] == [c["name"] for c in out["clusters"]]
    assert again["model_version"] == "behaviour@2"


def test_cluster_with_given_features_and_k(strata):
    out = _json(
        strata("cluster", "--features", "recency,monetary", "--k", "3", "--name", "rm",
               "--json", "--as-of", END)
    )  # fmt: skip
    assert out["k"] == 3 and out["features"] == ["recency", "monetary"]
    shown = strata("cluster", "--features", "recency,monetary", "--k", "3", "--name", "rm",
                   "--as-of", END)  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "Feature means" in shown.stdout and "days since last order" in shown.stdout
    _one_line_error(strata("cluster", "--k", "1", "--as-of", END), "clusters")
    _one_line_error(strata("cluster", "--features", "shoe_size"), "unknown feature 'shoe_size'")


def test_predict_clv_prints_both_models_and_makes_vips(strata):
    out = _json(strata("predict", "clv", "--as-of", END, "--json"))
    assert out["customers"] > 0
    assert set(out["bgnbd"]) >= {"r", "alpha", "a", "b", "log_likelihood"}
    assert set(out["gamma_gamma"]) >= {"p", "q", "v"}
    vips = next(s for s in out["segments"] if s["segment"] == "VIPs")
    assert vips["customers"] == -(-out["customers"] * 20 // 100)
    _one_line_error(strata("predict", "clv", "--time-unit", "fortnight"), "time unit")


def test_predict_churn_reports_auc_and_lift_and_makes_risk_bands(strata):
    out = _json(strata("predict", "churn", "--as-of", END, "--json"))
    assert 0.5 < out["auc"] <= 1 and out["lift_top_decile"] > 1
    assert out["validation"] == "out_of_time"
    names = {s["name"] for s in _json(strata("segments", "list", "--json"))}
    assert {"Churn risk: high", "Churn risk: medium", "Churn risk: low"} <= names
    _one_line_error(strata("predict", "churn", "--label", "no_such_column"), "no_such_column")
    _one_line_error(strata("predict", "churn", "--high", "0.2"), "0 < medium < high < 1")
    bands = _json(strata("predict", "churn", "--as-of", END, "--high", "0.2", "--medium",
                         "0.1", "--json"))["bands"]  # fmt: skip
    high = next(b for b in bands if b["segment"] == "Churn risk: high")
    assert high["customers"] > 0


def test_predict_propensity_reports_auc(strata):
    out = _json(strata("predict", "propensity", "--days", "30", "--as-of", END, "--json"))
    assert 0.5 < out["auc"] <= 1 and "lift_top_decile" in out


def test_lookalikes_of_a_segment_can_be_saved(strata):
    seed = _json(strata("cluster", "--json", "--as-of", END))["clusters"][0]["name"]
    out = _json(strata("lookalike", seed, "--top", "25", "--save-as", "Like them", "--json"))
    assert out["seed"] == seed and len(out["top"]) == 25
    assert all(row["alike"] for row in out["top"])
    shown = _json(strata("segments", "show", "Like them", "--json"))
    assert shown["kind"] == "static" and shown["customers"] == 25
    _one_line_error(strata("lookalike", "Nobody"), "Nobody")


def test_anomalies_and_models_list(strata):
    out = _json(strata("anomalies", "--as-of", END, "--days", "60", "--json"))
    assert {"as_of", "anomalies", "checked"} <= set(out)
    assert all(flag["sentence"] for flag in out["anomalies"])
    _one_line_error(strata("anomalies", "--days", "3"), "days")
    models = _json(strata("models", "list", "--json"))
    assert {"behaviour", "clv"} <= {m["name"] for m in models}


def test_a_customer_profile_shows_their_predictions(strata):
    best = _json(strata("predict", "clv", "--as-of", END, "--json"))["top_customers"][0]
    profile = _json(strata("customers", "show", best["external_id"], "--json"))
    scores = {p["prediction_type"]: p for p in profile["predictions"]}
    assert {"clv", "p_alive", "expected_purchases"} <= set(scores)
    assert scores["clv"]["value"] == pytest.approx(best["clv"], abs=0.01)
    assert scores["clv"]["details"]["frequency"] >= 0
    text = strata("customers", "show", best["external_id"])
    assert text.returncode == 0 and "Predictions" in text.stdout
