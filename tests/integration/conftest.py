"""Fixtures for the integration tier: one real sshd per test run.

The rvssh server fixtures live in rvssh_fixtures.py; this file only knows the
bed (see tests/sshbed.py).
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# NOTE: tests/ is not a package; put the repo root on sys.path so that
# `tests.sshbed` imports however pytest was started (python -m pytest or not).
_REPO_ROOT = str(Path(__file__).resolve().parents[2])
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

from tests.sshbed import SSHD, SshBed, ensure_runicorn_venv  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Iterator

_HERE = Path(__file__).resolve().parent


def _unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "integration tier needs root (test user, sshd); run ./scripts/test as root"
    if not SSHD.exists():
        return f"{SSHD} missing; ./scripts/test installs openssh-server"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under tests/integration, and skip them if the bed can't run.

    In CI (CI=true) nothing is skipped: a missing prerequisite must fail the
    run loudly instead of hiding the whole tier.
    """
    reason = None if os.environ.get("CI") == "true" else _unavailable_reason()
    for item in items:
        if _HERE not in item.path.resolve().parents:
            continue
        item.add_marker(pytest.mark.integration)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session", autouse=True)
def one_integration_run_at_a_time() -> Iterator[None]:
    """Hold a machine-wide lock while this run's integration tests go on.

    The tier shares the test accounts, their homes and the processes they
    run (tests count runicorn viewers with pgrep), so two runs on one machine
    would read each other's state; a second run waits here instead.
    """
    with open("/tmp/rvssh-integration.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture(scope="session")
def sshbed() -> Iterator[SshBed]:
    """Yield the run's sshd on 127.0.0.1 with its keys, agent and client config."""
    with SshBed() as bed:
        yield bed


@pytest.fixture(scope="session")
def runicorn_python() -> Path:
    """Return the test user's venv python with runicorn installed (slow the first time)."""
    return ensure_runicorn_venv()


# The rvssh fixtures (in-process app against the bed) and the second account live in their own modules.
from tests.integration.other_account import other_account  # noqa: E402,F401
from tests.integration.rvssh_fixtures import rvssh, state_dir, trusted  # noqa: E402,F401
# The other kinds of server (login shells, no python) are shared by several modules.
from tests.integration.server_beds import shells_bed  # noqa: E402,F401
