"""Command line: ``rvssh serve`` runs the API under gunicorn; ``open``, ``ls``, ``stop``, ``hosts`` use it.

This module only reads flags: the client commands live in rvssh/client/.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import quote

from gunicorn.app.base import BaseApplication

from rvssh import __version__
from rvssh.errors import StoreError
from rvssh.http.binding import bind_problem
from rvssh.settings import DEFAULT_BIND, Settings, forget_secret_variables
from rvssh.store.token import serving_token

# APPSEC: method, path and protocol, never gunicorn's "%(r)s" (the request line
# with its query string): the page's address carries the token (?token=).
ACCESS_LOG_FORMAT = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms'
LOG_LEVELS = ("debug", "info", "warning", "error")


def configure_logging(level: str) -> None:
    """Send rvssh's module loggers to stderr at ``level``."""
    logging.basicConfig(level=getattr(logging, level.upper()), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


class GunicornApplication(BaseApplication):  # type: ignore[misc]
    """Run ``create_app(settings)`` in each gunicorn worker."""

    def __init__(self, settings: Settings, token: str) -> None:
        self._settings = settings
        self._token = token
        super().__init__()

    def load_config(self) -> None:
        options: dict[str, Any] = {
            "bind": self._settings.bind,
            "workers": self._settings.workers,
            "threads": self._settings.threads,
            "worker_class": "gthread",
            "accesslog": "-",
            "access_log_format": ACCESS_LOG_FORMAT,
            "errorlog": "-",
            "loglevel": self._settings.log_level,
            # Remote work (viewer start) can take a while; the worker is busy, not hung.
            "timeout": max(120, int(self._settings.viewer_ready_timeout) + 60),
            "graceful_timeout": 10,
            "proc_name": "rvssh",
            # gunicorn >= 24 would open a control socket in ~/.gunicorn; rvssh needs none.
            "control_socket_disable": True,
            "when_ready": self._announce,
        }
        for key, value in options.items():
            if key in self.cfg.settings:  # older gunicorn has no control socket
                self.cfg.set(key, value)

    def _announce(self, server: Any) -> None:
        print(start_line(self._settings, self._token), flush=True)

    def load(self) -> Any:
        from rvssh.app import create_app
        from rvssh.services.container import build_services

        services = build_services(self._settings)
        # One monitor per state dir watches and heals; every worker stands by for it.
        services.monitor.start()
        return create_app(self._settings, services, token=self._token)


def start_line(settings: Settings, token: str) -> str:
    """Return the line ``rvssh serve`` prints on stdout once it listens.

    With rvssh's own token (not one given with --token/RVSSH_TOKEN) the
    page's URL carries it, so the person who started rvssh can open it in a
    browser; the page trades it for a cookie. This line is the only place
    the token is ever written besides its file: it goes to stdout, not to
    the log.
    """
    host = settings.bind_host
    base = f"http://{f'[{host}]' if ':' in host else host}:{settings.bind_port}"
    page = f"{base}/" if settings.token else f"{base}/?token={quote(token, safe='')}"
    return (f"rvssh {__version__} serving the Remote Viewer API at {base}/api (state in {settings.state_dir}); "
            f"open {page}")


def _session_count(text: str) -> int:
    """Parse --max-sessions: a whole number from 1 to 64."""
    try:
        value = int(text)
    except ValueError as ex:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from ex
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError("must be from 1 to 64")
    return value


def _port_number(text: str) -> int:
    """Parse --local-port: a TCP port."""
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"not a port (1-65535): {text!r}")
    return int(text)


def add_client_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``open``, ``ls``, ``stop`` and ``hosts`` (docs/cli.md)."""
    opener = commands.add_parser(
        "open", help="open the Runicorn viewer of a server in your browser (Ctrl-C stops it)",
        description="Connect to HOST, start the Runicorn viewer there with the environment that has runicorn, "
                    "tunnel it to this machine, print its URL and open it in your browser. Stays until Ctrl-C, "
                    "which stops the viewer.")
    opener.add_argument("host", metavar="HOST",
                        help="an alias of your ssh config, user@host, host:port, [v6]:port or ssh://[user@]host[:port]")
    opener.add_argument("--env", metavar="NAME|PATH",
                        help="environment to run the viewer with: a name rvssh finds on the server, or the path "
                             "of a python there (default: the one with runicorn; asked when several)")
    opener.add_argument("--root", metavar="DIR",
                        help="storage root on the server (default: runicorn's own when it exists, else one "
                             "found there, else ~/runicorn_data)")
    opener.add_argument("--local-port", type=_port_number, metavar="N",
                        help="port of the viewer's URL on this machine (default: a free one)")
    opener.add_argument("--no-browser", action="store_false", dest="browser", help="print the URL only")
    opener.add_argument("--detach", action="store_true", help="return once the viewer runs, and leave it running")
    lister = commands.add_parser("ls", help="list connections and viewer sessions",
                                 description="List the connections and viewer sessions of rvssh's state directory.")
    lister.add_argument("--json", action="store_true", help="print them as JSON (the answer of /api/remote/status)")
    stopper = commands.add_parser(
        "stop", help="stop a viewer, or everything on a host",
        description="Stop a viewer session by its id, or every viewer of HOST and its connection, or everything.")
    stopper.add_argument("target", nargs="?", metavar="SESSION|HOST",
                         help="a session id (rvssh ls), or a host as rvssh open takes it")
    stopper.add_argument("--all", action="store_true", help="stop every viewer and close every connection")
    hosts = commands.add_parser("hosts", help="list the Host aliases of your ssh config",
                                description="List the Host aliases of your ssh config (Include files too) and "
                                            "where ssh says each leads.")
    hosts.add_argument("--json", action="store_true", help="print them as JSON (the answer of /api/rvssh/ssh-hosts)")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``rvssh`` command."""
    parser = argparse.ArgumentParser(
        prog="rvssh",
        description="Serve the Runicorn Remote Viewer API locally, doing every SSH operation with the system "
                    "OpenSSH client, and open viewers from the command line.",
    )
    parser.add_argument("--version", action="version", version=f"rvssh {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the API under gunicorn (Ctrl-C stops it)")
    serve.add_argument("--bind", help=f"HOST:PORT to listen on (env RVSSH_BIND; default {DEFAULT_BIND})")
    serve.add_argument("--workers", type=int, help="gunicorn worker processes (env RVSSH_WORKERS; default 1)")
    serve.add_argument("--threads", type=int, help="threads per worker (env RVSSH_THREADS; default 32)")
    serve.add_argument("--state-dir", type=Path,
                       help="private state directory (env RVSSH_STATE_DIR; default $XDG_STATE_HOME/rvssh)")
    serve.add_argument("--ssh-config", type=Path,
                       help="your ssh config, included by rvssh's own (env RVSSH_SSH_CONFIG; default "
                            "~/.ssh/config, then /etc/ssh/ssh_config)")
    serve.add_argument("--connect-timeout", type=float,
                       help="seconds a connect may take (env RVSSH_CONNECT_TIMEOUT; default 15)")
    serve.add_argument("--max-sessions", type=_session_count, dest="max_sessions_per_master",
                       help="remote commands at once per connection at most; a server that refuses a "
                            "session lowers its own limit (env RVSSH_MAX_SESSIONS; default 8)")
    serve.add_argument("--token", help="token for callers not known to be your account, sent as "
                                       "'Authorization: Bearer TOKEN'; replaces the one rvssh keeps in the "
                                       "state directory (env RVSSH_TOKEN, preferred: a flag is visible in ps)")
    serve.add_argument("--allow-origin", action="append", dest="allowed_origins", metavar="ORIGIN",
                       help="let browser pages from ORIGIN call the API, e.g. http://127.0.0.1:8000 "
                            "(repeatable; env RVSSH_ALLOWED_ORIGINS, comma separated)")
    serve.add_argument("--allow-host", action="append", dest="allowed_hosts", metavar="NAME",
                       help="accept this Host header name besides loopback names "
                            "(repeatable; env RVSSH_ALLOWED_HOSTS, comma separated)")
    serve.add_argument("--no-save-secrets", action="store_false", dest="save_secrets", default=None,
                       help="never keep the secrets of saved connections (env RVSSH_SAVE_SECRETS=0)")
    serve.add_argument("--log-level", choices=LOG_LEVELS, type=str.lower,
                       help="how much to log on stderr; debug shows every ssh command (env RVSSH_LOG_LEVEL; default info)")
    add_client_commands(commands)
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Merge command-line flags over the environment."""
    return Settings.from_env(
        bind=args.bind,
        workers=args.workers,
        threads=args.threads,
        state_dir=args.state_dir,
        ssh_config=args.ssh_config,
        connect_timeout=args.connect_timeout,
        max_sessions_per_master=args.max_sessions_per_master,
        token=args.token,
        allowed_origins=tuple(args.allowed_origins) if args.allowed_origins else None,
        allowed_hosts=tuple(args.allowed_hosts) if args.allowed_hosts else None,
        save_secrets=args.save_secrets,
        log_level=args.log_level,
    )


def serve(args: argparse.Namespace) -> int:
    """Run ``rvssh serve`` until gunicorn stops."""
    settings = settings_from_args(args)
    configure_logging(settings.log_level)
    forget_secret_variables()
    problem = bind_problem(settings)
    if problem is not None:
        print(problem, file=sys.stderr)
        return 2
    try:
        token = serving_token(settings.token, settings.state_dir)
    except StoreError as ex:
        print(f"rvssh: {ex.message}", file=sys.stderr)
        return 1
    GunicornApplication(settings, token).run()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``rvssh`` command."""
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    # PERF: `rvssh serve`'s arbiter runs this module and never needs the client.
    from rvssh.client.commands import run_command

    settings = Settings.from_env()
    forget_secret_variables()
    return run_command(args, settings)


if __name__ == "__main__":
    sys.exit(main())
