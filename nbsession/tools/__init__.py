"""Tools the model can call, grouped in toolsets, and the registry that builds them by type.

An agent file lists toolsets as ``{type: ..., <options>}``; the config layer validates those
entries and hands ``(type, options)`` pairs to ``build_toolsets``, which keeps this package
free of any dependency on the config format.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .base import (
    ElicitationResult,
    FunctionTool,
    Tool,
    ToolContext,
    ToolDefinition,
    ToolResult,
    Toolset,
    ToolsetEnv,
)
from .filesystem import FilesystemToolset
from .shell import ShellToolset
from .think import ThinkToolset
from .todo import TodoToolset

ToolsetFactory = Callable[[Mapping[str, Any], ToolsetEnv], Toolset]

TOOLSET_FACTORIES: dict[str, ToolsetFactory] = {
    FilesystemToolset.type: lambda options, _env: FilesystemToolset(options),
    ShellToolset.type: lambda options, _env: ShellToolset(options),
    ThinkToolset.type: lambda _options, _env: ThinkToolset(),
    TodoToolset.type: lambda _options, _env: TodoToolset(),
}


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
    "FilesystemToolset",
    "FunctionTool",
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
    "build_toolsets",
]
