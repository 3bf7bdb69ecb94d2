"""Saved entries: their secret fields, and old shapes normalised the way Runicorn 0.7 does.

The Runicorn UI owns the shape of saved entries; rvssh keeps every object.
This module knows what is secret in an entry (:data:`SECRET_KEYS`), which
entry owns a saved secret (:func:`entry_key`), and how Runicorn 0.7
(``runicorn/config/connections.py``) hands back entries of older shapes, so
that a 0.7 client reads every entry it finds (:func:`normalize`):

- the snake_case keys ``private_key_path``, ``created_at`` and
  ``auth_method`` of any entry become ``privateKeyPath``, ``createdAt`` and
  ``authMethod`` (when the camelCase key is not there already);
- a flat entry of the UI before 0.6 (no ``kind`` of ``server`` or
  ``connection``, but an ``id``, a ``host`` and a ``username``) becomes a
  ``kind: "server"`` entry with the id ``srv_<user>_<host>_<port>`` (every
  character that is not a letter or digit written ``_``), plus a
  ``kind: "connection"`` profile that keeps the old id and points at that
  server; the first server of the same user, host and port that is already
  there takes the profile instead, and keeps what it has;
- a server entry without an id gets that ``srv_...`` id;
- every other entry passes through.

When any entry had to change this way, the list comes back as servers,
then profiles, then the other entries, as in Runicorn 0.7; otherwise in the
order saved. The server made from a flat entry takes its ``password``,
``passphrase`` and ``private_key`` (Runicorn 0.7 keeps the first two and
the key path); its other secrets are dropped with the flat entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Request key -> slot. ``privateKey`` is the camelCase spelling a UI may use.
SECRET_KEYS = {
    "password": "password",
    "passphrase": "passphrase",
    "private_key": "private_key",
    "privateKey": "private_key",
    "secret": "secret",
    "token": "token",
    "api_key": "api_key",
}
SLOTS = frozenset(SECRET_KEYS.values())
# The secrets a server entry lends to connect, and the flag a GET shows for each.
HAS_FLAGS = {"password": "hasSavedPassword", "passphrase": "hasSavedPassphrase", "private_key": "hasSavedPrivateKey"}
MAX_ID_LENGTH = 256
SNAKE_TO_CAMEL = {"private_key_path": "privateKeyPath", "created_at": "createdAt", "auth_method": "authMethod"}
PROFILE_KINDS = ("server", "connection")
DEFAULT_PORT = 22
ServerIdentity = tuple[str, str, int]


@dataclass
class Record:
    """One saved entry: its public fields and its secrets by slot.

    A stored record holds Fernet tokens. A record made from a request holds
    the posted values; ``None`` (posted as ``null`` or ``""``) clears a slot,
    and a slot that is absent was not posted.
    """

    entry: dict[str, Any]
    secrets: dict[str, str | None] = field(default_factory=dict)


def usable_id(value: Any) -> str | None:
    """Return ``value`` when it is a printable string of 1 to 256 characters, else None."""
    if isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH and value.isprintable():
        return value
    return None


def server_id_of(item: dict[str, Any]) -> str | None:
    """Return the id of a ``kind: "server"`` entry that connect can use, else None."""
    return usable_id(item.get("id")) if item.get("kind") == "server" else None


def entry_key(entry: dict[str, Any]) -> tuple[str, str] | None:
    """Return (kind, id) that ties saved secrets to an entry across saves, or None without a usable id."""
    entry_id = usable_id(entry.get("id"))
    if entry_id is None:
        return None
    kind = entry.get("kind")
    return (kind if isinstance(kind, str) else "", entry_id)


def public_item(item: dict[str, Any]) -> dict[str, Any]:
    """Return ``item`` without secret fields and without has* flags (those are computed)."""
    # APPSEC: this is the only shape an entry is written to disk or sent back in.
    hidden = SECRET_KEYS.keys() | HAS_FLAGS.values()
    return {key: value for key, value in item.items() if key not in hidden}


def split_item(item: dict[str, Any]) -> Record:
    """Return a posted entry as a record: its public fields and the secrets it carries."""
    secrets: dict[str, str | None] = {}
    for key, slot in SECRET_KEYS.items():
        if key in item:
            value = item[key]
            secrets[slot] = value if isinstance(value, str) and value else None
    return Record(public_item(item), secrets)


# --- old shapes -------------------------------------------------------------


def camel_keys(entry: dict[str, Any]) -> dict[str, Any]:
    """Return ``entry`` with its snake_case keys renamed where the camelCase key is absent."""
    renamed = dict(entry)
    for snake, camel in SNAKE_TO_CAMEL.items():
        if snake in renamed and camel not in renamed:
            renamed[camel] = renamed.pop(snake)
    return renamed


def is_flat_legacy(entry: dict[str, Any]) -> bool:
    """Return whether ``entry`` is a flat entry of the UI before 0.6."""
    return entry.get("kind") not in PROFILE_KINDS and bool(entry.get("host") and entry.get("username") and entry.get("id"))


def port_of(value: Any) -> int:
    """Return a port number from a saved value; anything unusable counts as 22."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value:
        return value
    return DEFAULT_PORT


def server_identity(entry: dict[str, Any]) -> ServerIdentity:
    """Return (username, host, port): the server a flat entry or a server entry stands for."""
    return str(entry.get("username") or ""), str(entry.get("host") or ""), port_of(entry.get("port"))


def server_id_for(identity: ServerIdentity) -> str:
    """Return Runicorn's id of a server: ``srv_<user>_<host>_<port>``."""
    username, host, port = identity

    def part(value: str) -> str:
        return "".join(character if character.isalnum() else "_" for character in value)

    return f"srv_{part(username)}_{part(host)}_{port}"


def auth_method(entry: dict[str, Any], secrets: dict[str, str | None]) -> str:
    """Return the ``authMethod`` Runicorn 0.7 gives a server: what it can log in with."""
    if secrets.get("password"):
        return "password"
    if entry.get("privateKeyPath") or secrets.get("private_key"):
        return "key"
    return str(entry.get("authMethod") or "password")


def server_from_legacy(record: Record, identity: ServerIdentity, now_ms: int) -> Record:
    """Return the server entry a flat entry stands for, with its login secrets."""
    entry = record.entry
    port = identity[2]
    secrets = {slot: value for slot, value in record.secrets.items() if slot in HAS_FLAGS}
    server = {
        "kind": "server",
        "id": server_id_for(identity),
        "name": f"{entry.get('username')}@{entry.get('host')}:{port}",
        "host": entry.get("host"),
        "port": port,
        "username": entry.get("username"),
        "authMethod": auth_method(entry, secrets),
        "privateKeyPath": entry.get("privateKeyPath"),
        "createdAt": entry.get("createdAt") or now_ms,
    }
    return Record(server, secrets)


def profile_from_legacy(entry: dict[str, Any], server_id: str, now_ms: int) -> Record:
    """Return the connection profile a flat entry becomes, pointing at ``server_id``."""
    profile = {
        "kind": "connection",
        "id": entry["id"],
        "serverId": server_id,
        "name": entry.get("name") or f"{entry.get('username')}@{entry.get('host')}",
        "condaEnv": entry.get("condaEnv"),
        "remoteRoot": entry.get("remoteRoot"),
        "localPort": entry.get("localPort"),
        "remotePort": entry.get("remotePort"),
        "createdAt": entry.get("createdAt") or now_ms,
    }
    return Record(profile)


def merge_servers(existing: Record, incoming: Record) -> Record:
    """Return ``existing`` completed from ``incoming`` (a server of the same user, host and port).

    What the existing server has wins; it takes the other's name, host,
    port, username, key path, ``authMethod`` and secrets only where it has
    none, and the earlier ``createdAt``.
    """
    merged = dict(existing.entry)
    other = incoming.entry
    for key in ("name", "host", "username"):
        merged[key] = merged.get(key) or other.get(key)
    merged["port"] = merged.get("port") or other.get("port") or DEFAULT_PORT
    if "privateKeyPath" not in merged:
        merged["privateKeyPath"] = other.get("privateKeyPath")
    created = [value for value in (merged.get("createdAt"), other.get("createdAt")) if isinstance(value, (int, float))]
    if created:
        merged["createdAt"] = min(created)
    secrets = {**incoming.secrets, **existing.secrets}
    merged["authMethod"] = merged.get("authMethod") or auth_method(merged, secrets)
    return Record(merged, secrets)


def normalize(records: list[Record], now_ms: int) -> list[Record]:
    """Return ``records`` in the shapes Runicorn 0.7 hands back (see the module docstring).

    Unlike Runicorn 0.7, two server entries of the same user, host and port
    are not merged into one (a profile may point at either): only a flat
    entry joins the first server entry of its user, host and port.

    Args:
        records: saved entries with their secrets (sealed or as posted).
        now_ms: ``createdAt`` for an entry made from a flat one that had none.
    """
    entries = [camel_keys(record.entry) for record in records]
    # Runicorn 0.7 reorders when a flat entry moved, a server got its id or
    # another entry was renamed; renaming alone a server or profile is not a change.
    changed = any(
        entry != record.entry and entry.get("kind") not in PROFILE_KINDS for entry, record in zip(entries, records)
    )
    servers: list[Record] = []
    first_server: dict[ServerIdentity, int] = {}
    for entry, record in zip(entries, records):
        if entry.get("kind") == "server":
            if not entry.get("id"):
                entry["id"] = server_id_for(server_identity(entry))
                changed = True
            first_server.setdefault(server_identity(entry), len(servers))
            servers.append(Record(entry, record.secrets))
    profiles: list[Record] = []
    others: list[Record] = []
    for entry, record in zip(entries, records):
        if entry.get("kind") == "connection":
            profiles.append(Record(entry, record.secrets))
        elif is_flat_legacy(entry):
            changed = True
            identity = server_identity(entry)
            made = server_from_legacy(Record(entry, record.secrets), identity, now_ms)
            if identity in first_server:
                index = first_server[identity]
                servers[index] = merge_servers(servers[index], made)
            else:
                first_server[identity] = len(servers)
                servers.append(made)
            profiles.append(profile_from_legacy(entry, str(servers[first_server[identity]].entry["id"]), now_ms))
        elif entry.get("kind") != "server":
            others.append(Record(entry, record.secrets))
    if not changed:
        return [Record(entry, record.secrets) for entry, record in zip(entries, records)]
    return [*servers, *profiles, *others]
