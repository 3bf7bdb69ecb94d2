"""A validated ssh destination and its wire identity, the connection_id."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rvssh.errors import BadRequestError
from rvssh.ssh.errors import InvalidTargetError

# APPSEC: a host or user that ssh could read as an option (leading "-") or
# that carries whitespace, quotes or control characters never reaches argv.
# Hosts: DNS names, IPv4, IPv6 (with an optional %scope), ssh_config aliases.
_HOST_RE = re.compile(r"^[A-Za-z0-9_.:%]([A-Za-z0-9_.:%-]{0,252})$")
# Users: POSIX names plus the "user@domain" and "DOMAIN\user" forms.
_USER_RE = re.compile(r"^[A-Za-z0-9_.@\\$+]([A-Za-z0-9_.@\\$+-]{0,255})$")
DEFAULT_PORT = 22


@dataclass(frozen=True)
class Target:
    """Where to connect: host (name, address or ssh_config alias), port and user."""

    host: str
    port: int
    username: str

    @property
    def connection_id(self) -> str:
        """Return ``username@host:port`` exactly as the Runicorn UI computes it."""
        return f"{self.username}@{self.host}:{self.port}"

    @property
    def port_is_default(self) -> bool:
        """Whether the port is 22, in which case ~/.ssh/config may choose another."""
        return self.port == DEFAULT_PORT

    def destination_args(self) -> list[str]:
        """Return the argv tail naming the destination: ``-l user [-p port] -- host``.

        Port 22 is what clients such as the Runicorn UI always send, so it is
        left to ssh: a Host alias with its own Port in ~/.ssh/config wins.
        """
        args = ["-l", self.username]
        if not self.port_is_default:
            args += ["-p", str(self.port)]
        return args + ["--", self.host]


def check_host(host: str) -> str:
    """Return ``host`` if ssh may be given it, else raise InvalidTargetError."""
    if not host or not _HOST_RE.fullmatch(host):
        raise InvalidTargetError(f"Invalid host: {host!r}")
    return host


def check_port(port: int) -> int:
    """Return ``port`` if it is a TCP port, else raise InvalidTargetError."""
    if not 1 <= port <= 65535:
        raise InvalidTargetError(f"Invalid port: {port}")
    return port


def make_target(host: str, port: int, username: str) -> Target:
    """Validate request strings and return a Target, or raise InvalidTargetError."""
    check_host(host)
    if not username or not _USER_RE.fullmatch(username):
        raise InvalidTargetError(f"Invalid username: {username!r}")
    return Target(host=host, port=check_port(port), username=username)


def parse_connection_id(connection_id: str) -> Target:
    """Parse ``username@host:port`` (split at the last ':' and the last '@')."""
    invalid = BadRequestError(f"Invalid connection_id format: {connection_id}")
    left, sep, port_text = connection_id.rpartition(":")
    if not sep or not port_text.isdigit():
        raise invalid
    username, at, host = left.rpartition("@")
    if not at:
        raise invalid
    try:
        return make_target(host, int(port_text), username)
    except InvalidTargetError as ex:
        raise invalid from ex
