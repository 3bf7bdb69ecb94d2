"""The probe's version and name parsing, which uses str methods to spare the import of re.

The regexes it replaced are the oracle: every name below gets the same answer.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

from rvssh.remote.probe import load_program

CONDA_PYTHON_META = re.compile(r"^python-(\d+\.\d+(?:\.\d+)?)[^-]*-[^-]*\.json$")
VERSION_PREFIX = re.compile(r"^(\d+(?:\.\d+){0,2})")
RUNICORN_DIST = re.compile(r"^runicorn-(\d[^-]*?)(?:-py[\d.]+)?\.(?:dist-info|egg-info)$", re.IGNORECASE)
PYTHON_MAJOR_MINOR = re.compile(r"^Python (\d+\.\d+)")
METADATA_VERSION = re.compile(r"^Version:\s*(\S+)", re.MULTILINE)

VERSIONS = ["", "3", "3.", "3.11", "3.11.", "3.11.2", "3.11.2.1", "3.11.2+", "3.11rc1", "3.x", "x3", ".3",
            "10.0.0a1", "٣.١١", "0.7.2.dev0", "1..2", "3.11.2-1"]


def probe_functions() -> dict[str, Any]:
    """Return the probe program's functions (common.py then probe.py), as the server defines them."""
    namespace: dict[str, Any] = {"__name__": "probe"}
    exec(compile(load_program("probe.py"), "probe.py", "exec"), namespace)
    return namespace


PROBE = probe_functions()


def group(pattern: re.Pattern[str], text: str) -> str | None:
    match = pattern.match(text)
    return match.group(1) if match else None


def agree(ours: Callable[[str], Any], oracle: Callable[[str], Any], texts: list[str]) -> None:
    for text in texts:
        assert ours(text) == oracle(text), text


def test_leading_version_is_the_version_prefix() -> None:
    agree(PROBE["leading_version"], lambda text: group(VERSION_PREFIX, text), VERSIONS)


def test_major_minor_of_a_python_version() -> None:
    texts = [prefix + version for prefix in ("Python ", "python ", "Python", "") for version in VERSIONS]
    agree(PROBE["major_minor"], lambda text: group(PYTHON_MAJOR_MINOR, text), texts)


def test_conda_meta_python_version() -> None:
    texts = [f"{head}{version}{build}{tail}" for head, version, build, tail in itertools.product(
        ("python-", "Python-", "pythonx-", "python-dateutil-"), VERSIONS,
        ("-h955ad1f_0", "_cpython-h1", "-", "", "-a-b"), (".json", ".JSON", ".json.bak", "-.json"))]
    agree(PROBE["conda_meta_python_version"], lambda text: group(CONDA_PYTHON_META, text), texts)


def test_runicorn_dist_version() -> None:
    texts = [f"{head}{version}{tag}{suffix}" for head, version, tag, suffix in itertools.product(
        ("runicorn-", "Runicorn-", "RUNICORN-", "runicorn_extras-", "runicorn", "xrunicorn-"), VERSIONS + ["0.7.2"],
        ("", "-py3.11", "-PY3.11", "-py", "-py3.x", "-cp311", "-py3.11-x", "-"),
        (".dist-info", ".DIST-INFO", ".egg-info", ".Egg-Info", ".egg", "dist-info", ".dist-info.bak"))]
    agree(PROBE["runicorn_dist_version"], lambda text: group(RUNICORN_DIST, text), texts)


def test_metadata_version() -> None:
    texts = ["", "Version: 0.7.2\n", "Metadata-Version: 2.1\nName: runicorn\nVersion: 0.7.2\nSummary: x\n",
             "Version:0.7.2", "Version:   \n  0.7.3 extra", "Version:\n\nVersion: 1", "version: 1\n",
             " Version: 1\n", "Name: x\r\nVersion: 2\r\n", "Name: x\rVersion: 3\n", "Version: \u00a0 4\u2028x"]
    agree(PROBE["metadata_version"], lambda text: (lambda m: m.group(1) if m else None)(METADATA_VERSION.search(text)),
          texts)


def test_finding_environments_on_disk_imports_no_json_re_typing_or_threading(tmp_path: Path) -> None:
    # PERF: those imports were 16 ms of a 27 ms run; a venv with runicorn is still found and read.
    venv = tmp_path / ".venvs" / "tracked"
    site = venv / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    (site / "runicorn-0.7.2.dist-info").mkdir(parents=True)
    (site / "runicorn-0.7.2.dist-info" / "METADATA").write_text("Name: runicorn\nVersion: 0.7.2\n")
    (venv / "bin").mkdir()
    (venv / "bin" / "python").symlink_to(sys.executable)
    (venv / "pyvenv.cfg").write_text(f"home = /usr/bin\nversion = {'.'.join(map(str, sys.version_info[:3]))}\n")
    check = load_program("probe.py").replace(
        b"sys.exit(main(COMMANDS, sys.argv[1:]))",
        b"found = run_command(COMMANDS, sys.argv[1:])\n"
        b"    sys.stdout.write(_json_writer()({'envs': [env['name'] + ' ' + str(env['runicorn_version'])"
        b" for env in found['envs']], 'imported': sorted(set(['json', 're', 'typing', 'threading']) & set(sys.modules))}))")
    answer = subprocess.run([sys.executable, "-I", "-S", "-", "envs"], input=check, capture_output=True, check=True, timeout=60,
                            env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    report = json.loads(answer.stdout)
    assert "tracked 0.7.2" in report["envs"], report
    assert report["imported"] == [], report
