"""The whole flow a user runs against one server, step by step as the Runicorn UI does (issue #10).

``connect_through`` walks a connect through its 409s (accepting each key, as
the UI's dialog does) and its 401 ``AUTH_PROMPT`` questions (answered by the
test); ``run_whole_flow`` then runs conda-envs, config, fs/list,
viewer/start, ``/api/health`` through the tunnel and viewer/stop, and checks
that nothing is left running on the server.
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from tests.integration.rvssh_fixtures import Rvssh, accept, get, ok_json
from tests.sshbed import run_as, session_viewer_pids, wait_until

if TYPE_CHECKING:
    import falcon.testing

RUNICORN_VERSION = "0.7.2"
# What a 409 or a question may ask of one connect at most (hops and factors).
MAX_STEPS = 6

Answer = Callable[[dict[str, Any]], list[str]]


@dataclass
class Walk:
    """How a connect went: the last answer, the keys accepted and the questions asked on the way."""

    result: falcon.testing.Result
    host_keys: list[dict[str, Any]] = field(default_factory=list)
    questions: list[dict[str, Any]] = field(default_factory=list)


def connect_through(
    rvssh: Rvssh, body: dict[str, Any], answer: Answer | None = None, path: str = "/api/remote/connect"
) -> Walk:
    """Post ``body`` to ``path`` again and again, accepting each 409 and answering each AUTH_PROMPT.

    Args:
        answer: given the AUTH_PROMPT ``detail``, returns the ``responses`` of
            the retry; None means a question ends the walk (the 401 is returned).
    """
    walk = Walk(rvssh.client.simulate_post(path, json=body))
    for _ in range(MAX_STEPS):
        detail = walk.result.json.get("detail") if isinstance(walk.result.json, dict) else None
        if walk.result.status_code == 409 and isinstance(detail, dict):
            walk.host_keys.append(detail["host_key"])
            accept(rvssh, detail["host_key"])
        elif walk.result.status_code == 401 and isinstance(detail, dict) and answer is not None:
            walk.questions.append(detail)
            body = {**body, "responses": answer(detail)}
        else:
            return walk
        walk.result = rvssh.client.simulate_post(path, json=body)
    raise AssertionError(f"still asked after {MAX_STEPS} steps: {walk.result.text}")


def tunnel_health(port: int) -> dict[str, Any]:
    """Return the viewer's /api/health answer through rvssh's tunnel."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/api/health")
        response = connection.getresponse()
        assert response.status == 200
        return json.loads(response.read())
    finally:
        connection.close()


def port_closed(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def viewer_pids(user: str) -> list[int]:
    """Return the pids of the Runicorn viewers ``user`` runs on this machine (the server)."""
    listing = subprocess.run(["pgrep", "-u", user, "-f", "runicorn viewer"], capture_output=True, text=True)
    return [int(pid) for pid in listing.stdout.split()]


@dataclass(frozen=True)
class FlowExpectation:
    """What one server account should show along the flow.

    Attributes:
        user: the account on the server.
        home: its home folder.
        system_python: the ``system`` entry's interpreter (the login PATH's
            python3), or None when the PATH has none.
        conda_env: the environment the viewer runs in (a name or an interpreter path).
        python: the interpreter ``config`` names for ``conda_env``.
    """

    user: str
    home: str
    system_python: str | None
    conda_env: str
    python: str


def run_whole_flow(
    rvssh: Rvssh, connect_body: dict[str, Any], connection_id: str, expect: FlowExpectation
) -> dict[str, Any]:
    """Run conda-envs, config, fs/list, viewer/start, health through the tunnel and stop; return the session.

    The connection must be up already (``connect_through``); the viewer
    start sends ``connect_body`` again, as the UI does, and rides on it.
    """
    envs = ok_json(get(rvssh, "conda-envs", connection_id=connection_id))["envs"]
    system = [env for env in envs if env["name"] == "system"]
    if expect.system_python is None:
        assert system == [], envs
    else:
        assert [(env["path"], env["type"]) for env in system] == [(expect.system_python, "system")], envs

    config = ok_json(get(rvssh, "config", connection_id=connection_id, conda_env=expect.conda_env))
    assert (config["pythonPath"], config["runicornVersion"]) == (expect.python, RUNICORN_VERSION), config
    assert config["homeDirectory"] == expect.home

    listing = ok_json(get(rvssh, "fs/list", connection_id=connection_id, path="~"))
    assert listing["path"] == expect.home, listing

    root = f"{expect.home}/rvt-flow-{uuid.uuid4().hex[:8]}"
    try:
        body = {**connect_body, "remote_root": root, "conda_env": expect.conda_env}
        started = rvssh.client.simulate_post("/api/remote/viewer/start", json=body)
        session = ok_json(started)["session"]
        assert (session["status"], session["username"], session["connectionId"]) == (
            "running", expect.user, connection_id
        ), session
        health = tunnel_health(session["localPort"])
        assert (health["status"], health["storage"]) == ("ok", root), health
        assert session_viewer_pids(session["sessionId"]) == [session["remotePid"]]

        stopped = rvssh.client.simulate_post("/api/remote/viewer/stop", json={"session_id": session["sessionId"]})
        assert ok_json(stopped)["ok"] is True
        assert port_closed(session["localPort"])
        wait_until(lambda: session_viewer_pids(session["sessionId"]) == [], 10,
                   f"the viewer of {expect.user} outlived its stop")
        return session
    finally:
        run_as(expect.user, ["rm", "-rf", root])
