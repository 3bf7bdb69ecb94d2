"""HOST on the command line: the forms ``rvssh open`` and ``rvssh stop`` accept.

- an alias of your ssh config, or a host name or address: ``gpu-box``, ``10.0.0.5``, ``fe80::1``;
- ``user@host`` (split at the last ``@``, as ssh does);
- ``host:port`` and ``[v6 address]:port`` (a bare IPv6 address has no port);
- ``ssh://[user@]host[:port]`` (ssh's own URI form; ``[v6]`` in brackets).

Without a user, the request leaves ``username`` out and rvssh asks ssh's
config (``ssh -G``), exactly as ``ssh host`` would; without a port, the
alias's ``Port`` (or 22) applies. The host itself is checked by rvssh when
the request arrives, as for any client.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from rvssh.client.errors import UsageError

SSH_URI = "ssh://"
_BRACKETED = re.compile(r"\[(?P<host>[^\[\]]+)\](?::(?P<port>[^:]*))?\Z")


@dataclass(frozen=True)
class Destination:
    """A host as typed, with the user and port it names (None: ssh's config decides)."""

    host: str
    port: int | None = None
    username: str | None = None

    def request_fields(self) -> dict[str, Any]:
        """Return the destination fields of a connect request (only what was given)."""
        fields: dict[str, Any] = {"host": self.host}
        if self.port is not None:
            fields["port"] = self.port
        if self.username is not None:
            fields["username"] = self.username
        return fields

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host and self.port is not None else self.host
        user = f"{self.username}@" if self.username is not None else ""
        port = f":{self.port}" if self.port is not None else ""
        return f"{user}{host}{port}"


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise UsageError(f"not a port (1-65535) in {whole!r}: {text!r}")
    return int(text)


def _host_and_port(text: str, whole: str) -> tuple[str, int | None]:
    bracketed = _BRACKETED.match(text)
    if bracketed:
        port = bracketed.group("port")
        return bracketed.group("host"), _port(port, whole) if port is not None else None
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, _port(port, whole)
    return text, None  # a name, or a bare IPv6 address (no port without brackets)


def parse_destination(text: str) -> Destination:
    """Parse HOST as the command line gives it.

    Raises:
        UsageError: an empty host or user, a bad port, a path after an ``ssh://`` host.
    """
    whole = text
    if text.startswith(SSH_URI):
        text = text[len(SSH_URI):]
        if text.endswith("/"):
            text = text[:-1]
        if "/" in text:
            raise UsageError(f"an ssh:// address has no path: {whole!r}")
    user, at, rest = text.rpartition("@")
    if at and not user:
        raise UsageError(f"no user before '@' in {whole!r}")
    host, port = _host_and_port(rest, whole)
    if not host:
        raise UsageError(f"no host in {whole!r}")
    return Destination(host=host, port=port, username=user if at else None)
