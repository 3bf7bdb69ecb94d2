"""Load the scripts rvssh sends to servers, and read the JSON they print."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

from rvssh.ssh.errors import RemoteOutputError


@lru_cache(maxsize=None)
def load_script(name: str) -> bytes:
    """Return the bytes of ``rvssh/remote/scripts/<name>``."""
    return resources.files("rvssh.remote").joinpath("scripts", name).read_bytes()


def parse_json_object(stdout: bytes, stderr: bytes = b"") -> dict[str, Any]:
    """Return the one JSON object a remote script printed, or raise RemoteOutputError."""
    text = stdout.decode("utf-8", errors="replace").strip()
    try:
        value = json.loads(text.splitlines()[-1]) if text else None
    except ValueError:
        value = None
    if not isinstance(value, dict):
        detail = stderr.decode("utf-8", errors="replace").strip()[-500:] or text[-500:] or "no output"
        raise RemoteOutputError(f"Unexpected output from the server: {detail}")
    return value
