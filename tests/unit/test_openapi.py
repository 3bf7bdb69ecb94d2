"""GET /api/openapi.json: a valid OpenAPI 3.1 document built from the declared models (issue #5)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import falcon.testing
import pytest
import schemathesis
from falcon.inspect import inspect_app

from rvssh.app import create_app
from rvssh.models import ConnectRequest, SavedConnectionsRequest, ViewerSessionsResponse
from rvssh.settings import Settings


def document_of(tmp_path: Path, **settings: Any) -> tuple[falcon.App, dict[str, Any]]:
    app = create_app(Settings(state_dir=tmp_path / "state", **settings))
    result = falcon.testing.TestClient(app).simulate_get("/api/openapi.json", headers={"Host": "127.0.0.1"})
    assert result.status_code == 200
    return app, result.json


def test_the_document_is_valid_openapi(tmp_path: Path) -> None:
    _, document = document_of(tmp_path)
    assert document["openapi"].startswith("3.1")
    schemathesis.openapi.from_dict(document).validate()


def test_every_api_route_is_in_the_document(tmp_path: Path) -> None:
    app, document = document_of(tmp_path)
    routes = {
        (info.method.lower(), route.path)
        for route in inspect_app(app).routes
        for info in route.methods
        if not info.internal
    }
    documented = {(method, path) for path, operations in document["paths"].items() for method in operations}
    assert documented == {(method, path) for method, path in routes if path.startswith("/api/")}
    assert {("get", "/"), ("get", "/{filename}")} <= routes - documented  # the page is not the API


def test_every_reference_resolves(tmp_path: Path) -> None:
    _, document = document_of(tmp_path)
    text = json.dumps(document)
    names = {part.split('"')[0] for part in text.split('"$ref": "#/components/schemas/')[1:]}
    assert names and names <= set(document["components"]["schemas"])


def schema_of(document: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    return document["components"]["schemas"][reference["$ref"].rsplit("/", 1)[1]]


def test_bodies_and_answers_come_from_the_models(tmp_path: Path) -> None:
    _, document = document_of(tmp_path)
    connect = document["paths"]["/api/remote/connect"]["post"]
    body = schema_of(document, connect["requestBody"]["content"]["application/json"]["schema"])
    assert set(body["properties"]) == set(ConnectRequest.model_fields)
    assert body["anyOf"] == ConnectRequest.model_json_schema()["anyOf"]
    saved = document["paths"]["/api/remote/connections/saved"]["post"]
    saved_body = schema_of(document, saved["requestBody"]["content"]["application/json"]["schema"])
    assert saved_body["type"] == "array" == SavedConnectionsRequest.model_json_schema()["type"]
    sessions = document["paths"]["/api/remote/viewer/sessions"]["get"]["responses"]["200"]
    answer = schema_of(document, sessions["content"]["application/json"]["schema"])
    assert answer["title"] == ViewerSessionsResponse.__name__
    viewer_session = document["components"]["schemas"]["ViewerSession"]
    assert {"sessionId", "localPort", "startedAt"} <= set(viewer_session["properties"])  # camelCase on the wire


def test_queries_and_path_parameters(tmp_path: Path) -> None:
    _, document = document_of(tmp_path)
    config = {item["name"]: item for item in document["paths"]["/api/remote/config"]["get"]["parameters"]}
    assert config["connection_id"]["required"] is True and config["conda_env"]["required"] is False
    status = document["paths"]["/api/remote/viewer/status/{session_id}"]["get"]["parameters"]
    assert status == [{"name": "session_id", "in": "path", "required": True, "schema": {"type": "string"}}]


@pytest.mark.parametrize("token", [None, "t0ken"])
def test_everything_but_health_and_the_document_needs_the_token(tmp_path: Path, token: str | None) -> None:
    _, document = document_of(tmp_path, token=token)
    secured = {path for path, operations in document["paths"].items() for operation in operations.values() if "security" in operation}
    assert {path for path in document["paths"] if path.startswith("/api/remote")} == secured
    assert "loopback" in document["info"]["description"]


def test_the_document_itself_needs_no_token(tmp_path: Path) -> None:
    app = create_app(Settings(state_dir=tmp_path / "state", token="t0ken"))
    result = falcon.testing.TestClient(app).simulate_get("/api/openapi.json", headers={"Host": "localhost"})
    assert result.status_code == 200
