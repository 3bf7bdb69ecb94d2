"""``GET /api/rvssh/ssh-hosts`` (rvssh only): the Host aliases of your ssh config, resolved by ssh."""

from __future__ import annotations

import falcon

from rvssh.models import SshHostsResponse
from rvssh.services.container import Services


class SshHostsResource:
    response_models = {"GET": SshHostsResponse}

    def __init__(self, services: Services) -> None:
        self._hosts = services.ssh_hosts

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self._hosts.list().model_dump()
