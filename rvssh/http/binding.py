"""Which addresses rvssh may listen on: loopback names, and a non-loopback bind only with a token.

Apart from ``security.py`` so that ``rvssh serve``'s gunicorn arbiter can
check its bind address without importing falcon: the arbiter only watches
its worker, and every module it imports costs memory for as long as rvssh
runs (issue #14).
"""

from __future__ import annotations

import functools
import ipaddress

from rvssh.settings import Settings

__all__ = ["WILDCARD_BINDS", "bind_problem", "is_loopback_name"]

# Binds that listen on every address (of which loopback is one).
WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::"})


@functools.lru_cache(maxsize=1024)
def is_loopback_name(name: str) -> bool:
    """Return whether ``name`` is ``localhost`` or a loopback address (127.0.0.0/8, ::1)."""
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def bind_problem(settings: Settings) -> str | None:
    """Return why ``settings`` must not be served (non-loopback bind without a token), or None."""
    if settings.token or is_loopback_name(settings.bind_host.lower()):
        return None
    return (
        f"rvssh: refusing to listen on {settings.bind}: it is not a loopback address and no token is set, "
        "so anyone who can reach it could run commands on your servers. "
        "Set --token (or RVSSH_TOKEN), or bind 127.0.0.1."
    )
