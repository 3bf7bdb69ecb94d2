"""What the server offers before a viewer starts: environments, config, files.

Each call is one round trip: the probe script (rvssh/remote/scripts/probe.py)
runs over the connection's master and prints one JSON object.
"""

from __future__ import annotations

from typing import Any

from rvssh.remote.probe import SUBCOMMANDS, build_probe_args, parse_probe_output, program_for
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
        args_list = build_probe_args(subcommand, *args)
        flags = SUBCOMMANDS[subcommand].python_flags
        result = self._executor.run_python(target, program_for(subcommand), args_list, flags=flags)
        return parse_probe_output(result.stdout, result.stderr, result.exit_status)

    def _run(self, connection_id: str, subcommand: str, *args: str) -> dict[str, Any]:
        return self._probe(self._connections.require_live(connection_id), subcommand, *args)

    def conda_envs(self, connection_id: str) -> dict[str, Any]:
        """List every Python environment of the server (conda, venv, system)."""
        return self._run(connection_id, "envs")

    def env_configs(self, connection_id: str) -> dict[str, Any]:
        """Map every environment name to its python and runicorn versions."""
        return self._run(connection_id, "env-configs")

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

    def python_for(self, target: Target, env_name: str | None) -> str:
        """Return the interpreter of ``env_name`` on the server (no name: ``system``).

        The same probe answers config, so the viewer starts with exactly the
        interpreter config described (also for ``system``).

        Raises:
            NotFoundError: no environment has that name.
        """
        name = "" if not env_name or env_name == SYSTEM_ENV else env_name
        return str(self._probe(target, "config", name)["pythonPath"])
