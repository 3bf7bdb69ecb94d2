"""Replay the Runicorn 0.7.2 web UI's recorded calls against rvssh (UI compatibility).

The golden log (shared/spec/runicorn-ui-0.7.2-calls.json) holds every
/api/remote request the UI sent in one session, with the reference's answers.
Each call is replayed with the test server's host, user and password; rvssh
must answer with the same status and at least the keys the UI got.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import falcon.testing
import pytest

from rvssh.app import create_app
from rvssh.services.container import build_services
from tests import callers
from tests.golden_calls import GOLDEN_UI_CALLS as GOLDEN, substitute
from tests.integration.rvssh_fixtures import LOOPBACK_HOST, Rvssh, end_all_masters
from tests.sshbed import TEST_HOME, free_port, run_as_user

UI_ORIGIN = "http://127.0.0.1:5173"


def assert_has_keys(golden: Any, ours: Any, where: str) -> None:
    """Every key the UI got from the reference is in our answer too (recursively, first items of lists)."""
    if isinstance(golden, dict):
        assert isinstance(ours, dict), f"{where}: {ours!r}"
        for key, item in golden.items():
            if isinstance(ours.get("detail"), str) and key == "detail":
                continue
            assert key in ours, f"{where}: missing {key!r} in {sorted(ours)}"
            if key not in {"envs", "configs"}:
                assert_has_keys(item, ours[key], f"{where}.{key}")
    elif isinstance(golden, list) and golden:
        assert isinstance(ours, list) and ours, f"{where}: {ours!r}"
        assert_has_keys(golden[0], ours[0], f"{where}[0]")


@pytest.mark.skipif(not GOLDEN.exists(), reason="shared/spec is not beside the checkout")
def test_the_recorded_ui_session_works_unchanged(rvssh: Rvssh, runicorn_python: Path) -> None:
    calls = json.loads(GOLDEN.read_text())["remote_api_calls"]
    bed = rvssh.bed
    settings = rvssh.settings.__class__(**{**rvssh.settings.__dict__, "allowed_origins": (UI_ORIGIN,)})
    services = build_services(settings, environ=bed.client_env(agent=True))
    client = falcon.testing.TestClient(
        create_app(settings, services, caller_uid=callers.owner), headers={**LOOPBACK_HOST, "Origin": UI_ORIGIN}
    )
    mapping: dict[Any, Any] = {
        2593: bed.port,
        "127.0.0.1:2593": f"127.0.0.1:{bed.port}",
        "127_0_0_1_2593": f"127_0_0_1_{bed.port}",
        "rvui-e2e-data": "rv-ui-data",
        "rvui-e2e": "runicorn",
        "rvui": bed.user,
        "rvui@": f"{bed.user}@",
        "srv_rvui_": f"srv_{bed.user}_",
        "/home/user": str(TEST_HOME),
        23561: free_port(),
        23567: free_port(),
    }
    session_id = None
    host_key: dict[str, Any] = {}
    try:
        for call in calls:
            body = substitute(call["body"], mapping)
            if isinstance(body, dict):
                body = {key: (bed.password if value == "***" else value) for key, value in body.items()}
            if call["path"].endswith("/viewer/stop"):
                body = {"session_id": session_id}
            if call["path"].endswith("/known-hosts/accept"):
                # The UI posts back what the dialog showed: our server's key.
                body = {name: host_key[name] for name in body}
            query = substitute(dict(parse_qsl(call["query"])), mapping)
            result = client.simulate_request(call["method"], call["path"], params=query or None, json=body)
            where = f"#{call['seq']} {call['method']} {call['path']}"
            assert result.status_code == call["status"], f"{where}: {result.text}"
            assert_has_keys(call["response"], result.json, where)
            if call["status"] == 409:
                host_key = result.json["detail"]["host_key"]
                assert host_key["known_hosts_host"] == f"[127.0.0.1]:{bed.port}"
            if call["path"].endswith("/viewer/start"):
                session_id = result.json["session"]["sessionId"]
                assert result.json["session"]["host"] == bed.host
    finally:
        for viewer in services.list_viewer_sessions():
            services.viewer.stop(viewer.session_id)
        end_all_masters(services)
        run_as_user(["rm", "-rf", f"{TEST_HOME}/rv-ui-data"])
