"""Local processes by pid and start time (rvssh/processes.py), on real processes."""

from __future__ import annotations

import os
import subprocess

import psutil

from rvssh.processes import is_running, started_at
from tests.sshbed import wait_until


def test_a_running_process_is_known_by_its_pid_and_start_time() -> None:
    started = started_at(os.getpid())
    assert started == psutil.Process(os.getpid()).create_time()
    assert is_running(os.getpid(), started)
    assert not is_running(os.getpid(), started + 5)  # a recycled pid has another start time
    assert is_running(os.getpid(), 0.0)  # unknown start time: the pid alone


def test_an_ended_process_does_not_run() -> None:
    child = subprocess.Popen(["true"])
    started = started_at(child.pid)
    assert started is not None
    # Not reaped yet: a zombie does not count as running.
    wait_until(lambda: psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE, 10, "true did not end")
    assert not is_running(child.pid, started)
    child.wait()
    assert not is_running(child.pid, started)
    assert started_at(child.pid) is None
