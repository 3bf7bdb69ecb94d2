"""The token that lets a caller other than rvssh's own account in: ``<state dir>/token``.

rvssh makes one on first start (issue #15) so that a token always exists at
no cost to the user: ``rvssh serve`` prints the page's URL with it, and a
command of the same account reads it from the state directory (0700, the
file 0600). ``--token``/``RVSSH_TOKEN`` replace it.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from rvssh.errors import StoreError
from rvssh.files import create_file_once

# What rvssh answers (401) to a request whose token is missing or wrong; clients match it.
WRONG_TOKEN = "Missing or wrong bearer token"

TOKEN_FILE = "token"
TOKEN_BYTES = 32


def token_path(state_dir: Path) -> Path:
    """Return where the token of ``state_dir`` is kept."""
    return state_dir / TOKEN_FILE


def read_token(state_dir: Path) -> str | None:
    """Return the token kept in ``state_dir``, or None when rvssh has not made one yet.

    This is how a command of the same account finds the token; nobody else
    can read the file.

    Raises:
        StoreError: the file is not a regular file of this account, is
            empty, or cannot be read.
    """
    path = token_path(state_dir)
    try:
        # APPSEC: O_NOFOLLOW, so a symbolic link planted in its place is not read.
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as ex:
        raise StoreError(f"Cannot read the token file {path}: {ex.strerror}") from ex
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
            raise StoreError(f"The token file {path} must be a regular file of this account")
        if stat.S_IMODE(info.st_mode) & 0o077:
            os.fchmod(handle.fileno(), 0o600)  # like the state dir, an existing file is tightened
        token = handle.read().decode("utf-8", errors="replace").strip()
    if not token:
        raise StoreError(f"The token file {path} is empty; delete it and rvssh makes a new one")
    return token


def load_or_create_token(state_dir: Path) -> str:
    """Return the token kept in ``state_dir``, making a random one (0600) the first time."""
    token = read_token(state_dir)
    if token is not None:
        return token
    # APPSEC: 32 random bytes, URL-safe, so it fits the page's ?token= unquoted.
    create_file_once(token_path(state_dir), (secrets.token_urlsafe(TOKEN_BYTES) + "\n").encode("ascii"))
    token = read_token(state_dir)
    if token is None:
        raise StoreError(f"The token file {token_path(state_dir)} was removed while rvssh read it")
    return token


def serving_token(explicit: str | None, state_dir: Path) -> str:
    """Return the token rvssh accepts: the explicit one (``--token``/``RVSSH_TOKEN``) if set, else the state dir's."""
    return explicit or load_or_create_token(state_dir)
