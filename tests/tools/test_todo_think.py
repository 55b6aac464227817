"""The think and todo toolsets: in-memory tools whose output the model reads."""

from __future__ import annotations

from nbsession.tools import ThinkToolset, TodoToolset, Tool, ToolContext, ToolResult

CTX = ToolContext(session_id="s1", working_dir="/tmp")


async def tools_by_name(toolset: TodoToolset | ThinkToolset) -> dict[str, Tool]:
    return {tool.definition.name: tool for tool in await toolset.tools()}


async def test_think_records_the_thought() -> None:
    [think] = await ThinkToolset().tools()
    assert think.definition.name == "think"
    assert think.definition.read_only
    assert think.definition.parameters["required"] == ["thought"]
    assert await think.call({"thought": "check the file first"}, CTX) == ToolResult(
        "Thought recorded."
    )


async def test_todo_tools_are_all_read_only() -> None:
    tools = await tools_by_name(TodoToolset())
    assert sorted(tools) == ["create_todo", "create_todos", "list_todos", "update_todos"]
    assert all(tool.definition.read_only for tool in tools.values())


async def test_todo_lifecycle() -> None:
    tools = await tools_by_name(TodoToolset())
    assert await tools["list_todos"].call({}, CTX) == ToolResult("No todos.", meta=[])

    created = await tools["create_todo"].call({"description": "Read the data"}, CTX)
    assert created.output.startswith("Created todo_1.\n\nTodos:\n- todo_1 [pending] Read the data")

    created = await tools["create_todos"].call({"descriptions": ["Fit", "Plot"]}, CTX)
    assert created.output.startswith("Created todo_2, todo_3.")

    updated = await tools["update_todos"].call(
        {
            "updates": [
                {"id": "todo_1", "status": "completed"},
                {"id": "todo_2", "status": "in-progress"},
            ]
        },
        CTX,
    )
    assert updated == ToolResult(
        "Updated todo_1 to completed.\n"
        "Updated todo_2 to in-progress.\n"
        "\n"
        "Todos:\n"
        "- todo_1 [completed] Read the data\n"
        "- todo_2 [in-progress] Fit\n"
        "- todo_3 [pending] Plot\n"
        "2 todo(s) still incomplete: complete them before the final answer.",
        # For clients, as docker-agent's result meta: the whole list.
        meta=[
            {"id": "todo_1", "description": "Read the data", "status": "completed"},
            {"id": "todo_2", "description": "Fit", "status": "in-progress"},
            {"id": "todo_3", "description": "Plot", "status": "pending"},
        ],
    )

    await tools["update_todos"].call(
        {"updates": [{"id": i, "status": "completed"} for i in ("todo_2", "todo_3")]}, CTX
    )
    listed = await tools["list_todos"].call({}, CTX)
    assert listed.output.endswith("- todo_3 [completed] Plot")
    assert "incomplete" not in listed.output


async def test_update_with_unknown_ids() -> None:
    tools = await tools_by_name(TodoToolset())
    await tools["create_todo"].call({"description": "One"}, CTX)

    partial = await tools["update_todos"].call(
        {
            "updates": [
                {"id": "todo_1", "status": "completed"},
                {"id": "todo_9", "status": "pending"},
            ]
        },
        CTX,
    )
    assert not partial.is_error
    assert "Not found: todo_9." in partial.output

    none_found = await tools["update_todos"].call(
        {"updates": [{"id": "todo_9", "status": "completed"}]}, CTX
    )
    assert none_found.is_error
    assert none_found.output.startswith("Not found: todo_9.")


async def test_update_rejects_unknown_status() -> None:
    tools = await tools_by_name(TodoToolset())
    await tools["create_todo"].call({"description": "One"}, CTX)
    result = await tools["update_todos"].call(
        {"updates": [{"id": "todo_1", "status": "done"}]}, CTX
    )
    assert result.is_error
    assert result.output.startswith("Invalid arguments for update_todos: updates.0.status: ")


async def test_each_toolset_instance_has_its_own_list() -> None:
    first = await tools_by_name(TodoToolset())
    second = await tools_by_name(TodoToolset())
    await first["create_todo"].call({"description": "Only here"}, CTX)
    assert await second["list_todos"].call({}, CTX) == ToolResult("No todos.", meta=[])
    created = await second["create_todo"].call({"description": "Mine"}, CTX)
    assert created.output.startswith("Created todo_1.")
