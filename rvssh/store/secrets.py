"""Where the secrets of saved connections live: the OS keyring, else a private file.

A secret is addressed by the saved server's id and a slot (``password``,
``passphrase`` or ``private_key``). Vaults never list their content: the
saved-connections file keeps the index of which slots are filled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from keyring import get_keyring
from keyring.backend import KeyringBackend
from keyring.backends import chainer, fail, null
from keyring.errors import KeyringError, PasswordDeleteError

from rvssh.errors import StoreError
from rvssh.files import read_json, write_json_atomic

SLOTS = ("password", "passphrase", "private_key")
KEYRING_ADVICE = (
    "run rvssh with --no-save-secrets, or set PYTHON_KEYRING_BACKEND=keyring.backends.null.Keyring "
    "to keep secrets in a private file instead"
)


class SecretVault(Protocol):
    """Keeps secrets by (server id, slot) and never lists them."""

    def get(self, server_id: str, slot: str) -> str | None:
        """Return the secret in ``slot`` of ``server_id``, or None."""

    def put(self, server_id: str, slot: str, value: str) -> None:
        """Store ``value`` in ``slot`` of ``server_id``."""

    def delete(self, server_id: str, slot: str) -> None:
        """Forget the secret in ``slot`` of ``server_id`` (no error when absent)."""


def keyring_is_usable(backend: KeyringBackend) -> bool:
    """Return whether ``backend`` really stores secrets (not fail, null or an empty chainer)."""
    if isinstance(backend, (fail.Keyring, null.Keyring)):
        return False
    if isinstance(backend, chainer.ChainerBackend):
        return bool(backend.backends)
    return True


class KeyringVault:
    """Secrets in the OS keyring: service ``rvssh:<state dir>``, user ``<slot>/<server id>``."""

    def __init__(self, backend: KeyringBackend, service: str) -> None:
        self._backend = backend
        self._service = service

    def get(self, server_id: str, slot: str) -> str | None:
        """Return the secret in ``slot`` of ``server_id``, or None."""
        try:
            return self._backend.get_password(self._service, f"{slot}/{server_id}")
        except KeyringError as ex:
            raise StoreError(f"Failed to read a saved secret from the OS keyring; {KEYRING_ADVICE}") from ex

    def put(self, server_id: str, slot: str, value: str) -> None:
        """Store ``value`` in ``slot`` of ``server_id``."""
        try:
            self._backend.set_password(self._service, f"{slot}/{server_id}", value)
        except KeyringError as ex:
            raise StoreError(f"Failed to save a secret in the OS keyring; {KEYRING_ADVICE}") from ex

    def delete(self, server_id: str, slot: str) -> None:
        """Forget the secret in ``slot`` of ``server_id`` (no error when absent)."""
        try:
            self._backend.delete_password(self._service, f"{slot}/{server_id}")
        except PasswordDeleteError:
            return
        except KeyringError as ex:
            raise StoreError(f"Failed to remove a saved secret from the OS keyring; {KEYRING_ADVICE}") from ex


class FileVault:
    """Secrets in a 0600 JSON file ``{server id: {slot: secret}}`` in the 0700 state dir.

    The caller holds the saved-connections lock, so reads and writes here
    never interleave.
    """

    def __init__(self, path: Path) -> None:
        self._path = path

    def _read(self) -> dict[str, dict[str, str]]:
        document = read_json(self._path, {})
        if not isinstance(document, dict):
            return {}
        return {key: value for key, value in document.items() if isinstance(value, dict)}

    def get(self, server_id: str, slot: str) -> str | None:
        """Return the secret in ``slot`` of ``server_id``, or None."""
        value = self._read().get(server_id, {}).get(slot)
        return value if isinstance(value, str) else None

    def put(self, server_id: str, slot: str, value: str) -> None:
        """Store ``value`` in ``slot`` of ``server_id``."""
        document = self._read()
        document.setdefault(server_id, {})[slot] = value
        # APPSEC: write_json_atomic creates the file 0600 in a 0700 directory.
        write_json_atomic(self._path, document)

    def delete(self, server_id: str, slot: str) -> None:
        """Forget the secret in ``slot`` of ``server_id`` (no error when absent)."""
        document = self._read()
        if slot not in document.get(server_id, {}):
            return
        del document[server_id][slot]
        if not document[server_id]:
            del document[server_id]
        write_json_atomic(self._path, document)


def choose_vault(state_dir: Path, backend: KeyringBackend | None = None) -> SecretVault:
    """Return the OS keyring when it is usable, else the private secrets file."""
    backend = backend if backend is not None else get_keyring()
    if keyring_is_usable(backend):
        return KeyringVault(backend, service=f"rvssh:{state_dir}")
    return FileVault(state_dir / "saved_secrets.json")
