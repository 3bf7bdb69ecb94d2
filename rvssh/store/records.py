"""Typed records of what rvssh keeps running: masters (connections) and viewer sessions.

The state directory is the truth, shared by every gunicorn worker, the CLI
and a restarted rvssh: one JSON file per record, so writers of different
records never contend and a crash can lose at most the record being
written. Reads never wait on a lock; writers serialise on the per-key locks
of :class:`StateStore` (held by the lifecycle code, the only writer).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
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


def _from_dict(kind: type[RecordT], value: Any) -> RecordT | None:
    """Build a record from its JSON, or None for anything that is not one (kept from an older rvssh)."""
    if not isinstance(value, dict):
        return None
    names = {item.name for item in dataclasses.fields(kind)}
    values = {name: item for name, item in value.items() if name in names}
    if kind is MasterRecord and isinstance(values.get("auth"), dict):
        values["auth"] = AuthRecipe(**{k: v for k, v in values["auth"].items() if k in {"use_agent", "key_path", "saved_server_id"}})
    try:
        return kind(**values)
    except TypeError:
        return None


class RecordDirectory(Generic[RecordT]):
    """Records of one kind, by key, in ``<directory>/<sha1(key)>.json``."""

    def __init__(self, directory: Path, kind: type[RecordT]) -> None:
        self._directory = directory
        self._kind = kind

    def _path(self, key: str) -> Path:
        return self._directory / f"{hashlib.sha1(key.encode('utf-8')).hexdigest()}.json"

    def get(self, key: str) -> RecordT | None:
        """Return the record stored under ``key``, or None."""
        return _from_dict(self._kind, read_json(self._path(key), None))

    def put(self, key: str, record: RecordT) -> None:
        """Store ``record`` under ``key`` (atomic, 0600)."""
        make_private_dir(self._directory)
        write_json_atomic(self._path(key), dataclasses.asdict(record))

    def delete(self, key: str) -> bool:
        """Remove the record of ``key``; return whether there was one."""
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            return False
        return True

    def all(self) -> list[RecordT]:
        """Return every record, oldest first (by ``created_at``)."""
        if not self._directory.is_dir():
            return []
        records = [_from_dict(self._kind, read_json(path, None)) for path in self._directory.glob("*.json")]
        return sorted((record for record in records if record is not None), key=lambda record: record.created_at)


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
