"""The Host aliases of an ssh config, with its ``Include`` files, read the way ssh reads them.

``rvssh hosts`` and the page list the names a person may type: every
concrete pattern of a ``Host`` line (``Host gpu-box bastion``), in the order
ssh meets them. Patterns (``*``, ``?``, negations with ``!``) name no single
host and are left out. ``Include`` follows ssh_config(5): ``~`` is the home
directory, a relative path is taken from ``~/.ssh`` (rvssh passes its
config to ssh with ``-F``, so ssh reads every file as a user config), and
globs expand in sorted order. Where each alias leads is ssh's job
(``ssh -G``, see resolve.py); this module only reads files.
"""

from __future__ import annotations

import glob
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from rvssh.errors import RvsshError

# ssh's READCONF_MAX_DEPTH: Include may nest this deep.
MAX_INCLUDE_DEPTH = 16
PATTERN_CHARACTERS = frozenset("*?!")
# "Keyword value", "Keyword=value" or "Keyword = value"; keywords are case-insensitive.
_KEYWORD = re.compile(r"\s*([A-Za-z]+)\s*(?:=\s*|\s+)(.*)\Z")


@dataclass
class ConfigHosts:
    """What the config files say: the files read (in order) and the concrete Host aliases."""

    files: list[Path] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)


def is_concrete(pattern: str) -> bool:
    """Return whether a Host pattern names one host (no wildcard, no negation)."""
    return bool(pattern) and not PATTERN_CHARACTERS & set(pattern)


def split_line(line: str) -> tuple[str, list[str]] | None:
    """Return (lower-case keyword, arguments) of a config line, or None for blanks, comments and junk."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    match = _KEYWORD.match(text)
    if match is None:
        return None
    try:
        arguments = shlex.split(match.group(2), comments=True)
    except ValueError:  # an unbalanced quote: ssh refuses the line too
        return None
    return match.group(1).lower(), arguments


def include_paths(argument: str, home: Path) -> list[Path]:
    """Return the files an ``Include`` argument names: ``~`` expanded, relative to ``~/.ssh``, globbed."""
    if argument == "~" or argument.startswith("~/"):
        pattern = str(home) + argument[1:]
    elif argument.startswith("/"):
        pattern = argument
    else:
        pattern = str(home / ".ssh" / argument)
    return [Path(name) for name in sorted(glob.glob(pattern))]


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except OSError as ex:
        raise RvsshError(f"Cannot read the ssh config {path}: {ex.strerror}") from ex


def _collect(path: Path, home: Path, depth: int, found: ConfigHosts, seen: set[Path]) -> None:
    if depth > MAX_INCLUDE_DEPTH or path in seen or path.is_dir():
        return
    text = _read_text(path)
    if text is None:
        return
    seen.add(path)
    found.files.append(path)
    for line in text.splitlines():
        parsed = split_line(line)
        if parsed is None:
            continue
        keyword, arguments = parsed
        if keyword == "host":
            found.aliases.extend(name for name in arguments if is_concrete(name) and name not in found.aliases)
        elif keyword == "include":
            for argument in arguments:
                for included in include_paths(argument, home):
                    _collect(included, home, depth + 1, found, seen)


def read_host_aliases(configs: Sequence[Path], home: Path) -> ConfigHosts:
    """Return the concrete Host aliases of ``configs`` and of every file they include, in ssh's order.

    Args:
        configs: the top-level files (rvssh's ``--ssh-config``, else
            ``~/.ssh/config`` and ``/etc/ssh/ssh_config``); missing ones are skipped.
        home: what ``~`` means (ssh takes the passwd entry's home directory).

    Raises:
        RvsshError: a file exists but cannot be read (ssh would refuse it too).
    """
    found = ConfigHosts()
    seen: set[Path] = set()
    for path in configs:
        _collect(path, home, 0, found, seen)
    return found

