"""An sshd behind a link the test can take down and bring back: the closest thing to a laptop's sleep.

The bed makes a network namespace of its own, joined to this machine by a
veth pair on a private /30, and runs its sshd inside it. ``link_down()``
sets the namespace's end of the pair down: packets to the server vanish,
as on a dead Wi-Fi link, and nothing answers. An ``unreachable`` route for
the /24 around it keeps every packet between this machine and the
namespace, whatever the state of the link. Needs root and iproute2.
"""

from __future__ import annotations

import os
import subprocess

from tests.sshbed import SshBed, SshBedError


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if check and result.returncode != 0:
        raise SshBedError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")
    return result


class NetnsBed(SshBed):
    """An SshBed whose sshd listens on 10.231.<n>.2 inside a network namespace of its own."""

    def __init__(self) -> None:
        super().__init__()
        tag = os.getpid() % 10000
        subnet = 16 + os.getpid() % 200
        self.namespace = f"rvt-ns{tag}"
        self.host_link = f"rvt-h{tag}"
        self.server_link = f"rvt-n{tag}"
        self.local_address = f"10.231.{subnet}.1"
        self.host = f"10.231.{subnet}.2"
        self._guard_route = f"10.231.{subnet}.0/24"

    def start(self) -> None:
        """Make the namespace and its link, then start the bed inside it."""
        self._remove_network()
        try:
            _ip("netns", "add", self.namespace)
            _ip("link", "add", self.host_link, "type", "veth", "peer", "name", self.server_link)
            _ip("link", "set", self.server_link, "netns", self.namespace)
            _ip("addr", "add", f"{self.local_address}/30", "dev", self.host_link)
            _ip("link", "set", self.host_link, "up")
            # APPSEC: with the link down, traffic for these addresses must not
            # leave the machine by the default route.
            _ip("route", "add", "unreachable", self._guard_route, "metric", "1000")
            inside = ("netns", "exec", self.namespace, "ip")
            _ip(*inside, "addr", "add", f"{self.host}/30", "dev", self.server_link)
            _ip(*inside, "link", "set", self.server_link, "up")
            _ip(*inside, "link", "set", "lo", "up")
            super().start()
        except BaseException:
            self._remove_network()
            raise

    def stop(self) -> None:
        """Stop the bed and remove the namespace and its link."""
        try:
            super().stop()
        finally:
            self._remove_network()

    def sshd_argv(self) -> list[str]:
        return ["ip", "netns", "exec", self.namespace, *super().sshd_argv()]

    def link_down(self) -> None:
        """Take the server's end of the link down: its packets vanish."""
        _ip("netns", "exec", self.namespace, "ip", "link", "set", self.server_link, "down")

    def link_up(self) -> None:
        """Bring the server's end of the link back."""
        _ip("netns", "exec", self.namespace, "ip", "link", "set", self.server_link, "up")

    def _remove_network(self) -> None:
        _ip("route", "del", "unreachable", self._guard_route, check=False)
        _ip("link", "del", self.host_link, check=False)
        _ip("netns", "del", self.namespace, check=False)
