"""Fixtures of every tier: no test ever touches the machine's OS keyring."""

from __future__ import annotations

from typing import Iterator

import keyring
import pytest
from keyring.backends import null


@pytest.fixture(autouse=True)
def isolated_keyring() -> Iterator[None]:
    """Give rvssh in process the null keyring (a test may set its own); restore the real one after."""
    # APPSEC: saved secrets of a test must never land in a real keyring.
    previous = keyring.get_keyring()
    keyring.set_keyring(null.Keyring())
    try:
        yield
    finally:
        keyring.set_keyring(previous)
