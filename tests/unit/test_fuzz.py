"""Fuzz the whole API from its own OpenAPI document: no 5xx, no traceback, answers as documented.

The app runs in process with a fake ssh that fails like a refused login, so
connects end in 401 and nothing reaches a network. Each operation gets
FUZZ_EXAMPLES requests that fit the schema and as many that do not, which
keeps the whole run well under a minute on 2 cores.
"""

from __future__ import annotations

from typing import Any

import falcon
import falcon.testing
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from rvssh.app import create_app
from rvssh.settings import Settings
from tests import callers
from tests.unit.api_document import HEADERS, openapi_document

FUZZ_EXAMPLES = 25
# Host the in-process WSGI client sends (werkzeug's default is localhost).


def operations_to_fuzz() -> list[tuple[str, str, schemathesis.GenerationMode]]:
    """Return (METHOD, path, mode) for every operation of the document of a throwaway app.

    Data that does not fit the schema exists only for operations with a body
    or a query (a path parameter is any string).
    """
    document = openapi_document()
    cases = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            cases.append((method.upper(), path, schemathesis.GenerationMode.POSITIVE))
            if "requestBody" in operation or any(item["in"] == "query" for item in operation["parameters"]):
                cases.append((method.upper(), path, schemathesis.GenerationMode.NEGATIVE))
    return cases


@pytest.fixture(scope="module")
def openapi_schema(tmp_path_factory: pytest.TempPathFactory, session_fake_ssh: Any) -> schemathesis.BaseSchema:
    state = tmp_path_factory.mktemp("fuzz") / "state"
    app: falcon.App = create_app(
        Settings(state_dir=state, ssh_binary=str(session_fake_ssh.binary), connect_timeout=5), caller_uid=callers.owner
    )
    return schemathesis.openapi.from_wsgi("/api/openapi.json", app, headers=HEADERS)


@pytest.mark.parametrize(("method", "path", "mode"), operations_to_fuzz())
def test_no_request_gives_a_server_error(
    openapi_schema: schemathesis.BaseSchema, method: str, path: str, mode: schemathesis.GenerationMode
) -> None:
    operation = openapi_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def request_once(case: schemathesis.Case) -> None:
        response = case.call(headers=HEADERS)
        assert response.status_code < 500, (case.method, case.formatted_path, response.status_code, response.text[:300])
        assert "Traceback" not in response.text
        # Answers match the documented models (200) or {"detail": ...} (errors).
        case.validate_response(
            response, checks=[not_a_server_error, response_schema_conformance, content_type_conformance]
        )

    request_once()
