"""The host-key trust flow: 409 → accept → connect, for unknown and changed keys."""

from __future__ import annotations

import subprocess

import pytest

from tests.integration.rvssh_fixtures import Rvssh, accept


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
    accept(rvssh, host_key)
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


def accept_key(rvssh: Rvssh, public_key: str) -> None:
    """Trust one of the bed's current host keys through known-hosts/accept."""
    bed = rvssh.bed
    body = {"host": bed.host, "port": bed.port, "key_type": public_key.split()[0], "public_key": public_key,
            "fingerprint_sha256": keygen_fingerprint(public_key)}
    result = rvssh.client.simulate_post("/api/remote/known-hosts/accept", json=body)
    assert result.status_code == 200, result.text


def assert_changed_with_the_old_key_of_the_presented_type(rvssh: Rvssh, old: dict[str, str], pinned: tuple[str, ...]) -> dict:
    result = rvssh.connect()
    assert result.status_code == 409, result.text
    host_key = result.json["detail"]["host_key"]
    assert host_key["reason"] == "changed"
    assert host_key["key_type"] in pinned
    assert host_key["public_key"] == rvssh.bed.host_public_keys()[host_key["key_type"]]
    expected = old[host_key["key_type"]]
    assert host_key["expected_public_key"] == expected
    assert host_key["expected_fingerprint_sha256"] == keygen_fingerprint(expected)
    assert host_key["fingerprint_sha256"] != host_key["expected_fingerprint_sha256"]
    return host_key


@pytest.mark.parametrize(
    "pinned",
    [("ssh-ed25519",), ("ssh-rsa",), ("ssh-ed25519", "ssh-rsa"), ("ssh-rsa", "ssh-ed25519")],
    ids=["ed25519", "rsa", "ed25519-then-rsa", "rsa-then-ed25519"],
)
def test_changed_host_key_expects_the_old_key_of_the_presented_type(rvssh: Rvssh, pinned: tuple[str, ...]) -> None:
    old = rvssh.bed.host_public_keys()
    for key_type in pinned:
        accept_key(rvssh, old[key_type])
    assert rvssh.connect().status_code == 200
    rvssh.services.masters.exit(rvssh.target)
    rvssh.bed.restart(new_host_keys=True)
    try:
        host_key = assert_changed_with_the_old_key_of_the_presented_type(rvssh, old, pinned)
        accept(rvssh, host_key)
        assert rvssh.connect().status_code == 200
    finally:
        rvssh.services.masters.exit(rvssh.target)


def test_changed_host_key_expects_the_old_key_from_a_hashed_user_known_hosts(rvssh: Rvssh) -> None:
    bed = rvssh.bed
    old = bed.host_public_keys()
    bed.user_known_hosts.write_text(bed.known_hosts_text())
    subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(bed.user_known_hosts)], check=True, capture_output=True)
    bed.user_known_hosts.with_name(bed.user_known_hosts.name + ".old").unlink()
    assert bed.host not in bed.user_known_hosts.read_text()
    assert rvssh.connect().status_code == 200
    rvssh.services.masters.exit(rvssh.target)
    bed.restart(new_host_keys=True)
    try:
        assert_changed_with_the_old_key_of_the_presented_type(rvssh, old, tuple(old))
    finally:
        rvssh.services.masters.exit(rvssh.target)


def test_hosts_in_the_users_known_hosts_need_no_409(rvssh: Rvssh) -> None:
    rvssh.bed.user_known_hosts.write_text(rvssh.bed.known_hosts_text())
    assert rvssh.connect().status_code == 200
    assert not rvssh.settings.known_hosts_file.exists() or rvssh.settings.known_hosts_file.read_text() == ""
