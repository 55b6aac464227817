"""The Anthropic loopback server speaks the wire format the official ``anthropic`` SDK reads."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .anthropic_server import AnthropicServer
from .openai_server import Reply, ScriptedToolCall

anthropic = pytest.importorskip("anthropic")


@pytest.fixture
def server() -> Iterator[AnthropicServer]:
    with AnthropicServer() as running:
        yield running


def client(server: AnthropicServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key="test-key", max_retries=0)


def ask(server: AnthropicServer) -> anthropic.types.Message:
    with client(server).messages.stream(
        model="claude-test", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        text = "".join(stream.text_stream)
        message = stream.get_final_message()
    assert text == "".join(b.text for b in message.content if b.type == "text")
    return message


def test_streamed_text_tool_use_and_usage(server: AnthropicServer) -> None:
    call = ScriptedToolCall("think", {"thought": "x y z"}, id="toolu_a", pieces=3)
    server.script(Reply(text_chunks=["Hel", "lo"], tool_calls=[call], completion_tokens=9))
    message = ask(server)
    text, tool = message.content
    assert text.type == "text" and text.text == "Hello"
    assert tool.type == "tool_use" and (tool.id, tool.name) == ("toolu_a", "think")
    assert tool.input == {"thought": "x y z"}
    assert message.stop_reason == "tool_use"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (10, 9)
    request = server.requests[0]
    assert request.path == "/v1/messages"
    key = request.headers.get("x-api-key") or request.headers.get("authorization", "")
    assert key.removeprefix("Bearer ") == "test-key"  # SDK versions send one or the other


def test_non_streamed_message(server: AnthropicServer) -> None:
    server.script(Reply(text="whole"))
    message = client(server).messages.create(
        model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.content[0].text == "whole" and message.stop_reason == "end_turn"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, anthropic.AuthenticationError), (529, anthropic.InternalServerError)],
)
def test_errors(server: AnthropicServer, status: int, error: type[Exception]) -> None:
    server.script(Reply.error(status, "scripted failure"))
    with pytest.raises(error, match="scripted failure"):
        ask(server)
