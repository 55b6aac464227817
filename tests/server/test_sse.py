"""The SSE writer against a stand-in handler: batching, heartbeats, closed and slow clients."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from tornado.iostream import StreamClosedError

from nbsession.eventlog import RingEventLog
from nbsession.server.sse import PING, Ending, send_events


class FakeHandler:
    """Records what the writer does; ``stuck`` makes every flush wait like a full socket."""

    def __init__(self, stuck: bool = False, closed: bool = False) -> None:
        self.client_gone = asyncio.Event()
        self.headers: dict[str, str] = {}
        self.writes: list[bytes] = []
        self.wrote = asyncio.Event()
        self.flushes = 0
        self.stuck = stuck
        self.closed = closed
        self.connection_closed = False
        self.request = SimpleNamespace(connection=SimpleNamespace(close=self._close))

    def _close(self) -> None:
        self.connection_closed = True

    def set_header(self, name: str, value: str) -> None:
        self.headers[name] = value

    def write(self, chunk: bytes) -> None:
        self.writes.append(chunk)
        self.wrote.set()

    def flush(self) -> asyncio.Future[None]:
        self.flushes += 1
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.closed:
            future.set_exception(StreamClosedError())
        elif not self.stuck:
            future.set_result(None)
        return future


def fill(log: RingEventLog, count: int) -> None:
    for index in range(count):
        log.append({"type": "agent_choice", "content": str(index)})


async def test_everything_ready_goes_out_in_one_write() -> None:
    log = RingEventLog(16)
    fill(log, 5)
    log.close("done")
    handler: Any = FakeHandler()
    ending = await send_events(handler, log.subscribe(), heartbeat=5)
    assert ending is Ending.FINISHED
    assert handler.headers["Content-Type"] == "text/event-stream"
    assert len(handler.writes) == 1  # five events and session_exited, one write, one flush
    assert handler.writes[0] == b"".join(entry.frame() for entry in log.entries_after(0))
    assert handler.flushes == 2  # the headers, then the batch


async def test_a_watcher_gathers_a_burst_into_one_write_after_the_first_event() -> None:
    """The first event after a quiet spell goes out at once; those that follow within the
    batch interval share the next write (one syscall per client, not one per event)."""
    log = RingEventLog(64)
    handler: Any = FakeHandler()
    task = asyncio.ensure_future(send_events(handler, log.subscribe(), heartbeat=5, batch=0.5))
    log.append({"type": "agent_choice", "content": "first"})
    await handler.wrote.wait()
    assert len(handler.writes) == 1  # at once
    for index in range(10):  # a burst, one event per loop tick
        log.append({"type": "agent_choice", "content": str(index)})
        await asyncio.sleep(0)
    log.close("done")
    assert await task is Ending.FINISHED
    assert handler.writes[1:] == [b"".join(e.frame() for e in log.entries_after(1))]


async def test_an_idle_stream_sends_pings_until_the_client_leaves() -> None:
    log = RingEventLog(16)
    handler: Any = FakeHandler()
    task = asyncio.ensure_future(send_events(handler, log.subscribe(), heartbeat=0.01))
    while handler.writes.count(PING) < 2:
        await handler.wrote.wait()
        handler.wrote.clear()
    handler.client_gone.set()
    assert await task is Ending.CLIENT_GONE


async def test_a_closed_socket_ends_the_stream_quietly() -> None:
    log = RingEventLog(16)
    fill(log, 3)
    handler: Any = FakeHandler(closed=True)
    assert await send_events(handler, log.subscribe(), heartbeat=5) is Ending.CLIENT_GONE


async def test_a_stuck_reader_is_dropped_and_disconnected() -> None:
    log = RingEventLog(4)
    subscription = log.subscribe()
    handler: Any = FakeHandler(stuck=True)
    task = asyncio.ensure_future(
        send_events(handler, subscription, heartbeat=5, dropped=subscription.wait_dropped())
    )
    fill(log, 8)  # the producer never waits for the stuck writer
    assert await asyncio.wait_for(task, 5) is Ending.DROPPED
    assert handler.connection_closed
