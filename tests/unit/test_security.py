"""The local API's request rules: Host, Origin, CORS, caller's account, token, bodies (issues #5, #15)."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import falcon.testing
import pytest

from rvssh import cli
from rvssh.app import create_app
from rvssh.http.binding import bind_problem, is_loopback_name
from rvssh.http.callers import CallerResolver
from rvssh.http.security import (
    MAX_BODY_BYTES,
    OTHER_ACCOUNT,
    TOKEN_COOKIE,
    cookie_value,
    host_allowed,
    host_name,
    is_json_content_type,
    origin_allowed,
    secret_equals,
    token_matches,
)
from rvssh.settings import Settings
from rvssh.store.token import read_token
from tests import callers
from tests.unit.conftest import FakeSsh, make_fake_ssh

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


def test_secrets_compare_whole_and_never_empty() -> None:
    assert secret_equals(TOKEN, TOKEN)
    assert not secret_equals(TOKEN[:-1], TOKEN) and not secret_equals(TOKEN + "x", TOKEN)
    assert not secret_equals("", "")  # an empty token never opens anything
    assert not secret_equals("t\udcff", TOKEN)  # undecodable input is just wrong, not a crash


def test_the_cookie_stands_for_the_token_without_holding_it() -> None:
    value = cookie_value(TOKEN)
    assert TOKEN not in value and value == cookie_value(TOKEN) != cookie_value(TOKEN + "x")
    assert value.isalnum()  # cookie-safe whatever the token holds
    assert cookie_value('a "token"; with, odd chars').isalnum()


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


def client(tmp_path: Path, caller_uid: CallerResolver = callers.owner, **settings: object) -> falcon.testing.TestClient:
    app = create_app(Settings(state_dir=tmp_path / "state", **settings), caller_uid=caller_uid)  # type: ignore[arg-type]
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


def test_a_caller_of_unknown_account_needs_the_token_everywhere_but_health_and_the_contract(tmp_path: Path) -> None:
    api = client(tmp_path, callers.unknown, token=TOKEN)
    assert api.simulate_get("/api/health").status_code == 200
    assert api.simulate_get("/api/openapi.json").status_code == 200
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Cookie": f"{TOKEN_COOKIE}={TOKEN}"}):
        result = api.simulate_get("/api/remote/sessions", headers=headers)
        assert (result.status_code, result.json) == (401, {"detail": "Missing or wrong bearer token"})
        assert result.headers["www-authenticate"] == "Bearer"
    assert api.simulate_get("/api/remote/sessions", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert api.simulate_get("/api/nope").status_code == 401  # unknown paths reveal nothing either
    assert api.simulate_get("/").status_code == 401


@pytest.mark.parametrize("token", [None, TOKEN])
def test_the_owner_needs_no_token(tmp_path: Path, token: str | None) -> None:
    api = client(tmp_path, token=token)
    assert api.simulate_get("/api/remote/sessions").json == {"sessions": []}
    assert api.simulate_post("/api/remote/connections/saved", json=[]).status_code == 200


def test_the_owner_with_a_wrong_bearer_token_is_told(tmp_path: Path) -> None:
    result = client(tmp_path, token=TOKEN).simulate_get("/api/remote/sessions", headers={"Authorization": "Bearer old"})
    assert (result.status_code, result.json) == (401, {"detail": "Missing or wrong bearer token"})


def other_account_app(tmp_path: Path, **settings: Any) -> tuple[falcon.testing.TestClient, FakeSsh]:
    fake = make_fake_ssh(tmp_path / "fakessh")
    api = client(tmp_path, callers.other_account, ssh_binary=str(fake.binary), connect_timeout=5, **settings)
    return api, fake


CONNECT = {"host": "gpu", "username": "me", "use_agent": False}


def test_another_account_is_refused_403_and_nothing_runs(tmp_path: Path) -> None:
    api, fake = other_account_app(tmp_path)
    for method, path, body in (("POST", "/api/remote/connect", CONNECT), ("GET", "/api/remote/sessions", None),
                               ("GET", "/api/remote/fs/list", None), ("POST", "/api/remote/connections/saved", []),
                               ("GET", "/", None), ("GET", "/index.html", None), ("GET", "/api/nope", None)):
        result = api.simulate_request(method, path, json=body, params={"connection_id": "me@gpu:22", "path": "/"})
        assert (result.status_code, result.json) == (403, {"detail": OTHER_ACCOUNT}), path
    assert fake.runs() == 0
    assert not (tmp_path / "state" / "saved_connections.json").exists()
    assert api.simulate_get("/api/health").status_code == 200


def test_another_account_with_the_state_dir_token_is_served(tmp_path: Path) -> None:
    api, fake = other_account_app(tmp_path)
    token = read_token(tmp_path / "state")
    assert token is not None and len(token) >= 43
    bearer = {"Authorization": f"Bearer {token}"}
    assert api.simulate_get("/api/remote/sessions", headers=bearer).json == {"sessions": []}
    assert api.simulate_post("/api/remote/connect", json=CONNECT, headers=bearer).status_code == 401  # fake ssh refuses
    assert fake.runs() == 1


def test_another_account_with_a_wrong_token_is_401_and_nothing_runs(tmp_path: Path) -> None:
    api, fake = other_account_app(tmp_path)
    token = read_token(tmp_path / "state")
    for authorization in ("Bearer wrong", f"Bearer {token}x", f"Basic {token}", f"Bearer {token[:-1]}"):
        result = api.simulate_post("/api/remote/connect", json=CONNECT, headers={"Authorization": authorization})
        assert (result.status_code, result.json) == (401, {"detail": "Missing or wrong bearer token"})
        assert token not in result.text
    assert fake.runs() == 0


def test_an_explicit_token_replaces_the_state_dir_one(tmp_path: Path) -> None:
    api, _ = other_account_app(tmp_path, token=TOKEN)
    kept = read_token(tmp_path / "state")
    assert kept is None  # nothing is made when --token says which one
    assert api.simulate_get("/api/remote/sessions", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_the_state_dir_token_is_made_once_0600_and_kept(tmp_path: Path) -> None:
    client(tmp_path)
    path = tmp_path / "state" / "token"
    first = path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.stat().st_uid == os.geteuid()
    client(tmp_path)
    assert path.read_text() == first


# --- the page: the URL's token becomes a cookie -------------------------------


def test_the_url_token_becomes_a_cookie_and_leaves_the_address(tmp_path: Path) -> None:
    api, fake = other_account_app(tmp_path)
    token = read_token(tmp_path / "state")
    traded = api.simulate_get("/", query_string=f"token={token}")
    assert traded.status_code == 303
    assert traded.headers["location"] == "/"  # no token in the address any more
    assert traded.headers["referrer-policy"] == "no-referrer"
    cookie = traded.cookies[TOKEN_COOKIE]
    assert cookie.value == cookie_value(token) and token not in traded.headers["set-cookie"]
    assert (cookie.http_only, cookie.same_site, cookie.path, cookie.secure) == (True, "Strict", "/", False)
    page = api.simulate_get("/", cookies={TOKEN_COOKIE: cookie.value})
    assert page.status_code == 200 and "<title>rvssh</title>" in page.text
    assert api.simulate_get("/api/remote/sessions", cookies={TOKEN_COOKIE: cookie.value}).json == {"sessions": []}
    assert fake.runs() == 0


@pytest.mark.parametrize("query", ["token=wrong", "token=", "token=a&token=b"])
def test_a_wrong_url_token_is_401_and_sets_nothing(tmp_path: Path, query: str) -> None:
    api, _ = other_account_app(tmp_path)
    result = api.simulate_get("/", query_string=query)
    assert (result.status_code, result.json) == (401, {"detail": "Wrong token in the address: open the URL that rvssh serve printed"})
    assert "set-cookie" not in result.headers


def test_the_owner_with_a_wrong_url_token_gets_no_cookie_either(tmp_path: Path) -> None:
    result = client(tmp_path).simulate_get("/", query_string="token=wrong")
    assert result.status_code == 401 and "set-cookie" not in result.headers


def test_a_stale_cookie_is_ignored(tmp_path: Path) -> None:
    stale = {TOKEN_COOKIE: cookie_value("an-earlier-token")}
    assert client(tmp_path).simulate_get("/api/remote/sessions", cookies=stale).status_code == 200  # owner
    other, fake = other_account_app(tmp_path / "other")
    result = other.simulate_post("/api/remote/connect", json=CONNECT, cookies=stale)
    assert (result.status_code, result.json) == (403, {"detail": OTHER_ACCOUNT})
    assert fake.runs() == 0
    unknown = client(tmp_path / "unknown", callers.unknown)
    assert unknown.simulate_get("/api/remote/sessions", cookies=stale).status_code == 401


def test_the_token_is_traded_only_on_the_page(tmp_path: Path) -> None:
    api, _ = other_account_app(tmp_path)
    token = read_token(tmp_path / "state")
    result = api.simulate_get("/api/remote/sessions", query_string=f"token={token}")
    assert result.status_code == 403 and "set-cookie" not in result.headers


def test_a_cross_site_link_with_the_token_is_refused(tmp_path: Path) -> None:
    api, _ = other_account_app(tmp_path)
    token = read_token(tmp_path / "state")
    result = api.simulate_get("/", query_string=f"token={token}", headers={"Sec-Fetch-Site": "cross-site"})
    assert result.status_code == 403 and "set-cookie" not in result.headers


def test_the_page_is_served_with_its_headers(tmp_path: Path) -> None:
    api = client(tmp_path)
    page = api.simulate_get("/")
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert "/api/openapi.json" in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert api.simulate_get("/index.html").text == page.text
    for path in ("/nope.js", "/..", "/.hidden", "/web", "/%2E%2E%2Fapp.py", "/../app.py", "/http/web.py"):
        result = api.simulate_get(path)
        assert (result.status_code, result.json) == (404, {"detail": "Not Found"}), path


def test_preflights_need_no_token_from_another_account(tmp_path: Path) -> None:
    api = client(tmp_path, callers.other_account, allowed_origins=("http://127.0.0.1:8000",))
    asked = {"Origin": "http://127.0.0.1:8000", "Access-Control-Request-Method": "POST"}
    assert api.simulate_options("/api/remote/connect", headers=asked).status_code == 204


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
