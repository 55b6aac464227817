"""Streamed deltas, merged before they enter a session's event log.

A model streams its answer, and a tool call's arguments, in pieces of a few bytes, and one
event per piece costs an envelope of ~170 bytes (type, agent, timestamp, session id) on every
stream, in the log's capacity, and in every client's parsing: a 10,000-piece answer would cost
~25 times its text. A :class:`DeltaCoalescer` sends ``agent_choice``, ``agent_choice_reasoning``
and ``partial_tool_call`` pieces as they come while the stream is quiet, and merges those that
follow within ``interval`` seconds into one event of the same type with their joined text.
Clients (docker-agent's among them) see the same event shapes with larger deltas; the text and
the order of events are unchanged, because whatever is held goes out before any other event,
when it reaches ``max_chars``, and at the latest ``interval`` seconds after the last one sent.

A ``partial_tool_call`` carries only the new bytes of the call's arguments (docker-agent's
wire since its PR #2105: ``tool_call.function.arguments`` is the delta, ``tool_definition``
comes with the call's first piece only); clients append the pieces of one call id. The
coalescer also keeps, for each call the log has streamed whose model response is not stored
yet, its arguments so far (:meth:`DeltaCoalescer.partial_calls`): a snapshot hands them to a
client that joins mid-call, which then appends the pieces after the snapshot's seq.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..eventlog import EventLog, LogClosed, LogEntry

DELTA_TYPES = frozenset({"agent_choice", "agent_choice_reasoning", "partial_tool_call"})
"""Event types that are a piece of something streamed, merged by concatenating the pieces."""

STORED = frozenset({"token_usage", "stream_stopped", "session_exited"})
"""Events after which the log's streamed calls are in the store (or never will be)."""

DEFAULT_INTERVAL = 0.05
"""Seconds: at most ~20 delta events a second per session, well under what a reader notices."""

DEFAULT_MAX_CHARS = 8192
"""Held text that goes out at once whatever the interval (an envelope is then ~2 % of it)."""


def _piece(event: Mapping[str, Any]) -> str:
    """The streamed text an event carries (a call's arguments piece, or a text delta)."""
    if event["type"] == "partial_tool_call":
        return event["tool_call"]["function"]["arguments"]
    return event["content"]


def _key(event: Mapping[str, Any]) -> tuple[Any, ...]:
    """Pieces with one key merge: same type and agent, and for arguments the same call."""
    call = event["tool_call"]["id"] if event["type"] == "partial_tool_call" else None
    return event["type"], event.get("agent_name"), call


def _with_piece(event: Mapping[str, Any], text: str) -> dict[str, Any]:
    """A copy of ``event`` carrying ``text`` as its piece."""
    if event["type"] != "partial_tool_call":
        return {**event, "content": text}
    call = event["tool_call"]
    return {**event, "tool_call": {**call, "function": {**call["function"], "arguments": text}}}


@dataclass
class _StreamedCall:
    first: Mapping[str, Any]  # the call's first partial_tool_call (it has the definition)
    pieces: list[str] = field(default_factory=list)


class DeltaCoalescer:
    """The way events enter one session's log: deltas merged, everything else as it comes.

    Runs on the log's event loop thread, like the log itself. ``interval <= 0`` turns merging
    off (one event per delta).
    """

    def __init__(
        self,
        log: EventLog,
        interval: float = DEFAULT_INTERVAL,
        max_chars: int = DEFAULT_MAX_CHARS,
    ) -> None:
        self.log = log
        self.interval = interval
        self.max_chars = max_chars
        self._held: dict[str, Any] | None = None  # the first held delta: type, agent, timestamp
        self._parts: list[str] = []
        self._chars = 0
        self._last_sent = float("-inf")  # loop time of the last delta event appended
        self._timer: asyncio.TimerHandle | None = None
        self._calls: dict[str, _StreamedCall] = {}

    def emit(self, event: Mapping[str, Any]) -> LogEntry | None:
        """Append ``event`` after the text held so far; None once the log is closed."""
        self.flush()
        return self._append(event)

    def delta(self, event: dict[str, Any]) -> None:
        """Send a delta now, or hold it to go out merged with the ones that follow."""
        if self.interval <= 0:
            self._append(event)
            return
        held = self._held
        if held is not None and _key(held) != _key(event):
            self.flush()
            held = None
        if held is None:
            self._held = event
        piece = _piece(event)
        self._parts.append(piece)
        self._chars += len(piece)
        loop = asyncio.get_running_loop()
        due = self._last_sent + self.interval
        if self._chars >= self.max_chars or loop.time() >= due:
            self.flush()
        elif self._timer is None:
            self._timer = loop.call_at(due, self.flush)

    def flush(self) -> None:
        """Append the held text as one event (nothing when none is held)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        held, parts = self._held, self._parts
        if held is None:
            return
        self._held, self._parts, self._chars = None, [], 0
        self._last_sent = asyncio.get_running_loop().time()
        self._append(_with_piece(held, "".join(parts)) if len(parts) > 1 else held)

    def partial_calls(self) -> list[dict[str, Any]]:
        """The calls whose arguments the log has streamed and the store does not hold yet,
        each as one ``partial_tool_call`` event with all its arguments so far (the held piece
        not included: it has no seq yet)."""
        return [_with_piece(call.first, "".join(call.pieces)) for call in self._calls.values()]

    def _append(self, event: Mapping[str, Any]) -> LogEntry | None:
        try:
            entry = self.log.append(event)
        except LogClosed:
            return None
        kind = event["type"]
        if kind == "partial_tool_call":
            call_id = event["tool_call"]["id"]
            streamed = self._calls.get(call_id)
            if streamed is None:
                streamed = self._calls[call_id] = _StreamedCall(event)
            streamed.pieces.append(_piece(event))
        elif kind in STORED:
            self._calls.clear()
        return entry
