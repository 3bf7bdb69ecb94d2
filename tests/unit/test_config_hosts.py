"""The Host aliases of an ssh config with its Include files, and GET /api/rvssh/ssh-hosts (real ``ssh -G``)."""

from __future__ import annotations

from pathlib import Path

import falcon.testing
import pytest

from rvssh.app import create_app
from rvssh.errors import RvsshError
from rvssh.settings import Settings
from rvssh.ssh.config_hosts import include_paths, is_concrete, read_host_aliases, split_line
from tests import callers
from tests.unit.api_document import HEADERS


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Host gpu-box bastion", ("host", ["gpu-box", "bastion"])),
        ("  host=gpu", ("host", ["gpu"])),
        ("HOST = gpu", ("host", ["gpu"])),
        ('Include "my config/lab.conf" other', ("include", ["my config/lab.conf", "other"])),
        ("Host a # a comment", ("host", ["a"])),
        ("# Host commented", None),
        ("", None),
        ('Host "unbalanced', None),
        ("Hostonlykeyword", None),
    ],
)
def test_lines_are_split_like_ssh(line: str, expected: tuple[str, list[str]] | None) -> None:
    assert split_line(line) == expected


@pytest.mark.parametrize(("pattern", "concrete"), [("gpu", True), ("*.lab", False), ("gpu?", False), ("!bad", False), ("", False)])
def test_only_concrete_patterns_are_aliases(pattern: str, concrete: bool) -> None:
    assert is_concrete(pattern) is concrete


def test_include_paths_are_taken_from_ssh_dir_with_sorted_globs(tmp_path: Path) -> None:
    home = tmp_path / "home"
    for name in ("b.conf", "a.conf", "c.txt"):
        write(home / ".ssh" / "conf.d" / name, "")
    assert include_paths("conf.d/*.conf", home) == [home / ".ssh/conf.d/a.conf", home / ".ssh/conf.d/b.conf"]
    assert include_paths("~/.ssh/conf.d/c.txt", home) == [home / ".ssh/conf.d/c.txt"]
    assert include_paths(str(home / ".ssh/conf.d/a.conf"), home) == [home / ".ssh/conf.d/a.conf"]
    assert include_paths("missing/*", home) == []


def test_aliases_in_ssh_order_with_includes_once_each(tmp_path: Path) -> None:
    home = tmp_path / "home"
    main = write(home / ".ssh" / "config", (
        "Host gpu-box bastion *.lab !nope\n"
        "    HostName 10.0.0.5\n"
        "Include conf.d/*\n"
        "Host gpu-box late\n"
        "Include config\n"  # a cycle: read once
    ))
    write(home / ".ssh" / "conf.d" / "1-lab.conf", "Host lab1\n  HostName lab1.example\nInclude ../conf.d/2-deep.conf\n")
    write(home / ".ssh" / "conf.d" / "2-deep.conf", "Host=deep\n")
    found = read_host_aliases([main, tmp_path / "missing"], home)
    assert found.aliases == ["gpu-box", "bastion", "lab1", "deep", "late"]
    assert found.files == [main, home / ".ssh/conf.d/1-lab.conf", home / ".ssh/conf.d/2-deep.conf"]


def test_a_config_that_cannot_be_read_is_an_error(tmp_path: Path) -> None:
    not_a_folder = write(tmp_path / "file", "")
    with pytest.raises(RvsshError, match=r"Cannot read the ssh config .*file/config: Not a directory"):
        read_host_aliases([not_a_folder / "config"], tmp_path)


def test_the_endpoint_resolves_each_alias_with_ssh(tmp_path: Path) -> None:
    config = write(tmp_path / "config", (
        "Host gpu-box\n    HostName 10.0.0.5\n    User me\n    Port 2222\n    ProxyJump bastion\n"
        "Host bastion\n    HostName bastion.example\n"
        "Host -oProxyCommand=x\n"
    ))
    settings = Settings(state_dir=tmp_path / "state", ssh_config=config, user_known_hosts=())
    client = falcon.testing.TestClient(create_app(settings, caller_uid=callers.owner), headers=HEADERS)
    answer = client.simulate_get("/api/rvssh/ssh-hosts")
    assert answer.status_code == 200, answer.text
    assert answer.json["files"] == [str(config)]
    hosts = {host["alias"]: host for host in answer.json["hosts"]}
    assert list(hosts) == ["gpu-box", "bastion", "-oProxyCommand=x"]
    assert hosts["gpu-box"] == {"alias": "gpu-box", "user": "me", "hostname": "10.0.0.5", "port": 2222,
                                "proxy_jump": "bastion", "error": None}
    assert hosts["bastion"]["hostname"] == "bastion.example" and hosts["bastion"]["proxy_jump"] is None
    # An alias ssh could read as an option never reaches ssh.
    assert hosts["-oProxyCommand=x"]["error"] == "Invalid host: '-oProxyCommand=x'"
    assert hosts["-oProxyCommand=x"]["hostname"] is None


def test_the_endpoint_answers_an_unreadable_config_with_its_reason(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state", ssh_config=write(tmp_path / "file", "") / "config")
    client = falcon.testing.TestClient(create_app(settings, caller_uid=callers.owner), headers=HEADERS)
    answer = client.simulate_get("/api/rvssh/ssh-hosts")
    assert answer.status_code == 500
    assert answer.json == {"detail": f"Cannot read the ssh config {tmp_path}/file/config: Not a directory"}
