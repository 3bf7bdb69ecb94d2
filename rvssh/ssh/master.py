"""ControlMaster lifecycle: start (driven by pexpect for prompts), check, exit.

A master is started with ``-f`` and ``ControlPersist=yes``: ssh returns once
authentication is done and the master keeps running on its own, so it
outlives the rvssh worker that started it. Its control socket lives in our
own 0700 directory, named by a hash of the connection_id.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import signal
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pexpect

from rvssh.ssh.argv import MasterAuth, SshCommon, build_control_argv, build_master_argv
from rvssh.ssh.errors import AuthenticationError, ConnectError, HostKey
from rvssh.ssh.hostkeys import build_host_key_error
from rvssh.ssh.prompts import FailureKind, PromptKind, PROMPT_PATTERN, classify, classify_failure, summarize_ssh_output
from rvssh.ssh.target import Target

_MASTER_PID = re.compile(r"Master running \(pid=(\d+)\)")


@dataclass(frozen=True)
class Secrets:
    """What may be typed at ssh's prompts. Never logged, never in argv or env."""

    password: str | None = None
    passphrase: str | None = None


def ssh_environment(base: dict[str, str]) -> dict[str, str]:
    """Return the environment for ssh: prompts on our pty, messages in English."""
    env = dict(base)
    # APPSEC: never let an askpass helper (or DISPLAY) take a prompt from us.
    env["SSH_ASKPASS_REQUIRE"] = "never"
    env["LC_ALL"] = "C"
    return env


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` with mode 0700, or check an existing one is ours and private."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.stat()
    if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(path, 0o700)
        info = path.stat()
        if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
            raise ConnectError(f"Connection failed: {path} must be a private directory of this user")
    return path


def _ignore_sighup() -> None:
    """Keep the master alive when the pty's session leader exits.

    With ``-f`` the authenticated ssh forks and the parent exits; until the
    child calls setsid() it still belongs to the pty's foreground group and
    would die of the SIGHUP sent when the session leader exits. ssh keeps an
    inherited SIG_IGN for SIGHUP.
    """
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


class MasterController:
    """Start, check and end ControlMasters; knows nothing of HTTP."""

    def __init__(
        self,
        common: SshCommon,
        control_dir: Path,
        scratch_dir: Path,
        connect_timeout: float,
        fingerprint: Callable[[str], str],
        find_stored_key: Callable[[str, int, str], HostKey | None],
        environ: dict[str, str],
    ) -> None:
        self._common = common
        self._control_dir = control_dir
        self._scratch_dir = scratch_dir
        self._connect_timeout = connect_timeout
        self._fingerprint = fingerprint
        self._find_stored_key = find_stored_key
        self._env = ssh_environment(environ)

    def control_path(self, target: Target) -> Path:
        """Return the control socket path of ``target`` (40 hex chars, fits sun_path).

        The name also hashes our scratch dir (inside the state dir), so two
        state dirs sharing the /tmp fallback never share a master.
        """
        name = hashlib.sha1(f"{self._scratch_dir}\n{target.connection_id}".encode("utf-8")).hexdigest()
        return self._control_dir / name

    def check(self, target: Target) -> int | None:
        """Return the master's pid when ``ssh -O check`` says it is running, else None."""
        path = self.control_path(target)
        if not path.exists():
            return None
        result = self._run_control(target, "check")
        match = _MASTER_PID.search(result.stderr)
        return int(match.group(1)) if result.returncode == 0 and match else None

    def exit(self, target: Target) -> bool:
        """Ask the master to exit; return whether one was running."""
        if not self.control_path(target).exists():
            return False
        return self._run_control(target, "exit").returncode == 0

    def remove_stale_socket(self, target: Target) -> None:
        """Remove a control socket no master answers on.

        ssh would print "ControlSocket ... already exists, disabling
        multiplexing" and silently run without a master. Only a socket in our
        own private directory whose ``-O check`` failed is removed.
        """
        path = self.control_path(target)
        try:
            info = path.lstat()
        except FileNotFoundError:
            return
        if stat.S_ISSOCK(info.st_mode) and info.st_uid == os.getuid() and self.check(target) is None:
            path.unlink(missing_ok=True)

    def start(self, target: Target, auth: MasterAuth, secrets: Secrets) -> int:
        """Start the master for ``target`` and return its pid.

        Raises:
            HostKeyError: the host key is unknown or changed (the 409 flow).
            AuthenticationError: the server refused us; nothing is retried.
            ConnectError: refused, unknown host, timeout or any other failure.
        """
        ensure_private_dir(self._control_dir)
        ensure_private_dir(self._scratch_dir)
        control_path = self.control_path(target)
        if len(os.fsencode(str(control_path))) + 17 >= 104:
            raise ConnectError(f"Connection failed: control socket path too long: {control_path} (set a shorter --state-dir)")
        capture_file = self._scratch_dir / f"hostkey-{os.getpid()}-{time.monotonic_ns()}"
        argv = build_master_argv(
            self._common,
            target,
            control_path=control_path,
            capture_file=capture_file,
            auth=auth,
            connect_timeout=self._connect_timeout,
        )
        try:
            status, output = self._drive(argv, secrets)
            if status != 0:
                raise self._failure(output, capture_file)
        finally:
            capture_file.unlink(missing_ok=True)
        pid = self.check(target)
        if pid is None:
            raise ConnectError("Connection failed: ssh authenticated but no master answers on its control socket")
        return pid

    def _drive(self, argv: list[str], secrets: Secrets) -> tuple[int, str]:
        """Run ssh on a pty, answer its prompts once each, return (status, output)."""
        transcript = io.StringIO()
        if shutil.which(argv[0], path=self._env.get("PATH")) is None:
            raise ConnectError(f"Connection failed: the ssh client '{argv[0]}' was not found (install openssh-client)")
        child = pexpect.spawn(
            argv[0],
            argv[1:],
            env=self._env,
            encoding="utf-8",
            codec_errors="replace",
            dimensions=(24, 500),
            preexec_fn=_ignore_sighup,
        )
        # APPSEC: only what ssh prints is recorded (logfile_read), never what we send.
        child.logfile_read = transcript
        # A backstop past ssh's own ConnectTimeout, which words its failure better.
        deadline = time.monotonic() + self._connect_timeout + min(5.0, self._connect_timeout)
        answered: set[PromptKind] = set()
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ConnectError(f"Connection failed: timed out after {self._connect_timeout:g} s")
                index = child.expect([PROMPT_PATTERN, pexpect.EOF, pexpect.TIMEOUT], timeout=remaining)
                if index == 1:
                    break
                if index == 2:
                    continue
                self._answer(child, classify(child.after or ""), secrets, answered)
            # PERF: ssh has exited (EOF); reap it now instead of close()'s fixed
            # 0.1 s pause before it checks the child.
            child.ptyproc.delayafterclose = 0
            child.wait()
            child.close()
        finally:
            if child.isalive():
                child.close(force=True)
        status = child.exitstatus if child.exitstatus is not None else 255
        return status, transcript.getvalue()

    @staticmethod
    def _answer(child: pexpect.spawn, kind: PromptKind | None, secrets: Secrets, answered: set[PromptKind]) -> None:
        """Answer one prompt, or stop with the reason we cannot."""
        if kind is PromptKind.PASSWORD:
            # APPSEC: a second password prompt means the first was wrong. Never
            # send it again (account lockout).
            if secrets.password is None or PromptKind.PASSWORD in answered:
                raise AuthenticationError("Connection failed: Permission denied (password refused)")
            answered.add(kind)
            child.sendline(secrets.password)
        elif kind is PromptKind.PASSPHRASE:
            if secrets.passphrase is None or PromptKind.PASSPHRASE in answered:
                # An empty answer makes ssh skip this key and try the next method.
                child.sendline("")
            else:
                answered.add(kind)
                child.sendline(secrets.passphrase)
        elif kind is PromptKind.HOST_KEY_QUESTION:
            # APPSEC: nothing is ever trusted automatically (a ProxyJump hop
            # asks here: its key belongs in the user's own known_hosts).
            child.sendline("no")
        else:
            lines = (child.after or "").replace("\r", "").strip().splitlines()
            prompt = lines[-1][:120] if lines else "?"
            raise AuthenticationError(
                f"Connection failed: the server asks '{prompt}', an interactive prompt rvssh cannot answer"
            )

    def _failure(self, output: str, capture_file: Path) -> Exception:
        kind = classify_failure(output)
        summary = summarize_ssh_output(output)
        if kind is FailureKind.HOST_KEY:
            error = build_host_key_error(output, capture_file, self._fingerprint, self._find_stored_key)
            if error is not None:
                return error
            return ConnectError(f"Connection failed: {summary}")
        if kind is FailureKind.AUTH:
            return AuthenticationError(f"Connection failed: {summary}")
        return ConnectError(f"Connection failed: {summary}")

    def _run_control(self, target: Target, command: str) -> subprocess.CompletedProcess[str]:
        argv = build_control_argv(self._common, target, self.control_path(target), command)
        return subprocess.run(
            argv, env=self._env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=10, check=False
        )
