"""Exact argv of every ssh command rvssh runs, and rvssh's own ssh_config (nothing is spawned here)."""

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
    build_resolve_argv,
)
from rvssh.ssh.environment import child_environment
from rvssh.ssh.resolve import parse_ssh_g
from rvssh.ssh.sshconfig import SshConfigSpec, known_hosts_command, render_ssh_config
from rvssh.ssh.target import make_target

COMMON = SshCommon("ssh", Path("/state/ssh_config"))
TARGET = make_target("gpu.example", 2222, "alice")
CONTROL = Path("/state/cm/abc")
SPEC = SshConfigSpec(("/state/known_hosts", "~/.ssh/known_hosts"), None, 5, 3)


def test_master_argv_with_a_key_and_no_agent() -> None:
    argv = build_master_argv(
        COMMON,
        TARGET,
        config_file=Path("/state/tmp/ssh_config-1"),
        control_path=CONTROL,
        auth=MasterAuth(key_file=Path("/keys/id"), use_agent=False),
        connect_timeout=15,
    )
    assert argv == [
        "ssh", "-F", "/state/tmp/ssh_config-1", "-f", "-N",
        "-o", "ControlMaster=yes",
        "-o", 'ControlPath="/state/cm/abc"',
        "-o", "ControlPersist=yes",
        "-o", "ConnectTimeout=15",
        "-o", "ClearAllForwardings=yes",
        "-o", "BatchMode=no",
        "-o", "LogLevel=VERBOSE",
        "-o", "Ciphers=aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,"
              "aes128-ctr,aes192-ctr,aes256-ctr",
        "-o", "IdentityAgent=none",
        "-i", "/keys/id",
        "-l", "alice", "-p", "2222", "--", "gpu.example",
    ]


def test_master_argv_with_the_agent_leaves_port_22_to_the_config() -> None:
    argv = build_master_argv(
        COMMON, make_target("alias", 22, "bob"), config_file=Path("/c"), control_path=CONTROL,
        auth=MasterAuth(), connect_timeout=5,
    )
    assert "IdentityAgent=none" not in argv and "-i" not in argv
    assert argv[-4:] == ["-l", "bob", "--", "alias"]


def test_the_config_holds_the_rules_every_hop_must_follow_before_the_users_config() -> None:
    text = render_ssh_config(SPEC, Path("/state/tmp/cap"))
    lines = [line.strip() for line in text.splitlines()]
    assert lines[1] == "Host *"
    assert "StrictHostKeyChecking yes" in lines
    assert 'UserKnownHostsFile "/state/known_hosts" "~/.ssh/known_hosts"' in lines
    assert "UpdateHostKeys no" in lines and "NumberOfPasswordPrompts 1" in lines
    assert "ServerAliveInterval 5" in lines and "ServerAliveCountMax 3" in lines
    assert "KnownHostsCommand " + known_hosts_command(Path("/state/tmp/cap")) in lines
    # First obtained value wins in ssh_config: the user's files come last.
    assert lines[-2:] == ["Include ~/.ssh/config", 'Include "/etc/ssh/ssh_config"']
    assert "KnownHostsCommand" not in render_ssh_config(SPEC)
    own = render_ssh_config(SshConfigSpec(("/kh",), Path("/home/me/my ssh config"), 5, 3))
    assert own.splitlines()[-1].strip() == 'Include "/home/me/my ssh config"'


def test_known_hosts_command_quotes_and_escapes_percent() -> None:
    command = known_hosts_command(Path("/odd dir/100%/cap"))
    assert '"/odd dir/100%%/cap" %H %p %t %K' in command


def test_mux_commands_cannot_fall_back_to_a_new_login_and_send_only_plain_words() -> None:
    argv = build_exec_argv(COMMON, TARGET, CONTROL)
    assert argv == [
        "ssh", "-F", "/state/ssh_config", "-T",
        "-o", 'ControlPath="/state/cm/abc"',
        "-o", "ControlMaster=no",
        "-o", "ProxyCommand=false",
        "-o", "BatchMode=yes",
        "-l", "alice", "-p", "2222", "--", "gpu.example", "/bin/sh", "-s",
    ]
    assert build_control_argv(COMMON, TARGET, CONTROL, "check")[-8:] == [
        "-O", "check", "-l", "alice", "-p", "2222", "--", "gpu.example"
    ]


def test_forward_argv_binds_loopback_on_both_ends() -> None:
    argv = build_forward_argv(COMMON, TARGET, CONTROL, "forward", 18080, 19090)
    assert argv[argv.index("-O") : argv.index("-O") + 4] == ["-O", "forward", "-L", "127.0.0.1:18080:127.0.0.1:19090"]
    with pytest.raises(ValueError):
        build_forward_argv(COMMON, TARGET, CONTROL, "stop", 1, 2)


def test_resolve_argv_and_its_parser() -> None:
    assert build_resolve_argv(COMMON, "gpu", None, None) == ["ssh", "-F", "/state/ssh_config", "-G", "--", "gpu"]
    assert build_resolve_argv(COMMON, "gpu", 2222, "me")[-6:] == ["-l", "me", "-p", "2222", "--", "gpu"]
    options = parse_ssh_g("user alice\nhostname 10.0.0.5\nport 2222\nproxyjump bastion\nuser ignored\n")
    assert options == {"user": "alice", "hostname": "10.0.0.5", "port": "2222", "proxyjump": "bastion"}


def test_children_get_an_allow_listed_environment() -> None:
    env = child_environment({
        "PATH": "/bin", "HOME": "/h", "USER": "u", "LOGNAME": "u", "LANG": "C.UTF-8", "LC_TIME": "C",
        "SSH_AUTH_SOCK": "/a", "DISPLAY": ":0", "TERM": "xterm", "RVSSH_TOKEN": "t0ken",
        "RVSSH_STATE_DIR": "/s", "AWS_SECRET_ACCESS_KEY": "x", "PYTHONPATH": "/p",
    })
    assert env == {
        "PATH": "/bin", "HOME": "/h", "USER": "u", "LOGNAME": "u", "LANG": "C.UTF-8", "LC_TIME": "C",
        "SSH_AUTH_SOCK": "/a", "DISPLAY": ":0", "TERM": "xterm", "LC_ALL": "C", "SSH_ASKPASS_REQUIRE": "never",
    }
