"""Pure builders for every ssh command line rvssh runs.

Nothing here spawns a process; each function returns the argv list, and the
unit tests assert the whole list.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rvssh.ssh.target import Target


@dataclass(frozen=True)
class SshCommon:
    """Options every ssh invocation of one rvssh instance shares."""

    ssh_binary: str
    ssh_config: Path | None
    known_hosts_files: tuple[str, ...]

    def base(self) -> list[str]:
        argv = [self.ssh_binary]
        if self.ssh_config is not None:
            argv += ["-F", str(self.ssh_config)]
        return argv


@dataclass(frozen=True)
class MasterAuth:
    """Which credentials the master may use. Holds no secret, only paths and flags."""

    key_file: Path | None = None
    use_agent: bool = True
    password_allowed: bool = False


def _quote_for_ssh_config(value: str) -> str:
    """Quote a value for an ssh -o option that ssh splits like a shell would."""
    return '"' + value.replace("%", "%%") + '"'


def known_hosts_command(capture_file: Path) -> str:
    """Return a KnownHostsCommand that records the key the server presents.

    ssh runs it with the key it is checking (%H host, %t type, %K base64 key);
    it prints nothing, so it never adds a trusted key. The capture file is how
    the 409 carries the key the server actually offered.
    """
    return "/bin/sh -c 'echo \"$*\" >> \"$0\"' " + _quote_for_ssh_config(str(capture_file)) + " %H %p %t %K"


def build_master_argv(
    common: SshCommon,
    target: Target,
    *,
    control_path: Path,
    capture_file: Path,
    auth: MasterAuth,
    connect_timeout: float,
) -> list[str]:
    """Build the argv that starts a persistent ControlMaster for ``target``.

    ``-f`` makes ssh return once authentication is done, so exit status 0 means
    the master is up; ControlPersist=yes keeps it running after rvssh (or a
    gunicorn worker) exits, until ``-O exit``.
    """
    known_hosts = " ".join(_quote_for_ssh_config(path) for path in common.known_hosts_files)
    argv = common.base() + [
        "-f",
        "-N",
        "-o", "ControlMaster=yes",
        "-o", f"ControlPath={_quote_for_ssh_config(str(control_path))}",
        "-o", "ControlPersist=yes",
        # APPSEC: strict checking against our file first, then the user's own
        # known_hosts; nothing is ever added automatically.
        "-o", "StrictHostKeyChecking=yes",
        "-o", f"UserKnownHostsFile={known_hosts}",
        "-o", f"KnownHostsCommand={known_hosts_command(capture_file)}",
        "-o", "UpdateHostKeys=no",
        "-o", f"ConnectTimeout={max(1, int(connect_timeout))}",
        "-o", "ServerAliveInterval=15",
        "-o", "ServerAliveCountMax=3",
        # APPSEC: one password prompt only; a wrong password is never retried.
        "-o", "NumberOfPasswordPrompts=1",
        # The user's LocalForward lines would clash between masters.
        "-o", "ClearAllForwardings=yes",
        "-o", "BatchMode=no",
    ]
    if not auth.use_agent:
        argv += ["-o", "IdentityAgent=none"]
    if auth.key_file is not None:
        argv += ["-i", str(auth.key_file)]
    if not auth.password_allowed:
        # Fail fast instead of waiting at a prompt nobody will answer.
        argv += ["-o", "PasswordAuthentication=no", "-o", "KbdInteractiveAuthentication=no"]
    return argv + target.destination_args()


def _mux_options(control_path: Path) -> list[str]:
    # ProxyCommand=false: if the master is gone, ssh would otherwise quietly
    # open a fresh connection (new login, prompts); this makes it fail instead.
    return [
        "-o", f"ControlPath={_quote_for_ssh_config(str(control_path))}",
        "-o", "ControlMaster=no",
        "-o", "ProxyCommand=false",
        "-o", "BatchMode=yes",
    ]


def build_control_argv(common: SshCommon, target: Target, control_path: Path, command: str) -> list[str]:
    """Build ``ssh -O <command>`` (check, exit) for the master of ``target``."""
    return common.base() + _mux_options(control_path) + ["-O", command] + target.destination_args()


def build_exec_argv(common: SshCommon, target: Target, control_path: Path, remote_command: str) -> list[str]:
    """Build the argv that runs ``remote_command`` over the master, without a tty.

    ``remote_command`` must already be a safely quoted shell string (see
    rvssh/ssh/exec.py).
    """
    return common.base() + ["-T"] + _mux_options(control_path) + target.destination_args() + [remote_command]


def forward_spec(local_port: int, remote_port: int) -> str:
    """Return the -L spec binding loopback only on both ends."""
    return f"127.0.0.1:{local_port}:127.0.0.1:{remote_port}"


def build_forward_argv(
    common: SshCommon, target: Target, control_path: Path, operation: str, local_port: int, remote_port: int
) -> list[str]:
    """Build ``ssh -O forward|cancel -L 127.0.0.1:L:127.0.0.1:R`` for the master."""
    if operation not in {"forward", "cancel"}:
        raise ValueError(f"unknown forward operation: {operation}")
    return (
        common.base()
        + _mux_options(control_path)
        + ["-O", operation, "-L", forward_spec(local_port, remote_port)]
        + target.destination_args()
    )
