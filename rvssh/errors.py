"""The one error hierarchy of rvssh.

Every error a user can see derives from :class:`RvsshError`. Its message is
safe to show: it never holds a password, passphrase or key content.
``rvssh/http/errors.py`` is the only place that turns these into HTTP status
codes.
"""

from __future__ import annotations


class RvsshError(Exception):
    """Base of every error rvssh reports to a client."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequestError(RvsshError):
    """The request is well formed but its values cannot be used (HTTP 400)."""


class NotFoundError(RvsshError):
    """The thing named by the request does not exist (HTTP 404)."""


class ConflictError(RvsshError):
    """The request clashes with the current state, e.g. a busy port (HTTP 409)."""


class ForbiddenError(RvsshError):
    """The request is not allowed, e.g. a remote permission error (HTTP 403)."""


class StoreError(RvsshError):
    """State on disk could not be read or written (HTTP 500, message shown)."""
