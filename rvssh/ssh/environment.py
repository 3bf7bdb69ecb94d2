"""The environment every OpenSSH child of rvssh gets: an allow-list.

ssh, its ProxyJump hops and the ControlPersist masters (which outlive rvssh)
see only what they need to find the user's agent, keys and config, never
rvssh's own variables (``RVSSH_TOKEN`` among them) or anything else the
server process happened to inherit.
"""

from __future__ import annotations

from typing import Mapping

# APPSEC: an allow-list, not a deny-list: a new secret variable in rvssh's
# environment can never leak into a master that lives on after rvssh.
ALLOWED_VARIABLES = frozenset(
    {"PATH", "HOME", "USER", "LOGNAME", "LANG", "TERM", "SSH_AUTH_SOCK", "DISPLAY", "SSH_ASKPASS"}
)


def child_environment(base: Mapping[str, str]) -> dict[str, str]:
    """Return the environment for an ssh child built from ``base`` (rvssh's own).

    Keeps the allow-listed variables and ``LC_*``; adds ``LC_ALL=C`` so ssh
    speaks the English the failure tables match, and
    ``SSH_ASKPASS_REQUIRE=never`` so no askpass helper ever takes a prompt
    that rvssh answers on the pty.
    """
    env = {name: value for name, value in base.items() if name in ALLOWED_VARIABLES or name.startswith("LC_")}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env["LC_ALL"] = "C"
    env["SSH_ASKPASS_REQUIRE"] = "never"
    return env
