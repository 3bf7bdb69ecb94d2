"""fs/list and fs/exists against the real sshd (issue #3).

The tree (hidden entries, symlinks, a non-UTF-8 name, a root-only folder,
10,000 files) is built in the test user's home by remote_trees.fs_tree.
"""

from __future__ import annotations

import os
import uuid

import pytest

from tests.integration.remote_trees import (
    assert_one_session_each,
    BAD_DIR_TEXT,
    BAD_NAME_TEXT,
    HOME,
    MANY_FILES,
    FsTree,
    exists_as_user,
    fs_tree,
    sessions_during,
)
from tests.integration.rvssh_fixtures import Rvssh, detail, get, ok_json

__all__ = ["fs_tree"]  # fixture used by name

REMOTE = "/api/remote"


@pytest.fixture
def connected(trusted: Rvssh) -> Rvssh:
    """rvssh with a live connection to the test sshd."""
    result = trusted.connect()
    assert result.status_code == 200, result.text
    return trusted


# --- fs/list ------------------------------------------------------------------------------


def test_list_sorts_dirs_first_and_reports_links(connected: Rvssh, fs_tree: FsTree) -> None:
    listing = ok_json(get(connected, "fs/list", path=f"~/{fs_tree.root.name}"))
    assert listing["path"] == str(fs_tree.root)
    items = listing["items"]
    names = [item["name"] for item in items]
    assert names == [
        # folders (a link to one counts), then files, each by code point
        ".hidden_dir", "Zdir", BAD_DIR_TEXT, "link_dir", "many", "names_only", "no_access", "sub",
        ".hidden", "B.txt", "a.txt", BAD_NAME_TEXT, "dangling", "link_file", "loop",
    ]
    by_name = {item["name"]: item for item in items}
    for item in items:
        assert set(item) == {"name", "is_dir", "size", "mtime", "is_link"}
        assert isinstance(item["mtime"], int)
    assert by_name["link_dir"] | {"mtime": 0} == {"name": "link_dir", "is_dir": True, "size": 0, "mtime": 0,
                                                   "is_link": True}
    assert (by_name["link_file"]["is_dir"], by_name["link_file"]["is_link"]) == (False, True)
    assert by_name["link_file"]["size"] == fs_tree.a_size  # the target's size
    for broken_link in ("dangling", "loop"):
        assert (by_name[broken_link]["is_dir"], by_name[broken_link]["is_link"]) == (False, True)
    assert by_name["a.txt"] | {"mtime": 0} == {"name": "a.txt", "is_dir": False, "size": fs_tree.a_size,
                                                "mtime": 0, "is_link": False}
    assert by_name["a.txt"]["mtime"] == int(os.stat(fs_tree.a_file).st_mtime)
    assert (by_name["sub"]["is_dir"], by_name["sub"]["size"], by_name["sub"]["is_link"]) == (True, 0, False)
    assert by_name["no_access"]["is_dir"] is True
    assert by_name[BAD_NAME_TEXT]["is_dir"] is False


def test_list_expands_the_home(connected: Rvssh, fs_tree: FsTree) -> None:
    for path in ("~", None):  # None: the default
        params = {} if path is None else {"path": path}
        listing = ok_json(get(connected, "fs/list", **params))
        assert listing["path"] == str(HOME)
        assert fs_tree.root.name in {item["name"] for item in listing["items"]}
        assert ".bashrc" in {item["name"] for item in listing["items"]}  # hidden files included
    relative = ok_json(get(connected, "fs/list", path=f"{fs_tree.root.name}/sub"))
    assert relative["path"] == str(fs_tree.root / "sub")
    assert [item["name"] for item in relative["items"]] == ["inner.txt"]


def test_list_of_ten_thousand_entries_is_complete(connected: Rvssh, fs_tree: FsTree) -> None:
    result, sessions = sessions_during(connected.bed, lambda: get(connected, "fs/list", path=str(fs_tree.many)))
    listing = ok_json(result)
    assert sessions == 1
    names = [item["name"] for item in listing["items"]]
    assert len(names) == MANY_FILES
    assert names == [f"f{index:05d}" for index in range(MANY_FILES)]
    assert not any(item["is_dir"] for item in listing["items"])


def test_list_errors_are_the_references_500(connected: Rvssh, fs_tree: FsTree) -> None:
    def failure(path: str) -> str:
        return detail(get(connected, "fs/list", path=path), 500)

    missing = fs_tree.root / "nope"
    assert failure(str(missing)) == f"Failed to list directory: Path not found: {missing}"
    assert failure(str(fs_tree.a_file)) == f"Failed to list directory: Not a directory: {fs_tree.a_file}"
    assert failure(str(fs_tree.no_access)) == f"Failed to list directory: Permission denied: {fs_tree.no_access}"
    dangling = fs_tree.root / "dangling"
    assert failure(str(dangling)) == f"Failed to list directory: Path not found: {dangling}"
    # An option-looking path is just a (missing) path under home.
    assert failure("--version") == f"Failed to list directory: Path not found: {HOME}/--version"


def test_escaped_names_can_be_sent_back(connected: Rvssh, fs_tree: FsTree) -> None:
    given = f"{fs_tree.root}/{BAD_DIR_TEXT}"
    listing = ok_json(get(connected, "fs/list", path=given))
    assert listing["path"] == given
    assert [item["name"] for item in listing["items"]] == ["inside.txt"]
    for path in (given, f"~/{fs_tree.root.name}/{BAD_NAME_TEXT}", f"{given}/inside.txt"):
        answer = ok_json(get(connected, "fs/exists", path=path))
        assert (answer["path"], answer["exists"]) == (path, True)
    assert ok_json(get(connected, "fs/exists", path=f"{given}-not"))["exists"] is False


def test_list_of_a_folder_whose_entries_cannot_be_examined(connected: Rvssh, fs_tree: FsTree) -> None:
    listing = ok_json(get(connected, "fs/list", path=str(fs_tree.names_only)))
    assert listing["items"] == [
        {"name": "d", "is_dir": True, "size": 0, "mtime": None, "is_link": False},
        {"name": "f.txt", "is_dir": False, "size": 0, "mtime": None, "is_link": False},
    ]


def test_list_follows_a_link_to_a_folder(connected: Rvssh, fs_tree: FsTree) -> None:
    listing = ok_json(get(connected, "fs/list", path=str(fs_tree.root / "link_dir")))
    assert listing["path"] == str(fs_tree.root / "link_dir")
    assert [item["name"] for item in listing["items"]] == ["inner.txt"]


# --- fs/exists --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("relative", "exists", "is_dir"),
    [
        ("", True, True),
        ("/a.txt", True, False),
        ("/sub", True, True),
        ("/link_dir", True, True),
        ("/link_file", True, False),
        ("/dangling", False, False),
        ("/nope", False, False),
        ("/no_access", True, True),
        ("/no_access/x", False, False),  # cannot be seen by the user
    ],
)
def test_exists_expands_the_home_and_echoes_the_path(
    connected: Rvssh, fs_tree: FsTree, relative: str, exists: bool, is_dir: bool
) -> None:
    given = f"~/{fs_tree.root.name}{relative}"
    assert ok_json(get(connected, "fs/exists", path=given)) == {"path": given, "exists": exists, "is_dir": is_dir}
    absolute = f"{fs_tree.root}{relative}"
    assert ok_json(get(connected, "fs/exists", path=absolute)) == {"path": absolute, "exists": exists,
                                                                  "is_dir": is_dir}


def test_exists_of_the_home_itself(connected: Rvssh) -> None:
    assert ok_json(get(connected, "fs/exists", path="~")) == {"path": "~", "exists": True, "is_dir": True}


# --- connection_id errors, validation ------------------------------------------------------------


@pytest.mark.parametrize(("endpoint", "params"), [("fs/list", {}), ("fs/exists", {"path": "~"})])
def test_connection_id_errors(trusted: Rvssh, endpoint: str, params: dict[str, str]) -> None:
    result = get(trusted, endpoint, connection_id="nobody-at-nowhere", **params)
    assert detail(result, 400) == "Invalid connection_id format: nobody-at-nowhere"
    absent = trusted.target.connection_id  # well-formed, never connected
    result = get(trusted, endpoint, connection_id=absent, **params)
    assert detail(result, 404) == f"Connection not found or inactive: {absent}"
    result = trusted.client.simulate_get(f"{REMOTE}/{endpoint}", params=params)
    assert result.status_code == 422, result.text
    (problem,) = result.json["detail"]
    assert {key: problem[key] for key in ("type", "loc", "msg")} == {
        "type": "missing", "loc": ["query", "connection_id"], "msg": "Field required"}


def test_exists_needs_a_path(connected: Rvssh) -> None:
    result = get(connected, "fs/exists")
    assert result.status_code == 422, result.text
    (problem,) = result.json["detail"]
    assert (problem["type"], problem["loc"], problem["msg"]) == ("missing", ["query", "path"], "Field required")


# --- injection ------------------------------------------------------------------------------------


def test_no_path_runs_a_command(connected: Rvssh, fs_tree: FsTree) -> None:
    canary = HOME / f"rvt-canary-{uuid.uuid4().hex[:8]}"
    payloads = [f"'; touch {canary}; '", f"$(touch {canary})", f"`touch {canary}`", f"x\ntouch {canary}\n",
                f'"; touch {canary}; "', f"~/$(touch {canary})", f"{fs_tree.root}'; touch {canary}; echo '"]
    for payload in payloads:
        listed = get(connected, "fs/list", path=payload)
        assert detail(listed, 500).startswith("Failed to list directory: Path not found: "), payload
        assert ok_json(get(connected, "fs/exists", path=payload)) == {"path": payload, "exists": False,
                                                                      "is_dir": False}
        for endpoint in ("fs/list", "fs/exists"):
            result = get(connected, endpoint, path="~", connection_id=connected.target.connection_id + payload)
            assert result.status_code in (400, 404), result.text
    assert not exists_as_user(canary), f"a request string ran a command: {canary} exists"


# --- round trips and latency ----------------------------------------------------------------------


def test_each_endpoint_is_one_round_trip(connected: Rvssh, fs_tree: FsTree) -> None:
    calls = {
        "fs/list ~": lambda: get(connected, "fs/list", path="~"),
        "fs/list 10,000": lambda: get(connected, "fs/list", path=str(fs_tree.many)),
        "fs/exists": lambda: get(connected, "fs/exists", path=str(fs_tree.a_file)),
    }
    assert_one_session_each(connected.bed, calls)
