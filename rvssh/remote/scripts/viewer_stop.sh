# Stop a Runicorn viewer that viewer.py launched (POSIX sh, run by rvssh over ssh).
#
# rvssh sends `set -- <pid> <session_id>` followed by this file to /bin/sh -s.
# By hand: (echo 'set -- 4242 ab12cd34'; cat viewer_stop.sh) | ssh host /bin/sh -s
#
# Sends SIGTERM to the viewer's process group (setsid made its pid the group
# id) and answers at once with one JSON line: {"stopped": true, "was_running": bool}.
# A background job then waits up to 5 s for the group to end, sends SIGKILL to
# what is left and removes the session's private folder. A pid that is not
# our viewer any more (no RVSSH_VIEWER_SESSION=<id> in its environment) is
# never signalled.

rvssh_answer_error() {
    printf '{"error":{"kind":"bad_request","message":"%s"}}\n' "$1"
    exit 0
}

[ "$#" -eq 2 ] || rvssh_answer_error "Usage: stop <pid> <session_id>"
rvssh_pid=$1
rvssh_session=$2
case $rvssh_pid in ''|*[!0-9]*) rvssh_answer_error "invalid pid" ;; esac
case $rvssh_session in ''|*[!A-Za-z0-9]*) rvssh_answer_error "invalid session id" ;; esac
rvssh_dir="$HOME/.cache/rvssh/viewers/$rvssh_session"

rvssh_is_ours() {
    if [ -d /proc/self ]; then
        [ -r "/proc/$rvssh_pid/environ" ] &&
            tr '\000' '\n' < "/proc/$rvssh_pid/environ" | grep -qx "RVSSH_VIEWER_SESSION=$rvssh_session"
    else
        kill -0 "$rvssh_pid" 2>/dev/null
    fi
}

if rvssh_is_ours; then
    kill -TERM -"$rvssh_pid" 2>/dev/null || kill -TERM "$rvssh_pid" 2>/dev/null
    (
        rvssh_wait=0
        while kill -0 -"$rvssh_pid" 2>/dev/null && [ "$rvssh_wait" -lt 5 ]; do
            sleep 1
            rvssh_wait=$((rvssh_wait + 1))
        done
        kill -KILL -"$rvssh_pid" 2>/dev/null
        rm -rf "$rvssh_dir"
    ) </dev/null >/dev/null 2>&1 &
    printf '{"stopped":true,"was_running":true}\n'
else
    rm -rf "$rvssh_dir"
    printf '{"stopped":true,"was_running":false}\n'
fi
