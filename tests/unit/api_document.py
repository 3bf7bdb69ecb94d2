"""The OpenAPI document of a throwaway app, for the tests generated from it."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import falcon.testing

from rvssh.app import create_app
from rvssh.settings import Settings

# Falcon's test client sends Host: falconframework.org, which rvssh refuses.
HEADERS = {"Host": "127.0.0.1:23300"}


def openapi_document() -> dict[str, Any]:
    """Return /api/openapi.json of an app on a temporary state directory."""
    with tempfile.TemporaryDirectory() as state:
        app = create_app(Settings(state_dir=Path(state) / "state"))
        return falcon.testing.TestClient(app).simulate_get("/api/openapi.json", headers=HEADERS).json
