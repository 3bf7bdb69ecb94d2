"""The API calls the commands make, one method each, over a transport.

An answer other than 200 raises :class:`~rvssh.client.errors.ApiError`
with its status and ``detail``, exactly as rvssh gave them.
"""

from __future__ import annotations

from typing import Any, Mapping

from rvssh.client.errors import ApiError
from rvssh.client.transport import Transport

REMOTE = "/api/remote"
# The fields of a 409's host_key that known-hosts/accept takes back.
ACCEPT_FIELDS = ("host", "port", "key_type", "public_key", "fingerprint_sha256")


class Client:
    """rvssh's API as Python calls."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def _call(self, method: str, path: str, body: Any = None, query: Mapping[str, str] | None = None) -> Any:
        reply = self.transport.request(method, path, body=body, query=query)
        if reply.status != 200:
            detail = reply.body.get("detail") if isinstance(reply.body, dict) else None
            raise ApiError(reply.status, detail)
        return reply.body

    # --- connections -----------------------------------------------------

    def connect(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Open (or reuse) a connection; 409 and 401 AUTH_PROMPT come back as ApiError."""
        return self._call("POST", f"{REMOTE}/connect", dict(body))

    def disconnect(self, host: str, port: int, username: str) -> dict[str, Any]:
        """Stop the connection's viewers and close it."""
        return self._call("POST", f"{REMOTE}/disconnect", {"host": host, "port": port, "username": username})

    def status(self) -> dict[str, Any]:
        """Return the connections and viewer sessions as recorded."""
        return self._call("GET", f"{REMOTE}/status")

    # --- host keys -------------------------------------------------------

    def accept_host_key(self, host_key: Mapping[str, Any]) -> None:
        """Trust the key a 409 presented."""
        self._call("POST", f"{REMOTE}/known-hosts/accept", {name: host_key[name] for name in ACCEPT_FIELDS})

    def known_hosts(self) -> list[dict[str, Any]]:
        """Return the keys rvssh's own known_hosts trusts."""
        return list(self._call("GET", f"{REMOTE}/known-hosts/list")["entries"])

    # --- the server ------------------------------------------------------

    def conda_envs(self, connection_id: str) -> list[dict[str, Any]]:
        """Return the Python environments of the server."""
        return list(self._call("GET", f"{REMOTE}/conda-envs", query={"connection_id": connection_id})["envs"])

    def config(self, connection_id: str, env: str) -> dict[str, Any]:
        """Return one environment's versions and default storage root."""
        return dict(self._call("GET", f"{REMOTE}/config", query={"connection_id": connection_id, "conda_env": env}))

    def storage_candidates(self, connection_id: str) -> list[dict[str, Any]]:
        """Return the folders of the server that look like storage roots, best first."""
        answer = self._call("GET", f"{REMOTE}/storage-candidates", query={"connection_id": connection_id})
        return list(answer["candidates"])

    # --- viewers ---------------------------------------------------------

    def start_viewer(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Start a viewer and return its session (running)."""
        return dict(self._call("POST", f"{REMOTE}/viewer/start", dict(body))["session"])

    def stop_viewer(self, session_id: str) -> None:
        """Stop a viewer session."""
        self._call("POST", f"{REMOTE}/viewer/stop", {"session_id": session_id})

    def session(self, session_id: str) -> dict[str, Any] | None:
        """Return one viewer session, or None when there is no such session (any more)."""
        try:
            return dict(self._call("GET", f"{REMOTE}/viewer/status/{session_id}"))
        except ApiError as ex:
            if ex.status == 404:
                return None
            raise

    # --- rvssh's own -----------------------------------------------------

    def ssh_hosts(self) -> dict[str, Any]:
        """Return the Host aliases of the ssh config and where each leads."""
        return dict(self._call("GET", "/api/rvssh/ssh-hosts"))
