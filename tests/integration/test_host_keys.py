"""The host-key trust flow: 409 → accept → connect, for unknown and changed keys."""

from __future__ import annotations

import subprocess

from tests.integration.rvssh_fixtures import Rvssh

ACCEPT_FIELDS = ("host", "port", "key_type", "public_key", "fingerprint_sha256")


def keygen_fingerprint(public_key: str) -> str:
    output = subprocess.run(["ssh-keygen", "-lf", "-"], input=public_key + "\n", capture_output=True, text=True)
    return output.stdout.split()[1]


def test_unknown_host_is_409_with_the_presented_key(rvssh: Rvssh) -> None:
    result = rvssh.connect()
    assert result.status_code == 409, result.text
    detail = result.json["detail"]
    assert detail["code"] == "HOST_KEY_CONFIRMATION_REQUIRED"
    assert detail["message"] == "Host key verification failed"
    host_key = detail["host_key"]
    bed = rvssh.bed
    presented = bed.host_public_keys()[host_key["key_type"]]
    assert host_key == {
        "host": bed.host,
        "port": bed.port,
        "known_hosts_host": f"[{bed.host}]:{bed.port}",
        "key_type": host_key["key_type"],
        "fingerprint_sha256": keygen_fingerprint(presented),
        "public_key": presented,
        "reason": "unknown",
    }


def test_accept_then_connect_then_list_and_remove(rvssh: Rvssh) -> None:
    host_key = rvssh.connect().json["detail"]["host_key"]
    accepted = rvssh.client.simulate_post(
        "/api/remote/known-hosts/accept", json={name: host_key[name] for name in ACCEPT_FIELDS}
    )
    assert accepted.json == {"ok": True}
    assert rvssh.connect().status_code == 200
    entries = rvssh.client.simulate_get("/api/remote/known-hosts/list").json["entries"]
    assert [(entry["known_hosts_host"], entry["key_type"], entry["fingerprint_sha256"]) for entry in entries] == [
        (host_key["known_hosts_host"], host_key["key_type"], host_key["fingerprint_sha256"])
    ]
    removed = rvssh.client.simulate_post(
        "/api/remote/known-hosts/remove",
        json={"host": host_key["host"], "port": host_key["port"], "key_type": host_key["key_type"]},
    )
    assert removed.json == {"ok": True, "changed": True}
    assert rvssh.client.simulate_get("/api/remote/known-hosts/list").json == {"entries": []}


def test_changed_host_key_is_409_changed_with_the_expected_key(rvssh: Rvssh) -> None:
    rvssh.trust_host()
    old = rvssh.client.simulate_get("/api/remote/known-hosts/list").json["entries"][0]
    rvssh.bed.restart(new_host_keys=True)
    try:
        result = rvssh.connect()
        assert result.status_code == 409, result.text
        host_key = result.json["detail"]["host_key"]
        assert host_key["reason"] == "changed"
        assert host_key["expected_public_key"] == f"{old['key_type']} {old['key_base64']}"
        assert host_key["expected_fingerprint_sha256"] == old["fingerprint_sha256"]
        assert host_key["public_key"] == rvssh.bed.host_public_keys()[host_key["key_type"]]
        assert host_key["fingerprint_sha256"] != old["fingerprint_sha256"]
        accepted = rvssh.client.simulate_post(
            "/api/remote/known-hosts/accept", json={name: host_key[name] for name in ACCEPT_FIELDS}
        )
        assert accepted.status_code == 200
        assert rvssh.connect().status_code == 200
    finally:
        rvssh.services.masters.exit(rvssh.target)


def test_hosts_in_the_users_known_hosts_need_no_409(rvssh: Rvssh) -> None:
    rvssh.bed.user_known_hosts.write_text(rvssh.bed.known_hosts_text())
    assert rvssh.connect().status_code == 200
    assert not rvssh.settings.known_hosts_file.exists() or rvssh.settings.known_hosts_file.read_text() == ""
