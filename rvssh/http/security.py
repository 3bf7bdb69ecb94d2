"""Who may call the local API: Host and Origin checks, CORS, the bearer token, body rules.

The API can run commands on the user's servers, so a web page in the user's
browser must not be able to drive it (docs/security.md has the threat
model). The rules, in the order the middleware applies them:

1. ``Host`` must be a loopback name (``localhost``, ``127.x``, ``[::1]``, any
   port), the bind address, or a name given with ``--allow-host``: a DNS
   rebinding page reaches us under its own name and is refused (403).
2. A request with an ``Origin`` must come from the server's own origin
   (``http://<Host>``) or one given with ``--allow-origin`` (403). A browser
   request without ``Origin`` that says ``Sec-Fetch-Site: cross-site`` or
   ``same-site`` (an ``<img>`` or a link from another page) is refused too.
3. CORS preflights from allowed origins are answered here (204), echoing the
   origin; actual answers to allowed origins carry the same header.
4. With a token, every path but ``/api/health`` and ``/api/openapi.json``
   needs ``Authorization: Bearer <token>`` (401).
5. Bodies must be ``application/json`` (415), at most 1 MiB (413) and sent
   with a Content-Length (411).
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Iterable

import falcon

from rvssh.settings import Settings

MAX_BODY_BYTES = 1024 * 1024
OPEN_PATHS = frozenset({"/api/health", "/api/openapi.json"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
CROSS_SITE_FETCHES = frozenset({"cross-site", "same-site"})
WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::"})
PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
    "Access-Control-Max-Age": "600",
}


def host_name(host_header: str) -> str | None:
    """Return the lower-case name of a Host header without port or brackets; None if malformed."""
    value = host_header.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        rest = value[end + 1 :]
        if end < 0 or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
        return value[1:end]
    name, separator, port = value.partition(":")
    if separator and not port.isdigit():
        return None
    return name or None


def is_loopback_name(name: str) -> bool:
    """Return whether ``name`` is ``localhost`` or a loopback address (127.0.0.0/8, ::1)."""
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_allowed(host_header: str, allowed_names: Iterable[str]) -> bool:
    """Return whether the Host header names this server (loopback or configured)."""
    name = host_name(host_header)
    return name is not None and (is_loopback_name(name) or name in allowed_names)


def normalise_origin(origin: str) -> str:
    """Return ``origin`` lower-cased without a trailing slash, for comparison."""
    return origin.strip().lower().rstrip("/")


def origin_allowed(origin: str, host_header: str, allowed_origins: Iterable[str]) -> bool:
    """Return whether a browser page of ``origin`` may call us: our own origin or a configured one."""
    # APPSEC: "null" (sandboxed frames, file://) and every other origin are refused.
    candidate = normalise_origin(origin)
    return candidate == f"http://{host_header.strip().lower()}" or candidate in allowed_origins


def token_matches(authorization: str | None, token: str) -> bool:
    """Return whether ``authorization`` is ``Bearer <token>``, compared in constant time."""
    scheme, _, credentials = (authorization or "").strip().partition(" ")
    # APPSEC: compare_digest, so the time taken does not tell how much of the token matched.
    matches = hmac.compare_digest(credentials.strip().encode("utf-8"), token.encode("utf-8"))
    return scheme.lower() == "bearer" and matches


def is_json_content_type(content_type: str | None) -> bool:
    """Return whether a Content-Type header is ``application/json`` (parameters allowed)."""
    return (content_type or "").split(";", 1)[0].strip().lower() == "application/json"


def bind_problem(settings: Settings) -> str | None:
    """Return why ``settings`` must not be served (non-loopback bind without a token), or None."""
    if settings.token or is_loopback_name(settings.bind_host.lower()):
        return None
    return (
        f"rvssh: refusing to listen on {settings.bind}: it is not a loopback address and no token is set, "
        "so anyone who can reach it could run commands on your servers. "
        "Set --token (or RVSSH_TOKEN), or bind 127.0.0.1."
    )


class SecurityMiddleware:
    """Apply the rules of this module to every request, before validation."""

    def __init__(self, settings: Settings) -> None:
        # "--allow-host gw:23300" and "--allow-host GW" both mean the name "gw".
        names = {host_name(name) or name.lower() for name in settings.allowed_hosts}
        if settings.bind_host.lower() not in WILDCARD_BINDS:
            names.add(settings.bind_host.lower())
        self._allowed_names = frozenset(names)
        self._allowed_origins = frozenset(normalise_origin(origin) for origin in settings.allowed_origins)
        self._token = settings.token

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        host = req.get_header("Host") or ""
        if not host_allowed(host, self._allowed_names):
            raise falcon.HTTPForbidden(
                description="Host header not allowed: rvssh answers only loopback names (see --allow-host)"
            )
        self._check_origin(req, host)
        if req.method == "OPTIONS" and req.get_header("Access-Control-Request-Method") and req.context.cors_origin:
            self._answer_preflight(req, resp)
            return
        if self._token and req.path not in OPEN_PATHS:
            if not token_matches(req.get_header("Authorization"), self._token):
                raise falcon.HTTPUnauthorized(description="Missing or wrong bearer token", challenges=["Bearer"])
        if req.method in BODY_METHODS:
            self._check_body(req)

    def _check_origin(self, req: falcon.Request, host: str) -> None:
        origin = req.get_header("Origin")
        req.context.cors_origin = None
        if origin is None:
            if (req.get_header("Sec-Fetch-Site") or "").lower() in CROSS_SITE_FETCHES:
                raise falcon.HTTPForbidden(description="Cross-site request refused")
            return
        # APPSEC: the allow-list is the only way a page of another origin gets in.
        if not origin_allowed(origin, host, self._allowed_origins):
            raise falcon.HTTPForbidden(description=f"Origin not allowed: {origin} (see --allow-origin)")
        req.context.cors_origin = origin

    def _answer_preflight(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.status = falcon.HTTP_204
        resp.set_headers(PREFLIGHT_HEADERS)
        if (req.get_header("Access-Control-Request-Private-Network") or "").lower() == "true":
            resp.set_header("Access-Control-Allow-Private-Network", "true")
        resp.complete = True

    def _check_body(self, req: falcon.Request) -> None:
        length = req.content_length
        if length is None and req.get_header("Transfer-Encoding"):
            raise falcon.HTTPLengthRequired(description="Send the JSON body with a Content-Length")
        if length is not None and length > MAX_BODY_BYTES:
            raise falcon.HTTPContentTooLarge(description=f"Request body too large (limit {MAX_BODY_BYTES} bytes)")
        if not is_json_content_type(req.content_type):
            raise falcon.HTTPUnsupportedMediaType(description="Content-Type must be application/json")

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        resp.append_header("Vary", "Origin")
        origin = getattr(req.context, "cors_origin", None)
        if origin:
            # APPSEC: echo the checked origin, never "*".
            resp.set_header("Access-Control-Allow-Origin", origin)
