"""Tests for rvssh.store.known_hosts: validation, upsert, remove, list, locking."""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import os
import shutil
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from rvssh.errors import BadRequestError, StoreError
from rvssh.ssh.errors import HostKey
from rvssh.ssh.fingerprint import fingerprint_sha256
from rvssh.store.known_hosts import (
    KnownHostEntry,
    KnownHostsStore,
    check_accept,
    entries_from_line,
    format_known_hosts_host,
    parse_known_hosts_host,
    parse_known_hosts_line,
)

needs_ssh_keygen = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen")

WIRE_FIELDS = {"host", "port", "known_hosts_host", "key_type", "key_base64", "fingerprint_sha256"}


def ssh_string(value: bytes) -> bytes:
    return len(value).to_bytes(4, "big") + value


def make_ed25519(seed: int) -> HostKey:
    """Build a structurally valid ed25519 key; the content need not be a curve point."""
    blob = ssh_string(b"ssh-ed25519") + ssh_string(bytes([seed % 256]) * 32)
    return HostKey("ssh-ed25519", base64.b64encode(blob).decode(), fingerprint_sha256(blob))


def make_rsa(seed: int) -> HostKey:
    blob = (
        ssh_string(b"ssh-rsa")
        + ssh_string(b"\x01\x00\x01")
        + ssh_string(bytes([0x40 + seed % 64]) * 128)
    )
    return HostKey("ssh-rsa", base64.b64encode(blob).decode(), fingerprint_sha256(blob))


ED1, ED2, ED3 = make_ed25519(1), make_ed25519(2), make_ed25519(3)
RSA1 = make_rsa(1)


def accept(store: KnownHostsStore, host: str, port: int, key: HostKey) -> bool:
    return store.accept(host, port, key.key_type, key.public_key, key.fingerprint_sha256)


def hashed_host(host: str, salt: bytes = b"0123456789abcdefghij") -> str:
    digest = hmac.new(salt, host.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


@pytest.fixture
def store(tmp_path: Path) -> KnownHostsStore:
    return KnownHostsStore(tmp_path / "cfg" / "known_hosts", lock_timeout=2.0)


# --- pure helpers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "port", "field"),
    [
        ("example.com", 22, "example.com"),
        ("127.0.0.1", 2299, "[127.0.0.1]:2299"),
        ("::1", 2222, "[::1]:2222"),
        ("::1", 22, "::1"),
    ],
)
def test_format_known_hosts_host(host: str, port: int, field: str) -> None:
    assert format_known_hosts_host(host, port) == field


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("example.com", ("example.com", 22)),
        ("[127.0.0.1]:2299", ("127.0.0.1", 2299)),
        ("[::1]:2222", ("::1", 2222)),
        ("[h]", ("h", 22)),
        ("[h]:bad", ("h", 22)),
        ("|1|abc|def", ("|1|abc|def", 22)),
        ("*.example.com", ("*.example.com", 22)),
    ],
)
def test_parse_known_hosts_host(field: str, expected: tuple[str, int]) -> None:
    assert parse_known_hosts_host(field) == expected


def test_parse_known_hosts_line_fields_and_markers() -> None:
    parsed = parse_known_hosts_line("a,[b]:2222\tssh-ed25519  AAAA comment here\r\n")
    assert parsed is not None
    assert (parsed.marker, parsed.hosts, parsed.key_type, parsed.key_base64) == (
        None,
        ("a", "[b]:2222"),
        "ssh-ed25519",
        "AAAA",
    )
    marker = parse_known_hosts_line("@revoked * ssh-rsa AAAA")
    assert marker is not None and marker.marker == "@revoked" and marker.hosts == ("*",)
    for line in [
        "",
        "   \n",
        "# comment",
        "  # indented comment",
        "host ssh-rsa",
        "@revoked host ssh-rsa",
    ]:
        assert parse_known_hosts_line(line) is None


def test_entries_from_line_never_raises_and_flags() -> None:
    assert entries_from_line("h ssh-ed25519 !!notbase64!!") == []
    assert entries_from_line("h ssh-ed25519 AAAAA") == []  # invalid base64 length
    hashed = entries_from_line(f"{hashed_host('x')} {ED1.public_key}")
    assert hashed[0].hashed and hashed[0].port == 22 and hashed[0].host.startswith("|1|")
    ca = entries_from_line(f"@cert-authority *.example.com {ED1.public_key}")
    assert ca[0].marker == "@cert-authority" and ca[0].host == "*.example.com"
    entries = entries_from_line(f"a,[b]:2222 {ED1.public_key} comment")
    assert [(e.host, e.port, e.known_hosts_host) for e in entries] == [
        ("a", 22, "a"),
        ("b", 2222, "[b]:2222"),
    ]
    assert set(entries[0].to_dict()) == WIRE_FIELDS | {"marker", "hashed"}


# --- accept validation, in the reference's order ------------------------------------------------

GOOD = {
    "host": "example.com",
    "key_type": ED1.key_type,
    "public_key": ED1.public_key,
    "fingerprint_sha256": ED1.fingerprint_sha256,
}
ED1_B64 = ED1.key_base64
ED1_BLOB = base64.b64decode(ED1_B64)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        # 1-3: empty fields, host first.
        ({"host": "", "key_type": "", "fingerprint_sha256": ""}, "Invalid host"),
        ({"key_type": "", "fingerprint_sha256": ""}, "Invalid key_type"),
        ({"fingerprint_sha256": "", "public_key": "x\n"}, "Invalid fingerprint_sha256"),
        # 4: line breaks in public_key beat host whitespace.
        ({"public_key": ED1.public_key + "\n", "host": "a b"}, "Invalid public_key"),
        ({"public_key": "ssh-ed25519\rAAAA"}, "Invalid public_key"),
        # 5-6: host whitespace and comma beat key_type whitespace.
        ({"host": "a b", "key_type": "a b"}, "Invalid host"),
        ({"host": "a\tb"}, "Invalid host"),
        ({"host": "a,b", "key_type": "a b"}, "Invalid host"),
        # 7-8.
        ({"key_type": "ssh ed25519", "fingerprint_sha256": "a b"}, "Invalid key_type"),
        ({"fingerprint_sha256": "SHA256: x", "public_key": "x"}, "Invalid fingerprint_sha256"),
        # 9: format, then base64.
        ({"public_key": "ssh-ed25519"}, "Invalid public_key: Invalid public key format"),
        ({"public_key": "   "}, "Invalid public_key: Invalid public key format"),
        (
            {"public_key": "ssh-ed25519 !!!!", "key_type": "other"},
            "Invalid public_key: Invalid base64 public key",
        ),
        ({"public_key": "ssh-ed25519 AAAAA"}, "Invalid public_key: Invalid base64 public key"),
        # 10: type mismatch beats the fingerprint check.
        (
            {"key_type": "ssh-rsa", "fingerprint_sha256": "SHA256:nope"},
            "key_type does not match public_key",
        ),
        # ours: blob structure, between 10 and 11.
        (
            {"key_type": "ssh-foo", "public_key": "ssh-foo " + ED1_B64},
            "Invalid public_key: unsupported key type",
        ),
        (
            {
                "key_type": "ssh-rsa",
                "public_key": "ssh-rsa " + ED1_B64,
                "fingerprint_sha256": "SHA256:nope",
            },
            "Invalid public_key: key blob is not a valid ssh-rsa key",
        ),
        (
            {"public_key": "ssh-ed25519 " + base64.b64encode(ED1_BLOB + b"\x00").decode()},
            "Invalid public_key: key blob is not a valid ssh-ed25519 key",
        ),
        # 11.
        (
            {"fingerprint_sha256": ED2.fingerprint_sha256},
            "fingerprint_sha256 does not match public_key",
        ),
        (
            {"fingerprint_sha256": ED1.fingerprint_sha256.removeprefix("SHA256:")},
            "fingerprint_sha256 does not match public_key",
        ),
    ],
)
def test_check_accept_table(changes: dict[str, str], message: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        check_accept(**{**GOOD, **changes})
    assert caught.value.message == message


@pytest.mark.parametrize(
    "host",
    [
        "*",
        "*.example.com",
        "host?",
        "!host",
        "[host]",
        "[host]:22",
        "a|b",
        "|1|abc|def",
        "@cert-authority",
        "-oProxyCommand=x",
        "a\x00b",
        "a\x1bb",
        "a\x7fb",
        "a\x85b",
    ],
)
def test_check_accept_refuses_host_patterns(host: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        check_accept(**{**GOOD, "host": host})
    assert caught.value.message == "Invalid host"


def test_check_accept_returns_canonical_key_and_drops_comment() -> None:
    unpadded = ED1_B64.rstrip("=")
    key = check_accept(
        **{**GOOD, "host": "::1", "public_key": f"  ssh-ed25519 {unpadded} some comment  "}
    )
    assert key == ED1


def test_accept_validation_error_writes_nothing(store: KnownHostsStore) -> None:
    with pytest.raises(BadRequestError):
        store.accept("*", 22, ED1.key_type, ED1.public_key, ED1.fingerprint_sha256)
    assert not store.path.parent.exists()


# --- round trip and upsert ----------------------------------------------------------------------


def test_round_trip_accept_list_remove(store: KnownHostsStore) -> None:
    assert store.list_entries() == []
    assert accept(store, "127.0.0.1", 2299, ED1) is True
    assert accept(store, "127.0.0.1", 2299, ED1) is False  # same key again: no change
    assert accept(store, "example.com", 22, RSA1) is True
    assert (
        store.path.read_text()
        == f"[127.0.0.1]:2299 {ED1.public_key}\nexample.com {RSA1.public_key}\n"
    )
    entries = store.list_entries()
    assert entries == [
        KnownHostEntry(
            "127.0.0.1",
            2299,
            "[127.0.0.1]:2299",
            "ssh-ed25519",
            ED1.key_base64,
            ED1.fingerprint_sha256,
        ),
        KnownHostEntry(
            "example.com", 22, "example.com", "ssh-rsa", RSA1.key_base64, RSA1.fingerprint_sha256
        ),
    ]
    assert store.remove("127.0.0.1", 2299, "ssh-rsa") is False
    assert store.remove("127.0.0.1", 2299, "ssh-ed25519") is True
    assert store.remove("127.0.0.1", 2299, "ssh-ed25519") is False
    assert store.path.read_text() == f"example.com {RSA1.public_key}\n"
    assert store.remove("example.com", 22, "ssh-rsa") is True
    assert store.path.read_bytes() == b""
    assert store.list_entries() == []


def test_upsert_keeps_other_key_types_and_replaces_same_type(store: KnownHostsStore) -> None:
    accept(store, "h", 22, RSA1)
    accept(store, "h", 22, ED1)
    assert accept(store, "h", 22, ED2) is True
    assert store.path.read_text() == f"h {RSA1.public_key}\nh {ED2.public_key}\n"


def test_upsert_multi_host_lines(store: KnownHostsStore) -> None:
    store.path.parent.mkdir()
    store.path.write_text(
        "# head\n"
        f"a,h,b  {ED1.public_key}   keep-this-comment\n"
        f"h {RSA1.public_key}\n"
        f"h,c {ED2.public_key}\n"
        f"h {ED3.public_key}\n"
        f"x {ED1.public_key}\n"
    )
    assert accept(store, "h", 22, ED3) is True
    assert store.path.read_text() == (
        "# head\n"
        f"a,b  {ED1.public_key}   keep-this-comment\n"
        f"h {ED3.public_key}\n"
        f"h {RSA1.public_key}\n"
        f"c {ED2.public_key}\n"
        f"x {ED1.public_key}\n"
    )


def test_upsert_appends_after_file_without_trailing_newline(store: KnownHostsStore) -> None:
    store.path.parent.mkdir()
    store.path.write_text(f"x {ED1.public_key}")
    accept(store, "y", 2200, ED2)
    assert store.path.read_text() == f"x {ED1.public_key}\n[y]:2200 {ED2.public_key}\n"


def test_upsert_never_touches_marker_lines(store: KnownHostsStore) -> None:
    store.path.parent.mkdir()
    original = f"@revoked h {ED1.public_key}\n@cert-authority h {ED1.public_key}\n"
    store.path.write_text(original)
    accept(store, "h", 22, ED2)
    assert store.path.read_text() == original + f"h {ED2.public_key}\n"
    assert store.remove("h", 22, "ssh-ed25519") is True
    assert store.path.read_text() == original


def test_hashed_entries_match_their_host(store: KnownHostsStore) -> None:
    store.path.parent.mkdir()
    store.path.write_text(
        f"{hashed_host('[h]:2222')} {ED1.public_key}\n{hashed_host('other')} {ED1.public_key}\n"
    )
    assert store.remove("h", 22, "ssh-ed25519") is False
    assert store.remove("h", 2222, "ssh-ed25519") is True
    assert store.path.read_text() == f"{hashed_host('other')} {ED1.public_key}\n"


# --- remove preserves bytes ---------------------------------------------------------------------

MESSY = (
    b"# a comment\n"
    b"\n"
    b"   \t\n"
    + f"{hashed_host('h')} {RSA1.public_key}\n".encode()
    + f"@cert-authority *.example.com {ED1.public_key}\n".encode()
    + f"@revoked h {ED2.public_key}\n".encode()
    + b"bad ssh-ed25519 !!!not-base64!!!\n"
    + b"badpad ssh-ed25519 AAAAA\n"
    + f"crlf {ED1.public_key}\r\n".encode()
    + f"h,keep\t{ED1.public_key}  comment\twith tabs\r\n".encode()
    + b"short line\n"
    + "caf\u00e9 ".encode()
    + ED3.public_key.encode()
    + b" \xff\xfe raw bytes\n"
    + f"h {RSA1.public_key}\n".encode()
    + f"last {ED2.public_key}".encode()
)


def write_messy(store: KnownHostsStore) -> None:
    store.path.parent.mkdir()
    store.path.write_bytes(MESSY)


def test_list_never_fails_on_messy_file(store: KnownHostsStore) -> None:
    write_messy(store)
    entries = store.list_entries()
    assert [(e.host, e.port, e.key_type, e.marker, e.hashed) for e in entries] == [
        (hashed_host("h"), 22, "ssh-rsa", None, True),
        ("*.example.com", 22, "ssh-ed25519", "@cert-authority", False),
        ("h", 22, "ssh-ed25519", "@revoked", False),
        ("crlf", 22, "ssh-ed25519", None, False),
        ("h", 22, "ssh-ed25519", None, False),
        ("keep", 22, "ssh-ed25519", None, False),
        ("caf\u00e9", 22, "ssh-ed25519", None, False),
        ("h", 22, "ssh-rsa", None, False),
        ("last", 22, "ssh-ed25519", None, False),
    ]
    assert all(set(WIRE_FIELDS) <= set(entry.to_dict()) for entry in entries)
    assert store.path.read_bytes() == MESSY


def test_remove_preserves_every_other_byte(store: KnownHostsStore) -> None:
    write_messy(store)
    assert store.remove("h", 22, "ssh-ed25519") is True
    expected = MESSY.replace(
        f"h,keep\t{ED1.public_key}".encode(), f"keep\t{ED1.public_key}".encode()
    )
    assert store.path.read_bytes() == expected
    assert store.remove("h", 22, "ssh-rsa") is True
    expected = expected.replace(f"{hashed_host('h')} {RSA1.public_key}\n".encode(), b"")
    expected = expected.replace(f"h {RSA1.public_key}\n".encode(), b"")
    assert store.path.read_bytes() == expected
    assert f"@revoked h {ED2.public_key}\n".encode() in expected  # revocations are never removed
    assert store.remove("last", 22, "ssh-ed25519") is True
    assert store.path.read_bytes() == expected.replace(f"last {ED2.public_key}".encode(), b"")


def test_remove_nothing_matched_writes_nothing(store: KnownHostsStore) -> None:
    assert store.remove("h", 22, "ssh-ed25519") is False
    assert not store.path.parent.exists()
    write_messy(store)
    before = os.stat(store.path)
    assert store.remove("nobody", 22, "ssh-ed25519") is False
    assert store.remove("crlf", 2222, "ssh-ed25519") is False
    after = os.stat(store.path)
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)
    assert store.path.read_bytes() == MESSY


@pytest.mark.parametrize(
    ("host", "key_type", "message"), [("", "", "Invalid host"), ("h", "", "Invalid key_type")]
)
def test_remove_rejects_empty_values(
    store: KnownHostsStore, host: str, key_type: str, message: str
) -> None:
    with pytest.raises(BadRequestError) as caught:
        store.remove(host, 22, key_type)
    assert caught.value.message == message


# --- file mode, locking, concurrency ------------------------------------------------------------


def test_written_file_is_0600_in_0700_dir(store: KnownHostsStore) -> None:
    accept(store, "h", 22, ED1)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(store.lock_path.stat().st_mode) == 0o600
    assert sorted(p.name for p in store.path.parent.iterdir()) == [
        "known_hosts",
        "known_hosts.lock",
    ]


def test_existing_loose_mode_is_tightened(store: KnownHostsStore) -> None:
    store.path.parent.mkdir()
    store.path.write_text("# mine\n")
    store.path.chmod(0o644)
    accept(store, "h", 22, ED1)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


def test_lock_timeout_raises_store_error(tmp_path: Path) -> None:
    store = KnownHostsStore(tmp_path / "known_hosts", lock_timeout=0.2)
    with open(store.lock_path, "w") as holder:
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX)
        with pytest.raises(StoreError) as caught:
            accept(store, "h", 22, ED1)
        assert (
            caught.value.message
            == f"Failed to write known_hosts: Timeout acquiring known_hosts lock: {store.lock_path}"
        )
        store.path.write_text(f"h {ED1.public_key}\n")
        with pytest.raises(StoreError, match=r"^Failed to remove known_hosts entry: Timeout"):
            store.remove("h", 22, "ssh-ed25519")
    assert store.remove("h", 22, "ssh-ed25519") is True


def test_unreadable_file_raises_store_error(tmp_path: Path) -> None:
    store = KnownHostsStore(tmp_path / "known_hosts")
    store.path.mkdir()
    with pytest.raises(
        StoreError, match=r"^Failed to write known_hosts: Failed to read known_hosts: "
    ):
        accept(store, "h", 22, ED1)
    with pytest.raises(StoreError, match=r"^Failed to list known_hosts: "):
        store.list_entries()


def test_failed_replace_raises_store_error_and_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = KnownHostsStore(tmp_path / "known_hosts")

    def refuse(src: str, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(StoreError) as caught:
        accept(store, "h", 22, ED1)
    assert (
        caught.value.message
        == f"Failed to write known_hosts: Failed to write known_hosts atomically: {store.path}"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["known_hosts.lock"]


def test_concurrent_upserts_all_land(store: KnownHostsStore) -> None:
    hosts = [f"host{index}" for index in range(24)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(hosts))

    def work(host: str, index: int) -> None:
        try:
            barrier.wait()
            accept(store, host, 2000 + index, make_ed25519(index))
        except BaseException as ex:  # reported to the main thread
            errors.append(ex)

    threads = [
        threading.Thread(target=work, args=(host, index)) for index, host in enumerate(hosts)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    entries = store.list_entries()
    assert sorted((e.host, e.port) for e in entries) == sorted(
        (h, 2000 + i) for i, h in enumerate(hosts)
    )


# --- OpenSSH reads what we write ----------------------------------------------------------------


@needs_ssh_keygen
def test_openssh_reads_the_written_file(store: KnownHostsStore, tmp_path: Path) -> None:
    key_path = tmp_path / "hostkey"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key_path)], check=True, timeout=30
    )
    key_type, key_base64 = key_path.with_name("hostkey.pub").read_text().split()[:2]
    blob = base64.b64decode(key_base64)
    store.accept(
        "127.0.0.1", 2299, key_type, f"{key_type} {key_base64} c", fingerprint_sha256(blob)
    )
    store.accept("example.com", 22, key_type, f"{key_type} {key_base64}", fingerprint_sha256(blob))
    for lookup in ["[127.0.0.1]:2299", "example.com"]:
        found = subprocess.run(
            ["ssh-keygen", "-F", lookup, "-f", str(store.path)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert found.returncode == 0, found.stderr
        assert f"{lookup} {key_type} {key_base64}" in found.stdout
    missing = subprocess.run(
        ["ssh-keygen", "-F", "127.0.0.1", "-f", str(store.path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert missing.returncode == 1
