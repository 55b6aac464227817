"""The webhook toolset against a real local HTTP endpoint that records what it receives."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from peers.loopback import serving

from nbsession.tools import Tool, ToolContext, build_toolsets, check_toolset

CTX = ToolContext("s1", "")
# Status codes the endpoint answers with, by path, one per request (then 200).
SCRIPTS: dict[str, list[int]] = {}
RECEIVED: list[dict[str, Any]] = []


class Endpoint(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # the stdlib's name
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length))
        RECEIVED.append({"path": self.path, "body": body, "auth": self.headers["Authorization"]})
        script = SCRIPTS.get(self.path) or []
        code = script.pop(0) if script else 200
        self.send_response(code)
        if code == 429:
            self.send_header("Retry-After", "1")
        data = b"ok" if code == 200 else b"busy"
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def base() -> Iterator[str]:
    RECEIVED.clear()
    SCRIPTS.clear()
    with serving(Endpoint) as url:
        yield url


async def send_tool(url: str, **config: Any) -> Tool:
    options = {"allow_private_ips": True, "webhook_config": {"url": url, **config}}
    [toolset] = build_toolsets([("webhook", options)])
    [tool] = await toolset.tools()
    return tool


async def test_the_message_reaches_the_endpoint_in_the_providers_shape(
    base: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_PATH", "hooks/abc")
    monkeypatch.setenv("HOOK_TOKEN", "t0k")
    tool = await send_tool(
        base + "/${env.HOOK_PATH}", headers={"Authorization": "Bearer ${HOOK_TOKEN}"}
    )
    definition = tool.definition
    assert (definition.name, definition.read_only, definition.category) == (
        "send_webhook",
        False,  # asks for approval
        "webhook",
    )
    assert definition.parameters["required"] == ["message"]
    result = await tool.call({"message": "build passed"}, CTX)
    assert (result.output, result.is_error) == (
        "Delivered to the generic webhook (attempt 1/4).",
        False,
    )
    assert RECEIVED == [
        {"path": "/hooks/abc", "body": {"text": "build passed"}, "auth": "Bearer t0k"}
    ]

    # The same message again within 30 s is suppressed; another too soon is refused.
    again = await tool.call({"message": "build passed"}, CTX)
    assert again.output.startswith("Suppressed: an identical message") and not again.is_error
    soon = await tool.call({"message": "other"}, CTX)
    assert soon.is_error and soon.output.startswith("Error: rate limited; wait ")
    assert len(RECEIVED) == 1
    assert (await tool.call({"message": " "}, CTX)).output == "Error: message is required."


@pytest.mark.parametrize(
    ("config", "body"),
    [
        ({"provider": "Discord"}, {"content": "hi"}),
        ({"provider": "telegram", "chat_id": "42"}, {"chat_id": "42", "text": "hi"}),
        ({"provider": "ifttt"}, {"value1": "hi", "value2": "two"}),
        ({"provider": "msteams"}, {"text": "hi"}),
    ],
)
async def test_provider_payloads(base: str, config: dict[str, Any], body: dict[str, str]) -> None:
    tool = await send_tool(base + "/p", **config)
    result = await tool.call({"message": "hi", "value2": "two"}, CTX)
    assert not result.is_error, result.output
    assert RECEIVED[-1]["body"] == body


async def test_transient_failures_are_retried_and_client_errors_are_not(base: str) -> None:
    SCRIPTS["/flaky"] = [503, 429]
    result = await (await send_tool(base + "/flaky")).call({"message": "m"}, CTX)
    assert (result.output, result.is_error) == (
        "Delivered to the generic webhook (attempt 3/4).",
        False,
    )
    assert len(RECEIVED) == 3

    SCRIPTS["/gone"] = [404]
    result = await (await send_tool(base + "/gone")).call({"message": "m"}, CTX)
    assert result.is_error
    assert result.output == "Delivery to the generic webhook failed permanently: HTTP 404: busy"
    assert len(RECEIVED) == 4


async def test_unreachable_and_private_endpoints(base: str) -> None:
    [toolset] = build_toolsets([("webhook", {"webhook_config": {"url": base + "/x"}})])
    [tool] = await toolset.tools()
    result = await tool.call({"message": "m"}, CTX)
    assert result.is_error and "allow_private_ips" in result.output
    assert RECEIVED == []

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    tool = await send_tool(f"http://127.0.0.1:{closed}/s3cret-path")
    result = await tool.call({"message": "m"}, CTX)
    assert result.is_error
    assert "failed after 4 attempt(s): request failed: " in result.output
    assert "s3cret" not in result.output  # the URL is the credential


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({}, "webhook_config: Field required"),
        ({"webhook_config": {"provider": "slack"}}, "url: Field required"),
        ({"webhook_config": {"url": "http://x", "provider": "pager"}}, "unknown provider 'pager'"),
        ({"webhook_config": {"url": "http://x", "provider": "telegram"}}, "requires chat_id"),
    ],
)
def test_option_errors(options: dict[str, Any], problem: str) -> None:
    assert problem in check_toolset("webhook", options)
