"""Resources that look at the server: conda-envs, env-configs, config, storage-candidates, fs."""

from __future__ import annotations

import falcon

from rvssh.models import (
    CachedQuery,
    CondaEnvsResponse,
    ConfigQuery,
    ConfigResponse,
    EnvConfigsQuery,
    EnvConfigsResponse,
    FsExistsQuery,
    FsExistsResponse,
    FsListQuery,
    FsListResponse,
    StorageCandidatesQuery,
    StorageCandidatesResponse,
)
from rvssh.services.container import Services


class CondaEnvsResource:
    query_models = {"GET": CachedQuery}
    response_models = {"GET": CondaEnvsResponse}

    def __init__(self, services: Services) -> None:
        self._environments = services.environments

    def on_get(self, req: falcon.Request, resp: falcon.Response, query: CachedQuery) -> None:
        answer = self._environments.conda_envs(query.connection_id, query.refresh)
        resp.media = CondaEnvsResponse.model_validate(answer).model_dump()


class EnvConfigsResource:
    query_models = {"GET": EnvConfigsQuery}
    response_models = {"GET": EnvConfigsResponse}

    def __init__(self, services: Services) -> None:
        self._environments = services.environments

    def on_get(self, req: falcon.Request, resp: falcon.Response, query: EnvConfigsQuery) -> None:
        answer = self._environments.env_configs(query.connection_id, query.conda_env, query.refresh)
        resp.media = EnvConfigsResponse.model_validate(answer).model_dump(by_alias=True)


class ConfigResource:
    query_models = {"GET": ConfigQuery}
    response_models = {"GET": ConfigResponse}

    def __init__(self, services: Services) -> None:
        self._environments = services.environments

    def on_get(self, req: falcon.Request, resp: falcon.Response, query: ConfigQuery) -> None:
        answer = self._environments.config(query.connection_id, query.conda_env, query.refresh)
        resp.media = ConfigResponse.model_validate(answer).model_dump(by_alias=True)


class StorageCandidatesResource:
    query_models = {"GET": StorageCandidatesQuery}
    response_models = {"GET": StorageCandidatesResponse}

    def __init__(self, services: Services) -> None:
        self._environments = services.environments

    def on_get(self, req: falcon.Request, resp: falcon.Response, query: StorageCandidatesQuery) -> None:
        answer = self._environments.storage_candidates(query.connection_id, query.scan_root, query.max_depth)
        resp.media = StorageCandidatesResponse.model_validate(answer).model_dump()


class FsListResource:
    query_models = {"GET": FsListQuery}
    response_models = {"GET": FsListResponse}

    def __init__(self, services: Services) -> None:
        self._environments = services.environments

    def on_get(self, req: falcon.Request, resp: falcon.Response, query: FsListQuery) -> None:
        # PERF: a listing can hold 10,000 items; the probe's output already has
        # the FsListResponse shape (tested), so it is passed through as printed.
        resp.data = self._environments.fs_list(query.connection_id, query.path)
        resp.content_type = falcon.MEDIA_JSON


class FsExistsResource:
    query_models = {"GET": FsExistsQuery}
    response_models = {"GET": FsExistsResponse}

    def __init__(self, services: Services) -> None:
        self._environments = services.environments

    def on_get(self, req: falcon.Request, resp: falcon.Response, query: FsExistsQuery) -> None:
        answer = self._environments.fs_exists(query.connection_id, query.path)
        resp.media = FsExistsResponse.model_validate(answer).model_dump()
