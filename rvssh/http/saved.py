"""``/api/remote/connections/saved``: the Runicorn UI's saved servers and profiles."""

from __future__ import annotations

import falcon

from rvssh.models import MessageResponse, SavedConnectionsRequest, SavedConnectionsResponse
from rvssh.services.container import Services


class SavedConnectionsResource:
    body_models = {"POST": SavedConnectionsRequest}
    response_models = {"GET": SavedConnectionsResponse, "POST": MessageResponse}

    def __init__(self, services: Services) -> None:
        self._store = services.saved_connections

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        # APPSEC: masked entries only; secrets never travel back to a client.
        resp.media = SavedConnectionsResponse(connections=self._store.list_masked()).model_dump()

    def on_post(self, req: falcon.Request, resp: falcon.Response, body: SavedConnectionsRequest) -> None:
        self._store.replace(body.root)
        resp.media = MessageResponse(ok=True, message="Connections saved successfully").model_dump()
