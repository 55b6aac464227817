"""SPEC 3, slow and dead subscribers: a client that never reads is let go, a reader is not.

A raw socket that requests ``/events`` and then never reads, beside a client that reads, on a
real server. The stalled one must be disconnected after a bounded amount of events (not the
megabytes a kernel would buffer for it), while the reader gets every event and the end.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from traitlets.config import Config

from nbsession.server.sse import SEND_BUFFER_BYTES

from .conftest import EXT_TOKEN, PREFIX, Fetch, new_session

EVENT_BYTES = 512
MAX_UNSENT = 32 * 1024
TOTAL = 2000  # about 1 MB of events
READER_LAG = 8  # the producer waits for the reader to be this close


@pytest.fixture
def jp_server_config(jp_server_config: Config) -> Config:
    # A log longer than the whole test, so only the byte bound can let a client go.
    jp_server_config["NBSessionApp"]["event_log_capacity"] = TOTAL * 2
    jp_server_config["NBSessionApp"]["max_unsent_bytes"] = MAX_UNSENT
    return jp_server_config


def sized(n: int) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "agent_choice", "content": "", "n": n}
    event["content"] = "x" * (EVENT_BYTES - len(json.dumps(event, separators=(",", ":"))))
    return event


async def readable(sock: socket.socket, timeout: float = 15.0) -> None:
    """Until ``sock`` has data to read (none is read)."""
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    loop.add_reader(sock, ready.set_result, None)
    try:
        await asyncio.wait_for(ready, timeout)
    finally:
        loop.remove_reader(sock)


class Reader:
    """Follows an SSE response as it arrives, keeping its ids and whether it ended."""

    def __init__(self) -> None:
        self.last_seq = 0
        self.seqs: list[int] = []
        self.exited = False
        self.subscribed = asyncio.Event()  # the status line arrived: the server subscribed it
        self._changed = asyncio.Event()
        self._rest = b""

    def header(self, line: str) -> None:
        if line.startswith("HTTP/"):
            self.subscribed.set()

    async def reach(self, seq: int, timeout: float = 15.0) -> None:
        """Until an event with id ``seq`` or later arrived."""
        async with asyncio.timeout(timeout):
            while self.last_seq < seq:
                self._changed.clear()
                await self._changed.wait()

    def feed(self, chunk: bytes) -> None:
        self._changed.set()
        *frames, self._rest = (self._rest + chunk).split(b"\n\n")
        for frame in frames:
            for line in frame.split(b"\n"):
                if line.startswith(b"id: "):
                    self.last_seq = int(line[4:])
                    self.seqs.append(self.last_seq)
                elif line.startswith(b"data: ") and b'"session_exited"' in line:
                    self.exited = True


async def test_a_socket_that_never_reads_is_dropped_and_a_reader_is_not(
    api: Fetch, nbsession_app: Any, jp_http_port: int, jp_base_url: str
) -> None:
    session_id = await new_session(api)
    manager = await nbsession_app.started_manager()
    loop = asyncio.get_running_loop()

    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the client holds little
    stalled.setblocking(False)
    await loop.sock_connect(stalled, ("127.0.0.1", jp_http_port))
    await loop.sock_sendall(
        stalled,
        f"GET {jp_base_url}{PREFIX}/api/sessions/{session_id}/events HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nAuthorization: Bearer {EXT_TOKEN}\r\n\r\n".encode(),
    )
    await readable(stalled)  # its status line came: it is subscribed (and left unread)
    reader = Reader()
    reading = asyncio.ensure_future(
        api(
            "GET",
            f"api/sessions/{session_id}/events",
            streaming_callback=reader.feed,
            header_callback=reader.header,
            request_timeout=60,
        )
    )
    await asyncio.wait_for(reader.subscribed.wait(), 15)
    assert nbsession_app.open_streams == 2

    dropped_at: list[int] = []

    async def produce(send: Callable[[Mapping[str, Any]], None]) -> None:
        for n in range(1, TOTAL + 1):
            send(sized(n))
            if not dropped_at and nbsession_app.open_streams < 2:
                dropped_at.append(n)
            await reader.reach(n - READER_LAG)

    try:
        manager.register_event_source(session_id, produce)
        reply = await asyncio.wait_for(reading, 60)
        assert reply.code == 200
        assert reader.exited
        assert reader.seqs == list(range(1, TOTAL + 2))  # every event once, then the end

        # The stalled client was let go after its socket buffers and the byte bound filled,
        # far sooner than the megabyte the kernel would otherwise have queued for it.
        assert dropped_at, "the stalled client was never disconnected"
        in_flight = 2 * SEND_BUFFER_BYTES + MAX_UNSENT + 16 * 1024  # kernel, bound, slack
        assert dropped_at[0] * EVENT_BYTES <= in_flight, dropped_at

        # What it did receive is a clean prefix without the end: it resumes with its last id.
        stalled.setblocking(True)
        stalled.settimeout(15)
        received = Reader()
        while chunk := stalled.recv(1 << 16):
            received.feed(chunk)
        assert not received.exited
        assert received.seqs == list(range(1, received.last_seq + 1))
        assert received.last_seq < dropped_at[0]
    finally:
        stalled.close()
