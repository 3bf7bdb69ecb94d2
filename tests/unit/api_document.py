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

# A valid request (body, query or path values) per operation that takes one.
VALID_REQUESTS: dict[tuple[str, str], Any] = {
    ("POST", "/api/remote/connect"): {"host": "base-host", "username": "baseuser", "use_agent": True},
    ("POST", "/api/remote/disconnect"): {"host": "base-host", "username": "baseuser"},
    ("POST", "/api/remote/known-hosts/accept"): {
        "host": "base-host", "port": 22, "key_type": "ssh-ed25519",
        "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ2ruYMz1JlfHb4d5F+zEvol2iIRzRT430C7fdUpwsU5",
        "fingerprint_sha256": "SHA256:dQrWXsMgwRV/Mo5S0UF3ngDoiwRY9YhbA6U792F2zBk",
    },
    ("POST", "/api/remote/known-hosts/remove"): {"host": "base-host", "port": 22, "key_type": "ssh-ed25519"},
    ("POST", "/api/remote/viewer/start"): {
        "host": "base-host", "username": "baseuser", "remote_root": "/data/runs", "conda_env": "base",
    },
    ("POST", "/api/remote/viewer/stop"): {"session_id": "0a1b2c3d"},
    ("GET", "/api/remote/conda-envs"): {"connection_id": "baseuser@base-host:22"},
    ("GET", "/api/remote/env-configs"): {"connection_id": "baseuser@base-host:22"},
    ("GET", "/api/remote/config"): {"connection_id": "baseuser@base-host:22", "conda_env": "base"},
    ("GET", "/api/remote/storage-candidates"): {"connection_id": "baseuser@base-host:22", "scan_root": "/data"},
    ("GET", "/api/remote/fs/list"): {"connection_id": "baseuser@base-host:22", "path": "/data"},
    ("GET", "/api/remote/fs/exists"): {"connection_id": "baseuser@base-host:22", "path": "/data"},
    ("GET", "/api/remote/viewer/status/{session_id}"): {"session_id": "0a1b2c3d"},
    ("POST", "/api/remote/connections/saved"): [],
}


def send(client: falcon.testing.TestClient, method: str, path: str, values: Any) -> Any:
    """Send ``values`` to ``method path`` where the operation takes them: path, query or JSON body."""
    if "{session_id}" in path:
        return client.simulate_request(method, path.replace("{session_id}", values["session_id"]))
    if method == "GET":
        return client.simulate_get(path, params=values)
    return client.simulate_post(path, json=values)


def openapi_document() -> dict[str, Any]:
    """Return /api/openapi.json of an app on a temporary state directory."""
    with tempfile.TemporaryDirectory() as state:
        app = create_app(Settings(state_dir=Path(state) / "state"))
        return falcon.testing.TestClient(app).simulate_get("/api/openapi.json", headers=HEADERS).json
