"""Server-Sent Events from an event-log reader to one tornado response (SPEC 3).

Events are serialised once, when the log appends them (``LogEntry.frame()``): this module only
concatenates bytes. After one entry arrives it drains everything else ready and writes it all
with one flush; during a burst it writes at most once per ``BATCH_INTERVAL``, so a fast
producer costs each client one syscall per interval, not one per event.

The writer never blocks the producer: it waits for the client, and the log drops a reader that
falls too far behind (a full log of events, or ``max_unsent_bytes`` appended while the writer
waited on the socket). The socket's send buffer is capped too (``SEND_BUFFER_BYTES``), so a
client that never reads pins about that much in the kernel rather than the megabytes Linux's
autotuning would grant it. A client that goes away, or a flush to a closed socket, ends the
stream quietly; the caller decides what that means (a run stream cancels its turn).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import socket
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from tornado.iostream import StreamClosedError

from ..eventlog import LogEntry, SubscriberDropped

if TYPE_CHECKING:
    from .base import NBSessionHandler

PING = b": ping\n\n"
"""The heartbeat: an SSE comment, ignored by clients, that keeps proxies and sockets alive."""

SEND_BUFFER_BYTES = 32 * 1024
"""SO_SNDBUF of an event stream's socket (Linux doubles it for bookkeeping). Events are small
and go out as they come, so this costs a reading client nothing, while a stalled one can no
longer park megabytes in the kernel before its writer notices (benchmarks/bench_stalled.py)."""


BATCH_INTERVAL = 0.05
"""Seconds a watching stream (``/events``) waits after a write before the next, gathering what
arrives meanwhile into one write; the first event after a quiet spell goes out at once. Every
write is a syscall per client: with 100 watchers that never read, each event cost 100 of them
until their buffers filled, and a reading client's rate fell to a tenth or less
(benchmarks/bench_stalled.py). Text already streams in deltas merged over 50 ms, so a person
sees no difference. A run stream answers the one client that waits for its end, so it writes
as events come."""


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
    """The reader fell too far behind; the connection was closed so it resumes."""


async def send_events(
    handler: NBSessionHandler,
    source: EntrySource,
    heartbeat: float,
    dropped: Awaitable[None] | None = None,
    batch: float = 0.0,
) -> Ending:
    """Write ``source`` to ``handler``'s response as SSE until it ends or the client leaves.

    ``heartbeat`` is the idle time after which ``: ping`` is written. ``dropped`` resolves when
    the log lets the reader go, so even a reader stuck on a slow socket is let go at once.
    ``batch`` is the least time between two writes (``BATCH_INTERVAL`` for a watcher).
    On ``FINISHED`` the caller finishes the response; otherwise the connection is gone.
    """
    # Events are small writes that must go out now: without TCP_NODELAY each waits on the
    # client's delayed ACK (~40 ms; see benchmarks/bench_sse.py).
    stream = getattr(handler.request.connection, "stream", None)
    if stream is not None and not stream.closed():
        stream.set_nodelay(True)
        with contextlib.suppress(OSError):  # a socket that refuses keeps the kernel's size
            stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
    handler.set_header("Content-Type", "text/event-stream")
    handler.set_header("Cache-Control", "no-cache")
    handler.set_header("X-Accel-Buffering", "no")
    # The client leaving and the log letting the reader go interrupt the writer wherever it
    # waits (for an event or for the socket), through a cancel: a batch then costs two plain
    # awaits rather than a multi-future wait, which matters with many streams open.
    writer = asyncio.current_task()
    assert writer is not None
    interrupted: list[Ending] = []
    writing = True  # a watcher that fires after the writer returned must not cancel the handler

    def interrupt(ending: Ending) -> Callable[[asyncio.Future[Any]], None]:
        def callback(_: asyncio.Future[Any]) -> None:
            if writing and not interrupted:
                interrupted.append(ending)
                writer.cancel()

        return callback

    watchers = [asyncio.ensure_future(handler.client_gone.wait())]
    watchers[0].add_done_callback(interrupt(Ending.CLIENT_GONE))
    if dropped is not None:
        watchers.append(asyncio.ensure_future(dropped))
        watchers[1].add_done_callback(interrupt(Ending.DROPPED))
    loop = asyncio.get_running_loop()
    try:
        await handler.flush()  # headers go out at once: the client sees the 200 first
        next_write = loop.time()
        while True:
            try:
                async with asyncio.timeout(heartbeat):
                    arrived = await source.__anext__()
            except TimeoutError:
                handler.write(PING)
            else:
                pause = next_write - loop.time()
                if pause > 0:  # within a burst: let the next events join this write
                    await asyncio.sleep(pause)
                handler.write(b"".join(e.frame() for e in [arrived, *source.take_ready()]))
            await handler.flush()
            next_write = loop.time() + batch
    except StopAsyncIteration:
        return Ending.FINISHED
    except SubscriberDropped:
        return _ended(handler, Ending.DROPPED)
    except StreamClosedError:
        return Ending.CLIENT_GONE
    except asyncio.CancelledError:
        if not interrupted or writer.uncancel() > 0:
            raise  # cancelled from outside (the server stopping): not ours to swallow
        return _ended(handler, interrupted[0])
    finally:
        writing = False
        for watcher in watchers:
            watcher.cancel()


def _ended(handler: NBSessionHandler, ending: Ending) -> Ending:
    if ending is Ending.DROPPED:
        handler.request.connection.close()  # type: ignore[union-attr]
    return ending
