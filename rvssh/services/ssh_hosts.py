"""The hosts of the user's ssh config and where each leads (``GET /api/rvssh/ssh-hosts``, ``rvssh hosts``).

The aliases come from the config files rvssh includes in its own (see
ssh/sshconfig.py), read with their ``Include`` files; each is then resolved
with ``ssh -G`` through rvssh's own config, so what is shown is what a
connect would use: user, host name, port and jump hosts.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rvssh.models import SshHostEntry, SshHostsResponse
from rvssh.ssh.argv import SshCommon
from rvssh.ssh.config_hosts import read_host_aliases
from rvssh.ssh.errors import SshError
from rvssh.ssh.resolve import resolve_destination
from rvssh.ssh.sshconfig import included_configs
from rvssh.ssh.stored_keys import expand_tilde

# PERF: ``ssh -G`` takes a few milliseconds; a long config resolves in parallel.
RESOLVE_WORKERS = 8


class SshHostsService:
    """List the concrete Host aliases of the user's ssh config, resolved by ssh."""

    def __init__(self, common: SshCommon, env: dict[str, str], user_config: Path | None) -> None:
        self._common = common
        self._env = env
        # The files rvssh's own ssh_config includes: the hosts listed are the hosts reachable.
        self._configs = included_configs(user_config)

    def _resolve(self, alias: str) -> SshHostEntry:
        try:
            where = resolve_destination(self._common, self._env, alias)
        except SshError as ex:
            return SshHostEntry(alias=alias, error=ex.message)
        return SshHostEntry(
            alias=alias, user=where.user, hostname=where.hostname, port=where.port, proxy_jump=where.proxy_jump
        )

    def list(self) -> SshHostsResponse:
        """Return the files read and every alias with where it leads (or why ssh cannot say).

        Raises:
            RvsshError: a config file exists but cannot be read.
        """
        found = read_host_aliases([expand_tilde(path) for path in self._configs], expand_tilde("~"))
        with ThreadPoolExecutor(max_workers=RESOLVE_WORKERS) as pool:
            hosts = list(pool.map(self._resolve, found.aliases))
        return SshHostsResponse(files=[str(path) for path in found.files], hosts=hosts)
