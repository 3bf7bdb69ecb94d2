"""Remote Runicorn viewers: start behind a forward on the connection's master, watch, stop.

A session is on disk (``<state>/viewers``) from the moment its remote process
exists, so a restarted rvssh lists it again and can stop it. Its status is
the truth at the time of the call: one ``GET /api/health`` through the
tunnel proves master, forward and viewer alive at once; only when that fails
does rvssh ask the server why.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Protocol

from rvssh.errors import NotFoundError, RvsshError
from rvssh.models import ViewerSession, ViewerStartRequest
from rvssh.remote.probe import load_program, parse_probe_output
from rvssh.services.connections import ConnectionService
from rvssh.ssh.errors import PortInUseError, RemoteCommandError
from rvssh.ssh.exec import RemoteExecutor
from rvssh.ssh.forward import Forwarder, local_port_is_free, pick_free_local_port
from rvssh.ssh.target import Target
from rvssh.store.records import RecordDirectory

VIEWER_SCRIPT = "viewer.py"
STATUS_CACHE_SECONDS = 2.0
ERROR_DISPLAY_SECONDS = 60.0
POLL_INTERVAL = 0.05
REMOTE_CHECK_INTERVAL = 1.0
AUTO_PORT_ATTEMPTS = 3
STARTING_GRACE_SECONDS = 30.0


class PythonResolver(Protocol):
    """Maps a requested environment name to the interpreter path on the server."""

    def python_for(self, target: Target, env_name: str | None) -> str:
        """Return the python of ``env_name`` (no name: the ``system`` environment)."""


def fetch_health(local_port: int, timeout: float = 2.0) -> dict[str, Any] | None:
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


def _serves_root(health: dict[str, Any] | None, roots: set[str]) -> bool:
    return bool(health) and health.get("status") == "ok" and health.get("storage") in roots  # type: ignore[union-attr]


class ViewerService:
    """Start, list, check and stop viewer sessions."""

    def __init__(
        self,
        connections: ConnectionService,
        executor: RemoteExecutor,
        forwarder: Forwarder,
        records: RecordDirectory,
        resolver: PythonResolver,
        ready_timeout: float,
        health: Callable[[int], dict[str, Any] | None] = fetch_health,
    ) -> None:
        self._connections = connections
        self._executor = executor
        self._forwarder = forwarder
        self._records = records
        self._resolver = resolver
        self._ready_timeout = ready_timeout
        self._health = health
        self._cache: dict[str, tuple[float, str, str | None]] = {}
        self._cache_lock = threading.Lock()
        connections.on_disconnect(self.stop_all_for)

    # --- remote script ---------------------------------------------------

    def _remote(self, target: Target, args: list[str], python: str | None = None) -> dict[str, Any]:
        result = self._executor.run_python(target, load_program(VIEWER_SCRIPT), args, python=python)
        return parse_probe_output(result.stdout, result.stderr, result.exit_status)

    # --- start -----------------------------------------------------------

    def start(self, request: ViewerStartRequest, target: Target) -> ViewerSession:
        """Launch a viewer for ``request`` on the live connection ``target``; return it when ready."""
        python = self._resolver.python_for(target, request.conda_env)
        if request.local_port and not local_port_is_free(request.local_port):
            raise PortInUseError(f"Local port {request.local_port} is already in use")
        session_id = uuid.uuid4().hex[:8]
        launched = self._remote(
            target, ["launch", request.remote_root, str(request.remote_port or 0), session_id], python
        )
        record: dict[str, Any] = {
            "session_id": session_id,
            "connection_id": target.connection_id,
            "host": target.host,
            "ssh_port": target.port,
            "username": target.username,
            "local_port": 0,
            "remote_port": int(launched["port"]),
            "remote_root": request.remote_root,
            "storage": launched.get("storage"),
            "remote_pid": int(launched["pid"]),
            "conda_env": request.conda_env,
            "status": "starting",
            "created_at": time.time(),
        }
        self._records.put(session_id, record)
        try:
            record["local_port"] = self._add_forward(target, request.local_port, record["remote_port"])
            self._records.put(session_id, record)
            self._wait_until_ready(target, record)
        except BaseException:
            self._tear_down(target, record)
            raise
        record["status"] = "running"
        self._records.put(session_id, record)
        return self._session(record, "running", None)

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

    def _wait_until_ready(self, target: Target, record: dict[str, Any]) -> None:
        """Poll /api/health through the tunnel until it serves our storage root."""
        roots = {record["remote_root"], record.get("storage")}
        deadline = time.monotonic() + self._ready_timeout
        next_remote_check = time.monotonic() + REMOTE_CHECK_INTERVAL
        while time.monotonic() < deadline:
            if _serves_root(self._health(record["local_port"]), roots):
                return
            if time.monotonic() >= next_remote_check:
                status = self._remote(target, ["status", str(record["remote_pid"]), record["session_id"]])
                if not status.get("alive"):
                    raise RemoteCommandError(
                        f"Failed to start Remote Viewer: the viewer exited. Log: {status.get('log_tail') or '(empty)'}"
                    )
                next_remote_check = time.monotonic() + REMOTE_CHECK_INTERVAL
            time.sleep(POLL_INTERVAL)
        status = self._remote(target, ["status", str(record["remote_pid"]), record["session_id"]])
        raise RemoteCommandError(
            f"Failed to start Remote Viewer: no answer from the viewer within {self._ready_timeout:g} s. "
            f"Log: {status.get('log_tail') or '(still running)'}"
        )

    def _tear_down(self, target: Target, record: dict[str, Any]) -> None:
        """Undo exactly what start did: our forward, our process group, our log."""
        try:
            if record.get("local_port"):
                self._forwarder.cancel(target, record["local_port"], record["remote_port"])
            if self._connections.is_alive(target):
                self._remote(target, ["stop", str(record["remote_pid"]), record["session_id"]])
        except RvsshError:
            pass
        finally:
            self._records.delete(record["session_id"])
            self._forget_status(record["session_id"])

    # --- watch -----------------------------------------------------------

    def _session(self, record: dict[str, Any], status: str, error: str | None) -> ViewerSession:
        started = float(record["created_at"])
        return ViewerSession(
            session_id=record["session_id"],
            host=record["host"],
            ssh_port=record["ssh_port"],
            username=record["username"],
            local_port=record["local_port"],
            remote_port=record["remote_port"],
            remote_root=record["remote_root"],
            remote_pid=record["remote_pid"],
            status=status,  # type: ignore[arg-type]
            started_at=int(started * 1000),
            uptime_seconds=round(time.time() - started, 3),
            is_active=status == "running",
            url=f"http://localhost:{record['local_port']}",
            connection_id=record["connection_id"],
            conda_env=record.get("conda_env"),
            error=error,
        )

    def _forget_status(self, session_id: str) -> None:
        with self._cache_lock:
            self._cache.pop(session_id, None)

    def _cached(self, session_id: str) -> tuple[str, str | None] | None:
        """Return the (status, error) checked less than a couple of seconds ago, if any."""
        with self._cache_lock:
            cached = self._cache.get(session_id)
        if cached and time.monotonic() - cached[0] < STATUS_CACHE_SECONDS:
            return cached[1], cached[2]
        return None

    def _check(self, record: dict[str, Any]) -> tuple[str, str | None]:
        """Return (status, error) as things are now; cached for a couple of seconds."""
        cached = self._cached(record["session_id"])
        if cached is not None:
            return cached
        status, error = self._probe(record)
        with self._cache_lock:
            self._cache[record["session_id"]] = (time.monotonic(), status, error)
        return status, error

    def _probe(self, record: dict[str, Any]) -> tuple[str, str | None]:
        if record.get("status") == "starting":
            # A start still running in some worker, or one that rvssh died in.
            if time.time() - float(record["created_at"]) < self._ready_timeout + STARTING_GRACE_SECONDS:
                return "starting", None
            return "error", "The start did not finish (rvssh stopped while starting this viewer)"
        if record.get("status") == "error":
            return "error", record.get("error")
        target = Target(record["host"], record["ssh_port"], record["username"])
        if not self._connections.is_alive(target):
            return "stopped", "The SSH connection is gone"
        roots = {record["remote_root"], record.get("storage")}
        if _serves_root(self._health(record["local_port"]), roots):
            return "running", None
        try:
            remote = self._remote(target, ["status", str(record["remote_pid"]), record["session_id"]])
        except RvsshError as ex:
            return "error", ex.message
        if not remote.get("alive"):
            reason = "The viewer process is not running on the server"
            tail = remote.get("log_tail")
            return "error", f"{reason}. Log: {tail}" if tail else reason
        return "error", "The viewer runs but does not answer through the tunnel"

    def list_sessions(self) -> list[ViewerSession]:
        """Return every session with its live status, checked concurrently."""
        records = self._records.all()
        states = [self._cached(record["session_id"]) for record in records]
        stale = [record for record, state in zip(records, states) if state is None]
        # PERF: threads only when two or more sessions need a fresh check; the
        # poll of the UI (every 5 s) mostly hits the cache.
        if len(stale) > 1:
            with ThreadPoolExecutor(max_workers=min(8, len(stale))) as pool:
                fresh = dict(zip((record["session_id"] for record in stale), pool.map(self._check, stale)))
        else:
            fresh = {record["session_id"]: self._check(record) for record in stale}
        states = [state if state is not None else fresh[record["session_id"]] for record, state in zip(records, states)]
        sessions = []
        for record, (status, error) in zip(records, states):
            sessions.append(self._session(record, status, error))
            self._settle(record, status, error)
        return sessions

    def _settle(self, record: dict[str, Any], status: str, error: str | None) -> None:
        """Remember failures; forget sessions that can no longer be reached or shown."""
        if status == "stopped":
            # The master is gone: nothing left to stop from here; report once.
            self._records.delete(record["session_id"])
            self._forget_status(record["session_id"])
        elif status == "error" and record.get("status") != "error":
            record.update(status="error", error=error, error_since=time.time())
            self._records.put(record["session_id"], record)
        elif status == "error" and time.time() - record.get("error_since", time.time()) > ERROR_DISPLAY_SECONDS:
            target = Target(record["host"], record["ssh_port"], record["username"])
            self._tear_down(target, record)

    def get(self, session_id: str) -> ViewerSession:
        """Return one session with its live status, or raise 404."""
        record = self._records.get(session_id)
        if record is None:
            raise NotFoundError(f"Session not found: {session_id}")
        status, error = self._check(record)
        self._settle(record, status, error)
        return self._session(record, status, error)

    # --- stop ------------------------------------------------------------

    def stop(self, session_id: str) -> None:
        """Cancel the forward, end the remote process group, remove the log."""
        record = self._records.get(session_id)
        if record is None:
            raise NotFoundError(f"Session not found: {session_id}")
        target = Target(record["host"], record["ssh_port"], record["username"])
        self._tear_down(target, record)

    def stop_all_for(self, target: Target) -> None:
        """Stop every session riding on ``target``'s connection (before a disconnect)."""
        for record in self._records.all():
            if record["connection_id"] == target.connection_id:
                self._tear_down(target, record)
