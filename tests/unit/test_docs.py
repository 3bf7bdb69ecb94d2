"""The docs stay true to the code: every route, every setting, the real --help.

Datasette's habit (tests/test_docs.py there): a route or a setting that the
docs do not mention fails the build, and so does a --help text in the docs
that no longer matches the parser.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

import pytest
from falcon.inspect import inspect_app

from rvssh.app import create_app
from rvssh.cli import build_parser
from rvssh.http.errors import STATUS_BY_ERROR
from rvssh.settings import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"
HELP_BLOCK = re.compile(r"^```[a-z]*\n(usage: rvssh serve.*?)^```", re.MULTILINE | re.DOTALL)


def read_doc(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def registered_routes(tmp_path: Path) -> list[tuple[str, str]]:
    """Return (METHOD, path) of every responder create_app registers."""
    app = create_app(Settings(state_dir=tmp_path / "state"))
    return [
        (method.method, route.path)
        for route in inspect_app(app).routes
        for method in route.methods
        if not method.internal
    ]


CLIENT_COMMANDS = ("open", "ls", "stop", "hosts")


def command_help(name: str) -> str:
    """Return what ``rvssh <name> --help`` prints."""
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[name].format_help()
    raise AssertionError(f"rvssh has no {name} command")


def serve_help() -> str:
    """Return what ``rvssh serve --help`` prints."""
    return command_help("serve")


@pytest.fixture
def eighty_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    # argparse wraps at $COLUMNS; the docs show an 80-column terminal.
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("PYTHON_COLORS", "0")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("FORCE_COLOR", raising=False)


def test_every_route_is_documented(tmp_path: Path) -> None:
    routes = registered_routes(tmp_path)
    assert routes, "create_app registered no routes"
    api = read_doc("api.md")
    missing = [f"{method} {path}" for method, path in routes if f"{method} {path}" not in api]
    assert not missing, f"docs/api.md does not mention: {missing}"


def test_every_error_class_of_the_status_table_is_documented() -> None:
    api = read_doc("api.md")
    missing = [cls.__name__ for cls, _ in STATUS_BY_ERROR if f"`{cls.__name__}`" not in api]
    assert not missing, f"the status table in docs/api.md lacks: {missing}"


def test_every_setting_is_documented() -> None:
    configuration = read_doc("configuration.md")
    missing = [field.name for field in dataclasses.fields(Settings) if f"`{field.name}`" not in configuration]
    assert not missing, f"docs/configuration.md does not mention the settings: {missing}"


@pytest.mark.usefixtures("eighty_columns")
def test_serve_help_in_the_docs_is_the_real_one() -> None:
    blocks = HELP_BLOCK.findall(read_doc("configuration.md"))
    assert len(blocks) == 1, "docs/configuration.md needs exactly one fenced `rvssh serve --help` block"
    assert blocks[0].rstrip("\n") == serve_help().rstrip("\n")


@pytest.mark.usefixtures("eighty_columns")
@pytest.mark.parametrize("name", CLIENT_COMMANDS)
def test_the_help_of_each_command_in_cli_md_is_the_real_one(name: str) -> None:
    block = re.compile(rf"^```[a-z]*\n(usage: rvssh {name} .*?)^```", re.MULTILINE | re.DOTALL)
    blocks = block.findall(read_doc("cli.md"))
    assert len(blocks) == 1, f"docs/cli.md needs exactly one fenced `rvssh {name} --help` block"
    assert blocks[0].rstrip("\n") == command_help(name).rstrip("\n")


def test_every_command_has_its_section_in_cli_md() -> None:
    cli = read_doc("cli.md")
    missing = [name for name in CLIENT_COMMANDS if f"\n## rvssh {name}\n" not in cli]
    assert not missing, f"docs/cli.md has no section for: {missing}"
