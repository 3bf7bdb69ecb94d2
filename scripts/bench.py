"""Side-by-side benchmark: rvssh against the Runicorn reference (issues #6, #11, #14).

Run it through ``scripts/bench`` (as root: the throwaway sshd needs it).
Everything runs on this machine: one throwaway sshd (tests/sshbed.py), the
test user with its runicorn venv, a workspace in its home (2,000 files, a
storage root with one run holding a 200 MB file), ``rvssh serve`` from this
checkout, ``runicorn==0.7.2 viewer`` and ``runicorn==0.6.0 viewer`` (for
fs/list, which 0.7.2 dropped) from cached venvs. All three use the bed's
ssh-agent (``use_agent: true``, no key path).

Passes:
 1. limits: what OpenSSH itself allows on this machine (bare login, master
    start, commands over a master, a raw ``ssh -L`` forward, the viewer
    itself without any tunnel);
 2. timing: every figure for rvssh and the reference, warm-ups not counted;
 3. counting: the servers again, with ``ssh`` wrapped by a script that logs
    each start, one run of each operation: ssh processes started, logins
    and sessions (from the sshd log).
The wrapper only exists in pass 3, so it costs the timed runs nothing.

Beside them (issue #14): the scale pass (50 connections, 20 viewers;
bench_scale.py), the links pass (a frozen link, a link down and up;
bench_links.py), CPU per operation, the Runicorn UI's own call sequence, and
with ``--soak MINUTES`` the UI's polling pattern for that long
(bench_soak.py), running beside the other passes.

This is not a test: nothing asserts a time; CI never runs it.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import http.client
import json
import os
import platform
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
from pathlib import Path
from typing import Any, Callable

from benchkit import (
    FILE_COUNT,
    FULL,
    QUICK,
    REFERENCE,
    REFERENCE_FS,
    REPO,
    RUNICORN_VENV,
    SHARED_VIEWER_LOGS,
    TEST_USER,
    BenchBed,
    Sample,
    Server,
    SshBed,
    Workspace,
    cpu_seconds,
    end_pids,
    ensure_reference,
    ensure_runicorn_venv,
    env_for,
    expect,
    free_port,
    health_ok,
    http_get_bytes,
    log,
    run_as_user,
    make_workspace,
    post_viewer_start,
    rss_kb,
    target_body,
    timed,
    tree,
    user_pids_mentioning,
    wait_until,
)
from bench_links import run_links
from bench_report import as_json, render
from bench_scale import run_scale
from bench_soak import run_soak
from tests.golden_calls import GOLDEN_UI_CALLS, substitute


def run_as_user_quiet(argv: list[str]) -> None:
    with contextlib.suppress(Exception):
        run_as_user(argv, check=False)


class Bench:
    def __init__(self, reps: dict[str, Any], quick: bool, rvssh_source: Path = REPO) -> None:
        self.reps = reps
        self.quick = quick
        self.rvssh_source = rvssh_source
        self.tmp = Path(tempfile.mkdtemp(prefix="rvbn-", dir="/tmp"))
        self.bed: BenchBed | None = None
        self.ws: Workspace | None = None
        self.servers: list[Server] = []
        self.results: dict[str, dict[str, Sample]] = {}
        self.counts: dict[str, dict[str, dict[str, int]]] = {}
        self.resources: dict[str, dict[str, Any]] = {}
        self.limits: dict[str, Sample] = {}
        self.notes: list[str] = []
        self.versions: dict[str, str] = {}
        self._limit_pids: list[int] = []
        self._masters: list[Path] = []
        self._peak: dict[str, int] = {}
        self._sampling = threading.Event()
        self._shared_log_dir_existed = SHARED_VIEWER_LOGS.exists()
        # Server name -> the environment (as that server names it) holding
        # runicorn, found by trust(); env_for gives the one to use.
        self.runicorn_env: dict[str, str] = {}
        self.cpu_ops: dict[str, dict[str, float]] = {}
        self.ui_calls: dict[str, list[tuple[str, float]]] = {}
        self.extra: dict[str, Any] = {}  # what the scale, links and soak passes found
        self.side_beds: list[SshBed] = []  # beds of passes that run beside the main thread (the soak)

    # -- set-up and tear-down ---------------------------------------------

    @property
    def target_body(self) -> dict[str, Any]:
        assert self.bed is not None
        return target_body(self.bed)

    @property
    def connect_body(self) -> dict[str, Any]:
        return {**self.target_body, "use_agent": True}

    @property
    def connection_id(self) -> str:
        assert self.bed is not None
        return f"{self.bed.user}@{self.bed.host}:{self.bed.port}"

    def start_rvssh(self, name: str, ssh_wrapper: Path | None = None, bed: SshBed | None = None) -> Server:
        bed = bed or self.bed
        assert bed is not None
        port = free_port()
        home = Path(tempfile.mkdtemp(prefix="rvs-", dir="/tmp"))
        env = bed.client_env(agent=True)
        env.update(
            RVSSH_STATE_DIR=str(home / "state"),
            RVSSH_SSH_CONFIG=str(bed.ssh_config),
            RVSSH_USER_KNOWN_HOSTS=str(bed.user_known_hosts),
            PYTHONPATH=str(self.rvssh_source),
        )
        if ssh_wrapper is not None:
            env["RVSSH_SSH"] = str(ssh_wrapper)
        log_path = self.tmp / f"{name}-{port}.log"
        with open(log_path, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "rvssh.cli", "serve", "--bind", f"127.0.0.1:{port}"],
                                    cwd=self.rvssh_source, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT)
        return self._wait_server(Server(name, "rvssh", port, proc, home, log_path))

    def start_reference(self, name: str, version: str, ssh_wrapper: Path | None = None,
                        bed: SshBed | None = None) -> Server:
        bed = bed or self.bed
        assert bed is not None
        venv = ensure_reference(version)
        port = free_port()
        home = Path(tempfile.mkdtemp(prefix="rvr-", dir="/tmp"))
        env = bed.client_env(agent=True)
        # Its managed known_hosts, connections and secret key go to this
        # throwaway config dir, never the user's.
        env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "config"))
        if ssh_wrapper is not None:
            env["PATH"] = f"{ssh_wrapper.parent}:{env.get('PATH', '/usr/bin:/bin')}"
            env["RUNICORN_SSH_PATH"] = str(ssh_wrapper)
        log_path = self.tmp / f"{name.replace(' ', '-')}-{port}.log"
        argv = [str(venv / "bin" / "runicorn"), "viewer", "--host", "127.0.0.1", "--port", str(port),
                "--storage", str(home / "storage")]
        with open(log_path, "wb") as out:
            proc = subprocess.Popen(argv, cwd=home, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT)
        return self._wait_server(Server(name, "reference", port, proc, home, log_path))

    def start_all(self, ssh_wrapper: Path | None = None) -> tuple[Server, Server, Server]:
        """Start rvssh and both references side by side (each waits for its /api/health)."""
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            rv = pool.submit(self.start_rvssh, "rvssh", ssh_wrapper)
            ref = pool.submit(self.start_reference, f"runicorn {REFERENCE}", REFERENCE, ssh_wrapper)
            ref_fs = pool.submit(self.start_reference, f"runicorn {REFERENCE_FS}", REFERENCE_FS, ssh_wrapper)
            return rv.result(), ref.result(), ref_fs.result()

    def _wait_server(self, server: Server) -> Server:
        self.servers.append(server)

        def up() -> bool:
            if server.proc.poll() is not None:
                raise RuntimeError(f"{server.name} exited: {server.log_path.read_text()[-2000:]}")
            return health_ok(server.port)

        wait_until(up, 90, f"{server.name} did not answer /api/health", interval=0.1)
        return server

    def trust(self, server: Server, bed: SshBed | None = None, port: int | None = None) -> None:
        """The 409 flow, as the UI does it; then one connect that succeeds."""
        body_of = {**target_body(bed or self.bed, port), "use_agent": True}  # type: ignore[arg-type]
        status, body = server.call("POST", "/api/remote/connect", body_of)
        if status == 409:
            key = body["detail"]["host_key"]
            expect(server.call("POST", "/api/remote/known-hosts/accept",
                               {k: key[k] for k in ("host", "port", "key_type", "public_key", "fingerprint_sha256")}),
                   f"{server.name} accept")
            status, body = server.call("POST", "/api/remote/connect", body_of)
        if status != 200:
            raise RuntimeError(f"{server.name} connect: HTTP {status}: {body}")
        if server.kind == "rvssh" and bed is None:
            # rvssh's "system" is the server's own python3 (no runicorn here);
            # the runicorn venv is an environment of its own in its list.
            query = urllib.parse.urlencode({"connection_id": self.connection_id})
            envs = expect(server.call("GET", f"/api/remote/conda-envs?{query}"), "rvssh conda-envs")["envs"]
            with_runicorn = [env["name"] for env in envs
                             if env["type"] != "system" and str(env.get("path", "")).startswith(f"{RUNICORN_VENV}/")]
            if not with_runicorn:
                raise RuntimeError(f"rvssh does not list the runicorn venv {RUNICORN_VENV}: {envs}")
            self.runicorn_env[server.name] = with_runicorn[0]

    def stop_server(self, server: Server) -> None:
        """Stop its viewers, end the process tree and (rvssh) its masters."""
        with contextlib.suppress(Exception):
            status, body = server.call("GET", "/api/remote/viewer/sessions", timeout=30)
            for session in body.get("sessions", []) if status == 200 else []:
                server.call("POST", "/api/remote/viewer/stop", {"session_id": session["sessionId"]}, timeout=60)
        pids = server.pids()
        if server.proc.poll() is None:
            server.proc.send_signal(signal.SIGINT if server.kind == "rvssh" else signal.SIGTERM)
            try:
                server.proc.wait(20)
            except subprocess.TimeoutExpired:
                server.proc.kill()
                server.proc.wait()
        end_pids([p for p in pids if p != server.proc.pid])
        for record in (server.home / "state" / "connections").glob("*.json"):
            with contextlib.suppress(Exception):
                data = json.loads(record.read_text())
                subprocess.run(["ssh", "-o", f"ControlPath={data['control_path']}", "-O", "exit", "x"],
                               capture_output=True, timeout=10, check=False)
                end_pids([int(data["pid"])])
        if server in self.servers:
            self.servers.remove(server)
        shutil.rmtree(server.home, ignore_errors=True)
        log(f"  stopped {server.name}")

    def cleanup(self) -> None:
        for server in list(self.servers):
            with contextlib.suppress(Exception):
                self.stop_server(server)
        for bed in self.side_beds:
            with contextlib.suppress(Exception):
                bed.stop()
        for control in self._masters:
            subprocess.run(["ssh", "-S", str(control), "-O", "exit", "x"], capture_output=True, timeout=10, check=False)
        end_pids(self._limit_pids)
        if self.ws is not None:
            # Viewers the servers started and no stop reached (a crash mid-run):
            # only processes of the test user that name our workspace.
            end_pids(user_pids_mentioning(pwd.getpwnam(TEST_USER).pw_uid, str(self.ws.root)))
            shutil.rmtree(self.ws.root, ignore_errors=True)
        if self.bed is not None:
            self.bed.stop()
        if not self._shared_log_dir_existed:
            # The reference's remote viewers log under this shared directory
            # (as the test user); it did not exist before this run.
            shutil.rmtree(SHARED_VIEWER_LOGS, ignore_errors=True)
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- recording ----------------------------------------------------------

    def record(self, figure: str, server: str, sample: Sample) -> Sample:
        self.results.setdefault(figure, {})[server] = sample
        if sample.values:
            log(f"  {figure} / {server}: n={sample.n} median={sample.median:.1f} p90={sample.p90:.1f} {sample.unit}"
                + (f" ({sample.note})" if sample.note else ""))
        return sample

    def repeat(self, figure: str, server: Server, n: int, run: Callable[[], Any],
               before: Callable[[], Any] | None = None, warmup: int = 1, unit: str = "ms") -> Sample:
        sample = Sample(unit=unit)
        for index in range(warmup + n):
            if before is not None:
                before()
            elapsed, _ = timed(run)
            if index >= warmup:
                sample.values.append(elapsed)
        return self.record(figure, server.name, sample)

    def _sample_peaks(self) -> None:
        while not self._sampling.wait(0.5):
            for server in list(self.servers):
                with contextlib.suppress(Exception):
                    self._peak[server.name] = max(self._peak.get(server.name, 0), server.rss_kb())
                    self._peak[f"{server.name} pss"] = max(self._peak.get(f"{server.name} pss", 0), server.pss_kb())

    # -- operations shared by the timing and counting passes ---------------

    def connect(self, server: Server) -> None:
        expect(server.call("POST", "/api/remote/connect", self.connect_body), f"{server.name} connect")

    def disconnect(self, server: Server) -> None:
        expect(server.call("POST", "/api/remote/disconnect", self.target_body), f"{server.name} disconnect")

    def reconnect(self, server: Server) -> None:
        self.disconnect(server)
        self.connect(server)

    def conda_envs(self, server: Server) -> None:
        query = urllib.parse.urlencode({"connection_id": self.connection_id})
        expect(server.call("GET", f"/api/remote/conda-envs?{query}"), f"{server.name} conda-envs")

    def config(self, server: Server, env: str | None = None, refresh: bool = False) -> dict[str, Any]:
        env = env or env_for(self.runicorn_env, server)
        params = {"connection_id": self.connection_id, "conda_env": env}
        if refresh:
            params["refresh"] = "true"
        query = urllib.parse.urlencode(params)
        return expect(server.call("GET", f"/api/remote/config?{query}"), f"{server.name} config")

    def fs_list_path(self) -> str:
        assert self.ws is not None
        return "/api/remote/fs/list?" + urllib.parse.urlencode(
            {"connection_id": self.connection_id, "path": str(self.ws.files_dir)})

    def fs_list(self, server: Server) -> None:
        body = expect(server.call("GET", self.fs_list_path()), f"{server.name} fs/list")
        if len(body["items"]) != FILE_COUNT:
            raise RuntimeError(f"{server.name} fs/list returned {len(body['items'])} items")

    def viewer_start(self, server: Server) -> dict[str, Any]:
        assert self.ws is not None
        body = {**self.connect_body, "remote_root": str(self.ws.storage)}
        session = post_viewer_start(server, body, env_for(self.runicorn_env, server), timeout=120)
        wait_until(lambda: health_ok(session["localPort"]), 60, f"{server.name} viewer never answered", interval=0.01)
        return session

    def viewer_stop(self, server: Server, session: dict[str, Any]) -> None:
        expect(server.call("POST", "/api/remote/viewer/stop", {"session_id": session["sessionId"]}, timeout=60),
               f"{server.name} viewer/stop")

    def viewer_sessions(self, server: Server) -> None:
        expect(server.call("GET", "/api/remote/viewer/sessions"), f"{server.name} viewer/sessions")

    # -- pass 1: what OpenSSH allows --------------------------------------

    def ssh_base(self) -> list[str]:
        assert self.bed is not None
        known = self.tmp / "known_hosts"
        known.write_text(self.bed.known_hosts_text())
        return ["ssh", "-F", "/dev/null", "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes",
                "-o", "BatchMode=yes", "-p", str(self.bed.port)]

    def destination(self) -> str:
        assert self.bed is not None
        return f"{self.bed.user}@{self.bed.host}"

    def limit(self, key: str, sample: Sample) -> None:
        self.limits[key] = sample
        log(f"  limit {key}: n={sample.n} median={sample.median:.2f} p90={sample.p90:.2f} {sample.unit}")

    def measure_ssh_limits(self) -> Path:
        assert self.bed is not None
        n = self.reps["limits"]
        env = self.bed.client_env(agent=True)
        base, dest = self.ssh_base(), self.destination()

        def run(argv: list[str]) -> None:
            subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, check=True, timeout=30)

        def series(argv_for: Callable[[int], list[str]], after: Callable[[int], Any] | None = None) -> Sample:
            sample = Sample()
            for index in range(n + 1):
                elapsed, _ = timed(lambda: run(argv_for(index)))
                if after is not None:
                    after(index)
                if index:
                    sample.values.append(elapsed)
            return sample

        self.limit("login", series(lambda i: base + [dest, "true"]))
        control = self.tmp / "lm"

        def master_argv(i: int) -> list[str]:
            return base + ["-f", "-N", "-M", "-S", str(control), "-o", "ControlPersist=yes", dest]

        first = Sample()

        def exit_master(i: int) -> None:
            # The first session over a new master is slower than the next ones.
            elapsed, _ = timed(lambda: run(["ssh", "-S", str(control), "-o", "ControlMaster=no", "x", "true"]))
            if i:
                first.values.append(elapsed)
            run(["ssh", "-S", str(control), "-O", "exit", "x"])

        self.limit("master_start", series(master_argv, exit_master))
        self.limit("mux_first", first)
        run(master_argv(0))
        self._masters.append(control)
        mux = ["ssh", "-S", str(control), "-o", "ControlMaster=no", "x"]
        self.limit("mux_true", series(lambda i: mux + ["true"]))
        self.limit("mux_python", series(lambda i: mux + ["python3 -c pass"]))
        self.limit("mux_check", series(lambda i: ["ssh", "-S", str(control), "-O", "check", "x"]))
        self.measure_probe_limits()
        return control

    def measure_probe_limits(self) -> None:
        """The remote programs of conda-envs, config and fs/list run on the server without ssh: their own cost."""
        assert self.ws is not None
        sys.path.insert(0, str(self.rvssh_source))
        from rvssh.remote.probe import build_probe_program

        home = pwd.getpwnam(TEST_USER).pw_dir
        env = {"PATH": f"{RUNICORN_VENV}/bin:/usr/local/bin:/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8"}

        def series(program: bytes) -> Sample:
            sample = Sample()
            for index in range(self.reps["limits"] + 1):
                elapsed, _ = timed(lambda: subprocess.run(["/usr/sbin/runuser", "-u", TEST_USER, "--", "/bin/sh", "-s"],
                                                          input=program, env=env, cwd=home, capture_output=True,
                                                          check=True, timeout=60))
                if index:
                    sample.values.append(elapsed)
            return sample

        # runuser's own start is not the server's work: measured alone and taken off each median.
        baseline = series(b"true\n").median
        for key, subcommand, args in (("probe_envs", "envs", ()),
                                      ("probe_config", "config", (str(RUNICORN_VENV / "bin" / "python"),)),
                                      ("probe_fslist", "fs-list", (str(self.ws.files_dir),))):
            sample = series(build_probe_program(subcommand, *args))
            sample.values = [max(0.0, value - baseline) for value in sample.values]
            self.limit(key, sample)

    def raw_forward(self, remote_port: int, options: list[str] | None = None) -> tuple[int, subprocess.Popen[bytes]]:
        """A plain ``ssh -N -L`` of its own (one more login), as the reference's tunnel is."""
        assert self.bed is not None
        local = free_port()
        proc = subprocess.Popen(
            self.ssh_base() + (options or []) + ["-N", "-o", "ExitOnForwardFailure=yes", "-L",
                               f"127.0.0.1:{local}:127.0.0.1:{remote_port}", self.destination()],
            env=self.bed.client_env(agent=True), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._limit_pids.append(proc.pid)
        wait_until(lambda: health_ok(local), 20, "raw ssh -L forward never answered", interval=0.02)
        return local, proc

    def direct_viewer(self) -> tuple[int, float, subprocess.Popen[bytes]]:
        """Start a viewer as the test user without any ssh; return (port, boot ms)."""
        assert self.ws is not None
        port = free_port()
        argv = ["/usr/sbin/runuser", "-u", TEST_USER, "--", str(RUNICORN_VENV / "bin" / "python"), "-m", "runicorn",
                "viewer", "--storage", str(self.ws.storage), "--host", "127.0.0.1", "--port", str(port),
                "--remote-mode"]
        home = pwd.getpwnam(TEST_USER).pw_dir
        env = {"PATH": f"{RUNICORN_VENV}/bin:/usr/local/bin:/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8",
               "RUNICORN_REMOTE_LOG_DIR": str(self.ws.root / "direct-viewer-logs")}
        start = time.perf_counter()
        with open(self.tmp / f"direct-viewer-{port}.log", "wb") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    cwd=home, env=env, start_new_session=True)
        self._limit_pids += tree(proc.pid)
        wait_until(lambda: health_ok(port), 60, "direct viewer never answered", interval=0.01)
        boot = (time.perf_counter() - start) * 1000.0
        self._limit_pids += tree(proc.pid)
        return port, boot, proc

    def http_series(self, port: int, path: str, n: int, unit: str = "ms", big: bool = False) -> Sample:
        sample = Sample(unit=unit)
        for index in range(n + 1):
            elapsed, size = timed(lambda: http_get_bytes(port, path))
            if index:
                sample.values.append(size / 1e6 / (elapsed / 1000.0) if big else elapsed)
        return sample

    def big_path(self) -> str:
        assert self.ws is not None
        return f"/api/runs/{self.ws.run_id}/assets/download?" + urllib.parse.urlencode({"path": str(self.ws.big_file)})

    def transfer_figures(self, port: int, prefix: str) -> dict[str, Sample]:
        """Health, UI asset, 200 MB file, each on a fresh connection, through ``port``."""
        big_path = self.big_path()
        out = {
            "health": self.http_series(port, "/api/health", self.reps["health"]),
            "asset": self.http_series(port, self.ws.asset_path, self.reps["asset"]),
            "big": self.http_series(port, big_path, self.reps["big"], unit="MB/s", big=True),
        }
        for key, sample in out.items():
            log(f"  {prefix} {key}: median={sample.median:.2f} p90={sample.p90:.2f} {sample.unit}")
        return out

    # -- pass 2: the figures ----------------------------------------------

    def run_timing(self) -> None:
        assert self.bed is not None and self.ws is not None
        r = self.reps
        log("limits: bare ssh, masters, commands over a master")
        self.measure_ssh_limits()

        log("limits: the viewer itself, direct and through a raw ssh -L")
        boots = Sample()
        viewer_port = 0
        for index in range(r["viewer"]):
            viewer_port, boot, proc = self.direct_viewer()
            boots.values.append(boot)
            if index < r["viewer"] - 1:
                end_pids(tree(proc.pid), graceful=False)
        self.limit("viewer_boot", boots)
        direct = self.transfer_figures(viewer_port, "direct")
        raw_port, _ = self.raw_forward(viewer_port)
        raw = self.transfer_figures(raw_port, "raw ssh -L")
        for key in ("health", "asset", "big"):
            self.limit(f"direct_{key}", direct[key])
            self.limit(f"raw_{key}", raw[key])
        if not self.quick:
            # OpenSSH prefers chacha20-poly1305; with AES-NI, AES-GCM moves bulk data faster.
            aes_port, _ = self.raw_forward(viewer_port, ["-c", "aes128-gcm@openssh.com"])
            self.limit("raw_big_aes", self.http_series(aes_port, self.big_path(), self.reps["big"], unit="MB/s",
                                                       big=True))

        log("starting rvssh, runicorn 0.7.2 and runicorn 0.6.0")
        rv, ref, ref_fs = self.start_all()
        sampler = threading.Thread(target=self._sample_peaks, daemon=True)
        sampler.start()
        for server in (rv, ref, ref_fs):
            self.trust(server)
            # Idle: connected, nothing asked for a few seconds (a prefetch done, threads back in the pool).
            time.sleep(3)
            res = self.resources.setdefault(server.name, {})
            res["rss_idle_kb"], res["pss_idle_kb"] = server.rss_kb(), server.pss_kb()
        cpu0 = {server.name: server.cpu_seconds() for server in (rv, ref, ref_fs)}

        log("cold connect (after disconnect)")
        for server in (rv, ref):
            self.repeat("connect", server, r["connect"], lambda s=server: self.connect(s),
                        before=lambda s=server: self.disconnect(s))
        log("connect to a live connection")
        for server in (rv, ref):
            self.connect(server)
            self.repeat("connect_live", server, r["again"], lambda s=server: self.connect(s))
        log("conda-envs on a fresh connection")
        for server in (rv, ref):
            self.repeat("conda", server, r["conda"], lambda s=server: self.conda_envs(s),
                        before=lambda s=server: self.reconnect(s))
        log("conda-envs again on the same connection")
        for server in (rv, ref):
            self.repeat("conda_again", server, r["again"], lambda s=server: self.conda_envs(s))
        log("config of the runicorn environment, fresh connection each time")
        for server in (rv, ref):
            self.repeat("config", server, r["config"], lambda s=server: self.config(s),
                        before=lambda s=server: self.reconnect(s))
        self.repeat("config_system", rv, r["config"], lambda: self.config(rv, "system"),
                    before=lambda: self.reconnect(rv))
        log("fs/list of 2,000 files")
        for server in (rv, ref_fs):
            self.connect(server)
            self.repeat("fslist", server, r["fslist"], lambda s=server: self.fs_list(s))
        log("50 parallel fs/list on one connection")
        for server in (rv, ref_fs):
            self.parallel("pfslist", server, 50, r["pfslist"], lambda s=server: self.fs_list(s))

        log("viewer/start -> ready, viewer/stop")
        sessions: dict[str, dict[str, Any]] = {}
        for server in (rv, ref):
            sample, stops = Sample(), Sample()
            for index in range(r["viewer"] + 1):
                self.connect(server)
                elapsed, session = timed(lambda s=server: self.viewer_start(s))
                if index:
                    sample.values.append(elapsed)
                if index < r["viewer"]:
                    stopped, _ = timed(lambda s=server, x=session: self.viewer_stop(s, x))
                    if index:
                        stops.values.append(stopped)
            sessions[server.name] = session  # the last one stays up for what follows
            self.record("viewer", server.name, sample)
            self.record("viewer_stop", server.name, stops)

        log("through the tunnel of a running viewer")
        for server in (rv, ref):
            session = sessions[server.name]
            for key, sample in self.transfer_figures(session["localPort"], server.name).items():
                self.record(key, server.name, sample)
        self.measure_tunnel_processes(rv, ref)

        log("viewer/sessions requests/s, 8 client threads, one viewer running")
        for server in (rv, ref):
            self.throughput("rps", server, "/api/remote/viewer/sessions")
            self.throughput("rps_health", server, "/api/health")

        log("viewer/sessions while a config call runs")
        for server in (rv, ref):
            self.during_config(server)
        for server in (rv, ref):
            self.viewer_stop(server, sessions[server.name])
        log("10 parallel config calls on a fresh connection")
        for server in (rv, ref):
            self.parallel("pconfig", server, 10, r["pconfig"], lambda s=server: self.config(s),
                          before=lambda s=server: self.reconnect(s))
        self.parallel("pconfig_refresh", rv, 10, r["pconfig"], lambda: self.config(rv, refresh=True))

        for server in (rv, ref, ref_fs):
            res = self.resources.setdefault(server.name, {})
            res["rss_end_kb"], res["pss_end_kb"] = server.rss_kb(), server.pss_kb()
            res["rss_peak_kb"] = max(self._peak.get(server.name, 0), res["rss_end_kb"])
            res["pss_peak_kb"] = max(self._peak.get(f"{server.name} pss", 0), res["pss_end_kb"])
            res["cpu_s"] = server.cpu_seconds() - cpu0[server.name]
        self._sampling.set()

        log("CPU per operation of the server process tree")
        self.cpu_per_operation(rv, ref, ref_fs)
        log("the Runicorn UI's Remote flow, as it calls the API")
        for server in (rv, ref):
            self.ui_flow(server)
        for server in (rv, ref, ref_fs):
            self.stop_server(server)

    def cpu_per_operation(self, rv: Server, ref: Server, ref_fs: Server) -> None:
        """CPU seconds of each server's process tree (reaped children included) per operation."""
        n = self.reps["cpu"]
        fs_ref = {rv.name: rv, "ref": ref_fs}
        operations: list[tuple[str, Callable[[Server], Any], Callable[[Server], Any] | None, int]] = [
            ("connect (live)", self.connect, None, n),
            ("conda-envs (same connection)", self.conda_envs, None, n),
            ("config (same connection)", self.config, None, n),
            ("viewer/sessions (1 viewer)", self.viewer_sessions, None, n),
            ("fs/list, 2,000 files", self.fs_list, None, n),
            ("conda-envs (fresh connection)", self.conda_envs, self.reconnect, max(2, n // 4)),
            ("viewer start + stop", lambda s: self.viewer_stop(s, self.viewer_start(s)), None, max(2, n // 5)),
        ]
        for label, operation, before, reps in operations:
            servers = (rv, fs_ref["ref"]) if label.startswith("fs/list") else (rv, ref)
            for server in servers:
                self.connect(server)
                if label.startswith("viewer/sessions"):
                    session = self.viewer_start(server)
                if before is None:
                    operation(server)  # a warm-up: the first call of a kept answer asks the server
                spent = 0.0
                for _ in range(reps):
                    if before is not None:
                        before(server)
                    cpu = server.cpu_seconds()
                    operation(server)
                    spent += server.cpu_seconds() - cpu
                if label.startswith("viewer/sessions"):
                    self.viewer_stop(server, session)
                self.cpu_ops.setdefault(label, {})[server.name] = spent / reps * 1000.0
                log(f"  cpu {label} / {server.name}: {spent / reps * 1000.0:.1f} ms per operation")

    def ui_flow(self, server: Server) -> None:
        """Replay the Runicorn 0.7.2 UI's recorded Remote flow (shared/spec) and time the API calls."""
        if not GOLDEN_UI_CALLS.exists():
            self.notes.append(f"The UI flow was not replayed: {GOLDEN_UI_CALLS} is missing.")
            return
        assert self.bed is not None
        calls = json.loads(GOLDEN_UI_CALLS.read_text())["remote_api_calls"]
        storage = f"{pwd.getpwnam(TEST_USER).pw_dir}/rv-ui-data"
        mapping: dict[Any, Any] = {
            2593: self.bed.port, "127.0.0.1:2593": f"127.0.0.1:{self.bed.port}",
            "127_0_0_1_2593": f"127_0_0_1_{self.bed.port}", "rvui-e2e-data": "rv-ui-data",
            "rvui-e2e": env_for(self.runicorn_env, server), "rvui": self.bed.user,
            "rvui@": f"{self.bed.user}@", "srv_rvui_": f"srv_{self.bed.user}_",
            "/home/user": str(pwd.getpwnam(TEST_USER).pw_dir),
        }
        total, mismatches = Sample(unit="ms"), 0
        per_call: dict[str, list[float]] = {}
        for _ in range(self.reps["ui"]):
            self.disconnect(server)  # the flow starts without a connection, as a new UI session does
            mapping.update({23561: free_port(), 23567: free_port()})
            session_id, host_key, spent = None, {}, 0.0
            for call in calls:
                body = substitute(call["body"], mapping)
                if isinstance(body, dict):
                    body = {key: (self.bed.password if value == "***" else value) for key, value in body.items()}
                if isinstance(body, list):
                    body = [{key: (self.bed.password if value == "***" else value) for key, value in item.items()}
                            if isinstance(item, dict) else item for item in body]
                if call["path"].endswith("/viewer/stop"):
                    body = {"session_id": session_id}
                if call["path"].endswith("/known-hosts/accept"):
                    body = {name: host_key.get(name) for name in body}
                query = urllib.parse.urlencode(substitute(dict(urllib.parse.parse_qsl(call["query"])), mapping))
                path = call["path"] + (f"?{query}" if query else "")
                elapsed, (status, answer) = timed(
                    lambda: server.call(call["method"], path, body if call["method"] == "POST" else None))
                spent += elapsed
                per_call.setdefault(f"{call['method']} {call['path'].removeprefix('/api/remote/')}", []).append(elapsed)
                mismatches += status != call["status"]
                if status == 409 and isinstance(answer, dict):
                    host_key = answer["detail"]["host_key"]
                if call["path"].endswith("/viewer/start") and status == 200:
                    session_id = answer["session"]["sessionId"]
            total.values.append(spent)
        run_as_user_quiet(["rm", "-rf", storage])
        total.note = f"{mismatches} answers with another status than the recording's, of {len(calls) * self.reps['ui']}"
        self.record("ui_flow", server.name, total)
        slowest = sorted(per_call.items(), key=lambda item: -sum(item[1]))[:3]
        self.ui_calls[server.name] = [(name, sum(times) / len(times)) for name, times in slowest]

    def measure_tunnel_processes(self, rv: Server, ref: Server) -> None:
        """RSS of what keeps a connection (rvssh: its master) and a tunnel open."""
        records = list((rv.home / "state" / "connections").glob("*.json"))
        if records:
            pid = int(json.loads(records[0].read_text())["pid"])
            self.resources.setdefault(rv.name, {})["master_rss_kb"] = rss_kb(pid)
            self.resources[rv.name]["master_cpu_s"] = cpu_seconds(pid)
        ssh_children = [pid for pid in ref.pids()
                        if Path(f"/proc/{pid}/comm").exists() and Path(f"/proc/{pid}/comm").read_text().strip() == "ssh"]
        self.resources.setdefault(ref.name, {})["tunnel_rss_kb"] = sum(rss_kb(pid) for pid in ssh_children)
        self.resources[ref.name]["tunnel_processes"] = len(ssh_children)

    def parallel(self, figure: str, server: Server, width: int, reps: int, call: Callable[[], Any],
                 before: Callable[[], Any] | None = None) -> None:
        walls = Sample(unit="ms")
        failures = 0
        # No warm-up batch: the figure before ran the same call on the same connection.
        for index in range(1, reps + 1):
            if before is not None:
                before()
            barrier = threading.Barrier(width)

            def one() -> bool:
                barrier.wait()
                try:
                    call()
                    return True
                except Exception:  # noqa: BLE001 - a failure is what we count
                    return False

            with concurrent.futures.ThreadPoolExecutor(width) as pool:
                start = time.perf_counter()
                outcomes = list(pool.map(lambda _: one(), range(width)))
                wall = (time.perf_counter() - start) * 1000.0
            if index:
                walls.values.append(wall)
                failures += outcomes.count(False)
        walls.note = f"{failures} failed of {width * reps}"
        self.record(figure, server.name, walls)

    def throughput(self, figure: str, server: Server, path: str, threads: int = 8) -> None:
        sample = Sample(unit="req/s")
        for index in range(self.reps["rps"] + 1):
            seconds = self.reps["rps_warmup"] if index == 0 else self.reps["rps_seconds"]
            counts = [0] * threads
            errors = [0] * threads
            stop = time.perf_counter() + seconds

            def worker(slot: int) -> None:
                connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
                while time.perf_counter() < stop:
                    try:
                        connection.request("GET", path)
                        response = connection.getresponse()
                        response.read()
                        if response.status == 200:
                            counts[slot] += 1
                        else:
                            errors[slot] += 1
                        if response.will_close:
                            connection.close()
                            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
                    except (OSError, http.client.HTTPException):
                        errors[slot] += 1
                        connection.close()
                        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
                connection.close()

            start = time.perf_counter()
            workers = [threading.Thread(target=worker, args=(slot,)) for slot in range(threads)]
            for thread in workers:
                thread.start()
            for thread in workers:
                thread.join()
            elapsed = time.perf_counter() - start
            if index:
                sample.values.append(sum(counts) / elapsed)
                if sum(errors):
                    sample.note = f"{sum(errors)} errors"
        self.record(figure, server.name, sample)

    def during_config(self, server: Server) -> None:
        sample = Sample()
        overlapped = 0
        # No warm-up: config and viewer/sessions both ran just before.
        for index in range(1, self.reps["during"] + 1):
            done = threading.Event()
            failure: list[BaseException] = []

            def background() -> None:
                try:
                    self.config(server)
                except BaseException as ex:  # noqa: BLE001
                    failure.append(ex)
                finally:
                    done.set()

            thread = threading.Thread(target=background)
            thread.start()
            time.sleep(0.02)  # let the config call reach the server
            running = not done.is_set()
            elapsed, _ = timed(lambda: self.viewer_sessions(server))
            thread.join()
            if failure:
                raise failure[0]
            if index:
                sample.values.append(elapsed)
                overlapped += running
        sample.note = f"config still running at the request in {overlapped} of {sample.n}"
        self.record("during", server.name, sample)

    # -- pass 3: counting ssh processes, logins and sessions ---------------

    def run_counting(self) -> None:
        assert self.bed is not None
        wrapper_dir = self.tmp / "wrap"
        wrapper_dir.mkdir()
        count_log = self.tmp / "ssh-starts.log"
        wrapper = wrapper_dir / "ssh"
        wrapper.write_text(f'#!/bin/sh\necho "$*" >> {count_log}\nexec /usr/bin/ssh "$@"\n')
        wrapper.chmod(0o755)

        def snapshot() -> tuple[int, int, int]:
            starts = len(count_log.read_text().splitlines()) if count_log.exists() else 0
            return starts, self.bed.count_logins(), self.bed.count_sessions()  # type: ignore[union-attr]

        def settled() -> tuple[int, int, int]:
            # sshd logs a moment after the client returns: wait for quiet.
            last = snapshot()
            while True:
                time.sleep(0.3)
                now = snapshot()
                if now == last:
                    return now
                last = now

        def count(server: Server, op: str, before: Callable[[], Any] | None, run: Callable[[], Any]) -> Any:
            if before is not None:
                before()
            start = settled()
            result = run()
            end = settled()
            self.counts.setdefault(op, {})[server.name] = {
                "ssh_processes": end[0] - start[0], "logins": end[1] - start[1], "sessions": end[2] - start[2]}
            return result

        rv, ref, ref_fs = self.start_all(ssh_wrapper=wrapper)
        for server in (rv, ref, ref_fs):
            self.trust(server)
        for server in (rv, ref):
            count(server, "connect", lambda s=server: self.disconnect(s), lambda s=server: self.connect(s))
            count(server, "conda", lambda s=server: self.reconnect(s), lambda s=server: self.conda_envs(s))
            count(server, "config", lambda s=server: self.reconnect(s), lambda s=server: self.config(s))
            session = count(server, "viewer_start", lambda s=server: self.connect(s),
                            lambda s=server: self.viewer_start(s))
            count(server, "viewer_sessions", None, lambda s=server: self.viewer_sessions(s))
            count(server, "viewer_stop", None, lambda s=server, x=session: self.viewer_stop(s, x))
            count(server, "disconnect", lambda s=server: self.connect(s), lambda s=server: self.disconnect(s))
        for server in (rv, ref_fs):
            count(server, "fslist", lambda s=server: (self.connect(s), self.fs_list(s)), lambda s=server: self.fs_list(s))
        for server in (rv, ref, ref_fs):
            self.stop_server(server)

    # -- the whole run --------------------------------------------------------

    def run(self, counting: bool, soak_minutes: float = 0.0, scale: bool = True, links: bool = True) -> None:
        self.versions = collect_versions(self.rvssh_source)
        log("reference venvs")
        for version in (REFERENCE, REFERENCE_FS):
            ensure_reference(version)
        log("test user's runicorn venv, sshd, workspace")
        ensure_runicorn_venv()
        self.bed = BenchBed()
        self.bed.start()
        self.ws = make_workspace(self.tmp.name)
        soak = None
        if soak_minutes > 0:
            # The soak's load is light and steady; it runs beside the other passes, on a bed of its own.
            soak = threading.Thread(target=self.fail_soft, args=("soak", lambda: run_soak(self, soak_minutes)),
                                    daemon=True)
            soak.start()
        self.run_timing()
        if scale:
            self.fail_soft("scale", lambda: run_scale(self))
        if links:
            self.fail_soft("links", lambda: run_links(self))
        if counting:
            log("counting pass: ssh processes, logins and sessions per operation")
            self.fail_soft("counting", self.run_counting)
        if soak is not None:
            log("waiting for the soak to end")
            soak.join()

    def fail_soft(self, name: str, run: Callable[[], Any]) -> None:
        """Run one pass; a failure is reported in the notes, and the passes after it still run."""
        try:
            run()
        except Exception as ex:  # noqa: BLE001 - one broken pass must not lose the others' figures
            log(f"the {name} pass failed: {ex!r}")
            traceback.print_exc()
            self.notes.append(f"The {name} pass failed: {type(ex).__name__}: {str(ex)[:300]}")


# --- versions and the report ---------------------------------------------------


def collect_versions(source: Path) -> dict[str, str]:
    version = subprocess.run([sys.executable, "-c", "import rvssh; print(rvssh.__version__)"], cwd=source,
                             capture_output=True, text=True).stdout.strip() or "?"

    def first_line(argv: list[str]) -> str:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        return (proc.stdout or proc.stderr).strip().splitlines()[0] if (proc.stdout or proc.stderr) else "?"

    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError):
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    remote_python = first_line([str(RUNICORN_VENV / "bin" / "python"), "--version"]) if RUNICORN_VENV.exists() else "?"
    return {
        "machine": f"{os.cpu_count()} CPUs ({cpu}), {mem_kb / 1048576:.1f} GiB memory, {platform.platform()}",
        "openssh": first_line(["ssh", "-V"]),
        "python": f"{platform.python_version()} (rvssh and the references); remote viewer {remote_python}",
        "runicorn": f"reference {REFERENCE} (fs/list: {REFERENCE_FS}); remote viewer runicorn {REFERENCE}",
        "rvssh": f"{version} ({git_describe(source)}{'' if source == REPO else f', from {source}'})",
    }


def git_describe(source: Path) -> str:
    proc = subprocess.run(["git", "-C", str(source), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(source), "status", "--porcelain", "--", "rvssh"],
                           capture_output=True, text=True).stdout.strip()
    return (proc.stdout.strip() or "?") + (" with uncommitted changes in rvssh/" if dirty else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few repetitions only (a few minutes)")
    parser.add_argument("--counts", action=argparse.BooleanOptionalAction, default=None,
                        help="run the pass that counts ssh processes, logins and sessions per operation "
                             "(default: yes, but not with --quick)")
    parser.add_argument("--scale", action=argparse.BooleanOptionalAction, default=True,
                        help="run the scale pass: 50 connections and 20 viewers (10 and 4 with --quick)")
    parser.add_argument("--links", action=argparse.BooleanOptionalAction, default=True,
                        help="run the links pass: a frozen link, a link down and up")
    parser.add_argument("--soak", type=float, default=0.0, metavar="MINUTES",
                        help="also run the UI's polling pattern for MINUTES beside the other passes, "
                             "sampling memory, fds and child processes (the docs show a 30-minute run)")
    parser.add_argument("--rvssh-source", type=Path, default=REPO,
                        help="run rvssh from this source tree (a directory holding rvssh/; default: this checkout)")
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    parser.add_argument("--json", type=Path, help="also write every sample to this file")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("run as root: the throwaway sshd needs it (useradd, runuser, sshd)")
    # Started in the background by a shell, Python would ignore SIGINT; SIGTERM would skip the clean-up.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    bench = Bench(QUICK if args.quick else FULL, args.quick, args.rvssh_source.resolve())
    started = time.perf_counter()
    try:
        bench.run(counting=args.counts if args.counts is not None else not args.quick, soak_minutes=args.soak,
                  scale=args.scale, links=args.links)
    finally:
        log("stopping everything")
        bench.cleanup()
    command = "scripts/bench" + "".join(f" {word}" for word in (sys.argv[1:] if argv is None else argv)
                                        if not word.startswith("/"))
    report = render(bench, time.perf_counter() - started, command)
    print(report)
    if args.markdown:
        args.markdown.write_text(report)
    if args.json:
        args.json.write_text(json.dumps(as_json({
            "versions": bench.versions, "results": bench.results, "limits": bench.limits, "counts": bench.counts,
            "resources": bench.resources, "cpu_per_operation": bench.cpu_ops, "extra": bench.extra,
        }), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
