"""Turn a failed host-key check into the data of the 409 answer.

ssh runs our KnownHostsCommand with the key the server presented (see
argv.known_hosts_command); the capture file therefore holds the key ssh
actually negotiated, not whatever a separate keyscan would pick. For a
changed key, the expected key is the stored key of the presented key's type
(see stored_keys.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

from rvssh.ssh.errors import HostKey, HostKeyError

_CHANGED = re.compile(r"REMOTE HOST IDENTIFICATION HAS CHANGED|has changed and you have requested strict checking")


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


def read_presented_key(capture_file: Path) -> tuple[str, str, str] | None:
    """Return (known_hosts_host, key_type, base64) of the last key ssh checked."""
    try:
        lines = capture_file.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return None
    for line in reversed(lines):
        fields = line.split()
        # Fields: %H %p %t %K. The first call of a connection has type NONE.
        if len(fields) == 4 and fields[2] != "NONE":
            return fields[0], fields[2], fields[3]
    return None


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
    presented = read_presented_key(capture_file)
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
