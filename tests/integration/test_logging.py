"""What rvssh logs, and what its ssh children get (issue #11): ssh's words, never a secret.

A real ``rvssh serve`` at ``--log-level debug`` is driven through every
secret field the API takes (password, passphrase, key content, responses,
the secrets of saved connections, the bearer token), on the success and the
failure paths; then its whole output is searched for each secret, and the
environment of the ssh master it leaves running is searched for rvssh's own
variables.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.rvssh_fixtures import ACCEPT_FIELDS
from tests.integration.serving import end_masters, serving
from tests.sshbed import SshBed, wait_until

TOKEN = "tok-Zr81-never-logged"
SAVED_SECRETS = {"password": "saved-pw-Q1", "passphrase": "saved-pp-Q2", "private_key": "saved-key-Q3",
                 "secret": "saved-secret-Q4", "token": "saved-token-Q5", "api_key": "saved-api-Q6"}
WRONG_PASSWORD = "wrong-pw-Xk2"
RESPONSE = "response-Qz93"


def master_environ(state_dir: Path) -> dict[str, str]:
    """Return the environment of the master a state dir records (read from /proc as root)."""
    record = json.loads(next((state_dir / "connections").glob("*.json")).read_text())
    raw = Path(f"/proc/{record['pid']}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def test_no_secret_reaches_the_log_and_ssh_gets_no_rvssh_variable(tmp_path: Path, sshbed: SshBed) -> None:
    sshbed.user_known_hosts.write_text("")
    environment = {"RVSSH_SSH_CONFIG": str(sshbed.ssh_config), "RVSSH_USER_KNOWN_HOSTS": str(sshbed.user_known_hosts),
                   "RVSSH_TOKEN": TOKEN}
    auth = {"Authorization": f"Bearer {TOKEN}"}
    base = {"host": sshbed.host, "port": sshbed.port, "username": sshbed.user, "use_agent": False}
    secrets = [TOKEN, WRONG_PASSWORD, RESPONSE, sshbed.password, sshbed.key_passphrase, *SAVED_SECRETS.values()]
    key_content = sshbed.key_plain.read_text()
    try:
        with serving(tmp_path, "--log-level", "debug", **environment) as served:
            status, _, problem = served.post_json("/api/remote/connect", {**base, "password": WRONG_PASSWORD}, auth)
            assert status == 409
            accept = {name: problem["detail"]["host_key"][name] for name in ACCEPT_FIELDS}
            assert served.post_json("/api/remote/known-hosts/accept", accept, auth)[0] == 200
            refused = served.post_json("/api/remote/connect", {**base, "password": WRONG_PASSWORD,
                                                               "responses": [RESPONSE]}, auth)
            assert refused[0] == 401
            passphrase = {**base, "private_key_path": str(sshbed.key_pass), "passphrase": sshbed.key_passphrase}
            assert served.post_json("/api/remote/connect", passphrase, auth)[0] == 200
            served.post_json("/api/remote/disconnect", base, auth)
            assert served.post_json("/api/remote/connect", {**base, "private_key": key_content}, auth)[0] == 200
            served.post_json("/api/remote/disconnect", base, auth)
            saved = {"kind": "server", "id": "srv_log", "host": sshbed.host, "port": sshbed.port,
                     "username": sshbed.user, **SAVED_SECRETS}
            assert served.post_json("/api/remote/connections/saved", [saved], auth)[0] == 200
            assert served.request("GET", "/api/remote/connections/saved", headers=auth)[0] == 200
            status, _, _ = served.post_json("/api/remote/connect", {**base, "password": sshbed.password}, auth)
            assert status == 200
            environ = master_environ(tmp_path / "state")
            assert not [name for name in environ if name.startswith("RVSSH_")], environ
            assert TOKEN not in json.dumps(environ)
            status, _, _ = served.request("GET", "/api/remote/sessions", headers=auth)
            assert status == 200
            wait_until(lambda: "the master of" in served.log.read_text(errors="replace"), 10, "nothing was logged")
        log = served.log.read_text(errors="replace")
    finally:
        end_masters(tmp_path / "state")
    leaked = [secret for secret in secrets if secret in log]
    assert not leaked, f"secrets in the log: {leaked}"
    assert "PRIVATE KEY" not in log and key_content.splitlines()[1] not in log
    # What an operator needs is there: ssh's command lines at debug, and ssh's own words on a failure.
    assert "rvssh.ssh.master" in log and " -o ControlMaster=yes " in log
    assert "did not start: Connection failed: " in log and "ssh said: " in log
    assert "Permission denied (publickey,password)" in log
    assert "is up (pid " in log
