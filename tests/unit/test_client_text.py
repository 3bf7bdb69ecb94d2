"""Pure parts of the commands: HOST forms, tables, ssh's host-key texts (#13)."""

from __future__ import annotations

import pytest

from rvssh.client.destination import Destination, parse_destination
from rvssh.client.errors import UsageError, detail_text
from rvssh.client.tables import format_age, format_hosts, format_status, format_table, status_rows
from rvssh.client.terminal import changed_key_text, environment_label, key_name, unknown_key_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("gpu-box", Destination("gpu-box")),
        ("me@gpu-box", Destination("gpu-box", username="me")),
        ("me@corp@gpu", Destination("gpu", username="me@corp")),  # ssh splits at the last @
        ("gpu:2222", Destination("gpu", 2222)),
        ("me@10.0.0.5:2222", Destination("10.0.0.5", 2222, "me")),
        ("fe80::1", Destination("fe80::1")),
        ("[fe80::1]:2222", Destination("fe80::1", 2222)),
        ("me@[::1]", Destination("::1", username="me")),
        ("ssh://gpu", Destination("gpu")),
        ("ssh://me@gpu:2222/", Destination("gpu", 2222, "me")),
        ("ssh://me@[::1]:22", Destination("::1", 22, "me")),
    ],
)
def test_host_forms(text: str, expected: Destination) -> None:
    assert parse_destination(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("gpu:0", "not a port"),
        ("gpu:65536", "not a port"),
        ("gpu:ssh", "not a port"),
        ("[::1]:", "not a port"),
        ("@gpu", "no user before '@'"),
        ("me@", "no host"),
        ("", "no host"),
        ("ssh://gpu/home", "has no path"),
    ],
)
def test_bad_host_forms_are_usage_errors(text: str, problem: str) -> None:
    with pytest.raises(UsageError, match=problem) as caught:
        parse_destination(text)
    assert caught.value.exit_status == 2


def test_a_destination_asks_only_for_what_was_given() -> None:
    assert Destination("gpu").request_fields() == {"host": "gpu"}
    assert Destination("::1", 2222, "me").request_fields() == {"host": "::1", "port": 2222, "username": "me"}
    assert [str(item) for item in (Destination("gpu"), Destination("::1", 2222, "me"), Destination("::1"))] == [
        "gpu", "me@[::1]:2222", "::1"]


def test_detail_in_plain_words() -> None:
    assert detail_text("Session not found: x") == "Session not found: x"
    assert detail_text({"code": "AUTH_PROMPT", "message": "The server asks: Code:"}) == "The server asks: Code:"
    assert detail_text([{"loc": ["body", "port"], "msg": "too big"}, {"loc": ["query", "x"], "msg": "bad"}]) == (
        "port: too big; query.x: bad")
    assert detail_text(None) == "the answer had no detail"


def test_tables_line_up_without_trailing_blanks() -> None:
    assert format_table(("A", "LONGER"), [["xyz", ""], ["1", "2"]]) == "A    LONGER\nxyz\n1    2"


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (59.9, "59s"), (60, "1m"), (3599, "59m"), (3660, "1h 1m"),
                                               (90000, "1d 1h"), (-5, "0s")])
def test_ages(seconds: float, text: str) -> None:
    assert format_age(seconds) == text


SESSION = {"sessionId": "0a1b2c3d", "connectionId": "me@gpu:22", "host": "gpu", "sshPort": 22, "username": "me",
           "condaEnv": "rv", "url": "http://localhost:41234", "status": "reconnecting", "uptimeSeconds": 125,
           "error": None, "message": "The tunnel moved to port 41234\n(the old one was taken)"}


def test_ls_rows_put_each_session_under_its_connection() -> None:
    status = {
        "connections": [{"key": "me@gpu:22", "connected": False, "state": "reconnecting", "message": None},
                        {"key": "me@idle:22", "connected": True, "state": "up", "message": None}],
        "viewer_sessions": [SESSION, {**SESSION, "sessionId": "ffffffff", "connectionId": "me@gone:22", "condaEnv": None,
                                      "status": "error", "error": "Could not stop", "message": None}],
    }
    assert status_rows(status) == [
        ["-", "me@gpu:22", "-", "-", "reconnecting", "-", ""],
        ["0a1b2c3d", "me@gpu:22", "rv", "http://localhost:41234", "reconnecting", "2m",
         "The tunnel moved to port 41234 | (the old one was taken)"],
        ["-", "me@idle:22", "-", "-", "up", "-", ""],
        ["ffffffff", "me@gone:22", "system", "http://localhost:41234", "error", "2m", "Could not stop"],
    ]
    assert format_status({"connections": [], "viewer_sessions": []}) == "No connections and no viewer sessions."


def test_hosts_table_shows_ssh_errors_in_their_row() -> None:
    answer = {"files": ["/c"], "hosts": [
        {"alias": "gpu", "user": "me", "hostname": "10.0.0.5", "port": 2222, "proxy_jump": "bastion", "error": None},
        {"alias": "odd", "user": None, "hostname": None, "port": None, "proxy_jump": None, "error": "Invalid host: 'odd'"},
    ]}
    assert format_hosts(answer).splitlines() == [
        "ALIAS  USER  HOSTNAME  PORT  PROXYJUMP  NOTE",
        "gpu    me    10.0.0.5  2222  bastion",
        "odd    -     -         -     -          Invalid host: 'odd'",
    ]
    assert format_hosts({"files": ["/a", "/b"], "hosts": []}) == "No Host aliases in /a, /b."
    assert format_hosts({"files": [], "hosts": []}) == "No ssh config file found."


KEY = {"host": "10.0.0.5", "port": 2222, "known_hosts_host": "[10.0.0.5]:2222", "key_type": "ssh-ed25519",
       "fingerprint_sha256": "SHA256:new", "public_key": "ssh-ed25519 AAAA", "reason": "changed",
       "expected_fingerprint_sha256": "SHA256:old", "expected_public_key": "ssh-ed25519 BBBB"}


def test_an_unknown_key_reads_as_ssh_says_it() -> None:
    assert unknown_key_text(KEY) == (
        "The authenticity of host '[10.0.0.5]:2222' can't be established.\n"
        "ED25519 key fingerprint is SHA256:new.\n"
    )
    assert [key_name(name) for name in ("ssh-rsa", "ecdsa-sha2-nistp384", "sk-ssh-ed25519@openssh.com", "x-new")] == [
        "RSA", "ECDSA", "ED25519-SK", "X-NEW"]


def test_a_changed_key_gets_ssh_warning_both_fingerprints_and_the_way_out() -> None:
    yours = changed_key_text(KEY, trusted_by_rvssh=False, user_known_hosts=("~/.ssh/known_hosts", "/etc/kh"))
    assert yours.startswith("@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
                            "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n")
    assert "The fingerprint for the ED25519 key sent by the remote host is\nSHA256:new.\n" in yours
    assert "The ED25519 key trusted for [10.0.0.5]:2222 is\nSHA256:old.\n" in yours
    assert "    ssh-keygen -R '[10.0.0.5]:2222'\n    ssh-keygen -R '[10.0.0.5]:2222' -f /etc/kh\n" in yours
    assert yours.endswith("Host key for [10.0.0.5]:2222 has changed and you have requested strict checking.\n")
    ours = changed_key_text(KEY, trusted_by_rvssh=True, user_known_hosts=())
    assert 'POST /api/remote/known-hosts/remove {"host": "10.0.0.5", "port": 2222, "key_type": "ssh-ed25519"}' in ours
    assert "ssh-keygen" not in ours
    unknown_old = changed_key_text({**KEY, "expected_fingerprint_sha256": None}, False, ())
    assert "trusted for" not in unknown_old and "    ssh-keygen -R '[10.0.0.5]:2222'\n" in unknown_old


def test_environment_label() -> None:
    env = {"name": "rv", "type": "venv", "python_version": "Python 3.11.7", "runicorn_version": "0.7.2"}
    assert environment_label(env) == "rv (venv, Python 3.11.7, runicorn 0.7.2)"
    assert environment_label({**env, "runicorn_version": None}) == "rv (venv, Python 3.11.7, no runicorn)"
