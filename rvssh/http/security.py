"""Who may call the local API: Host and Origin checks, CORS, the caller's account, the token, body rules.

The API can run commands on the user's servers, so neither a web page in the
user's browser nor another account of the machine may drive it
(docs/security.md has the threat model). The rules, in the order the
middleware applies them:

1. ``Host`` must be a loopback name (``localhost``, ``127.x``, ``[::1]``, any
   port), the bind address, or a name given with ``--allow-host``: a DNS
   rebinding page reaches us under its own name and is refused (403).
2. A request with an ``Origin`` must come from the server's own origin
   (``http://<Host>``) or one given with ``--allow-origin`` (403). A browser
   request without ``Origin`` that says ``Sec-Fetch-Site: cross-site`` or
   ``same-site`` (an ``<img>`` or a link from another page) is refused too.
3. CORS preflights from allowed origins are answered here (204), echoing the
   origin; actual answers to allowed origins carry the same header.
4. ``GET /?token=<token>`` (the URL ``rvssh serve`` prints) trades the token
   for an HttpOnly, SameSite=Strict cookie and redirects to ``/``, so the
   token leaves the address bar; a wrong one is 401 and sets nothing.
5. Every path but ``/api/health`` and ``/api/openapi.json`` is served to a
   caller that sends ``Authorization: Bearer <token>`` or the cookie, or
   whose account is the one rvssh runs as (read from the kernel's socket
   table, see callers.py). A wrong bearer token and an unknown account are
   401, another account is 403.
6. Bodies must be ``application/json`` (415), at most 1 MiB (413) and sent
   with a Content-Length (411).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from typing import Iterable

import falcon

from rvssh.http.binding import WILDCARD_BINDS, is_loopback_name
from rvssh.http.callers import CallerResolver, resolver_for
from rvssh.store.token import WRONG_TOKEN
from rvssh.settings import Settings

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
OPEN_PATHS = frozenset({"/api/health", "/api/openapi.json"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
CROSS_SITE_FETCHES = frozenset({"cross-site", "same-site"})
TOKEN_COOKIE = "rvssh_token"
PAGE_PATH = "/"
WRONG_URL_TOKEN = "Wrong token in the address: open the URL that rvssh serve printed"
OTHER_ACCOUNT = (
    "This rvssh serves only the account that started it; "
    "another account must send its token (Authorization: Bearer)"
)
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


def secret_equals(offered: str, expected: str) -> bool:
    """Return whether ``offered`` is ``expected`` (not empty), compared in constant time."""
    # APPSEC: compare_digest, so the time taken does not tell how much of the secret matched.
    matches = hmac.compare_digest(offered.encode("utf-8", "surrogateescape"), expected.encode("utf-8"))
    return matches and bool(expected)


def token_matches(authorization: str | None, token: str) -> bool:
    """Return whether ``authorization`` is ``Bearer <token>``, compared in constant time."""
    scheme, _, credentials = (authorization or "").strip().partition(" ")
    return secret_equals(credentials.strip(), token) and scheme.lower() == "bearer"


def cookie_value(token: str) -> str:
    """Return what the page's cookie holds for ``token``: an HMAC of it, not the token itself.

    Browsers send a cookie of 127.0.0.1 to every port of 127.0.0.1, and an
    explicit ``--token`` may hold characters a cookie cannot; the HMAC is
    cookie-safe and does not give the token away.
    """
    return hmac.new(token.encode("utf-8"), b"rvssh page cookie", hashlib.sha256).hexdigest()


def is_json_content_type(content_type: str | None) -> bool:
    """Return whether a Content-Type header is ``application/json`` (parameters allowed)."""
    return (content_type or "").split(";", 1)[0].strip().lower() == "application/json"


class SecurityMiddleware:
    """Apply the rules of this module to every request, before validation.

    Args:
        settings: bind address, allowed hosts and origins.
        token: the token callers of other accounts must present.
        caller_uid: tells the account of a request's caller, or None when it
            cannot be known; by default the kernel's socket table on a Linux
            loopback bind (tests pass their own). The account rvssh runs as
            is served without a token.
    """

    def __init__(self, settings: Settings, token: str, caller_uid: CallerResolver | None = None) -> None:
        # "--allow-host gw:23300" and "--allow-host GW" both mean the name "gw".
        names = {host_name(name) or name.lower() for name in settings.allowed_hosts}
        if settings.bind_host.lower() not in WILDCARD_BINDS:
            names.add(settings.bind_host.lower())
        self._allowed_names = frozenset(names)
        self._allowed_origins = frozenset(normalise_origin(origin) for origin in settings.allowed_origins)
        self._token = token
        self._cookie = cookie_value(token)
        self._caller_uid = caller_uid or resolver_for(is_loopback_name(settings.bind_host.lower()))
        self._owner_uid = os.geteuid()

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
        if req.method == "GET" and req.path == PAGE_PATH and "token" in req.params:
            self._trade_url_token(req, resp)
            return
        if req.path not in OPEN_PATHS:
            self._check_caller(req)
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

    def _trade_url_token(self, req: falcon.Request, resp: falcon.Response) -> None:
        offered = req.params["token"]
        if not isinstance(offered, str) or not secret_equals(offered, self._token):
            log.warning("refused a wrong token in the page's address from %s", req.remote_addr)
            raise falcon.HTTPUnauthorized(description=WRONG_URL_TOKEN, challenges=["Bearer"])
        # APPSEC: the token leaves the address bar at once:
        # a redirect to the bare page, with the cookie that stands for it.
        resp.status = falcon.HTTP_303
        resp.location = PAGE_PATH
        resp.set_cookie(TOKEN_COOKIE, self._cookie, path=PAGE_PATH, http_only=True, same_site="Strict", secure=False)
        resp.set_header("Referrer-Policy", "no-referrer")
        resp.set_header("Cache-Control", "no-store")
        resp.complete = True

    def _check_caller(self, req: falcon.Request) -> None:
        authorization = req.get_header("Authorization")
        if authorization is not None:
            if not token_matches(authorization, self._token):
                log.warning("refused a wrong bearer token on %s %s", req.method, req.path)
                raise falcon.HTTPUnauthorized(description=WRONG_TOKEN, challenges=["Bearer"])
            return
        # A cookie that does not match (left from an earlier token) is ignored:
        # the browser sends it by itself, and the owner is still the owner.
        if any(secret_equals(value, self._cookie) for value in req.get_cookie_values(TOKEN_COOKIE) or ()):
            return
        uid = self._caller_uid(req.env)
        if uid is None:
            raise falcon.HTTPUnauthorized(description=WRONG_TOKEN, challenges=["Bearer"])
        if uid != self._owner_uid:
            log.warning("refused %s %s from uid %d: not the account rvssh runs as, and no token",
                        req.method, req.path, uid)
            raise falcon.HTTPForbidden(description=OTHER_ACCOUNT)

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
