"""Classify what ssh prints on its terminal, as data.

A table of (regex, kind) feeds :func:`classify`; the pexpect loop in
master.py dispatches on the kind, never on a position in a list.
"""

from __future__ import annotations

import enum
import re


class PromptKind(enum.Enum):
    PASSWORD = "password"
    PASSPHRASE = "passphrase"
    HOST_KEY_QUESTION = "host_key_question"
    KEYBOARD_INTERACTIVE = "keyboard_interactive"


# Order matters: the first match wins.
PROMPT_TABLE: tuple[tuple[re.Pattern[str], PromptKind], ...] = (
    (re.compile(r"Enter passphrase for (?:key )?[^\n]*:[ \t]*\Z"), PromptKind.PASSPHRASE),
    (re.compile(r"Are you sure you want to continue connecting[^\n]*\?[ \t]*\Z"), PromptKind.HOST_KEY_QUESTION),
    (re.compile(r"(?i:password)(?: for [^:\n]*)?:[ \t]*\Z"), PromptKind.PASSWORD),
    (
        re.compile(r"(?i:verification code|one-time|otp|passcode|token|pin)[^:\n]*:[ \t]*\Z"),
        PromptKind.KEYBOARD_INTERACTIVE,
    ),
)

# One regex that finds the end of any prompt in a pexpect buffer.
PROMPT_PATTERN = re.compile("|".join(f"(?:{pattern.pattern})" for pattern, _ in PROMPT_TABLE))


def classify(text: str) -> PromptKind | None:
    """Return the kind of prompt ``text`` (the last line ssh printed) ends with."""
    last_line = text.replace("\r", "").rsplit("\n", 1)[-1]
    for pattern, kind in PROMPT_TABLE:
        if pattern.search(last_line):
            return kind
    return None


class FailureKind(enum.Enum):
    HOST_KEY = "host_key"
    AUTH = "auth"
    CONNECT = "connect"


# What ssh prints when it gives up, mapped to the kind of failure.
FAILURE_TABLE: tuple[tuple[re.Pattern[str], FailureKind], ...] = (
    (re.compile(r"Host key verification failed"), FailureKind.HOST_KEY),
    (re.compile(r"Permission denied|Too many authentication failures|Authentication failed"), FailureKind.AUTH),
)


def classify_failure(output: str) -> FailureKind:
    """Return what kind of failure ssh's output describes (CONNECT by default)."""
    for pattern, kind in FAILURE_TABLE:
        if pattern.search(output):
            return kind
    return FailureKind.CONNECT


_NOISE = re.compile(
    r"^(?:Warning: Permanently added|debug\d|Pseudo-terminal|@+$|\s*$)"
)


def summarize_ssh_output(output: str, limit: int = 300) -> str:
    """Return ssh's last meaningful line(s), stripped of prompts and noise.

    APPSEC: ssh's own output never contains what we typed (the tty does not
    echo secrets), so this is safe to show.
    """
    lines = [line.strip() for line in output.replace("\r", "").split("\n")]
    useful = [line for line in lines if line and not _NOISE.match(line) and classify(line) is None]
    if not useful:
        return "ssh exited without a message"
    text = useful[-1]
    return text[-limit:]
