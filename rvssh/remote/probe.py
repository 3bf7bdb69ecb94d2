"""Local side of the remote scripts: load them, build their arguments, read their JSON.

The scripts (``rvssh/remote/scripts/probe.py`` and ``viewer.py``) run on the
server with the script on stdin; their docstrings are the contract of every
subcommand. This module only turns that contract into Python values and
rvssh errors; it runs nothing.
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
from rvssh.ssh.errors import RemoteCommandError, RemoteOutputError


@dataclass(frozen=True)
class Subcommand:
    """Which script answers a subcommand, how many arguments it takes, how python runs it."""

    script: str
    arity: int
    python_flags: tuple[str, ...] = ()


# Must match COMMANDS in the scripts. PERF: fs.py needs no site-packages,
# so its python starts isolated and without the site module (-I -S).
SUBCOMMANDS: dict[str, Subcommand] = {
    "envs": Subcommand("probe.py", 0),
    "env-configs": Subcommand("probe.py", 0),
    "config": Subcommand("probe.py", 1),
    "storage-candidates": Subcommand("probe.py", 2),
    "fs-list": Subcommand("fs.py", 1, ("-I", "-S")),
    "fs-exists": Subcommand("fs.py", 1, ("-I", "-S")),
}

# The script's error kinds -> the rvssh error each one becomes.
ERROR_KINDS: dict[str, type[RvsshError]] = {
    "not_found": RemoteNotFoundError,
    "env_not_found": NotFoundError,
    "not_a_directory": RemoteNotADirectoryError,
    "bad_request": BadRequestError,
    "permission_denied": RemotePermissionError,
    "internal": RemoteCommandError,
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
    """Return common.py followed by ``script``: the one program sent for a subcommand."""
    return load_script("common.py") + b"\n\n" + load_script(script)


def program_for(subcommand: str) -> bytes:
    """Return the program that answers ``subcommand``."""
    return load_program(SUBCOMMANDS[subcommand].script)


def build_probe_args(subcommand: str, *args: str) -> list[str]:
    """Return the script arguments (after ``python3 -``) that run ``subcommand``.

    Raises:
        ValueError: unknown subcommand or wrong number of arguments (a bug).
        BadRequestError: an argument holds a NUL byte, which no argv can carry.
    """
    spec = SUBCOMMANDS.get(subcommand)
    if spec is None:
        raise ValueError(f"unknown probe subcommand: {subcommand!r}")
    if len(args) != spec.arity:
        raise ValueError(f"probe subcommand {subcommand!r} takes {spec.arity} argument(s), got {len(args)}")
    if any("\0" in arg for arg in args):
        raise BadRequestError("Invalid value: NUL characters are not allowed")
    return [subcommand, *args]


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
