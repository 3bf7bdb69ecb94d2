"""Wire settings into the ssh layer, stores and services (one object per app)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from rvssh.errors import StoreError
from rvssh.models import ConnectionEntry, ConnectRequest, ViewerSession
from rvssh.services.connections import ConnectionService
from rvssh.services.environments import EnvironmentService
from rvssh.services.saved import resolve_connect
from rvssh.services.viewer import ViewerService
from rvssh.settings import Settings
from rvssh.ssh.argv import SshCommon
from rvssh.ssh.exec import RemoteExecutor, SessionSlots
from rvssh.ssh.fingerprint import fingerprint_with_ssh_keygen
from rvssh.ssh.forward import Forwarder
from rvssh.ssh.master import MasterController, ssh_environment
from rvssh.ssh.stored_keys import expand_tilde, find_stored_key
from rvssh.ssh.target import Target
from rvssh.store.files import make_private_dir
from rvssh.store.known_hosts import KnownHostsStore
from rvssh.store.records import RecordDirectory
from rvssh.store.saved_connections import SavedConnectionStore
from rvssh.store.secrets import LegacySecrets, choose_box

log = logging.getLogger(__name__)


@dataclass
class Services:
    """Everything the HTTP resources call. Built by :func:`build_services`."""

    settings: Settings
    known_hosts: KnownHostsStore
    masters: MasterController
    connections: ConnectionService
    executor: RemoteExecutor
    forwarder: Forwarder
    environments: EnvironmentService
    viewer: ViewerService
    saved_connections: SavedConnectionStore

    def open_connection(self, request: ConnectRequest) -> tuple[Target, ConnectionEntry]:
        """Validate the destination (saved-server defaults applied) and return a live connection to it."""
        target, credentials = resolve_connect(request, self.saved_connections)
        entry = self.connections.connect(target, credentials)
        return target, entry

    def list_viewer_sessions(self) -> list[ViewerSession]:
        """Return every viewer session with its live status."""
        return self.viewer.list_sessions()


def build_services(settings: Settings, environ: dict[str, str] | None = None) -> Services:
    """Create the state directory and every service for ``settings``."""
    environ = dict(os.environ if environ is None else environ)
    state = make_private_dir(settings.state_dir)
    known_hosts = KnownHostsStore(settings.known_hosts_file)
    common = SshCommon(
        ssh_binary=settings.ssh_binary,
        ssh_config=settings.ssh_config,
        known_hosts_files=(str(settings.known_hosts_file), *settings.user_known_hosts),
    )
    fingerprint = partial(fingerprint_with_ssh_keygen, ssh_keygen=settings.ssh_keygen_binary)
    # The files ssh reads, in its order: a changed key's expected key is looked up there.
    known_hosts_files = (settings.known_hosts_file, *(expand_tilde(path) for path in settings.user_known_hosts))
    find_stored = partial(find_stored_key, files=known_hosts_files, ssh_keygen=settings.ssh_keygen_binary)
    masters = MasterController(
        common,
        control_dir=settings.control_dir,
        scratch_dir=state / "tmp",
        connect_timeout=settings.connect_timeout,
        fingerprint=fingerprint,
        find_stored_key=find_stored,
        environ=environ,
    )
    connections = ConnectionService(
        masters, RecordDirectory(state / "connections"), lock_dir=state / "locks", key_dir=state / "keys"
    )
    ssh_env = ssh_environment(environ)
    executor = RemoteExecutor(
        common,
        control_path=masters.control_path,
        is_alive=connections.is_alive,
        slots=SessionSlots(state / "locks" / "sessions", settings.max_sessions_per_master),
        environ=ssh_env,
        timeout=settings.command_timeout,
    )
    forwarder = Forwarder(common, control_path=masters.control_path, environ=ssh_env)
    environments = EnvironmentService(connections, executor)
    viewer = ViewerService(
        connections,
        executor,
        forwarder,
        RecordDirectory(state / "viewers"),
        resolver=environments,
        ready_timeout=settings.viewer_ready_timeout,
    )
    return Services(
        settings=settings,
        known_hosts=known_hosts,
        masters=masters,
        connections=connections,
        executor=executor,
        forwarder=forwarder,
        environments=environments,
        viewer=viewer,
        saved_connections=open_saved_connections(state, settings.save_secrets),
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
