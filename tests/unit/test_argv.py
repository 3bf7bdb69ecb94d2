"""Exact argv of every ssh command rvssh runs (nothing is spawned here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rvssh.ssh.argv import (
    MasterAuth,
    SshCommon,
    build_control_argv,
    build_exec_argv,
    build_forward_argv,
    build_master_argv,
    known_hosts_command,
)
from rvssh.ssh.exec import build_python_command
from rvssh.ssh.target import make_target

COMMON = SshCommon("ssh", None, ("/state/known_hosts", "~/.ssh/known_hosts"))
TARGET = make_target("gpu.example", 2222, "alice")
CONTROL = Path("/state/cm/abc")


def test_master_argv_with_key_and_no_password() -> None:
    argv = build_master_argv(
        COMMON,
        TARGET,
        control_path=CONTROL,
        capture_file=Path("/state/tmp/cap"),
        auth=MasterAuth(key_file=Path("/keys/id"), use_agent=False),
        connect_timeout=15,
    )
    assert argv == [
        "ssh", "-f", "-N",
        "-o", "ControlMaster=yes",
        "-o", 'ControlPath="/state/cm/abc"',
        "-o", "ControlPersist=yes",
        "-o", "StrictHostKeyChecking=yes",
        "-o", 'UserKnownHostsFile="/state/known_hosts" "~/.ssh/known_hosts"',
        "-o", "KnownHostsCommand=" + known_hosts_command(Path("/state/tmp/cap")),
        "-o", "UpdateHostKeys=no",
        "-o", "ConnectTimeout=15",
        "-o", "ServerAliveInterval=15",
        "-o", "ServerAliveCountMax=3",
        "-o", "NumberOfPasswordPrompts=1",
        "-o", "ClearAllForwardings=yes",
        "-o", "BatchMode=no",
        "-o", "IdentityAgent=none",
        "-i", "/keys/id",
        "-o", "PasswordAuthentication=no",
        "-o", "KbdInteractiveAuthentication=no",
        "-l", "alice", "-p", "2222", "--", "gpu.example",
    ]


def test_master_argv_with_password_keeps_password_auth_and_agent() -> None:
    argv = build_master_argv(
        SshCommon("ssh", Path("/cfg"), ("/kh",)),
        make_target("alias", 22, "bob"),
        control_path=CONTROL,
        capture_file=Path("/cap"),
        auth=MasterAuth(password_allowed=True),
        connect_timeout=5,
    )
    assert argv[:3] == ["ssh", "-F", "/cfg"]
    assert "PasswordAuthentication=no" not in argv
    assert "IdentityAgent=none" not in argv
    assert argv[-4:] == ["-l", "bob", "--", "alias"]


def test_known_hosts_command_quotes_and_escapes_percent() -> None:
    command = known_hosts_command(Path("/odd dir/100%/cap"))
    assert '"/odd dir/100%%/cap" %H %p %t %K' in command


def test_mux_commands_cannot_fall_back_to_a_new_login() -> None:
    argv = build_exec_argv(COMMON, TARGET, CONTROL, "true")
    assert argv == [
        "ssh", "-T",
        "-o", 'ControlPath="/state/cm/abc"',
        "-o", "ControlMaster=no",
        "-o", "ProxyCommand=false",
        "-o", "BatchMode=yes",
        "-l", "alice", "-p", "2222", "--", "gpu.example", "true",
    ]
    assert build_control_argv(COMMON, TARGET, CONTROL, "check")[-8:] == [
        "-O", "check", "-l", "alice", "-p", "2222", "--", "gpu.example"
    ]


def test_forward_argv_binds_loopback_on_both_ends() -> None:
    argv = build_forward_argv(COMMON, TARGET, CONTROL, "forward", 18080, 19090)
    assert argv[argv.index("-O") : argv.index("-O") + 4] == ["-O", "forward", "-L", "127.0.0.1:18080:127.0.0.1:19090"]
    with pytest.raises(ValueError):
        build_forward_argv(COMMON, TARGET, CONTROL, "stop", 1, 2)


def test_python_command_quotes_every_argument() -> None:
    command = build_python_command(["fs-list", "'; touch /tmp/X; '"])
    assert command.startswith("sh -c ")
    assert command.endswith(" rvssh - fs-list ''\"'\"'; touch /tmp/X; '\"'\"''")
    assert build_python_command(["a b"], python="/env/bin/python") == "/env/bin/python - 'a b'"
    assert build_python_command(["x"], flags=("-I", "-S")).endswith(" rvssh -I -S - x")
