"""Server-Sent Events from an event-log reader to one tornado response (SPEC 3).

Events are serialised once, when the log appends them (``LogEntry.frame()``): this module only
concatenates bytes. After one entry arrives it drains everything else ready and writes it all
with one flush, so a fast producer costs one syscall per loop tick, not one per event.

The writer never blocks the producer: it waits for the client, and the log drops a reader that
falls a full buffer behind. A client that goes away, or a flush to a closed socket, ends the
stream quietly; the caller decides what that means (a run stream cancels its turn).
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Protocol

from tornado.iostream import StreamClosedError

from ..eventlog import LogEntry, SubscriberDropped

if TYPE_CHECKING:
    from .base import NBSessionHandler

PING = b": ping\n\n"
"""The heartbeat: an SSE comment, ignored by clients, that keeps proxies and sockets alive."""


class EntrySource(Protocol):
    """What the writer reads: a ``TurnStream`` or an ``EventSubscription``."""

    def __anext__(self) -> Awaitable[LogEntry]: ...

    def take_ready(self) -> list[LogEntry]: ...


class Ending(enum.Enum):
    """Why a stream stopped."""

    FINISHED = "finished"
    """The source ended (``stream_stopped`` of a run, ``session_exited`` of a log)."""
    CLIENT_GONE = "client_gone"
    """The client closed the connection, or a write found it closed."""
    DROPPED = "dropped"
    """The reader fell a full buffer behind; the connection was closed so it resumes."""


async def send_events(
    handler: NBSessionHandler,
    source: EntrySource,
    heartbeat: float,
    dropped: Awaitable[None] | None = None,
) -> Ending:
    """Write ``source`` to ``handler``'s response as SSE until it ends or the client leaves.

    ``heartbeat`` is the idle time after which ``: ping`` is written. ``dropped`` resolves when
    the log overruns the reader, so even a reader stuck on a slow socket is let go at once.
    On ``FINISHED`` the caller finishes the response; otherwise the connection is gone.
    """
    # Events are small writes that must go out now: without TCP_NODELAY each waits on the
    # client's delayed ACK (~40 ms; see benchmarks/bench_sse.py).
    stream = getattr(handler.request.connection, "stream", None)
    if stream is not None and not stream.closed():
        stream.set_nodelay(True)
    handler.set_header("Content-Type", "text/event-stream")
    handler.set_header("Cache-Control", "no-cache")
    handler.set_header("X-Accel-Buffering", "no")
    watchers: dict[asyncio.Future[Any], Ending] = {
        asyncio.ensure_future(handler.client_gone.wait()): Ending.CLIENT_GONE
    }
    if dropped is not None:
        watchers[asyncio.ensure_future(dropped)] = Ending.DROPPED
    following: asyncio.Future[LogEntry] | None = None
    # Headers go out at once, so the client sees the 200 before the first event.
    write: asyncio.Future[None] = handler.flush()
    try:
        while True:
            ending = await _written(write, watchers)
            if ending is not None:
                return _ended(handler, ending)
            if following is None:
                following = asyncio.ensure_future(source.__anext__())
            done, _ = await asyncio.wait(
                {following, *watchers}, timeout=heartbeat, return_when=asyncio.FIRST_COMPLETED
            )
            for watcher, ending in watchers.items():
                if watcher in done:
                    return _ended(handler, ending)
            if following in done:
                arrived, following = following, None
                try:
                    batch = [arrived.result(), *source.take_ready()]
                except StopAsyncIteration:
                    return Ending.FINISHED
                except SubscriberDropped:
                    return _ended(handler, Ending.DROPPED)
                handler.write(b"".join(entry.frame() for entry in batch))
            else:
                handler.write(PING)
            write = handler.flush()
    finally:
        for future in [*watchers, following]:
            if future is not None:
                future.cancel()
        # A flush abandoned on a closed socket fails later; nobody is left to read that.
        write.add_done_callback(_consume)


async def _written(
    write: asyncio.Future[None], watchers: dict[asyncio.Future[Any], Ending]
) -> Ending | None:
    """Wait for the last flush; None when it went out, else why the stream is over."""
    done, _ = await asyncio.wait({write, *watchers}, return_when=asyncio.FIRST_COMPLETED)
    if write in done:
        if isinstance(write.exception(), StreamClosedError):
            return Ending.CLIENT_GONE
        write.result()  # any other failure is a bug: let the handler log it
        return None
    return next(ending for watcher, ending in watchers.items() if watcher in done)


def _ended(handler: NBSessionHandler, ending: Ending) -> Ending:
    if ending is Ending.DROPPED:
        handler.request.connection.close()  # type: ignore[union-attr]
    return ending


def _consume(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()
