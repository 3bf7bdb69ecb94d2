"""Old shapes of saved entries come back the way Runicorn 0.7 hands them out (#12)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import falcon.testing
import pytest

from rvssh.app import create_app
from rvssh.services.container import build_services
from rvssh.settings import Settings
from rvssh.store.saved_entries import Record, normalize, server_id_for, split_item
from tests import callers
from tests.unit.conftest import scenario_ssh

NOW = 1_800_000_000_000
LOOPBACK = {"Host": "127.0.0.1:23300"}


def shapes(*items: dict[str, Any]) -> list[dict[str, Any]]:
    return [record.entry for record in normalize([split_item(item) for item in items], NOW)]


def flat(**fields: Any) -> dict[str, Any]:
    return {"id": "conn-old-1", "name": "old run", "host": "gpu.lan", "port": 22, "username": "me",
            "remoteRoot": "/data", "condaEnv": "rv", **fields}


SERVER = {"kind": "server", "id": "srv_me_gpu_lan_22", "name": "gpu.lan", "host": "gpu.lan", "port": 22,
          "username": "me", "authMethod": "password", "createdAt": 100}


def test_snake_case_keys_become_camel_case_unless_the_camel_case_key_is_there() -> None:
    server = {"kind": "server", "id": "s1", "host": "h", "username": "u", "private_key_path": "~/.ssh/k",
              "created_at": 7, "auth_method": "key"}
    profile = {"kind": "connection", "id": "p1", "serverId": "s1", "created_at": 8, "createdAt": 9}
    assert shapes(server, profile) == [
        {"kind": "server", "id": "s1", "host": "h", "username": "u", "privateKeyPath": "~/.ssh/k", "createdAt": 7,
         "authMethod": "key"},
        {"kind": "connection", "id": "p1", "serverId": "s1", "created_at": 8, "createdAt": 9},
    ]


def test_a_flat_entry_becomes_a_server_and_a_profile_pointing_at_it() -> None:
    entry = flat(password="pw", passphrase="pp", token="tok", private_key_path="~/.ssh/id", created_at=55)
    (server, profile) = normalize([split_item(entry)], NOW)
    assert server.entry == {
        "kind": "server", "id": "srv_me_gpu_lan_22", "name": "me@gpu.lan:22", "host": "gpu.lan", "port": 22,
        "username": "me", "authMethod": "password", "privateKeyPath": "~/.ssh/id", "createdAt": 55,
    }
    assert server.secrets == {"password": "pw", "passphrase": "pp"}
    assert profile.entry == {
        "kind": "connection", "id": "conn-old-1", "serverId": "srv_me_gpu_lan_22", "name": "old run",
        "condaEnv": "rv", "remoteRoot": "/data", "localPort": None, "remotePort": None, "createdAt": 55,
    }
    assert profile.secrets == {}


@pytest.mark.parametrize(
    ("fields", "method"),
    [({"password": "pw"}, "password"), ({"privateKeyPath": "~/.ssh/k"}, "key"), ({"private_key": "KEY"}, "key"),
     ({"authMethod": "agent"}, "agent"), ({}, "password")],
)
def test_the_server_of_a_flat_entry_says_how_it_logs_in(fields: dict[str, Any], method: str) -> None:
    assert shapes(flat(**fields))[0]["authMethod"] == method


def test_a_flat_entry_without_port_name_or_date_gets_the_defaults() -> None:
    server, profile = shapes({"id": 7, "host": "10.0.0.5", "username": "a.b-c"})
    assert (server["id"], server["port"], server["name"], server["createdAt"]) == ("srv_a_b_c_10_0_0_5_22", 22,
                                                                                 "a.b-c@10.0.0.5:22", NOW)
    assert (profile["id"], profile["name"], profile["createdAt"]) == (7, "a.b-c@10.0.0.5", NOW)
    assert shapes(flat(port="2222"))[0]["id"] == "srv_me_gpu_lan_2222"
    assert server_id_for(("ü ser", "höst", 22)) == "srv_ü_ser_höst_22"


def test_a_flat_entry_joins_the_server_of_its_user_host_and_port() -> None:
    records = [split_item({"kind": "connection", "id": "p0", "serverId": "srv_me_gpu_lan_22"}),
               split_item(flat(password="pw-flat", privateKeyPath="~/.ssh/flat", createdAt=50)),
               split_item(flat(id="conn-old-2")),
               Record(dict(SERVER), {"password": "T-server"})]
    servers, *profiles = normalize(records, NOW)
    assert servers.entry == {**SERVER, "privateKeyPath": "~/.ssh/flat", "createdAt": 50}
    assert servers.secrets == {"password": "T-server"}
    assert [(profile.entry["id"], profile.entry["serverId"]) for profile in profiles] == [
        ("p0", "srv_me_gpu_lan_22"), ("conn-old-1", "srv_me_gpu_lan_22"), ("conn-old-2", "srv_me_gpu_lan_22")]


def test_flat_entries_of_one_server_share_it_and_the_first_secrets_win() -> None:
    records = normalize([split_item(flat(password="first")), split_item(flat(id="c2", password="second", passphrase="pp"))], NOW)
    assert [record.entry["kind"] for record in records] == ["server", "connection", "connection"]
    assert records[0].secrets == {"password": "first", "passphrase": "pp"}


def test_after_a_change_servers_come_first_then_profiles_then_the_rest() -> None:
    other = {"id": "x", "type": "s3"}
    profile = {"kind": "connection", "id": "p", "serverId": "s"}
    server = {"kind": "server", "id": "s", "host": "h", "username": "u"}
    assert shapes(other, profile, server) == [other, profile, server]
    assert [entry["id"] for entry in shapes(other, profile, server, flat())] == ["s", "srv_me_gpu_lan_22", "p",
                                                                                "conn-old-1", "x"]
    assert shapes(other, {"kind": "server", "host": "h", "username": "u"})[0]["id"] == "srv_u_h_22"
    # Renaming another entry's keys counts as a change too (as in Runicorn 0.7).
    assert [entry.get("id") for entry in shapes(profile, {"id": "y", "created_at": 1}, server)] == ["s", "p", "y"]


def test_two_servers_of_one_user_host_and_port_both_stay() -> None:
    twin = {**SERVER, "id": "srv-2"}
    assert [entry["id"] for entry in shapes(SERVER, twin, flat())] == ["srv_me_gpu_lan_22", "srv-2", "conn-old-1"]


def test_normalising_twice_changes_nothing() -> None:
    once = normalize([split_item(flat(password="pw")), split_item({"id": "x", "auth_method": "a"})], NOW)
    assert normalize(once, NOW + 1) == once


# --- over HTTP ----------------------------------------------------------------


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short directory: control socket paths must fit sun_path."""
    path = Path(tempfile.mkdtemp(prefix="rvs-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_0_7_client_reads_old_entries_and_saves_them_back_unchanged(short_tmp: Path) -> None:
    client = falcon.testing.TestClient(create_app(Settings(state_dir=short_tmp / "s"), caller_uid=callers.owner), headers=LOOPBACK)
    posted = [flat(password="pw-Old-1", created_at=10), {"id": "x", "type": "s3", "auth_method": "token"}]
    assert client.simulate_post("/api/remote/connections/saved", json=posted).status_code == 200
    listed = client.simulate_get("/api/remote/connections/saved").json["connections"]
    assert listed == [
        {"kind": "server", "id": "srv_me_gpu_lan_22", "name": "me@gpu.lan:22", "host": "gpu.lan", "port": 22,
         "username": "me", "authMethod": "password", "privateKeyPath": None, "createdAt": 10,
         "hasSavedPassword": True, "hasSavedPassphrase": False, "hasSavedPrivateKey": False},
        {"kind": "connection", "id": "conn-old-1", "serverId": "srv_me_gpu_lan_22", "name": "old run",
         "condaEnv": "rv", "remoteRoot": "/data", "localPort": None, "remotePort": None, "createdAt": 10},
        {"id": "x", "type": "s3", "authMethod": "token"},
    ]
    assert client.simulate_post("/api/remote/connections/saved", json=listed).status_code == 200
    assert client.simulate_get("/api/remote/connections/saved").json["connections"] == listed


def test_entries_rvssh_0_1_stored_verbatim_come_back_normalised(short_tmp: Path) -> None:
    state = short_tmp / "s"
    state.mkdir()
    (state / "saved_connections.json").write_text(
        '{"version": 1, "connections": [{"id": "c1", "host": "gpu", "username": "me", "created_at": 3}], "secrets": {}}'
    )
    client = falcon.testing.TestClient(create_app(Settings(state_dir=state), caller_uid=callers.owner), headers=LOOPBACK)
    listed = client.simulate_get("/api/remote/connections/saved").json["connections"]
    assert [(entry["kind"], entry["id"], entry["createdAt"]) for entry in listed] == [
        ("server", "srv_me_gpu_22", 3), ("connection", "c1", 3)]


def test_the_server_of_a_flat_entry_connects_with_its_password(short_tmp: Path) -> None:
    typed = short_tmp / "typed"
    ssh = scenario_ssh(short_tmp / "bin", "password", typed)
    settings = Settings(state_dir=short_tmp / "s", ssh_binary=str(ssh), connect_timeout=5)
    client = falcon.testing.TestClient(create_app(settings, build_services(settings), caller_uid=callers.owner), headers=LOOPBACK)
    client.simulate_post("/api/remote/connections/saved", json=[flat(port=2222, password="right")])
    result = client.simulate_post("/api/remote/connect", json={"saved_server_id": "srv_me_gpu_lan_2222"})
    assert typed.read_text().splitlines() == ["right"]
    assert "right" not in result.text
