"""Resources for the remote viewer: start, stop, sessions, status/{id}."""

from __future__ import annotations

import falcon

from rvssh.models import (
    MessageResponse,
    ViewerSession,
    ViewerSessionsResponse,
    ViewerStartRequest,
    ViewerStartResponse,
    ViewerStopRequest,
)
from rvssh.http.responses import send_model
from rvssh.services.container import Services


class ViewerStartResource:
    body_models = {"POST": ViewerStartRequest}
    response_models = {"POST": ViewerStartResponse}

    def __init__(self, services: Services) -> None:
        self._services = services

    def on_post(self, req: falcon.Request, resp: falcon.Response, body: ViewerStartRequest) -> None:
        target, _ = self._services.open_connection(body)
        session = self._services.viewer.start(body, target)
        message = f"Remote Viewer ready at {session.url}"
        resp.media = ViewerStartResponse(session=session, message=message).model_dump(by_alias=True)


class ViewerStopResource:
    body_models = {"POST": ViewerStopRequest}
    response_models = {"POST": MessageResponse}

    def __init__(self, services: Services) -> None:
        self._viewer = services.viewer

    def on_post(self, req: falcon.Request, resp: falcon.Response, body: ViewerStopRequest) -> None:
        self._viewer.stop(body.session_id)
        resp.media = MessageResponse(ok=True, message=f"Session {body.session_id} stopped").model_dump()


class ViewerSessionsResource:
    response_models = {"GET": ViewerSessionsResponse}

    def __init__(self, services: Services) -> None:
        self._viewer = services.viewer_reads

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        send_model(resp, ViewerSessionsResponse(sessions=self._viewer.list_sessions()), by_alias=True)  # the UI polls it


class ViewerStatusResource:
    response_models = {"GET": ViewerSession}

    def __init__(self, services: Services) -> None:
        self._viewer = services.viewer_reads

    def on_get(self, req: falcon.Request, resp: falcon.Response, session_id: str) -> None:
        resp.media = self._viewer.get(session_id).model_dump(by_alias=True)
