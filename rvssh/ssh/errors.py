"""Errors of the OpenSSH layer.

Each carries a message safe to show to a client and, where useful, a scrubbed
tail of ssh's stderr. The ssh layer never imports HTTP code; the mapping to
status codes lives in ``rvssh/http/errors.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rvssh.errors import RvsshError

if TYPE_CHECKING:
    from rvssh.ssh.prompts import Prompt


class SshError(RvsshError):
    """Base of every failure of an ssh operation."""


class InvalidTargetError(SshError):
    """Host, user or port is unusable; raised before any ssh runs."""


class ConnectError(SshError):
    """ssh could not reach or set up the connection (refused, DNS, timeout)."""


class AuthenticationError(SshError):
    """The server refused our credentials. Never retried (account lockout)."""


class AuthPromptError(AuthenticationError):
    """The server asked questions the request cannot answer (a second factor, a password).

    ``prompts`` are the questions to answer with ``responses`` on the retry,
    in order; the handshake stopped at the last one.
    """

    def __init__(self, message: str, prompts: list[Prompt]) -> None:
        super().__init__(message)
        self.prompts = prompts


@dataclass(frozen=True)
class HostKey:
    """A host key as ssh saw it or as a known_hosts file stores it."""

    key_type: str
    key_base64: str
    fingerprint_sha256: str

    @property
    def public_key(self) -> str:
        return f"{self.key_type} {self.key_base64}"


class HostKeyError(SshError):
    """ssh refused the host key: unknown, or different from the stored one."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        known_hosts_host: str,
        reason: str,
        presented: HostKey,
        expected: HostKey | None = None,
    ) -> None:
        super().__init__("Host key verification failed")
        self.host = host
        self.port = port
        self.known_hosts_host = known_hosts_host
        self.reason = reason
        self.presented = presented
        self.expected = expected


class SshCommandError(SshError):
    """An OpenSSH program could not run or did not finish (missing, timed out, wedged master)."""


class MasterGoneError(SshError):
    """The connection's ControlMaster is not running any more."""


class ForwardError(SshError):
    """A port forward could not be added or cancelled."""


class PortInUseError(ForwardError):
    """The local port of a forward is taken by another program."""


class RemoteCommandError(SshError):
    """A remote command or script failed."""

    def __init__(self, message: str, exit_status: int | None = None) -> None:
        super().__init__(message)
        self.exit_status = exit_status


class RemoteOutputError(SshError):
    """A remote script did not print the JSON it promises."""
