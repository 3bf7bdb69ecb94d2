"""Look at a server before a Runicorn viewer starts: environments, config, storage roots.

rvssh sends common.py followed by this file on stdin and runs them on the
server as ``python3 - <subcommand> [args...]``; common.py's docstring says
how every run answers (one JSON object), how paths and non-UTF-8 text work.
An env name printed with ``\\xNN`` escapes matches as printed.

Subcommands and what they print on success:

    envs
        {"ok": true, "envs": [{"name", "type", "python_version", "path",
         "is_default", "runicorn_version"}, ...]}
    env-configs <interpreter>    ("" or the absolute path of one more interpreter)
        {"ok": true, "configs": {"<name>": {"pythonVersion", "runicornVersion"}}}
    config <env_name>            ("" means system; an absolute path names an interpreter)
        {"ok": true, "condaEnv", "pythonVersion", "runicornVersion",
         "pythonPath", "defaultStorageRoot", "storageRootExists",
         "suggestedRemotePort", "spareRemotePorts", "homeDirectory"}
    python-of <env_name>         (as for config)
        {"ok": true, "python"}
    storage-candidates <scan_root> <max_depth>   ("" means home; depth 1..8)
        {"scan_root", "max_depth", "truncated", "candidates": [{"path",
         "run_count", "has_archive", "has_index", "score"}, ...]}

Versions: ``envs`` and ``env-configs`` read them from disk where that answers
(a runicorn dist-info in the site-packages of the env's own python counts as
installed); ``config`` also imports runicorn in that env and answers
``runicornVersion: null`` when the import fails.

To add a subcommand, write a ``cmd_*`` function that returns a dict (or
raises ProbeError) and list it in COMMANDS with its argument names.
"""

import os
import sys
import time

if False:  # PERF: for type checkers only; importing typing is 3.6 ms of a run
    from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple  # noqa: F401

# Longest a foreign interpreter may take to report its version and sys.path.
INTERPRETER_TIMEOUT_S = 5.0
INTERPRETER_WORKERS = 8

# Conda installations looked for whether or not `conda` is on the PATH.
HOME_CONDA_ROOTS = (
    "miniconda3", "anaconda3", "miniforge3", "mambaforge", "miniconda",
    "anaconda", "micromamba", "opt/miniconda3", "opt/anaconda3",
)
SYSTEM_CONDA_ROOTS = (
    "/opt/conda", "/opt/miniconda3", "/opt/anaconda3", "/opt/miniforge3",
    "/opt/mambaforge", "/usr/local/miniconda3", "/usr/local/anaconda3",
    "/usr/local/conda", "/usr/share/miniconda",
)
# Folders under $HOME whose subfolders are virtualenvs (pipenv keeps its own).
VENV_PARENTS = (".virtualenvs", "venvs", ".venvs", "envs", ".local/share/virtualenvs")
# Single virtualenvs directly in $HOME.
HOME_VENVS = ("venv", ".venv")

# Storage-candidate scan (compatible with runicorn 0.7.2's own scan).
COMMON_STORAGE_NAMES = frozenset((".runicorn", "runicorn_data"))
SCAN_PRUNE = frozenset((
    "node_modules", "__pycache__", "site-packages", "dist-packages",
    "miniconda3", "anaconda3", "miniforge3", "mambaforge", "miniconda",
    "anaconda", "micromamba", "venv", "env",
))
STORAGE_PARTS = ("runs", "archive", "index")
MAX_RUN_DEPTH = 4
MAX_RUN_COUNT = 200
MAX_CANDIDATES = 12
# Extra free ports a config answer carries (rvssh keeps answers; see distinct_free_ports).
SPARE_PORTS = 4
SCAN_BUDGET_S = 15.0

# Printed by a foreign interpreter (Python 2.7 included): version and sys.path.
_CHILD_PROBE = (
    "import json, sys; print(json.dumps({'version': list(sys.version_info[:3]),"
    " 'path': [p for p in sys.path if p]}))"
)
# Imports runicorn in an env (Python 2.7 included); the last line tells how it went.
_IMPORT_MARK = "rvssh-runicorn-import:"
_RUNICORN_IMPORT = (
    "try:\n"
    "    import runicorn\n"
    "except BaseException:\n"
    "    print('%s failed')\n"
    "else:\n"
    "    print('%s ok ' + str(getattr(runicorn, '__version__', '')))\n"
) % (_IMPORT_MARK, _IMPORT_MARK)
# Importing runicorn loads its web stack: allow more than a bare start.
IMPORT_TIMEOUT_S = 15.0
# \\xNN as written by to_text for an undecodable byte (always >= 0x80).


class Env(object):
    """One Python environment found on this server."""

    __slots__ = ("name", "kind", "prefix", "python", "python_version",
                 "runicorn_version", "is_default", "site_dirs")

    def __init__(self, name: str, kind: str, prefix: "Optional[str]", python: str) -> None:
        self.name = name
        self.kind = kind  # "conda", "venv" or "system"
        self.prefix = prefix  # None for the system python
        self.python = python
        self.python_version = "Unknown"
        self.runicorn_version: Optional[str] = None
        self.is_default = False
        self.site_dirs: List[str] = []  # where its packages are, once described

    def to_json(self) -> "Dict[str, Any]":
        """Return the conda-envs entry of this environment."""
        return {
            "name": self.name,
            "type": self.kind,
            "python_version": self.python_version,
            "path": self.python,
            "is_default": self.is_default,
            "runicorn_version": self.runicorn_version,
        }


# --- text and paths ----------------------------------------------------------


def is_runnable(path: str) -> bool:
    """Tell whether ``path`` is an executable file (following symlinks)."""
    return os.path.isfile(path) and os.access(path, os.X_OK)


def list_dir(path: str) -> "List[str]":
    """Return the sorted names in ``path``, or [] when it cannot be read."""
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def read_text(path: str) -> "Optional[str]":
    """Return the text of a small file, or None when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return handle.read(1 << 20).decode("utf-8", "replace")
    except OSError:
        return None


# --- environment discovery -----------------------------------------------------


def env_kind(prefix: str) -> "Optional[str]":
    """Return "conda" or "venv" for an environment folder, None for anything else."""
    if os.path.isdir(os.path.join(prefix, "conda-meta")):
        return "conda"
    if os.path.isfile(os.path.join(prefix, "pyvenv.cfg")) or os.path.isfile(
        os.path.join(prefix, "bin", "activate")
    ):
        return "venv"
    return None


def env_python(prefix: str) -> str:
    """Return the interpreter of an environment (bin/python, else bin/python3)."""
    for name in ("python", "python3"):
        candidate = os.path.join(prefix, "bin", name)
        if os.path.lexists(candidate):
            return candidate
    return os.path.join(prefix, "bin", "python")


def conda_root_of(path: str) -> str:
    """Return the installation root of ``<root>/bin/conda`` or ``<root>/condabin/conda``."""
    return os.path.dirname(os.path.dirname(os.path.realpath(path)))


def find_on_path(name: str) -> "Optional[str]":
    """Return the first executable ``name`` on $PATH."""
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if not folder:
            continue
        candidate = os.path.join(folder, name)
        if is_runnable(candidate):
            return candidate
    return None


def environments_txt(home: str) -> "List[str]":
    """Return the env folders conda recorded in ~/.conda/environments.txt."""
    text = read_text(os.path.join(home, ".conda", "environments.txt")) or ""
    return [line.strip() for line in text.splitlines() if line.strip().startswith("/")]


def is_conda_install(prefix: str) -> bool:
    """Tell whether ``prefix`` is a conda installation root, not just an env."""
    return os.path.isdir(os.path.join(prefix, "envs")) or any(
        os.path.lexists(os.path.join(prefix, *parts))
        for parts in (("condabin", "conda"), ("bin", "conda"), ("bin", "mamba"))
    )


def conda_roots(home: str, recorded: "List[str]") -> "List[str]":
    """Return conda installation roots, the one in use first, without running conda.

    Looks at $CONDA_EXE, ``conda`` on $PATH, $CONDA_PREFIX, $MAMBA_ROOT_PREFIX,
    the usual install folders and the roots of the ``recorded`` env folders.
    """
    roots: List[str] = []
    conda_exe = os.environ.get("CONDA_EXE") or find_on_path("conda")
    if conda_exe:
        roots.append(conda_root_of(conda_exe))
    for prefix in [os.environ.get("CONDA_PREFIX", "")] + recorded:
        parent = os.path.dirname(os.path.normpath(prefix)) if prefix else ""
        if os.path.basename(parent) == "envs":
            roots.append(os.path.dirname(parent))
        elif prefix and is_conda_install(prefix):
            roots.append(prefix)
    roots.extend(os.environ[name] for name in ("MAMBA_ROOT_PREFIX", "CONDA_ROOT") if os.environ.get(name))
    roots.extend(os.path.join(home, name) for name in HOME_CONDA_ROOTS)
    roots.extend(SYSTEM_CONDA_ROOTS)
    unique: List[str] = []
    seen: Set[str] = set()
    for root in roots:
        key = os.path.realpath(root)
        if key not in seen and (os.path.isdir(os.path.join(root, "conda-meta"))
                                or os.path.isdir(os.path.join(root, "envs"))):
            seen.add(key)
            unique.append(os.path.normpath(root))
    return unique


def claim_name(name: str, folder: str, taken: "Set[str]") -> str:
    """Return a name not in ``taken`` (prefixed with its folder on a clash) and take it."""
    candidates = [name, "%s/%s" % (folder, name)]
    number = 2
    while candidates[-1] in taken:
        candidates.append("%s/%s-%d" % (folder, name, number))
        number += 1
    chosen = next(candidate for candidate in candidates if candidate not in taken)
    taken.add(chosen)
    return chosen


def discover_envs() -> "List[Env]":
    """Return every environment on this server, named uniquely, without versions.

    Order: for each conda root its base and ``envs/*``, then ``~/.conda/envs/*``
    and other environments.txt entries, then virtualenvs, and last ``system``:
    the python3 (else python) of the login PATH, whatever it is (a venv, a
    module, a conda base), absent when the PATH has none. Exactly one env has
    ``is_default`` set: the active env ($CONDA_PREFIX, else $VIRTUAL_ENV)
    when it is listed, else ``system``, else the first one.
    """
    home = home_dir()
    taken = {"system"}
    by_prefix: Dict[str, Env] = {}
    envs: List[Env] = []

    def add(prefix: str, kind: "Optional[str]", name: str, folder: str) -> None:
        key = os.path.realpath(prefix)
        if kind and key not in by_prefix:
            by_prefix[key] = Env(claim_name(name, folder, taken), kind, prefix, env_python(prefix))
            envs.append(by_prefix[key])

    def add_children(parent: str, folder: str, only_conda: bool) -> None:
        for name in list_dir(parent):
            prefix = os.path.join(parent, name)
            kind = env_kind(prefix)
            add(prefix, None if only_conda and kind != "conda" else kind, name, folder)

    recorded = environments_txt(home)
    for root in conda_roots(home, recorded):
        folder = os.path.basename(root)
        if os.path.isdir(os.path.join(root, "conda-meta")):
            add(root, "conda", "base" if "base" not in taken else folder, folder)
        add_children(os.path.join(root, "envs"), folder, only_conda=True)
    add_children(os.path.join(home, ".conda", "envs"), ".conda", only_conda=True)
    for prefix in recorded:
        add(prefix, env_kind(prefix), os.path.basename(prefix), os.path.basename(os.path.dirname(prefix)))
    for parent in VENV_PARENTS:
        add_children(os.path.join(home, parent), parent, only_conda=False)
    for name in HOME_VENVS:
        add(os.path.join(home, name), env_kind(os.path.join(home, name)), name, "~")

    system_python = login_python()
    system = Env("system", "system", None, system_python) if system_python else None
    if system is not None:
        envs.append(system)

    active = os.environ.get("CONDA_PREFIX") or os.environ.get("VIRTUAL_ENV")
    default = (by_prefix.get(os.path.realpath(active)) if active else None) or system
    if default is not None:
        default.is_default = True
    elif envs:
        envs[0].is_default = True
    return envs


def login_python() -> "Optional[str]":
    """Return what ``python3`` (else ``python``) is on the login PATH: what ``ssh host python3`` runs."""
    return find_on_path("python3") or find_on_path("python")


def interpreter_env(path: str) -> Env:
    """Return the environment of an interpreter named by its absolute path."""
    if not is_runnable(path):
        raise ProbeError("env_not_found", "Interpreter not found or not executable: %s" % path)
    prefix = os.path.dirname(os.path.dirname(path))
    kind = env_kind(prefix)
    return Env(path, kind or "system", prefix if kind else None, path)


def find_env(name: str) -> Env:
    """Return the env called ``name`` ("" means system; an absolute path names an interpreter).

    Raises env_not_found for a name that is not there.
    """
    if name.startswith("/"):
        return interpreter_env(locate_user_path(name))
    wanted = name or "system"
    if wanted == "system":
        python = login_python()
        if python is None:
            raise ProbeError("env_not_found", "No python3 or python on the PATH of the login shell: "
                             "pick an environment, or name an interpreter by its path")
        return Env("system", "system", None, python)
    for env in discover_envs():
        if wanted in (env.name, to_text(env.name)):
            return env
    raise ProbeError(
        "env_not_found", "Environment '%s' not found. Please check the environment name." % name
    )


# --- versions ------------------------------------------------------------------


# PERF: versions and names are parsed with str methods below, where regexes
# would import re (and enum): 6 ms of a 20 ms run. "Digits" are \d's (isdecimal).


def leading_digits(text: str) -> str:
    """Return the decimal digits ``text`` starts with ("" when none)."""
    end = 0
    while end < len(text) and text[end].isdecimal():
        end += 1
    return text[:end]


def leading_version(text: str, fewest: int = 1) -> "Optional[str]":
    """Return the dotted number ``text`` starts with, three parts at most ("3.11.2+" -> "3.11.2").

    None when it has fewer than ``fewest`` parts.
    """
    parts = []  # type: List[str]
    rest = text
    while len(parts) < 3:
        digits = leading_digits(rest)
        if not digits:
            break
        parts.append(digits)
        rest = rest[len(digits):]
        if not (rest.startswith(".") and leading_digits(rest[1:])):
            break
        rest = rest[1:]
    return ".".join(parts) if parts and len(parts) >= fewest else None


def format_version(parts: "Sequence[Any]") -> str:
    """Return "Python X.Y.Z" for a version tuple or a dotted string."""
    if isinstance(parts, str):
        parts = parts.split(".")
    return "Python " + ".".join(str(part) for part in parts[:3])


def major_minor(version: str) -> "Optional[str]":
    """Return "X.Y" of "Python X.Y.Z", or None when the version is unknown."""
    numbers = leading_version(version[len("Python "):], 2) if version.startswith("Python ") else None
    return ".".join(numbers.split(".")[:2]) if numbers else None


def runicorn_dist_version(name: str) -> "Optional[str]":
    """Return the version in a runicorn distribution folder's name, else None.

    runicorn-0.7.2.dist-info and runicorn-0.7.2-py3.11.egg-info (any case)
    give 0.7.2; runicorn_extras-1.0.dist-info is not runicorn.
    """
    if name[:9].lower() != "runicorn-":
        return None
    if name[-10:].lower() == ".dist-info":
        middle = name[9:-10]
    elif name[-9:].lower() == ".egg-info":
        middle = name[9:-9]
    else:
        return None
    version, hyphen, tag = middle.partition("-")
    if not version[:1].isdecimal():
        return None
    if hyphen and not (tag[:2].lower() == "py" and tag[2:]
                       and all(char == "." or char.isdecimal() for char in tag[2:])):
        return None
    return version


def metadata_version(metadata: str) -> "Optional[str]":
    """Return the value of the first ``Version:`` line of a METADATA or PKG-INFO text."""
    start = 0
    while True:
        if metadata.startswith("Version:", start):
            words = metadata[start + len("Version:"):].split(None, 1)
            if words:
                return words[0]
        newline = metadata.find("\n", start)
        if newline < 0:
            return None
        start = newline + 1


def conda_meta_python_version(name: str) -> "Optional[str]":
    """Return X.Y[.Z] of a ``conda-meta/python-X.Y.Z-<build>.json`` file name, else None."""
    if not (name.startswith("python-") and name.endswith(".json")):
        return None
    pieces = name[len("python-"):].split("-")
    return leading_version(pieces[0], 2) if len(pieces) == 2 else None


def runicorn_version_in(site_dirs: "Sequence[str]") -> "Optional[str]":
    """Return the runicorn version installed in the first of ``site_dirs`` that has it.

    Reads ``runicorn-*.dist-info/METADATA`` (or ``*.egg-info/PKG-INFO``),
    falling back to the version in the folder name; never imports runicorn.
    """
    for site_dir in site_dirs:
        for name in list_dir(site_dir):
            version = runicorn_dist_version(name)
            if version is None:
                continue
            folder = os.path.join(site_dir, name)
            metadata = read_text(os.path.join(folder, "METADATA")) or read_text(
                os.path.join(folder, "PKG-INFO")) or ""
            return metadata_version(metadata) or version
    return None


def lib_site_dirs(prefix: str, version: str) -> "List[str]":
    """Return ``<prefix>/lib/pythonX.Y[t]/site-packages`` of ``version`` only.

    The folders of other pythons are ignored: packages pip left there when
    the env's python was upgraded do not import any more.
    """
    short = major_minor(version)
    if not short:
        return []
    return [os.path.join(prefix, "lib", "python" + short + suffix, "site-packages") for suffix in ("", "t")]


def user_site_dir(version: str) -> "List[str]":
    """Return the user site-packages of a version, as a list (empty when disabled)."""
    short = major_minor(version)
    if not short or os.environ.get("PYTHONNOUSERSITE"):
        return []
    return [os.path.join(home_dir(), ".local", "lib", "python" + short, "site-packages")]


def parse_pyvenv_cfg(prefix: str) -> "Dict[str, str]":
    """Return the key/value pairs of ``<prefix>/pyvenv.cfg`` (lower-case keys)."""
    values = {}
    for line in (read_text(os.path.join(prefix, "pyvenv.cfg")) or "").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip().lower()] = value.strip()
    return values


def conda_python_version(prefix: str) -> "Optional[str]":
    """Return the python version recorded in ``conda-meta/python-X.Y.Z-*.json``."""
    for name in list_dir(os.path.join(prefix, "conda-meta")):
        version = conda_meta_python_version(name)
        if version:
            return format_version(version)
    return None


def is_running_interpreter(python: str) -> bool:
    """Tell whether ``python`` is the interpreter running this script.

    The same path is (a venv's bin/python3 included); the same file is only
    outside a venv, since a venv's python is a link to its base's file.
    """
    if os.path.abspath(python) == os.path.abspath(sys.executable):
        return True
    if os.path.isfile(os.path.join(os.path.dirname(os.path.dirname(python)), "pyvenv.cfg")):
        return False  # a venv's python links to its base's file but sees other packages
    base_prefix = getattr(sys, "base_prefix", sys.prefix)
    return sys.prefix == base_prefix and os.path.realpath(python) == os.path.realpath(sys.executable)


def describe_from_disk(env: Env) -> bool:
    """Fill in the versions of ``env`` from files on disk; tell whether that sufficed."""
    if env.kind == "system":
        if not is_running_interpreter(env.python):
            return False
        env.python_version = format_version(sys.version_info)
        env.site_dirs = [p for p in sys.path if p]
        env.runicorn_version = runicorn_version_in(env.site_dirs)
        return True
    if env.kind == "conda":
        version = conda_python_version(env.prefix)
        if not version:
            return False
        site_dirs = lib_site_dirs(env.prefix, version) + user_site_dir(version)
    else:
        config = parse_pyvenv_cfg(env.prefix)
        numbers = leading_version(config.get("version") or config.get("version_info") or "")
        if not numbers or config.get("include-system-site-packages", "").lower() == "true":
            return False
        version = format_version(numbers)
        site_dirs = lib_site_dirs(env.prefix, version)
    env.python_version = version
    env.site_dirs = site_dirs
    env.runicorn_version = runicorn_version_in(site_dirs)
    return True


def run_interpreter(argv: "List[str]", timeout: float = INTERPRETER_TIMEOUT_S) -> "Optional[bytes]":
    """Return the stdout of ``argv`` if it exits 0 within ``timeout`` seconds, else None.

    The child gets its own session so that a timeout kills everything it
    started (a grandchild holding stdout open would otherwise hang us).
    """
    import signal
    import subprocess
    try:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, cwd="/", start_new_session=True,
        )
    except OSError:
        return None
    try:
        stdout, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except OSError:
            pass
        process.wait()
        process.stdout.close()
        return None
    return stdout if process.returncode == 0 else None


def describe_by_running(env: Env) -> None:
    """Fill in the versions of ``env`` by asking its interpreter; "Unknown" if it fails."""
    import json  # PERF: imported where needed (with re, 9 ms of a run)
    stdout = run_interpreter([env.python, "-c", _CHILD_PROBE])
    try:
        lines = (stdout or b"").decode("utf-8", "surrogateescape").strip().splitlines()
        report = json.loads(lines[-1])
        version = format_version(report["version"])
        site_dirs = [p for p in report["path"] if isinstance(p, str)]
    except (ValueError, TypeError, KeyError, IndexError):
        return
    env.python_version = version
    env.site_dirs = site_dirs
    env.runicorn_version = runicorn_version_in(site_dirs)


def describe_envs(envs: "List[Env]") -> None:
    """Fill in the versions of ``envs``, running interpreters (in parallel) only if needed."""
    pending = [env for env in envs if is_runnable(env.python) and not describe_from_disk(env)]
    if not pending:
        return
    # PERF: plain threads, imported only when needed (4 ms); concurrent.futures
    # would also import logging (7 ms of a 25 ms probe).
    import threading
    queue = iter(pending)  # shared: each worker takes the next env as soon as it is free

    def work() -> None:
        for env in queue:
            describe_by_running(env)

    threads = [threading.Thread(target=work) for _ in range(min(INTERPRETER_WORKERS, len(pending)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


# --- storage root ----------------------------------------------------------------


def runicorn_config_dir() -> str:
    """Return runicorn's per-user config folder (runicorn.config.paths._config_root_dir)."""
    if sys.platform == "darwin":
        return os.path.join(home_dir(), "Library", "Application Support", "Runicorn")
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(home_dir(), ".config")
    return os.path.join(base, "runicorn")


def runicorn_user_root_dir() -> "Optional[str]":
    """Return ``user_root_dir`` from runicorn's config.json, as runicorn resolves it."""
    import json
    text = read_text(os.path.join(runicorn_config_dir(), "config.json"))
    try:
        value = json.loads(text).get("user_root_dir") if text else None
    except (ValueError, AttributeError):
        return None
    if not value or not isinstance(value, str):
        return None
    return os.path.realpath(os.path.join(home_dir(), os.path.expanduser(value)))


def default_storage_root(runicorn_installed: bool) -> str:
    """Return the storage root a viewer would use by default, always absolute.

    $RUNICORN_DIR first, then (when runicorn is installed) runicorn's own user
    config, else ``~/runicorn_data``.
    """
    from_env = os.environ.get("RUNICORN_DIR")
    if from_env:
        return os.path.realpath(os.path.join(home_dir(), os.path.expanduser(from_env)))
    configured = runicorn_user_root_dir() if runicorn_installed else None
    return configured or os.path.join(home_dir(), "runicorn_data")


# --- storage candidates --------------------------------------------------------------


def depth_below(path: str, top: str) -> int:
    """Return how many levels ``path`` (found by os.walk of ``top``) lies below ``top``."""
    return 0 if path == top else os.path.relpath(path, top).count(os.sep) + 1


def count_runs(runs_dir: str) -> int:
    """Return how many run folders (with meta.json or status.json) ``runs_dir`` holds.

    Run folders may be nested up to MAX_RUN_DEPTH levels (``runs/<project path>/<id>``);
    counting stops at MAX_RUN_COUNT.
    """
    count = 0
    for current, dirs, files in os.walk(runs_dir):
        level = depth_below(current, runs_dir)
        if level and ("meta.json" in files or "status.json" in files):
            count += 1
            dirs[:] = []
            if count >= MAX_RUN_COUNT:
                break
        elif level >= MAX_RUN_DEPTH:
            dirs[:] = []
    return count


def storage_candidate(path: str, dirs: "List[str]") -> "Optional[Dict[str, Any]]":
    """Return the candidate entry of folder ``path`` (subfolders ``dirs``), or None."""
    run_count = count_runs(os.path.join(path, "runs")) if "runs" in dirs else 0
    has_archive = "archive" in dirs
    has_index = "index" in dirs
    common_name = os.path.basename(path) in COMMON_STORAGE_NAMES
    if not (run_count or has_archive or has_index or common_name):
        return None
    # Runs outweigh everything else; then archive, index, the usual name.
    score = 100 * run_count + 40 * has_archive + 20 * has_index + 10 * common_name
    return {"path": path, "run_count": run_count, "has_archive": has_archive,
            "has_index": has_index, "score": score}


def is_scannable(name: str) -> bool:
    """Tell whether the storage scan descends into a subfolder called ``name``."""
    if name in COMMON_STORAGE_NAMES:
        return True
    return not name.startswith(".") and name not in SCAN_PRUNE


# --- subcommands ---------------------------------------------------------------------


def cmd_envs() -> "Dict[str, Any]":
    """List every Python environment with its python and runicorn versions."""
    envs = discover_envs()
    describe_envs(envs)
    return {"ok": True, "envs": [env.to_json() for env in envs]}


def cmd_env_configs(interpreter: str) -> "Dict[str, Any]":
    """Map every environment name (and ``interpreter``, a path, when given) to its versions."""
    envs = discover_envs()
    if interpreter:
        envs.append(find_env(interpreter))
    describe_envs(envs)
    configs = {}
    for env in envs:
        configs[env.name] = {"pythonVersion": env.python_version, "runicornVersion": env.runicorn_version}
    return {"ok": True, "configs": configs}


def interpreter_starts(python: str) -> bool:
    """Tell whether ``python`` starts and exits cleanly within the timeout."""
    return run_interpreter([python, "-c", "pass"]) is not None


def runicorn_imports(python: str) -> "Tuple[Optional[bool], str]":
    """Import runicorn with ``python``: (True, version) / (False, "") / (None, "") if it did not run."""
    stdout = run_interpreter([python, "-c", _RUNICORN_IMPORT], timeout=IMPORT_TIMEOUT_S)
    lines = [line for line in (stdout or b"").decode("utf-8", "replace").splitlines()
             if line.startswith(_IMPORT_MARK)]
    if not lines:
        return None, ""
    words = lines[-1][len(_IMPORT_MARK):].split()
    return words[:1] == ["ok"], (words[1] if len(words) > 1 else "")


def import_signature(env: Env) -> "List[Any]":
    """Return what a successful import of runicorn in ``env`` depends on: the interpreter and its package folders.

    pip adds or removes a folder in site-packages for every package it
    installs, upgrades or removes, which changes the folder's mtime.
    """
    signature: List[Any] = []
    for path in [os.path.realpath(env.python)] + sorted(set(env.site_dirs)):
        try:
            signature.append([path, os.stat(path).st_mtime_ns])
        except OSError:
            signature.append([path, None])
    return signature


def import_memo_path(python: str) -> str:
    """Return where a successful import of runicorn by ``python`` is remembered."""
    import hashlib
    name = hashlib.sha1(python.encode("utf-8", "surrogateescape")).hexdigest()
    return rvssh_cache("imports", name + ".json")


def remembered_import(python: str, signature: "List[Any]") -> "Optional[str]":
    """Return the runicorn version ``python`` imported before, if nothing it depends on changed since."""
    import json
    try:
        memo = json.loads(read_text(import_memo_path(python)) or "null")
    except ValueError:
        return None
    if isinstance(memo, dict) and memo.get("signature") == signature and isinstance(memo.get("version"), str):
        return memo["version"]
    return None


def remember_import(python: str, signature: "List[Any]", version: str) -> None:
    """Remember that ``python`` imported runicorn ``version`` (a private file; failures are ignored)."""
    import json
    path = import_memo_path(python)
    temp = "%s.%d.tmp" % (path, os.getpid())
    try:
        make_private_dirs(os.path.dirname(path))
        descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump({"python": to_text(python), "signature": sanitize(signature), "version": version}, handle)
        os.replace(temp, path)
    except OSError:
        try:
            os.unlink(temp)
        except OSError:
            pass


def cmd_config(env_name: str) -> "Dict[str, Any]":
    """Describe one environment for a viewer start: versions, storage root, a free port.

    Versions are read as for ``envs``; the interpreter is also started once,
    to prove it works: it imports runicorn when the disk says runicorn is
    there, and runicornVersion is null if that import fails (installed
    without its dependencies, say). A successful import is remembered in
    ~/.cache/rvssh/imports and not repeated while the interpreter and its
    package folders stay unchanged (importing runicorn takes about 0.1 s).
    """
    env = find_env(env_name)
    describe_envs([env])
    started = False
    if env.python_version != "Unknown" and env.runicorn_version is not None:
        signature = import_signature(env)
        remembered = remembered_import(env.python, signature)
        if remembered is not None:
            imported, version = True, remembered
        else:
            imported, version = runicorn_imports(env.python)
            if imported:
                remember_import(env.python, signature, version)
        started = imported is not None
        # Failed, crashed or hung while importing: not usable for a viewer.
        env.runicorn_version = (version or env.runicorn_version) if imported else None
    if env.python_version == "Unknown" or not (started or interpreter_starts(env.python)):
        raise ProbeError("internal", "Failed to run Python in environment: %s" % (env_name or "system"))
    root = default_storage_root(env.runicorn_version is not None)
    suggested, *spares = distinct_free_ports(1 + SPARE_PORTS)
    return {
        "ok": True,
        "condaEnv": env_name,
        "pythonVersion": env.python_version,
        "runicornVersion": env.runicorn_version,
        "pythonPath": env.python,
        "defaultStorageRoot": root,
        "storageRootExists": os.path.isdir(root),
        "suggestedRemotePort": suggested,
        "spareRemotePorts": spares,
        "homeDirectory": home_dir(),
    }


def distinct_free_ports(count: int) -> "List[int]":
    """Return up to ``count`` different free ports, at least one.

    The first is suggested; the rest are spares a kept config suggests when
    a viewer took the first.
    """
    ports: List[int] = []
    for _ in range(count * 2):
        port = free_local_port()
        if port not in ports:
            ports.append(port)
        if len(ports) == count:
            break
    return ports


def cmd_python_of(env_name: str) -> "Dict[str, Any]":
    """Name the interpreter of one environment (to launch a viewer with), without running it."""
    env = find_env(env_name)
    if not is_runnable(env.python):
        raise ProbeError("internal", "Failed to run Python in environment: %s" % (env_name or "system"))
    return {"ok": True, "python": env.python}


def cmd_storage_candidates(scan_root: str, max_depth: str) -> "Dict[str, Any]":
    """Find likely Runicorn storage roots under ``scan_root``, best first."""
    try:
        depth = max(1, min(int(max_depth), 8))
    except ValueError:
        raise ProbeError("bad_request", "max_depth must be an integer: %s" % max_depth)
    root = locate_user_path(scan_root)
    if not os.path.exists(root):
        raise ProbeError("not_found", "Scan root does not exist: %s" % root)
    if not os.path.isdir(root):
        raise ProbeError("not_a_directory", "Scan root is not a directory: %s" % root)
    if not os.access(root, os.R_OK | os.X_OK):
        raise ProbeError("permission_denied", "Permission denied: %s" % root)
    deadline = time.monotonic() + SCAN_BUDGET_S
    truncated = False
    candidates = []
    for current, dirs, files in os.walk(root):
        if "pyvenv.cfg" in files or "conda-meta" in dirs:
            dirs[:] = []  # a Python environment, not a storage root
            continue
        candidate = storage_candidate(current, dirs)
        if candidate:
            candidates.append(candidate)
        keep = [] if depth_below(current, root) >= depth else [d for d in dirs if is_scannable(d)]
        dirs[:] = [d for d in keep if not (candidate and d in STORAGE_PARTS)]
        if time.monotonic() > deadline:
            truncated = True
            break
    candidates.sort(key=lambda item: (-item["score"], item["path"]))
    return {"scan_root": root, "max_depth": depth, "truncated": truncated,
            "candidates": candidates[:MAX_CANDIDATES]}


# Subcommand -> (function, names of its positional arguments).
COMMANDS: "Dict[str, Tuple[Callable[..., Dict[str, Any]], Tuple[str, ...]]]" = {
    "envs": (cmd_envs, ()),
    "env-configs": (cmd_env_configs, ("interpreter",)),
    "config": (cmd_config, ("env_name",)),
    "python-of": (cmd_python_of, ("env_name",)),
    "storage-candidates": (cmd_storage_candidates, ("scan_root", "max_depth")),
}


if __name__ == "__main__":
    sys.exit(main(COMMANDS, sys.argv[1:]))
