"""The viewer script run locally as the server runs it (no ssh, no runicorn needed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from rvssh.remote.probe import load_program


def run_viewer(home: Path, *args: str) -> dict[str, Any]:
    completed = subprocess.run(
        [os.path.realpath(sys.executable), "-", *args],
        input=load_program("viewer.py"),
        capture_output=True,
        env={"HOME": str(home), "PATH": os.defpath},
        timeout=60,
        check=True,
    )
    return json.loads(completed.stdout)


def test_launch_without_runicorn_says_how_to_install_it(tmp_path: Path) -> None:
    answer = run_viewer(tmp_path, "launch", "~/data", "0", "abcd1234")
    assert answer["error"]["kind"] == "runicorn_missing"
    assert "-m pip install runicorn" in answer["error"]["message"]
    assert not (tmp_path / ".cache").exists()


def test_status_and_stop_of_a_gone_process(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert run_viewer(tmp_path, "status", str(gone.pid), "abcd1234") == {"alive": False, "log_tail": ""}
    assert run_viewer(tmp_path, "stop", str(gone.pid), "abcd1234") == {"stopped": True, "was_running": False}


def test_a_process_without_our_marker_is_never_touched(tmp_path: Path) -> None:
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert run_viewer(tmp_path, "status", str(stranger.pid), "abcd1234")["alive"] is False
        assert run_viewer(tmp_path, "stop", str(stranger.pid), "abcd1234")["was_running"] is False
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_a_session_id_that_could_name_another_folder_is_refused(tmp_path: Path) -> None:
    answer = run_viewer(tmp_path, "stop", "1", "../../etc")
    assert answer == {"error": {"kind": "bad_request", "message": "invalid session id"}}


def test_wrong_arguments_are_bad_requests(tmp_path: Path) -> None:
    assert run_viewer(tmp_path, "stop", "1")["error"] == {"kind": "bad_request", "message": "Usage: stop <pid> <session_id>"}
