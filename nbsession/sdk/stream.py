"""A session's event stream that survives drops: every event once, in order (SPEC 3).

``EventStream`` reads batches from a transport's ``EventSource``. When the connection breaks
(or ends without ``session_exited``, which is a drop too) it reconnects with the last seq it
delivered (``Last-Event-ID``) and skips anything at or below it. On ``gap`` it re-reads the
snapshot, hands the caller a ``gap`` event carrying it, and goes on after the snapshot's
``last_event_seq``. It ends after ``session_exited``.

A turn's reader also asks for ``resync``: after each reconnect it re-reads the snapshot and
hands it over first in a ``resync`` event (no seq), so the reader can tell that the session went
idle while it was away (a server restart, say) rather than wait for an end that never comes.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

from .errors import ConnectionFailed
from .results import Event
from .transport import EventSource, StreamDropped, Transport

RECONNECT_TIMEOUT = 30.0
"""How long a broken stream keeps trying to reconnect before ``ConnectionFailed``."""
_BACKOFF = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)


class EventStream:
    """``async for event in stream``; ``next_batch()`` gives whatever is ready at once."""

    def __init__(
        self,
        transport: Transport,
        session_id: str,
        since: int | None = None,
        *,
        opener: Callable[[], Awaitable[EventSource]] | None = None,
        reconnect_timeout: float = RECONNECT_TIMEOUT,
        resync: bool = False,
    ) -> None:
        """``opener`` opens the first source (a run stream); reconnects always use /events.
        With ``resync``, each reconnect hands over a ``resync`` event carrying the snapshot."""
        self._transport = transport
        self._session_id = session_id
        self.last_seq = since
        """The seq of the last event delivered (the resume point)."""
        self._opener = opener
        self._source: EventSource | None = None
        self._ready: deque[Event] = deque()
        self._ended = False
        self._closed = False
        self._opened = False
        self._reconnect_timeout = reconnect_timeout
        self._resync = resync
        self._resync_due = False
        self.reconnects = 0
        """How many times the stream was re-opened after a drop."""

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Event:
        if not self._ready:
            self._ready.extend(await self.next_batch())
            if not self._ready:
                raise StopAsyncIteration
        return self._ready.popleft()

    async def next_batch(self) -> list[Event]:
        """The next events, at least one; empty once the stream has ended (or was closed)."""
        if self._ready:
            batch = list(self._ready)
            self._ready.clear()
            return batch
        while not (self._ended or self._closed):
            source = await self._connected()
            if self._resync_due:  # read after the new subscription began: nothing falls between
                self._resync_due = False
                snapshot = await self._transport.snapshot(self._session_id)
                return [Event(None, "resync", {"type": "resync"}, snapshot)]
            try:
                raw = await source.read_batch()
            except StreamDropped:
                raw = None
            if raw is None:  # ended without session_exited: a drop, resume after last_seq
                await self._drop()
                continue
            batch = await self._accept(raw)
            if batch:
                return batch
        return []

    async def _accept(self, raw: list[Event]) -> list[Event]:
        batch = []
        last = self.last_seq
        for event in raw:
            seq = event.seq
            if seq is None:
                if event.type == "gap":
                    snapshot = await self._transport.snapshot(self._session_id)
                    last = int(snapshot.get("last_event_seq", 0))
                    batch.append(Event(None, "gap", event.data, snapshot))
                else:
                    batch.append(event)
                continue
            if last is not None and seq <= last:
                continue  # replayed after a reconnect, or already in the gap's snapshot
            last = seq
            batch.append(event)
            if event.type == "session_exited":
                self._ended = True
                break
        self.last_seq = last
        if self._ended:
            await self._close_source()
        return batch

    async def _connected(self) -> EventSource:
        if self._source is not None:
            return self._source
        deadline = time.monotonic() + self._reconnect_timeout
        attempt = 0
        while True:
            try:
                if self._opener is not None:
                    opener, self._opener = self._opener, None
                    self._source = await opener()
                else:
                    self._source = await self._transport.events(self._session_id, self.last_seq)
                self._opened = True
                return self._source
            except ConnectionFailed:
                if not self._opened or time.monotonic() >= deadline:
                    # Never connected: say so now. Connected before: the server may be
                    # restarting, so retry until the deadline.
                    raise
            await asyncio.sleep(_BACKOFF[min(attempt, len(_BACKOFF) - 1)])
            attempt += 1

    async def _drop(self) -> None:
        await self._close_source()
        self.reconnects += 1
        self._resync_due = self._resync

    async def _close_source(self) -> None:
        source, self._source = self._source, None
        if source is not None:
            await source.aclose()

    async def aclose(self) -> None:
        """Stop reading and close the connection (the session and its turn go on)."""
        self._closed = True
        await self._close_source()
