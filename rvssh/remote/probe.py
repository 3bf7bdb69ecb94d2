"""Local side of the remote scripts: load them, build their arguments, read their JSON.

The scripts (``rvssh/remote/scripts/probe.py`` and ``viewer.py``) run on the
server with the script on stdin; their docstrings are the contract of every
subcommand. This module only turns that contract into Python values and
rvssh errors; it runs nothing.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

from rvssh.errors import BadRequestError, ConflictError, ForbiddenError, NotFoundError, RvsshError
from rvssh.ssh.errors import RemoteCommandError, RemoteOutputError

# Subcommand -> number of arguments; must match COMMANDS in the script.
PROBE_SUBCOMMANDS: dict[str, int] = {
    "envs": 0,
    "env-configs": 0,
    "config": 1,
    "storage-candidates": 2,
    "fs-list": 1,
    "fs-exists": 1,
}

# The script's error kinds -> the rvssh error each one becomes.
ERROR_KINDS: dict[str, type[RvsshError]] = {
    "not_found": NotFoundError,
    "env_not_found": NotFoundError,
    "not_a_directory": BadRequestError,
    "bad_request": BadRequestError,
    "permission_denied": ForbiddenError,
    "internal": RemoteCommandError,
    "runicorn_missing": BadRequestError,
    "port_in_use": ConflictError,
}

_SNIPPET_CHARS = 200


@functools.cache
def load_script(name: str) -> bytes:
    """Return the bytes of ``rvssh/remote/scripts/<name>``, to be sent on the remote's stdin."""
    return (resources.files("rvssh.remote") / "scripts" / name).read_bytes()


def load_probe_script() -> bytes:
    """Return the bytes of the probe script."""
    return load_script("probe.py")


def build_probe_args(subcommand: str, *args: str) -> list[str]:
    """Return the script arguments (after ``python3 -``) that run ``subcommand``.

    Raises:
        ValueError: unknown subcommand or wrong number of arguments (a bug).
        BadRequestError: an argument holds a NUL byte, which no argv can carry.
    """
    expected = PROBE_SUBCOMMANDS.get(subcommand)
    if expected is None:
        raise ValueError(f"unknown probe subcommand: {subcommand!r}")
    if len(args) != expected:
        raise ValueError(f"probe subcommand {subcommand!r} takes {expected} argument(s), got {len(args)}")
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
