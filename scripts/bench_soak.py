"""The soak of scripts/bench (``--soak MINUTES``): the Runicorn UI's polling pattern for a long while (issue #14).

rvssh and the reference run side by side on a bed of their own, each with
one viewer that stays up (the tab a user keeps open), for MINUTES:

- ``viewer/sessions`` every 5 s from each of 3 clients (3 open UI tabs);
- a ``config`` call every minute (the env with runicorn);
- a viewer started and stopped every 5 minutes.

Every 30 s the server's process tree is sampled: RSS, PSS, open file
descriptors, child processes (and rvssh's masters). After a warm-up minute
the figures must stay flat: the last samples no more than 10 % (RSS) or 2
(descriptors, children) above the first ones. PSS is shown but not judged:
it grows when other processes that share the same libraries exit.
"""

from __future__ import annotations

import statistics
import threading
import time
import urllib.parse
import uuid
from typing import TYPE_CHECKING, Any, Callable

from benchkit import (
    REFERENCE,
    BenchBed,
    Server,
    env_for,
    http_call,
    log,
    run_as_user,
    target_body,
    viewer_start_body,
)

if TYPE_CHECKING:
    from bench import Bench

POLL_EVERY = 5.0
CLIENTS = 3
CONFIG_EVERY = 60.0
VIEWER_EVERY = 300.0
SAMPLE_EVERY = 30.0
PATTERN = "viewer/sessions every 5 s from 3 clients, config every minute, a viewer start and stop every 5 minutes"


class SoakedServer:
    """One server under the polling pattern: its calls, its failures and its samples."""

    def __init__(self, bench: "Bench", server: Server, bed: BenchBed) -> None:
        self.bench, self.server, self.bed = bench, server, bed
        self.requests = 0
        self.failed: list[str] = []
        self.samples: list[dict[str, float]] = []
        self._guard = threading.Lock()

    def call(self, method: str, path: str, body: Any = None, timeout: float = 120.0) -> Any:
        try:
            status, answer = http_call(self.server.port, method, path, body, timeout)
        except OSError as ex:
            status, answer = 0, str(ex)
        with self._guard:
            self.requests += 1
            if status != 200:
                self.failed.append(f"{method} {path.split('?')[0]}: {status} {str(answer)[:120]}")
        return answer if status == 200 else None

    def start_viewer(self, tag: str) -> dict[str, Any] | None:
        assert self.bench.ws is not None
        body = {**target_body(self.bed), "use_agent": True, "remote_root": str(self.bench.ws.root / "soak" / tag)}
        body = viewer_start_body(self.server, body, env_for(self.bench.runicorn_env, self.server))
        answer = self.call("POST", "/api/remote/viewer/start", body)
        return answer["session"] if answer else None

    def stop_viewer(self, session: dict[str, Any] | None) -> None:
        if session is not None:
            self.call("POST", "/api/remote/viewer/stop", {"session_id": session["sessionId"]})

    def config(self) -> None:
        env = env_for(self.bench.runicorn_env, self.server)
        connection = f"{self.bed.user}@{self.bed.host}:{self.bed.port}"
        self.call("GET", "/api/remote/config?" + urllib.parse.urlencode({"connection_id": connection,
                                                                          "conda_env": env}))

    def sample(self, started: float) -> None:
        sample = {"t": time.monotonic() - started, "rss_mb": self.server.rss_kb() / 1024.0,
                  "pss_mb": self.server.pss_kb() / 1024.0, "fds": self.server.fds(),
                  "children": self.server.children()}
        if self.server.kind == "rvssh":
            sample["masters"] = len(list((self.server.home / "state" / "connections").glob("*.json")))
        self.samples.append(sample)


def every(period: float, offset: float, until: float, stop: threading.Event, action: Callable[[], Any]) -> None:
    """Run ``action`` every ``period`` seconds from ``offset`` on, until the monotonic time ``until``."""
    next_at = time.monotonic() + offset
    while not stop.is_set() and next_at < until:
        if stop.wait(max(0.0, next_at - time.monotonic())):
            return
        action()
        next_at += period


def run_soak(bench: "Bench", minutes: float) -> None:
    """Run the polling pattern against both servers for ``minutes``; results go to ``bench.extra["soak"]``."""
    bed = BenchBed()
    bench.side_beds.append(bed)  # stopped by the clean-up too, if the run is interrupted
    bed.start()
    soaked: list[SoakedServer] = []
    try:
        for name, start in (("rvssh", lambda: bench.start_rvssh("rvssh soak", bed=bed)),
                            ("ref", lambda: bench.start_reference(f"runicorn {REFERENCE} soak", REFERENCE, bed=bed))):
            server = start()
            bench.trust(server, bed)
            soaked.append(SoakedServer(bench, server, bed))
        log(f"soak: {minutes:g} minutes of the UI's polling against {', '.join(s.server.name for s in soaked)}")
        tabs = [target.start_viewer("tab-" + uuid.uuid4().hex[:6]) for target in soaked]
        started = time.monotonic()
        until = started + minutes * 60.0
        stop = threading.Event()
        threads = []
        for target in soaked:
            jobs: list[tuple[float, float, Callable[[], Any]]] = [
                (POLL_EVERY, index * POLL_EVERY / CLIENTS, lambda t=target: t.call("GET", "/api/remote/viewer/sessions"))
                for index in range(CLIENTS)]
            jobs.append((CONFIG_EVERY, 10.0, target.config))
            jobs.append((VIEWER_EVERY, 30.0,
                         lambda t=target: t.stop_viewer(t.start_viewer("cycle-" + uuid.uuid4().hex[:6]))))
            jobs.append((SAMPLE_EVERY, 0.0, lambda t=target: t.sample(started)))
            threads += [threading.Thread(target=every, args=(period, offset, until, stop, action), daemon=True)
                        for period, offset, action in jobs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for target in soaked:
            target.sample(started)
        for target, tab in zip(soaked, tabs):
            target.stop_viewer(tab)
        bench.extra["soak"] = summarize(soaked, minutes)
    finally:
        for target in soaked:
            bench.stop_server(target.server)
        bed.stop()
        if bench.ws is not None:
            run_as_user(["rm", "-rf", str(bench.ws.root / "soak")], check=False)


def summarize(soaked: list[SoakedServer], minutes: float) -> dict[str, Any]:
    warm_up = min(60.0, minutes * 60.0 / 3)
    summaries, verdicts = {}, {}
    for target in soaked:
        samples = [sample for sample in target.samples if sample["t"] >= warm_up] or target.samples
        first, last = samples[:3], samples[-3:]

        def change(key: str, unit: str, relative: bool) -> dict[str, Any]:
            begin = statistics.median(sample[key] for sample in first)
            end = statistics.median(sample[key] for sample in last)
            peak = max(sample[key] for sample in samples)
            allowed = 0.10 * begin if relative else 2
            return {"flat": end - begin <= allowed, "text": f"{begin:.0f} → {end:.0f} {unit} (largest {peak:.0f})"}

        # RSS, not PSS: a process's PSS grows when other processes sharing its libraries exit
        # (the other passes' servers), with no change of its own.
        verdicts[target.server.name] = {
            "memory (RSS)": change("rss_mb", "MB", True),
            "open fds": change("fds", "", False),
            "child processes": change("children", "", False),
        }
        row = lambda key: (f"{samples[0][key]:.0f} / {samples[-1][key]:.0f} / "  # noqa: E731
                           f"{max(sample[key] for sample in samples):.0f}")
        summaries[target.server.name] = {
            "rss": row("rss_mb"), "pss": row("pss_mb"), "fds": row("fds"), "children": row("children"),
            "requests": target.requests, "failed": len(target.failed),
            **({"masters": row("masters")} if "masters" in samples[0] else {}),
        }
        if target.failed:
            log(f"soak: {target.server.name}: {len(target.failed)} failed calls, e.g. {target.failed[:3]}")
    rv = next(name for name in verdicts if name.startswith("rvssh"))
    ref = next((name for name in verdicts if not name.startswith("rvssh")), None)
    return {"minutes": minutes, "pattern": PATTERN, "summaries": summaries,
            "verdicts": verdicts[rv], "verdicts_ref": verdicts.get(ref, {}) if ref else {},
            "samples": {target.server.name: target.samples for target in soaked},
            "failures": {target.server.name: target.failed[:20] for target in soaked}}

