"""Connect as any client of the API does: answer 409s and 401 ``AUTH_PROMPT`` until the connection is up.

A host key is trusted only when a person says so (a changed key never: the
person is told how to remove the old one). A question of the server (a
password, a one-time code) is asked of the person and the same request is
sent again with the answers, as docs/api.md describes: a key's passphrase
as ``passphrase``, everything else as ``responses`` in the order of the
answer's ``prompts``. A ProxyJump route answers one 409 per hop.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Protocol

from rvssh.client.api import Client
from rvssh.client.errors import ApiError, ClientError

HOST_KEY = "HOST_KEY_CONFIRMATION_REQUIRED"
AUTH_PROMPT = "AUTH_PROMPT"
PASSPHRASE = "passphrase"
# Each round answers one host key or one question: a route of many hops with a
# second factor on each stays far below this.
MAX_ROUNDS = 24
HOST_KEY_REFUSED = "Host key verification failed."


class Person(Protocol):
    """Whoever answers what the server asks (a terminal, a test)."""

    def trust_host_key(self, host_key: Mapping[str, Any]) -> bool:
        """Show an unknown key and return whether to trust it."""

    def warn_changed_host_key(self, host_key: Mapping[str, Any], trusted_by_rvssh: bool) -> None:
        """Show that a key changed, and how to remove the old one (it is never trusted here)."""

    def answer(self, prompt: Mapping[str, Any], message: str) -> str:
        """Return the answer to one question of the server (``prompt``, ``echo``, ``kind``)."""


def _trusted_by_rvssh(client: Client, host_key: Mapping[str, Any]) -> bool:
    """Return whether rvssh's own known_hosts holds the old key (else it is in the user's)."""
    return any(
        entry["known_hosts_host"] == host_key["known_hosts_host"] and entry["key_type"] == host_key["key_type"]
        for entry in client.known_hosts()
    )


class Login:
    """The answers of one login so far: the request's fields plus what the person typed."""

    def __init__(self, client: Client, person: Person, fields: Mapping[str, Any]) -> None:
        self._client = client
        self._person = person
        self.fields = dict(fields)
        self._responses: list[str] = []

    def _host_key(self, host_key: Mapping[str, Any]) -> None:
        if host_key.get("reason") == "changed":
            self._person.warn_changed_host_key(host_key, _trusted_by_rvssh(self._client, host_key))
            raise ClientError(HOST_KEY_REFUSED)
        if not self._person.trust_host_key(host_key):
            raise ClientError(HOST_KEY_REFUSED)
        self._client.accept_host_key(host_key)

    def _questions(self, detail: Mapping[str, Any]) -> None:
        prompts = list(detail.get("prompts") or ())
        message = str(detail.get("message", ""))
        passphrases = [prompt for prompt in prompts if prompt.get("kind") == PASSPHRASE]
        if passphrases:
            self.fields["passphrase"] = self._person.answer(passphrases[0], message)
            return
        new = prompts[len(self._responses):]
        if not new:  # nothing left to ask: the server wants what we cannot give
            raise ClientError(message or "The server asks something rvssh cannot answer")
        self._responses += [self._person.answer(prompt, message) for prompt in new]
        self.fields["responses"] = list(self._responses)

    def send(self, call: Callable[[Mapping[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        """Send ``call(fields)`` until it succeeds, answering host keys and questions on the way.

        Raises:
            ClientError: a key was refused or changed, an answer was wrong, or any other error of the API.
        """
        for _ in range(MAX_ROUNDS):
            try:
                return call(self.fields)
            except ApiError as ex:
                if ex.status == 409 and ex.code == HOST_KEY:
                    self._host_key(ex.detail["host_key"])
                elif ex.status == 401 and ex.code == AUTH_PROMPT:
                    self._questions(ex.detail)
                else:
                    raise
        raise ClientError(f"Gave up after {MAX_ROUNDS} host keys and questions")
