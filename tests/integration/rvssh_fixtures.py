"""Fixtures that run rvssh (the WSGI app in process) against the test sshd."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import falcon.testing
import pytest

from rvssh.app import create_app
from rvssh.services.container import Services, build_services
from rvssh.settings import Settings
from rvssh.ssh.target import Target
from tests import callers
from tests.sshbed import SshBed

# The app answers only requests addressed to a loopback name (issue #5).
LOOPBACK_HOST = {"Host": "127.0.0.1"}
# The fields of a 409's host_key that known-hosts/accept takes back.
ACCEPT_FIELDS = ("host", "port", "key_type", "public_key", "fingerprint_sha256")


@dataclass
class Rvssh:
    """One rvssh instance under test: its settings, services and an HTTP client."""

    settings: Settings
    services: Services
    client: falcon.testing.TestClient
    bed: SshBed
    restarts: list["Rvssh"] = field(default_factory=list)

    def connect_body(self, **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "host": self.bed.host,
            "port": self.bed.port,
            "username": self.bed.user,
            "private_key_path": str(self.bed.key_plain),
            "use_agent": False,
        }
        body.update(overrides)
        return body

    def trust_host(self) -> None:
        """Go through the 409 → accept flow once, as the Runicorn UI does."""
        response = self.client.simulate_post("/api/remote/connect", json=self.connect_body())
        if response.status_code == 409:
            accept(self, response.json["detail"]["host_key"])

    def connect(self, **overrides: Any) -> falcon.testing.Result:
        return self.client.simulate_post("/api/remote/connect", json=self.connect_body(**overrides))

    @property
    def target(self) -> Target:
        return Target(self.bed.host, self.bed.port, self.bed.user)

    def restarted(self) -> "Rvssh":
        """Return a new rvssh on the same state directory (as after a restart)."""
        again = start_rvssh(self.settings, self.bed)
        self.restarts.append(again)
        return again


def accept(rvssh: Rvssh, host_key: dict[str, Any]) -> None:
    """Trust a 409's key as the UI does: post its fields back to known-hosts/accept."""
    accepted = rvssh.client.simulate_post(
        "/api/remote/known-hosts/accept", json={name: host_key[name] for name in ACCEPT_FIELDS}
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json == {"ok": True}, accepted.text


def get(rvssh: Rvssh, endpoint: str, **params: Any) -> falcon.testing.Result:
    """GET ``/api/remote/<endpoint>`` on rvssh's connection to the bed (connection_id defaulted)."""
    params.setdefault("connection_id", rvssh.target.connection_id)
    return rvssh.client.simulate_get(f"/api/remote/{endpoint}", params=params)


def ok_json(result: falcon.testing.Result) -> Any:
    """Assert a 200 and return its JSON."""
    assert result.status_code == 200, result.text
    return result.json


def detail(result: falcon.testing.Result, status: int) -> str:
    """Assert ``status`` with a string ``detail`` and return it."""
    assert result.status_code == status, result.text
    assert isinstance(result.json["detail"], str), result.json
    return result.json["detail"]


def end_all_masters(services: Services) -> None:
    """Send ``-O exit`` to every master this state directory knows about."""
    for entry in services.connections.list():
        host, port, user = entry.host, entry.port, entry.username
        services.masters.exit(Target(host, port, user))


@pytest.fixture
def state_dir() -> Iterator[Path]:
    """Yield a short private state dir (control sockets must fit sun_path)."""
    path = Path(tempfile.mkdtemp(prefix="rvs-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def settings_for(state_dir: Path, bed: SshBed, **overrides: Any) -> Settings:
    """Return rvssh's settings for a test against ``bed``: quick keepalives and monitor.

    No prefetch: tests count the sessions each call opens (test_answer_cache.py turns it on).
    """
    values: dict[str, Any] = dict(
        state_dir=state_dir,
        ssh_config=bed.ssh_config,
        user_known_hosts=(str(bed.user_known_hosts),),
        connect_timeout=8,
        viewer_ready_timeout=30,
        server_alive_interval=1,
        server_alive_count_max=3,
        monitor_interval=0.2,
        prefetch=False,
    )
    values.update(overrides)
    return Settings(**values)


def start_rvssh(settings: Settings, bed: SshBed) -> Rvssh:
    """Build rvssh's services for ``settings`` with its monitor running, and a client for its app."""
    services = build_services(settings, environ=bed.client_env(agent=True))
    services.monitor.start()
    client = falcon.testing.TestClient(create_app(settings, services, caller_uid=callers.owner), headers=LOOPBACK_HOST)
    return Rvssh(settings, services, client, bed)


def stop_rvssh(instance: Rvssh) -> None:
    """Stop the viewers and masters an rvssh under test started, then its monitor."""
    for viewer in instance.services.list_viewer_sessions():
        instance.client.simulate_post("/api/remote/viewer/stop", json={"session_id": viewer.session_id})
    end_all_masters(instance.services)
    for service in [instance, *instance.restarts]:
        service.services.monitor.stop()


@contextlib.contextmanager
def rvssh_for(bed: SshBed, state_dir: Path, key_known: bool = False, **overrides: Any) -> Iterator[Rvssh]:
    """Run rvssh for ``bed`` with ``state_dir``; the bed's key is in the user's known_hosts only if ``key_known``."""
    bed.user_known_hosts.write_text(bed.known_hosts_text() if key_known else "")
    instance = start_rvssh(settings_for(state_dir, bed, **overrides), bed)
    try:
        yield instance
    finally:
        stop_rvssh(instance)


@pytest.fixture
def rvssh(sshbed: SshBed, state_dir: Path) -> Iterator[Rvssh]:
    """Yield rvssh configured for the test sshd, with a fresh state directory."""
    with rvssh_for(sshbed, state_dir) as instance:
        yield instance


@pytest.fixture
def trusted(rvssh: Rvssh) -> Rvssh:
    """Yield rvssh with the test sshd's host key accepted."""
    rvssh.trust_host()
    return rvssh
