"""The expected key of a changed host: the stored key of the presented type, found as OpenSSH finds it (#12).

These tests run the real ``ssh-keygen`` on files they write; no sshd.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from rvssh.ssh.errors import HostKey
from rvssh.ssh.fingerprint import fingerprint_with_ssh_keygen
from rvssh.ssh.hostkeys import build_host_key_error, build_refused_hop_error
from rvssh.ssh.stored_keys import (
    build_find_argv,
    expand_tilde,
    find_stored_key,
    known_hosts_name,
    parse_find_output,
)

pytestmark = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen")

FIELD = "[127.0.0.1]:2222"
CHANGED_OUTPUT = (
    "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\r\n"
    "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\r\n"
    "Offending RSA key in /nonexistent/known_hosts:2\r\n"
    "Host key for [127.0.0.1]:2222 has changed and you have requested strict checking.\r\n"
    "Host key verification failed.\r\n"
)


def generate(directory: Path, name: str, kind: str) -> HostKey:
    path = directory / name
    bits = ["-b", "2048"] if kind == "rsa" else []
    subprocess.run(["ssh-keygen", "-q", "-t", kind, *bits, "-N", "", "-C", "", "-f", str(path)], check=True)
    key_type, key_base64 = path.with_name(name + ".pub").read_text().split()[:2]
    return HostKey(key_type, key_base64, fingerprint_with_ssh_keygen(f"{key_type} {key_base64}"))


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, HostKey]:
    directory = tmp_path_factory.mktemp("keys")
    kinds = {"ed25519": "ed25519", "ed255192": "ed25519", "rsa": "rsa", "rsa2": "rsa"}
    return {name: generate(directory, name, kind) for name, kind in kinds.items()}


def write(path: Path, *lines: str) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def hash_file(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(path)], check=True, capture_output=True)
    path.with_name(path.name + ".old").unlink()
    assert "127.0.0.1" not in path.read_text()
    return path


def find(files: list[Path], key_type: str, host: str = FIELD, port: int = 2222) -> HostKey | None:
    return find_stored_key(host, port, key_type, files=files)


@pytest.mark.parametrize("order", ["ed25519 first", "rsa first"])
def test_every_type_pinned_in_either_order_gives_the_key_of_the_asked_type(
    tmp_path: Path, keys: dict[str, HostKey], order: str
) -> None:
    lines = [f"{FIELD} {keys['ed25519'].public_key}", f"{FIELD} {keys['rsa'].public_key}"]
    managed = write(tmp_path / "known_hosts", *(lines if order == "ed25519 first" else lines[::-1]))
    assert find([managed], "ssh-ed25519") == keys["ed25519"]
    assert find([managed], "ssh-rsa") == keys["rsa"]
    assert find([managed], "ecdsa-sha2-nistp256") is None


def test_one_type_pinned_gives_no_key_of_another_type(tmp_path: Path, keys: dict[str, HostKey]) -> None:
    managed = write(tmp_path / "known_hosts", f"{FIELD} {keys['rsa'].public_key}")
    assert find([managed], "ssh-rsa") == keys["rsa"]
    assert find([managed], "ssh-ed25519") is None


def test_hashed_entries_are_found_like_plain_ones(tmp_path: Path, keys: dict[str, HostKey]) -> None:
    user = hash_file(write(tmp_path / "user", f"{FIELD} {keys['rsa'].public_key}", f"{FIELD} {keys['ed25519'].public_key}",
                           f"other {keys['ed255192'].public_key}"))
    assert find([user], "ssh-ed25519") == keys["ed25519"]
    assert find([user], "ssh-rsa") == keys["rsa"]
    assert find([user], "ssh-ed25519", host="[127.0.0.1]:2223") is None


def test_the_managed_file_comes_first_then_the_users_files_in_order(tmp_path: Path, keys: dict[str, HostKey]) -> None:
    managed = write(tmp_path / "known_hosts", f"{FIELD} {keys['rsa'].public_key}")
    first = write(tmp_path / "first", f"{FIELD} {keys['ed25519'].public_key}", f"{FIELD} {keys['rsa2'].public_key}")
    second = write(tmp_path / "second", f"{FIELD} {keys['ed255192'].public_key}")
    files = [managed, tmp_path / "missing", first, second]
    assert find(files, "ssh-rsa") == keys["rsa"]
    assert find(files, "ssh-ed25519") == keys["ed25519"]
    assert find([managed, second], "ssh-ed25519") == keys["ed255192"]


def test_marker_lines_and_other_hosts_are_not_a_stored_key(tmp_path: Path, keys: dict[str, HostKey]) -> None:
    managed = write(
        tmp_path / "known_hosts",
        f"@revoked {FIELD} {keys['ed255192'].public_key}",
        f"@cert-authority * {keys['ed255192'].public_key}",
        f"[127.0.0.1]:2223 {keys['ed255192'].public_key}",
        "# a comment",
        f"127.0.0.1 {keys['ed255192'].public_key}",
        f"{FIELD} {keys['ed25519'].public_key}",
    )
    assert find([managed], "ssh-ed25519") == keys["ed25519"]


def test_port_22_names_and_patterns_match_as_in_openssh(tmp_path: Path, keys: dict[str, HostKey]) -> None:
    managed = write(tmp_path / "known_hosts", f"gpu,10.0.0.5 {keys['ed25519'].public_key}",
                    f"*.example {keys['rsa'].public_key}", f"[gpu]:2200 {keys['ed255192'].public_key}")
    assert find([managed], "ssh-ed25519", host="10.0.0.5", port=22) == keys["ed25519"]
    assert find([managed], "ssh-ed25519", host="gpu", port=2200) == keys["ed255192"]
    assert find([managed], "ssh-rsa", host="a.example", port=22) == keys["rsa"]


def test_no_file_or_no_ssh_keygen_finds_nothing(tmp_path: Path, keys: dict[str, HostKey]) -> None:
    managed = write(tmp_path / "known_hosts", f"{FIELD} {keys['ed25519'].public_key}")
    assert find([tmp_path / "missing"], "ssh-ed25519") is None
    assert find_stored_key(FIELD, 2222, "ssh-ed25519", files=[managed], ssh_keygen=str(tmp_path / "nope")) is None


def test_pure_helpers() -> None:
    assert known_hosts_name("h", 22) == "h"
    assert known_hosts_name("h", 2222) == "[h]:2222"
    assert known_hosts_name("[h]:2222", 2222) == "[h]:2222"
    assert build_find_argv("ssh-keygen", "-oProxyCommand=x", Path("/k")) == ["ssh-keygen", "-F", "-oProxyCommand=x", "-f", "/k"]
    assert parse_find_output("# Host h found: line 1\nh ssh-ed25519 !!!\n", "ssh-ed25519") is None
    assert expand_tilde("/abs/known_hosts") == Path("/abs/known_hosts")
    assert expand_tilde("~/.ssh/known_hosts").is_absolute()


def test_the_409_expects_the_presented_type_not_the_offending_line(tmp_path: Path, keys: dict[str, HostKey]) -> None:
    capture = write(tmp_path / "capture", f"{FIELD} 2222 NONE x", f"{FIELD} 2222 {keys['ed255192'].public_key}")
    asked: list[tuple[str, int, str]] = []

    def find_stored(host: str, port: int, key_type: str) -> HostKey | None:
        asked.append((host, port, key_type))
        return keys["ed25519"] if key_type == "ssh-ed25519" else keys["rsa"]

    error = build_host_key_error(CHANGED_OUTPUT, capture, fingerprint_with_ssh_keygen, find_stored)
    assert error is not None and error.reason == "changed"
    assert asked == [(FIELD, 2222, "ssh-ed25519")]
    assert error.presented.public_key == keys["ed255192"].public_key
    assert error.expected == keys["ed25519"]


def test_an_unknown_key_asks_for_no_expected_key(tmp_path: Path, keys: dict[str, HostKey]) -> None:
    capture = write(tmp_path / "capture", f"{FIELD} 2222 {keys['ed25519'].public_key}")
    output = "No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\r\n"

    def find_stored(host: str, port: int, key_type: str) -> HostKey | None:
        raise AssertionError("an unknown key has no expected key")

    error = build_host_key_error(output, capture, fingerprint_with_ssh_keygen, find_stored)
    assert error is not None and (error.reason, error.expected) == ("unknown", None)


# --- a ProxyJump hop's refusal, found from the capture (its stderr went to /dev/null) ------------

BASTION = "[127.0.0.1]:2200"


def stored_in(*files: Path):
    """Return find_stored over ``files`` with the real ssh-keygen, as the master is wired."""
    def find_stored(host: str, port: int, key_type: str) -> HostKey | None:
        return find_stored_key(host, port, key_type, files=list(files))
    return find_stored


def test_a_hops_unknown_key_is_the_first_captured_key_no_file_trusts(tmp_path: Path, keys: dict[str, HostKey]) -> None:
    managed = write(tmp_path / "known_hosts", f"{FIELD} {keys['ed25519'].public_key}")
    capture = write(tmp_path / "capture", f"{BASTION} 2200 NONE x", f"{BASTION} 2200 {keys['rsa'].public_key}",
                    f"{FIELD} 2222 {keys['ed25519'].public_key}")
    error = build_refused_hop_error(capture, fingerprint_with_ssh_keygen, stored_in(managed))
    assert error is not None
    assert (error.host, error.port, error.known_hosts_host, error.reason) == ("127.0.0.1", 2200, BASTION, "unknown")
    assert (error.presented, error.expected) == (keys["rsa"], None)


def test_a_hops_changed_key_expects_the_stored_key_of_its_type(tmp_path: Path, keys: dict[str, HostKey]) -> None:
    user = hash_file(write(tmp_path / "user", f"{BASTION} {keys['ed25519'].public_key}"))
    capture = write(tmp_path / "capture", f"{BASTION} 2200 {keys['ed255192'].public_key}")
    error = build_refused_hop_error(capture, fingerprint_with_ssh_keygen, stored_in(tmp_path / "missing", user))
    assert error is not None and error.reason == "changed"
    assert (error.presented, error.expected) == (keys["ed255192"], keys["ed25519"])


def test_trusted_hops_and_certificates_are_no_refusal(tmp_path: Path, keys: dict[str, HostKey]) -> None:
    managed = write(tmp_path / "known_hosts", f"{BASTION} {keys['rsa'].public_key}",
                    f"{FIELD} {keys['ed25519'].public_key}")
    capture = write(tmp_path / "capture", f"{BASTION} 2200 {keys['rsa'].public_key}",
                    f"{FIELD} 2222 ssh-ed25519-cert-v01@openssh.com AAAAcert",
                    f"{FIELD} 2222 {keys['ed25519'].public_key}")
    assert build_refused_hop_error(capture, fingerprint_with_ssh_keygen, stored_in(managed)) is None
    nothing = tmp_path / "nothing-captured"
    assert build_refused_hop_error(nothing, fingerprint_with_ssh_keygen, stored_in(managed)) is None
