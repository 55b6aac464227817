"""Streamed text deltas, merged before they enter a session's event log.

A model streams its answer in pieces of a few bytes, and one event per piece costs an envelope
of ~170 bytes (type, agent, timestamp, session id) on every stream, in the log's capacity, and
in every client's parsing: a 10,000-piece answer would cost ~25 times its text. A
:class:`DeltaCoalescer` sends ``agent_choice`` and ``agent_choice_reasoning`` pieces as they
come while the stream is quiet, and merges those that follow within ``interval`` seconds into
one event of the same type with their joined text. Clients (docker-agent's among them) see the
same event shapes with larger deltas; the text and the order of events are unchanged, because
whatever is held goes out before any other event, when it reaches ``max_chars``, and at the
latest ``interval`` seconds after the last one sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from ..eventlog import EventLog, LogClosed, LogEntry

DELTA_TYPES = frozenset({"agent_choice", "agent_choice_reasoning"})
"""Event types whose ``content`` is a piece of streamed text, merged by concatenation."""

DEFAULT_INTERVAL = 0.05
"""Seconds: at most ~20 delta events a second per session, well under what a reader notices."""

DEFAULT_MAX_CHARS = 8192
"""Held text that goes out at once whatever the interval (an envelope is then ~2 % of it)."""


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

    def emit(self, event: Mapping[str, Any]) -> LogEntry | None:
        """Append ``event`` after the text held so far; None once the log is closed."""
        self.flush()
        return self._append(event)

    def delta(self, event: dict[str, Any]) -> None:
        """Send a text delta now, or hold it to go out merged with the ones that follow."""
        if self.interval <= 0:
            self._append(event)
            return
        held = self._held
        if held is not None and (
            held["type"] != event["type"] or held.get("agent_name") != event.get("agent_name")
        ):
            self.flush()
            held = None
        if held is None:
            self._held = event
        content: str = event["content"]
        self._parts.append(content)
        self._chars += len(content)
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
        self._append({**held, "content": "".join(parts)} if len(parts) > 1 else held)

    def _append(self, event: Mapping[str, Any]) -> LogEntry | None:
        try:
            return self.log.append(event)
        except LogClosed:
            return None
