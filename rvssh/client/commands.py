"""The commands ``open``, ``ls``, ``stop`` and ``hosts``: a client on a transport, output, exit status.

Exit status: 0 done, 1 failed, 2 usage, 130 interrupted. Errors are one
plain line on stderr (``rvssh: <what went wrong>``); what a command finds
goes to stdout (the URL of ``open``, the tables, ``--json``).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import webbrowser
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping, TextIO

from rvssh.client.api import Client
from rvssh.client.destination import Destination, parse_destination
from rvssh.client.errors import EXIT_FAILED, ClientError, UsageError
from rvssh.client.open_viewer import OpenRequest, ViewerOpener, watch
from rvssh.client.tables import format_hosts, format_status, one_line
from rvssh.client.terminal import TerminalPerson
from rvssh.client.transport import open_transport
from rvssh.errors import RvsshError
from rvssh.settings import Settings

EXIT_OK = 0
EXIT_INTERRUPTED = 130
SESSION_ID = re.compile(r"[0-9a-f]{8}")


class Output:
    """Where a command writes: what it finds on stdout, its steps and errors on stderr."""

    def __init__(self, stdin: TextIO | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> None:
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr

    def result(self, text: str) -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()

    def say(self, text: str) -> None:
        self.stderr.write(text + "\n")
        self.stderr.flush()


@contextmanager
def client_for(settings: Settings, watch_links: bool = False) -> Iterator[Client]:
    """Yield a client on ``rvssh serve`` if one answers, else on the app in this process."""
    transport = open_transport(settings, watch=watch_links)
    try:
        yield Client(transport)
    finally:
        transport.close()


def open_in_browser(url: str) -> bool:
    """Open ``url`` in a graphical browser; return False when there is none to open."""
    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        return False
    # A console browser (lynx, w3m: what webbrowser finds without a display)
    # would take this terminal over until it quits.
    if type(browser) is webbrowser.GenericBrowser:
        return False
    return bool(browser.open(url))


def run_open(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """``rvssh open HOST``: start a viewer, print its URL, open the browser, stay until Ctrl-C."""
    request = OpenRequest(parse_destination(args.host), env=args.env, root=args.root, local_port=args.local_port)
    person = TerminalPerson(output.stdin, output.stderr, settings.user_known_hosts)
    with client_for(settings, watch_links=not args.detach) as client:
        output.say(f"Using {client.transport.description}.")
        opened = ViewerOpener(client, person, output.say).open(request)
        url = opened.session["url"]
        output.result(url)
        if args.browser and open_in_browser(url):
            output.say("Opened it in your browser.")
        if args.detach:
            output.say(f"The viewer keeps running: rvssh stop {opened.session['sessionId']} stops it.")
            return EXIT_OK
        output.say("Ctrl-C stops the viewer.")
        watch(client, opened, output.say)
    return EXIT_OK


def run_ls(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """``rvssh ls``: connections and viewer sessions, as a table or JSON."""
    with client_for(settings) as client:
        status = client.status()
    output.result(json.dumps(status, indent=2) if args.json else format_status(status))
    return EXIT_OK


def _matches(destination: Destination, host: str, port: int, username: str) -> bool:
    return (
        destination.host.lower() == host.lower()
        and destination.port in (None, port)
        and destination.username in (None, username)
    )


def stop_targets(status: Mapping[str, Any], what: str | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return (sessions, connections) that ``rvssh stop WHAT`` names; ``None`` means all.

    WHAT is a session id, else a HOST as ``rvssh open`` takes it: the
    connections to that host (and port and user, when given) and their sessions.

    Raises:
        UsageError: WHAT is not a HOST either.
    """
    sessions = list(status.get("viewer_sessions") or ())
    connections = list(status.get("connections") or ())
    if what is None:
        return sessions, connections
    if SESSION_ID.fullmatch(what):
        named = [session for session in sessions if session["sessionId"] == what]
        if named:
            return named, []
    destination = parse_destination(what)
    connections = [item for item in connections if _matches(destination, item["host"], item["port"], item["username"])]
    keys = {item["key"] for item in connections}
    sessions = [
        session for session in sessions
        if session["connectionId"] in keys or _matches(destination, session["host"], session["sshPort"], session["username"])
    ]
    return sessions, connections


def run_stop(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """``rvssh stop SESSION|HOST|--all``: stop viewers, and close the connections of a HOST."""
    if args.all == bool(args.target):
        raise UsageError("name a SESSION or HOST, or give --all (not both)")
    failures = 0
    with client_for(settings) as client:
        sessions, connections = stop_targets(client.status(), None if args.all else args.target)
        if not sessions and not connections:
            if args.all:
                output.say("Nothing to stop.")
                return EXIT_OK
            raise ClientError(f"No viewer session or connection matches {args.target!r} (see rvssh ls)")
        for session in sessions:
            failures += _attempt(output, lambda: client.stop_viewer(session["sessionId"]),
                                 f"Stopped viewer {session['sessionId']} on {session['connectionId']}.")
        for connection in connections:
            failures += _attempt(output, lambda: client.disconnect(connection["host"], connection["port"],
                                                                   connection["username"]),
                                 f"Closed the connection {connection['key']}.")
    return EXIT_FAILED if failures else EXIT_OK


def _attempt(output: Output, action: Callable[[], Any], done: str) -> int:
    """Run one stop; say it is done, or say why not. Return the number of failures (0 or 1)."""
    try:
        action()
    except ClientError as ex:
        output.say(f"rvssh: {one_line(ex.message)}")
        return EXIT_FAILED
    output.say(done)
    return 0


def run_hosts(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """``rvssh hosts``: the Host aliases of the ssh config and where each leads."""
    with client_for(settings) as client:
        answer = client.ssh_hosts()
    output.result(json.dumps(answer, indent=2) if args.json else format_hosts(answer))
    return EXIT_OK


COMMANDS: dict[str, Callable[[argparse.Namespace, Settings, Output], int]] = {
    "open": run_open,
    "ls": run_ls,
    "stop": run_stop,
    "hosts": run_hosts,
}


def run_command(args: argparse.Namespace, settings: Settings, output: Output | None = None) -> int:
    """Run a client command; turn its errors into one line on stderr and an exit status."""
    output = output or Output()
    # In-process work logs like rvssh serve, but only what needs attention unless debugging.
    level = logging.DEBUG if settings.log_level == "debug" else logging.WARNING
    logging.basicConfig(level=level, format="rvssh: %(levelname)s %(name)s: %(message)s")
    try:
        return COMMANDS[args.command](args, settings, output)
    except RvsshError as ex:
        output.say(f"rvssh: {one_line(ex.message)}")
        return ex.exit_status if isinstance(ex, ClientError) else EXIT_FAILED
    except KeyboardInterrupt:
        output.say("rvssh: interrupted")
        return EXIT_INTERRUPTED
