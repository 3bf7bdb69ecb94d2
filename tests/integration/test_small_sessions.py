"""A server that allows one session per connection (``MaxSessions 1``) and shows a Banner (issue #10).

When the server refuses a session, rvssh learns that connection's limit,
queues its commands under it and retries the refused one: requests sent all
at once all succeed, and the whole user flow (viewer included) works. The
banner's last line ends like a question and has no newline, as a banner
file saved without one does: it is shown, never taken for a question.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterator

import falcon.testing
import pytest

from rvssh.ssh.exec import SessionSlots
from tests.integration.rvssh_fixtures import Rvssh, get, ok_json, rvssh_for
from tests.integration.user_flow import FlowExpectation, run_whole_flow
from tests.sshbed import RUNICORN_VENV, TEST_HOME, TEST_USER, SshBed

VENV_PYTHON = str(RUNICORN_VENV / "bin" / "python")
# sshd's words (LogLevel VERBOSE and above) when it refuses one more session.
REFUSED = "no more sessions"
BANNER = "*** rvssh test server ***\nAuthorized use only. Questions? Ask the admin:"


@pytest.fixture(scope="module")
def small_bed() -> Iterator[SshBed]:
    with SshBed(sshd_options=["MaxSessions 1", "Banner {dir}/banner"], files={"banner": BANNER}) as bed:
        yield bed


@pytest.fixture
def small(small_bed: SshBed, state_dir: Path) -> Iterator[Rvssh]:
    """Yield rvssh connected to the small server (its key trusted through the user's known_hosts)."""
    with rvssh_for(small_bed, state_dir, key_known=True) as instance:
        assert instance.connect().status_code == 200
        yield instance


def learned_limit(rvssh: Rvssh) -> int:
    """Return the limit rvssh keeps for the connection (in its state dir, shared by its workers)."""
    slots = SessionSlots(rvssh.settings.state_dir / "locks" / "sessions", rvssh.settings.max_sessions_per_master)
    return slots.limit(rvssh.target.connection_id)


def test_requests_sent_at_once_all_succeed(small: Rvssh) -> None:
    assert learned_limit(small) == small.settings.max_sessions_per_master
    cid = small.target.connection_id
    calls = [
        ("conda-envs", {}), ("env-configs", {}), ("config", {"conda_env": "runicorn"}),
        ("fs/list", {"path": "~"}), ("fs/exists", {"path": "~"}), ("storage-candidates", {}),
    ] * 2
    results: dict[int, falcon.testing.Result] = {}

    def call(index: int) -> None:
        endpoint, params = calls[index]
        results[index] = get(small, endpoint, connection_id=cid, **params)

    threads = [threading.Thread(target=call, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {index: results[index].status_code for index in results} == {index: 200 for index in range(len(calls))}, [
        result.text for result in results.values() if result.status_code != 200]
    assert ok_json(results[2])["pythonPath"] == VENV_PYTHON
    assert ok_json(results[4]) == {"path": "~", "exists": True, "is_dir": True}
    # The server did refuse sessions, and rvssh now keeps to its limit.
    assert REFUSED in small.bed.log_text()
    assert learned_limit(small) == 1


def test_the_whole_flow_one_session_at_a_time(small: Rvssh) -> None:
    run_whole_flow(
        small, small.connect_body(), small.target.connection_id,
        FlowExpectation(user=TEST_USER, home=str(TEST_HOME), system_python="/usr/bin/python3",
                        conda_env="runicorn", python=VENV_PYTHON),
    )
