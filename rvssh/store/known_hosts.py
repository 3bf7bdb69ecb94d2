"""The rvssh-managed OpenSSH known_hosts file.

ssh runs with ``UserKnownHostsFile="<this file> ~/.ssh/known_hosts"``, so what
this module writes is exactly what OpenSSH trusts. Lines are plain
``<known_hosts_host> <key_type> <base64>``; the host field is ``host`` for
port 22 and ``[host]:port`` otherwise (sshd(8), "SSH_KNOWN_HOSTS FILE FORMAT").

Lines written by others (comments, hashed hosts, ``@cert-authority`` and
``@revoked`` markers, lines that do not parse) are kept byte for byte. Writes
hold an ``fcntl.flock`` on ``<file>.lock`` and replace the file atomically.

The pure functions (:func:`format_known_hosts_host`,
:func:`parse_known_hosts_host`, :func:`parse_known_hosts_line`,
:func:`entries_from_line`, :func:`check_accept`) touch no file and can be
reused by other modules.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from rvssh.errors import BadRequestError, StoreError
from rvssh.files import LockTimeoutError, locked, write_bytes_atomic
from rvssh.ssh import fingerprint as fingerprints
from rvssh.ssh.errors import HostKey
from rvssh.ssh.hostkeys import parse_known_hosts_host

DEFAULT_LOCK_TIMEOUT = 10.0
_HASHED_PREFIX = "|1|"
# Characters that make a host field a pattern or a hashed/marker entry for
# OpenSSH (ssh_config(5) "PATTERNS", sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT").
_HOST_PATTERN_CHARS = frozenset("*?![]|")
_TOKEN_RE = re.compile(r"\S+")
# Key type names as OpenSSH spells them: ssh-ed25519, sk-ssh-ed25519@openssh.com, ...
_KEY_TYPE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9@._+-]{0,99}")


@dataclass(frozen=True)
class KnownHostEntry:
    """One host of one known_hosts line, as ``known-hosts/list`` reports it.

    The first six fields are the wire fields of the reference. ``marker`` is
    ``@cert-authority`` or ``@revoked`` for marker lines, and ``hashed`` is
    true when the host field is a hashed ``|1|salt|hash`` (then ``host`` and
    ``known_hosts_host`` hold that raw field and ``port`` is 22).
    """

    host: str
    port: int
    known_hosts_host: str
    key_type: str
    key_base64: str
    fingerprint_sha256: str
    marker: str | None = None
    hashed: bool = False

    def to_dict(self) -> dict[str, object]:
        """Return the entry as a JSON-ready dict (six wire fields plus additive ones)."""
        return asdict(self)


@dataclass(frozen=True)
class KnownHostsLine:
    """The parsed fields of one known_hosts line.

    Attributes:
        marker: ``@cert-authority``, ``@revoked`` (or another ``@`` word), else None.
        hosts: The comma-separated host fields, as written.
        key_type: The key type field.
        key_base64: The base64 key field, as written.
        hosts_start: Offset of the host list in the raw line.
        hosts_end: Offset just past the host list in the raw line.
    """

    marker: str | None
    hosts: tuple[str, ...]
    key_type: str
    key_base64: str
    hosts_start: int
    hosts_end: int


def format_known_hosts_host(host: str, port: int) -> str:
    """Format the known_hosts host field for a host and port.

    Args:
        host: The host exactly as the user gave it.
        port: The TCP port.

    Returns:
        ``host`` for port 22, ``[host]:port`` otherwise.
    """
    return host if port == 22 else f"[{host}]:{port}"


def parse_known_hosts_line(line: str) -> KnownHostsLine | None:
    """Parse one known_hosts line without judging its key.

    Args:
        line: One line, with or without its line ending.

    Returns:
        The parsed fields, or None for blank lines, ``#`` comments and lines
        with too few fields.
    """
    tokens = list(_TOKEN_RE.finditer(line))
    if not tokens or tokens[0].group().startswith("#"):
        return None
    marker = tokens[0].group() if tokens[0].group().startswith("@") else None
    fields = tokens[1:] if marker else tokens
    if len(fields) < 3:
        return None
    hosts_match = fields[0]
    return KnownHostsLine(
        marker=marker,
        hosts=tuple(hosts_match.group().split(",")),
        key_type=fields[1].group(),
        key_base64=fields[2].group(),
        hosts_start=hosts_match.start(),
        hosts_end=hosts_match.end(),
    )


def entries_from_line(line: str) -> list[KnownHostEntry]:
    """Turn one known_hosts line into list entries, one per host field.

    Args:
        line: One line, with or without its line ending.

    Returns:
        The entries; empty for comments, blank or short lines and for keys
        whose base64 does not decode. Never raises on file content.
    """
    parsed = parse_known_hosts_line(line)
    if parsed is None:
        return []
    blob = decode_key_base64(parsed.key_base64)
    if blob is None:
        return []
    fingerprint = fingerprints.fingerprint_sha256(blob)
    entries = []
    for field in parsed.hosts:
        hashed = field.startswith(_HASHED_PREFIX)
        host, port = (field, 22) if hashed else parse_known_hosts_host(field)
        entries.append(
            KnownHostEntry(
                host=host,
                port=port,
                known_hosts_host=field,
                key_type=parsed.key_type,
                key_base64=parsed.key_base64,
                fingerprint_sha256=fingerprint,
                marker=parsed.marker,
                hashed=hashed,
            )
        )
    return entries


def decode_key_base64(token: str) -> bytes | None:
    """Decode a base64 key token strictly, padding it to a multiple of 4.

    Args:
        token: The base64 field of a key line.

    Returns:
        The blob, or None if the token is not valid base64.
    """
    try:
        return base64.b64decode(token + "=" * (-len(token) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def _is_bad_host(host: str) -> bool:
    """Tell whether a host would be a pattern, marker or option, not a literal."""
    return (
        host.startswith(("@", "-"))
        or any(ch in _HOST_PATTERN_CHARS for ch in host)
        or any(unicodedata.category(ch) == "Cc" for ch in host)
    )


def _has_space(value: str) -> bool:
    return any(ch.isspace() for ch in value)


def _text_field_error(host: str, key_type: str, public_key: str, fingerprint: str) -> str | None:
    """Return the message of the first failed text check (§2.4 steps 1-8), if any."""
    checks = (
        (not host, "Invalid host"),
        (not key_type, "Invalid key_type"),
        (not fingerprint, "Invalid fingerprint_sha256"),
        ("\n" in public_key or "\r" in public_key, "Invalid public_key"),
        (_has_space(host) or "," in host, "Invalid host"),
        # APPSEC: a pattern (`*`, `?`, `!`, `[...]`), hashed `|`, `@` marker or
        # option-like host would widen trust beyond the host the user confirmed.
        (_is_bad_host(host), "Invalid host"),
        (_has_space(key_type), "Invalid key_type"),
        (_has_space(fingerprint), "Invalid fingerprint_sha256"),
    )
    return next((message for failed, message in checks if failed), None)


def _parse_public_key(public_key: str, key_type: str) -> bytes:
    """Decode ``<type> <base64> [comment]`` into a blob of ``key_type`` (steps 9-10)."""
    tokens = public_key.split()
    if len(tokens) < 2:
        raise BadRequestError("Invalid public_key: Invalid public key format")
    blob = decode_key_base64(tokens[1])
    if blob is None:
        raise BadRequestError("Invalid public_key: Invalid base64 public key")
    if tokens[0] != key_type:
        raise BadRequestError("key_type does not match public_key")
    # APPSEC: the blob must really be a key of the named type, so OpenSSH
    # parses the line we write and matches it against what the server shows.
    if key_type not in fingerprints.SUPPORTED_KEY_TYPES:
        raise BadRequestError("Invalid public_key: unsupported key type")
    if not fingerprints.is_valid_key_blob(key_type, blob):
        raise BadRequestError(f"Invalid public_key: key blob is not a valid {key_type} key")
    return blob


def check_accept(host: str, key_type: str, public_key: str, fingerprint_sha256: str) -> HostKey:
    """Validate an accept request in the reference's order; return the key.

    The 422-level checks (port range, public_key length) belong to the HTTP
    models; this does the 400-level ones, first failure wins.

    Args:
        host: The host to trust the key for.
        key_type: The claimed key type.
        public_key: ``<type> <base64> [comment]``, one line.
        fingerprint_sha256: The ``SHA256:...`` fingerprint the user confirmed.

    Returns:
        The key to store, with the blob re-encoded as canonical base64.

    Raises:
        BadRequestError: With the reference's message for the first failed check.
    """
    # APPSEC: this is the only way a key becomes trusted by ssh, so every
    # field is checked before anything touches the file (spec §2.4, §13.4).
    message = _text_field_error(host, key_type, public_key, fingerprint_sha256)
    if message is not None:
        raise BadRequestError(message)
    blob = _parse_public_key(public_key, key_type)
    fingerprint = fingerprints.fingerprint_sha256(blob)
    if fingerprint != fingerprint_sha256:
        raise BadRequestError("fingerprint_sha256 does not match public_key")
    return HostKey(key_type, base64.b64encode(blob).decode("ascii"), fingerprint)


def _host_field_matches(field: str, target: str) -> bool:
    """Tell whether a host field names ``target`` literally or as a hashed host."""
    if not field.startswith(_HASHED_PREFIX):
        return field == target
    parts = field[len(_HASHED_PREFIX) :].split("|")
    if len(parts) != 2:
        return False
    salt, digest = (decode_key_base64(part) for part in parts)
    if salt is None or digest is None:
        return False
    expected = hmac.new(salt, target.encode("utf-8", "surrogateescape"), hashlib.sha1).digest()
    return hmac.compare_digest(expected, digest)


def _matches(parsed: KnownHostsLine, target: str, key_type: str | None) -> bool:
    """Tell whether a plain (non-marker) line holds ``target`` with ``key_type``."""
    # APPSEC: marker lines never match, so @revoked and @cert-authority
    # entries are never rewritten or reported as a host's stored key.
    return (
        parsed.marker is None
        and (key_type is None or parsed.key_type == key_type)
        and any(_host_field_matches(field, target) for field in parsed.hosts)
    )


def _without_host(line: str, parsed: KnownHostsLine, target: str) -> str | None:
    """Drop ``target`` from a line's host list; None when no host remains."""
    remaining = [field for field in parsed.hosts if not _host_field_matches(field, target)]
    if not remaining:
        return None
    return line[: parsed.hosts_start] + ",".join(remaining) + line[parsed.hosts_end :]


def _split_lines(text: str) -> list[str]:
    """Split on newlines only, keeping each line's ending, as OpenSSH reads lines."""
    lines = text.split("\n")
    with_ends = [line + "\n" for line in lines[:-1]]
    return [*with_ends, lines[-1]] if lines[-1] else with_ends


def _join_lines(lines: list[str]) -> str:
    """Join lines, giving a newline to any line that is no longer the last."""
    last = len(lines) - 1
    return "".join(
        line if line.endswith("\n") or index == last else line + "\n"
        for index, line in enumerate(lines)
    )


def upsert_lines(lines: list[str], target: str, key: HostKey) -> list[str]:
    """Put ``key`` for ``target`` into the lines with the reference's upsert rules.

    The first line holding ``target`` with the same key type is replaced by
    the new line (or, if it names other hosts too, keeps them and the new
    line follows it); later such lines lose ``target``; with no match the new
    line is appended. Every other line is kept byte for byte.

    Args:
        lines: The file's lines, each with its line ending.
        target: The formatted known_hosts host.
        key: The key to store.

    Returns:
        The new lines.
    """
    new_line = f"{target} {key.key_type} {key.key_base64}\n"
    result: list[str] = []
    placed = False
    for line in lines:
        parsed = parse_known_hosts_line(line)
        if parsed is None or not _matches(parsed, target, key.key_type):
            result.append(line)
            continue
        kept = _without_host(line, parsed, target)
        if kept is not None:
            result.append(kept)
        if not placed:
            result.append(new_line)
            placed = True
    if not placed:
        result.append(new_line)
    return result


def remove_lines(lines: list[str], target: str, key_type: str) -> list[str]:
    """Drop ``target`` from every line holding it with ``key_type``.

    Args:
        lines: The file's lines, each with its line ending.
        target: The formatted known_hosts host.
        key_type: The key type to remove; other types stay.

    Returns:
        The new lines; lines that did not match are the same strings.
    """
    result: list[str] = []
    for line in lines:
        parsed = parse_known_hosts_line(line)
        if parsed is None or not _matches(parsed, target, key_type):
            result.append(line)
            continue
        kept = _without_host(line, parsed, target)
        if kept is not None:
            result.append(kept)
    return result


class KnownHostsStore:
    """Read and change the managed known_hosts file at one path."""

    def __init__(self, path: Path, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> None:
        """Create a store for ``path``; nothing is touched until it is used.

        Args:
            path: The managed known_hosts file.
            lock_timeout: Seconds to wait for ``<path>.lock`` before giving up.
        """
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.lock_timeout = lock_timeout

    def list_entries(self) -> list[KnownHostEntry]:
        """List the file's entries in file order, one per host of each line.

        Returns:
            The entries; lines that cannot be understood are skipped. A
            missing file gives an empty list.

        Raises:
            StoreError: The file exists but cannot be read.
        """
        lines = self._read_lines("Failed to list known_hosts")
        return [entry for line in lines for entry in entries_from_line(line)]

    def accept(
        self, host: str, port: int, key_type: str, public_key: str, fingerprint_sha256: str
    ) -> bool:
        """Validate a confirmed host key and trust it for host and port.

        Args:
            host: The host as the user gave it.
            port: The TCP port (1..65535, checked by the HTTP model).
            key_type: The key type.
            public_key: ``<type> <base64> [comment]``.
            fingerprint_sha256: The fingerprint the user confirmed.

        Returns:
            Whether the file changed.

        Raises:
            BadRequestError: A field is invalid (see :func:`check_accept`).
            StoreError: The file could not be locked, read or written.
        """
        key = check_accept(host, key_type, public_key, fingerprint_sha256)
        target = format_known_hosts_host(host, port)
        return self._rewrite("Failed to write known_hosts", lambda lines: upsert_lines(lines, target, key))

    def remove(self, host: str, port: int, key_type: str) -> bool:
        """Stop trusting keys of one type for a host and port.

        Args:
            host: The host as the user gave it.
            port: The TCP port.
            key_type: The key type to remove; other types stay.

        Returns:
            Whether the file changed. Nothing matched means no write at all.

        Raises:
            BadRequestError: ``host`` is empty or not a literal host, or
                ``key_type`` is not a key type name.
            StoreError: The file could not be locked, read or written.
        """
        # APPSEC: the same literal-host rules as accept; a pattern or an odd
        # key type is a 400, not a silent "nothing changed".
        if not host or _has_space(host) or "," in host or _is_bad_host(host):
            raise BadRequestError("Invalid host")
        if not _KEY_TYPE_RE.fullmatch(key_type):
            raise BadRequestError("Invalid key_type")
        if not self.path.exists():
            return False
        target = format_known_hosts_host(host, port)
        return self._rewrite(
            "Failed to remove known_hosts entry", lambda lines: remove_lines(lines, target, key_type)
        )

    def _rewrite(self, prefix: str, change: Callable[[list[str]], list[str]]) -> bool:
        """Apply ``change`` to the file's lines under the lock; write only if they changed."""
        with self._locked(prefix):
            lines = self._read_lines(prefix)
            new_lines = change(lines)
            changed = new_lines != lines
            if changed:
                self._write_lines(new_lines, prefix)
        return changed

    def _read_lines(self, prefix: str) -> list[str]:
        """Read the file as lines; surrogateescape keeps any byte round-trippable."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as ex:
            raise StoreError(f"{prefix}: Failed to read known_hosts: {self.path}") from ex
        return _split_lines(data.decode("utf-8", "surrogateescape"))

    @contextlib.contextmanager
    def _locked(self, prefix: str) -> Iterator[None]:
        """Hold an exclusive flock on ``<path>.lock``, up to the lock timeout."""
        try:
            with locked(self.lock_path, self.lock_timeout):
                yield
        except LockTimeoutError as ex:
            raise StoreError(f"{prefix}: Timeout acquiring known_hosts lock: {self.lock_path}") from ex

    def _write_lines(self, lines: list[str], prefix: str) -> None:
        """Replace the file whole (temp file, fsync, rename, directory fsync), mode 0600."""
        data = _join_lines(lines).encode("utf-8", "surrogateescape")
        try:
            write_bytes_atomic(self.path, data)
        except StoreError as ex:
            raise StoreError(f"{prefix}: Failed to write known_hosts atomically: {self.path}") from ex
