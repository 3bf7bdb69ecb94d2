"""Find the stored host key ssh compared a server's key with, the way OpenSSH does.

For a changed host key, the 409 names the key that was expected: the stored
key of the *presented* key's type for that host, as the Runicorn reference
reports it. ``ssh-keygen -F <host> -f <file>`` matches a host against a
known_hosts file exactly as ssh does, so plain entries, hashed entries
(``|1|salt|hash``, which Debian writes by default with ``HashKnownHosts
yes``) and host patterns are all found. ssh's own "Offending <type> key in
<file>:<line>" is no guide: it names the first key it found for the host,
which may be of another type than the one the server presented.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import pwd
import subprocess
from collections.abc import Iterable
from pathlib import Path

from rvssh.ssh.errors import HostKey
from rvssh.ssh.fingerprint import fingerprint_sha256

log = logging.getLogger(__name__)

DEFAULT_PORT = 22


def expand_tilde(path: str) -> Path:
    """Expand a leading ``~`` as ssh does: to the passwd home directory, not ``$HOME``.

    Args:
        path: A path as written in ``UserKnownHostsFile``, e.g. ``~/.ssh/known_hosts``.

    Returns:
        The path with ``~`` or ``~user`` expanded; any other path unchanged.
    """
    if path == "~" or path.startswith("~/"):
        return Path(pwd.getpwuid(os.getuid()).pw_dir + path[1:])
    return Path(os.path.expanduser(path))


def known_hosts_name(host: str, port: int) -> str:
    """Return the name ssh looks up in known_hosts: ``host`` for port 22, else ``[host]:port``.

    A name that already is a ``[host]:port`` field is returned as it is.
    """
    if host.startswith("[") or port == DEFAULT_PORT:
        return host
    return f"[{host}]:{port}"


def build_find_argv(ssh_keygen: str, name: str, path: Path) -> list[str]:
    """Build the argv that lists the entries of ``path`` matching ``name``.

    The name is the argument of ``-F``, so even one starting with ``-`` is
    never read as an option.
    """
    return [ssh_keygen, "-F", name, "-f", str(path)]


def parse_find_output(output: str, key_type: str) -> HostKey | None:
    """Return the first key of ``key_type`` that ``ssh-keygen -F`` printed.

    ``ssh-keygen -F`` prints a ``# Host ... found: line N`` comment before each
    matching line. ``@revoked`` and ``@cert-authority`` lines are not a stored
    key of the host and are skipped, and so is a key whose base64 does not decode.
    """
    for line in output.splitlines():
        fields = line.split()
        if len(fields) < 3 or fields[0].startswith(("#", "@")) or fields[1] != key_type:
            continue
        try:
            blob = base64.b64decode(fields[2], validate=True)
        except (binascii.Error, ValueError):
            continue
        return HostKey(key_type, fields[2], fingerprint_sha256(blob))
    return None


def find_stored_key(
    host: str,
    port: int,
    key_type: str,
    *,
    files: Iterable[Path],
    ssh_keygen: str = "ssh-keygen",
    timeout: float = 10.0,
) -> HostKey | None:
    """Return the first stored key of ``key_type`` for a host, looking in ``files`` in order.

    Args:
        host: The known_hosts name ssh looked up (``%H``, e.g. ``[10.0.0.5]:2222``),
            or a bare host to be combined with ``port``.
        port: The port; used only when ``host`` is a bare host.
        key_type: The type of the key the server presented, e.g. ``ssh-ed25519``.
        files: The known_hosts files ssh reads, in its order (rvssh's own first).
        ssh_keygen: The ssh-keygen program to run.
        timeout: Seconds to wait for each ssh-keygen run.

    Returns:
        The key, or None when no file holds a key of that type for the host.
        A file that is missing or that ssh-keygen cannot read is skipped.
    """
    name = known_hosts_name(host, port)
    for path in files:
        if not path.is_file():
            continue
        argv = build_find_argv(ssh_keygen, name, path)
        log.debug("looking up the stored %s key of %s: %s", key_type, name, argv)
        try:
            completed = subprocess.run(
                argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as ex:
            log.warning("cannot look up %s in %s with %s: %s", name, path, ssh_keygen, ex)
            continue
        # Exit status 1 means "not found"; the output is empty then.
        found = parse_find_output(completed.stdout.decode("utf-8", errors="replace"), key_type)
        if found is not None:
            return found
    return None
