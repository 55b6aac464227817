"""What the SDK hands back: events, turn results and the summaries of lists.

Plain dataclasses built from the JSON the server sends (SPEC 4), the same for both transports.
``TurnBuilder`` folds a turn's events into a ``TurnResult``; it is the one place that knows
which event means what for a turn.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Event:
    """One event of a session's stream: its ``seq`` (None for ``gap``), ``type`` and JSON.

    ``event["content"]`` reads a field. A ``gap`` event carries the ``snapshot`` the stream
    re-read to resync (SPEC 3): events up to its ``last_event_seq`` are in that snapshot.
    """

    seq: int | None
    type: str
    data: Mapping[str, Any]
    snapshot: Mapping[str, Any] | None = None

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    @classmethod
    def parse(cls, seq: int | None, payload: bytes | str) -> Event:
        data = json.loads(payload)
        return cls(seq, data.get("type", ""), data)


@dataclass(frozen=True)
class SessionInfo:
    """A row of ``client.sessions()``: what a session list shows, read without messages."""

    id: str
    title: str
    created_at: str
    num_messages: int
    input_tokens: int
    output_tokens: int
    working_dir: str
    starred: bool

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SessionInfo:
        return cls(
            id=data["id"],
            title=data.get("title", ""),
            created_at=str(data.get("created_at", "")),
            num_messages=int(data.get("num_messages", len(data.get("messages") or []))),
            input_tokens=int(data.get("input_tokens", 0)),
            output_tokens=int(data.get("output_tokens", 0)),
            working_dir=data.get("working_dir", ""),
            starred=bool(data.get("starred", False)),
        )


class SessionPage(list[SessionInfo]):
    """A page of ``client.sessions()``: a list, plus the cursor of the next (older) page.

    ``client.sessions(limit=20, before=page.next_cursor)`` reads the next one; ``next_cursor``
    is None on the last page.
    """

    def __init__(self, rows: list[SessionInfo], next_cursor: str | None) -> None:
        super().__init__(rows)
        self.next_cursor = next_cursor


@dataclass(frozen=True)
class AgentInfo:
    """An agent source the server offers (``client.agents()``)."""

    name: str
    description: str
    multi: bool
    commands: list[str]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AgentInfo:
        commands = data.get("commands") or []
        if isinstance(commands, Mapping):
            commands = list(commands)
        return cls(
            name=data["name"],
            description=data.get("description", ""),
            multi=bool(data.get("multi", False)),
            commands=[c if isinstance(c, str) else str(c.get("name", c)) for c in commands],
        )


@dataclass(frozen=True)
class FollowUp:
    """The answer to ``session.follow_up()``: ``queued_streaming``, ``queued_idle`` or
    ``duplicate`` (an ``idempotency_key`` already delivered)."""

    status: str
    duplicate: bool


@dataclass(frozen=True)
class Usage:
    """Usage as the turn's last ``token_usage`` event reports it: the session's totals after
    the turn (as docker-agent reports them) and the size of the last model call."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    context_length: int = 0
    context_limit: int = 0

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Usage:
        return cls(
            input_tokens=int(data.get("input_tokens", 0)),
            output_tokens=int(data.get("output_tokens", 0)),
            cost=float(data.get("cost", 0.0) or 0.0),
            context_length=int(data.get("context_length", 0)),
            context_limit=int(data.get("context_limit", 0)),
        )


@dataclass
class ToolCallResult:
    """A tool call of the turn: what the model asked for and what came back.

    ``output`` is None while the call has no result (the turn was cut short).
    """

    id: str
    name: str
    arguments: Any
    """The parsed JSON arguments (the raw string when they are not JSON)."""
    needed_approval: bool = False
    output: str | None = None
    is_error: bool = False


@dataclass(frozen=True, eq=False)
class Pending:
    """What a paused turn waits for: a tool approval or an elicitation answer (each request
    is its own object: compared by identity)."""

    kind: str  # "approval" | "elicitation"
    session_id: str
    tool: str = ""
    arguments: Any = None
    tool_call_id: str = ""
    message: str = ""
    schema: Mapping[str, Any] | None = None
    elicitation_id: str = ""


@dataclass
class TurnResult:
    """One turn as it ended. ``str(result)`` is the final answer.

    ``stop_reason`` is the ``stream_stopped`` reason (``normal``, ``error``, ``canceled``),
    ``session_exited`` when the session was deleted under the turn, or ``unknown`` when a
    ``gap`` hid the turn's end: its text and tool calls were then read from the stored messages.
    ``events`` are every event of the turn that was received, in order.
    """

    session_id: str
    text: str = ""
    """The assistant's last message (what it said after its last tool call)."""
    reasoning: str = ""
    tool_calls: list[ToolCallResult] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    stop_reason: str = ""
    error: str | None = None
    error_code: str | None = None
    """The ``error`` event's code, when it has one (``rate_limited``, ``model_error``...)."""
    title: str | None = None
    """The title generated during this turn, if one was."""
    events: list[Event] = field(default_factory=list)
    gap: bool = False
    """Some of the turn's events were lost to a ``gap`` (the text may be incomplete)."""

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        # Short: a cell's value (``%%agent``, a bare ``session.run(...)``) shows this line.
        text = self.text if len(self.text) <= 60 else self.text[:59] + "…"
        return (
            f"<TurnResult {self.stop_reason or 'running'} session={self.session_id} "
            f"text={text!r} tool_calls={len(self.tool_calls)}>"
        )

    @property
    def ok(self) -> bool:
        return self.stop_reason == "normal" and self.error is None

    @property
    def first_seq(self) -> int | None:
        return next((e.seq for e in self.events if e.seq is not None), None)

    @property
    def last_seq(self) -> int | None:
        return next((e.seq for e in reversed(self.events) if e.seq is not None), None)


def _chat(wire: Mapping[str, Any]) -> Mapping[str, Any]:
    """The chat message of a flat ``messages`` row (``{agentName, message}``)."""
    message = wire.get("message")
    return message if isinstance(message, Mapping) else {}


def _arguments(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw) if raw.strip() else {}
        except ValueError:
            return raw
    return raw


_NOT_AN_ANSWER = frozenset(
    {
        "tool_call_confirmation",
        "elicitation_request",
        "token_usage",
        "partial_tool_call",
        "session_title",
    }
)
"""Events that may come while a turn waits without meaning that its question was answered."""


class TurnBuilder:
    """Folds one turn's events into a ``TurnResult``; ``feed`` says when the turn is over.

    The turn ends at its ``stream_stopped`` (or at ``session_exited``). ``pending`` is what the
    turn waits for now: set by a confirmation or an elicitation request, cleared by whatever
    shows it was answered (the call's result, any later model output, the turn's end).
    """

    def __init__(self, session_id: str) -> None:
        self.result = TurnResult(session_id)
        self.pending: Pending | None = None
        self.done = False
        self._calls: dict[str, ToolCallResult] = {}
        self._text: list[str] = []
        self._reasoning: list[str] = []

    def feed(self, event: Event) -> bool:
        """Take one event; True once the turn has ended."""
        if self.done:
            return True
        result = self.result
        result.events.append(event)
        kind = event.type
        if self.pending is not None and kind not in _NOT_AN_ANSWER:
            self.pending = None
        if kind == "agent_choice":
            self._text.append(event.get("content", ""))
        elif kind == "agent_choice_reasoning":
            self._reasoning.append(event.get("content", ""))
        elif kind in ("tool_call", "tool_call_confirmation"):
            call = self._call(event)
            if kind == "tool_call_confirmation":
                call.needed_approval = True
                self.pending = Pending(
                    "approval",
                    result.session_id,
                    tool=call.name,
                    arguments=call.arguments,
                    tool_call_id=call.id,
                )
            self._end_message()
        elif kind == "tool_call_response":
            call = self._call(event)
            outcome = event.get("result") or {}
            call.output = outcome.get("output", event.get("response", ""))
            call.is_error = bool(outcome.get("isError", outcome.get("is_error", False)))
        elif kind == "elicitation_request":
            self.pending = Pending(
                "elicitation",
                result.session_id,
                message=event.get("message", ""),
                schema=event.get("schema"),
                elicitation_id=event.get("elicitation_id", ""),
            )
        elif kind == "token_usage":
            result.usage = Usage.from_json(event.get("usage") or {})
        elif kind == "session_title":
            result.title = event.get("title")
        elif kind == "error":
            result.error = str(event.get("error", ""))
            result.error_code = event.get("code") or None
        elif kind == "gap":
            result.gap = True
        elif kind in ("stream_stopped", "session_exited"):
            result.stop_reason = event.get("reason", "") if kind == "stream_stopped" else kind
            self._finish()
        return self.done

    def finish_from_store(self, snapshot: Mapping[str, Any], later_turn: bool = False) -> None:
        """End the turn from a snapshot's stored messages, when a ``gap`` hid its own end.

        The turn's messages are those after the last user message; with ``later_turn`` (the
        session already runs another turn) that newer turn's user message, the last one, and
        what follows it are left out first. The stop reason is ``unknown``: the events that
        told it are lost, only what the store kept remains.
        """
        if self.done:
            return
        messages = [m for m in snapshot.get("messages") or [] if not m.get("implicit")]
        users = [i for i, m in enumerate(messages) if _chat(m).get("role") == "user"]
        if later_turn and users:
            messages = messages[: users.pop()]
        text, reasoning = "", []
        for wire in messages[users[-1] + 1 if users else 0 :]:
            message = _chat(wire)
            if message.get("role") == "assistant":
                if message.get("reasoning_content"):
                    reasoning.append(message["reasoning_content"])
                calls = message.get("tool_calls") or []
                for raw in calls:
                    self._call_of(raw)
                text = "" if calls else message.get("content") or ""
            elif message.get("role") == "tool":
                call = self._calls.get(message.get("tool_call_id") or "")
                if call is not None:
                    call.output = message.get("content") or ""
                    call.is_error = bool(message.get("is_error"))
                    call.needed_approval = call.needed_approval or bool(message.get("approval"))
        result = self.result
        usage = result.usage
        result.usage = Usage(
            input_tokens=int(snapshot.get("input_tokens", usage.input_tokens)),
            output_tokens=int(snapshot.get("output_tokens", usage.output_tokens)),
            cost=float(snapshot.get("cost", usage.cost) or 0.0),
            context_length=usage.context_length,
            context_limit=usage.context_limit,
        )
        result.gap = True
        result.stop_reason = "unknown"
        self.done = True
        self.pending = None
        result.text = text
        result.reasoning = "".join(reasoning)

    def _call(self, event: Event) -> ToolCallResult:
        raw = event.get("tool_call") or {}
        if raw.get("id"):
            return self._call_of(raw)
        return self._call_of({**raw, "id": event.get("tool_call_id", "")})

    def _call_of(self, raw: Mapping[str, Any]) -> ToolCallResult:
        """The turn's call with ``raw``'s id (a wire ``tool_call``), added on first sight."""
        call_id = raw.get("id") or ""
        call = self._calls.get(call_id)
        if call is None:
            function = raw.get("function") or {}
            call = ToolCallResult(
                call_id, function.get("name", ""), _arguments(function.get("arguments", ""))
            )
            self._calls[call_id] = call
            self.result.tool_calls.append(call)
        return call

    def _end_message(self) -> None:
        """A tool call closes the assistant message before it: the final text comes later."""
        if self._text:
            self._text.clear()

    def _finish(self) -> None:
        self.done = True
        self.pending = None
        self.result.text = "".join(self._text)
        self.result.reasoning = "".join(self._reasoning)


@dataclass(frozen=True)
class FileOutcome:
    """One file of a batch: the session it holds (or came from), or why it failed."""

    path: str
    session_id: str | None
    error: str | None = None
    """``"<ErrorClass>: <message>"`` when this file failed; None when it worked."""


@dataclass(frozen=True)
class BatchReport:
    """What ``client.export_all()`` or ``client.import_folder()`` did, file by file.

    A failed file does not stop the batch: it is listed in ``failed`` with its reason, and
    the other files are still done.
    """

    action: str
    folder: str
    outcomes: tuple[FileOutcome, ...]

    @property
    def succeeded(self) -> list[FileOutcome]:
        return [outcome for outcome in self.outcomes if outcome.error is None]

    @property
    def failed(self) -> list[FileOutcome]:
        return [outcome for outcome in self.outcomes if outcome.error is not None]

    def __str__(self) -> str:
        count = len(self.succeeded)
        line = f"{self.action} {count} session{'s' if count != 1 else ''} ({self.folder})"
        if not self.failed:
            return line
        reasons = [f"  {outcome.path}: {outcome.error}" for outcome in self.failed]
        return "\n".join([f"{line}; {len(self.failed)} failed:", *reasons])
