"""What ssh prints on its terminal, as data: prompts and failures.

A table of (regex, kind) feeds :func:`classify_prompt`; the pexpect loop in
master.py hands each :class:`Prompt` to an answerer (``ssh/answers.py``) and
never branches on a position in a list.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass


class PromptKind(enum.Enum):
    """Who asks: ssh itself (password, passphrase, host key) or the server (keyboard-interactive)."""

    PASSWORD = "password"
    PASSPHRASE = "passphrase"
    HOST_KEY_QUESTION = "host_key_question"
    KEYBOARD_INTERACTIVE = "keyboard-interactive"


@dataclass(frozen=True)
class Prompt:
    """One question on ssh's terminal.

    Attributes:
        kind: who asks.
        line: the whole prompt line as ssh printed it; the same line twice
            means the first answer was refused.
        text: what to show a person: the server's own words for a
            keyboard-interactive question (without ssh's ``(user@host)``
            prefix), else the line.
        echo: whether the terminal echoes the answer (a keyboard-interactive
            question may ask for something that is not secret).
        certain: whether ssh surely waits for an answer: one of its own
            prompts, a question it prefixed with ``(user@host)``, or a
            terminal that stopped echoing. Other text that ends like a
            question may be text still arriving: a Banner whose last line
            has no newline, or a long banner cut where a line ends in ``:``.
    """

    kind: PromptKind
    line: str
    text: str
    echo: bool = False
    certain: bool = True

    @property
    def asks_password(self) -> bool:
        """Whether this asks for the account's password (ssh's prompt, or PAM's via keyboard-interactive)."""
        return self.kind is PromptKind.PASSWORD or (
            self.kind is PromptKind.KEYBOARD_INTERACTIVE and _PAM_PASSWORD.fullmatch(self.text) is not None
        )


# Any line ssh left unfinished on the terminal that ends like a question: a
# prompt waiting for an answer (ssh ends every message with a newline).
PROMPT_PATTERN = re.compile(r"[^\r\n]*[:?][ \t]*\Z")

# OpenSSH >= 8.4 prefixes keyboard-interactive questions with "(user@host) ".
_KBD_PREFIX = re.compile(r"\((?P<who>[^()\s]+@[^()\s]+)\) (?P<text>.*)\Z")
_PAM_PASSWORD = re.compile(r"(?i)\s*(?:\S+'s\s+)?password(?:\s+for\s+\S+)?\s*:\s*")

# Order matters: the first match wins; anything else that ends like a
# question is a keyboard-interactive question of the server.
PROMPT_TABLE: tuple[tuple[re.Pattern[str], PromptKind], ...] = (
    (re.compile(r"^Enter (?:passphrase|PIN) for [^\n]*:[ \t]*\Z"), PromptKind.PASSPHRASE),
    (re.compile(r"continue connecting[^\n]*\?[ \t]*\Z"), PromptKind.HOST_KEY_QUESTION),
    (re.compile(r"^[^\s()]+@[^\s()]+'s password:[ \t]*\Z"), PromptKind.PASSWORD),
)


def classify_prompt(text: str, echo: bool = False) -> Prompt:
    """Return the prompt that ``text`` (what ssh printed so far) ends with."""
    line = text.replace("\r", "").rsplit("\n", 1)[-1].strip()
    for pattern, kind in PROMPT_TABLE:
        if pattern.search(line):
            return Prompt(kind, line, line, echo)
    match = _KBD_PREFIX.match(line)
    if match:
        return Prompt(PromptKind.KEYBOARD_INTERACTIVE, line, match.group("text"), echo)
    return Prompt(PromptKind.KEYBOARD_INTERACTIVE, line, line, echo, certain=not echo)


class FailureKind(enum.Enum):
    HOST_KEY = "host_key"
    PROXY = "proxy"
    AUTH = "auth"
    CONNECT = "connect"


# What ssh prints when it gives up, mapped to the kind of failure; the first that matches wins.
FAILURE_TABLE: tuple[tuple[re.Pattern[str], FailureKind], ...] = (
    (re.compile(r"Host key verification failed"), FailureKind.HOST_KEY),
    # Its ProxyJump (or ProxyCommand) hop closed the connection: the peer of
    # a proxy is a pipe, which ssh names "UNKNOWN port 65535".
    (re.compile(r"Connection closed by UNKNOWN port 65535"), FailureKind.PROXY),
    (re.compile(r"Permission denied|Too many authentication failures|Authentication failed"), FailureKind.AUTH),
)

PARTIAL_SUCCESS = re.compile(r'Authenticated using "(?P<method>[^"]+)" with partial success')


def classify_failure(output: str) -> FailureKind:
    """Return what kind of failure ssh's output describes (CONNECT by default)."""
    for pattern, kind in FAILURE_TABLE:
        if pattern.search(output):
            return kind
    return FailureKind.CONNECT


# Lines that say nothing about why ssh failed (LogLevel VERBOSE progress
# included), and a gunicorn worker's own log line: the pty's first window
# size change reaches the forked worker before it becomes ssh.
_NOISE = re.compile(
    r"^(?:Warning: Permanently added|debug\d|Pseudo-terminal|Authenticated (?:to|using)|Transferred: |"
    r"Bytes per second|Killed by signal|Connection to .* closed\.|@+$|\s*$|\[[^]]+\] \[\d+\] \[[A-Z]+\] )"
)


def meaningful_lines(output: str) -> list[str]:
    """Return ssh's lines that explain something, without prompts, progress or noise."""
    lines = [line.strip() for line in output.replace("\r", "").split("\n")]
    return [line for line in lines if line and not _NOISE.match(line) and not PROMPT_PATTERN.fullmatch(line)]


def summarize_ssh_output(output: str, limit: int = 300) -> str:
    """Return ssh's last meaningful line.

    APPSEC: call it on a transcript scrubbed of what was typed (master.py
    does); ssh itself never prints a secret.
    """
    useful = meaningful_lines(output)
    return useful[-1][-limit:] if useful else "ssh exited without a message"


def transcript_tail(output: str, lines: int = 12) -> str:
    """Return the last meaningful lines of a transcript, for the log."""
    return " | ".join(meaningful_lines(output)[-lines:])
