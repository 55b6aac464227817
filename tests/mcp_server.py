"""A tiny real MCP server for the tests: ``python mcp_server.py stdio`` or ``... http PORT``.

Tools: ``add`` (read-only), ``remember`` (not read-only), ``pick_color`` (asks the client
through an elicitation), ``whoami`` (the process id and an environment variable), ``count``
(reports each step as progress, and logs it) and ``die`` (the process exits mid-call, as a
crashed server would). Over HTTP, when the environment
variable ``MCP_TEST_TOKEN`` is set, a request without ``Authorization: Bearer <it>`` gets 401.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations
from pydantic import BaseModel

server = MCPServer("nbsession-test-server")
notes: list[str] = []


@server.tool(annotations=ToolAnnotations(read_only_hint=True, title="Add"))
def add(a: int, b: int) -> str:
    """Add two integers."""
    return str(a + b)


@server.tool()
def remember(text: str) -> str:
    """Keep a note in the server's memory."""
    notes.append(text)
    return f"{len(notes)} note(s)"


class Color(BaseModel):
    color: str


@server.tool()
async def pick_color(ctx: Context) -> str:
    """Ask the user for a color."""
    answer = await ctx.elicit("Which color?", Color)
    if answer.action == "accept":
        return f"picked {answer.data.color}"
    return f"no color ({answer.action})"


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def whoami() -> str:
    """This process's id and its MCP_TEST_VALUE variable."""
    return f"{os.getpid()} {os.environ.get('MCP_TEST_VALUE', '')}"


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
async def count(steps: int, ctx: Context) -> str:
    """Count to ``steps``, each step a progress notification (and a log message)."""
    for step in range(1, steps + 1):
        await ctx.report_progress(step, steps, f"step {step}")
        await ctx.info(f"logged step {step}")
    return f"counted to {steps}"


@server.tool()
def die() -> str:
    """Exit at once, without answering."""
    os._exit(3)


def _guarded(app: Any, token: str) -> Any:
    """The ASGI app, refusing HTTP requests that lack the bearer token."""

    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            if headers.get(b"authorization") != f"Bearer {token}".encode():
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b"unauthorized"})
                return
        await app(scope, receive, send)

    return guarded


def main() -> None:
    if sys.argv[1] == "stdio":
        server.run("stdio")
        return
    import uvicorn

    app = server.streamable_http_app()
    token = os.environ.get("MCP_TEST_TOKEN")
    uvicorn.run(
        _guarded(app, token) if token else app,
        host="127.0.0.1",
        port=int(sys.argv[2]),
        log_level="warning",
    )


if __name__ == "__main__":
    main()
