"""Run a short-lived OpenSSH command (``-O``, ``-G``, ssh-keygen, a remote program).

Every failure to run one becomes an :class:`~rvssh.ssh.errors.SshError` with
the command's own words: a missing binary, a timeout (a wedged master), an
OS error. The argv is logged at debug level; it never holds a secret (key
content travels in a 0600 file, answers on a pty).
"""

from __future__ import annotations

import logging
import shlex
import subprocess

from rvssh.ssh.errors import SshCommandError

log = logging.getLogger(__name__)


def run_command(
    argv: list[str], *, env: dict[str, str], timeout: float, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run ``argv`` to completion and return what it left behind.

    Raises:
        SshCommandError: the program is missing, could not start, or ran past ``timeout``.
    """
    log.debug("run: %s", shlex.join(argv))
    try:
        return subprocess.run(
            argv,
            input=stdin if stdin is not None else b"",
            capture_output=True,
            env=env,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as ex:
        raise SshCommandError(f"{argv[0]} was not found (install openssh-client)") from ex
    except subprocess.TimeoutExpired as ex:
        raise SshCommandError(f"{shlex.join(argv[:1] + _operation(argv))} did not finish within {timeout:g} s") from ex
    except OSError as ex:
        raise SshCommandError(f"{argv[0]} could not run: {ex.strerror}") from ex


def _operation(argv: list[str]) -> list[str]:
    """Return the words that say what an ssh argv does (``-O check``, ``-G``), for messages."""
    for flag in ("-O", "-G", "-T"):
        if flag in argv:
            index = argv.index(flag)
            return argv[index : index + (2 if flag == "-O" else 1)]
    return []
