"""The tasks toolset: docker-agent's persistent task list, on a real file shared by runtimes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nbsession.tools import TasksToolset, Tool, ToolContext, ToolsetEnv, check_toolset


def toolset_in(tmp_path: Path, **options: Any) -> TasksToolset:
    env = ToolsetEnv(data_dir=str(tmp_path / "data"), source_id="team", source_dir=str(tmp_path))
    return TasksToolset(options, env)


async def tools_of(toolset: TasksToolset) -> dict[str, Tool]:
    return {tool.definition.name: tool for tool in await toolset.tools()}


class Caller:
    """Calls the toolset's tools as the runtime would, from a session working in ``cwd``."""

    def __init__(self, tools: dict[str, Tool], cwd: Path) -> None:
        self.tools = tools
        self.ctx = ToolContext("s1", str(cwd))

    async def ok(self, name: str, **arguments: Any) -> Any:
        result = await self.tools[name].call(arguments, self.ctx)
        assert not result.is_error, result.output
        try:
            return json.loads(result.output)
        except json.JSONDecodeError:
            return result.output

    async def error(self, name: str, **arguments: Any) -> str:
        result = await self.tools[name].call(arguments, self.ctx)
        assert result.is_error, result.output
        return result.output


async def test_tools_and_their_approval_defaults(tmp_path: Path) -> None:
    tools = await tools_of(toolset_in(tmp_path))
    read_only = {name for name, tool in tools.items() if tool.definition.read_only}
    assert sorted(tools) == [
        "add_dependency",
        "create_task",
        "delete_task",
        "get_task",
        "list_tasks",
        "next_task",
        "remove_dependency",
        "update_task",
    ]
    assert read_only == {"get_task", "list_tasks", "next_task"}
    schema = tools["add_dependency"].definition.parameters
    assert schema["required"] == ["taskId", "dependsOnId"]
    assert tools["create_task"].definition.parameters["properties"]["priority"]["enum"] == [
        "critical",
        "high",
        "medium",
        "low",
    ]


async def test_priorities_dependencies_and_the_next_task(tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "spec.md").write_text("# Spec\nDo it well.")
    call = Caller(await tools_of(toolset_in(tmp_path)), tmp_path / "work")

    low = await call.ok("create_task", title="tidy", priority="low")
    assert (low["status"], low["priority"], low["dependencies"]) == ("pending", "low", [])
    design = await call.ok("create_task", title="design", path="spec.md", priority="high")
    assert design["description"] == "# Spec\nDo it well."
    build = await call.ok(
        "create_task", title="build", priority="critical", dependencies=[design["id"]]
    )

    got = await call.ok("get_task", id=build["id"])
    assert (got["status"], got["effectiveStatus"]) == ("pending", "blocked")
    listed = await call.ok("list_tasks")
    assert [task["title"] for task in listed] == ["design", "tidy", "build"]  # blocked last
    assert [t["title"] for t in await call.ok("list_tasks", status="blocked")] == ["build"]
    assert [t["title"] for t in await call.ok("list_tasks", priority="low")] == ["tidy"]
    assert (await call.ok("next_task"))["title"] == "design"

    await call.ok("update_task", id=design["id"], status="done")
    assert (await call.ok("next_task"))["title"] == "build"  # unblocked, and critical

    # Cycles and unknown ids are refused without changing anything.
    assert "cycle" in await call.error(
        "add_dependency", taskId=design["id"], dependsOnId=build["id"]
    )
    assert await call.error("update_task", id="nope", title="x") == "task not found: nope"
    assert "dependency task not found: nope" in await call.error(
        "create_task", title="x", dependencies=["nope"]
    )
    assert "already exists" in await call.error(
        "add_dependency", taskId=build["id"], dependsOnId=design["id"]
    )
    assert "outside the working directory" in await call.error(
        "create_task", title="x", path="../secret"
    )
    assert "priority" in await call.error("create_task", title="x", priority="urgent")
    assert len(await call.ok("list_tasks")) == 3

    unlinked = await call.ok("remove_dependency", taskId=build["id"], dependsOnId=design["id"])
    assert unlinked["dependencies"] == []
    await call.ok("add_dependency", taskId=low["id"], dependsOnId=build["id"])
    assert await call.ok("delete_task", id=build["id"]) == {"deleted": build["id"]}
    assert (await call.ok("get_task", id=low["id"]))["dependencies"] == []

    await call.ok("update_task", id=low["id"], status="done")
    assert (
        await call.ok("next_task") == "No actionable tasks. Everything is either done or blocked."
    )


async def test_tasks_persist_per_agent_file_in_docker_agents_format(tmp_path: Path) -> None:
    first = toolset_in(tmp_path)
    assert first.path == str(tmp_path / "data" / "tasks" / "team" / "tasks.json")
    created = await Caller(await tools_of(first), tmp_path).ok("create_task", title="ship")

    # Another runtime of the same agent file (another session, or server) sees it.
    again = Caller(await tools_of(toolset_in(tmp_path)), tmp_path)
    assert [task["title"] for task in await again.ok("list_tasks")] == ["ship"]
    stored = json.loads((tmp_path / "data" / "tasks" / "team" / "tasks.json").read_text())
    assert stored["tasks"][created["id"]]["title"] == "ship"
    assert set(stored["tasks"][created["id"]]) == {
        "id",
        "title",
        "description",
        "priority",
        "status",
        "dependencies",
        "createdAt",
        "updatedAt",
    }

    # `path` names the file, relative to the agent file.
    own = toolset_in(tmp_path, path="board/tasks.json")
    assert own.path == str(tmp_path / "board" / "tasks.json")
    assert await Caller(await tools_of(own), tmp_path).ok("list_tasks") == []

    # Without a data dir, tasks last as long as the toolset.
    memory = TasksToolset({}, ToolsetEnv())
    assert memory.path == ""
    call = Caller(await tools_of(memory), tmp_path)
    await call.ok("create_task", title="in memory")
    assert len(await call.ok("list_tasks")) == 1


def test_options() -> None:
    assert check_toolset("tasks", {"path": "t.json"}) == ""
    assert "path" in check_toolset("tasks", {"path": 3})


async def test_a_task_file_that_is_not_json_is_reported_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "tasks.json"
    path.write_text("{not json")
    call = Caller(await tools_of(toolset_in(tmp_path, path="tasks.json")), tmp_path)
    assert "parsing task store" in await call.error("list_tasks")
    assert "parsing task store" in await call.error("create_task", title="x")
    assert path.read_text() == "{not json"
