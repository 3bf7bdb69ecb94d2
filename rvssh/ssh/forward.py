"""Add and cancel ``-L`` forwards on a live master (``ssh -O forward|cancel``).

A forward added to the master costs no new handshake; asking twice for the
same forward is a no-op, and a busy local port answers "Port forwarding
failed".
"""

from __future__ import annotations

import logging
import socket
import subprocess
from pathlib import Path
from typing import Callable

from rvssh.ssh.argv import SshCommon, build_forward_argv
from rvssh.ssh.errors import ForwardError, PortInUseError, SshCommandError
from rvssh.ssh.process import run_command
from rvssh.ssh.target import Target

log = logging.getLogger(__name__)
FORWARD_TIMEOUT = 10.0


def pick_free_local_port() -> int:
    """Return a TCP port free on 127.0.0.1 right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def local_port_is_free(port: int) -> bool:
    """Return whether 127.0.0.1:``port`` can be bound now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class Forwarder:
    """Manage local forwards of one rvssh instance's masters."""

    def __init__(self, common: SshCommon, control_path: Callable[[Target], Path], environ: dict[str, str]) -> None:
        self._common = common
        self._control_path = control_path
        self._env = environ

    def add(self, target: Target, local_port: int, remote_port: int) -> None:
        """Forward 127.0.0.1:local_port to the server's 127.0.0.1:remote_port.

        Raises:
            PortInUseError: the local port is taken.
            ForwardError: the master refused for another reason.
        """
        result = self._run(target, "forward", local_port, remote_port)
        if result.returncode == 0:
            log.info("forwarding 127.0.0.1:%d to %s's 127.0.0.1:%d", local_port, target.connection_id, remote_port)
            return
        message = result.stderr.decode("utf-8", "replace").strip()
        if "Port forwarding failed" in message:
            raise PortInUseError(f"Local port {local_port} is already in use")
        raise ForwardError(f"SSH tunnel failed: {message or 'ssh -O forward failed'}")

    def cancel(self, target: Target, local_port: int, remote_port: int) -> bool:
        """Remove the forward; return whether the master accepted the cancel."""
        cancelled = self._run(target, "cancel", local_port, remote_port).returncode == 0
        if cancelled:
            log.info("stopped forwarding 127.0.0.1:%d to %s", local_port, target.connection_id)
        return cancelled

    def _run(self, target: Target, operation: str, local_port: int, remote_port: int) -> subprocess.CompletedProcess[bytes]:
        argv = build_forward_argv(self._common, target, self._control_path(target), operation, local_port, remote_port)
        try:
            return run_command(argv, env=self._env, timeout=FORWARD_TIMEOUT)
        except SshCommandError as ex:
            raise ForwardError(f"SSH tunnel failed: {ex.message}") from ex
