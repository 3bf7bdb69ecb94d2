"""The ``rvssh`` command against the real sshd: ``open`` under a pty, ``ls``, ``stop``, ``hosts`` (#13)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Iterator

import pexpect
import pytest

from tests.integration.cli_runs import (
    URL,
    cli_environment,
    finish_detached_open,
    host_key_fingerprints,
    remove_storage_roots,
    run_rvssh,
    rvssh_status,
    spawn_rvssh,
    storage_root,
    wait_until_viewer_gone,
)
from tests.integration.serving import end_masters, serving
from tests.integration.test_second_factor import OATH_PROMPT, Totp, otp_bed
from tests.integration.user_flow import tunnel_health
from tests.sshbed import SshBed, session_viewer_pids


@pytest.fixture(autouse=True)
def clean_bed(sshbed: SshBed, runicorn_python: Path) -> Iterator[None]:
    """Start each test with nothing trusted in the bed's own known_hosts; remove the storage roots after."""
    sshbed.user_known_hosts.write_text("")
    yield
    remove_storage_roots()


def answer_host_key(child: pexpect.spawn, sshbed: SshBed, shown: str) -> None:
    """Check the question is ssh's, for the bed's real key, and say yes."""
    child.expect(r"The authenticity of host '(\S+)' can't be established\.\r\n(\S+) key fingerprint is (SHA256:\S+)\.")
    host, key_name, fingerprint = child.match.groups()
    assert host == shown
    assert key_name in ("ED25519", "RSA") and fingerprint in host_key_fingerprints(sshbed)
    child.expect_exact("Are you sure you want to continue connecting (yes/no)? ")
    child.sendline("yes")


def pick_runicorn(child: pexpect.spawn) -> None:
    """See the test user's runicorn venv chosen (other tests may leave more environments: then rvssh asks)."""
    if child.expect([r"Environment: runicorn \(venv,", r"Which one \[\d+\]\? "]) == 1:
        child.sendline("runicorn")
        child.expect_exact("Environment: runicorn (venv,")


def test_open_in_process_asks_key_and_password_serves_the_viewer_and_ctrl_c_stops_it(
    sshbed: SshBed, state_dir: Path
) -> None:
    environment = cli_environment(sshbed, state_dir)
    root = storage_root()
    child = spawn_rvssh(environment, "open", f"{sshbed.user}@{sshbed.host}:{sshbed.port}", "--no-browser", "--root", root)
    try:
        child.expect_exact("Using rvssh in this process")
        answer_host_key(child, sshbed, f"[{sshbed.host}]:{sshbed.port}")
        child.expect_exact(f"{sshbed.user}@{sshbed.host}'s password: ")
        child.sendline(sshbed.password)
        child.expect_exact(f"Connected as {sshbed.user}@{sshbed.host}:{sshbed.port}.")
        pick_runicorn(child)
        child.expect_exact(f"Storage root: {root} (from --root)")
        child.expect(URL)
        port = int(child.match.group(1))
        child.expect_exact("Ctrl-C stops the viewer.")
        assert tunnel_health(port)["status"] == "ok"

        # The state dir is shared: another rvssh command sees the session.
        sessions = rvssh_status(environment)["viewer_sessions"]
        assert [(item["localPort"], item["status"]) for item in sessions] == [(port, "running")]
        session_id = sessions[0]["sessionId"]
        assert session_viewer_pids(session_id) == [sessions[0]["remotePid"]]

        child.sendintr()
        child.expect_exact(f"Stopping viewer {session_id}…")
        child.expect_exact(f"Closed the connection {sshbed.user}@{sshbed.host}:{sshbed.port}.")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0, child.before
        wait_until_viewer_gone(session_id)
        assert rvssh_status(environment) == {"connections": [], "viewer_sessions": [],
                                             "connection_count": 0, "viewer_session_count": 0}
    finally:
        child.close(force=True)
        end_masters(state_dir)
    # The key stays trusted in rvssh's own known_hosts; the password is nowhere in the state dir.
    assert f"[{sshbed.host}]:{sshbed.port} " in (state_dir / "known_hosts").read_text()
    assert not any(sshbed.password.encode() in path.read_bytes() for path in state_dir.rglob("*") if path.is_file())


def test_open_through_rvssh_serve_detaches_and_ls_stop_see_the_same_sessions(sshbed: SshBed, tmp_path: Path) -> None:
    served_environment = {"RVSSH_SSH_CONFIG": str(sshbed.ssh_config), "RVSSH_USER_KNOWN_HOSTS": str(sshbed.user_known_hosts)}
    state = tmp_path / "state"
    try:
        with serving(tmp_path, **served_environment) as served:
            environment = cli_environment(sshbed, state, bind_port=served.port)
            child = spawn_rvssh(environment, "open", sshbed.alias, "--no-browser", "--detach", "--root", storage_root())
            child.expect_exact(f"Using rvssh serve at http://127.0.0.1:{served.port}.")
            answer_host_key(child, sshbed, f"[{sshbed.host}]:{sshbed.port}")
            child.expect_exact(f"Connected as {sshbed.user}@{sshbed.alias}:22.")  # its IdentityFile: no password
            pick_runicorn(child)
            port = finish_detached_open(child)

            # One session, seen alike by the server's API and by rvssh ls.
            sessions = served.request("GET", "/api/remote/viewer/sessions")[2]["sessions"]
            assert [(item["localPort"], item["host"]) for item in sessions] == [(port, sshbed.alias)]
            listing = run_rvssh(environment, "ls")
            assert listing.returncode == 0, listing.stderr
            header, connection_row, session_row = listing.stdout.splitlines()
            assert header.split() == ["SESSION", "HOST", "ENV", "URL", "STATUS", "AGE", "NOTE"]
            assert connection_row.split() == ["-", f"{sshbed.user}@{sshbed.alias}:22", "-", "-", "up", "-"]
            assert session_row.split()[:5] == [sessions[0]["sessionId"], f"{sshbed.user}@{sshbed.alias}:22",
                                               "runicorn", f"http://localhost:{port}", "running"]

            stopped = run_rvssh(environment, "stop", sshbed.alias)
            assert stopped.returncode == 0, stopped.stderr
            assert stopped.stderr.splitlines() == [
                f"Stopped viewer {sessions[0]['sessionId']} on {sshbed.user}@{sshbed.alias}:22.",
                f"Closed the connection {sshbed.user}@{sshbed.alias}:22.",
            ]
            wait_until_viewer_gone(sessions[0]["sessionId"])
            assert served.request("GET", "/api/remote/status")[2]["viewer_session_count"] == 0
            assert run_rvssh(environment, "ls").stdout == "No connections and no viewer sessions.\n"
            nothing = run_rvssh(environment, "stop", sshbed.alias)
            assert (nothing.returncode, nothing.stderr) == (
                1, f"rvssh: No viewer session or connection matches '{sshbed.alias}' (see rvssh ls)\n")
    finally:
        end_masters(state)


def test_a_changed_host_key_is_refused_with_ssh_warning_and_how_to_remove_it(sshbed: SshBed, state_dir: Path) -> None:
    stale = state_dir / "stale"
    run = pexpect.run(f"ssh-keygen -q -t ed25519 -N '' -f {stale}", timeout=30)
    assert not run
    known_hosts = state_dir / "known_hosts"
    line = f"[{sshbed.host}]:{sshbed.port} {' '.join(stale.with_suffix('.pub').read_text().split()[:2])}\n"
    known_hosts.write_text(line)
    known_hosts.chmod(0o600)
    environment = cli_environment(sshbed, state_dir)
    child = spawn_rvssh(environment, "open", f"{sshbed.user}@{sshbed.host}:{sshbed.port}", "--no-browser")
    try:
        child.expect_exact("@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @")
        child.expect(r"The fingerprint for the ED25519 key sent by the remote host is\r\n(SHA256:\S+)\.")
        assert child.match.group(1) in host_key_fingerprints(sshbed)
        child.expect(r"The ED25519 key trusted for \[127.0.0.1\]:\d+ is\r\n(SHA256:\S+)\.")
        assert child.match.group(1) not in host_key_fingerprints(sshbed)
        child.expect_exact("rvssh trusts the old key: remove it on rvssh's page (Trusted host keys), or with")
        child.expect_exact(f'POST /api/remote/known-hosts/remove {{"host": "{sshbed.host}", "port": {sshbed.port}, '
                           '"key_type": "ssh-ed25519"}')
        child.expect_exact("rvssh: Host key verification failed.")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 1
        assert "password" not in child.before
    finally:
        child.close(force=True)
    assert known_hosts.read_text() == line  # nothing trusted
    assert rvssh_status(environment)["connections"] == []


def test_without_a_terminal_open_says_what_it_would_ask_and_fails(sshbed: SshBed, state_dir: Path) -> None:
    finished = run_rvssh(cli_environment(sshbed, state_dir), "open", sshbed.alias, "--no-browser")
    assert finished.returncode == 1
    last = finished.stderr.splitlines()[-1]
    assert re.fullmatch(rf"rvssh: The authenticity of host '\[127.0.0.1\]:{sshbed.port}' can't be established\. "
                        r"\S+ key fingerprint is SHA256:\S+\.; run rvssh in a terminal to answer", last), last
    assert finished.stdout == ""


def test_hosts_lists_the_bed_alias_resolved_by_ssh(sshbed: SshBed, state_dir: Path) -> None:
    environment = cli_environment(sshbed, state_dir)
    table = run_rvssh(environment, "hosts")
    assert table.returncode == 0, table.stderr
    header, row = table.stdout.splitlines()
    assert header.split() == ["ALIAS", "USER", "HOSTNAME", "PORT", "PROXYJUMP", "NOTE"]
    assert row.split() == [sshbed.alias, sshbed.user, sshbed.host, str(sshbed.port), "-"]
    answer = json.loads(run_rvssh(environment, "hosts", "--json").stdout)
    assert answer == {"files": [str(sshbed.ssh_config)], "hosts": [
        {"alias": sshbed.alias, "user": sshbed.user, "hostname": sshbed.host, "port": sshbed.port,
         "proxy_jump": None, "error": None}]}


@pytest.fixture(scope="module")
def password_and_code() -> Iterator[tuple[SshBed, Totp]]:
    """An sshd whose PAM conversation asks the account's password, then a TOTP code (as test_second_factor's)."""
    with otp_bed("rvssh-test-sshd-otp-cli", "keyboard-interactive", "auth requisite pam_unix.so\n") as bed:
        yield bed, Totp()


def test_open_asks_the_password_and_the_one_time_code_without_echo(
    password_and_code: tuple[SshBed, Totp], state_dir: Path
) -> None:
    bed, totp = password_and_code
    bed.user_known_hosts.write_text(bed.known_hosts_text())  # the key is trusted: only the questions remain
    environment = cli_environment(bed, state_dir)
    child = spawn_rvssh(environment, "open", f"{bed.user}@{bed.host}:{bed.port}", "--no-browser", "--detach",
                        "--env", "runicorn", "--root", storage_root())
    seen = io.StringIO()
    child.logfile_read = seen  # everything the terminal showed
    try:
        child.expect_exact("Password: ")
        child.sendline(bed.password)
        child.expect_exact(f"{OATH_PROMPT} ")
        code = totp.next_code()
        child.sendline(code)
        finish_detached_open(child)
        assert bed.password not in seen.getvalue() and code not in seen.getvalue()  # nothing typed was echoed
        assert "A second factor" not in seen.getvalue()  # the questions as the server words them
        stopped = run_rvssh(environment, "stop", "--all")
        assert stopped.returncode == 0, stopped.stderr
    finally:
        child.close(force=True)
        end_masters(state_dir)
