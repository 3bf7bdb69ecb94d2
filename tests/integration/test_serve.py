"""``rvssh serve`` under gunicorn, spoken to over real HTTP (issue #2)."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.integration.rvssh_fixtures import ACCEPT_FIELDS
from tests.integration.serving import end_masters, serving
from tests.sshbed import SshBed


def test_serve_runs_the_409_flow_and_stops_cleanly_on_ctrl_c(tmp_path: Path, sshbed: SshBed) -> None:
    sshbed.user_known_hosts.write_text("")
    environment = {"RVSSH_SSH_CONFIG": str(sshbed.ssh_config), "RVSSH_USER_KNOWN_HOSTS": str(sshbed.user_known_hosts)}
    body = {
        "host": sshbed.host,
        "port": sshbed.port,
        "username": sshbed.user,
        "private_key_path": str(sshbed.key_plain),
        "use_agent": False,
    }
    try:
        with serving(tmp_path, **environment) as served:
            status, _, health = served.request("GET", "/api/health")
            assert status == 200 and health["status"] == "ok" and health["version"]
            status, _, problem = served.post_json("/api/remote/connect", body)
            assert status == 409
            host_key = problem["detail"]["host_key"]
            accepted = served.post_json("/api/remote/known-hosts/accept", {name: host_key[name] for name in ACCEPT_FIELDS})
            assert (accepted[0], accepted[2]) == (200, {"ok": True})
            status, _, connected = served.post_json("/api/remote/connect", body)
            assert status == 200 and connected["connected"] is True
            sessions = served.request("GET", "/api/remote/sessions")[2]["sessions"]
            assert [item["key"] for item in sessions] == [connected["connection_id"]]
            missing = served.request("GET", "/api/nope")
            assert (missing[0], missing[2]) == (404, {"detail": "Not Found"})

            served.process.send_signal(signal.SIGINT)
            assert served.process.wait(15) == 0
            output = served.log.read_text(errors="replace")
            assert "serving the Remote Viewer API at http://127.0.0.1:" in output
            assert '"POST /api/remote/connect HTTP/1.1" 409' in output
            assert "Traceback" not in output
    finally:
        end_masters(tmp_path / "state")
