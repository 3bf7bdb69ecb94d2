"""Run the remote probe script exactly as the server will: ``python3 - <sub> <args>``, script on stdin.

Each test builds a realistic tree under a throwaway $HOME (conda installs,
virtualenvs, storage roots, awkward file names) and checks the one JSON object
the script prints.
"""

from __future__ import annotations

import ast
import glob
import json
import os
import platform
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from rvssh.remote.probe import SUBCOMMANDS, load_program, program_for

SCRIPT = load_program("probe.py")
PROGRAMS = [load_program("probe.py"), load_program("fs.py")]
# The base interpreter: the test venv's python is a venv (its sys.prefix differs).
REAL_PY = os.path.realpath(sys.executable)
REAL_VERSION = f"Python {platform.python_version()}"
SHELL_NAMES = ["'; touch X; '", "$(touch X)", "`touch X`", "a\nb; touch X", '"; touch X; "']


def probe_env(home: Path, **extra: str) -> dict[str, str]:
    """Return the environment of a probe run: $HOME, a PATH whose python3 is REAL_PY."""
    bin_dir = home.parent / f"{home.name}-bin"
    bin_dir.mkdir(exist_ok=True)
    if not (bin_dir / "python3").exists():
        (bin_dir / "python3").symlink_to(REAL_PY)
    env = {"HOME": str(home), "PATH": f"{bin_dir}:/usr/bin:/bin", "LANG": "C.UTF-8"}
    env.update(extra)
    return env


def run_raw(argv: list[Any], env: dict[str, str], cwd: Path | None = None, program: bytes | None = None) -> bytes:
    """Run ``argv`` with the program of its subcommand on stdin; check it exits 0 with one ASCII JSON line."""
    if program is None:
        subcommand = next((str(word) for word in argv if str(word) in SUBCOMMANDS), "")
        program = program_for(subcommand) if subcommand else SCRIPT
    completed = subprocess.run(argv, input=program, capture_output=True, env=env, cwd=cwd, timeout=120)
    assert completed.returncode == 0, completed.stderr.decode(errors="replace")
    assert completed.stderr == b"", completed.stderr.decode(errors="replace")
    assert completed.stdout.endswith(b"\n") and completed.stdout.count(b"\n") == 1
    assert completed.stdout.isascii()
    return completed.stdout


def run_probe(home: Path, *args: Any, python: str = REAL_PY, **extra: str) -> dict[str, Any]:
    """Run one probe subcommand under ``home`` and return its JSON object."""
    return json.loads(run_raw([python, "-", *args], probe_env(home, **extra), cwd=home))


def write(path: Path, text: str = "") -> Path:
    """Create ``path`` (and its parents) holding ``text``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def make_script(path: Path, body: str) -> Path:
    """Create an executable shell script at ``path``."""
    write(path, "#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


def make_conda_env(prefix: Path, python_version: str | None, python_target: str | None = REAL_PY) -> Path:
    """Create a conda-shaped env: conda-meta (with distractor packages) and bin/python."""
    meta = prefix / "conda-meta"
    meta.mkdir(parents=True)
    write(meta / "python-dateutil-2.8.2-pyhd8ed1ab_0.json", "{}")
    write(meta / "python_abi-3.11-4_cp311.json", "{}")
    write(meta / "history", "")
    if python_version:
        write(meta / f"python-{python_version}-h123.json", "{}")
    (prefix / "bin").mkdir()
    if python_target:
        (prefix / "bin" / "python").symlink_to(python_target)
    return prefix


def add_runicorn(site_packages: Path, version: str, metadata: bool = True, package: bool = True) -> None:
    """Install a runicorn dist-info and (unless ``package`` is false) a stub package to import.

    envs reads the dist-info only; config also imports the package.
    """
    dist = site_packages / f"runicorn-{version}.dist-info"
    dist.mkdir(parents=True)
    if metadata:
        write(dist / "METADATA", f"Metadata-Version: 2.4\nName: runicorn\nVersion: {version}\nSummary: x\n")
    if package:
        write(site_packages / "runicorn" / "__init__.py", f"__version__ = {version!r}\n")


def python_seeing(prefix: Path, site_packages: Path) -> Path:
    """Make ``prefix/bin/python`` REAL_PY with ``site_packages`` on its path, as a conda python has."""
    return make_script(prefix / "bin" / "python", f'PYTHONPATH="{site_packages}" exec {REAL_PY} "$@"')


def make_venv(prefix: Path) -> Path:
    """Create a real virtualenv (no pip) with the base interpreter."""
    subprocess.run([REAL_PY, "-m", "venv", "--without-pip", str(prefix)], check=True)
    return prefix


def site_packages(prefix: Path) -> Path:
    """Return the site-packages of a venv made by REAL_PY."""
    return prefix / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


@pytest.fixture(scope="module")
def env_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a $HOME with conda installs, conda envs and virtualenvs of every kind."""
    base = tmp_path_factory.mktemp("envs")
    home = base / "home"
    root = make_conda_env(home / "miniconda3", "3.11.7")
    a = make_conda_env(root / "envs" / "a", "3.11.7", python_target=None)
    add_runicorn(a / "lib" / "python3.11" / "site-packages", "0.7.2")
    python_seeing(a, a / "lib" / "python3.11" / "site-packages")
    # b: would leave a marker if the probe started it (disk metadata must answer).
    b = make_conda_env(root / "envs" / "b", "3.11.7", python_target=None)
    make_script(b / "bin" / "python", f'touch "$HOME/started-b"; exec {REAL_PY} "$@"')
    for decoy in ("runicorn_extras-1.0.dist-info", "runicorn-extras-1.0.dist-info"):
        write(b / "lib" / "python3.11" / "site-packages" / decoy / "METADATA", "Version: 1.0\n")
    make_conda_env(root / "envs" / "broken", "3.9.1", python_target=str(base / "gone" / "python"))
    make_conda_env(root / "envs" / "nometa", None)
    crashing = make_conda_env(root / "envs" / "crashing", None, python_target=None)
    make_script(crashing / "bin" / "python", "exit 1")
    (root / "envs" / "not-an-env").mkdir()
    outside = make_conda_env(base / "elsewhere" / "outside", "3.12.1")
    write(
        home / ".conda" / "environments.txt",
        f"{root}\n{root / 'envs' / 'a'}\n{outside}\n{base / 'elsewhere' / 'missing'}\n",
    )
    proj = make_venv(home / ".virtualenvs" / "proj")
    add_runicorn(site_packages(proj), "0.7.1", metadata=False)
    make_venv(home / ".virtualenvs" / "a")  # clashes with conda env "a"
    tools = make_venv(home / "venvs" / "tools")
    write(site_packages(tools) / f"runicorn-0.6.0-py{sys.version_info.major}.{sys.version_info.minor}.egg-info"
          / "PKG-INFO", "Metadata-Version: 2.1\nName: runicorn\nVersion: 0.6.0\n")
    write(site_packages(tools) / "runicorn" / "__init__.py", "__version__ = '0.6.0'\n")
    (home / "venvs" / "just-a-folder").mkdir()
    return home


def by_name(payload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Index an ``envs`` answer by env name."""
    return {env["name"]: env for env in payload["envs"]}


# --- the script itself ---------------------------------------------------------------


@pytest.mark.parametrize("program", PROGRAMS)
def test_script_parses_as_python_3_6(program: bytes) -> None:
    ast.parse(program, feature_version=(3, 6))
    assert program.isascii()
    assert b"from __future__ import annotations" not in program


def old_pythons() -> list[str]:
    """Return the oldest local interpreters (3.6, 3.7) that actually start."""
    found = []
    for version in ("3.6", "3.7"):
        candidates = [shutil.which(f"python{version}") or ""]
        candidates += glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}*/bin/python{version}"))
        for candidate in candidates:
            if candidate and subprocess.run([candidate, "-c", ""], capture_output=True).returncode == 0:
                found.append(candidate)
                break
    return found


@pytest.mark.parametrize("python", old_pythons() or [pytest.param("", marks=pytest.mark.skip("no python3.6/3.7"))])
def test_every_subcommand_runs_on_old_python(env_home: Path, tmp_path: Path, python: str) -> None:
    write(tmp_path / "bad\udcffname.txt")
    for args in (["envs"], ["env-configs", ""], ["config", "a"], ["storage-candidates", "", "2"],
                 ["fs-list", str(tmp_path)], ["fs-exists", "~"]):
        payload = run_probe(env_home, *args, python=python)
        assert "error" not in payload, (args, payload)
    assert run_probe(env_home, "fs-list", str(tmp_path), python=python)["items"][0]["name"] == "bad\\xffname.txt"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "Unknown probe subcommand: "),
        (["nope"], "Unknown probe subcommand: nope"),
        (["fs-list"], "Usage: fs-list <path>"),
        (["config", "a", "b"], "Usage: config <env_name>"),
        (["storage-candidates", "~", "deep"], "max_depth must be an integer: deep"),
    ],
)
def test_bad_arguments_are_bad_requests(tmp_path: Path, args: list[str], message: str) -> None:
    assert run_probe(tmp_path, *args) == {"error": {"kind": "bad_request", "message": message}}


def test_script_and_its_children_never_read_stdin(env_home: Path, tmp_path: Path) -> None:
    # Run from a file with a stdin pipe that never closes: any read of stdin would hang.
    script = write(tmp_path / "probe.py", SCRIPT.decode())
    process = subprocess.Popen(
        [REAL_PY, str(script), "envs"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=probe_env(env_home)
    )
    try:
        assert process.wait(timeout=60) == 0
        assert json.loads(process.stdout.read())["ok"] is True
    finally:
        process.kill()
        process.stdin.close()
        process.stdout.close()


# --- envs, env-configs, config ------------------------------------------------------------


def test_envs_lists_conda_venv_and_system(env_home: Path) -> None:
    (env_home / "started-b").unlink(missing_ok=True)
    payload = run_probe(env_home, "envs")
    assert payload["ok"] is True
    envs = by_name(payload)
    root = env_home / "miniconda3"
    assert list(envs) == [
        "base", "a", "b", "broken", "crashing", "nometa", "outside",
        ".virtualenvs/a", "proj", "tools", "system",
    ]
    assert envs["base"] == {
        "name": "base", "type": "conda", "python_version": "Python 3.11.7",
        "path": str(root / "bin" / "python"), "is_default": False, "runicorn_version": None,
    }
    assert envs["a"]["runicorn_version"] == "0.7.2"
    assert envs["a"]["path"] == str(root / "envs" / "a" / "bin" / "python")
    assert envs["b"] == {
        "name": "b", "type": "conda", "python_version": "Python 3.11.7",
        "path": str(root / "envs" / "b" / "bin" / "python"), "is_default": False, "runicorn_version": None,
    }
    assert envs["broken"]["python_version"] == "Unknown"
    assert envs["crashing"]["python_version"] == "Unknown"
    assert envs["nometa"]["python_version"] == REAL_VERSION  # no metadata: the interpreter was asked
    assert envs["outside"]["python_version"] == "Python 3.12.1"
    assert envs[".virtualenvs/a"]["type"] == "venv"
    assert envs[".virtualenvs/a"]["path"] == str(env_home / ".virtualenvs" / "a" / "bin" / "python")
    assert envs["proj"] == {
        "name": "proj", "type": "venv", "python_version": REAL_VERSION,
        "path": str(env_home / ".virtualenvs" / "proj" / "bin" / "python"), "is_default": False,
        "runicorn_version": "0.7.1",
    }
    assert envs["tools"]["runicorn_version"] == "0.6.0"
    assert envs["system"] == {
        "name": "system", "type": "system", "python_version": REAL_VERSION,
        "path": str(env_home.parent / "home-bin" / "python3"), "is_default": True, "runicorn_version": None,
    }
    assert not (env_home / "started-b").exists(), "disk metadata answers: b's interpreter must not start"


def test_envs_marks_the_active_conda_env_default(env_home: Path) -> None:
    active = str(env_home / "miniconda3" / "envs" / "a")
    defaults = [env["name"] for env in run_probe(env_home, "envs", CONDA_PREFIX=active)["envs"] if env["is_default"]]
    assert defaults == ["a"]
    unknown = run_probe(env_home, "envs", CONDA_PREFIX="/nowhere")["envs"]
    assert [env["name"] for env in unknown if env["is_default"]] == ["system"]


def test_envs_finds_conda_from_conda_exe_first(env_home: Path, tmp_path: Path) -> None:
    other = make_conda_env(tmp_path / "opt-conda", "3.10.2")
    make_script(other / "bin" / "conda", "exit 0")
    make_conda_env(other / "envs" / "a", "3.10.2")
    envs = by_name(run_probe(env_home, "envs", CONDA_EXE=str(other / "bin" / "conda")))
    assert envs["base"]["path"] == str(other / "bin" / "python")
    assert envs["base"]["python_version"] == "Python 3.10.2"
    assert envs["a"]["path"] == str(other / "envs" / "a" / "bin" / "python")
    assert envs["miniconda3"]["path"] == str(env_home / "miniconda3" / "bin" / "python")
    assert envs["miniconda3/a"]["runicorn_version"] == "0.7.2"


def test_system_is_the_python3_of_the_login_path_even_a_venv(env_home: Path) -> None:
    """What ``ssh host python3`` runs: a login rc that puts a venv first makes that venv ``system``."""
    venv_bin = env_home / "venvs" / "tools" / "bin"
    envs = by_name(run_probe(env_home, "envs", PATH=f"{venv_bin}:/usr/bin:/bin"))
    assert envs["system"]["path"] == str(venv_bin / "python3")
    assert envs["system"]["runicorn_version"] == "0.6.0"
    assert envs["tools"]["path"] == str(venv_bin / "python")  # still listed as itself


def test_without_python_on_the_path_there_is_no_system_env(env_home: Path) -> None:
    bare = env_home.parent / "bare-bin"
    bare.mkdir(exist_ok=True)
    envs = run_probe(env_home, "envs", PATH=str(bare))["envs"]
    assert "system" not in [env["name"] for env in envs] and envs
    assert [env["name"] for env in envs if env["is_default"]] == ["base"]
    missing = run_probe(env_home, "config", "", PATH=str(bare))
    assert missing["error"]["kind"] == "env_not_found"
    assert missing["error"]["message"].startswith("No python3 or python on the PATH of the login shell")


def test_an_interpreter_can_be_named_by_its_path(env_home: Path) -> None:
    python = env_home / "venvs" / "tools" / "bin" / "python"
    config = run_probe(env_home, "config", str(python))
    assert (config["pythonPath"], config["runicornVersion"]) == (str(python), "0.6.0")
    configs = run_probe(env_home, "env-configs", str(python))["configs"]
    assert configs[str(python)]["runicornVersion"] == "0.6.0"
    assert run_probe(env_home, "python-of", str(python)) == {"ok": True, "python": str(python)}
    assert run_probe(env_home, "python-of", "a")["python"] == str(env_home / "miniconda3" / "envs" / "a" / "bin" / "python")
    gone = run_probe(env_home, "config", "/opt/nowhere/bin/python3")
    assert gone == {"error": {"kind": "env_not_found",
                              "message": "Interpreter not found or not executable: /opt/nowhere/bin/python3"}}


def test_system_python_is_started_when_it_is_not_the_running_interpreter(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    wrapper = make_script(tmp_path / "wrapbin" / "python3", f'touch "$HOME/started"; exec {REAL_PY} "$@"')
    env = probe_env(home, PATH=f"{wrapper.parent}:/usr/bin:/bin")
    payload = json.loads(run_raw([REAL_PY, "-", "envs"], env))
    assert payload["envs"] == [{
        "name": "system", "type": "system", "python_version": REAL_VERSION, "path": str(wrapper),
        "is_default": True, "runicorn_version": None,
    }]
    assert (home / "started").exists()


def test_hanging_interpreter_times_out_as_unknown(tmp_path: Path) -> None:
    home = tmp_path / "home"
    hang = make_conda_env(home / "miniconda3", None, python_target=None)
    make_script(hang / "bin" / "python", "sleep 60")
    started = time.monotonic()
    envs = by_name(run_probe(home, "envs"))
    assert envs["base"]["python_version"] == "Unknown"
    assert time.monotonic() - started < 20


def test_env_configs_has_one_key_per_env(env_home: Path) -> None:
    envs = run_probe(env_home, "envs")["envs"]
    payload = run_probe(env_home, "env-configs", "")
    assert payload["ok"] is True
    assert list(payload["configs"]) == [env["name"] for env in envs]
    assert payload["configs"]["a"] == {"pythonVersion": "Python 3.11.7", "runicornVersion": "0.7.2"}
    assert payload["configs"]["broken"] == {"pythonVersion": "Unknown", "runicornVersion": None}
    assert payload["configs"]["system"] == {"pythonVersion": REAL_VERSION, "runicornVersion": None}


def test_config_accepts_every_env_name(env_home: Path) -> None:
    for env in run_probe(env_home, "envs")["envs"]:
        payload = run_probe(env_home, "config", env["name"])
        if env["python_version"] == "Unknown":
            assert payload == {"error": {"kind": "internal",
                                         "message": f"Failed to run Python in environment: {env['name']}"}}
            continue
        assert payload["condaEnv"] == env["name"]
        assert payload["pythonVersion"] == env["python_version"]
        assert payload["runicornVersion"] == env["runicorn_version"]
        assert payload["pythonPath"] == env["path"]


def test_config_of_an_env_with_runicorn(env_home: Path) -> None:
    payload = run_probe(env_home, "config", "a")
    port = payload.pop("suggestedRemotePort")
    spares = payload.pop("spareRemotePorts")
    assert all(isinstance(value, int) and 1024 <= value <= 65535 for value in [port, *spares])
    assert len(set(spares)) == len(spares) >= 1 and port not in spares
    assert payload == {
        "ok": True, "condaEnv": "a", "pythonVersion": "Python 3.11.7", "runicornVersion": "0.7.2",
        "pythonPath": str(env_home / "miniconda3" / "envs" / "a" / "bin" / "python"),
        "defaultStorageRoot": str(env_home / "runicorn_data"), "storageRootExists": False,
        "homeDirectory": str(env_home),
    }


def test_config_runicorn_version_needs_runicorn_to_import(tmp_path: Path) -> None:
    home = tmp_path / "home"
    root = make_conda_env(home / "miniconda3", "3.11.7")
    nodeps = make_conda_env(root / "envs" / "nodeps", "3.11.7", python_target=None)
    add_runicorn(nodeps / "lib" / "python3.11" / "site-packages", "0.7.2", package=False)
    python_seeing(nodeps, nodeps / "lib" / "python3.11" / "site-packages")
    # pip's leftovers in the folder of the env's previous python do not count.
    upgraded = make_conda_env(root / "envs" / "upgraded", "3.11.7")
    add_runicorn(upgraded / "lib" / "python3.10" / "site-packages", "0.6.0")
    envs = by_name(run_probe(home, "envs"))
    assert (envs["nodeps"]["runicorn_version"], envs["upgraded"]["runicorn_version"]) == ("0.7.2", None)
    assert run_probe(home, "config", "nodeps")["runicornVersion"] is None
    assert run_probe(home, "config", "upgraded")["runicornVersion"] is None


def test_config_remembers_an_import_until_the_packages_change(tmp_path: Path) -> None:
    home = tmp_path / "home"
    root = make_conda_env(home / "miniconda3", "3.11.7")
    env = make_conda_env(root / "envs" / "counted", "3.11.7", python_target=None)
    packages = env / "lib" / "python3.11" / "site-packages"
    add_runicorn(packages, "0.7.2")
    imports = tmp_path / "imports.log"
    write(packages / "runicorn" / "__init__.py", f"open({str(imports)!r}, 'a').write('x')\n__version__ = '0.7.2'\n")
    python_seeing(env, packages)

    def config() -> str | None:
        return run_probe(home, "config", "counted")["runicornVersion"]

    assert (config(), config()) == ("0.7.2", "0.7.2")
    assert imports.read_text() == "x"  # the second config remembered the first import
    memo = list((home / ".cache" / "rvssh" / "imports").iterdir())
    assert len(memo) == 1 and memo[0].stat().st_mode & 0o777 == 0o600
    # pip installs something into the env: runicorn is imported again.
    (packages / "newpkg-1.0.dist-info").mkdir()
    assert config() == "0.7.2" and imports.read_text() == "xx"
    # runicorn no longer imports (its package is gone): the memo does not hide it.
    (packages / "runicorn" / "__init__.py").write_text("raise ImportError('a dependency is missing')\n")
    (packages / "gone-1.0.dist-info").mkdir()
    assert config() is None


def test_config_empty_name_means_system(env_home: Path) -> None:
    payload = run_probe(env_home, "config", "")
    assert (payload["condaEnv"], payload["pythonVersion"]) == ("", REAL_VERSION)


def test_config_unknown_env_is_env_not_found(env_home: Path) -> None:
    for name in ["nope", *SHELL_NAMES]:
        assert run_probe(env_home, "config", name) == {"error": {
            "kind": "env_not_found",
            "message": f"Environment '{name}' not found. Please check the environment name.",
        }}
    assert not (env_home / "X").exists()


def test_storage_root_prefers_runicorn_dir(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    payload = run_probe(tmp_path, "config", "system", RUNICORN_DIR="~/data")
    assert (payload["defaultStorageRoot"], payload["storageRootExists"]) == (str(tmp_path / "data"), True)


def test_storage_root_from_runicorn_user_config_only_when_installed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = make_conda_env(home / "miniconda3", "3.11.7", python_target=None)
    add_runicorn(env / "lib" / "python3.11" / "site-packages", "0.7.2")
    python_seeing(env, env / "lib" / "python3.11" / "site-packages")
    (home / "store").mkdir()
    write(home / ".config" / "runicorn" / "config.json", json.dumps({"user_root_dir": "~/store"}))
    with_runicorn = run_probe(home, "config", "base")
    assert (with_runicorn["defaultStorageRoot"], with_runicorn["storageRootExists"]) == (str(home / "store"), True)
    without = run_probe(home, "config", "system")
    assert without["defaultStorageRoot"] == str(home / "runicorn_data")
    xdg = tmp_path / "xdg"
    write(xdg / "runicorn" / "config.json", json.dumps({"user_root_dir": str(tmp_path / "xdg-store")}))
    assert run_probe(home, "config", "base", XDG_CONFIG_HOME=str(xdg))["defaultStorageRoot"] == str(
        tmp_path / "xdg-store"
    )


# --- storage-candidates --------------------------------------------------------------------


def add_runs(storage: Path, *run_paths: str, marker: str = "meta.json") -> None:
    """Create run folders ``runs/<run path>/<marker>`` under ``storage``."""
    for run_path in run_paths:
        write(storage / "runs" / run_path / marker, "{}")


@pytest.fixture(scope="module")
def storage_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a $HOME holding storage roots, decoys and places the scan must skip."""
    home = tmp_path_factory.mktemp("storage") / "home"
    data = home / "runicorn_data"
    add_runs(data, "vision/yolo/20250101_aaa", "vision/yolo/20250102_bbb", "nlp/20250103_ccc")
    add_runs(data, "deep/a/b/c/too_deep")  # 5 levels below runs/: not counted
    (data / "archive").mkdir()
    add_runs(home / "work" / "proj", "r1", marker="status.json")
    (home / "work" / "proj" / "index").mkdir()
    (home / "old" / "archive").mkdir(parents=True)
    add_runs(home / ".runicorn", "r1")
    add_runs(home / ".cache" / "thing", "r1")
    add_runs(home / "node_modules" / "pkg", "r1")
    add_runs(home / "work" / "venv-like", "r1")
    write(home / "work" / "venv-like" / "pyvenv.cfg", "version = 3.11.7\n")
    add_runs(home / "deep" / "a" / "b" / "c" / "d" / "e" / "store", "r1")
    (home / "empty-runs" / "runs" / "nothing").mkdir(parents=True)
    return home


def test_storage_candidates_ranks_real_roots(storage_home: Path) -> None:
    payload = run_probe(storage_home, "storage-candidates", "", "3")
    assert (payload["scan_root"], payload["max_depth"], payload["truncated"]) == (str(storage_home), 3, False)
    assert payload["candidates"] == [
        {"path": str(storage_home / "runicorn_data"), "run_count": 3, "has_archive": True, "has_index": False,
         "score": 350},
        {"path": str(storage_home / "work" / "proj"), "run_count": 1, "has_archive": False, "has_index": True,
         "score": 120},
        {"path": str(storage_home / ".runicorn"), "run_count": 1, "has_archive": False, "has_index": False,
         "score": 110},
        {"path": str(storage_home / "old"), "run_count": 0, "has_archive": True, "has_index": False,
         "score": 40},
    ]


def test_storage_candidates_depth_is_clamped(storage_home: Path) -> None:
    deep = str(storage_home / "deep" / "a" / "b" / "c" / "d" / "e" / "store")
    payload = run_probe(storage_home, "storage-candidates", "~", "99")
    assert payload["max_depth"] == 8
    assert deep in [item["path"] for item in payload["candidates"]]
    shallow = run_probe(storage_home, "storage-candidates", "~", "0")
    assert shallow["max_depth"] == 1
    assert [item["path"] for item in shallow["candidates"]] == [
        str(storage_home / "runicorn_data"), str(storage_home / ".runicorn"), str(storage_home / "old"),
    ]


def test_storage_candidates_scan_root_itself_and_cap(tmp_path: Path) -> None:
    for number in range(15):
        (tmp_path / f"s{number:02d}" / "archive").mkdir(parents=True)
    payload = run_probe(tmp_path, "storage-candidates", str(tmp_path / "s03"), "3")
    assert [item["path"] for item in payload["candidates"]] == [str(tmp_path / "s03")]
    assert len(run_probe(tmp_path, "storage-candidates", "~", "3")["candidates"]) == 12


def test_storage_candidates_bad_scan_root(tmp_path: Path) -> None:
    write(tmp_path / "file.txt")
    assert run_probe(tmp_path, "storage-candidates", "~/missing", "3") == {"error": {
        "kind": "not_found", "message": f"Scan root does not exist: {tmp_path / 'missing'}"}}
    assert run_probe(tmp_path, "storage-candidates", "file.txt", "3") == {"error": {
        "kind": "not_a_directory", "message": f"Scan root is not a directory: {tmp_path / 'file.txt'}"}}


# --- fs-list and fs-exists --------------------------------------------------------------------


@pytest.fixture
def listing_home(tmp_path: Path) -> Path:
    """Return a $HOME with folders, hidden files, symlinks and a non-UTF-8 name."""
    home = tmp_path / "home"
    (home / "Zdir").mkdir(parents=True)
    (home / "sub").mkdir()
    write(home / ".hidden", "h")
    write(home / "B.txt", "bb")
    write(home / "a.txt", "aaa")
    (home / "link_to_dir").symlink_to(home / "sub")
    (home / "link_to_file").symlink_to(home / "a.txt")
    (home / "dangling").symlink_to(home / "gone")
    with open(os.fsencode(home) + b"/bad\xffname.txt", "wb") as handle:
        handle.write(b"x")
    os.utime(home / "a.txt", (1_700_000_000, 1_700_000_000))
    return home


def test_fs_list_sorts_dirs_first_then_by_code_point(listing_home: Path) -> None:
    payload = run_probe(listing_home, "fs-list", "~")
    assert payload["path"] == str(listing_home)
    items = {item["name"]: item for item in payload["items"]}
    assert [item["name"] for item in payload["items"]] == [
        "Zdir", "link_to_dir", "sub", ".hidden", "B.txt", "a.txt", "bad\\xffname.txt", "dangling", "link_to_file",
    ]
    assert items["a.txt"] == {"name": "a.txt", "is_dir": False, "size": 3, "mtime": 1_700_000_000, "is_link": False}
    assert items["link_to_dir"]["is_dir"] is True and items["link_to_dir"]["is_link"] is True
    assert items["link_to_dir"]["size"] == 0
    assert items["link_to_file"] == {**items["a.txt"], "name": "link_to_file", "is_link": True}
    assert items["dangling"]["is_dir"] is False and items["dangling"]["is_link"] is True
    assert all(isinstance(item["mtime"], int) for item in payload["items"])
    assert items["sub"]["size"] == 0


def test_fs_list_expands_tilde_and_relative_paths(listing_home: Path) -> None:
    write(listing_home / "sub" / "inner.txt")
    for path in ("~/sub", "sub", str(listing_home / "sub") + "/"):
        payload = run_probe(listing_home, "fs-list", path)
        assert payload["path"] == str(listing_home / "sub")
        assert [item["name"] for item in payload["items"]] == ["inner.txt"]
    assert run_probe(listing_home, "fs-list", "~/link_to_dir")["items"][0]["name"] == "inner.txt"


def test_fs_list_non_utf8_directory_argument(listing_home: Path) -> None:
    folder = os.fsencode(listing_home) + b"/dir\xfe"
    os.mkdir(folder)
    payload = json.loads(run_raw([REAL_PY, "-", "fs-list", folder], probe_env(listing_home)))
    assert payload == {"path": f"{listing_home}/dir\\xfe", "items": []}


@pytest.mark.parametrize("python", [REAL_PY, *old_pythons()])
def test_fs_list_names_under_the_c_locale(tmp_path: Path, python: str) -> None:
    # Python 3.6 under LC_ALL=C decodes file names as ASCII; the output must still be right.
    folder = os.fsencode(tmp_path) + b"/names"
    os.mkdir(folder)
    for name in (b"caf\xc3\xa9", b"bad\xff", b"plain"):
        open(folder + b"/" + name, "wb").close()
    env = probe_env(tmp_path, LC_ALL="C", LANG="C", PYTHONUTF8="0", PYTHONCOERCECLOCALE="0")
    payload = json.loads(run_raw([python, "-", "fs-list", folder], env))
    assert [item["name"] for item in payload["items"]] == ["bad\\xff", "caf\u00e9", "plain"]


def test_fs_list_errors(listing_home: Path) -> None:
    assert run_probe(listing_home, "fs-list", "~/missing") == {"error": {
        "kind": "not_found", "message": f"Path not found: {listing_home / 'missing'}"}}
    assert run_probe(listing_home, "fs-list", "~/a.txt") == {"error": {
        "kind": "not_a_directory", "message": f"Not a directory: {listing_home / 'a.txt'}"}}
    assert run_probe(listing_home, "fs-list", "~/a.txt/below")["error"]["kind"] == "not_found"
    assert run_probe(listing_home, "fs-list", "~/dangling")["error"]["kind"] == "not_found"


def test_fs_list_ten_thousand_entries_in_one_call(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.mkdir()
    names = {f"file_{number:05d}.dat" for number in range(10_000)}
    for name in names:
        (big / name).touch()
    started = time.monotonic()
    payload = run_probe(tmp_path, "fs-list", str(big))
    elapsed = time.monotonic() - started
    assert {item["name"] for item in payload["items"]} == names
    assert [item["name"] for item in payload["items"]] == sorted(names)
    print(f"fs-list of 10,000 entries: {elapsed:.2f} s")
    assert elapsed < 10


def test_fs_exists(listing_home: Path) -> None:
    assert run_probe(listing_home, "fs-exists", "~") == {"path": "~", "exists": True, "is_dir": True}
    assert run_probe(listing_home, "fs-exists", "~/a.txt") == {"path": "~/a.txt", "exists": True, "is_dir": False}
    assert run_probe(listing_home, "fs-exists", "~/link_to_dir") == {
        "path": "~/link_to_dir", "exists": True, "is_dir": True}
    assert run_probe(listing_home, "fs-exists", "/no/such") == {"path": "/no/such", "exists": False, "is_dir": False}
    assert run_probe(listing_home, "fs-exists", "") == {"path": "", "exists": False, "is_dir": False}


def test_shell_metacharacters_are_just_names(listing_home: Path) -> None:
    for name in SHELL_NAMES:
        assert run_probe(listing_home, "fs-exists", name)["exists"] is False
        assert run_probe(listing_home, "fs-list", name)["error"]["kind"] == "not_found"
        assert run_probe(listing_home, "storage-candidates", name, "2")["error"]["kind"] == "not_found"
        (listing_home / name).mkdir()
        payload = run_probe(listing_home, "fs-list", name)
        assert payload == {"path": str(listing_home / name), "items": []}
        assert run_probe(listing_home, "fs-exists", name) == {"path": name, "exists": True, "is_dir": True}
        # Quoted for a remote shell the way the ssh layer does it.
        command = shlex.join([REAL_PY, "-", "fs-exists", name])
        answer = run_raw(["sh", "-c", command], probe_env(listing_home), cwd=listing_home, program=program_for("fs-exists"))
        assert json.loads(answer)["exists"]
    assert not (listing_home / "X").exists()


# --- permissions ---------------------------------------------------------------------------------


def nobody_python(runuser: str) -> str | None:
    """Return a python3 the ``nobody`` user can start, or None."""
    for candidate in (shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin"), REAL_PY):
        if candidate and subprocess.run(
            [runuser, "-u", "nobody", "--", candidate, "-c", ""], capture_output=True
        ).returncode == 0:
            return candidate
    return None


@pytest.fixture
def locked_tree() -> Any:
    """Yield a world-traversable folder holding a mode-000 folder (removed afterwards)."""
    base = Path(tempfile.mkdtemp(prefix="rvssh-probe-"))
    base.chmod(0o755)
    (base / "locked" / "inner").mkdir(parents=True)
    (base / "locked").chmod(0)
    yield base
    (base / "locked").chmod(stat.S_IRWXU)
    shutil.rmtree(base)


def test_permission_denied(locked_tree: Path) -> None:
    locked = locked_tree / "locked"
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        python = nobody_python(runuser) if runuser else None
        if not runuser or not python:
            pytest.skip("root (permission checks do not apply) without runuser or a python nobody can start")
        # runuser resets $HOME to nobody's own; set it back with env(1).
        prefix = [runuser, "-u", "nobody", "--", "/usr/bin/env", f"HOME={locked_tree}", python]
    else:
        prefix = [REAL_PY]
    env = {"HOME": str(locked_tree), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}

    def run(*args: str) -> dict[str, Any]:
        return json.loads(run_raw([*prefix, "-", *args], env))

    assert run("fs-list", str(locked)) == {"error": {"kind": "permission_denied",
                                                     "message": f"Permission denied: {locked}"}}
    inner = locked / "inner"
    assert run("fs-list", str(inner)) == {"error": {"kind": "permission_denied",
                                                    "message": f"Permission denied: {inner}"}}
    assert run("storage-candidates", str(locked), "2")["error"]["kind"] == "permission_denied"
    assert run("fs-exists", str(inner)) == {"path": str(inner), "exists": False, "is_dir": False}
    assert run("fs-list", "~")["items"] == [
        {"name": "locked", "is_dir": True, "size": 0, "mtime": int(locked.stat().st_mtime), "is_link": False},
    ]
