"""The links pass of scripts/bench: reads while the link is frozen, and a link that goes down and up (issue #11).

For rvssh and then the reference, each with one viewer running behind its
tunnel:

- **frozen**: the sshd processes serving the connections are stopped
  (SIGSTOP, as tests/integration/test_links.py does) for ``link_hold``
  seconds, past rvssh's keepalive window (15 s by default), while a client
  reads ``sessions``, ``status`` and ``viewer/sessions`` in a loop; the p99
  of those reads is the figure;
- **down and up**: an sshd in a network namespace (tests/netbed.py) whose
  link goes down for ``link_hold`` seconds and comes back; the figure is the
  time from the link's return until the session's local port serves the
  viewer's ``/api/health`` again (the same port: an open tab keeps working),
  with a 30 s limit.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchkit import (
    REFERENCE,
    BenchBed,
    Sample,
    Server,
    env_for,
    health_ok,
    http_call,
    log,
    post_viewer_start,
    run_as_user,
    target_body,
    wait_until,
)
from tests.netbed import NetnsBed

if TYPE_CHECKING:
    from bench import Bench

READS = ("/api/remote/sessions", "/api/remote/status", "/api/remote/viewer/sessions")
BACK_LIMIT = 30.0
READ_TIMEOUT = 60.0


class LinkBed(NetnsBed, BenchBed):
    """The bench's sshd (the runicorn venv first on PATH) in a network namespace whose link can go down."""


def run_links(bench: "Bench") -> None:
    """Measure both servers on a frozen link and on a link that goes down and up; into ``bench.extra["links"]``."""
    results: dict[str, dict[str, Any]] = {}
    for kind, bed in (("frozen", BenchBed()), ("down", LinkBed())):
        bed.start()
        try:
            if isinstance(bed, LinkBed):
                bed.user_known_hosts.write_text(bed.known_hosts_text())
            for start in (lambda: bench.start_rvssh("rvssh", bed=bed),
                          lambda: bench.start_reference(f"runicorn {REFERENCE}", REFERENCE, bed=bed)):
                server = start()
                try:
                    found = freeze(bench, server, bed) if kind == "frozen" else down_and_up(bench, server, bed)
                    results.setdefault(server.name, {}).update(found)
                finally:
                    if isinstance(bed, LinkBed):
                        bed.link_up()
                    bench.stop_server(server)
        finally:
            bed.stop()
            run_as_user(["rm", "-rf", str(stores(bench))], check=False)
    bench.extra["links"] = results


def stores(bench: "Bench") -> Path:
    assert bench.ws is not None
    return bench.ws.root / "link-stores"


def start_viewer(bench: "Bench", server: Server, bed: BenchBed) -> dict[str, Any]:
    bench.trust(server, bed)
    body = {**target_body(bed), "use_agent": True, "remote_root": str(stores(bench) / uuid.uuid4().hex[:6])}
    session = post_viewer_start(server, body, env_for(bench.runicorn_env, server), timeout=120)
    wait_until(lambda: health_ok(session["localPort"], timeout=1.0), 60, f"{server.name}'s viewer never answered")
    return session


class Reads:
    """Read every endpoint on fresh connections in a loop, in the background; keep each read's time."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self._stop = threading.Event()
        self.sample = Sample()
        self.failed = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Reads":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(READ_TIMEOUT + 5)

    def _run(self) -> None:
        while not self._stop.is_set():
            for path in READS:
                started = time.perf_counter()
                try:
                    status, _ = http_call(self._server.port, "GET", path, timeout=READ_TIMEOUT)
                except OSError:
                    status = 0
                self.sample.values.append((time.perf_counter() - started) * 1000.0)
                self.failed += status != 200
            self._stop.wait(0.05)


def freeze(bench: "Bench", server: Server, bed: BenchBed) -> dict[str, Any]:
    session = start_viewer(bench, server, bed)
    frozen = bed.connection_pids()
    log(f"links: {server.name}: freezing {len(frozen)} sshd processes for {bench.reps['link_hold']:g} s")
    with Reads(server) as reads:
        for pid in frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(bench.reps["link_hold"])
        finally:
            for pid in frozen:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
        thawed = time.monotonic()
        back = back_within(session, thawed)
    reads.sample.note = f"{reads.failed} failed"
    log(f"  reads p99 {reads.sample.p99:.1f} ms over {reads.sample.n}; serving again after "
        f"{'never' if back is None else f'{back:.2f} s'}")
    http_call(server.port, "POST", "/api/remote/viewer/stop", {"session_id": session["sessionId"]}, timeout=60)
    return {"reads": reads.sample, "thaw_back_s": back}


def down_and_up(bench: "Bench", server: Server, bed: LinkBed) -> dict[str, Any]:
    session = start_viewer(bench, server, bed)
    log(f"links: {server.name}: link down for {bench.reps['link_hold']:g} s")
    bed.link_down()
    try:
        time.sleep(bench.reps["link_hold"])
    finally:
        bed.link_up()
    back = back_within(session, time.monotonic())
    log(f"  serving again {'never' if back is None else f'after {back:.2f} s'}")
    http_call(server.port, "POST", "/api/remote/viewer/stop", {"session_id": session["sessionId"]}, timeout=60)
    return {"back_s": back, "same_port": session["localPort"]}


def back_within(session: dict[str, Any], since: float) -> float | None:
    """Return how long after ``since`` the session's port serves again, or None past the limit."""
    try:
        wait_until(lambda: health_ok(session["localPort"], timeout=1.0), BACK_LIMIT, "not back", interval=0.05)
    except TimeoutError:
        return None
    return time.monotonic() - since

