"""rvssh's own ssh_config: the host-key rules for every hop, then the user's config.

Options given with ``-o`` reach only the ssh that rvssh starts; the ssh that
``ProxyJump`` starts for each hop reads config files but not the outer
command line. A config file passed with ``-F`` is passed on to every hop, so
the rules that must hold on the whole route (strict host-key checking
against our known_hosts file, the capture of presented keys, keepalives, one
password prompt) live here, in a ``Host *`` block written *before* the
user's own config is included: in ssh_config the first value obtained for an
option wins, so the user's file can add to these rules but not loosen them.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from rvssh.files import write_bytes_atomic

# What plain ``ssh`` reads when no -F is given: the user's file, then the system's.
DEFAULT_USER_CONFIGS = ("~/.ssh/config", "/etc/ssh/ssh_config")


def included_configs(user_config: Path | None) -> tuple[str, ...]:
    """Return the config files rvssh's own ssh_config includes: ``user_config``, else what plain ssh reads."""
    return (str(user_config),) if user_config is not None else DEFAULT_USER_CONFIGS


def quote_config_value(value: str) -> str:
    """Quote a value for ssh_config, where ``%`` starts a token and spaces split words."""
    return '"' + value.replace("%", "%%") + '"'


def known_hosts_command(capture_file: Path) -> str:
    """Return a KnownHostsCommand that records the key a server presents.

    ssh runs it with the key it is checking (%H host as looked up, %p port,
    %t type, %K base64), for the target and for every ProxyJump hop. It
    prints nothing, so it never makes a key trusted; the capture file is how
    the 409 carries the key that was actually offered, and by which hop.
    """
    return "/bin/sh -c 'echo \"$*\" >> \"$0\"' " + quote_config_value(str(capture_file)) + " %H %p %t %K"


@dataclass(frozen=True)
class SshConfigSpec:
    """What rvssh's ssh_config says.

    Attributes:
        known_hosts_files: trusted in this order (our managed file first).
        user_config: the user's config to include; None means what plain ssh
            reads (``~/.ssh/config``, then ``/etc/ssh/ssh_config``).
        server_alive_interval: seconds between keepalives on a quiet link.
        server_alive_count_max: unanswered keepalives before ssh gives up.
    """

    known_hosts_files: tuple[str, ...]
    user_config: Path | None
    server_alive_interval: int
    server_alive_count_max: int


def render_ssh_config(spec: SshConfigSpec, capture_file: Path | None = None) -> str:
    """Return the text of rvssh's ssh_config (with a host-key capture when given)."""
    known_hosts = " ".join(quote_config_value(path) for path in spec.known_hosts_files)
    lines = [
        "# Written by rvssh for every ssh it runs (ProxyJump hops included); do not edit.",
        "Host *",
        # APPSEC: strict checking against our file, then the user's own
        # known_hosts; nothing is ever added automatically, on any hop.
        "    StrictHostKeyChecking yes",
        f"    UserKnownHostsFile {known_hosts}",
        "    UpdateHostKeys no",
        # APPSEC: one password prompt per host: a wrong one is never retried.
        "    NumberOfPasswordPrompts 1",
        f"    ServerAliveInterval {spec.server_alive_interval}",
        f"    ServerAliveCountMax {spec.server_alive_count_max}",
    ]
    if capture_file is not None:
        lines.append(f"    KnownHostsCommand {known_hosts_command(capture_file)}")
    lines += [f"    Include {path if path.startswith('~') else quote_config_value(path)}"
              for path in included_configs(spec.user_config)]
    return "\n".join(lines) + "\n"


class SshConfigFiles:
    """The config files rvssh passes with ``-F``: one shared, one per master start."""

    def __init__(self, spec: SshConfigSpec, directory: Path) -> None:
        self._spec = spec
        self._directory = directory
        self.shared = directory / "ssh_config"
        write_bytes_atomic(self.shared, render_ssh_config(spec).encode("utf-8"))

    def for_master_start(self, capture_file: Path) -> Path:
        """Write the config of one master start, whose hops record their keys in ``capture_file``."""
        path = self._directory / "tmp" / f"ssh_config-{secrets.token_hex(6)}"
        write_bytes_atomic(path, render_ssh_config(self._spec, capture_file).encode("utf-8"))
        return path
