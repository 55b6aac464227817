"""The mcp toolset against a real MCP server process (tests/mcp_server.py), stdio and HTTP."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nbsession.tools import (
    ElicitationResult,
    MCPToolset,
    Tool,
    ToolContext,
    ToolResult,
    build_toolsets,
)
from nbsession.tools.mcp import MCPOptions

from .test_shell import alive

SERVER = str(Path(__file__).resolve().parent.parent / "mcp_server.py")
STDIO = {"command": sys.executable, "args": [SERVER, "stdio"]}
TOKEN = "mcp-secret-7"
DEADLINE = 30.0


async def gone(pid: int, timeout: float = DEADLINE) -> bool:
    """Whether ``pid`` ends within ``timeout`` (polling is synchronisation here)."""
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def http_server() -> Iterator[str]:
    """The test server on streamable HTTP, requiring a bearer token; yields its URL."""
    port = free_port()
    env = {**os.environ, "MCP_TEST_TOKEN": TOKEN}
    proc = subprocess.Popen([sys.executable, SERVER, "http", str(port)], env=env)
    try:
        deadline = time.monotonic() + DEADLINE
        while True:
            assert proc.poll() is None, "the MCP test server exited"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the MCP test server never listened"
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(10)


def ctx(tmp_path: Path, answer: ElicitationResult | None = None) -> ToolContext:
    asked: list[tuple[str, Any]] = []

    async def elicit(message: str, schema: Any) -> ElicitationResult:
        asked.append((message, schema))
        assert answer is not None
        return answer

    context = ToolContext("s1", str(tmp_path), elicit if answer is not None else None)
    context.asked = asked  # type: ignore[attr-defined]
    return context


async def started(options: dict[str, Any]) -> tuple[MCPToolset, dict[str, Tool]]:
    toolset = MCPToolset(options)
    assert not toolset.started and await toolset.tools() == []
    await asyncio.wait_for(toolset.start(), DEADLINE)
    assert toolset.started
    return toolset, {tool.definition.name: tool for tool in await toolset.tools()}


async def test_stdio_tools_schemas_annotations_and_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = {**STDIO, "env": {"MCP_TEST_VALUE": "from-${env.NBS_TEST_MCP}"}}
    monkeypatch.setenv("NBS_TEST_MCP", "env")
    toolset, tools = await started(options)
    try:
        assert set(tools) == {"add", "remember", "pick_color", "whoami", "count", "die"}
        add = tools["add"].definition
        assert add.read_only and add.title == "Add" and add.category == "mcp"
        assert add.parameters["required"] == ["a", "b"]
        assert add.parameters["properties"]["a"]["type"] == "integer"
        assert add.description == "Add two integers."
        assert not tools["remember"].definition.read_only
        assert tools["whoami"].definition.read_only

        assert await tools["add"].call({"a": 2, "b": 40}, ctx(tmp_path)) == ToolResult("42")
        # null for an optional argument is dropped rather than sent.
        assert (await tools["remember"].call({"text": "x", "extra": None}, ctx(tmp_path))).output
        pid, value = (await tools["whoami"].call({}, ctx(tmp_path))).output.split()
        assert value == "from-env"
        bad = await tools["add"].call({"a": "two"}, ctx(tmp_path))
        assert bad.is_error
    finally:
        await toolset.close()
    assert not toolset.started
    assert await gone(int(pid)), "closing the toolset must stop the server process"


async def test_elicitation_goes_to_the_calling_context(tmp_path: Path) -> None:
    toolset, tools = await started(STDIO)
    try:
        accepted = ctx(tmp_path, ElicitationResult("accept", {"color": "teal"}))
        assert (await tools["pick_color"].call({}, accepted)).output == "picked teal"
        [(message, schema)] = accepted.asked  # type: ignore[attr-defined]
        assert message == "Which color?"
        assert schema["properties"]["color"]["type"] == "string"
        declined = ctx(tmp_path, ElicitationResult("decline"))
        assert (await tools["pick_color"].call({}, declined)).output == "no color (decline)"
        headless = ctx(tmp_path)  # no way to ask: the server hears "decline"
        assert (await tools["pick_color"].call({}, headless)).output == "no color (decline)"
    finally:
        await toolset.close()


async def test_a_dying_server_is_an_error_result_and_restarts(tmp_path: Path) -> None:
    toolset, tools = await started(STDIO)
    try:
        first = int((await tools["whoami"].call({}, ctx(tmp_path))).output.split()[0])
        died = await asyncio.wait_for(tools["die"].call({}, ctx(tmp_path)), DEADLINE)
        assert died.is_error and "stopped while running die" in died.output
        assert not toolset.started and await toolset.tools() == []
        later = await tools["add"].call({"a": 1, "b": 1}, ctx(tmp_path))
        assert later.is_error and "restarted at the next turn" in later.output

        await asyncio.wait_for(toolset.start(), DEADLINE)
        again = {tool.definition.name: tool for tool in await toolset.tools()}
        second = int((await again["whoami"].call({}, ctx(tmp_path))).output.split()[0])
        assert second != first
        assert await tools["add"].call({"a": 1, "b": 1}, ctx(tmp_path)) == ToolResult("2")
    finally:
        await toolset.close()


async def test_a_server_that_cannot_start_raises_and_can_be_retried(tmp_path: Path) -> None:
    toolset = MCPToolset({"command": str(tmp_path / "no-such-server")})
    with pytest.raises(Exception, match="no-such-server"):
        await asyncio.wait_for(toolset.start(), DEADLINE)
    assert not toolset.started
    await toolset.close()


async def test_remote_streamable_http_with_headers(tmp_path: Path, http_server: str) -> None:
    remote = {"url": http_server, "headers": {"Authorization": f"Bearer {TOKEN}"}}
    toolset, tools = await started({"remote": remote})
    try:
        assert tools["add"].definition.read_only
        assert await tools["add"].call({"a": 1, "b": 2}, ctx(tmp_path)) == ToolResult("3")
        answer = ElicitationResult("accept", {"color": "red"})
        assert (await tools["pick_color"].call({}, ctx(tmp_path, answer))).output == "picked red"
    finally:
        await toolset.close()

    refused = MCPToolset({"remote": {"url": http_server}})  # no token: the server says 401
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(refused.start(), DEADLINE)
    await refused.close()


async def test_tool_filter_and_name_prefix() -> None:
    [toolset] = build_toolsets([("mcp", {**STDIO, "tools": ["add", "whoami"], "name": "calc"})])
    assert toolset.type == "mcp" and not toolset.started
    await asyncio.wait_for(toolset.start(), DEADLINE)
    tools = {tool.definition.name: tool for tool in await toolset.tools()}
    try:
        assert set(tools) == {"calc_add", "calc_whoami"}
        result = await tools["calc_add"].call({"a": 1, "b": 2}, ToolContext("s", ""))
        assert result == ToolResult("3")
    finally:
        await toolset.close()


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({}, "exactly one of command, remote.url or ref"),
        ({**STDIO, "remote": {"url": "http://x"}}, "exactly one of command, remote.url or ref"),
        ({"ref": "smithery:x"}, "only Docker MCP catalog references"),
        ({**STDIO, "ref": "docker:duckduckgo"}, "cannot be combined"),
        ({"remote": {"url": ""}}, "remote.url"),
        ({"command": "x", "args": "not-a-list"}, "args"),
    ],
)
def test_option_errors(options: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        MCPToolset(options)


def test_a_docker_catalog_ref_runs_through_the_mcp_gateway() -> None:
    options = MCPOptions.model_validate({"ref": "docker:duckduckgo"})
    assert (options.command, options.args) == (
        "docker",
        ["mcp", "gateway", "run", "--servers", "duckduckgo"],
    )
