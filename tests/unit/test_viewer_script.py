"""The viewer programs run locally as the server runs them (no ssh, no runicorn needed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rvssh.remote.probe import build_viewer_program
from tests.sshbed import wait_until


def run_viewer(home: Path, subcommand: str, *args: str) -> dict[str, Any]:
    completed = subprocess.run(
        ["/bin/sh", "-s"],
        input=build_viewer_program(subcommand, *args, python=os.path.realpath(sys.executable)),
        capture_output=True,
        env={"HOME": str(home), "PATH": os.defpath},
        timeout=60,
        check=True,
    )
    return json.loads(completed.stdout.decode().splitlines()[-1])


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


def test_stop_answers_at_once_and_ends_the_whole_group_then_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / ".cache" / "rvssh" / "viewers" / "abcd1234"
    folder.mkdir(parents=True)
    # A viewer that ignores SIGTERM and has a child: both must go, by SIGKILL after the grace period.
    viewer = subprocess.Popen(
        [sys.executable, "-c", "import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
         " subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"],
        env={**os.environ, "RVSSH_VIEWER_SESSION": "abcd1234"}, start_new_session=True,
    )
    try:
        wait_until(lambda: run_viewer(tmp_path, "status", str(viewer.pid), "abcd1234")["alive"], 10, "viewer up")
        started = time.monotonic()
        assert run_viewer(tmp_path, "stop", str(viewer.pid), "abcd1234") == {"stopped": True, "was_running": True}
        assert time.monotonic() - started < 5, "stop must not wait for the process to exit"
        wait_until(lambda: viewer.poll() is not None, 15, "viewer still running after stop")
        wait_until(lambda: subprocess.run(["pgrep", "-g", str(viewer.pid)], capture_output=True).returncode != 0,
                   15, "a process of the viewer's group survived")
        wait_until(lambda: not folder.exists(), 15, "the session folder was not removed")
    finally:
        if viewer.poll() is None:
            os.killpg(viewer.pid, 9)
            viewer.wait()


def test_a_session_id_that_could_name_another_folder_is_refused(tmp_path: Path) -> None:
    for subcommand in ("status", "stop"):
        answer = run_viewer(tmp_path, subcommand, "1", "../../etc")
        assert answer == {"error": {"kind": "bad_request", "message": "invalid session id"}}


def test_wrong_arguments_are_bad_requests(tmp_path: Path) -> None:
    assert run_viewer(tmp_path, "stop", "1")["error"] == {"kind": "bad_request", "message": "Usage: stop <pid> <session_id>"}
    assert run_viewer(tmp_path, "status", "1")["error"] == {"kind": "bad_request", "message": "Usage: status <pid> <session_id>"}
