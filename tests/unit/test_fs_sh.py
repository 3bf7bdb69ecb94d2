"""fs.sh, fs-list and fs-exists in POSIX sh, answers byte for byte as common.py + fs.py.

Both programs run the way the server runs them, on the same real trees: the
python one as ``python3 -I -S - <subcommand> <path>`` and fs.sh as
``<shell> -s`` with a ``set -- '<subcommand>' '<path>'`` line before it. Every
case asserts that the two print the same bytes, under every POSIX shell (and
every awk) this machine has. scripts/test installs them all, so under CI a
missing one fails instead of skipping.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator, Sequence

import pytest

from rvssh.remote.launcher import build_sh_program
from rvssh.remote.probe import load_program, load_script
from tests.unit.test_probe_script import REAL_PY, SHELL_NAMES, nobody_python, probe_env, run_raw

FS_SH = load_script("fs.sh")
FS_PY = load_program("fs.py")

# The shells fs.sh must run under, each reading its program from stdin.
SHELLS = {
    "dash": ["dash", "-s"],
    "bash": ["bash", "--posix", "-s"],
    "ksh": ["ksh", "-s"],
    "zsh": ["zsh", "--emulate", "sh", "-s"],
    "busybox": ["busybox", "sh", "-s"],
}
AWKS = {"mawk": ["mawk"], "gawk": ["gawk"], "original-awk": ["original-awk"], "busybox": ["busybox", "awk"]}
# Every utility fs.sh may start, for PATHs made of chosen tools.
TOOLS = ("awk", "id", "ls", "od", "sort", "stat", "uname", "xargs")
# Names every listing here holds: quotes, newlines, glob and JSON characters,
# non-BMP text and bytes that are not UTF-8 (truncated, overlong, surrogate,
# beyond U+10FFFF).
AWKWARD_NAMES = [
    b"new\nline", b"tab\there", b"quote'single", b'quote"double', b"back\\slash", b"a\\xffliteral",
    "emoji\U0001F600".encode(), b"-leading-dash", b" leading space", b"trailing space ", "caf\u00e9".encode(),
    "\u65e5\u672c\u8a9e".encode(), b"ctrl\x01\x1f\x7f", b"*", b"?", b"[a]", b"..dots", b"...", b".a.", b"=",
    b"$(touch X)", b"`touch X`", b"bad\xffname.txt", b"trunc\xe2\x82", b"overlong\xc0\x80",
    b"surrogate\xed\xa0\x80", b"f5\xf5", b"cont\x80", b"mixed\xe2\x82\xac\xff", b"\xf0\x9f\x98\x80ok",
    b"beyond\xf4\x90\x80\x80", b"\xe0\x80\xaf", "\u00a0nbsp".encode(), b"\xc2\x85nel", b"x" * 255,
]
SECOND = 1_000_000_000  # nanoseconds
# mtimes (ns) where int(st_mtime) is not tv_sec: the float rounds up, or a
# negative time truncates towards zero.
MTIMES_NS = {
    "nano": 1_700_000_000 * SECOND + 999_999_999,
    "negative": -1_500_000_000,
    "negative-small": -500_000_000,
    "negative-whole": -86_400 * SECOND,
    "zero": 0,
    "far": 2**33 * SECOND + 123,
}


def shell_argv(name: str) -> list[str]:
    """Return how to start shell ``name`` reading stdin; skip (fail under CI) when it is missing."""
    command, *options = SHELLS[name]
    return [installed(command), *options]


def installed(command: str) -> str:
    """Return the path of ``command``; skip (fail under CI, which installs it) when it is missing."""
    path = shutil.which(command)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{command} is missing: scripts/test installs it")
        pytest.skip(f"{command} is not installed (scripts/test installs it)")
    return path


def as_bytes(args: tuple[str | bytes, ...]) -> list[bytes]:
    """Return the arguments as the bytes argv carries."""
    return [arg if isinstance(arg, bytes) else os.fsencode(arg) for arg in args]


def check_answer(completed: subprocess.CompletedProcess[bytes]) -> bytes:
    """Return the stdout of a run that exited 0, printed nothing on stderr and one ASCII line."""
    assert completed.returncode == 0, completed.stderr.decode(errors="replace")
    assert completed.stderr == b"", completed.stderr.decode(errors="replace")
    assert completed.stdout.endswith(b"\n") and completed.stdout.count(b"\n") == 1, completed.stdout
    assert completed.stdout.isascii()
    return completed.stdout


def run_sh(shell: list[str], args: list[bytes], env: dict[str, str], cwd: Path | None = None,
           as_user: Sequence[str] = ()) -> bytes:
    """Run fs.sh as the launcher does: ``<shell> -s`` with the ``set --`` line, then the program."""
    completed = subprocess.run(
        [*as_user, *shell], input=build_sh_program(FS_SH, [os.fsdecode(arg) for arg in args]),
        capture_output=True, env=env, cwd=cwd, timeout=120,
    )
    return check_answer(completed)


def run_py(args: list[bytes], env: dict[str, str], cwd: Path | None = None,
           python: Sequence[str] = (REAL_PY,)) -> bytes:
    """Run common.py + fs.py as rvssh does today (``python3 -I -S -``)."""
    return run_raw([*python, "-I", "-S", "-", *args], env, cwd=cwd, program=FS_PY)


def sh_env(home: Path | None, path: str = "/usr/bin:/bin", **extra: str) -> dict[str, str]:
    """Return the environment of a fs.sh run: $HOME, PATH, a UTF-8 LANG, then ``extra``."""
    env = {"PATH": path, "LANG": "C.UTF-8"}
    if home is not None:
        env["HOME"] = str(home)
    return {**env, **extra}


def toolbox(directory: Path, tools: dict[str, list[str] | str]) -> Path:
    """Make ``directory`` a PATH of the given tools: name -> command (argv) or a script body."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, command in tools.items():
        path = directory / name
        if isinstance(command, str):
            path.write_text(command)
        else:
            real = shutil.which(command[0])
            assert real, f"{command[0]} is not installed"
            path.write_text(f"#!/bin/sh\nexec {real} {' '.join(command[1:])} \"$@\"\n")
        path.chmod(0o755)
    return directory


def with_mtimes_unknown(answer: bytes) -> bytes:
    """Return a fs-list answer with every mtime null, printed as fs.py prints."""
    payload = json.loads(answer)
    for item in payload["items"]:
        item["mtime"] = None
    return json.dumps(payload, ensure_ascii=True, separators=(",", ":")).encode() + b"\n"


def make_name(folder: bytes, name: bytes, kind: str = "file", content: bytes = b"") -> bytes:
    """Create the file (or folder) ``name``, any bytes, in ``folder``."""
    path = folder + b"/" + name
    if kind == "dir":
        os.mkdir(path)
    else:
        with open(path, "wb") as handle:
            handle.write(content)
    return path


def test_the_program_is_plain_ascii_sh() -> None:
    assert FS_SH.isascii() and b"\r" not in FS_SH
    assert FS_SH.endswith(b"\nexit 0\n")


# --- trees -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def awkward_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a $HOME with every kind of entry and name fs-list must get right (never changed)."""
    home = tmp_path_factory.mktemp("fs-sh") / "home"
    raw = os.fsencode(home)
    for folder in ("Zdir", "sub", ".hidden_dir", "empty", "shell", "\u00c4ndern", "zeta"):
        (home / folder).mkdir(parents=True)
    (home / "sub" / "inner.txt").write_text("x")
    (home / ".hidden").write_text("h")
    (home / "B.txt").write_text("bb")
    (home / "a.txt").write_text("aaa")
    os.utime(home / "a.txt", ns=(SECOND, 1_700_000_000 * SECOND))
    for index, name in enumerate(AWKWARD_NAMES):
        make_name(raw, name, content=b"z" * index)
    make_name(raw, b"dir\xfe", "dir")
    make_name(raw + b"/dir\xfe", b"inside.txt")
    for name in SHELL_NAMES:
        (home / "shell" / name).mkdir()
    for name, mtime_ns in MTIMES_NS.items():
        (home / name).write_text(name)
        os.utime(home / name, ns=(SECOND, mtime_ns))
    with open(home / "big", "wb") as handle:
        handle.truncate(5 * 2**30 + 1)  # sparse, larger than 32 bits
    os.mkfifo(home / "fifo")
    links = {"link_to_dir": "sub", "link_to_file": "a.txt", "dangling": "gone", "loop": "loop",
             "it's loop": "it's loop", "chain": "link_to_file", "to_dangling": "dangling", "link_to_fifo": "fifo",
             "absolute": str(home / "Zdir"), "link_to_nano": "nano", "arrow -> name": "arrow -> target"}
    for name, target in links.items():
        (home / name).symlink_to(target)
    os.symlink(b"loop\xff", raw + b"/loop\xff")
    os.symlink(b"nowhere", raw + b"/dangling\xfe")
    os.utime(home / "dangling", ns=(SECOND, MTIMES_NS["nano"]), follow_symlinks=False)
    os.utime(raw + b"/dangling\xfe", ns=(SECOND, MTIMES_NS["negative"]), follow_symlinks=False)
    return home


@pytest.fixture(scope="module")
def many_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a folder of 10,000 files."""
    folder = tmp_path_factory.mktemp("fs-sh-many") / "many"
    folder.mkdir()
    for number in range(10_000):
        (folder / f"file_{number:05d}.dat").touch()
    return folder


@pytest.fixture
def shared_tree() -> Iterator[Path]:
    """Yield a world-traversable tree with folders another user cannot open or search (removed afterwards)."""
    base = Path(tempfile.mkdtemp(prefix="rvssh-fs-sh-"))
    base.chmod(0o755)
    (base / "locked" / "inner").mkdir(parents=True)
    names_only = base / "names_only"
    (names_only / "d").mkdir(parents=True)
    (names_only / "f.txt").write_text("f")
    (names_only / "link").symlink_to("f.txt")
    for name in (b"=", b"new\nline", b"bad\xff", b"*"):
        make_name(os.fsencode(names_only), name)
    make_name(os.fsencode(names_only), b"dir\xfe", "dir")
    (base / "search_only").mkdir()
    (base / "search_only" / "x.txt").write_text("x")
    (base / "locked").chmod(0)
    names_only.chmod(0o644)
    (base / "search_only").chmod(0o311)
    yield base
    for folder in ("locked", "names_only", "search_only"):
        (base / folder).chmod(stat.S_IRWXU)
    shutil.rmtree(base)


# --- the same answers ----------------------------------------------------------------------------

# Paths given to fs-list and fs-exists, relative to the awkward $HOME.
PATHS: list[str | bytes] = [
    "~", "", "sub", "~/sub", "{home}/sub/", "~/sub/../Zdir", "~/./sub//", "/{home}/sub", "~/link_to_dir",
    "~/dir\\xfe", b"~/dir\xfe", "~/\\xc3\\x84ndern", "~/\\xC3\\x84ndern", "~/missing", "~/a.txt", "~/a.txt/below",
    "~/dangling", "~/loop", "~/it's loop", b"~/loop\xff", "~/loop\\xff", "~/" + "x" * 256, "~/bad\\xffname.txt",
    "~/no\\xff", "~/\\x41", "-rf", "~other", "~/shell", "~/shell/$(touch X)", "~/shell/a\nb; touch X",
    "~/empty", "~/absolute", "~/fifo",
]
BAD_ARGUMENTS: list[list[str | bytes]] = [
    [], ["nope"], [b"bad\xffsub"], ["fs-list"], ["fs-exists"], ["fs-list", "~", "~"], ["storage-candidates", "~", "2"],
]


@functools.cache
def python_answer(home: Path, args: tuple[bytes, ...], env_items: tuple[tuple[str, str], ...]) -> bytes:
    """Return fs.py's answer (cached: the trees of these cases never change)."""
    return run_py(list(args), probe_env(home, **dict(env_items)), cwd=home.parent)


def assert_same_answers(home: Path, shell: list[str], path: str, cases: list[list[str | bytes]],
                        **env: str) -> None:
    """Assert fs.sh (under ``shell``, with ``path`` as PATH) answers every case as fs.py does."""
    failures = []
    for case in cases:
        args = tuple(as_bytes(tuple(arg.replace("{home}", str(home)) if isinstance(arg, str) else arg
                                    for arg in case)))
        expected = python_answer(home, args, tuple(sorted(env.items())))
        answer = run_sh(shell, list(args), sh_env(home, path, **env), cwd=home.parent)
        if answer != expected:
            failures.append(f"{args!r}\n  fs.py: {expected!r}\n  fs.sh: {answer!r}")
    assert not failures, "\n".join(failures)


def all_cases() -> list[list[str | bytes]]:
    """Return fs-list and fs-exists of every path in PATHS, and the bad arguments."""
    return [*([sub, path] for sub in ("fs-list", "fs-exists") for path in PATHS), *BAD_ARGUMENTS]


@pytest.mark.parametrize("shell", list(SHELLS))
def test_same_answers_under_every_shell(awkward_home: Path, shell: str) -> None:
    assert_same_answers(awkward_home, shell_argv(shell), "/usr/bin:/bin", all_cases())
    assert not (awkward_home / "X").exists()


@pytest.mark.parametrize("awk", list(AWKS))
def test_same_answers_with_every_awk(awkward_home: Path, tmp_path: Path, awk: str) -> None:
    installed(AWKS[awk][0])
    tools = toolbox(tmp_path / "bin", {"awk": AWKS[awk]})
    cases = [["fs-list", "~"], ["fs-list", "~/dir\\xfe"], ["fs-list", "~/loop\\xff"], ["fs-exists", b"~/dir\xfe"],
             ["nope"]]
    assert_same_answers(awkward_home, shell_argv("dash"), f"{tools}:/usr/bin:/bin", cases)


@pytest.mark.parametrize("shell", list(SHELLS))
def test_same_answers_for_every_home(awkward_home: Path, shell: str) -> None:
    argv = shell_argv(shell)
    for home in (f"{awkward_home}/", f"{awkward_home}//", f"{awkward_home}/../home"):
        assert_same_answers(awkward_home, argv, "/usr/bin:/bin", [["fs-list", "~/sub"], ["fs-exists", "~"]],
                            HOME=home)
    for home in ("/", ""):  # "~/x" is "//x" then
        assert_same_answers(awkward_home, argv, "/usr/bin:/bin",
                            [["fs-list", "~/nowhere"], ["fs-exists", "~"], ["fs-exists", "~/tmp"]], HOME=home)
    for home in ("home", "\\xff"):  # relative to the working folder
        assert_same_answers(awkward_home, argv, "/usr/bin:/bin",
                            [["fs-list", "~"], ["fs-list", "~/nowhere"], ["fs-exists", "~/sub"]], HOME=home)


@pytest.mark.parametrize("shell", list(SHELLS))
def test_home_from_the_password_database(tmp_path: Path, shell: str) -> None:
    argv = shell_argv(shell)
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}  # no HOME at all
    for args in ([b"fs-exists", b"~"], [b"fs-list", b"~/rvssh-surely-missing"]):
        assert run_sh(argv, args, env, cwd=tmp_path) == run_py(args, env, cwd=tmp_path)


@pytest.mark.parametrize("shell", list(SHELLS))
def test_ten_thousand_entries(many_files: Path, shell: str) -> None:
    argv = shell_argv(shell)
    expected = python_answer(many_files, (b"fs-list", os.fsencode(many_files)), ())
    started = time.monotonic()
    answer = run_sh(argv, [b"fs-list", os.fsencode(many_files)], sh_env(many_files.parent))
    print(f"fs.sh under {shell}: 10,000 entries in {time.monotonic() - started:.2f} s")
    assert answer == expected
    assert len(json.loads(answer)["items"]) == 10_000


# --- other users, other tools --------------------------------------------------------------------------


@pytest.mark.parametrize("shell", list(SHELLS))
def test_folders_another_user_cannot_open(shared_tree: Path, shell: str) -> None:
    argv = shell_argv(shell)
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        python = nobody_python(runuser) if runuser else None
        if not runuser or not python:
            pytest.skip("root (permission checks do not apply) without runuser or a python nobody can start")
        # runuser resets $HOME to nobody's own; set it back with env(1).
        as_nobody = [runuser, "-u", "nobody", "--", "/usr/bin/env", f"HOME={shared_tree}"]
        python_argv = [*as_nobody, python]
    else:
        as_nobody, python_argv = [], [REAL_PY]
    env = sh_env(shared_tree)
    cases = [["fs-list", "~"], ["fs-list", "locked"], ["fs-list", "locked/inner"], ["fs-list", "names_only"],
             ["fs-list", "search_only"], ["fs-list", "names_only/d"], ["fs-exists", "locked/inner"],
             ["fs-exists", "names_only/f.txt"], ["fs-exists", "search_only/x.txt"]]
    answers = {}
    for case in cases:
        args = as_bytes(tuple(case))
        answer = run_sh(argv, args, env, cwd=shared_tree, as_user=as_nobody)
        assert answer == run_py(args, env, cwd=shared_tree, python=python_argv), args
        answers[case[1]] = json.loads(answer)
    assert answers["locked"]["error"]["kind"] == "permission_denied"
    assert answers["search_only"]["error"]["kind"] == "permission_denied"
    # Names alone, and folders known from the directory itself.
    assert [(item["name"], item["is_dir"], item["mtime"]) for item in answers["names_only"]["items"]] == [
        ("d", True, None), ("dir\\xfe", True, None), ("*", False, None), ("=", False, None),
        ("bad\\xff", False, None), ("f.txt", False, None), ("link", False, None), ("new\nline", False, None)]


@pytest.mark.parametrize("shell", list(SHELLS))
def test_without_stat_sizes_come_from_ls(awkward_home: Path, tmp_path: Path, shell: str) -> None:
    argv = shell_argv(shell)
    tools = toolbox(tmp_path / "bin", {name: [name] for name in TOOLS if name != "stat"})
    for path in ("~", "~/sub", "~/link_to_dir"):
        args = [b"fs-list", os.fsencode(path)]
        expected = with_mtimes_unknown(python_answer(awkward_home, tuple(args), ()))
        assert run_sh(argv, args, sh_env(awkward_home, str(tools)), cwd=tmp_path) == expected


def test_without_stat_ten_thousand_entries(many_files: Path, tmp_path: Path) -> None:
    tools = toolbox(tmp_path / "bin", {name: [name] for name in TOOLS if name != "stat"})
    args = [b"fs-list", os.fsencode(many_files)]
    expected = with_mtimes_unknown(python_answer(many_files, tuple(args), ()))
    started = time.monotonic()
    answer = run_sh(shell_argv("dash"), args, sh_env(many_files.parent, str(tools)), cwd=tmp_path)
    print(f"fs.sh without stat: 10,000 entries in {time.monotonic() - started:.2f} s")
    assert answer == expected


# A BSD stat(1) for Linux: -f with %z, %m and %Fm (tv_sec.tv_nsec, as BSD
# prints it), -L, and no -c. Only what fs.sh asks of it.
FAKE_BSD_STAT = f"""#!{REAL_PY}
import os, sys
args, follow, status = sys.argv[1:], False, 0
if not args or args[0] == "-c":
    sys.exit("stat: illegal option -- c")
fmt = None
while args and args[0].startswith("-"):
    option = args.pop(0)
    if option == "--":
        break
    if option == "-L":
        follow = True
    elif option == "-f":
        fmt = args.pop(0)
for name in args:
    try:
        info = os.stat(name, follow_symlinks=follow)
    except OSError as ex:
        print("stat: %s: %s" % (name, ex.strerror), file=sys.stderr)
        status = 1
        continue
    sec, nsec = divmod(info.st_mtime_ns, 10**9)
    print(fmt.replace("%z", str(info.st_size)).replace("%Fm", "%d.%09d" % (sec, nsec)).replace("%m", str(sec)))
sys.exit(status)
"""


def test_bsd_stat(awkward_home: Path, tmp_path: Path) -> None:
    tools = toolbox(tmp_path / "bin", {"stat": FAKE_BSD_STAT, **{name: [name] for name in TOOLS if name != "stat"}})
    for path in ("~", "~/sub"):
        args = [b"fs-list", os.fsencode(path)]
        expected = python_answer(awkward_home, tuple(args), ())
        assert run_sh(shell_argv("dash"), args, sh_env(awkward_home, str(tools)), cwd=tmp_path) == expected


def test_busybox_alone(tmp_path: Path) -> None:
    # BusyBox as the only shell and tools: stat prints whole seconds, ls has no -q (but shows ? anyway).
    shell = shell_argv("busybox")
    home = tmp_path / "home"
    (home / "sub").mkdir(parents=True)
    for index, name in enumerate((b"a.txt", b"bad\xffname", b"new\nline", b"-dash", "caf\u00e9".encode())):
        make_name(os.fsencode(home), name, content=b"y" * index)
    (home / "link").symlink_to("sub")
    (home / "dangling").symlink_to("gone")
    for path in home.iterdir():
        os.utime(path, (1_700_000_000, 1_600_000_000), follow_symlinks=False)
    busybox = [shell[0]]
    with_stat = toolbox(tmp_path / "bin", {name: [*busybox, name] for name in TOOLS})
    without_stat = toolbox(tmp_path / "bin-nostat", {name: [*busybox, name] for name in TOOLS if name != "stat"})
    for path in ("~", "~/sub", "~/bad\\xffname", "~/missing", "~/dangling", "~/a.txt"):
        args = [b"fs-list", os.fsencode(path)]
        expected = run_py(args, probe_env(home), cwd=tmp_path)
        assert run_sh(shell, args, sh_env(home, str(with_stat)), cwd=tmp_path) == expected, path
        if path == "~":
            expected = with_mtimes_unknown(expected)
            assert run_sh(shell, args, sh_env(home, str(without_stat)), cwd=tmp_path) == expected


# A stat that loses the line of its first operand when asked for targets (-L),
# as when an entry goes away between fs.sh's two looks: once (a marker file
# remembers), or every time.
LOSSY_STAT = """#!/bin/sh
if [ "$3" = -L ] && [ ! -e '{marker}' ]; then
    [ '{always}' = yes ] || : > '{marker}'
    format=$2
    shift 5
    exec {stat} -c "$format" -L -- "$@"
fi
exec {stat} "$@"
"""


@pytest.mark.parametrize("always", [False, True])
def test_a_lost_stat_line_is_asked_again(awkward_home: Path, tmp_path: Path, always: bool) -> None:
    marker = tmp_path / "lost-once"
    lossy = LOSSY_STAT.format(marker=marker, always="yes" if always else "no", stat=installed("stat"))
    tools = toolbox(tmp_path / "bin", {"stat": lossy, **{name: [name] for name in TOOLS if name != "stat"}})
    args = [b"fs-list", b"~/sub"]
    expected = python_answer(awkward_home, tuple(args), ())
    answer = run_sh(shell_argv("dash"), args, sh_env(awkward_home, str(tools)), cwd=tmp_path)
    if not always:
        assert marker.exists()
        assert answer == expected
    else:
        # Three looks, never a full one: the names, but no size or time rather than another entry's.
        assert json.loads(answer)["items"] == [{"name": "inner.txt", "is_dir": False, "size": 0, "mtime": None,
                                                "is_link": False}]
        assert json.loads(expected)["items"][0]["size"] == 1
