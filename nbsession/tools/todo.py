"""The ``todo`` toolset: a task list the model keeps for itself during a session.

Writing the steps down and ticking them off keeps a long, multi-step turn on track, and the
list the tools return after every change shows the model what is still open. State lives in
the toolset instance, one per session runtime, so it lasts as long as the runtime and no
longer.

Every todo tool is marked read-only, not only ``list_todos``: they change nothing outside this
in-memory list, so asking a person to approve "create a todo" would be noise. docker-agent
marks them the same way.

Clients learn the list as docker-agent's do: every todo tool's result carries the whole list
(``[{id, description, status}]``) as its ``meta``, in the ``tool_call_response`` event;
docker-agent has no event of its own for a todo change.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from .base import FixedToolset, NoOptions, Tool, ToolContext, ToolResult

Status = Literal["pending", "in-progress", "completed"]


@dataclass
class Todo:
    id: str
    description: str
    status: Status = "pending"


class CreateTodoArgs(BaseModel):
    description: str = Field(description="Description of the todo item")


class CreateTodosArgs(BaseModel):
    descriptions: list[str] = Field(description="Descriptions of the todo items")


class TodoUpdate(BaseModel):
    id: str = Field(description="ID of the todo item")
    status: Status = Field(description="New status (pending, in-progress, completed)")


class UpdateTodosArgs(BaseModel):
    updates: list[TodoUpdate] = Field(description="List of todo updates")


class ListTodosArgs(BaseModel):
    pass


class TodoToolset(FixedToolset):
    """``create_todo``, ``create_todos``, ``update_todos`` and ``list_todos`` over one list.

    The handlers never await, so concurrent tool calls on one event loop cannot interleave
    inside an update and the list needs no lock.
    """

    type: ClassVar[str] = "todo"
    options_model = NoOptions

    def __init__(self) -> None:
        self._todos: list[Todo] = []
        self._next_id = 1
        self._tools: list[Tool] = [
            self.function_tool(
                "create_todo",
                "Create a new todo item with a description",
                CreateTodoArgs,
                self._create_todo,
                title="Create TODO",
                read_only=True,
            ),
            self.function_tool(
                "create_todos",
                "Create a list of new todo items with descriptions",
                CreateTodosArgs,
                self._create_todos,
                title="Create TODOs",
                read_only=True,
            ),
            self.function_tool(
                "update_todos",
                "Update the status of one or more todo item(s)",
                UpdateTodosArgs,
                self._update_todos,
                title="Update TODOs",
                read_only=True,
            ),
            self.function_tool(
                "list_todos",
                "List all current todos with their status",
                ListTodosArgs,
                self._list_todos,
                title="List TODOs",
                read_only=True,
            ),
        ]

    def _add(self, description: str) -> Todo:
        todo = Todo(id=f"todo_{self._next_id}", description=description)
        self._next_id += 1
        self._todos.append(todo)
        return todo

    def _result(self, text: str, is_error: bool = False) -> ToolResult:
        """``text`` for the model, the whole list for clients."""
        meta: list[dict[str, Any]] = [asdict(todo) for todo in self._todos]
        return ToolResult(text, is_error=is_error, meta=meta)

    async def _create_todo(self, args: CreateTodoArgs, ctx: ToolContext) -> ToolResult:
        todo = self._add(args.description)
        return self._result(f"Created {todo.id}.\n\n{self._render()}")

    async def _create_todos(self, args: CreateTodosArgs, ctx: ToolContext) -> ToolResult:
        created = [self._add(description) for description in args.descriptions]
        ids = ", ".join(todo.id for todo in created) or "nothing"
        return self._result(f"Created {ids}.\n\n{self._render()}")

    async def _update_todos(self, args: UpdateTodosArgs, ctx: ToolContext) -> ToolResult:
        by_id = {todo.id: todo for todo in self._todos}
        lines = []
        not_found = []
        for update in args.updates:
            todo = by_id.get(update.id)
            if todo is None:
                not_found.append(update.id)
                continue
            todo.status = update.status
            lines.append(f"Updated {todo.id} to {todo.status}.")
        if not_found:
            lines.append(f"Not found: {', '.join(not_found)}.")
        # Partly applied updates are a success (the list shows what happened); only a call that
        # changed nothing because every id was wrong is an error, as in docker-agent.
        is_error = bool(not_found) and len(not_found) == len(args.updates)
        return self._result("\n".join([*lines, "", self._render()]), is_error=is_error)

    async def _list_todos(self, args: ListTodosArgs, ctx: ToolContext) -> ToolResult:
        return self._result(self._render())

    def _render(self) -> str:
        """The whole list, then a nudge while anything is unfinished."""
        if not self._todos:
            return "No todos."
        lines = ["Todos:"]
        lines += [f"- {todo.id} [{todo.status}] {todo.description}" for todo in self._todos]
        open_count = sum(1 for todo in self._todos if todo.status != "completed")
        if open_count:
            lines.append(
                f"{open_count} todo(s) still incomplete: complete them before the final answer."
            )
        return "\n".join(lines)
