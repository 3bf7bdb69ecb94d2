"""EnvironmentService with kept answers: ports a kept config suggests, interpreters named without a round trip."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rvssh.services.environments import EnvironmentService
from rvssh.ssh.exec import CommandResult
from rvssh.ssh.target import Target
from rvssh.store.probe_cache import ProbeCache
from rvssh.store.records import MasterRecord

CONNECTION = "me@gpu:22"


class FakeConnections:
    """A live master for CONNECTION; nothing else."""

    def __init__(self) -> None:
        self.record = MasterRecord(CONNECTION, "gpu", 22, "me", "/cm/x", pid=4242, started_at=100.0, created_at=100.0)

    def live_record(self, connection_id: str) -> MasterRecord:
        assert connection_id == CONNECTION
        return self.record

    def require_live(self, connection_id: str) -> Target:
        return Target("gpu", 22, "me")

    def on_disconnect(self, hook: Any) -> None:
        pass


class FakeExecutor:
    """Answers each probe subcommand with a canned JSON object; counts the runs."""

    def __init__(self, answers: dict[str, dict[str, Any]]) -> None:
        self.answers = answers
        self.runs: list[str] = []

    def run(self, target: Target, program: bytes, timeout: float | None = None) -> CommandResult:
        words = program.split(b"\n", 1)[0].split()  # the launcher's "set -- <subcommand> <args>"
        subcommand = words[2].decode()
        self.runs.append(subcommand)
        return CommandResult(0, json.dumps(self.answers[subcommand]).encode() + b"\n", b"")


CONFIG = {"ok": True, "condaEnv": "base", "pythonVersion": "Python 3.11.2", "runicornVersion": "0.7.2",
          "pythonPath": "/opt/conda/bin/python", "defaultStorageRoot": "/home/me/runicorn_data",
          "storageRootExists": True, "suggestedRemotePort": 40001, "spareRemotePorts": [40002, 40003],
          "homeDirectory": "/home/me"}
ENVS = {"ok": True, "envs": [
    {"name": "base", "type": "conda", "python_version": "Python 3.11.2", "path": "/opt/conda/bin/python",
     "is_default": False, "runicorn_version": None},
    {"name": "gone", "type": "conda", "python_version": "Unknown", "path": "/opt/conda/envs/gone/bin/python",
     "is_default": False, "runicorn_version": None},
]}


@pytest.fixture
def executor() -> FakeExecutor:
    return FakeExecutor({"config": CONFIG, "envs": ENVS, "python-of": {"ok": True, "python": "/found/python"}})


def service(tmp_path: Path, executor: FakeExecutor, ports: set[int], max_age: float = 600) -> EnvironmentService:
    cache = ProbeCache(tmp_path / "cache", max_age=max_age, lock_timeout=5)
    return EnvironmentService(FakeConnections(), executor, cache, ports_in_use=lambda connection_id: ports)  # type: ignore[arg-type]


def test_a_kept_config_never_suggests_a_port_a_viewer_took(tmp_path: Path, executor: FakeExecutor) -> None:
    taken: set[int] = set()
    environments = service(tmp_path, executor, taken)
    assert environments.config(CONNECTION, "base")["suggestedRemotePort"] == 40001
    taken.add(40001)  # a viewer started on the suggested port
    again = environments.config(CONNECTION, "base")
    assert again["suggestedRemotePort"] == 40002 and again["condaEnv"] == "base"
    assert executor.runs == ["config"]  # the second answer was kept
    taken.update({40002, 40003})
    assert environments.config(CONNECTION, "base")["suggestedRemotePort"] == 40001  # all taken: the first


def test_the_interpreter_of_a_start_comes_from_kept_answers(tmp_path: Path, executor: FakeExecutor) -> None:
    environments = service(tmp_path, executor, set())
    target = Target("gpu", 22, "me")
    assert environments.python_for(target, "system") is None
    environments.conda_envs(CONNECTION)
    assert environments.python_for(target, "base") == "/opt/conda/bin/python"  # from conda-envs
    environments.config(CONNECTION, "base")
    assert environments.python_for(target, "base") == "/opt/conda/bin/python"  # from config
    assert executor.runs == ["envs", "config"]
    # An env whose python does not run is asked about (the probe says why it cannot be used).
    assert environments.python_for(target, "gone") == "/found/python"
    assert environments.python_for(target, "gone") == "/found/python"
    assert executor.runs == ["envs", "config", "python-of"]


def test_with_answers_kept_for_no_time_every_call_asks_the_server(tmp_path: Path, executor: FakeExecutor) -> None:
    environments = service(tmp_path, executor, set(), max_age=0)
    target = Target("gpu", 22, "me")
    environments.prefetch(target)  # nothing is asked ahead when nothing is kept
    assert executor.runs == []
    environments.conda_envs(CONNECTION)
    environments.conda_envs(CONNECTION)
    assert environments.config(CONNECTION, "base")["pythonPath"] == "/opt/conda/bin/python"
    assert environments.python_for(target, "base") == "/found/python"
    assert executor.runs == ["envs", "envs", "config", "python-of"]
