"""Answers of the environment probes, kept per connection in the state directory (issue #14).

A probe (``conda-envs``, ``env-configs``, ``config``) looks at the server
through one master; its answer stays true about as long as nobody installs
or removes an environment there. So each answer is kept, as one JSON file,
under the connection it came from, and bound to the exact master that
produced it: the connection id, the master's pid and its start time. An
answer of another connection, or of an earlier master of the same
connection (a disconnect, a heal), never matches and is never served.

The files are the cache: every gunicorn worker, the CLI and a restarted
rvssh share them. A per-answer flock makes the probe single-flight across
all of them: whoever holds it probes, and whoever waits for it serves what
the holder wrote. A caller that asks for a refresh only takes an answer
whose probe started after it asked.

Nothing here runs a probe; the caller passes the function that does.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from rvssh.files import locked, make_private_dir, read_json, try_lock, write_json_atomic


@dataclass(frozen=True)
class MasterIdentity:
    """The master an answer came from: a connection id alone is not enough (masters are replaced)."""

    connection_id: str
    pid: int
    started_at: float

    def matches(self, value: Any) -> bool:
        """Return whether a stored entry's ``master`` field names this very master."""
        return (
            isinstance(value, dict)
            and value.get("connection_id") == self.connection_id
            and value.get("pid") == self.pid
            and value.get("started_at") == self.started_at
        )


@dataclass(frozen=True)
class CachedAnswer:
    """A probe's answer and when its probe started (epoch seconds).

    Attributes:
        answer: the probe's JSON object.
        probed_at: when the probe that produced it started: the answer shows
            the server as it was at that moment or later.
        cached: whether it came from the cache rather than from a probe run for this call.
    """

    answer: dict[str, Any]
    probed_at: float
    cached: bool


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()


class ProbeCache:
    """Per-connection answers in ``<directory>/<sha1(connection id)>/``.

    Args:
        directory: where the answers live (``<state>/cache``).
        max_age: seconds an answer is served after its probe started; 0 keeps nothing.
        lock_timeout: seconds to wait for another caller's probe of the same answer.
        clock: the time (tests pass their own).
    """

    def __init__(
        self, directory: Path, max_age: float, lock_timeout: float, clock: Callable[[], float] = time.time
    ) -> None:
        self._directory = directory
        self._max_age = max_age
        self._lock_timeout = lock_timeout
        self._clock = clock

    def _folder(self, connection_id: str) -> Path:
        return self._directory / _digest(connection_id)

    def _path(self, master: MasterIdentity, query: tuple[str, ...]) -> Path:
        return self._folder(master.connection_id) / f"{_digest(json.dumps(list(query)))}.json"

    def read(self, master: MasterIdentity, query: tuple[str, ...], not_before: float = 0.0) -> CachedAnswer | None:
        """Return the kept answer of ``query`` from ``master``, if young enough and probed at ``not_before`` or later."""
        if self._max_age <= 0:
            return None
        entry = read_json(self._path(master, query), None)
        if not isinstance(entry, dict) or not master.matches(entry.get("master")) or entry.get("query") != list(query):
            return None
        probed_at, answer = entry.get("probed_at"), entry.get("answer")
        if not isinstance(probed_at, (int, float)) or not isinstance(answer, dict):
            return None
        if probed_at < not_before or self._clock() - probed_at > self._max_age:
            return None
        return CachedAnswer(answer, float(probed_at), cached=True)

    def write(self, master: MasterIdentity, query: tuple[str, ...], probed_at: float, answer: dict[str, Any]) -> None:
        """Keep ``answer``, the result of a probe of ``query`` that started at ``probed_at``."""
        if self._max_age <= 0:
            return
        make_private_dir(self._directory)
        entry = {"master": vars(master), "query": list(query), "probed_at": probed_at, "answer": answer}
        write_json_atomic(self._path(master, query), entry)

    def _lock_path(self, master: MasterIdentity, query: tuple[str, ...]) -> Path:
        """The lock held by whoever probes ``query`` on ``master`` (across threads, workers and processes)."""
        return self._path(master, query).with_suffix(".lock")

    def answer(
        self, master: MasterIdentity, query: tuple[str, ...], probe: Callable[[], dict[str, Any]], refresh: bool = False
    ) -> CachedAnswer:
        """Return the answer of ``query``: kept, or probed now (once, whoever else asks meanwhile).

        Args:
            master: the live master the answer must come from.
            query: what is asked (the subcommand and its arguments).
            probe: runs the probe and returns its answer; its errors are not kept.
            refresh: take no answer whose probe started before this call.
        """
        asked = self._clock()
        not_before = asked if refresh else 0.0
        kept = self.read(master, query, not_before)
        if kept is not None:
            return kept
        # LockTimeoutError: another caller probed it for longer than the lock timeout.
        with locked(self._lock_path(master, query), self._lock_timeout):
            # Whoever held the lock may have just written what we need.
            kept = self.read(master, query, not_before)
            if kept is not None:
                return kept
            started = self._clock()
            answer = probe()
            self.write(master, query, started, answer)
        return CachedAnswer(answer, started, cached=False)

    def try_probing(self, master: MasterIdentity, query: tuple[str, ...]) -> "ProbeClaim | None":
        """Claim the right to probe ``query`` now, without waiting; None if it is taken or already answered.

        The claim is an open lock: it may be handed to another thread, which
        must ``release`` it (prefetch takes it before the connect answers, so
        the next call of any worker waits for the prefetch instead of probing twice).
        """
        if self._max_age <= 0 or self.read(master, query) is not None:
            return None
        descriptor = try_lock(self._lock_path(master, query))
        if descriptor is None:
            return None
        claim = ProbeClaim(descriptor)
        if self.read(master, query) is not None:
            claim.release()
            return None
        return claim

    def forget(self, connection_id: str) -> None:
        """Drop every answer kept for ``connection_id`` (its master is gone)."""
        shutil.rmtree(self._folder(connection_id), ignore_errors=True)


class ProbeClaim:
    """A probe lock taken without waiting, released by whoever finishes the probe."""

    def __init__(self, descriptor: int) -> None:
        self._descriptor: int | None = descriptor

    def release(self) -> None:
        """Give the lock up (closing the descriptor releases the flock)."""
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None

