"""Wire settings into the ssh layer, stores and services (one object per app)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Mapping

from rvssh.errors import StoreError
from rvssh.files import make_private_dir
from rvssh.models import ConnectionEntry, ConnectRequest, ViewerSession
from rvssh.services.connections import ConnectionService
from rvssh.services.environments import EnvironmentService
from rvssh.services.monitor import Monitor
from rvssh.services.saved import recall_credentials, resolve_connect
from rvssh.services.ssh_hosts import SshHostsService
from rvssh.services.viewer import ViewerLifecycle, ViewerReads
from rvssh.settings import Settings
from rvssh.ssh.argv import SshCommon
from rvssh.ssh.environment import child_environment
from rvssh.ssh.exec import RemoteExecutor, SessionSlots
from rvssh.ssh.fingerprint import fingerprint_with_ssh_keygen
from rvssh.ssh.forward import Forwarder
from rvssh.ssh.master import MasterController
from rvssh.ssh.resolve import resolve_destination
from rvssh.ssh.sshconfig import SshConfigFiles, SshConfigSpec
from rvssh.ssh.stored_keys import expand_tilde, find_stored_key
from rvssh.ssh.target import Target, make_target
from rvssh.store.known_hosts import KnownHostsStore
from rvssh.store.probe_cache import ProbeCache
from rvssh.store.records import StateStore
from rvssh.store.saved_connections import SavedConnectionStore
from rvssh.store.secrets import LegacySecrets, choose_box

log = logging.getLogger(__name__)

# Longest a heal's TCP connect may take: a lost link is retried often rather than waited on.
HEAL_CONNECT_TIMEOUT = 3.0
# A start still "starting" this long past viewer_ready_timeout was abandoned.
STARTING_GRACE = 30.0


@dataclass
class Services:
    """Everything the HTTP resources (and the CLI) call. Built by :func:`build_services`."""

    settings: Settings
    ssh_common: SshCommon
    ssh_env: dict[str, str]
    known_hosts: KnownHostsStore
    masters: MasterController
    connections: ConnectionService
    executor: RemoteExecutor
    forwarder: Forwarder
    environments: EnvironmentService
    viewer: ViewerLifecycle
    viewer_reads: ViewerReads
    saved_connections: SavedConnectionStore
    monitor: Monitor
    ssh_hosts: SshHostsService

    def resolve_target(self, host: str, port: int, username: str | None) -> Target:
        """Return the target for request strings; without a username, ssh's config names the user."""
        if username is None:
            username = resolve_destination(
                self.ssh_common, self.ssh_env, host, port if port != 22 else None
            ).user
        return make_target(host, port, username)

    def open_connection(self, request: ConnectRequest) -> tuple[Target, ConnectionEntry]:
        """Validate the destination (saved-server defaults applied) and return a live connection to it."""
        host, port, username, credentials = resolve_connect(request, self.saved_connections)
        target = self.resolve_target(host, port, username)
        entry = self.connections.connect(target, credentials)
        return target, entry

    def list_viewer_sessions(self) -> list[ViewerSession]:
        """Return every viewer session as last recorded."""
        return self.viewer_reads.list_sessions()


def build_services(settings: Settings, environ: Mapping[str, str] | None = None) -> Services:
    """Create the state directory and every service for ``settings`` (the monitor is not started)."""
    ssh_env = child_environment(os.environ if environ is None else environ)
    state_dir = make_private_dir(settings.state_dir)
    known_hosts = KnownHostsStore(settings.known_hosts_file)
    config_files = SshConfigFiles(
        SshConfigSpec(
            known_hosts_files=(str(settings.known_hosts_file), *settings.user_known_hosts),
            user_config=settings.ssh_config,
            server_alive_interval=settings.server_alive_interval,
            server_alive_count_max=settings.server_alive_count_max,
        ),
        state_dir,
    )
    common = SshCommon(ssh_binary=settings.ssh_binary, config_file=config_files.shared)
    # The files ssh reads, in its order: a changed key's expected key is looked up there.
    known_hosts_files = (settings.known_hosts_file, *(expand_tilde(path) for path in settings.user_known_hosts))
    find_stored = partial(find_stored_key, files=known_hosts_files, ssh_keygen=settings.ssh_keygen_binary)
    masters = MasterController(
        common,
        config_files,
        control_dir=settings.control_dir,
        scratch_dir=state_dir / "tmp",
        connect_timeout=settings.connect_timeout,
        fingerprint=partial(fingerprint_with_ssh_keygen, ssh_keygen=settings.ssh_keygen_binary),
        find_stored_key=find_stored,
        environ=ssh_env,
    )
    state = StateStore(state_dir, lock_timeout=settings.connect_timeout + 15)
    slots = SessionSlots(state_dir / "locks" / "sessions", settings.max_sessions_per_master)
    connections = ConnectionService(masters, state, slots, key_dir=state_dir / "keys")
    executor = RemoteExecutor(
        common,
        control_path=masters.control_path,
        is_alive=connections.is_alive,
        slots=slots,
        environ=ssh_env,
        timeout=settings.command_timeout,
    )
    forwarder = Forwarder(common, control_path=masters.control_path, environ=ssh_env)
    cache = ProbeCache(state_dir / "cache", settings.answer_cache_seconds, lock_timeout=settings.command_timeout + 15)
    environments = EnvironmentService(
        connections,
        executor,
        cache,
        ports_in_use=lambda connection_id: {record.remote_port for record in state.sessions_of(connection_id)},
    )
    if settings.prefetch:
        # Registered before the viewer's resume: the prefetch starts first.
        connections.on_login(environments.prefetch)
    viewer = ViewerLifecycle(
        connections, executor, forwarder, state, resolver=environments, ready_timeout=settings.viewer_ready_timeout
    )
    saved_connections = open_saved_connections(state_dir, settings.save_secrets)
    monitor = Monitor(
        state_dir,
        state,
        connections,
        viewer,
        recall=partial(recall_credentials, saved_servers=saved_connections),
        interval=settings.monitor_interval,
        heal_timeout=min(settings.connect_timeout, HEAL_CONNECT_TIMEOUT),
        starting_limit=settings.viewer_ready_timeout + STARTING_GRACE,
    )
    return Services(
        settings=settings,
        ssh_common=common,
        ssh_env=ssh_env,
        known_hosts=known_hosts,
        masters=masters,
        connections=connections,
        executor=executor,
        forwarder=forwarder,
        environments=environments,
        viewer=viewer,
        viewer_reads=ViewerReads(state),
        saved_connections=saved_connections,
        monitor=monitor,
        ssh_hosts=SshHostsService(common, ssh_env, settings.ssh_config),
    )


def open_saved_connections(state: Path, save_secrets: bool) -> SavedConnectionStore:
    """Return the saved-connections store of ``state``, with the secrets of an older rvssh sealed now."""
    store = SavedConnectionStore(
        state / "saved_connections.json",
        lock_path=state / "locks" / "saved_connections.lock",
        box=choose_box(state),
        legacy=LegacySecrets(state),
        save_secrets=save_secrets,
    )
    try:
        store.upgrade()
    except StoreError as ex:
        # The next use of the saved list tries again and reports the error.
        log.warning("could not seal the saved secrets of an earlier rvssh yet: %s", ex.message)
    return store
