"""SSH public key blobs: SHA256 fingerprints and wire-format checks.

Two ways to fingerprint a key are offered: :func:`fingerprint_sha256` computes
it in Python from the decoded blob, :func:`fingerprint_with_ssh_keygen` asks
``ssh-keygen -lf -``. Both give OpenSSH's ``SHA256:<unpadded base64>`` form;
the unit tests check that they agree on real keys.

:func:`is_valid_key_blob` checks that a blob is a well-formed SSH wire encoding
(RFC 4253 section 6.6, RFC 5656 section 3.1, RFC 8709 section 4 and OpenSSH's
PROTOCOL.u2f) of the key type it claims to be.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import subprocess
from collections.abc import Callable

from rvssh.ssh.errors import SshError

_FINGERPRINT_PREFIX = "SHA256:"
_STDERR_TAIL_CHARS = 200

# Length of an uncompressed EC point (0x04 || X || Y) per curve.
_EC_POINT_LENGTHS = {"nistp256": 65, "nistp384": 97, "nistp521": 133}


def fingerprint_sha256(blob: bytes) -> str:
    """Return the OpenSSH SHA256 fingerprint of a decoded public key blob.

    Args:
        blob: The raw key blob (the base64-decoded second field of a key line).

    Returns:
        ``SHA256:`` followed by the unpadded standard base64 of the digest,
        exactly as ``ssh-keygen -l -E sha256`` prints it.
    """
    digest = hashlib.sha256(blob).digest()
    return _FINGERPRINT_PREFIX + base64.b64encode(digest).decode("ascii").rstrip("=")


def build_fingerprint_argv(ssh_keygen: str = "ssh-keygen") -> list[str]:
    """Build the argv that makes ssh-keygen fingerprint a key read on stdin.

    Args:
        ssh_keygen: The ssh-keygen program to run.

    Returns:
        The argv list; the key line itself is given on stdin, never in argv.
    """
    return [ssh_keygen, "-l", "-E", "sha256", "-f", "-"]


def fingerprint_with_ssh_keygen(
    public_key_line: str,
    *,
    ssh_keygen: str = "ssh-keygen",
    timeout: float = 10.0,
) -> str:
    """Compute the SHA256 fingerprint of a key line with ``ssh-keygen -lf -``.

    Args:
        public_key_line: One public key line, ``<type> <base64> [comment]``.
        ssh_keygen: The ssh-keygen program to run.
        timeout: Seconds to wait for ssh-keygen.

    Returns:
        The ``SHA256:...`` fingerprint printed by ssh-keygen.

    Raises:
        ValueError: The line holds a line break (it must be exactly one key).
        SshError: ssh-keygen is missing, timed out or refused the key.
    """
    if "\n" in public_key_line or "\r" in public_key_line:
        raise ValueError("public_key_line must be a single line")
    # APPSEC: the key goes on stdin, argv is fixed and no shell is involved,
    # so nothing in the key can become an option or a command.
    argv = build_fingerprint_argv(ssh_keygen)
    try:
        completed = subprocess.run(
            argv,
            input=public_key_line + "\n",
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as ex:
        raise SshError(f"ssh-keygen could not be run: {type(ex).__name__}") from ex
    fields = completed.stdout.split()
    if (
        completed.returncode != 0
        or len(fields) < 2
        or not fields[1].startswith(_FINGERPRINT_PREFIX)
    ):
        tail = completed.stderr.strip()[-_STDERR_TAIL_CHARS:]
        raise SshError(f"ssh-keygen could not fingerprint the key: {tail or 'no output'}")
    return fields[1]


def _read_string(blob: bytes, offset: int) -> tuple[bytes, int] | None:
    """Read one uint32-length-prefixed string; None when it overruns the blob."""
    if offset + 4 > len(blob):
        return None
    (length,) = struct.unpack_from(">I", blob, offset)
    end = offset + 4 + length
    if end > len(blob):
        return None
    return blob[offset + 4 : end], end


def _is_positive_mpint(value: bytes) -> bool:
    """Tell whether an RFC 4251 mpint is a minimally encoded positive number."""
    if not value or value[0] & 0x80:
        return False
    # A leading zero byte is only allowed to keep the sign bit clear.
    return value[0] != 0 or (len(value) > 1 and bool(value[1] & 0x80))


def _is_ed25519_public(value: bytes) -> bool:
    return len(value) == 32


def _any_string(value: bytes) -> bool:
    """Accept any string (a field whose content OpenSSH does not constrain)."""
    return True


def _curve_checks(curve: str) -> tuple[Callable[[bytes], bool], ...]:
    """Return the field checks after the name for an ECDSA key on ``curve``."""
    point_length = _EC_POINT_LENGTHS[curve]
    return (
        lambda value: value == curve.encode("ascii"),
        lambda value: len(value) == point_length and value[0] == 0x04,
    )


# Fields that follow the embedded key type name, per key type.
_KEY_FIELDS: dict[str, tuple[Callable[[bytes], bool], ...]] = {
    "ssh-ed25519": (_is_ed25519_public,),
    "ssh-rsa": (_is_positive_mpint, _is_positive_mpint),
    "ssh-dss": (_is_positive_mpint,) * 4,
    "ecdsa-sha2-nistp256": _curve_checks("nistp256"),
    "ecdsa-sha2-nistp384": _curve_checks("nistp384"),
    "ecdsa-sha2-nistp521": _curve_checks("nistp521"),
    "sk-ssh-ed25519@openssh.com": (_is_ed25519_public, _any_string),
    "sk-ecdsa-sha2-nistp256@openssh.com": (*_curve_checks("nistp256"), _any_string),
}

SUPPORTED_KEY_TYPES: frozenset[str] = frozenset(_KEY_FIELDS)
"""Plain (non-certificate) key types whose blobs :func:`is_valid_key_blob` knows."""


def is_valid_key_blob(key_type: str, blob: bytes) -> bool:
    """Check that a blob is a well-formed public key of the given type.

    The blob must start with the length-prefixed name ``key_type``, followed by
    exactly the fields that type defines, each well formed, and nothing after.

    Args:
        key_type: The key type the blob claims to be, e.g. ``ssh-ed25519``.
        blob: The raw key blob.

    Returns:
        True if the blob parses as a ``key_type`` key; False otherwise, and
        for any type not in :data:`SUPPORTED_KEY_TYPES`.
    """
    checks = _KEY_FIELDS.get(key_type)
    if checks is None:
        return False
    name = _read_string(blob, 0)
    if name is None or name[0] != key_type.encode("ascii"):
        return False
    offset = name[1]
    for check in checks:
        field = _read_string(blob, offset)
        if field is None or not check(field[0]):
            return False
        offset = field[1]
    return offset == len(blob)
