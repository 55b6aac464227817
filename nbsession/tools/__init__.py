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
    toolsets = []
    for type_, options in specs:
        factory = TOOLSET_FACTORIES.get(type_)
        if factory is None:
            known = ", ".join(sorted(TOOLSET_FACTORIES))
            raise ValueError(f"Unknown toolset type {type_!r} (known: {known}).")
        toolsets.append(factory(options, env))
    return toolsets


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
