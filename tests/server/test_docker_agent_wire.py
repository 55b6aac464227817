"""docker-agent clients read our JSON right (SPEC 2, 4, 5): each response and event below is
decoded with Go's rules into docker-agent's own types (``go_json``), then checked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import go_json as go
from .conftest import Fetch, frames, new_session, user

TEAM = """
version: "2"
agents:
  root:
    model: demo/offline
    description: The lead
    welcome_message: Hi there
    instruction: Lead.
    sub_agents: [helper]
    toolsets: [{type: think}]
    commands:
      fix: Fix the failing test
      review: {description: Review a change, instruction: Review the diff carefully}
  helper:
    model: demo/offline
    description: Helps
    commands:
      - ls: list the files
      - df: {description: Disk usage, instruction: check the disk}
"""


def write_team(tmp_path: Path, name: str = "team") -> str:
    (tmp_path / "agents").mkdir(exist_ok=True)
    (tmp_path / "agents" / f"{name}.yaml").write_text(TEAM)
    return name


def message(role: str, content: str, agent: str = "", **extra: Any) -> dict[str, Any]:
    return {"message": {"agentName": agent, "message": {"role": role, "content": content, **extra}}}


async def test_get_session_is_a_session_response_with_flat_messages(api: Fetch) -> None:
    recovery = {
        "recovery_version": 1,
        "id": "11111111-2222-3333-4444-555555555555",
        "title": "imported",
        "created_at": "2025-01-02T03:04:05Z",
        "tools_approved": True,
        "input_tokens": 12,
        "output_tokens": 34,
        "permissions": {"allow": ["think"], "ask": [], "deny": []},
        "messages": [
            message("user", "delegate this"),
            {
                "sub_session": {
                    "id": "sub-1",
                    "messages": [
                        message("system", "You are the helper."),
                        message("user", "the sub task", "helper"),
                        message("assistant", "sub answer", "helper"),
                    ],
                }
            },
            {"summary": "so far"},
            message("assistant", "all done", "root"),
        ],
    }
    recovery["messages"][1]["sub_session"]["messages"][1]["message"]["implicit"] = True
    imported = await api("POST", "api/sessions/import", recovery)
    assert imported.code == 201, imported.body
    session_id = imported.json()["id"]

    reply = await api("GET", f"api/sessions/{session_id}")
    decoded = go.decode(reply.json(), go.SessionResponse)
    assert [
        (m["agentName"], m["message"]["role"], m["message"]["content"]) for m in decoded["messages"]
    ] == [
        ("", "user", "delegate this"),
        ("helper", "user", "the sub task"),
        ("helper", "assistant", "sub answer"),
        ("root", "assistant", "all done"),
    ]
    assert [m["implicit"] for m in decoded["messages"]] == [False, True, False, False]
    assert decoded["title"] == "imported" and decoded["tools_approved"] is True
    assert (decoded["input_tokens"], decoded["output_tokens"]) == (12, 34)
    assert decoded["permissions"]["allow"] == ["think"]
    # The item tree (sub-session, summary) stays at /recovery.
    tree = (await api("GET", f"api/sessions/{session_id}/recovery")).json()["messages"]
    assert "sub_session" in tree[1] and tree[2]["summary"] == "so far"


async def test_get_agent_is_docker_agents_config(api: Fetch, tmp_path: Path) -> None:
    agent_id = write_team(tmp_path)
    reply = await api("GET", f"api/agents/{agent_id}")
    assert reply.code == 200, reply.body
    config = go.decode(reply.json(), go.Config)
    assert [agent["Name"] for agent in config["agents"]] == ["root", "helper"]  # file order
    root, helper = config["agents"]
    assert root["sub_agents"] == ["helper"] and root["toolsets"] == [{"type": "think"}]
    assert root["commands"] == {
        "fix": {"description": "", "instruction": "Fix the failing test"},
        "review": {"description": "Review a change", "instruction": "Review the diff carefully"},
    }
    assert helper["commands"] == {  # the list form loads too
        "ls": {"description": "", "instruction": "list the files"},
        "df": {"description": "Disk usage", "instruction": "check the disk"},
    }
    listed = (await api("GET", "api/agents")).json()
    assert [a["commands"] for a in listed if a["name"] == agent_id] == [["fix", "review"]]


async def run(api: Fetch, session_id: str, text: str, agent: str = "default") -> list[dict]:
    reply = await api("POST", f"api/sessions/{session_id}/agent/{agent}", user(text))
    assert reply.code == 200, reply.body
    return [event for _seq, event in frames(reply.body)]


async def test_a_turn_opens_as_docker_agents_does(api: Fetch, tmp_path: Path) -> None:
    agent_id = write_team(tmp_path)
    session_id = await new_session(api, title="t")
    events = await run(api, session_id, "what is 17*23", agent_id)
    opening = [event["type"] for event in events[:5]]
    assert opening == ["agent_info", "team_info", "toolset_info", "user_message", "stream_started"]
    info = go.decode(events[0], go.AgentInfoEvent)
    assert (info["agent_name"], info["model"]) == ("root", "demo/offline")
    assert (info["description"], info["welcome_message"]) == ("The lead", "Hi there")
    team = go.decode(events[1], go.TeamInfoEvent)
    assert team["current_agent"] == "root"
    assert [(a["name"], a["provider"], a["model"]) for a in team["available_agents"]] == [
        ("root", "demo", "offline"),
        ("helper", "demo", "offline"),
    ]
    assert team["available_agents"][1]["commands"]["df"]["instruction"] == "check the disk"
    # think, and transfer_task for the sub_agents
    assert go.decode(events[2], go.ToolsetInfoEvent)["available_tools"] == 2
    said = go.decode(events[3], go.UserMessageEvent)
    assert (said["message"], said["session_id"]) == ("what is 17*23", session_id)
    assert go.decode(events[4], go.StreamStartedEvent)["session_id"] == session_id


async def test_a_failed_tool_reads_as_failed(api: Fetch, stream: Any) -> None:
    session_id = await new_session(api, title="t")
    live = stream("POST", f"api/sessions/{session_id}/agent/default", user("list the files"))
    await live.until("tool_call_confirmation")
    reply = await api("POST", f"api/sessions/{session_id}/resume", {"confirmation": "reject"})
    assert reply.code == 200
    await live.reply()
    [response] = [e for _s, e in live.events if e["type"] == "tool_call_response"]
    decoded = go.decode(response, go.ToolCallResponseEvent)
    assert decoded["result"]["isError"] is True
    assert decoded["result"]["output"].startswith("The user rejected the tool call")


async def test_max_iterations_pauses_then_reject_stops_the_turn(api: Fetch, stream: Any) -> None:
    session_id = await new_session(api, title="t", max_iterations=1)
    live = stream("POST", f"api/sessions/{session_id}/agent/default", user("what is 17*23"))
    reached = go.decode(await live.until("max_iterations_reached"), go.MaxIterationsReachedEvent)
    assert reached["max_iterations"] == 1
    status = (await api("GET", f"api/sessions/{session_id}/status")).json()
    assert status["streaming"] is True  # paused, waiting for /resume
    reply = await api("POST", f"api/sessions/{session_id}/resume", {"confirmation": "reject"})
    assert reply.code == 200
    await live.reply()
    assert live.events[-1][1]["type"] == "stream_stopped"
    stop = "Execution stopped after reaching the configured max_iterations limit (1)."
    session = go.decode((await api("GET", f"api/sessions/{session_id}")).json(), go.SessionResponse)
    assert session["messages"][-1]["message"] == {
        **session["messages"][-1]["message"],
        "role": "assistant",
        "content": stop,
    }
    nothing = await api("POST", f"api/sessions/{session_id}/resume", {"confirmation": "approve"})
    assert nothing.code in (404, 409)


async def test_max_iterations_approve_goes_on(api: Fetch, stream: Any) -> None:
    session_id = await new_session(api, title="t", max_iterations=1)
    live = stream("POST", f"api/sessions/{session_id}/agent/default", user("what is 17*23"))
    await live.until("max_iterations_reached")
    reply = await api("POST", f"api/sessions/{session_id}/resume", {"confirmation": "approve"})
    assert reply.code == 200
    await live.reply()
    text = "".join(e["content"] for _s, e in live.events if e["type"] == "agent_choice")
    assert "391" in text
    assert live.events[-1][1]["type"] == "stream_stopped"
    assert [e["type"] for _s, e in live.events].count("max_iterations_reached") == 1
