"""Session slots: what a server's refusals teach about its MaxSessions, and how a refused command waits (#10).

Slots are flocks on files; several ``hold``s in one thread stand for the
commands of several threads or workers in flight. The executor runs the
fake ssh of the unit tier, which refuses sessions as sshd does.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from rvssh.ssh.argv import SshCommon
from rvssh.ssh.errors import RemoteCommandError
from rvssh.ssh.exec import REFUSAL_PAUSES, RemoteExecutor, SessionSlots
from rvssh.ssh.target import make_target

FAKE_SSH = Path(__file__).parent / "fakessh" / "ssh"

KEY = "me@gpu:22"


def holding(slots: SessionSlots, count: int) -> contextlib.ExitStack:
    stack = contextlib.ExitStack()
    for _ in range(count):
        stack.enter_context(slots.hold(KEY))
    return stack


def test_a_refusal_teaches_the_sessions_the_server_allowed(tmp_path: Path) -> None:
    slots = SessionSlots(tmp_path, upper_bound=8)
    assert slots.limit(KEY) == 8
    with holding(slots, 3):
        # Three commands in flight, one refused: the server allowed the other two.
        assert slots.learn_refusal(KEY) == 2
    assert slots.limit(KEY) == 2


def test_more_refusals_at_the_same_moment_do_not_lower_it_further(tmp_path: Path) -> None:
    slots = SessionSlots(tmp_path, upper_bound=8)
    with holding(slots, 4):
        # Several of four refused at once (MaxSessions 3): each says 3, none one less than the last.
        assert [slots.learn_refusal(KEY) for _ in range(3)] == [3, 3, 3]
    assert slots.limit(KEY) == 3


def test_one_session_refused_alone_still_leaves_one(tmp_path: Path) -> None:
    slots = SessionSlots(tmp_path, upper_bound=8)
    with holding(slots, 1):
        assert slots.learn_refusal(KEY) == 1


def test_the_configured_bound_stays_the_upper_bound_and_forget_resets(tmp_path: Path) -> None:
    with holding(SessionSlots(tmp_path, upper_bound=8), 7):
        assert SessionSlots(tmp_path, upper_bound=8).learn_refusal(KEY) == 6
    assert SessionSlots(tmp_path, upper_bound=4).limit(KEY) == 4
    slots = SessionSlots(tmp_path, upper_bound=8)
    slots.forget(KEY)
    assert slots.limit(KEY) == 8


def executor(tmp_path: Path, scenario: str, pauses: list[float]) -> tuple[RemoteExecutor, SessionSlots, Path]:
    log = tmp_path / "calls"
    slots = SessionSlots(tmp_path / "slots", upper_bound=8)
    runner = RemoteExecutor(
        SshCommon(str(FAKE_SSH), tmp_path / "ssh_config"),
        control_path=lambda target: tmp_path / "cm",
        is_alive=lambda target: True,
        slots=slots,
        environ=dict(os.environ, FAKE_SSH_SCENARIO=scenario, FAKE_SSH_LOG=str(log)),
        timeout=1,
        sleep=pauses.append,
    )
    return runner, slots, log


def test_a_refused_session_is_asked_for_again_soon(tmp_path: Path) -> None:
    pauses: list[float] = []
    runner, slots, log = executor(tmp_path, "session-refused-once", pauses)
    result = runner.run(make_target("gpu", 22, "me"), b"echo ok\n")
    assert (result.exit_status, result.stdout) == (0, b"ok\n")
    assert pauses == [REFUSAL_PAUSES[0]]
    assert slots.limit("me@gpu:22") == 1
    assert log.read_text().count("exec") == 2


def test_a_server_that_refuses_every_session_is_asked_ever_more_slowly_then_named(tmp_path: Path) -> None:
    pauses: list[float] = []
    runner, _, _ = executor(tmp_path, "session-refused", pauses)
    with pytest.raises(RemoteCommandError, match=r"^Remote command failed: the server refused a session \d+ times "
                       r"in 1 s \(its MaxSessions allows none for this connection now\)$"):
        runner.run(make_target("gpu", 22, "me"), b"echo ok\n")
    assert pauses[:3] == list(REFUSAL_PAUSES[:3])
    assert pauses == sorted(pauses) and max(pauses) <= REFUSAL_PAUSES[-1]
