"""Throwaway OpenSSH servers on 127.0.0.1 for the integration tier and benchmarks.

The bed needs root: it creates the local account ``rvssh-test``, runs
``/usr/sbin/sshd`` (privilege separation needs root and ``/run/sshd``) and
runs commands as that account with ``runuser``. Nothing here imports pytest.

Typical use::

    with SshBed() as bed:
        subprocess.run(["ssh", "-F", str(bed.ssh_config), "rvtest-alias", "true"])

One bed can also be another kind of server (see :class:`SshBed`): sshd_config
lines of its own (``MaxSessions``, ``Banner``, ``UsePAM`` and
``AuthenticationMethods``), a PAM service of its own (:class:`PamService`:
sshd names its PAM service after its program, so a symlinked binary reads
its own ``/etc/pam.d`` file and the system's sshd is left alone), and more
accounts with their own login shells and start-up files
(:class:`BedAccount`). Several beds run side by side (a bastion and a
target), each with its own port, keys, agent and directory.

Every process the bed starts is ended by ``stop()``, and the PAM file and
symlink it made are removed; the accounts and the runicorn venv are kept on
purpose, so that later runs are fast. Everything it makes on the machine is
made again (or checked) on every start, so a second run, or a run on a
brand-new machine, needs nothing left by an earlier one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence
    from types import TracebackType

T = TypeVar("T")

TEST_USER = "rvssh-test"
# The bed creates the account with this home (useradd -d), so tests may name
# paths in it before the account exists (at import time, on a new machine).
TEST_HOME = Path("/home") / TEST_USER
# APPSEC: a constant password is fine only because sshd listens on 127.0.0.1,
# AllowUsers admits the bed's own accounts alone, and the daemon lives for one test run.
TEST_PASSWORD = "rvssh-Test-pw-1"
KEY_PASSPHRASE = "rvssh-Key-pp-1"
HOST = "127.0.0.1"
ALIAS = "rvtest-alias"
SSHD = Path("/usr/sbin/sshd")
RUNICORN_REQUIREMENT = "runicorn==0.7.2"
RUNICORN_VENV = TEST_HOME / ".virtualenvs" / "runicorn"
# NOTE: the venv is built from the system interpreter: the suite's own python
# usually lives under /root/.pyenv, and /root is mode 0700, so the test user
# could not execute a venv based on it.
SYSTEM_PYTHON = Path("/usr/bin/python3")
HOST_KEY_TYPES = {"ed25519": "ssh-ed25519", "rsa": "ssh-rsa"}
STOP_TIMEOUT = 5.0
START_TIMEOUT = 10.0
# Where the beds' PAM services get their own sshd program (a symlink to SSHD).
PAM_SBIN = Path("/usr/local/sbin")
PAM_DIR = Path("/etc/pam.d")
_LOGIN_RE = re.compile(r"^Accepted \S+ for (\S+) ", re.MULTILINE)


class SshBedError(RuntimeError):
    """The bed could not be set up (sshd, agent, account or venv)."""


class _PortTakenError(Exception):
    """sshd could not bind its port; start_sshd picks another."""


def wait_until(
    predicate: Callable[[], T],
    timeout: float,
    message: str,
    interval: float = 0.05,
    context: Callable[[], str] | None = None,
) -> T:
    """Poll ``predicate`` until it returns something truthy, and return that.

    Args:
        predicate: called repeatedly; exceptions it raises propagate, which is
            how a predicate reports "this will never become true".
        timeout: seconds before giving up.
        message: first line of the ``TimeoutError``.
        interval: seconds between polls.
        context: called once at the deadline; its text (e.g. sshd's log) is
            appended to the error.

    Raises:
        TimeoutError: the predicate stayed falsy for ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            extra = f"\n{context()}" if context is not None else ""
            raise TimeoutError(f"{message} (waited {timeout:.1f}s){extra}")
        time.sleep(interval)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _run(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    """Run a setup command, raising ``SshBedError`` with its output on failure."""
    kw.setdefault("stdin", subprocess.DEVNULL)
    kw.setdefault("timeout", 120)
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, **kw)
    if proc.returncode != 0:
        raise SshBedError(
            f"{' '.join(argv)} exited {proc.returncode}\n{proc.stdout}{proc.stderr}"
        )
    return proc


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    """Serialise account and venv setup between test runs on the same machine."""
    with open(f"/tmp/rvssh-sshbed-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def run_as(user: str, cmd: list[str] | str, **kw: Any) -> subprocess.CompletedProcess[str]:
    """Run a command locally as ``user``, not through ssh.

    A string runs under ``bash -c``. The command starts in the user's home
    with a minimal environment. Keyword arguments go to ``subprocess.run``;
    by default output is captured as text and a non-zero exit raises
    ``CalledProcessError``.
    """
    argv = ["/bin/bash", "-c", cmd] if isinstance(cmd, str) else list(cmd)
    home = pwd.getpwnam(user).pw_dir
    kw.setdefault("cwd", home)
    kw.setdefault("env", {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8"})
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("check", True)
    kw.setdefault("timeout", 60)
    return subprocess.run(["/usr/sbin/runuser", "-u", user, "--", *argv], **kw)


def run_as_user(cmd: list[str] | str, **kw: Any) -> subprocess.CompletedProcess[str]:
    """Run a command locally as the test user (see :func:`run_as`)."""
    return run_as(TEST_USER, cmd, **kw)


def ensure_test_user() -> None:
    """Create the test account if missing and give it the known password.

    sshd runs with ``UsePAM no``, so it reads /etc/shadow itself and refuses
    an account whose hash starts with ``!`` (locked): ``useradd`` leaves the
    account locked until ``chpasswd`` sets a password.
    """
    with _locked("user"):
        try:
            pwd.getpwnam(TEST_USER)
        except KeyError:
            _run(["useradd", "-m", "-d", str(TEST_HOME), "-s", "/bin/bash", TEST_USER])
        _run(["chpasswd"], input=f"{TEST_USER}:{TEST_PASSWORD}\n", stdin=None)
        status = _run(["passwd", "-S", TEST_USER]).stdout.split()
        if len(status) < 2 or status[1] != "P":
            raise SshBedError(f"{TEST_USER} has no usable password: {' '.join(status)}")
    # sshd's privilege separation directory; systemd creates it, containers don't.
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)


def _venv_imports_runicorn(python: Path) -> bool:
    proc = run_as_user([str(python), "-c", "import runicorn"], check=False)
    return proc.returncode == 0


def ensure_runicorn_venv() -> Path:
    """Return the test user's venv python with runicorn installed.

    The venv lives in the user's home, where rvssh's remote scripts look for
    it, and is kept between runs; it is rebuilt only when ``import runicorn``
    fails there. Building it downloads from PyPI (about 10 s here, more on a slow link).
    """
    ensure_test_user()
    python = RUNICORN_VENV / "bin" / "python"
    with _locked("runicorn-venv"):
        if python.exists() and _venv_imports_runicorn(python):
            return python
        shutil.rmtree(RUNICORN_VENV, ignore_errors=True)
        RUNICORN_VENV.parent.mkdir(parents=True, exist_ok=True)
        venv_argv = [str(SYSTEM_PYTHON), "-m", "venv", str(RUNICORN_VENV)]
        try:
            _run(venv_argv)
        except SshBedError:
            # Debian's python3 has no ensurepip without python3-venv.
            shutil.rmtree(RUNICORN_VENV, ignore_errors=True)
            apt_env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            _run(["apt-get", "update", "-q"], env=apt_env, timeout=600)
            _run(["apt-get", "install", "-y", "-q", "python3-venv"], env=apt_env, timeout=600)
            _run(venv_argv)
        _run(
            [str(python), "-m", "pip", "install", "-q", "--root-user-action=ignore",
             RUNICORN_REQUIREMENT],
            timeout=1200,
        )
        user = pwd.getpwnam(TEST_USER)
        _run(["chown", "-R", f"{user.pw_uid}:{user.pw_gid}", str(RUNICORN_VENV.parent)])
        if not _venv_imports_runicorn(python):
            raise SshBedError(f"{python} cannot import runicorn as {TEST_USER}")
        return python


def share_runicorn_venv() -> Path:
    """Return the runicorn venv's directory, readable by every account of the machine.

    The bed's other accounts link to this venv instead of building their
    own: the test user's home, the folder above the venv and the venv itself
    are opened to others explicitly (o+rX), whatever the machine's defaults
    for new homes (``HOME_MODE``) or the umask pip ran with.
    """
    ensure_runicorn_venv()
    for folder in (TEST_HOME, RUNICORN_VENV.parent):
        folder.chmod(folder.stat().st_mode | 0o005)
    _run(["chmod", "-R", "o+rX", str(RUNICORN_VENV)])
    return RUNICORN_VENV


@dataclass(frozen=True)
class BedAccount:
    """A local account of a bed besides the test user, with its login shell and start-up files.

    The bed creates it when it is missing, sets its shell and (re)writes its
    files and links on every start; sshd admits it with the bed's keys.

    Attributes:
        name: the account; tests declare it as ``TEST_USER_<SUFFIX> = "<name>"``
            so that ``fresh-machine`` finds and removes it.
        shell: its login shell, an absolute path.
        files: home-relative path -> content (``{home}`` stands for the home).
        links: home-relative path -> where a symlink made there points.
    """

    name: str
    shell: str
    files: Mapping[str, str] = field(default_factory=dict)
    links: Mapping[str, str] = field(default_factory=dict)

    @property
    def home(self) -> Path:
        return Path("/home") / self.name


def ensure_account(account: BedAccount) -> None:
    """Create ``account`` if missing, give it its shell, files and links, and unlock it for sshd.

    sshd with ``UsePAM no`` refuses a locked account, even for a key login:
    useradd leaves the password field ``!`` (locked); ``*`` means no password.
    """
    with _locked("user"):
        try:
            entry = pwd.getpwnam(account.name)
        except KeyError:
            _run(["useradd", "-m", "-d", str(account.home), "-s", account.shell, account.name])
            entry = pwd.getpwnam(account.name)
        if entry.pw_shell != account.shell:
            _run(["usermod", "-s", account.shell, account.name])
        _run(["usermod", "-p", "*", account.name])
    home = Path(entry.pw_dir)
    made: list[Path] = []
    for relative, content in account.files.items():
        path = home / relative
        made += _make_parents(path, home)
        path.unlink(missing_ok=True)
        path.write_text(content.replace("{home}", str(home)))
        made.append(path)
    for relative, target in account.links.items():
        path = home / relative
        made += _make_parents(path, home)
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.exists():
            shutil.rmtree(path)
        path.symlink_to(target)
        made.append(path)
    if made:
        _run(["chown", "-h", f"{entry.pw_uid}:{entry.pw_gid}", *map(str, made)])


def _make_parents(path: Path, home: Path) -> list[Path]:
    """Create the missing folders between ``home`` and ``path``; return them."""
    missing = [parent for parent in path.relative_to(home).parents if not (home / parent).exists()]
    made = [home / parent for parent in reversed(missing)]
    for folder in made:
        folder.mkdir(mode=0o755)
    return made


@dataclass(frozen=True)
class PamService:
    """A PAM service of a bed's own.

    sshd takes its PAM service name from its program name, so the bed runs
    sshd through the symlink ``/usr/local/sbin/<name>``, which reads
    ``/etc/pam.d/<name>``; the system's own sshd service is left alone.

    Attributes:
        name: the service and the symlink's name.
        config: the text of ``/etc/pam.d/<name>``; ``{dir}`` stands for the bed's directory.
    """

    name: str
    config: str

    @property
    def program(self) -> Path:
        return PAM_SBIN / self.name

    @property
    def config_file(self) -> Path:
        return PAM_DIR / self.name


def _keygen(path: Path, key_type: str, passphrase: str = "") -> None:
    """Generate a key pair at ``path``, replacing any existing one.

    ssh-keygen asks before overwriting, so old files are removed first.
    """
    for stale in (path, path.with_name(path.name + ".pub")):
        stale.unlink(missing_ok=True)
    bits = ["-b", "2048"] if key_type == "rsa" else []
    _run(["ssh-keygen", "-q", "-t", key_type, *bits, "-N", passphrase,
          "-C", f"rvssh-bed-{path.name}", "-f", str(path)])


def _proc_table() -> dict[int, tuple[int, str]]:
    """Map every live pid to (parent pid, state) from /proc."""
    table: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may contain spaces and parentheses; it ends at the last ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        table[int(entry.name)] = (int(fields[1]), fields[0])
    return table


def session_viewer_pids(session_id: str) -> list[int]:
    """Return the live pids whose environment marks them as the viewer of one rvssh session.

    rvssh's launch sets ``RVSSH_VIEWER_SESSION=<id>``; matching it counts this
    session's viewer and nothing else the test user runs (another test's, a
    benchmark's).
    """
    marker = f"RVSSH_VIEWER_SESSION={session_id}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                    found.append(int(entry.name))
    return found


def _descendants(pid: int) -> list[int]:
    table = _proc_table()
    found: list[int] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, (ppid, _) in table.items() if ppid == parent]
        found.extend(children)
        frontier.extend(children)
    return found


def _end_pids(pids: list[int]) -> None:
    """SIGTERM processes that are not our children, then SIGKILL leftovers.

    Zombies count as gone: in a container pid 1 may never reap them.
    """
    def alive() -> list[int]:
        table = _proc_table()
        return [pid for pid in pids if pid in table and table[pid][1] != "Z"]

    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        with contextlib.suppress(TimeoutError):
            wait_until(lambda: not alive(), STOP_TIMEOUT, "processes survived")
    if alive():
        raise SshBedError(f"processes survived SIGKILL: {alive()}")


def _end_process(proc: subprocess.Popen[bytes]) -> None:
    """Terminate one of our child processes: terminate, wait, kill."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT)


class SshBed:
    """An sshd on 127.0.0.1 with its keys, a client config and an ssh-agent.

    Paths are attributes set by ``start()``; everything lives in one short
    temporary directory because Unix socket paths (the agent's, rvssh's
    ControlPath) are limited to about 100 bytes.

    Attributes:
        dir: the temporary directory.
        port: sshd's port, kept across ``restart()``.
        host, user, password: where and as whom to log in.
        key_plain, key_pass, key_agent, key_unauthorised: private ed25519 key
            paths (``.pub`` alongside); the first three are authorised,
            ``key_pass`` is encrypted with ``key_passphrase`` and ``key_agent``
            is loaded in the agent at ``agent_sock``.
        ssh_config: client config with ``Host rvtest-alias``, for ``ssh -F``.
        user_known_hosts: empty file standing in for ~/.ssh/known_hosts;
            ``ssh_config`` points UserKnownHostsFile at it.
        log_path: sshd's log (-E), appended to across restarts.
        accounts: the bed's accounts besides the test user (same keys).
    """

    dir: Path
    port: int
    sshd_config: Path
    log_path: Path
    key_plain: Path
    key_pass: Path
    key_agent: Path
    key_unauthorised: Path
    agent_sock: Path
    ssh_config: Path
    user_known_hosts: Path

    host = HOST
    user = TEST_USER
    password = TEST_PASSWORD
    key_passphrase = KEY_PASSPHRASE
    alias = ALIAS
    run_as_user = staticmethod(run_as_user)

    def __init__(
        self,
        port: int | None = None,
        *,
        sshd_options: Sequence[str] = (),
        files: Mapping[str, str] | None = None,
        accounts: Sequence[BedAccount] = (),
        pam: PamService | None = None,
    ) -> None:
        """Prepare a bed.

        Args:
            port: pins sshd's port; otherwise a free one is picked.
            sshd_options: sshd_config lines put before the bed's own, so they
                win (sshd keeps the first value of a keyword), e.g.
                ``MaxSessions 1`` or ``UsePAM yes``; ``{dir}`` stands for the
                bed's directory.
            files: files written into the bed's directory (mode 0600, read by
                sshd or PAM as root) before sshd starts, e.g. a banner.
            accounts: more accounts sshd admits, with the bed's keys.
            pam: run sshd under this PAM service (with ``UsePAM yes`` among
                ``sshd_options``).
        """
        self._pinned_port = port
        self._sshd_options = tuple(sshd_options)
        self._files = dict(files or {})
        self.accounts = tuple(accounts)
        self._pam = pam
        self._sshd: subprocess.Popen[bytes] | None = None
        self._agent: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    def __enter__(self) -> SshBed:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        """Create the account, keys, configs and agent, and start sshd."""
        if os.geteuid() != 0:
            raise SshBedError("the ssh test bed needs root (useradd, runuser, sshd)")
        if not SSHD.exists():
            raise SshBedError(f"{SSHD} is missing: apt-get install openssh-server")
        ensure_test_user()
        for account in self.accounts:
            ensure_account(account)
        self.dir = Path(tempfile.mkdtemp(prefix="rvb-", dir="/tmp"))
        try:
            self._create_material()
            self._install_pam()
            self._start_agent()
            self.start_sshd()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """End sshd (and its sessions) and the agent, remove the PAM service and the directory."""
        try:
            self.stop_sshd()
        finally:
            if self._agent is not None:
                _end_process(self._agent)
                self._agent = None
            if self._pam is not None:
                self._pam.config_file.unlink(missing_ok=True)
                self._pam.program.unlink(missing_ok=True)
            if hasattr(self, "dir"):
                shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def sshd_program(self) -> Path:
        """The sshd binary the bed runs: SSHD, or its PAM service's symlink to it."""
        return self._pam.program if self._pam is not None else SSHD

    def start_sshd(self) -> None:
        """Start sshd and wait until it accepts TCP connections.

        A connect alone could reach another process holding the port, so
        readiness also needs this start's "Server listening" log line. An
        unpinned port that turns out to be taken is replaced, a few times.
        """
        for _attempt in range(3):
            self._write_sshd_config()
            self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            with open(self.log_path, "ab") as log:
                self._sshd = subprocess.Popen(
                    self.sshd_argv(),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
            try:
                wait_until(self._listening, START_TIMEOUT, f"sshd not listening on {self.port}",
                           context=self._log_tail)
                return
            except _PortTakenError:
                self._sshd = None
                self.port = free_port()
                self._write_client_config()
            except BaseException:
                self.stop_sshd()
                raise
        raise SshBedError(f"sshd found no free port\n{self._log_tail()}")

    def sshd_argv(self) -> list[str]:
        """Return the command that runs this bed's sshd in the foreground."""
        return [str(self.sshd_program), "-D", "-e", "-f", str(self.sshd_config), "-E", str(self.log_path)]

    def stop_sshd(self) -> None:
        """Stop sshd and end its open connections and their sessions.

        Per-connection sshd processes call setsid() and outlive the listener,
        so they are collected from /proc before the listener goes.
        """
        if self._sshd is None:
            return
        if self._sshd.poll() is None:
            self.drop_connections()
        _end_process(self._sshd)
        self._sshd = None

    def restart(self, new_host_keys: bool = False) -> None:
        """Restart sshd on the same port, optionally with new host keys.

        Open connections are dropped, as on a server reboot.
        """
        self.stop_sshd()
        if new_host_keys:
            self._generate_host_keys()
        self.start_sshd()

    def wait_until_idle(self, timeout: float = 10.0) -> None:
        """Wait until sshd serves no connection, so that the log holds every line of the ended ones.

        sshd writes a connection's last lines (a refused code, a failed
        password) from the process serving it, which may outlive the client
        by a moment.
        """
        wait_until(lambda: not self.connection_pids(), timeout, "sshd still serves a connection",
                   context=self._log_tail)

    def drop_connections(self) -> None:
        """End every open ssh connection while sshd keeps listening."""
        if self._sshd is not None:
            _end_pids(self.connection_pids())

    def connection_pids(self) -> list[int]:
        """Return the sshd processes that serve open connections (not the listener)."""
        assert self._sshd is not None
        return _descendants(self._sshd.pid)

    # -- observations ------------------------------------------------------

    def host_public_keys(self) -> dict[str, str]:
        """Return the server's host keys as {key type: "type base64"}."""
        keys: dict[str, str] = {}
        for name, key_type in HOST_KEY_TYPES.items():
            text = (self.dir / f"ssh_host_{name}_key.pub").read_text().split()
            keys[key_type] = f"{text[0]} {text[1]}"
        return keys

    def known_hosts_text(self) -> str:
        """Return known_hosts lines for the server as ssh looks it up."""
        return "".join(
            f"[{self.host}]:{self.port} {key}\n" for key in self.host_public_keys().values()
        )

    def client_env(self, agent: bool = False) -> dict[str, str]:
        """Return os.environ with SSH_AUTH_SOCK set to the bed's agent or removed."""
        env = {k: v for k, v in os.environ.items() if k not in ("SSH_AUTH_SOCK", "SSH_AGENT_PID")}
        if agent:
            env["SSH_AUTH_SOCK"] = str(self.agent_sock)
        return env

    def log_text(self) -> str:
        """Return sshd's log so far.

        NOTE: sshd may write a line a moment after the client returns (the
        session process logs through its monitor), so poll counts with
        ``wait_until`` rather than reading once.
        """
        return self.log_path.read_text(errors="replace")

    def count_logins(self, user: str | None = None) -> int:
        """Count successful logins ("Accepted <method> for <user> ...") in the log, of ``user`` if given.

        NOTE: at LogLevel VERBOSE sshd also logs "Accepted key ... found at"
        twice per public key login (query, then signature), hence the regex.
        A first factor that a second must follow is logged "Partial ...",
        not counted here.
        """
        return sum(user in (None, name) for name in _LOGIN_RE.findall(self.log_text()))

    def count_lines(self, start: str) -> int:
        """Count the log's lines that start with ``start`` (e.g. "Failed keyboard-interactive")."""
        return sum(line.startswith(start) for line in self.log_text().splitlines())

    def count_failed_passwords(self) -> int:
        """Count rejected passwords ("Failed password ...") in the log."""
        return self.log_text().count("Failed password")

    # -- internals ---------------------------------------------------------

    def _log_tail(self, lines: int = 40) -> str:
        try:
            tail = self.log_text().splitlines()[-lines:]
        except OSError as ex:
            return f"(no sshd log: {ex})"
        return "sshd log:\n" + "\n".join(tail)

    def _listening(self) -> bool:
        assert self._sshd is not None
        if self._sshd.poll() is not None:
            log = self._log_tail()
            if self._pinned_port is None and "Address already in use" in log:
                raise _PortTakenError()
            raise SshBedError(f"sshd exited with {self._sshd.returncode}\n{log}")
        with open(self.log_path, "rb") as log_file:
            log_file.seek(self._log_offset)
            started = log_file.read().decode(errors="replace")
        if f"Server listening on {self.host} port {self.port}." not in started:
            return False
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            return sock.connect_ex((self.host, self.port)) == 0

    def _create_material(self) -> None:
        # sshd reads authorized_keys as the test user: the directory must be
        # traversable by it (StrictModes no skips the ownership checks).
        self.dir.chmod(0o711)
        self.port = self._pinned_port or free_port()
        self.sshd_config = self.dir / "sshd_config"
        self.log_path = self.dir / "sshd.log"
        self.agent_sock = self.dir / "agent.sock"
        self.ssh_config = self.dir / "ssh_config"
        self.user_known_hosts = self.dir / "user_known_hosts"
        self.user_known_hosts.touch()
        self._generate_host_keys()
        for name in ("key_plain", "key_pass", "key_agent", "key_unauthorised"):
            path = self.dir / name
            _keygen(path, "ed25519", KEY_PASSPHRASE if name == "key_pass" else "")
            setattr(self, name, path)
        authorized = self.dir / "authorized_keys"
        authorized.mkdir(mode=0o755)
        keys = "".join(
            key.with_name(key.name + ".pub").read_text()
            for key in (self.key_plain, self.key_pass, self.key_agent)
        )
        for user in (TEST_USER, *(account.name for account in self.accounts)):
            (authorized / user).write_text(keys)
            (authorized / user).chmod(0o644)
        for name, content in self._files.items():
            path = self.dir / name
            path.write_text(content)
            path.chmod(0o600)
        self._write_client_config()

    def _install_pam(self) -> None:
        """Make the PAM service's file and its sshd symlink (replacing what an earlier run left)."""
        if self._pam is None:
            return
        PAM_SBIN.mkdir(parents=True, exist_ok=True)
        self._pam.program.unlink(missing_ok=True)
        self._pam.program.symlink_to(SSHD)
        self._pam.config_file.write_text(self._pam.config.replace("{dir}", str(self.dir)))
        self._pam.config_file.chmod(0o644)

    def _generate_host_keys(self) -> None:
        for name in HOST_KEY_TYPES:
            _keygen(self.dir / f"ssh_host_{name}_key", name)

    def _write_sshd_config(self) -> None:
        host_keys = "".join(
            f"HostKey {self.dir / f'ssh_host_{name}_key'}\n" for name in HOST_KEY_TYPES
        )
        own = "".join(line.replace("{dir}", str(self.dir)) + "\n" for line in self._sshd_options)
        users = " ".join((TEST_USER, *(account.name for account in self.accounts)))
        self.sshd_config.write_text(
            f"{own}"
            f"ListenAddress {self.host}\n"
            f"Port {self.port}\n"
            f"{host_keys}"
            f"PidFile {self.dir / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {self.dir / 'authorized_keys'}/%u\n"
            "StrictModes no\n"
            "UsePAM no\n"
            "PasswordAuthentication yes\n"
            "KbdInteractiveAuthentication no\n"
            "PubkeyAuthentication yes\n"
            "PermitRootLogin no\n"
            f"AllowUsers {users}\n"
            "LogLevel VERBOSE\n"
            "AllowTcpForwarding yes\n"
            "PrintMotd no\n"
            "Subsystem sftp internal-sftp\n"
            "UseDNS no\n"
        )

    def _write_client_config(self) -> None:
        # NOTE: ssh finds ~/.ssh through the passwd entry, not $HOME, so tests
        # pass `-F ssh_config`; the Host * block redirects known_hosts too.
        self.ssh_config.write_text(
            f"Host {ALIAS}\n"
            f"    HostName {self.host}\n"
            f"    Port {self.port}\n"
            f"    User {TEST_USER}\n"
            f"    IdentityFile {self.key_plain}\n"
            "    IdentitiesOnly yes\n"
            "\n"
            "Host *\n"
            f"    UserKnownHostsFile {self.user_known_hosts}\n"
        )

    def _start_agent(self) -> None:
        agent_log = self.dir / "agent.log"
        with open(agent_log, "wb") as log:
            self._agent = subprocess.Popen(
                ["ssh-agent", "-D", "-a", str(self.agent_sock)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        agent = self._agent

        def ready() -> bool:
            if agent.poll() is not None:
                raise SshBedError(
                    f"ssh-agent exited with {agent.returncode}: {agent_log.read_text()}"
                )
            return self.agent_sock.exists()

        wait_until(ready, START_TIMEOUT, "ssh-agent socket did not appear")
        _run(["ssh-add", str(self.key_agent)], env=self.client_env(agent=True))
