"""Small, safe file primitives for state on disk: private dirs, atomic writes, locks."""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from rvssh.errors import StoreError


def make_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) with mode 0700 and tighten an existing one."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def _write_temp_file(path: Path, data: bytes, mode: int) -> str:
    """Write ``data`` with ``mode`` to a new temp file beside ``path`` (fsynced) and return its name."""
    make_private_dir(path.parent)
    descriptor, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
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
    """Write ``data`` to ``path`` atomically (temp file, fsync, rename), with ``mode``."""
    temp_name = _write_temp_file(path, data, mode)
    try:
        os.replace(temp_name, path)
    except OSError as ex:
        Path(temp_name).unlink(missing_ok=True)
        raise StoreError(f"Failed to write {path}: {ex.strerror}") from ex


def create_file_once(path: Path, data: bytes, mode: int = 0o600) -> bool:
    """Create ``path`` holding ``data`` unless it exists; return whether this call created it.

    The content is written to a temp file and hard-linked into place, so a
    reader never sees a partial file, and of two processes racing (gunicorn
    workers, a CLI) exactly one creates it and both then read the same bytes.
    """
    temp_name = _write_temp_file(path, data, mode)
    try:
        os.link(temp_name, path)
        return True
    except FileExistsError:
        return False
    except OSError as ex:
        raise StoreError(f"Failed to write {path}: {ex.strerror}") from ex
    finally:
        Path(temp_name).unlink(missing_ok=True)


def write_json_atomic(path: Path, value: Any) -> None:
    """Write ``value`` as pretty JSON to ``path`` atomically with mode 0600."""
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
    write_bytes_atomic(path, text.encode("utf-8"))


def read_json(path: Path, default: Any) -> Any:
    """Return the JSON in ``path``, or ``default`` when it is missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return default


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on ``path`` (created 0600) for the block.

    flock works across threads (each open is its own description) and processes,
    so gunicorn workers sharing one state directory serialise too.
    """
    make_private_dir(path.parent)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        os.close(descriptor)
