"""The file primitives of all state rvssh keeps: private dirs, atomic writes, locks.

Every layer that keeps something on disk (the ssh layer's control and
scratch dirs, the stores' records) uses these, so each guarantee holds
everywhere: directories are 0700 and ours, files are written whole (temp
file, fsync, rename, directory fsync) with mode 0600, and a lock is never
waited on forever.
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from rvssh.errors import StoreError

LOCK_POLL_SECONDS = 0.01


class LockTimeoutError(StoreError):
    """A lock was not obtained within its timeout (someone holds it too long)."""


def make_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) with mode 0700, or check an existing one is ours and private.

    Raises:
        StoreError: the directory belongs to another user or cannot be made private.
    """
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.stat()
        if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & 0o077:
            os.chmod(path, 0o700)
            info = path.stat()
    except OSError as ex:
        raise StoreError(f"Cannot create the private directory {path}: {ex.strerror}") from ex
    # APPSEC: a directory another user owns (or can write) could swap our
    # sockets, keys or records under us.
    if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
        raise StoreError(f"{path} must be a private directory (mode 0700) of this user")
    return path


def _fsync_directory(directory: Path) -> None:
    """Flush a directory entry so a completed rename survives a crash."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _write_temp_file(path: Path, data: bytes, mode: int) -> str:
    """Write ``data`` with ``mode`` to a new temp file beside ``path`` (fsynced) and return its name."""
    make_private_dir(path.parent)
    try:
        descriptor, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as ex:
        raise StoreError(f"Failed to write {path}: {ex.strerror}") from ex
    try:
        with os.fdopen(descriptor, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as ex:
        Path(temp_name).unlink(missing_ok=True)
        raise StoreError(f"Failed to write {path}: {ex.strerror}") from ex
    return temp_name


def write_bytes_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` whole or not at all (temp file, fsync, rename), with ``mode``.

    Raises:
        StoreError: the file could not be written.
    """
    temp_name = _write_temp_file(path, data, mode)
    try:
        os.replace(temp_name, path)
        _fsync_directory(path.parent)
    except OSError as ex:
        Path(temp_name).unlink(missing_ok=True)
        raise StoreError(f"Failed to write {path}: {ex.strerror}") from ex


def create_file_once(path: Path, data: bytes, mode: int = 0o600) -> bool:
    """Create ``path`` holding ``data`` unless it exists; return whether this call created it.

    The content is written to a temp file and hard-linked into place, so a
    reader never sees a partial file, and of two processes racing (gunicorn
    workers, a CLI) exactly one creates it and both then read the same bytes.

    Raises:
        StoreError: the file could not be written.
    """
    temp_name = _write_temp_file(path, data, mode)
    try:
        os.link(temp_name, path)
        _fsync_directory(path.parent)
        return True
    except FileExistsError:
        return False
    except OSError as ex:
        raise StoreError(f"Failed to write {path}: {ex.strerror}") from ex
    finally:
        Path(temp_name).unlink(missing_ok=True)


def write_json_atomic(path: Path, value: Any) -> None:
    """Write ``value`` as JSON to ``path`` atomically with mode 0600."""
    text = json.dumps(value, indent=2, ensure_ascii=False) + "\n"
    write_bytes_atomic(path, text.encode("utf-8"))


def read_json(path: Path, default: Any) -> Any:
    """Return the JSON in ``path``, or ``default`` when it is missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return default


@contextmanager
def locked(path: Path, timeout: float) -> Iterator[None]:
    """Hold an exclusive flock on ``path`` (created 0600) for the block.

    flock works across threads (each open is its own description) and
    processes, so gunicorn workers and the CLI sharing a state dir
    serialise too. Closing the descriptor releases the lock.

    Raises:
        LockTimeoutError: the lock stayed taken for ``timeout`` seconds.
        StoreError: the lock file could not be opened.
    """
    descriptor = _open_lock(path)
    try:
        deadline = time.monotonic() + timeout
        while not _flock_now(descriptor):
            if time.monotonic() >= deadline:
                raise LockTimeoutError(f"Timed out after {timeout:g} s waiting for the lock {path}")
            time.sleep(LOCK_POLL_SECONDS)
        yield
    finally:
        os.close(descriptor)


def try_lock(path: Path) -> int | None:
    """Take an exclusive flock on ``path`` (created 0600) without waiting.

    Returns the open descriptor that holds it (closing it releases the
    lock), or None when someone else holds it.

    Raises:
        StoreError: the lock file could not be opened.
    """
    descriptor = _open_lock(path)
    if _flock_now(descriptor):
        return descriptor
    os.close(descriptor)
    return None


def _open_lock(path: Path) -> int:
    make_private_dir(path.parent)
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as ex:
        raise StoreError(f"Cannot open the lock {path}: {ex.strerror}") from ex


def _flock_now(descriptor: int) -> bool:
    """Take the exclusive flock of ``descriptor`` if it is free; tell whether it was."""
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
