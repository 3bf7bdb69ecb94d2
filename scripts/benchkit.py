"""What the benchmark passes share: statistics, HTTP, processes, the bed, the servers (issue #6, #14)."""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import os
import pwd
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.sshbed import (  # noqa: E402,F401 - re-exported to the passes
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
            during=8, pconfig=3, pfslist=3, rps=3, rps_seconds=5.0, rps_warmup=1.0, limits=20,
            again=50, cpu=20, ui=3, scale_connections=50, scale_viewers=20, scale_reads=200, link_hold=20.0)
QUICK = dict(connect=4, conda=2, config=2, fslist=5, viewer=2, health=30, asset=10, big=2,
             during=2, pconfig=1, pfslist=1, rps=1, rps_seconds=1.0, rps_warmup=0.5, limits=5,
             again=10, cpu=5, ui=1, scale_connections=10, scale_viewers=4, scale_reads=50, link_hold=20.0)


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
        return percentile(self.values, 0.9)

    @property
    def p99(self) -> float:
        return percentile(self.values, 0.99)


def percentile(values: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile of ``values`` (nan when empty)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


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


def target_body(bed: SshBed, port: int | None = None) -> dict[str, Any]:
    """Return the host, port and user of the bed (on one of its ports)."""
    return {"host": bed.host, "port": port or bed.port, "username": bed.user}


def env_for(runicorn_env: dict[str, str], server: Server) -> str:
    """Return the environment holding runicorn, as ``server`` names it.

    ``runicorn_env`` is what ``Bench.trust`` found in rvssh's conda-envs on the
    main bed; an rvssh it did not ask (on a bed of its own) is given the
    runicorn venv by its name, the reference "system" (its system python is
    the first python3 on PATH: the runicorn venv).
    """
    if server.name in runicorn_env:
        return runicorn_env[server.name]
    return RUNICORN_VENV.name if server.kind == "rvssh" else "system"


def viewer_start_body(server: Server, body: dict[str, Any], conda_env: str) -> dict[str, Any]:
    """Return ``body`` for viewer/start: rvssh is told the environment, the reference finds its own."""
    return {**body, "conda_env": conda_env} if server.kind == "rvssh" else body


def post_viewer_start(server: Server, body: dict[str, Any], conda_env: str, timeout: float, where: str = "") -> Any:
    """POST viewer/start and return its session; rvssh is told the environment, the reference finds its own.

    Raises:
        RuntimeError: the server did not answer 200 (its status and the start of its answer are in the message).
    """
    body = viewer_start_body(server, body, conda_env)
    status, answer = http_call(server.port, "POST", "/api/remote/viewer/start", body, timeout=timeout)
    if status != 200:
        raise RuntimeError(f"{server.name} viewer/start{where}: HTTP {status}: {str(answer)[:300]}")
    return answer["session"]


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


def health_ok(port: int, timeout: float = 2.0) -> bool:
    """Return whether ``port`` answers ``/api/health`` with 200 and status ok."""
    try:
        status, body = http_call(port, "GET", "/api/health", timeout=timeout)
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


def pss_kb(pid: int) -> int:
    """Return the proportional set size of ``pid``: its pages, shared ones divided among their sharers."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def fd_count(pids: list[int]) -> int:
    """Return how many file descriptors ``pids`` hold open together."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += len(os.listdir(f"/proc/{pid}/fd"))
    return total


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

    def pss_kb(self) -> int:
        return sum(pss_kb(pid) for pid in self.pids())

    def fds(self) -> int:
        return fd_count(self.pids())

    def children(self) -> int:
        return len(self.pids()) - 1

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids())
