"""``GET /`` and ``GET /{filename}``: the page's files, from the package's ``rvssh/web/``.

Only the regular files found directly in that folder at start are served, by
exact name, so no request path can reach another file (no ``..``, no
subfolders, no hidden files). The page is behind the same checks as the API
(docs/security.md): only its owner, or a browser holding the token cookie,
gets it.
"""

from __future__ import annotations

from pathlib import Path

import falcon

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
INDEX = "index.html"
# APPSEC: the page drives the API, so no other site may frame it (clickjacking),
# sniff its types, or learn its address from a Referer.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def list_web_files(directory: Path) -> dict[str, Path]:
    """Return {name: path} of the regular, non-hidden files directly in ``directory``."""
    if not directory.is_dir():
        return {}
    return {
        path.name: path
        for path in directory.iterdir()
        if path.is_file() and not path.is_symlink() and not path.name.startswith(".")
    }


class WebFilesResource:
    """Serve the files of one folder by name; ``/`` is its ``index.html``."""

    def __init__(self, directory: Path = WEB_DIR) -> None:
        self._files = list_web_files(directory)

    def on_get(self, req: falcon.Request, resp: falcon.Response, filename: str = INDEX) -> None:
        path = self._files.get(filename)
        if path is None:
            raise falcon.HTTPNotFound()
        media_type = resp.options.static_media_types.get(path.suffix, "application/octet-stream")
        resp.content_type = f"{media_type}; charset=utf-8" if media_type.startswith("text/") else media_type
        resp.set_headers(PAGE_HEADERS)
        resp.data = path.read_bytes()
