"""The ``mcp`` toolset: the tools of a Model Context Protocol server, through the official client.

A server is either a local process spoken to over stdio (``command``, ``args``, ``env``) or a
remote one (``remote.url``, streamable HTTP by default, with ``remote.headers``), as in
docker-agent's agent files. Tools keep the server's names, schemas and annotations; a tool
annotated ``readOnlyHint`` is read-only here, so it runs without approval by default.

Life cycle: the runtime starts the toolset at the beginning of a turn (``start``); the
connection then lives in a task of its own, because the client's context must be entered and
left by the same task. A call that finds the server gone (the process died, the connection
broke) is answered with an error result and drops the connection, so ``started`` turns False
and the next turn starts the server again. ``close`` stops the process with the session.

A server may ask the user something while one of its tools runs (an MCP elicitation): the
question goes to ``ToolContext.elicit`` of the call in progress, which the runtime turns into
an ``elicitation_request`` event answered through ``/elicitation``. Its progress notifications
during a call (``notifications/progress``, for the call's own progress token) become that
call's streamed output, one line each (``3/10 message``), as ``tool_call_output`` events;
docker-agent drops them. Log messages (``notifications/message``) are not forwarded, as in
docker-agent: they are the server's log, not the call's output.

The client speaks the initialize-handshake protocol ("legacy" in the SDK's words) that deployed
servers speak, and that keeps server-initiated requests (elicitation) working.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from contextlib import AsyncExitStack, suppress
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .base import Tool, ToolContext, ToolDefinition, ToolResult, Toolset
from .base import expand_env as expand

log = logging.getLogger("nbsession.tools.mcp")

START_TIMEOUT = 60.0
_CLOSE_TIMEOUT = 10.0


class RemoteOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str = Field(min_length=1)
    transport_type: Literal["streamable", "streamable-http", "sse"] = "streamable"
    headers: dict[str, str] = Field(default_factory=dict)


class MCPOptions(BaseModel):
    """The ``mcp`` entry's options (docker-agent's names); other keys are not ours."""

    model_config = ConfigDict(extra="ignore")

    command: str = ""
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    remote: RemoteOptions | None = None
    ref: str = ""
    name: str = Field("", description="Prefix of the tool names: <name>_<tool>")

    @model_validator(mode="after")
    def _one_server(self) -> MCPOptions:
        if self.ref:
            self._gateway()
        if bool(self.command) == (self.remote is not None):
            raise ValueError("an mcp toolset needs exactly one of command, remote.url or ref")
        return self

    def _gateway(self) -> None:
        """``ref: docker:NAME``: the server NAME of Docker's MCP catalog, run as docker-agent
        runs it, through the Docker MCP Toolkit's gateway (``docker mcp gateway run``) over
        stdio. A machine without it gets the usual warning when the server cannot start."""
        kind, _, server = self.ref.partition(":")
        if kind != "docker" or not server:
            raise ValueError(
                f"ref {self.ref!r}: only Docker MCP catalog references (docker:NAME) are "
                "supported; give the server's command or remote.url instead"
            )
        if self.command or self.remote is not None:
            raise ValueError(f"ref {self.ref!r} cannot be combined with command or remote")
        self.command = "docker"
        self.args = ["mcp", "gateway", "run", "--servers", server]

    def describe(self) -> str:
        """A short, secret-free name for messages: the command, or the remote's URL."""
        return self.command if self.command else self.remote.url if self.remote else "mcp"


class MCPToolset(Toolset):
    """The tools of one MCP server (see the module docstring).

    Raises ``pydantic.ValidationError`` (a ``ValueError``) for options that name no server,
    both kinds of server, or a ``ref`` outside Docker's catalog.
    """

    type: ClassVar[str] = "mcp"
    options_model = MCPOptions

    def __init__(self, options: Mapping[str, Any] | None = None, working_dir: str = "") -> None:
        self._options = MCPOptions.model_validate(dict(options or {}))
        self._working_dir = working_dir
        self._connection: _Connection | None = None
        self._tools: list[Tool] = []
        self._calling: ToolContext | None = None
        self._lock = asyncio.Lock()

    @property
    def started(self) -> bool:
        return self._connection is not None and self._connection.alive

    async def start(self) -> None:
        """Connect (starting the process for stdio) and list the server's tools."""
        async with self._lock:
            if self.started:
                return
            await self._drop()
            connection = _Connection(self._options, self._working_dir, self._on_elicit)
            await connection.open(START_TIMEOUT)
            try:
                listed = await connection.list_tools()
            except BaseException:
                await connection.close()
                raise
            self._tools = [_MCPTool(self, tool) for tool in listed]
            self._connection = connection

    async def tools(self) -> list[Tool]:
        return list(self._tools) if self.started else []

    async def close(self) -> None:
        async with self._lock:
            await self._drop()

    async def call(self, name: str, arguments: Mapping[str, Any], ctx: ToolContext) -> ToolResult:
        """Call the server's tool ``name``; a broken connection is an error result."""
        from mcp import MCPError
        from mcp.shared.exceptions import NoBackChannelError

        connection = self._connection
        where = self._options.describe()
        if connection is None or not connection.alive:
            return ToolResult(
                f"The MCP server {where} is not running; it is restarted at the next turn.",
                is_error=True,
            )
        # Models send null for optional arguments; servers reject null for typed ones.
        arguments = {key: value for key, value in arguments.items() if value is not None}
        self._calling = ctx
        try:
            result = await connection.call_tool(name, arguments, _progress_writer(ctx))
        except NoBackChannelError as exc:
            return ToolResult(f"The MCP server {where} failed: {exc}", is_error=True)
        except MCPError as exc:
            if not _connection_lost(exc):
                return ToolResult(f"{name} failed on the MCP server: {exc}", is_error=True)
            return await self._lost(name, exc)
        except (OSError, EOFError) as exc:
            return await self._lost(name, exc)
        except Exception as exc:
            if _is_transport_error(exc):
                return await self._lost(name, exc)
            raise
        finally:
            self._calling = None
        return _to_result(result)

    async def _lost(self, name: str, exc: BaseException) -> ToolResult:
        log.warning("MCP server %s died during %s: %s", self._options.describe(), name, exc)
        async with self._lock:
            await self._drop()
        return ToolResult(
            f"The MCP server {self._options.describe()} stopped while running {name} "
            f"({exc or type(exc).__name__}); it is restarted at the next turn.",
            is_error=True,
        )

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        self._tools = []
        if connection is not None:
            await connection.close()

    async def _on_elicit(self, _context: Any, params: Any) -> Any:
        """A server's question during a call, asked through the call's ``ctx.elicit``."""
        from mcp.types import ElicitRequestFormParams, ElicitResult

        ctx = self._calling
        if ctx is None or ctx.elicit is None or not isinstance(params, ElicitRequestFormParams):
            # Outside a call, in a headless run, or URL mode (not supported): say no.
            return ElicitResult(action="decline")
        answer = await ctx.elicit(params.message, dict(params.requested_schema or {}))
        content = dict(answer.content) if answer.content is not None else None
        return ElicitResult(action=answer.action, content=content)


class _MCPTool(Tool):
    def __init__(self, toolset: MCPToolset, tool: Any) -> None:
        self._toolset = toolset
        self.server_name = tool.name  # what `tools:` filters on, before the `name` prefix
        annotations = tool.annotations
        prefix = toolset._options.name
        self.definition = ToolDefinition(
            name=f"{prefix}_{tool.name}" if prefix else tool.name,
            description=tool.description or "",
            parameters=dict(tool.input_schema or {"type": "object", "properties": {}}),
            read_only=bool(annotations and annotations.read_only_hint),
            title=(annotations.title if annotations and annotations.title else tool.title) or "",
            category="mcp",
        )

    async def call(self, arguments: Mapping[str, Any], ctx: ToolContext) -> ToolResult:
        return await self._toolset.call(self.server_name, arguments, ctx)


class _Connection:
    """One client connection, held open by a task of its own until ``close``."""

    def __init__(self, options: MCPOptions, working_dir: str, on_elicit: Any) -> None:
        self._options = options
        self._working_dir = working_dir
        self._on_elicit = on_elicit
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._client: Any = None
        self._error: BaseException | None = None
        self.alive = False

    async def open(self, timeout: float) -> None:
        self._task = asyncio.get_running_loop().create_task(self._serve())
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except asyncio.TimeoutError:
            await self.close()
            raise TimeoutError(
                f"the MCP server {self._options.describe()} did not answer within {timeout:g} s"
            ) from None
        except BaseException:
            await self.close()
            raise
        if not self.alive:
            await self.close()
            raise ConnectionError(
                f"could not connect to the MCP server {self._options.describe()}: "
                f"{_describe(self._error)}"
            )

    async def list_tools(self) -> list[Any]:
        tools: list[Any] = []
        cursor: str | None = None
        while True:
            page = await self._client.list_tools(cursor=cursor)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                return tools

    async def call_tool(self, name: str, arguments: dict[str, Any], progress: Any = None) -> Any:
        return await self._client.call_tool(name, arguments, progress_callback=progress)

    async def close(self) -> None:
        self.alive = False
        self._stop.set()
        task = self._task
        if task is None or task.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), _CLOSE_TIMEOUT)
        except asyncio.TimeoutError:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    async def _serve(self) -> None:
        from mcp import Client

        try:
            async with AsyncExitStack() as stack:
                transport = await self._transport(stack)
                self._client = await stack.enter_async_context(
                    Client(
                        transport,
                        mode="legacy",
                        elicitation_callback=self._on_elicit,
                        cache=None,
                    )
                )
                self.alive = True
                self._ready.set()
                await self._stop.wait()
        except Exception as exc:  # a dead server shows up here at the latest; told by `open`
            self._error = exc
            log.debug("MCP connection to %s ended: %r", self._options.describe(), exc)
        finally:
            self.alive = False
            self._ready.set()

    async def _transport(self, stack: AsyncExitStack) -> Any:
        options = self._options
        if options.command:
            from mcp import StdioServerParameters

            return StdioServerParameters(
                command=expand(options.command),
                args=[expand(arg) for arg in options.args],
                env={key: expand(value) for key, value in options.env.items()},
                cwd=self._working_dir or None,
            )
        assert options.remote is not None
        headers = {key: expand(value) for key, value in options.remote.headers.items()}
        if options.remote.transport_type == "sse":
            from mcp.client.sse import sse_client

            return sse_client(options.remote.url, headers=headers)
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared._httpx_utils import create_mcp_http_client

        http = await stack.enter_async_context(create_mcp_http_client(headers=headers))
        return streamable_http_client(options.remote.url, http_client=http)


def _progress_writer(ctx: ToolContext) -> Any:
    """The call's progress callback: each notification as a line of the call's output (None
    when nobody watches, so the server is not asked for progress at all)."""
    output = ctx.output
    if output is None:
        return None

    async def progress(done: float, total: float | None, message: str | None) -> None:
        amount = f"{done:g}/{total:g}" if total is not None else f"{done:g}"
        output(f"{amount} {message}\n" if message else f"{amount}\n")

    return progress


def _to_result(result: Any) -> ToolResult:
    """An MCP call result as text: text blocks as they are, other blocks described."""
    parts = []
    for block in result.content or []:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(block.text)
        elif kind in ("image", "audio"):
            parts.append(f"[{kind} {block.mime_type}, {len(block.data)} base64 characters]")
        elif kind == "resource":
            resource = block.resource
            parts.append(getattr(resource, "text", None) or f"[resource {resource.uri}]")
        elif kind == "resource_link":
            parts.append(f"[resource {block.uri}]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    return ToolResult("\n".join(parts) or "(no output)", is_error=bool(result.is_error))


def _connection_lost(exc: Any) -> bool:
    from mcp.shared.exceptions import MCPError

    closed = -32000  # CONNECTION_CLOSED in the SDK's JSON-RPC codes
    return isinstance(exc, MCPError) and exc.error.code == closed


def _is_transport_error(exc: BaseException) -> bool:
    """Errors of the streams under the client (anyio) or of HTTP (httpx): the link is gone."""
    module = type(exc).__module__
    return module.startswith(("anyio", "httpx", "httpcore"))


def _describe(exc: BaseException | None) -> str:
    """The innermost message of an exception (task groups wrap the interesting one)."""
    while exc is not None and getattr(exc, "exceptions", None):
        exc = exc.exceptions[0]  # type: ignore[attr-defined]
    return f"{exc}" if exc is not None and str(exc) else type(exc).__name__
