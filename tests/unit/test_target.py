"""Target validation and connection_id parsing: bad input never reaches argv."""

from __future__ import annotations

import pytest

from rvssh.errors import BadRequestError
from rvssh.ssh.errors import InvalidTargetError
from rvssh.ssh.target import make_target, parse_connection_id


@pytest.mark.parametrize(
    "host",
    ["example.com", "127.0.0.1", "::1", "fe80::1%eth0", "gpu-01.lab", "rvtest-alias", "host_name"],
)
def test_valid_hosts_are_accepted(host: str) -> None:
    assert make_target(host, 22, "alice").host == host


@pytest.mark.parametrize(
    "host",
    [
        "",
        "-oProxyCommand=touch /tmp/x",
        "-p",
        "bad host",
        "host\nname",
        "host\x00",
        "a;b",
        "$(touch x)",
        "`id`",
        "'quoted'",
        "user@host",
        "x" * 300,
    ],
)
def test_option_like_or_odd_hosts_are_rejected(host: str) -> None:
    with pytest.raises(InvalidTargetError, match="Invalid host"):
        make_target(host, 22, "alice")


@pytest.mark.parametrize("username", ["", "-l", "bad user", "a\tb", "x;y", "$(id)", "a\nb", "-oX=y"])
def test_bad_usernames_are_rejected(username: str) -> None:
    with pytest.raises(InvalidTargetError, match="Invalid username"):
        make_target("example.com", 22, username)


@pytest.mark.parametrize("port", [0, -1, 65536])
def test_ports_out_of_range_are_rejected(port: int) -> None:
    with pytest.raises(InvalidTargetError, match="Invalid port"):
        make_target("example.com", port, "alice")


def test_connection_id_is_the_reference_format() -> None:
    assert make_target("127.0.0.1", 2299, "root").connection_id == "root@127.0.0.1:2299"


@pytest.mark.parametrize(
    ("connection_id", "expected"),
    [
        ("u@h:22", ("h", 22, "u")),
        ("u@::1:22", ("::1", 22, "u")),
        ("alice@corp@gpu:2222", ("gpu", 2222, "alice@corp")),
    ],
)
def test_connection_ids_parse(connection_id: str, expected: tuple[str, int, str]) -> None:
    target = parse_connection_id(connection_id)
    assert (target.host, target.port, target.username) == expected


@pytest.mark.parametrize("connection_id", ["uh22", "u@h:abc", "h:22", "u@-oProxyCommand=x:22", "u@h:0", ""])
def test_bad_connection_ids_are_400_with_the_reference_message(connection_id: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        parse_connection_id(connection_id)
    assert caught.value.message == f"Invalid connection_id format: {connection_id}"


def test_destination_args_leave_port_22_to_ssh_config() -> None:
    assert make_target("gpu", 22, "bob").destination_args() == ["-l", "bob", "--", "gpu"]
    assert make_target("gpu", 2222, "bob").destination_args() == ["-l", "bob", "-p", "2222", "--", "gpu"]


@pytest.mark.parametrize(("host", "username"), [("gpu\n", "me"), ("gpu", "me\n")])
def test_a_trailing_newline_is_rejected(host: str, username: str) -> None:
    with pytest.raises(InvalidTargetError):
        make_target(host, 22, username)
