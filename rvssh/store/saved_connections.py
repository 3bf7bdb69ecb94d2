"""Saved connections: the Runicorn UI's list, with every secret sealed.

The UI owns the schema of the entries; rvssh keeps every object (in the
shapes Runicorn 0.7 hands back, see :mod:`rvssh.store.saved_entries`), but
the value of a sensitive field (``password``, ``passphrase``,
``private_key`` or ``privateKey``, ``secret``, ``token``, ``api_key``), in
any entry, only sealed (see :mod:`rvssh.store.secrets`).
``saved_connections.json`` holds::

    {"version": 2, "entries": [
        {"entry": {<the entry without its secrets>}, "sealed": {"password": "<Fernet token>", ...}},
        ...]}

The slot names under ``sealed`` say which secrets are saved, so a GET can
say ``hasSavedPassword`` without the key. A secret belongs to its entry's
identity (``kind`` and ``id``): a later save that leaves the field out keeps
it. The version 1 file of rvssh 0.1 (entries, an index of slots, the secrets
in plaintext or one keyring entry each) is sealed anew on first use.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from rvssh.errors import NotFoundError
from rvssh.files import locked, read_json, write_json_atomic
from rvssh.store.saved_entries import (
    HAS_FLAGS,
    SLOTS,
    Record,
    entry_key,
    normalize,
    public_item,
    server_id_of,
    split_item,
)
from rvssh.store.secrets import LegacySecrets, SecretBox

log = logging.getLogger(__name__)

VERSION = 2
LOCK_TIMEOUT = 10.0


@dataclass(frozen=True)
class SavedServer:
    """A saved ``kind: "server"`` entry with its secrets (printed masked), for connect."""

    server_id: str
    host: str | None
    port: int | None
    username: str | None
    private_key_path: str | None
    password: SecretStr | None = None
    passphrase: SecretStr | None = None
    private_key: SecretStr | None = None


def seal_posted(posted: list[Record], save_secrets: bool, seal: Callable[[str], str]) -> list[Record]:
    """Return ``posted`` with each secret sealed (None for a cleared one, or when nothing may be saved)."""
    return [
        Record(record.entry, {slot: seal(value) if value and save_secrets else None
                              for slot, value in record.secrets.items()})
        for record in posted
    ]


def plan_replace(old: list[Record], posted: list[Record], save_secrets: bool) -> list[Record]:
    """Return the records that replace ``old``: the posted entries with their sealed secrets.

    ``posted`` secrets are sealed already (:func:`seal_posted`); a cleared one
    (None) is dropped; one that is not posted keeps the sealed secret of the
    old entry with the same kind and id. An entry that leaves the list loses
    its secrets. With ``save_secrets`` off nothing is kept.
    """
    kept: dict[tuple[str, str], dict[str, str | None]] = {}
    if save_secrets:
        for record in old:
            key = entry_key(record.entry)
            if key is not None:
                kept[key] = record.secrets
    result = []
    for record in posted:
        key = entry_key(record.entry)
        sealed = dict(kept.get(key, {})) if key is not None else {}
        for slot, token in record.secrets.items():
            if token and save_secrets:
                sealed[slot] = token
            else:
                sealed.pop(slot, None)
        result.append(Record(record.entry, sealed))
    return result


def parse_records(document: Any) -> list[Record] | None:
    """Return the records of a version 2 document, or None for any other document."""
    if not isinstance(document, dict) or document.get("version") != VERSION:
        return None
    entries = document.get("entries")
    records = []
    for item in entries if isinstance(entries, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("entry"), dict):
            continue
        sealed = item.get("sealed") if isinstance(item.get("sealed"), dict) else {}
        tokens: dict[str, str | None] = {
            slot: token for slot, token in sealed.items() if slot in SLOTS and isinstance(token, str)
        }
        records.append(Record(item["entry"], tokens))
    return records


def render(records: list[Record]) -> dict[str, Any]:
    """Return the version 2 document of ``records``."""
    return {
        "version": VERSION,
        "entries": [{"entry": record.entry, **({"sealed": record.secrets} if record.secrets else {})} for record in records],
    }


def parse_version_1(document: Any) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """Return the entries and the index of filled slots of a version 1 document (garbage reads as empty)."""
    if not isinstance(document, dict):
        return [], {}
    entries = document.get("connections")
    raw_index = document.get("secrets")
    connections = [item for item in entries if isinstance(item, dict)] if isinstance(entries, list) else []
    index: dict[str, list[str]] = {}
    if isinstance(raw_index, dict):
        for server_id, slots in raw_index.items():
            if isinstance(slots, list):
                index[server_id] = [slot for slot in slots if slot in HAS_FLAGS]
    return connections, index


def now_ms() -> int:
    """Return the time in ms since the epoch (Runicorn's ``createdAt``)."""
    return int(time.time() * 1000)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _port(value: Any) -> int | None:
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535:
        return value
    return None


class SavedConnectionStore:
    """Read and replace the saved list; look a server up with its secrets."""

    def __init__(
        self, path: Path, lock_path: Path, box: SecretBox, legacy: LegacySecrets, save_secrets: bool
    ) -> None:
        self._path = path
        self._lock_path = lock_path
        self._box = box
        self._legacy = legacy
        self._save_secrets = save_secrets

    def upgrade(self) -> None:
        """Seal the secrets of an rvssh 0.1 file now, and remove their plaintext copies."""
        with locked(self._lock_path, LOCK_TIMEOUT):
            self._records()

    def _records(self) -> list[Record]:
        """Return the stored records in Runicorn 0.7's shapes (the caller holds the lock).

        A file of rvssh 0.1 is upgraded first. Entries are normalised when
        read as well, for a file that was written by hand.
        """
        document = read_json(self._path, None)
        records = parse_records(document)
        if records is None:
            return self._upgrade(document)
        if self._legacy.path.exists():
            # An upgrade that stopped after writing the new file.
            self._legacy.forget(())
        return normalize(records, now_ms())

    def _upgrade(self, document: Any) -> list[Record]:
        entries, index = parse_version_1(document)
        if not entries and not self._legacy.path.exists():
            return []
        wanted = [(server_id, slot) for server_id, slots in index.items() for slot in slots]
        found = self._legacy.read(wanted) if self._save_secrets else {}
        posted = []
        for entry in entries:
            # 0.1 kept secret, token and api_key in the entry itself, in plaintext.
            record = split_item(entry)
            server_id = server_id_of(entry)
            for slot in index.get(server_id or "", []):
                if (server_id, slot) in found:
                    record.secrets[slot] = found[(server_id, slot)]  # type: ignore[index]
            posted.append(record)
        sealed = seal_posted(normalize(posted, now_ms()), self._save_secrets, self._box.seal)
        records = plan_replace([], sealed, self._save_secrets)
        write_json_atomic(self._path, render(records))
        self._legacy.forget(wanted)
        log.info("saved connections of rvssh 0.1 upgraded: %d secrets sealed, plaintext copies removed",
                 sum(len(record.secrets) for record in records))
        return records

    def list_masked(self) -> list[dict[str, Any]]:
        """Return the saved entries with no secret; server entries carry has* flags."""
        with locked(self._lock_path, LOCK_TIMEOUT):
            records = self._records()
        masked = []
        for record in records:
            entry = public_item(record.entry)
            if entry.get("kind") == "server":
                entry.update({flag: self._save_secrets and slot in record.secrets for slot, flag in HAS_FLAGS.items()})
            masked.append(entry)
        return masked

    def replace(self, items: list[dict[str, Any]]) -> None:
        """Replace the whole list, in Runicorn 0.7's shapes; secrets are written only sealed."""
        # PERF: sealing may ask the OS keyring for the key: done before the lock, never under it.
        posted = seal_posted(normalize([split_item(item) for item in items], now_ms()), self._save_secrets,
                             self._box.seal)
        with locked(self._lock_path, LOCK_TIMEOUT):
            records = plan_replace(self._records(), posted, self._save_secrets)
            write_json_atomic(self._path, render(records))

    def get_server(self, server_id: str) -> SavedServer:
        """Return the saved server ``server_id`` with its secrets, or raise 404."""
        with locked(self._lock_path, LOCK_TIMEOUT):
            record = next((record for record in self._records() if server_id_of(record.entry) == server_id), None)
        if record is None:
            raise NotFoundError(f"Saved server not found: {server_id}")
        secrets: dict[str, SecretStr | None] = {}
        if self._save_secrets:
            # The key may come from the OS keyring: opened outside the lock.
            opened = {slot: self._box.open(token) for slot, token in record.secrets.items()
                      if slot in HAS_FLAGS and token is not None}
            secrets = {slot: SecretStr(value) if value else None for slot, value in opened.items()}
        item = record.entry
        return SavedServer(
            server_id=server_id,
            host=_text(item.get("host")),
            port=_port(item.get("port")),
            username=_text(item.get("username")),
            private_key_path=_text(item.get("privateKeyPath")) or _text(item.get("private_key_path")),
            **secrets,
        )
