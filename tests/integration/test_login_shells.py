"""Any login shell, the login PATH's python, and a server without python (issue #10).

Against a real sshd (with a Banner) whose accounts log in with bash, dash,
zsh, ksh, tcsh, csh and fish; each one's start-up files put a venv first on
the PATH and print words on stdout and stderr. One account has no python on
its PATH at all.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import pytest

from tests.integration.rvssh_fixtures import Rvssh, detail, get, ok_json, rvssh_for
from tests.integration.server_beds import (
    BANNER,
    NOPYTHON_BIN,
    SHELL_CANARY,
    SHELL_SYNTAX_DIR,
    TEST_USER_BASH,
    TEST_USER_CSH,
    TEST_USER_DASH,
    TEST_USER_FISH,
    TEST_USER_KSH,
    TEST_USER_NOPYTHON,
    TEST_USER_TCSH,
    TEST_USER_ZSH,
    VENV_LINK,
    home_of,
)
from tests.integration.user_flow import FlowExpectation, connect_through, run_whole_flow, viewer_pids
from tests.sshbed import RUNICORN_VENV, SYSTEM_PYTHON, TEST_USER, SshBed, run_as

if TYPE_CHECKING:
    from tests.integration.user_flow import Walk

SHELL_USERS = {
    "bash": TEST_USER_BASH,
    "dash": TEST_USER_DASH,
    "zsh": TEST_USER_ZSH,
    "ksh": TEST_USER_KSH,
    "tcsh": TEST_USER_TCSH,
    "csh": TEST_USER_CSH,
    "fish": TEST_USER_FISH,
}


@pytest.fixture
def on_shells_bed(shells_bed: SshBed, state_dir: Path) -> Iterator[Rvssh]:
    """Yield rvssh for the shells bed, with a fresh state directory (its key still unknown)."""
    with rvssh_for(shells_bed, state_dir) as instance:
        yield instance


def body_for(rvssh: Rvssh, user: str, **overrides: Any) -> dict[str, Any]:
    return rvssh.connect_body(username=user, **overrides)


def connection_id(rvssh: Rvssh, user: str) -> str:
    return f"{user}@{rvssh.bed.host}:{rvssh.bed.port}"


def connected(rvssh: Rvssh, user: str) -> Walk:
    walk = connect_through(rvssh, body_for(rvssh, user))
    assert walk.result.status_code == 200, walk.result.text
    return walk


@pytest.mark.parametrize("shell", list(SHELL_USERS))
def test_the_whole_flow_under_each_login_shell(on_shells_bed: Rvssh, shell: str) -> None:
    user = SHELL_USERS[shell]
    home = str(home_of(user))
    walk = connected(on_shells_bed, user)
    assert walk.result.json["username"] == user
    # The venv its start-up files put first on the PATH is `system`: what `ssh host python3` runs.
    python = f"{home}/{VENV_LINK}/bin/python3"
    run_whole_flow(
        on_shells_bed,
        body_for(on_shells_bed, user),
        connection_id(on_shells_bed, user),
        FlowExpectation(user=user, home=home, system_python=python, conda_env="system", python=python),
    )


@pytest.mark.parametrize("shell", list(SHELL_USERS))
def test_names_with_shell_syntax_reach_the_server_unchanged(on_shells_bed: Rvssh, shell: str) -> None:
    user = SHELL_USERS[shell]
    home = home_of(user)
    connected(on_shells_bed, user)
    cid = connection_id(on_shells_bed, user)
    listing = ok_json(get(on_shells_bed, "fs/list", connection_id=cid, path=f"~/{SHELL_SYNTAX_DIR}"))
    assert listing["path"] == f"{home}/{SHELL_SYNTAX_DIR}"
    assert [item["name"] for item in listing["items"]] == ["marker"]
    exists = ok_json(get(on_shells_bed, "fs/exists", connection_id=cid, path=f"~/{SHELL_SYNTAX_DIR}"))
    assert exists == {"path": f"~/{SHELL_SYNTAX_DIR}", "exists": True, "is_dir": True}
    assert not (home / SHELL_CANARY).exists()


def test_start_up_files_that_print_leave_answers_clean(on_shells_bed: Rvssh) -> None:
    # Every account's start-up files print on both streams, and the server shows a banner.
    bed = on_shells_bed.bed
    plain = subprocess.run(
        ["ssh", "-F", str(bed.ssh_config), "-o", "StrictHostKeyChecking=no", "-l", TEST_USER_DASH, bed.alias,
         "/bin/sh -c 'echo $PATH'"],
        env=bed.client_env(), capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
    )
    dash_path = f"{home_of(TEST_USER_DASH)}/venv/bin:/usr/local/bin:/usr/bin:/bin"
    assert plain.stdout.splitlines() == ["ssh rc says hello", dash_path]
    assert BANNER in plain.stderr.replace("\r", "")
    for user in SHELL_USERS.values():
        connected(on_shells_bed, user)
        exists = ok_json(get(on_shells_bed, "fs/exists", connection_id=connection_id(on_shells_bed, user), path="~"))
        assert exists == {"path": "~", "exists": True, "is_dir": True}
        configs = ok_json(get(on_shells_bed, "env-configs", connection_id=connection_id(on_shells_bed, user)))
        assert configs["configs"]["system"]["runicornVersion"] == "0.7.2", (user, configs)


def test_missing_runicorn_names_the_login_paths_python(on_shells_bed: Rvssh) -> None:
    # The test user's login PATH finds Debian's python3, which has no runicorn.
    connected(on_shells_bed, TEST_USER)
    body = body_for(on_shells_bed, TEST_USER, remote_root="~/rvt-never-made", conda_env="system")
    before = viewer_pids(TEST_USER)
    result = on_shells_bed.client.simulate_post("/api/remote/viewer/start", json=body)
    assert detail(result, 500) == (
        f"Failed to start Remote Viewer: runicorn is not installed in this environment ({SYSTEM_PYTHON}). "
        f"Install it with: {SYSTEM_PYTHON} -m pip install runicorn"
    )
    assert viewer_pids(TEST_USER) == before


# --- no python on the login PATH --------------------------------------------------------------

NOPYTHON_HOME = home_of(TEST_USER_NOPYTHON)
# An environment the server's filesystem holds, where conda-envs looks (~/.virtualenvs/<name>).
NOPYTHON_ENV = NOPYTHON_HOME / ".virtualenvs" / "rvt-found"


def remove_env_link() -> None:
    run_as(TEST_USER_NOPYTHON, ["rm", "-rf", str(NOPYTHON_ENV.parent)])


@pytest.fixture
def no_environment() -> Iterator[None]:
    """The no-python account has no environment either (as after a failed earlier run, made sure)."""
    remove_env_link()
    yield


@pytest.fixture
def one_environment() -> Iterator[Path]:
    """Give the no-python account one environment (a link to the runicorn venv); yield its interpreter."""
    remove_env_link()
    run_as(TEST_USER_NOPYTHON, ["mkdir", "-p", str(NOPYTHON_ENV.parent)])
    run_as(TEST_USER_NOPYTHON, ["ln", "-s", str(RUNICORN_VENV), str(NOPYTHON_ENV)])
    try:
        yield NOPYTHON_ENV / "bin" / "python"
    finally:
        remove_env_link()


def test_without_python_browsing_works_and_environments_say_none_was_found(
    on_shells_bed: Rvssh, no_environment: None
) -> None:
    rvssh = on_shells_bed
    cid = connection_id(rvssh, TEST_USER_NOPYTHON)
    connected(rvssh, TEST_USER_NOPYTHON)
    # The account really has no python on its PATH (its PATH is a folder of links).
    programs = run_as(TEST_USER_NOPYTHON, ["ls", str(NOPYTHON_HOME / NOPYTHON_BIN)]).stdout.split()
    assert "sh" in programs and not {"python", "python3"} & set(programs)
    listing = ok_json(get(rvssh, "fs/list", connection_id=cid, path="~"))
    assert listing["path"] == str(NOPYTHON_HOME)
    assert NOPYTHON_BIN in [item["name"] for item in listing["items"] if item["is_dir"]]
    assert ok_json(get(rvssh, "fs/exists", connection_id=cid, path=f"~/{NOPYTHON_BIN}")) == {
        "path": f"~/{NOPYTHON_BIN}", "exists": True, "is_dir": True}
    none_found = ("No Python found on the server: no python3 or python on the PATH of the login shell "
                  "and no conda or virtualenv environment in the usual places")
    assert detail(get(rvssh, "conda-envs", connection_id=cid), 500) == f"Failed to detect environments: {none_found}"
    assert detail(get(rvssh, "config", connection_id=cid, conda_env="system"), 500) == (
        f"Failed to get remote configuration: {none_found}")
    start = rvssh.client.simulate_post("/api/remote/viewer/start", json=body_for(
        rvssh, TEST_USER_NOPYTHON, remote_root="~/rvt-never-made", conda_env="system"))
    assert detail(start, 500) == ("Failed to start Remote Viewer: No Python found on the server: "
                                  "no python3 or python on the PATH of the login shell")
    assert not (NOPYTHON_HOME / "rvt-never-made").exists()


def test_without_python_environments_are_found_on_disk_and_run_by_path(
    on_shells_bed: Rvssh, one_environment: Path
) -> None:
    rvssh = on_shells_bed
    cid = connection_id(rvssh, TEST_USER_NOPYTHON)
    connected(rvssh, TEST_USER_NOPYTHON)
    envs = ok_json(get(rvssh, "conda-envs", connection_id=cid))["envs"]
    assert [(env["name"], env["type"], env["path"], env["runicorn_version"], env["is_default"]) for env in envs] == [
        ("rvt-found", "venv", str(one_environment), "0.7.2", True)
    ]
    by_path = ok_json(get(rvssh, "env-configs", connection_id=cid, conda_env=str(one_environment)))["configs"]
    assert by_path[str(one_environment)] == by_path["rvt-found"] == {
        "pythonVersion": by_path["rvt-found"]["pythonVersion"], "runicornVersion": "0.7.2"}
    # The viewer runs in that environment, named by its interpreter's path.
    run_whole_flow(
        rvssh,
        body_for(rvssh, TEST_USER_NOPYTHON),
        cid,
        FlowExpectation(user=TEST_USER_NOPYTHON, home=str(NOPYTHON_HOME), system_python=None,
                        conda_env=str(one_environment), python=str(one_environment)),
    )
    by_name = ok_json(get(rvssh, "config", connection_id=cid, conda_env="rvt-found"))
    assert (by_name["pythonPath"], by_name["runicornVersion"]) == (str(one_environment), "0.7.2")
    assert detail(get(rvssh, "config", connection_id=cid, conda_env="system"), 404) == (
        "No python3 or python on the PATH of the login shell: pick an environment, or name an interpreter by its path")
