"""Start, watch and stop the real Runicorn viewer behind a forward (issue #4)."""

from __future__ import annotations

import http.client
import json
import socket
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.integration.rvssh_fixtures import Rvssh
from tests.integration.user_flow import port_closed, viewer_pids
from tests.sshbed import TEST_HOME, TEST_USER, run_as_user, wait_until

VENV_ENV = "runicorn"


@pytest.fixture
def viewer_ready(trusted: Rvssh, runicorn_python: Path) -> Rvssh:
    """rvssh with a trusted host and the test user's runicorn venv in place."""
    return trusted


STORES = f"{TEST_HOME}/rv-stores"


@pytest.fixture(autouse=True)
def remove_storage_roots() -> Iterator[None]:
    """Remove the storage roots the viewers of a test created."""
    yield
    run_as_user(["rm", "-rf", STORES])


def storage_root() -> str:
    return f"{STORES}/{uuid.uuid4().hex[:6]}"


def start(rvssh: Rvssh, **overrides: Any):
    body = rvssh.connect_body(remote_root=storage_root(), conda_env=VENV_ENV, local_port=None, remote_port=None)
    body.update(overrides)
    return rvssh.client.simulate_post("/api/remote/viewer/start", json=body)


def get(port: int, path: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def process_gone(pid: int) -> bool:
    status = Path(f"/proc/{pid}/stat")
    return not status.exists() or status.read_text().rsplit(")", 1)[1].split()[0] == "Z"


def test_start_tunnels_the_viewer_and_stop_removes_everything(viewer_ready: Rvssh) -> None:
    rvssh = viewer_ready
    started = time.monotonic()
    result = start(rvssh)
    elapsed = time.monotonic() - started
    assert result.status_code == 200, result.text
    session = result.json["session"]
    bed = rvssh.bed
    assert result.json["ok"] is True
    assert result.json["message"] == f"Remote Viewer ready at http://localhost:{session['localPort']}"
    assert session["status"] == "running"
    assert (session["host"], session["sshPort"], session["username"]) == (bed.host, bed.port, bed.user)
    assert session["connectionId"] == f"{bed.user}@{bed.host}:{bed.port}"
    assert session["condaEnv"] == VENV_ENV
    assert session["url"] == f"http://localhost:{session['localPort']}"
    assert len(session["sessionId"]) == 8 and isinstance(session["startedAt"], int)
    print(f"viewer start -> ready: {elapsed:.2f} s")

    status, body = get(session["localPort"], "/api/health")
    health = json.loads(body)
    assert status == 200 and health["status"] == "ok"
    assert health["storage"] == session["remoteRoot"]
    page_status, page = get(session["localPort"], "/")
    assert page_status == 200 and b"<html" in page.lower()

    listed = rvssh.client.simulate_get("/api/remote/viewer/sessions").json["sessions"]
    assert [(item["sessionId"], item["status"]) for item in listed] == [(session["sessionId"], "running")]
    one = rvssh.client.simulate_get(f"/api/remote/viewer/status/{session['sessionId']}").json
    assert one["status"] == "running" and one["remotePid"] == session["remotePid"]
    overall = rvssh.client.simulate_get("/api/remote/status").json
    assert overall["viewer_session_count"] == 1 and overall["connection_count"] == 1

    stopped = rvssh.client.simulate_post("/api/remote/viewer/stop", json={"session_id": session["sessionId"]})
    assert stopped.json == {"ok": True, "message": f"Session {session['sessionId']} stopped"}
    # When stop answers, the forward is gone and the viewer has its SIGTERM; it exits, then its folder goes.
    assert port_closed(session["localPort"])
    wait_until(lambda: process_gone(session["remotePid"]), 10, "the viewer outlived its stop")
    wait_until(lambda: session["sessionId"] not in
               run_as_user(["ls", f"{TEST_HOME}/.cache/rvssh/viewers"]).stdout.split(), 10, "the session folder stayed")
    assert rvssh.client.simulate_get("/api/remote/viewer/sessions").json == {"sessions": []}
    missing = rvssh.client.simulate_post("/api/remote/viewer/stop", json={"session_id": session["sessionId"]})
    assert missing.status_code == 404
    assert missing.json == {"detail": f"Session not found: {session['sessionId']}"}


def test_two_sessions_side_by_side(viewer_ready: Rvssh) -> None:
    first = start(viewer_ready)
    second = start(viewer_ready)
    assert first.status_code == 200 and second.status_code == 200, (first.text, second.text)
    ports = {first.json["session"]["localPort"], second.json["session"]["localPort"]}
    assert len(ports) == 2
    for session in (first.json["session"], second.json["session"]):
        status, body = get(session["localPort"], "/api/health")
        assert status == 200 and json.loads(body)["storage"] == session["remoteRoot"]
    listed = viewer_ready.client.simulate_get("/api/remote/viewer/sessions").json["sessions"]
    assert sorted(item["status"] for item in listed) == ["running", "running"]


def test_killed_viewer_shows_error_with_reason(viewer_ready: Rvssh) -> None:
    session = start(viewer_ready).json["session"]
    run_as_user(["kill", "-KILL", "--", f"-{session['remotePid']}"])
    wait_until(lambda: process_gone(session["remotePid"]), 10, "viewer did not die")

    def status() -> dict:
        return viewer_ready.client.simulate_get(f"/api/remote/viewer/status/{session['sessionId']}").json

    # First "No answer through the tunnel", then, once the server was asked, why.
    wait_until(lambda: "not running" in (status()["error"] or ""), 10, "the monitor did not find the dead viewer")
    found = status()
    assert found["status"] == "error" and found["isActive"] is False
    assert found["error"].startswith("The viewer process is not running on the server")


def test_busy_local_port_is_the_references_500_and_leaves_nothing(viewer_ready: Rvssh) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        before = viewer_pids(TEST_USER)
        result = start(viewer_ready, local_port=port)
    assert result.status_code == 500, result.text
    assert result.json["detail"] == f"Failed to start Remote Viewer: Local port {port} is already in use"
    assert viewer_ready.client.simulate_get("/api/remote/viewer/sessions").json == {"sessions": []}
    assert viewer_pids(TEST_USER) == before


def test_env_without_runicorn_is_a_clear_error_and_starts_nothing(viewer_ready: Rvssh) -> None:
    before = viewer_pids(TEST_USER)
    result = start(viewer_ready, conda_env="system")
    assert result.status_code == 500, result.text
    assert result.json["detail"].startswith("Failed to start Remote Viewer: runicorn is not installed in this environment")
    assert "pip install runicorn" in result.json["detail"]
    assert viewer_pids(TEST_USER) == before
    assert viewer_ready.client.simulate_get("/api/remote/viewer/sessions").json == {"sessions": []}


def test_unknown_env_is_404(viewer_ready: Rvssh) -> None:
    result = start(viewer_ready, conda_env="no-such-env")
    assert result.status_code == 404, result.text
    assert result.json["detail"] == "Environment 'no-such-env' not found. Please check the environment name."


def test_busy_explicit_remote_port_is_a_clear_error(viewer_ready: Rvssh) -> None:
    first = start(viewer_ready).json["session"]
    result = start(viewer_ready, remote_port=first["remotePort"])
    assert result.status_code == 500, result.text
    assert result.json["detail"] == (
        f"Failed to start Remote Viewer: Remote port {first['remotePort']} is already in use on the server"
    )


def test_sessions_survive_an_rvssh_restart_and_can_be_stopped(viewer_ready: Rvssh) -> None:
    session = start(viewer_ready).json["session"]
    again = viewer_ready.restarted()
    listed = again.client.simulate_get("/api/remote/viewer/sessions").json["sessions"]
    assert [(item["sessionId"], item["status"]) for item in listed] == [(session["sessionId"], "running")]
    assert again.client.simulate_post("/api/remote/viewer/stop", json={"session_id": session["sessionId"]}).status_code == 200
    assert port_closed(session["localPort"])
    wait_until(lambda: process_gone(session["remotePid"]), 10, "the viewer outlived its stop")


def test_disconnect_stops_the_viewers_of_the_connection(viewer_ready: Rvssh) -> None:
    session = start(viewer_ready).json["session"]
    bed = viewer_ready.bed
    result = viewer_ready.client.simulate_post(
        "/api/remote/disconnect", json={"host": bed.host, "port": bed.port, "username": bed.user}
    )
    assert result.json["ok"] is True
    assert viewer_ready.client.simulate_get("/api/remote/viewer/sessions").json == {"sessions": []}
    wait_until(lambda: process_gone(session["remotePid"]), 10, "the viewer outlived the disconnect")
