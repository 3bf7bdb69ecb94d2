"""Who is calling: the account of a loopback TCP peer, from the kernel's socket table.

Loopback is shared by every account of a machine, so "the request came from
127.0.0.1" says nothing about who sent it (issue #15). On Linux the kernel
keeps every TCP socket with the uid of the account that created it. The
caller's socket is the one whose local address is the request's peer
(``REMOTE_ADDR``/``REMOTE_PORT``) and whose remote address is our listening
address (``SERVER_NAME``/``SERVER_PORT``, which gunicorn takes from the
listener's ``getsockname()``).

The kernel answers that question two ways, and both are read here:

- ``sock_diag`` over netlink (what ``ss`` uses): one exact lookup of the
  4-tuple, tens of microseconds;
- the text tables ``/proc/net/tcp`` and ``/proc/net/tcp6``: the fallback
  where netlink is refused (some sandboxes). Each read walks the whole
  established-socket hash (3.5 ms on a 2-core VM with 262,144 buckets), too
  slow for every request.

A resolver maps a WSGI environ to that uid, or to None when the account
cannot be known: another OS, a non-loopback address, no open socket. None
means the caller must present the token. The security middleware takes the
resolver as an argument, so tests can say who is calling.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import os
import socket
import struct
import sys
import threading
import weakref
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Mapping

log = logging.getLogger(__name__)

CallerResolver = Callable[[Mapping[str, Any]], int | None]
ByteOrder = Literal["little", "big"]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Endpoint = tuple[IPAddress, int]

PROC_NET = Path("/proc/net")
# Columns of a /proc/net/tcp{,6} row (split on whitespace; "sl" is column 0).
LOCAL_COLUMN, REMOTE_COLUMN, UID_COLUMN, INODE_COLUMN = 1, 2, 7, 9

# linux/netlink.h, linux/sock_diag.h, linux/inet_diag.h
NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLMSG_ERROR = 2
NLM_F_REQUEST = 1
NETLINK_HEADER = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
DIAG_REQUEST = struct.Struct("=BBBxI")  # family, protocol, extensions, pad, states
SOCKET_ID = struct.Struct(">HH16s16s")  # source port, destination port (network order), addresses
SOCKET_ID_TAIL = struct.Struct("=III")  # interface, cookie (2 words)
DIAG_MESSAGE = struct.Struct("=BBBB")  # family, state, timer, retransmits; then the socket id
DIAG_MESSAGE_TAIL = struct.Struct("=IIIII")  # expires, receive queue, send queue, uid, inode
DIAG_ANSWER_SIZE = NETLINK_HEADER.size + DIAG_MESSAGE.size + SOCKET_ID.size + SOCKET_ID_TAIL.size + DIAG_MESSAGE_TAIL.size
ALL_STATES = 0xFFFFFFFF
NO_COOKIE = 0xFFFFFFFF
NETLINK_TIMEOUT = 1.0


def unmapped(address: IPAddress) -> IPAddress:
    """Return ``address`` with an IPv4-mapped IPv6 address (``::ffff:a.b.c.d``) turned into IPv4."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def owner_if_open(uid: int, inode: int) -> int | None:
    """Return ``uid`` when the socket is still open (has an inode), else None."""
    # APPSEC: a socket its program has closed (orphaned, or in TIME_WAIT) stays in
    # the table for a while with inode 0, and the kernel may show uid 0 for it: a
    # caller who sends a request and closes at once must not pass for root.
    return uid if inode != 0 else None


# --- netlink sock_diag: one exact lookup ---------------------------------------


def _family_and_bytes(peer: Endpoint, server: Endpoint) -> tuple[int, bytes, bytes]:
    peer_address, server_address = peer[0], server[0]
    if isinstance(peer_address, ipaddress.IPv4Address) and isinstance(server_address, ipaddress.IPv4Address):
        return socket.AF_INET, peer_address.packed, server_address.packed
    # Mixed families cannot be one connection; the mapped forms make the lookup simply fail.
    as_v6 = [ipaddress.IPv6Address(f"::ffff:{item}") if item.version == 4 else item for item in (peer_address, server_address)]
    return socket.AF_INET6, as_v6[0].packed, as_v6[1].packed


def build_diag_request(peer: Endpoint, server: Endpoint, sequence: int = 1) -> bytes:
    """Return the netlink message asking for the TCP socket that joins ``peer`` (local) to ``server``.

    An exact lookup (no dump): the kernel finds the socket by its 4-tuple. An
    IPv4 lookup also finds an AF_INET6 socket using IPv4-mapped addresses.
    """
    family, local, remote = _family_and_bytes(peer, server)
    body = (
        DIAG_REQUEST.pack(family, socket.IPPROTO_TCP, 0, ALL_STATES)
        + SOCKET_ID.pack(peer[1], server[1], local, remote)
        + SOCKET_ID_TAIL.pack(0, NO_COOKIE, NO_COOKIE)
    )
    return NETLINK_HEADER.pack(NETLINK_HEADER.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, sequence, 0) + body


def diag_error(answer: bytes) -> int | None:
    """Return the errno of a netlink error answer (e.g. ENOENT: no such socket), or None."""
    if len(answer) < NETLINK_HEADER.size + 4 or NETLINK_HEADER.unpack_from(answer)[1] != NLMSG_ERROR:
        return None
    return -struct.unpack_from("=i", answer, NETLINK_HEADER.size)[0]


def parse_diag_answer(answer: bytes, peer: Endpoint, server: Endpoint) -> int | None:
    """Return the uid in a sock_diag answer when it describes the open socket joining ``peer`` to ``server``.

    The exact lookup may answer with a listening socket of the peer's
    address and port when no connection matches; only the very 4-tuple asked
    for counts.
    """
    if len(answer) < DIAG_ANSWER_SIZE or NETLINK_HEADER.unpack_from(answer)[1] != SOCK_DIAG_BY_FAMILY:
        return None
    offset = NETLINK_HEADER.size
    family = DIAG_MESSAGE.unpack_from(answer, offset)[0]
    offset += DIAG_MESSAGE.size
    local_port, remote_port, local, remote = SOCKET_ID.unpack_from(answer, offset)
    offset += SOCKET_ID.size + SOCKET_ID_TAIL.size
    uid, inode = DIAG_MESSAGE_TAIL.unpack_from(answer, offset)[3:]
    size = 4 if family == socket.AF_INET else 16
    found = (
        (unmapped(ipaddress.ip_address(local[:size])), local_port),
        (unmapped(ipaddress.ip_address(remote[:size])), remote_port),
    )
    if found != (peer, server):
        return None
    return owner_if_open(uid, inode)


def ask_sock_diag(request: bytes) -> bytes:
    """Send one sock_diag request to the kernel and return its answer.

    Raises:
        OSError: netlink is not available here, or the kernel answered with
            an error (ENOENT when no socket matches).
    """
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as channel:
        channel.settimeout(NETLINK_TIMEOUT)
        channel.sendto(request, (0, 0))
        answer = channel.recv(8192)
    code = diag_error(answer)
    if code is not None:
        raise OSError(code, os.strerror(code))
    return answer


# --- /proc/net/tcp{,6}: the same table as text ----------------------------------


def proc_address(address: IPAddress, port: int, byteorder: ByteOrder = sys.byteorder) -> str:
    """Return ``address:port`` as the kernel writes it in /proc/net/tcp (IPv4) or tcp6 (IPv6).

    The kernel prints each 32-bit word of the address as a host-order integer
    in hex (so 127.0.0.1 is ``0100007F`` on a little-endian machine), then the
    port as 4 hex digits.
    """
    packed = address.packed
    words = (int.from_bytes(packed[start : start + 4], byteorder) for start in range(0, len(packed), 4))
    return "".join(f"{word:08X}" for word in words) + f":{port:04X}"


def socket_owner(table: str, local: str, remote: str) -> int | None:
    """Return the uid of the open socket whose row in ``table`` joins ``local`` to ``remote``.

    Args:
        table: the text of /proc/net/tcp or /proc/net/tcp6.
        local, remote: addresses as :func:`proc_address` writes them.

    Returns:
        The uid column of the first matching row of an open socket, or None.
    """
    for line in table.splitlines()[1:]:
        columns = line.split()
        if len(columns) <= INODE_COLUMN or columns[LOCAL_COLUMN] != local or columns[REMOTE_COLUMN] != remote:
            continue
        uid = owner_if_open(int(columns[UID_COLUMN]), int(columns[INODE_COLUMN]))
        if uid is not None:
            return uid
    return None


def _table_queries(peer: Endpoint, server: Endpoint, byteorder: ByteOrder) -> Iterable[tuple[str, str, str]]:
    """Yield (table name, local, remote) to search for the caller's socket, most likely first."""
    (peer_address, peer_port), (server_address, server_port) = peer, server
    if isinstance(peer_address, ipaddress.IPv4Address) and isinstance(server_address, ipaddress.IPv4Address):
        yield "tcp", proc_address(peer_address, peer_port, byteorder), proc_address(server_address, server_port, byteorder)
        # An AF_INET6 client reaching an IPv4 listener shows the mapped form in tcp6.
        peer_address = ipaddress.IPv6Address(f"::ffff:{peer_address}")
        server_address = ipaddress.IPv6Address(f"::ffff:{server_address}")
    if isinstance(peer_address, ipaddress.IPv6Address) and isinstance(server_address, ipaddress.IPv6Address):
        yield "tcp6", proc_address(peer_address, peer_port, byteorder), proc_address(server_address, server_port, byteorder)


def read_proc_table(name: str) -> str:
    """Return the text of /proc/net/<name>, or "" where it does not exist (no IPv6, not Linux)."""
    try:
        return (PROC_NET / name).read_text(encoding="ascii", errors="replace")
    except OSError:
        return ""


def lookup_in_proc_tables(
    peer: Endpoint, server: Endpoint, read_table: Callable[[str], str] = read_proc_table,
    byteorder: ByteOrder = sys.byteorder,
) -> int | None:
    """Return the uid of the account whose open socket joins ``peer`` to ``server``, from /proc/net."""
    for name, local, remote in _table_queries(peer, server, byteorder):
        uid = socket_owner(read_table(name), local, remote)
        if uid is not None:
            return uid
    return None


# --- the resolver -----------------------------------------------------------------


def lookup_socket_owner(
    peer: Endpoint,
    server: Endpoint,
    ask: Callable[[bytes], bytes] = ask_sock_diag,
    read_table: Callable[[str], str] = read_proc_table,
) -> int | None:
    """Return the uid of the account whose open socket joins ``peer`` to ``server``, or None."""
    try:
        return parse_diag_answer(ask(build_diag_request(peer, server)), peer, server)
    except OSError as ex:
        if ex.errno != errno.ENOENT:
            log.debug("sock_diag unavailable (%s); reading /proc/net instead", ex)
        # No socket found, or netlink refused: the text tables say the same, slower.
        return lookup_in_proc_tables(peer, server, read_table)


def _endpoint(environ: Mapping[str, Any], address_key: str, port_key: str) -> Endpoint | None:
    try:
        address = unmapped(ipaddress.ip_address(str(environ.get(address_key, ""))))
        port = int(str(environ.get(port_key, "")))
    except ValueError:
        return None
    return (address, port) if address.is_loopback and 0 < port < 65536 else None


def kernel_caller_uid(environ: Mapping[str, Any]) -> int | None:
    """Return the uid of the account that sent this request over loopback TCP, or None.

    None when the peer or our address is missing, not an IP address or not
    loopback, or when the kernel knows no open socket that matches.
    """
    peer = _endpoint(environ, "REMOTE_ADDR", "REMOTE_PORT")
    server = _endpoint(environ, "SERVER_NAME", "SERVER_PORT")
    if peer is None or server is None:
        return None
    uid = lookup_socket_owner(peer, server)
    if uid is None:
        log.info("could not tell which account called from port %d; a token is required", peer[1])
    return uid


def unknown_caller(environ: Mapping[str, Any]) -> None:
    """Return None: where the kernel cannot tell us who is calling, every caller needs the token."""
    return None


class PerConnection:
    """Ask ``resolver`` once per accepted connection, not once per request.

    A keep-alive connection carries many requests from one peer socket, and
    the kernel's answer is the account that created that socket: it cannot
    change while the connection is open (its 4-tuple cannot belong to another
    socket meanwhile). So the answer is kept with gunicorn's socket object
    (``gunicorn.socket`` in the environ) and goes with it; a request without
    one is always asked about.
    """

    def __init__(self, resolver: CallerResolver) -> None:
        self._resolver = resolver
        self._known: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
        self._guard = threading.Lock()

    def __call__(self, environ: Mapping[str, Any]) -> int | None:
        connection = environ.get("gunicorn.socket")
        if connection is None:
            return self._resolver(environ)
        with self._guard:
            known = self._known.get(connection)
        if known is not None:
            return known
        uid = self._resolver(environ)
        if uid is not None:
            with self._guard:
                self._known[connection] = uid
        return uid


def resolver_for(bind_is_loopback: bool, platform: str = sys.platform) -> CallerResolver:
    """Return how to identify callers: the kernel's socket table on a Linux loopback bind, else nobody is known."""
    if bind_is_loopback and platform.startswith("linux"):
        # PERF: sock_diag costs about 40 µs a request; once per connection is enough (#14).
        return PerConnection(kernel_caller_uid)
    return unknown_caller
