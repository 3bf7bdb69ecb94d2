"""How the commands reach the API: a running ``rvssh serve``, else the app in this process.

Both speak the same HTTP API, and both work on the same state directory, so
sessions started one way show up the other way. ``rvssh serve`` is used
when one answers at the configured bind (its ``/api/openapi.json`` says
rvssh, so a Runicorn viewer on that port is not taken for it). Otherwise the
commands build the app themselves (``create_app`` on ``build_services``) and
call it through Falcon's WSGI test client: no socket, the same middleware,
validation and answers; the caller is this account.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
from dataclasses import dataclass
from typing import Any, Mapping, Protocol
from urllib.parse import urlencode

from rvssh.client.errors import ClientError
from rvssh.errors import RvsshError
from rvssh.http.binding import WILDCARD_BINDS
from rvssh.settings import Settings
from rvssh.store.token import WRONG_TOKEN, read_token

log = logging.getLogger(__name__)

# Seconds to find out whether rvssh serve answers at the bind.
PROBE_TIMEOUT = 2.0
# A viewer start may take connect_timeout + viewer_ready_timeout and more; the server has its own limits.
REQUEST_TIMEOUT = 600.0


@dataclass(frozen=True)
class Reply:
    """An answer of the API: its status and its decoded JSON body (None when empty or not JSON)."""

    status: int
    body: Any


class Transport(Protocol):
    """Send one API request; ``description`` says where the work is done."""

    description: str

    def request(self, method: str, path: str, body: Any = None, query: Mapping[str, str] | None = None) -> Reply:
        """Send ``method path`` with a JSON ``body`` or a ``query`` and return the answer."""

    def close(self) -> None:
        """Let go of what the transport holds (the in-process monitor)."""


def _decode(payload: bytes, content_type: str) -> Any:
    if not payload or not content_type.startswith("application/json"):
        return None
    try:
        return json.loads(payload)
    except ValueError:
        return None


def _refuses_token(status: int, answer: Any) -> bool:
    """Tell whether an answer is rvssh's 401 for a missing or wrong token."""
    return status == 401 and isinstance(answer, dict) and answer.get("detail") == WRONG_TOKEN


class HttpTransport:
    """Speak HTTP to ``rvssh serve`` at ``host:port``.

    The token goes along when it is known to be needed: always when set
    (``RVSSH_TOKEN``), else once the server asks for it (401 with
    ``WWW-Authenticate: Bearer``), read from the state directory as
    ``read_token`` allows only this account. On Linux the server knows this
    account's requests without it.
    """

    def __init__(self, host: str, port: int, settings: Settings) -> None:
        self._host = host
        self._port = port
        self._settings = settings
        self._token = settings.token
        self._authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.base_url = f"http://{self._authority}"
        self.description = f"rvssh serve at {self.base_url}"

    def _send(self, method: str, target: str, data: bytes | None, timeout: float) -> tuple[int, Mapping[str, str], Any]:
        headers = {"Host": self._authority, "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        connection = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        try:
            connection.request(method, target, body=data, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            answer_headers = {name.lower(): value for name, value in response.getheaders()}
            return response.status, answer_headers, _decode(payload, answer_headers.get("content-type", ""))
        finally:
            connection.close()

    def _token_from_state_dir(self) -> str:
        try:
            token = read_token(self._settings.state_dir)
        except RvsshError as ex:
            raise ClientError(f"{self.description} asks for a token and {ex.message}") from ex
        if token is None:
            raise ClientError(f"{self.description} asks for a token: set RVSSH_TOKEN to the one it uses")
        return token

    def request(self, method: str, path: str, body: Any = None, query: Mapping[str, str] | None = None) -> Reply:
        target = f"{path}?{urlencode(query)}" if query else path
        data = json.dumps(body).encode("utf-8") if body is not None else None
        try:
            status, headers, answer = self._send(method, target, data, REQUEST_TIMEOUT)
            asks_token = status == 401 and "bearer" in headers.get("www-authenticate", "").lower()
            if asks_token and self._token is None and _refuses_token(status, answer):
                self._token = self._token_from_state_dir()
                status, headers, answer = self._send(method, target, data, REQUEST_TIMEOUT)
        except OSError as ex:
            raise ClientError(f"{self.description} did not answer: {ex.strerror or ex}") from ex
        except http.client.HTTPException as ex:
            raise ClientError(f"{self.description} broke off its answer ({type(ex).__name__})") from ex
        if _refuses_token(status, answer):
            raise ClientError(f"{self.description} refused the token (does it use another state directory "
                              f"than {self._settings.state_dir}? set RVSSH_STATE_DIR or RVSSH_TOKEN)")
        return Reply(status, answer)

    def answers_as_rvssh(self) -> bool:
        """Return whether rvssh (not some other program) serves at this address."""
        try:
            status, _, answer = self._send("GET", "/api/openapi.json", None, PROBE_TIMEOUT)
        except (OSError, http.client.HTTPException):
            return False
        title = answer.get("info", {}).get("title", "") if isinstance(answer, dict) else ""
        return status == 200 and isinstance(title, str) and title.startswith("rvssh")

    def close(self) -> None:
        """Nothing to let go of: every request has its own connection."""


def this_account(environ: Mapping[str, Any]) -> int:
    """Say who calls the in-process app: this account (there is no socket to ask about)."""
    return os.geteuid()


class InProcessTransport:
    """Call the app itself, built on ``settings``' state directory, through Falcon's WSGI client.

    With ``watch``, the background monitor of the state directory runs while
    the transport is open (elected by a lock: harmless when another rvssh
    holds it), so a foreground ``rvssh open`` heals its tunnel as
    ``rvssh serve`` would.
    """

    def __init__(self, settings: Settings, watch: bool = False) -> None:
        # PERF: the app is imported only when no rvssh serve answers.
        import falcon.testing

        from rvssh.app import create_app
        from rvssh.services.container import build_services

        self._services = build_services(settings)
        app = create_app(settings, self._services, caller_uid=this_account)
        self._client = falcon.testing.TestClient(app, headers={"Host": "127.0.0.1"})
        self.description = f"rvssh in this process (state in {settings.state_dir})"
        self._watching = watch
        if watch:
            self._services.monitor.start()

    def request(self, method: str, path: str, body: Any = None, query: Mapping[str, str] | None = None) -> Reply:
        result = self._client.simulate_request(method, path, params=dict(query or {}), json=body)
        return Reply(result.status_code, _decode(result.content, result.headers.get("content-type", "")))

    def close(self) -> None:
        if self._watching:
            self._services.monitor.stop()
            self._watching = False


def serve_address(settings: Settings) -> tuple[str, int]:
    """Return where to reach ``rvssh serve`` of ``settings``: its bind, a wildcard bind as loopback."""
    host = settings.bind_host
    if host in WILDCARD_BINDS:
        host = "::1" if ":" in host else "127.0.0.1"
    return host, settings.bind_port


def open_transport(settings: Settings, watch: bool = False) -> Transport:
    """Return the transport to ``rvssh serve`` when it answers at the bind, else the app in process."""
    host, port = serve_address(settings)
    served = HttpTransport(host, port, settings)
    if served.answers_as_rvssh():
        log.debug("using %s", served.description)
        return served
    log.debug("no rvssh serve answers at %s; working in process", served.base_url)
    return InProcessTransport(settings, watch=watch)
