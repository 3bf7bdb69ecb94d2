"""Who is calling: the caller's account from the kernel's socket table (issue #15).

Everything below was recorded on x86-64 Linux 6.18 (little-endian).

The /proc/net tables: three listeners of root (127.0.0.1:37723, dual-stack
[::]:55979, [::1]:49799) and these clients:

- nobody (uid 65534): 127.0.0.1:49276 -> :37723 (accepted), an AF_INET6
  socket ::ffff:127.0.0.1:38376 -> :55979, [::1]:57170 -> [::1]:49799, and
  127.0.0.1:49288 -> :37723 which sent a request and closed its socket;
- root: 127.0.0.1:49292 -> :37723.

The sock_diag answers: listeners of root on 127.0.0.1:38993 and [::1]:55595;
nobody's clients 127.0.0.1:48784, an AF_INET6 socket ::ffff:127.0.0.1:48794
(both to :38993), [::1]:40250 -> [::1]:55595, and 127.0.0.1:48806 -> :38993
closed after sending a request.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import sys
from typing import Any

import falcon.testing
import pytest

from rvssh.http.callers import (
    PerConnection,
    ask_sock_diag,
    build_diag_request,
    diag_error,
    kernel_caller_uid,
    lookup_in_proc_tables,
    lookup_socket_owner,
    parse_diag_answer,
    proc_address,
    resolver_for,
    socket_owner,
    unknown_caller,
    unmapped,
)

PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:935B 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 27789 1 0000000020c5f688 100 0 0 10 0
   3: 0100007F:935B 0100007F:C08C 01 00000000:00000000 00:00000000 00000000     0        0 27811 1 00000000b8e8e734 20 0 0 10 -1
   5: 0100007F:935B 0100007F:C088 08 00000000:00000013 00:00000000 00000000     0        0 27807 1 00000000e7160b4f 20 4 28 10 -1
   6: 0100007F:935B 0100007F:C07C 01 00000000:00000000 00:00000000 00000000     0        0 27806 1 000000001bcbd17a 20 0 0 10 -1
   7: 0100007F:C07C 0100007F:935B 01 00000000:00000000 00:00000000 00000000 65534        0 26717 2 000000007c2b4520 20 0 0 10 -1
   8: 0100007F:C088 0100007F:935B 05 00000000:00000000 03:00001760 00000000     0        0 0 3 00000000071da11e
   9: 0100007F:C08C 0100007F:935B 01 00000000:00000000 00:00000000 00000000     0        0 27810 2 00000000cb2a575c 20 0 0 10 -1
"""

PROC_NET_TCP6 = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:DAAB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 27790 1 00000000869a68ff 100 0 0 10 0
   1: 00000000000000000000000001000000:C287 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 27791 1 00000000adbe3a94 100 0 0 10 0
   2: 00000000000000000000000001000000:C287 00000000000000000000000001000000:DF52 01 00000000:00000000 00:00000000 00000000     0        0 27809 1 00000000c39530ad 20 0 0 10 -1
   3: 0000000000000000FFFF00000100007F:95E8 0000000000000000FFFF00000100007F:DAAB 01 00000000:00000000 00:00000000 00000000 65534        0 26718 2 00000000a85ed0d4 20 0 0 10 -1
   4: 00000000000000000000000001000000:DF52 00000000000000000000000001000000:C287 01 00000000:00000000 00:00000000 00000000 65534        0 26719 2 0000000082d8a5cd 20 0 0 10 -1
   5: 0000000000000000FFFF00000100007F:DAAB 0000000000000000FFFF00000100007F:95E8 01 00000000:00000000 00:00000000 00000000     0        0 27808 1 00000000b382d76a 20 0 0 10 -1
"""

RECORDED = {"tcp": PROC_NET_TCP, "tcp6": PROC_NET_TCP6}

DIAG_ANSWERS = {
    "nobody_v4": "7c0000001400000001000000da6d000002010000be9098517f0000010000000000000000000000007f000001000000000000000000000000000000000110000000000000000000000000000000000000feff0000931a0100050008000000000008000f00000000000c00150001000000000000000600160052000000",
    "nobody_mapped": "7c0000001400000001000000da6d00000a010000be9a985100000000000000000000ffff7f00000100000000000000000000ffff7f000001000000000210000000000000000000000000000000000000feff0000941a0100050008000000000008000f00000000000c00150001000000000000000600160012000000",
    "nobody_v6": "7c0000001400000001000000da6d00000a0100009d3ad92b0000000000000000000000000000000100000000000000000000000000000001000000000310000000000000000000000000000000000000feff0000951a0100050008000000000008000f00000000000c00150001000000000000000600160012000000",
    # The socket its program closed: the kernel answers a TIME_WAIT-like entry, uid 0, inode 0.
    "closed": "600000001400000001000000da6d000002050300bea698517f0000010000000000000000000000007f000001000000000000000000000000000000000410000000000000c0e900000000000000000000000000000000000008000f0000000000",
    # Asked for 127.0.0.1:38993 -> :9, the kernel answers root's listener on :38993.
    "listener": "7c0000001400000001000000da6d0000020a0000985100007f00000100000000000000000000000000000000000000000000000000000000000000000510000000000000000000000000000080000000000000008e1a0100050008000000000008000f00000000000c00150001000000000000000600160052000000",
    # Asked for 127.0.0.1:1 -> :38993: ENOENT.
    "none": "5c0000000200000001000000da6d0000feffffff4800000014000100010000000000000002060000ffffffff000198517f0000010000000000000000000000007f00000100000000000000000000000000000000ffffffffffffffff",
}
V4 = ipaddress.IPv4Address("127.0.0.1")
V6 = ipaddress.IPv6Address("::1")


def recorded(name: str) -> str:
    return RECORDED[name]


@pytest.mark.parametrize(
    ("address", "port", "byteorder", "written"),
    [
        ("127.0.0.1", 37723, "little", "0100007F:935B"),
        ("127.0.0.1", 37723, "big", "7F000001:935B"),
        ("0.0.0.0", 0, "little", "00000000:0000"),
        ("::1", 49799, "little", "00000000000000000000000001000000:C287"),
        ("::ffff:127.0.0.1", 38376, "little", "0000000000000000FFFF00000100007F:95E8"),
    ],
)
def test_addresses_are_written_as_the_kernel_writes_them(address: str, port: int, byteorder: Any, written: str) -> None:
    assert proc_address(ipaddress.ip_address(address), port, byteorder) == written


def test_mapped_addresses_become_ipv4() -> None:
    assert unmapped(ipaddress.ip_address("::ffff:127.0.0.1")) == V4
    assert unmapped(V6) == V6 and unmapped(V4) == V4


@pytest.mark.parametrize(
    ("peer", "server", "uid"),
    [
        ((V4, 49276), (V4, 37723), 65534),  # nobody; the server side's row (uid 0) is not taken
        ((V4, 49292), (V4, 37723), 0),  # root
        ((V4, 38376), (V4, 55979), 65534),  # an AF_INET6 client: the mapped row of tcp6
        ((V6, 57170), (V6, 49799), 65534),
        ((V4, 49288), (V4, 37723), None),  # closed by its program: inode 0, shown as uid 0
        ((V4, 49276), (V4, 55979), None),  # another listener
        ((V4, 1), (V4, 37723), None),
    ],
)
def test_the_callers_row_gives_its_owner(peer: Any, server: Any, uid: int | None) -> None:
    assert lookup_in_proc_tables(peer, server, recorded, "little") == uid


def test_only_the_client_side_row_counts() -> None:
    # The accepted (server) side of the nobody connection is root's; asked the other way round it would answer 0.
    assert socket_owner(PROC_NET_TCP, "0100007F:935B", "0100007F:C07C") == 0
    assert socket_owner(PROC_NET_TCP, "0100007F:C07C", "0100007F:935B") == 65534


def test_short_or_empty_tables_give_nobody() -> None:
    assert socket_owner("", "0100007F:C07C", "0100007F:935B") is None
    assert socket_owner("header\n 7: 0100007F:C07C 0100007F:935B 01\n", "0100007F:C07C", "0100007F:935B") is None
    assert lookup_in_proc_tables((V4, 49276), (V4, 37723), lambda name: "", "little") is None


def test_the_diag_request_asks_for_one_exact_socket() -> None:
    request = build_diag_request((V4, 48784), (V4, 38993))
    assert request.hex() == (
        "48000000" "1400" "0100" "01000000" "00000000"  # netlink header: 72 bytes, SOCK_DIAG_BY_FAMILY, request
        "02" "06" "00" "00" "ffffffff"  # AF_INET, TCP, no extensions, every state
        "be90" "9851" + "7f000001" + "00" * 12 + "7f000001" + "00" * 12  # ports (network order), addresses
        + "00000000" "ffffffff" "ffffffff"  # any interface, no cookie
    )
    v6 = build_diag_request((V6, 40250), (V6, 55595))
    assert v6[16] == socket.AF_INET6 and v6[28:44] == V6.packed


@pytest.mark.parametrize(
    ("answer", "peer", "server", "uid"),
    [
        ("nobody_v4", (V4, 48784), (V4, 38993), 65534),
        ("nobody_mapped", (V4, 48794), (V4, 38993), 65534),  # an AF_INET6 socket, found by the IPv4 lookup
        ("nobody_v6", (V6, 40250), (V6, 55595), 65534),
        ("closed", (V4, 48806), (V4, 38993), None),
        ("listener", (V4, 38993), (V4, 9), None),  # not the 4-tuple asked for
        ("nobody_v4", (V4, 48784), (V4, 9), None),
        ("none", (V4, 1), (V4, 38993), None),
    ],
)
def test_diag_answers_give_the_owner_of_the_exact_open_socket(answer: str, peer: Any, server: Any, uid: int | None) -> None:
    assert parse_diag_answer(bytes.fromhex(DIAG_ANSWERS[answer]), peer, server) == uid


def test_diag_errors_are_read() -> None:
    assert diag_error(bytes.fromhex(DIAG_ANSWERS["none"])) == errno.ENOENT
    assert diag_error(bytes.fromhex(DIAG_ANSWERS["nobody_v4"])) is None
    assert diag_error(b"") is None and parse_diag_answer(b"\0" * 20, (V4, 1), (V4, 2)) is None


def test_netlink_answers_first_and_proc_only_when_it_cannot() -> None:
    asked: list[bytes] = []
    read: list[str] = []

    def reading(name: str) -> str:
        read.append(name)
        return RECORDED[name]

    def answering(request: bytes) -> bytes:
        asked.append(request)
        return bytes.fromhex(DIAG_ANSWERS["nobody_v4"])

    assert lookup_socket_owner((V4, 48784), (V4, 38993), answering, reading) == 65534
    assert len(asked) == 1 and read == []

    def refused(request: bytes) -> bytes:
        raise PermissionError(errno.EPERM, "netlink refused by a sandbox")

    assert lookup_socket_owner((V4, 49276), (V4, 37723), refused, reading) == 65534
    assert read == ["tcp"]
    # A closed socket: netlink's answer is final, /proc is not read.
    closed = bytes.fromhex(DIAG_ANSWERS["closed"])
    assert lookup_socket_owner((V4, 48806), (V4, 38993), lambda request: closed, reading) is None
    assert read == ["tcp"]


def environ_of(remote: tuple[str, int], server: tuple[str, int]) -> dict[str, str]:
    return {"REMOTE_ADDR": remote[0], "REMOTE_PORT": str(remote[1]), "SERVER_NAME": server[0], "SERVER_PORT": str(server[1])}


@pytest.mark.parametrize(
    "environ",
    [
        {},
        environ_of(("10.0.0.7", 40000), ("127.0.0.1", 23300)),  # not loopback
        environ_of(("127.0.0.1", 40000), ("0.0.0.0", 23300)),
        environ_of(("127.0.0.1", 40000), ("localhost", 23300)),  # a name, not the listener's address
        environ_of(("127.0.0.1", 0), ("127.0.0.1", 23300)),
        {"REMOTE_ADDR": "127.0.0.1", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "23300"},  # no REMOTE_PORT
        falcon.testing.create_environ("/api/remote/sessions"),
    ],
)
def test_callers_that_cannot_be_looked_up_are_unknown(environ: dict[str, Any]) -> None:
    assert kernel_caller_uid(environ) is None


def test_resolvers_per_platform_and_bind() -> None:
    linux = resolver_for(True, "linux")
    assert isinstance(linux, PerConnection) and linux._resolver is kernel_caller_uid
    assert resolver_for(False, "linux") is unknown_caller
    assert resolver_for(True, "darwin") is unknown_caller
    assert resolver_for(True, "win32") is unknown_caller
    assert unknown_caller({"REMOTE_ADDR": "127.0.0.1"}) is None


def test_the_account_is_asked_once_per_connection() -> None:
    answers = iter([1000, 1001, None, 1002, 1003])
    asked: list[Any] = []

    def resolver(environ: Any) -> int | None:
        asked.append(environ.get("gunicorn.socket"))
        return next(answers)

    per_connection = PerConnection(resolver)
    first, second = socket.socket(), socket.socket()
    try:
        assert [per_connection({"gunicorn.socket": first}) for _ in range(3)] == [1000] * 3
        assert per_connection({"gunicorn.socket": second}) == 1001  # another connection is asked about
        assert per_connection({}) is None  # without a socket: asked every time (and here unknown)
        assert per_connection({}) == 1002
        assert asked == [first, second, None, None]
    finally:
        first.close()
        second.close()
    asked.clear()
    del first
    assert len(per_connection._known) == 1  # a closed connection's answer goes with its socket


def test_an_unknown_caller_is_asked_about_again() -> None:
    answers = iter([None, 1000])
    per_connection = PerConnection(lambda environ: next(answers))
    with socket.socket() as connection:
        assert per_connection({"gunicorn.socket": connection}) is None
        assert per_connection({"gunicorn.socket": connection}) == 1000


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the kernel's socket table is Linux's")
def test_a_real_loopback_caller_is_this_account_until_it_closes() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        server = listener.getsockname()
        caller = socket.create_connection(server)
        accepted, peer = listener.accept()
        with accepted:
            environ = environ_of(peer, server)
            ends = ((V4, peer[1]), (V4, server[1]))
            assert kernel_caller_uid(environ) == os.geteuid()
            assert kernel_caller_uid({**environ, "SERVER_NAME": "::ffff:127.0.0.1"}) == os.geteuid()
            assert parse_diag_answer(ask_sock_diag(build_diag_request(*ends)), *ends) == os.geteuid()
            assert lookup_in_proc_tables(*ends) == os.geteuid()  # the fallback reads the same
            caller.close()  # while the server still holds its side, as a worker does mid-request
            assert kernel_caller_uid(environ) is None
            assert lookup_in_proc_tables(*ends) is None
