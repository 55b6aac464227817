"""The memory, script and user_prompt toolsets on real files, processes and answers."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from nbsession.tools import (
    ElicitationResult,
    MemoryToolset,
    ScriptToolset,
    Tool,
    ToolContext,
    ToolResult,
    ToolsetEnv,
    UserPromptToolset,
)


def real(path: Path) -> str:
    """The path ``pwd -P`` prints (tmp_path may sit behind a symlink)."""
    return str(path.resolve())


async def tools_of(toolset: Any) -> dict[str, Tool]:
    return {tool.definition.name: tool for tool in await toolset.tools()}


CTX = ToolContext("s1", "")

# -- memory -----------------------------------------------------------------------------


async def test_memory_tools_and_their_approval_flags(tmp_path: Path) -> None:
    tools = await tools_of(MemoryToolset({}, ToolsetEnv(data_dir=str(tmp_path))))
    assert {n for n, t in tools.items() if t.definition.read_only} == {
        "get_memories",
        "search_memories",
    }
    assert set(tools) == {
        "add_memory",
        "get_memories",
        "delete_memory",
        "search_memories",
        "update_memory",
    }


async def test_memories_persist_per_agent_file(tmp_path: Path) -> None:
    env = ToolsetEnv(data_dir=str(tmp_path), source_id="helper")
    first = MemoryToolset({}, env)
    tools = await tools_of(first)
    added = await tools["add_memory"].call(
        {"memory": "User likes tea", "category": "preference"}, CTX
    )
    assert added.output.startswith("Memory added successfully with ID: ")
    memory_id = added.output.rsplit(" ", 1)[1]
    await tools["add_memory"].call({"memory": "Project uses Python 3.11"}, CTX)
    await first.close()
    assert (tmp_path / "memory" / "helper" / "memory.db").is_file()

    again = await tools_of(MemoryToolset({}, env))  # another session of the same agent
    stored = json.loads((await again["get_memories"].call({}, CTX)).output)
    assert [m["memory"] for m in stored] == ["User likes tea", "Project uses Python 3.11"]
    assert set(stored[0]) == {"id", "created_at", "memory", "category"}
    assert stored[0]["id"] == memory_id and stored[0]["category"] == "preference"

    other = await tools_of(MemoryToolset({}, ToolsetEnv(data_dir=str(tmp_path), source_id="x")))
    assert json.loads((await other["get_memories"].call({}, CTX)).output) == []


async def test_search_update_delete(tmp_path: Path) -> None:
    tools = await tools_of(MemoryToolset({}, ToolsetEnv()))  # no data dir: in memory
    for text, category in [("likes green tea", "preference"), ("tea_time is 5%", "fact")]:
        await tools["add_memory"].call({"memory": text, "category": category}, CTX)

    async def search(**arguments: str) -> list[str]:
        found = await tools["search_memories"].call(arguments, CTX)
        return [m["memory"] for m in json.loads(found.output)]

    assert await search(query="TEA green") == ["likes green tea"]
    assert await search(query="tea") == ["likes green tea", "tea_time is 5%"]
    assert await search(query="_time 5%") == ["tea_time is 5%"]  # LIKE wildcards are literal
    assert await search(query="e_t") == []
    assert await search(category="FACT") == ["tea_time is 5%"]
    [first, _] = json.loads((await tools["get_memories"].call({}, CTX)).output)
    updated = await tools["update_memory"].call({"id": first["id"], "memory": "likes coffee"}, CTX)
    assert updated == ToolResult(f"Memory with ID {first['id']} updated successfully")
    assert await search(query="coffee") == ["likes coffee"]
    deleted = await tools["delete_memory"].call({"id": first["id"]}, CTX)
    assert deleted.output == f"Memory with ID {first['id']} deleted successfully"
    assert await search(query="coffee") == []
    for name, arguments in [
        ("delete_memory", {"id": "nope"}),
        ("update_memory", {"id": "nope", "memory": "x"}),
    ]:
        missing = await tools[name].call(arguments, CTX)
        assert missing == ToolResult("memory not found: nope", is_error=True)


def test_memory_path_option_is_relative_to_the_agent_file(tmp_path: Path) -> None:
    env = ToolsetEnv(data_dir="/data", source_id="a", source_dir=str(tmp_path))
    assert MemoryToolset({"path": "mem/a.db"}, env).path == str(tmp_path / "mem" / "a.db")
    assert MemoryToolset({}, env).path == "/data/memory/a/memory.db"
    assert MemoryToolset({}, ToolsetEnv()).path == ":memory:"


# -- script -----------------------------------------------------------------------------

SCRIPTS: dict[str, Any] = {
    "shell": {
        "greet": {
            "cmd": 'echo "hello $name from $(pwd -P) ($GREETING)"',
            "description": "Greet someone",
            "args": {"name": {"description": "Who"}, "loud": {"type": "boolean"}},
            "required": ["name"],
            "env": {"GREETING": "hi"},
        },
        "fail": {"cmd": "echo oops; exit 4"},
        "where": {"cmd": "pwd -P", "working_dir": "sub"},
        "leak": {"cmd": "printenv EXTRA TOP PATH_SEEN || true", "args": {}},
    },
    "env": {"TOP": "top-level"},
}


async def test_script_tools_schemas_and_runs(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    tools = await tools_of(ScriptToolset(SCRIPTS))
    assert list(tools) == ["fail", "greet", "leak", "where"]
    greet = tools["greet"].definition
    assert greet.description == "Greet someone" and not greet.read_only
    assert greet.parameters == {
        "type": "object",
        "properties": {
            "name": {"description": "Who", "type": "string"},
            "loud": {"type": "boolean"},
        },
        "required": ["name"],
    }
    assert tools["fail"].definition.description == "Execute shell command: echo oops; exit 4"
    ctx = ToolContext("s1", str(tmp_path))
    result = await tools["greet"].call({"name": "Ada; rm -rf /", "loud": True}, ctx)
    assert result == ToolResult(f"hello Ada; rm -rf / from {real(tmp_path)} (hi)")
    assert await tools["fail"].call({}, ctx) == ToolResult("oops\n[exit code 4]", is_error=True)
    assert (await tools["where"].call({}, ctx)).output == real(tmp_path / "sub")
    # Undeclared arguments never reach the environment; the toolset's env does.
    leak = await tools["leak"].call({"EXTRA": "x", "PATH_SEEN": "/nowhere"}, ctx)
    assert leak.output == "top-level"
    missing = await tools["greet"].call({}, ctx)
    assert missing == ToolResult("Missing required argument(s): name", is_error=True)


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"cmd": "echo $who"}, "undefined args: who"),
        ({"cmd": "echo ${env.TOKEN}"}, "cmd is a shell script"),
        ({"cmd": "echo $a", "args": {"a": {}}, "env": {"a": "1"}}, "both in args and env"),
        ({"cmd": "echo", "args": {}, "required": ["b"]}, "required arg 'b'"),
        ({"cmd": ""}, "cmd"),
    ],
)
def test_script_checks(entry: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        ScriptToolset({"shell": {"t": entry}})


def test_script_needs_shell_entries() -> None:
    with pytest.raises(ValueError, match="shell"):
        ScriptToolset({})


async def test_no_required_list_means_all_args_are_required() -> None:
    tools = await tools_of(
        ScriptToolset({"shell": {"t": {"cmd": "echo $a $b", "args": {"a": {}, "b": {}}}}})
    )
    assert tools["t"].definition.parameters["required"] == ["a", "b"]


# -- user_prompt ------------------------------------------------------------------------


async def test_user_prompt_asks_and_reports_the_answer() -> None:
    [tool] = await UserPromptToolset().tools()
    assert tool.definition.read_only and tool.definition.name == "user_prompt"
    assert set(tool.definition.parameters["properties"]) == {"message", "title", "schema"}
    asked: list[tuple[str, Any]] = []

    def answering(answer: ElicitationResult) -> ToolContext:
        async def elicit(message: str, schema: Any) -> ElicitationResult:
            asked.append((message, schema))
            return answer

        return ToolContext("s1", os.getcwd(), elicit)

    schema = {"type": "object", "properties": {"name": {"type": "string"}}}
    accepted = await tool.call(
        {"message": "Name?", "schema": schema},
        answering(ElicitationResult("accept", {"name": "Ada"})),
    )
    assert json.loads(accepted.output) == {"action": "accept", "content": {"name": "Ada"}}
    assert not accepted.is_error and asked == [("Name?", schema)]
    declined = await tool.call({"message": "Sure?"}, answering(ElicitationResult("decline")))
    assert declined == ToolResult('{"action": "decline"}', is_error=True)
    assert asked[-1] == ("Sure?", {})
    headless = await tool.call({"message": "Sure?"}, ToolContext("s1", ""))
    assert headless.is_error and "not available" in headless.output
