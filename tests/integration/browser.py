"""Debian's chromium driven by Playwright, for the page's tests: no browser download, no network.

``scripts/test`` installs the ``chromium`` package; Playwright (the PyPI
package) only drives it through ``executable_path``. Never run
``playwright install`` here: this machine reaches no network but package
registries.
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from playwright.sync_api import BrowserContext, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
# Quiet and offline: nothing of Chromium's own reaches out (updates, sync, QUIC probes).
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}
NARROW = {"width": 420, "height": 860}


@contextmanager
def chromium() -> Iterator[BrowserContext]:
    """Yield a fresh Chromium profile (its own user-data-dir) at 1280x800; remove it afterwards."""
    profile = Path(tempfile.mkdtemp(prefix="rvssh-chromium-"))
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                str(profile), executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True, viewport=DESKTOP,
            )
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
