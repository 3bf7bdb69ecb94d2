"""Turn a failed host-key check into the data of the 409 answer.

ssh runs our KnownHostsCommand with the key each host of the route presented
(see sshconfig.known_hosts_command); the capture file therefore holds the
keys ssh actually negotiated, hop by hop, not whatever a separate keyscan
would pick. ssh names the host it refused ("No ED25519 host key is known for
[bastion]:2222", "Host key for gpu has changed"), which picks the captured
key of that hop. For a changed key, the expected key is the stored key of
the presented key's type (see stored_keys.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

from rvssh.ssh.errors import HostKey, HostKeyError

_CHANGED = re.compile(r"REMOTE HOST IDENTIFICATION HAS CHANGED|has changed and you have requested strict checking")
# The host (as looked up, %H) that ssh refused: a hop of a ProxyJump route or the target.
_REFUSED_HOST = re.compile(r"host key is known for (?P<unknown>\S+) and|Host key for (?P<changed>\S+) has changed")


def parse_known_hosts_host(field: str) -> tuple[str, int]:
    """Split one known_hosts host field into host and port.

    Args:
        field: One comma-separated host field, e.g. ``[10.0.0.1]:2222``.

    Returns:
        ``(host, port)``: ``[h]:p`` gives ``(h, p)``; ``[h]`` or ``[h]:<not a
        number>`` gives ``(h, 22)``; anything else gives ``(field, 22)``.
    """
    if field.startswith("["):
        close = field.find("]")
        if close > 0:
            rest = field[close + 1 :]
            port_text = rest[1:] if rest.startswith(":") else ""
            port = int(port_text) if port_text.isascii() and port_text.isdigit() else 22
            return field[1:close], port
    return field, 22


def refused_host(output: str) -> str | None:
    """Return the known_hosts host ssh says it refused, if its output names one."""
    match = _REFUSED_HOST.search(output)
    return (match.group("unknown") or match.group("changed")) if match else None


def read_presented_key(capture_file: Path, host: str | None = None) -> tuple[str, str, str] | None:
    """Return (known_hosts_host, key_type, base64) of the key ssh refused.

    Args:
        capture_file: what our KnownHostsCommand appended, one check per line.
        host: the refused host as ssh named it; None takes the last key checked
            (ssh stops at the first refusal, so that is the refused one).
    """
    try:
        lines = capture_file.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return None
    for line in reversed(lines):
        fields = line.split()
        # Fields: %H %p %t %K. The first call for each host has type NONE.
        if len(fields) == 4 and fields[2] != "NONE" and host in (None, fields[0]):
            return fields[0], fields[2], fields[3]
    return None if host is None else read_presented_key(capture_file)


def build_host_key_error(
    output: str,
    capture_file: Path,
    fingerprint: Callable[[str], str],
    find_stored: Callable[[str, int, str], HostKey | None],
) -> HostKeyError | None:
    """Build the HostKeyError for ssh's ``output`` from what it captured.

    Args:
        output: what ssh printed before it exited.
        capture_file: the file our KnownHostsCommand appended to.
        fingerprint: computes ``SHA256:...`` of a ``type base64`` line (ssh-keygen -lf).
        find_stored: looks up the stored key of a type for (known_hosts host, port),
            in rvssh's known_hosts and then the user's.

    Returns:
        None when nothing was captured (then the caller reports a plain failure).
    """
    presented = read_presented_key(capture_file, refused_host(output))
    if presented is None:
        return None
    known_hosts_host, key_type, key_base64 = presented
    host, port = parse_known_hosts_host(known_hosts_host)
    presented_key = HostKey(key_type, key_base64, fingerprint(f"{key_type} {key_base64}"))
    if not _CHANGED.search(output):
        return HostKeyError(
            host=host, port=port, known_hosts_host=known_hosts_host, reason="unknown", presented=presented_key
        )
    # The stored key of the presented type, as the reference reports it. Not
    # ssh's "Offending <type> key" line: it names the first key ssh found for
    # the host, which may be of another type (an RSA line before the ED25519 one).
    expected = find_stored(known_hosts_host, port, key_type)
    return HostKeyError(
        host=host,
        port=port,
        known_hosts_host=known_hosts_host,
        reason="changed",
        presented=presented_key,
        expected=expected,
    )
