"""Connect, reuse, list and disconnect against the real test sshd (issue #2)."""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import threading
import time
from pathlib import Path

import falcon.testing
import pytest

from rvssh.app import create_app
from rvssh.remote.launcher import build_sh_program
from rvssh.services.container import build_services
from tests import callers
from tests.integration.rvssh_fixtures import LOOPBACK_HOST, Rvssh, accept
from tests.sshbed import wait_until


def assert_detail_error(result, status: int, starts_with: str = "") -> str:
    """Check the FastAPI error shape and return the detail string."""
    assert result.status_code == status, result.text
    detail = result.json["detail"]
    assert isinstance(detail, str)
    assert detail.startswith(starts_with), detail
    return detail


def assert_auth_prompt(result, kind: str, text: str) -> dict:
    """Check a 401 AUTH_PROMPT naming one question of ``kind`` whose words contain ``text``."""
    assert result.status_code == 401, result.text
    detail = result.json["detail"]
    assert detail["code"] == "AUTH_PROMPT", detail
    assert [(prompt["kind"], text in prompt["prompt"]) for prompt in detail["prompts"]] == [(kind, True)], detail
    return detail


REFERENCE_ENTRY_KEYS = ("key", "host", "port", "username", "connected")


def master_pids(state_dir: Path) -> list[int]:
    listing = subprocess.run(["pgrep", "-f", f"ControlPath=\"{state_dir}"], capture_output=True, text=True)
    return [int(pid) for pid in listing.stdout.split()]


def test_connect_with_key_path_returns_the_reference_body(trusted: Rvssh) -> None:
    result = trusted.connect()
    assert result.status_code == 200, result.text
    bed = trusted.bed
    assert result.json == {
        "ok": True,
        "connection_id": f"{bed.user}@{bed.host}:{bed.port}",
        "host": bed.host,
        "port": bed.port,
        "username": bed.user,
        "connected": True,
    }
    sessions = trusted.client.simulate_get("/api/remote/sessions").json["sessions"]
    assert [{key: entry[key] for key in REFERENCE_ENTRY_KEYS} for entry in sessions] == [
        {"key": f"{bed.user}@{bed.host}:{bed.port}", "host": bed.host, "port": bed.port,
         "username": bed.user, "connected": True}
    ]
    assert sessions[0]["state"] == "up" and sessions[0]["checked_at"] > 0


def test_key_with_passphrase_answers_the_prompt(trusted: Rvssh) -> None:
    result = trusted.connect(private_key_path=str(trusted.bed.key_pass), passphrase=trusted.bed.key_passphrase)
    assert result.status_code == 200, result.text


def test_wrong_passphrase_is_401(trusted: Rvssh) -> None:
    result = trusted.connect(private_key_path=str(trusted.bed.key_pass), passphrase="wrong")
    # ssh gives up on the key and moves on to the server's password: that is what is asked now.
    assert_auth_prompt(result, "password", "password:")
    assert "wrong" not in result.text


def test_a_missing_passphrase_is_named_when_nothing_else_works(trusted: Rvssh) -> None:
    result = trusted.connect(private_key_path=str(trusted.bed.key_pass), password="not-the-password")
    assert result.status_code == 401, result.text
    asked = trusted.connect(private_key_path=str(trusted.bed.key_pass))
    detail = assert_auth_prompt(asked, "password", "password:")
    assert detail["message"].startswith("The server asks for a password")


def test_key_content_is_used_once_and_removed(trusted: Rvssh) -> None:
    content = trusted.bed.key_plain.read_text()
    result = trusted.connect(private_key_path=None, private_key=content)
    assert result.status_code == 200, result.text
    key_dir = trusted.settings.state_dir / "keys"
    assert not key_dir.exists() or list(key_dir.iterdir()) == []
    assert "PRIVATE KEY" not in result.text


def test_password_is_answered_at_the_prompt(trusted: Rvssh) -> None:
    result = trusted.connect(private_key_path=None, password=trusted.bed.password)
    assert result.status_code == 200, result.text


def test_wrong_password_is_one_attempt_and_401_fast(trusted: Rvssh) -> None:
    failed_before = trusted.bed.count_failed_passwords()
    started = time.monotonic()
    result = trusted.connect(private_key_path=None, password="not-the-password")
    elapsed = time.monotonic() - started
    detail = assert_detail_error(result, 401, "Connection failed: ")
    assert "not-the-password" not in detail
    assert elapsed < 10
    wait_until(lambda: trusted.bed.count_failed_passwords() > failed_before, 5, "sshd logged no failed password")
    assert trusted.bed.count_failed_passwords() == failed_before + 1


def test_agent_is_used_only_when_asked(trusted: Rvssh) -> None:
    refused = trusted.connect(private_key_path=None, use_agent=False)
    assert_auth_prompt(refused, "password", f"{trusted.bed.user}@")
    accepted = trusted.connect(private_key_path=None, use_agent=True)
    assert accepted.status_code == 200, accepted.text


def test_unauthorised_key_is_401(trusted: Rvssh) -> None:
    assert_auth_prompt(trusted.connect(private_key_path=str(trusted.bed.key_unauthorised)), "password", "password:")


def test_missing_key_file_is_400(trusted: Rvssh) -> None:
    assert_detail_error(trusted.connect(private_key_path="/nonexistent/key"), 400, "Connection failed: ")


def test_host_alias_from_ssh_config_and_its_port_win(rvssh: Rvssh) -> None:
    bed = rvssh.bed
    body = {"host": bed.alias, "port": 22, "username": bed.user, "use_agent": False}
    first = rvssh.client.simulate_post("/api/remote/connect", json=body)
    assert first.status_code == 409, first.text
    host_key = first.json["detail"]["host_key"]
    assert host_key["known_hosts_host"] == f"[{bed.host}]:{bed.port}"
    assert (host_key["host"], host_key["port"]) == (bed.host, bed.port)
    accept(rvssh, host_key)
    second = rvssh.client.simulate_post("/api/remote/connect", json=body)
    assert second.status_code == 200, second.text
    assert second.json["connection_id"] == f"{bed.user}@{bed.alias}:22"


def test_refused_port_fails_fast(rvssh: Rvssh) -> None:
    started = time.monotonic()
    result = rvssh.connect(port=1)
    assert_detail_error(result, 500, "Connection failed: ")
    assert "refused" in result.json["detail"]
    assert time.monotonic() - started < rvssh.settings.connect_timeout


def test_unknown_host_name_fails_fast(rvssh: Rvssh) -> None:
    result = rvssh.connect(host="no-such-host.invalid")
    assert_detail_error(result, 500, "Connection failed: ")
    assert "resolve" in result.json["detail"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("host", "-oProxyCommand=touch {canary}"),
        ("username", "bad user"),
        ("username", "-oProxyCommand=touch {canary}"),
        ("host", "127.0.0.1;touch {canary}"),
    ],
)
def test_option_like_targets_are_400_before_ssh_runs(rvssh: Rvssh, tmp_path: Path, field: str, value: str) -> None:
    canary = tmp_path / "canary"
    result = rvssh.connect(**{field: value.format(canary=canary)})
    assert_detail_error(result, 400, "Invalid ")
    assert not canary.exists()
    assert master_pids(rvssh.settings.state_dir) == []


def test_second_connect_reuses_the_master(trusted: Rvssh) -> None:
    assert trusted.connect().status_code == 200
    logins = trusted.bed.count_logins()
    pids = master_pids(trusted.settings.state_dir)
    assert trusted.connect().status_code == 200
    assert master_pids(trusted.settings.state_dir) == pids
    assert trusted.bed.count_logins() == logins


def test_parallel_connects_end_with_one_master(trusted: Rvssh) -> None:
    results = []
    threads = [threading.Thread(target=lambda: results.append(trusted.connect())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [result.status_code for result in results] == [200] * 4
    assert len(master_pids(trusted.settings.state_dir)) == 1


def test_disconnect_ends_the_master(trusted: Rvssh) -> None:
    assert trusted.connect().status_code == 200
    bed = trusted.bed
    body = {"host": bed.host, "port": bed.port, "username": bed.user}
    result = trusted.client.simulate_post("/api/remote/disconnect", json=body)
    assert result.json == {"ok": True, "message": "Connection removed"}
    assert master_pids(trusted.settings.state_dir) == []
    again = trusted.client.simulate_post("/api/remote/disconnect", json=body)
    assert again.json == {"ok": False, "message": "Connection not found"}


def test_dead_master_is_reported_then_rebuilt(trusted: Rvssh) -> None:
    assert trusted.connect().status_code == 200
    trusted.bed.drop_connections()
    wait_until(lambda: master_pids(trusted.settings.state_dir) == [], 10, "master did not notice the dropped link")
    sessions = trusted.client.simulate_get("/api/remote/sessions").json["sessions"]
    assert [session["connected"] for session in sessions] == [False]
    # A GET changes nothing; the monitor records what happened.
    lost = wait_until(lambda: [entry for entry in trusted.client.simulate_get("/api/remote/sessions").json["sessions"]
                               if entry["message"]], 5, "the monitor did not record the lost connection")
    assert (lost[0]["state"], lost[0]["message"]) == ("down", "The SSH connection was lost")
    assert trusted.connect().status_code == 200
    assert len(master_pids(trusted.settings.state_dir)) == 1
    assert trusted.client.simulate_get("/api/remote/sessions").json["sessions"][0]["state"] == "up"


def test_masters_are_found_again_after_a_restart(trusted: Rvssh) -> None:
    assert trusted.connect().status_code == 200
    again = trusted.restarted()
    sessions = again.client.simulate_get("/api/remote/sessions").json["sessions"]
    assert [(session["key"], session["connected"]) for session in sessions] == [
        (trusted.target.connection_id, True)
    ]


def test_concurrent_commands_never_exceed_max_sessions(trusted: Rvssh) -> None:
    assert trusted.connect().status_code == 200
    results = []

    def run() -> None:
        results.append(trusted.services.executor.run(trusted.target, build_sh_program(b"sleep 0.3; echo ok\n", [])))

    threads = [threading.Thread(target=run) for _ in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [(result.exit_status, result.stdout) for result in results] == [(0, b"ok\n")] * 24


def test_a_silent_server_times_out_within_the_connect_timeout(rvssh: Rvssh) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        settings = dataclasses.replace(rvssh.settings, connect_timeout=2)
        client = falcon.testing.TestClient(
            create_app(settings, build_services(settings, environ=rvssh.bed.client_env()), caller_uid=callers.owner),
            headers=LOOPBACK_HOST,
        )
        started = time.monotonic()
        result = client.simulate_post("/api/remote/connect", json=rvssh.connect_body(port=silent.getsockname()[1]))
    elapsed = time.monotonic() - started
    assert_detail_error(result, 500, "Connection failed: ")
    assert elapsed < 2 * settings.connect_timeout + 1
