"""Fixtures shared by the unit tier: no network, no sshd, no real keyring."""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path

import pytest

# The answer of a server that refuses us: a 401, never a network attempt.
FAILING_SSH = """#!/bin/sh
# A fake ssh for the unit tier: records its argv, then fails like a refused login
# (ssh -G answers as for a host without config).
printf '%s\\n' "=== ssh" "$@" >> '{log}'
case " $* " in
  *" -O "*) echo "Control socket connect(/x): No such file or directory" >&2; exit 255 ;;
  *" -G "*) printf 'user me\nhostname host\nport 22\n'; exit 0 ;;
esac
echo "me@host: Permission denied (publickey)."
exit 255
"""


@dataclass(frozen=True)
class FakeSsh:
    """A failing ssh script and the file its argv lines go to."""

    binary: Path
    log: Path

    def argv_text(self) -> str:
        """Return every argument of every run, one a line (each run starts with ``=== ssh``)."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def runs(self) -> int:
        """Return how many times ssh was run."""
        return self.argv_text().count("=== ssh\n")


def make_fake_ssh(directory: Path) -> FakeSsh:
    """Write the failing ssh into ``directory`` and return it."""
    directory.mkdir(parents=True, exist_ok=True)
    binary = directory / "ssh"
    log = directory / "ssh-argv.log"
    binary.write_text(FAILING_SSH.format(log=log))
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    return FakeSsh(binary, log)


def scenario_ssh(directory: Path, scenario: str, typed_log: Path) -> Path:
    """Return an ``ssh`` that plays ``scenario`` of fakessh/ssh, logging what is typed to ``typed_log``.

    rvssh gives ssh an allow-listed environment only, so the scenario is set
    by this wrapper rather than by the test's environment.
    """
    directory.mkdir(parents=True, exist_ok=True)
    wrapper = directory / "ssh"
    fake = Path(__file__).parent / "fakessh" / "ssh"
    wrapper.write_text(f"#!/bin/sh\nFAKE_SSH_SCENARIO='{scenario}' FAKE_SSH_LOG='{typed_log}' exec '{fake}' \"$@\"\n")
    wrapper.chmod(0o755)
    return wrapper


@pytest.fixture(scope="session")
def session_fake_ssh(tmp_path_factory: pytest.TempPathFactory) -> FakeSsh:
    """Return one failing fake ssh for module-scoped apps (its log is shared)."""
    return make_fake_ssh(tmp_path_factory.mktemp("fakessh-fail"))
