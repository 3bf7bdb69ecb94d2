"""Saved connections: masking, keep-on-omit, clear-on-null, secrets sealed at rest (issues #5, #12)."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any, Iterator

import falcon.testing
import keyring
import pytest
from cryptography.fernet import Fernet
from keyring.backend import KeyringBackend
from keyring.backends import chainer, fail, null
from keyring.errors import KeyringError

from rvssh.app import create_app
from rvssh.errors import NotFoundError, StoreError
from rvssh.models import SECRET_FIELDS
from rvssh.services.container import open_saved_connections
from rvssh.settings import Settings
from rvssh.store.saved_connections import SavedConnectionStore, plan_replace, seal_posted
from rvssh.store.saved_entries import HAS_FLAGS, SECRET_KEYS, Record, split_item
from rvssh.store.secrets import (
    KEY_FILE,
    KEYRING_USER,
    FileKey,
    KeyringKey,
    LegacySecrets,
    SecretBox,
    choose_box,
    keyring_is_usable,
)
from tests import callers
from tests.at_rest import MemoryKeyring, every_file_text

PASSWORD = "hunter2-Zq8"
PASSPHRASE = "pp-secret-Wx3"
KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA-test-key\n-----END OPENSSH PRIVATE KEY-----"
LOOPBACK = {"Host": "127.0.0.1:23300"}


class LockedKeyring(MemoryKeyring):
    """A keyring that refuses everything, like a locked Secret Service."""

    def get_password(self, service: str, username: str) -> str | None:
        raise KeyringError("locked")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise KeyringError("locked")


def server(server_id: str = "srv_me_gpu_2222", **fields: Any) -> dict[str, Any]:
    return {"kind": "server", "id": server_id, "name": "gpu", "host": "gpu", "port": 2222, "username": "me",
            "authMethod": "password", **fields}


def profile(**fields: Any) -> dict[str, Any]:
    return {"kind": "connection", "id": "conn_1_x", "serverId": "srv_me_gpu_2222", "remoteRoot": "/data",
            "localPort": 23561, **fields}


# Every entry shape a client may save, from the Runicorn UI's to anything else.
SHAPES: dict[str, dict[str, Any]] = {
    "server": server(),
    "connection": profile(),
    "legacy-flat": {"id": "c1", "name": "old", "host": "gpu", "port": 22, "username": "me"},
    "legacy-snake-case": {"id": "c2", "host": "gpu", "username": "me", "private_key_path": "~/.ssh/k", "created_at": 5},
    "other-with-id": {"id": "x1", "type": "s3", "bucket": "runs"},
    "other-without-id": {"type": "webhook", "url": "https://example.invalid/hook"},
    "server-without-id": server(""),
    "server-with-unusable-id": server("bad\nid"),
}
# A flat entry's secrets go to the server made from it; those a server has no use for are dropped.
DROPPED_WITH_FLAT_ENTRY = {key for key, slot in SECRET_KEYS.items() if slot not in HAS_FLAGS}


def secret_for(shape: str, key: str) -> str:
    return f"s3cr3t-{shape}-{key}-Kq9"


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


def file_store(state: Path, save_secrets: bool = True) -> SavedConnectionStore:
    return SavedConnectionStore(
        state / "saved_connections.json",
        state / "locks" / "saved.lock",
        SecretBox(FileKey(state / KEY_FILE)),
        LegacySecrets(state, null.Keyring()),
        save_secrets,
    )


def stored_records(state: Path) -> list[dict[str, Any]]:
    return json.loads((state / "saved_connections.json").read_text())["entries"]


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
    saved = store.get_server("srv_me_gpu_2222")
    assert revealed(saved.password, saved.passphrase, saved.private_key) == (PASSWORD, PASSPHRASE, KEY)


def test_an_omitted_secret_is_kept_and_null_or_empty_clears_it(state: Path) -> None:
    store = file_store(state)
    store.replace([server(password=PASSWORD, passphrase=PASSPHRASE)])
    store.replace([server()])
    saved = store.get_server("srv_me_gpu_2222")
    assert revealed(saved.password, saved.passphrase) == (PASSWORD, PASSPHRASE)
    store.replace([server(password=None, passphrase="")])
    saved = store.get_server("srv_me_gpu_2222")
    assert revealed(saved.password, saved.passphrase) == (None, None)
    assert store.list_masked()[0]["hasSavedPassword"] is False


def test_client_sent_has_flags_are_ignored(state: Path) -> None:
    store = file_store(state)
    store.replace([server(hasSavedPassword=True, hasSavedPassphrase=True)])
    assert store.list_masked()[0]["hasSavedPassword"] is False
    assert "hasSavedPassword" not in (state / "saved_connections.json").read_text()


@pytest.mark.parametrize("key", sorted(SECRET_KEYS))
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_no_secret_of_any_field_in_any_entry_shape_is_in_a_file_as_plain_text(state: Path, shape: str, key: str) -> None:
    store = file_store(state)
    secret = secret_for(shape, key)
    store.replace([{**SHAPES[shape], key: secret}])
    assert secret not in every_file_text(state)
    assert secret not in json.dumps(store.list_masked())
    # It is kept, sealed, and opens with the key.
    dropped = shape.startswith("legacy") and key in DROPPED_WITH_FLAT_ENTRY
    tokens = [token for record in stored_records(state) for token in record.get("sealed", {}).values()]
    assert len(tokens) == (0 if dropped else 1)
    fernet = Fernet((state / KEY_FILE).read_bytes().strip()) if tokens else None
    assert [fernet.decrypt(token.encode()).decode() for token in tokens] == ([] if dropped else [secret])
    # A later save without the field keeps it, for an entry with a usable id.
    store.replace([SHAPES[shape]])
    kept = [token for record in stored_records(state) for token in record.get("sealed", {}).values()]
    assert bool(kept) is (not dropped and shape not in ("other-without-id", "server-with-unusable-id")), kept


def test_files_are_private_and_the_key_is_made_on_first_use_only(state: Path) -> None:
    store = file_store(state)
    store.replace([server(), profile()])
    assert not (state / KEY_FILE).exists()
    store.replace([server(password=PASSWORD)])
    for path in (state / "saved_connections.json", state / KEY_FILE):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    key = (state / KEY_FILE).read_bytes()
    store.replace([server(password="another-one")])
    assert (state / KEY_FILE).read_bytes() == key


def test_a_lost_key_loses_the_secrets_but_not_the_entries(state: Path) -> None:
    store = file_store(state)
    store.replace([server(password=PASSWORD)])
    (state / KEY_FILE).unlink()
    assert store.get_server("srv_me_gpu_2222").password is None
    store.replace([server(password=PASSPHRASE)])
    (state / KEY_FILE).write_text(Fernet.generate_key().decode())
    assert store.get_server("srv_me_gpu_2222").password is None
    (state / KEY_FILE).write_text("not a key")
    with pytest.raises(StoreError, match="damaged"):
        store.replace([server(password=PASSWORD)])


def test_a_server_leaving_the_list_loses_its_secrets(state: Path) -> None:
    store = file_store(state)
    store.replace([server(password=PASSWORD), server("other", passphrase=PASSPHRASE)])
    store.replace([server("other")])
    assert [list(record.get("sealed", {})) for record in stored_records(state)] == [["passphrase"]]
    assert revealed(store.get_server("other").passphrase) == (PASSPHRASE,)
    store.replace([])
    assert stored_records(state) == []


def test_no_save_secrets_drops_new_and_forgets_old_secrets(state: Path) -> None:
    file_store(state).replace([server(password=PASSWORD)])
    store = file_store(state, save_secrets=False)
    assert store.list_masked()[0]["hasSavedPassword"] is False
    assert store.get_server("srv_me_gpu_2222").password is None
    store.replace([server(passphrase=PASSPHRASE)])
    assert "sealed" not in stored_records(state)[0]


def test_unknown_server_and_garbage_file(state: Path) -> None:
    store = file_store(state)
    with pytest.raises(NotFoundError, match="Saved server not found: nope"):
        store.get_server("nope")
    state.mkdir(parents=True, exist_ok=True)
    (state / "saved_connections.json").write_text("{not json")
    assert store.list_masked() == []
    (state / "saved_connections.json").write_text('{"version": 2, "entries": [1, {"entry": {"a": 1}, "sealed": 3}]}')
    assert store.list_masked() == [{"a": 1}]


def test_saved_fields_are_read_leniently(state: Path) -> None:
    store = file_store(state)
    store.replace([server(port="2200", privateKeyPath="~/.ssh/id_ed25519", username=None)])
    saved = store.get_server("srv_me_gpu_2222")
    assert (saved.port, saved.private_key_path, saved.username) == (2200, "~/.ssh/id_ed25519", None)
    store.replace([server(port=True)])
    assert store.get_server("srv_me_gpu_2222").port is None


def revealed(*secrets: Any) -> tuple[str | None, ...]:
    """Return what SecretStr values hold (None stays None)."""
    return tuple(None if secret is None else secret.get_secret_value() for secret in secrets)


def test_plan_replace_is_pure() -> None:
    old = [Record(server("a"), {"password": "T-a-pw"}), Record(server("gone"), {"passphrase": "T-gone"})]
    posted = [split_item(server("a", passphrase=PASSPHRASE)), split_item(server("b", password=PASSWORD, passphrase=None))]
    sealed = seal_posted(posted, True, lambda value: f"sealed({value})")
    planned = plan_replace(old, sealed, save_secrets=True)
    assert [record.entry["id"] for record in planned] == ["a", "b"] and "passphrase" not in planned[0].entry
    assert planned[0].secrets == {"password": "T-a-pw", "passphrase": f"sealed({PASSPHRASE})"}
    assert planned[1].secrets == {"password": f"sealed({PASSWORD})"}
    assert [record.secrets for record in plan_replace(old, seal_posted(posted, False, str.upper), False)] == [{}, {}]


def test_the_request_model_and_the_store_agree_on_secret_keys() -> None:
    assert set(SECRET_KEYS) == SECRET_FIELDS


# --- where the key lives --------------------------------------------------


@pytest.mark.parametrize("key", sorted(SECRET_KEYS))
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_with_a_keyring_it_holds_the_key_and_no_file_holds_a_secret(
    state: Path, memory_keyring: MemoryKeyring, shape: str, key: str
) -> None:
    client = client_for(Settings(state_dir=state))
    secret = secret_for(shape, key)
    assert client.simulate_post("/api/remote/connections/saved", json=[{**SHAPES[shape], key: secret}]).status_code == 200
    dropped = shape.startswith("legacy") and key in DROPPED_WITH_FLAT_ENTRY
    assert list(memory_keyring.entries) == ([] if dropped else [(f"rvssh:{state}", KEYRING_USER)])
    assert secret not in memory_keyring.entries.values()
    assert not (state / KEY_FILE).exists()
    assert secret not in every_file_text(state)
    assert secret not in client.simulate_get("/api/remote/connections/saved").text


def test_the_keyring_key_opens_what_it_sealed(state: Path, memory_keyring: MemoryKeyring) -> None:
    client = client_for(Settings(state_dir=state))
    client.simulate_post("/api/remote/connections/saved", json=[server(password=PASSWORD)])
    assert client.simulate_get("/api/remote/connections/saved").json["connections"][0]["hasSavedPassword"] is True
    store = open_saved_connections(state, save_secrets=True)
    assert revealed(store.get_server("srv_me_gpu_2222").password) == (PASSWORD,)


@pytest.mark.parametrize("backend", [fail.Keyring(), null.Keyring()], ids=["fail", "null"])
def test_no_usable_keyring_means_the_key_file(state: Path, backend: KeyringBackend) -> None:
    box = choose_box(state, backend)
    token = box.seal(PASSWORD)
    assert (state / KEY_FILE).exists() and box.open(token) == PASSWORD
    memory = MemoryKeyring()
    choose_box(state / "other", memory).seal(PASSWORD)
    assert list(memory.entries) == [(f"rvssh:{state / 'other'}", KEYRING_USER)]


def test_a_chainer_of_nothing_is_not_a_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chainer.ChainerBackend, "backends", [])
    assert keyring_is_usable(chainer.ChainerBackend()) is False
    monkeypatch.setattr(chainer.ChainerBackend, "backends", [MemoryKeyring()])
    assert keyring_is_usable(chainer.ChainerBackend()) is True


def test_a_refusing_keyring_is_a_500_with_advice(state: Path) -> None:
    keyring.set_keyring(LockedKeyring())
    result = client_for(Settings(state_dir=state)).simulate_post("/api/remote/connections/saved", json=[server(password=PASSWORD)])
    assert result.status_code == 500
    assert result.json["detail"].startswith("Failed to save connections: Failed to use the OS keyring")
    assert "--no-save-secrets" in result.json["detail"] and PASSWORD not in result.text
    with pytest.raises(StoreError):
        KeyringKey(LockedKeyring(), "s").get_or_create()


# --- secrets saved by rvssh 0.1 ------------------------------------------------


def write_version_1(state: Path, entries: list[dict[str, Any]], index: dict[str, list[str]]) -> None:
    state.mkdir(parents=True, exist_ok=True)
    (state / "saved_connections.json").write_text(json.dumps({"version": 1, "connections": entries, "secrets": index}))


def test_a_plaintext_secrets_file_is_sealed_once_and_removed(state: Path) -> None:
    write_version_1(state, [server(), {"id": "x1", "token": "tok-Plain-1"}], {"srv_me_gpu_2222": ["password", "passphrase"]})
    (state / "saved_secrets.json").write_text(json.dumps({"srv_me_gpu_2222": {"password": PASSWORD, "passphrase": PASSPHRASE}}))
    client = client_for(Settings(state_dir=state))
    assert not (state / "saved_secrets.json").exists()
    text = every_file_text(state)
    assert PASSWORD not in text and PASSPHRASE not in text and "tok-Plain-1" not in text
    assert client.simulate_get("/api/remote/connections/saved").json["connections"] == [
        {**server(), "hasSavedPassword": True, "hasSavedPassphrase": True, "hasSavedPrivateKey": False},
        {"id": "x1"},
    ]
    saved = file_store(state).get_server("srv_me_gpu_2222")
    assert revealed(saved.password, saved.passphrase) == (PASSWORD, PASSPHRASE)


def test_keyring_secrets_of_rvssh_0_1_are_sealed_and_their_entries_removed(state: Path, memory_keyring: MemoryKeyring) -> None:
    write_version_1(state, [server()], {"srv_me_gpu_2222": ["password"]})
    memory_keyring.entries[(f"rvssh:{state}", "password/srv_me_gpu_2222")] = PASSWORD
    store = open_saved_connections(state, save_secrets=True)
    assert list(memory_keyring.entries) == [(f"rvssh:{state}", KEYRING_USER)]
    assert revealed(store.get_server("srv_me_gpu_2222").password) == (PASSWORD,)


def test_no_save_secrets_removes_old_plaintext_without_sealing_it(state: Path) -> None:
    write_version_1(state, [server()], {"srv_me_gpu_2222": ["password"]})
    (state / "saved_secrets.json").write_text(json.dumps({"srv_me_gpu_2222": {"password": PASSWORD}}))
    open_saved_connections(state, save_secrets=False)
    assert PASSWORD not in every_file_text(state)
    assert not (state / KEY_FILE).exists()
    assert file_store(state).list_masked() == [
        {**server(), "hasSavedPassword": False, "hasSavedPassphrase": False, "hasSavedPrivateKey": False}
    ]


def test_a_plaintext_file_left_behind_by_an_interrupted_upgrade_is_removed(state: Path) -> None:
    store = file_store(state)
    store.replace([server(password=PASSWORD)])
    (state / "saved_secrets.json").write_text(json.dumps({"srv_me_gpu_2222": {"password": PASSWORD}}))
    store.upgrade()
    assert not (state / "saved_secrets.json").exists()
    assert revealed(store.get_server("srv_me_gpu_2222").password) == (PASSWORD,)


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
        [server(password=None, passphrase=None, private_key=None, token=None)],
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
    result = client.simulate_post("/api/remote/connections/saved", json=[server(), "text", server(password=12345), {"api_key": 67890}])
    assert result.status_code == 422
    assert [(item["type"], item["loc"]) for item in result.json["detail"]] == [
        ("dict_type", ["body", 1]),
        ("string_type", ["body", 2, "password"]),
        ("string_type", ["body", 3, "api_key"]),
    ]
    assert result.json["detail"][1]["input"] is None and "12345" not in result.text and "67890" not in result.text
