"""A loopback server speaking OpenAI's chat-completions wire format, for tests.

It stands in for a real model endpoint (OpenAI, Ollama, vLLM, llama.cpp...) so tests run the
real provider code over real HTTP: the ``openai`` SDK that pydantic-ai drives reads exactly
what it would read from api.openai.com. Each request takes the next scripted ``Reply`` (or the
server's default reply when the script is empty) and is recorded, so a test can check both
what the model "said" and what was sent to it.

The server runs on its own thread (``ThreadingHTTPServer``), so it serves sync tests, async
tests on any event loop, and kernels alike.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .loopback import QuietHandler


@dataclass(frozen=True)
class ScriptedToolCall:
    """A tool call the model makes; its arguments are streamed in ``pieces`` chunks."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str = ""
    pieces: int = 3

    @property
    def arguments_json(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments)


@dataclass
class Reply:
    """What the server answers to one request.

    ``text`` is streamed as ``text_chunks`` (default: a few even pieces), tool calls follow it,
    then a usage chunk when the client asked for one (``stream_options.include_usage``).
    ``status`` >= 400 answers an OpenAI-style error body instead. ``first_byte_delay`` seconds
    pass before anything is sent; ``hold`` (when given) must be set before anything is sent,
    so a test can keep a request pending for as long as it needs without a timed sleep.
    ``pause`` (when given) must be set before the text chunks after the first ``pause_after``
    are sent: a stream cut in the middle of its text. ``stream_error`` ends the stream after
    its text with an error object in the stream, as OpenAI sends one mid-stream.
    """

    text: str = ""
    text_chunks: list[str] | None = None
    reasoning: str = ""
    tool_calls: list[ScriptedToolCall] = field(default_factory=list)
    prompt_tokens: int = 10
    completion_tokens: int = 5
    status: int = 200
    error_message: str = ""
    error_type: str = ""
    first_byte_delay: float = 0.0
    hold: threading.Event | None = None
    pause: threading.Event | None = None
    pause_after: int = 0
    stream_error: str = ""
    model: str = ""

    @classmethod
    def error(cls, status: int, message: str, error_type: str = "") -> Reply:
        return cls(status=status, error_message=message, error_type=error_type)

    def chunks_of_text(self) -> list[str]:
        if self.text_chunks is not None:
            return list(self.text_chunks)
        if not self.text:
            return []
        size = max(1, len(self.text) // 3)
        return [self.text[i : i + size] for i in range(0, len(self.text), size)]


@dataclass(frozen=True)
class RecordedRequest:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])

    @property
    def tool_names(self) -> list[str]:
        return [tool["function"]["name"] for tool in self.body.get("tools") or []]


def _split(text: str, pieces: int) -> list[str]:
    pieces = max(1, min(pieces, len(text) or 1))
    size = -(-len(text) // pieces) if text else 1
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


class OpenAIServer:
    """``with OpenAIServer() as server:`` serves ``server.url`` (ends in ``/v1``)."""

    def __init__(self, default: Callable[[RecordedRequest], Reply] | None = None) -> None:
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._default = default or (lambda _request: Reply(text="ok"))
        self.requests: list[RecordedRequest] = []
        self._received = threading.Condition(self._lock)
        self._pauses: list[threading.Event] = []  # released on close, taken or not
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    # -- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> OpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            for reply in self._replies:
                if reply.hold is not None:
                    reply.hold.set()
            for pause in self._pauses:
                pause.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """The base URL a client is configured with (``http://127.0.0.1:<port>/v1``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    # -- scripting ------------------------------------------------------------------------

    def script(self, *replies: Reply) -> None:
        """Queue replies; each request takes the next one."""
        with self._lock:
            self._replies.extend(replies)
            self._pauses.extend(reply.pause for reply in replies if reply.pause is not None)

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[RecordedRequest]:
        """Block until ``count`` requests arrived (for sync callers; async ones poll)."""
        with self._received:
            if not self._received.wait_for(lambda: len(self.requests) >= count, timeout):
                raise TimeoutError(f"{len(self.requests)} of {count} requests arrived")
            return list(self.requests)

    def _take(self, request: RecordedRequest) -> Reply:
        with self._received:
            self.requests.append(request)
            self._received.notify_all()
            reply = self._replies.popleft() if self._replies else None
        return reply if reply is not None else self._default(request)

    # -- the wire format ------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self.send_json(200, {"object": "list", "data": []})
                else:
                    self.send_json(404, _error_body("Not found", "invalid_request_error"))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b"{}"
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    self.send_json(400, _error_body("Body is not JSON", "invalid_request_error"))
                    return
                request = RecordedRequest(
                    method="POST",
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                reply = server._take(request)
                if reply.hold is not None:
                    reply.hold.wait()
                if reply.first_byte_delay:
                    time.sleep(reply.first_byte_delay)
                server._respond(self, body, reply)

            def send_events(self, frames: Iterator[bytes]) -> None:
                """Send server-sent events as they are produced."""
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                try:
                    for frame in frames:
                        self.wfile.write(frame)
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client went away (a cancelled turn)

        return Handler

    def _respond(self, handler: Any, body: dict[str, Any], reply: Reply) -> None:
        """Answer one request in OpenAI's chat-completions format."""
        if not handler.path.rstrip("/").endswith("/chat/completions"):
            handler.send_json(404, _error_body(f"No route {handler.path}", "invalid_request_error"))
        elif reply.status >= 400:
            message = reply.error_message or "error"
            handler.send_json(reply.status, _error_body(message, reply.error_type or "api_error"))
        elif body.get("stream"):
            chunks = _chunks(body, reply)
            handler.send_events(
                itertools.chain((f"data: {json.dumps(c)}\n\n".encode() for c in chunks), [DONE])
            )
        else:
            handler.send_json(200, _completion(body, reply))


DONE = b"data: [DONE]\n\n"


def _error_body(message: str, error_type: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": None, "code": None}}


def _base(body: dict[str, Any], reply: Reply, kind: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-loopback",
        "object": kind,
        "created": int(time.time()),
        "model": reply.model or body.get("model") or "loopback",
    }


def _usage(reply: Reply) -> dict[str, int]:
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }


def _call_id(call: ScriptedToolCall, index: int) -> str:
    return call.id or f"call_{index + 1}"


def _chunks(body: dict[str, Any], reply: Reply) -> Iterator[dict[str, Any]]:
    """The ``chat.completion.chunk`` objects of one streamed answer, in order."""
    base = _base(body, reply, "chat.completion.chunk")

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    yield chunk({"role": "assistant", "content": ""})
    if reply.reasoning:
        yield chunk({"reasoning_content": reply.reasoning})
    for index, text in enumerate(reply.chunks_of_text()):
        if reply.pause is not None and index == reply.pause_after:
            reply.pause.wait()
        yield chunk({"content": text})
    if reply.stream_error:
        yield {"error": {"message": reply.stream_error, "type": "server_error", "code": None}}
        return
    for index, call in enumerate(reply.tool_calls):
        pieces = _split(call.arguments_json, call.pieces)
        opening = {
            "index": index,
            "id": _call_id(call, index),
            "type": "function",
            "function": {"name": call.name, "arguments": pieces[0]},
        }
        yield chunk({"tool_calls": [opening]})
        for piece in pieces[1:]:
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    yield chunk({}, "tool_calls" if reply.tool_calls else "stop")
    if (body.get("stream_options") or {}).get("include_usage"):
        yield {**base, "choices": [], "usage": _usage(reply)}


def _completion(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    """A non-streamed ``chat.completion`` with the same content."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": _call_id(call, index),
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments_json},
            }
            for index, call in enumerate(reply.tool_calls)
        ]
    finish = "tool_calls" if reply.tool_calls else "stop"
    return {
        **_base(body, reply, "chat.completion"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": _usage(reply),
    }
