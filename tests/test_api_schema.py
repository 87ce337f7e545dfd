"""Property-based run against the OpenAPI schema (schemathesis) through real HTTP:
whatever the generated input, no route answers 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from strata.demo import generate_and_load
from tests.conftest import ApiServer, api_settings

#: Generated requests per operation (derandomized: the same ones on every run).
EXAMPLES = 15
#: Routes that would end the run's own session or workspace; covered by their own tests.
SKIPPED = {
    ("POST", "/api/v1/auth/logout"),
    ("POST", "/api/v1/auth/password"),
    ("DELETE", "/api/v1/workspaces/{workspace_id}"),
}


class Served:
    def __init__(self, server: ApiServer):
        self.server = server
        owner = server.owner()
        self.token = owner.headers["authorization"].split(" ", 1)[1]
        ws = owner.post("/api/v1/workspaces", json={"name": "fuzz"}).json()["id"]
        generate_and_load(server.service.app, customers=200, workspace="fuzz")
        keys = {
            kind: owner.post(
                f"/api/v1/workspaces/{ws}/keys", json={"name": kind, "kind": kind}
            ).json()["key"]
            for kind in ("write", "read")
        }
        self.keys = keys

    def headers(self, path: str) -> dict[str, str]:
        if path.startswith("/v1/"):
            return {"Authorization": f"Bearer {self.keys['write']}"}
        if "/profiles/" in path:
            return {"Authorization": f"Bearer {self.keys['read']}"}
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    server = ApiServer(api_settings(tmp_path_factory.mktemp("schema")))
    yield Served(server)
    server.close()


def test_no_input_makes_a_route_answer_5xx(served):
    schema = schemathesis.openapi.from_url(f"{served.server.url}/api/v1/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIPPED:
            continue
        operations += 1

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        @given(case=operation.as_strategy())
        def run(case):
            response = case.call(
                base_url=served.server.url, headers=served.headers(case.path), timeout=60
            )
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} -> {response.status_code}: "
                    f"{response.text[:200]}"
                )

        run()
    assert operations > 30
    assert failures == []
