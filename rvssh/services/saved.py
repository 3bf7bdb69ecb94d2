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
from rvssh.services.credentials import Credentials, as_secret
from rvssh.store.records import AuthRecipe
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


def merge_saved_server(request: ConnectRequest, saved: SavedServer) -> tuple[str, int, str | None, Credentials]:
    """Return host, port, username (None: ask ssh) and credentials of ``request`` completed from ``saved``."""
    host = str(_pick("host", request.host or None, saved.host, saved.server_id))
    username = _pick_optional("username", request.username or None, saved.username)
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
        password=given.password or as_secret(saved.password),
        passphrase=given.passphrase or as_secret(saved.passphrase),
        private_key=given.private_key if own_key else as_secret(saved.private_key),
        private_key_path=given.private_key_path if own_key else saved.private_key_path,
        use_agent=given.use_agent,
        responses=given.responses,
        saved_server_id=saved.server_id,
    )
    return host, int(port), username, credentials


def _pick_optional(field: str, requested: str | None, saved: str | None) -> str | None:
    if requested is not None and saved is not None and requested != saved:
        raise BadRequestError(f"Saved server mismatch for field: {field}")
    return requested if requested is not None else saved


def resolve_connect(request: ConnectRequest, saved_servers: SavedServers) -> tuple[str, int, str | None, Credentials]:
    """Return the destination of ``request`` (after saved-server defaults) and its credentials.

    The username is None when neither the request nor the saved server names
    one: ssh's config decides (``ssh -G``).
    """
    if request.saved_server_id is None:
        return request.host or "", request.port, request.username or None, Credentials.from_request(request)
    return merge_saved_server(request, saved_servers.get_server(request.saved_server_id))


def recall_credentials(recipe: AuthRecipe, *, saved_servers: SavedServers) -> Credentials:
    """Return the credentials a heal may use: the agent, the user's key file, the saved server's secrets."""
    saved = saved_servers.get_server(recipe.saved_server_id) if recipe.saved_server_id else None
    return Credentials(
        password=as_secret(saved.password) if saved else None,
        passphrase=as_secret(saved.passphrase) if saved else None,
        private_key=as_secret(saved.private_key) if saved and not recipe.key_path else None,
        private_key_path=recipe.key_path or (saved.private_key_path if saved else None),
        use_agent=recipe.use_agent,
        saved_server_id=recipe.saved_server_id,
    )
