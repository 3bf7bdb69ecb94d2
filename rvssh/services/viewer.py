"""Remote Runicorn viewers: the lifecycle (the only writer of sessions) and the reads.

A session is on disk (``<state>/viewers``) from the moment its remote process
exists, so a restarted rvssh lists it again and can stop it. Reads
(:class:`ViewerReads`) answer from the records alone; the monitor
(``services/monitor.py``) finds out how sessions are and asks
:class:`ViewerLifecycle` to write it down.

Ready means: ``GET /api/health`` through the tunnel answers ``status: ok`` for
*our* storage root; one request proves master, forward and viewer alive at
once, and that the port is ours.
"""

from __future__ import annotations

import http.client
import json
import logging
import time
import uuid
from typing import Any, Callable, Protocol

from rvssh.errors import NotFoundError, RvsshError
from rvssh.models import ViewerSession, ViewerStartRequest
from rvssh.remote.probe import build_viewer_program, parse_probe_output
from rvssh.services.connections import ConnectionService
from rvssh.ssh.errors import MasterGoneError, PortInUseError, RemoteCommandError
from rvssh.ssh.exec import RemoteExecutor
from rvssh.ssh.forward import Forwarder, local_port_is_free, pick_free_local_port
from rvssh.ssh.target import Target
from rvssh.store.records import StateStore, ViewerRecord

log = logging.getLogger(__name__)

# PERF: a viewer boots in about half a second; polling every 20 ms answers within 20 ms of it.
POLL_INTERVAL = 0.02
REMOTE_CHECK_INTERVAL = 1.0
AUTO_PORT_ATTEMPTS = 3
HEALTH_TIMEOUT = 2.0

Health = Callable[[int, float], "dict[str, Any] | None"]


class PythonResolver(Protocol):
    """Maps a requested environment name to the interpreter path on the server."""

    def python_for(self, target: Target, env_name: str | None) -> str | None:
        """Return the python of ``env_name`` (None: the login PATH's python3)."""


def fetch_health(local_port: int, timeout: float = HEALTH_TIMEOUT) -> dict[str, Any] | None:
    """Return the viewer's /api/health JSON through the tunnel, or None."""
    connection = http.client.HTTPConnection("127.0.0.1", local_port, timeout=timeout)
    try:
        connection.request("GET", "/api/health")
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            return None
        value = json.loads(body)
        return value if isinstance(value, dict) else None
    except (OSError, ValueError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def serves_root(health: dict[str, Any] | None, record: ViewerRecord) -> bool:
    """Return whether a health answer comes from the viewer of ``record`` (its storage root)."""
    return bool(health) and health.get("status") == "ok" and health.get("storage") in {  # type: ignore[union-attr]
        record.remote_root,
        record.storage,
    }


def target_of(record: ViewerRecord) -> Target:
    return Target(record.host, record.ssh_port, record.username)


def to_session(record: ViewerRecord) -> ViewerSession:
    """Return the wire object of a session record."""
    return ViewerSession(
        session_id=record.session_id,
        host=record.host,
        ssh_port=record.ssh_port,
        username=record.username,
        local_port=record.local_port,
        remote_port=record.remote_port,
        remote_root=record.remote_root,
        remote_pid=record.remote_pid,
        status=record.status,
        started_at=int(record.created_at * 1000),
        uptime_seconds=round(time.time() - record.created_at, 3),
        is_active=record.status == "running",
        url=f"http://localhost:{record.local_port}",
        connection_id=record.connection_id,
        conda_env=record.conda_env,
        error=record.error,
        message=record.message,
        checked_at=int(record.checked_at * 1000) or None,
    )


class ViewerReads:
    """What the sessions are, from their records: no ssh, no lock, no change."""

    def __init__(self, state: StateStore) -> None:
        self._state = state

    def list_sessions(self) -> list[ViewerSession]:
        """Return every session as last recorded."""
        return [to_session(record) for record in self._state.viewers.recent()]

    def get(self, session_id: str) -> ViewerSession:
        """Return one session as last recorded, or raise 404."""
        found = self._state.viewers.recent(session_id=session_id)
        if not found:
            raise NotFoundError(f"Session not found: {session_id}")
        return to_session(found[0])


class ViewerLifecycle:
    """Start, stop, resume and record the health of viewer sessions: the only writer of them."""

    def __init__(
        self,
        connections: ConnectionService,
        executor: RemoteExecutor,
        forwarder: Forwarder,
        state: StateStore,
        resolver: PythonResolver,
        ready_timeout: float,
        health: Health = fetch_health,
    ) -> None:
        self._connections = connections
        self._executor = executor
        self._forwarder = forwarder
        self._state = state
        self._resolver = resolver
        self._ready_timeout = ready_timeout
        self._health = health
        connections.on_disconnect(self.stop_all_for)
        connections.on_login(self.resume)

    # --- remote programs -------------------------------------------------

    def _remote(
        self, target: Target, subcommand: str, *args: str, python: str | None = None, timeout: float | None = None
    ) -> dict[str, Any]:
        result = self._executor.run(target, build_viewer_program(subcommand, *args, python=python), timeout)
        return parse_probe_output(result.stdout, result.stderr, result.exit_status)

    def _remote_status(self, target: Target, record: ViewerRecord, timeout: float | None = None) -> dict[str, Any]:
        return self._remote(target, "status", str(record.remote_pid), record.session_id, python=record.python,
                            timeout=timeout)

    def _launch(self, target: Target, record: ViewerRecord, python: str | None, remote_port: int) -> None:
        launched = self._remote(
            target, "launch", record.remote_root, str(remote_port), record.session_id, python=python
        )
        record.remote_pid = int(launched["pid"])
        record.remote_port = int(launched["port"])
        record.storage = launched.get("storage")
        record.python = launched.get("python") or python

    # --- start -----------------------------------------------------------

    def start(self, request: ViewerStartRequest, target: Target) -> ViewerSession:
        """Launch a viewer for ``request`` on the live connection ``target``; return it when ready."""
        python = self._resolver.python_for(target, request.conda_env)
        if request.local_port and not local_port_is_free(request.local_port):
            raise PortInUseError(f"Local port {request.local_port} is already in use")
        now = time.time()
        record = ViewerRecord(
            session_id=uuid.uuid4().hex[:8],
            connection_id=target.connection_id,
            host=target.host,
            ssh_port=target.port,
            username=target.username,
            local_port=0,
            remote_port=0,
            remote_root=request.remote_root,
            remote_pid=0,
            created_at=now,
            conda_env=request.conda_env,
        )
        self._launch(target, record, python, request.remote_port or 0)
        self._state.viewers.put(record.session_id, record)
        log.info("launched viewer %s on %s (pid %d, port %d)",
                 record.session_id, target.connection_id, record.remote_pid, record.remote_port)
        try:
            record.local_port = self._add_forward(target, request.local_port, record.remote_port)
            self._state.viewers.put(record.session_id, record)
            self._wait_until_ready(target, record)
        except BaseException:
            self._undo_start(target, record)
            raise
        record.status = "running"
        record.checked_at = time.time()
        self._state.viewers.put(record.session_id, record)
        return to_session(record)

    def _add_forward(self, target: Target, requested: int | None, remote_port: int) -> int:
        if requested:
            self._forwarder.add(target, requested, remote_port)
            return requested
        for attempt in range(AUTO_PORT_ATTEMPTS):
            port = pick_free_local_port()
            try:
                self._forwarder.add(target, port, remote_port)
                return port
            except PortInUseError:
                # Another program took the port between our probe and ssh's bind.
                if attempt == AUTO_PORT_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _wait_until_ready(self, target: Target, record: ViewerRecord) -> None:
        """Poll /api/health through the tunnel until it serves our storage root."""
        deadline = time.monotonic() + self._ready_timeout
        next_remote_check = time.monotonic() + REMOTE_CHECK_INTERVAL
        while time.monotonic() < deadline:
            if serves_root(self._health(record.local_port, HEALTH_TIMEOUT), record):
                return
            if time.monotonic() >= next_remote_check:
                status = self._remote_status(target, record)
                if not status.get("alive"):
                    raise RemoteCommandError(
                        f"Failed to start Remote Viewer: the viewer exited. Log: {status.get('log_tail') or '(empty)'}"
                    )
                next_remote_check = time.monotonic() + REMOTE_CHECK_INTERVAL
            time.sleep(POLL_INTERVAL)
        status = self._remote_status(target, record)
        raise RemoteCommandError(
            f"Failed to start Remote Viewer: no answer from the viewer within {self._ready_timeout:g} s. "
            f"Log: {status.get('log_tail') or '(still running)'}"
        )

    def _undo_start(self, target: Target, record: ViewerRecord) -> None:
        """Undo a failed start: our forward, our process group, our log, the record."""
        try:
            self._end_remote(target, record)
        except RvsshError as ex:
            # The start's own error is what the caller hears; this one is logged.
            log.warning("could not undo the start of viewer %s: %s", record.session_id, ex.message)
            record.status = "error"
            record.error = f"The start failed and the viewer could not be stopped on the server: {ex.message}"
            record.stop_requested = True
            self._state.viewers.put(record.session_id, record)
            return
        self._state.viewers.delete(record.session_id)

    def _end_remote(self, target: Target, record: ViewerRecord) -> None:
        """Cancel the forward and stop the viewer's process group (answers at once; cleanup goes on remotely)."""
        if record.local_port:
            self._forwarder.cancel(target, record.local_port, record.remote_port)
        if record.remote_pid:
            self._remote(target, "stop", str(record.remote_pid), record.session_id)
        log.info("stopped viewer %s on %s", record.session_id, target.connection_id)

    # --- stop ------------------------------------------------------------

    def stop(self, session_id: str) -> None:
        """Stop a session: its forward, its remote process group, its record.

        Raises:
            NotFoundError: no such session.
            MasterGoneError: the server cannot be reached; the session is kept,
                marked ``error``, and stopped at the next login to that server.
        """
        with self._state.lock(session_id):
            record = self._state.viewers.get(session_id)
            if record is None:
                raise NotFoundError(f"Session not found: {session_id}")
            target = target_of(record)
            try:
                if not self._connections.is_alive(target):
                    raise MasterGoneError(f"the SSH connection {target.connection_id} is gone")
                self._end_remote(target, record)
            except RvsshError as ex:
                record.status = "error"
                record.stop_requested = True
                record.error = (
                    f"Could not stop the viewer on the server: {ex.message}. "
                    f"It will be stopped the next time rvssh logs in to {target.host} (connect again)."
                )
                self._state.viewers.put(session_id, record)
                log.warning("stop of viewer %s failed: %s", session_id, ex.message)
                raise MasterGoneError(f"Could not stop the viewer on the server: {ex.message}") from ex
            self._state.viewers.delete(session_id)

    def stop_all_for(self, target: Target) -> None:
        """Stop every session riding on ``target``'s connection (before a disconnect)."""
        for record in self._state.sessions_of(target.connection_id):
            self.stop(record.session_id)

    # --- after a login: resume or stop what waited ---------------------------

    def resume(self, target: Target) -> None:
        """Bring every session of ``target`` back after its master (re)started.

        The forward comes back on the same local port (the open browser tab
        keeps working); only when another program took that port does the
        session move, and it says so. The remote viewer is reused when it still
        runs and launched again when it is gone: never two for one session.
        """
        for record in self._state.sessions_of(target.connection_id):
            try:
                with self._state.lock(record.session_id):
                    self._resume_one(target, record.session_id)
            except RvsshError as ex:
                log.warning("could not resume viewer %s: %s", record.session_id, ex.message)
                self.note(record.session_id, "error", f"Could not resume the viewer: {ex.message}")

    def _resume_one(self, target: Target, session_id: str) -> None:
        record = self._state.viewers.get(session_id)
        if record is None or record.status == "starting":
            return
        if record.stop_requested:
            self._end_remote(target, record)
            self._state.viewers.delete(session_id)
            return
        remote = self._remote_status(target, record)
        if not remote.get("alive"):
            log.info("viewer %s is gone from the server; launching it again", session_id)
            self._launch(target, record, record.python, record.remote_port)
        try:
            self._forwarder.add(target, record.local_port, record.remote_port)
        except PortInUseError:
            moved_from = record.local_port
            record.local_port = self._add_forward(target, None, record.remote_port)
            record.message = (f"The tunnel moved from port {moved_from} to {record.local_port}: "
                              f"another program took port {moved_from} while the connection was down")
        self._state.viewers.put(session_id, record)
        self._wait_until_ready(target, record)
        record.status = "running"
        record.error = None
        record.checked_at = time.time()
        self._state.viewers.put(session_id, record)
        log.info("viewer %s is back on http://localhost:%d", session_id, record.local_port)

    # --- what the monitor found out -----------------------------------------

    def note(self, session_id: str, status: str, error: str | None, checked: bool = False) -> None:
        """Record a session's status as the monitor (or a failed resume) found it."""
        with self._state.lock(session_id):
            record = self._state.viewers.get(session_id)
            if record is None or (record.stop_requested and status != "error"):
                return
            record.status = status  # type: ignore[assignment]
            record.error = error
            if checked:
                record.checked_at = time.time()
            self._state.viewers.put(session_id, record)

    def connection_lost(self, connection_id: str, error: str | None) -> None:
        """Mark the sessions of a lost connection ``reconnecting`` (``error`` says when a person must act)."""
        for record in self._state.sessions_of(connection_id):
            if record.status != "starting" and not record.stop_requested:
                self.note(record.session_id, "reconnecting", error)

    def remote_status(self, session_id: str, timeout: float | None = None) -> dict[str, Any] | None:
        """Ask the server whether a session's viewer runs (for the monitor, off the request path)."""
        record = self._state.viewers.get(session_id)
        if record is None:
            return None
        return self._remote_status(target_of(record), record, timeout)
