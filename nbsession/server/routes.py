"""The route table: every path of SPEC 2, its handler and what its operations take and give.

Both the tornado registration and the OpenAPI document are built from ``ROUTES``, and
handlers validate bodies and read query parameters only as their operation declares, so the
served API, its validation and its documentation cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from tornado.web import RequestHandler

from ..session import Session, SessionTemplate
from . import handlers as h
from .schemas import (
    AddedReply,
    AgentInfo,
    BatchDeleteReply,
    BatchExportReply,
    BatchRequest,
    ElicitationRequest,
    Event,
    FollowUpReply,
    ForkRequest,
    ImportBody,
    MessageReply,
    MessageRequest,
    Messages,
    MessagesRequest,
    PermissionsRequest,
    QueueStatus,
    ReadyReply,
    ResumeRequest,
    RunRequest,
    SessionListRow,
    SessionModels,
    SessionResponse,
    SessionSnapshot,
    SessionStatus,
    StarredRequest,
    StatusReply,
    SummaryRequest,
    TitleReply,
    TitleRequest,
    TokensRequest,
    ToolCount,
    ToolsApprovalReply,
)

PREFIX = "nbsession"
"""Every route lives under ``{base_url}nbsession/``."""

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Param:
    """A query or header parameter an operation reads."""

    name: str
    kind: Literal["duration", "boolean", "integer", "count", "string", "key"]
    description: str
    location: Literal["query", "header"] = "query"


@dataclass(frozen=True)
class Operation:
    """One method of a route, described for validation and for the OpenAPI document."""

    summary: str
    replies: Mapping[int, Any]
    """Status -> the type its JSON body has (``Event`` for SSE), for each non-error reply."""
    errors: tuple[int, ...] = ()
    """Statuses answered with ``{code, message}`` (401, 400 and 413 are implied by the route)."""
    body: Any = None
    """The model ``NBSessionHandler.body()`` validates the request body with."""
    accepts: Any = None
    """The documented request body when it is not ``body`` (pass-through or several forms)."""
    body_optional: bool = False
    params: tuple[Param, ...] = ()
    media: str = "application/json"
    """The media type of the success replies."""
    reply_headers: Mapping[str, str] = field(default_factory=dict)
    """Headers of the success replies, each with its description."""

    @property
    def request_schema(self) -> Any:
        return self.accepts if self.accepts is not None else self.body

    @property
    def query_names(self) -> frozenset[str]:
        return frozenset(p.name for p in self.params if p.location == "query")


@dataclass(frozen=True)
class Route:
    path: str
    """An OpenAPI path template relative to the prefix, e.g. ``/api/sessions/{session_id}``."""
    handler: type[RequestHandler]
    operations: Mapping[str, Operation] = field(default_factory=dict)
    open: bool = False
    """Answered without authentication (liveness and readiness probes only)."""

    @property
    def path_params(self) -> list[str]:
        return _PLACEHOLDER.findall(self.path)

    @property
    def pattern(self) -> str:
        """The tornado regex: each ``{name}`` becomes a named group of one path segment."""
        literals = _PLACEHOLDER.split(self.path)
        regex = "".join(
            re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)"
            for i, part in enumerate(literals)
        )
        return f"/{PREFIX}{regex}"


_SESSION = "/api/sessions/{session_id}"
_RUN = f"{_SESSION}/agent/{{agent_id}}"
_SSE = "text/event-stream"
_TIMEOUT = "A duration such as 30s, 5m or 500ms (bare numbers are seconds); at most 5m."

ROUTES: tuple[Route, ...] = (
    Route(
        "/health",
        h.HealthHandler,
        {"GET": Operation("Liveness, without authentication.", {200: StatusReply})},
        open=True,
    ),
    Route(
        "/ready",
        h.ReadyHandler,
        {
            "GET": Operation(
                "Whether the session store is reachable, without authentication.",
                {200: ReadyReply, 503: ReadyReply},
            )
        },
        open=True,
    ),
    Route(
        "/api/ping",
        h.PingHandler,
        {"GET": Operation("Authenticated liveness.", {200: StatusReply})},
    ),
    Route(
        "/api/ready",
        h.SessionsReadyHandler,
        {
            "GET": Operation(
                "Wait until a session exists or is attached.",
                {200: StatusReply},
                errors=(503,),
                params=(Param("timeout", "duration", f"Default 30s. {_TIMEOUT}"),),
            )
        },
    ),
    Route(
        "/api/openapi.json",
        h.OpenAPIHandler,
        {"GET": Operation("This document.", {200: dict[str, Any]})},
    ),
    Route(
        "/api/agents",
        h.AgentsHandler,
        {
            "GET": Operation(
                "Agent sources, sorted by name; one whose file does not load has an `error`.",
                {200: list[AgentInfo]},
            )
        },
    ),
    Route(
        "/api/agents/{agent_id}",
        h.AgentHandler,
        {
            "GET": Operation(
                "The parsed configuration of an agent source.",
                {200: dict[str, Any]},
                errors=(404, 422, 502),
            )
        },
    ),
    Route(
        "/api/agents/{agent_id}/{agent_name}/tools/count",
        h.AgentToolCountHandler,
        {
            "GET": Operation(
                "How many tools the agent has.", {200: ToolCount}, errors=(404, 422, 502)
            )
        },
    ),
    Route(
        "/api/sessions",
        h.SessionsHandler,
        {
            "GET": Operation(
                "Session summaries, newest first; with `limit`, one page of them and the next "
                "page's cursor in the `X-Next-Cursor` header (absent on the last page).",
                {200: list[SessionListRow]},
                params=(
                    Param("limit", "count", "At most this many sessions."),
                    Param(
                        "before",
                        "string",
                        "The X-Next-Cursor of the previous page: the sessions after it.",
                    ),
                ),
                reply_headers={
                    "X-Next-Cursor": "The `before` of the next page; absent on the last page."
                },
            ),
            "POST": Operation(
                "Create a session from a template (a docker-agent session object is accepted).",
                {200: Session},
                accepts=SessionTemplate,
                body_optional=True,
            ),
        },
    ),
    # Before the {session_id} routes, so "import" and "batch" are never taken for ids.
    Route(
        "/api/sessions/import",
        h.ImportHandler,
        {
            "POST": Operation(
                "Recreate a session from an exported notebook or recovery JSON.",
                {201: Session},
                accepts=ImportBody,
            )
        },
    ),
    Route(
        "/api/sessions/batch/delete",
        h.BatchDeleteHandler,
        {"POST": Operation("Delete several sessions.", {200: BatchDeleteReply}, body=BatchRequest)},
    ),
    Route(
        "/api/sessions/batch/export",
        h.BatchExportHandler,
        {
            "POST": Operation(
                "Export several sessions as recovery JSON.",
                {200: BatchExportReply},
                errors=(404,),
                body=BatchRequest,
            )
        },
    ),
    Route(
        _SESSION,
        h.SessionHandler,
        {
            "GET": Operation(
                "docker-agent's SessionResponse: the messages as one flat list (the item "
                "tree is at /recovery).",
                {200: SessionResponse},
                errors=(404,),
            ),
            "DELETE": Operation(
                "Delete the session, cancel its turn and end its event log.",
                {200: MessageReply, 202: MessageReply},
                errors=(404,),
                params=(
                    Param("wait", "boolean", "Wait for the turn to stop (202 if it has not)."),
                    Param("timeout", "duration", f"Default 10s. {_TIMEOUT}"),
                ),
            ),
        },
    ),
    Route(
        f"{_SESSION}/status",
        h.SessionStatusHandler,
        {
            "GET": Operation(
                "Live state of the session.",
                {200: SessionStatus},
                errors=(404, 503),
                params=(Param("wait", "duration", f"Wait until it has a runtime. {_TIMEOUT}"),),
            )
        },
    ),
    Route(
        f"{_SESSION}/snapshot",
        h.SnapshotHandler,
        {
            "GET": Operation(
                "Stored and live state, with the last event seq to tail /events from.",
                {200: SessionSnapshot},
                errors=(404,),
            )
        },
    ),
    *(
        Route(
            path,
            h.RunHandler,
            {
                "POST": Operation(
                    "Run a turn and stream its events (a bare array of messages is accepted).",
                    {200: Event},
                    errors=(404, 409, 422, 502),
                    body=RunRequest,
                    accepts=RunRequest | Messages,
                    params=(
                        Param("detach", "boolean", "Keep the turn running if this stream closes."),
                    ),
                    reply_headers={
                        h.START_SEQ_HEADER: "The session's last event seq before this turn: every "
                        "event of the turn has a larger one, so a client whose stream drops "
                        "early resumes `/events?since=` this value."
                    },
                    media=_SSE,
                )
            },
        )
        for path in (_RUN, f"{_RUN}/{{agent_name}}")
    ),
    Route(
        f"{_SESSION}/cancel",
        h.CancelHandler,
        {"POST": Operation("Stop the running turn.", {200: MessageReply}, errors=(404,))},
    ),
    Route(
        f"{_SESSION}/resume",
        h.ResumeHandler,
        {
            "POST": Operation(
                "Answer the pending tool-call confirmation.",
                {200: MessageReply},
                errors=(404, 409),
                body=ResumeRequest,
            )
        },
    ),
    Route(
        f"{_SESSION}/elicitation",
        h.ElicitationHandler,
        {
            "POST": Operation(
                "Answer the pending elicitation request.",
                {200: MessageReply},
                errors=(404, 409),
                body=ElicitationRequest,
            )
        },
    ),
    Route(
        f"{_SESSION}/steer",
        h.SteerHandler,
        {
            "POST": Operation(
                "Queue messages for the running turn, before its next model call.",
                {202: StatusReply},
                errors=(404, 429),
                body=MessagesRequest,
            )
        },
    ),
    Route(
        f"{_SESSION}/followup",
        h.FollowUpHandler,
        {
            "POST": Operation(
                "Queue messages for a turn each after the current one.",
                {202: FollowUpReply},
                errors=(404, 409, 429),
                body=MessagesRequest,
                params=(
                    Param(
                        "Idempotency-Key",
                        "key",
                        "The same key twice for a session is delivered once.",
                        "header",
                    ),
                ),
            )
        },
    ),
    Route(
        f"{_SESSION}/events",
        h.EventsHandler,
        {
            "GET": Operation(
                "The session's event stream: replay after a resume point, then tail.",
                {200: Event},
                errors=(404,),
                params=(
                    Param("since", "integer", "Replay after this seq (wins over the header)."),
                    Param("Last-Event-ID", "integer", "The last seq the client saw.", "header"),
                ),
                media=_SSE,
            )
        },
    ),
    Route(
        f"{_SESSION}/models",
        h.ModelsHandler,
        {
            "GET": Operation(
                "Model choices for the session's current agent.",
                {200: SessionModels},
                errors=(404, 422),
            )
        },
    ),
    Route(
        f"{_SESSION}/queue",
        h.QueueHandler,
        {"GET": Operation("Steer and follow-up queue depths.", {200: QueueStatus}, errors=(404,))},
    ),
    Route(
        f"{_SESSION}/title",
        h.TitleHandler,
        {"PATCH": Operation("Rename.", {200: TitleReply}, errors=(404, 409), body=TitleRequest)},
    ),
    Route(
        f"{_SESSION}/permissions",
        h.PermissionsHandler,
        {
            "PATCH": Operation(
                "Replace the session's tool permissions.",
                {200: MessageReply},
                errors=(404, 409),
                body=PermissionsRequest,
            )
        },
    ),
    Route(
        f"{_SESSION}/tokens",
        h.TokensHandler,
        {
            "PATCH": Operation(
                "Set the session's usage.",
                {200: StatusReply},
                errors=(404, 409),
                body=TokensRequest,
            )
        },
    ),
    Route(
        f"{_SESSION}/starred",
        h.StarredHandler,
        {
            "PATCH": Operation(
                "Star or unstar.", {200: StatusReply}, errors=(404, 409), body=StarredRequest
            )
        },
    ),
    Route(
        f"{_SESSION}/tools/toggle",
        h.ToolsToggleHandler,
        {"POST": Operation("Flip tools_approved.", {200: ToolsApprovalReply}, errors=(404, 409))},
    ),
    Route(
        f"{_SESSION}/messages",
        h.MessagesHandler,
        {
            "POST": Operation(
                "Append a message (refused while a turn runs).",
                {201: AddedReply},
                errors=(404, 409),
                body=MessageRequest,
            )
        },
    ),
    Route(
        f"{_SESSION}/messages/{{msg_id}}",
        h.MessageHandler,
        {
            "PATCH": Operation(
                "Replace one message (refused while a turn runs).",
                {200: StatusReply},
                errors=(404, 409),
                body=MessageRequest,
            )
        },
    ),
    Route(
        f"{_SESSION}/summaries",
        h.SummariesHandler,
        {
            "POST": Operation(
                "Append a summary item.",
                {201: StatusReply},
                errors=(404, 409),
                body=SummaryRequest,
            )
        },
    ),
    Route(
        f"{_SESSION}/fork",
        h.ForkHandler,
        {
            "POST": Operation(
                "A new session with the history before a user message.",
                {200: Session},
                errors=(404,),
                body=ForkRequest,
            )
        },
    ),
    Route(
        f"{_SESSION}/recovery",
        h.RecoveryHandler,
        {"GET": Operation("Every stored field, for import.", {200: dict[str, Any]}, errors=(404,))},
    ),
    Route(
        f"{_SESSION}/notebook",
        h.NotebookHandler,
        {
            "GET": Operation(
                "The session as an .ipynb download.",
                {200: dict[str, Any]},
                errors=(404,),
                media="application/x-ipynb+json",
            )
        },
    ),
)

FALLBACK = Route("", h.NotFoundHandler)
"""Registered last for any other path under the prefix: a JSON 404, after authentication."""


def tornado_handlers() -> list[tuple[str, type[RequestHandler], dict[str, Any]]]:
    """The rules for ``ExtensionApp.handlers`` (it prepends the server's ``base_url``)."""
    rules = [(route.pattern, route.handler, {"route": route}) for route in ROUTES]
    return [*rules, (f"/{PREFIX}(?:/.*)?", FALLBACK.handler, {"route": FALLBACK})]
