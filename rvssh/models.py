"""The wire contract: pydantic models of every request and response.

Field names and casing follow the Runicorn reference exactly (snake_case
requests, camelCase viewer-session objects); camelCase exists only here, as
aliases. Secrets are ``SecretStr`` from the request on, so a repr, a log
line or a 422 never shows them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    RootModel,
    SecretStr,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic.json_schema import WithJsonSchema
from pydantic_core import InitErrorDetails


def _reject_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


# Every request string: bounded, and never a NUL (it cannot reach argv anyway).
Text = Annotated[str, StringConstraints(max_length=4096), AfterValidator(_reject_nul)]
Secret = Annotated[SecretStr, Field(max_length=65536)]
Port = Annotated[int, Field(ge=1, le=65535)]
# ``privateKey`` is the camelCase spelling a UI may use in saved connections;
# ``secret``, ``token`` and ``api_key`` are sensitive fields Runicorn 0.7 seals too.
SECRET_FIELDS = frozenset({"password", "passphrase", "private_key", "privateKey", "secret", "token", "api_key"})
# Never echoed either: ``responses`` answer a server's questions (a second factor).
REQUEST_SECRET_FIELDS = SECRET_FIELDS | {"responses"}


class RequestModel(BaseModel):
    """Requests ignore unknown fields, as the reference (FastAPI) does."""

    model_config = ConfigDict(extra="ignore")


class ResponseModel(BaseModel):
    """Responses are serialised by alias (camelCase where the wire wants it)."""

    model_config = ConfigDict(populate_by_name=True)


# --- connections ---------------------------------------------------------


def _require_destination(cls: type[BaseModel], data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
    """Report host as FastAPI would for a required field, unless saved_server_id is given.

    ``username`` may be left out: ssh's config decides (``ssh -G``), as for ``ssh <host>``.
    """
    problems: list[InitErrorDetails] = []
    if isinstance(data, dict) and data.get("saved_server_id") is None:
        if "host" not in data:
            problems.append(InitErrorDetails(type="missing", loc=("host",), input=data))
        elif data["host"] is None:
            problems.append(InitErrorDetails(type="string_type", loc=("host",), input=None))
    try:
        model = handler(data)
    except ValidationError as ex:
        if not problems:
            raise
        raise ValidationError.from_exception_data(cls.__name__, [*problems, *ex.errors()]) from ex  # type: ignore[list-item]
    if problems:
        raise ValidationError.from_exception_data(cls.__name__, problems)
    return model


class ConnectRequest(RequestModel):
    """A destination and credentials; host may come from ``saved_server_id`` instead.

    Without ``username`` the user is the one ssh's config gives the host
    (``User`` of a Host alias, else the local account). ``responses`` answer,
    in order, the prompts of an earlier 401 ``AUTH_PROMPT``.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["host"], "properties": {"host": {"type": "string"}}},
                {"required": ["saved_server_id"], "properties": {"saved_server_id": {"type": "string"}}},
            ]
        }
    )

    host: Optional[Text] = None
    port: Port = 22
    username: Optional[Text] = None
    password: Optional[Secret] = None
    private_key: Optional[Secret] = None
    private_key_path: Optional[Text] = None
    passphrase: Optional[Secret] = None
    use_agent: bool = True
    saved_server_id: Optional[Text] = None
    responses: Optional[Annotated[list[Secret], Field(max_length=16)]] = None

    @model_validator(mode="wrap")
    @classmethod
    def _destination_required(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        return _require_destination(cls, data, handler)


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
    """A connection as recorded: ``state`` up, down, reconnecting or waiting (for a person)."""

    key: str
    host: str
    port: int
    username: str
    connected: bool
    state: Literal["up", "down", "reconnecting", "waiting"] = "up"
    checked_at: Optional[int] = None
    message: Optional[str] = None


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
    marker: Optional[str] = None
    hashed: bool = False


class KnownHostsListResponse(ResponseModel):
    entries: list[KnownHostEntry]


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


class AuthPromptEntry(ResponseModel):
    """One question the server asked: its own words, whether the answer is shown, who asks."""

    prompt: str
    echo: bool
    kind: Literal["keyboard-interactive", "password", "passphrase"]


class AuthPromptProblem(ResponseModel):
    """The 401 ``detail`` when the server asks what the request cannot answer (a second factor)."""

    code: Literal["AUTH_PROMPT"] = "AUTH_PROMPT"
    message: str
    prompts: list[AuthPromptEntry]


# --- status and health ---------------------------------------------------


class HealthResponse(ResponseModel):
    status: str = "ok"
    version: str


class StatusResponse(ResponseModel):
    connections: list[ConnectionEntry]
    viewer_sessions: list["ViewerSession"]
    connection_count: int
    viewer_session_count: int


class ErrorResponse(ResponseModel):
    detail: Any


# --- saved connections ---------------------------------------------------


def _check_saved_item(item: dict[str, Any]) -> dict[str, Any]:
    """Refuse a secret field that is neither a string nor null (422 at that field)."""
    problems = [
        InitErrorDetails(type="string_type", loc=(key,), input=value)
        for key, value in item.items()
        if key in SECRET_FIELDS and value is not None and not isinstance(value, str)
    ]
    problems += [
        InitErrorDetails(type="string_too_long", loc=(key,), input=value, ctx={"max_length": 65536})
        for key, value in item.items()
        if key in SECRET_FIELDS and isinstance(value, str) and len(value) > 65536
    ]
    if problems:
        raise ValidationError.from_exception_data("SavedConnection", problems)
    return item


SavedItem = Annotated[
    dict[str, Any],
    AfterValidator(_check_saved_item),
    WithJsonSchema(
        {
            "type": "object",
            "additionalProperties": True,
            "properties": {
                key: {"type": ["string", "null"], "maxLength": 65536, "writeOnly": True} for key in sorted(SECRET_FIELDS)
            },
        }
    ),
]


class SavedConnectionsRequest(RootModel[list[SavedItem]]):
    """The whole saved list (a bare JSON array of objects the Runicorn UI shapes)."""


class SavedConnectionsResponse(ResponseModel):
    ok: bool = True
    connections: list[dict[str, Any]]


# --- viewer --------------------------------------------------------------


class ViewerStartRequest(ConnectRequest):
    remote_root: Text
    local_port: Optional[Annotated[int, Field(ge=0, le=65535)]] = None
    remote_port: Optional[Annotated[int, Field(ge=0, le=65535)]] = None
    conda_env: Optional[Text] = None


class ViewerStopRequest(RequestModel):
    session_id: Text


class ViewerSession(ResponseModel):
    """A viewer session as the Runicorn UI reads it (camelCase on the wire)."""

    session_id: str = Field(alias="sessionId")
    host: str
    ssh_port: int = Field(alias="sshPort")
    username: str
    local_port: int = Field(alias="localPort")
    remote_port: int = Field(alias="remotePort")
    remote_root: str = Field(alias="remoteRoot")
    remote_pid: int = Field(alias="remotePid")
    status: Literal["starting", "running", "reconnecting", "stopped", "error"]
    started_at: int = Field(alias="startedAt")
    uptime_seconds: float = Field(alias="uptimeSeconds")
    is_active: bool = Field(alias="isActive")
    url: str
    connection_id: str = Field(alias="connectionId")
    conda_env: Optional[str] = Field(default=None, alias="condaEnv")
    error: Optional[str] = None
    message: Optional[str] = None
    checked_at: Optional[int] = Field(default=None, alias="checkedAt")


class ViewerStartResponse(ResponseModel):
    ok: bool = True
    session: ViewerSession
    message: str


class ViewerSessionsResponse(ResponseModel):
    sessions: list[ViewerSession]


# --- rvssh's own: the ssh config's hosts ---------------------------------


class SshHostEntry(ResponseModel):
    """A Host alias of the user's ssh config and where ``ssh -G`` says it leads (``error`` if it cannot)."""

    alias: str
    user: Optional[str] = None
    hostname: Optional[str] = None
    port: Optional[int] = None
    proxy_jump: Optional[str] = None
    error: Optional[str] = None


class SshHostsResponse(ResponseModel):
    files: list[str]
    hosts: list[SshHostEntry]


# --- environments and files ----------------------------------------------


class ConnectionQuery(RequestModel):
    connection_id: Text


class CachedQuery(ConnectionQuery):
    """The query of an answer rvssh keeps per connection; ``refresh=true`` asks the server again."""

    refresh: bool = False


class ConfigQuery(CachedQuery):
    conda_env: Text = "system"


class EnvConfigsQuery(CachedQuery):
    conda_env: Optional[Text] = None


class StorageCandidatesQuery(ConnectionQuery):
    conda_env: Text = "system"
    scan_root: Optional[Text] = None
    max_depth: int = 3


class FsListQuery(ConnectionQuery):
    path: Text = "~"


class FsExistsQuery(ConnectionQuery):
    path: Text


class EnvEntry(ResponseModel):
    name: str
    type: str
    python_version: str
    path: str
    is_default: bool
    runicorn_version: Optional[str] = None


class CachedAnswer(ResponseModel):
    """When the server was asked (ms since the epoch) and how old the answer is (seconds): additive to the contract."""

    probed_at: Optional[int] = Field(default=None, alias="probedAt")
    age_seconds: Optional[float] = Field(default=None, alias="ageSeconds")


class CondaEnvsResponse(CachedAnswer):
    ok: bool = True
    envs: list[EnvEntry]


class EnvConfig(ResponseModel):
    python_version: str = Field(alias="pythonVersion")
    runicorn_version: Optional[str] = Field(alias="runicornVersion")


class EnvConfigsResponse(CachedAnswer):
    ok: bool = True
    configs: dict[str, EnvConfig]


class ConfigResponse(CachedAnswer):
    ok: bool = True
    conda_env: str = Field(alias="condaEnv")
    python_version: str = Field(alias="pythonVersion")
    runicorn_version: Optional[str] = Field(alias="runicornVersion")
    default_storage_root: str = Field(alias="defaultStorageRoot")
    storage_root_exists: bool = Field(alias="storageRootExists")
    suggested_remote_port: int = Field(alias="suggestedRemotePort")
    connection_id: str = Field(alias="connectionId")
    python_path: Optional[str] = Field(default=None, alias="pythonPath")
    home_directory: Optional[str] = Field(default=None, alias="homeDirectory")


class StorageCandidate(ResponseModel):
    path: str
    run_count: int
    has_archive: bool
    has_index: bool
    score: float


class StorageCandidatesResponse(ResponseModel):
    scan_root: str
    max_depth: int
    candidates: list[StorageCandidate]
    truncated: bool = False


class FsItem(ResponseModel):
    name: str
    is_dir: bool
    size: int
    mtime: Optional[int]
    is_link: bool = False


class FsListResponse(ResponseModel):
    path: str
    items: list[FsItem]


class FsExistsResponse(ResponseModel):
    path: str
    exists: bool
    is_dir: bool
