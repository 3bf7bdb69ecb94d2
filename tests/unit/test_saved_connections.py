"""Saved connections: masking, keep-on-omit, clear-on-null, where secrets live (issue #5)."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any, Iterator

import falcon.testing
import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import chainer, fail, null
from keyring.errors import KeyringError, PasswordDeleteError

from rvssh.app import create_app
from rvssh.errors import NotFoundError, StoreError
from rvssh.models import SECRET_FIELDS
from rvssh.settings import Settings
from rvssh.store.saved_connections import SECRET_KEYS, SavedConnectionStore, plan_replace
from rvssh.store.secrets import FileVault, KeyringVault, choose_vault, keyring_is_usable
from tests import callers

PASSWORD = "hunter2-Zq8"
PASSPHRASE = "pp-secret-Wx3"
KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA-test-key\n-----END OPENSSH PRIVATE KEY-----"
LOOPBACK = {"Host": "127.0.0.1:23300"}


class MemoryKeyring(KeyringBackend):
    """An in-memory keyring backend, standing in for the OS keyring."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.entries.pop((service, username), None) is None:
            raise PasswordDeleteError(username)


class LockedKeyring(MemoryKeyring):
    """A keyring that refuses everything, like a locked Secret Service."""

    def set_password(self, service: str, username: str, password: str) -> None:
        raise KeyringError("locked")


def server(server_id: str = "srv_me_gpu_2222", **fields: Any) -> dict[str, Any]:
    return {"kind": "server", "id": server_id, "name": "gpu", "host": "gpu", "port": 2222, "username": "me",
            "authMethod": "password", **fields}


def profile() -> dict[str, Any]:
    return {"kind": "connection", "id": "conn_1_x", "serverId": "srv_me_gpu_2222", "remoteRoot": "/data", "localPort": 23561}


def every_file_text(state: Path) -> str:
    return "\n".join(path.read_text(errors="replace") for path in state.rglob("*") if path.is_file())


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


def file_store(state: Path, save_secrets: bool = True) -> SavedConnectionStore:
    return SavedConnectionStore(
        state / "saved_connections.json", state / "locks" / "saved.lock", FileVault(state / "saved_secrets.json"), save_secrets
    )


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    backend = MemoryKeyring()
    keyring.set_keyring(backend)  # the autouse fixture restores the previous one
    yield backend


def client_for(settings: Settings) -> falcon.testing.TestClient:
    return falcon.testing.TestClient(create_app(settings, caller_uid=callers.owner), headers=LOOPBACK)


# --- the store ------------------------------------------------------------


def test_get_masks_secrets_and_flags_what_is_saved(state: Path) -> None:
    store = file_store(state)
    store.replace([server(password=PASSWORD, passphrase=PASSPHRASE, privateKey=KEY), profile()])
    masked = store.list_masked()
    assert masked[0] == {**server(), "hasSavedPassword": True, "hasSavedPassphrase": True, "hasSavedPrivateKey": True}
    assert masked[1] == profile()
    assert PASSWORD not in json.dumps(masked) and PASSPHRASE not in json.dumps(masked)


def test_an_omitted_secret_is_kept_and_null_or_empty_clears_it(state: Path) -> None:
    store = file_store(state)
    store.replace([server(password=PASSWORD, passphrase=PASSPHRASE)])
    store.replace([server()])
    saved = store.get_server("srv_me_gpu_2222")
    assert (saved.password, saved.passphrase) == (PASSWORD, PASSPHRASE)
    store.replace([server(password=None, passphrase="")])
    saved = store.get_server("srv_me_gpu_2222")
    assert (saved.password, saved.passphrase) == (None, None)
    assert store.list_masked()[0]["hasSavedPassword"] is False


def test_client_sent_has_flags_are_ignored(state: Path) -> None:
    store = file_store(state)
    store.replace([server(hasSavedPassword=True, hasSavedPassphrase=True)])
    assert store.list_masked()[0]["hasSavedPassword"] is False
    assert "hasSavedPassword" not in (state / "saved_connections.json").read_text()


def test_secrets_never_reach_the_connections_file_and_files_are_private(state: Path) -> None:
    file_store(state).replace([server(password=PASSWORD, passphrase=PASSPHRASE), {**profile(), "password": PASSWORD}])
    text = (state / "saved_connections.json").read_text()
    assert PASSWORD not in text and PASSPHRASE not in text
    for path in (state / "saved_connections.json", state / "saved_secrets.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.stat().st_mode) == 0o700


def test_only_server_entries_with_a_usable_id_keep_secrets(state: Path) -> None:
    store = file_store(state)
    store.replace([{**profile(), "password": PASSWORD}, server("", password=PASSWORD), server("bad\nid", password=PASSWORD)])
    assert PASSWORD not in every_file_text(state)
    assert [entry.get("hasSavedPassword") for entry in store.list_masked()] == [None, False, False]


def test_a_server_leaving_the_list_loses_its_secrets(state: Path) -> None:
    store = file_store(state)
    store.replace([server(password=PASSWORD), server("other", passphrase=PASSPHRASE)])
    store.replace([server("other")])
    assert PASSWORD not in every_file_text(state)
    assert store.get_server("other").passphrase == PASSPHRASE
    store.replace([])
    assert PASSPHRASE not in every_file_text(state)


def test_no_save_secrets_drops_new_and_forgets_old_secrets(state: Path) -> None:
    file_store(state).replace([server(password=PASSWORD)])
    store = file_store(state, save_secrets=False)
    assert store.list_masked()[0]["hasSavedPassword"] is False
    assert store.get_server("srv_me_gpu_2222").password is None
    store.replace([server(passphrase=PASSPHRASE)])
    assert PASSWORD not in every_file_text(state) and PASSPHRASE not in every_file_text(state)


def test_unknown_server_and_garbage_file(state: Path) -> None:
    store = file_store(state)
    with pytest.raises(NotFoundError, match="Saved server not found: nope"):
        store.get_server("nope")
    state.mkdir(parents=True, exist_ok=True)
    (state / "saved_connections.json").write_text("{not json")
    assert store.list_masked() == []
    (state / "saved_connections.json").write_text('{"connections": [1, {"a": 1}], "secrets": {"x": "y"}}')
    assert store.list_masked() == [{"a": 1}]


def test_saved_fields_are_read_leniently(state: Path) -> None:
    store = file_store(state)
    store.replace([server(port="2200", privateKeyPath="~/.ssh/id_ed25519", username=None)])
    saved = store.get_server("srv_me_gpu_2222")
    assert (saved.port, saved.private_key_path, saved.username) == (2200, "~/.ssh/id_ed25519", None)
    store.replace([server(port=True)])
    assert store.get_server("srv_me_gpu_2222").port is None


def test_plan_replace_is_pure() -> None:
    public, index, puts, deletes = plan_replace(
        {"a": ["password"], "gone": ["passphrase"]},
        [server("a", passphrase=PASSPHRASE), server("b", password=PASSWORD, passphrase=None)],
        save_secrets=True,
    )
    assert [item["id"] for item in public] == ["a", "b"] and "passphrase" not in public[0]
    assert index == {"a": ["passphrase", "password"], "b": ["password"]}
    assert puts == {("a", "passphrase"): PASSPHRASE, ("b", "password"): PASSWORD}
    assert deletes == [("gone", "passphrase")]


def test_the_request_model_and_the_store_agree_on_secret_keys() -> None:
    assert set(SECRET_KEYS) == SECRET_FIELDS


# --- where secrets live ---------------------------------------------------


def test_secrets_go_to_a_usable_keyring(state: Path, memory_keyring: MemoryKeyring) -> None:
    client = client_for(Settings(state_dir=state))
    assert client.simulate_post("/api/remote/connections/saved", json=[server(password=PASSWORD)]).status_code == 200
    assert memory_keyring.entries == {(f"rvssh:{state}", "password/srv_me_gpu_2222"): PASSWORD}
    assert not (state / "saved_secrets.json").exists()
    assert PASSWORD not in every_file_text(state)
    assert client.simulate_get("/api/remote/connections/saved").json["connections"][0]["hasSavedPassword"] is True
    client.simulate_post("/api/remote/connections/saved", json=[server(password=None)])
    assert memory_keyring.entries == {}


@pytest.mark.parametrize("backend", [fail.Keyring(), null.Keyring()], ids=["fail", "null"])
def test_no_usable_keyring_means_the_private_file(state: Path, backend: KeyringBackend) -> None:
    vault = choose_vault(state, backend)
    assert isinstance(vault, FileVault)
    assert isinstance(choose_vault(state, MemoryKeyring()), KeyringVault)


def test_a_chainer_of_nothing_is_not_a_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chainer.ChainerBackend, "backends", [])
    assert keyring_is_usable(chainer.ChainerBackend()) is False
    monkeypatch.setattr(chainer.ChainerBackend, "backends", [MemoryKeyring()])
    assert keyring_is_usable(chainer.ChainerBackend()) is True


def test_a_refusing_keyring_is_a_500_with_advice(state: Path) -> None:
    keyring.set_keyring(LockedKeyring())
    result = client_for(Settings(state_dir=state)).simulate_post("/api/remote/connections/saved", json=[server(password=PASSWORD)])
    assert result.status_code == 500
    assert "--no-save-secrets" in result.json["detail"] and PASSWORD not in result.text
    with pytest.raises(StoreError):
        KeyringVault(LockedKeyring(), "s").put("a", "password", "x")


# --- over HTTP --------------------------------------------------------------


def test_the_runicorn_ui_flow(state: Path) -> None:
    client = client_for(Settings(state_dir=state))
    assert client.simulate_get("/api/remote/connections/saved").json == {"ok": True, "connections": []}
    first = [server(hasSavedPassword=False, hasSavedPrivateKey=False, hasSavedPassphrase=False, password=PASSWORD)]
    result = client.simulate_post("/api/remote/connections/saved", json=first)
    assert result.json == {"ok": True, "message": "Connections saved successfully"}
    result = client.simulate_post("/api/remote/connections/saved", json=[server(), profile()])
    listed = client.simulate_get("/api/remote/connections/saved")
    assert listed.json["connections"][0]["hasSavedPassword"] is True
    assert listed.json["connections"][1] == profile()
    assert PASSWORD not in listed.text
    assert client.simulate_post("/api/remote/connections/saved", json=[]).status_code == 200
    assert client.simulate_get("/api/remote/connections/saved").json["connections"] == []


def test_no_save_secrets_over_http(state: Path) -> None:
    client = client_for(Settings(state_dir=state, save_secrets=False))
    client.simulate_post("/api/remote/connections/saved", json=[server(password=PASSWORD, passphrase=PASSPHRASE)])
    entry = client.simulate_get("/api/remote/connections/saved").json["connections"][0]
    assert (entry["hasSavedPassword"], entry["hasSavedPassphrase"], entry["hasSavedPrivateKey"]) == (False, False, False)
    assert PASSWORD not in every_file_text(state)


@pytest.mark.parametrize(
    "items",
    [
        [{"kind": None, "id": None, "host": None, "password": None}],
        [server(password=None, passphrase=None, private_key=None)],
        [{}, {"nested": {"password": "not a secret field"}, "list": [1, None]}],
        [server(12345), server(["x"]), {"kind": "server"}],
    ],
    ids=["nulls", "null-secrets", "odd-shapes", "odd-ids"],
)
def test_any_object_item_is_accepted(state: Path, items: list[Any]) -> None:
    client = client_for(Settings(state_dir=state))
    assert client.simulate_post("/api/remote/connections/saved", json=items).status_code == 200
    assert client.simulate_get("/api/remote/connections/saved").status_code == 200


def test_an_object_body_is_a_list_type_422(state: Path) -> None:
    result = client_for(Settings(state_dir=state)).simulate_post("/api/remote/connections/saved", json={"a": 1})
    assert result.status_code == 422
    assert result.json["detail"] == [{"type": "list_type", "loc": ["body"], "msg": "Input should be a valid list", "input": {"a": 1}}]


def test_a_non_object_item_and_a_non_string_secret_are_422_without_echo(state: Path) -> None:
    client = client_for(Settings(state_dir=state))
    result = client.simulate_post("/api/remote/connections/saved", json=[server(), "text", server(password=12345)])
    assert result.status_code == 422
    assert [(item["type"], item["loc"]) for item in result.json["detail"]] == [
        ("dict_type", ["body", 1]),
        ("string_type", ["body", 2, "password"]),
    ]
    assert result.json["detail"][1]["input"] is None and "12345" not in result.text
