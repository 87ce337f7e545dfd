"""Shared fixtures: every warehouse test runs on DuckDB and, when a server is given, on
PostgreSQL (``STRATA_TEST_POSTGRES_URL``), each test in a database of its own."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

from strata.config import Settings
from strata.context import Strata

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
ONLINE_RETAIL = DATA / "online_retail" / "online_retail_2010-12_2011-12.csv.gz"
CDNOW_MASTER = DATA / "cdnow" / "CDNOW_master.txt"
CDNOW_SAMPLE = DATA / "cdnow" / "CDNOW_sample.txt"
HEADERS = DATA / "export_headers"

POSTGRES_URL = os.environ.get("STRATA_TEST_POSTGRES_URL")


def _needs_data(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"real data set not found at {path} (../shared/data beside the project)")


@pytest.fixture
def postgres_database():
    """A fresh PostgreSQL database for one test; its URL."""
    if not POSTGRES_URL:
        pytest.skip("STRATA_TEST_POSTGRES_URL is not set: no PostgreSQL server to test against")
    name = f"strata_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = POSTGRES_URL.rpartition("/")
    yield f"{base}/{name}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse_url(request, tmp_path):
    if request.param == "duckdb":
        return f"duckdb://{tmp_path / 'warehouse.duckdb'}"
    return request.getfixturevalue("postgres_database")


@pytest.fixture
def settings(tmp_path, warehouse_url) -> Settings:
    return Settings(
        home=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'catalog.db'}",
        warehouse_url=warehouse_url,
    )


@pytest.fixture
def app(settings):
    with Strata(settings) as strata:
        yield strata


def duckdb_settings(home: Path) -> Settings:
    """A SQLite catalog and a DuckDB warehouse in ``home``."""
    return Settings(
        home=home,
        database_url=f"sqlite:///{home / 'catalog.db'}",
        warehouse_url=f"duckdb://{home / 'warehouse.duckdb'}",
    )


@pytest.fixture
def duck_settings(tmp_path) -> Settings:
    """DuckDB only, for tests about files rather than warehouses."""
    return duckdb_settings(tmp_path)


@pytest.fixture
def duck_app(duck_settings):
    with Strata(duck_settings) as strata:
        yield strata


@pytest.fixture
def cli(settings):
    """Run the real ``strata`` command in a subprocess with this test's stores."""

    def run(*args: str, check: bool = False) -> subprocess.CompletedProcess:
        env = {
            **os.environ,
            "STRATA_HOME": str(settings.home),
            "STRATA_DATABASE_URL": settings.database_url,
            "STRATA_WAREHOUSE_URL": settings.warehouse_url,
            "COLUMNS": "200",
        }
        result = subprocess.run(
            [sys.executable, "-m", "strata.cli", *map(str, args)],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"strata {' '.join(map(str, args))} failed: {result.stderr}")
        return result

    return run


#: JVM options for Spark in tests: the data is tiny, so the quick compiler alone (C1)
#: starts Spark in about half the time and leaves the CPU to the tests.
SPARK_TEST_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


@pytest.fixture(scope="session")
def spark_session():
    """The process's one Spark session, started once for the whole run (it takes seconds).

    ``JAVA_TOOL_OPTIONS`` carries ``SPARK_TEST_JVM`` to this JVM and to the ones that
    ``strata`` subprocesses start.
    """
    import shutil

    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("Java is not installed, so Spark cannot start")
    from strata.warehouse.spark import shared_session

    with pytest.MonkeyPatch.context() as mp:
        options = os.environ.get("JAVA_TOOL_OPTIONS", "")
        mp.setenv("JAVA_TOOL_OPTIONS", f"{options} {SPARK_TEST_JVM}".strip())
        yield shared_session("local[2]")


@pytest.fixture
def spark_url(spark_session, tmp_path) -> str:
    """A Spark warehouse in a fresh folder of this test, on the shared session."""
    return f"spark://local[2]?location={tmp_path / 'spark'}"


# -- the API, served for real over HTTP ---------------------------------------------------------
class ApiServer:
    """A real uvicorn server on a free port of 127.0.0.1, in a thread of this process."""

    def __init__(self, settings: Settings, *, web_dist: Path | None = None):
        import socket
        import threading

        import uvicorn

        from strata.api import create_app
        from strata.api.serve import ensure_owner

        self.app = create_app(settings, web_dist=web_dist)
        self.service = self.app.state.service
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )
        self.thread.start()
        import time

        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the API server did not start")
            time.sleep(0.01)
        self.owner_email, self.owner_password = ensure_owner(self.service.app)
        self._clients: list = []

    def client(self, token: str | None = None, **kwargs):
        import httpx

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        c = httpx.Client(base_url=self.url, headers=headers, timeout=60, **kwargs)
        self._clients.append(c)
        return c

    def login(self, email: str, password: str):
        """A client signed in as ``email`` (bearer token)."""
        r = self.client().post("/api/v1/auth/login", json={"email": email, "password": password})
        assert r.status_code == 200, r.text
        return self.client(r.json()["token"])

    def owner(self):
        return self.login(self.owner_email, self.owner_password)

    def user_with_role(self, workspace_id: int, role: str, email: str | None = None):
        """A new user with ``role`` in the workspace; a client signed in as them."""
        email = email or f"{role}-{uuid.uuid4().hex[:8]}@example.com"
        password = "correct horse battery staple"
        r = self.owner().post(
            f"/api/v1/workspaces/{workspace_id}/members",
            json={"email": email, "role": role, "password": password},
        )
        assert r.status_code == 201, r.text
        return self.login(email, password)

    def close(self) -> None:
        for c in self._clients:
            c.close()
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()


def api_settings(tmp_path: Path, warehouse_url: str | None = None, **extra) -> Settings:
    return Settings(
        home=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'catalog.db'}",
        warehouse_url=warehouse_url or f"duckdb://{tmp_path / 'warehouse.duckdb'}",
        cookie_secure=False,
        **extra,
    )


@pytest.fixture
def api(tmp_path):
    """The API over DuckDB and SQLite in ``tmp_path``, served over real HTTP."""
    server = ApiServer(api_settings(tmp_path))
    yield server
    server.close()


# -- Online Retail, imported once for the tests that only read it ------------------------------
#: The days RFM is saved as of in ``online_retail``, in this order (a migration between them).
RETAIL_RFM_DAYS = ("2011-06-30", "2011-12-10")


@pytest.fixture(scope="session")
def online_retail(tmp_path_factory) -> Settings:
    """Online Retail imported into a DuckDB warehouse, RFM saved as of each of
    ``RETAIL_RFM_DAYS`` in turn; the settings. Tests must only read it."""
    _needs_data(ONLINE_RETAIL)
    from strata.ingest.pipeline import run_import
    from strata.segments.engine import Segments, run_rfm
    from strata.segments.reference import ReferenceTime

    settings = duckdb_settings(tmp_path_factory.mktemp("online-retail"))
    with Strata(settings) as app:
        run_import(app, ONLINE_RETAIL)
        for day in RETAIL_RFM_DAYS:
            run_rfm(Segments(app), as_of=ReferenceTime.parse(day))
    return settings


@pytest.fixture(scope="session")
def retail_invoice_table():
    """Online Retail from the CSV alone (pandas, no Strata), one row per invoice with a
    customer: ``InvoiceNo``, ``customer`` (the external id), ``at`` (its first line's
    time), ``revenue`` (the sum of quantity × unit price) and ``is_order`` (not a
    cancellation, whose number starts with C)."""
    import pandas as pd

    _needs_data(ONLINE_RETAIL)
    lines = pd.read_csv(
        ONLINE_RETAIL, dtype={"InvoiceNo": str, "StockCode": str, "CustomerID": str}
    )
    lines = lines[lines.CustomerID.notna()].copy()
    lines["customer"] = lines.CustomerID.str.removesuffix(".0")
    lines["amount"] = lines.Quantity * lines.UnitPrice
    lines["at"] = pd.to_datetime(lines.InvoiceDate)
    inv = (
        lines.groupby("InvoiceNo")
        .agg(customer=("customer", "first"), at=("at", "min"), revenue=("amount", "sum"))
        .reset_index()
    )
    inv["is_order"] = ~inv.InvoiceNo.str.upper().str.startswith("C")
    return inv
