"""Accounts with other login shells, and the sshd that serves them (issue #10).

Each account logs in with the bed's keys and has start-up files that put a
venv first on its PATH (``~/venv``, a link to the runicorn venv the suite
builds once per machine) and print words on stdout and stderr, as real rc
files do. Where the shell reads no file for a non-interactive command (dash,
ksh), ``~/.ssh/environment`` (sshd's ``PermitUserEnvironment``) sets the
PATH and ``~/.ssh/rc`` does the printing. One more account has no python on
its PATH at all: every program of ``/usr/bin`` but python, through links.

Every account is made (or brought up to date) when the bed starts, never
at import; each is declared as ``TEST_USER_<SUFFIX>`` so that
``fresh-machine`` removes it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.sshbed import BedAccount, SshBed, share_runicorn_venv

if TYPE_CHECKING:
    from collections.abc import Iterator

TEST_USER_BASH = "rvssh-bash"
TEST_USER_DASH = "rvssh-dash"
TEST_USER_ZSH = "rvssh-zsh"
TEST_USER_KSH = "rvssh-ksh"
TEST_USER_TCSH = "rvssh-tcsh"
TEST_USER_CSH = "rvssh-csh"
TEST_USER_FISH = "rvssh-fish"
TEST_USER_NOPYTHON = "rvssh-nopython"

VENV_LINK = "venv"
# A folder whose name every login shell would read as code if it ever parsed it.
SHELL_SYNTAX_DIR = "rvt it's \"q\" \\ !! $(touch rvt-canary) `touch rvt-canary` * ~ %1 {a,b}"
SHELL_CANARY = "rvt-canary"
BANNER = "*** rvssh test server ***\nAuthorized use only. Questions? Ask the admin:\n\n"

# The PATH line of each start-up file (shell syntax of that shell), and its words.
_RC_FILES: dict[str, tuple[str, str]] = {
    "bash": (".bashrc",
             'echo "bashrc says hello"\necho "bashrc warns" >&2\nexport PATH="$HOME/venv/bin:$PATH"\n'),
    "zsh": (".zshenv",
            'echo "zshenv says hello"\necho "zshenv warns" >&2\npath=("$HOME/venv/bin" $path)\nexport PATH\n'),
    "tcsh": (".tcshrc",
             'echo "tcshrc says hello"\necho "tcshrc warns" > /dev/stderr\nsetenv PATH "${HOME}/venv/bin:${PATH}"\n'),
    "csh": (".cshrc",
            'echo "cshrc says hello"\necho "cshrc warns" > /dev/stderr\nsetenv PATH "${HOME}/venv/bin:${PATH}"\n'),
    "fish": (".config/fish/config.fish",
             'echo "config.fish says hello"\necho "config.fish warns" >&2\nset -gx PATH $HOME/venv/bin $PATH\n'),
}
_SSH_ENVIRONMENT = {
    ".ssh/environment": "PATH={home}/venv/bin:/usr/local/bin:/usr/bin:/bin\n",
    ".ssh/rc": 'echo "ssh rc says hello"\necho "ssh rc warns" >&2\n',
}


def _venv_account(name: str, shell: str, files: dict[str, str]) -> BedAccount:
    return BedAccount(
        name=name,
        shell=shell,
        files={**files, f"{SHELL_SYNTAX_DIR}/marker": ""},
        links={VENV_LINK: str(share_runicorn_venv())},
    )


def shell_accounts() -> tuple[BedAccount, ...]:
    """Return the accounts with a venv first on the login PATH, one per login shell."""
    def rc(kind: str) -> dict[str, str]:
        path, text = _RC_FILES[kind]
        return {path: text}

    return (
        _venv_account(TEST_USER_BASH, "/bin/bash", rc("bash")),
        _venv_account(TEST_USER_DASH, "/bin/dash", dict(_SSH_ENVIRONMENT)),
        _venv_account(TEST_USER_ZSH, "/usr/bin/zsh", rc("zsh")),
        _venv_account(TEST_USER_KSH, "/bin/ksh93", dict(_SSH_ENVIRONMENT)),
        _venv_account(TEST_USER_TCSH, "/usr/bin/tcsh", rc("tcsh")),
        _venv_account(TEST_USER_CSH, "/bin/bsd-csh", rc("csh")),
        _venv_account(TEST_USER_FISH, "/usr/bin/fish", rc("fish")),
    )


NOPYTHON_BIN = "bin-without-python"


def nopython_account() -> BedAccount:
    """Return the account whose login PATH holds every program of /usr/bin but python."""
    programs = sorted(name for name in os.listdir("/usr/bin") if not name.startswith("python"))
    return BedAccount(
        name=TEST_USER_NOPYTHON,
        shell="/bin/bash",
        files={".bashrc": f'export PATH="$HOME/{NOPYTHON_BIN}"\n'},
        links={f"{NOPYTHON_BIN}/{name}": f"/usr/bin/{name}" for name in programs},
    )


def home_of(user: str) -> Path:
    """Return the home the bed gives ``user`` (useradd -d /home/<user>)."""
    return Path("/home") / user


@pytest.fixture(scope="session")
def shells_bed() -> Iterator[SshBed]:
    """Yield an sshd with a Banner, user environments, and the accounts of every login shell."""
    bed = SshBed(
        sshd_options=["PermitUserEnvironment yes", "Banner {dir}/banner"],
        files={"banner": BANNER},
        accounts=(*shell_accounts(), nopython_account()),
    )
    with bed:
        yield bed
