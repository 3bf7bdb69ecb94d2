"""The two transports of the commands, and the exit status of each outcome (#13).

The HTTP transport talks to the real app served over a real loopback socket
(wsgiref), whose caller check is set to "unknown", as on macOS: every
request needs the token.
"""

from __future__ import annotations

import argparse
import json
import threading
from pathlib import Path
from typing import Any, Callable, Iterator
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from rvssh import cli
from rvssh.app import create_app
from rvssh.client import commands
from rvssh.client.errors import ClientError
from rvssh.client.transport import HttpTransport, InProcessTransport, open_transport
from rvssh.settings import Settings
from rvssh.store.token import load_or_create_token
from tests import callers
from tests.sshbed import free_port


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output clean."""


def serve_in_thread(app: Callable[..., Any]) -> Iterator[int]:
    server: WSGIServer = make_server("127.0.0.1", 0, app, handler_class=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def served_state(tmp_path: Path) -> Path:
    return tmp_path / "served"


@pytest.fixture
def rvssh_port(served_state: Path) -> Iterator[int]:
    """Serve rvssh on a loopback port; it cannot tell who calls, so it asks for the token."""
    app = create_app(Settings(state_dir=served_state), caller_uid=callers.unknown)
    yield from serve_in_thread(app)


def test_the_token_is_read_from_the_state_dir_once_the_server_asks(served_state: Path, rvssh_port: int) -> None:
    transport = HttpTransport("127.0.0.1", rvssh_port, Settings(state_dir=served_state))
    assert transport.answers_as_rvssh()
    reply = transport.request("GET", "/api/remote/status")
    assert (reply.status, reply.body["connection_count"]) == (200, 0)
    query = transport.request("GET", "/api/remote/viewer/status/0a1b2c3d")
    assert (query.status, query.body) == (404, {"detail": "Session not found: 0a1b2c3d"})


def test_an_explicit_token_is_sent_and_a_wrong_one_is_a_clear_error(served_state: Path, rvssh_port: int,
                                                                     tmp_path: Path) -> None:
    token = load_or_create_token(served_state)
    right = HttpTransport("127.0.0.1", rvssh_port, Settings(state_dir=tmp_path / "elsewhere", token=token))
    assert right.request("GET", "/api/remote/sessions").status == 200
    wrong = HttpTransport("127.0.0.1", rvssh_port, Settings(state_dir=tmp_path / "elsewhere", token="nope"))
    with pytest.raises(ClientError, match=r"refused the token \(does it use another state directory than .*elsewhere"):
        wrong.request("GET", "/api/remote/sessions")
    missing = HttpTransport("127.0.0.1", rvssh_port, Settings(state_dir=tmp_path / "elsewhere"))
    with pytest.raises(ClientError, match=r"asks for a token: set RVSSH_TOKEN"):
        missing.request("GET", "/api/remote/sessions")


def test_another_program_on_the_port_is_not_taken_for_rvssh(tmp_path: Path) -> None:
    def not_rvssh(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({"status": "ok", "info": {"title": "Runicorn"}}).encode()]

    for port in serve_in_thread(not_rvssh):
        settings = Settings(state_dir=tmp_path / "state", bind=f"127.0.0.1:{port}")
        assert not HttpTransport("127.0.0.1", port, settings).answers_as_rvssh()
        transport = open_transport(settings)
        assert isinstance(transport, InProcessTransport)
        transport.close()


def test_open_transport_finds_rvssh_serve_at_the_bind(served_state: Path, rvssh_port: int) -> None:
    found = open_transport(Settings(state_dir=served_state, bind=f"0.0.0.0:{rvssh_port}"))
    assert isinstance(found, HttpTransport) and found.description == f"rvssh serve at http://127.0.0.1:{rvssh_port}"
    nothing = open_transport(Settings(state_dir=served_state, bind=f"127.0.0.1:{free_port()}"))
    assert isinstance(nothing, InProcessTransport) and str(served_state) in nothing.description
    assert nothing.request("GET", "/api/remote/status").body["viewer_session_count"] == 0
    assert nothing.request("POST", "/api/remote/viewer/stop", body={"session_id": "x"}).status == 404
    nothing.close()


def test_a_server_that_stops_answering_is_one_clear_line(tmp_path: Path) -> None:
    port = free_port()
    transport = HttpTransport("127.0.0.1", port, Settings(state_dir=tmp_path))
    with pytest.raises(ClientError, match=rf"^rvssh serve at http://127.0.0.1:{port} did not answer: Connection refused$"):
        transport.request("GET", "/api/remote/status")


@pytest.fixture
def cli_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the commands at a fresh state dir and a bind where nothing answers."""
    monkeypatch.setenv("RVSSH_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("RVSSH_BIND", f"127.0.0.1:{free_port()}")
    monkeypatch.delenv("RVSSH_TOKEN", raising=False)
    return tmp_path / "state"


@pytest.mark.parametrize(
    ("argv", "status", "stderr"),
    [
        (["open", "gpu:0"], 2, "rvssh: not a port (1-65535) in 'gpu:0': '0'\n"),
        (["stop"], 2, "rvssh: name a SESSION or HOST, or give --all (not both)\n"),
        (["stop", "gpu", "--all"], 2, "rvssh: name a SESSION or HOST, or give --all (not both)\n"),
        (["stop", "0a1b2c3d"], 1, "rvssh: No viewer session or connection matches '0a1b2c3d' (see rvssh ls)\n"),
        (["stop", "--all"], 0, "Nothing to stop.\n"),
        (["ls"], 0, ""),
    ],
)
def test_exit_status_and_one_line_on_stderr(cli_state: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                                            status: int, stderr: str) -> None:
    assert cli.main(argv) == status
    assert capsys.readouterr().err == stderr


def test_ls_json_is_the_status_answer(cli_state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["ls", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"connections": [], "viewer_sessions": [], "connection_count": 0,
                                                   "viewer_session_count": 0}


def test_usage_errors_of_argparse_exit_2(cli_state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["open", "gpu", "--local-port", "99999"])
    assert caught.value.code == 2
    assert "--local-port: not a port (1-65535): '99999'" in capsys.readouterr().err


def test_ctrl_c_exits_130_with_one_line(cli_state: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(args: argparse.Namespace, settings: Settings, output: commands.Output) -> int:
        raise KeyboardInterrupt

    monkeypatch.setitem(commands.COMMANDS, "ls", interrupted)
    assert cli.main(["ls"]) == 130
    assert capsys.readouterr().err == "rvssh: interrupted\n"
