"""Turn a failed host-key check into the data of the 409 answer.

ssh runs our KnownHostsCommand with the key each host of the route presented
(see sshconfig.known_hosts_command); the capture file therefore holds the
keys ssh actually negotiated, hop by hop, not whatever a separate keyscan
would pick. When ssh names the host it refused ("No ED25519 host key is known for
[bastion]:2222", "Host key for gpu has changed"), that picks the captured
key. A ProxyJump hop of a master names nothing: with ControlPersist, ssh
starts the hop with its stderr on /dev/null, and the master itself only says
"Connection closed by UNKNOWN port 65535". The hop checked its key against
the same known_hosts files (rvssh's ssh_config reaches it), so the first
captured key those files do not trust is the one it refused. For a changed
key, the expected key is the stored key of the presented key's type (see
stored_keys.py).
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


def captured_keys(capture_file: Path) -> list[tuple[str, str, str]]:
    """Return (known_hosts_host, key_type, base64) of every key checked, in the order ssh checked them."""
    try:
        lines = capture_file.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return []
    # Fields: %H %p %t %K. The first call for each host has type NONE.
    return [(fields[0], fields[2], fields[3]) for fields in map(str.split, lines)
            if len(fields) == 4 and fields[2] != "NONE"]


def read_presented_key(capture_file: Path, host: str | None = None) -> tuple[str, str, str] | None:
    """Return (known_hosts_host, key_type, base64) of the key ssh refused.

    Args:
        capture_file: what our KnownHostsCommand appended, one check per line.
        host: the refused host as ssh named it; None takes the last key checked
            (ssh stops at the first refusal, so that is the refused one).
    """
    keys = captured_keys(capture_file)
    named = [key for key in keys if host in (None, key[0])]
    return (named or keys or [None])[-1]


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
    if not _CHANGED.search(output):
        return _host_key_error(presented, fingerprint, None)
    # The stored key of the presented type, as the reference reports it. Not
    # ssh's "Offending <type> key" line: it names the first key ssh found for
    # the host, which may be of another type (an RSA line before the ED25519 one).
    _, port = parse_known_hosts_host(known_hosts_host)
    return _host_key_error(presented, fingerprint, find_stored(known_hosts_host, port, key_type), changed=True)


def build_refused_hop_error(
    capture_file: Path,
    fingerprint: Callable[[str], str],
    find_stored: Callable[[str, int, str], HostKey | None],
) -> HostKeyError | None:
    """Return the HostKeyError of the first captured key that the known_hosts files do not trust.

    For a failure ssh's output does not explain (a ProxyJump hop's own error
    went to /dev/null): a key no file holds was refused as unknown, a key
    that differs from the stored key of its type as changed. Certificates
    (trusted through a CA, not a stored key) are never taken for a refusal.

    Returns:
        None when every captured key is trusted (the failure is something else).
    """
    for presented in captured_keys(capture_file):
        known_hosts_host, key_type, key_base64 = presented
        if "-cert-" in key_type:
            continue
        _, port = parse_known_hosts_host(known_hosts_host)
        stored = find_stored(known_hosts_host, port, key_type)
        if stored is None or stored.key_base64 != key_base64:
            return _host_key_error(presented, fingerprint, stored, changed=stored is not None)
    return None


def _host_key_error(
    presented: tuple[str, str, str], fingerprint: Callable[[str], str], expected: HostKey | None, changed: bool = False
) -> HostKeyError:
    known_hosts_host, key_type, key_base64 = presented
    host, port = parse_known_hosts_host(known_hosts_host)
    return HostKeyError(
        host=host,
        port=port,
        known_hosts_host=known_hosts_host,
        reason="changed" if changed else "unknown",
        presented=HostKey(key_type, key_base64, fingerprint(f"{key_type} {key_base64}")),
        expected=expected if changed else None,
    )
