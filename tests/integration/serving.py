"""Run ``rvssh serve`` as a subprocess on a free loopback port, for real-HTTP tests."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.sshbed import free_port, wait_until


@dataclass
class Served:
    """A running ``rvssh serve``: its port, process and log file."""

    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
                ) -> tuple[int, dict[str, str], Any]:
        """Send one request with exactly these headers (Host defaults to ours) and return status, headers, body.

        The body is decoded JSON when the answer says it is JSON, else text.
        """
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers={"Host": f"127.0.0.1:{self.port}", **(headers or {})})
            response = connection.getresponse()
            payload = response.read()
            answer_headers = {name.lower(): value for name, value in response.getheaders()}
            if not payload:
                return response.status, answer_headers, None
            if answer_headers.get("content-type", "").startswith("application/json"):
                return response.status, answer_headers, json.loads(payload)
            return response.status, answer_headers, payload.decode("utf-8", "replace")
        finally:
            connection.close()

    def post_json(self, path: str, value: Any, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
        return self.request("POST", path, json.dumps(value).encode(), {"Content-Type": "application/json", **(headers or {})})

    def output(self) -> str:
        """Return everything rvssh serve wrote so far (stdout and stderr)."""
        return self.log.read_text(errors="replace")

    def page_url(self) -> str:
        """Return the page's URL from the start-up line (``open http://...``)."""
        starts = [line for line in self.output().splitlines() if "serving the Remote Viewer API" in line]
        assert len(starts) == 1, self.output()
        return starts[0].rsplit(" open ", 1)[1]


def serve_argv(port: int, state_dir: Path, *flags: str) -> list[str]:
    return [sys.executable, "-m", "rvssh.cli", "serve", "--bind", f"127.0.0.1:{port}", "--state-dir", str(state_dir), *flags]


def serve_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("RVSSH_")}
    # APPSEC: the test server must never write into a real OS keyring.
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"
    return {**env, **extra}


@contextlib.contextmanager
def serving(tmp_path: Path, *flags: str, **env: str) -> Iterator[Served]:
    """Start ``rvssh serve`` and wait for /api/health; always stop it (terminate, wait, kill)."""
    log = tmp_path / "serve.log"
    for _ in range(3):  # the free port may be taken between free_port() and bind
        port = free_port()
        with log.open("wb") as sink:
            process = subprocess.Popen(serve_argv(port, tmp_path / "state", *flags), env=serve_env(**env),
                                       stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        served = Served(port, process, log)
        try:
            if _wait_for_health(served):
                yield served
                return
        finally:
            _stop(process)
    pytest.fail(f"rvssh serve never answered:\n{log.read_text(errors='replace')}")


def _wait_for_health(served: Served) -> bool:
    def answers() -> bool | str:
        if served.process.poll() is not None:
            text = served.log.read_text(errors="replace")
            assert "Address already in use" in text, f"rvssh serve exited {served.process.returncode}:\n{text}"
            return "port taken"
        with contextlib.suppress(OSError):
            return served.request("GET", "/api/health")[0] == 200
        return False

    return wait_until(answers, 20, "rvssh serve did not answer /api/health") is True


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def end_masters(state_dir: Path) -> None:
    """Send ``-O exit`` to every master the server left in its state dir."""
    for entry in (state_dir / "connections").glob("*.json"):
        control_path = json.loads(entry.read_text())["control_path"]
        subprocess.run(["ssh", "-o", f"ControlPath={control_path}", "-O", "exit", "x"], capture_output=True, check=False)
