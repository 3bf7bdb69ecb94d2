"""master.py's prompt loop, driven by a fake ssh on a real pty (no network)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

from rvssh.ssh.argv import MasterAuth, SshCommon
from rvssh.ssh.errors import AuthenticationError, ConnectError
from rvssh.ssh.master import MasterController, Secrets
from rvssh.ssh.target import make_target

FAKE_SSH = Path(__file__).parent / "fakessh" / "ssh"
TARGET = make_target("host", 22, "user")


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """A short directory: control socket paths must fit sun_path."""
    path = Path(tempfile.mkdtemp(prefix="rvu-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def controller(tmp_path: Path, scenario: str, timeout: float = 5) -> tuple[MasterController, Path]:
    log = tmp_path / "typed"
    environ = dict(os.environ, FAKE_SSH_SCENARIO=scenario, FAKE_SSH_LOG=str(log))
    masters = MasterController(
        SshCommon(str(FAKE_SSH), None, ("/kh",)),
        control_dir=tmp_path / "cm",
        scratch_dir=tmp_path / "tmp",
        connect_timeout=timeout,
        fingerprint=lambda line: "SHA256:x",
        find_stored_key=lambda host, port, key_type: None,
        environ=environ,
    )
    return masters, log


def typed(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_a_wrong_password_is_sent_once_and_never_again(tmp_path: Path) -> None:
    masters, log = controller(tmp_path, "password")
    with pytest.raises(AuthenticationError) as caught:
        masters.start(TARGET, MasterAuth(password_allowed=True), Secrets(password="wrong"))
    assert typed(log) == ["wrong"]
    assert "wrong" not in caught.value.message
    assert caught.value.message.startswith("Connection failed: ")


def test_no_password_means_no_answer_at_a_password_prompt(tmp_path: Path) -> None:
    masters, log = controller(tmp_path, "password")
    with pytest.raises(AuthenticationError):
        masters.start(TARGET, MasterAuth(), Secrets())
    assert typed(log) == []


def test_passphrase_is_answered_and_unknown_keys_are_skipped_empty(tmp_path: Path) -> None:
    masters, log = controller(tmp_path, "passphrase")
    with pytest.raises(ConnectError, match="no master answers"):
        # The fake exits 0 but starts no master: the check after start notices.
        (tmp_path / "cm").mkdir()
        masters.start(TARGET, MasterAuth(), Secrets(passphrase="pp"))
    assert typed(log) == ["pp"]
    masters_without, log_without = controller(tmp_path / "b", "passphrase")
    with pytest.raises(ConnectError):
        masters_without.start(TARGET, MasterAuth(), Secrets())
    assert typed(log_without) == [""]


def test_keyboard_interactive_prompts_are_named_not_answered(tmp_path: Path) -> None:
    masters, log = controller(tmp_path, "otp")
    with pytest.raises(AuthenticationError, match="Verification code"):
        masters.start(TARGET, MasterAuth(password_allowed=True), Secrets(password="secret"))
    assert typed(log) == []


def test_a_host_key_question_is_always_answered_no(tmp_path: Path) -> None:
    masters, log = controller(tmp_path, "hostkey-question")
    with pytest.raises(ConnectError):
        masters.start(TARGET, MasterAuth(), Secrets())
    assert typed(log) == ["no"]


def test_a_silent_ssh_is_stopped_at_the_deadline(tmp_path: Path) -> None:
    masters, _ = controller(tmp_path, "silent", timeout=1)
    started = time.monotonic()
    with pytest.raises(ConnectError, match="timed out after 1 s"):
        masters.start(TARGET, MasterAuth(), Secrets())
    assert time.monotonic() - started < 10


def test_network_failures_carry_what_ssh_said(tmp_path: Path) -> None:
    masters, _ = controller(tmp_path, "refused")
    with pytest.raises(ConnectError, match="Connection failed: ssh: connect to host 10.0.0.1 port 22: Connection refused"):
        masters.start(TARGET, MasterAuth(), Secrets())


def test_a_missing_ssh_client_is_a_clear_connect_error(tmp_path: Path) -> None:
    masters = MasterController(
        SshCommon("/nonexistent/ssh", None, ("/kh",)),
        control_dir=tmp_path / "cm",
        scratch_dir=tmp_path / "tmp",
        connect_timeout=5,
        fingerprint=lambda line: "SHA256:x",
        find_stored_key=lambda host, port, key_type: None,
        environ=dict(os.environ),
    )
    with pytest.raises(ConnectError, match="ssh client '/nonexistent/ssh' was not found"):
        masters.start(TARGET, MasterAuth(), Secrets())
