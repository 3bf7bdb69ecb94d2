"""rvssh's page at ``/``, driven in Chromium against ``rvssh serve`` and the real sshd (#13).

Each step writes a screenshot into the test's tmp dir (``screenshots/``);
the ones in docs/ were copied from there.
"""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path
from typing import Any, Callable, Iterator
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from rvssh.app import create_app
from rvssh.settings import Settings
from tests import callers
from tests.integration.browser import NARROW, chromium
from tests.integration.cli_runs import (
    host_key_fingerprints,
    remove_storage_roots,
    storage_root,
    wait_until_viewer_gone,
)
from tests.integration.serving import end_masters, serving
from tests.sshbed import SshBed, free_port, session_viewer_pids

STEP_TIMEOUT = 60_000  # ms: a connect, a start


@pytest.fixture(scope="module")
def browser() -> Iterator[BrowserContext]:
    with chromium() as context:
        yield context


@pytest.fixture
def page(browser: BrowserContext) -> Iterator[Page]:
    page = browser.new_page()
    page.set_default_timeout(STEP_TIMEOUT)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    page.close()
    assert not errors, f"the page's scripts failed: {errors}"


class Screenshots:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir()

    def take(self, page: Page, name: str) -> None:
        page.screenshot(path=str(self.folder / f"{name}.png"), full_page=True)


def test_the_page_adds_a_server_trusts_its_key_logs_in_starts_opens_and_stops_a_viewer(
    page: Page, browser: BrowserContext, sshbed: SshBed, runicorn_python: Path, tmp_path: Path
) -> None:
    sshbed.user_known_hosts.write_text("")
    shots = Screenshots(tmp_path / "screenshots")
    root = storage_root()
    environment = {"RVSSH_SSH_CONFIG": str(sshbed.ssh_config), "RVSSH_USER_KNOWN_HOSTS": str(sshbed.user_known_hosts),
                   "RVSSH_CONNECT_TIMEOUT": "8", "RVSSH_VIEWER_READY_TIMEOUT": "30"}
    try:
        with serving(tmp_path, **environment) as served:
            page.goto(served.page_url())
            expect(page).to_have_url(f"http://127.0.0.1:{served.port}/")  # the token left the address bar
            expect(page.locator("#version")).to_have_text("rvssh 0.1.0")
            alias = page.locator("#ssh-hosts-list li", has_text=sshbed.alias)
            expect(alias).to_contain_text(f"{sshbed.user}@{sshbed.host}:{sshbed.port}")

            # Add a server.
            page.get_by_text("Add a server").click()
            page.get_by_label("Host name, address or ssh alias").fill(sshbed.host)
            page.get_by_label("Port", exact=True).fill(str(sshbed.port))
            page.get_by_label("User empty: as ssh would").fill(sshbed.user)
            page.get_by_label("Name optional").fill("GPU box")
            shots.take(page, "01-add-server")
            page.get_by_role("button", name="Save server").click()
            saved = page.locator("#saved-list li", has_text="GPU box")
            expect(saved).to_contain_text(f"{sshbed.user}@{sshbed.host}:{sshbed.port}")

            # Connect: the key is shown, and Escape declines it (focus goes back where it was).
            connect = saved.get_by_role("button", name="Connect")
            connect.focus()
            page.keyboard.press("Enter")
            dialog = page.locator("#host-key-dialog")
            expect(dialog).to_be_visible()
            expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
            page.keyboard.press("Escape")
            expect(dialog).to_be_hidden()
            expect(connect).to_be_focused()
            expect(page.locator("#viewer-idle")).to_be_visible()
            expect(page.locator("#notice")).to_be_hidden()

            # Again: the key is trusted on request, the password typed.
            connect.click()
            expect(dialog).to_be_visible()
            expect(dialog).to_contain_text(f"[{sshbed.host}]:{sshbed.port}")
            assert page.locator("#host-key-fingerprint").inner_text() in host_key_fingerprints(sshbed)
            shots.take(page, "02-host-key")
            dialog.get_by_role("button", name="Trust and connect").click()
            password = page.get_by_label(f"{sshbed.user}@{sshbed.host}'s password:")
            expect(password).to_be_visible()
            expect(password).to_have_attribute("type", "password")
            password.fill(sshbed.password)
            shots.take(page, "03-password")
            password.press("Enter")
            expect(page.locator("#connected-id")).to_have_text(f"{sshbed.user}@{sshbed.host}:{sshbed.port}")

            # The environment with runicorn is chosen; the storage root is suggested, then set.
            # (Other tests may have left more environments with runicorn: one of them is preselected.)
            expect(page.locator("#env-list input:checked")).to_have_count(1)
            expect(page.get_by_role("radio", name="system system")).to_be_disabled()  # no runicorn there
            runicorn = page.get_by_role("radio", name="runicorn venv")
            runicorn.check()
            expect(runicorn).to_be_checked()
            expect(page.locator("#env-list")).to_contain_text("runicorn 0.7.2")
            expect(page.locator("#root")).not_to_have_value("")
            page.get_by_label("Storage root on the server").fill(root)
            shots.take(page, "04-environment")

            # Start: starting, then running.
            page.get_by_role("button", name="Start viewer").click()
            progress = page.locator("#start-progress")
            expect(progress).to_contain_text("starting")
            expect(progress).to_contain_text("running: http://localhost:", timeout=STEP_TIMEOUT)
            row = page.locator("#session-rows tr")
            expect(row).to_have_count(1)
            expect(row.locator(".status")).to_have_text("running")
            expect(row).to_contain_text(root)
            shots.take(page, "05-running")
            page.set_viewport_size(NARROW)
            shots.take(page, "06-narrow")
            page.set_viewport_size({"width": 1280, "height": 800})

            # Open: the viewer's own page loads through the tunnel.
            with browser.expect_page() as opened:
                row.get_by_role("link", name="Open").click()
            viewer = opened.value
            expect(viewer).to_have_title("Runicorn Viewer", timeout=STEP_TIMEOUT)
            viewer.close()

            # Stop: the row goes, and so does the viewer on the server.
            session = served.request("GET", "/api/remote/viewer/sessions")[2]["sessions"][0]
            assert session_viewer_pids(session["sessionId"]) == [session["remotePid"]]
            row.get_by_role("button", name="Stop").click()
            expect(row).to_have_count(0)
            expect(page.locator("#sessions-empty")).to_be_visible()
            expect(progress).to_have_text("The viewer was stopped.")
            wait_until_viewer_gone(session["sessionId"])

            # Remove the trusted key.
            keys = page.locator("#known-host-rows tr", has_text=f"[{sshbed.host}]:{sshbed.port}")
            expect(keys).to_have_count(1)
            shots.take(page, "07-stopped")
            keys.get_by_role("button").click()
            expect(keys).to_have_count(0)
            expect(page.locator("#known-hosts-empty")).to_be_visible()
            assert f"[{sshbed.host}]:{sshbed.port}" not in (tmp_path / "state" / "known_hosts").read_text()
            expect(page.locator("#notice")).to_be_hidden()
    finally:
        end_masters(tmp_path / "state")
        remove_storage_roots()


def test_a_changed_key_shows_both_fingerprints_and_is_replaced_only_on_request(
    page: Page, sshbed: SshBed, tmp_path: Path
) -> None:
    sshbed.user_known_hosts.write_text("")
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    stale = tmp_path / "stale"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stale)], check=True)
    stale_line = f"[{sshbed.host}]:{sshbed.port} {' '.join(stale.with_suffix('.pub').read_text().split()[:2])}\n"
    (state / "known_hosts").write_text(stale_line)
    (state / "known_hosts").chmod(0o600)
    stale_fingerprint = subprocess.run(["ssh-keygen", "-lf", f"{stale}.pub"], capture_output=True, text=True,
                                       check=True).stdout.split()[1]
    environment = {"RVSSH_SSH_CONFIG": str(sshbed.ssh_config), "RVSSH_USER_KNOWN_HOSTS": str(sshbed.user_known_hosts)}
    try:
        with serving(tmp_path, **environment) as served:
            page.goto(served.page_url())
            alias = page.locator("#ssh-hosts-list li", has_text=sshbed.alias)
            alias.get_by_role("button", name="Connect").click()
            dialog = page.locator("#host-key-dialog")
            expect(dialog.locator("h2")).to_have_text("The host key has changed")
            expect(page.locator("#host-key-expected")).to_have_text(stale_fingerprint)
            assert page.locator("#host-key-fingerprint").inner_text() in host_key_fingerprints(sshbed)
            dialog.get_by_role("button", name="Cancel").click()
            expect(dialog).to_be_hidden()
            assert (state / "known_hosts").read_text() == stale_line  # declined: nothing changed

            alias.get_by_role("button", name="Connect").click()
            dialog.get_by_role("button", name="Replace the trusted key and connect").click()
            expect(page.locator("#connected-id")).to_have_text(f"{sshbed.user}@{sshbed.alias}:22")
            assert stale_line not in (state / "known_hosts").read_text()
            expect(page.locator("#known-host-rows tr")).to_have_count(1)
            page.get_by_role("button", name="Disconnect").click()
            expect(page.locator("#viewer-idle")).to_be_visible()
            assert served.request("GET", "/api/remote/sessions")[2]["sessions"] == []
    finally:
        end_masters(state)


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output clean."""


def serve_app(port: int, app: Callable[..., Any]) -> Callable[[], None]:
    """Serve ``app`` on 127.0.0.1:``port`` in a thread; return what stops it."""
    server = make_server("127.0.0.1", port, app, handler_class=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return stop


def test_the_page_asks_for_the_token_when_rvssh_refuses_and_keeps_it_for_the_tab(page: Page, tmp_path: Path) -> None:
    """An rvssh that cannot tell who calls (as on macOS) and whose token changed while the tab was open."""
    port = free_port()
    state = tmp_path / "state"

    def app_with(token: str) -> Any:
        return create_app(Settings(state_dir=state, token=token, bind=f"127.0.0.1:{port}"), caller_uid=callers.unknown)

    stop = serve_app(port, app_with("first-token"))
    try:
        page.goto(f"http://127.0.0.1:{port}/?token=first-token")  # the cookie lets the page and its calls in
        expect(page.locator("#sessions-empty")).to_be_visible()
        expect(page.locator("#token-dialog")).to_be_hidden()
    finally:
        stop()
    stop = serve_app(port, app_with("second-token"))  # rvssh restarted with another token
    try:
        dialog = page.locator("#token-dialog")
        expect(dialog).to_be_visible()  # the next poll was refused
        page.get_by_label("Token", exact=True).fill("wrong")
        page.get_by_label("Token", exact=True).press("Enter")
        expect(page.locator("#token-title")).to_have_text("That token was refused: try again")
        page.get_by_label("Token", exact=True).fill("second-token")
        page.get_by_role("button", name="Use the token").click()
        expect(dialog).to_be_hidden()
        page.get_by_text("Add a server").click()
        page.get_by_label("Host name, address or ssh alias").fill("gpu-box")
        page.get_by_role("button", name="Save server").click()
        expect(page.locator("#saved-list li", has_text="gpu-box")).to_have_count(1)
        # Later calls use the kept token: no second question.
        page.get_by_role("button", name="Forget").click()
        expect(page.locator("#saved-empty")).to_be_visible()
        expect(dialog).to_be_hidden()
        assert page.evaluate("sessionStorage.getItem('rvssh-token')") == "second-token"
        page.keyboard.press("Escape")
    finally:
        stop()
