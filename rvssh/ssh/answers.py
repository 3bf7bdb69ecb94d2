"""Who answers ssh's questions: the request's fields, or a person (``rvssh open``).

master.py turns each prompt into a :class:`~rvssh.ssh.prompts.Prompt` and
asks an :class:`Answerer`. When the answerer has nothing to say, the
handshake stops and the caller is told what was asked
(:class:`~rvssh.ssh.errors.AuthPromptError`, 401 ``AUTH_PROMPT`` over HTTP);
the client retries the same request with the answers. Nothing waits in a
worker's memory between the two requests.
"""

from __future__ import annotations

from typing import Protocol, Sequence

from pydantic import SecretStr

from rvssh.ssh.prompts import Prompt, PromptKind


class Answerer(Protocol):
    """Gives the answer to one prompt, or None when it has none (the handshake stops).

    ``skipped_passphrase`` is the passphrase prompt it answered empty (so ssh
    tried the next method), if any: when authentication then fails, that
    passphrase is what was missing.
    """

    skipped_passphrase: Prompt | None

    def answer(self, prompt: Prompt) -> SecretStr | None:
        """Return what to type at ``prompt``; an empty secret skips a key's passphrase."""

    def questions(self) -> list[Prompt]:
        """Return the prompts a client must answer with ``responses``, in order."""


class RequestAnswers:
    """Answer prompts from a request's password, passphrase and ``responses``.

    - A password prompt (ssh's own, or PAM's "Password:" through
      keyboard-interactive) gets the password; without one it takes the next
      response.
    - Any other keyboard-interactive question takes the next response.
    - A key's passphrase prompt gets the passphrase, else an empty answer so
      ssh skips that key and tries the next method.

    Every prompt answered from ``responses``, and the first one nothing can
    answer, are the :meth:`questions` a client answers next time, in order:
    ``responses[i]`` answers ``questions()[i]``.
    """

    def __init__(
        self,
        password: SecretStr | None = None,
        passphrase: SecretStr | None = None,
        responses: Sequence[SecretStr] = (),
    ) -> None:
        self._password = password
        self._passphrase = passphrase
        self._responses = list(responses)
        self._asked: list[Prompt] = []
        self.skipped_passphrase: Prompt | None = None

    def answer(self, prompt: Prompt) -> SecretStr | None:
        if prompt.kind is PromptKind.PASSPHRASE:
            if self._passphrase is not None:
                return self._passphrase
            self.skipped_passphrase = prompt
            return SecretStr("")
        if prompt.kind is PromptKind.HOST_KEY_QUESTION:
            # APPSEC: never trusted here; StrictHostKeyChecking=yes makes ssh
            # refuse instead of asking, and the 409 flow takes over.
            return SecretStr("no")
        if prompt.asks_password and self._password is not None:
            return self._password
        self._asked.append(prompt)
        if len(self._asked) > len(self._responses):
            return None
        return self._responses[len(self._asked) - 1]

    def questions(self) -> list[Prompt]:
        return list(self._asked)
