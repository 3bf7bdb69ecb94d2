"""The Falcon application: routes, middleware and error handlers."""

from __future__ import annotations

import falcon

from rvssh.http.callers import CallerResolver
from rvssh.http.connections import ConnectResource, DisconnectResource, SessionsResource, StatusResource
from rvssh.http.environments import (
    CondaEnvsResource,
    ConfigResource,
    EnvConfigsResource,
    FsExistsResource,
    FsListResource,
    StorageCandidatesResource,
)
from rvssh.http.errors import register_error_handlers
from rvssh.http.health import HealthResource
from rvssh.http.known_hosts import KnownHostsAcceptResource, KnownHostsListResource, KnownHostsRemoveResource
from rvssh.http.openapi import OpenApiResource
from rvssh.http.saved import SavedConnectionsResource
from rvssh.http.security import SecurityMiddleware
from rvssh.http.ssh_hosts import SshHostsResource
from rvssh.http.validation import ValidationMiddleware
from rvssh.http.viewer import ViewerSessionsResource, ViewerStartResource, ViewerStatusResource, ViewerStopResource
from rvssh.http.web import WebFilesResource
from rvssh.services.container import Services, build_services
from rvssh.settings import Settings, forget_secret_variables
from rvssh.store.token import serving_token

API = "/api"
REMOTE = "/api/remote"
# rvssh's own endpoints, outside the Remote Viewer API.
RVSSH = "/api/rvssh"


def create_app(
    settings: Settings,
    services: Services | None = None,
    caller_uid: CallerResolver | None = None,
    token: str | None = None,
) -> falcon.App:
    """Build the WSGI app for ``settings``.

    Tests may pass their own ``services``, and ``caller_uid`` to say which
    account is calling (an in-process client has no socket the kernel could
    tell about); by default callers are identified as in http/callers.py.
    ``token`` is the one ``rvssh serve`` printed; by default the settings'
    or the state dir's.
    """
    services = services or build_services(settings)
    token = token if token is not None else serving_token(settings.token, settings.state_dir)
    router = falcon.routing.CompiledRouter()
    # The security checks run first: nothing is parsed for a refused request.
    security = SecurityMiddleware(settings, token, caller_uid)
    app = falcon.App(router=router, middleware=[security, ValidationMiddleware()])
    app.req_options.strip_url_path_trailing_slash = True
    register_error_handlers(app)
    web = WebFilesResource()
    app.add_route("/", web)
    app.add_route("/{filename}", web)
    app.add_route(f"{API}/health", HealthResource())
    app.add_route(f"{API}/openapi.json", OpenApiResource(router))
    app.add_route(f"{REMOTE}/connect", ConnectResource(services))
    app.add_route(f"{REMOTE}/sessions", SessionsResource(services))
    app.add_route(f"{REMOTE}/disconnect", DisconnectResource(services))
    app.add_route(f"{REMOTE}/status", StatusResource(services))
    app.add_route(f"{REMOTE}/connections/saved", SavedConnectionsResource(services))
    app.add_route(f"{REMOTE}/known-hosts/accept", KnownHostsAcceptResource(services))
    app.add_route(f"{REMOTE}/known-hosts/list", KnownHostsListResource(services))
    app.add_route(f"{REMOTE}/known-hosts/remove", KnownHostsRemoveResource(services))
    app.add_route(f"{REMOTE}/conda-envs", CondaEnvsResource(services))
    app.add_route(f"{REMOTE}/env-configs", EnvConfigsResource(services))
    app.add_route(f"{REMOTE}/config", ConfigResource(services))
    app.add_route(f"{REMOTE}/storage-candidates", StorageCandidatesResource(services))
    app.add_route(f"{REMOTE}/fs/list", FsListResource(services))
    app.add_route(f"{REMOTE}/fs/exists", FsExistsResource(services))
    app.add_route(f"{REMOTE}/viewer/start", ViewerStartResource(services))
    app.add_route(f"{REMOTE}/viewer/stop", ViewerStopResource(services))
    app.add_route(f"{REMOTE}/viewer/sessions", ViewerSessionsResource(services))
    app.add_route(f"{REMOTE}/viewer/status/{{session_id}}", ViewerStatusResource(services))
    app.add_route(f"{RVSSH}/ssh-hosts", SshHostsResource(services))
    return app


def wsgi_app() -> falcon.App:
    """Return the app configured from the environment (the gunicorn entry point)."""
    settings = Settings.from_env()
    forget_secret_variables()
    return create_app(settings)
