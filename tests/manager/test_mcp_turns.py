"""MCP servers inside real turns: init events, approvals, elicitation, a dying server."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import yaml
from tools.test_mcp import SERVER, gone

from .turn_helpers import (
    DEADLINE,
    approver,
    of_type,
    open_manager,
    read_until,
    run_turn,
    types,
    user,
)


def write_mcp_agent(agents_dir: Path) -> str:
    agent = {
        "model": "demo/offline",
        "description": "uses an MCP server",
        "instruction": "Use the tools.",
        "toolsets": [{"type": "mcp", "command": sys.executable, "args": [SERVER, "stdio"]}],
    }
    agents_dir.mkdir(parents=True, exist_ok=True)
    (agents_dir / "mcp.yaml").write_text(yaml.safe_dump({"agents": {"root": agent}}))
    return "mcp"


def response(events: list[dict]) -> dict:
    [event] = of_type(events, "tool_call_response")
    return event["result"]


async def test_mcp_tools_in_turns_with_elicitation_death_and_restart(tmp_path: Path) -> None:
    agent = write_mcp_agent(tmp_path / "agents")
    async with open_manager(tmp_path) as mgr:
        session = await mgr.create_session({})
        sid = session.id

        # First turn: the server starts between mcp_init events; a read-only tool just runs.
        events = await run_turn(mgr, sid, 'call `add` with {"a": 20, "b": 22}', agent=agent)
        names = types(events)
        assert names.index("mcp_init_started") < names.index("mcp_init_finished")
        assert names.index("mcp_init_finished") < names.index("tool_call")
        assert not of_type(events, "tool_call_confirmation")
        assert response(events)["output"] == "42"
        [call] = of_type(events, "tool_call")
        assert call["tool_definition"]["annotations"]["readOnlyHint"] is True

        # The server asks the user: an elicitation_request answered through the manager.
        stream = await mgr.run_session(sid, agent, "", user("call `pick_color`"))
        before = await read_until(
            stream, "elicitation_request", answer=approver(mgr, sid, "approve")
        )
        assert "mcp_init_started" not in types(before)  # still running from the first turn
        request = before[-1]
        assert request["message"] == "Which color?"
        assert request["schema"]["properties"]["color"]["type"] == "string"
        await mgr.resume_elicitation(sid, "accept", {"color": "green"}, request["elicitation_id"])
        rest = await read_until(stream, "stream_stopped")
        assert response(rest)["output"] == "picked green"

        pid = int(
            response(await run_turn(mgr, sid, "call `whoami`", agent=agent))["output"].split()[0]
        )

        # The server dies mid-call: an error result, and the turn (and server) carry on.
        events = await run_turn(mgr, sid, "call `die`", agent=agent)
        assert response(events)["isError"]
        assert "stopped while running die" in response(events)["output"]
        assert types(events)[-1] == "stream_stopped"
        assert await gone(pid)

        # The next turn starts it again.
        events = await run_turn(mgr, sid, "call `whoami`", agent=agent)
        assert "mcp_init_started" in types(events)
        new_pid = int(response(events)["output"].split()[0])
        assert new_pid != pid

        # Deleting the session stops the server.
        await mgr.delete_session(sid)
        assert await gone(new_pid)


async def test_a_server_that_cannot_start_warns_and_the_turn_goes_on(tmp_path: Path) -> None:
    agents = tmp_path / "agents"
    agents.mkdir()
    broken = {
        "model": "demo/offline",
        "toolsets": [
            {"type": "mcp", "command": str(tmp_path / "missing-server")},
            {"type": "think"},
        ],
    }
    (agents / "broken.yaml").write_text(yaml.safe_dump({"agents": {"root": broken}}))
    async with open_manager(tmp_path) as mgr:
        session = await mgr.create_session({})
        events = await asyncio.wait_for(
            run_turn(mgr, session.id, "what is 6*7", agent="broken"), DEADLINE
        )
        [warning] = [e for e in of_type(events, "warning") if "not available" in e["message"]]
        assert "'mcp'" in warning["message"]
        assert response(events)["output"] == "Thought recorded."  # other tools still work
        assert json.dumps(events).count("mcp_init_finished") == 1


async def test_a_servers_progress_streams_as_the_calls_output(tmp_path: Path) -> None:
    """MCP progress notifications of a call are its tool_call_output, before its response;
    the server's log messages are not (docker-agent forwards neither)."""
    agent = write_mcp_agent(tmp_path / "agents")
    async with open_manager(tmp_path) as mgr:
        session = await mgr.create_session({})
        events = await run_turn(mgr, session.id, 'call `count` with {"steps": 3}', agent=agent)
        [call] = of_type(events, "tool_call")
        outputs = of_type(events, "tool_call_output")
        assert outputs and {event["tool_call_id"] for event in outputs} == {call["tool_call"]["id"]}
        assert outputs[0]["tool_definition"]["name"] == "count"
        assert "".join(event["output"] for event in outputs) == (
            "1/3 step 1\n2/3 step 2\n3/3 step 3\n"
        )
        names = types(events)
        assert names.index("tool_call") < names.index("tool_call_output")
        assert max(i for i, n in enumerate(names) if n == "tool_call_output") < names.index(
            "tool_call_response"
        )
        assert response(events)["output"] == "counted to 3"
