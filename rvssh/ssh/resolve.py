"""What ssh makes of a destination after reading the config: ``ssh -G``.

ssh config is the source of truth: a request without ``username`` connects
as the ``User`` that ``ssh -G <host>`` prints (the config's, else the local
account, exactly as ``ssh <host>`` would), and ``rvssh hosts`` shows where
each alias leads.
"""

from __future__ import annotations

from dataclasses import dataclass

from rvssh.ssh.argv import SshCommon, build_resolve_argv
from rvssh.ssh.errors import ConnectError
from rvssh.ssh.process import run_command
from rvssh.ssh.target import check_host, check_port

RESOLVE_TIMEOUT = 10.0


@dataclass(frozen=True)
class Destination:
    """Where ssh would go for a name: user, host name, port, and the jump hosts on the way."""

    user: str
    hostname: str
    port: int
    proxy_jump: str | None


def parse_ssh_g(text: str) -> dict[str, str]:
    """Return ``ssh -G``'s options as {lower-case name: value} (the first line of each name)."""
    options: dict[str, str] = {}
    for line in text.splitlines():
        name, _, value = line.strip().partition(" ")
        if name:
            options.setdefault(name.lower(), value.strip())
    return options


def resolve_destination(
    common: SshCommon, env: dict[str, str], host: str, port: int | None = None, username: str | None = None
) -> Destination:
    """Ask ``ssh -G`` where ``host`` leads (``port``/``username`` as given on a command line).

    Raises:
        InvalidTargetError: ``host`` or ``port`` could be read as an option or is out of range.
        ConnectError: ssh could not read its config for this host.
    """
    check_host(host)
    if port is not None:
        check_port(port)
    result = run_command(build_resolve_argv(common, host, port, username), env=env, timeout=RESOLVE_TIMEOUT)
    if result.returncode != 0:
        reason = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ConnectError(f"Connection failed: ssh cannot read its config for {host}: {reason[-1] if reason else ''}")
    options = parse_ssh_g(result.stdout.decode("utf-8", "replace"))
    jump = options.get("proxyjump")
    return Destination(
        user=options.get("user", ""),
        hostname=options.get("hostname", host),
        port=int(options.get("port", "22")),
        proxy_jump=None if jump in (None, "none") else jump,
    )
