"""Jump hosts: every hop's host key goes through the 409 flow, hop by hop (issue #10).

Three real sshds on 127.0.0.1: a bastion, a middle hop and a target, each
with its own host keys. The user's ssh config (``Settings.ssh_config``)
reaches the target through ``ProxyJump``; the hops log in with the
``IdentityFile`` the config names, the target with the request's key.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.integration.rvssh_fixtures import Rvssh, accept, detail, settings_for, start_rvssh, stop_rvssh
from tests.integration.user_flow import FlowExpectation, connect_through, run_whole_flow
from tests.sshbed import RUNICORN_VENV, TEST_HOME, TEST_USER, SshBed, free_port, wait_until

TARGET = "rvt-target"
FAR = "rvt-far"
DEAD_ROUTE = "rvt-dead-route"
REFUSING_ROUTE = "rvt-refusing-route"


class JumpRoute:
    """The beds of a route, the user's ssh config that joins them, and the user's known_hosts."""

    def __init__(self, bastion: SshBed, middle: SshBed, target: SshBed, directory: Path) -> None:
        self.bastion, self.middle, self.target = bastion, middle, target
        self.ssh_config = directory / "ssh_config"
        self.user_known_hosts = directory / "known_hosts"
        self.closed_port = free_port()
        self.ssh_config.write_text(
            self._host("rvt-bastion", bastion, bastion.key_plain)
            + self._host("rvt-middle", middle, middle.key_plain, jump="rvt-bastion")
            + self._host("rvt-bastion-refusing", bastion, bastion.key_unauthorised, keys_only=True)
            + self._host("rvt-closed", bastion, bastion.key_plain, port=self.closed_port)
            + self._host(TARGET, target, None, jump="rvt-bastion")
            + self._host(FAR, target, None, jump="rvt-bastion,rvt-middle")
            + self._host(DEAD_ROUTE, target, None, jump="rvt-closed")
            + self._host(REFUSING_ROUTE, target, None, jump="rvt-bastion-refusing")
        )

    @staticmethod
    def _host(
        alias: str, bed: SshBed, key: Path | None, jump: str | None = None, port: int | None = None,
        keys_only: bool = False,
    ) -> str:
        lines = [f"Host {alias}", f"    HostName {bed.host}", f"    Port {port or bed.port}", f"    User {TEST_USER}"]
        if key is not None:
            lines += [f"    IdentityFile {key}", "    IdentitiesOnly yes"]
        if keys_only:
            lines += ["    PasswordAuthentication no", "    KbdInteractiveAuthentication no"]
        if jump is not None:
            lines.append(f"    ProxyJump {jump}")
        return "\n".join(lines) + "\n\n"

    def hop(self, bed: SshBed) -> dict[str, Any]:
        """Return what a 409 must say of ``bed`` as ssh reaches it."""
        return {"host": bed.host, "port": bed.port, "known_hosts_host": f"[{bed.host}]:{bed.port}"}


@pytest.fixture(scope="module")
def route(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JumpRoute]:
    with SshBed() as bastion, SshBed() as middle, SshBed() as target:
        yield JumpRoute(bastion, middle, target, tmp_path_factory.mktemp("jump"))


@pytest.fixture
def through(route: JumpRoute, state_dir: Path) -> Iterator[Rvssh]:
    """Yield rvssh whose user config is the route's, with nothing trusted yet."""
    route.user_known_hosts.write_text("")
    settings = settings_for(
        state_dir, route.target, ssh_config=route.ssh_config, user_known_hosts=(str(route.user_known_hosts),)
    )
    instance = start_rvssh(settings, route.target)
    try:
        yield instance
    finally:
        stop_rvssh(instance)


def body(rvssh: Rvssh, host: str = TARGET) -> dict[str, Any]:
    return rvssh.connect_body(host=host, port=22)


def assert_hop(host_key: dict[str, Any], route: JumpRoute, bed: SshBed, reason: str = "unknown") -> None:
    assert {name: host_key[name] for name in ("host", "port", "known_hosts_host", "reason")} == {
        **route.hop(bed), "reason": reason}
    assert host_key["public_key"] == bed.host_public_keys()[host_key["key_type"]]


def managed_hosts(rvssh: Rvssh) -> list[str]:
    entries = rvssh.client.simulate_get("/api/remote/known-hosts/list").json["entries"]
    return sorted(entry["known_hosts_host"] for entry in entries)


def test_two_unknown_hops_in_a_row_then_the_whole_flow(through: Rvssh, route: JumpRoute) -> None:
    walk = connect_through(through, body(through))
    assert walk.result.status_code == 200, walk.result.text
    assert len(walk.host_keys) == 2
    assert_hop(walk.host_keys[0], route, route.bastion)
    assert_hop(walk.host_keys[1], route, route.target)
    assert managed_hosts(through) == sorted(route.hop(bed)["known_hosts_host"] for bed in (route.bastion, route.target))
    assert walk.result.json["connection_id"] == f"{TEST_USER}@{TARGET}:22"
    python = str(RUNICORN_VENV / "bin" / "python")
    run_whole_flow(
        through, body(through), f"{TEST_USER}@{TARGET}:22",
        FlowExpectation(user=TEST_USER, home=str(TEST_HOME), system_python="/usr/bin/python3",
                        conda_env=python, python=python),
    )


def test_every_hop_of_a_longer_route_in_order(through: Rvssh, route: JumpRoute) -> None:
    walk = connect_through(through, body(through, FAR))
    assert walk.result.status_code == 200, walk.result.text
    assert [key["port"] for key in walk.host_keys] == [route.bastion.port, route.middle.port, route.target.port]
    for host_key, bed in zip(walk.host_keys, (route.bastion, route.middle, route.target)):
        assert_hop(host_key, route, bed)


def test_a_bastion_the_user_knows_asks_only_for_the_target(through: Rvssh, route: JumpRoute) -> None:
    route.user_known_hosts.write_text(route.bastion.known_hosts_text())
    walk = connect_through(through, body(through))
    assert walk.result.status_code == 200, walk.result.text
    assert [key["port"] for key in walk.host_keys] == [route.target.port]
    # The user's known_hosts is read, never written.
    assert route.user_known_hosts.read_text() == route.bastion.known_hosts_text()
    assert managed_hosts(through) == [route.hop(route.target)["known_hosts_host"]]


def test_a_route_whose_keys_are_all_known_connects_at_once(through: Rvssh, route: JumpRoute) -> None:
    route.user_known_hosts.write_text(route.bastion.known_hosts_text() + route.target.known_hosts_text())
    logins = route.target.count_logins()
    result = through.client.simulate_post("/api/remote/connect", json=body(through))
    assert result.status_code == 200, result.text
    assert route.target.count_logins() == logins + 1


def test_a_changed_bastion_key_names_the_bastion_and_its_old_key(through: Rvssh, route: JumpRoute) -> None:
    old = route.bastion.host_public_keys()
    assert connect_through(through, body(through)).result.status_code == 200
    through.services.masters.exit(through.target)
    route.bastion.restart(new_host_keys=True)
    result = through.client.simulate_post("/api/remote/connect", json=body(through))
    assert result.status_code == 409, result.text
    host_key = result.json["detail"]["host_key"]
    assert_hop(host_key, route, route.bastion, reason="changed")
    assert host_key["expected_public_key"] == old[host_key["key_type"]]
    accept(through, host_key)
    assert through.client.simulate_post("/api/remote/connect", json=body(through)).status_code == 200


def hop_failure(target: str, jump: str) -> str:
    return (
        f"Connection failed: the jump host {jump} (ProxyJump) closed the connection before {target} answered "
        f"(unreachable, a refused login, or no way on to {target}); ssh {target} in a terminal shows which "
        "(ssh said: Connection closed by UNKNOWN port 65535)"
    )


def test_an_unreachable_bastion_is_named(through: Rvssh, route: JumpRoute) -> None:
    result = through.client.simulate_post("/api/remote/connect", json=body(through, DEAD_ROUTE))
    assert detail(result, 500) == hop_failure(DEAD_ROUTE, "rvt-closed")


def test_a_bastion_that_refuses_the_login_is_named(through: Rvssh, route: JumpRoute) -> None:
    route.user_known_hosts.write_text(route.bastion.known_hosts_text() + route.target.known_hosts_text())
    refusals = route.bastion.count_lines("Connection closed by authenticating user")
    logins = route.target.count_logins()
    result = through.client.simulate_post("/api/remote/connect", json=body(through, REFUSING_ROUTE))
    assert detail(result, 500) == hop_failure(REFUSING_ROUTE, "rvt-bastion-refusing")
    wait_until(lambda: route.bastion.count_lines("Connection closed by authenticating user") == refusals + 1, 5,
               "the bastion logged no refused login", context=route.bastion.log_text)
    assert route.target.count_logins() == logins
    left = subprocess.run(["pgrep", "-f", f"ControlPath=\"{through.settings.state_dir}"], capture_output=True)
    assert left.stdout == b""
