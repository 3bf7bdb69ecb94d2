"""``rvssh serve`` under gunicorn, spoken to over real HTTP (issue #2)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.sshbed import SshBed, free_port, wait_until


def call(base: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as ex:
        return ex.code, json.loads(ex.read())


@pytest.fixture
def served(sshbed: SshBed, state_dir: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    env = sshbed.client_env(agent=False)
    env.update(
        RVSSH_STATE_DIR=str(state_dir),
        RVSSH_SSH_CONFIG=str(sshbed.ssh_config),
        RVSSH_USER_KNOWN_HOSTS=str(sshbed.user_known_hosts),
    )
    sshbed.user_known_hosts.write_text("")
    process = subprocess.Popen(
        [sys.executable, "-m", "rvssh.cli", "serve", "--bind", f"127.0.0.1:{port}"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            return call(base, "GET", "/api/health")[0] == 200
        except OSError:
            return False

    try:
        wait_until(answers, 20, "rvssh serve did not answer /api/health")
        yield base, process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for entry in Path(state_dir, "connections").glob("*.json"):
            record = json.loads(entry.read_text())
            subprocess.run(
                ["ssh", "-o", f"ControlPath={record['control_path']}", "-O", "exit", "x"],
                capture_output=True,
                check=False,
            )


def test_serve_runs_the_409_flow_and_stops_cleanly_on_ctrl_c(served: tuple[str, subprocess.Popen[str]], sshbed: SshBed) -> None:
    base, process = served
    status, health = call(base, "GET", "/api/health")
    assert status == 200 and health["status"] == "ok" and health["version"]
    body = {
        "host": sshbed.host,
        "port": sshbed.port,
        "username": sshbed.user,
        "private_key_path": str(sshbed.key_plain),
        "use_agent": True,
    }
    status, problem = call(base, "POST", "/api/remote/connect", body)
    assert status == 409
    host_key = problem["detail"]["host_key"]
    accept = {name: host_key[name] for name in ("host", "port", "key_type", "public_key", "fingerprint_sha256")}
    assert call(base, "POST", "/api/remote/known-hosts/accept", accept) == (200, {"ok": True})
    status, connected = call(base, "POST", "/api/remote/connect", body)
    assert status == 200 and connected["connected"] is True
    status, sessions = call(base, "GET", "/api/remote/sessions")
    assert [item["key"] for item in sessions["sessions"]] == [connected["connection_id"]]
    assert call(base, "GET", "/api/nope") == (404, {"detail": "Not Found"})

    process.send_signal(signal.SIGINT)
    assert process.wait(15) == 0
    output = process.stdout.read() if process.stdout else ""
    assert "serving the Remote Viewer API at http://127.0.0.1:" in output
    assert '"POST /api/remote/connect HTTP/1.1" 409' in output
    assert "Traceback" not in output
