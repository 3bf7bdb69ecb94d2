"""Prove the test bed with the plain OpenSSH client, before rvssh relies on it."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

import pytest

from tests.sshbed import wait_until

if TYPE_CHECKING:
    from pathlib import Path

    from tests.sshbed import SshBed


@pytest.fixture()
def known_hosts(sshbed: SshBed, tmp_path: Path) -> Path:
    """Write a known_hosts file holding the bed's current host keys."""
    path = tmp_path / "known_hosts"
    path.write_text(sshbed.known_hosts_text())
    return path


def run_ssh(
    bed: SshBed,
    known_hosts: Path,
    *args: str,
    env: dict[str, str] | None = None,
    batch: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ssh against the bed with strict host key checking and no prompts."""
    argv = [
        "ssh", "-F", str(bed.ssh_config),
        "-o", f"UserKnownHostsFile={known_hosts}",
        "-o", "StrictHostKeyChecking=yes",
        "-o", f"BatchMode={'yes' if batch else 'no'}",
        *args,
    ]
    return subprocess.run(
        argv, env=env if env is not None else bed.client_env(),
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30, check=False,
    )


def direct(bed: SshBed) -> list[str]:
    """Return the ssh arguments that reach the bed without the config alias."""
    return ["-p", str(bed.port), "-l", bed.user, bed.host]


def askpass_env(bed: SshBed, tmp_path: Path, secret: str) -> dict[str, str]:
    """Return an environment in which ssh reads its prompts' answer from a script.

    SSH_ASKPASS_REQUIRE=force (OpenSSH >= 8.4) makes ssh use the script even
    without a terminal or DISPLAY.
    """
    script = tmp_path / "askpass"
    script.write_text('#!/bin/sh\nprintf "%s\\n" "$RV_SECRET"\n')
    script.chmod(0o700)
    return {**bed.client_env(), "SSH_ASKPASS": str(script),
            "SSH_ASKPASS_REQUIRE": "force", "RV_SECRET": secret}


def fingerprint(public_key: Path) -> str:
    """Return the key's SHA256 fingerprint as sshd logs it."""
    return subprocess.run(
        ["ssh-keygen", "-l", "-f", str(public_key)], capture_output=True, text=True, check=True
    ).stdout.split()[1]


def test_plain_key_logs_in_once(sshbed: SshBed, known_hosts: Path) -> None:
    before = sshbed.count_logins()
    proc = run_ssh(sshbed, known_hosts, "-i", str(sshbed.key_plain), "-o", "IdentitiesOnly=yes",
                   *direct(sshbed), "id -un")
    assert (proc.returncode, proc.stdout.strip()) == (0, sshbed.user), proc.stderr
    wait_until(lambda: sshbed.count_logins() == before + 1, 5, "login not logged",
               context=sshbed.log_text)


def test_alias_uses_config(sshbed: SshBed, known_hosts: Path) -> None:
    proc = run_ssh(sshbed, known_hosts, sshbed.alias, "id -un")
    assert (proc.returncode, proc.stdout.strip()) == (0, sshbed.user), proc.stderr


def test_agent_key_logs_in_only_with_agent(sshbed: SshBed, known_hosts: Path) -> None:
    agent_print = fingerprint(sshbed.key_agent.with_name("key_agent.pub"))

    def agent_logins() -> int:
        return sum(line.startswith("Accepted publickey") and agent_print in line
                   for line in sshbed.log_text().splitlines())

    before = agent_logins()
    args = ["-o", "IdentitiesOnly=no", *direct(sshbed), "id -un"]
    without = run_ssh(sshbed, known_hosts, *args, env=sshbed.client_env(agent=False))
    assert without.returncode == 255
    proc = run_ssh(sshbed, known_hosts, *args, env=sshbed.client_env(agent=True))
    assert (proc.returncode, proc.stdout.strip()) == (0, sshbed.user), proc.stderr
    wait_until(lambda: agent_logins() == before + 1, 5, "agent key login not logged",
               context=sshbed.log_text)


def test_unauthorised_key_is_refused(sshbed: SshBed, known_hosts: Path) -> None:
    proc = run_ssh(sshbed, known_hosts, "-i", str(sshbed.key_unauthorised),
                   "-o", "IdentitiesOnly=yes", *direct(sshbed), "id -un")
    assert proc.returncode == 255
    assert "Permission denied (publickey,password)" in proc.stderr


def test_passphrase_key_logs_in(sshbed: SshBed, known_hosts: Path, tmp_path: Path) -> None:
    proc = run_ssh(sshbed, known_hosts, "-i", str(sshbed.key_pass), "-o", "IdentitiesOnly=yes",
                   "-o", "PasswordAuthentication=no", *direct(sshbed), "id -un",
                   env=askpass_env(sshbed, tmp_path, sshbed.key_passphrase), batch=False)
    assert (proc.returncode, proc.stdout.strip()) == (0, sshbed.user), proc.stderr


def test_password_logs_in_and_wrong_one_is_logged(
    sshbed: SshBed, known_hosts: Path, tmp_path: Path
) -> None:
    args = ["-o", "PubkeyAuthentication=no", "-o", "NumberOfPasswordPrompts=1",
            *direct(sshbed), "id -un"]
    failed = sshbed.count_failed_passwords()
    wrong = run_ssh(sshbed, known_hosts, *args, batch=False,
                    env=askpass_env(sshbed, tmp_path, "not-the-password"))
    assert wrong.returncode == 255
    wait_until(lambda: sshbed.count_failed_passwords() == failed + 1, 5,
               "failed password not logged", context=sshbed.log_text)
    proc = run_ssh(sshbed, known_hosts, *args, batch=False,
                   env=askpass_env(sshbed, tmp_path, sshbed.password))
    assert (proc.returncode, proc.stdout.strip()) == (0, sshbed.user), proc.stderr


def test_run_as_user_writes_in_home(sshbed: SshBed, known_hosts: Path) -> None:
    sshbed.run_as_user("echo canary > bed-canary")
    proc = run_ssh(sshbed, known_hosts, sshbed.alias, "cat bed-canary; rm bed-canary")
    assert (proc.returncode, proc.stdout) == (0, "canary\n"), proc.stderr


def test_restart_with_new_host_keys(sshbed: SshBed, known_hosts: Path, tmp_path: Path) -> None:
    before = sshbed.host_public_keys()
    sshbed.restart(new_host_keys=True)
    after = sshbed.host_public_keys()
    assert before.keys() == after.keys() == {"ssh-ed25519", "ssh-rsa"}
    assert all(before[key_type] != after[key_type] for key_type in before)
    stale = run_ssh(sshbed, known_hosts, sshbed.alias, "true")
    assert stale.returncode == 255
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in stale.stderr
    fresh = tmp_path / "fresh_known_hosts"
    fresh.write_text(sshbed.known_hosts_text())
    assert run_ssh(sshbed, fresh, sshbed.alias, "true").returncode == 0
