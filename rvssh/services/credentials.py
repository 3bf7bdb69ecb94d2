"""What a login may use: a request's secrets, a saved server's, or only the agent and key files.

Secrets stay :class:`~pydantic.SecretStr` all the way to the pty (they print
as ``**********`` in a repr, a log line or a traceback).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from rvssh.models import ConnectRequest
from rvssh.ssh.answers import RequestAnswers
from rvssh.store.records import AuthRecipe


def as_secret(value: SecretStr | str | None) -> SecretStr | None:
    """Return a non-empty secret as SecretStr, else None."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return SecretStr(value) if value else None


@dataclass(frozen=True)
class Credentials:
    """Credentials for one login, after saved-server defaults were applied.

    Attributes:
        responses: answers to the server's questions, in the order of the
            prompts an earlier 401 AUTH_PROMPT listed.
        saved_server_id: the saved server they came from, if any (a heal may
            use its secrets again).
    """

    password: SecretStr | None = None
    passphrase: SecretStr | None = None
    private_key: SecretStr | None = None
    private_key_path: str | None = None
    use_agent: bool = True
    responses: tuple[SecretStr, ...] = ()
    saved_server_id: str | None = None

    @classmethod
    def from_request(cls, request: ConnectRequest) -> "Credentials":
        return cls(
            password=as_secret(request.password),
            passphrase=as_secret(request.passphrase),
            private_key=as_secret(request.private_key),
            private_key_path=request.private_key_path or None,
            use_agent=request.use_agent,
            responses=tuple(request.responses or ()),
        )

    def answers(self) -> RequestAnswers:
        """Return the answerer that types these credentials at ssh's prompts."""
        return RequestAnswers(self.password, self.passphrase, self.responses)

    def key_file(self) -> Path | None:
        """Return the key file named by path (``~`` expanded), if any."""
        return Path(os.path.expanduser(self.private_key_path)) if self.private_key_path else None

    def recipe(self) -> AuthRecipe:
        """Return how to log in again without a person: agent, own key file, saved secrets."""
        return AuthRecipe(use_agent=self.use_agent, key_path=self.private_key_path, saved_server_id=self.saved_server_id)
