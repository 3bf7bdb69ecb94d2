"""``rvssh open HOST``: connect, pick the environment and the storage root, start the viewer, watch it.

Each step says what it does on stderr as it happens. The choices:

- **Environment**: ``--env`` (a name of ``conda-envs`` or an interpreter's
  path), else the one environment with runicorn, else the person picks
  among several; none with runicorn is an error that says how to install it.
- **Storage root**: ``--root``, else the root runicorn's config names when
  it exists (``config``'s ``defaultStorageRoot``), else the best folder of
  ``storage-candidates``, else that default, new.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol, Sequence

from rvssh.client.api import Client
from rvssh.client.destination import Destination
from rvssh.client.errors import ApiError, ClientError
from rvssh.client.login import Login, Person
from rvssh.client.tables import session_note
from rvssh.client.terminal import environment_label

Say = Callable[[str], None]
WATCH_INTERVAL = 2.0
START_POLL = 0.1


class Chooser(Person, Protocol):
    """A person who can also pick one of several environments."""

    def choose_environment(self, envs: Sequence[Mapping[str, Any]], host: str) -> Mapping[str, Any]:
        """Return the environment to use."""


@dataclass(frozen=True)
class OpenRequest:
    """What ``rvssh open`` was asked: where, and optionally which environment, root and local port."""

    destination: Destination
    env: str | None = None
    root: str | None = None
    local_port: int | None = None


@dataclass(frozen=True)
class Opened:
    """A started viewer: its session, its connection, and whether this command opened that connection."""

    session: dict[str, Any]
    connection: dict[str, Any]
    opened_connection: bool


def install_hint(envs: Sequence[Mapping[str, Any]], host: str) -> str:
    """Return what to say when no environment has runicorn: how to install it in the default one."""
    default = next((env for env in envs if env.get("is_default")), envs[0] if envs else None)
    python = default["path"] if default else "python3"
    return (f"No environment on {host} has runicorn. Install it with: {python} -m pip install runicorn "
            "(or name an environment with --env)")


def describe_session(session: Mapping[str, Any]) -> str:
    """Return a session's state in plain words, for the line printed when it changes."""
    note = session_note(session)
    return f"Viewer {session['sessionId']}: {session['status']}" + (f": {note}" if note else "")


class ViewerOpener:
    """Run the steps of ``rvssh open`` against the API."""

    def __init__(self, client: Client, person: Chooser, say: Say) -> None:
        self._client = client
        self._person = person
        self._say = say

    def open(self, request: OpenRequest) -> Opened:
        """Connect, choose, start; return the running viewer."""
        connection, fresh = self._connect(request.destination)
        env, config = self._environment(connection, request.env)
        root = self._root(connection, config, request.root)
        body: dict[str, Any] = {
            "host": connection["host"], "port": connection["port"], "username": connection["username"],
            "use_agent": True, "remote_root": root, "conda_env": env,
        }
        if request.local_port:
            body["local_port"] = request.local_port
        self._say("Starting the viewer…")
        session = self._start(body)
        self._say(f"Viewer {session['sessionId']} is {session['status']}.")
        return Opened(session, connection, fresh)

    def _connect(self, destination: Destination) -> tuple[dict[str, Any], bool]:
        self._say(f"Connecting to {destination}…")
        before = {entry["key"] for entry in self._client.status()["connections"] if entry.get("connected")}
        login = Login(self._client, self._person, {**destination.request_fields(), "use_agent": True})
        connection = login.send(self._client.connect)
        self._say(f"Connected as {connection['connection_id']}.")
        return connection, connection["connection_id"] not in before

    def _checked_config(self, connection_id: str, env: str) -> dict[str, Any]:
        config = self._client.config(connection_id, env)
        if not config.get("runicornVersion"):
            python = config.get("pythonPath") or env
            raise ClientError(f"runicorn cannot be imported in the environment {env} ({python}). "
                              f"Install it with: {python} -m pip install runicorn")
        return config

    def _environment(self, connection: Mapping[str, Any], wanted: str | None) -> tuple[str, dict[str, Any]]:
        connection_id = connection["connection_id"]
        if wanted:
            config = self._checked_config(connection_id, wanted)
            self._say(f"Environment: {wanted} ({config['pythonVersion']}, runicorn {config['runicornVersion']})")
            return wanted, config
        self._say("Looking for environments with runicorn…")
        envs = self._client.conda_envs(connection_id)
        ready = [env for env in envs if env.get("runicorn_version")]
        if not ready:
            raise ClientError(install_hint(envs, connection["host"]))
        chosen = ready[0] if len(ready) == 1 else self._person.choose_environment(ready, connection["host"])
        config = self._checked_config(connection_id, chosen["name"])
        self._say(f"Environment: {environment_label(chosen)}")
        return chosen["name"], config

    def _root(self, connection: Mapping[str, Any], config: Mapping[str, Any], wanted: str | None) -> str:
        if wanted:
            root, why = wanted, "from --root"
        elif config.get("storageRootExists"):
            root, why = config["defaultStorageRoot"], "runicorn's storage root"
        else:
            self._say("Looking for storage roots…")
            root, why = config["defaultStorageRoot"], "runicorn's default, new"
            try:
                candidates = self._client.storage_candidates(connection["connection_id"])
            except ApiError as ex:
                self._say(f"Could not look for storage roots ({ex.message}); using the default.")
                candidates = []
            if candidates:
                root, why = candidates[0]["path"], f"found, {candidates[0]['run_count']} runs"
        self._say(f"Storage root: {root} ({why})")
        return str(root)

    def _start(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Start the viewer; a Ctrl-C meanwhile waits for the start to finish, then stops it.

        The start runs in a thread: over HTTP it goes on in rvssh serve
        whatever this process does, and in process it must not be cut in
        half; either way the session it makes is stopped, not left behind.
        """
        outcome: dict[str, Any] = {}

        def start() -> None:
            try:
                outcome["session"] = self._client.start_viewer(body)
            except BaseException as ex:  # handed to the main thread below
                outcome["error"] = ex

        worker = threading.Thread(target=start, name="rvssh-open-start", daemon=True)
        worker.start()
        try:
            while worker.is_alive():
                worker.join(START_POLL)
        except KeyboardInterrupt:
            self._say("Interrupted: the viewer is stopped once its start is done (Ctrl-C again leaves it to rvssh stop)…")
            worker.join()
            if "session" in outcome:
                self._client.stop_viewer(outcome["session"]["sessionId"])
                self._say(f"Stopped viewer {outcome['session']['sessionId']}.")
            raise
        if "error" in outcome:
            raise outcome["error"]
        return dict(outcome["session"])


def watch(client: Client, opened: Opened, say: Say, interval: float = WATCH_INTERVAL) -> None:
    """Say every change of the session until it is gone (stopped elsewhere) or Ctrl-C stops it."""
    session_id = opened.session["sessionId"]
    seen = (opened.session["status"], opened.session.get("error"), opened.session.get("message"))
    url = opened.session["url"]
    try:
        while True:
            time.sleep(interval)
            current = client.session(session_id)
            if current is None:
                say(f"Viewer {session_id} was stopped (by rvssh stop or the page).")
                return
            state = (current["status"], current.get("error"), current.get("message"))
            if state != seen:
                say(describe_session(current))
                seen = state
            if current["url"] != url:
                url = current["url"]
                say(f"The viewer moved to {url}")
    except KeyboardInterrupt:
        close(client, opened, say)


def close(client: Client, opened: Opened, say: Say) -> None:
    """Stop the viewer; close the connection too when this command opened it and nothing else uses it."""
    session_id = opened.session["sessionId"]
    say(f"Stopping viewer {session_id}…")
    try:
        client.stop_viewer(session_id)
    except ApiError as ex:
        if ex.status != 404:
            raise
    connection = opened.connection
    if opened.opened_connection:
        others = [item for item in client.status()["viewer_sessions"] if item["connectionId"] == connection["connection_id"]]
        if not others:
            client.disconnect(connection["host"], connection["port"], connection["username"])
            say(f"Closed the connection {connection['connection_id']}.")
    say("Stopped.")
