"""A directory of JSON records, one file per key: connections and viewer sessions.

One file per record means writers of different records never contend, and a
crash can lose at most the record being written.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from rvssh.store.files import make_private_dir, read_json, write_json_atomic


class RecordDirectory:
    """Store JSON objects by key in ``<directory>/<sha1(key)>.json``."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def _path(self, key: str) -> Path:
        return self._directory / f"{hashlib.sha1(key.encode('utf-8')).hexdigest()}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """Return the record stored under ``key``, or None."""
        record = read_json(self._path(key), None)
        return record if isinstance(record, dict) else None

    def put(self, key: str, record: dict[str, Any]) -> None:
        """Store ``record`` under ``key`` (atomic, 0600)."""
        make_private_dir(self._directory)
        write_json_atomic(self._path(key), record)

    def delete(self, key: str) -> bool:
        """Remove the record of ``key``; return whether there was one."""
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            return False
        return True

    def all(self) -> list[dict[str, Any]]:
        """Return every record, oldest first (by their ``created_at`` field)."""
        if not self._directory.is_dir():
            return []
        records = [read_json(path, None) for path in self._directory.glob("*.json")]
        valid = [record for record in records if isinstance(record, dict)]
        return sorted(valid, key=lambda record: record.get("created_at", 0))
