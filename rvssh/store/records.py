"""Typed records of what rvssh keeps running: masters (connections) and viewer sessions.

The state directory is the truth, shared by every gunicorn worker, the CLI
and a restarted rvssh: one JSON file per record, so writers of different
records never contend and a crash can lose at most the record being
written. Reads never wait on a lock; writers serialise on the per-key locks
of :class:`StateStore` (held by the lifecycle code, the only writer).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Iterator, Literal, TypeVar

from rvssh.files import locked, make_private_dir, read_json, write_json_atomic

log = logging.getLogger(__name__)

MasterState = Literal["up", "down", "reconnecting", "waiting"]
SessionStatus = Literal["starting", "running", "reconnecting", "error"]


@dataclass
class AuthRecipe:
    """How a master can log in again without a person. Holds no secret.

    Attributes:
        use_agent: whether the agent may be asked.
        key_path: the user's own key file named by the request (never the
            temporary file of key content, which is gone once the master is up).
        saved_server_id: the saved server whose secrets (password,
            passphrase, key) may be used again.
    """

    use_agent: bool = True
    key_path: str | None = None
    saved_server_id: str | None = None


@dataclass
class MasterRecord:
    """One connection: the ControlMaster of ``username@host:port``.

    Attributes:
        state: ``up``; ``down`` (gone, nothing rides on it); ``reconnecting``
            (gone, sessions ride on it, rvssh logs in again by itself);
            ``waiting`` (gone, and logging in again needs a person: a
            password that is not saved, a second factor, a changed host key).
        pid, started_at: the master process, and its start time (which makes a
            recycled pid look different).
        checked_at: when the monitor last looked (epoch seconds, 0 = never).
        message: what happened, in plain words (why it is down or waiting).
        attempts: logins tried since it went down.
    """

    connection_id: str
    host: str
    port: int
    username: str
    control_path: str
    pid: int
    started_at: float
    created_at: float
    auth: AuthRecipe = field(default_factory=AuthRecipe)
    state: MasterState = "up"
    checked_at: float = 0.0
    message: str | None = None
    attempts: int = 0


@dataclass
class ViewerRecord:
    """One viewer session: a Runicorn viewer on the server behind a forward on a master.

    Attributes:
        status: ``starting``, ``running``, ``reconnecting`` (its master is being
            brought back, or waits for a person) or ``error``.
        python: the interpreter that launched the viewer (status asks with it).
        storage: the absolute storage root the viewer reported.
        error: what is wrong, in plain words.
        message: a notice that is not an error (the tunnel moved to another port).
        stop_requested: a stop could not reach the server; the next login
            to it stops the viewer instead of resuming it.
        checked_at: when the monitor last saw it answer (epoch seconds).
    """

    session_id: str
    connection_id: str
    host: str
    ssh_port: int
    username: str
    local_port: int
    remote_port: int
    remote_root: str
    remote_pid: int
    created_at: float
    storage: str | None = None
    python: str | None = None
    conda_env: str | None = None
    status: SessionStatus = "starting"
    error: str | None = None
    message: str | None = None
    stop_requested: bool = False
    checked_at: float = 0.0


RecordT = TypeVar("RecordT", MasterRecord, ViewerRecord)


@functools.cache
def _field_names(kind: type) -> frozenset[str]:
    return frozenset(item.name for item in dataclasses.fields(kind))


def _from_dict(kind: type[RecordT], value: Any) -> RecordT | None:
    """Build a record from its JSON, or None for anything that is not one (kept from an older rvssh)."""
    if not isinstance(value, dict):
        return None
    names = _field_names(kind)
    values = {name: item for name, item in value.items() if name in names}
    if kind is MasterRecord and isinstance(values.get("auth"), dict):
        values["auth"] = AuthRecipe(**{k: v for k, v in values["auth"].items() if k in {"use_agent", "key_path", "saved_server_id"}})
    try:
        return kind(**values)
    except TypeError:
        return None


FileIdentity = tuple[int, int, int, int]
# How old the listing behind a read may be (another process's writes show within this).
RECENT_ENOUGH = 0.1


def _identity(info: os.stat_result) -> FileIdentity:
    return (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


class RecordDirectory(Generic[RecordT]):
    """Records of one kind, by key, in ``<directory>/<sha1(key)>.json``.

    PERF: reads are what every poll of the UI costs (issue #14). Each file's
    JSON is kept in memory with the file's identity (inode, size, mtime,
    ctime) and parsed again only when that changes; every write replaces the
    file by a rename, so a changed record is a changed identity, whichever
    process wrote it. A read then costs a directory listing and a stat per
    record. Records are built anew for each caller (they are mutable).
    """

    def __init__(self, directory: Path, kind: type[RecordT]) -> None:
        self._directory = directory
        self._kind = kind
        self._parsed: dict[str, tuple[FileIdentity, Any]] = {}
        self._snapshot: tuple[float, list[Any]] | None = None
        self._guard = threading.Lock()

    def _path(self, key: str) -> Path:
        return self._directory / f"{hashlib.sha1(key.encode('utf-8')).hexdigest()}.json"

    def _read_value(self, path: str, info: os.stat_result) -> Any:
        identity = _identity(info)
        with self._guard:
            known = self._parsed.get(path)
        if known is None or known[0] != identity:
            known = (identity, read_json(Path(path), None))
            with self._guard:
                self._parsed[path] = known
        return known[1]

    def get(self, key: str) -> RecordT | None:
        """Return the record stored under ``key``, or None."""
        path = str(self._path(key))
        try:
            info = os.stat(path)
        except FileNotFoundError:
            return None
        except OSError:
            return _from_dict(self._kind, read_json(Path(path), None))
        return _from_dict(self._kind, self._read_value(path, info))

    def put(self, key: str, record: RecordT) -> None:
        """Store ``record`` under ``key`` (atomic, 0600)."""
        make_private_dir(self._directory)
        write_json_atomic(self._path(key), dataclasses.asdict(record))
        self._snapshot = None

    def delete(self, key: str) -> bool:
        """Remove the record of ``key``; return whether there was one."""
        self._snapshot = None
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            return False
        return True

    def all(self) -> list[RecordT]:
        """Return every record, oldest first (by ``created_at``)."""
        return [record for _, record in self._listing()]

    def recent(self, max_age: float = RECENT_ENOUGH, **fields: Any) -> list[RecordT]:
        """Return every record as :meth:`all` does, from a listing at most ``max_age`` seconds old.

        ``fields`` keeps only the records with those values (``session_id=...``).
        For reads only (a writer reads under its lock with :meth:`get`): this
        process's own writes show at once, another process's within
        ``max_age``. PERF: the UI polls ``viewer/sessions`` and the listing's
        system calls are what a read would cost under load (#14).
        """
        now = time.monotonic()
        with self._guard:
            snapshot = self._snapshot
        if snapshot is None or now - snapshot[0] > max_age:
            listing = self._listing()
            with self._guard:
                self._snapshot = (now, [value for value, _ in listing])
            return [record for _, record in listing
                    if all(getattr(record, name) == wanted for name, wanted in fields.items())]
        # Records are mutable: each caller gets its own, built only for the values it asked for.
        return [_from_dict(self._kind, value) for value in snapshot[1]  # type: ignore[misc]
                if all(value.get(name) == wanted for name, wanted in fields.items())]

    def _listing(self) -> list[tuple[Any, RecordT]]:
        """Return the JSON and the record of every valid record file, oldest first."""
        found = []
        seen = set()
        try:
            entries = list(os.scandir(self._directory))
        except (FileNotFoundError, NotADirectoryError):
            return []
        for entry in entries:
            if not entry.name.endswith(".json") or entry.name.startswith("."):
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # removed since the listing
            seen.add(entry.path)
            value = self._read_value(entry.path, info)
            record = _from_dict(self._kind, value)
            if record is not None:
                found.append((value, record))
        with self._guard:
            for gone in set(self._parsed) - seen:
                if not os.path.exists(gone):
                    del self._parsed[gone]
        return sorted(found, key=lambda item: item[1].created_at)


class StateStore:
    """The records of one state directory, and the locks their writers take."""

    def __init__(self, state_dir: Path, lock_timeout: float) -> None:
        self.masters: RecordDirectory[MasterRecord] = RecordDirectory(state_dir / "connections", MasterRecord)
        self.viewers: RecordDirectory[ViewerRecord] = RecordDirectory(state_dir / "viewers", ViewerRecord)
        self._lock_dir = state_dir / "locks"
        self.lock_timeout = lock_timeout

    @contextmanager
    def lock(self, key: str, timeout: float | None = None) -> Iterator[None]:
        """Hold the lock of ``key`` (a connection id or a session id) across threads and processes.

        Raises:
            LockTimeoutError: another writer held it for longer than the timeout.
        """
        digest = hashlib.sha1(key.encode("utf-8")).hexdigest()
        with locked(self._lock_dir / f"{digest}.lock", self.lock_timeout if timeout is None else timeout):
            yield

    def sessions_of(self, connection_id: str) -> list[ViewerRecord]:
        """Return the viewer sessions riding on one connection."""
        return [record for record in self.viewers.all() if record.connection_id == connection_id]
