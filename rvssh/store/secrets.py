"""Saved secrets at rest: sealed with Fernet under one key per state directory.

A sealed secret is a Fernet token (AES-128-CBC with an HMAC-SHA256, from the
``cryptography`` package), stored beside the entry it belongs to. The key is
kept apart from the tokens:

- in the OS keyring when one is usable: service ``rvssh:<state dir>``, user
  ``saved-secrets-key``;
- else in ``<state dir>/saved_secrets.key``, mode 0600, created on first use.

APPSEC: this keeps secrets out of a copied or backed-up state directory
(without the keyring, or without the key file), out of a grep and out of a
pasted file. It does not protect them from a process running as the same
user, which can read the key file or ask the keyring as rvssh does.

Earlier versions kept secrets in plaintext (``saved_secrets.json``) or one
keyring entry per secret; :class:`LegacySecrets` reads those once so the
saved-connections store can seal them and remove the old copies.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from rvssh.errors import StoreError
from rvssh.files import create_file_once, read_json

if TYPE_CHECKING:
    from cryptography.fernet import Fernet
    from keyring.backend import KeyringBackend

# PERF: cryptography (its own OpenSSL) and keyring (its backends) cost about
# 9 MB of memory in every worker; they are imported where a secret is
# sealed, opened or looked up, which most rvssh processes never do (#14).

log = logging.getLogger(__name__)

KEY_FILE = "saved_secrets.key"
KEYRING_USER = "saved-secrets-key"
LEGACY_FILE = "saved_secrets.json"
KEYRING_ADVICE = (
    "run rvssh with --no-save-secrets, or set PYTHON_KEYRING_BACKEND=keyring.backends.null.Keyring "
    "to keep the key of saved secrets in a private file instead"
)


def _fernet(key: bytes) -> Fernet:
    from cryptography.fernet import Fernet

    return Fernet(key)


def _new_key() -> bytes:
    from cryptography.fernet import Fernet

    return Fernet.generate_key()


def _keyring_errors() -> tuple[type[Exception], type[Exception]]:
    """Return keyring's (KeyringError, PasswordDeleteError)."""
    from keyring.errors import KeyringError, PasswordDeleteError

    return KeyringError, PasswordDeleteError


def _default_keyring() -> KeyringBackend:
    from keyring import get_keyring

    return get_keyring()


def keyring_is_usable(backend: KeyringBackend) -> bool:
    """Return whether ``backend`` really stores secrets (not fail, null or an empty chainer)."""
    from keyring.backends import chainer, fail, null

    if isinstance(backend, (fail.Keyring, null.Keyring)):
        return False
    if isinstance(backend, chainer.ChainerBackend):
        return bool(backend.backends)
    return True


def keyring_service(state_dir: Path) -> str:
    """Return the keyring service name of a state directory."""
    return f"rvssh:{state_dir}"


class KeySource(Protocol):
    """Where the Fernet key of one state directory is kept."""

    def get(self) -> bytes | None:
        """Return the key, or None when there is none yet."""

    def get_or_create(self) -> bytes:
        """Return the key, making and keeping a new one when there is none yet."""


def _checked(key: bytes, where: str) -> bytes:
    try:
        _fernet(key)
    except ValueError as ex:
        raise StoreError(f"The key of saved secrets in {where} is damaged; remove it and save the secrets again") from ex
    return key


class FileKey:
    """The key in its own 0600 file in the 0700 state directory."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def get(self) -> bytes | None:
        """Return the key in the file, or None when there is no file."""
        try:
            return _checked(self._path.read_bytes().strip(), str(self._path))
        except FileNotFoundError:
            return None
        except OSError as ex:
            raise StoreError(f"Failed to read {self._path}: {ex.strerror}") from ex

    def get_or_create(self) -> bytes:
        """Return the key in the file, writing a new one atomically when there is none."""
        existing = self.get()
        if existing is not None:
            return existing
        key = _new_key()
        if not create_file_once(self._path, key + b"\n"):
            # Another process made it first: use that one.
            return _checked(self._path.read_bytes().strip(), str(self._path))
        log.info("created the key of saved secrets in %s", self._path)
        return key


class KeyringKey:
    """The key in the OS keyring, under the state directory's service name."""

    def __init__(self, backend: KeyringBackend, service: str) -> None:
        self._backend = backend
        self._service = service

    def get(self) -> bytes | None:
        """Return the key in the keyring, or None when there is none."""
        keyring_error, _ = _keyring_errors()
        try:
            stored = self._backend.get_password(self._service, KEYRING_USER)
        except keyring_error as ex:
            raise StoreError(f"Failed to use the OS keyring for saved secrets; {KEYRING_ADVICE}") from ex
        return None if stored is None else _checked(stored.encode("ascii", errors="replace"), "the OS keyring")

    def get_or_create(self) -> bytes:
        """Return the key in the keyring, storing a new one when there is none."""
        existing = self.get()
        if existing is not None:
            return existing
        key = _new_key()
        keyring_error, _ = _keyring_errors()
        try:
            self._backend.set_password(self._service, KEYRING_USER, key.decode("ascii"))
        except keyring_error as ex:
            raise StoreError(f"Failed to use the OS keyring for saved secrets; {KEYRING_ADVICE}") from ex
        log.info("created the key of saved secrets in the OS keyring (service %s)", self._service)
        return key


class SecretBox:
    """Seal and open secrets with the key of one state directory.

    The key is read for each operation, not kept in memory; callers hold the
    saved-connections lock, so a first key is made once.
    """

    def __init__(self, key_source: KeySource) -> None:
        self._key_source = key_source

    def seal(self, value: str) -> str:
        """Return the Fernet token of ``value`` (making the key on first use)."""
        return _fernet(self._key_source.get_or_create()).encrypt(value.encode("utf-8")).decode("ascii")

    def open(self, token: str) -> str | None:
        """Return the secret sealed in ``token``, or None when the key cannot open it."""
        key = self._key_source.get()
        if key is None:
            log.warning("a saved secret cannot be opened: the key of saved secrets is gone; save it again")
            return None
        from cryptography.fernet import InvalidToken

        try:
            return _fernet(key).decrypt(token.encode("ascii", errors="replace")).decode("utf-8")
        except InvalidToken:
            log.warning("a saved secret cannot be opened with the current key; save it again")
            return None


class ChosenKey:
    """The key of a state directory where it belongs: the OS keyring when usable, else a 0600 file.

    Where is decided on first use, so a process that never seals or opens a
    secret never loads a keyring backend.
    """

    def __init__(self, state_dir: Path, backend: Callable[[], KeyringBackend]) -> None:
        self._state_dir = state_dir
        self._backend = backend
        self._source: KeySource | None = None

    def _chosen(self) -> KeySource:
        if self._source is None:
            backend = self._backend()
            if keyring_is_usable(backend):
                self._source = KeyringKey(backend, keyring_service(self._state_dir))
            else:
                self._source = FileKey(self._state_dir / KEY_FILE)
        return self._source

    def get(self) -> bytes | None:
        """Return the key, or None when there is none yet."""
        return self._chosen().get()

    def get_or_create(self) -> bytes:
        """Return the key, making and keeping a new one when there is none yet."""
        return self._chosen().get_or_create()


def choose_box(state_dir: Path, backend: KeyringBackend | None = None) -> SecretBox:
    """Return the box of ``state_dir``: its key in the OS keyring when usable, else in a 0600 file."""
    return SecretBox(ChosenKey(state_dir, (lambda: backend) if backend is not None else _default_keyring))


class LegacySecrets:
    """Secrets as rvssh 0.1 kept them: a plaintext JSON file, or one keyring entry each.

    ``saved_secrets.json`` held ``{server id: {slot: secret}}``; the keyring
    held user ``<slot>/<server id>`` under the state directory's service.
    """

    def __init__(self, state_dir: Path, backend: KeyringBackend | None = None) -> None:
        self.path = state_dir / LEGACY_FILE
        self._given = backend
        self._service = keyring_service(state_dir)

    @property
    def _backend(self) -> KeyringBackend | None:
        """Return the usable keyring, looked up when an old secret is first asked for."""
        backend = self._given if self._given is not None else _default_keyring()
        return backend if keyring_is_usable(backend) else None

    def read(self, wanted: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """Return the secrets of the (server id, slot) pairs that can still be found."""
        document = read_json(self.path, {})
        found: dict[tuple[str, str], str] = {}
        keyring_error, _ = _keyring_errors()
        backend = self._backend if wanted else None
        for server_id, slot in wanted:
            entry = document.get(server_id) if isinstance(document, dict) else None
            value = entry.get(slot) if isinstance(entry, dict) else None
            if value is None and backend is not None:
                try:
                    value = backend.get_password(self._service, f"{slot}/{server_id}")
                except keyring_error as ex:
                    raise StoreError(f"Failed to read a saved secret from the OS keyring; {KEYRING_ADVICE}") from ex
            if isinstance(value, str) and value:
                found[(server_id, slot)] = value
        return found

    def forget(self, stored: Iterable[tuple[str, str]]) -> None:
        """Remove the plaintext file and the old keyring entries (once they are sealed anew)."""
        self.path.unlink(missing_ok=True)
        stored = list(stored)
        backend = self._backend if stored else None
        if backend is None:
            return
        keyring_error, delete_error = _keyring_errors()
        for server_id, slot in stored:
            try:
                backend.delete_password(self._service, f"{slot}/{server_id}")
            except delete_error:
                continue
            except keyring_error as ex:
                log.warning("could not remove an old keyring entry of rvssh 0.1 (%s/%s): %s", slot, server_id, ex)
