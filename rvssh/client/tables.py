"""Tables for people: ``rvssh ls`` (connections and viewer sessions) and ``rvssh hosts``. Pure functions."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

NONE = "-"
LS_HEADERS = ("SESSION", "HOST", "ENV", "URL", "STATUS", "AGE", "NOTE")
HOSTS_HEADERS = ("ALIAS", "USER", "HOSTNAME", "PORT", "PROXYJUMP", "NOTE")


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Return rows under headers in columns two spaces apart (no trailing blanks)."""
    widths = [max(len(headers[column]), *(len(row[column]) for row in rows)) for column in range(len(headers))]
    lines = [headers, *rows]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines)


def format_age(seconds: float) -> str:
    """Return a duration the way people say it: ``42s``, ``12m``, ``3h 5m``, ``2d 3h``."""
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m"
    if whole < 86400:
        return f"{whole // 3600}h {whole % 3600 // 60}m"
    return f"{whole // 86400}d {whole % 86400 // 3600}h"


def one_line(text: str | None) -> str:
    """Return ``text`` on one line (a viewer log's tail has several)."""
    return " | ".join(part.strip() for part in (text or "").splitlines() if part.strip())


def session_note(session: Mapping[str, Any]) -> str:
    """Return what a session says of itself (its error, else its message), on one line."""
    return one_line(session.get("error")) or one_line(session.get("message"))


def _session_row(session: Mapping[str, Any]) -> list[str]:
    note = session_note(session)
    return [
        session["sessionId"],
        session["connectionId"],
        session.get("condaEnv") or "system",
        session["url"],
        session["status"],
        format_age(session.get("uptimeSeconds") or 0),
        note,
    ]


def _connection_row(connection: Mapping[str, Any]) -> list[str]:
    state = connection.get("state") or ("up" if connection.get("connected") else "down")
    return [NONE, connection["key"], NONE, NONE, state, NONE, one_line(connection.get("message"))]


def status_rows(status: Mapping[str, Any]) -> list[list[str]]:
    """Return the rows of ``rvssh ls``: each connection, then the viewer sessions riding on it."""
    sessions = list(status.get("viewer_sessions") or ())
    rows: list[list[str]] = []
    for connection in status.get("connections") or ():
        rows.append(_connection_row(connection))
        rows += [_session_row(session) for session in sessions if session["connectionId"] == connection["key"]]
    known = {connection["key"] for connection in status.get("connections") or ()}
    rows += [_session_row(session) for session in sessions if session["connectionId"] not in known]
    return rows


def format_status(status: Mapping[str, Any]) -> str:
    """Return ``rvssh ls``'s table, or a sentence when there is nothing."""
    rows = status_rows(status)
    return format_table(LS_HEADERS, rows) if rows else "No connections and no viewer sessions."


def host_rows(answer: Mapping[str, Any]) -> list[list[str]]:
    """Return the rows of ``rvssh hosts``: alias, user, host name, port, jump hosts, or ssh's error."""
    rows = []
    for host in answer.get("hosts") or ():
        if host.get("error"):
            rows.append([host["alias"], NONE, NONE, NONE, NONE, one_line(host["error"])])
            continue
        port = host.get("port")
        rows.append([host["alias"], host.get("user") or NONE, host.get("hostname") or NONE,
                     str(port) if port is not None else NONE, host.get("proxy_jump") or NONE, ""])
    return rows


def format_hosts(answer: Mapping[str, Any]) -> str:
    """Return ``rvssh hosts``'s table, or a sentence saying which files had none."""
    rows = host_rows(answer)
    if rows:
        return format_table(HOSTS_HEADERS, rows)
    files = answer.get("files") or ()
    return f"No Host aliases in {', '.join(files)}." if files else "No ssh config file found."
