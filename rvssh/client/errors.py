"""Errors of the commands: what went wrong, in one plain line, and the exit status it gives."""

from __future__ import annotations

from typing import Any

from rvssh.errors import RvsshError

EXIT_FAILED = 1
EXIT_USAGE = 2


class ClientError(RvsshError):
    """A command failed; ``message`` is shown as is, and the command exits with ``exit_status``."""

    def __init__(self, message: str, exit_status: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_status = exit_status


class UsageError(ClientError):
    """The command line cannot be used (exit status 2, as argparse's own errors)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_USAGE)


def detail_text(detail: Any) -> str:
    """Return an answer's ``detail`` in plain words: the string, an object's ``message``, a 422's problems."""
    if isinstance(detail, str):
        return detail
    if isinstance(detail, dict) and isinstance(detail.get("message"), str):
        return detail["message"]
    if isinstance(detail, list):
        problems = [
            f"{'.'.join(str(part) for part in item.get('loc', ()) if part != 'body')}: {item.get('msg', '')}"
            for item in detail
            if isinstance(item, dict)
        ]
        if problems:
            return "; ".join(problems)
    return "the answer had no detail"


class ApiError(ClientError):
    """rvssh answered an error: its status and ``detail`` (a string, the 409 or AUTH_PROMPT object, a list)."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(detail_text(detail))
        self.status = status
        self.detail = detail

    @property
    def code(self) -> str | None:
        """Return ``detail.code`` (``HOST_KEY_CONFIRMATION_REQUIRED``, ``AUTH_PROMPT``) or None."""
        return self.detail.get("code") if isinstance(self.detail, dict) else None
