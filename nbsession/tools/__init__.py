"""Tools the model can call, grouped in toolsets, and the registry that builds them by type.

An agent file lists toolsets as ``{type: ..., <options>}``; the config layer validates those
entries and hands ``(type, options)`` pairs to ``build_toolsets``, which keeps this package
free of any dependency on the config format.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from .a2a import A2AToolset
from .api import APIToolset
from .background_agents import BackgroundAgentsToolset
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
from .jupyter import JupyterToolset
from .lsp import LSPToolset
from .mcp import MCPToolset
from .memory import MemoryToolset
from .openapi import OpenAPIToolset
from .plan import PlanToolset
from .script import ScriptToolset
from .shell import ShellToolset
from .tasks import TasksToolset
from .think import ThinkToolset
from .todo import TodoToolset
from .user_prompt import UserPromptToolset
from .webhook import WebhookToolset

ToolsetFactory = Callable[[Mapping[str, Any], ToolsetEnv], Toolset]

_TOOLSET_CLASSES: tuple[type[Toolset], ...] = (
    A2AToolset,
    APIToolset,
    BackgroundAgentsToolset,
    FetchToolset,
    FilesystemToolset,
    JupyterToolset,
    LSPToolset,
    MCPToolset,
    MemoryToolset,
    OpenAPIToolset,
    PlanToolset,
    ScriptToolset,
    UserPromptToolset,
    ShellToolset,
    TasksToolset,
    ThinkToolset,
    TodoToolset,
    WebhookToolset,
)
_OPTIONS_MODELS = {cls.type: cls.options_model for cls in _TOOLSET_CLASSES if cls.options_model}

TOOLSET_FACTORIES: dict[str, ToolsetFactory] = {
    A2AToolset.type: lambda options, _env: A2AToolset(options),
    APIToolset.type: lambda options, _env: APIToolset(options),
    BackgroundAgentsToolset.type: lambda _options, _env: BackgroundAgentsToolset(),
    OpenAPIToolset.type: lambda options, _env: OpenAPIToolset(options),
    PlanToolset.type: PlanToolset,
    FetchToolset.type: lambda options, _env: FetchToolset(options),
    FilesystemToolset.type: lambda options, env: FilesystemToolset(
        options, on_write=env.jupyter.file_written if env.jupyter else None
    ),
    JupyterToolset.type: JupyterToolset,
    LSPToolset.type: LSPToolset,
    MCPToolset.type: lambda options, env: MCPToolset(options, env.working_dir),
    MemoryToolset.type: MemoryToolset,
    ScriptToolset.type: lambda options, _env: ScriptToolset(options),
    UserPromptToolset.type: lambda _options, _env: UserPromptToolset(),
    ShellToolset.type: lambda options, _env: ShellToolset(options),
    TasksToolset.type: TasksToolset,
    ThinkToolset.type: lambda _options, _env: ThinkToolset(),
    TodoToolset.type: lambda _options, _env: TodoToolset(),
    WebhookToolset.type: lambda options, _env: WebhookToolset(options),
}


# Keys of every entry that the registry itself reads (``type`` is the config layer's).
COMMON_OPTIONS = frozenset({"tools"})


def ignored_options(type_: str, options: Mapping[str, Any]) -> list[str]:
    """The dotted keys of ``options`` that a toolset of ``type_`` does not read (docker-agent
    options nbsession lacks, or typos), so the loader can warn rather than drop them silently.
    """
    factory = TOOLSET_FACTORIES.get(type_)
    model = getattr(factory, "options_model", None) or _OPTIONS_MODELS.get(type_)
    if model is None:
        return []
    rest = {key: value for key, value in options.items() if key not in COMMON_OPTIONS}
    return list(_unread(model, rest, ""))


def _unread(model: type[BaseModel], value: Mapping[Any, Any], prefix: str) -> Iterator[str]:
    fields = {}
    for name, info in model.model_fields.items():
        fields[name] = info
        if info.alias:
            fields[info.alias] = info
    for key, item in value.items():
        where = f"{prefix}.{key}" if prefix else str(key)
        info = fields.get(key)
        if info is None:
            yield where
        else:
            yield from _unread_in(info.annotation, item, where)


def _unread_in(annotation: Any, item: Any, where: str) -> Iterator[str]:
    """Unread keys inside one option's value: a nested model, or models in a list, a mapping
    or an optional."""
    origin = get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if isinstance(item, Mapping):
            yield from _unread(annotation, item, where)
    elif origin in (Union, types.UnionType):
        for arg in get_args(annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                yield from _unread_in(arg, item, where)
                return
    elif origin is list and isinstance(item, list):
        for index, element in enumerate(item):
            yield from _unread_in(get_args(annotation)[0], element, f"{where}[{index}]")
    elif origin is dict and isinstance(item, Mapping):
        for key, element in item.items():
            yield from _unread_in(get_args(annotation)[1], element, f"{where}.{key}")


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
    "A2AToolset",
    "APIToolset",
    "BackgroundAgentsToolset",
    "ElicitationResult",
    "FetchToolset",
    "FilesystemToolset",
    "FunctionTool",
    "JupyterToolset",
    "LSPToolset",
    "MCPToolset",
    "MemoryToolset",
    "OpenAPIToolset",
    "PlanToolset",
    "ScriptToolset",
    "ShellToolset",
    "TasksToolset",
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
    "WebhookToolset",
    "build_toolsets",
    "check_toolset",
    "ignored_options",
]
