"""A person at a terminal: host keys shown as ssh shows them, secrets typed without echo, choices.

The texts are pure functions (tested as such); :class:`TerminalPerson`
reads the answers. Without a terminal nothing can be asked, and the command
stops with what it would have asked.
"""

from __future__ import annotations

import getpass
import json
import shlex
from typing import Any, Callable, Mapping, Sequence, TextIO

from rvssh.client.errors import ClientError

# ssh's names of key types, as in "ED25519 key fingerprint is ...".
KEY_NAMES = {
    "ssh-ed25519": "ED25519",
    "ssh-rsa": "RSA",
    "ssh-dss": "DSA",
    "ecdsa-sha2-nistp256": "ECDSA",
    "ecdsa-sha2-nistp384": "ECDSA",
    "ecdsa-sha2-nistp521": "ECDSA",
    "sk-ssh-ed25519@openssh.com": "ED25519-SK",
    "sk-ecdsa-sha2-nistp256@openssh.com": "ECDSA-SK",
}
HOST_KEY_QUESTION = "Are you sure you want to continue connecting (yes/no)? "
DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"
CHANGED_BANNER = (
    "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
    "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n"
    "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
    "IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!\n"
    "Someone could be eavesdropping on you right now (man-in-the-middle attack)!\n"
    "It is also possible that a host key has just been changed.\n"
)


def key_name(key_type: str) -> str:
    """Return ssh's name of a key type (``ssh-ed25519`` is ``ED25519``)."""
    return KEY_NAMES.get(key_type, key_type.upper())


def unknown_key_text(host_key: Mapping[str, Any]) -> str:
    """Return what ssh says about a key it does not know yet (the question follows)."""
    return (
        f"The authenticity of host '{host_key['known_hosts_host']}' can't be established.\n"
        f"{key_name(host_key['key_type'])} key fingerprint is {host_key['fingerprint_sha256']}.\n"
    )


def removal_hint(host_key: Mapping[str, Any], trusted_by_rvssh: bool, user_known_hosts: Sequence[str]) -> str:
    """Return how to remove the old key: from rvssh's known_hosts, or with ssh-keygen -R from yours."""
    if trusted_by_rvssh:
        body = json.dumps({name: host_key[name] for name in ("host", "port", "key_type")})
        return (
            "rvssh trusts the old key: remove it on rvssh's page (Trusted host keys), or with\n"
            f"    POST /api/remote/known-hosts/remove {body}\n"
        )
    commands = [
        f"    ssh-keygen -R {shlex.quote(host_key['known_hosts_host'])}"
        + ("" if path == DEFAULT_KNOWN_HOSTS else f" -f {shlex.quote(path)}")
        for path in user_known_hosts or (DEFAULT_KNOWN_HOSTS,)
    ]
    return "Remove the old key with\n" + "\n".join(commands) + "\n"


def changed_key_text(host_key: Mapping[str, Any], trusted_by_rvssh: bool, user_known_hosts: Sequence[str]) -> str:
    """Return ssh's warning for a changed key, both fingerprints, and how to remove the old key."""
    name = key_name(host_key["key_type"])
    expected = host_key.get("expected_fingerprint_sha256")
    lines = [
        CHANGED_BANNER,
        f"The fingerprint for the {name} key sent by the remote host is\n{host_key['fingerprint_sha256']}.\n",
        f"The {name} key trusted for {host_key['known_hosts_host']} is\n{expected}.\n" if expected else "",
        "Please contact your system administrator.\n",
        "If the new key is right, remove the old one and run rvssh open again. ",
        removal_hint(host_key, trusted_by_rvssh, user_known_hosts),
        f"Host key for {host_key['known_hosts_host']} has changed and you have requested strict checking.\n",
    ]
    return "".join(lines)


def environment_label(env: Mapping[str, Any]) -> str:
    """Return an environment as a person reads it: name, type, Python and runicorn versions."""
    runicorn = f"runicorn {env['runicorn_version']}" if env.get("runicorn_version") else "no runicorn"
    return f"{env['name']} ({env['type']}, {env['python_version']}, {runicorn})"


class TerminalPerson:
    """Ask on the terminal: yes/no for a host key, secrets without echo, a choice of environment.

    Args:
        stdin: where answers are read (a terminal, or nothing can be asked).
        stderr: where questions and warnings are written (stdout keeps the URL).
        user_known_hosts: the known_hosts files ssh trusts besides rvssh's (for ``ssh-keygen -R``).
        read_secret: reads an answer without echo (getpass).
    """

    def __init__(
        self,
        stdin: TextIO,
        stderr: TextIO,
        user_known_hosts: Sequence[str] = (DEFAULT_KNOWN_HOSTS,),
        read_secret: Callable[[str], str] = getpass.getpass,
    ) -> None:
        self._stdin = stdin
        self._stderr = stderr
        self._user_known_hosts = tuple(user_known_hosts)
        self._read_secret = read_secret

    @property
    def interactive(self) -> bool:
        return self._stdin.isatty()

    def _need_terminal(self, what: str) -> None:
        if not self.interactive:
            raise ClientError(f"{what}; run rvssh in a terminal to answer")

    def _read_line(self, question: str) -> str:
        self._stderr.write(question)
        self._stderr.flush()
        line = self._stdin.readline()
        if not line:
            raise ClientError("No answer (end of input)")
        return line.strip()

    def trust_host_key(self, host_key: Mapping[str, Any]) -> bool:
        text = unknown_key_text(host_key)
        self._need_terminal(" ".join(text.split()))
        self._stderr.write(text)
        answer = self._read_line(HOST_KEY_QUESTION)
        while answer.lower() not in ("yes", "no"):
            answer = self._read_line("Please type 'yes' or 'no': ")
        return answer.lower() == "yes"

    def warn_changed_host_key(self, host_key: Mapping[str, Any], trusted_by_rvssh: bool) -> None:
        self._stderr.write(changed_key_text(host_key, trusted_by_rvssh, self._user_known_hosts))
        self._stderr.flush()

    def answer(self, prompt: Mapping[str, Any], message: str) -> str:
        self._need_terminal(message or f"The server asks: {prompt['prompt']}")
        question = str(prompt["prompt"]).rstrip() + " "
        if prompt.get("echo"):
            return self._read_line(question)
        try:
            return self._read_secret(question)
        except EOFError as ex:
            raise ClientError("No answer (end of input)") from ex

    def choose_environment(self, envs: Sequence[Mapping[str, Any]], host: str) -> Mapping[str, Any]:
        """Return the environment the person picks (Enter: the server's default one, else the first)."""
        names = ", ".join(str(env["name"]) for env in envs)
        self._need_terminal(f"Several environments on {host} have runicorn ({names}): pick one with --env")
        default = next((index for index, env in enumerate(envs) if env.get("is_default")), 0)
        self._stderr.write(f"Several environments on {host} have runicorn:\n")
        for index, env in enumerate(envs):
            self._stderr.write(f"  {index + 1}) {environment_label(env)}\n")
        while True:
            answer = self._read_line(f"Which one [{default + 1}]? ")
            if not answer:
                return envs[default]
            if answer.isdigit() and 1 <= int(answer) <= len(envs):
                return envs[int(answer) - 1]
            matches = [env for env in envs if env["name"] == answer]
            if matches:
                return matches[0]
            self._stderr.write(f"Type a number from 1 to {len(envs)}, or a name.\n")
