"""connect / viewer start with saved_server_id: what is filled in, what is refused (issue #5)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import falcon.testing
import pytest

from rvssh.app import create_app
from rvssh.errors import BadRequestError, NotFoundError
from rvssh.models import ConnectRequest, ViewerStartRequest
from rvssh.services.container import build_services
from rvssh.services.saved import merge_saved_server, resolve_connect
from rvssh.settings import Settings
from rvssh.store.saved_connections import SavedServer
from tests import callers
from tests.unit.conftest import scenario_ssh

SAVED = SavedServer("srv", host="gpu", port=2222, username="me", private_key_path="~/.ssh/saved",
                    password="saved-pw", passphrase="saved-pp", private_key=None)


class OneServer:
    """The saved-servers lookup with exactly one entry."""

    def __init__(self, saved: SavedServer) -> None:
        self._saved = saved

    def get_server(self, server_id: str) -> SavedServer:
        if server_id != self._saved.server_id:
            raise NotFoundError(f"Saved server not found: {server_id}")
        return self._saved


def request(**fields: Any) -> ConnectRequest:
    return ConnectRequest.model_validate({"saved_server_id": "srv", **fields})


def revealed(*secrets: Any) -> tuple[str | None, ...]:
    return tuple(None if secret is None else secret.get_secret_value() for secret in secrets)


@pytest.mark.parametrize(
    ("fields", "destination"),
    [
        ({}, ("gpu", 2222, "me")),
        ({"host": "gpu", "username": "me"}, ("gpu", 2222, "me")),
        ({"port": 22}, ("gpu", 2222, "me")),  # the UI's default port never contradicts
        ({"port": "2222"}, ("gpu", 2222, "me")),
        ({"host": "", "username": ""}, ("gpu", 2222, "me")),
    ],
    ids=["nothing", "same", "port-22", "same-port", "empty-strings"],
)
def test_missing_destination_fields_come_from_the_saved_server(fields: dict[str, Any], destination: tuple) -> None:
    host, port, username, _ = merge_saved_server(request(**fields), SAVED)
    assert (host, port, username) == destination


@pytest.mark.parametrize(
    ("fields", "field"),
    [({"host": "evil.example"}, "host"), ({"username": "root"}, "username"), ({"port": 2200}, "port")],
)
def test_a_contradicting_destination_is_refused(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(BadRequestError, match=f"^Saved server mismatch for field: {field}$"):
        merge_saved_server(request(**fields), SAVED)


def test_a_saved_server_without_port_uses_the_request_port_or_22() -> None:
    no_port = SavedServer("srv", host="gpu", port=None, username="me", private_key_path=None)
    assert merge_saved_server(request(port=2200), no_port)[1] == 2200
    assert merge_saved_server(request(), no_port)[1] == 22


def test_a_saved_server_without_host_needs_one_in_the_request() -> None:
    no_host = SavedServer("srv", host=None, port=None, username="me", private_key_path=None)
    with pytest.raises(BadRequestError, match="^Saved server has no host: srv$"):
        merge_saved_server(request(), no_host)
    assert merge_saved_server(request(host="h"), no_host)[0] == "h"


def test_credentials_of_the_request_win_and_missing_ones_come_from_the_saved_server() -> None:
    credentials = merge_saved_server(request(use_agent=False), SAVED)[3]
    assert revealed(credentials.password, credentials.passphrase) == ("saved-pw", "saved-pp")
    assert credentials.private_key_path == "~/.ssh/saved" and credentials.use_agent is False
    assert credentials.saved_server_id == "srv"
    credentials = merge_saved_server(request(password="typed", private_key_path="~/.ssh/mine"), SAVED)[3]
    assert revealed(credentials.password, credentials.passphrase) == ("typed", "saved-pp")
    assert credentials.private_key_path == "~/.ssh/mine"


def test_key_material_travels_as_a_pair() -> None:
    saved = SavedServer("srv", host="gpu", port=22, username="me", private_key_path="/saved/path", private_key="SAVED KEY")
    credentials = merge_saved_server(request(private_key="MY KEY"), saved)[3]
    assert (*revealed(credentials.private_key), credentials.private_key_path) == ("MY KEY", None)
    credentials = merge_saved_server(request(), saved)[3]
    assert (*revealed(credentials.private_key), credentials.private_key_path) == ("SAVED KEY", "/saved/path")


def test_resolve_connect_with_and_without_a_saved_server() -> None:
    host, port, username, credentials = resolve_connect(ConnectRequest(host="h", username="u", password="p"), OneServer(SAVED))
    assert (host, port, username, *revealed(credentials.password)) == ("h", 22, "u", "p")
    assert resolve_connect(ConnectRequest(host="alias"), OneServer(SAVED))[2] is None  # ssh -G decides
    assert resolve_connect(request(), OneServer(SAVED))[:3] == ("gpu", 2222, "me")
    with pytest.raises(NotFoundError, match="^Saved server not found: other$"):
        resolve_connect(request(saved_server_id="other"), OneServer(SAVED))


def test_the_saved_destination_is_still_validated(short_tmp: Path) -> None:
    hostile = {"kind": "server", "id": "srv", "host": "-oProxyCommand=touch /tmp/x", "port": 22, "username": "me"}
    client = password_client(short_tmp / "s", short_tmp / "typed")
    client.simulate_post("/api/remote/connections/saved", json=[hostile])
    result = client.simulate_post("/api/remote/connect", json={"saved_server_id": "srv"})
    assert result.status_code == 400 and "Invalid host" in result.json["detail"]
    assert not (short_tmp / "typed").exists()


def test_only_the_host_is_required_without_a_saved_server() -> None:
    with pytest.raises(Exception) as caught:
        ViewerStartRequest.model_validate({"remote_root": "/r"})
    assert [(error["type"], error["loc"]) for error in caught.value.errors()] == [  # type: ignore[attr-defined]
        ("missing", ("host",)),
    ]
    assert ConnectRequest.model_validate({"host": "alias"}).username is None


# --- through the app, with a fake ssh that wants the password "right" -------


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short directory: control socket paths must fit sun_path."""
    path = Path(tempfile.mkdtemp(prefix="rvs-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def password_client(state: Path, typed_log: Path) -> falcon.testing.TestClient:
    ssh = scenario_ssh(state.parent / "bin", "password", typed_log)
    settings = Settings(state_dir=state, ssh_binary=str(ssh), connect_timeout=5)
    return falcon.testing.TestClient(create_app(settings, build_services(settings), caller_uid=callers.owner), headers={"Host": "127.0.0.1"})


@pytest.mark.parametrize("saved_password", ["right", "wrong"])
def test_connect_types_the_saved_password_once(short_tmp: Path, saved_password: str) -> None:
    client = password_client(short_tmp / "s", short_tmp / "typed")
    saved = {"kind": "server", "id": "srv_me_gpu_2222", "host": "gpu", "port": 2222, "username": "me", "password": saved_password}
    client.simulate_post("/api/remote/connections/saved", json=[saved])
    body = {"host": "gpu", "port": 22, "username": "me", "use_agent": True, "saved_server_id": "srv_me_gpu_2222"}
    result = client.simulate_post("/api/remote/connect", json=body)
    assert (short_tmp / "typed").read_text().splitlines() == [saved_password]
    assert saved_password not in result.text
    # The fake accepts "right" (then has no real master to check: 500 after auth).
    assert (result.status_code == 401) is (saved_password == "wrong"), result.text


def test_a_mismatch_or_unknown_id_answers_before_any_ssh(short_tmp: Path) -> None:
    client = password_client(short_tmp / "s", short_tmp / "typed")
    client.simulate_post("/api/remote/connections/saved", json=[{"kind": "server", "id": "a", "host": "gpu", "username": "me"}])
    result = client.simulate_post("/api/remote/connect", json={"saved_server_id": "a", "host": "evil.example", "username": "me"})
    assert (result.status_code, result.json) == (400, {"detail": "Saved server mismatch for field: host"})
    result = client.simulate_post("/api/remote/viewer/start", json={"saved_server_id": "b", "remote_root": "/r"})
    assert (result.status_code, result.json) == (404, {"detail": "Saved server not found: b"})
    assert not (short_tmp / "typed").exists()
