"""The per-connection answers of the environment probes (store/probe_cache.py), on real files."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from rvssh.store.probe_cache import MasterIdentity, ProbeCache

MASTER = MasterIdentity("me@gpu:22", pid=4242, started_at=1000.5)
QUERY = ("envs",)


class Clock:
    def __init__(self, now: float = 5000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Probe:
    """A probe that counts its runs and answers with the run number."""

    def __init__(self, release: threading.Event | None = None) -> None:
        self.runs = 0
        self.release = release
        self.started = threading.Event()

    def __call__(self) -> dict[str, Any]:
        self.runs += 1
        self.started.set()
        if self.release is not None:
            assert self.release.wait(10)
        return {"run": self.runs}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(tmp_path: Path, clock: Clock) -> ProbeCache:
    return ProbeCache(tmp_path / "cache", max_age=600, lock_timeout=10, clock=clock)


def test_an_answer_is_probed_once_then_kept(cache: ProbeCache, clock: Clock) -> None:
    probe = Probe()
    first = cache.answer(MASTER, QUERY, probe)
    clock.now += 30
    again = cache.answer(MASTER, QUERY, probe)
    assert (first.answer, first.cached, first.probed_at) == ({"run": 1}, False, 5000.0)
    assert (again.answer, again.cached, again.probed_at) == ({"run": 1}, True, 5000.0)
    assert probe.runs == 1


def test_another_master_never_sees_the_answer(cache: ProbeCache) -> None:
    probe = Probe()
    cache.answer(MASTER, QUERY, probe)
    others = [
        MasterIdentity("me@gpu:2222", MASTER.pid, MASTER.started_at),  # another connection
        MasterIdentity(MASTER.connection_id, 4343, MASTER.started_at),  # the master was replaced
        MasterIdentity(MASTER.connection_id, MASTER.pid, 2000.0),  # a recycled pid
    ]
    for other in others:
        assert cache.read(other, QUERY) is None
        assert cache.answer(other, QUERY, probe).cached is False
    assert probe.runs == 4


def test_queries_are_kept_apart(cache: ProbeCache) -> None:
    probe = Probe()
    cache.answer(MASTER, ("config", "system"), probe)
    assert cache.read(MASTER, ("config", "base")) is None
    assert cache.read(MASTER, ("config", "system")).answer == {"run": 1}  # type: ignore[union-attr]


def test_a_refresh_asks_again_and_is_kept(cache: ProbeCache, clock: Clock) -> None:
    probe = Probe()
    cache.answer(MASTER, QUERY, probe)
    clock.now += 1
    refreshed = cache.answer(MASTER, QUERY, probe, refresh=True)
    assert (refreshed.answer, refreshed.cached, refreshed.probed_at) == ({"run": 2}, False, 5001.0)
    assert cache.answer(MASTER, QUERY, probe).answer == {"run": 2}


def test_an_old_answer_is_not_served(cache: ProbeCache, clock: Clock) -> None:
    probe = Probe()
    cache.answer(MASTER, QUERY, probe)
    clock.now += 601
    assert cache.answer(MASTER, QUERY, probe).answer == {"run": 2}


def test_max_age_zero_keeps_nothing(tmp_path: Path, clock: Clock) -> None:
    cache = ProbeCache(tmp_path / "cache", max_age=0, lock_timeout=10, clock=clock)
    probe = Probe()
    cache.answer(MASTER, QUERY, probe)
    cache.answer(MASTER, QUERY, probe)
    assert probe.runs == 2
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").rglob("*.json"))


def test_a_failed_probe_is_not_kept(cache: ProbeCache) -> None:
    def failing() -> dict[str, Any]:
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        cache.answer(MASTER, QUERY, failing)
    assert cache.read(MASTER, QUERY) is None


def test_callers_that_come_during_a_probe_wait_for_it(cache: ProbeCache) -> None:
    release = threading.Event()
    probe = Probe(release)
    answers: list[Any] = []
    first = threading.Thread(target=lambda: answers.append(cache.answer(MASTER, QUERY, probe)))
    first.start()
    assert probe.started.wait(10)
    waiters = [threading.Thread(target=lambda: answers.append(cache.answer(MASTER, QUERY, probe))) for _ in range(4)]
    for thread in waiters:
        thread.start()
    release.set()
    for thread in [first, *waiters]:
        thread.join(10)
    assert probe.runs == 1
    assert [found.answer for found in answers] == [{"run": 1}] * 5
    assert sorted(found.cached for found in answers) == [False, True, True, True, True]


def test_a_claim_makes_callers_wait_for_its_holder(cache: ProbeCache) -> None:
    claim = cache.try_probing(MASTER, QUERY)
    assert claim is not None
    assert cache.try_probing(MASTER, QUERY) is None  # taken
    probe = Probe()
    found: list[Any] = []
    caller = threading.Thread(target=lambda: found.append(cache.answer(MASTER, QUERY, probe)))
    caller.start()
    cache.write(MASTER, QUERY, 4999.0, {"from": "prefetch"})
    claim.release()
    caller.join(10)
    assert probe.runs == 0
    assert found[0].answer == {"from": "prefetch"} and found[0].cached
    assert cache.try_probing(MASTER, QUERY) is None  # answered already


def test_a_refresh_does_not_take_an_answer_probed_before_it_asked(cache: ProbeCache, clock: Clock) -> None:
    claim = cache.try_probing(MASTER, QUERY)
    assert claim is not None
    probe = Probe()
    found: list[Any] = []
    clock.now += 5
    caller = threading.Thread(target=lambda: found.append(cache.answer(MASTER, QUERY, probe, refresh=True)))
    caller.start()
    cache.write(MASTER, QUERY, 5000.0, {"from": "before the refresh"})
    claim.release()
    caller.join(10)
    assert found[0].answer == {"run": 1} and probe.runs == 1


def test_forget_drops_the_answers_of_one_connection(cache: ProbeCache) -> None:
    other = MasterIdentity("me@other:22", 1, 1.0)
    cache.answer(MASTER, QUERY, Probe())
    cache.answer(other, QUERY, Probe())
    cache.forget(MASTER.connection_id)
    assert cache.read(MASTER, QUERY) is None
    assert cache.read(other, QUERY) is not None


def test_answers_are_private_files(cache: ProbeCache, tmp_path: Path) -> None:
    cache.answer(MASTER, QUERY, Probe())
    entries = list((tmp_path / "cache").rglob("*.json"))
    assert len(entries) == 1
    assert entries[0].stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "cache").stat().st_mode & 0o777 == 0o700
