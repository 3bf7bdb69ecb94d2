"""master.py's prompt loop, driven by a fake ssh on a real pty (no network)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest
from pydantic import SecretStr

from rvssh.ssh.answers import RequestAnswers
from rvssh.ssh.argv import MasterAuth, SshCommon
from rvssh.ssh.errors import AuthenticationError, AuthPromptError, ConnectError
from rvssh.ssh.master import MasterController
from rvssh.ssh.prompts import PromptKind
from rvssh.ssh.sshconfig import SshConfigFiles, SshConfigSpec
from rvssh.ssh.target import make_target

FAKE_SSH = Path(__file__).parent / "fakessh" / "ssh"
TARGET = make_target("host", 22, "user")


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """A short directory: control socket paths must fit sun_path."""
    path = Path(tempfile.mkdtemp(prefix="rvu-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def controller(tmp_path: Path, scenario: str, timeout: float = 5, ssh: str = str(FAKE_SSH)) -> tuple[MasterController, Path]:
    log = tmp_path / "typed"
    environ = dict(os.environ, FAKE_SSH_SCENARIO=scenario, FAKE_SSH_LOG=str(log))
    files = SshConfigFiles(SshConfigSpec(("/kh",), None, 5, 3), tmp_path)
    masters = MasterController(
        SshCommon(ssh, files.shared),
        files,
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


def secret(value: str) -> SecretStr:
    return SecretStr(value)


def test_a_wrong_password_is_sent_once_and_never_again(tmp_path: Path) -> None:
    masters, log = controller(tmp_path, "password")
    with pytest.raises(AuthenticationError) as caught:
        masters.start(TARGET, MasterAuth(), RequestAnswers(password=secret("wrong")))
    assert typed(log) == ["wrong"]
    assert "wrong" not in caught.value.message
    assert caught.value.message.startswith("Connection failed: Permission denied")


def test_no_password_stops_at_the_prompt_and_names_it(tmp_path: Path) -> None:
    masters, log = controller(tmp_path, "password")
    with pytest.raises(AuthPromptError) as caught:
        masters.start(TARGET, MasterAuth(), RequestAnswers())
    assert typed(log) == []
    assert caught.value.message == "The server asks for a password: user@host's password:"
    assert [prompt.kind for prompt in caught.value.prompts] == [PromptKind.PASSWORD]


def test_passphrase_is_answered_and_a_missing_one_is_named_when_the_login_fails(tmp_path: Path) -> None:
    masters, log = controller(tmp_path, "passphrase")
    with pytest.raises(ConnectError, match="no master answers"):
        # The fake exits 0 but starts no master: the check after start notices.
        (tmp_path / "cm").mkdir()
        masters.start(TARGET, MasterAuth(), RequestAnswers(passphrase=secret("pp")))
    assert typed(log) == ["pp"]
    masters_without, log_without = controller(tmp_path / "b", "passphrase")
    with pytest.raises(AuthPromptError) as caught:
        masters_without.start(TARGET, MasterAuth(), RequestAnswers())
    assert typed(log_without) == [""]
    assert caught.value.message == "The key needs its passphrase: Enter passphrase for key '/k/id':"
    assert [prompt.kind for prompt in caught.value.prompts] == [PromptKind.PASSPHRASE]


def test_a_second_factor_is_asked_for_in_plain_words(tmp_path: Path) -> None:
    masters, log = controller(tmp_path, "otp")
    with pytest.raises(AuthPromptError) as caught:
        masters.start(TARGET, MasterAuth(), RequestAnswers(password=secret("secret")))
    assert typed(log) == []
    assert caught.value.message == (
        "A second factor is needed: the server accepted the publickey and asks: Verification code:"
    )
    assert [(prompt.text, prompt.echo) for prompt in caught.value.prompts] == [("Verification code:", False)]


def test_the_responses_answer_the_second_factor(tmp_path: Path) -> None:
    masters, log = controller(tmp_path, "otp")
    (tmp_path / "cm").mkdir()
    with pytest.raises(ConnectError, match="no master answers"):
        masters.start(TARGET, MasterAuth(), RequestAnswers(responses=[secret("123456")]))
    assert typed(log) == ["123456"]


def test_a_refused_code_is_never_sent_again(tmp_path: Path) -> None:
    masters, log = controller(tmp_path, "otp-wrong")
    with pytest.raises(AuthenticationError, match=r"the answer to 'Verification code:' was refused") as caught:
        masters.start(TARGET, MasterAuth(), RequestAnswers(responses=[secret("000000")]))
    assert not isinstance(caught.value, AuthPromptError)
    assert typed(log) == ["000000"]


def test_password_and_code_go_to_their_own_prompts(tmp_path: Path) -> None:
    masters, log = controller(tmp_path, "password-otp")
    (tmp_path / "cm").mkdir()
    with pytest.raises(ConnectError, match="no master answers"):
        masters.start(TARGET, MasterAuth(), RequestAnswers(password=secret("right"), responses=[secret("123456")]))
    assert typed(log) == ["right", "123456"]


def test_an_echoed_answer_never_reaches_the_message(tmp_path: Path) -> None:
    masters, log = controller(tmp_path, "echo")
    with pytest.raises(AuthenticationError) as caught:
        masters.start(TARGET, MasterAuth(), RequestAnswers(responses=[secret("badge-7731")]))
    assert typed(log) == ["badge-7731"]
    assert "badge-7731" not in caught.value.message
    masters_asking, _ = controller(tmp_path / "b", "echo")
    with pytest.raises(AuthPromptError) as asked:
        masters_asking.start(TARGET, MasterAuth(), RequestAnswers())
    assert [(prompt.text, prompt.echo) for prompt in asked.value.prompts] == [("Your badge number:", True)]


def test_a_host_key_question_is_always_answered_no(tmp_path: Path) -> None:
    masters, log = controller(tmp_path, "hostkey-question")
    with pytest.raises(ConnectError):
        masters.start(TARGET, MasterAuth(), RequestAnswers())
    assert typed(log) == ["no"]


def test_a_silent_ssh_is_stopped_at_the_deadline(tmp_path: Path) -> None:
    masters, _ = controller(tmp_path, "silent", timeout=1)
    started = time.monotonic()
    with pytest.raises(ConnectError, match="timed out after 1 s"):
        masters.start(TARGET, MasterAuth(), RequestAnswers())
    assert time.monotonic() - started < 10


def test_network_failures_carry_what_ssh_said(tmp_path: Path) -> None:
    masters, _ = controller(tmp_path, "refused")
    with pytest.raises(ConnectError, match="Connection failed: ssh: connect to host 10.0.0.1 port 22: Connection refused"):
        masters.start(TARGET, MasterAuth(), RequestAnswers())


def test_a_banner_that_ends_like_a_question_is_not_one(tmp_path: Path) -> None:
    masters, log = controller(tmp_path, "banner")
    (tmp_path / "cm").mkdir()
    # ssh went on (and succeeded): nothing was asked, nothing typed.
    with pytest.raises(ConnectError, match="no master answers"):
        masters.start(TARGET, MasterAuth(), RequestAnswers())
    assert typed(log) == []


def test_an_unprefixed_question_is_asked_once_the_output_stays_quiet(tmp_path: Path) -> None:
    masters, log = controller(tmp_path, "old-ssh-question")
    (tmp_path / "cm").mkdir()
    with pytest.raises(AuthPromptError) as raised:
        masters.start(TARGET, MasterAuth(), RequestAnswers())
    assert [(prompt.text, prompt.echo) for prompt in raised.value.prompts] == [("Your badge number:", True)]
    with pytest.raises(ConnectError, match="no master answers"):
        masters.start(TARGET, MasterAuth(), RequestAnswers(responses=[secret("badge-7")]))
    assert typed(log) == ["badge-7"]


def test_a_jump_host_that_closed_the_connection_is_named(tmp_path: Path) -> None:
    masters, _ = controller(tmp_path, "proxy-closed")
    with pytest.raises(ConnectError) as raised:
        masters.start(TARGET, MasterAuth(), RequestAnswers())
    assert raised.value.message == (
        "Connection failed: the jump host bastion (ProxyJump) closed the connection before host answered "
        "(unreachable, a refused login, or no way on to host); ssh host in a terminal shows which "
        "(ssh said: Connection closed by UNKNOWN port 65535)"
    )


def test_a_missing_ssh_client_is_a_clear_connect_error(tmp_path: Path) -> None:
    masters, _ = controller(tmp_path, "ok", ssh="/nonexistent/ssh")
    with pytest.raises(ConnectError, match="ssh client '/nonexistent/ssh' was not found"):
        masters.start(TARGET, MasterAuth(), RequestAnswers())


def test_the_config_of_a_start_is_removed_afterwards(tmp_path: Path) -> None:
    masters, _ = controller(tmp_path, "refused")
    with pytest.raises(ConnectError):
        masters.start(TARGET, MasterAuth(), RequestAnswers())
    assert list((tmp_path / "tmp").iterdir()) == []
