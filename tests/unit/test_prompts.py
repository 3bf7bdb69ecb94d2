"""The prompt and failure classifiers on recorded ssh output."""

from __future__ import annotations

import pytest

from rvssh.ssh.prompts import (
    PARTIAL_SUCCESS,
    PROMPT_PATTERN,
    FailureKind,
    PromptKind,
    classify_failure,
    classify_prompt,
    summarize_ssh_output,
    transcript_tail,
)


@pytest.mark.parametrize(
    ("text", "kind", "shown", "asks_password"),
    [
        ("rvssh-test@127.0.0.1's password: ", PromptKind.PASSWORD, "rvssh-test@127.0.0.1's password:", True),
        ("(alice@gpu) Password: ", PromptKind.KEYBOARD_INTERACTIVE, "Password:", True),
        ("Enter passphrase for key '/tmp/k/id_pass': ", PromptKind.PASSPHRASE, "Enter passphrase for key '/tmp/k/id_pass':", False),
        ("Enter PIN for ED25519-SK key /k/id: ", PromptKind.PASSPHRASE, "Enter PIN for ED25519-SK key /k/id:", False),
        ("Are you sure you want to continue connecting (yes/no/[fingerprint])? ", PromptKind.HOST_KEY_QUESTION,
         "Are you sure you want to continue connecting (yes/no/[fingerprint])?", False),
        ("\r\n(rvssh-test@127.0.0.1) One-time password (OATH) for `rvssh-test': ", PromptKind.KEYBOARD_INTERACTIVE,
         "One-time password (OATH) for `rvssh-test':", False),
        ("Verification code: ", PromptKind.KEYBOARD_INTERACTIVE, "Verification code:", False),
        ("(alice@gpu) Passcode or option (1-3): ", PromptKind.KEYBOARD_INTERACTIVE, "Passcode or option (1-3):", False),
    ],
)
def test_classify_prompt(text: str, kind: PromptKind, shown: str, asks_password: bool) -> None:
    prompt = classify_prompt(text)
    assert (prompt.kind, prompt.text, prompt.asks_password) == (kind, shown, asks_password)
    assert PROMPT_PATTERN.search(text) is not None


@pytest.mark.parametrize(
    "text",
    [
        "Permission denied, please try again.\r\n",
        "alice@gpu: Permission denied (publickey,password).\r\n",
        "old password:\r\nPermission denied\r\n",
        'Authenticated using "publickey" with partial success.\r\r\n',
    ],
)
def test_finished_lines_are_not_prompts(text: str) -> None:
    assert PROMPT_PATTERN.search(text) is None


@pytest.mark.parametrize(
    ("text", "echo", "certain"),
    [
        ("rvssh-test@127.0.0.1's password: ", False, True),
        ("Are you sure you want to continue connecting (yes/no/[fingerprint])? ", True, True),
        ("(alice@gpu) Passcode or option (1-3): ", True, True),
        ("Verification code: ", False, True),
        # Text on an echoing terminal without ssh's (user@host): maybe a banner still arriving.
        ("Authorized use only. Questions? Ask the admin:", True, False),
    ],
)
def test_only_what_ssh_surely_asks_is_certain(text: str, echo: bool, certain: bool) -> None:
    assert classify_prompt(text, echo=echo).certain is certain


def test_the_same_question_on_two_hosts_is_two_prompts() -> None:
    bastion = classify_prompt("(me@bastion) Verification code: ")
    target = classify_prompt("(me@gpu) Verification code: ")
    assert bastion.text == target.text and bastion.line != target.line


def test_partial_success_names_the_accepted_method() -> None:
    match = PARTIAL_SUCCESS.search('Authenticated using "publickey" with partial success.\r\n')
    assert match is not None and match.group("method") == "publickey"


@pytest.mark.parametrize(
    ("output", "kind"),
    [
        ("No ED25519 host key is known for [h]:22 and you have requested strict checking.\r\nHost key verification failed.\r\n", FailureKind.HOST_KEY),
        ("u@h: Permission denied (publickey).\r\n", FailureKind.AUTH),
        ("Connection closed by UNKNOWN port 65535\r\n", FailureKind.PROXY),
        ("b@bastion: Permission denied (publickey).\r\nConnection closed by UNKNOWN port 65535\r\n", FailureKind.PROXY),
        ("ssh: connect to host 127.0.0.1 port 1: Connection refused\r\n", FailureKind.CONNECT),
        ("ssh: Could not resolve hostname nohost: Name or service not known\r\n", FailureKind.CONNECT),
    ],
)
def test_classify_failure(output: str, kind: FailureKind) -> None:
    assert classify_failure(output) is kind


def test_summary_is_the_last_meaningful_line_without_prompts_or_progress() -> None:
    output = "u@h's password: \r\nPermission denied, please try again.\r\nu@h: Permission denied (password).\r\n"
    assert summarize_ssh_output(output) == "u@h: Permission denied (password)."
    assert summarize_ssh_output("\r\n") == "ssh exited without a message"
    verbose = 'Authenticated to b ([127.0.0.1]:2222) using "publickey".\r\nConnection closed by UNKNOWN port 65535\r\n'
    assert summarize_ssh_output(verbose) == "Connection closed by UNKNOWN port 65535"
    assert transcript_tail("a\r\nAuthenticated to x\r\nb\r\n") == "a | b"
    worker = "[2026-12-01 12:13:54 +0000] [19534] [DEBUG] worker: SIGWINCH ignored.\r\nu@h: Permission denied.\r\n"
    assert transcript_tail(worker) == "u@h: Permission denied."
