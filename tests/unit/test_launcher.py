"""The sh program rvssh sends to ``/bin/sh -s``, run here under every login shell there is.

sshd runs a remote command as ``<login shell> -c '<command>'``; these tests
do the same with each shell, so what reaches sh, bash, dash, zsh, ksh, tcsh,
csh and fish is exactly what a server's login shell would see.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rvssh.remote.launcher import HEREDOC_END, build_python_program, build_sh_program
from rvssh.remote.probe import build_probe_program, load_program, load_script
from rvssh.ssh.argv import REMOTE_COMMAND

LOGIN_SHELLS = ("sh", "bash", "dash", "zsh", "ksh", "tcsh", "csh", "fish")
ECHO_ARGV = b"import json, sys; print(json.dumps(sys.argv[1:]))\n"
NASTY = ["plain", "it's", 'say "hi"', "$(touch canary)", "`touch canary`", "!event", "back\\slash", "new\nline",
         "~", "*", "-rf", "", "caf\u00e9", "%s", "{a,b}", "a;b|c&d", "\t"]
# A PATH with no python on it: the tools a login shell needs, nothing else.
NO_PYTHON_BIN = ("sh", "dash", "env", "cat", "printf", "tr", "grep", "rm", "sleep", "kill")


def shells() -> list[str]:
    """Return the login shells installed here (CI installs them all via scripts/test)."""
    found = [name for name in LOGIN_SHELLS if shutil.which(name)]
    if os.environ.get("CI") == "true":
        assert found == list(LOGIN_SHELLS), f"scripts/test must install every login shell: {found}"
    return found


def run_as_login_shell(shell: str, program: bytes, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """Do what sshd does with rvssh's remote command under the login shell ``shell``."""
    command = " ".join(REMOTE_COMMAND)
    return subprocess.run([shutil.which(shell) or shell, "-c", command], input=program, capture_output=True,
                          env=env, cwd=cwd, timeout=30, check=False)


def base_env(tmp_path: Path, path: str | None = None) -> dict[str, str]:
    return {"HOME": str(tmp_path), "PATH": path or os.environ["PATH"], "LANG": "C.UTF-8"}


@pytest.mark.parametrize("shell", shells())
def test_every_login_shell_hands_the_arguments_over_untouched(shell: str, tmp_path: Path) -> None:
    program = build_python_program(ECHO_ARGV, NASTY, python=sys.executable)
    result = run_as_login_shell(shell, program, base_env(tmp_path), tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.decode().splitlines()[-1]) == NASTY
    assert not (tmp_path / "canary").exists()


@pytest.mark.parametrize("shell", shells())
def test_a_sh_program_gets_its_arguments_under_every_login_shell(shell: str, tmp_path: Path) -> None:
    program = build_sh_program(b'for a in "$@"; do printf "<%s>" "$a"; done; echo\n', ["a b", "it's", "$HOME"])
    result = run_as_login_shell(shell, program, base_env(tmp_path), tmp_path)
    assert result.stdout.decode().splitlines()[-1] == "<a b><it's><$HOME>"


def no_python_path(tmp_path: Path) -> str:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in NO_PYTHON_BIN:
        (bin_dir / tool).symlink_to(shutil.which(tool))
    return str(bin_dir)


def test_the_login_paths_python3_runs_the_program(tmp_path: Path) -> None:
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python3").symlink_to(sys.executable)
    program = build_python_program(b"import sys; print(sys.executable)\n", [])
    env = base_env(tmp_path, f"{bin_dir}:{no_python_path(tmp_path)}")
    result = run_as_login_shell("sh", program, env, tmp_path)
    assert result.stdout.decode().strip() == str(bin_dir / "python3")


def test_without_python_on_the_path_an_environments_interpreter_runs_the_probe(tmp_path: Path) -> None:
    env_bin = tmp_path / "miniconda3" / "envs" / "torch" / "bin"
    env_bin.mkdir(parents=True)
    (env_bin / "python3").symlink_to(sys.executable)
    program = build_python_program(b"import sys; print(sys.executable)\n", [], search_environments=True)
    result = run_as_login_shell("sh", program, base_env(tmp_path, no_python_path(tmp_path)), tmp_path)
    assert result.stdout.decode().strip() == str(env_bin / "python3")


def test_without_any_python_the_answer_says_so(tmp_path: Path) -> None:
    path = no_python_path(tmp_path)
    program = build_python_program(b"print('never')\n", ["x"], search_environments=True)
    answer = json.loads(run_as_login_shell("sh", program, base_env(tmp_path, path), tmp_path).stdout)
    assert answer["error"]["kind"] == "no_python"
    assert answer["error"]["message"].startswith("No Python found on the server")
    missing = build_python_program(b"print('never')\n", [], python="/opt/nowhere/bin/python3")
    answer = json.loads(run_as_login_shell("sh", missing, base_env(tmp_path, path), tmp_path).stdout)
    assert answer["error"]["message"] == "The interpreter /opt/nowhere/bin/python3 is not there (or not executable) on the server"


def test_without_any_python_the_sh_fallback_answers_with_the_same_arguments(tmp_path: Path) -> None:
    program = build_python_program(b"print('never')\n", ["fs-list", "it's"], fallback=b'echo "sh: $1 $2"\n')
    result = run_as_login_shell("sh", program, base_env(tmp_path, no_python_path(tmp_path)), tmp_path)
    assert result.stdout.decode().strip() == "sh: fs-list it's"


def test_without_any_python_fs_list_answers_the_same_from_sh(tmp_path: Path) -> None:
    """A server without Python: every tool of /usr/bin but the interpreters."""
    bin_dir = tmp_path / "no-python-bin"
    bin_dir.mkdir()
    for tool in Path("/usr/bin").iterdir():
        if not tool.name.startswith("python") and os.access(tool, os.X_OK):
            (bin_dir / tool.name).symlink_to(tool)
    home = tmp_path / "home"
    (home / "data" / "runs").mkdir(parents=True)
    (home / "data" / "notes.txt").write_text("hello")
    with_python = base_env(home)
    without = base_env(home, str(bin_dir))
    for args in (("fs-list", "~/data"), ("fs-exists", "~/data/notes.txt"), ("fs-list", "~/nope")):
        program = build_probe_program(*args)
        answers = [run_as_login_shell("sh", program, env, home).stdout for env in (with_python, without)]
        assert answers[0] == answers[1], args
        assert b"no_python" not in answers[1]


def test_no_shipped_program_contains_the_here_document_end() -> None:
    for script in ("probe.py", "fs.py", "viewer.py"):
        assert HEREDOC_END.encode() not in load_program(script)
    with pytest.raises(ValueError):
        build_python_program(HEREDOC_END.encode() + b"\n", [])


def test_viewer_stop_refuses_odd_session_ids_without_signalling_anything(tmp_path: Path) -> None:
    program = build_sh_program(load_script("viewer_stop.sh"), ["1", "../../etc"])
    answer = json.loads(run_as_login_shell("sh", program, base_env(tmp_path), tmp_path).stdout)
    assert answer == {"error": {"kind": "bad_request", "message": "invalid session id"}}
    gone = build_sh_program(load_script("viewer_stop.sh"), [str(2**22 + 12345), "abc123"])
    (tmp_path / ".cache" / "rvssh" / "viewers" / "abc123").mkdir(parents=True)
    answer = json.loads(run_as_login_shell("sh", gone, base_env(tmp_path), tmp_path).stdout)
    assert answer == {"stopped": True, "was_running": False}
    assert not (tmp_path / ".cache" / "rvssh" / "viewers" / "abc123").exists()
