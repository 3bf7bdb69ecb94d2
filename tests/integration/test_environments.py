"""conda-envs, env-configs, config and storage-candidates against the real sshd (issue #3).

The layouts (a conda install, venvs, a storage root written by runicorn) are
built in the test user's home by the fixtures of remote_trees.py.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.integration.remote_trees import (
    assert_one_session_each,
    HOME,
    RUNICORN_VERSION,
    SHELL_CANARY,
    SHELL_ENV_NAME,
    SYSTEM_PYTHON,
    system_version,
    EnvLayout,
    FsTree,
    StorageTree,
    env_layout,
    exists_as_user,
    fixed_names_lock,
    fs_tree,
    give_to_user,
    remove_tree,
    storage_tree,
    unique_home_path,
)
from tests.integration.rvssh_fixtures import Rvssh, detail, get, ok_json

__all__ = ["env_layout", "fixed_names_lock", "fs_tree", "storage_tree"]  # fixtures used by name

REMOTE = "/api/remote"
RUNICORN_CONFIG = HOME / ".config" / "runicorn" / "config.json"


@pytest.fixture
def connected(trusted: Rvssh) -> Rvssh:
    """rvssh with a live connection to the test sshd."""
    result = trusted.connect()
    assert result.status_code == 200, result.text
    return trusted


def connection_id(rvssh: Rvssh) -> str:
    return rvssh.target.connection_id


@pytest.fixture
def runicorn_user_config() -> Iterator[Path]:
    """Write the test user's runicorn config.json (restoring any previous one); yield the root it names."""
    root = unique_home_path("rvt-cfgroot")
    previous = RUNICORN_CONFIG.read_bytes() if RUNICORN_CONFIG.exists() else None
    RUNICORN_CONFIG.parent.mkdir(parents=True, exist_ok=True)
    try:
        RUNICORN_CONFIG.write_text(json.dumps({"user_root_dir": f"~/{root.name}"}))
        root.mkdir()
        give_to_user(root)
        give_to_user(RUNICORN_CONFIG)
        yield root
    finally:
        if previous is None:
            RUNICORN_CONFIG.unlink(missing_ok=True)
        else:
            RUNICORN_CONFIG.write_bytes(previous)
        remove_tree(root)


@pytest.fixture
def no_runicorn_user_config() -> Iterator[None]:
    """Make sure runicorn's config.json is absent for the test (restored afterwards)."""
    previous = RUNICORN_CONFIG.read_bytes() if RUNICORN_CONFIG.exists() else None
    RUNICORN_CONFIG.unlink(missing_ok=True)
    try:
        yield
    finally:
        if previous is not None:
            RUNICORN_CONFIG.write_bytes(previous)
            give_to_user(RUNICORN_CONFIG)


# --- conda-envs and env-configs ---------------------------------------------------------


def test_conda_envs_lists_conda_venv_and_system(connected: Rvssh, env_layout: EnvLayout) -> None:
    envs = ok_json(get(connected, "conda-envs"))
    assert envs["ok"] is True
    entries = envs["envs"]
    by_name = {entry["name"]: entry for entry in entries}
    assert len(by_name) == len(entries), "names must be unique"
    for entry in entries:
        assert set(entry) == {"name", "type", "python_version", "path", "is_default", "runicorn_version"}
        assert entry["type"] in ("conda", "venv", "system")
        assert entry["python_version"] == "Unknown" or entry["python_version"].startswith("Python 3."), entry
        assert os.path.isabs(entry["path"]), entry
    for expected in env_layout.envs.values():
        entry = by_name.get(expected.name)
        assert entry is not None, f"{expected.name} missing from {sorted(by_name)}"
        assert (entry["type"], entry["path"], entry["python_version"], entry["runicorn_version"]) == (
            expected.type, expected.path, expected.python_version, expected.runicorn_version), entry
    system = by_name["system"]
    assert system["type"] == "system"
    assert system["python_version"] == f"Python {system_version()}"
    assert os.path.realpath(system["path"]) == os.path.realpath(SYSTEM_PYTHON)
    # Nothing is active in a non-interactive exec: the system python is the default, alone.
    assert [entry["name"] for entry in entries if entry["is_default"]] == ["system"]
    # conda first (base, then its envs), system last.
    names = [entry["name"] for entry in entries]
    assert names.index("base") < names.index("withrv") and names[-1] == "system"


def test_env_configs_has_one_key_per_env_consistent_with_conda_envs(connected: Rvssh, env_layout: EnvLayout) -> None:
    envs = ok_json(get(connected, "conda-envs"))["envs"]
    configs = ok_json(get(connected, "env-configs"))
    assert configs["ok"] is True
    assert set(configs["configs"]) == {entry["name"] for entry in envs}
    for entry in envs:
        assert configs["configs"][entry["name"]] == {
            "pythonVersion": entry["python_version"],
            "runicornVersion": entry["runicorn_version"],
        }
    assert configs["configs"]["withrv"]["runicornVersion"] == RUNICORN_VERSION
    assert configs["configs"]["broken"]["pythonVersion"] == "Unknown"


# --- config ---------------------------------------------------------------------------------


def assert_free_port(port: Any) -> None:
    assert isinstance(port, int) and 1024 <= port <= 65535, port
    # The "remote" is this machine: the port must be bindable here, right now.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))


CONFIG_KEYS = {"ok", "condaEnv", "pythonVersion", "runicornVersion", "defaultStorageRoot", "storageRootExists",
               "suggestedRemotePort", "connectionId"}


@pytest.mark.usefixtures("no_runicorn_user_config")
def test_config_of_system_defaults_to_runicorn_data(connected: Rvssh, env_layout: EnvLayout) -> None:
    config = ok_json(get(connected, "config", conda_env="system"))
    assert CONFIG_KEYS <= set(config), config
    default_root = HOME / "runicorn_data"
    assert config["ok"] is True
    assert config["condaEnv"] == "system"
    assert config["connectionId"] == connection_id(connected)
    assert config["pythonVersion"] == f"Python {system_version()}"
    assert config["runicornVersion"] is None
    assert config["defaultStorageRoot"] == str(default_root)
    assert config["storageRootExists"] is default_root.is_dir()
    assert_free_port(config["suggestedRemotePort"])
    # No conda_env at all means system too, and the request's value is echoed.
    assert ok_json(get(connected, "config"))["condaEnv"] == "system"
    empty = ok_json(get(connected, "config", conda_env=""))
    assert (empty["condaEnv"], empty["pythonVersion"]) == ("", f"Python {system_version()}")


@pytest.mark.usefixtures("no_runicorn_user_config")
def test_config_of_conda_envs(connected: Rvssh, env_layout: EnvLayout) -> None:
    withrv = ok_json(get(connected, "config", conda_env="withrv"))
    assert (withrv["condaEnv"], withrv["pythonVersion"], withrv["runicornVersion"]) == (
        "withrv", f"Python {system_version()}", RUNICORN_VERSION)
    assert withrv["defaultStorageRoot"] == str(HOME / "runicorn_data")
    assert_free_port(withrv["suggestedRemotePort"])
    norv = ok_json(get(connected, "config", conda_env="norv"))
    assert (norv["pythonVersion"], norv["runicornVersion"]) == (f"Python {system_version()}", None)


def test_config_of_the_venv_uses_runicorns_user_config(
    connected: Rvssh, env_layout: EnvLayout, runicorn_user_config: Path
) -> None:
    config = ok_json(get(connected, "config", conda_env="runicorn"))
    assert (config["pythonVersion"], config["runicornVersion"]) == (f"Python {system_version()}", RUNICORN_VERSION)
    assert config["defaultStorageRoot"] == str(runicorn_user_config)
    assert config["storageRootExists"] is True
    # Without runicorn in the env, runicorn's config does not apply.
    system = ok_json(get(connected, "config", conda_env="system"))
    assert system["defaultStorageRoot"] == str(HOME / "runicorn_data")


def test_config_accepts_every_name_conda_envs_returns(connected: Rvssh, env_layout: EnvLayout) -> None:
    envs = ok_json(get(connected, "conda-envs"))["envs"]
    for entry in envs:
        result = get(connected, "config", conda_env=entry["name"])
        if entry["python_version"] == "Unknown":
            assert detail(result, 500) == f"Failed to run Python in environment: {entry['name']}"
            continue
        config = ok_json(result)
        assert config["condaEnv"] == entry["name"]
        expected = env_layout.envs.get(entry["name"])
        runicorn = expected.config_runicorn_version if expected else entry["runicorn_version"]
        assert (config["pythonVersion"], config["runicornVersion"]) == (entry["python_version"], runicorn), entry


def test_config_runicorn_version_is_null_when_runicorn_does_not_import(
    connected: Rvssh, env_layout: EnvLayout
) -> None:
    # Installed with --no-deps: conda-envs reads the version from disk ...
    envs = {entry["name"]: entry for entry in ok_json(get(connected, "conda-envs"))["envs"]}
    assert envs["nodeps"]["runicorn_version"] == RUNICORN_VERSION
    # ... config starts the interpreter anyway and sees that runicorn does not import.
    config = ok_json(get(connected, "config", conda_env="nodeps"))
    assert (config["pythonVersion"], config["runicornVersion"]) == (f"Python {system_version()}", None)
    # runicorn left in the site-packages of the env's previous python does not count.
    assert envs["norv"]["runicorn_version"] is None


def test_config_of_an_unknown_env_is_404(connected: Rvssh, env_layout: EnvLayout) -> None:
    result = get(connected, "config", conda_env="no-such-env")
    assert detail(result, 404) == "Environment 'no-such-env' not found. Please check the environment name."


# --- storage-candidates -----------------------------------------------------------------


def candidates_of(rvssh: Rvssh, **params: Any) -> dict[str, Any]:
    return ok_json(get(rvssh, "storage-candidates", **params))


def test_storage_candidates_finds_the_runicorn_root_first(connected: Rvssh, storage_tree: StorageTree) -> None:
    answer = candidates_of(connected, conda_env="system", scan_root=str(storage_tree.scan_root), max_depth=3)
    assert (answer["scan_root"], answer["max_depth"]) == (str(storage_tree.scan_root), 3)
    candidates = answer["candidates"]
    for candidate in candidates:
        assert set(candidate) == {"path", "run_count", "has_archive", "has_index", "score"}
    paths = [candidate["path"] for candidate in candidates]
    assert paths == [str(storage_tree.store), str(storage_tree.dot_runicorn),
                     str(storage_tree.archive_store), str(storage_tree.empty_named)]
    best = candidates[0]
    assert best["run_count"] == storage_tree.run_count
    assert (best["has_archive"], best["has_index"]) == (False, False)
    assert candidates[1]["run_count"] == 1
    assert (candidates[2]["has_archive"], candidates[2]["has_index"], candidates[2]["run_count"]) == (True, True, 0)
    scores = [candidate["score"] for candidate in candidates]
    assert scores == sorted(scores, reverse=True)
    for skipped in storage_tree.skipped:
        assert not any(path.startswith(str(skipped)) for path in paths), skipped


def test_storage_candidates_clamps_max_depth(connected: Rvssh, storage_tree: StorageTree) -> None:
    scan_root = str(storage_tree.scan_root)
    deep = candidates_of(connected, scan_root=scan_root, max_depth=99)
    assert deep["max_depth"] == 8
    assert str(storage_tree.deep_store) in [candidate["path"] for candidate in deep["candidates"]]
    for too_small in (0, -5):
        shallow = candidates_of(connected, scan_root=scan_root, max_depth=too_small)
        assert shallow["max_depth"] == 1
        assert [candidate["path"] for candidate in shallow["candidates"]] == [
            str(storage_tree.dot_runicorn), str(storage_tree.archive_store), str(storage_tree.empty_named)]
    default = candidates_of(connected, scan_root=scan_root)
    assert default["max_depth"] == 3
    assert str(storage_tree.deep_store) not in [candidate["path"] for candidate in default["candidates"]]


def test_storage_candidates_scans_home_by_default(connected: Rvssh, storage_tree: StorageTree) -> None:
    answer = candidates_of(connected, scan_root="~/" + storage_tree.scan_root.name, max_depth=3)
    assert answer["scan_root"] == str(storage_tree.scan_root)
    home = candidates_of(connected)
    assert home["scan_root"] == str(HOME)
    assert len(home["candidates"]) <= 12
    paths = [candidate["path"] for candidate in home["candidates"]]
    # rv-data lies 3 levels below home; other test runs may have left better roots there.
    ours = next((c for c in home["candidates"] if c["path"] == str(storage_tree.store)), None)
    if ours is None:
        assert len(paths) == 12 and min(c["score"] for c in home["candidates"]) >= 100 * storage_tree.run_count
    else:
        assert ours["run_count"] == storage_tree.run_count
    assert not any("/." in path[len(str(HOME)):] and not path.endswith("/.runicorn") for path in paths), paths


def test_storage_candidates_bad_scan_root_is_the_references_500(connected: Rvssh, fs_tree: FsTree) -> None:
    prefix = "Failed to detect remote storage candidates: "
    missing = HOME / f"rvt-missing-{uuid.uuid4().hex[:6]}"
    result = get(connected, "storage-candidates", scan_root=str(missing))
    assert detail(result, 500) == f"{prefix}Scan root does not exist: {missing}"
    result = get(connected, "storage-candidates", scan_root=str(fs_tree.a_file))
    assert detail(result, 500) == f"{prefix}Scan root is not a directory: {fs_tree.a_file}"
    result = get(connected, "storage-candidates", scan_root=str(fs_tree.no_access))
    assert detail(result, 500) == f"{prefix}Permission denied: {fs_tree.no_access}"
    result = get(connected, "storage-candidates", max_depth="deep")
    assert result.status_code == 422
    assert result.json["detail"][0]["loc"] == ["query", "max_depth"]


# --- connection_id errors and validation ------------------------------------------------

ENDPOINTS = ["conda-envs", "env-configs", "config", "storage-candidates"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_connection_id_errors(trusted: Rvssh, endpoint: str) -> None:
    result = get(trusted, endpoint, connection_id="not-an-id")
    assert detail(result, 400) == "Invalid connection_id format: not-an-id"
    absent = f"{trusted.bed.user}@{trusted.bed.host}:{trusted.bed.port}"  # well-formed, not connected
    result = get(trusted, endpoint, connection_id=absent)
    assert detail(result, 404) == f"Connection not found or inactive: {absent}"
    result = trusted.client.simulate_get(f"{REMOTE}/{endpoint}")
    assert result.status_code == 422, result.text
    (problem,) = result.json["detail"]
    assert {key: problem[key] for key in ("type", "loc", "msg")} == {
        "type": "missing", "loc": ["query", "connection_id"], "msg": "Field required"}


# --- injection ------------------------------------------------------------------------------


def payloads(canary: Path) -> list[str]:
    return [f"'; touch {canary}; '", f"$(touch {canary})", f"`touch {canary}`",
            f"x\ntouch {canary}\n", f'"; touch {canary}; "', f"system; touch {canary}", f"|| touch {canary}"]


def test_no_parameter_runs_a_command(connected: Rvssh, env_layout: EnvLayout, storage_tree: StorageTree) -> None:
    canary = HOME / f"rvt-canary-{uuid.uuid4().hex[:8]}"
    answered: list[int] = []
    for payload in payloads(canary):
        answered.append(get(connected, "config", conda_env=payload).status_code)
        answered.append(get(connected, "storage-candidates", conda_env=payload,
                            scan_root=str(storage_tree.scan_root)).status_code)
        # A payload scan root is just a folder that does not exist (the reference's 500).
        for scan_root in (payload, f"{storage_tree.scan_root}/{payload}"):
            missing = get(connected, "storage-candidates", scan_root=scan_root)
            assert detail(missing, 500).startswith("Failed to detect remote storage candidates: Scan root does not exist: ")
        for endpoint in ENDPOINTS:
            answered.append(get(connected, endpoint, connection_id=connection_id(connected) + payload).status_code)
            answered.append(get(connected, endpoint, connection_id=payload + connection_id(connected)).status_code)
    assert not exists_as_user(canary), f"a request string ran a command: {canary} exists"
    assert 500 not in answered and 502 not in answered, answered
    # An env whose folder name is shell syntax is listed and described like any other.
    assert SHELL_ENV_NAME in {entry["name"] for entry in ok_json(get(connected, "conda-envs"))["envs"]}
    assert ok_json(get(connected, "config", conda_env=SHELL_ENV_NAME))["condaEnv"] == SHELL_ENV_NAME
    assert not exists_as_user(HOME / SHELL_CANARY)
    # An env name that is a payload is just an unknown env.
    result = get(connected, "config", conda_env=payloads(canary)[0])
    assert detail(result, 404).startswith("Environment '';")


# --- round trips and latency ------------------------------------------------------------


def test_each_endpoint_is_one_round_trip(connected: Rvssh, env_layout: EnvLayout, storage_tree: StorageTree) -> None:
    # refresh=true: a kept answer would need none (test_answer_cache.py).
    calls = {
        "conda-envs": lambda: get(connected, "conda-envs", refresh="true"),
        "env-configs": lambda: get(connected, "env-configs", refresh="true"),
        "config system": lambda: get(connected, "config", conda_env="system", refresh="true"),
        "config withrv": lambda: get(connected, "config", conda_env="withrv", refresh="true"),
        "config runicorn": lambda: get(connected, "config", conda_env="runicorn", refresh="true"),
        "storage-candidates": lambda: get(connected, "storage-candidates", scan_root=str(storage_tree.scan_root)),
        "storage-candidates ~": lambda: get(connected, "storage-candidates"),
    }
    assert_one_session_each(connected.bed, calls)
