"""Only the account that started rvssh drives it without the token, over real loopback HTTP (issue #15).

``rvssh serve`` runs as root (the suite's account); requests of root are the
owner's. A second local account sends its requests from its own process, so
rvssh sees it only through the kernel's socket table, as on a shared machine.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

from rvssh.http.security import OTHER_ACCOUNT, TOKEN_COOKIE
from tests.integration.other_account import request_as_other
from tests.integration.rvssh_fixtures import ACCEPT_FIELDS
from tests.integration.serving import Served, end_masters, serving
from tests.sshbed import SshBed, wait_until

WRONG_TOKEN = {"detail": "Missing or wrong bearer token"}


def bed_environment(sshbed: SshBed) -> dict[str, str]:
    sshbed.user_known_hosts.write_text("")
    return {"RVSSH_SSH_CONFIG": str(sshbed.ssh_config), "RVSSH_USER_KNOWN_HOSTS": str(sshbed.user_known_hosts)}


def connect_body(sshbed: SshBed) -> dict[str, object]:
    # root's rvssh can read this key: served, this request would log in.
    return {"host": sshbed.host, "port": sshbed.port, "username": sshbed.user,
            "private_key_path": str(sshbed.key_plain), "use_agent": False}


def trust_the_bed(served: Served, sshbed: SshBed) -> None:
    status, _, problem = served.post_json("/api/remote/connect", connect_body(sshbed))
    assert status == 409, problem
    key = problem["detail"]["host_key"]
    assert served.post_json("/api/remote/known-hosts/accept", {name: key[name] for name in ACCEPT_FIELDS})[0] == 200


def connection_records(state: Path) -> list[Path]:
    return sorted((state / "connections").glob("*.json"))


def state_token(tmp_path: Path) -> str:
    return (tmp_path / "state" / "token").read_text().strip()


def test_another_account_is_refused_and_starts_no_ssh(tmp_path: Path, sshbed: SshBed, other_account: str) -> None:
    try:
        with serving(tmp_path, **bed_environment(sshbed)) as served:
            trust_the_bed(served, sshbed)
            logins = sshbed.count_logins()

            refused = request_as_other(served.port, "POST", "/api/remote/connect", connect_body(sshbed))
            assert (refused.status, refused.json()) == (403, {"detail": OTHER_ACCOUNT})
            for path in ("/api/remote/sessions", "/api/remote/known-hosts/list", "/"):
                answer = request_as_other(served.port, "GET", path)
                assert (answer.status, answer.json()) == (403, {"detail": OTHER_ACCOUNT}), path
            assert connection_records(tmp_path / "state") == []

            # The owner, without a token: served; the one login sshd sees is this one.
            status, _, connected = served.post_json("/api/remote/connect", connect_body(sshbed))
            assert status == 200 and connected["connected"] is True
            wait_until(lambda: sshbed.count_logins() > logins, 10, "the owner's connect did not log in")
            assert sshbed.count_logins() == logins + 1

            # With the token the other account may use the connection rvssh holds ...
            bearer = {"Authorization": f"Bearer {state_token(tmp_path)}"}
            listed = request_as_other(served.port, "GET", "/api/remote/sessions", headers=bearer)
            assert listed.status == 200
            assert [item["key"] for item in listed.json()["sessions"]] == [connected["connection_id"]]

            # ... and with a wrong one nothing happens to it.
            for authorization in ("Bearer wrong", f"Bearer {state_token(tmp_path)[:-1]}"):
                answer = request_as_other(served.port, "POST", "/api/remote/disconnect",
                                          {"connection_id": connected["connection_id"]}, {"Authorization": authorization})
                assert (answer.status, answer.json()) == (401, WRONG_TOKEN)
            sessions = served.request("GET", "/api/remote/sessions")[2]["sessions"]
            assert [item["connected"] for item in sessions] == [True]
            assert "Traceback" not in served.output()
    finally:
        end_masters(tmp_path / "state")


def test_the_page_trades_the_url_token_for_a_cookie(tmp_path: Path, other_account: str) -> None:
    with serving(tmp_path) as served:
        url = urlsplit(served.page_url())
        token = state_token(tmp_path)
        assert (url.hostname, url.port, url.path, url.query) == ("127.0.0.1", served.port, "/", f"token={token}")

        traded = request_as_other(served.port, "GET", f"/?{url.query}")
        assert traded.status == 303 and traded.headers["location"] == "/"  # the token leaves the address bar
        cookie = traded.headers["set-cookie"]
        assert cookie.startswith(f"{TOKEN_COOKIE}=") and token not in cookie
        attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "samesite=strict", "path=/"} <= attributes and "secure" not in attributes
        with_cookie = {"Cookie": cookie.split(";", 1)[0]}

        page = request_as_other(served.port, "GET", "/", headers=with_cookie)
        assert page.status == 200 and "<title>rvssh</title>" in page.body
        sessions = request_as_other(served.port, "GET", "/api/remote/sessions", headers=with_cookie)
        assert (sessions.status, sessions.json()) == (200, {"sessions": []})

        wrong = request_as_other(served.port, "GET", "/?token=wrong")
        assert wrong.status == 401 and "set-cookie" not in wrong.headers
        assert request_as_other(served.port, "GET", "/").status == 403

        status, headers, body = served.request("GET", "/")  # the owner needs nothing
        assert status == 200 and "<title>rvssh</title>" in body and "set-cookie" not in headers

        served.process.terminate()
        assert served.process.wait(15) == 0
        output = served.output()
        # The start-up line is the only place the token was ever written; the access log shows the path only.
        assert [line for line in output.splitlines() if token in line] == [
            line for line in output.splitlines() if "serving the Remote Viewer API" in line
        ]
        assert '"GET / HTTP/1.1" 303' in output and '"GET / HTTP/1.1" 401' in output
        assert "?token" not in output.replace(f"open {served.page_url()}", "")


def test_the_token_is_kept_and_a_replaced_one_goes_stale(tmp_path: Path, other_account: str) -> None:
    with serving(tmp_path) as served:
        first = state_token(tmp_path)
        cookie = request_as_other(served.port, "GET", f"/?token={first}").headers["set-cookie"].split(";", 1)[0]
    with serving(tmp_path) as served:
        assert state_token(tmp_path) == first  # kept across restarts
        assert request_as_other(served.port, "GET", "/api/remote/status", headers={"Cookie": cookie}).status == 200
    (tmp_path / "state" / "token").unlink()
    with serving(tmp_path) as served:
        assert state_token(tmp_path) != first
        stale = request_as_other(served.port, "POST", "/api/remote/connections/saved", [],
                                 {"Authorization": f"Bearer {first}"})
        assert (stale.status, stale.json()) == (401, WRONG_TOKEN)
        stale_cookie = request_as_other(served.port, "POST", "/api/remote/connections/saved", [], {"Cookie": cookie})
        assert (stale_cookie.status, stale_cookie.json()) == (403, {"detail": OTHER_ACCOUNT})
        stale_url = request_as_other(served.port, "GET", f"/?token={first}")
        assert stale_url.status == 401 and "set-cookie" not in stale_url.headers
    assert not (tmp_path / "state" / "saved_connections.json").exists()


def test_an_explicit_token_reaches_no_log_and_no_child_process(tmp_path: Path, sshbed: SshBed, other_account: str) -> None:
    token = "team-Token-7Yq2-explicit"
    try:
        with serving(tmp_path, RVSSH_TOKEN=token, **bed_environment(sshbed)) as served:
            assert served.page_url() == f"http://127.0.0.1:{served.port}/"  # a token you gave is not printed
            assert not (tmp_path / "state" / "token").exists()
            trust_the_bed(served, sshbed)
            answer = request_as_other(served.port, "POST", "/api/remote/connect", connect_body(sshbed),
                                      {"Authorization": f"Bearer {token}"})
            assert answer.status == 200, answer.body
            records = connection_records(tmp_path / "state")
            assert len(records) == 1
            master = json.loads(records[0].read_text())["pid"]
            for name in ("environ", "cmdline"):
                assert token.encode() not in Path(f"/proc/{master}/{name}").read_bytes(), name
            assert request_as_other(served.port, "GET", "/api/remote/sessions").status == 403
        assert token not in served.output()
    finally:
        end_masters(tmp_path / "state")


def test_the_owner_is_told_when_its_bearer_token_is_wrong(tmp_path: Path) -> None:
    with serving(tmp_path) as served:
        status, headers, body = served.request("GET", "/api/remote/sessions", headers={"Authorization": "Bearer old"})
        assert (status, body) == (401, WRONG_TOKEN) and headers["www-authenticate"] == "Bearer"
        assert served.request("GET", "/api/remote/sessions")[0] == 200
