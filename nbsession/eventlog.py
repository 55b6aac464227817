"""Per-session event log: sequenced events, replay from a resume point, live tailing (SPEC 3).

A log numbers a session's events from 1 and keeps the newest ``capacity`` of them, so a client
that reconnects with ``Last-Event-ID`` gets exactly the events it missed, or an explicit ``gap``
when they are gone. The producer (the runtime pumping a turn) never waits for a reader: a reader
that falls too far behind (a full buffer of events, or ``max_unread_bytes`` of them appended
while it was not reading) is dropped and must resume from its last seq.

``EventLog`` and ``EventSubscription`` are the interface the manager and the HTTP layer are
written against; ``RingEventLog`` is the in-process implementation. A shared stream (Redis
Streams, say) can implement the same protocols when several server processes share sessions.

Threading: everything here runs on ONE asyncio event loop thread. ``append`` and ``close`` must
be called on that thread (from another thread, go through ``loop.call_soon_threadsafe``); that
single-thread rule is why there are no locks, and why a subscriber can never observe a half-done
append.
"""

from __future__ import annotations

import asyncio
import json
import sys
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from .session import rfc3339, utc_now

__all__ = [
    "GAP",
    "EventLog",
    "EventSubscription",
    "LogClosed",
    "LogEntry",
    "RingEventLog",
    "SubscriberDropped",
    "Subscription",
]


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One sequenced event, serialised once at append, SSE frame included, so every
    subscriber shares the same bytes and a fan-out to many clients formats nothing."""

    seq: int | None
    """The event's position in the log; ``None`` only for the per-connection ``GAP`` marker."""
    type: str
    """The event's ``type``, kept apart so transports can branch without parsing ``data``."""
    data: bytes
    """The event as compact UTF-8 JSON."""
    _frame: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # The gap marker has no ``id`` line so it never becomes a resume point.
        if self.seq is None:
            framed = b"data: %b\n\n" % self.data
        else:
            framed = b"id: %d\ndata: %b\n\n" % (self.seq, self.data)
        object.__setattr__(self, "_frame", framed)

    def frame(self) -> bytes:
        """The SSE frame (``id:``, ``data:``, a blank line), built once with the entry."""
        return self._frame


GAP = LogEntry(None, "gap", b'{"type":"gap"}')
"""Sent first when the resume point is not in the buffer: the client must re-read the snapshot."""


class SubscriberDropped(Exception):
    """The subscriber fell too far behind; it must resume with its last seq."""

    def __init__(self, last_seq: int) -> None:
        super().__init__(f"Subscriber fell too far behind; resume after seq {last_seq}.")
        self.last_seq = last_seq


class LogClosed(Exception):
    """append() on a closed log: the session has exited and its stream is final."""


class EventSubscription(Protocol):
    """A reader's cursor into an event log; ``async for`` yields each entry exactly once."""

    @property
    def last_seq_delivered(self) -> int: ...

    @property
    def dropped(self) -> bool: ...

    def pending(self) -> int: ...

    def take_ready(self) -> list[LogEntry]: ...

    async def wait_dropped(self) -> None: ...

    def close(self) -> None: ...

    async def aclose(self) -> None: ...

    def __aiter__(self) -> EventSubscription: ...

    async def __anext__(self) -> LogEntry: ...


class EventLog(Protocol):
    """What the manager and the transports need from a session's event log (SPEC 3)."""

    @property
    def capacity(self) -> int: ...

    @property
    def last_seq(self) -> int: ...

    @property
    def first_seq(self) -> int: ...

    @property
    def closed(self) -> bool: ...

    @property
    def subscriber_count(self) -> int: ...

    def append(self, event: Mapping[str, Any]) -> LogEntry: ...

    def close(self, reason: str) -> LogEntry | None: ...

    def subscribe(self, since: int | None = None) -> EventSubscription: ...

    def entries_after(self, since: int) -> list[LogEntry]: ...


def _json_default(value: object) -> str:
    """Events carry ``datetime`` timestamps; anything else unknown is a bug in the producer."""
    if isinstance(value, datetime):
        return rfc3339(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


class RingEventLog:
    """An in-process event log: a fixed ring of the newest ``capacity`` entries.

    Entry ``seq`` lives at slot ``(seq - 1) % capacity``, so lookups are O(1) and nothing is
    copied when the ring wraps. Waiting subscribers share one future that the next append
    resolves, so an append costs the same whether one client or fifty are tailing.

    A subscriber is dropped when the ring evicts its next entry, or when an append finds it
    with more than ``max_unread_bytes`` of event data appended since it last read (it was
    subscribed, so a replay is not counted, and the event being appended is not, so one large
    event never drops a reader that is keeping up). A transport reads only once its socket
    took the previous batch, so a stalled socket is let go after about that many bytes.
    """

    def __init__(
        self, capacity: int = 1024, start_seq: int = 0, max_unread_bytes: int | None = None
    ) -> None:
        """``start_seq`` continues the numbering of an earlier log of the same session (one
        released from memory), so a seq is never reused; resuming from before it is a gap.
        ``max_unread_bytes`` of None bounds readers by the capacity alone."""
        if capacity < 1:
            raise ValueError(f"Event log capacity must be at least 1, got {capacity}.")
        if start_seq < 0:
            raise ValueError(f"A log cannot start before seq 0, got {start_seq}.")
        if max_unread_bytes is not None and max_unread_bytes < 1:
            raise ValueError(f"max_unread_bytes must be at least 1, got {max_unread_bytes}.")
        self._max_unread = sys.maxsize if max_unread_bytes is None else max_unread_bytes
        # Bytes of event data appended so far, and at each slot the total through its entry:
        # how far a subscriber is behind, in bytes, is the difference of two of these.
        self._bytes = 0
        self._ends: list[int] = [0] * capacity
        self._capacity = capacity
        self._start_seq = start_seq
        # Slots are only read for seqs in [first_seq, last_seq], all written by then; GAP is a
        # typed placeholder that keeps the list free of None.
        self._ring: list[LogEntry] = [GAP] * capacity
        self._last_seq = start_seq
        self._closed = False
        self._changed: asyncio.Future[None] | None = None
        # Weak, so a subscription abandoned without close() does not outlive its reader.
        self._subscriptions: weakref.WeakSet[Subscription] = weakref.WeakSet()
        # A lower bound on every registered subscription's cursor. Cursors only move forward,
        # so until eviction reaches this seq no subscription can be overrun and append skips
        # the scan; subscribers that keep up push it a buffer ahead at each scan.
        self._cursor_floor = start_seq + 1
        # Likewise a lower bound on every subscription's ``_read_bytes``.
        self._read_floor = 0

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def last_seq(self) -> int:
        """The seq of the newest event, ``start_seq`` before any (what a snapshot reports)."""
        return self._last_seq

    @property
    def first_seq(self) -> int:
        """The seq of the oldest buffered entry (``last_seq + 1`` when empty)."""
        return max(self._start_seq + 1, self._last_seq - self._capacity + 1)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def subscriber_count(self) -> int:
        """Readers currently tailing the log (a log with readers must stay in memory)."""
        return len(self._subscriptions)

    def append(self, event: Mapping[str, Any]) -> LogEntry:
        """Sequence ``event``, evict the oldest entry if full, and wake waiting subscribers.

        Never blocks or awaits, whoever is reading. Must be called on the loop thread. A failed
        serialisation raises before a seq is taken, so seqs stay contiguous.
        """
        if self._closed:
            raise LogClosed("The event log is closed; the session has exited.")
        event_type = event.get("type")
        if not isinstance(event_type, str):
            raise ValueError(f"An event needs a string 'type', got {event_type!r}.")
        # json only encodes dicts; any other Mapping is copied once at this top level.
        payload = event if isinstance(event, dict) else dict(event)
        data = json.dumps(
            payload, separators=(",", ":"), ensure_ascii=False, default=_json_default
        ).encode()
        seq = self._last_seq + 1
        entry = LogEntry(seq, event_type, data)
        # Readers with more than the bound unread before this entry are too far behind.
        unread_limit = self._bytes - self._max_unread
        slot = (seq - 1) % self._capacity
        self._ring[slot] = entry
        self._bytes += len(data)
        self._ends[slot] = self._bytes
        self._last_seq = seq
        evicted = seq - self._capacity
        if evicted >= self._cursor_floor or unread_limit > self._read_floor:
            self._drop_behind(evicted, unread_limit)
        self._wake()
        return entry

    def close(self, reason: str) -> LogEntry | None:
        """Append the terminal ``session_exited`` event, then refuse further appends.

        Subscribers receive everything up to and including that event, then stop. Returns
        ``None`` if already closed, so every path that ends a session may call it.
        """
        if self._closed:
            return None
        entry = self.append(
            {"type": "session_exited", "reason": reason, "timestamp": rfc3339(utc_now())}
        )
        self._closed = True
        return entry

    def subscribe(self, since: int | None = None) -> Subscription:
        """Start reading after ``since`` (SPEC 3, Resume); ``None`` replays the whole buffer.

        A resume point that is evicted (``since + 1 < first_seq``) or that the log never reached
        (``since > last_seq``, as after a server restart) yields ``GAP`` first and continues
        from the oldest buffered entry, rather than silently skipping or waiting.
        """
        if since is not None and since < 0:
            raise ValueError(f"A resume point cannot be negative, got {since}.")
        first = self.first_seq
        if since is None:
            cursor, gap = first, False
        elif since + 1 < first or since > self._last_seq:
            cursor, gap = first, True
        else:
            cursor, gap = since + 1, False
        subscription = Subscription(self, cursor, gap, since or 0)
        if not self._closed:  # a closed log never evicts again, so there is nothing to watch
            self._subscriptions.add(subscription)
            self._cursor_floor = min(self._cursor_floor, cursor)
            self._read_floor = min(self._read_floor, subscription._read_bytes)
        return subscription

    def entries_after(self, since: int) -> list[LogEntry]:
        """The buffered entries with seq > ``since``, oldest first."""
        start = max(since + 1, self.first_seq)
        return [self._entry(seq) for seq in range(start, self._last_seq + 1)]

    def last_of(self, types: frozenset[str]) -> LogEntry | None:
        """The newest buffered entry whose type is in ``types`` (None if none is buffered).

        Scans from the newest entry back, so finding a recent event costs a few steps.
        """
        for seq in range(self._last_seq, self.first_seq - 1, -1):
            entry = self._entry(seq)
            if entry.type in types:
                return entry
        return None

    def _entry(self, seq: int) -> LogEntry:
        return self._ring[(seq - 1) % self._capacity]

    def _end_bytes(self, seq: int) -> int:
        """The bytes appended through buffered entry ``seq``."""
        return self._ends[(seq - 1) % self._capacity]

    def _drop_behind(self, evicted: int, unread_limit: int) -> None:
        """Drop the subscriptions whose next entry was just evicted, or that left more than
        the byte bound unread, and raise the floors.

        Done at append time so a transport stuck writing to a slow socket learns of it
        through ``wait_dropped()`` without having to pull.
        """
        behind = [
            sub
            for sub in self._subscriptions
            if sub._cursor <= evicted or sub._read_bytes < unread_limit
        ]
        for sub in behind:
            self._subscriptions.discard(sub)
            sub._mark_dropped()
        self._cursor_floor = min(
            (sub._cursor for sub in self._subscriptions), default=self._last_seq + 1
        )
        self._read_floor = min(
            (sub._read_bytes for sub in self._subscriptions), default=self._bytes
        )

    def _changes(self) -> asyncio.Future[None]:
        """The future every waiting subscriber shares; created on demand, resolved by _wake."""
        if self._changed is None:
            self._changed = asyncio.get_running_loop().create_future()
        return self._changed

    def _wake(self) -> None:
        # Replaced lazily by _changes(): appends with nobody waiting allocate nothing.
        if self._changed is not None:
            self._changed.set_result(None)
            self._changed = None


class Subscription:
    """One reader's cursor into a ``RingEventLog``; obtain it with ``RingEventLog.subscribe``.

    ``async for entry in sub`` yields each entry once, in order, and stops after
    ``session_exited``. A transport that batches writes awaits one entry, drains the rest with
    ``take_ready()``, then flushes once. Reading after the log overran the cursor raises
    ``SubscriberDropped``. Holds no copies: entries are read from the log's ring.
    """

    def __init__(self, log: RingEventLog, cursor: int, gap: bool, last_delivered: int) -> None:
        self._log = log
        self._cursor = cursor  # the seq to deliver next
        self._gap_pending = gap
        self._last_delivered = last_delivered
        # The log's byte count when this reader last caught up (or subscribed): what was
        # appended since is what it has left unread.
        self._read_bytes = log._bytes
        self._dropped = asyncio.Event()
        self._closed = False

    @property
    def last_seq_delivered(self) -> int:
        """The seq of the last entry delivered; before any, the ``since`` it was opened with."""
        return self._last_delivered

    @property
    def dropped(self) -> bool:
        return self._dropped.is_set()

    def pending(self) -> int:
        """How many entries ``take_ready()`` would return now, ``GAP`` included.

        Once dropped, it is how far behind the subscription is, and ``take_ready()`` raises.
        """
        if self._closed:
            return 0
        return int(self._gap_pending) + self._log.last_seq + 1 - self._cursor

    def take_ready(self) -> list[LogEntry]:
        """Every entry available now, without waiting; empty when caught up or closed."""
        if self._closed:
            return []
        self._raise_if_dropped()
        batch = [GAP] if self._gap_pending else []
        self._gap_pending = False
        end = self._log.last_seq + 1
        if self._cursor < end:
            batch.extend(self._log._entry(seq) for seq in range(self._cursor, end))
            self._last_delivered = end - 1
            self._cursor = end
        self._read_bytes = self._log._bytes
        return batch

    async def wait_dropped(self) -> None:
        """Return once the log has overrun this subscription, whether or not it is reading."""
        await self._dropped.wait()

    def close(self) -> None:
        """Unregister; iteration stops, including a read already waiting in another task."""
        if self._closed:
            return
        self._unregister()
        self._log._wake()  # a spurious wake-up for other waiters, who simply wait again

    async def aclose(self) -> None:
        """``close()``, for ``contextlib.aclosing`` and async-generator-style callers."""
        self.close()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> LogEntry:
        while True:
            if self._closed:
                raise StopAsyncIteration
            self._raise_if_dropped()
            if self._gap_pending:
                self._gap_pending = False
                return GAP
            log = self._log
            if self._cursor <= log.last_seq:
                entry = log._entry(self._cursor)
                self._last_delivered = self._cursor
                self._read_bytes = max(self._read_bytes, log._end_bytes(self._cursor))
                self._cursor += 1
                return entry
            if log.closed:
                self._unregister()
                raise StopAsyncIteration
            # Shielded: a reader cancelled while waiting must not cancel the shared future.
            await asyncio.shield(log._changes())

    def _unregister(self) -> None:
        self._closed = True
        self._log._subscriptions.discard(self)

    def _raise_if_dropped(self) -> None:
        if self._dropped.is_set():
            raise SubscriberDropped(self._last_delivered)

    def _mark_dropped(self) -> None:
        self._dropped.set()
