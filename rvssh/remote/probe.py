"""Local side of the remote scripts: load them, build the programs that run them, read their JSON.

The scripts (``rvssh/remote/scripts/``) run on the server, sent on stdin
inside the sh program of ``remote/launcher.py``; their docstrings are the
contract of every subcommand. This module only turns that contract into
programs, Python values and rvssh errors; it runs nothing.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from rvssh.errors import (
    BadRequestError,
    ConflictError,
    NotFoundError,
    RemoteNotADirectoryError,
    RemoteNotFoundError,
    RemotePermissionError,
    RunicornMissingError,
    RvsshError,
)
from rvssh.remote.launcher import build_python_program, build_sh_program
from rvssh.ssh.errors import RemoteCommandError, RemoteOutputError


@dataclass(frozen=True)
class Subcommand:
    """Which script answers a subcommand, its arguments, how its interpreter is found and run.

    Attributes:
        script: the Python script (sent after common.py).
        arity: how many arguments it takes.
        python_flags: interpreter options (constants).
        search_environments: with no python on the login PATH, run it with any
            environment's interpreter (it only needs *a* Python to look around).
        sh_fallback: a POSIX sh script giving the same answer when no
            interpreter is found at all.
    """

    script: str
    arity: int
    python_flags: tuple[str, ...] = ()
    search_environments: bool = False
    sh_fallback: str | None = None


# Must match COMMANDS in the scripts. PERF: fs.py needs no site-packages,
# so its python starts isolated and without the site module (-I -S).
SUBCOMMANDS: dict[str, Subcommand] = {
    "envs": Subcommand("probe.py", 0, search_environments=True),
    "env-configs": Subcommand("probe.py", 1, search_environments=True),
    "config": Subcommand("probe.py", 1, search_environments=True),
    "python-of": Subcommand("probe.py", 1, search_environments=True),
    "storage-candidates": Subcommand("probe.py", 2, search_environments=True),
    "fs-list": Subcommand("fs.py", 1, ("-I", "-S"), sh_fallback="fs.sh"),
    "fs-exists": Subcommand("fs.py", 1, ("-I", "-S"), sh_fallback="fs.sh"),
}

# The script's error kinds -> the rvssh error each one becomes.
ERROR_KINDS: dict[str, type[RvsshError]] = {
    "not_found": RemoteNotFoundError,
    "env_not_found": NotFoundError,
    "not_a_directory": RemoteNotADirectoryError,
    "bad_request": BadRequestError,
    "permission_denied": RemotePermissionError,
    "internal": RemoteCommandError,
    "no_python": RemoteCommandError,
    "runicorn_missing": RunicornMissingError,
    "port_in_use": ConflictError,
}

_SNIPPET_CHARS = 200


@functools.cache
def load_script(name: str) -> bytes:
    """Return the bytes of ``rvssh/remote/scripts/<name>``, to be sent on the remote's stdin."""
    return (resources.files("rvssh.remote") / "scripts" / name).read_bytes()


@functools.cache
def load_program(script: str) -> bytes:
    """Return common.py followed by ``script``: the one Python program sent for a subcommand."""
    return load_script("common.py") + b"\n\n" + load_script(script)


def program_for(subcommand: str) -> bytes:
    """Return the Python program that answers ``subcommand``."""
    return load_program(SUBCOMMANDS[subcommand].script)


def _check_args(args: tuple[str, ...]) -> None:
    if any("\0" in arg for arg in args):
        raise BadRequestError("Invalid value: NUL characters are not allowed")


def build_probe_program(subcommand: str, *args: str, python: str | None = None) -> bytes:
    """Return the sh program (for ``/bin/sh -s``) that runs ``subcommand`` with ``args``.

    Args:
        subcommand: one of SUBCOMMANDS.
        args: its arguments; each reaches the script as one argv word.
        python: the interpreter to run it with; None finds one on the login PATH.

    Raises:
        ValueError: unknown subcommand or wrong number of arguments (a bug).
        BadRequestError: an argument holds a NUL byte, which no argv can carry.
    """
    spec = SUBCOMMANDS.get(subcommand)
    if spec is None:
        raise ValueError(f"unknown probe subcommand: {subcommand!r}")
    if len(args) != spec.arity:
        raise ValueError(f"probe subcommand {subcommand!r} takes {spec.arity} argument(s), got {len(args)}")
    _check_args(args)
    return build_python_program(
        program_for(subcommand),
        [subcommand, *args],
        python=python,
        flags=spec.python_flags,
        search_environments=spec.search_environments and python is None,
        fallback=load_script(spec.sh_fallback) if spec.sh_fallback else None,
    )


def build_viewer_program(subcommand: str, *args: str, python: str | None = None) -> bytes:
    """Return the sh program for viewer.py's ``launch``/``status`` (under ``python``) or ``stop``."""
    _check_args(args)
    if subcommand == "stop":
        return build_sh_program(load_script("viewer_stop.sh"), args)
    return build_python_program(load_program("viewer.py"), [subcommand, *args], python=python)


def parse_probe_output(stdout: bytes, stderr: bytes = b"", exit_status: int = 0) -> dict[str, Any]:
    """Return the JSON object a remote script printed, or raise the error it reported.

    The object is the last non-empty line of ``stdout``: lines before it are
    noise from the remote shell's start-up files, which some servers print
    even for non-interactive commands.

    Raises:
        RemoteCommandError: no JSON object, and the command failed (ssh or the
            remote shell said why on stderr, e.g. MaxSessions or no python).
        RemoteOutputError: the output holds no JSON object.
        NotFoundError, BadRequestError, ForbiddenError, RemoteCommandError:
            the script reported ``{"error": {"kind", "message"}}``.
    """
    text = stdout.decode("utf-8", errors="replace")
    lines = [line for line in text.splitlines() if line.strip()]
    try:
        payload = json.loads(lines[-1]) if lines else None
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        reason = stderr.decode("utf-8", errors="replace").strip()[-_SNIPPET_CHARS:]
        if exit_status != 0 and reason:
            raise RemoteCommandError(f"Remote command failed (exit status {exit_status}): {reason}")
        raise RemoteOutputError(_output_problem(text))
    if "error" in payload:
        raise _probe_error(payload["error"], text)
    return payload


def probe_output_line(stdout: bytes, stderr: bytes, exit_status: int, opening: bytes) -> bytes:
    """Return the JSON line a script printed, as is, when it starts with ``opening``; else raise as parse_probe_output.

    PERF: a listing of 2,000 entries is 190 kB of JSON; passing the line
    through saves parsing it and writing it again (about 4 ms). The scripts
    print their answer's keys in a fixed order and errors as ``{"error":``,
    so ``opening`` (``{"path":``) tells an answer from an error.
    """
    lines = [line for line in stdout.splitlines() if line.strip()]
    if lines and lines[-1].startswith(opening) and lines[-1].rstrip().endswith(b"}"):
        return lines[-1].rstrip()
    answer = parse_probe_output(stdout, stderr, exit_status)
    return json.dumps(answer, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def _probe_error(error: Any, text: str) -> RvsshError:
    """Return the rvssh error for the script's ``{"kind", "message"}`` object."""
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return RemoteOutputError(_output_problem(text))
    error_class = ERROR_KINDS.get(error.get("kind"), RemoteCommandError)
    return error_class(error["message"])


def _output_problem(text: str) -> str:
    """Return the message for output that is not the promised JSON object."""
    snippet = text.strip()[:_SNIPPET_CHARS]
    if not snippet:
        return "Remote probe printed nothing (is python3 installed on the server?)"
    return f"Remote probe did not print a JSON object: {snippet!r}"
