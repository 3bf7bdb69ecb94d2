"""The commands' conversations with the API, replayed: host keys hop by hop, questions, choices (#13).

A second factor or a ProxyJump route of several unknown keys needs servers
the test bed does not have, so the API's documented answers are replayed
here; tests/integration/test_cli.py runs the real thing for one hop and a
password.
"""

from __future__ import annotations

import copy
import io
from typing import Any, Mapping

import pytest

from rvssh.client.api import Client
from rvssh.client.destination import Destination
from rvssh.client.errors import ApiError, ClientError
from rvssh.client.login import Login
from rvssh.client.open_viewer import OpenRequest, ViewerOpener, install_hint
from rvssh.client.terminal import TerminalPerson
from rvssh.client.transport import Reply


class ScriptedTransport:
    """Answer each request with the next scripted reply, after checking it is the expected call."""

    description = "a script"

    def __init__(self, *replies: tuple[str, str, int, Any]) -> None:
        self._replies = list(replies)
        self.sent: list[tuple[str, str, Any, Any]] = []

    def request(self, method: str, path: str, body: Any = None, query: Mapping[str, str] | None = None) -> Reply:
        assert self._replies, f"unexpected {method} {path}"
        expected_method, expected_path, status, answer = self._replies.pop(0)
        assert (method, path) == (expected_method, expected_path)
        self.sent.append((method, path, copy.deepcopy(body), dict(query or {})))
        return Reply(status, answer)

    def close(self) -> None:
        assert not self._replies, f"replies left: {self._replies}"


class ScriptedPerson:
    """Answer as told, and remember what was asked."""

    def __init__(self, trust: bool = True, answers: tuple[str, ...] = (), pick: int = 0) -> None:
        self.trust = trust
        self.answers = list(answers)
        self.pick = pick
        self.asked: list[tuple[str, Any]] = []

    def trust_host_key(self, host_key: Mapping[str, Any]) -> bool:
        self.asked.append(("key", host_key["known_hosts_host"]))
        return self.trust

    def warn_changed_host_key(self, host_key: Mapping[str, Any], trusted_by_rvssh: bool) -> None:
        self.asked.append(("changed", trusted_by_rvssh))

    def answer(self, prompt: Mapping[str, Any], message: str) -> str:
        self.asked.append(("prompt", prompt["prompt"]))
        return self.answers.pop(0)

    def choose_environment(self, envs: Any, host: str) -> Any:
        self.asked.append(("env", [env["name"] for env in envs]))
        return envs[self.pick]


def host_key_problem(host: str, reason: str = "unknown") -> dict[str, Any]:
    key = {"host": host, "port": 22, "known_hosts_host": host, "key_type": "ssh-ed25519",
           "fingerprint_sha256": f"SHA256:{host}", "public_key": "ssh-ed25519 AAAA", "reason": reason}
    return {"detail": {"code": "HOST_KEY_CONFIRMATION_REQUIRED", "message": "Host key verification failed",
                       "host_key": key}}


def auth_prompt(*prompts: tuple[str, str]) -> dict[str, Any]:
    return {"detail": {"code": "AUTH_PROMPT", "message": "A second factor is needed: ...",
                       "prompts": [{"prompt": text, "echo": False, "kind": kind} for text, kind in prompts]}}


CONNECT = ("POST", "/api/remote/connect")
ACCEPT = ("POST", "/api/remote/known-hosts/accept")
CONNECTED = {"ok": True, "connection_id": "me@gpu:22", "host": "gpu", "port": 22, "username": "me", "connected": True}


def test_each_hop_key_then_each_question_is_answered_and_the_same_request_sent_again() -> None:
    transport = ScriptedTransport(
        (*CONNECT, 409, host_key_problem("bastion")),
        (*ACCEPT, 200, {"ok": True}),
        (*CONNECT, 409, host_key_problem("gpu")),
        (*ACCEPT, 200, {"ok": True}),
        (*CONNECT, 401, auth_prompt(("me@gpu's password:", "password"))),
        (*CONNECT, 401, auth_prompt(("me@gpu's password:", "password"), ("Verification code:", "keyboard-interactive"))),
        (*CONNECT, 200, CONNECTED),
    )
    person = ScriptedPerson(answers=("pw", "123456"))
    client = Client(transport)
    assert Login(client, person, {"host": "gpu", "use_agent": True}).send(client.connect) == CONNECTED
    transport.close()
    assert person.asked == [("key", "bastion"), ("key", "gpu"), ("prompt", "me@gpu's password:"),
                            ("prompt", "Verification code:")]
    accepted = [body for method, path, body, _ in transport.sent if path.endswith("/accept")]
    assert [body["host"] for body in accepted] == ["bastion", "gpu"]
    assert set(accepted[0]) == {"host", "port", "key_type", "public_key", "fingerprint_sha256"}
    connects = [body for method, path, body, _ in transport.sent if path.endswith("/connect")]
    assert [body.get("responses") for body in connects] == [None, None, None, ["pw"], ["pw", "123456"]]
    assert all(body["host"] == "gpu" and body["use_agent"] is True for body in connects)


def test_a_missing_passphrase_is_sent_as_the_passphrase() -> None:
    transport = ScriptedTransport(
        (*CONNECT, 401, auth_prompt(("Enter passphrase for key '/k':", "passphrase"))),
        (*CONNECT, 200, CONNECTED),
    )
    client = Client(transport)
    Login(client, ScriptedPerson(answers=("secret",)), {"host": "gpu"}).send(client.connect)
    assert transport.sent[1][2] == {"host": "gpu", "passphrase": "secret"}


@pytest.mark.parametrize("in_rvssh_file", [True, False])
def test_a_changed_key_is_shown_and_never_trusted(in_rvssh_file: bool) -> None:
    listed = [{"known_hosts_host": "gpu", "key_type": "ssh-ed25519"}] if in_rvssh_file else []
    transport = ScriptedTransport(
        (*CONNECT, 409, host_key_problem("gpu", reason="changed")),
        ("GET", "/api/remote/known-hosts/list", 200, {"entries": listed}),
    )
    person = ScriptedPerson()
    client = Client(transport)
    with pytest.raises(ClientError, match=r"^Host key verification failed\.$"):
        Login(client, person, {"host": "gpu"}).send(client.connect)
    assert person.asked == [("changed", in_rvssh_file)]
    transport.close()  # no accept was sent


def test_a_refused_key_stops_and_a_wrong_answer_is_the_api_error() -> None:
    client = Client(ScriptedTransport((*CONNECT, 409, host_key_problem("gpu"))))
    with pytest.raises(ClientError, match="Host key verification failed"):
        Login(client, ScriptedPerson(trust=False), {"host": "gpu"}).send(client.connect)
    refused = {"detail": "Connection failed: Permission denied (the answer to 'Password:' was refused)"}
    client = Client(ScriptedTransport((*CONNECT, 401, auth_prompt(("Password:", "keyboard-interactive"))),
                                      (*CONNECT, 401, refused)))
    with pytest.raises(ApiError) as caught:
        Login(client, ScriptedPerson(answers=("wrong",)), {"host": "gpu"}).send(client.connect)
    assert (caught.value.status, caught.value.message) == (401, refused["detail"])


def test_a_question_asked_again_without_a_new_prompt_ends_the_login() -> None:
    asked = auth_prompt(("Code:", "keyboard-interactive"))
    client = Client(ScriptedTransport((*CONNECT, 401, asked), (*CONNECT, 401, asked)))
    with pytest.raises(ClientError, match="A second factor is needed"):
        Login(client, ScriptedPerson(answers=("1",)), {"host": "gpu"}).send(client.connect)


class FakeTerminal(io.StringIO):
    """Typed lines on a stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_the_terminal_asks_yes_or_no_until_it_gets_one() -> None:
    errors = io.StringIO()
    person = TerminalPerson(FakeTerminal("maybe\nYES\n"), errors)
    assert person.trust_host_key(host_key_problem("gpu")["detail"]["host_key"]) is True
    assert errors.getvalue() == (
        "The authenticity of host 'gpu' can't be established.\n"
        "ED25519 key fingerprint is SHA256:gpu.\n"
        "Are you sure you want to continue connecting (yes/no)? Please type 'yes' or 'no': "
    )
    assert TerminalPerson(FakeTerminal("no\n"), io.StringIO()).trust_host_key(
        host_key_problem("gpu")["detail"]["host_key"]) is False


def test_secrets_are_read_without_echo_and_echoed_questions_as_lines() -> None:
    read: list[str] = []
    person = TerminalPerson(FakeTerminal("visible\n"), io.StringIO(), read_secret=lambda text: read.append(text) or "s3")
    assert person.answer({"prompt": "Password:", "echo": False, "kind": "keyboard-interactive"}, "") == "s3"
    assert person.answer({"prompt": "Your name:", "echo": True, "kind": "keyboard-interactive"}, "") == "visible"
    assert read == ["Password: "]


def test_without_a_terminal_nothing_is_asked() -> None:
    person = TerminalPerson(io.StringIO("yes\n"), io.StringIO())
    with pytest.raises(ClientError, match=r"^The authenticity of host 'gpu' can't be established\. ED25519 key "
                                          r"fingerprint is SHA256:gpu\.; run rvssh in a terminal to answer$"):
        person.trust_host_key(host_key_problem("gpu")["detail"]["host_key"])
    with pytest.raises(ClientError, match="^The server asks: Code:; run rvssh in a terminal"):
        person.answer({"prompt": "Code:", "echo": False}, "The server asks: Code:")


ENVS = [
    {"name": "base", "type": "conda", "python_version": "Python 3.11.7", "path": "/c/bin/python", "is_default": False,
     "runicorn_version": "0.7.2"},
    {"name": "rv", "type": "venv", "python_version": "Python 3.11.7", "path": "/v/bin/python", "is_default": True,
     "runicorn_version": "0.7.2"},
    {"name": "system", "type": "system", "python_version": "Python 3.11.2", "path": "/usr/bin/python3",
     "is_default": False, "runicorn_version": None},
]


def test_the_terminal_choice_of_environment_defaults_to_the_server_default() -> None:
    errors = io.StringIO()
    ready = ENVS[:2]
    assert TerminalPerson(FakeTerminal("\n"), errors).choose_environment(ready, "gpu")["name"] == "rv"
    assert "  1) base (conda, Python 3.11.7, runicorn 0.7.2)\n  2) rv (venv," in errors.getvalue()
    assert "Which one [2]? " in errors.getvalue()
    assert TerminalPerson(FakeTerminal("9\nbase\n"), io.StringIO()).choose_environment(ready, "gpu")["name"] == "base"
    with pytest.raises(ClientError, match=r"have runicorn \(base, rv\): pick one with --env"):
        TerminalPerson(io.StringIO(), io.StringIO()).choose_environment(ready, "gpu")


def config(root_exists: bool, runicorn: str | None = "0.7.2") -> dict[str, Any]:
    return {"ok": True, "condaEnv": "rv", "pythonVersion": "Python 3.11.7", "runicornVersion": runicorn,
            "defaultStorageRoot": "/home/me/runicorn_data", "storageRootExists": root_exists,
            "suggestedRemotePort": 40000, "connectionId": "me@gpu:22", "pythonPath": "/v/bin/python"}


SESSION = {"sessionId": "0a1b2c3d", "status": "running", "url": "http://localhost:41234"}


def opening_script(*middle: tuple[str, str, int, Any]) -> ScriptedTransport:
    return ScriptedTransport(
        ("GET", "/api/remote/status", 200, {"connections": [], "viewer_sessions": []}),
        (*CONNECT, 200, CONNECTED),
        *middle,
        ("POST", "/api/remote/viewer/start", 200, {"ok": True, "session": SESSION, "message": "ready"}),
    )


def test_open_picks_the_environment_asks_among_several_and_prefers_an_existing_root() -> None:
    transport = opening_script(
        ("GET", "/api/remote/conda-envs", 200, {"ok": True, "envs": ENVS}),
        ("GET", "/api/remote/config", 200, config(root_exists=False)),
        ("GET", "/api/remote/storage-candidates", 200, {"candidates": [{"path": "/data/runs", "run_count": 12}]}),
    )
    person = ScriptedPerson(pick=1)
    said: list[str] = []
    opened = ViewerOpener(Client(transport), person, said.append).open(OpenRequest(Destination("gpu"), local_port=8080))
    transport.close()
    assert opened.session == SESSION and opened.opened_connection is True
    assert person.asked == [("env", ["base", "rv"])]
    assert transport.sent[3][3] == {"connection_id": "me@gpu:22", "conda_env": "rv"}
    assert transport.sent[-1][2] == {"host": "gpu", "port": 22, "username": "me", "use_agent": True,
                                     "remote_root": "/data/runs", "conda_env": "rv", "local_port": 8080}
    assert said == ["Connecting to gpu…", "Connected as me@gpu:22.", "Looking for environments with runicorn…",
                    "Environment: rv (venv, Python 3.11.7, runicorn 0.7.2)",
                    "Looking for storage roots…", "Storage root: /data/runs (found, 12 runs)", "Starting the viewer…",
                    "Viewer 0a1b2c3d is running."]


def test_open_with_env_and_an_existing_default_root_asks_nothing() -> None:
    transport = opening_script(("GET", "/api/remote/config", 200, config(root_exists=True)))
    person = ScriptedPerson()
    ViewerOpener(Client(transport), person, lambda text: None).open(OpenRequest(Destination("gpu"), env="/v/bin/python"))
    assert person.asked == []
    assert transport.sent[-1][2]["remote_root"] == "/home/me/runicorn_data"
    assert transport.sent[-1][2]["conda_env"] == "/v/bin/python"


def test_open_without_runicorn_says_how_to_install_it() -> None:
    transport = ScriptedTransport(
        ("GET", "/api/remote/status", 200, {"connections": [{"key": "me@gpu:22", "connected": True}], "viewer_sessions": []}),
        (*CONNECT, 200, CONNECTED),
        ("GET", "/api/remote/conda-envs", 200, {"ok": True, "envs": ENVS[2:]}),
    )
    with pytest.raises(ClientError) as caught:
        ViewerOpener(Client(transport), ScriptedPerson(), lambda text: None).open(OpenRequest(Destination("gpu")))
    assert caught.value.message == install_hint(ENVS[2:], "gpu") == (
        "No environment on gpu has runicorn. Install it with: /usr/bin/python3 -m pip install runicorn "
        "(or name an environment with --env)")
    not_importable = ScriptedTransport(
        ("GET", "/api/remote/status", 200, {"connections": [], "viewer_sessions": []}),
        (*CONNECT, 200, CONNECTED),
        ("GET", "/api/remote/config", 200, config(root_exists=True, runicorn=None)),
    )
    with pytest.raises(ClientError, match=r"runicorn cannot be imported in the environment rv \(/v/bin/python\)\. "
                                          r"Install it with: /v/bin/python -m pip install runicorn"):
        ViewerOpener(Client(not_importable), ScriptedPerson(), lambda text: None).open(
            OpenRequest(Destination("gpu"), env="rv"))
