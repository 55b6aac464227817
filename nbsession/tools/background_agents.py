"""The ``background_agents`` toolset: sub-agents that work in parallel (docker-agent's).

``run_background_agent`` starts one of the caller's ``sub_agents`` on a task and returns its
task id at once; ``wait_background_agents`` joins a group of tasks (with a timeout, after which
they keep running); ``view_background_agent``, ``list_background_agents`` and
``stop_background_agent`` inspect and stop them. As in docker-agent, a background agent runs
without a person: its tool calls that would ask for approval are refused (the session's and
the agent file's permissions still allow what they allow), and its sub-session is stored in
the session when it ends. Running it is the runtime's business (``ToolContext.run_agent``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from .base import FixedToolset, NoOptions, Tool, ToolContext, ToolResult

log = logging.getLogger("nbsession.tools.background_agents")

MAX_RUNNING = 20
MAX_TASKS = 100
MAX_OUTPUT = 10 << 20  # characters of live output kept per task
MAX_WAIT_OUTPUT = 4096
DEFAULT_WAIT, MAX_WAIT = 300, 3600


class RunArgs(BaseModel):
    agent: str = Field(description="The name of the sub-agent to run in the background.")
    task: str = Field(
        description="A clear and concise description of the task the agent should achieve."
    )
    expected_output: str = Field("", description="The expected output from the agent (optional).")


class TaskArgs(BaseModel):
    task_id: str = Field(description="The ID of the background agent task.")


class WaitArgs(BaseModel):
    task_ids: list[str] = Field(
        description="IDs returned by run_background_agent. Provide 1 to 100 distinct task IDs."
    )
    timeout: int = Field(
        0,
        description="Maximum seconds to wait for the whole group (default 300; 0 uses the "
        "default; maximum 3600). Unfinished tasks keep running after a timeout.",
    )


class NoArgs(BaseModel):
    pass


@dataclass
class _Task:
    id: str
    agent: str
    description: str
    started: float = field(default_factory=time.monotonic)
    status: str = "running"  # completed | failed | stopped
    result: str = ""
    error: str = ""
    output: list[str] = field(default_factory=list)
    output_size: int = 0
    runner: asyncio.Task[None] | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def write(self, text: str) -> None:
        if self.output_size < MAX_OUTPUT:
            self.output.append(text)
            self.output_size += len(text)

    def elapsed(self) -> str:
        return f"{round(time.monotonic() - self.started)}s"

    def wait_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "task_id": self.id,
            "status": self.status,
            "done": self.done.is_set(),
        }
        text = {"completed": self.result, "failed": self.error}.get(self.status)
        key = "error" if self.status == "failed" else "output"
        if text is None:
            text = "".join(self.output)
        if text:
            entry[key] = text[:MAX_WAIT_OUTPUT]
            if len(text) > MAX_WAIT_OUTPUT:
                entry["truncated"] = True
        return entry


class BackgroundAgentsToolset(FixedToolset):
    type: ClassVar[str] = "background_agents"
    options_model = NoOptions

    def __init__(self) -> None:
        self._tasks: dict[str, _Task] = {}
        self._tools: list[Tool] = [
            self.function_tool(
                name="run_background_agent",
                description="Start a sub-agent on a task in the background and return its task "
                "ID at once; several run in parallel. Join them with wait_background_agents.",
                args=RunArgs,
                func=self._run,
                read_only=True,
                title="Run Background Agent",
            ),
            self.function_tool(
                name="list_background_agents",
                description="List the background agent tasks with their status and runtime.",
                args=NoArgs,
                func=self._list,
                read_only=True,
                title="List Background Agents",
            ),
            self.function_tool(
                name="view_background_agent",
                description="Show a background agent task's status and its output so far.",
                args=TaskArgs,
                func=self._view,
                read_only=True,
                title="View Background Agent",
            ),
            self.function_tool(
                name="stop_background_agent",
                description="Stop a running background agent task.",
                args=TaskArgs,
                func=self._stop,
                read_only=True,
                title="Stop Background Agent",
            ),
            self.function_tool(
                name="wait_background_agents",
                description="Wait until the given background agent tasks are done (or the "
                "timeout passes) and return their results as JSON.",
                args=WaitArgs,
                func=self._wait,
                read_only=True,
                title="Wait Background Agents",
            ),
        ]

    async def close(self) -> None:
        """Stop the tasks still running: they end with the session's runtime."""
        runners = [task.runner for task in self._tasks.values() if task.runner is not None]
        for runner in runners:
            runner.cancel()
        await asyncio.gather(*runners, return_exceptions=True)

    async def _run(self, args: RunArgs, ctx: ToolContext) -> ToolResult:
        if ctx.run_agent is None:
            return ToolResult("Background agents cannot run here.", is_error=True)
        if not args.agent.strip() or not args.task.strip():
            return ToolResult("agent and task must not be empty", is_error=True)
        running = sum(1 for task in self._tasks.values() if task.status == "running")
        if running >= MAX_RUNNING:
            return ToolResult(
                f"maximum concurrent background agent tasks ({MAX_RUNNING}) reached; stop or "
                "wait for existing tasks to complete",
                is_error=True,
            )
        if len(self._tasks) >= MAX_TASKS:
            for task_id in [t.id for t in self._tasks.values() if t.done.is_set()]:
                del self._tasks[task_id]
            if len(self._tasks) >= MAX_TASKS:
                return ToolResult(
                    f"maximum total background agent tasks ({MAX_TASKS}) reached", is_error=True
                )
        task = _Task(id=f"agent_task_{uuid.uuid4()}", agent=args.agent, description=args.task)
        work = ctx.run_agent(args.agent, args.task, args.expected_output, task.write)
        task.runner = asyncio.get_running_loop().create_task(self._work(task, work))
        self._tasks[task.id] = task
        return ToolResult(
            f"Background agent task started with ID: {task.id}\nAgent: {args.agent}\n"
            f"Task: {args.task}"
        )

    @staticmethod
    async def _work(task: _Task, work: Any) -> None:
        try:
            result: ToolResult = await work
        except asyncio.CancelledError:
            task.status = "stopped"
        except Exception as exc:  # the runtime's own failure (the store refused a write)
            log.exception("background agent task %s failed", task.id)
            task.status, task.error = "failed", str(exc) or type(exc).__name__
        else:
            if result.is_error:
                task.status, task.error = "failed", result.output
            else:
                task.status, task.result = "completed", result.output
        finally:
            task.done.set()

    async def _list(self, _args: NoArgs, _ctx: ToolContext) -> ToolResult:
        if not self._tasks:
            return ToolResult("Background Agent Tasks:\n\nNo background agent tasks found.")
        rows = [
            f"ID: {t.id}\n  Agent:   {t.agent}\n  Status:  {t.status}\n  Runtime: {t.elapsed()}\n"
            for t in self._tasks.values()
        ]
        return ToolResult("Background Agent Tasks:\n\n" + "\n".join(rows))

    async def _view(self, args: TaskArgs, _ctx: ToolContext) -> ToolResult:
        task = self._tasks.get(args.task_id)
        if task is None:
            return ToolResult(f"Task not found: {args.task_id}", is_error=True)
        head = (
            f"Task ID: {task.id}\nAgent:   {task.agent}\nStatus:  {task.status}\n"
            f"Runtime: {task.elapsed()}\n\n--- Output ---\n"
        )
        if task.status == "completed":
            body = task.result or "<no output>"
        elif task.status == "failed":
            body = f"<task failed>\nError: {task.error}"
        elif task.status == "stopped":
            body = "<task was stopped>"
        else:
            so_far = "".join(task.output)
            body = (
                f"{so_far}\n\n[still running...]" if so_far else "<no output yet — still running>"
            )
        return ToolResult(head + body)

    async def _stop(self, args: TaskArgs, _ctx: ToolContext) -> ToolResult:
        task = self._tasks.get(args.task_id)
        if task is None:
            return ToolResult(f"Task not found: {args.task_id}", is_error=True)
        if task.status != "running" or task.runner is None:
            return ToolResult(f"Task {task.id} is not running (status: {task.status}).")
        task.runner.cancel()
        await task.done.wait()
        return ToolResult(f"Background agent task {task.id} stopped.")

    async def _wait(self, args: WaitArgs, _ctx: ToolContext) -> ToolResult:
        ids = args.task_ids
        if not 1 <= len(ids) <= MAX_TASKS or len(set(ids)) != len(ids) or not all(ids):
            return ToolResult(
                f"task_ids must contain 1 to {MAX_TASKS} distinct, non-empty task IDs",
                is_error=True,
            )
        if not 0 <= args.timeout <= MAX_WAIT:
            return ToolResult(f"timeout must be between 0 and {MAX_WAIT} seconds", is_error=True)
        tasks = [self._tasks.get(task_id) for task_id in ids]
        pending = [task.done.wait() for task in tasks if task is not None]
        timed_out = False
        if pending:
            try:
                await asyncio.wait_for(asyncio.gather(*pending), args.timeout or DEFAULT_WAIT)
            except asyncio.TimeoutError:
                timed_out = True
        entries = [
            task.wait_entry()
            if task is not None
            else {
                "task_id": task_id,
                "status": "not_found",
                "done": False,
                "error": "Task not found; it may have been pruned.",
            }
            for task_id, task in zip(ids, tasks, strict=True)
        ]
        result: dict[str, Any] = {"all_done": all(e["done"] for e in entries), "tasks": entries}
        if timed_out:
            result["timed_out"] = True
        return ToolResult(json.dumps(result), is_error=any(task is None for task in tasks))
