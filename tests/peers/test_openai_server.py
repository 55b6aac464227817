"""The loopback server speaks the wire format the official ``openai`` SDK reads.

If these pass, a test that runs our provider code against the server exercises the same
parsing it would against api.openai.com.
"""

from __future__ import annotations

import threading

import openai
import pytest

from .openai_server import OpenAIServer, Reply, ScriptedToolCall


def client(server: OpenAIServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url, api_key="test-key", max_retries=0)


def stream(server: OpenAIServer, **kwargs: object) -> list[object]:
    return list(
        client(server).chat.completions.create(
            model="gpt-test",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
            **kwargs,  # type: ignore[arg-type]
        )
    )


def test_text_deltas_and_usage_chunk(openai_server: OpenAIServer) -> None:
    openai_server.script(
        Reply(text_chunks=["Hel", "lo", " world"], prompt_tokens=12, completion_tokens=3)
    )
    chunks = stream(openai_server)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)  # type: ignore[attr-defined]
    assert text == "Hello world"
    finish = [c.choices[0].finish_reason for c in chunks if c.choices]  # type: ignore[attr-defined]
    assert finish[-1] == "stop"
    usage = chunks[-1].usage  # type: ignore[attr-defined]
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (12, 3, 15)
    assert chunks[-1].choices == []  # type: ignore[attr-defined]
    request = openai_server.requests[0]
    assert request.body["model"] == "gpt-test"
    assert request.headers["authorization"] == "Bearer test-key"


def test_tool_call_arguments_split_across_chunks(openai_server: OpenAIServer) -> None:
    call = ScriptedToolCall("shell", {"cmd": "ls -la"}, id="call_a", pieces=4)
    openai_server.script(Reply(tool_calls=[call, ScriptedToolCall("think", {"thought": "x"})]))
    chunks = stream(openai_server)
    pieces: dict[int, list[str]] = {}
    names: dict[int, str] = {}
    for c in chunks:
        for choice in c.choices:  # type: ignore[attr-defined]
            for delta in choice.delta.tool_calls or []:
                pieces.setdefault(delta.index, []).append(delta.function.arguments or "")
                if delta.function.name:
                    names[delta.index] = delta.function.name
    assert names == {0: "shell", 1: "think"}
    assert len(pieces[0]) == 4  # the arguments really arrive in pieces
    assert "".join(pieces[0]) == '{"cmd": "ls -la"}'
    assert "".join(pieces[1]) == '{"thought": "x"}'
    finish = [c.choices[0].finish_reason for c in chunks if c.choices]  # type: ignore[attr-defined]
    assert finish[-1] == "tool_calls"


def test_non_streamed_completion(openai_server: OpenAIServer) -> None:
    openai_server.script(Reply(text="whole answer", tool_calls=[ScriptedToolCall("think")]))
    completion = client(openai_server).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}]
    )
    message = completion.choices[0].message
    assert message.content == "whole answer"
    assert message.tool_calls is not None
    assert message.tool_calls[0].function.name == "think"  # type: ignore[union-attr]
    assert completion.usage is not None and completion.usage.total_tokens == 15


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, openai.AuthenticationError), (429, openai.RateLimitError), (500, openai.APIStatusError)],
)
def test_error_replies_raise_the_sdk_errors(
    openai_server: OpenAIServer, status: int, error: type[Exception]
) -> None:
    openai_server.script(Reply.error(status, "scripted failure"))
    with pytest.raises(error) as raised:
        stream(openai_server)
    assert "scripted failure" in str(raised.value)


def test_slow_first_byte_is_held_until_released(openai_server: OpenAIServer) -> None:
    release = threading.Event()
    openai_server.script(Reply(text="late", hold=release))
    result: list[str] = []
    worker = threading.Thread(
        target=lambda: result.append(
            "".join(c.choices[0].delta.content or "" for c in stream(openai_server) if c.choices)  # type: ignore[attr-defined]
        )
    )
    worker.start()
    openai_server.wait_for_requests(1)
    assert result == []  # nothing answered while the reply is held
    release.set()
    worker.join(timeout=10)
    assert result == ["late"]


def test_first_byte_delay_is_observable_by_a_client_timeout(openai_server: OpenAIServer) -> None:
    openai_server.script(Reply(text="late", first_byte_delay=1.0))
    slow = openai.OpenAI(base_url=openai_server.url, api_key="k", max_retries=0, timeout=0.2)
    with pytest.raises(openai.APITimeoutError):
        slow.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=True
        )
