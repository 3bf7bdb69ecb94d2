"""Local processes, found the same way on Linux and macOS (psutil).

A master is known by its pid and its start time: a pid the OS recycled for
another process has another start time, so it never passes for our master.
"""

from __future__ import annotations

import functools
import os
import sys

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


@functools.cache
def _linux_clock() -> tuple[float, int]:
    """Return the boot time (epoch seconds, as psutil has it) and the clock ticks per second."""
    return psutil.boot_time(), os.sysconf("SC_CLK_TCK")


def _linux_state(pid: int) -> tuple[str, float] | None:
    """Return the state letter and start time of ``pid`` from one read of /proc/<pid>/stat, or None when gone.

    PERF: psutil reads the file two or three times for a status and a start
    time (about 45 µs); the reads of ``sessions`` and ``status`` check every
    master, so one read (about 8 µs) is what they cost (#14). The start time
    is computed as psutil does on Linux, so it compares with what it recorded.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = data[data.rindex(b")") + 2 :].split()
    boot, ticks = _linux_clock()
    return fields[0].decode("ascii", "replace"), boot + int(fields[19]) / ticks


def _same_start(found: float, started: float) -> bool:
    """Tell whether a process that started at ``found`` is the one recorded at ``started`` (0: not recorded)."""
    return abs(found - started) < _START_TIME_SLACK or started == 0.0


def is_running(pid: int, started: float) -> bool:
    """Return whether the process ``pid`` that started at ``started`` still runs (not a zombie)."""
    if sys.platform.startswith("linux"):
        try:
            found = _linux_state(pid)
        except (OSError, ValueError, IndexError):
            pass  # unreadable: ask psutil below
        else:
            if found is None or found[0] in ("Z", "X"):
                return False
            return _same_start(found[1], started)
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return _same_start(process.create_time(), started)
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True
