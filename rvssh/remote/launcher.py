"""Build the POSIX sh program rvssh sends on stdin to ``/bin/sh -s`` on the server.

The login shell only ever runs the plain words ``/bin/sh -s``; what runs is
this program, parsed by ``/bin/sh`` alone:

- ``set -- <args>`` gives the program its arguments, each quoted for POSIX sh
  (so no request string is ever parsed by tcsh, fish or any other login
  shell, and never as code by sh either);
- a Python program is handed to the interpreter in a quoted here-document
  (``<<'END'``: no expansion), after sh found the interpreter: the one named,
  else ``python3`` or ``python`` on the login PATH (what ``ssh host python3``
  runs), else, where allowed, any environment's interpreter in the usual
  places; when there is none, a POSIX sh fallback runs instead, or the
  program answers the ``no_python`` error.

Everything here is pure: bytes in, bytes out.
"""

from __future__ import annotations

import json
import shlex
from typing import Sequence

HEREDOC_END = "RVSSH_PROGRAM_END_5f0c1e"

# Interpreters that run rvssh's probe when no python is on the PATH: any
# conda or virtualenv environment in the places probe.py looks.
ENV_INTERPRETER_GLOBS = (
    '"$HOME"/miniconda3/bin/python3', '"$HOME"/anaconda3/bin/python3', '"$HOME"/miniforge3/bin/python3',
    '"$HOME"/mambaforge/bin/python3', '"$HOME"/micromamba/bin/python3', "/opt/conda/bin/python3",
    "/opt/miniconda3/bin/python3", "/opt/anaconda3/bin/python3", "/opt/miniforge3/bin/python3",
    '"$HOME"/.conda/envs/*/bin/python3', '"$HOME"/*/envs/*/bin/python3', '"$HOME"/venv/bin/python3',
    '"$HOME"/.venv/bin/python3', '"$HOME"/venvs/*/bin/python3', '"$HOME"/.venvs/*/bin/python3',
    '"$HOME"/.virtualenvs/*/bin/python3', '"$HOME"/envs/*/bin/python3',
    '"$HOME"/.local/share/virtualenvs/*/bin/python3',
)

NO_PYTHON_MESSAGE = (
    "No Python found on the server: no python3 or python on the PATH of the login shell"
)


def quote_words(args: Sequence[str]) -> bytes:
    """Return ``args`` as POSIX sh words (single-quoted), bytes kept as they are."""
    return " ".join(shlex.quote(arg) for arg in args).encode("utf-8", "surrogateescape")


def build_sh_program(script: bytes, args: Sequence[str]) -> bytes:
    """Return a POSIX sh ``script`` that runs with ``args`` as its ``"$@"``."""
    return b"set -- " + quote_words(args) + b"\n" + script


def _error_line(kind: str, message: str) -> bytes:
    answer = json.dumps({"error": {"kind": kind, "message": message}}, ensure_ascii=True, separators=(",", ":"))
    return b"printf '%s\\n' " + shlex.quote(answer).encode("ascii") + b"\n"


def build_python_program(
    program: bytes,
    args: Sequence[str],
    *,
    python: str | None = None,
    flags: Sequence[str] = (),
    search_environments: bool = False,
    fallback: bytes | None = None,
) -> bytes:
    """Return the sh program that runs the Python ``program`` with ``args``.

    Args:
        program: Python source, read by the interpreter from stdin (``-``).
        args: the program's arguments (``sys.argv[1:]``).
        python: an interpreter path to use and nothing else; None finds one.
        flags: interpreter options before ``-`` (constants such as ``-I``).
        search_environments: with no python on the PATH, use any environment's
            interpreter (the probe only needs *a* Python to look around).
        fallback: a POSIX sh program (same ``"$@"``) to run when no
            interpreter is found; without one, the answer is a ``no_python`` error.

    Raises:
        ValueError: ``program`` holds the here-document's end line (a bug).
    """
    if HEREDOC_END.encode("ascii") in program:
        raise ValueError("the program contains the here-document delimiter")
    lines = [b"set -- " + quote_words(args), b"rvssh_py="]
    if python is not None:
        lines.append(b"[ -x " + quote_words([python]) + b" ] && rvssh_py=" + quote_words([python]))
        missing = f"The interpreter {python} is not there (or not executable) on the server"
    else:
        lines.append(
            b"for rvssh_try in python3 python; do "
            b'rvssh_try=$(command -v "$rvssh_try" 2>/dev/null) && [ -n "$rvssh_try" ] && '
            b"{ rvssh_py=$rvssh_try; break; }; done"
        )
        if search_environments:
            lines.append(
                b'if [ -z "$rvssh_py" ]; then for rvssh_try in ' + " ".join(ENV_INTERPRETER_GLOBS).encode("ascii")
                + b'; do [ -x "$rvssh_try" ] && { rvssh_py=$rvssh_try; break; }; done; fi'
            )
        missing = NO_PYTHON_MESSAGE + (" and no conda or virtualenv environment in the usual places"
                                       if search_environments else "")
    end = HEREDOC_END.encode("ascii")
    lines += [
        b'if [ -n "$rvssh_py" ]; then',
        b'exec "$rvssh_py" ' + quote_words([*flags, "-"]) + b' "$@" <<\'' + end + b"'",
        program.rstrip(b"\n"),
        end,
        b"fi",
    ]
    tail = fallback if fallback is not None else _error_line("no_python", missing)
    return b"\n".join(lines) + b"\n" + tail
