"""Configuration of rvssh, read from flags and the environment.

This is the only module that reads ``os.environ``. Everything else receives a
:class:`Settings` object.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping, MutableMapping

DEFAULT_BIND = "127.0.0.1:23300"
# A Unix socket path must fit sun_path (104 bytes on macOS, 108 on Linux).
# ssh first binds "<ControlPath>.<16 random chars>", so the directory must
# leave room for "/" + a 40-char socket name + 17 more bytes.
CONTROL_NAME_LENGTH = 40
SUN_PATH_BUDGET = 104
# Read once at start, then removed from the process environment (see forget_secret_variables).
SECRET_VARIABLES = ("RVSSH_TOKEN",)


def default_state_dir(env: Mapping[str, str]) -> Path:
    """Return the per-user state directory: $XDG_STATE_HOME/rvssh or ~/.local/state/rvssh."""
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "rvssh"


def _split_list(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _env_flag(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() not in {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Settings:
    """Everything rvssh can be configured with.

    Attributes:
        bind: HOST:PORT the HTTP API listens on.
        state_dir: private (0700) directory for the managed known_hosts, the
            registry of masters and viewer sessions, saved connections.
        workers: gunicorn worker processes.
        threads: threads per worker (requests that wait on ssh do not block others).
        connect_timeout: seconds a connect (TCP, key exchange and auth) may take.
        command_timeout: seconds a remote script may run.
        viewer_ready_timeout: seconds a started viewer has to answer /api/health.
        ssh_binary / ssh_keygen_binary: the OpenSSH client tools to run.
        ssh_config: the user's ssh config, included by rvssh's own (passed with
            ``ssh -F``); default: ~/.ssh/config, then /etc/ssh/ssh_config.
        user_known_hosts: known_hosts files trusted read-only after our own
            managed file (OpenSSH's ``~`` is the passwd home directory).
        max_sessions_per_master: concurrent remote commands per connection at
            most; kept below sshd's MaxSessions default of 10, and lowered per
            connection when a server refuses a session.
        server_alive_interval / server_alive_count_max: ssh's keepalive: a
            link that answers none of ``count`` keepalives sent every
            ``interval`` seconds is dead, and its master exits (then healed).
        monitor_interval: seconds between two looks of the background monitor.
        answer_cache_seconds: how long an answer about a connection's
            environments (conda-envs, env-configs, config) is served again;
            0 asks the server every time.
        prefetch: after a login, ask the server for its environments in the
            background, before anyone asks.
        log_level: how much rvssh logs on stderr (debug shows every ssh argv).
        token: the token callers not known to be this account must send;
            unset, rvssh keeps its own in ``<state_dir>/token``.
        allowed_origins: browser origins allowed besides the server's own.
        allowed_hosts: Host header names accepted besides loopback names.
        save_secrets: whether saved connections may keep passwords/passphrases.
    """

    bind: str = DEFAULT_BIND
    state_dir: Path = field(default_factory=lambda: default_state_dir(os.environ))
    workers: int = 1
    threads: int = 32
    connect_timeout: float = 15.0
    command_timeout: float = 60.0
    viewer_ready_timeout: float = 60.0
    ssh_binary: str = "ssh"
    ssh_keygen_binary: str = "ssh-keygen"
    ssh_config: Path | None = None
    user_known_hosts: tuple[str, ...] = ("~/.ssh/known_hosts",)
    max_sessions_per_master: int = 8
    server_alive_interval: int = 5
    server_alive_count_max: int = 3
    monitor_interval: float = 1.0
    answer_cache_seconds: float = 600.0
    prefetch: bool = True
    log_level: str = "info"
    token: str | None = None
    allowed_origins: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    save_secrets: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> "Settings":
        """Build settings from RVSSH_* environment variables, then apply overrides."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        if env.get("RVSSH_BIND"):
            values["bind"] = env["RVSSH_BIND"]
        values["state_dir"] = Path(env["RVSSH_STATE_DIR"]) if env.get("RVSSH_STATE_DIR") else default_state_dir(env)
        for name, key, kind in (
            ("workers", "RVSSH_WORKERS", int),
            ("threads", "RVSSH_THREADS", int),
            ("connect_timeout", "RVSSH_CONNECT_TIMEOUT", float),
            ("command_timeout", "RVSSH_COMMAND_TIMEOUT", float),
            ("viewer_ready_timeout", "RVSSH_VIEWER_READY_TIMEOUT", float),
            ("max_sessions_per_master", "RVSSH_MAX_SESSIONS", int),
            ("server_alive_interval", "RVSSH_SERVER_ALIVE_INTERVAL", int),
            ("server_alive_count_max", "RVSSH_SERVER_ALIVE_COUNT_MAX", int),
            ("monitor_interval", "RVSSH_MONITOR_INTERVAL", float),
            ("answer_cache_seconds", "RVSSH_ANSWER_CACHE_SECONDS", float),
        ):
            if env.get(key):
                values[name] = kind(env[key])
        if env.get("RVSSH_SSH"):
            values["ssh_binary"] = env["RVSSH_SSH"]
        if env.get("RVSSH_SSH_KEYGEN"):
            values["ssh_keygen_binary"] = env["RVSSH_SSH_KEYGEN"]
        if env.get("RVSSH_SSH_CONFIG"):
            values["ssh_config"] = Path(env["RVSSH_SSH_CONFIG"])
        if env.get("RVSSH_USER_KNOWN_HOSTS"):
            values["user_known_hosts"] = tuple(env["RVSSH_USER_KNOWN_HOSTS"].split())
        if env.get("RVSSH_LOG_LEVEL"):
            values["log_level"] = env["RVSSH_LOG_LEVEL"].lower()
        if env.get("RVSSH_TOKEN"):
            values["token"] = env["RVSSH_TOKEN"]
        values["allowed_origins"] = _split_list(env.get("RVSSH_ALLOWED_ORIGINS"))
        values["allowed_hosts"] = _split_list(env.get("RVSSH_ALLOWED_HOSTS"))
        values["save_secrets"] = _env_flag(env.get("RVSSH_SAVE_SECRETS"), True)
        values["prefetch"] = _env_flag(env.get("RVSSH_PREFETCH"), True)
        settings = cls(**values)  # type: ignore[arg-type]
        clean = {key: value for key, value in overrides.items() if value is not None}
        return replace(settings, **clean) if clean else settings

    @property
    def bind_host(self) -> str:
        host, _, _ = self.bind.rpartition(":")
        return host.strip("[]") or "127.0.0.1"

    @property
    def bind_port(self) -> int:
        return int(self.bind.rpartition(":")[2])

    @property
    def known_hosts_file(self) -> Path:
        return self.state_dir / "known_hosts"

    @property
    def control_dir(self) -> Path:
        """Return the directory for ControlMaster sockets, short enough for sun_path."""
        preferred = self.state_dir / "cm"
        if len(str(preferred)) + 1 + CONTROL_NAME_LENGTH + 17 < SUN_PATH_BUDGET:
            return preferred
        return Path("/tmp") / f"rvssh-{os.getuid()}"


def forget_secret_variables(env: MutableMapping[str, str] | None = None) -> None:
    """Remove RVSSH_TOKEN from the environment once it has been read into Settings.

    Every child rvssh starts (ssh, ssh-keygen, gunicorn workers' children)
    inherits the process environment; the token must reach none of them.
    """
    env = os.environ if env is None else env
    for name in SECRET_VARIABLES:
        env.pop(name, None)
