"""Connections: one ControlMaster per ``username@host:port``, kept until disconnect.

The records of masters live on disk (``store/records.py``), so a restarted
rvssh (or another gunicorn worker) finds the masters it started. Reads come
from the records and a pid check, never from ssh; the writers (connect,
disconnect, heal) hold the connection's lock, with a timeout.
"""

from __future__ import annotations

import logging
import secrets as secrets_module
import time
from pathlib import Path
from typing import Callable

from rvssh.errors import BadRequestError, NotFoundError
from rvssh.files import make_private_dir, write_bytes_atomic
from rvssh.models import ConnectionEntry
from rvssh.processes import is_running, started_at
from rvssh.services.credentials import Credentials
from rvssh.ssh.answers import Answerer
from rvssh.ssh.argv import MasterAuth
from rvssh.ssh.exec import SessionSlots
from rvssh.ssh.master import MasterController
from rvssh.ssh.target import Target, make_target, parse_connection_id
from rvssh.store.records import MasterRecord, StateStore

log = logging.getLogger(__name__)

TargetHook = Callable[[Target], None]


def target_of(record: MasterRecord) -> Target:
    """Return the target a master record is for."""
    return Target(record.host, record.port, record.username)


class ConnectionService:
    """Open, list, reuse, heal and close connections (ControlMasters)."""

    def __init__(self, masters: MasterController, state: StateStore, slots: SessionSlots, key_dir: Path) -> None:
        self._masters = masters
        self._state = state
        self._slots = slots
        self._key_dir = key_dir
        self._before_disconnect: list[TargetHook] = []
        self._after_login: list[TargetHook] = []

    def on_disconnect(self, hook: TargetHook) -> None:
        """Register ``hook`` to run before a connection is closed (e.g. stop its viewers)."""
        self._before_disconnect.append(hook)

    def on_login(self, hook: TargetHook) -> None:
        """Register ``hook`` to run once a master (re)started (e.g. resume its viewers)."""
        self._after_login.append(hook)

    # --- reads: records and a pid check, never ssh -------------------------

    def record_is_alive(self, record: MasterRecord) -> bool:
        """Return whether a record's master process runs and its control socket is there."""
        return is_running(record.pid, record.started_at) and Path(record.control_path).exists()

    def is_up(self, record: MasterRecord | None) -> bool:
        """Return whether a record says its master is up and the master indeed runs."""
        return record is not None and record.state == "up" and self.record_is_alive(record)

    def is_alive(self, target: Target) -> bool:
        """Return whether the master of ``target`` is running (cheap: its record and pid)."""
        return self.is_up(self._state.masters.get(target.connection_id))

    def entry(self, record: MasterRecord) -> ConnectionEntry:
        """Return the wire entry of a record, with its liveness now."""
        connected = self.is_up(record)
        return ConnectionEntry(
            key=record.connection_id,
            host=record.host,
            port=record.port,
            username=record.username,
            connected=connected,
            state=record.state if record.state != "up" or connected else "down",
            checked_at=int(record.checked_at * 1000) or None,
            message=record.message,
        )

    def list(self) -> list[ConnectionEntry]:
        """List known connections with their liveness (a GET: nothing changes)."""
        return [self.entry(record) for record in self._state.masters.recent()]

    def live_record(self, connection_id: str) -> MasterRecord:
        """Return the record of a live connection, or raise 400/404 as the reference does."""
        target = parse_connection_id(connection_id)
        record = self._state.masters.get(target.connection_id)
        if record is None or not self.is_up(record):
            raise NotFoundError(f"Connection not found or inactive: {connection_id}")
        return record

    def require_live(self, connection_id: str) -> Target:
        """Return the target of a live connection, or raise 400/404 as the reference does."""
        return target_of(self.live_record(connection_id))

    # --- writes --------------------------------------------------------------

    def connect(self, target: Target, credentials: Credentials, answerer: Answerer | None = None) -> ConnectionEntry:
        """Return the live connection to ``target``, starting its master if needed.

        A live master is reused as is: the new request's credentials are not
        tried again. Two concurrent connects to one target end with one master.
        A login also brings back the viewers that waited for this connection.
        """
        record = self._state.masters.get(target.connection_id)
        # PERF: a live master needs no lock and no ssh: its record and pid say so.
        if record is not None and self.is_up(record):
            return self.entry(record)
        with self._state.lock(target.connection_id):
            previous = self._state.masters.get(target.connection_id)
            pid = self._masters.check(target)
            logged_in = pid is None
            if pid is None:
                self._masters.remove_stale_socket(target)
                pid = self._login(target, credentials, answerer or credentials.answers())
            record = self._remember(target, pid, credentials)
        if logged_in or (previous is not None and previous.state != "up"):
            self._run_hooks(self._after_login, target)
        return self.entry(record)

    def heal(self, target: Target, credentials: Credentials, connect_timeout: float) -> None:
        """Start the master of ``target`` again with what needs no person, then resume what rode on it.

        Raises:
            RvsshError: the login failed (the caller records why and when to try again).
        """
        with self._state.lock(target.connection_id):
            pid = self._masters.check(target)
            if pid is None:
                self._masters.remove_stale_socket(target)
                log.info("logging in to %s again", target.connection_id)
                pid = self._login(target, credentials, credentials.answers(), connect_timeout)
            self._remember(target, pid, credentials)
        self._run_hooks(self._after_login, target)

    def mark(self, connection_id: str, state: str, message: str | None, attempts: int | None = None) -> None:
        """Record what the monitor found out about a connection."""
        with self._state.lock(connection_id):
            record = self._state.masters.get(connection_id)
            if record is None:
                return
            record.state = state  # type: ignore[assignment]
            record.message = message
            record.checked_at = time.time()
            if attempts is not None:
                record.attempts = attempts
            self._state.masters.put(connection_id, record)

    def forget(self, connection_id: str) -> None:
        """Drop the record of a dead connection that nothing rides on."""
        with self._state.lock(connection_id):
            record = self._state.masters.get(connection_id)
            if record is not None and not self.record_is_alive(record):
                self._state.masters.delete(connection_id)
                self._masters.remove_stale_socket(target_of(record))
                log.info("forgot the dead connection %s", connection_id)

    def disconnect(self, host: str, port: int, username: str) -> bool:
        """Stop what rides on the connection, end its master; return whether it existed."""
        target = make_target(host, port, username)
        for hook in self._before_disconnect:
            hook(target)
        with self._state.lock(target.connection_id):
            existed = self._state.masters.delete(target.connection_id)
            ended = self._masters.exit(target)
            self._masters.remove_stale_socket(target)
            self._slots.forget(target.connection_id)
        return existed or ended

    # --- helpers -------------------------------------------------------------

    def _remember(self, target: Target, pid: int, credentials: Credentials) -> MasterRecord:
        started = started_at(pid) or 0.0
        record = self._state.masters.get(target.connection_id)
        if record is not None and record.pid == pid and record.state == "up":
            return record
        if record is None or record.pid != pid:
            self._slots.forget(target.connection_id)
        now = time.time()
        record = MasterRecord(
            connection_id=target.connection_id,
            host=target.host,
            port=target.port,
            username=target.username,
            control_path=str(self._masters.control_path(target)),
            pid=pid,
            started_at=started,
            created_at=record.created_at if record is not None else now,
            auth=credentials.recipe(),
            state="up",
            checked_at=now,
        )
        self._state.masters.put(target.connection_id, record)
        return record

    def _login(
        self, target: Target, credentials: Credentials, answerer: Answerer, connect_timeout: float | None = None
    ) -> int:
        key_file: Path | None = None
        written_key: Path | None = None
        if credentials.private_key is not None:
            written_key = self._write_key(credentials.private_key.get_secret_value())
            key_file = written_key
        elif credentials.private_key_path:
            key_file = credentials.key_file()
            if key_file is None or not key_file.is_file():
                raise BadRequestError(f"Connection failed: private key file not found: {credentials.private_key_path}")
        auth = MasterAuth(key_file=key_file, use_agent=credentials.use_agent)
        try:
            return self._masters.start(target, auth, answerer, connect_timeout)
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

    @staticmethod
    def _run_hooks(hooks: list[TargetHook], target: Target) -> None:
        for hook in hooks:
            hook(target)
