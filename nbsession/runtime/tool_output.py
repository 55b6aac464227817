"""A running tool's output, passed on as ``tool_call_output`` events at a bounded pace.

A command may print thousands of short lines a second; one event per read would flood every
client's stream and the event log's replay buffer. The relay gathers what comes and sends it
at most once per ``interval`` (the first piece at once, so a slow command's lines show
promptly), each event at most ``max_event`` characters, and stops after ``limit`` characters
for the call with one note saying so: the result carries the output the model reads anyway.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

INTERVAL = 0.1  # seconds between two events of one call
MAX_EVENT = 16 * 1024  # characters per event
LIMIT = 256 * 1024  # characters streamed per call
CUT = "\n[streamed output stops here; the tool's result holds what it keeps]\n"


class OutputRelay:
    """Collects a call's output pieces and hands them to ``emit`` in bounded batches.

    Lives on the event loop's thread (tools call ``write`` from coroutines); ``close`` sends
    what is still held and must run before the call's ``tool_call_response``.
    """

    def __init__(
        self,
        emit: Callable[[str], None],
        *,
        interval: float = INTERVAL,
        max_event: int = MAX_EVENT,
        limit: int = LIMIT,
    ) -> None:
        self._emit = emit
        self._interval = interval
        self._max_event = max_event
        self._room = limit
        self._held: list[str] = []
        self._last = -interval  # loop time of the last send: the first piece goes at once
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    def write(self, text: str) -> None:
        """Take a piece of output; it is sent now, or with the next batch."""
        if self._closed or self._room <= 0 or not text:
            return
        if len(text) >= self._room:
            text = text[: self._room] + CUT
            self._room = 0
        else:
            self._room -= len(text)
        self._held.append(text)
        if self._timer is not None:
            return
        loop = asyncio.get_running_loop()
        wait = self._last + self._interval - loop.time()
        if wait <= 0:
            self._send()
        else:
            self._timer = loop.call_later(wait, self._send)

    def close(self) -> None:
        """Send what is held and take nothing more."""
        self._send()
        self._closed = True

    def _send(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._held:
            return
        text = "".join(self._held)
        self._held.clear()
        self._last = asyncio.get_running_loop().time()
        for start in range(0, len(text), self._max_event):
            self._emit(text[start : start + self._max_event])
