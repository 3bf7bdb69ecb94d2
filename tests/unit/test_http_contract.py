"""The HTTP contract without ssh: error shapes, 422 lists, status mapping."""

from __future__ import annotations

from pathlib import Path

import falcon
import falcon.testing
import pytest

from rvssh import errors
from rvssh.app import create_app
from rvssh.http.errors import STATUS_BY_ERROR, status_for
from rvssh.settings import Settings
from rvssh.ssh import errors as ssh_errors
from tests import callers


@pytest.fixture
def client(tmp_path: Path) -> falcon.testing.TestClient:
    # The app answers only requests addressed to a loopback name (issue #5).
    return falcon.testing.TestClient(create_app(Settings(state_dir=tmp_path / "state"), caller_uid=callers.owner), headers={"Host": "127.0.0.1"})


def test_health_answers_status_and_version(client: falcon.testing.TestClient) -> None:
    result = client.simulate_get("/api/health")
    assert result.status_code == 200
    assert result.json["status"] == "ok" and isinstance(result.json["version"], str)


def test_unknown_path_and_method_are_json(client: falcon.testing.TestClient) -> None:
    assert client.simulate_get("/api/remote/nope").json == {"detail": "Not Found"}
    result = client.simulate_delete("/api/remote/sessions")
    assert result.status_code == 405 and result.json == {"detail": "Method Not Allowed"}


def test_missing_field_is_a_fastapi_422(client: falcon.testing.TestClient) -> None:
    result = client.simulate_post("/api/remote/disconnect", json={"host": "h"})
    assert result.status_code == 422
    assert result.json == {
        "detail": [{"type": "missing", "loc": ["body", "username"], "msg": "Field required", "input": {"host": "h"}}]
    }


def test_wrong_type_and_bad_json_are_422(client: falcon.testing.TestClient) -> None:
    typed = client.simulate_post("/api/remote/connect", json={"host": "h", "username": "u", "port": "abc"})
    assert typed.status_code == 422
    assert [item["loc"] for item in typed.json["detail"]] == [["body", "port"]]
    broken = client.simulate_post(
        "/api/remote/connect", body="{not json", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 422
    assert broken.json["detail"][0]["type"] == "json_invalid"
    empty = client.simulate_post("/api/remote/connect", body="", headers={"Content-Type": "application/json"})
    assert empty.status_code == 422 and empty.json["detail"][0]["loc"] == ["body"]


def test_lax_integer_strings_are_accepted_like_fastapi(client: falcon.testing.TestClient) -> None:
    result = client.simulate_post("/api/remote/disconnect", json={"host": "h", "port": "2222", "username": "u"})
    assert result.status_code == 200
    assert result.json == {"ok": False, "message": "Connection not found"}


def test_422_never_echoes_a_secret(client: falcon.testing.TestClient) -> None:
    result = client.simulate_post(
        "/api/remote/connect", json={"host": "h", "password": "hunter2", "passphrase": "pp-secret", "port": "x"}
    )
    assert result.status_code == 422
    assert "hunter2" not in result.text and "pp-secret" not in result.text


def test_missing_query_parameter_is_422_in_query(client: falcon.testing.TestClient) -> None:
    result = client.simulate_get("/api/remote/conda-envs")
    assert result.status_code == 422
    assert result.json["detail"] == [
        {"type": "missing", "loc": ["query", "connection_id"], "msg": "Field required", "input": None}
    ]


@pytest.mark.parametrize(
    ("connection_id", "status", "detail"),
    [
        ("uh22", 400, "Invalid connection_id format: uh22"),
        ("u@h:abc", 400, "Invalid connection_id format: u@h:abc"),
        ("u@h:22", 404, "Connection not found or inactive: u@h:22"),
    ],
)
def test_connection_id_errors_match_the_reference(
    client: falcon.testing.TestClient, connection_id: str, status: int, detail: str
) -> None:
    for path in ("/api/remote/conda-envs", "/api/remote/config", "/api/remote/fs/list", "/api/remote/env-configs"):
        result = client.simulate_get(path, params={"connection_id": connection_id})
        assert (result.status_code, result.json) == (status, {"detail": detail}), path


def test_unknown_viewer_session_is_404(client: falcon.testing.TestClient) -> None:
    assert client.simulate_get("/api/remote/viewer/status/abcd1234").json == {"detail": "Session not found: abcd1234"}
    result = client.simulate_post("/api/remote/viewer/stop", json={"session_id": "abcd1234"})
    assert (result.status_code, result.json) == (404, {"detail": "Session not found: abcd1234"})


def test_empty_state_answers_empty_lists(client: falcon.testing.TestClient) -> None:
    assert client.simulate_get("/api/remote/sessions").json == {"sessions": []}
    assert client.simulate_get("/api/remote/viewer/sessions").json == {"sessions": []}
    assert client.simulate_get("/api/remote/known-hosts/list").json == {"entries": []}
    assert client.simulate_get("/api/remote/status").json == {
        "connections": [],
        "viewer_sessions": [],
        "connection_count": 0,
        "viewer_session_count": 0,
    }


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ssh_errors.InvalidTargetError("x"), falcon.HTTP_400),
        (ssh_errors.AuthenticationError("x"), falcon.HTTP_401),
        (ssh_errors.PortInUseError("x"), falcon.HTTP_409),
        (ssh_errors.ConnectError("x"), falcon.HTTP_500),
        (ssh_errors.MasterGoneError("x"), falcon.HTTP_500),
        (errors.NotFoundError("x"), falcon.HTTP_404),
        (errors.ForbiddenError("x"), falcon.HTTP_403),
        (errors.ConflictError("x"), falcon.HTTP_409),
        (errors.StoreError("x"), falcon.HTTP_500),
    ],
)
def test_status_table(error: Exception, status: str) -> None:
    assert status_for(error) == status


def test_every_error_class_has_a_status_before_its_base() -> None:
    classes = [error_class for error_class, _ in STATUS_BY_ERROR]
    for index, error_class in enumerate(classes):
        for later in classes[index + 1 :]:
            assert not issubclass(later, error_class) or later is error_class, (later, error_class)
