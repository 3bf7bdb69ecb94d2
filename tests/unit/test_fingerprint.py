"""Tests for rvssh.ssh.fingerprint: fingerprints and key blob checks."""

from __future__ import annotations

import base64
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from rvssh.ssh.errors import SshError
from rvssh.ssh.fingerprint import (
    SUPPORTED_KEY_TYPES,
    build_fingerprint_argv,
    fingerprint_sha256,
    fingerprint_with_ssh_keygen,
    is_valid_key_blob,
)

pytestmark = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen")

KEY_SPECS = [
    ("ed25519", [], "ssh-ed25519"),
    ("rsa", ["-b", "2048"], "ssh-rsa"),
    ("ecdsa", ["-b", "256"], "ecdsa-sha2-nistp256"),
    ("ecdsa", ["-b", "384"], "ecdsa-sha2-nistp384"),
    ("ecdsa", ["-b", "521"], "ecdsa-sha2-nistp521"),
]


def generate_key(directory: Path, key_kind: str, extra: list[str]) -> str:
    """Generate a throwaway key pair and return its public key line."""
    key_path = directory / f"key_{key_kind}_{'_'.join(extra) or 'default'}"
    subprocess.run(
        [
            "ssh-keygen",
            "-q",
            "-t",
            key_kind,
            *extra,
            "-N",
            "",
            "-C",
            "test comment",
            "-f",
            str(key_path),
        ],
        check=True,
        timeout=60,
    )
    return key_path.with_name(key_path.name + ".pub").read_text().strip()


def ssh_string(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value


@pytest.fixture(scope="module")
def real_keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    directory = tmp_path_factory.mktemp("keys")
    return {key_type: generate_key(directory, kind, extra) for kind, extra, key_type in KEY_SPECS}


def blob_of(public_key_line: str) -> bytes:
    return base64.b64decode(public_key_line.split()[1])


@pytest.mark.parametrize("key_type", [spec[2] for spec in KEY_SPECS])
def test_python_and_ssh_keygen_fingerprints_agree(real_keys: dict[str, str], key_type: str) -> None:
    line = real_keys[key_type]
    from_keygen = fingerprint_with_ssh_keygen(line)
    assert from_keygen.startswith("SHA256:")
    assert fingerprint_sha256(blob_of(line)) == from_keygen


@pytest.mark.parametrize("key_type", [spec[2] for spec in KEY_SPECS])
def test_fingerprint_without_comment_matches(real_keys: dict[str, str], key_type: str) -> None:
    line = real_keys[key_type]
    bare = " ".join(line.split()[:2])
    assert fingerprint_with_ssh_keygen(bare) == fingerprint_with_ssh_keygen(line)


def test_fingerprint_known_vector() -> None:
    assert fingerprint_sha256(b"") == "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"


def test_build_fingerprint_argv_is_exact() -> None:
    assert build_fingerprint_argv() == ["ssh-keygen", "-l", "-E", "sha256", "-f", "-"]
    assert build_fingerprint_argv("/opt/bin/ssh-keygen")[0] == "/opt/bin/ssh-keygen"


def test_ssh_keygen_refuses_garbage() -> None:
    with pytest.raises(SshError, match="ssh-keygen could not fingerprint the key"):
        fingerprint_with_ssh_keygen("ssh-ed25519 AAAA")


def test_ssh_keygen_missing_binary(tmp_path: Path) -> None:
    with pytest.raises(SshError, match="ssh-keygen could not be run"):
        fingerprint_with_ssh_keygen("ssh-ed25519 AAAA", ssh_keygen=str(tmp_path / "nope"))


@pytest.mark.parametrize("line", ["ssh-ed25519 AAAA\nssh-rsa AAAA", "ssh-ed25519 AAAA\r"])
def test_ssh_keygen_takes_one_line_only(line: str) -> None:
    with pytest.raises(ValueError):
        fingerprint_with_ssh_keygen(line)


@pytest.mark.parametrize("key_type", [spec[2] for spec in KEY_SPECS])
def test_real_blobs_are_valid(real_keys: dict[str, str], key_type: str) -> None:
    assert is_valid_key_blob(key_type, blob_of(real_keys[key_type]))


@pytest.mark.parametrize("key_type", [spec[2] for spec in KEY_SPECS])
def test_mangled_blobs_are_invalid(real_keys: dict[str, str], key_type: str) -> None:
    blob = blob_of(real_keys[key_type])
    assert not is_valid_key_blob(key_type, blob[:-1]), "truncated"
    assert not is_valid_key_blob(key_type, blob + b"\x00"), "trailing byte"
    assert not is_valid_key_blob(key_type, b""), "empty"
    other = "ssh-ed25519" if key_type != "ssh-ed25519" else "ssh-rsa"
    assert not is_valid_key_blob(other, blob), "named as another type"


def test_blob_name_must_equal_key_type(real_keys: dict[str, str]) -> None:
    blob = blob_of(real_keys["ssh-ed25519"])
    renamed = ssh_string(b"ssh-ed25518") + blob[len(ssh_string(b"ssh-ed25519")) :]
    assert not is_valid_key_blob("ssh-ed25519", renamed)


@pytest.mark.parametrize(
    ("key_type", "blob", "valid"),
    [
        ("ssh-ed25519", ssh_string(b"ssh-ed25519") + ssh_string(b"\x01" * 32), True),
        ("ssh-ed25519", ssh_string(b"ssh-ed25519") + ssh_string(b"\x01" * 31), False),
        ("ssh-ed25519", ssh_string(b"ssh-ed25519") + struct.pack(">I", 1000) + b"\x01" * 32, False),
        (
            "ssh-rsa",
            ssh_string(b"ssh-rsa") + ssh_string(b"\x01\x00\x01") + ssh_string(b"\x00\xc1"),
            True,
        ),
        (
            "ssh-rsa",
            ssh_string(b"ssh-rsa") + ssh_string(b"\x01\x00\x01") + ssh_string(b"\xc1"),
            False,
        ),
        ("ssh-rsa", ssh_string(b"ssh-rsa") + ssh_string(b"") + ssh_string(b"\x41"), False),
        ("ssh-rsa", ssh_string(b"ssh-rsa") + ssh_string(b"\x00\x01") + ssh_string(b"\x41"), False),
        ("ssh-rsa", ssh_string(b"ssh-rsa") + ssh_string(b"\x03"), False),
        (
            "ecdsa-sha2-nistp256",
            ssh_string(b"ecdsa-sha2-nistp256")
            + ssh_string(b"nistp256")
            + ssh_string(b"\x04" + b"\x01" * 64),
            True,
        ),
        (
            "ecdsa-sha2-nistp256",
            ssh_string(b"ecdsa-sha2-nistp256")
            + ssh_string(b"nistp384")
            + ssh_string(b"\x04" + b"\x01" * 64),
            False,
        ),
        (
            "ecdsa-sha2-nistp256",
            ssh_string(b"ecdsa-sha2-nistp256")
            + ssh_string(b"nistp256")
            + ssh_string(b"\x02" + b"\x01" * 32),
            False,
        ),
        (
            "sk-ssh-ed25519@openssh.com",
            ssh_string(b"sk-ssh-ed25519@openssh.com")
            + ssh_string(b"\x01" * 32)
            + ssh_string(b"ssh:"),
            True,
        ),
        ("ssh-foo", ssh_string(b"ssh-foo") + ssh_string(b"x"), False),
    ],
)
def test_blob_table(key_type: str, blob: bytes, valid: bool) -> None:
    assert is_valid_key_blob(key_type, blob) is valid


def test_supported_key_types_are_plain_keys() -> None:
    assert "ssh-ed25519" in SUPPORTED_KEY_TYPES
    assert not any("cert" in key_type for key_type in SUPPORTED_KEY_TYPES)
