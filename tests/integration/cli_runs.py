"""Run the ``rvssh`` command against the test sshd: under a pty (pexpect) or as a plain subprocess."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pexpect

from tests.integration.user_flow import tunnel_health
from tests.sshbed import TEST_HOME, SshBed, free_port, run_as_user, session_viewer_pids, wait_until

STORES = f"{TEST_HOME}/rv-cli-stores"
COMMAND_TIMEOUT = 90
URL = re.compile(r"http://localhost:(\d+)\r?\n")


def cli_environment(bed: SshBed, state_dir: Path, bind_port: int | None = None, **extra: str) -> dict[str, str]:
    """Return the environment of an ``rvssh`` command for the bed: its ssh config and known_hosts, a state dir.

    Without ``bind_port`` the bind is a free port where nothing answers, so
    the command works in process; with it, it finds that ``rvssh serve``.
    No agent: a login without a key is asked for the password.
    """
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith("RVSSH_") and key not in ("SSH_AUTH_SOCK", "SSH_AGENT_PID")}
    environment.update({
        "RVSSH_STATE_DIR": str(state_dir),
        "RVSSH_BIND": f"127.0.0.1:{bind_port or free_port()}",
        "RVSSH_SSH_CONFIG": str(bed.ssh_config),
        "RVSSH_USER_KNOWN_HOSTS": str(bed.user_known_hosts),
        "RVSSH_CONNECT_TIMEOUT": "8",
        "RVSSH_VIEWER_READY_TIMEOUT": "30",
        "RVSSH_MONITOR_INTERVAL": "0.2",
        # APPSEC: no test writes into a real OS keyring.
        "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
        "COLUMNS": "200",
        **extra,
    })
    return environment


def rvssh_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "rvssh.cli", *args]


def spawn_rvssh(environment: dict[str, str], *args: str) -> pexpect.spawn:
    """Start ``rvssh ARGS`` on a pty, as a person runs it."""
    return pexpect.spawn(rvssh_argv(*args)[0], rvssh_argv(*args)[1:], env=environment, encoding="utf-8",
                         timeout=COMMAND_TIMEOUT, dimensions=(40, 200))


def run_rvssh(environment: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``rvssh ARGS`` without a terminal and return what it did."""
    return subprocess.run(rvssh_argv(*args), env=environment, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=COMMAND_TIMEOUT, check=False)


def finish_detached_open(child: pexpect.spawn) -> int:
    """Read a detached `rvssh open` to its end; return the local port it printed, whose viewer answers."""
    child.expect(URL)
    port = int(child.match.group(1))
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert tunnel_health(port)["status"] == "ok"
    return port


def rvssh_status(environment: dict[str, str]) -> dict[str, Any]:
    """Return ``rvssh ls --json``."""
    listing = run_rvssh(environment, "ls", "--json")
    assert listing.returncode == 0, listing.stderr
    return json.loads(listing.stdout)


def storage_root() -> str:
    return f"{STORES}/{uuid.uuid4().hex[:6]}"


def remove_storage_roots() -> None:
    run_as_user(["rm", "-rf", STORES])


def wait_until_viewer_gone(session_id: str, timeout: float = 15) -> None:
    """Wait until no process of the session's viewer runs on the server (the stop's SIGTERM, then SIGKILL)."""
    wait_until(lambda: session_viewer_pids(session_id) == [], timeout, f"the viewer of {session_id} still runs")


def host_key_fingerprints(bed: SshBed) -> set[str]:
    """Return the SHA256 fingerprints of the bed's host keys."""
    found = set()
    for path in bed.dir.glob("ssh_host_*_key.pub"):
        listed = subprocess.run(["ssh-keygen", "-lf", str(path)], capture_output=True, text=True, check=True)
        found.add(listed.stdout.split()[1])
    return found
