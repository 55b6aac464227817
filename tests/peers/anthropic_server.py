"""A loopback server speaking Anthropic's Messages API (``POST /v1/messages``), for tests.

Same scripting as ``OpenAIServer`` (``Reply``, ``ScriptedToolCall``, recorded requests, held
first byte); only the wire differs: streamed answers are Anthropic's named SSE events
(``message_start``, ``content_block_*``, ``message_delta``, ``message_stop``), tool arguments
arrive as ``input_json_delta`` pieces, and errors are ``{"type": "error", "error": {...}}``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from .openai_server import OpenAIServer, Reply, ScriptedToolCall, _split

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    529: "overloaded_error",
}


class AnthropicServer(OpenAIServer):
    """``with AnthropicServer() as server:`` serves ``server.url`` (the SDK adds ``/v1``)."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _respond(self, handler: Any, body: dict[str, Any], reply: Reply) -> None:
        if not handler.path.rstrip("/").endswith("/v1/messages"):
            handler.send_json(404, _error(404, f"No route {handler.path}"))
        elif reply.status >= 400:
            handler.send_json(reply.status, _error(reply.status, reply.error_message or "error"))
        elif body.get("stream"):
            handler.send_events(
                f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
                for event in _events(body, reply)
            )
        else:
            handler.send_json(200, _message(body, reply))


def _error(status: int, message: str) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def _tool_id(call: ScriptedToolCall, index: int) -> str:
    return call.id or f"toolu_{index + 1}"


def _blocks(reply: Reply) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if reply.text:
        blocks.append({"type": "text", "text": reply.text})
    for index, call in enumerate(reply.tool_calls):
        arguments = json.loads(call.arguments_json or "{}")
        blocks.append(
            {"type": "tool_use", "id": _tool_id(call, index), "name": call.name, "input": arguments}
        )
    return blocks


def _stop_reason(reply: Reply) -> str:
    return "tool_use" if reply.tool_calls else "end_turn"


def _message(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    return {
        "id": "msg_loopback",
        "type": "message",
        "role": "assistant",
        "model": reply.model or body.get("model") or "loopback",
        "content": _blocks(reply),
        "stop_reason": _stop_reason(reply),
        "stop_sequence": None,
        "usage": {"input_tokens": reply.prompt_tokens, "output_tokens": reply.completion_tokens},
    }


def _events(body: dict[str, Any], reply: Reply) -> Iterator[dict[str, Any]]:
    """The named events of one streamed answer, in order."""
    start = {**_message(body, reply), "content": [], "stop_reason": None}
    start["usage"] = {"input_tokens": reply.prompt_tokens, "output_tokens": 1}
    yield {"type": "message_start", "message": start}
    index = 0
    if reply.chunks_of_text():
        yield {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "text", "text": ""},
        }
        yield {"type": "ping"}
        for text in reply.chunks_of_text():
            delta = {"type": "text_delta", "text": text}
            yield {"type": "content_block_delta", "index": 0, "delta": delta}
        yield {"type": "content_block_stop", "index": 0}
        index = 1
    for number, call in enumerate(reply.tool_calls):
        block = {"type": "tool_use", "id": _tool_id(call, number), "name": call.name, "input": {}}
        yield {"type": "content_block_start", "index": index, "content_block": block}
        for piece in _split(call.arguments_json, call.pieces):
            delta = {"type": "input_json_delta", "partial_json": piece}
            yield {"type": "content_block_delta", "index": index, "delta": delta}
        yield {"type": "content_block_stop", "index": index}
        index += 1
    yield {
        "type": "message_delta",
        "delta": {"stop_reason": _stop_reason(reply), "stop_sequence": None},
        "usage": {"output_tokens": reply.completion_tokens},
    }
    yield {"type": "message_stop"}
