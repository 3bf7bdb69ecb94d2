"""Realistic layouts in the test user's home for the environment and file tests (issue #3).

Fixtures (import them explicitly into a test module):

- ``env_layout``: a conda install ``~/miniconda3`` (base, ``envs/withrv`` with
  runicorn importable, ``envs/norv`` without it but with runicorn left behind
  in the site-packages of its previous python, ``envs/nodeps`` where runicorn
  was installed without its dependencies, ``envs/broken`` whose python fails),
  a real venv ``~/venvs/withrv`` whose name clashes with the conda env, venvs
  named with shell syntax and with bytes that are not UTF-8, a venv with a
  dangling interpreter, next to the runicorn venv the bed keeps in
  ``~/.virtualenvs/runicorn``.
- ``storage_tree``: a scan root holding a storage root with runs written by
  the real runicorn SDK, plus decoys the scan must skip.
- ``fs_tree``: a folder with hidden entries, symlinks, a non-UTF-8 name, a
  folder only root may read and a folder of 10,000 files.

Everything is created once per test run and removed afterwards. The fixed
names (``~/miniconda3``, ``~/venvs``) are guarded by a lock file, so two
concurrent runs on one machine take turns instead of trampling each other.

Also here: counting the ssh sessions (round trips) an HTTP call makes, from
sshd's log.
"""

from __future__ import annotations

import fcntl
import functools
import os
import pwd
import shutil
import statistics
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import pytest

from tests.sshbed import RUNICORN_VENV, SYSTEM_PYTHON, TEST_HOME, TEST_USER, run_as_user, wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator

    import falcon.testing

    from tests.sshbed import SshBed

HOME = TEST_HOME
RUNICORN_VERSION = "0.7.2"
MANY_FILES = 10_000
# Not valid UTF-8: how the probe must print it (Python's backslashreplace).
BAD_NAME = b"caf\xe9-\xff.log"
BAD_NAME_TEXT = "caf\\xe9-\\xff.log"
BAD_DIR = b"dir-\xff"
BAD_DIR_TEXT = "dir-\\xff"
BAD_ENV_NAME = b"rvt-caf\xe9"
BAD_ENV_NAME_TEXT = "rvt-caf\\xe9"
# A venv folder whose name would run a command if it ever reached a shell.
SHELL_CANARY = "rvt-canary-envname"
SHELL_ENV_NAME = f"rvt-it's $(touch {SHELL_CANARY})"


@functools.cache
def system_version() -> str:
    """Return the version of the test user's system python, e.g. "3.11.2" (asked once, when first needed)."""
    out = subprocess.run([str(SYSTEM_PYTHON), "-c", "import platform; print(platform.python_version())"],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def system_major_minor() -> str:
    """Return "X.Y" of :func:`system_version`."""
    return ".".join(system_version().split(".")[:2])


def _owner() -> tuple[int, int]:
    entry = pwd.getpwnam(TEST_USER)
    return entry.pw_uid, entry.pw_gid


def give_to_user(path: Path) -> None:
    """chown ``path`` (recursively, symlinks themselves, not their targets) to the test user."""
    uid, gid = _owner()
    subprocess.run(["chown", "-R", "-h", f"{uid}:{gid}", str(path)], check=True)


def remove_tree(path: Path) -> None:
    """Remove a tree we made, also the root-owned parts."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def exists_as_user(path: Path) -> bool:
    """Tell whether the test user sees ``path`` (``test -e``)."""
    return run_as_user(["test", "-e", str(path)], check=False).returncode == 0


def unique_home_path(prefix: str) -> Path:
    return HOME / f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def fixed_names_lock() -> Iterator[None]:
    """Hold the lock on the fixed-name trees in the test user's home for the whole run."""
    with open("/tmp/rvssh-remote-trees.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


# --- environments ---------------------------------------------------------------


@dataclass(frozen=True)
class ExpectedEnv:
    """What conda-envs must report for one environment we built."""

    name: str
    type: str
    path: str
    python_version: str
    runicorn_version: str | None  # as read from disk by conda-envs
    runicorn_imports: bool = True  # False: config must answer runicornVersion null

    @property
    def config_runicorn_version(self) -> str | None:
        return self.runicorn_version if self.runicorn_imports else None


@dataclass(frozen=True)
class EnvLayout:
    conda_root: Path
    envs: dict[str, ExpectedEnv]
    broken: tuple[str, ...]  # names listed with python_version "Unknown"
    created: tuple[Path, ...] = field(default=())

    @property
    def working(self) -> list[ExpectedEnv]:
        return [env for env in self.envs.values() if env.name not in self.broken]


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def _conda_meta(prefix: Path, python: bool, extra: tuple[str, ...] = ()) -> None:
    meta = prefix / "conda-meta"
    meta.mkdir(parents=True)
    _write(meta / "history", "==> 2024-05-01 10:00:00 <==\n# cmd: conda create\n")
    names = list(extra)
    if python:
        names.append(f"python-{system_version()}-hab00c5b_0_cpython.json")
    # Look-alikes that are not the python package.
    names += ["python_abi-3.11-4_cp311.json", "python-dateutil-2.9.0-pyhd8ed1ab_0.json"]
    for name in names:
        _write(meta / name, '{"name": "%s"}\n' % name.split("-")[0])


def _python_link(prefix: Path) -> Path:
    """Give ``prefix`` a bin/python that is the real system interpreter."""
    bin_dir = prefix / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    (bin_dir / "python3").symlink_to(SYSTEM_PYTHON)
    (bin_dir / "python").symlink_to("python3")
    return bin_dir / "python"


def _build_conda(root: Path, runicorn_site: Path) -> dict[str, ExpectedEnv]:
    version = f"Python {system_version()}"
    site = Path("lib") / f"python{system_major_minor()}" / "site-packages"
    envs: dict[str, ExpectedEnv] = {}

    _conda_meta(root, python=True, extra=("conda-24.1.2-py311h06a4308_0.json",))
    envs["base"] = ExpectedEnv("base", "conda", str(_python_link(root)), version, None)
    (root / site).mkdir(parents=True)
    _write(root / "condabin" / "conda", "#!/bin/sh\necho 'conda is not really here' >&2\nexit 1\n", 0o755)

    # withrv: a real interpreter that imports runicorn. A conda python finds its
    # prefix from where it lives; a symlinked interpreter needs pyvenv.cfg for that.
    withrv = root / "envs" / "withrv"
    _conda_meta(withrv, python=True)
    python = _python_link(withrv)
    _write(withrv / "pyvenv.cfg", f"home = {SYSTEM_PYTHON.parent}\ninclude-system-site-packages = false\n"
                                  f"version = {system_version()}\n")
    (withrv / site).parent.mkdir(parents=True)
    (withrv / site).symlink_to(runicorn_site)
    envs["withrv"] = ExpectedEnv("withrv", "conda", str(python), version, RUNICORN_VERSION)

    norv = root / "envs" / "norv"
    _conda_meta(norv, python=True)
    python = _python_link(norv)
    (norv / site / "numpy-1.26.4.dist-info").mkdir(parents=True)
    (norv / site / "runicorn_extras-1.0.0.dist-info").mkdir()  # not runicorn
    # pip-installed packages stay behind when conda upgrades an env's python.
    _write(norv / "lib" / "python3.10" / "site-packages" / "runicorn-0.6.0.dist-info" / "METADATA",
           "Metadata-Version: 2.1\nName: runicorn\nVersion: 0.6.0\n")
    envs["norv"] = ExpectedEnv("norv", "conda", str(python), version, None)

    # nodeps: `pip install --no-deps runicorn`: installed, but `import runicorn` fails.
    nodeps = root / "envs" / "nodeps"
    _conda_meta(nodeps, python=True)
    python = _python_link(nodeps)
    _write(nodeps / "pyvenv.cfg", f"home = {SYSTEM_PYTHON.parent}\ninclude-system-site-packages = false\n"
                                  f"version = {system_version()}\n")
    (nodeps / site).mkdir(parents=True)
    for name in ("runicorn", f"runicorn-{RUNICORN_VERSION}.dist-info"):
        (nodeps / site / name).symlink_to(runicorn_site / name)
    envs["nodeps"] = ExpectedEnv("nodeps", "conda", str(python), version, RUNICORN_VERSION, runicorn_imports=False)

    # broken: python was removed from the env, a stub that cannot start is left.
    broken = root / "envs" / "broken"
    _conda_meta(broken, python=False)
    _write(broken / "bin" / "python",
           "#!/bin/sh\necho 'python: error while loading shared libraries' >&2\nexit 127\n", 0o755)
    envs["broken"] = ExpectedEnv("broken", "conda", str(broken / "bin" / "python"), "Unknown", None)
    return envs


@pytest.fixture(scope="session")
def env_layout(runicorn_python: Path, fixed_names_lock: None) -> Iterator[EnvLayout]:
    """Build the conda install and venvs described in the module docstring."""
    conda_root = HOME / "miniconda3"
    venvs = HOME / "venvs"
    dangling = HOME / ".virtualenvs" / "rvt-dangling"
    shell_named = HOME / ".virtualenvs" / SHELL_ENV_NAME
    bytes_named = Path(os.fsdecode(os.fsencode(HOME / ".virtualenvs") + b"/" + BAD_ENV_NAME))
    created = (conda_root, venvs, dangling, shell_named, bytes_named)
    for path in created:  # leftovers of an interrupted run (we hold the lock)
        remove_tree(path)
    try:
        runicorn_site = RUNICORN_VENV / "lib" / f"python{system_major_minor()}" / "site-packages"
        envs = _build_conda(conda_root, runicorn_site)

        # A real venv whose folder name clashes with the conda env "withrv".
        venvs.mkdir()
        give_to_user(venvs)
        run_as_user([str(SYSTEM_PYTHON), "-m", "venv", "--without-pip", str(venvs / "withrv")])
        envs["venvs/withrv"] = ExpectedEnv("venvs/withrv", "venv", str(venvs / "withrv" / "bin" / "python"),
                                           f"Python {system_version()}", None)

        # A venv whose base interpreter was uninstalled.
        _write(dangling / "pyvenv.cfg", "home = /opt/python3.99/bin\ninclude-system-site-packages = false\n"
                                        "version = 3.99.1\n")
        (dangling / "bin").mkdir()
        (dangling / "bin" / "python").symlink_to("/opt/python3.99/bin/python3.99")
        envs["rvt-dangling"] = ExpectedEnv("rvt-dangling", "venv", str(dangling / "bin" / "python"), "Unknown", None)

        # Names that are shell syntax or not UTF-8 are still just names.
        for prefix, name in ((shell_named, SHELL_ENV_NAME), (bytes_named, BAD_ENV_NAME_TEXT)):
            _write(prefix / "pyvenv.cfg", f"home = {SYSTEM_PYTHON.parent}\ninclude-system-site-packages = false\n"
                                          f"version = {system_version()}\n")
            _python_link(prefix)
            path = str(prefix / "bin" / "python").encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            envs[name] = ExpectedEnv(name, "venv", path, f"Python {system_version()}", None)

        envs["runicorn"] = ExpectedEnv("runicorn", "venv", str(runicorn_python), f"Python {system_version()}",
                                       RUNICORN_VERSION)
        for path in created:
            give_to_user(path)
        # The layout is only realistic if withrv's interpreter really imports runicorn.
        check = run_as_user([envs["withrv"].path, "-c", "import runicorn; print(runicorn.__version__)"])
        assert check.stdout.strip() == RUNICORN_VERSION
        yield EnvLayout(conda_root, envs, broken=("broken", "rvt-dangling"), created=created)
    finally:
        for path in created:
            remove_tree(path)


# --- storage roots ----------------------------------------------------------------

_WRITE_RUNS = """
import sys
import runicorn as rn

root = sys.argv[1]
for index, path in enumerate(["demo/mnist", "demo/mnist", "cv/yolo"]):
    run = rn.init(path=path, storage=root, alias="run%d" % index)
    for step in range(3):
        run.log({"loss": 1.0 / (step + 1)}, step=step)
    run.finish()
"""


@dataclass(frozen=True)
class StorageTree:
    scan_root: Path
    store: Path  # written by runicorn, depth 2
    run_count: int
    dot_runicorn: Path  # .runicorn with one run, depth 1
    archive_store: Path  # archive/ + index/, depth 1
    empty_named: Path  # runicorn_data, empty, depth 1
    deep_store: Path  # one run, depth 4
    skipped: tuple[Path, ...]  # hold runs but must never be reported


def _fake_run(storage: Path, run_id: str, marker: str = "meta.json") -> None:
    _write(storage / "runs" / "proj" / run_id / marker, '{"id": "%s"}\n' % run_id)


@pytest.fixture(scope="session")
def storage_tree(runicorn_python: Path) -> Iterator[StorageTree]:
    """A scan root with one real runicorn storage root and decoys."""
    scan_root = unique_home_path("rvt-scan")
    try:
        tree = StorageTree(
            scan_root=scan_root,
            store=scan_root / "projects" / "rv-data",
            run_count=3,
            dot_runicorn=scan_root / ".runicorn",
            archive_store=scan_root / "old-store",
            empty_named=scan_root / "runicorn_data",
            deep_store=scan_root / "deep" / "a" / "b" / "store",
            skipped=(scan_root / ".hidden-store", scan_root / "node_modules" / "pkg",
                     scan_root / ".cache" / "runicorn_data", scan_root / "tools" / "pyenv"),
        )
        _fake_run(tree.dot_runicorn, "r1")
        (tree.archive_store / "archive").mkdir(parents=True)
        (tree.archive_store / "index").mkdir()
        tree.empty_named.mkdir()
        _fake_run(tree.deep_store, "r1", "status.json")
        for decoy in tree.skipped:
            _fake_run(decoy, "r1")
            _fake_run(decoy, "r2")
        _write(scan_root / "tools" / "pyenv" / "pyvenv.cfg", f"version = {system_version()}\n")
        give_to_user(scan_root)
        run_as_user([str(runicorn_python), "-c", _WRITE_RUNS, str(tree.store)])
        written = list(tree.store.glob("runs/**/meta.json"))
        assert len(written) == tree.run_count, written
        yield tree
    finally:
        remove_tree(scan_root)


# --- files ------------------------------------------------------------------------


@dataclass(frozen=True)
class FsTree:
    root: Path
    many: Path
    no_access: Path  # root's, mode 0700
    names_only: Path  # the user's, mode 0644: names readable, entries not stat-able
    bad_dir: Path  # a folder whose name is not UTF-8, holding inside.txt
    a_file: Path  # a.txt
    a_size: int


@pytest.fixture(scope="session")
def fs_tree() -> Iterator[FsTree]:
    """Hidden entries, symlinks, a non-UTF-8 name, a root-only folder, 10,000 files."""
    root = unique_home_path("rvt-fs")
    try:
        for name in ("sub", "Zdir", ".hidden_dir", "many", "no_access"):
            (root / name).mkdir(parents=True)
        _write(root / "a.txt", "a" * 123)
        _write(root / "B.txt", "B")
        _write(root / ".hidden", "secret-ish\n")
        _write(root / "sub" / "inner.txt", "x")
        (root / "link_dir").symlink_to("sub")
        (root / "link_file").symlink_to("a.txt")
        (root / "dangling").symlink_to("does-not-exist")
        (root / "loop").symlink_to("loop")
        os.close(os.open(os.fsencode(root) + b"/" + BAD_NAME, os.O_WRONLY | os.O_CREAT, 0o644))
        bad_dir = Path(os.fsdecode(os.fsencode(root) + b"/" + BAD_DIR))
        _write(bad_dir / "inside.txt", "inside")
        names_only = root / "names_only"
        _write(names_only / "f.txt", "f")
        (names_only / "d").mkdir()
        many = os.fsencode(root / "many")
        for index in range(MANY_FILES):
            os.close(os.open(many + b"/f%05d" % index, os.O_WRONLY | os.O_CREAT, 0o644))
        give_to_user(root)
        # Owned by root, mode 0700: the test user may not look inside.
        os.chown(root / "no_access", 0, 0)
        (root / "no_access").chmod(0o700)
        (root / "no_access" / "x").write_text("x")
        names_only.chmod(0o644)
        yield FsTree(root=root, many=root / "many", no_access=root / "no_access", names_only=names_only,
                     bad_dir=bad_dir, a_file=root / "a.txt", a_size=123)
    finally:
        remove_tree(root)


# --- round trips ------------------------------------------------------------------------


def session_counts(bed: SshBed) -> tuple[int, int]:
    """Return how many ssh sessions sshd has started and closed so far."""
    text = bed.log_text()
    return text.count("Starting session: "), text.count("Close session: ")


def sessions_during(bed: SshBed, call: Callable[[], falcon.testing.Result]) -> tuple[falcon.testing.Result, int]:
    """Make ``call`` and return its result and the number of ssh sessions it opened.

    sshd logs a session a moment after the client may have returned, so the
    count is read once every session that was started is also closed.
    """
    def quiet() -> tuple[int, int] | None:
        started, closed = session_counts(bed)
        return (started, closed) if started == closed else None

    # The close of an earlier call's session may still be on its way to the log.
    started_before, closed_before = wait_until(quiet, 10, "sshd still has a session open", context=bed.log_text)
    result = call()

    def settled() -> int:
        started, closed = session_counts(bed)
        opened = started - started_before
        return opened if opened > 0 and closed - closed_before == opened else 0

    opened = wait_until(settled, 10, "sshd logged no finished session for the call", context=bed.log_text)
    return result, opened


def median_latency(call: Callable[[], falcon.testing.Result], repeats: int = 5) -> float:
    """Return the median wall time in seconds of ``repeats`` calls (each must answer 200)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - started)
        assert result.status_code == 200, result.text
    return statistics.median(times)


def assert_one_session_each(bed: SshBed, calls: dict[str, Callable[[], falcon.testing.Result]]) -> None:
    """Assert each call answers 200 over exactly one ssh session; print its median latency."""
    report = []
    for name, call in calls.items():
        result, sessions = sessions_during(bed, call)
        assert result.status_code == 200, result.text
        assert sessions == 1, f"{name}: {sessions} ssh sessions"
        report.append(f"{name}: {sessions} session, median {median_latency(call) * 1000:.0f} ms")
    print("\n" + "\n".join(report))

