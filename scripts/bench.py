"""Side-by-side benchmark: rvssh against the Runicorn reference (issue #6).

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

This is not a test: nothing asserts a time; CI never runs it.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import http.client
import json
import math
import os
import platform
import pwd
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.sshbed import (  # noqa: E402
    RUNICORN_VENV,
    TEST_USER,
    SshBed,
    ensure_runicorn_venv,
    free_port,
    run_as_user,
    wait_until,
)

REFERENCE = "0.7.2"
REFERENCE_FS = "0.6.0"  # 0.7.2 has no fs/list
CACHE = Path(os.environ.get("RVSSH_BENCH_CACHE", Path.home() / ".cache" / "rvssh-bench"))
FILE_COUNT = 2000
BIG_FILE_MB = 200
ASSET_SIZE = 1_100_000
# runicorn --remote-mode logs here unless RUNICORN_REMOTE_LOG_DIR says otherwise.
SHARED_VIEWER_LOGS = Path("/tmp/runicorn-viewer")

FULL = dict(connect=20, conda=8, config=8, fslist=20, viewer=5, health=200, asset=50, big=5,
            during=8, pconfig=3, pfslist=3, rps=3, rps_seconds=5.0, rps_warmup=1.0, limits=20)
QUICK = dict(connect=4, conda=2, config=2, fslist=5, viewer=2, health=30, asset=10, big=2,
             during=2, pconfig=1, pfslist=1, rps=1, rps_seconds=1.0, rps_warmup=0.5, limits=5)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- statistics -------------------------------------------------------------


@dataclass
class Sample:
    """Repeated measurements of one figure for one server."""

    values: list[float] = field(default_factory=list)
    unit: str = "ms"
    note: str = ""

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else math.nan

    @property
    def p90(self) -> float:
        if not self.values:
            return math.nan
        ordered = sorted(self.values)
        return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return (time.perf_counter() - start) * 1000.0, result


# --- HTTP -------------------------------------------------------------------


def http_call(port: int, method: str, path: str, body: Any = None, timeout: float = 180.0) -> tuple[int, Any]:
    """One request on a fresh connection; returns (status, parsed JSON or text)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        raw = response.read()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, raw.decode(errors="replace")
    finally:
        connection.close()


def http_get_bytes(port: int, path: str, timeout: float = 60.0) -> int:
    """GET on a fresh connection, read the body in chunks; return its size (raises unless 200)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        size = 0
        while True:
            chunk = response.read(1 << 20)
            if not chunk:
                break
            size += len(chunk)
        if response.status != 200:
            raise RuntimeError(f"GET {path} on :{port} answered {response.status}")
        return size
    finally:
        connection.close()


def health_ok(port: int) -> bool:
    try:
        status, body = http_call(port, "GET", "/api/health", timeout=2.0)
    except OSError:
        return False
    return status == 200 and isinstance(body, dict) and body.get("status") == "ok"


def expect(status_body: tuple[int, Any], what: str, ok: tuple[int, ...] = (200,)) -> Any:
    status, body = status_body
    if status not in ok:
        raise RuntimeError(f"{what}: HTTP {status}: {str(body)[:500]}")
    return body


# --- processes --------------------------------------------------------------


def proc_table() -> dict[int, int]:
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            table[int(entry.name)] = int(stat[stat.rindex(")") + 2:].split()[1])
    return table


def tree(pid: int) -> list[int]:
    table = proc_table()
    found, frontier = [pid], [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in table.items() if ppid == parent]
        found += children
        frontier += children
    return [p for p in found if p in table or p == pid]


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """utime+stime of the process and of its reaped children."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split()
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
    return ticks / os.sysconf("SC_CLK_TCK")


def end_pids(pids: list[int], graceful: bool = True) -> None:
    """SIGTERM, then SIGKILL what is left: only the pids given."""
    for sig in (signal.SIGTERM, signal.SIGKILL) if graceful else (signal.SIGKILL,):
        live = [p for p in pids if Path(f"/proc/{p}").exists()]
        for pid in live:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() and _state(p) != "Z" for p in live):
            time.sleep(0.05)


def _state(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat[stat.rindex(")") + 2:].split()[0]


def user_pids_mentioning(uid: int, needle: str) -> list[int]:
    """Processes of ``uid`` whose command line mentions ``needle`` (our workspace)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            if needle.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


# --- the bed ----------------------------------------------------------------


class BenchBed(SshBed):
    """The test suite's sshd, with the runicorn venv first on the remote PATH.

    Runicorn's reference starts ``python3 -m runicorn viewer`` with whatever
    ``python3`` the login finds; the test user's system python3 has no
    runicorn, so sshd's SetEnv puts the venv first for every session of this
    bed (and so for rvssh too: same server, same environment for both).
    """

    def _write_sshd_config(self) -> None:
        super()._write_sshd_config()
        with open(self.sshd_config, "a") as config:
            config.write(f"SetEnv PATH={RUNICORN_VENV}/bin:/usr/local/bin:/usr/bin:/bin\n")

    def count_sessions(self) -> int:
        return self.log_text().count("Starting session:")


@dataclass
class Workspace:
    """What the test user has for the benchmark, under one directory of its home."""

    root: Path
    files_dir: Path
    storage: Path
    run_id: str
    big_file: Path
    asset_path: str


def make_workspace(tag: str) -> Workspace:
    home = Path(pwd.getpwnam(TEST_USER).pw_dir)
    root = home / f"rvbench-{tag}"
    files = root / "files"
    storage = root / "storage"
    python = RUNICORN_VENV / "bin" / "python"
    script = (
        "import os, sys, runicorn as rn\n"
        f"base = {str(files)!r}\n"
        "os.makedirs(base)\n"
        f"for i in range({FILE_COUNT}):\n"
        "    open(os.path.join(base, 'file_%04d.txt' % i), 'w').write('x' * (i % 97))\n"
        f"run = rn.init(path='bench/big', storage={str(storage)!r})\n"
        "run.log({'loss': 1.0}, step=1)\n"
        "run.finish()\n"
        "print(run.id)\n"
    )
    run_as_user(["mkdir", "-p", str(root)])
    run_id = run_as_user([str(python), "-c", script], timeout=120).stdout.strip().splitlines()[-1]
    run_dirs = list((storage / "runs").rglob(run_id))
    if not run_dirs:
        raise RuntimeError(f"runicorn created no run directory for {run_id}")
    big = run_dirs[0] / "big.bin"
    run_as_user(f"head -c {BIG_FILE_MB * 1024 * 1024} /dev/urandom > {big}", timeout=120)
    assets = sorted(RUNICORN_VENV.glob("lib/python*/site-packages/runicorn/webui/assets/*.js"),
                    key=lambda p: abs(p.stat().st_size - ASSET_SIZE))
    if not assets:
        raise RuntimeError("the runicorn venv ships no webui assets")
    return Workspace(root, files, storage, run_id, big, f"/assets/{assets[0].name}")


# --- servers ----------------------------------------------------------------


def ensure_reference(version: str) -> Path:
    """Return a venv with runicorn==version, built once under the cache dir."""
    venv = CACHE / f"runicorn-{version}"
    python = venv / "bin" / "python"
    check = [str(python), "-c", f"import runicorn, sys; sys.exit(runicorn.__version__ != {version!r})"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return venv
    log(f"installing runicorn=={version} into {venv} (once)")
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    base_python = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base_python, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--root-user-action=ignore",
                    f"runicorn=={version}"], check=True, timeout=1200)
    subprocess.run(check, check=True)
    return venv


@dataclass
class Server:
    name: str
    kind: str  # "rvssh" or "reference"
    port: int
    proc: subprocess.Popen[bytes]
    home: Path
    log_path: Path

    def call(self, method: str, path: str, body: Any = None, timeout: float = 180.0) -> tuple[int, Any]:
        return http_call(self.port, method, path, body, timeout)

    def pids(self) -> list[int]:
        return tree(self.proc.pid) if self.proc.poll() is None else []

    def rss_kb(self) -> int:
        return sum(rss_kb(pid) for pid in self.pids())

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids())


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
        # runicorn; servers absent here use "system" (the reference's system
        # python is the first python3 on PATH: the runicorn venv).
        self.runicorn_env: dict[str, str] = {}

    # -- set-up and tear-down ---------------------------------------------

    @property
    def target_body(self) -> dict[str, Any]:
        assert self.bed is not None
        return {"host": self.bed.host, "port": self.bed.port, "username": self.bed.user}

    @property
    def connect_body(self) -> dict[str, Any]:
        return {**self.target_body, "use_agent": True}

    @property
    def connection_id(self) -> str:
        assert self.bed is not None
        return f"{self.bed.user}@{self.bed.host}:{self.bed.port}"

    def start_rvssh(self, name: str, ssh_wrapper: Path | None = None) -> Server:
        assert self.bed is not None
        port = free_port()
        home = Path(tempfile.mkdtemp(prefix="rvs-", dir="/tmp"))
        env = self.bed.client_env(agent=True)
        env.update(
            RVSSH_STATE_DIR=str(home / "state"),
            RVSSH_SSH_CONFIG=str(self.bed.ssh_config),
            RVSSH_USER_KNOWN_HOSTS=str(self.bed.user_known_hosts),
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

    def start_reference(self, name: str, version: str, ssh_wrapper: Path | None = None) -> Server:
        assert self.bed is not None
        venv = ensure_reference(version)
        port = free_port()
        home = Path(tempfile.mkdtemp(prefix="rvr-", dir="/tmp"))
        env = self.bed.client_env(agent=True)
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

    def trust(self, server: Server) -> None:
        """The 409 flow, as the UI does it; then one connect that succeeds."""
        status, body = server.call("POST", "/api/remote/connect", self.connect_body)
        if status == 409:
            key = body["detail"]["host_key"]
            expect(server.call("POST", "/api/remote/known-hosts/accept",
                               {k: key[k] for k in ("host", "port", "key_type", "public_key", "fingerprint_sha256")}),
                   f"{server.name} accept")
            status, body = server.call("POST", "/api/remote/connect", self.connect_body)
        if status != 200:
            raise RuntimeError(f"{server.name} connect: HTTP {status}: {body}")
        if server.kind == "rvssh":
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

    def config(self, server: Server, env: str | None = None) -> dict[str, Any]:
        env = env or self.runicorn_env.get(server.name, "system")
        query = urllib.parse.urlencode({"connection_id": self.connection_id, "conda_env": env})
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
        if server.name in self.runicorn_env:
            body["conda_env"] = self.runicorn_env[server.name]
        answer = expect(server.call("POST", "/api/remote/viewer/start", body, timeout=120), f"{server.name} viewer/start")
        session = answer["session"]
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
        return control

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
            self.resources.setdefault(server.name, {})["rss_idle_kb"] = server.rss_kb()
        cpu0 = {server.name: server.cpu_seconds() for server in (rv, ref, ref_fs)}

        log("cold connect (after disconnect)")
        for server in (rv, ref):
            self.repeat("connect", server, r["connect"], lambda s=server: self.connect(s),
                        before=lambda s=server: self.disconnect(s))
        log("conda-envs on a fresh connection")
        for server in (rv, ref):
            self.repeat("conda", server, r["conda"], lambda s=server: self.conda_envs(s),
                        before=lambda s=server: self.reconnect(s))
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

        log("viewer/start -> ready")
        sessions: dict[str, dict[str, Any]] = {}
        for server in (rv, ref):
            sample = Sample()
            for index in range(r["viewer"] + 1):
                self.connect(server)
                elapsed, session = timed(lambda s=server: self.viewer_start(s))
                if index:
                    sample.values.append(elapsed)
                if index < r["viewer"]:
                    self.viewer_stop(server, session)
            sessions[server.name] = session  # the last one stays up for what follows
            self.record("viewer", server.name, sample)

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
        log("10 parallel config calls")
        for server in (rv, ref):
            self.parallel("pconfig", server, 10, r["pconfig"], lambda s=server: self.config(s))

        for server in (rv, ref, ref_fs):
            res = self.resources.setdefault(server.name, {})
            res["rss_end_kb"] = server.rss_kb()
            res["rss_peak_kb"] = max(self._peak.get(server.name, 0), res["rss_end_kb"])
            res["cpu_s"] = server.cpu_seconds() - cpu0[server.name]
        self._sampling.set()
        for server in (rv, ref):
            self.viewer_stop(server, sessions[server.name])
        for server in (rv, ref, ref_fs):
            self.stop_server(server)

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

    def parallel(self, figure: str, server: Server, width: int, reps: int, call: Callable[[], Any]) -> None:
        walls = Sample(unit="ms")
        failures = 0
        # No warm-up batch: the figure before ran the same call on the same connection.
        for index in range(1, reps + 1):
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

    def run(self, counting: bool) -> None:
        self.versions = collect_versions(self.rvssh_source)
        log("reference venvs")
        for version in (REFERENCE, REFERENCE_FS):
            ensure_reference(version)
        log("test user's runicorn venv, sshd, workspace")
        ensure_runicorn_venv()
        self.bed = BenchBed()
        self.bed.start()
        self.ws = make_workspace(self.tmp.name)
        self.run_timing()
        if counting:
            log("counting pass: ssh processes, logins and sessions per operation")
            self.run_counting()


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


FIGURES: list[tuple[str, str, str]] = [
    # key, label, which reference
    ("connect", "cold connect (after disconnect)", REFERENCE),
    ("conda", "conda-envs on a fresh connection", REFERENCE),
    ("config", "config (system env; the env with runicorn, see below)", REFERENCE),
    ("config_system", "(context) rvssh config of its own `system` (/usr/bin/python3, no runicorn)", REFERENCE),
    ("fslist", "fs/list, 2,000 files", REFERENCE_FS),
    ("viewer", "viewer/start → ready", REFERENCE),
    ("health", "`/api/health` through the tunnel", REFERENCE),
    ("asset", "1.1 MB UI asset through the tunnel", REFERENCE),
    ("big", "200 MB file through the tunnel", REFERENCE),
    ("during", "viewer/sessions while a config call runs", REFERENCE),
    ("pconfig", "10 parallel config calls, wall", REFERENCE),
    ("pfslist", "50 parallel fs/list on one connection, wall", REFERENCE_FS),
    ("rps", "viewer/sessions requests/s, 8 client threads", REFERENCE),
    ("rps_health", "(context) `/api/health` of the API server, requests/s", REFERENCE),
]

HIGHER_IS_BETTER = {"big", "rps", "rps_health"}


def target_check(key: str, rv: Sample | None, ref: Sample | None) -> tuple[str, bool | None]:
    """Return (target text, held?) for a figure, from the medians."""
    if rv is None or not rv.values:
        return "", None
    m = rv.median
    rm = ref.median if ref is not None and ref.values else math.nan
    failures = 0
    if rv.note.split(" failed")[0].isdigit():
        failures = int(rv.note.split(" failed")[0])
    rules: dict[str, tuple[str, Callable[[], bool]]] = {
        "connect": ("≤ reference", lambda: m <= rm),
        "conda": ("≥ 20× faster", lambda: rm / m >= 20),
        "config": ("≥ 10× faster", lambda: rm / m >= 10),
        "fslist": ("≥ 3× faster", lambda: rm / m >= 3),
        "viewer": ("≤ ⅓ of the reference", lambda: m <= rm / 3),
        "health": ("≤ 2 ms", lambda: m <= 2),
        "asset": ("≤ 10 ms", lambda: m <= 10),
        "big": ("≥ the reference", lambda: m >= rm),
        "during": ("≤ 20 ms", lambda: m <= 20),
        "pconfig": ("≤ 1 s", lambda: m <= 1000),
        "pfslist": ("0 failures, ≤ 1.5 s", lambda: failures == 0 and m <= 1500),
        "rps": ("≥ the reference", lambda: m >= rm),
    }
    if key not in rules:
        return "", None
    text, check = rules[key]
    return text, bool(check())


def limit_for(key: str, limits: dict[str, Sample]) -> str:
    def ms(name: str) -> str:
        sample = limits.get(name)
        return f"{sample.median:.1f} ms" if sample and sample.values else "?"

    def rate(name: str) -> str:
        sample = limits.get(name)
        return f"{sample.median:.0f} MB/s" if sample and sample.values else "?"

    return {
        "connect": f"master start {ms('master_start')}; bare `ssh true` {ms('login')}",
        "conda": f"first session on a new master {ms('mux_first')}; `python3 -c pass` over a master {ms('mux_python')}",
        "config": f"`python3 -c pass` over a master {ms('mux_python')}",
        "config_system": f"`python3 -c pass` over a master {ms('mux_python')}",
        "fslist": f"`python3 -c pass` over a master {ms('mux_python')}",
        "viewer": f"viewer boot without ssh {ms('viewer_boot')}",
        "health": f"direct {ms('direct_health')}; raw `ssh -L` {ms('raw_health')}",
        "asset": f"direct {ms('direct_asset')}; raw `ssh -L` {ms('raw_asset')}",
        "big": f"direct {rate('direct_big')}; raw `ssh -L` {rate('raw_big')} (AES-GCM: {rate('raw_big_aes')})",
        "during": "",
        "pconfig": f"`true` over a master {ms('mux_true')} each",
        "pfslist": "sshd MaxSessions 10 per connection",
    }.get(key, "")


def fmt(value: float, unit: str) -> str:
    if math.isnan(value):
        return "–"
    if unit == "ms":
        return f"{value:,.0f} ms" if value >= 100 else f"{value:.1f} ms"
    if unit == "MB/s":
        return f"{value:,.0f} MB/s"
    return f"{value:,.0f} {unit}"


def render(bench: Bench, args: argparse.Namespace, elapsed: float) -> str:
    rv_name = "rvssh"
    lines = [
        f"Run: `scripts/bench{' --quick' if bench.quick else ''}` on {time.strftime('%Y-%m-%d')}, "
        f"{elapsed:.0f} s wall.",
        "",
        "| | |",
        "|---|---|",
    ]
    for key, value in bench.versions.items():
        lines.append(f"| {key} | {value} |")
    lines += [
        "",
        "Medians and p90 over n runs after one warm-up; speed-up = reference ÷ rvssh for times, "
        "rvssh ÷ reference for rates (> 1: rvssh is faster). config, its parallel and concurrent figures and "
        "viewer/start use the environment that holds runicorn, the same interpreter for both: "
        + ", ".join(f"{name} `conda_env={env}`" for name, env in bench.runicorn_env.items())
        + f", runicorn {REFERENCE} `system` (its system python is the first python3 on PATH, the runicorn venv; "
        "viewer/start sends no conda_env, the reference's cheapest path).",
        "",
        "| figure | n | rvssh median | rvssh p90 | reference | ref median | ref p90 | speed-up | target | holds | OpenSSH limit here |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, label, ref_version in FIGURES:
        per = bench.results.get(key, {})
        rv = per.get(rv_name)
        ref = per.get(f"runicorn {ref_version}")
        if rv is None and ref is None:
            continue
        unit = (rv or ref).unit  # type: ignore[union-attr]
        ratio = math.nan
        if rv and ref and rv.values and ref.values:
            ratio = rv.median / ref.median if key in HIGHER_IS_BETTER else ref.median / rv.median
        target, held = target_check(key, rv, ref)
        notes = "; ".join(n for n in ((rv.note if rv else ""), (f"ref: {ref.note}" if ref and ref.note else "")) if n)
        n_text = "/".join(str(s.n) for s in (rv, ref) if s)
        lines.append(
            f"| {label}{f' ({notes})' if notes else ''} | {n_text} | {fmt(rv.median, unit) if rv else '–'} | "
            f"{fmt(rv.p90, unit) if rv else '–'} | {ref_version} | {fmt(ref.median, unit) if ref else '–'} | "
            f"{fmt(ref.p90, unit) if ref else '–'} | {'' if math.isnan(ratio) else f'{ratio:,.1f}×'} | {target} | "
            f"{'' if held is None else ('yes' if held else '**no**')} | {limit_for(key, bench.limits)} |"
        )
    if bench.counts:
        lines += ["", "Per operation, from one run of each (ssh processes started locally, counted by a wrapper; "
                      "logins and sessions from the test sshd's log):", "",
                  "| operation | rvssh: ssh processes / logins / sessions | reference: ssh processes / logins / sessions |",
                  "|---|---|---|"]
        labels = {"connect": "connect (cold)", "conda": "conda-envs (fresh connection)",
                  "config": "config (env with runicorn)",
                  "fslist": "fs/list", "viewer_start": "viewer/start", "viewer_sessions": "viewer/sessions (1 viewer)",
                  "viewer_stop": "viewer/stop", "disconnect": "disconnect"}
        for op, label in labels.items():
            per = bench.counts.get(op, {})
            ref_name = f"runicorn {REFERENCE_FS if op == 'fslist' else REFERENCE}"

            def cell(name: str) -> str:
                c = per.get(name)
                return f"{c['ssh_processes']} / {c['logins']} / {c['sessions']}" if c else "–"

            ref_cell = cell(ref_name) + (f" ({REFERENCE_FS})" if op == "fslist" else "")
            lines.append(f"| {label} | {cell(rv_name)} | {ref_cell} |")
    lines += ["", "Resources of the API server processes (the server and its children; rvssh's masters are "
                  "daemons of their own and are listed apart):", "",
              "| server | RSS idle | RSS peak | RSS end | CPU over the timing pass | per connection | per viewer tunnel |",
              "|---|---|---|---|---|---|---|"]
    for name, res in bench.resources.items():
        per_conn = per_tunnel = "–"
        if "master_rss_kb" in res:
            per_conn = f"{res['master_rss_kb'] / 1024:.1f} MB (the master's RSS)"
            per_tunnel = "0 (a forward on the master)"
        elif name == f"runicorn {REFERENCE}":
            per_conn = "no process (a new ssh login per command)"
            per_tunnel = f"{res.get('tunnel_rss_kb', 0) / 1024:.1f} MB ({res.get('tunnel_processes', 0)} `ssh -N -L`)"
        elif name == f"runicorn {REFERENCE_FS}":
            per_conn = "in process (paramiko)"
        lines.append(f"| {name} | {res.get('rss_idle_kb', 0) / 1024:.1f} MB | {res.get('rss_peak_kb', 0) / 1024:.1f} MB | "
                     f"{res.get('rss_end_kb', 0) / 1024:.1f} MB | {res.get('cpu_s', 0):.1f} s | {per_conn} | {per_tunnel} |")
    lines += ["", "Physical limits measured on the same machine and sshd:", "",
              "| what | n | median | p90 |", "|---|---|---|---|"]
    limit_labels = {
        "login": "bare `ssh ... true` (a new login)",
        "master_start": "`ssh -f -N -M` until it returns (a master)",
        "mux_first": "`true` over a master, its first session",
        "mux_true": "`true` over a master",
        "mux_python": "`python3 -c pass` over a master",
        "mux_check": "`ssh -O check`",
        "viewer_boot": "runicorn viewer boot to `/api/health`, no ssh",
        "direct_health": "`/api/health`, direct (no tunnel)",
        "raw_health": "`/api/health` through a raw `ssh -N -L`",
        "direct_asset": "1.1 MB asset, direct",
        "raw_asset": "1.1 MB asset through a raw `ssh -N -L`",
        "direct_big": "200 MB file, direct",
        "raw_big": "200 MB file through a raw `ssh -N -L`",
        "raw_big_aes": "200 MB file through a raw `ssh -N -L -c aes128-gcm@openssh.com`",
    }
    for key, label in limit_labels.items():
        sample = bench.limits.get(key)
        if sample:
            lines.append(f"| {label} | {sample.n} | {fmt(sample.median, sample.unit)} | {fmt(sample.p90, sample.unit)} |")
    if bench.notes:
        lines += [""] + [f"- {note}" for note in bench.notes]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few repetitions only (under two minutes)")
    parser.add_argument("--counts", action=argparse.BooleanOptionalAction, default=None,
                        help="run the pass that counts ssh processes, logins and sessions per operation "
                             "(default: yes, but not with --quick)")
    parser.add_argument("--rvssh-source", type=Path, default=REPO,
                        help="run rvssh from this source tree (a directory holding rvssh/; default: this checkout)")
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    parser.add_argument("--json", type=Path, help="also write every sample to this file")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("run as root: the throwaway sshd needs it (useradd, runuser, sshd)")
    bench = Bench(QUICK if args.quick else FULL, args.quick, args.rvssh_source.resolve())
    started = time.perf_counter()
    try:
        bench.run(counting=args.counts if args.counts is not None else not args.quick)
    finally:
        log("stopping everything")
        bench.cleanup()
    report = render(bench, args, time.perf_counter() - started)
    print(report)
    if args.markdown:
        args.markdown.write_text(report)
    if args.json:
        args.json.write_text(json.dumps({
            "versions": bench.versions,
            "results": {k: {s: vars(v) for s, v in per.items()} for k, per in bench.results.items()},
            "limits": {k: vars(v) for k, v in bench.limits.items()},
            "counts": bench.counts,
            "resources": bench.resources,
        }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
