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


class RemotePathError(RvsshError):
    """A path on the server is missing, not a folder or not readable (a remote script said so).

    Each concrete class also derives from the error of its own status; the
    endpoints that list or scan paths answer all three as their 500, as the
    reference does (see ``rvssh/http/errors.py``).
    """


class RemoteNotFoundError(NotFoundError, RemotePathError):
    """A path on the server does not exist."""


class RemoteNotADirectoryError(BadRequestError, RemotePathError):
    """A path on the server is a file where a folder was needed."""


class RemotePermissionError(ForbiddenError, RemotePathError):
    """A path on the server cannot be read by the SSH user."""


class RunicornMissingError(BadRequestError):
    """The chosen environment on the server has no runicorn package."""
