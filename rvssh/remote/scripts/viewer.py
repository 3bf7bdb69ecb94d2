"""Start and check a Runicorn viewer on this server (run by rvssh over ssh).

rvssh sends common.py followed by this file to the interpreter (common.py
says how every run answers: one JSON object):

    <python> - launch <storage_root> <port or 0> <session_id>
        {"pid", "port", "storage", "python"}
    python3 - status <pid> <session_id>
        {"alive", "log_tail"}

``launch`` must run under the interpreter of the chosen environment: it
starts ``sys.executable -m runicorn viewer``. The viewer runs in its own
session (process group), its log lives in a private 0700 directory, and it
carries RVSSH_VIEWER_SESSION in its environment so that status (and
viewer_stop.sh, which stops it without Python) never touch a process that
merely reuses the pid.
"""

import importlib.util
import socket
import subprocess

MARKER = "RVSSH_VIEWER_SESSION"
LOG_TAIL_BYTES = 2000


def check_session_id(session_id):
    """Refuse a session id that could name another folder."""
    if not session_id.isalnum():
        raise ProbeError("bad_request", "invalid session id")


def session_dir(session_id):
    return rvssh_cache("viewers", session_id)


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


def launch(root, port_text, session_id):
    """Start the viewer detached, in its own session, logging to the session's private dir."""
    check_session_id(session_id)
    if importlib.util.find_spec("runicorn") is None:
        raise ProbeError(
            "runicorn_missing",
            "runicorn is not installed in this environment ({0}). Install it with: {0} -m pip install runicorn".format(
                sys.executable
            ),
        )
    storage = os.path.abspath(os.path.expanduser(root))
    port = int(port_text)
    if port == 0:
        port = free_local_port()
    elif not port_is_free(port):
        raise ProbeError("port_in_use", "Remote port {0} is already in use on the server".format(port))
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
    return {"pid": process.pid, "port": port, "storage": storage, "python": sys.executable}


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
    """Tell whether the session's viewer runs; when not, the tail of its log."""
    check_session_id(session_id)
    running = alive(int(pid_text), session_id)
    return {"alive": running, "log_tail": "" if running else log_tail(session_id)}


# Subcommand -> (function, names of its positional arguments).
COMMANDS = {
    "launch": (launch, ("storage_root", "port", "session_id")),
    "status": (status, ("pid", "session_id")),
}


if __name__ == "__main__":
    sys.exit(main(COMMANDS, sys.argv[1:]))
