"""What the server offers before a viewer starts: environments, config, files.

Each call is one round trip: a probe program (rvssh/remote/scripts/) runs
over the connection's master and prints one JSON object.

The answers about environments (conda-envs, env-configs, config) are kept
per connection (``store/probe_cache.py``) and served again until the master
is replaced, they are ``answer_cache_seconds`` old, or a caller asks for a
refresh. Right after a login, rvssh asks the server in the background for
what the Runicorn UI asks next, its environments, so that call finds its
answer ready or on its way.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from rvssh.errors import RvsshError
from rvssh.remote.probe import build_probe_program, parse_probe_output, probe_output_line
from rvssh.services.connections import ConnectionService, target_of
from rvssh.ssh.exec import RemoteExecutor
from rvssh.ssh.target import Target
from rvssh.store.probe_cache import CachedAnswer, MasterIdentity, ProbeCache, ProbeClaim

log = logging.getLogger(__name__)

SYSTEM_ENV = "system"
ENVS_QUERY = ("envs",)

PortsInUse = Callable[[str], "set[int]"]


def config_query(env_name: str) -> tuple[str, str]:
    """Return the cache key of ``config`` for an environment ("" and "system" are one)."""
    return ("config", env_name or SYSTEM_ENV)


def with_age(found: CachedAnswer, now: float) -> dict[str, Any]:
    """Return a copy of the answer with when it was probed (ms) and how old it is (s)."""
    return {**found.answer, "probedAt": int(found.probed_at * 1000), "ageSeconds": round(max(0.0, now - found.probed_at), 3)}


class EnvironmentService:
    """Run probe subcommands on live connections; keep what they say about environments.

    Args:
        connections: the live masters.
        executor: runs a program over a master.
        cache: where answers are kept (one with max_age 0 keeps nothing).
        ports_in_use: the remote ports of a connection's viewers (a kept
            config never suggests one of them).
        clock: the time (tests pass their own).
    """

    def __init__(
        self,
        connections: ConnectionService,
        executor: RemoteExecutor,
        cache: ProbeCache,
        ports_in_use: PortsInUse | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._connections = connections
        self._executor = executor
        self._cache = cache
        self._ports_in_use = ports_in_use or (lambda connection_id: set())
        self._clock = clock
        connections.on_disconnect(lambda target: cache.forget(target.connection_id))

    def _probe(self, target: Target, subcommand: str, *args: str) -> dict[str, Any]:
        result = self._executor.run(target, build_probe_program(subcommand, *args))
        return parse_probe_output(result.stdout, result.stderr, result.exit_status)

    def _run(self, connection_id: str, subcommand: str, *args: str) -> dict[str, Any]:
        return self._probe(self._connections.require_live(connection_id), subcommand, *args)

    def _live(self, connection_id: str) -> tuple[Target, MasterIdentity]:
        """Return a live connection's target and master, whose answers may be kept (else 400/404)."""
        record = self._connections.live_record(connection_id)
        return target_of(record), MasterIdentity(record.connection_id, record.pid, record.started_at)

    def _kept(self, connection_id: str, query: tuple[str, ...], args: tuple[str, ...], refresh: bool) -> dict[str, Any]:
        """Return the answer of ``query`` (the probe run with ``args``) on a live connection, kept or probed."""
        target, master = self._live(connection_id)
        found = self._cache.answer(master, query, lambda: self._probe(target, *args), refresh)
        return with_age(found, self._clock())

    def conda_envs(self, connection_id: str, refresh: bool = False) -> dict[str, Any]:
        """List every Python environment of the server (conda, venv, the login PATH's python)."""
        return self._kept(connection_id, ENVS_QUERY, ENVS_QUERY, refresh)

    def env_configs(self, connection_id: str, interpreter: str | None = None, refresh: bool = False) -> dict[str, Any]:
        """Map every environment name (and ``interpreter``, a path, when given) to its versions.

        Without ``interpreter`` this is the conda-envs answer in another
        shape (the same probe finds the same versions), so the two are one
        kept answer and always agree; the UI asks both, one after the other.
        """
        if interpreter:
            args = ("env-configs", interpreter)
            return self._kept(connection_id, args, args, refresh)
        envs = self.conda_envs(connection_id, refresh)
        configs = {
            env["name"]: {"pythonVersion": env["python_version"], "runicornVersion": env.get("runicorn_version")}
            for env in envs["envs"]
        }
        return {"ok": True, "configs": configs, "probedAt": envs["probedAt"], "ageSeconds": envs["ageSeconds"]}

    def config(self, connection_id: str, conda_env: str, refresh: bool = False) -> dict[str, Any]:
        """Describe one environment: versions, default storage root, a free remote port."""
        env_name = conda_env or SYSTEM_ENV
        args = ("config", "" if env_name == SYSTEM_ENV else env_name)
        answer = self._kept(connection_id, config_query(env_name), args, refresh)
        answer["suggestedRemotePort"] = self._free_port_of(connection_id, answer)
        answer["condaEnv"] = conda_env
        answer["connectionId"] = connection_id
        return answer

    def _free_port_of(self, connection_id: str, answer: dict[str, Any]) -> Any:
        """Return the answer's suggested remote port, or a spare when a viewer of ours took it since."""
        taken = self._ports_in_use(connection_id)
        candidates = [answer.get("suggestedRemotePort"), *answer.get("spareRemotePorts", ())]
        return next((port for port in candidates if port not in taken), candidates[0])

    def storage_candidates(self, connection_id: str, scan_root: str | None, max_depth: int) -> dict[str, Any]:
        """Find Runicorn storage roots under ``scan_root`` (default: home)."""
        return self._run(connection_id, "storage-candidates", scan_root or "", str(max_depth))

    def fs_list(self, connection_id: str, path: str) -> bytes:
        """List a remote directory: the listing's JSON (FsListResponse's shape), as the server printed it."""
        target = self._connections.require_live(connection_id)
        result = self._executor.run(target, build_probe_program("fs-list", path))
        return probe_output_line(result.stdout, result.stderr, result.exit_status, b'{"path":')

    def fs_exists(self, connection_id: str, path: str) -> dict[str, Any]:
        """Tell whether a remote path exists and is a directory."""
        return self._run(connection_id, "fs-exists", path)

    def python_for(self, target: Target, env_name: str | None) -> str | None:
        """Return the interpreter of ``env_name`` on the server (an env name or an interpreter path).

        None (no name, or ``system``) means the python3 of the login PATH,
        which the viewer's launch finds itself. A kept answer names it
        without a round trip: the environment's config (the UI asks it
        before a start), else its conda-envs entry, else a kept python-of.

        Raises:
            NotFoundError: no environment has that name, or no interpreter is at that path.
        """
        if not env_name or env_name == SYSTEM_ENV:
            return None
        _, master = self._live(target.connection_id)
        known = self._cache.read(master, config_query(env_name))
        if known is not None and isinstance(known.answer.get("pythonPath"), str):
            return str(known.answer["pythonPath"])
        envs = self._cache.read(master, ENVS_QUERY)
        listed = [env.get("path") for env in (envs.answer.get("envs", []) if envs else []) if isinstance(env, dict)
                  and env.get("name") == env_name and env.get("python_version") != "Unknown"]
        if listed and isinstance(listed[0], str):
            return listed[0]
        query = ("python-of", env_name)
        return str(self._cache.answer(master, query, lambda: self._probe(target, *query)).answer["python"])

    # --- prefetch after a login ------------------------------------------------

    def prefetch(self, target: Target) -> None:
        """Ask the server for its environments in the background: what the UI asks after a connect.

        The lock of that answer is taken here, before the connect answers, so
        a conda-envs call that follows (in any worker) waits for this probe
        instead of running its own. Nothing here delays the caller by more
        than taking a lock. The configs are not asked ahead: each one starts
        an interpreter (and imports runicorn) on the server, work that only
        the environments someone picks need.
        """
        try:
            _, master = self._live(target.connection_id)
        except RvsshError:
            return  # gone again already
        claim = self._cache.try_probing(master, ENVS_QUERY)
        if claim is None:
            return
        thread = threading.Thread(
            target=self._prefetch, args=(target, master, claim), name="rvssh-prefetch", daemon=True
        )
        thread.start()

    def _prefetch(self, target: Target, master: MasterIdentity, claim: ProbeClaim) -> None:
        try:
            started = self._clock()
            self._cache.write(master, ENVS_QUERY, started, self._probe(target, *ENVS_QUERY))
        except RvsshError as ex:
            log.info("could not ask %s about its environments ahead of time: %s", target.connection_id, ex.message)
        finally:
            claim.release()
