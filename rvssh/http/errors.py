"""The one place that knows HTTP status codes.

Every rvssh error class maps to a status here, and each route says how it
words its failures; bodies are FastAPI-shaped (``{"detail": ...}``) so the
Runicorn web UI reads them unchanged. docs/api.md ("Status by endpoint")
lists the result for every endpoint, and a unit test checks the app against
that table.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import falcon
import pydantic

from rvssh import errors
from rvssh.models import REQUEST_SECRET_FIELDS, AuthPromptEntry, AuthPromptProblem, HostKeyPayload, HostKeyProblem
from rvssh.ssh import errors as ssh_errors

log = logging.getLogger("rvssh.http")

# Most specific first: the first class the error is an instance of wins.
# NOTE: a new error class gets its row here. One about the request (a 4xx,
# e.g. a 401 AUTH_PROMPT asking for a second factor) keeps its status on
# every route unless a route lists it in ``also_500``; a failure of the link
# or the server is a 500, worded by each route (ROUTE_FAILURES below).
STATUS_BY_ERROR: tuple[tuple[type[Exception], str], ...] = (
    (ssh_errors.HostKeyError, falcon.HTTP_409),
    (ssh_errors.InvalidTargetError, falcon.HTTP_400),
    (ssh_errors.AuthenticationError, falcon.HTTP_401),
    (ssh_errors.PortInUseError, falcon.HTTP_409),
    (ssh_errors.ForwardError, falcon.HTTP_500),
    (ssh_errors.ConnectError, falcon.HTTP_500),
    (ssh_errors.SshCommandError, falcon.HTTP_500),
    # "Connection lost": the master died before or during a command.
    (ssh_errors.MasterGoneError, falcon.HTTP_500),
    (ssh_errors.RemoteCommandError, falcon.HTTP_500),
    (ssh_errors.RemoteOutputError, falcon.HTTP_500),
    (errors.BadRequestError, falcon.HTTP_400),
    (errors.NotFoundError, falcon.HTTP_404),
    (errors.ForbiddenError, falcon.HTTP_403),
    (errors.ConflictError, falcon.HTTP_409),
    (errors.StoreError, falcon.HTTP_500),
    (errors.RvsshError, falcon.HTTP_500),
)


@dataclass(frozen=True)
class RouteFailure:
    """How one route answers a failure: ``500 <prefix><message>``, as the reference words it.

    Attributes:
        prefix: put before the message of every 500 of the route, unless the
            message already starts with it.
        also_500: error classes whose own status is a 4xx but that this route
            answers as its 500 (the reference does; e.g. a missing path on
            fs/list).
        verbatim: message beginnings the reference shows without the prefix.
    """

    prefix: str
    also_500: tuple[type[Exception], ...] = ()
    verbatim: tuple[str, ...] = ()

    def covers(self, error: Exception, status: str) -> bool:
        """Return whether this route answers ``error`` as its 500."""
        return status == falcon.HTTP_500 or isinstance(error, self.also_500)

    def word(self, message: str) -> str:
        """Return the 500 ``detail`` for ``message``."""
        return message if message.startswith((self.prefix, *self.verbatim)) else self.prefix + message


REMOTE = "/api/remote"
# (method, route template) -> how that route words its failures (Runicorn's
# reference server; env-configs and storage-candidates as Runicorn 0.7.2).
# Routes not listed answer the status of the table above with the bare message.
ROUTE_FAILURES: dict[tuple[str, str], RouteFailure] = {
    ("POST", f"{REMOTE}/connect"): RouteFailure("Connection failed: "),
    ("GET", f"{REMOTE}/sessions"): RouteFailure("Failed to list sessions: "),
    ("POST", f"{REMOTE}/disconnect"): RouteFailure("Failed to disconnect: "),
    ("GET", f"{REMOTE}/connections/saved"): RouteFailure("Failed to load connections: "),
    ("POST", f"{REMOTE}/connections/saved"): RouteFailure("Failed to save connections: "),
    ("POST", f"{REMOTE}/known-hosts/accept"): RouteFailure("Failed to write known_hosts: "),
    ("GET", f"{REMOTE}/known-hosts/list"): RouteFailure("Failed to list known_hosts: "),
    ("POST", f"{REMOTE}/known-hosts/remove"): RouteFailure("Failed to remove known_hosts entry: "),
    ("GET", f"{REMOTE}/conda-envs"): RouteFailure("Failed to detect environments: "),
    ("GET", f"{REMOTE}/env-configs"): RouteFailure("Failed to check environment configurations: "),
    ("GET", f"{REMOTE}/config"): RouteFailure(
        "Failed to get remote configuration: ", verbatim=("Failed to run Python in environment: ",)
    ),
    ("GET", f"{REMOTE}/storage-candidates"): RouteFailure(
        "Failed to detect remote storage candidates: ", also_500=(errors.RemotePathError,)
    ),
    ("GET", f"{REMOTE}/fs/list"): RouteFailure("Failed to list directory: ", also_500=(errors.RemotePathError,)),
    ("GET", f"{REMOTE}/fs/exists"): RouteFailure("Failed to check path: ", also_500=(errors.RemotePathError,)),
    ("POST", f"{REMOTE}/viewer/start"): RouteFailure(
        "Failed to start Remote Viewer: ",
        also_500=(ssh_errors.PortInUseError, errors.ConflictError, errors.RunicornMissingError),
    ),
    ("POST", f"{REMOTE}/viewer/stop"): RouteFailure("Failed to stop session: "),
}


def status_for(error: Exception) -> str:
    """Return the HTTP status line of an error class (before any route's wording)."""
    for error_class, status in STATUS_BY_ERROR:
        if isinstance(error, error_class):
            return status
    return falcon.HTTP_500


def host_key_detail(error: ssh_errors.HostKeyError) -> dict[str, Any]:
    """Return the 409 ``detail`` object of the seed; expected_* only when known."""
    payload = HostKeyPayload(
        host=error.host,
        port=error.port,
        known_hosts_host=error.known_hosts_host,
        key_type=error.presented.key_type,
        fingerprint_sha256=error.presented.fingerprint_sha256,
        public_key=error.presented.public_key,
        reason=error.reason,  # type: ignore[arg-type]
    )
    if error.reason == "changed" and error.expected is not None:
        payload.expected_fingerprint_sha256 = error.expected.fingerprint_sha256
        payload.expected_public_key = error.expected.public_key
    return HostKeyProblem(host_key=payload).model_dump(exclude_none=True)


def auth_prompt_detail(error: ssh_errors.AuthPromptError) -> dict[str, Any]:
    """Return the 401 ``detail`` naming the questions a retry answers with ``responses``."""
    prompts = [
        AuthPromptEntry(prompt=prompt.text, echo=prompt.echo, kind=prompt.kind.value)  # type: ignore[arg-type]
        for prompt in error.prompts
    ]
    return AuthPromptProblem(message=error.message, prompts=prompts).model_dump()


# Errors whose ``detail`` is an object rather than their message.
STRUCTURED_DETAIL: dict[type[Exception], Callable[[Any], dict[str, Any]]] = {
    ssh_errors.HostKeyError: host_key_detail,
    ssh_errors.AuthPromptError: auth_prompt_detail,
}


def answer_for(method: str, route: str | None, error: errors.RvsshError) -> tuple[str, Any]:
    """Return (status line, ``detail``) of ``error`` raised on ``method route``."""
    status = status_for(error)
    failure = ROUTE_FAILURES.get((method, route or ""))
    if failure is not None and failure.covers(error, status):
        return falcon.HTTP_500, failure.word(error.message)
    for error_class, build in STRUCTURED_DETAIL.items():
        if isinstance(error, error_class):
            return status, build(error)
    return status, error.message


def handle_rvssh_error(req: falcon.Request, resp: falcon.Response, ex: errors.RvsshError, params: dict) -> None:
    """Answer an RvsshError with its status and a ``{"detail": ...}`` body."""
    resp.status, detail = answer_for(req.method, req.uri_template, ex)
    resp.media = {"detail": detail}


def scrub_secrets(value: Any) -> Any:
    """Return ``value`` with every secret field's value masked (for 422 inputs)."""
    if isinstance(value, dict):
        return {key: ("**********" if key in REQUEST_SECRET_FIELDS and item is not None else scrub_secrets(item))
                for key, item in value.items()}
    if isinstance(value, list):
        return [scrub_secrets(item) for item in value]
    return value


def _json_safe(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return str(value)


class RequestValidationError(Exception):
    """A request body or query did not match its model (answered with 422)."""

    def __init__(self, location: str, items: list[dict[str, Any]]) -> None:
        super().__init__(f"invalid {location}")
        self.location = location
        self.items = items

    @classmethod
    def from_pydantic(cls, location: str, ex: pydantic.ValidationError) -> "RequestValidationError":
        items = []
        for error in ex.errors(include_url=False):
            loc = [location, *error["loc"]]
            item: dict[str, Any] = {"type": error["type"], "loc": loc, "msg": error["msg"]}
            # APPSEC: never echo a secret back, also not inside a whole-body input.
            secret = any(part in REQUEST_SECRET_FIELDS for part in error["loc"])
            # FastAPI reports a missing query parameter with input null.
            missing_query = location == "query" and error["type"] == "missing"
            item["input"] = None if secret or missing_query else _json_safe(scrub_secrets(error.get("input")))
            if error.get("ctx"):
                item["ctx"] = {key: _json_safe(value) for key, value in error["ctx"].items()}
            items.append(item)
        return cls(location, items)


def handle_validation_error(
    req: falcon.Request, resp: falcon.Response, ex: RequestValidationError, params: dict
) -> None:
    """Answer a validation failure with FastAPI's 422 shape."""
    resp.status = falcon.HTTP_422
    resp.media = {"detail": ex.items}


def handle_http_error(req: falcon.Request, resp: falcon.Response, ex: falcon.HTTPError, params: dict) -> None:
    """Answer Falcon's own errors (404, 405, 413, 415, ...) as ``{"detail": ...}``."""
    resp.status = ex.status
    # FastAPI words: "Not Found", "Method Not Allowed" (no status code in front).
    reason = str(ex.title).split(" ", 1)[-1] if str(ex.title)[:3].isdigit() else ex.title
    resp.media = {"detail": ex.description or reason}
    for name, value in (ex.headers or {}).items():
        resp.set_header(name, value)


def handle_unexpected(req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict) -> None:
    """Log the traceback and answer a generic 500; never show ``str(ex)``."""
    if isinstance(ex, falcon.HTTPError):
        handle_http_error(req, resp, ex, params)
        return
    log.exception("unhandled error on %s %s", req.method, req.path)
    resp.status = falcon.HTTP_500
    resp.media = {"detail": "Internal Server Error"}


def register_error_handlers(app: falcon.App) -> None:
    """Install every handler; Falcon picks the most specific by the MRO."""
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(falcon.HTTPError, handle_http_error)
    app.add_error_handler(errors.RvsshError, handle_rvssh_error)
    app.add_error_handler(RequestValidationError, handle_validation_error)
