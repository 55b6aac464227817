"""The JSON shapes of the HTTP API, as pydantic models.

Request models are what handlers validate bodies with (strictly: ``"5"`` is not an integer),
so a wrong type is a 400 that names the field. Response models describe what the manager's
JSON looks like; they exist for the OpenAPI document, which is built from these same classes
so the document cannot drift from what handlers accept.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, WithJsonSchema

from ..runtime.loop import CONFIRMATIONS
from ..session import Count, Message, Money, Permissions, SessionSummary


class Body(BaseModel):
    """A request body: unknown keys are ignored (docker-agent clients send more than we read).

    ``NaN`` and infinities are refused: no client could read them back as JSON.
    """

    model_config = ConfigDict(extra="ignore", strict=True, allow_inf_nan=False)


class ApiMessage(Body):
    """A message a client sends into a turn (docker-agent's ``api.Message``): a user's, with
    text or parts (an empty role means the user's)."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["content"], "properties": {"content": {"minLength": 1}}},
                {
                    "required": ["multi_content"],
                    "properties": {"multi_content": {"type": "array", "minItems": 1}},
                },
            ]
        }
    )

    role: Literal["user", ""] = "user"
    content: str = ""
    multi_content: list[dict[str, Any]] | None = None


Messages = Annotated[list[ApiMessage], Field(min_length=1)]


class RunRequest(Body):
    """POST .../agent/{agent}: the turn's messages and an optional persistent model override.

    A bare JSON array of messages is accepted too; the handler wraps it into this shape.
    """

    messages: Messages
    model: str = Field("", description="A model ref; empty keeps the current model.")


class MessagesRequest(Body):
    """Steer and follow-up bodies."""

    messages: Messages


class ResumeRequest(Body):
    confirmation: str = Field(
        description="approve | approve-session | approve-tool | reject",
        examples=["approve"],
        json_schema_extra={"enum": list(CONFIRMATIONS)},
    )
    reason: str = ""
    tool_name: str = ""


class ElicitationRequest(Body):
    action: Literal["accept", "decline", "cancel"]
    content: dict[str, Any] | None = None
    elicitation_id: str = ""


class TitleRequest(Body):
    title: str


class PermissionsRequest(Body):
    permissions: Permissions | None = None


class TokensRequest(Body):
    input_tokens: Count
    output_tokens: Count
    cost: Money | None = Field(None, description="Omitted: the session's cost is unchanged.")


class StarredRequest(Body):
    starred: bool


class MessageRequest(Body):
    """POST /messages and PATCH /messages/{msg_id} (the id in the path wins for PATCH)."""

    message: Message


class SummaryRequest(Body):
    summary: str = Field(pattern=r"\S", description="Not blank.")
    first_kept_entry: Count | None = None


class ForkRequest(Body):
    user_message_index: Count = Field(
        validation_alias=AliasChoices("user_message_index", "message_index"),
        description="Index among the user messages; history before it is copied.",
    )


class BatchRequest(Body):
    session_ids: list[str] = Field(min_length=1)


# --- Responses (documentation; the manager builds the JSON) -------------------------------


class Reply(BaseModel):
    """Responses may grow fields; clients ignore what they do not know."""

    model_config = ConfigDict(extra="allow")


class ErrorBody(Reply):
    code: str = Field(
        examples=["unknown_session"],
        description="A SPEC 2 error code; a 503 carries not_ready and a 405 method_not_allowed, "
        "statuses the SPEC names no code for.",
    )
    message: str


class StatusReply(Reply):
    status: str


class MessageReply(Reply):
    message: str


class AddedReply(Reply):
    status: Literal["added"]
    id: str | None = None


class ReadyReply(Reply):
    ready: bool
    active_sessions: int
    store_connected: bool
    latest_error: str = ""


class AgentInfo(Reply):
    name: str
    description: str
    multi: bool
    commands: list[str]
    error: str | None = Field(
        None,
        description="Present when the file does not load as it is now: its last good version "
        "is served if it had one (then the fields above are that version's), else running it "
        "is a 422 agent_invalid.",
    )
    warnings: list[str] | None = Field(
        None,
        description="Present when the file uses keys or options nbsession ignores: one line "
        "each, naming the file and the key. A session's first turn repeats them as `warning` "
        "events.",
    )


class ToolCount(Reply):
    available_tools: int


class TurnActivity(Reply):
    state: Literal[
        "starting",
        "model",
        "running_tool",
        "waiting_for_approval",
        "waiting_for_input",
        "running_on_another_server",
    ]
    tool: str | None = Field(None, description="The tool being run or waiting for an answer.")
    since: str | None = Field(None, description="RFC 3339 time this activity began.")
    duration: float | None = Field(None, description="Seconds since then.")
    server: str | None = Field(None, description="The server whose turn holds the session.")


class SessionListRow(SessionSummary):
    """A row of ``GET /api/sessions``: docker-agent's summary fields, then nbsession's."""

    activity: TurnActivity | None = Field(
        None,
        description="What the session's turn does on this server now (as `/status` says, "
        "without `duration`), so a list shows which sessions wait for an answer; null when "
        "no turn runs here. docker-agent clients ignore it.",
    )


class SessionStatus(Reply):
    id: str
    title: str
    streaming: bool
    agent: str = ""
    input_tokens: int
    output_tokens: int
    num_messages: int
    activity: TurnActivity | None = Field(
        None, description="What the running turn is doing; absent when no turn runs."
    )


class AnyEvent(Reply):
    """One SSE ``data:`` payload (SPEC 4); the ``id:`` line carries its sequence number."""

    type: str = Field(examples=["agent_choice"])
    agent_name: str = ""
    timestamp: str = Field("", description="RFC 3339.")


class ToolCallOutputEvent(AnyEvent):
    """A piece of a running call's output, before its ``tool_call_response`` (docker-agent's
    ``tool_call_output``): what ``shell`` and ``script`` commands print, an MCP server's
    progress notifications."""

    type: Literal["tool_call_output"]
    tool_call_id: str
    tool_definition: dict[str, Any] = Field(description="docker-agent's tool JSON.")
    output: str = Field(description="The next piece of text.")


class PlanUpdatedEvent(AnyEvent):
    """``write_plan`` replaced the session's plan (docker-agent's ``plan_updated``)."""

    type: Literal["plan_updated"]
    session_id: str
    content: str = Field(description="The whole plan, as Markdown.")
    path: str = Field("", description="Its file; absent when plans are kept in memory.")


Event = ToolCallOutputEvent | PlanUpdatedEvent | AnyEvent


KernelIdField = Annotated[
    str, Field(description="The Jupyter kernel the session was created from, if any.")
]
NotebookPathField = Annotated[
    str,
    Field(
        description="That kernel's notebook: relative to the server's root when it lies "
        "inside, else as the kernel named it."
    ),
]


class SessionResponse(Reply):
    """docker-agent's ``SessionResponse``; nbsession fields (cost, starred...) may follow."""

    id: str
    title: str
    messages: list[Message] = Field(
        description="Every message in order, sub-sessions' inlined, system messages left out."
    )
    created_at: str
    tools_approved: bool
    thinking: bool = False
    input_tokens: int
    output_tokens: int
    working_dir: str = ""
    permissions: Permissions | None = None
    agent_model_overrides: dict[str, str] = Field(default_factory=dict)
    cost: float = 0.0
    starred: bool = False
    max_iterations: int = 0
    hide_tool_results: bool = False
    custom_models_used: list[str] = Field(default_factory=list)
    parent_id: str = Field("", description="The session this one was forked from, if any.")
    kernel_id: KernelIdField = ""
    notebook_path: NotebookPathField = ""


class SessionSnapshot(Reply):
    id: str
    title: str
    created_at: str
    working_dir: str = ""
    messages: list[Message]
    tools_approved: bool
    permissions: Permissions | None = None
    input_tokens: int
    output_tokens: int
    streaming: bool
    agent: str = ""
    last_event_seq: int = Field(description="Tail /events from here after a gap.")
    turn_start_seq: int | None = Field(
        None,
        description="While a turn runs: the seq its events follow (a run stream's X-Start-Seq "
        "for a run's first turn). A client whose turn began earlier knows that turn ended.",
    )
    cost: float = 0.0
    kernel_id: KernelIdField = ""
    notebook_path: NotebookPathField = ""
    partial_tool_calls: list[Event] = Field(
        default_factory=list,
        description="The running turn's tool calls whose arguments are streaming: each a "
        "partial_tool_call with the arguments up to last_event_seq (later pieces append).",
    )
    pending: Event | None = Field(
        None,
        description="The prompt the running turn waits on (tool_call_confirmation, "
        "max_iterations_reached or elicitation_request), as /events sent it; null when it "
        "waits for nobody. A client that connects while a turn waits shows it from here.",
    )


class ModelChoice(Reply):
    ref: str
    name: str
    provider: str = ""
    model: str = ""
    is_default: bool = False
    is_current: bool = False


class SessionModels(Reply):
    agent: str
    current_model_ref: str = ""
    models: list[ModelChoice]


class QueueDepth(Reply):
    depth: int
    capacity: int


class QueueStatus(Reply):
    steer: QueueDepth
    followup: QueueDepth


class FollowUpReply(Reply):
    status: Literal["queued_streaming", "queued_idle", "duplicate"]
    duplicate: bool


class TitleReply(Reply):
    id: str
    title: str


class ToolsApprovalReply(Reply):
    tools_approved: bool


class BatchDeleteReply(Reply):
    deleted_count: int
    failed_count: int
    failed_ids: list[str] = Field(default_factory=list)


class BatchExportReply(Reply):
    export_format: str
    timestamp: str
    sessions: list[dict[str, Any]]
    session_count: int


ImportBody = Annotated[
    dict[str, Any],
    WithJsonSchema(
        {
            "description": "An exported .ipynb (nbformat 4, with the session in "
            "metadata.nbsession) or a recovery export (GET .../recovery).",
            "anyOf": [
                {
                    "type": "object",
                    "required": ["cells", "nbformat", "nbformat_minor", "metadata"],
                    "properties": {
                        "nbformat": {"const": 4},
                        "metadata": {"type": "object", "required": ["nbsession"]},
                    },
                },
                {
                    "type": "object",
                    "required": ["recovery_version"],
                    "properties": {"recovery_version": {"const": 1}},
                },
            ],
        }
    ),
]
