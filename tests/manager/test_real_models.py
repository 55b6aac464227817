"""Turns on real provider code, against a loopback OpenAI-compatible server (SPEC 11).

Nothing here is mocked: pydantic-ai's OpenAI and Ollama models call the server over HTTP and
parse its streamed chat completions, exactly as they would a vendor's endpoint.
"""

from __future__ import annotations

import asyncio
import json
import socket
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest
from peers.openai_server import OpenAIServer, Reply, ScriptedToolCall

from nbsession.errors import InvalidModelRef

from .turn_helpers import (
    OPENING,
    choice_text,
    of_type,
    open_manager,
    open_reader,
    read_rest,
    roles,
    run_turn,
    types,
    user,
)

KEYS = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "MISTRAL_API_KEY",
    "AWS_BEARER_TOKEN_BEDROCK",
    "AWS_ACCESS_KEY_ID",
    "AWS_PROFILE",
)


@pytest.fixture(autouse=True)
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests choose which keys exist; the machine's own never leak in."""
    for key in KEYS:
        monkeypatch.delenv(key, raising=False)


def write(tmp_path: Path, name: str, text: str) -> str:
    (tmp_path / "agents").mkdir(exist_ok=True)
    (tmp_path / "agents" / f"{name}.yaml").write_text(textwrap.dedent(text))
    return name


def closed_url() -> str:
    """A loopback URL nothing listens on: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


async def one_turn(tmp_path: Path, agent: str, text: str = "hello", **config: Any) -> list[dict]:
    async with open_manager(tmp_path, **config) as mgr:
        sid = (await mgr.create_session({"title": "t"})).id
        return await run_turn(mgr, sid, text, agent=agent)


@pytest.mark.parametrize("provider", ["openai", "ollama", "dmr"])
async def test_openai_compatible_providers_with_base_url(
    tmp_path: Path, openai_server: OpenAIServer, provider: str
) -> None:
    """`openai`, `ollama` and `dmr` all honour base_url and need no key for a local server."""
    openai_server.script(Reply(text_chunks=["Hel", "lo ", "there"], prompt_tokens=7))
    agent = write(
        tmp_path,
        "local",
        f"""
        agents:
          root:
            model: m
            instruction: Be brief.
        models:
          m: {{provider: {provider}, model: llama3.2, base_url: "{openai_server.url}"}}
        """,
    )
    events = await one_turn(tmp_path, agent)
    assert types(events)[:5] == [*OPENING, "user_message", "stream_started"]
    assert events[0]["model"] == f"{provider}/llama3.2"
    assert choice_text(events) == "Hello there"
    assert events[-1]["reason"] == "normal"
    [request] = openai_server.requests
    assert request.body["model"] == "llama3.2" and request.body["stream"] is True
    assert request.messages[0] == {"role": "system", "content": "Be brief."}
    assert request.messages[-1] == {"role": "user", "content": "hello"}
    [usage] = of_type(events, "token_usage")
    assert usage["usage"]["input_tokens"] == 7 and usage["usage"]["output_tokens"] == 5


async def test_providers_section_endpoint_and_token_key(
    tmp_path: Path, openai_server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `providers:` entry gives its base_url and key variable to the models that name it."""
    monkeypatch.setenv("MY_GATEWAY_KEY", "secret-123")
    openai_server.script(Reply(text="via the gateway"))
    agent = write(
        tmp_path,
        "gw",
        f"""
        providers:
          gateway:
            api_type: openai_chatcompletions
            base_url: "{openai_server.url}"
            token_key: MY_GATEWAY_KEY
        agents:
          root: {{model: gateway/some-model}}
        """,
    )
    events = await one_turn(tmp_path, agent)
    assert choice_text(events) == "via the gateway"
    [request] = openai_server.requests
    assert request.headers["authorization"] == "Bearer secret-123"
    assert request.body["model"] == "some-model"


async def test_a_missing_key_names_the_variable(
    tmp_path: Path, openai_server: OpenAIServer
) -> None:
    agent = write(
        tmp_path,
        "gw",
        f"""
        providers:
          gateway: {{base_url: "{openai_server.url}", token_key: MY_GATEWAY_KEY}}
        agents:
          root: {{model: gateway/some-model}}
        """,
    )
    events = await one_turn(tmp_path, agent)
    [error] = of_type(events, "error")
    assert "MY_GATEWAY_KEY" in error["error"] and "gateway/some-model" in error["error"]
    assert openai_server.requests == []  # nothing was sent without the key


async def test_the_openai_default_endpoint_wants_its_key(tmp_path: Path) -> None:
    agent = write(tmp_path, "o", "agents: {root: {model: openai/gpt-4o}}")
    events = await one_turn(tmp_path, agent)
    [error] = of_type(events, "error")
    assert "OPENAI_API_KEY" in error["error"]


async def test_an_uninstalled_sdk_names_the_pip_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    try:
        import google.genai  # noqa: F401
    except ImportError:
        pass
    else:  # pragma: no cover - the google extra is installed here
        pytest.skip("the google extra is installed")
    monkeypatch.setenv("GOOGLE_API_KEY", "k")
    agent = write(tmp_path, "g", "agents: {root: {model: google/gemini-2.5-flash}}")
    events = await one_turn(tmp_path, agent)
    [error] = of_type(events, "error")
    assert "pip install 'nbsession[google]'" in error["error"]


async def test_an_unreachable_endpoint_names_the_model_and_the_url(tmp_path: Path) -> None:
    url = closed_url()
    agent = write(
        tmp_path,
        "down",
        f"""
        agents:
          root:
            model: m
            fallback: {{retries: -1}}
        models:
          m: {{provider: openai, model: gpt-x, base_url: "{url}"}}
        """,
    )
    events = await one_turn(tmp_path, agent)
    [error] = of_type(events, "error")
    assert error["error"].startswith(f"Cannot reach model openai/gpt-x at {url}")
    assert events[-1]["reason"] == "error"


async def test_fallback_after_an_unreachable_first_model(
    tmp_path: Path, openai_server: OpenAIServer
) -> None:
    url = closed_url()
    openai_server.script(Reply(text="the fallback answers"))
    agent = write(
        tmp_path,
        "fb",
        f"""
        agents:
          root:
            model: primary
            fallback:
              models: [backup]
              retries: 1
        models:
          primary: {{provider: openai, model: gpt-down, base_url: "{url}"}}
          backup: {{provider: ollama, model: qwen3, base_url: "{openai_server.url}"}}
        """,
    )
    events = await one_turn(tmp_path, agent)
    [fallback] = of_type(events, "model_fallback")
    assert fallback["failed_model"] == "openai/gpt-down"
    assert fallback["fallback_model"] == "ollama/qwen3"
    assert url in fallback["reason"]
    assert (fallback["attempt"], fallback["max_attempts"]) == (1, 2)
    assert choice_text(events) == "the fallback answers"
    assert "error" not in types(events)
    assert events[-1]["reason"] == "normal"


async def test_a_server_error_is_retried_then_falls_back(
    tmp_path: Path, openai_server: OpenAIServer
) -> None:
    with OpenAIServer() as backup:
        openai_server.script(Reply.error(503, "overloaded"), Reply.error(503, "still overloaded"))
        backup.script(Reply(text="backup here"))
        agent = write(
            tmp_path,
            "fb",
            f"""
            agents:
              root:
                model: a
                fallback: {{models: [b], retries: 1}}
            models:
              a: {{provider: openai, model: gpt-a, base_url: "{openai_server.url}"}}
              b: {{provider: openai, model: gpt-b, base_url: "{backup.url}"}}
            """,
        )
        events = await one_turn(tmp_path, agent)
    assert len(openai_server.requests) == 2  # 1 + retries attempts on the first model
    [fallback] = of_type(events, "model_fallback")
    assert "HTTP 503" in fallback["reason"] and "still overloaded" in fallback["reason"]
    assert choice_text(events) == "backup here"


async def test_a_client_error_moves_to_the_next_model_without_retrying(
    tmp_path: Path, openai_server: OpenAIServer
) -> None:
    openai_server.script(Reply.error(429, "slow down"), Reply(text="second model"))
    agent = write(
        tmp_path,
        "fb",
        f"""
        agents:
          root:
            model: a
            fallback: {{models: [b]}}
        models:
          a: {{provider: openai, model: gpt-a, base_url: "{openai_server.url}"}}
          b: {{provider: openai, model: gpt-b, base_url: "{openai_server.url}"}}
        """,
    )
    events = await one_turn(tmp_path, agent)
    assert [r.body["model"] for r in openai_server.requests] == ["gpt-a", "gpt-b"]
    assert of_type(events, "model_fallback")[0]["reason"].endswith("slow down")
    assert choice_text(events) == "second model"


async def test_alloy_models_take_turns(tmp_path: Path, openai_server: OpenAIServer) -> None:
    calc = ScriptedToolCall("think", {"thought": "17*23 is 391"}, pieces=4)
    openai_server.script(Reply(tool_calls=[calc]), Reply(text="391"))
    agent = write(
        tmp_path,
        "alloy",
        f"""
        agents:
          root:
            model: a,b
            toolsets: [{{type: think}}]
        models:
          a: {{provider: openai, model: gpt-a, base_url: "{openai_server.url}"}}
          b: {{provider: ollama, model: llama-b, base_url: "{openai_server.url}"}}
        """,
    )
    events = await one_turn(tmp_path, agent, "what is 17*23")
    assert events[0]["model"] == "openai/gpt-a,ollama/llama-b"
    assert [r.body["model"] for r in openai_server.requests] == ["gpt-a", "llama-b"]
    [call] = of_type(events, "tool_call")
    assert json.loads(call["tool_call"]["function"]["arguments"]) == {"thought": "17*23 is 391"}
    partials = of_type(events, "partial_tool_call")
    # The split arguments streamed as they came: each piece only its new bytes.
    joined = "".join(p["tool_call"]["function"]["arguments"] for p in partials)
    assert joined == call["tool_call"]["function"]["arguments"]
    second = openai_server.requests[1]
    assert [m["role"] for m in second.messages] == ["user", "assistant", "tool"]
    assert choice_text(events) == "391"


async def test_model_options_reach_the_request(tmp_path: Path, openai_server: OpenAIServer) -> None:
    agent = write(
        tmp_path,
        "opts",
        f"""
        agents:
          root: {{model: m, toolsets: [{{type: think}}]}}
        models:
          m:
            provider: openai
            model: gpt-o
            base_url: "{openai_server.url}"
            temperature: 0.3
            max_tokens: 321
            top_p: 0.9
            frequency_penalty: 0.1
            presence_penalty: 0.2
            parallel_tool_calls: false
            provider_opts: {{seed_hint: 7}}
        """,
    )
    await one_turn(tmp_path, agent)
    body = openai_server.requests[0].body
    assert body["temperature"] == 0.3
    assert 321 in (body.get("max_tokens"), body.get("max_completion_tokens"))
    assert (body["top_p"], body["frequency_penalty"], body["presence_penalty"]) == (0.9, 0.1, 0.2)
    assert body["parallel_tool_calls"] is False
    assert body["seed_hint"] == 7


async def test_usage_cost_and_context_limit_from_the_price_table(
    tmp_path: Path, openai_server: OpenAIServer
) -> None:
    openai_server.script(
        Reply(text="a", prompt_tokens=1000, completion_tokens=100),
        Reply(text="b", prompt_tokens=2000, completion_tokens=200),
    )
    agent = write(
        tmp_path,
        "priced",
        f"""
        agents:
          root: {{model: m}}
        models:
          m: {{provider: openai, model: gpt-4o-mini, base_url: "{openai_server.url}"}}
        """,
    )
    async with open_manager(tmp_path) as mgr, open_reader(tmp_path) as reader:
        sid = (await mgr.create_session({"title": "t"})).id
        first = of_type(await run_turn(mgr, sid, "one", agent=agent), "token_usage")[0]["usage"]
        second = of_type(await run_turn(mgr, sid, "two", agent=agent), "token_usage")[0]["usage"]
        stored = await reader.get_session(sid)
    assert first["context_limit"] == second["context_limit"] == 128000
    assert first["context_length"] == 1100 and second["context_length"] == 2200
    assert first["cost"] > 0 and second["cost"] == pytest.approx(3 * first["cost"])
    assert (second["input_tokens"], second["output_tokens"]) == (3000, 300)
    assert (stored.input_tokens, stored.output_tokens) == (3000, 300)
    assert stored.cost == pytest.approx(second["cost"])
    answers = [m.message for m in stored.chat_messages() if m.message.role == "assistant"]
    assert sum(m.cost or 0 for m in answers) == pytest.approx(stored.cost)
    assert {m.model for m in answers} == {"openai/gpt-4o-mini"}


async def test_a_local_model_has_no_price(tmp_path: Path, openai_server: OpenAIServer) -> None:
    agent = write(
        tmp_path,
        "local",
        f"""
        agents:
          root: {{model: m}}
        models:
          m: {{provider: ollama, model: llama3.2, base_url: "{openai_server.url}"}}
        """,
    )
    [usage] = of_type(await one_turn(tmp_path, agent), "token_usage")
    assert usage["usage"]["cost"] == 0 and usage["usage"]["context_limit"] == 0


async def test_title_model_off_makes_no_model_call(
    tmp_path: Path, openai_server: OpenAIServer
) -> None:
    agent = write(
        tmp_path,
        "t",
        f"""
        agents:
          root: {{model: m}}
        models:
          m: {{provider: openai, model: gpt-t, base_url: "{openai_server.url}"}}
        """,
    )
    async with open_manager(tmp_path, title_model="off") as mgr:
        sid = (await mgr.create_session({})).id
        events = await run_turn(mgr, sid, "please summarise the report", agent=agent)
    [title] = of_type(events, "session_title")
    assert title["title"] == "please summarise the report"
    assert len(openai_server.requests) == 1  # the answer only


async def test_title_model_ref_and_the_sessions_own_model(
    tmp_path: Path, openai_server: OpenAIServer
) -> None:
    with OpenAIServer(default=lambda request: Reply(text="A Named Title")) as titles:
        agent = write(
            tmp_path,
            "t",
            f"""
            agents:
              root: {{model: m}}
            models:
              m: {{provider: openai, model: gpt-main, base_url: "{openai_server.url}"}}
              other: {{provider: openai, model: gpt-other, base_url: "{openai_server.url}"}}
              namer: {{provider: ollama, model: small, base_url: "{titles.url}"}}
            """,
        )
        async with open_manager(tmp_path, title_model="namer") as mgr:
            sid = (await mgr.create_session({})).id
            events = await run_turn(mgr, sid, "hello", agent=agent)
        assert of_type(events, "session_title")[0]["title"] == "A Named Title"
        assert [r.body["model"] for r in titles.requests] == ["small"]
        assert [r.body["model"] for r in openai_server.requests] == ["gpt-main"]

    # Empty (the default): the session's current model, its override included.
    async with open_manager(tmp_path) as mgr:
        sid = (await mgr.create_session({})).id
        await run_turn(mgr, sid, "hello", agent=agent, model="other")
    titled = [r for r in openai_server.requests[1:] if r.body["model"] == "gpt-other"]
    assert len(titled) == 2  # the answer and the title, both on the chosen model


async def test_models_lists_models_used_before(tmp_path: Path, openai_server: OpenAIServer) -> None:
    agent = write(
        tmp_path,
        "pick",
        f"""
        agents:
          root: {{model: m}}
        models:
          m: {{provider: openai, model: gpt-m, base_url: "{openai_server.url}"}}
          n: {{provider: ollama, model: llama-n, base_url: "{openai_server.url}"}}
        """,
    )
    async with open_manager(tmp_path) as mgr:
        sid = (await mgr.create_session({"title": "t"})).id
        with pytest.raises(InvalidModelRef):
            await run_turn(mgr, sid, "hi", agent=agent, model="nowhere/x")
        await run_turn(mgr, sid, "hi", agent=agent, model="ollama/custom")
        await run_turn(mgr, sid, "hi", agent=agent, model="n")
        models = await mgr.available_session_models(sid)
        stored = await mgr.get_session(sid)
    assert stored.custom_models_used == ["ollama/custom"]
    listed = {m["ref"]: m for m in models["models"]}
    assert list(listed) == ["m", "n", "ollama/custom"]
    assert listed["m"]["is_default"] and not listed["m"]["is_current"]
    assert listed["n"]["is_current"] and models["current_model_ref"] == "n"
    assert (listed["ollama/custom"]["provider"], listed["ollama/custom"]["model"]) == (
        "ollama",
        "custom",
    )


async def test_cancel_while_the_model_holds_its_first_byte(
    tmp_path: Path, openai_server: OpenAIServer
) -> None:
    release = threading.Event()
    openai_server.script(Reply(text="late", hold=release))
    agent = write(
        tmp_path,
        "slow",
        f"""
        agents:
          root: {{model: m}}
        models:
          m: {{provider: openai, model: gpt-slow, base_url: "{openai_server.url}"}}
        """,
    )
    async with open_manager(tmp_path) as mgr:
        sid = (await mgr.create_session({"title": "t"})).id
        stream = await mgr.run_session(sid, agent, "", user("hello"))
        await asyncio.to_thread(openai_server.wait_for_requests, 1)
        await mgr.cancel_session(sid)
        events = await read_rest(stream)
        release.set()
        session = await mgr.get_session(sid)
    assert events[-1]["type"] == "stream_stopped" and events[-1]["reason"] == "canceled"
    assert "agent_choice" not in types(events)
    assert roles(session) == ["user"]


async def test_anthropic_wire_through_a_providers_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The anthropic provider (its optional SDK) against a loopback Messages API server."""
    pytest.importorskip("anthropic")
    from peers.anthropic_server import AnthropicServer

    monkeypatch.setenv("CLAUDE_PROXY_KEY", "proxy-secret")
    calc = ScriptedToolCall("think", {"thought": "17*23 is 391"}, pieces=3)
    with AnthropicServer() as server:
        server.script(
            Reply(text="Let me think.", tool_calls=[calc], prompt_tokens=1000),
            Reply(text_chunks=["3", "91"], prompt_tokens=1100, completion_tokens=3),
        )
        agent = write(
            tmp_path,
            "claude",
            f"""
            providers:
              proxy: {{provider: anthropic, base_url: "{server.url}", token_key: CLAUDE_PROXY_KEY}}
            agents:
              root:
                model: proxy/claude-sonnet-4-6
                instruction: Think first.
                toolsets: [{{type: think}}]
            models: {{}}
            """,
        )
        events = await one_turn(tmp_path, agent, "what is 17*23")
        requests = list(server.requests)
    assert events[0]["model"] == "proxy/claude-sonnet-4-6"
    assert choice_text(events) == "Let me think.391"
    [call] = of_type(events, "tool_call")
    assert call["tool_call"]["function"]["name"] == "think"
    assert json.loads(call["tool_call"]["function"]["arguments"]) == {"thought": "17*23 is 391"}
    assert of_type(events, "tool_call_response")[0]["result"]["isError"] is False
    first, second = requests
    assert first.body["model"] == "claude-sonnet-4-6" and first.body["system"]
    key = first.headers.get("x-api-key") or first.headers.get("authorization", "")
    assert key.removeprefix("Bearer ") == "proxy-secret"
    assert [m["role"] for m in second.body["messages"]] == ["user", "assistant", "user"]
    usages = [e["usage"] for e in of_type(events, "token_usage")]
    assert usages[-1]["input_tokens"] == 2100 and usages[-1]["output_tokens"] == 8
    assert events[-1]["reason"] == "normal"


async def test_a_fallback_stays_in_use_for_the_cooldown_after_a_refusal(
    tmp_path: Path, openai_server: OpenAIServer
) -> None:
    """docker-agent's cooldown: after the primary refused (a 4xx) and a fallback answered,
    the next calls go to the fallback until the cooldown ends."""
    openai_server.script(Reply.error(429, "slow down"), Reply(text="one"), Reply(text="two"))
    agent = write(
        tmp_path,
        "cool",
        f"""
        agents:
          root:
            model: a
            fallback: {{models: [b], cooldown: 1h}}
        models:
          a: {{provider: openai, model: gpt-a, base_url: "{openai_server.url}"}}
          b: {{provider: openai, model: gpt-b, base_url: "{openai_server.url}"}}
        """,
    )
    async with open_manager(tmp_path) as mgr:
        sid = (await mgr.create_session({"title": "t"})).id
        first = await run_turn(mgr, sid, "one", agent=agent)
        second = await run_turn(mgr, sid, "two", agent=agent)
    assert [r.body["model"] for r in openai_server.requests] == ["gpt-a", "gpt-b", "gpt-b"]
    assert len(of_type(first, "model_fallback")) == 1
    assert of_type(second, "model_fallback") == []  # started on the fallback
    assert choice_text(second) == "two"


async def test_a_rate_limit_is_reported_with_docker_agents_code(
    tmp_path: Path, openai_server: OpenAIServer
) -> None:
    openai_server.script(Reply.error(429, "slow down"))
    agent = write(
        tmp_path,
        "limited",
        f"""
        agents:
          root: {{model: m}}
        models:
          m: {{provider: openai, model: gpt-r, base_url: "{openai_server.url}"}}
        """,
    )
    [error] = of_type(await one_turn(tmp_path, agent), "error")
    assert error["code"] == "rate_limited"
    assert (
        error["error"] == f"Model openai/gpt-r at {openai_server.url} answered HTTP 429: slow down"
    )
    assert len(openai_server.requests) == 1  # a 429 is not retried on the same model
