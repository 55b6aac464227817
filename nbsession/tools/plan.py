"""The ``plan`` toolset: one Markdown plan per session (docker-agent's "draft, approve, execute").

``write_plan`` replaces the plan (it asks for approval, as any write) and announces it, as
docker-agent does, with a ``plan_updated`` event carrying the new content; ``read_plan`` returns
it and ``exit_plan_mode`` says it is ready for review; neither switches agents. Plans are
files ``<data dir>/plans/<session id>.md``, so every agent of the session (a planner, then the
agent that executes) reads the same plan; without a data dir (``db_path: ":memory:"``) they
live in this process's memory.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from .base import FixedToolset, NoOptions, Tool, ToolContext, ToolResult, ToolsetEnv

_SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# Plans of sessions whose server keeps no files: process memory, by session id.
_IN_MEMORY: dict[str, str] = {}


class WritePlanArgs(BaseModel):
    content: str = Field(
        description="The full plan content as markdown. Replaces the existing plan for this "
        "session."
    )


class NoArgs(BaseModel):
    pass


class PlanToolset(FixedToolset):
    type: ClassVar[str] = "plan"
    options_model = NoOptions

    def __init__(self, _options: Any = None, env: ToolsetEnv | None = None) -> None:
        data_dir = env.data_dir if env is not None else ""
        self._dir = Path(data_dir, "plans") if data_dir else None
        self._tools: list[Tool] = [
            self.function_tool(
                name="write_plan",
                description="Create or replace the plan for this session as markdown. There is "
                "exactly one plan per session.",
                args=WritePlanArgs,
                func=self._write,
                title="Write Plan",
            ),
            self.function_tool(
                name="read_plan",
                description="Read the plan written for this session and return it as markdown. "
                "Errors if no plan has been written yet.",
                args=NoArgs,
                func=self._read,
                read_only=True,
                title="Read Plan",
            ),
            self.function_tool(
                name="exit_plan_mode",
                description="Signal that the plan written for this session is ready for review. "
                "Only call this once the plan is complete. It does not switch agents.",
                args=NoArgs,
                func=self._exit,
                read_only=True,
                title="Exit Plan Mode",
            ),
        ]

    async def _write(self, args: WritePlanArgs, ctx: ToolContext) -> ToolResult:
        if not args.content.strip():
            return ToolResult("content must not be empty", is_error=True)
        if not _SESSION_ID.fullmatch(ctx.session_id):
            return ToolResult(f"invalid session ID: {ctx.session_id!r}", is_error=True)
        if self._dir is None:
            _IN_MEMORY[ctx.session_id] = args.content
            path, done = "", "Plan saved."
        else:
            path = str(self._dir / f"{ctx.session_id}.md")
            await asyncio.to_thread(_write_atomically, Path(path), args.content)
            done = f"Plan saved to {path}"
        if ctx.plan_updated is not None:
            ctx.plan_updated(args.content, path)
        return ToolResult(done)

    async def _read(self, _args: NoArgs, ctx: ToolContext) -> ToolResult:
        content = await asyncio.to_thread(self._content, ctx.session_id)
        if content is None:
            return ToolResult(
                "no plan written yet for this session; call write_plan first", is_error=True
            )
        return ToolResult(content)

    async def _exit(self, _args: NoArgs, ctx: ToolContext) -> ToolResult:
        if await asyncio.to_thread(self._content, ctx.session_id) is None:
            return ToolResult(
                "no plan to mark ready; call write_plan before exit_plan_mode", is_error=True
            )
        return ToolResult("Plan ready for review.")

    def _content(self, session_id: str) -> str | None:
        """The session's plan (``None`` if it has none); reads a file, so run it in a thread."""
        if not _SESSION_ID.fullmatch(session_id):
            return None
        if self._dir is None:
            return _IN_MEMORY.get(session_id)
        try:
            return (self._dir / f"{session_id}.md").read_text(encoding="utf-8")
        except FileNotFoundError:
            return None


def _write_atomically(path: Path, content: str) -> None:
    """A reader sees the old plan or the new one, never half of it."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".plan-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(content)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
