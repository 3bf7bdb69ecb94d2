"""Pure builders for every ssh command line rvssh runs.

Nothing here spawns a process; each function returns the argv list, and the
unit tests assert the whole list. Options that must hold on every hop of a
route live in rvssh's own ssh_config (``ssh/sshconfig.py``), passed with
``-F``; what is given here with ``-o`` concerns only the ssh started here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rvssh.ssh.sshconfig import quote_config_value
from rvssh.ssh.target import Target

# The only remote command rvssh ever sends: plain words that sh, bash, dash,
# zsh, ksh, tcsh, csh and fish all parse alike. The program comes on stdin.
REMOTE_COMMAND = ("/bin/sh", "-s")
# PERF: the master carries every tunnel, so its cipher bounds their bulk
# throughput. OpenSSH's default order puts chacha20-poly1305 first; on a CPU
# with AES instructions (every x86-64 and arm64 server of the last decade)
# AES-GCM moves 1.5-2x the bytes per CPU second (measured: a 200 MB file
# through a forward, 250-300 MB/s against 360-590 MB/s, docs/performance.md).
# The same strong ciphers as OpenSSH's default set, in another order; the
# server still picks the first one it supports (#14).
MASTER_CIPHERS = (
    "aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,"
    "aes128-ctr,aes192-ctr,aes256-ctr"
)


@dataclass(frozen=True)
class SshCommon:
    """What every ssh invocation of one rvssh instance shares: the binary and the shared config."""

    ssh_binary: str
    config_file: Path

    def base(self, config_file: Path | None = None) -> list[str]:
        return [self.ssh_binary, "-F", str(config_file or self.config_file)]


@dataclass(frozen=True)
class MasterAuth:
    """Which credentials the master may use. Holds no secret, only a path and a flag."""

    key_file: Path | None = None
    use_agent: bool = True


def build_master_argv(
    common: SshCommon,
    target: Target,
    *,
    config_file: Path,
    control_path: Path,
    auth: MasterAuth,
    connect_timeout: float,
) -> list[str]:
    """Build the argv that starts a persistent ControlMaster for ``target``.

    ``-f`` makes ssh return once authentication is done, so exit status 0 means
    the master is up; ControlPersist=yes keeps it running after rvssh (or a
    gunicorn worker) exits, until ``-O exit``. ``config_file`` is the config of
    this start (it names the host-key capture file).
    """
    argv = common.base(config_file) + [
        "-f",
        "-N",
        "-o", "ControlMaster=yes",
        "-o", f"ControlPath={quote_config_value(str(control_path))}",
        "-o", "ControlPersist=yes",
        "-o", f"ConnectTimeout={max(1, int(connect_timeout))}",
        # The user's LocalForward lines would clash between masters.
        "-o", "ClearAllForwardings=yes",
        "-o", "BatchMode=no",
        # VERBOSE makes ssh say 'Authenticated using "publickey" with partial
        # success', how rvssh knows a second factor is what is missing.
        "-o", "LogLevel=VERBOSE",
        "-o", f"Ciphers={MASTER_CIPHERS}",
    ]
    if not auth.use_agent:
        argv += ["-o", "IdentityAgent=none"]
    if auth.key_file is not None:
        argv += ["-i", str(auth.key_file)]
    return argv + target.destination_args()


def _mux_options(control_path: Path) -> list[str]:
    # ProxyCommand=false: if the master is gone, ssh would otherwise quietly
    # open a fresh connection (new login, prompts); this makes it fail instead.
    return [
        "-o", f"ControlPath={quote_config_value(str(control_path))}",
        "-o", "ControlMaster=no",
        "-o", "ProxyCommand=false",
        "-o", "BatchMode=yes",
    ]


def build_control_argv(common: SshCommon, target: Target, control_path: Path, command: str) -> list[str]:
    """Build ``ssh -O <command>`` (check, exit) for the master of ``target``."""
    return common.base() + _mux_options(control_path) + ["-O", command] + target.destination_args()


def build_exec_argv(common: SshCommon, target: Target, control_path: Path) -> list[str]:
    """Build the argv that runs a program sent on stdin over the master, without a tty.

    The remote command is always ``/bin/sh -s``: the login shell, whatever it
    is, only sees plain words; everything else travels on stdin.
    """
    return common.base() + ["-T"] + _mux_options(control_path) + target.destination_args() + list(REMOTE_COMMAND)


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


def build_resolve_argv(common: SshCommon, host: str, port: int | None, username: str | None) -> list[str]:
    """Build ``ssh -G`` for a destination: what ssh would use for it after reading the config."""
    argv = common.base() + ["-G"]
    if username:
        argv += ["-l", username]
    if port is not None:
        argv += ["-p", str(port)]
    return argv + ["--", host]
