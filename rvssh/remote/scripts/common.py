"""What every rvssh remote script shares: errors, text and paths, one JSON answer.

rvssh sends ``common.py`` followed by one script (``probe.py``, ``fs.py`` or
``viewer.py``) on stdin as a single program, run on the server as::

    python3 - <subcommand> [args...]

By hand: ``cat common.py fs.py | ssh host python3 - fs-list '~'``.

Standard library only, Python 3.6+; it never reads stdin (stdin *is* the
script). Every run prints exactly one JSON object on one line of stdout
(ASCII only) and exits 0, also when the request fails:

    {"error": {"kind": "<kind>", "message": "<message shown to the user>"}}

where kind is one of not_found, not_a_directory, permission_denied,
env_not_found, bad_request or internal (an unexpected exception).

Paths: ``~`` and ``~/...`` are expanded with $HOME; a relative path is taken
relative to $HOME. Text that is not valid UTF-8 (file names, paths, env
names) is printed with each undecodable byte written as the four characters
``\\xNN`` (Python's backslashreplace), so the output is always valid Unicode
JSON. Such text may be sent back as printed: a path argument that does not
exist as written, but does with its ``\\xNN`` (NN >= 80) taken as bytes, means
the latter.

Annotations here are strings: Python 3.6 evaluates annotations, and the
``typing`` import is not worth its start-up time in the small scripts.
"""

import os
import sys

# How a UTF-16 surrogate (an undecodable byte, or half of a character beyond
# the BMP) looks in JSON written with ensure_ascii: lower-case hex.
_SURROGATE_ESCAPES = tuple("\\ud" + digit for digit in "89abcdef")


class ProbeError(Exception):
    """An expected failure, printed as {"error": {"kind", "message"}}."""

    def __init__(self, kind: "str", message: "str") -> None:
        super(ProbeError, self).__init__(message)
        self.kind = kind
        self.message = message


def to_text(value: str) -> str:
    """Return ``value`` as valid Unicode, undecodable bytes written as ``\\xNN``."""
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        pass
    try:
        raw = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = value.encode("utf-8", "backslashreplace")
    return raw.decode("utf-8", "backslashreplace")


def from_text(value: str) -> str:
    """Undo to_text: turn each ``\\xNN`` (NN >= 80) back into the byte it stands for."""
    import re  # PERF: only for a name fs-list printed with escapes (re costs 4 ms to import)
    return re.sub(r"\\x([89a-fA-F][0-9a-fA-F])", lambda match: chr(0xDC00 + int(match.group(1), 16)), value)


def sanitize(value: "Any") -> "Any":
    """Return a copy of a JSON-able value with every string made valid Unicode."""
    if isinstance(value, str):
        return to_text(value)
    if isinstance(value, dict):
        return dict((to_text(key), sanitize(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return [sanitize(item) for item in value]
    return value


def home_dir() -> str:
    """Return the user's home directory ($HOME, else the password database)."""
    return os.path.expanduser("~")


def rvssh_cache(*parts: str) -> str:
    """Return a path under ``~/.cache/rvssh``, rvssh's own folder on the server."""
    return os.path.join(home_dir(), ".cache", "rvssh", *parts)


def make_private_dirs(path: str) -> None:
    """Make the folder ``path`` under rvssh_cache(); it and ``~/.cache/rvssh`` are kept 0700."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)
    os.chmod(rvssh_cache(), 0o700)


def resolve_user_path(path: str) -> str:
    """Return ``path`` absolute: ``~``/``~/`` expanded, relative paths under $HOME.

    ``~user`` is not expanded (it is just a relative name), like the reference.
    """
    home = home_dir()
    if path == "~" or path == "":
        return home
    if path.startswith("~/"):
        path = home + path[1:]
    return os.path.normpath(os.path.join(home, path))


def locate_user_path(path: str) -> str:
    """Return resolve_user_path(path), or, when that does not exist, the path its
    ``\\xNN`` escapes stand for if that one exists (names printed by fs-list)."""
    target = resolve_user_path(path)
    if "\\x" in target and not os.path.lexists(target):
        raw = from_text(target)
        if os.path.lexists(raw):
            return raw
    return target


def free_local_port() -> "int":
    """Return a TCP port that is free on 127.0.0.1 right now."""
    import socket
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
    finally:
        sock.close()


def _not_serializable(value: "Any") -> "Any":
    raise TypeError("Object of type %s is not JSON serializable" % type(value).__name__)


def _json_writer() -> "Any":
    """Return a function writing a value as ``json.dumps(value, ensure_ascii=True, separators=(",", ":"))``.

    PERF: ``import json`` also imports re, enum and collections, about 6 ms
    of a command's start (a fifth of fs-list on 2,000 files); json's own C
    encoder in ``_json`` needs none of them. Without it, json itself.
    """
    try:
        from _json import encode_basestring_ascii, make_encoder
        encode = make_encoder(None, _not_serializable, encode_basestring_ascii, None, ":", ",", False, False, True)
    except (ImportError, TypeError):
        import json
        return lambda value: json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    return lambda value: "".join(encode(value, 0))


def run_command(commands: "Dict[str, Any]", argv: "List[str]") -> "Dict[str, Any]":
    """Run the subcommand named by ``argv[0]`` with the rest as its arguments."""
    if not argv or argv[0] not in commands:
        raise ProbeError("bad_request", "Unknown probe subcommand: %s" % (argv[0] if argv else ""))
    function, names = commands[argv[0]]
    if len(argv) - 1 != len(names):
        usage = " ".join([argv[0]] + ["<%s>" % name for name in names])
        raise ProbeError("bad_request", "Usage: %s" % usage)
    return function(*argv[1:])


def main(commands: "Dict[str, Any]", argv: "List[str]") -> int:
    """Run one subcommand and print its result (or error) as one JSON line."""
    try:
        result = run_command(commands, argv)
    except ProbeError as ex:
        result = {"error": {"kind": ex.kind, "message": ex.message}}
    except Exception as ex:  # the caller always gets one JSON object, never a traceback
        result = {"error": {"kind": "internal", "message": "%s: %s" % (type(ex).__name__, ex)}}
    to_json = _json_writer()
    text = to_json(result)
    if any(escape in text for escape in _SURROGATE_ESCAPES):
        # PERF: the full sanitize walk runs only when a string needs it
        # (undecodable bytes, or a character outside the BMP).
        text = to_json(sanitize(result))
    sys.stdout.write(text)
    sys.stdout.write("\n")
    sys.stdout.flush()
    return 0
