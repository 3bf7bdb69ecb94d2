"""What the server offers before a viewer starts: environments, config, files.

Each call is one round trip: a probe program (rvssh/remote/scripts/) runs
over the connection's master and prints one JSON object.
"""

from __future__ import annotations

from typing import Any

from rvssh.remote.probe import build_probe_program, parse_probe_output
from rvssh.services.connections import ConnectionService
from rvssh.ssh.exec import RemoteExecutor
from rvssh.ssh.target import Target

SYSTEM_ENV = "system"


class EnvironmentService:
    """Run probe subcommands on live connections."""

    def __init__(self, connections: ConnectionService, executor: RemoteExecutor) -> None:
        self._connections = connections
        self._executor = executor

    def _probe(self, target: Target, subcommand: str, *args: str) -> dict[str, Any]:
        result = self._executor.run(target, build_probe_program(subcommand, *args))
        return parse_probe_output(result.stdout, result.stderr, result.exit_status)

    def _run(self, connection_id: str, subcommand: str, *args: str) -> dict[str, Any]:
        return self._probe(self._connections.require_live(connection_id), subcommand, *args)

    def conda_envs(self, connection_id: str) -> dict[str, Any]:
        """List every Python environment of the server (conda, venv, the login PATH's python)."""
        return self._run(connection_id, "envs")

    def env_configs(self, connection_id: str, interpreter: str | None = None) -> dict[str, Any]:
        """Map every environment name (and ``interpreter``, a path, when given) to its versions."""
        return self._run(connection_id, "env-configs", interpreter or "")

    def config(self, connection_id: str, conda_env: str) -> dict[str, Any]:
        """Describe one environment: versions, default storage root, a free remote port."""
        env_name = conda_env or SYSTEM_ENV
        answer = self._run(connection_id, "config", "" if env_name == SYSTEM_ENV else env_name)
        answer["condaEnv"] = conda_env
        answer["connectionId"] = connection_id
        return answer

    def storage_candidates(self, connection_id: str, scan_root: str | None, max_depth: int) -> dict[str, Any]:
        """Find Runicorn storage roots under ``scan_root`` (default: home)."""
        return self._run(connection_id, "storage-candidates", scan_root or "", str(max_depth))

    def fs_list(self, connection_id: str, path: str) -> dict[str, Any]:
        """List a remote directory."""
        return self._run(connection_id, "fs-list", path)

    def fs_exists(self, connection_id: str, path: str) -> dict[str, Any]:
        """Tell whether a remote path exists and is a directory."""
        return self._run(connection_id, "fs-exists", path)

    def python_for(self, target: Target, env_name: str | None) -> str | None:
        """Return the interpreter of ``env_name`` on the server (an env name or an interpreter path).

        None (no name, or ``system``) means the python3 of the login PATH,
        which the viewer's launch finds itself.

        Raises:
            NotFoundError: no environment has that name, or no interpreter is at that path.
        """
        if not env_name or env_name == SYSTEM_ENV:
            return None
        return str(self._probe(target, "python-of", env_name)["python"])
