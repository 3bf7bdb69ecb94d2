"""Helpers for tests of secrets at rest: an in-memory keyring, and every file's text."""

from __future__ import annotations

from pathlib import Path

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError


class MemoryKeyring(KeyringBackend):
    """An in-memory keyring backend, standing in for the OS keyring (never the machine's own)."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.entries.pop((service, username), None) is None:
            raise PasswordDeleteError(username)


def every_file_text(directory: Path) -> str:
    """Return the text of every file under ``directory`` (what a grep -r would search)."""
    return "\n".join(path.read_bytes().decode("utf-8", "replace") for path in directory.rglob("*") if path.is_file())
