"""Saved connections: the Runicorn UI's list, kept without its secrets.

The UI owns the schema of the entries; rvssh stores them verbatim except
for the secret fields, which go to a :class:`~rvssh.store.secrets.SecretVault`
under the entry's id (``kind: "server"`` entries only). The file
``saved_connections.json`` holds::

    {"version": 1, "connections": [<entries without secrets>],
     "secrets": {"<server id>": ["password", ...]}}

where ``secrets`` is the index of filled slots (never a value), so a GET can
say ``hasSavedPassword`` without asking the keyring.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from rvssh.errors import NotFoundError
from rvssh.files import locked, read_json, write_json_atomic
from rvssh.store.secrets import SLOTS, SecretVault

# Request key -> vault slot. ``privateKey`` is the camelCase spelling a UI may use.
SECRET_KEYS = {"password": "password", "passphrase": "passphrase", "private_key": "private_key", "privateKey": "private_key"}
HAS_FLAGS = {"password": "hasSavedPassword", "passphrase": "hasSavedPassphrase", "private_key": "hasSavedPrivateKey"}
MAX_ID_LENGTH = 256
LOCK_TIMEOUT = 10.0
Index = dict[str, list[str]]


@dataclass(frozen=True)
class SavedServer:
    """A saved ``kind: "server"`` entry with its secrets, for connect."""

    server_id: str
    host: str | None
    port: int | None
    username: str | None
    private_key_path: str | None
    password: str | None = None
    passphrase: str | None = None
    private_key: str | None = None


def server_id_of(item: dict[str, Any]) -> str | None:
    """Return the id of a server entry that can own secrets, else None.

    Only ``kind: "server"`` entries with a printable id of 1 to 256
    characters qualify; the secrets of any other entry are dropped.
    """
    if item.get("kind") != "server":
        return None
    server_id = item.get("id")
    if isinstance(server_id, str) and 0 < len(server_id) <= MAX_ID_LENGTH and server_id.isprintable():
        return server_id
    return None


def public_item(item: dict[str, Any]) -> dict[str, Any]:
    """Return ``item`` without secret fields and without has* flags (those are computed)."""
    # APPSEC: this is the only shape an entry is written to disk or sent back in.
    hidden = SECRET_KEYS.keys() | HAS_FLAGS.values()
    return {key: value for key, value in item.items() if key not in hidden}


def secret_changes(item: dict[str, Any]) -> dict[str, str | None]:
    """Return slot -> new secret for each secret key present; None (null or "") clears."""
    changes: dict[str, str | None] = {}
    for key, slot in SECRET_KEYS.items():
        if key in item:
            value = item[key]
            changes[slot] = value if isinstance(value, str) and value else None
    return changes


def plan_replace(
    old_index: Index, items: Iterable[dict[str, Any]], save_secrets: bool
) -> tuple[list[dict[str, Any]], Index, dict[tuple[str, str], str], list[tuple[str, str]]]:
    """Plan a whole-list replace: the public entries, the new index, secrets to put and to delete.

    An omitted secret field keeps the saved secret of that id; ``null`` (or
    "") clears it; a server id that leaves the list loses its secrets. With
    ``save_secrets`` off nothing is put and every old secret is deleted.
    """
    public: list[dict[str, Any]] = []
    slots_by_id: dict[str, set[str]] = {}
    puts: dict[tuple[str, str], str] = {}
    for item in items:
        public.append(public_item(item))
        server_id = server_id_of(item)
        if server_id is None:
            continue
        kept = set(old_index.get(server_id, ())) if save_secrets else set()
        slots = slots_by_id.setdefault(server_id, kept)
        for slot, value in secret_changes(item).items():
            if value is not None and save_secrets:
                slots.add(slot)
                puts[(server_id, slot)] = value
            else:
                slots.discard(slot)
                puts.pop((server_id, slot), None)
    index = {server_id: sorted(slots) for server_id, slots in slots_by_id.items() if slots}
    deletes = [
        (server_id, slot)
        for server_id, slots in old_index.items()
        for slot in slots
        if slot not in index.get(server_id, ())
    ]
    return public, index, puts, deletes


def parse_document(document: Any) -> tuple[list[dict[str, Any]], Index]:
    """Return the entries and the secret index of a file's JSON; garbage reads as empty."""
    if not isinstance(document, dict):
        return [], {}
    entries = document.get("connections")
    raw_index = document.get("secrets")
    connections = [item for item in entries if isinstance(item, dict)] if isinstance(entries, list) else []
    index: Index = {}
    if isinstance(raw_index, dict):
        for server_id, slots in raw_index.items():
            if isinstance(slots, list):
                index[server_id] = [slot for slot in slots if slot in SLOTS]
    return connections, index


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

    def __init__(self, path: Path, lock_path: Path, vault: SecretVault, save_secrets: bool) -> None:
        self._path = path
        self._lock_path = lock_path
        self._vault = vault
        self._save_secrets = save_secrets

    def _load(self) -> tuple[list[dict[str, Any]], Index]:
        connections, index = parse_document(read_json(self._path, None))
        return connections, (index if self._save_secrets else {})

    def list_masked(self) -> list[dict[str, Any]]:
        """Return the saved entries with no secret; server entries carry has* flags."""
        with locked(self._lock_path, LOCK_TIMEOUT):
            connections, index = self._load()
        masked = []
        for item in connections:
            entry = public_item(item)
            if item.get("kind") == "server":
                filled = index.get(server_id_of(item) or "", [])
                entry.update({flag: slot in filled for slot, flag in HAS_FLAGS.items()})
            masked.append(entry)
        return masked

    def replace(self, items: list[dict[str, Any]]) -> None:
        """Replace the whole list; secrets go to the vault, never to the file."""
        with locked(self._lock_path, LOCK_TIMEOUT):
            _, old_index = parse_document(read_json(self._path, None))
            public, index, puts, deletes = plan_replace(old_index, items, self._save_secrets)
            for (server_id, slot), value in puts.items():
                self._vault.put(server_id, slot, value)
            write_json_atomic(self._path, {"version": 1, "connections": public, "secrets": index})
            for server_id, slot in deletes:
                self._vault.delete(server_id, slot)

    def get_server(self, server_id: str) -> SavedServer:
        """Return the saved server ``server_id`` with its secrets, or raise 404."""
        with locked(self._lock_path, LOCK_TIMEOUT):
            connections, index = self._load()
            item = next((entry for entry in connections if server_id_of(entry) == server_id), None)
            if item is None:
                raise NotFoundError(f"Saved server not found: {server_id}")
            secrets = {slot: self._vault.get(server_id, slot) for slot in index.get(server_id, [])}
        return SavedServer(
            server_id=server_id,
            host=_text(item.get("host")),
            port=_port(item.get("port")),
            username=_text(item.get("username")),
            private_key_path=_text(item.get("privateKeyPath")) or _text(item.get("private_key_path")),
            **secrets,
        )
