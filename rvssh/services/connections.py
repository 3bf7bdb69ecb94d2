"""Connections: one ControlMaster per ``username@host:port``, kept until disconnect.

The registry of masters lives on disk, so a restarted rvssh (or another
gunicorn worker) finds the masters it started. Liveness for listings comes
from the recorded master pid (cheap); decisions that matter (reuse on
connect) ask the master itself with ``ssh -O check``.
"""

from __future__ import annotations

import hashlib
import os
import secrets as secrets_module
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from rvssh.errors import BadRequestError, NotFoundError
from rvssh.models import ConnectionEntry, ConnectRequest
from rvssh.ssh.argv import MasterAuth
from rvssh.ssh.master import MasterController, Secrets
from rvssh.ssh.target import Target, make_target, parse_connection_id
from rvssh.store.files import exclusive_lock, make_private_dir, write_bytes_atomic
from rvssh.store.records import RecordDirectory


@dataclass(frozen=True)
class Credentials:
    """Connect credentials after saved-server defaults were applied.

    Secrets stay plain ``str`` only inside this object, on their way to the
    pexpect prompt answers.
    """

    password: str | None
    passphrase: str | None
    private_key: str | None
    private_key_path: str | None
    use_agent: bool

    @classmethod
    def from_request(cls, request: ConnectRequest) -> "Credentials":
        def reveal(value: object) -> str | None:
            return value.get_secret_value() if value is not None else None  # type: ignore[attr-defined]

        return cls(
            password=reveal(request.password) or None,
            passphrase=reveal(request.passphrase) or None,
            private_key=reveal(request.private_key) or None,
            private_key_path=request.private_key_path or None,
            use_agent=request.use_agent,
        )


def _pid_alive(pid: int, control_path: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():
        # Guard against a recycled pid: the master's argv names its socket.
        try:
            return control_path.encode() in cmdline.read_bytes()
        except OSError:
            return False
    return True


class ConnectionService:
    """Open, list, reuse and close connections (ControlMasters)."""

    def __init__(self, masters: MasterController, registry: RecordDirectory, lock_dir: Path, key_dir: Path) -> None:
        self._masters = masters
        self._registry = registry
        self._lock_dir = lock_dir
        self._key_dir = key_dir
        self._before_disconnect: list[Callable[[Target], None]] = []

    def on_disconnect(self, hook: Callable[[Target], None]) -> None:
        """Register ``hook`` to run before a connection is closed (e.g. stop its viewers)."""
        self._before_disconnect.append(hook)

    @contextmanager
    def _locked(self, target: Target) -> Iterator[None]:
        digest = hashlib.sha1(target.connection_id.encode("utf-8")).hexdigest()
        with exclusive_lock(self._lock_dir / f"{digest}.lock"):
            yield

    def connect(self, target: Target, credentials: Credentials) -> ConnectionEntry:
        """Return the live connection to ``target``, starting its master if needed.

        A live master is reused as is: the new request's credentials are not
        tried again. Two concurrent connects to one target end with one master.
        """
        with self._locked(target):
            pid = self._masters.check(target)
            if pid is None:
                self._masters.remove_stale_socket(target)
                pid = self._start_master(target, credentials)
            record = self._registry.get(target.connection_id)
            if record is None or record.get("master_pid") != pid:
                self._registry.put(
                    target.connection_id,
                    {
                        "connection_id": target.connection_id,
                        "host": target.host,
                        "port": target.port,
                        "username": target.username,
                        "master_pid": pid,
                        "control_path": str(self._masters.control_path(target)),
                        "created_at": time.time(),
                    },
                )
        return self._entry(target, connected=True)

    def _start_master(self, target: Target, credentials: Credentials) -> int:
        key_file: Path | None = None
        written_key: Path | None = None
        if credentials.private_key:
            written_key = self._write_key(credentials.private_key)
            key_file = written_key
        elif credentials.private_key_path:
            key_file = Path(os.path.expanduser(credentials.private_key_path))
            if not key_file.is_file():
                raise BadRequestError(f"Connection failed: private key file not found: {credentials.private_key_path}")
        auth = MasterAuth(key_file=key_file, use_agent=credentials.use_agent, password_allowed=bool(credentials.password))
        try:
            return self._masters.start(target, auth, Secrets(credentials.password, credentials.passphrase))
        finally:
            if written_key is not None:
                written_key.unlink(missing_ok=True)

    def _write_key(self, content: str) -> Path:
        """Write key content to a 0600 file in a 0700 dir, for the handshake only."""
        # APPSEC: the key never reaches argv or the environment; ssh reads
        # this file, and the caller removes it once the master is up.
        make_private_dir(self._key_dir)
        path = self._key_dir / f"key-{secrets_module.token_hex(8)}"
        text = content.replace("\r\n", "\n").strip() + "\n"
        write_bytes_atomic(path, text.encode("utf-8"), mode=0o600)
        return path

    def is_alive(self, target: Target) -> bool:
        """Return whether the master of ``target`` is running (cheap, from its pid)."""
        record = self._registry.get(target.connection_id)
        if record is None or not Path(record.get("control_path", "")).exists():
            return False
        return _pid_alive(int(record.get("master_pid", 0)), record["control_path"])

    def _entry(self, target: Target, connected: bool) -> ConnectionEntry:
        return ConnectionEntry(
            key=target.connection_id, host=target.host, port=target.port, username=target.username, connected=connected
        )

    def list(self) -> list[ConnectionEntry]:
        """List known connections with their liveness, forgetting dead ones.

        A dead master (sshd restarted, network lost) is reported once with
        ``connected: false`` and then dropped, so the next connect starts fresh.
        """
        entries = []
        for record in self._registry.all():
            target = Target(record["host"], int(record["port"]), record["username"])
            alive = self.is_alive(target)
            entries.append(self._entry(target, alive))
            if not alive:
                self._forget(target)
        return entries

    def _forget(self, target: Target) -> None:
        with self._locked(target):
            if not self.is_alive(target):
                self._registry.delete(target.connection_id)
                self._masters.remove_stale_socket(target)

    def require_live(self, connection_id: str) -> Target:
        """Return the target of a live connection, or raise 400/404 as the reference does."""
        target = parse_connection_id(connection_id)
        if not self.is_alive(target):
            raise NotFoundError(f"Connection not found or inactive: {connection_id}")
        return target

    def disconnect(self, host: str, port: int, username: str) -> bool:
        """Stop what rides on the connection, end its master; return whether it existed."""
        target = make_target(host, port, username)
        for hook in self._before_disconnect:
            hook(target)
        with self._locked(target):
            existed = self._registry.delete(target.connection_id)
            ended = self._masters.exit(target)
            self._masters.remove_stale_socket(target)
        return existed or ended
