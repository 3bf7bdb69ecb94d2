"""ControlMaster lifecycle: start (driven by pexpect for prompts), check, exit.

A master is started with ``-f`` and ``ControlPersist=yes``: ssh returns once
authentication is done and the master keeps running on its own, so it
outlives the rvssh worker that started it. Its control socket lives in our
own 0700 directory, named by a hash of the connection_id.

Prompts are data: each one becomes a :class:`~rvssh.ssh.prompts.Prompt` and
an :class:`~rvssh.ssh.answers.Answerer` says what to type, or that it cannot
(then the handshake stops and the caller hears what was asked).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import secrets
import shlex
import shutil
import signal
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from rvssh.files import make_private_dir
from rvssh.ssh.answers import Answerer
from rvssh.ssh.argv import MasterAuth, SshCommon, build_control_argv, build_master_argv
from rvssh.ssh.errors import AuthenticationError, AuthPromptError, ConnectError, HostKey, SshCommandError
from rvssh.ssh.hostkeys import build_host_key_error, build_refused_hop_error
from rvssh.ssh.process import run_command
from rvssh.ssh.prompts import (
    PARTIAL_SUCCESS,
    PROMPT_PATTERN,
    FailureKind,
    Prompt,
    PromptKind,
    classify_failure,
    classify_prompt,
    summarize_ssh_output,
    transcript_tail,
)
from rvssh.ssh.resolve import resolve_destination
from rvssh.ssh.sshconfig import SshConfigFiles
from rvssh.ssh.target import Target

if TYPE_CHECKING:
    import pexpect

log = logging.getLogger(__name__)

_MASTER_PID = re.compile(rb"Master running \(pid=(\d+)\)")
CONTROL_TIMEOUT = 10.0
# How long a line that only looks like a question must stay the last output
# before it is taken for one (see Prompt.certain).
QUIET_BEFORE_ANSWER = 0.5
_ANY_OUTPUT = re.compile(r".", re.DOTALL)
# A Unix socket path must fit sun_path (104 bytes on macOS); ssh first binds
# "<ControlPath>.<16 random chars>".
SUN_PATH_BUDGET = 104
_MASK = "**********"


@dataclass(frozen=True)
class Handshake:
    """What one master start printed and how it ended (the transcript holds no secret)."""

    status: int
    transcript: str
    partial_success: str | None


def _ignore_sighup() -> None:
    """Keep the master alive when the pty's session leader exits.

    With ``-f`` the authenticated ssh forks and the parent exits; until the
    child calls setsid() it still belongs to the pty's foreground group and
    would die of the SIGHUP sent when the session leader exits. ssh keeps an
    inherited SIG_IGN for SIGHUP.
    """
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


class _Transcript(io.StringIO):
    """ssh's output as read from the pty, with every answer we typed masked out.

    APPSEC: an answer to a question with echo on comes back through the pty;
    it is masked before anything reads the transcript.
    """

    def __init__(self) -> None:
        super().__init__()
        self._typed: list[str] = []

    def remember_typed(self, value: str) -> None:
        if value:
            self._typed.append(value)

    def text(self) -> str:
        value = self.getvalue()
        for typed in sorted(self._typed, key=len, reverse=True):
            value = value.replace(typed, _MASK)
        return value


class MasterController:
    """Start, check and end ControlMasters; knows nothing of HTTP."""

    def __init__(
        self,
        common: SshCommon,
        config_files: SshConfigFiles,
        control_dir: Path,
        scratch_dir: Path,
        connect_timeout: float,
        fingerprint: Callable[[str], str],
        find_stored_key: Callable[[str, int, str], HostKey | None],
        environ: dict[str, str],
    ) -> None:
        self._common = common
        self._config_files = config_files
        self._control_dir = control_dir
        self._scratch_dir = scratch_dir
        self._connect_timeout = connect_timeout
        self._fingerprint = fingerprint
        self._find_stored_key = find_stored_key
        self._env = environ

    def control_path(self, target: Target) -> Path:
        """Return the control socket path of ``target`` (40 hex chars, fits sun_path).

        The name also hashes our scratch dir (inside the state dir), so two
        state dirs sharing the /tmp fallback never share a master.
        """
        name = hashlib.sha1(f"{self._scratch_dir}\n{target.connection_id}".encode("utf-8")).hexdigest()
        return self._control_dir / name

    def check(self, target: Target) -> int | None:
        """Return the master's pid when ``ssh -O check`` says it is running, else None.

        Raises:
            SshCommandError: ssh could not run or the master did not answer in time.
        """
        if not self.control_path(target).exists():
            return None
        result = self._run_control(target, "check")
        match = _MASTER_PID.search(result.stderr)
        return int(match.group(1)) if result.returncode == 0 and match else None

    def exit(self, target: Target) -> bool:
        """Ask the master to exit; return whether one was running."""
        if not self.control_path(target).exists():
            return False
        ended = self._run_control(target, "exit").returncode == 0
        if ended:
            log.info("ended the master of %s", target.connection_id)
        return ended

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
            log.info("removing the stale control socket of %s", target.connection_id)
            path.unlink(missing_ok=True)

    def start(self, target: Target, auth: MasterAuth, answerer: Answerer, connect_timeout: float | None = None) -> int:
        """Start the master for ``target`` and return its pid.

        Raises:
            HostKeyError: a host of the route has an unknown or changed key (the 409 flow).
            AuthPromptError: the server asked something ``answerer`` cannot answer.
            AuthenticationError: the server refused us; nothing is retried.
            ConnectError: refused, unknown host, timeout or any other failure.
        """
        make_private_dir(self._control_dir)
        make_private_dir(self._scratch_dir)
        control_path = self.control_path(target)
        if len(os.fsencode(str(control_path))) + 17 >= SUN_PATH_BUDGET:
            raise ConnectError(f"Connection failed: control socket path too long: {control_path} (set a shorter --state-dir)")
        timeout = connect_timeout or self._connect_timeout
        capture_file = self._scratch_dir / f"hostkey-{secrets.token_hex(6)}"
        config_file = self._config_files.for_master_start(capture_file)
        argv = build_master_argv(
            self._common, target, config_file=config_file, control_path=control_path, auth=auth, connect_timeout=timeout
        )
        log.debug("starting the master of %s: %s", target.connection_id, shlex.join(argv))
        try:
            handshake = self._drive(argv, answerer, timeout)
            if handshake.status != 0:
                error = self._failure(target, handshake, capture_file, answerer)
                log.info("the master of %s did not start: %s; ssh said: %s",
                         target.connection_id, error.message, transcript_tail(handshake.transcript))
                raise error
        finally:
            capture_file.unlink(missing_ok=True)
            config_file.unlink(missing_ok=True)
        pid = self.check(target)
        if pid is None:
            raise ConnectError("Connection failed: ssh authenticated but no master answers on its control socket")
        log.info("the master of %s is up (pid %d)", target.connection_id, pid)
        return pid

    def _drive(self, argv: list[str], answerer: Answerer, timeout: float) -> Handshake:
        """Run ssh on a pty and answer its prompts, each at most once."""
        if shutil.which(argv[0], path=self._env.get("PATH")) is None:
            raise ConnectError(f"Connection failed: the ssh client '{argv[0]}' was not found (install openssh-client)")
        # PERF: imported by the worker that starts a master, not by every process (#14).
        import pexpect

        transcript = _Transcript()
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
        deadline = time.monotonic() + timeout + min(5.0, timeout)
        answered: set[str] = set()
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ConnectError(f"Connection failed: timed out after {timeout:g} s")
                index = child.expect([PROMPT_PATTERN, pexpect.EOF, pexpect.TIMEOUT], timeout=remaining)
                if index == 1:
                    break
                if index == 2:
                    continue
                prompt = classify_prompt(child.after or "", echo=child.getecho())
                if not prompt.certain:
                    more = child.expect([pexpect.TIMEOUT, pexpect.EOF, _ANY_OUTPUT], timeout=QUIET_BEFORE_ANSWER)
                    if more == 1:
                        break
                    if more == 2:
                        continue  # text still arriving (a banner), not a question
                self._answer(child, prompt, answerer, answered, transcript)
            # PERF: ssh has exited (EOF); reap it now instead of close()'s fixed
            # 0.1 s pause before it checks the child.
            child.ptyproc.delayafterclose = 0
            child.wait()
            child.close()
        finally:
            if child.isalive():
                child.close(force=True)
        text = transcript.text()
        partial = PARTIAL_SUCCESS.search(text)
        status = child.exitstatus if child.exitstatus is not None else 255
        return Handshake(status, text, partial.group("method") if partial else None)

    @staticmethod
    def _answer(
        child: pexpect.spawn, prompt: Prompt, answerer: Answerer, answered: set[str], transcript: _Transcript
    ) -> None:
        """Type the answer to one prompt, or stop with what was asked."""
        # APPSEC: the same question twice means the first answer was refused
        # (a password, a one-time code): never send anything again (lockout).
        if prompt.line in answered and prompt.kind is not PromptKind.PASSPHRASE:
            raise AuthenticationError(f"Connection failed: Permission denied (the answer to '{prompt.text}' was refused)")
        answer = answerer.answer(prompt)
        if answer is None:
            partial = PARTIAL_SUCCESS.search(transcript.text())
            raise AuthPromptError(_prompt_message(prompt, partial.group("method") if partial else None),
                                  answerer.questions())
        answered.add(prompt.line)
        value = answer.get_secret_value()
        transcript.remember_typed(value)
        child.sendline(value)

    def _failure(self, target: Target, handshake: Handshake, capture_file: Path, answerer: Answerer) -> Exception:
        output = handshake.transcript
        kind = classify_failure(output)
        summary = summarize_ssh_output(output)
        if kind is FailureKind.HOST_KEY:
            error = build_host_key_error(output, capture_file, self._fingerprint, self._find_stored_key)
            return error if error is not None else ConnectError(f"Connection failed: {summary}")
        if kind is FailureKind.PROXY:
            # A hop's own words went to /dev/null (ssh does that for a
            # ControlPersist master): its refused key is found from the
            # capture, anything else is worded from the route.
            refused = build_refused_hop_error(capture_file, self._fingerprint, self._find_stored_key)
            return refused if refused is not None else ConnectError(self._proxy_failure(target, summary))
        if kind is FailureKind.AUTH:
            skipped = answerer.skipped_passphrase
            if skipped is not None:
                return AuthPromptError(f"The key needs its passphrase: {skipped.text}", [skipped])
            if handshake.partial_success:
                return AuthenticationError(
                    f"Connection failed: the server accepted the {handshake.partial_success} "
                    f"but refused the second factor ({summary})"
                )
            return AuthenticationError(f"Connection failed: {summary}")
        return ConnectError(f"Connection failed: {summary}")

    def _proxy_failure(self, target: Target, summary: str) -> str:
        """Return the message of a route whose jump host (or ProxyCommand) closed the connection."""
        try:
            jump = resolve_destination(
                self._common, self._env, target.host, None if target.port_is_default else target.port, target.username
            ).proxy_jump
        except (ConnectError, SshCommandError):
            jump = None
        way = f"the jump host {jump} (ProxyJump)" if jump else "the ProxyCommand"
        return (
            f"Connection failed: {way} closed the connection before {target.host} answered "
            f"(unreachable, a refused login, or no way on to {target.host}); "
            f"ssh {target.host} in a terminal shows which (ssh said: {summary})"
        )

    def _run_control(self, target: Target, command: str) -> subprocess.CompletedProcess[bytes]:
        argv = build_control_argv(self._common, target, self.control_path(target), command)
        try:
            return run_command(argv, env=self._env, timeout=CONTROL_TIMEOUT)
        except SshCommandError as ex:
            raise SshCommandError(f"The master of {target.connection_id} does not answer: {ex.message}") from ex


def _prompt_message(prompt: Prompt, partial_method: str | None) -> str:
    """Return the plain-words message of a question the request could not answer."""
    if partial_method is not None:
        return f"A second factor is needed: the server accepted the {partial_method} and asks: {prompt.text}"
    if prompt.asks_password:
        return f"The server asks for a password: {prompt.text}"
    return f"The server asks: {prompt.text}"

