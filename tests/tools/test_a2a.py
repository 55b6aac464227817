"""The a2a toolset against a real A2A agent process (tests/a2a_server.py, a2a-sdk's server)."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nbsession.tools import A2AToolset, Tool, ToolContext, build_toolsets, check_toolset

SERVER = str(Path(__file__).resolve().parent.parent / "a2a_server.py")
TOKEN = "a2a-secret-3"
DEADLINE = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Agent:
    """The test agent's process on a free port, requiring ``TOKEN``."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "A2A_TEST_TOKEN": TOKEN}
        self.proc = subprocess.Popen([sys.executable, SERVER, str(self.port)], env=env)
        deadline = time.monotonic() + DEADLINE
        while True:
            assert self.proc.poll() is None, "the A2A test agent exited"
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                assert time.monotonic() < deadline, "the A2A test agent never listened"
                time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)

    def __enter__(self) -> Agent:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


@pytest.fixture
def agent() -> Iterator[Agent]:
    with Agent() as running:
        yield running


def options(url: str, **more: Any) -> dict[str, Any]:
    return {
        "url": url,
        "allow_private_ips": True,
        "headers": {"Authorization": "Bearer ${A2A_TOKEN}"},
        **more,
    }


async def started(opts: dict[str, Any]) -> tuple[A2AToolset, dict[str, Tool]]:
    [toolset] = build_toolsets([("a2a", opts)])
    assert isinstance(toolset, A2AToolset)
    assert not toolset.started and await toolset.tools() == []
    await asyncio.wait_for(toolset.start(), DEADLINE)
    assert toolset.started
    return toolset, {tool.definition.name: tool for tool in await toolset.tools()}


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("A2A_TOKEN", TOKEN)


async def test_one_tool_per_skill_whose_call_returns_the_agents_answer(agent: Agent) -> None:
    toolset, tools = await started(options(agent.url, name="Helper"))
    try:
        assert sorted(tools) == ["helper_echo", "helper_summarise_v2"]
        echo = tools["helper_echo"].definition
        assert echo.description == (
            "Calls the 'Echo' skill of the Echo agent. Repeats the message."
        )
        assert echo.parameters["required"] == ["message"]
        assert echo.read_only is False  # asks for approval, as in docker-agent
        assert echo.category == "a2a"

        result = await tools["helper_echo"].call({"message": "hello"}, ToolContext("s1", ""))
        assert (result.output, result.is_error) == ("echo: hello", False)

        # A task: its status message and artifact chunks, streamed as they come.
        streamed: list[str] = []
        ctx = ToolContext("s1", "", output=streamed.append)
        result = await tools["helper_echo"].call({"message": "task: the report"}, ctx)
        assert (result.output, result.is_error) == ("working... done: the report", False)
        assert "".join(streamed) == result.output

        result = await tools["helper_echo"].call({"message": "fail"}, ctx)
        assert result.is_error
        assert result.output == "The agent's task ended failed: working... it broke"

        bad = await tools["helper_echo"].call({}, ctx)
        assert bad.is_error and "message" in bad.output
    finally:
        await toolset.close()
    assert not toolset.started and await toolset.tools() == []


async def test_an_agent_that_goes_away_gives_an_error_result(agent: Agent) -> None:
    toolset, tools = await started(options(agent.url))
    try:
        agent.stop()
        result = await tools["echo"].call({"message": "hello"}, ToolContext("s1", ""))
        assert result.is_error
        assert result.output.startswith("A2A call failed:")
    finally:
        await toolset.close()


async def test_what_keeps_the_toolset_from_starting(
    agent: Agent, monkeypatch: pytest.MonkeyPatch
) -> None:
    [unreachable] = build_toolsets([("a2a", options(f"http://127.0.0.1:{free_port()}"))])
    with pytest.raises(RuntimeError, match=r"cannot reach the A2A agent at http://127\.0\.0\.1"):
        await unreachable.start()
    assert not unreachable.started

    monkeypatch.setenv("A2A_TOKEN", "wrong")
    [refused] = build_toolsets([("a2a", options(agent.url))])
    with pytest.raises(RuntimeError, match="401"):
        await refused.start()

    [private] = build_toolsets([("a2a", {"url": agent.url})])
    with pytest.raises(RuntimeError, match="allow_private_ips"):
        await private.start()


async def test_without_the_sdk_the_start_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "a2a.client", None)  # as if a2a-sdk were not installed
    [toolset] = build_toolsets([("a2a", {"url": "https://agents.example.com"})])
    with pytest.raises(RuntimeError, match=re.escape("pip install 'nbsession[a2a]'")):
        await toolset.start()


@pytest.mark.parametrize(
    ("opts", "problem"),
    [
        ({}, "url: Field required"),
        ({"url": "ftp://x"}, "only HTTP and HTTPS"),
        ({"url": "http://x", "timeout": 0}, "timeout"),
    ],
)
def test_option_errors(opts: dict[str, Any], problem: str) -> None:
    assert problem in check_toolset("a2a", opts)
