"""Start, check and stop a Runicorn viewer on this server (run by rvssh over ssh).

Usage (the script itself arrives on stdin):
    <python> - launch <storage_root> <port or 0> <session_id>
    python3 - status <pid> <session_id>
    python3 - stop <pid> <session_id>

``launch`` must run under the interpreter of the chosen environment: it
starts ``sys.executable -m runicorn viewer``. Every run prints exactly one
JSON object. The viewer runs in its own session (process group), its log
lives in a private 0700 directory, and it carries RVSSH_VIEWER_SESSION in
its environment so that status/stop never touch a process that merely
reuses the pid.
"""

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

MARKER = "RVSSH_VIEWER_SESSION"
STOP_GRACE_SECONDS = 5.0
LOG_TAIL_BYTES = 2000


def emit(value):
    sys.stdout.write(json.dumps(value, ensure_ascii=True))
    sys.stdout.write("\n")


def fail(kind, message, **extra):
    error = {"kind": kind, "message": message}
    error.update(extra)
    emit({"error": error})


def session_dir(session_id):
    base = os.path.join(os.path.expanduser("~"), ".cache", "rvssh")
    return os.path.join(base, "viewers", session_id)


def make_private_dirs(path):
    os.makedirs(path, mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)
    os.chmod(os.path.dirname(os.path.dirname(path)), 0o700)


def log_tail(session_id):
    path = os.path.join(session_dir(session_id), "viewer.log")
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - LOG_TAIL_BYTES))
            return handle.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""


def port_is_free(port):
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        probe.close()


def pick_free_port():
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
    finally:
        probe.close()


def launch(root, port_text, session_id):
    if importlib.util.find_spec("runicorn") is None:
        fail(
            "runicorn_missing",
            "runicorn is not installed in this environment ({0}). Install it with: {0} -m pip install runicorn".format(
                sys.executable
            ),
        )
        return
    storage = os.path.abspath(os.path.expanduser(root))
    port = int(port_text)
    if port == 0:
        port = pick_free_port()
    elif not port_is_free(port):
        fail("port_in_use", "Remote port {0} is already in use on the server".format(port))
        return
    directory = session_dir(session_id)
    make_private_dirs(directory)
    log_path = os.path.join(directory, "viewer.log")
    env = dict(os.environ)
    env[MARKER] = session_id
    # Runicorn's remote mode logs under a shared /tmp/runicorn-viewer by
    # default, which fails for the second user of a server; keep its logs in
    # our private directory, removed on stop.
    env["RUNICORN_REMOTE_LOG_DIR"] = os.path.join(directory, "runicorn-logs")
    env["RUNICORN_REMOTE_SESSION_ID"] = session_id
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "runicorn", "viewer", "--storage", storage,
             "--host", "127.0.0.1", "--port", str(port), "--remote-mode"],
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=subprocess.STDOUT,
            cwd=directory,
            env=env,
            close_fds=True,
            start_new_session=True,
        )
    finally:
        os.close(log_fd)
    emit({"pid": process.pid, "port": port, "storage": storage, "python": sys.executable})


def proc_state(pid):
    """Return the process state letter from /proc, "" when gone, None without /proc."""
    if not os.path.isdir("/proc/self"):
        return None
    try:
        with open("/proc/{0}/stat".format(pid)) as handle:
            return handle.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


def is_ours(pid, session_id):
    """Return True/False when /proc can tell, None when it cannot."""
    try:
        with open("/proc/{0}/environ".format(pid), "rb") as handle:
            variables = handle.read().split(b"\0")
    except FileNotFoundError:
        return False
    except OSError:
        return None
    return "{0}={1}".format(MARKER, session_id).encode() in variables


def alive(pid, session_id):
    """Tell whether our viewer still runs (a zombie or a recycled pid does not)."""
    state = proc_state(pid)
    if state is None:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    if state in ("", "Z", "X"):
        return False
    return is_ours(pid, session_id) is not False


def status(pid_text, session_id):
    pid = int(pid_text)
    running = alive(pid, session_id)
    emit({"alive": running, "log_tail": "" if running else log_tail(session_id)})


def group_alive(pgid):
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def stop(pid_text, session_id):
    pid = int(pid_text)
    was_running = alive(pid, session_id)
    if was_running:
        # setsid made the viewer a group leader: its pgid is its pid.
        os.killpg(pid, signal.SIGTERM)
        deadline = time.time() + STOP_GRACE_SECONDS
        while group_alive(pid) and time.time() < deadline:
            time.sleep(0.05)
        if group_alive(pid):
            os.killpg(pid, signal.SIGKILL)
    shutil.rmtree(session_dir(session_id), ignore_errors=True)
    emit({"stopped": True, "was_running": was_running})


COMMANDS = {"launch": (launch, 3), "status": (status, 2), "stop": (stop, 2)}


def main(argv):
    if not argv or argv[0] not in COMMANDS:
        fail("bad_request", "usage: viewer.py launch|status|stop ...")
        return
    handler, arity = COMMANDS[argv[0]]
    if len(argv) - 1 != arity:
        fail("bad_request", "{0} takes {1} arguments".format(argv[0], arity))
        return
    session_id = argv[-1]
    if not session_id.isalnum():
        fail("bad_request", "invalid session id")
        return
    try:
        handler(*argv[1:])
    except Exception as ex:  # noqa: BLE001 - report, never a traceback
        fail("internal", "{0}: {1}".format(type(ex).__name__, ex))


if __name__ == "__main__":
    main(sys.argv[1:])
