"""The local API's request rules: Host, Origin, CORS, token, bodies (issue #5)."""

from __future__ import annotations

from pathlib import Path

import falcon.testing
import pytest

from rvssh import cli
from rvssh.app import create_app
from rvssh.http.security import (
    MAX_BODY_BYTES,
    bind_problem,
    host_allowed,
    host_name,
    is_json_content_type,
    is_loopback_name,
    origin_allowed,
    token_matches,
)
from rvssh.settings import Settings

OWN = "127.0.0.1:23300"
TOKEN = "s3cret-token"


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("localhost", "localhost"),
        ("LocalHost:8000", "localhost"),
        ("127.0.0.1:23300", "127.0.0.1"),
        ("[::1]:23300", "::1"),
        ("[::1]", "::1"),
        ("::1", None),
        ("[::1]x", None),
        ("localhost:abc", None),
        ("", None),
    ],
)
def test_host_name(header: str, name: str | None) -> None:
    assert host_name(header) == name


@pytest.mark.parametrize(
    ("header", "allowed"),
    [
        ("localhost", True),
        ("localhost:23300", True),
        ("127.0.0.1", True),
        ("127.8.9.10:1", True),
        ("[::1]:23300", True),
        ("evil.example:23300", False),
        ("localhost.evil.example", False),
        ("127.0.0.1.nip.io", False),
        ("0.0.0.0:23300", False),
        ("10.0.0.5:23300", False),
        ("gpu-gateway:23300", True),  # configured
        ("", False),
    ],
)
def test_host_allowed(header: str, allowed: bool) -> None:
    assert host_allowed(header, {"gpu-gateway"}) is allowed


def test_loopback_names() -> None:
    assert all(map(is_loopback_name, ["localhost", "127.0.0.1", "127.255.0.9", "::1"]))
    assert not any(map(is_loopback_name, ["0.0.0.0", "::", "10.1.2.3", "example.com", "localhostx"]))


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (f"http://{OWN}", True),
        ("HTTP://127.0.0.1:23300/", True),
        ("http://127.0.0.1:8000", True),  # configured
        ("http://127.0.0.1:8001", False),
        ("https://127.0.0.1:23300", False),
        ("http://localhost:23300", False),
        ("http://evil.example", False),
        ("null", False),
        ("", False),
    ],
)
def test_origin_allowed(origin: str, allowed: bool) -> None:
    assert origin_allowed(origin, OWN, {"http://127.0.0.1:8000"}) is allowed


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (f"Bearer {TOKEN}", True),
        (f"bearer {TOKEN}", True),
        (f"Bearer {TOKEN} ", True),
        (f"Bearer {TOKEN}x", False),
        (f"Basic {TOKEN}", False),
        (TOKEN, False),
        ("Bearer ", False),
        ("", False),
        (None, False),
    ],
)
def test_token_matches(header: str | None, matches: bool) -> None:
    assert token_matches(header, TOKEN) is matches


def test_json_content_types() -> None:
    assert is_json_content_type("application/json")
    assert is_json_content_type("Application/JSON; charset=utf-8")
    assert not any(map(is_json_content_type, [None, "", "text/plain", "application/x-www-form-urlencoded",
                                              "multipart/form-data; boundary=x", "application/jsonx"]))


@pytest.mark.parametrize(
    ("bind", "token", "refused"),
    [
        ("127.0.0.1:23300", None, False),
        ("localhost:23300", None, False),
        ("[::1]:23300", None, False),
        ("0.0.0.0:23300", None, True),
        ("[::]:23300", None, True),
        ("10.0.0.5:23300", None, True),
        ("0.0.0.0:23300", TOKEN, False),
    ],
)
def test_bind_problem(bind: str, token: str | None, refused: bool) -> None:
    assert (bind_problem(Settings(bind=bind, token=token)) is not None) is refused


def test_serve_refuses_a_public_bind_without_token(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert cli.main(["serve", "--bind", "0.0.0.0:23300", "--state-dir", str(tmp_path)]) == 2
    assert "refusing to listen on 0.0.0.0:23300" in capsys.readouterr().err


# --- the middleware, through the app ----------------------------------------


def client(tmp_path: Path, **settings: object) -> falcon.testing.TestClient:
    app = create_app(Settings(state_dir=tmp_path / "state", **settings))  # type: ignore[arg-type]
    return falcon.testing.TestClient(app, headers={"Host": OWN})


def test_a_foreign_host_is_403_everywhere(tmp_path: Path) -> None:
    api = client(tmp_path)
    for path in ("/api/health", "/api/remote/sessions", "/api/remote/connections/saved"):
        result = api.simulate_get(path, headers={"Host": "evil.example:23300"})
        assert result.status_code == 403
        assert result.json == {"detail": "Host header not allowed: rvssh answers only loopback names (see --allow-host)"}
    assert api.simulate_get("/api/health", headers={"Host": "localhost"}).status_code == 200


def test_allow_host_and_bind_address_are_accepted(tmp_path: Path) -> None:
    api = client(tmp_path, allowed_hosts=("gpu-gateway", "Other-GW:23300"), bind="10.0.0.5:23300", token=TOKEN)
    for host in ("gpu-gateway:23300", "other-gw", "10.0.0.5:23300"):
        assert api.simulate_get("/api/health", headers={"Host": host}).status_code == 200


def test_a_foreign_origin_is_403_and_gets_no_cors_header(tmp_path: Path) -> None:
    api = client(tmp_path)
    result = api.simulate_post("/api/remote/connections/saved", json=[], headers={"Origin": "http://evil.example"})
    assert result.status_code == 403
    assert result.json == {"detail": "Origin not allowed: http://evil.example (see --allow-origin)"}
    assert "access-control-allow-origin" not in result.headers
    assert api.simulate_get("/api/remote/connections/saved").json["connections"] == []


def test_own_and_allowed_origins_get_their_origin_echoed(tmp_path: Path) -> None:
    api = client(tmp_path, allowed_origins=("http://127.0.0.1:8000/",))
    for origin in (f"http://{OWN}", "http://127.0.0.1:8000"):
        result = api.simulate_get("/api/remote/sessions", headers={"Origin": origin})
        assert result.status_code == 200
        assert result.headers["access-control-allow-origin"] == origin
        assert "Origin" in result.headers["vary"]
    errored = api.simulate_get("/api/nope", headers={"Origin": "http://127.0.0.1:8000"})
    assert errored.status_code == 404 and errored.headers["access-control-allow-origin"] == "http://127.0.0.1:8000"


def test_preflights_are_answered_for_allowed_origins_only(tmp_path: Path) -> None:
    api = client(tmp_path, allowed_origins=("http://127.0.0.1:8000",), token=TOKEN)
    asked = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,authorization"}
    allowed = api.simulate_options("/api/remote/connect", headers={"Origin": "http://127.0.0.1:8000", **asked})
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == "http://127.0.0.1:8000"
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "Authorization" in allowed.headers["access-control-allow-headers"]
    private = api.simulate_options(
        "/api/remote/connect",
        headers={"Origin": "http://127.0.0.1:8000", "Access-Control-Request-Private-Network": "true", **asked},
    )
    assert private.headers["access-control-allow-private-network"] == "true"
    refused = api.simulate_options("/api/remote/connect", headers={"Origin": "http://evil.example", **asked})
    assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_cross_site_requests_without_origin_are_refused(tmp_path: Path, site: str) -> None:
    result = client(tmp_path).simulate_get("/api/remote/sessions", headers={"Sec-Fetch-Site": site})
    assert (result.status_code, result.json) == (403, {"detail": "Cross-site request refused"})


@pytest.mark.parametrize("site", ["same-origin", "none"])
def test_same_origin_and_typed_urls_pass(tmp_path: Path, site: str) -> None:
    assert client(tmp_path).simulate_get("/api/remote/sessions", headers={"Sec-Fetch-Site": site}).status_code == 200


def test_the_token_guards_everything_but_health_and_the_contract(tmp_path: Path) -> None:
    api = client(tmp_path, token=TOKEN)
    assert api.simulate_get("/api/health").status_code == 200
    assert api.simulate_get("/api/openapi.json").status_code == 200
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        result = api.simulate_get("/api/remote/sessions", headers=headers)
        assert (result.status_code, result.json) == (401, {"detail": "Missing or wrong bearer token"})
        assert result.headers["www-authenticate"] == "Bearer"
    assert api.simulate_get("/api/remote/sessions", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert api.simulate_get("/api/nope").status_code == 401  # unknown paths reveal nothing either


def test_without_token_no_authorization_is_needed(tmp_path: Path) -> None:
    assert client(tmp_path).simulate_get("/api/remote/sessions").status_code == 200


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]
)
def test_post_bodies_must_be_json(tmp_path: Path, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    result = client(tmp_path).simulate_post("/api/remote/connections/saved", body="[]", headers=headers)
    assert (result.status_code, result.json) == (415, {"detail": "Content-Type must be application/json"})


def test_json_with_a_charset_is_fine(tmp_path: Path) -> None:
    headers = {"Content-Type": "application/json; charset=utf-8"}
    assert client(tmp_path).simulate_post("/api/remote/connections/saved", body="[]", headers=headers).status_code == 200


def test_bodies_over_one_mib_are_413(tmp_path: Path) -> None:
    api = client(tmp_path)
    big = "[" + " " * MAX_BODY_BYTES + "]"
    result = api.simulate_post("/api/remote/connections/saved", body=big, headers={"Content-Type": "application/json"})
    assert (result.status_code, result.json) == (413, {"detail": "Request body too large (limit 1048576 bytes)"})
    fits = "[" + " " * (MAX_BODY_BYTES - 2) + "]"
    assert api.simulate_post("/api/remote/connections/saved", body=fits, headers={"Content-Type": "application/json"}).status_code == 200


def test_a_chunked_body_is_411(tmp_path: Path) -> None:
    result = client(tmp_path).simulate_post(
        "/api/remote/connections/saved", headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    )
    assert result.status_code == 411
