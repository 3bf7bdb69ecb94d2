"""The Runicorn 0.7 web UI's recorded remote-API calls, replayed by tests and the bench.

`shared/spec/runicorn-ui-0.7.2-calls.json` was recorded against another server; its
connection ids, ports, users and paths are swapped for the replaying bed's by `substitute`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

GOLDEN_UI_CALLS = Path(__file__).resolve().parents[2] / "shared" / "spec" / "runicorn-ui-0.7.2-calls.json"


def substitute(value: Any, mapping: dict[Any, Any]) -> Any:
    """Swap the recorded server's values for the replaying bed's, recursively."""
    if isinstance(value, dict):
        return {key: substitute(item, mapping) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute(item, mapping) for item in value]
    if isinstance(value, str):
        if value in mapping:
            return mapping[value]
        for old, new in mapping.items():
            if isinstance(old, str):
                value = value.replace(old, str(new))
        return value
    return mapping.get(value, value) if isinstance(value, int) and not isinstance(value, bool) else value
