"""An in-process jupyter-server with nbsession enabled, and a small JSON client for it.

Capacities are small so limits are reachable in a test; the heartbeat is short so a stream
that idles shows its ping quickly.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from tornado.httpclient import HTTPResponse
from traitlets.config import Config

EXT_TOKEN = "ext-token-0f3c9a"
MAX_BODY = 64 * 1024
PREFIX = "nbsession"
# Path parameters for requests built from the route table (ids that exist nowhere).
PLACEHOLDERS = {
    "session_id": "00000000-0000-0000-0000-000000000000",
    "agent_id": "default",
    "agent_name": "root",
    "msg_id": "m1",
}


@pytest.fixture
def jp_server_config(tmp_path: Any) -> Config:
    return Config(
        {
            # Terminals off: they refuse to load when unauthenticated access is disallowed.
            "ServerApp": {
                "jpserver_extensions": {"nbsession": True, "jupyter_server_terminals": False}
            },
            "NBSessionApp": {
                "db_path": str(tmp_path / "sessions.db"),
                "agents_dir": str(tmp_path / "agents"),
                "auth_token": EXT_TOKEN,
                "max_request_bytes": MAX_BODY,
                "event_log_capacity": 64,
                "heartbeat_interval": 0.2,
                "steer_capacity": 2,
                "followup_capacity": 2,
            },
        }
    )


@pytest.fixture
def nbsession_app(jp_serverapp: Any) -> Any:
    """The extension instance the server loaded."""
    return next(iter(jp_serverapp.extension_manager.extension_apps["nbsession"]))


@dataclass
class Reply:
    code: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error_code(self) -> str:
        return self.json()["code"]


Fetch = Callable[..., Awaitable[Reply]]


@pytest.fixture
def api(jp_fetch: Any) -> Fetch:
    """``await api(method, path, body)`` -> Reply, never raising on error statuses."""

    async def call(
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Reply:
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        if data is None and method in ("POST", "PATCH", "PUT"):
            data = b""
        response: HTTPResponse = await jp_fetch(
            PREFIX,
            path,
            method=method,
            body=data,
            headers=headers,
            params=params,
            raise_error=False,
            allow_nonstandard_methods=True,
            **kwargs,
        )
        return Reply(response.code, dict(response.headers), response.body or b"")

    return call


def frames(body: bytes) -> list[tuple[int | None, dict[str, Any]]]:
    """Parse an SSE body into (id, event) pairs; comments (pings) are skipped."""
    events = []
    for block in body.decode().split("\n\n"):
        seq, data = None, None
        for line in block.split("\n"):
            if line.startswith("id: "):
                seq = int(line[4:])
            elif line.startswith("data: "):
                data = json.loads(line[6:])
        if data is not None:
            events.append((seq, data))
    return events


@dataclass
class LiveStream:
    """An SSE response read as it arrives, for streams that end only when the test acts."""

    events: list[tuple[int | None, dict[str, Any]]] = field(default_factory=list)
    raw: bytearray = field(default_factory=bytearray)
    task: asyncio.Task[Reply] | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def feed(self, chunk: bytes) -> None:
        self.raw.extend(chunk)
        self.events = frames(bytes(self.raw[: self.raw.rfind(b"\n\n") + 2]))
        self._changed.set()

    async def until(self, event_type: str, timeout: float = 15.0) -> dict[str, Any]:
        """The first event of ``event_type``, waiting for it to arrive."""

        async def wait() -> dict[str, Any]:
            while True:
                for _seq, event in self.events:
                    if event["type"] == event_type:
                        return event
                if self.task is not None and self.task.done():
                    raise AssertionError(f"stream ended without {event_type}: {self.events}")
                self._changed.clear()
                waiter = asyncio.ensure_future(self._changed.wait())
                pending = {waiter, self.task} if self.task else {waiter}
                await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()

        return await asyncio.wait_for(wait(), timeout)

    async def reply(self, timeout: float = 15.0) -> Reply:
        assert self.task is not None
        return await asyncio.wait_for(self.task, timeout)


@pytest.fixture
def stream(api: Fetch) -> Iterator[Callable[..., LiveStream]]:
    """``live = stream(method, path, body)``: start a streaming request in the background."""
    started: list[LiveStream] = []

    def start(method: str, path: str, body: Any = None, **kwargs: Any) -> LiveStream:
        live = LiveStream()
        live.task = asyncio.ensure_future(
            api(method, path, body, streaming_callback=live.feed, request_timeout=60, **kwargs)
        )
        started.append(live)
        return live

    yield start
    for live in started:
        if live.task is not None:
            live.task.cancel()


async def new_session(api: Fetch, **template: Any) -> str:
    reply = await api("POST", "api/sessions", template)
    assert reply.code == 200, reply.body
    return reply.json()["id"]


def user(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}
