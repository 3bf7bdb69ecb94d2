"""The wire contract: pydantic models of every request and response.

Field names and casing follow the Runicorn reference exactly (snake_case
requests, camelCase viewer-session objects); camelCase exists only here, as
aliases. Secrets are ``SecretStr`` from the request on, so a repr, a log
line or a 422 never shows them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, StringConstraints


def _reject_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


# Every request string: bounded, and never a NUL (it cannot reach argv anyway).
Text = Annotated[str, StringConstraints(max_length=4096), AfterValidator(_reject_nul)]
Secret = Annotated[SecretStr, Field(max_length=65536)]
Port = Annotated[int, Field(ge=1, le=65535)]
SECRET_FIELDS = frozenset({"password", "passphrase", "private_key"})


class RequestModel(BaseModel):
    """Requests ignore unknown fields, as the reference (FastAPI) does."""

    model_config = ConfigDict(extra="ignore")


class ResponseModel(BaseModel):
    """Responses are serialised by alias (camelCase where the wire wants it)."""

    model_config = ConfigDict(populate_by_name=True)


# --- connections ---------------------------------------------------------


class ConnectRequest(RequestModel):
    host: Text
    port: Port = 22
    username: Text
    password: Optional[Secret] = None
    private_key: Optional[Secret] = None
    private_key_path: Optional[Text] = None
    passphrase: Optional[Secret] = None
    use_agent: bool = True
    saved_server_id: Optional[Text] = None


class DisconnectRequest(RequestModel):
    host: Text
    port: Port = 22
    username: Text


class ConnectResponse(ResponseModel):
    ok: bool = True
    connection_id: str
    host: str
    port: int
    username: str
    connected: bool


class ConnectionEntry(ResponseModel):
    key: str
    host: str
    port: int
    username: str
    connected: bool


class SessionsResponse(ResponseModel):
    sessions: list[ConnectionEntry]


class MessageResponse(ResponseModel):
    ok: bool
    message: str


# --- known hosts ---------------------------------------------------------


class KnownHostsAcceptRequest(RequestModel):
    host: Text
    port: Port
    key_type: Text
    public_key: Annotated[str, StringConstraints(min_length=1, max_length=8192), AfterValidator(_reject_nul)]
    fingerprint_sha256: Text


class KnownHostsRemoveRequest(RequestModel):
    host: Text
    port: Port
    key_type: Text


class OkResponse(ResponseModel):
    ok: bool = True


class KnownHostEntry(ResponseModel):
    host: str
    port: int
    known_hosts_host: str
    key_type: str
    key_base64: str
    fingerprint_sha256: str


class KnownHostsListResponse(ResponseModel):
    entries: list[dict[str, Any]]


class KnownHostsRemoveResponse(ResponseModel):
    ok: bool = True
    changed: bool


class HostKeyPayload(ResponseModel):
    host: str
    port: int
    known_hosts_host: str
    key_type: str
    fingerprint_sha256: str
    public_key: str
    reason: Literal["unknown", "changed"]
    expected_fingerprint_sha256: Optional[str] = None
    expected_public_key: Optional[str] = None


class HostKeyProblem(ResponseModel):
    code: Literal["HOST_KEY_CONFIRMATION_REQUIRED"] = "HOST_KEY_CONFIRMATION_REQUIRED"
    message: str = "Host key verification failed"
    host_key: HostKeyPayload


# --- status and health ---------------------------------------------------


class HealthResponse(ResponseModel):
    status: str = "ok"
    version: str


class StatusResponse(ResponseModel):
    connections: list[ConnectionEntry]
    viewer_sessions: list[dict[str, Any]]
    connection_count: int
    viewer_session_count: int


class ErrorResponse(ResponseModel):
    detail: Any
