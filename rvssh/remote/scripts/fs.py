"""Files on the server: fs-list and fs-exists (sent after common.py).

Subcommands and what they print on success:

    fs-list <path>
        {"path", "items": [{"name", "is_dir", "size", "mtime", "is_link"}, ...]}
    fs-exists <path>
        {"path", "exists", "is_dir"}

Kept apart from probe.py so that a listing starts as little Python as it can
(rvssh runs it with ``python3 -I -S``).
"""

import stat


def entry_stat(entry: "Any") -> "Optional[os.stat_result]":
    """Return the stat of a scandir entry's target, else of the link itself, else None."""
    for follow in (True, False):
        try:
            return entry.stat(follow_symlinks=follow)
        except OSError:
            continue
    return None


def list_item(entry: "Any") -> "Dict[str, Any]":
    """Return the fs-list item of a scandir entry; a symlink to a folder is a folder."""
    info = entry_stat(entry)
    try:
        is_dir = stat.S_ISDIR(info.st_mode) if info is not None else entry.is_dir()
        is_link = entry.is_symlink()
    except OSError:
        is_dir = is_link = False
    return {
        "name": to_text(entry.name),
        "is_dir": is_dir,
        "size": 0 if is_dir or info is None else info.st_size,
        "mtime": int(info.st_mtime) if info is not None else None,
        "is_link": is_link,
    }


def cmd_fs_list(path: str) -> "Dict[str, Any]":
    """List a folder (hidden entries included): folders first, then by name."""
    target = locate_user_path(path)
    try:
        info = os.stat(target)
        if not stat.S_ISDIR(info.st_mode):
            raise ProbeError("not_a_directory", "Not a directory: %s" % target)
        with os.scandir(target) as entries:
            items = [list_item(entry) for entry in entries]
    except (FileNotFoundError, NotADirectoryError):
        raise ProbeError("not_found", "Path not found: %s" % target)
    except PermissionError:
        raise ProbeError("permission_denied", "Permission denied: %s" % target)
    items.sort(key=lambda item: (not item["is_dir"], item["name"]))
    return {"path": target, "items": items}


def cmd_fs_exists(path: str) -> "Dict[str, Any]":
    """Tell whether ``path`` exists and is a folder; the path is echoed as given."""
    target = locate_user_path(path) if path else ""
    exists = bool(target) and os.path.exists(target)
    return {"path": path, "exists": exists, "is_dir": exists and os.path.isdir(target)}


# Subcommand -> (function, names of its positional arguments).
COMMANDS = {
    "fs-list": (cmd_fs_list, ("path",)),
    "fs-exists": (cmd_fs_exists, ("path",)),
}


if __name__ == "__main__":
    sys.exit(main(COMMANDS, sys.argv[1:]))
