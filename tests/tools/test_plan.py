"""The ``plan`` toolset: one plan per session, shared by the session's agents."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbsession.tools import ToolContext, ToolsetEnv, build_toolsets


async def plan_tools(data_dir: str) -> dict:  # type: ignore[type-arg]
    [toolset] = build_toolsets([("plan", {})], ToolsetEnv(data_dir=data_dir))
    return {tool.definition.name: tool for tool in await toolset.tools()}


@pytest.mark.parametrize("kept", ["files", "memory"])
async def test_write_read_and_mark_ready(tmp_path: Path, kept: str) -> None:
    data_dir = str(tmp_path) if kept == "files" else ""
    planner, executor = await plan_tools(data_dir), await plan_tools(data_dir)
    ctx = ToolContext(f"session-{kept}", str(tmp_path))
    assert not planner["write_plan"].definition.read_only  # a write asks
    assert planner["read_plan"].definition.read_only
    assert planner["exit_plan_mode"].definition.read_only

    early = await planner["exit_plan_mode"].call({}, ctx)
    assert early.is_error and "write_plan" in early.output
    assert (await planner["read_plan"].call({}, ctx)).is_error
    assert (await planner["write_plan"].call({"content": "  "}, ctx)).is_error

    assert not (await planner["write_plan"].call({"content": "1. look\n2. fix"}, ctx)).is_error
    # Another agent of the session (another toolset instance) reads the same plan.
    assert (await executor["read_plan"].call({}, ctx)).output == "1. look\n2. fix"
    assert (await planner["exit_plan_mode"].call({}, ctx)).output == "Plan ready for review."
    other = ToolContext("another-session", str(tmp_path))
    assert (await executor["read_plan"].call({}, other)).is_error
    if kept == "files":
        assert (tmp_path / "plans" / f"session-{kept}.md").read_text() == "1. look\n2. fix"
