"""The viewer lifecycle and the monitor as a state machine, with fake ssh, forwarder, health and clock.

No process is started: a fake executor answers the remote programs, a fake
forwarder keeps the forwards in a dict, the clock is a number the test
moves. The records are real (a state directory under tmp).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

from rvssh.errors import NotFoundError, RvsshError
from rvssh.models import ViewerStartRequest
from rvssh.services.credentials import Credentials
from rvssh.services.monitor import QUICK_ATTEMPTS, SLOW_RETRY, Monitor, heal_delay
from rvssh.services.viewer import ViewerLifecycle, ViewerReads
from rvssh.ssh.errors import AuthPromptError, ConnectError, MasterGoneError, PortInUseError, RemoteCommandError
from rvssh.ssh.exec import CommandResult
from rvssh.ssh.prompts import classify_prompt
from rvssh.ssh.target import Target, make_target
from rvssh.store.records import AuthRecipe, MasterRecord, StateStore, ViewerRecord

TARGET = make_target("gpu", 22, "me")
ROOT = "/home/me/runs"


@dataclass
class FakeServer:
    """What the server side of the fakes knows: viewer processes by pid."""

    running: dict[int, str] = field(default_factory=dict)  # pid -> session id
    next_pid: int = 1000
    launches: list[tuple[str, str]] = field(default_factory=list)  # (session id, remote port)
    stops: list[str] = field(default_factory=list)
    fail_stop: bool = False


class FakeExecutor:
    """Answers viewer.py launch/status and viewer_stop.sh from FakeServer."""

    def __init__(self, server: FakeServer, reachable: Callable[[], bool]) -> None:
        self.server = server
        self.reachable = reachable

    def run(self, target: Target, program: bytes, timeout: float | None = None) -> CommandResult:
        if not self.reachable():
            raise MasterGoneError(f"Connection lost: the ssh connection {target.connection_id} is gone")
        args = shlex.split(program.split(b"\n", 1)[0].decode()[len("set -- "):])
        if b"rvssh_is_ours" in program:
            return self._answer(self._stop(*args))
        subcommand, *rest = args
        if subcommand == "launch":
            root, port, session_id = rest
            self.server.launches.append((session_id, port))
            pid = self.server.next_pid
            self.server.next_pid += 1
            self.server.running[pid] = session_id
            return self._answer({"pid": pid, "port": int(port) or 40000 + pid % 1000, "storage": root,
                                 "python": "/home/me/venv/bin/python"})
        pid, session_id = int(rest[0]), rest[1]
        alive = self.server.running.get(pid) == session_id
        return self._answer({"alive": alive, "log_tail": "" if alive else "Traceback: boom"})

    def _stop(self, pid: str, session_id: str) -> dict[str, Any]:
        if self.server.fail_stop:
            raise RemoteCommandError("Remote command timed out after 60 s")
        self.server.stops.append(session_id)
        was = self.server.running.pop(int(pid), None) == session_id
        return {"stopped": True, "was_running": was}

    @staticmethod
    def _answer(value: dict[str, Any]) -> CommandResult:
        return CommandResult(0, json.dumps(value).encode() + b"\n", b"")


class FakeForwarder:
    def __init__(self) -> None:
        self.forwards: dict[int, int] = {}
        self.taken: set[int] = set()

    def add(self, target: Target, local_port: int, remote_port: int) -> None:
        if local_port in self.taken:
            raise PortInUseError(f"Local port {local_port} is already in use")
        self.forwards[local_port] = remote_port

    def cancel(self, target: Target, local_port: int, remote_port: int) -> bool:
        return self.forwards.pop(local_port, None) is not None


class FakeConnections:
    """The part of ConnectionService the lifecycle and the monitor use."""

    def __init__(self, state: StateStore) -> None:
        self.state = state
        self.alive = True
        self.logins: list[Target] = []
        self.login_error: RvsshError | None = None
        self.hooks: list[Callable[[Target], None]] = []
        self.marks: list[tuple[str, str]] = []
        self.forgotten: list[str] = []

    def on_disconnect(self, hook: Callable[[Target], None]) -> None:
        pass

    def on_login(self, hook: Callable[[Target], None]) -> None:
        self.hooks.append(hook)

    def is_alive(self, target: Target) -> bool:
        return self.alive

    def record_is_alive(self, record: MasterRecord) -> bool:
        return self.alive

    def heal(self, target: Target, credentials: Credentials, connect_timeout: float) -> None:
        self.logins.append(target)
        if self.login_error is not None:
            raise self.login_error
        self.alive = True
        self.mark(target.connection_id, "up", None)
        for hook in self.hooks:
            hook(target)

    def mark(self, connection_id: str, state: str, message: str | None, attempts: int | None = None) -> None:
        record = self.state.masters.get(connection_id)
        assert record is not None
        record.state, record.message = state, message  # type: ignore[assignment]
        record.checked_at = CLOCK.now
        if attempts is not None:
            record.attempts = attempts
        self.state.masters.put(connection_id, record)
        self.marks.append((state, message or ""))

    def forget(self, connection_id: str) -> None:
        self.forgotten.append(connection_id)
        self.state.masters.delete(connection_id)


class Clock:
    now = 1_000_000.0


CLOCK = Clock()


@dataclass
class Bench:
    state: StateStore
    server: FakeServer
    forwarder: FakeForwarder
    connections: FakeConnections
    lifecycle: ViewerLifecycle
    healthy: set[int]

    def monitor(self) -> Monitor:
        return Monitor(self.state_dir, self.state, self.connections, self.lifecycle,  # type: ignore[arg-type]
                       recall=lambda recipe: Credentials(), interval=1, heal_timeout=3, starting_limit=90,
                       health=self.health, clock=lambda: CLOCK.now, submit=lambda work: work())

    def health(self, port: int, timeout: float) -> dict[str, Any] | None:
        return {"status": "ok", "storage": ROOT} if port in self.healthy else None

    @property
    def state_dir(self) -> Path:
        return self.state.masters._directory.parent  # type: ignore[attr-defined]

    def record(self, session_id: str) -> ViewerRecord:
        record = self.state.viewers.get(session_id)
        assert record is not None
        return record


@pytest.fixture
def bench(tmp_path: Path) -> Bench:
    CLOCK.now = 1_000_000.0
    state = StateStore(tmp_path, lock_timeout=2)
    server = FakeServer()
    connections = FakeConnections(state)
    forwarder = FakeForwarder()
    healthy: set[int] = set()
    resolver = type("Resolver", (), {"python_for": lambda self, target, env: None})()
    lifecycle = ViewerLifecycle(
        connections,  # type: ignore[arg-type]
        FakeExecutor(server, lambda: connections.alive),  # type: ignore[arg-type]
        forwarder,  # type: ignore[arg-type]
        state,
        resolver=resolver,
        ready_timeout=2,
        health=lambda port, timeout: {"status": "ok", "storage": ROOT} if port in healthy else None,
    )
    state.masters.put(TARGET.connection_id, MasterRecord(
        connection_id=TARGET.connection_id, host="gpu", port=22, username="me", control_path="/cm/x", pid=1,
        started_at=1.0, created_at=1.0, auth=AuthRecipe(), checked_at=CLOCK.now))
    return Bench(state, server, forwarder, connections, lifecycle, healthy)


def start(bench: Bench, local_port: int | None = 18080) -> str:
    bench.healthy.add(local_port or 0)
    request = ViewerStartRequest(host="gpu", username="me", remote_root=ROOT, local_port=local_port)
    return bench.lifecycle.start(request, TARGET).session_id


# --- start and stop ------------------------------------------------------------------------


def test_a_start_records_a_running_session_behind_its_forward(bench: Bench) -> None:
    session_id = start(bench)
    record = bench.record(session_id)
    assert (record.status, record.local_port, record.python) == ("running", 18080, "/home/me/venv/bin/python")
    assert bench.forwarder.forwards == {18080: record.remote_port}
    assert ViewerReads(bench.state).get(session_id).status == "running"


def test_a_start_that_never_gets_ready_undoes_everything(bench: Bench) -> None:
    request = ViewerStartRequest(host="gpu", username="me", remote_root=ROOT, local_port=18081)
    bench.lifecycle._ready_timeout = 0.2
    with pytest.raises(RemoteCommandError, match="no answer from the viewer"):
        bench.lifecycle.start(request, TARGET)
    assert bench.state.viewers.all() == [] and bench.forwarder.forwards == {} and bench.server.running == {}


def test_a_stop_ends_forward_viewer_and_record(bench: Bench) -> None:
    session_id = start(bench)
    bench.lifecycle.stop(session_id)
    assert bench.forwarder.forwards == {} and bench.server.running == {} and bench.state.viewers.all() == []
    with pytest.raises(NotFoundError, match=f"Session not found: {session_id}"):
        bench.lifecycle.stop(session_id)


@pytest.mark.parametrize("cause", ["master gone", "remote timeout"])
def test_a_stop_that_cannot_reach_the_server_keeps_the_session_as_an_error(bench: Bench, cause: str) -> None:
    session_id = start(bench)
    if cause == "master gone":
        bench.connections.alive = False
    else:
        bench.server.fail_stop = True
    with pytest.raises(MasterGoneError, match="^Could not stop the viewer on the server: "):
        bench.lifecycle.stop(session_id)
    record = bench.record(session_id)
    assert (record.status, record.stop_requested) == ("error", True)
    assert "will be stopped the next time rvssh logs in to gpu" in (record.error or "")
    assert len(bench.server.running) == 1


# --- after a login ------------------------------------------------------------------------------


def test_a_resume_reuses_a_running_viewer_on_the_same_port(bench: Bench) -> None:
    session_id = start(bench)
    bench.forwarder.forwards.clear()  # the old master took its forwards with it
    bench.lifecycle.note(session_id, "reconnecting", None)
    bench.lifecycle.resume(TARGET)
    record = bench.record(session_id)
    assert (record.status, record.local_port, len(bench.server.launches)) == ("running", 18080, 1)
    assert bench.forwarder.forwards == {18080: record.remote_port}


def test_a_resume_launches_a_gone_viewer_again_under_the_same_session(bench: Bench) -> None:
    session_id = start(bench)
    old_pid = bench.record(session_id).remote_pid
    bench.server.running.clear()
    bench.forwarder.forwards.clear()
    bench.lifecycle.resume(TARGET)
    record = bench.record(session_id)
    assert record.status == "running" and record.remote_pid != old_pid
    assert [launch[0] for launch in bench.server.launches] == [session_id, session_id]
    assert list(bench.server.running.values()) == [session_id]  # never two viewers for one session


def test_a_resume_moves_the_tunnel_only_when_its_port_was_taken_and_says_so(bench: Bench) -> None:
    session_id = start(bench, local_port=18082)
    bench.forwarder.forwards.clear()
    bench.forwarder.taken.add(18082)
    bench.healthy.clear()
    real_add = bench.forwarder.add

    def add_and_serve(target: Target, local_port: int, remote_port: int) -> None:
        real_add(target, local_port, remote_port)
        bench.healthy.add(local_port)

    bench.forwarder.add = add_and_serve  # type: ignore[method-assign]
    bench.lifecycle.resume(TARGET)
    record = bench.record(session_id)
    assert record.local_port != 18082 and record.status == "running"
    assert record.message == (f"The tunnel moved from port 18082 to {record.local_port}: another program "
                              "took port 18082 while the connection was down")


def test_a_resume_stops_a_session_whose_stop_waited_for_the_login(bench: Bench) -> None:
    session_id = start(bench)
    bench.connections.alive = False
    with pytest.raises(MasterGoneError):
        bench.lifecycle.stop(session_id)
    bench.connections.alive = True
    bench.lifecycle.resume(TARGET)
    assert bench.state.viewers.all() == [] and bench.server.running == {}


# --- the monitor ---------------------------------------------------------------------------------


def test_a_lost_master_with_sessions_is_healed_at_once_and_the_session_comes_back(bench: Bench) -> None:
    session_id = start(bench)
    monitor = bench.monitor()
    bench.connections.alive = False
    monitor.tick()
    assert bench.connections.marks[-1][0] == "reconnecting"
    assert bench.record(session_id).status == "reconnecting"
    monitor.tick()  # attempt 1 is due at once
    assert bench.connections.logins == [TARGET]
    assert bench.record(session_id).status == "running"


def test_failed_logins_are_retried_with_backoff_by_the_clock(bench: Bench) -> None:
    start(bench)
    monitor = bench.monitor()
    bench.connections.alive = False
    bench.connections.login_error = ConnectError("Connection failed: ssh: connect to host gpu port 22: Network is unreachable")
    monitor.tick()
    monitor.tick()
    assert len(bench.connections.logins) == 1
    record = bench.state.masters.get(TARGET.connection_id)
    assert record is not None and record.attempts == 1 and "Network is unreachable" in (record.message or "")
    monitor.tick()
    assert len(bench.connections.logins) == 1, "the next attempt waits for its delay"
    CLOCK.now += heal_delay(1)
    monitor.tick()
    assert len(bench.connections.logins) == 2
    assert [heal_delay(n) for n in (0, 1, 2, 3, QUICK_ATTEMPTS + 1)] == [0.0, 0.5, 1.0, 1.0, SLOW_RETRY]


def test_a_login_that_needs_a_person_waits_and_the_session_says_so(bench: Bench) -> None:
    session_id = start(bench)
    monitor = bench.monitor()
    bench.connections.alive = False
    question = classify_prompt("me@gpu's password: ")
    bench.connections.login_error = AuthPromptError("The server asks for a password: me@gpu's password:", [question])
    monitor.tick()
    monitor.tick()
    assert bench.connections.marks[-1][0] == "waiting"
    record = bench.record(session_id)
    assert record.status == "reconnecting"
    assert record.error is not None and record.error.startswith("Waiting for you: logging in to gpu again needs a person")
    monitor.tick()
    monitor.tick()
    assert len(bench.connections.logins) == 1, "a login that needs a person is never tried again by itself"


def test_a_lost_master_without_sessions_is_down_then_forgotten(bench: Bench) -> None:
    monitor = bench.monitor()
    bench.connections.alive = False
    monitor.tick()
    assert bench.connections.marks[-1] == ("down", "The SSH connection was lost")
    monitor.tick()
    assert bench.connections.forgotten == []
    CLOCK.now += 61
    monitor.tick()
    assert bench.connections.forgotten == [TARGET.connection_id]
    assert bench.connections.logins == []


def test_a_viewer_that_stops_answering_is_an_error_with_its_reason(bench: Bench) -> None:
    session_id = start(bench)
    monitor = bench.monitor()
    bench.server.running.clear()
    bench.healthy.clear()
    for _ in range(3):
        monitor.tick()
    record = bench.record(session_id)
    assert record.status == "error" and record.error == "The viewer process is not running on the server. Log: Traceback: boom"
    bench.healthy.add(18080)
    monitor.tick()
    assert bench.record(session_id).status == "running"


def test_a_start_nobody_finishes_becomes_an_error(bench: Bench) -> None:
    bench.state.viewers.put("abandoned", ViewerRecord(
        session_id="abandoned", connection_id=TARGET.connection_id, host="gpu", ssh_port=22, username="me",
        local_port=0, remote_port=0, remote_root=ROOT, remote_pid=0, created_at=CLOCK.now))
    monitor = bench.monitor()
    monitor.tick()
    assert bench.record("abandoned").status == "starting"
    CLOCK.now += 91
    monitor.tick()
    record = bench.record("abandoned")
    assert (record.status, record.error) == ("error", "The start did not finish (rvssh stopped while starting this viewer)")
