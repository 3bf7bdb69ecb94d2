"""Local processes, found the same way on Linux and macOS (psutil).

A master is known by its pid and its start time: a pid the OS recycled for
another process has another start time, so it never passes for our master.
"""

from __future__ import annotations

import psutil

# Start times are floats from the OS clock; allow for rounding between reads.
_START_TIME_SLACK = 1.0


def started_at(pid: int) -> float | None:
    """Return when process ``pid`` started (epoch seconds), or None when there is none."""
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:
        return 0.0


def is_running(pid: int, started: float) -> bool:
    """Return whether the process ``pid`` that started at ``started`` still runs (not a zombie)."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return abs(process.create_time() - started) < _START_TIME_SLACK or started == 0.0
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True
