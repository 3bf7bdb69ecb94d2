"""Run programs on the server over a live ControlMaster.

:WARNING: ssh joins its remote arguments with spaces and the login shell
parses the result again, and login shells do not agree on quoting (fish
treats backslashes in single quotes, tcsh expands ``!``). So the remote
command is always the plain words ``/bin/sh -s`` and the program, with its
arguments quoted for POSIX sh, travels on stdin (see
``rvssh/remote/launcher.py``). No request string ever reaches the login shell.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import random
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from rvssh.files import make_private_dir, write_bytes_atomic
from rvssh.ssh.argv import SshCommon, build_exec_argv
from rvssh.ssh.errors import MasterGoneError, RemoteCommandError, SshCommandError
from rvssh.ssh.process import run_command
from rvssh.ssh.target import Target

log = logging.getLogger(__name__)

# What a mux client prints when sshd refuses one more session (MaxSessions).
_SESSION_REFUSED = re.compile(rb"Session open refused|open failed")
# Pauses before a refused session is asked for again: a session that just
# ended may count on the server for a moment longer, so the first retries
# come soon; a server that refuses every session (MaxSessions 0) is not
# asked a hundred times a second.
REFUSAL_PAUSES = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


@dataclass(frozen=True)
class CommandResult:
    """What a remote command left behind."""

    exit_status: int
    stdout: bytes
    stderr: bytes

    def stderr_text(self, limit: int = 2000) -> str:
        return self.stderr.decode("utf-8", errors="replace")[-limit:].strip()


class SessionSlots:
    """Cap concurrent sessions per master below the server's MaxSessions.

    Each slot is an flock on a file, so the cap holds across the threads and
    the gunicorn workers of one state directory. The cap starts at the
    configured upper bound (``--max-sessions``) and drops to what a server
    proves it allows: when it refuses a session, the number of sessions in
    flight at that moment is its limit, kept in ``<stem>.limit`` for the life
    of that master.
    """

    def __init__(self, lock_dir: Path, upper_bound: int) -> None:
        self._lock_dir = lock_dir
        self._upper_bound = upper_bound
        self._local: dict[str, threading.BoundedSemaphore] = {}
        self._local_guard = threading.Lock()

    def _stem(self, key: str) -> str:
        return hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]

    def _slot_paths(self, key: str, count: int) -> list[Path]:
        return [self._lock_dir / f"{self._stem(key)}.slot{index}" for index in range(count)]

    def _limit_path(self, key: str) -> Path:
        return self._lock_dir / f"{self._stem(key)}.limit"

    def limit(self, key: str) -> int:
        """Return how many sessions ``key``'s master may have at once now."""
        try:
            learned = int(self._limit_path(key).read_text())
        except (OSError, ValueError):
            return self._upper_bound
        return max(1, min(learned, self._upper_bound))

    def forget(self, key: str) -> None:
        """Drop what was learned about ``key`` (its master was replaced)."""
        self._limit_path(key).unlink(missing_ok=True)

    def _local_slots(self, key: str) -> threading.BoundedSemaphore:
        with self._local_guard:
            return self._local.setdefault(key, threading.BoundedSemaphore(self._upper_bound))

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        """Hold one of the slots of ``key`` for the duration of the block."""
        # PERF: threads of this process queue fairly on a semaphore first; the
        # file locks then only arbitrate between gunicorn workers.
        with self._local_slots(key):
            make_private_dir(self._lock_dir)
            descriptor = self._acquire(self._slot_paths(key, self.limit(key)))
            try:
                yield
            finally:
                os.close(descriptor)  # closing releases the flock

    def learn_refusal(self, key: str) -> int:
        """Record that the server refused a session of ``key`` while we held one slot; return the new limit."""
        busy = 0
        for path in self._slot_paths(key, self._upper_bound):
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                busy += 1
            finally:
                os.close(descriptor)
        # Our own slot counts as busy: the sessions the server did allow are the
        # others. Commands refused at the same moment all learn the same number
        # (never one fewer per refusal, which sank MaxSessions 3 to 2 or 1).
        limit = max(1, min(busy - 1, self.limit(key)))
        write_bytes_atomic(self._limit_path(key), str(limit).encode("ascii"))
        return limit

    @staticmethod
    def _acquire(paths: list[Path]) -> int:
        for path in paths:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return descriptor
            except BlockingIOError:
                os.close(descriptor)
        # All busy: queue on one slot (blocking, no polling).
        descriptor = os.open(random.choice(paths), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        return descriptor


class RemoteExecutor:
    """Run programs on the server through an existing master; never logs in anew."""

    def __init__(
        self,
        common: SshCommon,
        control_path: Callable[[Target], Path],
        is_alive: Callable[[Target], bool],
        slots: SessionSlots,
        environ: dict[str, str],
        timeout: float,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._common = common
        self._control_path = control_path
        self._is_alive = is_alive
        self._slots = slots
        self._env = environ
        self._timeout = timeout
        self._sleep = sleep

    def run(self, target: Target, program: bytes, timeout: float | None = None) -> CommandResult:
        """Run ``program`` (a POSIX sh program, see remote/launcher.py) and return its result.

        A session the server refuses (its MaxSessions) is retried once a
        slot frees up, under the limit learned from the refusal.

        Raises:
            MasterGoneError: the master died before or during the command.
            RemoteCommandError: the command did not finish in time.
        """
        argv = build_exec_argv(self._common, target, self._control_path(target))
        limit = self._timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        refusals = 0
        while True:
            with self._slots.hold(target.connection_id):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RemoteCommandError(_waited_message(limit, refusals))
                try:
                    completed = run_command(argv, env=self._env, timeout=remaining, stdin=program)
                except SshCommandError as ex:
                    raise RemoteCommandError(f"Remote command timed out after {limit:g} s") from ex
                refused = completed.returncode == 255 and _SESSION_REFUSED.search(completed.stderr) is not None
                if refused:
                    allowed = self._slots.learn_refusal(target.connection_id)
            if not refused:
                break
            log.info("the server of %s refused a session; running at most %d at once on it",
                     target.connection_id, allowed)
            pause = REFUSAL_PAUSES[min(refusals, len(REFUSAL_PAUSES) - 1)]
            refusals += 1
            if deadline - time.monotonic() <= pause:
                raise RemoteCommandError(_waited_message(limit, refusals))
            self._sleep(pause)
        result = CommandResult(completed.returncode, completed.stdout, completed.stderr)
        # 255 is ssh's own failure code (a remote command may use it too).
        if result.exit_status == 255 and not self._is_alive(target):
            log.info("connection %s lost during a command; ssh said: %s", target.connection_id, result.stderr_text(300))
            raise MasterGoneError(f"Connection lost: the ssh connection {target.connection_id} is gone")
        return result


def _waited_message(limit: float, refusals: int) -> str:
    """Return the message of a command that found no session within ``limit`` seconds."""
    if refusals:
        return (f"Remote command failed: the server refused a session {refusals} times in {limit:g} s "
                "(its MaxSessions allows none for this connection now)")
    return f"Remote command timed out after {limit:g} s (waiting for a session)"
