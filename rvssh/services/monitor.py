"""The background monitor: finds out how connections and viewers are, and heals tunnels.

One monitor runs per state directory: every rvssh process (each gunicorn
worker, a CLI in process) starts a thread that waits for ``monitor.lock``;
the holder watches, the others stand by and take over if it goes away. It
never runs on a request's path, and it writes nothing itself: what it finds
goes through :class:`~rvssh.services.connections.ConnectionService` and
:class:`~rvssh.services.viewer.ViewerLifecycle`, the writers.

Each tick (``interval`` seconds):

- a master whose process is gone is *lost*: with sessions riding on it, it
  is ``reconnecting`` and rvssh logs in again by itself with what needs no
  person (agent, key file, saved secrets), with backoff; when a person is
  needed (a password that is not saved, a second factor, a changed host
  key) it is ``waiting`` and the sessions say so. Without sessions it is
  ``down``, and forgotten after a while.
- a running session is asked ``GET /api/health`` through its tunnel (short
  timeout); after a few failures in a row the server is asked whether the
  viewer still runs. A start that no process finishes any more (rvssh
  stopped while starting) becomes an error.

How fast a dead *link* is noticed is ssh's job: ServerAliveInterval ×
ServerAliveCountMax in rvssh's ssh_config, after which the master exits.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from rvssh.errors import RvsshError
from rvssh.files import make_private_dir
from rvssh.services.connections import ConnectionService, target_of
from rvssh.services.credentials import Credentials
from rvssh.services.viewer import Health, ViewerLifecycle, fetch_health, serves_root
from rvssh.ssh.errors import AuthenticationError, HostKeyError
from rvssh.store.records import AuthRecipe, MasterRecord, StateStore, ViewerRecord

log = logging.getLogger(__name__)

HEALTH_CHECK_TIMEOUT = 1.0
FAILURES_BEFORE_REMOTE_CHECK = 3
REMOTE_CHECK_TIMEOUT = 10.0
FORGET_DOWN_AFTER = 60.0
REFRESH_CHECKED_EVERY = 5.0
ELECTION_RETRY = 2.0
# PERF: a link that comes back is found within a login attempt (3 s) and a
# second; after this many attempts (a few minutes) rvssh tries less often.
QUICK_ATTEMPTS = 60
SLOW_RETRY = 10.0


def heal_delay(attempts: int) -> float:
    """Return how long to wait before login attempt number ``attempts + 1`` after a loss."""
    if attempts == 0:
        return 0.0
    if attempts > QUICK_ATTEMPTS:
        return SLOW_RETRY
    return min(1.0, 0.25 * 2**attempts)


class Monitor:
    """Watch one state directory's connections and sessions; heal what can be healed."""

    def __init__(
        self,
        state_dir: Path,
        state: StateStore,
        connections: ConnectionService,
        viewers: ViewerLifecycle,
        recall: Callable[[AuthRecipe], Credentials],
        interval: float,
        heal_timeout: float,
        starting_limit: float,
        health: Health = fetch_health,
        clock: Callable[[], float] = time.time,
        submit: Callable[[Callable[[], None]], object] | None = None,
    ) -> None:
        self._lock_path = state_dir / "monitor.lock"
        self._state = state
        self._connections = connections
        self._viewers = viewers
        self._recall = recall
        self._interval = interval
        self._heal_timeout = heal_timeout
        self._starting_limit = starting_limit
        self._health = health
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._healing: set[str] = set()
        self._checking: set[str] = set()
        self._failures: dict[str, int] = {}
        self._guard = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="rvssh-monitor")
        # Heals and checks run beside the loop (a test runs them at once).
        self._submit = submit or self._pool.submit

    # --- thread and election ---------------------------------------------

    def start(self) -> None:
        """Start the monitor thread (it watches once it holds the state dir's monitor lock)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="rvssh-monitor", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop watching and give the lock up (for tests and a clean shutdown)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(self) -> None:
        make_private_dir(self._lock_path.parent)
        descriptor = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            while not self._stop.is_set():
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    self._stop.wait(ELECTION_RETRY)
                    continue
                log.debug("this process (pid %d) watches the connections", os.getpid())
                while not self._stop.is_set():
                    self.tick()
                    self._stop.wait(self._interval)
        finally:
            os.close(descriptor)

    # --- one look at everything ------------------------------------------------

    def tick(self) -> None:
        """Look at every connection and session once; start heals and checks that are due."""
        try:
            masters = self._state.masters.all()
            sessions = self._state.viewers.all()
            riding: dict[str, list[ViewerRecord]] = {}
            for session in sessions:
                riding.setdefault(session.connection_id, []).append(session)
            for master in masters:
                self._look_at_master(master, riding.get(master.connection_id, []))
            alive = {master.connection_id for master in masters if master.state == "up"
                     and self._connections.record_is_alive(master)}
            for session in sessions:
                if session.status in ("running", "error") and session.connection_id in alive:
                    self._spawn(self._checking, session.session_id, self._check_session, session)
                elif session.status == "starting" and self._clock() - session.created_at > self._starting_limit:
                    # A start that no rvssh finishes any more (it stopped while starting).
                    self._viewers.note(session.session_id, "error",
                                       "The start did not finish (rvssh stopped while starting this viewer)")
        except RvsshError as ex:
            log.warning("monitor: %s", ex.message)

    def _look_at_master(self, master: MasterRecord, sessions: list[ViewerRecord]) -> None:
        now = self._clock()
        if self._connections.record_is_alive(master):
            if master.state == "up" and now - master.checked_at > REFRESH_CHECKED_EVERY:
                self._connections.mark(master.connection_id, "up", None)
            return
        if master.state == "up":
            log.info("lost the connection %s (its master exited)", master.connection_id)
            if sessions:
                self._connections.mark(master.connection_id, "reconnecting",
                                       "The SSH connection was lost; rvssh is logging in again", attempts=0)
                self._viewers.connection_lost(master.connection_id, None)
            else:
                self._connections.mark(master.connection_id, "down", "The SSH connection was lost")
        elif master.state == "reconnecting":
            if now - master.checked_at >= heal_delay(master.attempts):
                self._spawn(self._healing, master.connection_id, self._heal, master)
        elif master.state == "down" and not sessions and now - master.checked_at > FORGET_DOWN_AFTER:
            self._connections.forget(master.connection_id)

    def _spawn(self, running: set[str], key: str, work: Callable[..., None], *args: object) -> None:
        """Run ``work`` in the pool unless the same work for ``key`` is still going."""
        with self._guard:
            if key in running:
                return
            running.add(key)

        def run() -> None:
            try:
                work(*args)
            except RvsshError as ex:
                log.warning("monitor: %s", ex.message)
            finally:
                with self._guard:
                    running.discard(key)

        self._submit(run)

    # --- healing ------------------------------------------------------------

    def _heal(self, master: MasterRecord) -> None:
        target = target_of(master)
        try:
            self._connections.heal(target, self._recall(master.auth), self._heal_timeout)
        except (AuthenticationError, HostKeyError) as ex:
            # APPSEC: a refused or unanswerable login is never repeated by itself (lockout).
            message = (f"Waiting for you: logging in to {master.host} again needs a person ({ex.message}). "
                       "Connect again to resume the viewers on the same ports, or stop them.")
            log.info("%s: %s", master.connection_id, message)
            self._connections.mark(master.connection_id, "waiting", message)
            self._viewers.connection_lost(master.connection_id, message)
        except RvsshError as ex:
            attempts = master.attempts + 1
            log.info("login to %s failed (attempt %d): %s", master.connection_id, attempts, ex.message)
            self._connections.mark(master.connection_id, "reconnecting",
                                   f"The SSH connection was lost; logging in again ({ex.message})", attempts)

    # --- sessions ---------------------------------------------------------------

    def _check_session(self, session: ViewerRecord) -> None:
        healthy = serves_root(self._health(session.local_port, HEALTH_CHECK_TIMEOUT), session)
        if healthy:
            self._failures.pop(session.session_id, None)
            if session.status != "running" or self._clock() - session.checked_at > REFRESH_CHECKED_EVERY:
                self._viewers.note(session.session_id, "running", None, checked=True)
            return
        failures = self._failures.get(session.session_id, 0) + 1
        self._failures[session.session_id] = failures
        if failures != FAILURES_BEFORE_REMOTE_CHECK:
            return
        self._viewers.note(session.session_id, "error", "No answer through the tunnel (is the link down?)")
        remote = self._viewers.remote_status(session.session_id, REMOTE_CHECK_TIMEOUT)
        if remote is None:
            return
        if not remote.get("alive"):
            tail = remote.get("log_tail")
            reason = "The viewer process is not running on the server"
            self._viewers.note(session.session_id, "error", f"{reason}. Log: {tail}" if tail else reason, checked=True)
        else:
            self._viewers.note(session.session_id, "error",
                               "The viewer runs but does not answer through the tunnel", checked=True)
