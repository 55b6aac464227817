"""The persisted data model: sessions, items, messages, permissions and usage.

Field names are docker-agent's JSON names (SPEC 4), so a session serialised here reads the same
to a docker-agent client. These are pydantic models because every one of them crosses a JSON
edge (HTTP, SQLite, recovery files) and must be validated with errors that name the field.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    field_validator,
)

from .errors import UnstorableValue

Role = Literal["system", "user", "assistant", "tool"]


def _integral(value: Any) -> Any:
    """JSON does not tell ``5.0`` from ``5`` (JSON Schema's ``integer`` takes both): a float
    without a fraction is that integer, even in strict models."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Counts are stored as SQLite INTEGERs (signed 64-bit) and read by Go clients as int64.
Count = Annotated[int, Field(ge=0, le=2**63 - 1), BeforeValidator(_integral)]
Money = Annotated[float, Field(ge=0)]

# A session id names a URL path segment, a file name and a header parameter: letters, digits,
# ``_``, ``-`` and ``.`` (never ``..``), starting with a letter or digit. The words the API
# uses beside ids under ``/api/sessions/`` are not ids.
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
RESERVED_IDS = frozenset({"import", "batch"})

# Where a session started from a notebook comes from: the kernel's id (a UUID in practice) and
# the notebook's path relative to the server root, as jupyter-server's /api/sessions names
# them. Both are only recorded and shown; they never reach a file system call.
KernelId = Annotated[str, Field(max_length=128, pattern=r"^([A-Za-z0-9][A-Za-z0-9_.-]*)?$")]
NotebookPath = Annotated[str, Field(max_length=4096, pattern=r"^[^\x00-\x1f\x7f]*$")]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def rfc3339(moment: datetime) -> str:
    """UTC with a ``Z``, as Go's ``time.Time`` marshals it (docker-agent's event timestamps)."""
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def new_id() -> str:
    """A random id for sessions and messages (docker-agent uses UUIDv4 strings too)."""
    return str(uuid.uuid4())


def is_safe_id(value: str) -> bool:
    """Whether ``value`` may name a session: no quote, separator, ``..`` or control character
    can then reach a path, a ``Content-Disposition`` header or a URL built from it."""
    return bool(_SAFE_ID.fullmatch(value)) and ".." not in value and value not in RESERVED_IDS


class _Model(BaseModel):
    # NaN and infinities are not JSON: a Go or JavaScript client could not read them back.
    model_config = ConfigDict(extra="ignore", populate_by_name=True, allow_inf_nan=False)

    def to_json(self) -> dict[str, Any]:
        """The docker-agent JSON shape of this object."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def null_means_default(schema: dict[str, Any]) -> None:
    """JSON schema of a model whose fields take ``null`` for "not given": say so."""
    for name, field in schema.get("properties", {}).items():
        schema["properties"][name] = {"anyOf": [field, {"type": "null"}]}


class Permissions(_Model):
    """Shell-style glob patterns on tool names (SPEC 5): deny, then allow, then ask."""

    model_config = ConfigDict(json_schema_extra=null_means_default)

    allow: list[str] = Field(default_factory=list)
    ask: list[str] = Field(default_factory=list)
    deny: list[str] = Field(default_factory=list)

    @field_validator("allow", "ask", "deny", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value


class FunctionCall(_Model):
    name: str
    arguments: str = ""


class ToolCall(_Model):
    id: str
    type: str = "function"
    function: FunctionCall


class Usage(_Model):
    """Tokens and cost of one model response."""

    input_tokens: Count = 0
    output_tokens: Count = 0
    cached_input_tokens: Count = 0
    cached_write_tokens: Count = 0
    reasoning_tokens: Count = 0


Approval = Literal["approve", "approve-session", "approve-tool", "reject"]
"""The answers to a tool approval (``/resume``'s ``confirmation``)."""


class ChatMessage(_Model):
    """One message of the conversation as a model sees it."""

    role: Role
    content: str = ""
    multi_content: list[dict[str, Any]] | None = None
    reasoning_content: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    is_error: bool | None = None
    created_at: str | None = None
    usage: Usage | None = None
    model: str | None = None
    cost: Money | None = None
    approval: Approval | None = None
    """nbsession's addition, on a tool result: the user's answer when the call asked for
    approval (None: it ran without asking). Exports note it; models never see it."""


class Message(_Model):
    """A chat message as the session stores it: who produced it and whether a user saw it."""

    # Empty or null: a new id (docker-agent clients send zero values).
    id: Annotated[str, WithJsonSchema({"type": ["string", "null"]}, mode="validation")] = Field(
        default_factory=new_id
    )
    agent_name: str = Field(default="", alias="agentName")
    message: ChatMessage
    implicit: bool | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _blank_id_is_new(cls, value: Any) -> Any:
        return new_id() if value is None or value == "" else value


class Item(_Model):
    """One entry of ``Session.messages``: a message, a sub-session, a summary or an error.

    An ``error`` item records a turn that failed (the model was unreachable, the store
    refused a write) so that people reading the session later see it; models never do.
    It is nbsession's addition: docker-agent clients ignore the unknown field.
    """

    message: Message | None = None
    sub_session: Session | None = None
    summary: str | None = None
    first_kept_entry: Count | None = None
    cost: Money | None = None
    error: str | None = None

    @property
    def kind(self) -> Literal["message", "sub_session", "summary", "error"]:
        if self.message is not None:
            return "message"
        if self.sub_session is not None:
            return "sub_session"
        if self.error is not None:
            return "error"
        return "summary"


class Session(_Model):
    """A persisted conversation and its settings."""

    id: str = Field(default_factory=new_id)
    title: str = ""
    messages: list[Item] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=utc_now)
    tools_approved: bool = False
    hide_tool_results: bool = False
    working_dir: str = ""
    max_iterations: Count = 0
    starred: bool = False
    thinking: bool = False
    input_tokens: Count = 0
    output_tokens: Count = 0
    cost: Money = 0.0
    permissions: Permissions | None = None
    agent_model_overrides: dict[str, str] = Field(default_factory=dict)
    custom_models_used: list[str] = Field(default_factory=list)
    parent_id: str = ""
    kernel_id: KernelId = ""
    """The kernel that started the session (empty: not started from a kernel)."""
    notebook_path: NotebookPath = ""
    """That kernel's notebook, relative to the server root, when known."""

    @field_validator("created_at")
    @classmethod
    def _naive_is_utc(cls, value: datetime) -> datetime:
        """Sessions are ordered by ``created_at``: naive times do not compare with aware ones."""
        return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)

    @field_validator("messages", mode="before")
    @classmethod
    def _null_messages(cls, value: Any) -> Any:
        return [] if value is None else value

    @field_validator("agent_model_overrides", mode="before")
    @classmethod
    def _null_overrides(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("custom_models_used", mode="before")
    @classmethod
    def _null_models(cls, value: Any) -> Any:
        return [] if value is None else value

    def chat_messages(self) -> list[Message]:
        """The session's own messages, in order (summaries and sub-sessions left out)."""
        return [item.message for item in self.messages if item.message is not None]

    def summary(self) -> SessionSummary:
        return SessionSummary(
            id=self.id,
            title=self.title,
            created_at=self.created_at,
            num_messages=sum(1 for item in self.messages if item.message is not None),
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            working_dir=self.working_dir,
            starred=self.starred,
        )


# Fields of a session that live in its own row, as opposed to its items.
META_FIELDS: frozenset[str] = frozenset(Session.model_fields) - {"messages", "id"}


class SessionSummary(_Model):
    """What a session list shows: no message bodies are read to build it."""

    id: str
    title: str
    created_at: datetime
    num_messages: int
    input_tokens: int
    output_tokens: int
    working_dir: str
    starred: bool
    # What the session's turn does on this server now (the manager adds it to the rows it
    # lists from memory; the store never writes it): None when no turn runs here.
    activity: dict[str, Any] | None = None


class SessionTemplate(_Model):
    """The fields a client may set when it creates a session (SPEC 2), strictly typed.

    docker-agent clients send a whole session object with zero values; ``null`` means "not
    given", server-owned fields are ignored, and a wrong type (``"yes"`` for a boolean) is
    refused rather than coerced, since ``tools_approved`` turns every approval off.
    """

    model_config = ConfigDict(
        extra="ignore", strict=True, allow_inf_nan=False, json_schema_extra=null_means_default
    )

    title: str = ""
    working_dir: str = ""
    tools_approved: bool = False
    hide_tool_results: bool = False
    thinking: bool = False
    max_iterations: Count = 0
    permissions: Permissions | None = None
    agent_model_overrides: dict[str, Annotated[str, Field(min_length=1)]] = Field(
        default_factory=dict
    )
    custom_models_used: list[str] = Field(default_factory=list)
    kernel_id: KernelId = ""
    notebook_path: NotebookPath = ""

    @field_validator("*", mode="before")
    @classmethod
    def _null_is_default(cls, value: Any, info: Any) -> Any:
        if value is None:
            field = cls.model_fields[info.field_name]
            return field.get_default(call_default_factory=True)
        return value


ModelT = TypeVar("ModelT", bound=_Model)


def storable(model: ModelT) -> ModelT:
    """``model`` as a store will read it back, or ``UnstorableValue`` naming what is wrong.

    The one encoding rule every store applies before it writes. Values can reach a model
    without validation (``model_copy(update=...)``, attribute assignment, sums of valid
    numbers), so the check is made on what would be read back: UTF-8 JSON (a lone surrogate
    has no UTF-8 form), finite numbers, and a document that validates into the model again.
    """
    try:
        data = model.to_json()
    except ValueError as exc:  # pydantic's serialisation errors (too deep, for one)
        raise UnstorableValue(f"The value cannot be stored: {exc}.") from None
    try:
        text = json.dumps(data, ensure_ascii=False, allow_nan=False).encode()
    except UnicodeEncodeError:
        raise UnstorableValue(
            "Text must be valid Unicode: a lone surrogate such as \\ud800 cannot be stored."
        ) from None
    except RecursionError:
        raise UnstorableValue("The value is nested too deeply to be stored.") from None
    except ValueError:  # "Out of range float values are not JSON compliant"
        raise UnstorableValue("Numbers must be finite to be stored.") from None
    try:
        return type(model).model_validate_json(text)
    except ValidationError as exc:
        raise _refusal(exc) from None


def storable_fields(fields: Mapping[str, Any]) -> Session:
    """A session holding ``fields`` (the rest defaulted), checked by ``storable``: how a store
    validates a partial update of a session's own fields."""
    try:
        session = Session.model_validate(dict(fields))
    except ValidationError as exc:
        raise _refusal(exc) from None
    return storable(session)


def _refusal(exc: ValidationError) -> UnstorableValue:
    first = exc.errors(include_url=False)[0]
    field = ".".join(str(part) for part in first["loc"]) or None
    return UnstorableValue(f"{field or 'value'}: {first['msg']}.", field=field)


def user_message(content: str, agent_name: str = "", **extra: Any) -> Message:
    """A user message as the runtime and the manager append it."""
    return Message(
        agent_name=agent_name,
        message=ChatMessage(
            role="user", content=content, created_at=utc_now().isoformat(), **extra
        ),
    )


Item.model_rebuild()
