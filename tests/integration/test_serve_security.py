"""The local API's request rules against a real ``rvssh serve`` over real HTTP (issues #5, #15).

No sshd is needed: these requests never reach ssh. The server runs as a
subprocess on a free loopback port with a throwaway state directory and no
OS keyring.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rvssh.http.security import OTHER_ACCOUNT
from tests.integration.other_account import request_as_other
from tests.integration.serving import serve_env, serving

TOKEN = "team-token-Qx81"
UI_ORIGIN = "http://127.0.0.1:8000"


def test_host_origin_cors_and_bodies_over_real_http(tmp_path: Path) -> None:
    with serving(tmp_path, "--allow-origin", UI_ORIGIN) as served:
        status, _, body = served.request("GET", "/api/remote/sessions", headers={"Host": "evil.example:23300"})
        assert (status, body) == (403, {"detail": "Host header not allowed: rvssh answers only loopback names (see --allow-host)"})
        assert served.request("GET", "/api/health", headers={"Host": "localhost"})[0] == 200

        status, headers, body = served.post_json("/api/remote/connections/saved", [], {"Origin": "http://evil.example"})
        assert (status, body) == (403, {"detail": "Origin not allowed: http://evil.example (see --allow-origin)"})
        assert "access-control-allow-origin" not in headers

        preflight = {"Origin": UI_ORIGIN, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
        status, headers, _ = served.request("OPTIONS", "/api/remote/connections/saved", headers=preflight)
        assert status == 204 and headers["access-control-allow-origin"] == UI_ORIGIN
        status, headers, _ = served.request("OPTIONS", "/api/remote/connections/saved",
                                            headers={**preflight, "Origin": "http://127.0.0.1:9999"})
        assert status == 403 and "access-control-allow-origin" not in headers

        entry = {"kind": "server", "id": "srv_me_gpu_22", "host": "gpu", "port": 22, "username": "me", "password": "pw-Zk2"}
        status, headers, body = served.post_json("/api/remote/connections/saved", [entry], {"Origin": UI_ORIGIN})
        assert (status, body) == (200, {"ok": True, "message": "Connections saved successfully"})
        assert headers["access-control-allow-origin"] == UI_ORIGIN
        status, _, body = served.request("GET", "/api/remote/connections/saved", headers={"Origin": UI_ORIGIN})
        assert body["connections"][0]["hasSavedPassword"] is True and "pw-Zk2" not in json.dumps(body)

        status, _, body = served.request("POST", "/api/remote/connections/saved", b"[]", {"Content-Type": "text/plain"})
        assert (status, body) == (415, {"detail": "Content-Type must be application/json"})
        big = b"[" + b" " * (2 * 1024 * 1024) + b"]"
        status, _, body = served.request("POST", "/api/remote/connections/saved", big, {"Content-Type": "application/json"})
        assert (status, body) == (413, {"detail": "Request body too large (limit 1048576 bytes)"})
    assert "pw-Zk2" not in (tmp_path / "state" / "saved_connections.json").read_text()
    assert "Traceback" not in (tmp_path / "serve.log").read_text(errors="replace")


def test_token_from_the_environment_lets_another_account_in(tmp_path: Path, other_account: str) -> None:
    with serving(tmp_path, RVSSH_TOKEN=TOKEN) as served:
        assert request_as_other(served.port, "GET", "/api/health").status == 200
        refused = request_as_other(served.port, "GET", "/api/remote/sessions")
        assert (refused.status, refused.json()) == (403, {"detail": OTHER_ACCOUNT})
        wrong = request_as_other(served.port, "GET", "/api/remote/sessions", headers={"Authorization": "Bearer nope"})
        assert (wrong.status, wrong.json()) == (401, {"detail": "Missing or wrong bearer token"})
        assert wrong.headers["www-authenticate"] == "Bearer"
        allowed = request_as_other(served.port, "GET", "/api/remote/sessions", headers={"Authorization": f"Bearer {TOKEN}"})
        assert (allowed.status, allowed.json()) == (200, {"sessions": []})
        assert served.request("GET", "/api/remote/sessions")[0] == 200  # the owner, without it


def test_token_flag_works_too(tmp_path: Path, other_account: str) -> None:
    with serving(tmp_path, "--token", TOKEN) as served:
        assert request_as_other(served.port, "GET", "/api/remote/status").status == 403
        assert request_as_other(served.port, "GET", "/api/remote/status", headers={"Authorization": f"Bearer {TOKEN}"}).status == 200


@pytest.mark.parametrize("bind", ["0.0.0.0:23399", "[::]:23399"])
def test_a_public_bind_without_token_refuses_to_start(tmp_path: Path, bind: str) -> None:
    argv = [sys.executable, "-m", "rvssh.cli", "serve", "--bind", bind, "--state-dir", str(tmp_path / "state")]
    finished = subprocess.run(argv, env=serve_env(), capture_output=True, text=True, timeout=60, check=False)
    assert finished.returncode == 2
    assert f"refusing to listen on {bind}" in finished.stderr and "--token" in finished.stderr
