"""Run remote commands and scripts over a live ControlMaster.

:WARNING: ssh joins its remote arguments with spaces and the remote login
shell parses the result again. Every word that reaches the remote command
line here goes through :func:`shlex.quote`; scripts travel on stdin and
request strings only ever as quoted arguments.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import random
import shlex
import subprocess
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from rvssh.ssh.argv import SshCommon, build_exec_argv
from rvssh.ssh.errors import MasterGoneError, RemoteCommandError
from rvssh.ssh.target import Target

# Runs the script on stdin with the first python found on the remote PATH.
_FIND_PYTHON = (
    'for p in python3 python; do if command -v "$p" >/dev/null 2>&1; then exec "$p" "$@"; fi; done; '
    'echo "rvssh: no python3 or python on the remote PATH" >&2; exit 127'
)


def build_python_command(args: list[str], python: str | None = None, flags: tuple[str, ...] = ()) -> str:
    """Return the remote command line that runs a Python script read from stdin.

    Args:
        args: the script's arguments; each is quoted.
        python: an interpreter path on the remote; default: python3, then python.
        flags: interpreter options before ``-`` (constants such as ``-I``).
    """
    words = [*flags, "-", *args]
    if python is None:
        return shlex.join(["sh", "-c", _FIND_PYTHON, "rvssh", *words])
    return shlex.join([python, *words])


@dataclass(frozen=True)
class CommandResult:
    """What a remote command left behind."""

    exit_status: int
    stdout: bytes
    stderr: bytes

    def stderr_text(self, limit: int = 2000) -> str:
        return self.stderr.decode("utf-8", errors="replace")[-limit:].strip()


class SessionSlots:
    """Cap concurrent sessions per master below sshd's MaxSessions (10).

    Each slot is an flock on a file, so the cap holds across the threads and
    the gunicorn workers of one state directory.
    """

    def __init__(self, lock_dir: Path, count: int) -> None:
        self._lock_dir = lock_dir
        self._count = count
        self._local: dict[str, threading.BoundedSemaphore] = {}
        self._local_guard = threading.Lock()

    def _local_slots(self, key: str) -> threading.BoundedSemaphore:
        with self._local_guard:
            return self._local.setdefault(key, threading.BoundedSemaphore(self._count))

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        """Hold one of the ``count`` slots of ``key`` for the duration of the block."""
        # PERF: threads of this process queue fairly on a semaphore first; the
        # file locks then only arbitrate between gunicorn workers.
        with self._local_slots(key):
            self._lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            stem = hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]
            paths = [self._lock_dir / f"{stem}.slot{index}" for index in range(self._count)]
            descriptor = self._acquire(paths)
            try:
                yield
            finally:
                fcntl.flock(descriptor, fcntl.LOCK_UN)
                os.close(descriptor)

    @staticmethod
    def _acquire(paths: list[Path]) -> int:
        for path in paths:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return descriptor
            except BlockingIOError:
                os.close(descriptor)
        # All busy: queue on one slot (blocking, no polling).
        descriptor = os.open(random.choice(paths), os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        return descriptor


class RemoteExecutor:
    """Run commands on the server through an existing master; never logs in anew."""

    def __init__(
        self,
        common: SshCommon,
        control_path: Callable[[Target], Path],
        is_alive: Callable[[Target], bool],
        slots: SessionSlots,
        environ: dict[str, str],
        timeout: float,
    ) -> None:
        self._common = common
        self._control_path = control_path
        self._is_alive = is_alive
        self._slots = slots
        self._env = environ
        self._timeout = timeout

    def run(self, target: Target, remote_command: str, stdin: bytes = b"", timeout: float | None = None) -> CommandResult:
        """Run ``remote_command`` (already quoted) and return its result.

        Raises:
            MasterGoneError: the master died before or during the command.
            RemoteCommandError: the command timed out.
        """
        argv = build_exec_argv(self._common, target, self._control_path(target), remote_command)
        limit = self._timeout if timeout is None else timeout
        with self._slots.hold(target.connection_id):
            try:
                completed = subprocess.run(
                    argv, input=stdin, capture_output=True, timeout=limit, env=self._env, check=False
                )
            except subprocess.TimeoutExpired as ex:
                raise RemoteCommandError(f"Remote command timed out after {limit:g} s") from ex
        result = CommandResult(completed.returncode, completed.stdout, completed.stderr)
        # 255 is ssh's own failure code (a remote command may use it too).
        if result.exit_status == 255 and not self._is_alive(target):
            raise MasterGoneError(f"Connection lost: the ssh connection {target.connection_id} is gone")
        return result

    def run_python(
        self,
        target: Target,
        script: bytes,
        args: list[str],
        python: str | None = None,
        flags: tuple[str, ...] = (),
        timeout: float | None = None,
    ) -> CommandResult:
        """Run a Python ``script`` sent on stdin with quoted ``args``."""
        return self.run(target, build_python_command(args, python, flags), stdin=script, timeout=timeout)
