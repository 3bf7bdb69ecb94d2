"""ssh config is the source of truth: aliases, User, IdentityFile, IdentitiesOnly, Include and Match (issue #10).

The user's config (``Settings.ssh_config``, which rvssh's own config
includes) names the shells bed by aliases; which account an alias logs in
as comes from a ``Match`` in a file it includes. A request without
``username`` logs in as ``ssh -G`` says.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.integration.rvssh_fixtures import Rvssh, ok_json, rvssh_for
from tests.integration.server_beds import TEST_USER_ZSH, home_of
from tests.integration.user_flow import FlowExpectation, connect_through, run_whole_flow
from tests.sshbed import TEST_USER, SshBed

ZSH_ALIAS = "rvt-gpu-zsh"
TEST_ALIAS = "rvt-gpu-test"
AGENT_ALIAS = "rvt-gpu-agent"
AGENTLESS_ALIAS = "rvt-gpu-agentless"


def write_user_config(bed: SshBed, directory: Path) -> Path:
    """Write a user's ssh config: aliases in the main file, users chosen by Match in an included one."""
    included = directory / "config.d"
    included.mkdir()
    (included / "10-users.conf").write_text(
        f"Match originalhost {ZSH_ALIAS}\n"
        f"    User {TEST_USER_ZSH}\n"
        f"Match originalhost {TEST_ALIAS},{AGENT_ALIAS},{AGENTLESS_ALIAS}\n"
        f"    User {TEST_USER}\n"
    )
    main = directory / "config"
    main.write_text(
        f"Include {included}/*.conf\n\n"
        f"Host rvt-gpu-*\n    HostName {bed.host}\n    Port {bed.port}\n\n"
        f"Host {ZSH_ALIAS} {TEST_ALIAS}\n    IdentityFile {bed.key_plain}\n    IdentitiesOnly yes\n\n"
        f"Host {AGENTLESS_ALIAS}\n    IdentityFile {bed.key_unauthorised}\n    IdentitiesOnly yes\n\n"
        f"Host {AGENT_ALIAS}\n    IdentityFile {bed.key_unauthorised}\n"
    )
    return main


@pytest.fixture(scope="module")
def user_config(shells_bed: SshBed, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_user_config(shells_bed, tmp_path_factory.mktemp("sshconfig"))


@pytest.fixture
def configured(shells_bed: SshBed, user_config: Path, state_dir: Path) -> Iterator[Rvssh]:
    """Yield rvssh reading the user config, with the bed's key trusted in the user's known_hosts."""
    with rvssh_for(shells_bed, state_dir, key_known=True, ssh_config=user_config) as instance:
        yield instance


def post_connect(rvssh: Rvssh, body: dict[str, Any]):
    return rvssh.client.simulate_post("/api/remote/connect", json=body)


def test_the_user_comes_from_the_config_and_names_the_connection(configured: Rvssh) -> None:
    bed = configured.bed
    body = {"host": ZSH_ALIAS, "use_agent": False}
    logins = bed.count_logins(TEST_USER_ZSH)
    result = post_connect(configured, body)
    assert ok_json(result) == {"ok": True, "connection_id": f"{TEST_USER_ZSH}@{ZSH_ALIAS}:22", "host": ZSH_ALIAS,
                               "port": 22, "username": TEST_USER_ZSH, "connected": True}
    assert bed.count_logins(TEST_USER_ZSH) == logins + 1
    sessions = configured.client.simulate_get("/api/remote/sessions").json["sessions"]
    assert [(entry["key"], entry["username"]) for entry in sessions] == [
        (f"{TEST_USER_ZSH}@{ZSH_ALIAS}:22", TEST_USER_ZSH)]
    home = str(home_of(TEST_USER_ZSH))
    python = f"{home}/venv/bin/python3"
    # The viewer start leaves the username out too, as the user did.
    run_whole_flow(
        configured, body, f"{TEST_USER_ZSH}@{ZSH_ALIAS}:22",
        FlowExpectation(user=TEST_USER_ZSH, home=home, system_python=python, conda_env="system", python=python),
    )


def test_a_username_given_wins_over_the_config(configured: Rvssh) -> None:
    result = post_connect(configured, {"host": ZSH_ALIAS, "username": TEST_USER, "use_agent": False})
    assert (ok_json(result)["username"], result.json["connection_id"]) == (TEST_USER, f"{TEST_USER}@{ZSH_ALIAS}:22")


def test_identities_only_keeps_the_agents_keys_out(configured: Rvssh) -> None:
    # Both aliases name a key the server refuses; the agent holds one it accepts.
    refused = post_connect(configured, {"host": AGENTLESS_ALIAS, "use_agent": True})
    assert refused.status_code == 401, refused.text
    assert [prompt["kind"] for prompt in refused.json["detail"]["prompts"]] == ["password"]
    assert ok_json(post_connect(configured, {"host": AGENT_ALIAS, "use_agent": True}))["username"] == TEST_USER


def test_an_alias_goes_through_the_409_flow_under_its_host_name(
    shells_bed: SshBed, user_config: Path, state_dir: Path
) -> None:
    with rvssh_for(shells_bed, state_dir, ssh_config=user_config) as instance:
        walk = connect_through(instance, {"host": TEST_ALIAS, "use_agent": False})
        assert walk.result.json["connection_id"] == f"{TEST_USER}@{TEST_ALIAS}:22"
        assert [(key["host"], key["port"]) for key in walk.host_keys] == [(shells_bed.host, shells_bed.port)]
