"""A second local account, and HTTP requests sent from it (issue #15).

rvssh serves the account that started it without a token; every other
account of the machine must present the token. The suite runs as root, so
``rvssh serve`` and the tests' own requests are the owner's; this module makes
a throwaway account and sends requests as that account, from a process the
kernel lists under its uid.
"""

from __future__ import annotations

import json
import pwd
import subprocess
from dataclasses import dataclass
from typing import Any, Iterator

import pytest

from tests.sshbed import SYSTEM_PYTHON, run_as

TEST_USER_OTHER = "rvssh-other"
# The request comes on stdin (so a token never reaches argv), the answer goes to stdout as JSON.
REQUEST_PROGRAM = """
import http.client, json, sys
spec = json.load(sys.stdin)
connection = http.client.HTTPConnection("127.0.0.1", spec["port"], timeout=30)
body = spec["body"].encode() if spec["body"] is not None else None
connection.request(spec["method"], spec["path"], body=body, headers=spec["headers"])
answer = connection.getresponse()
print(json.dumps({"status": answer.status, "headers": answer.getheaders(),
                  "body": answer.read().decode("utf-8", "replace")}))
"""


@dataclass
class Answer:
    """What the other account got back."""

    status: int
    headers: dict[str, str]
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


def ensure_other_account() -> str:
    """Create the second account when it is missing (no home, no login shell) and return its name."""
    try:
        pwd.getpwnam(TEST_USER_OTHER)
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", TEST_USER_OTHER],
                       check=True, capture_output=True, timeout=60)
    return TEST_USER_OTHER


def request_as_other(port: int, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
                     ) -> Answer:
    """Send one request to rvssh on 127.0.0.1:``port`` from a process of the other account."""
    sent = dict(headers or {})
    sent.setdefault("Host", f"127.0.0.1:{port}")
    if body is not None:
        sent.setdefault("Content-Type", "application/json")
    spec = {"port": port, "method": method, "path": path, "headers": sent,
            "body": json.dumps(body) if body is not None else None}
    # NOTE: Debian's interpreter: the suite's venv python may live where this account cannot read it (/root).
    finished = run_as(TEST_USER_OTHER, [str(SYSTEM_PYTHON), "-I", "-c", REQUEST_PROGRAM], input=json.dumps(spec),
                      check=False, cwd="/", env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
    assert finished.returncode == 0, finished.stderr
    answer = json.loads(finished.stdout)
    return Answer(answer["status"], {name.lower(): value for name, value in answer["headers"]}, answer["body"])


@pytest.fixture(scope="session")
def other_account() -> Iterator[str]:
    """Yield the name of a local account other than the one the suite (and rvssh) runs as."""
    yield ensure_other_account()
