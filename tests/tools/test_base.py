"""The toolset interface: definitions as docker-agent JSON, argument validation, the registry."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field

from nbsession.tools import (
    TOOLSET_FACTORIES,
    FunctionTool,
    ShellToolset,
    ThinkToolset,
    TodoToolset,
    ToolContext,
    ToolDefinition,
    ToolResult,
    build_toolsets,
)

CTX = ToolContext(session_id="s1", working_dir="/tmp")


class AddArgs(BaseModel):
    a: int = Field(description="First term")
    b: int = 0


async def add(args: AddArgs, ctx: ToolContext) -> ToolResult:
    return ToolResult(f"{args.a + args.b} in {ctx.session_id}")


ADD = FunctionTool(name="add", description="Add two numbers", args=AddArgs, func=add)


def test_tool_definition_to_json_is_docker_agent_tool_shape() -> None:
    definition = ToolDefinition(
        name="read_file",
        description="Read a file",
        parameters={"type": "object", "properties": {}},
        read_only=True,
        title="Read file",
        category="filesystem",
    )
    assert definition.to_json() == {
        "name": "read_file",
        "category": "filesystem",
        "description": "Read a file",
        "parameters": {"type": "object", "properties": {}},
        "annotations": {"title": "Read file", "readOnlyHint": True},
        "outputSchema": None,
    }


def test_tool_definition_without_title_omits_it() -> None:
    definition = ToolDefinition(name="x", description="", parameters={})
    assert definition.to_json()["annotations"] == {"readOnlyHint": False}
    assert definition.to_json()["category"] == ""


def test_tool_result_to_json() -> None:
    assert ToolResult("boom", is_error=True).to_json() == {"output": "boom", "isError": True}
    assert ToolResult("ok").to_json() == {"output": "ok", "isError": False}


def test_function_tool_advertises_the_model_schema() -> None:
    assert ADD.definition.parameters == AddArgs.model_json_schema()
    assert ADD.definition.parameters["required"] == ["a"]
    assert ADD.definition.read_only is False


async def test_function_tool_validates_and_calls() -> None:
    assert await ADD.call({"a": 2, "b": 3}, CTX) == ToolResult("5 in s1")


async def test_function_tool_invalid_arguments_are_an_error_result() -> None:
    result = await ADD.call({"b": "three"}, CTX)
    assert result.is_error
    assert result.output.startswith("Invalid arguments for add: ")
    assert "a: Field required" in result.output
    assert "b: Input should be a valid integer" in result.output


async def test_function_tool_lets_unexpected_exceptions_propagate() -> None:
    async def broken(args: AddArgs, ctx: ToolContext) -> ToolResult:
        raise RuntimeError("bug")

    tool = FunctionTool(name="broken", description="", args=AddArgs, func=broken)
    with pytest.raises(RuntimeError, match="bug"):
        await tool.call({"a": 1}, CTX)


async def test_build_toolsets_in_order_with_fresh_instances() -> None:
    specs = [("think", {}), ("todo", {}), ("shell", {"timeout": 5}), ("todo", {})]
    toolsets = build_toolsets(specs)
    assert [type(t) for t in toolsets] == [ThinkToolset, TodoToolset, ShellToolset, TodoToolset]
    assert toolsets[1] is not toolsets[3]
    assert {"filesystem", "shell", "think", "todo"} <= set(TOOLSET_FACTORIES)
    for toolset in toolsets:
        assert all(tool.definition.category == toolset.type for tool in await toolset.tools())
        await toolset.close()


def test_build_toolsets_unknown_type_names_it() -> None:
    with pytest.raises(ValueError, match="'nosuch'"):
        build_toolsets([("think", {}), ("nosuch", {})])
