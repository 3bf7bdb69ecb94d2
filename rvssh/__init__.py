"""rvssh: the Runicorn Remote Viewer API over the system OpenSSH client."""

from __future__ import annotations

__version__ = "0.1.0"
