"""The token: made once in the state dir, private, kept; printed only on the start line, never logged (issue #15)."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from rvssh import cli
from rvssh.errors import StoreError
from rvssh.settings import Settings, forget_secret_variables
from rvssh.files import create_file_once
from rvssh.store.token import load_or_create_token, read_token, serving_token, token_path

URL_SAFE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_no_token_until_one_is_made(tmp_path: Path) -> None:
    assert read_token(tmp_path) is None
    token = load_or_create_token(tmp_path / "state")
    assert len(token) == 43 and set(token) <= URL_SAFE
    info = token_path(tmp_path / "state").stat()
    assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == os.geteuid()
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    assert read_token(tmp_path / "state") == token == load_or_create_token(tmp_path / "state")


def test_each_state_dir_gets_its_own_random_token(tmp_path: Path) -> None:
    assert load_or_create_token(tmp_path / "a") != load_or_create_token(tmp_path / "b")


def test_racing_workers_all_get_the_one_token(tmp_path: Path) -> None:
    start = threading.Barrier(8)
    found: list[str] = []

    def worker() -> None:
        start.wait()
        found.append(load_or_create_token(tmp_path / "state"))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 8 and len(set(found)) == 1
    assert sorted(path.name for path in (tmp_path / "state").iterdir()) == ["token"]  # no temp files left


def test_create_file_once_never_replaces(tmp_path: Path) -> None:
    path = tmp_path / "d" / "f"
    assert create_file_once(path, b"first") is True
    assert create_file_once(path, b"second") is False
    assert path.read_bytes() == b"first" and [item.name for item in path.parent.iterdir()] == ["f"]


def test_an_explicit_token_wins_and_makes_no_file(tmp_path: Path) -> None:
    assert serving_token("mine", tmp_path / "state") == "mine"
    assert not token_path(tmp_path / "state").exists()
    assert serving_token("", tmp_path / "state") == read_token(tmp_path / "state")  # empty counts as unset


def test_a_token_the_user_wrote_is_used_and_tightened(tmp_path: Path) -> None:
    path = token_path(tmp_path)
    path.write_text("  my-own-token\n")
    path.chmod(0o644)
    assert load_or_create_token(tmp_path) == "my-own-token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_empty_or_linked_token_file_is_an_error(tmp_path: Path) -> None:
    path = token_path(tmp_path)
    path.write_text("\n")
    with pytest.raises(StoreError, match="is empty"):
        read_token(tmp_path)
    path.unlink()
    (tmp_path / "elsewhere").write_text("planted\n")
    path.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(StoreError, match="Cannot read the token file"):
        load_or_create_token(tmp_path)


def test_serve_stops_with_a_message_when_the_token_cannot_be_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "state").mkdir()
    token_path(tmp_path / "state").write_text("")
    assert cli.main(["serve", "--state-dir", str(tmp_path / "state")]) == 1
    assert "is empty; delete it" in capsys.readouterr().err


def test_the_start_line_carries_the_page_url_with_rvssh_own_token(tmp_path: Path) -> None:
    line = cli.start_line(Settings(state_dir=tmp_path), "tok-EN_1")
    assert line.endswith("open http://127.0.0.1:23300/?token=tok-EN_1")
    assert "serving the Remote Viewer API at http://127.0.0.1:23300/api" in line
    assert cli.start_line(Settings(state_dir=tmp_path, bind="[::1]:9"), "t").endswith("open http://[::1]:9/?token=t")


def test_a_token_given_explicitly_is_not_printed(tmp_path: Path) -> None:
    line = cli.start_line(Settings(state_dir=tmp_path, token="team-secret"), "team-secret")
    assert "team-secret" not in line and line.endswith("open http://127.0.0.1:23300/")


def test_the_access_log_never_writes_a_query_string() -> None:
    # %(r)s is the request line and %(q)s the query: the page's address holds ?token=.
    assert "%(r)s" not in cli.ACCESS_LOG_FORMAT and "%(q)s" not in cli.ACCESS_LOG_FORMAT
    assert "%(U)s" in cli.ACCESS_LOG_FORMAT


def test_the_token_variable_is_forgotten_once_read() -> None:
    env = {"RVSSH_TOKEN": "t", "RVSSH_BIND": "127.0.0.1:1", "PATH": "/bin"}
    assert Settings.from_env(env).token == "t"
    forget_secret_variables(env)
    assert env == {"RVSSH_BIND": "127.0.0.1:1", "PATH": "/bin"}
