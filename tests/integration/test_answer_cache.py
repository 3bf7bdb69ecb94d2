"""Answers kept per connection, refresh, and the prefetch after a connect, against the real sshd (issue #14).

The new environment these tests make is a venv folder under the test
user's ``~/.virtualenvs`` (probe.py lists it from its pyvenv.cfg), removed
at the end.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.integration.remote_trees import HOME, give_to_user, remove_tree, session_counts
from tests.integration.rvssh_fixtures import Rvssh, get, ok_json, rvssh_for
from tests.sshbed import SshBed, wait_until

REMOTE = "/api/remote"


def quiet_sessions(bed: SshBed) -> int:
    """Wait until every ssh session sshd started is also closed; return how many were started."""
    def quiet() -> tuple[int] | None:
        started, closed = session_counts(bed)
        return (started,) if started == closed else None

    return wait_until(quiet, 10, "sshd still has a session open", context=bed.log_text)[0]


def names(answer: dict[str, Any]) -> set[str]:
    return {env["name"] for env in answer["envs"]}


@pytest.fixture
def prefetching(sshbed: SshBed, state_dir: Path) -> Iterator[Rvssh]:
    """rvssh as `rvssh serve` runs it: the prefetch after a login is on."""
    with rvssh_for(sshbed, state_dir, prefetch=True) as instance:
        instance.trust_host()
        yield instance


@pytest.fixture
def new_venv() -> Iterator[Path]:
    """A venv-shaped folder the probe lists (pyvenv.cfg and bin/python), made during a test."""
    path = HOME / ".virtualenvs" / f"rvt-cache-{time.monotonic_ns() % 10**8}"
    yield path
    remove_tree(path)


def make_venv(path: Path) -> None:
    (path / "bin").mkdir(parents=True)
    (path / "bin" / "python").symlink_to("/usr/bin/python3")
    (path / "pyvenv.cfg").write_text("home = /usr/bin\nversion = 3.11.2\n")
    give_to_user(path)


def test_the_connect_asks_for_the_environments_and_conda_envs_serves_that(prefetching: Rvssh) -> None:
    bed = prefetching.bed
    before = quiet_sessions(bed)
    connected_at = time.time()
    assert prefetching.connect().status_code == 200
    answer = ok_json(get(prefetching, "conda-envs"))
    asked_at = time.time()
    # The answer comes from the probe the connect started, not from one of its own...
    assert connected_at * 1000 - 1 <= answer["probed_at"] <= asked_at * 1000
    assert "system" in names(answer)
    # ...and the server was asked once in all.
    assert quiet_sessions(bed) - before == 1


def test_a_kept_answer_is_served_until_a_refresh(trusted: Rvssh, new_venv: Path) -> None:
    assert trusted.connect().status_code == 200
    first = ok_json(get(trusted, "conda-envs"))
    sessions = quiet_sessions(trusted.bed)
    make_venv(new_venv)
    kept = ok_json(get(trusted, "conda-envs"))
    assert session_counts(trusted.bed)[0] == sessions  # no round trip
    assert kept["probed_at"] == first["probed_at"] and kept["age_seconds"] >= 0
    assert new_venv.name not in names(kept)
    refreshed_at = time.time()
    fresh = ok_json(get(trusted, "conda-envs", refresh="true"))
    assert new_venv.name in names(fresh) and fresh["probed_at"] >= refreshed_at * 1000 - 1
    # The refresh is what is kept from now on.
    assert ok_json(get(trusted, "conda-envs"))["probed_at"] == fresh["probed_at"]


def test_config_and_env_configs_are_kept_and_refreshed_too(trusted: Rvssh) -> None:
    assert trusted.connect().status_code == 200
    for endpoint, params in (("config", {"conda_env": "system"}), ("env-configs", {})):
        first = ok_json(get(trusted, endpoint, **params))
        assert ok_json(get(trusted, endpoint, **params))["probedAt"] == first["probedAt"]
        refreshed = ok_json(get(trusted, endpoint, refresh="true", **params))
        assert refreshed["probedAt"] > first["probedAt"]


def test_a_new_master_never_serves_the_answer_of_the_one_before(trusted: Rvssh) -> None:
    assert trusted.connect().status_code == 200
    first = ok_json(get(trusted, "conda-envs"))
    disconnect = trusted.client.simulate_post(f"{REMOTE}/disconnect", json={
        "host": trusted.bed.host, "port": trusted.bed.port, "username": trusted.bed.user})
    assert disconnect.status_code == 200
    assert get(trusted, "conda-envs").status_code == 404  # no connection, no answer
    reconnected_at = time.time()
    assert trusted.connect().status_code == 200
    again = ok_json(get(trusted, "conda-envs"))
    assert again["probed_at"] > first["probed_at"] and again["probed_at"] >= reconnected_at * 1000 - 1
