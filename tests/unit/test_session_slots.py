"""Session slots: what a server's refusals teach about its MaxSessions (#10).

Slots are flocks on files; several ``hold``s in one thread stand for the
commands of several threads or workers in flight.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from rvssh.ssh.exec import SessionSlots

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
