"""Saved connections against the real sshd: secrets sealed at rest, old entry shapes, saved_server_id (#12)."""

from __future__ import annotations

import json
from pathlib import Path

import keyring

from rvssh.store.secrets import KEY_FILE, KEYRING_USER
from tests.integration.rvssh_fixtures import Rvssh
from tests.at_rest import MemoryKeyring, every_file_text


def saved_server(rvssh: Rvssh, **secrets: str) -> dict:
    bed = rvssh.bed
    return {"kind": "server", "id": "srv_test", "name": "bed", "host": bed.host, "port": bed.port,
            "username": bed.user, "authMethod": "password", **secrets}


def connect_saved(rvssh: Rvssh):
    return rvssh.client.simulate_post("/api/remote/connect", json={"saved_server_id": "srv_test", "use_agent": False})


def test_a_saved_password_is_sealed_in_the_state_dir_and_logs_in(trusted: Rvssh) -> None:
    saved = trusted.client.simulate_post("/api/remote/connections/saved", json=[saved_server(trusted, password=trusted.bed.password)])
    assert saved.status_code == 200, saved.text
    state = trusted.settings.state_dir
    assert (state / KEY_FILE).exists()
    assert trusted.bed.password not in every_file_text(state)
    result = connect_saved(trusted)
    assert result.status_code == 200, result.text
    assert trusted.bed.password not in result.text


def test_with_a_keyring_only_the_key_goes_there(trusted: Rvssh) -> None:
    backend = MemoryKeyring()
    keyring.set_keyring(backend)  # the autouse fixture puts the null keyring back
    again = trusted.restarted()
    key_path = str(trusted.bed.key_pass)
    saved = again.client.simulate_post("/api/remote/connections/saved", json=[
        {**saved_server(trusted, passphrase=trusted.bed.key_passphrase), "authMethod": "key", "privateKeyPath": key_path}])
    assert saved.status_code == 200, saved.text
    assert list(backend.entries) == [(f"rvssh:{trusted.settings.state_dir}", KEYRING_USER)]
    assert not (trusted.settings.state_dir / KEY_FILE).exists()
    assert trusted.bed.key_passphrase not in every_file_text(trusted.settings.state_dir)
    assert connect_saved(again).status_code == 200


def test_the_plaintext_secrets_of_rvssh_0_1_are_sealed_at_start_and_still_log_in(rvssh: Rvssh, state_dir: Path) -> None:
    rvssh.trust_host()
    (state_dir / "saved_connections.json").write_text(json.dumps(
        {"version": 1, "connections": [saved_server(rvssh)], "secrets": {"srv_test": ["password"]}}))
    (state_dir / "saved_secrets.json").write_text(json.dumps({"srv_test": {"password": rvssh.bed.password}}))
    again = rvssh.restarted()
    assert not (state_dir / "saved_secrets.json").exists()
    assert rvssh.bed.password not in every_file_text(state_dir)
    assert connect_saved(again).status_code == 200


def test_a_flat_entry_of_an_old_ui_connects_through_its_server(trusted: Rvssh) -> None:
    bed = trusted.bed
    flat = {"id": "conn-old", "name": "old", "host": bed.host, "port": bed.port, "username": bed.user,
            "password": bed.password, "remote_root": "/data"}
    assert trusted.client.simulate_post("/api/remote/connections/saved", json=[flat]).status_code == 200
    listed = trusted.client.simulate_get("/api/remote/connections/saved").json["connections"]
    server_id = f"srv_rvssh_test_127_0_0_1_{bed.port}"
    assert [(entry["kind"], entry["id"]) for entry in listed] == [("server", server_id), ("connection", "conn-old")]
    assert listed[0]["hasSavedPassword"] is True and listed[1]["serverId"] == server_id
    assert bed.password not in every_file_text(trusted.settings.state_dir)
    result = trusted.client.simulate_post("/api/remote/connect", json={"saved_server_id": server_id, "use_agent": False})
    assert result.status_code == 200, result.text
