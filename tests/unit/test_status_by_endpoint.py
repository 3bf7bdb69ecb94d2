"""Every row of docs/api.md's "Status by endpoint" table, sent through the app (#12).

Each row names an endpoint, an error class, a status and a ``detail``. The
app is built with services whose every call raises that error, the row's
endpoint gets a valid request, and the answer must be the row's status and
``detail``. So the table in the docs is the contract the code is held to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import falcon
import falcon.testing
import pytest
from falcon.inspect import inspect_app

from rvssh import errors
from rvssh.app import create_app
from rvssh.http.errors import ROUTE_FAILURES, RouteFailure, answer_for
from rvssh.settings import Settings
from rvssh.ssh import errors as ssh_errors
from rvssh.ssh.errors import HostKey
from rvssh.ssh.prompts import classify_prompt
from tests import callers
from tests.unit.api_document import HEADERS, VALID_REQUESTS, send

API_MD = Path(__file__).resolve().parents[2] / "docs" / "api.md"
ENDPOINT = re.compile(r"^`(GET|POST) (/api/\S+)`$")
PLACEHOLDER = re.compile(r"<[^>]+>")
CLASSES: dict[str, type[errors.RvsshError]] = {
    cls.__name__: cls
    for module in (errors, ssh_errors)
    for cls in vars(module).values()
    if isinstance(cls, type) and issubclass(cls, errors.RvsshError)
}


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    error_class: str
    status: int
    detail: str

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.error_class} {self.status} {self.detail}"


def table_rows() -> list[Row]:
    """Return the rows of the "Status by endpoint" section of docs/api.md."""
    text = API_MD.read_text(encoding="utf-8")
    section = text.split("### Status by endpoint\n", 1)[1].split("\n#", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        endpoint = ENDPOINT.match(cells[0])
        if endpoint and len(cells) == 5:
            method, path = endpoint.groups()
            rows.append(Row(method, path, cells[1].strip("`"), int(cells[2]), cells[3].strip("`")))
    return rows


class RaisingServices:
    """Services whose every attribute is itself and every call raises the error."""

    def __init__(self, error: Exception) -> None:
        self._error = error

    def __getattr__(self, name: str) -> "RaisingServices":
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise self._error


def host_key_error() -> ssh_errors.HostKeyError:
    key = HostKey("ssh-ed25519", "AAAA", "SHA256:x")
    return ssh_errors.HostKeyError(host="h", port=22, known_hosts_host="h", reason="unknown", presented=key)


def auth_prompt_error() -> ssh_errors.AuthPromptError:
    asked = classify_prompt("(me@gpu) Verification code: ")
    return ssh_errors.AuthPromptError("A second factor is needed: the server accepted the publickey and asks: "
                                      "Verification code:", [asked])


STRUCTURED = {"HostKeyError": (host_key_error, "HOST_KEY_CONFIRMATION_REQUIRED"),
              "AuthPromptError": (auth_prompt_error, "AUTH_PROMPT")}


def build_error(row: Row) -> tuple[Exception, Any]:
    """Return the error to raise for ``row`` and the ``detail`` the row promises."""
    if row.error_class in STRUCTURED:
        return STRUCTURED[row.error_class][0](), None
    error_class = CLASSES[row.error_class]
    if "<message>" in row.detail:
        message = "it broke on the way"
        return error_class(message), row.detail.replace("<message>", message)
    message = PLACEHOLDER.sub("x", row.detail)
    return error_class(message), message


ROWS = table_rows()


def test_the_table_has_a_row_for_every_route_with_a_failure_wording(tmp_path: Path) -> None:
    documented = {(row.method, row.path) for row in ROWS}
    table_lines = [line for line in API_MD.read_text().splitlines() if line.startswith(("| `POST /api", "| `GET /api"))]
    assert len(ROWS) == len(table_lines) > 50, "a row of the table does not parse"
    assert set(ROUTE_FAILURES) <= documented, set(ROUTE_FAILURES) - documented
    app = create_app(Settings(state_dir=tmp_path / "state"), caller_uid=callers.owner)
    remote_routes = {
        (method.method, route.path)
        for route in inspect_app(app).routes
        for method in route.methods
        if not method.internal and route.path.startswith("/api/remote/")
    }
    assert remote_routes == documented, remote_routes ^ documented


@pytest.mark.parametrize("row", ROWS, ids=str)
def test_each_row_is_what_the_app_answers(tmp_path: Path, row: Row) -> None:
    error, detail = build_error(row)
    app = create_app(Settings(state_dir=tmp_path / "state"), services=RaisingServices(error), caller_uid=callers.owner)  # type: ignore[arg-type]
    client = falcon.testing.TestClient(app, headers=HEADERS)
    result = send(client, row.method, row.path, VALID_REQUESTS.get((row.method, row.path), {}))
    assert result.status_code == row.status, result.text
    if row.error_class in STRUCTURED:
        assert result.json["detail"]["code"] == STRUCTURED[row.error_class][1]
    else:
        assert result.json == {"detail": detail}


def test_a_message_that_already_has_the_prefix_keeps_it_once() -> None:
    connect = ("POST", "/api/remote/connect")
    assert answer_for(*connect, ssh_errors.ConnectError("Connection failed: refused")) == (
        falcon.HTTP_500, "Connection failed: refused"
    )
    assert answer_for("GET", "/api/remote/fs/list", errors.RemoteNotFoundError("Path not found: /x")) == (
        falcon.HTTP_500, "Failed to list directory: Path not found: /x"
    )
    assert answer_for("GET", "/api/remote/fs/list", errors.NotFoundError("Connection not found or inactive: c")) == (
        falcon.HTTP_404, "Connection not found or inactive: c"
    )


def test_a_route_without_a_wording_and_an_unrouted_error_keep_the_class_status() -> None:
    assert answer_for("GET", None, errors.StoreError("disk full")) == (falcon.HTTP_500, "disk full")
    assert answer_for("GET", "/api/remote/status", errors.NotFoundError("x")) == (falcon.HTTP_404, "x")
    assert RouteFailure("P: ", verbatim=("Q: ",)).word("Q: as is") == "Q: as is"
