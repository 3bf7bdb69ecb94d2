"""``GET /api/health``: the Runicorn UI reads ``version`` from it."""

from __future__ import annotations

import falcon

from rvssh import __version__
from rvssh.models import HealthResponse


class HealthResource:
    response_models = {"GET": HealthResponse}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = HealthResponse(version=__version__).model_dump()
