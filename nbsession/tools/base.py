"""The toolset interface: what a tool advertises to the model and how the runtime calls it.

Built-in toolsets (shell, think, todo) and later ones (filesystem, MCP, a kernel tool) all plug
in here. A tool reports failures the model should see as ``ToolResult(is_error=True)``; an
unexpected exception is left to propagate, because the runtime turns it into an error result
in one place (and logs it) instead of every tool guessing how.
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ValidationError

if TYPE_CHECKING:
    from .jupyter.host import JupyterHost
    from .undo import UndoHistory


@dataclass(frozen=True)
class ToolDefinition:
    """What the model is told about a tool; ``parameters`` is a JSON Schema object."""

    name: str
    description: str
    parameters: Mapping[str, Any]
    read_only: bool = False
    title: str = ""
    category: str = ""

    def to_json(self) -> dict[str, Any]:
        """docker-agent's ``tools.Tool`` JSON, as carried by ``tool_call`` events."""
        annotations: dict[str, Any] = {"readOnlyHint": self.read_only}
        if self.title:
            annotations["title"] = self.title
        return {
            "name": self.name,
            "category": self.category,
            "description": self.description,
            "parameters": dict(self.parameters),
            "annotations": annotations,
            "outputSchema": None,
        }


@dataclass(frozen=True)
class ToolResult:
    """What the model sees as the answer to one tool call; ``meta`` (JSON) is for clients
    only, as docker-agent's ``ToolCallResult.Meta`` (the todo list after a todo tool)."""

    output: str
    is_error: bool = False
    meta: Any = None

    def to_json(self) -> dict[str, Any]:
        """The ``result`` object of a ``tool_call_response`` event (SPEC 4), with docker-agent's
        ``isError`` name: its clients read a failed tool as a success otherwise."""
        result: dict[str, Any] = {"output": self.output, "isError": self.is_error}
        if self.meta is not None:
            result["meta"] = self.meta
        return result


@dataclass(frozen=True)
class ElicitationResult:
    """A person's answer to a question a tool asked through the host."""

    action: Literal["accept", "decline", "cancel"]
    content: Mapping[str, Any] | None = None


Elicit = Callable[[str, Mapping[str, Any]], Awaitable[ElicitationResult]]
# Takes a piece of a running call's output (text as it comes, not yet the result).
Output = Callable[[str], None]
# Tells the session's watchers that its plan changed: (content, path of its file or "").
PlanUpdated = Callable[[str, str], None]
# Runs a sub-agent of the caller on a task, without a person to ask: (agent, task,
# expected_output, its text as it comes) -> its answer, or why it could not work.
RunAgent = Callable[[str, str, str, Output], Awaitable["ToolResult"]]


@dataclass
class ToolContext:
    """Per-call facts a tool may need from the session that runs it.

    ``elicit(message, json_schema)`` asks the user for structured input; it is ``None`` when
    the host cannot ask (a headless run), so a tool must have a fallback. ``output(text)``
    shows a long-running call's output while it runs (``tool_call_output`` events); the
    result still carries everything the model should read, so a tool may call it freely.
    ``run_agent`` runs one of the calling agent's sub-agents in the background (``None``
    where there is no runtime to do it). ``plan_updated`` announces a new plan of the session
    (docker-agent's ``plan_updated`` event).
    """

    session_id: str
    working_dir: str
    elicit: Elicit | None = None
    output: Output | None = None
    run_agent: RunAgent | None = None
    plan_updated: PlanUpdated | None = None


class Tool(ABC):
    """One callable tool; ``definition`` is what the model sees."""

    definition: ToolDefinition

    @abstractmethod
    async def call(self, arguments: Mapping[str, Any], ctx: ToolContext) -> ToolResult:
        """Run the tool with the model's (already JSON-decoded) arguments."""

    async def preview(self, arguments: Mapping[str, Any], ctx: ToolContext) -> str:
        """What the call would change, shown with its confirmation (a unified diff for a file
        edit); ``""`` when there is nothing more to show than the arguments."""
        return ""


class Toolset(ABC):
    """A group of tools configured together under one ``type`` (a ``toolsets`` entry).

    ``tools`` is a coroutine because some toolsets (MCP) only learn their tools by asking a
    server. One instance lives as long as a session's runtime, so toolsets may keep state.
    """

    type: ClassVar[str]
    # The model of its ``toolsets:`` entry's options: keys outside it are reported as ignored
    # when the agent file loads (``None``: not declared, nothing is reported).
    options_model: ClassVar[type[BaseModel] | None] = None

    @abstractmethod
    async def tools(self) -> list[Tool]:
        """The tools this toolset currently offers."""

    @property
    def started(self) -> bool:
        """False while the toolset needs ``start`` (never connected, or its server died)."""
        return True

    async def start(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Connect to what the tools need (an MCP server); the runtime calls it before a turn
        while ``started`` is False. Raises when that fails; the next turn tries again."""

    async def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release processes or connections the toolset holds (most hold none)."""

    def function_tool(
        self,
        name: str,
        description: str,
        args: type[ArgsT],
        func: Callable[[ArgsT, ToolContext], Awaitable[ToolResult | str]],
        *,
        read_only: bool = False,
        title: str = "",
        refused: tuple[type[Exception], ...] = (),
    ) -> Tool:
        """A ``FunctionTool`` of this toolset: its ``category`` is the toolset's ``type``,
        which is how the pane and the sidebar group a call with its siblings.

        ``func`` may answer with plain text (a successful result). The exceptions in
        ``refused`` mean the call cannot be done as asked: the model reads the message as an
        error result and may try again; any other exception propagates to the runtime."""

        async def run(parsed: ArgsT, ctx: ToolContext) -> ToolResult:
            try:
                result = await func(parsed, ctx)
            except refused as exc:
                return ToolResult(str(exc) or type(exc).__name__, is_error=True)
            return result if isinstance(result, ToolResult) else ToolResult(result)

        return FunctionTool(
            name=name,
            description=description,
            args=args,
            func=run,
            read_only=read_only,
            title=title,
            category=self.type,
        )


class FixedToolset(Toolset):
    """A toolset whose tools are all built once, in ``__init__``, into ``_tools`` (most
    built-ins); ``tools`` hands out a copy so a caller cannot change the toolset's list."""

    _tools: list[Tool]

    async def tools(self) -> list[Tool]:
        return list(self._tools)


class NoOptions(BaseModel):
    """The options of a toolset that takes none."""


@dataclass(frozen=True)
class ToolsetEnv:
    """Where the toolsets of one agent live: facts a factory may need besides its options.

    ``working_dir`` is the session's (where a local MCP server starts); ``data_dir`` is where a
    toolset may keep files across sessions (``""``: nowhere, so persistent state lasts as long
    as the runtime); ``source_id`` and ``source_dir`` name the agent file, so per-agent state
    and relative paths in options resolve as docker-agent's do. ``jupyter`` is the hosting
    Jupyter server's kernels and notebooks (None outside one), and ``kernel_id`` and
    ``notebook_path`` the session's binding to a notebook kernel (SPEC 9), for the jupyter
    toolset's defaults. ``undo`` is the session's undo history of tool edits, kept in the
    session store (None: the toolset keeps its own, for as long as it lives).
    """

    working_dir: str = ""
    data_dir: str = ""
    source_id: str = "default"
    source_dir: str = ""
    jupyter: JupyterHost | None = None
    kernel_id: str = ""
    notebook_path: str = ""
    undo: UndoHistory | None = None


def agent_state_path(option: str, env: ToolsetEnv, folder: str, filename: str, default: str) -> str:
    """Where a toolset keeps an agent's state across sessions: ``option`` (relative to the agent
    file, as docker-agent resolves it), else ``<data_dir>/<folder>/<source id>/<filename>`` so
    each agent file has its own, else ``default`` (the toolset's in-memory stand-in) when the
    server has no data dir."""
    if option:
        return os.path.join(env.source_dir or env.working_dir, os.path.expanduser(option))
    if env.data_dir:
        return os.path.join(env.data_dir, folder, env.source_id or "default", filename)
    return default


_ENV_REF = re.compile(r"\$\{env\.([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_env(value: str) -> str:
    """An option value with ``$VAR``, ``${VAR}`` and docker-agent's ``${env.VAR}`` replaced
    from the server's environment (unknown variables are left as they are)."""
    return os.path.expandvars(_ENV_REF.sub(r"${\1}", value))


ArgsT = TypeVar("ArgsT", bound=BaseModel)


class FunctionTool(Tool, Generic[ArgsT]):
    """A tool made of a pydantic model for its arguments and an async function.

    The model gives both the advertised JSON Schema and the validation, so the two cannot
    drift apart. Invalid arguments become an error result rather than an exception: a model
    that sent a bad call should read what was wrong and try again.
    """

    def __init__(
        self,
        *,
        name: str,
        description: str,
        args: type[ArgsT],
        func: Callable[[ArgsT, ToolContext], Awaitable[ToolResult]],
        read_only: bool = False,
        title: str = "",
        category: str = "",
    ) -> None:
        self.definition = ToolDefinition(
            name=name,
            description=description,
            parameters=args.model_json_schema(),
            read_only=read_only,
            title=title,
            category=category,
        )
        self._args = args
        self._func = func

    async def call(self, arguments: Mapping[str, Any], ctx: ToolContext) -> ToolResult:
        try:
            parsed = self._args.model_validate(dict(arguments))
        except ValidationError as exc:
            return ToolResult(
                f"Invalid arguments for {self.definition.name}: {_summarise(exc)}",
                is_error=True,
            )
        return await self._func(parsed, ctx)


def _summarise(exc: ValidationError, whole: str = "arguments") -> str:
    """Pydantic's errors as one line a model (or a person) can act on: ``field: problem; ...``;
    ``whole`` names what an error about no field in particular is about."""
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or whole
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)
