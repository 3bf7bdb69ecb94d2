"""Second factors through the API: a TOTP code asked by PAM (Debian's libpam-oath), answered with ``responses`` (issue #10).

Two real sshds run under PAM services of their own: one wants a key and
then the code (``AuthenticationMethods publickey,keyboard-interactive``),
the other the account's password and then the code in one
keyboard-interactive conversation (pam_unix, then pam_oath). Codes come
from ``oathtool``; pam_oath refuses a code of a time step it already
accepted, so each login takes a code of a later step (its window is wide).
"""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.integration.rvssh_fixtures import Rvssh, detail, ok_json, rvssh_for
from tests.integration.user_flow import (
    FlowExpectation,
    connect_through,
    port_closed,
    run_whole_flow,
    tunnel_health,
)
from tests.sshbed import (
    RUNICORN_VENV,
    TEST_HOME,
    TEST_PASSWORD,
    TEST_USER,
    PamService,
    SshBed,
    session_viewer_pids,
    wait_until,
)

# APPSEC: a throwaway secret for a throwaway sshd on 127.0.0.1.
OATH_SECRET = "3132333435363738393031323334353637383930"
OATH_PROMPT = f"One-time password (OATH) for `{TEST_USER}':"
OATH = "auth required pam_oath.so usersfile={dir}/oath.users window=20 digits=6\n"
PAM_TAIL = "@include common-account\n@include common-session-noninteractive\n"
FAILED_CODE = "Failed keyboard-interactive/pam for "
VENV_PYTHON = str(RUNICORN_VENV / "bin" / "python")


class Totp:
    """The codes of one sshd's users file, each of a later 30-second step than the last one used."""

    def __init__(self) -> None:
        self._last_step = 0

    @staticmethod
    def code_at(step: int) -> str:
        out = subprocess.run(["oathtool", "--totp", "-N", f"@{step * 30}", OATH_SECRET],
                             capture_output=True, text=True, check=True)
        return out.stdout.strip()

    def next_code(self) -> str:
        self._last_step = max(int(time.time()) // 30, self._last_step + 1)
        return self.code_at(self._last_step)

    def wrong_code(self) -> str:
        """Return a well-formed code of a step far outside the window."""
        return self.code_at(int(time.time()) // 30 - 1000)


def otp_bed(name: str, methods: str, pam_first: str = "") -> SshBed:
    return SshBed(
        sshd_options=["UsePAM yes", "KbdInteractiveAuthentication yes", f"AuthenticationMethods {methods}"],
        files={"oath.users": f"HOTP/T30/6 {TEST_USER} - {OATH_SECRET}\n"},
        pam=PamService(name, pam_first + OATH + PAM_TAIL),
    )


@pytest.fixture(scope="module")
def key_then_code() -> Iterator[tuple[SshBed, Totp]]:
    """An sshd that wants a key, then a TOTP code."""
    with otp_bed("rvssh-test-sshd-otp", "publickey,keyboard-interactive") as bed:
        yield bed, Totp()


@pytest.fixture(scope="module")
def password_and_code() -> Iterator[tuple[SshBed, Totp]]:
    """An sshd whose PAM conversation asks the account's password, then a TOTP code."""
    with otp_bed("rvssh-test-sshd-otp-pw", "keyboard-interactive", "auth requisite pam_unix.so\n") as bed:
        yield bed, Totp()


@pytest.fixture
def with_key(key_then_code: tuple[SshBed, Totp], state_dir: Path) -> Iterator[Rvssh]:
    with rvssh_for(key_then_code[0], state_dir, key_known=True) as instance:
        yield instance


@pytest.fixture
def with_password(password_and_code: tuple[SshBed, Totp], state_dir: Path) -> Iterator[Rvssh]:
    with rvssh_for(password_and_code[0], state_dir, key_known=True) as instance:
        yield instance


def master_pids(rvssh: Rvssh) -> list[int]:
    listing = subprocess.run(["pgrep", "-f", f'ControlPath="{rvssh.settings.state_dir}'], capture_output=True, text=True)
    return [int(pid) for pid in listing.stdout.split()]


def assert_nothing_left(rvssh: Rvssh) -> None:
    assert master_pids(rvssh) == []
    assert rvssh.client.simulate_get("/api/remote/sessions").json == {"sessions": []}


def failed_codes(bed: SshBed) -> int:
    return bed.count_lines(FAILED_CODE)


def oath_prompt(kind: str = "keyboard-interactive") -> dict[str, Any]:
    return {"prompt": OATH_PROMPT, "echo": False, "kind": kind}


# --- a key, then a code --------------------------------------------------------------------------


def test_a_key_without_the_code_is_asked_for_it(with_key: Rvssh) -> None:
    bed = with_key.bed
    logins = bed.count_logins()
    result = with_key.connect()
    assert result.status_code == 401, result.text
    assert result.json["detail"] == {
        "code": "AUTH_PROMPT",
        "message": f"A second factor is needed: the server accepted the publickey and asks: {OATH_PROMPT}",
        "prompts": [oath_prompt()],
    }
    assert_nothing_left(with_key)
    assert bed.count_logins() == logins


def test_a_wrong_code_is_sent_once_and_leaves_nothing(with_key: Rvssh, key_then_code: tuple[SshBed, Totp]) -> None:
    bed, totp = key_then_code
    bed.wait_until_idle()
    logins, failed = bed.count_logins(), failed_codes(bed)
    wrong = totp.wrong_code()
    result = with_key.connect(responses=[wrong])
    message = detail(result, 401)
    assert message.startswith("Connection failed: the server accepted the publickey but refused the second factor")
    assert wrong not in result.text
    # Every line of the refused login is in the log once its sshd process is gone.
    bed.wait_until_idle()
    assert failed_codes(bed) == failed + 1
    assert_nothing_left(with_key)
    assert bed.count_logins() == logins


def test_the_right_code_logs_in_and_goes_nowhere_else(
    with_key: Rvssh, key_then_code: tuple[SshBed, Totp], caplog: pytest.LogCaptureFixture
) -> None:
    bed, totp = key_then_code
    caplog.set_level(logging.DEBUG, logger="rvssh")
    logins = bed.count_logins(TEST_USER)
    codes: list[str] = []

    def answer(asked: dict[str, Any]) -> list[str]:
        assert asked["prompts"] == [oath_prompt()]
        codes.append(totp.next_code())
        return codes[-1:]

    walk = connect_through(with_key, with_key.connect_body(), answer)
    assert walk.result.status_code == 200, walk.result.text
    assert len(walk.questions) == 1
    wait_until(lambda: bed.count_logins(TEST_USER) == logins + 1, 5, "sshd logged no login", context=bed.log_text)
    assert "Accepted keyboard-interactive/pam for rvssh-test" in bed.log_text()
    # APPSEC: the code reached neither argv nor the environment of the master, a log, a file or an answer.
    (pid,) = master_pids(with_key)
    for name in ("cmdline", "environ"):
        assert codes[0].encode() not in Path(f"/proc/{pid}/{name}").read_bytes()
    assert codes[0] not in caplog.text
    for path in with_key.settings.state_dir.rglob("*"):
        assert not path.is_file() or codes[0].encode() not in path.read_bytes(), path
    assert codes[0] not in walk.result.text


def test_the_retry_may_go_to_another_rvssh(with_key: Rvssh, key_then_code: tuple[SshBed, Totp]) -> None:
    asked = with_key.connect()
    assert asked.json["detail"]["prompts"] == [oath_prompt()], asked.text
    # Nothing waits between the two requests: another worker (here a restarted rvssh) takes the answer.
    again = with_key.restarted()
    result = again.client.simulate_post("/api/remote/connect", json=with_key.connect_body(
        responses=[key_then_code[1].next_code()]))
    assert ok_json(result)["connection_id"] == with_key.target.connection_id
    assert len(master_pids(with_key)) == 1


def test_the_whole_flow_after_the_code(with_key: Rvssh, key_then_code: tuple[SshBed, Totp]) -> None:
    walk = connect_through(with_key, with_key.connect_body(), lambda asked: [key_then_code[1].next_code()])
    assert walk.result.status_code == 200, walk.result.text
    run_whole_flow(
        with_key, with_key.connect_body(), with_key.target.connection_id,
        FlowExpectation(user=TEST_USER, home=str(TEST_HOME), system_python="/usr/bin/python3",
                        conda_env="runicorn", python=VENV_PYTHON),
    )


def test_a_viewer_start_asks_for_the_code_and_takes_it(with_key: Rvssh, key_then_code: tuple[SshBed, Totp]) -> None:
    root = f"{TEST_HOME}/rvt-otp-viewer"
    body = with_key.connect_body(remote_root=root, conda_env="runicorn")
    walk = connect_through(with_key, body, lambda asked: [key_then_code[1].next_code()], path="/api/remote/viewer/start")
    assert [asked["prompts"] for asked in walk.questions] == [[oath_prompt()]]
    session = ok_json(walk.result)["session"]
    assert tunnel_health(session["localPort"])["storage"] == root
    stopped = with_key.client.simulate_post("/api/remote/viewer/stop", json={"session_id": session["sessionId"]})
    assert ok_json(stopped)["ok"] is True
    assert port_closed(session["localPort"])
    wait_until(lambda: session_viewer_pids(session["sessionId"]) == [], 10, "the viewer outlived its stop")


# --- the password and a code in one conversation ---------------------------------------------------


def password_body(rvssh: Rvssh, **fields: Any) -> dict[str, Any]:
    return rvssh.connect_body(private_key_path=None, **fields)


def test_the_password_field_answers_the_password_and_the_code_is_asked(with_password: Rvssh) -> None:
    body = password_body(with_password, password=TEST_PASSWORD)
    result = with_password.client.simulate_post("/api/remote/connect", json=body)
    assert result.status_code == 401, result.text
    asked = result.json["detail"]
    assert asked["code"] == "AUTH_PROMPT" and asked["prompts"] == [oath_prompt()], asked
    assert TEST_PASSWORD not in result.text
    assert_nothing_left(with_password)


def test_code_plus_password_logs_in(with_password: Rvssh, password_and_code: tuple[SshBed, Totp]) -> None:
    bed, totp = password_and_code
    logins = bed.count_logins(TEST_USER)
    body = password_body(with_password, password=TEST_PASSWORD, responses=[totp.next_code()])
    result = with_password.client.simulate_post("/api/remote/connect", json=body)
    assert result.status_code == 200, result.text
    wait_until(lambda: bed.count_logins(TEST_USER) == logins + 1, 5, "sshd logged no login", context=bed.log_text)


def test_every_answer_may_come_in_responses_in_the_order_asked(
    with_password: Rvssh, password_and_code: tuple[SshBed, Totp]
) -> None:
    totp = password_and_code[1]
    answers = {"Password:": TEST_PASSWORD}
    walk = connect_through(
        with_password, password_body(with_password),
        lambda asked: [answers.get(prompt["prompt"]) or totp.next_code() for prompt in asked["prompts"]],
    )
    assert walk.result.status_code == 200, walk.result.text
    assert [[prompt["prompt"] for prompt in asked["prompts"]] for asked in walk.questions] == [
        ["Password:"], ["Password:", OATH_PROMPT]]
    assert walk.questions[0]["message"] == "The server asks for a password: Password:"


def test_a_wrong_password_is_sent_once(with_password: Rvssh, password_and_code: tuple[SshBed, Totp]) -> None:
    bed, totp = password_and_code
    bed.wait_until_idle()
    failed = failed_codes(bed)
    body = password_body(with_password, password="not-the-password", responses=[totp.wrong_code()])
    result = with_password.client.simulate_post("/api/remote/connect", json=body)
    assert detail(result, 401).startswith("Connection failed: ")
    assert "not-the-password" not in result.text
    bed.wait_until_idle()
    assert failed_codes(bed) == failed + 1
    assert_nothing_left(with_password)
