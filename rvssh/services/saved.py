"""Turn a connect request into a Target and Credentials, filling gaps from a saved server.

The rule for ``saved_server_id``: the saved server names a destination
(host, port, username) and may hold credentials. Destination fields the
request leaves out are taken from the saved server; one the request gives
differently is refused (400 ``Saved server mismatch for field: <field>``),
so saved secrets only ever go to the destination they were saved for.
Port 22 counts as "left out": pydantic fills it in by default and the
Runicorn UI always sends it, so it never contradicts a saved 2222.
Credentials are not a destination: a password, passphrase or key the
request brings wins over the saved one; a missing one comes from the
saved server. Key material travels as a pair: a request with its own key
(content or path) uses none of the saved key fields.
"""

from __future__ import annotations

from typing import Protocol

from rvssh.errors import BadRequestError
from rvssh.models import ConnectRequest
from rvssh.services.connections import Credentials
from rvssh.ssh.target import Target, make_target
from rvssh.store.saved_connections import SavedServer

DEFAULT_PORT = 22


class SavedServers(Protocol):
    """Where saved servers are looked up (the saved-connections store)."""

    def get_server(self, server_id: str) -> SavedServer:
        """Return the saved server ``server_id`` or raise NotFoundError."""


def _pick(field: str, requested: str | int | None, saved: str | int | None, server_id: str) -> str | int:
    if requested is not None and saved is not None and requested != saved:
        raise BadRequestError(f"Saved server mismatch for field: {field}")
    chosen = requested if requested is not None else saved
    if chosen is None:
        raise BadRequestError(f"Saved server has no {field}: {server_id}")
    return chosen


def merge_saved_server(request: ConnectRequest, saved: SavedServer) -> tuple[str, int, str, Credentials]:
    """Return host, port, username and credentials of ``request`` completed from ``saved``."""
    host = _pick("host", request.host or None, saved.host, saved.server_id)
    username = _pick("username", request.username or None, saved.username, saved.server_id)
    requested_port = request.port if "port" in request.model_fields_set else None
    if requested_port == DEFAULT_PORT:
        requested_port = None
    if requested_port is not None and saved.port is not None and requested_port != saved.port:
        raise BadRequestError("Saved server mismatch for field: port")
    port = requested_port or saved.port or DEFAULT_PORT
    given = Credentials.from_request(request)
    own_key = bool(given.private_key or given.private_key_path)
    # APPSEC: saved secrets are used only for the saved destination (checked above).
    credentials = Credentials(
        password=given.password or saved.password,
        passphrase=given.passphrase or saved.passphrase,
        private_key=given.private_key if own_key else saved.private_key,
        private_key_path=given.private_key_path if own_key else saved.private_key_path,
        use_agent=given.use_agent,
    )
    return str(host), int(port), str(username), credentials


def resolve_connect(request: ConnectRequest, saved_servers: SavedServers) -> tuple[Target, Credentials]:
    """Validate the destination of ``request`` (after saved-server defaults) and its credentials."""
    if request.saved_server_id is None:
        return make_target(request.host or "", request.port, request.username or ""), Credentials.from_request(request)
    host, port, username, credentials = merge_saved_server(request, saved_servers.get_server(request.saved_server_id))
    return make_target(host, port, username), credentials
