"""The prompt and failure classifiers on recorded ssh output."""

from __future__ import annotations

import pytest

from rvssh.ssh.prompts import PROMPT_PATTERN, FailureKind, PromptKind, classify, classify_failure, summarize_ssh_output


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("rvssh-test@127.0.0.1's password: ", PromptKind.PASSWORD),
        ("(alice@gpu) Password: ", PromptKind.PASSWORD),
        ("Enter passphrase for key '/tmp/k/id_pass': ", PromptKind.PASSPHRASE),
        ("Are you sure you want to continue connecting (yes/no/[fingerprint])? ", PromptKind.HOST_KEY_QUESTION),
        ("Verification code: ", PromptKind.KEYBOARD_INTERACTIVE),
        ("(alice@gpu) Passcode or option (1-3): ", PromptKind.KEYBOARD_INTERACTIVE),
        ("Permission denied, please try again.\r\n", None),
        ("alice@gpu: Permission denied (publickey,password).\r\n", None),
    ],
)
def test_classify(text: str, kind: PromptKind | None) -> None:
    assert classify(text) is kind
    assert (PROMPT_PATTERN.search(text) is not None) is (kind is not None)


def test_a_password_line_that_already_ended_is_not_a_prompt() -> None:
    assert PROMPT_PATTERN.search("old password:\r\nPermission denied\r\n") is None


@pytest.mark.parametrize(
    ("output", "kind"),
    [
        ("No ED25519 host key is known for [h]:22 and you have requested strict checking.\r\nHost key verification failed.\r\n", FailureKind.HOST_KEY),
        ("u@h: Permission denied (publickey).\r\n", FailureKind.AUTH),
        ("ssh: connect to host 127.0.0.1 port 1: Connection refused\r\n", FailureKind.CONNECT),
        ("ssh: Could not resolve hostname nohost: Name or service not known\r\n", FailureKind.CONNECT),
    ],
)
def test_classify_failure(output: str, kind: FailureKind) -> None:
    assert classify_failure(output) is kind


def test_summary_is_the_last_meaningful_line_without_prompts() -> None:
    output = "u@h's password: \r\nPermission denied, please try again.\r\nu@h: Permission denied (password).\r\n"
    assert summarize_ssh_output(output) == "u@h: Permission denied (password)."
    assert summarize_ssh_output("\r\n") == "ssh exited without a message"
