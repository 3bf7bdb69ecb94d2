"""The scale pass of scripts/bench: many live connections and running viewers at once (issue #14).

A few sshds (one sshd listens on at most 16 sockets) listen on as many ports
as there are connections, each port a connection id of its own; every sshd
trusts the first one's agent key, and the test user's runicorn venv serves
the viewers.
For rvssh and then the reference: every connection opened (409 flow, 8 at a
time), the viewers started in parallel, then the reads timed, the open file
descriptors of the server's process tree counted before, during and after,
and the memory each connection costs.
"""

from __future__ import annotations

import concurrent.futures
import json
import time
from typing import TYPE_CHECKING, Any

from benchkit import (
    REFERENCE,
    BenchBed,
    Sample,
    Server,
    env_for,
    free_port,
    health_ok,
    http_call,
    post_viewer_start,
    log,
    rss_kb,
    run_as_user,
    target_body,
    timed,
    wait_until,
)

if TYPE_CHECKING:
    from bench import Bench

READS = ("sessions", "status", "viewer/sessions")
READ_BUDGET = 60.0


# sshd's MAX_LISTEN_SOCKS is 16.
PORTS_PER_SSHD = 15


class ScaleBed(BenchBed):
    """The bench's sshd, listening on ``ports`` ports, letting that many logins start at once."""

    def __init__(self, ports: int) -> None:
        super().__init__()
        self._count = ports
        self.ports: list[int] = []

    def trust_agent_key_of(self, other: BenchBed) -> None:
        """Accept the key in ``other``'s agent too, so one agent logs in to every bed."""
        authorized = self.dir / "authorized_keys" / self.user
        with open(authorized, "a") as keys:
            keys.write(other.key_agent.with_name(other.key_agent.name + ".pub").read_text())

    def _write_sshd_config(self) -> None:
        super()._write_sshd_config()
        if not self.ports:
            self.ports = [self.port] + [free_port() for _ in range(self._count - 1)]
        with open(self.sshd_config, "a") as config:
            config.write("".join(f"Port {port}\n" for port in self.ports[1:]))
            config.write(f"MaxStartups {self._count * 2}\n")


def run_scale(bench: "Bench") -> None:
    """Measure both servers at scale; results go to ``bench.extra["scale"]``."""
    assert bench.ws is not None
    connections, viewers = bench.reps["scale_connections"], bench.reps["scale_viewers"]
    beds: list[ScaleBed] = []
    results: dict[str, Any] = {}
    try:
        for first in range(0, connections, PORTS_PER_SSHD):
            bed = ScaleBed(min(PORTS_PER_SSHD, connections - first))
            beds.append(bed)
            bed.start()
            if bed is not beds[0]:
                bed.trust_agent_key_of(beds[0])
        targets = [(bed, port) for bed in beds for port in bed.ports]
        for start in (lambda: bench.start_rvssh("rvssh", bed=beds[0]),
                      lambda: bench.start_reference(f"runicorn {REFERENCE}", REFERENCE, bed=beds[0])):
            server = start()
            try:
                results[server.name] = measure(bench, server, targets, viewers)
            finally:
                bench.stop_server(server)
    finally:
        for bed in beds:
            bed.stop()
        run_as_user(["rm", "-rf", str(bench.ws.root / "scale")], check=False)
    bench.extra["scale"] = results


def measure(bench: "Bench", server: Server, targets: list[tuple[ScaleBed, int]], viewers: int) -> dict[str, Any]:
    connections = len(targets)
    log(f"scale: {server.name}, {connections} connections and {viewers} viewers")
    time.sleep(2)
    fds_before, rss_before = server.fds(), server.rss_kb()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda target: bench.trust(server, *target), targets))
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(viewers) as pool:
        sessions = list(pool.map(lambda index: start_viewer(bench, server, *targets[index % connections], index),
                                 range(viewers)))
    start_s = time.perf_counter() - started
    log(f"  {viewers} viewers ready in {start_s:.1f} s")
    reads = {}
    for read in READS:
        sample = Sample()
        # The reference asks every connection over ssh on some reads: at most READ_BUDGET seconds each.
        deadline = time.monotonic() + READ_BUDGET
        for _ in range(bench.reps["scale_reads"] + 1):
            elapsed, (status, _) = timed(lambda: http_call(server.port, "GET", f"/api/remote/{read}"))
            if status == 200:
                sample.values.append(elapsed)
            if time.monotonic() > deadline:
                break
        sample.values = sample.values[1:]
        reads[read] = sample
        log(f"  {read}: median {sample.median:.1f} ms, p99 {sample.p99:.1f} ms over {sample.n}")
    fds_during, rss_during = server.fds(), server.rss_kb()
    masters_kb = masters_rss_kb(server)
    per_connection = (masters_kb + max(0, rss_during - rss_before)) / connections / 1024.0
    for session in sessions:
        http_call(server.port, "POST", "/api/remote/viewer/stop", {"session_id": session["sessionId"]}, timeout=60)
    for bed, port in targets:
        http_call(server.port, "POST", "/api/remote/disconnect",
                  target_body(bed, port), timeout=60)
    # The servers close what they held as their children are reaped: wait until the count settles.
    settled = wait_until(lambda: stable_fds(server), 30, f"{server.name}'s open files do not settle", interval=0.5)
    log(f"  fds {fds_before} / {fds_during} / {settled[0]}; {per_connection:.1f} MB per connection")
    return {"connections": connections, "viewers": viewers, "reads": reads, "start_s": start_s,
            "fds": (fds_before, fds_during, settled[0]), "mb_per_connection": per_connection}


def start_viewer(bench: "Bench", server: Server, bed: ScaleBed, port: int, index: int) -> dict[str, Any]:
    assert bench.ws is not None
    body = {**target_body(bed, port), "use_agent": True, "remote_root": str(bench.ws.root / "scale" / str(index))}
    session = post_viewer_start(server, body, env_for(bench.runicorn_env, server), timeout=300,
                                where=f" on port {port}")
    wait_until(lambda: health_ok(session["localPort"]), 120, f"{server.name} viewer {index} never answered")
    return session


def masters_rss_kb(server: Server) -> int:
    """Return the RSS of rvssh's masters (daemons outside the server's tree); 0 for the reference."""
    total = 0
    for record in (server.home / "state" / "connections").glob("*.json"):
        try:
            total += rss_kb(int(json.loads(record.read_text())["pid"]))
        except (OSError, ValueError, KeyError):
            continue
    return total


def stable_fds(server: Server) -> tuple[int] | None:
    first = server.fds()
    time.sleep(1.0)
    return (first,) if server.fds() == first else None

