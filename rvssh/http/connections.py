"""Resources for connect, sessions, disconnect and status."""

from __future__ import annotations

import falcon

from rvssh.models import (
    ConnectRequest,
    ConnectResponse,
    DisconnectRequest,
    MessageResponse,
    SessionsResponse,
    StatusResponse,
)
from rvssh.http.responses import send_model
from rvssh.services.container import Services


class ConnectResource:
    body_models = {"POST": ConnectRequest}
    response_models = {"POST": ConnectResponse}

    def __init__(self, services: Services) -> None:
        self._services = services

    def on_post(self, req: falcon.Request, resp: falcon.Response, body: ConnectRequest) -> None:
        target, entry = self._services.open_connection(body)
        resp.media = ConnectResponse(
            connection_id=entry.key, host=target.host, port=target.port, username=target.username, connected=True
        ).model_dump()


class SessionsResource:
    response_models = {"GET": SessionsResponse}

    def __init__(self, services: Services) -> None:
        self._services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        send_model(resp, SessionsResponse(sessions=self._services.connections.list()))


class DisconnectResource:
    body_models = {"POST": DisconnectRequest}
    response_models = {"POST": MessageResponse}

    def __init__(self, services: Services) -> None:
        self._services = services

    def on_post(self, req: falcon.Request, resp: falcon.Response, body: DisconnectRequest) -> None:
        removed = self._services.connections.disconnect(body.host, body.port, body.username)
        message = "Connection removed" if removed else "Connection not found"
        resp.media = MessageResponse(ok=removed, message=message).model_dump()


class StatusResource:
    response_models = {"GET": StatusResponse}

    def __init__(self, services: Services) -> None:
        self._services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        connections = self._services.connections.list()
        viewer_sessions = self._services.list_viewer_sessions()
        status = StatusResponse(
            connections=connections,
            viewer_sessions=viewer_sessions,
            connection_count=len(connections),
            viewer_session_count=len(viewer_sessions),
        )
        send_model(resp, status, by_alias=True)
