"""Resources for the managed known_hosts: accept, list, remove."""

from __future__ import annotations

import falcon

from rvssh.models import (
    KnownHostsAcceptRequest,
    KnownHostsListResponse,
    KnownHostsRemoveRequest,
    KnownHostsRemoveResponse,
    OkResponse,
)
from rvssh.services.container import Services


class KnownHostsAcceptResource:
    body_models = {"POST": KnownHostsAcceptRequest}
    response_models = {"POST": OkResponse}

    def __init__(self, services: Services) -> None:
        self._store = services.known_hosts

    def on_post(self, req: falcon.Request, resp: falcon.Response, body: KnownHostsAcceptRequest) -> None:
        self._store.accept(body.host, body.port, body.key_type, body.public_key, body.fingerprint_sha256)
        resp.media = OkResponse().model_dump()


class KnownHostsListResource:
    response_models = {"GET": KnownHostsListResponse}

    def __init__(self, services: Services) -> None:
        self._store = services.known_hosts

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        entries = [entry.to_dict() for entry in self._store.list_entries()]
        resp.media = KnownHostsListResponse.model_validate({"entries": entries}).model_dump()


class KnownHostsRemoveResource:
    body_models = {"POST": KnownHostsRemoveRequest}
    response_models = {"POST": KnownHostsRemoveResponse}

    def __init__(self, services: Services) -> None:
        self._store = services.known_hosts

    def on_post(self, req: falcon.Request, resp: falcon.Response, body: KnownHostsRemoveRequest) -> None:
        changed = self._store.remove(body.host, body.port, body.key_type)
        resp.media = KnownHostsRemoveResponse(changed=changed).model_dump()
