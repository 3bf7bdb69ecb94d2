"""The local side of the probe: loading the script, its arguments, reading its JSON and errors."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rvssh.errors import (
    BadRequestError,
    ConflictError,
    NotFoundError,
    RemoteNotADirectoryError,
    RemoteNotFoundError,
    RemotePermissionError,
    RunicornMissingError,
)
from rvssh.remote.probe import (
    SUBCOMMANDS,
    build_probe_program,
    load_program,
    parse_probe_output,
    probe_output_line,
)
from rvssh.models import FsListResponse
from rvssh.ssh.errors import RemoteCommandError, RemoteOutputError

SCRIPTS = Path(__file__).resolve().parents[2] / "rvssh" / "remote" / "scripts"


def script_commands(name: str) -> dict[str, int]:
    """Return a script's COMMANDS table as subcommand -> number of arguments."""
    tree = ast.parse((SCRIPTS / name).read_bytes())
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else getattr(node, "targets", [None])[0]
        if getattr(target, "id", None) == "COMMANDS":
            table = node.value  # type: ignore[attr-defined]
            assert isinstance(table, ast.Dict)
            return {
                ast.literal_eval(key): len(value.elts[1].elts)  # type: ignore[union-attr]
                for key, value in zip(table.keys, table.values)
            }
    raise AssertionError(f"COMMANDS not found in {name}")


def test_a_program_is_common_py_then_the_script() -> None:
    for name in ("probe.py", "fs.py"):
        assert load_program(name) == (SCRIPTS / "common.py").read_bytes() + b"\n\n" + (SCRIPTS / name).read_bytes()


def test_local_table_matches_the_scripts() -> None:
    for name in ("probe.py", "fs.py"):
        ours = {sub: spec.arity for sub, spec in SUBCOMMANDS.items() if spec.script == name}
        assert ours == script_commands(name)


def run_program(tmp_path: Path, program: bytes) -> bytes:
    """Run a program the way the server will (``/bin/sh -s``) and return its stdout."""
    bin_dir = tmp_path.parent / f"{tmp_path.name}-bin"
    bin_dir.mkdir(exist_ok=True)
    if not (bin_dir / "python3").exists():
        (bin_dir / "python3").symlink_to(os.path.realpath(sys.executable))
    env = {"HOME": str(tmp_path), "PATH": f"{bin_dir}:/usr/bin:/bin", "LANG": "C.UTF-8"}
    return subprocess.run(["/bin/sh", "-s"], input=program, capture_output=True, env=env, check=True, timeout=60).stdout


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (("config", "my env"), ["config", "my env"]),
        (("storage-candidates", "~", "3"), ["storage-candidates", "~", "3"]),
        (("fs-list", "$(touch X)"), ["fs-list", "$(touch X)"]),
        (("fs-exists", "-rf"), ["fs-exists", "-rf"]),
    ],
)
def test_each_argument_reaches_the_script_as_one_word(tmp_path: Path, call: tuple[str, ...], expected: list[str]) -> None:
    program = build_probe_program(*call)
    # Swap the Python program for one that prints its argv: only the arguments matter here.
    head, _, rest = program.partition(b"<<'")
    delimiter = rest.split(b"'", 1)[0]
    echo = head + b"<<'" + delimiter + b"'\nimport json, sys; print(json.dumps(sys.argv[1:]))\n" + delimiter + b"\nfi\n"
    assert json.loads(run_program(tmp_path, echo)) == expected
    assert not (tmp_path / "X").exists()


JSON_VALUES = [
    {"path": "/x", "items": [{"name": "a\udc80b", "is_dir": False, "size": 2**70, "mtime": -1, "is_link": None}]},
    {"text": "\U0001f600 \u00e9 \x00\x1f\"\\/\x7f", "numbers": [0.1, 1e100, -0.0, float("inf"), float("nan")],
     "tuple": (1, True, False, None), "": {}, "list": []},
]


@pytest.mark.parametrize("accelerated", [True, False], ids=["_json", "json"])
def test_the_remote_json_writer_writes_what_json_dumps_writes(monkeypatch: pytest.MonkeyPatch, accelerated: bool) -> None:
    if not accelerated:
        monkeypatch.setitem(sys.modules, "_json", None)  # a Python built without json's C accelerator
    namespace: dict[str, object] = {"__name__": "common"}
    exec(compile((SCRIPTS / "common.py").read_bytes(), "common.py", "exec"), namespace)
    to_json = namespace["_json_writer"]()  # type: ignore[operator]
    for value in JSON_VALUES:
        assert to_json(value) == json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    with pytest.raises(TypeError, match="set is not JSON serializable"):
        to_json({"a": {1}})


def test_a_remote_command_imports_neither_json_nor_re() -> None:
    # PERF: they are most of a remote command's start; the answer is written all the same.
    check = load_program("fs.py").replace(
        b"sys.exit(main(COMMANDS, sys.argv[1:]))",
        b"sys.stdout.write(_json_writer()({'json': 'json' in sys.modules, 're': 're' in sys.modules}))")
    answer = subprocess.run([sys.executable, "-I", "-S", "-"], input=check, capture_output=True, check=True, timeout=60)
    assert json.loads(answer.stdout) == {"json": False, "re": False}


@pytest.mark.parametrize("call", [("nope",), ("envs", "x"), ("fs-list",), ("storage-candidates", "~")])
def test_build_probe_program_rejects_programming_errors(call: tuple[str, ...]) -> None:
    with pytest.raises(ValueError):
        build_probe_program(*call)


def test_build_probe_program_rejects_nul() -> None:
    with pytest.raises(BadRequestError):
        build_probe_program("fs-list", "/tmp/a\0b")


def test_parse_probe_output_returns_the_object() -> None:
    assert parse_probe_output(b'{"path": "/x", "items": []}\n') == {"path": "/x", "items": []}


def test_parse_probe_output_skips_shell_noise_before_the_object() -> None:
    stdout = b"Welcome to gpu-01!\n\xff\xfe conda init says hi\n\n" + b'{"ok": true}\n'
    assert parse_probe_output(stdout) == {"ok": True}


@pytest.mark.parametrize(
    "stdout",
    [b"", b"\n  \n", b"Traceback (most recent call last):\n  boom\n", b"[1, 2]\n", b'"text"\n', b'{"ok": tr'],
)
def test_parse_probe_output_rejects_anything_but_one_object(stdout: bytes) -> None:
    with pytest.raises(RemoteOutputError):
        parse_probe_output(stdout)


@pytest.mark.parametrize(
    ("kind", "error_class"),
    [
        ("not_found", RemoteNotFoundError),
        ("env_not_found", NotFoundError),
        ("not_a_directory", RemoteNotADirectoryError),
        ("bad_request", BadRequestError),
        ("permission_denied", RemotePermissionError),
        ("internal", RemoteCommandError),
        ("runicorn_missing", RunicornMissingError),
        ("port_in_use", ConflictError),
        ("something_new", RemoteCommandError),
    ],
)
def test_parse_probe_output_maps_errors(kind: str, error_class: type[Exception]) -> None:
    stdout = json.dumps({"error": {"kind": kind, "message": "Path not found: /x"}}).encode()
    with pytest.raises(error_class) as caught:
        parse_probe_output(stdout)
    assert type(caught.value) is error_class
    assert caught.value.message == "Path not found: /x"


@pytest.mark.parametrize("error", ["boom", {"kind": "not_found"}, {"kind": "not_found", "message": 3}])
def test_parse_probe_output_rejects_malformed_errors(error: object) -> None:
    with pytest.raises(RemoteOutputError):
        parse_probe_output(json.dumps({"error": error}).encode())


def test_a_failed_command_without_json_reports_stderr() -> None:
    with pytest.raises(RemoteCommandError, match=r"^Remote command failed \(exit status 127\): sh: 1: x: not found"):
        parse_probe_output(b"", b"sh: 1: x: not found\n", 127)
    with pytest.raises(RemoteOutputError):
        parse_probe_output(b"", b"", 0)


def run_script(tmp_path: Path, *args: str) -> bytes:
    """Run the real script the way the server will and return its stdout."""
    return run_program(tmp_path, build_probe_program(*args))


def test_real_script_output_round_trips(tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("x")
    assert parse_probe_output(run_script(tmp_path, "fs-exists", "~/file.txt")) == {
        "path": "~/file.txt", "exists": True, "is_dir": False}
    with pytest.raises(NotFoundError, match=f"^Path not found: {tmp_path}/missing$"):
        parse_probe_output(run_script(tmp_path, "fs-list", "~/missing"))
    with pytest.raises(BadRequestError, match=f"^Not a directory: {tmp_path}/file.txt$"):
        parse_probe_output(run_script(tmp_path, "fs-list", "~/file.txt"))
    with pytest.raises(NotFoundError, match="^Environment 'nope' not found"):
        parse_probe_output(run_script(tmp_path, "config", "nope"))
    envs = parse_probe_output(run_script(tmp_path, "envs"))
    configs = parse_probe_output(run_script(tmp_path, "env-configs", ""))
    assert configs == {"ok": True, "configs": {
        env["name"]: {"pythonVersion": env["python_version"], "runicornVersion": env["runicorn_version"]}
        for env in envs["envs"]
    }}


def test_fs_list_output_is_already_the_wire_shape(tmp_path: Path) -> None:
    """fs/list passes the probe's answer through unvalidated (PERF), so its shape must be exact."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "sub")
    answer = parse_probe_output(run_script(tmp_path, "fs-list", "~"))
    assert FsListResponse.model_validate(answer).model_dump() == answer


def test_fs_list_answers_pass_through_and_errors_still_raise(tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("x")
    printed = run_script(tmp_path, "fs-list", "~")
    line = probe_output_line(b"motd of a login script\n" + printed, b"", 0, b'{"path":')
    assert line == printed.strip() and json.loads(line) == parse_probe_output(printed)
    with pytest.raises(BadRequestError, match=f"^Not a directory: {tmp_path}/file.txt$"):
        probe_output_line(run_script(tmp_path, "fs-list", "~/file.txt"), b"", 0, b'{"path":')
    with pytest.raises(RemoteCommandError, match="exit status 255"):
        probe_output_line(b"", b"Connection closed", 255, b'{"path":')
    # An answer that opens otherwise (keys in another order) is parsed and written again.
    assert probe_output_line(b'{"items":[],"path":"/x"}\n', b"", 0, b'{"path":') == b'{"items":[],"path":"/x"}'
