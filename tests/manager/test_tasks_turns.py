"""The tasks toolset inside real turns: one task list per agent file, across sessions and
restarts, beside the session store."""

from __future__ import annotations

import json
from pathlib import Path

from .test_toolset_turns import call_text
from .turn_helpers import of_type, open_manager, run_turn, write_agent


async def test_tasks_outlive_the_session_and_the_server(tmp_path: Path) -> None:
    write_agent(tmp_path / "agents", "planner", toolsets=["tasks"])
    create = call_text("create_task", title="write the docs", priority="high")
    async with open_manager(tmp_path) as mgr:
        first = await mgr.create_session({})
        events = await run_turn(mgr, first.id, create, agent="planner")
        assert of_type(events, "tool_call_confirmation")  # creating asks
        [response] = of_type(events, "tool_call_response")
        created = json.loads(response["result"]["output"])
    assert (tmp_path / "tasks" / "planner" / "tasks.json").is_file()  # beside s.db

    async with open_manager(tmp_path) as mgr:  # a restart, and a new session
        second = await mgr.create_session({})
        events = await run_turn(mgr, second.id, "call `next_task`", agent="planner")
        assert not of_type(events, "tool_call_confirmation")  # reading does not
        [response] = of_type(events, "tool_call_response")
        assert json.loads(response["result"]["output"])["id"] == created["id"]
