"""The ``tasks`` toolset: a persistent task list with priorities and dependencies (docker-agent's).

Unlike ``todo`` (one list per session), tasks outlive sessions: each agent file gets one JSON
file, ``<data dir>/tasks/<agent source id>/tasks.json``, or the file the ``path`` option names
(relative to the agent file), in docker-agent's format (``{"tasks": {id: task}}``), so both
programs can share one. Every change is a locked read-modify-write (an ``flock`` on
``<file>.lock``) written atomically, so concurrent sessions and servers lose nothing. With no
data dir (a ``:memory:`` store) and no ``path``, tasks last as long as the runtime.

A task whose dependencies are not all done is shown ``blocked`` (its ``effectiveStatus``);
``next_task`` gives the most urgent task that is neither blocked nor done. Reading tools are
read-only; the others ask unless permitted, as in docker-agent. A task's description may be
read from a file (``path``), relative to the session's working directory and confined to it.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from .base import ArgsT, FixedToolset, Tool, ToolContext, ToolsetEnv, agent_state_path
from .filesystem import PathEscape, resolve_inside

Priority = Literal["critical", "high", "medium", "low"]
Status = Literal["pending", "in_progress", "done", "blocked"]
PRIORITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}
MAX_DESCRIPTION_FILE = 1 << 20

Task = dict[str, Any]
Tasks = dict[str, Task]


class TasksOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    path: str = Field("", description="The JSON file (default: per agent, in the data dir)")


class CreateTaskArgs(BaseModel):
    title: str = Field(description="Short title for the task")
    description: str = Field("", description="Task description (ignored if path is given)")
    path: str = Field(
        "", description="Path to a markdown file whose content becomes the task description"
    )
    priority: Priority = Field("medium", description="Priority: critical, high, medium, or low")
    dependencies: list[str] = Field(
        default_factory=list, description="IDs of tasks that must be completed before this one"
    )


class TaskIdArgs(BaseModel):
    id: str = Field(description="Task ID")


class UpdateTaskArgs(BaseModel):
    id: str = Field(description="Task ID to update")
    title: str = Field("", description="New title")
    description: str = Field("", description="New description")
    path: str = Field("", description="Read new description from this file")
    priority: Priority | None = Field(None, description="New priority")
    status: Status | None = Field(None, description="New status")
    dependencies: list[str] | None = Field(
        None, description="Replace dependency list with these task IDs"
    )


class ListTasksArgs(BaseModel):
    status: Status | None = Field(None, description="Filter by effective status")
    priority: Priority | None = Field(None, description="Filter by priority level")


class NoArgs(BaseModel):
    pass


class DependencyArgs(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    task_id: str = Field(alias="taskId", description="The task that depends on another")
    depends_on_id: str = Field(alias="dependsOnId", description="The task that must be done first")


class _Refused(Exception):
    """A call the task list cannot honour (an unknown id, a cycle); the message says why."""


class TasksToolset(FixedToolset):
    """``create_task``, ``get_task``, ``update_task``, ``delete_task``, ``list_tasks``,
    ``next_task``, ``add_dependency``, ``remove_dependency`` over one task file."""

    type: ClassVar[str] = "tasks"
    options_model = TasksOptions

    def __init__(
        self, options: Mapping[str, Any] | None = None, env: ToolsetEnv | None = None
    ) -> None:
        self._options = TasksOptions.model_validate(dict(options or {}))
        self._file = _TaskFile(
            agent_state_path(self._options.path, env or ToolsetEnv(), "tasks", "tasks.json", "")
        )
        self._tools: list[Tool] = [
            self._tool(
                "create_task",
                "Create Task",
                "Create a new task. Provide a title and either a description or a path to a "
                "markdown file whose content will be used as the description. Optionally set "
                "priority and dependencies on other task IDs.",
                CreateTaskArgs,
                _create,
            ),
            self._tool(
                "get_task",
                "Get Task",
                "Get full details of a single task by ID, including its effective status "
                "(blocked if any dependency is not done).",
                TaskIdArgs,
                _get,
                read_only=True,
            ),
            self._tool(
                "update_task",
                "Update Task",
                "Update fields of an existing task. You can change title, description (or path "
                "to re-read from file), priority, status, and dependencies.",
                UpdateTaskArgs,
                _update,
            ),
            self._tool(
                "delete_task",
                "Delete Task",
                "Delete a task by ID. Also removes it from other tasks' dependency lists.",
                TaskIdArgs,
                _delete,
            ),
            self._tool(
                "list_tasks",
                "List Tasks",
                "List all tasks, sorted by priority (critical first) with blocked tasks last. "
                "Optionally filter by status or priority.",
                ListTasksArgs,
                _list,
                read_only=True,
            ),
            self._tool(
                "next_task",
                "Next Task",
                "Get the highest-priority actionable task — one that is not blocked and not "
                "done. Great for asking 'what should I work on next?'",
                NoArgs,
                _next,
                read_only=True,
            ),
            self._tool(
                "add_dependency",
                "Add Dependency",
                "Add a dependency: taskId will be blocked until dependsOnId is done.",
                DependencyArgs,
                _add_dependency,
            ),
            self._tool(
                "remove_dependency",
                "Remove Dependency",
                "Remove a dependency from a task.",
                DependencyArgs,
                _remove_dependency,
            ),
        ]

    @property
    def path(self) -> str:
        """The task file, or ``""`` when tasks live in memory."""
        return self._file.path

    def _tool(
        self,
        name: str,
        title: str,
        description: str,
        args: type[ArgsT],
        work: Callable[[_TaskFile, ArgsT, str], str],
        *,
        read_only: bool = False,
    ) -> Tool:
        async def run(parsed: ArgsT, ctx: ToolContext) -> str:
            root = ctx.working_dir or os.getcwd()
            return await asyncio.to_thread(work, self._file, parsed, root)

        refused = (_Refused, OSError, ValueError)
        return self.function_tool(
            name, description, args, run, read_only=read_only, title=title, refused=refused
        )


class _TaskFile:
    """The task list, read and rewritten whole under a lock for each call (lists are small)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._memory: Tasks = {}

    @contextmanager
    def tasks(self, *, write: bool) -> Iterator[Tasks]:
        """The tasks, saved afterwards when ``write`` and the block ended without error."""
        with self._lock:
            if not self.path:
                tasks = json.loads(json.dumps(self._memory))  # a failed call changes nothing
                yield tasks
                if write:
                    self._memory = tasks
                return
            os.makedirs(os.path.dirname(self.path) or ".", mode=0o700, exist_ok=True)
            with open(self.path + ".lock", "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX if write else fcntl.LOCK_SH)
                tasks = self._load()
                yield tasks
                if write:
                    self._save(tasks)

    def _load(self) -> Tasks:
        try:
            with open(self.path, encoding="utf-8") as file:
                data = json.load(file)
        except FileNotFoundError:
            return {}
        except json.JSONDecodeError as exc:
            raise ValueError(f"parsing task store {self.path}: {exc}") from None
        tasks = data.get("tasks") if isinstance(data, dict) else None
        return tasks if isinstance(tasks, dict) else {}

    def _save(self, tasks: Tasks) -> None:
        directory = os.path.dirname(self.path) or "."
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=".tasks-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump({"tasks": tasks}, file, indent=2, ensure_ascii=False)
            os.replace(temporary, self.path)
        except BaseException:
            os.unlink(temporary)
            raise


def _create(store: _TaskFile, args: CreateTaskArgs, root: str) -> str:
    description = _description(args.description, args.path, root)
    with store.tasks(write=True) as tasks:
        task_id = str(uuid.uuid4())
        _check_dependencies(tasks, task_id, args.dependencies)
        now = _now()
        task = {
            "id": task_id,
            "title": args.title,
            "description": description,
            "priority": args.priority,
            "status": "pending",
            "dependencies": args.dependencies,
            "createdAt": now,
            "updatedAt": now,
        }
        tasks[task_id] = task
    return _json(task)


def _get(store: _TaskFile, args: TaskIdArgs, _root: str) -> str:
    with store.tasks(write=False) as tasks:
        return _json(_with_effective(_find(tasks, args.id), tasks))


def _update(store: _TaskFile, args: UpdateTaskArgs, root: str) -> str:
    with store.tasks(write=True) as tasks:
        task = _find(tasks, args.id)
        if args.title:
            task["title"] = args.title
        if args.path or args.description:
            task["description"] = _description(args.description, args.path, root)
        if args.priority is not None:
            task["priority"] = args.priority
        if args.status is not None:
            task["status"] = args.status
        if args.dependencies is not None:
            _check_dependencies(tasks, args.id, args.dependencies)
            task["dependencies"] = args.dependencies
        task["updatedAt"] = _now()
    return _json(task)


def _delete(store: _TaskFile, args: TaskIdArgs, _root: str) -> str:
    with store.tasks(write=True) as tasks:
        _find(tasks, args.id)
        del tasks[args.id]
        for task in tasks.values():
            task["dependencies"] = [dep for dep in _deps(task) if dep != args.id]
    return _json({"deleted": args.id})


def _list(store: _TaskFile, args: ListTasksArgs, _root: str) -> str:
    with store.tasks(write=False) as tasks:
        listed = _sorted(tasks)
    if args.status is not None:
        listed = [task for task in listed if task["effectiveStatus"] == args.status]
    if args.priority is not None:
        listed = [task for task in listed if task.get("priority") == args.priority]
    return _json(listed)


def _next(store: _TaskFile, _args: NoArgs, _root: str) -> str:
    with store.tasks(write=False) as tasks:
        listed = _sorted(tasks)
    for task in listed:
        if task["effectiveStatus"] not in ("blocked", "done"):
            return _json(task)
    return "No actionable tasks. Everything is either done or blocked."


def _add_dependency(store: _TaskFile, args: DependencyArgs, _root: str) -> str:
    with store.tasks(write=True) as tasks:
        task = _find(tasks, args.task_id)
        if args.depends_on_id not in tasks:
            raise _Refused(f"dependency task not found: {args.depends_on_id}")
        if args.depends_on_id in _deps(task):
            raise _Refused("dependency already exists")
        dependencies = [*_deps(task), args.depends_on_id]
        if _has_cycle(tasks, args.task_id, dependencies):
            raise _Refused("adding this dependency would create a cycle")
        task["dependencies"] = dependencies
        task["updatedAt"] = _now()
    return _json(task)


def _remove_dependency(store: _TaskFile, args: DependencyArgs, _root: str) -> str:
    with store.tasks(write=True) as tasks:
        task = _find(tasks, args.task_id)
        task["dependencies"] = [dep for dep in _deps(task) if dep != args.depends_on_id]
        task["updatedAt"] = _now()
    return _json(task)


def _find(tasks: Tasks, task_id: str) -> Task:
    task = tasks.get(task_id)
    if not isinstance(task, dict):
        raise _Refused(f"task not found: {task_id}")
    return task


def _deps(task: Task) -> list[str]:
    return list(task.get("dependencies") or [])


def _check_dependencies(tasks: Tasks, task_id: str, dependencies: list[str]) -> None:
    for dep in dependencies:
        if dep not in tasks:
            raise _Refused(f"dependency task not found: {dep}")
    if _has_cycle(tasks, task_id, dependencies):
        raise _Refused("adding these dependencies would create a cycle")


def _has_cycle(tasks: Tasks, start: str, dependencies: list[str]) -> bool:
    """Whether ``start`` is reachable from ``dependencies`` (it would then wait on itself)."""
    seen: set[str] = set()
    stack = list(dependencies)
    while stack:
        current = stack.pop()
        if current == start:
            return True
        if current not in seen:
            seen.add(current)
            stack.extend(_deps(tasks.get(current) or {}))
    return False


def _effective_status(task: Task, tasks: Tasks) -> str:
    if task.get("status") == "done":
        return "done"
    for dep in _deps(task):
        if dep in tasks and tasks[dep].get("status") != "done":
            return "blocked"
    return str(task.get("status", "pending"))


def _with_effective(task: Task, tasks: Tasks) -> Task:
    return {**task, "effectiveStatus": _effective_status(task, tasks)}


def _sorted(tasks: Tasks) -> list[Task]:
    """Actionable tasks first, then by priority (critical first), then oldest first."""
    listed = [_with_effective(task, tasks) for task in tasks.values()]
    listed.sort(
        key=lambda task: (
            task["effectiveStatus"] == "blocked",
            PRIORITY_ORDER.get(task.get("priority", "medium"), 2),
            task.get("createdAt", ""),
        )
    )
    return listed


def _description(description: str, path: str, root: str) -> str:
    """The description given, or the content of the file ``path`` (inside ``root``)."""
    if not path:
        return description
    try:
        real = resolve_inside(root, path)
    except PathEscape as exc:
        raise _Refused(str(exc)) from None
    with open(real, encoding="utf-8", errors="replace") as file:
        text = file.read(MAX_DESCRIPTION_FILE + 1)
    if len(text) > MAX_DESCRIPTION_FILE:
        raise _Refused(f"reading file {path}: larger than 1 MiB")
    return text


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
