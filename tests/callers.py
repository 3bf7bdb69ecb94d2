"""Who is calling, for apps driven in process (falcon's test client has no socket to look up).

Pass one of these as ``create_app(..., caller_uid=...)``; the real
``rvssh serve`` reads the caller's account from the kernel instead
(rvssh/http/callers.py), and tests/integration/test_callers.py checks that.
"""

from __future__ import annotations

import os
from typing import Any, Mapping


def owner(environ: Mapping[str, Any]) -> int:
    """Say the caller is the account the app runs as (the Runicorn UI, a script of the user)."""
    return os.geteuid()


def other_account(environ: Mapping[str, Any]) -> int:
    """Say the caller is another account of the machine."""
    return os.geteuid() + 1


def unknown(environ: Mapping[str, Any]) -> None:
    """Say the caller's account cannot be known (another OS, a non-loopback bind)."""
    return None
