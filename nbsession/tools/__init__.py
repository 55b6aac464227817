"""Tools the model can call, grouped in toolsets, and the registry that builds them by type.

An agent file lists toolsets as ``{type: ..., <options>}``; the config layer validates those
entries and hands ``(type, options)`` pairs to ``build_toolsets``, which keeps this package
free of any dependency on the config format.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from .base import (
    ElicitationResult,
    FunctionTool,
    Tool,
    ToolContext,
    ToolDefinition,
    ToolResult,
    Toolset,
    ToolsetEnv,
    _summarise,
)
from .fetch import FetchToolset
from .filesystem import FilesystemToolset
from .mcp import MCPToolset
from .memory import MemoryToolset
from .script import ScriptToolset
from .shell import ShellToolset
from .think import ThinkToolset
from .todo import TodoToolset
from .user_prompt import UserPromptToolset

ToolsetFactory = Callable[[Mapping[str, Any], ToolsetEnv], Toolset]

TOOLSET_FACTORIES: dict[str, ToolsetFactory] = {
    FetchToolset.type: lambda options, _env: FetchToolset(options),
    FilesystemToolset.type: lambda options, _env: FilesystemToolset(options),
    MCPToolset.type: lambda options, env: MCPToolset(options, env.working_dir),
    MemoryToolset.type: MemoryToolset,
    ScriptToolset.type: lambda options, _env: ScriptToolset(options),
    UserPromptToolset.type: lambda _options, _env: UserPromptToolset(),
    ShellToolset.type: lambda options, _env: ShellToolset(options),
    ThinkToolset.type: lambda _options, _env: ThinkToolset(),
    TodoToolset.type: lambda _options, _env: TodoToolset(),
}


def check_toolset(type_: str, options: Mapping[str, Any]) -> str:
    """Why ``options`` are wrong for a toolset of ``type_`` ("" when they are fine).

    Building a toolset is cheap and does nothing outside (servers start later), so the agent
    loader builds one to refuse bad options when the file loads rather than at the first turn.
    """
    try:
        build_toolsets([(type_, options)])
    except ValidationError as exc:
        return _summarise(exc, whole="options")
    except ValueError as exc:
        return str(exc)
    return ""


def build_toolsets(
    specs: Iterable[tuple[str, Mapping[str, Any]]], env: ToolsetEnv | None = None
) -> list[Toolset]:
    """One fresh toolset per ``(type, options)`` pair, in order.

    Call it once per session runtime: toolsets keep per-session state (the todo list).
    Raises ``ValueError`` for a type with no factory.
    """
    env = env or ToolsetEnv()
    toolsets: list[Toolset] = []
    for type_, options in specs:
        factory = TOOLSET_FACTORIES.get(type_)
        if factory is None:
            known = ", ".join(sorted(TOOLSET_FACTORIES))
            raise ValueError(f"Unknown toolset type {type_!r} (known: {known}).")
        toolset = factory(options, env)
        only = options.get("tools")
        if only is not None:
            if not isinstance(only, list) or not all(isinstance(name, str) for name in only):
                raise ValueError("tools: must be a list of tool names")
            toolset = OnlyTools(toolset, frozenset(only))
        toolsets.append(toolset)
    return toolsets


class OnlyTools(Toolset):
    """docker-agent's ``tools:`` key, on any toolset: only the listed tools of it are offered
    (an MCP server's are named as the server names them)."""

    def __init__(self, inner: Toolset, names: frozenset[str]) -> None:
        self.type = inner.type  # type: ignore[misc] - the wrapped toolset's type
        self.inner = inner
        self.names = names

    @property
    def started(self) -> bool:
        return self.inner.started

    async def start(self) -> None:
        await self.inner.start()

    async def tools(self) -> list[Tool]:
        return [tool for tool in await self.inner.tools() if _base_name(tool) in self.names]

    async def close(self) -> None:
        await self.inner.close()


def _base_name(tool: Tool) -> str:
    """A tool's name before any prefix its toolset added (MCP's ``name`` option)."""
    return getattr(tool, "server_name", tool.definition.name)


__all__ = [
    "TOOLSET_FACTORIES",
    "ElicitationResult",
    "FetchToolset",
    "FilesystemToolset",
    "FunctionTool",
    "MCPToolset",
    "MemoryToolset",
    "ScriptToolset",
    "ShellToolset",
    "ThinkToolset",
    "TodoToolset",
    "Tool",
    "ToolContext",
    "ToolDefinition",
    "ToolResult",
    "Toolset",
    "ToolsetEnv",
    "ToolsetFactory",
    "UserPromptToolset",
    "build_toolsets",
    "check_toolset",
]
