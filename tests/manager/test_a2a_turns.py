"""A remote A2A agent inside real turns: the agent file loads, the skill is a tool that asks for
approval and answers with the remote agent's text; an unreachable agent is a warning."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import yaml
from tools.test_a2a import TOKEN, Agent, free_port

from .turn_helpers import DEADLINE, of_type, open_manager, run_turn

CALL = 'call `remote_echo` with {"message": "task: hi"}'


def write_agent(agents_dir: Path, name: str, url: str) -> str:
    toolset: dict[str, Any] = {
        "type": "a2a",
        "url": url,
        "name": "remote",
        "allow_private_ips": True,
        "headers": {"Authorization": f"Bearer {TOKEN}"},
    }
    root = {"model": "demo/offline", "toolsets": [toolset, {"type": "think"}]}
    agents_dir.mkdir(parents=True, exist_ok=True)
    (agents_dir / f"{name}.yaml").write_text(yaml.safe_dump({"agents": {"root": root}}))
    return name


async def test_a_turn_calls_the_remote_agent_after_approval(tmp_path: Path) -> None:
    with Agent() as agent:
        name = write_agent(tmp_path / "agents", "remote", agent.url)
        async with open_manager(tmp_path) as mgr:
            [row] = [row for row in mgr.list_agents() if row.name == name]
            assert (row.error, row.warnings) == (None, ())
            assert await mgr.get_agent_tool_count(name) == 3  # two skills, and think
            session = await mgr.create_session({})
            events = await asyncio.wait_for(run_turn(mgr, session.id, CALL, agent=name), DEADLINE)
    [confirmation] = of_type(events, "tool_call_confirmation")
    assert confirmation["tool_definition"]["name"] == "remote_echo"
    assert confirmation["tool_definition"]["category"] == "a2a"
    [response] = of_type(events, "tool_call_response")
    assert response["result"] == {"output": "working... done: hi", "isError": False}
    streamed = "".join(event["output"] for event in of_type(events, "tool_call_output"))
    assert streamed == "working... done: hi"


async def test_an_unreachable_agent_is_a_warning_and_the_turn_goes_on(tmp_path: Path) -> None:
    name = write_agent(tmp_path / "agents", "gone", f"http://127.0.0.1:{free_port()}")
    async with open_manager(tmp_path) as mgr:
        session = await mgr.create_session({})
        events = await asyncio.wait_for(
            run_turn(mgr, session.id, "what is 6*7", agent=name), DEADLINE
        )
        [warning] = [e for e in of_type(events, "warning") if "not available" in e["message"]]
        assert "'a2a'" in warning["message"] and "cannot reach the A2A agent" in warning["message"]
        [response] = of_type(events, "tool_call_response")
        assert response["result"]["output"] == "Thought recorded."
        assert events[-1]["type"] == "stream_stopped"
