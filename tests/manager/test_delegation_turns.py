"""Handoffs and background agents in real turns, on the loopback OpenAI-compatible server."""

from __future__ import annotations

import json
import re
from pathlib import Path

from peers.openai_server import OpenAIServer, RecordedRequest, Reply, ScriptedToolCall

from .turn_helpers import of_type, open_manager, read_rest, user

HANDOFF_TEAM = """
agents:
  root:
    model: m
    instruction: Route the request.
    handoffs: [planner]
    toolsets: [{{type: think}}]
  planner:
    model: planner_model
    instruction: Plan the work.
    toolsets: [{{type: plan}}]
models:
  m: {{provider: openai, model: gpt-root, base_url: "{url}"}}
  planner_model: {{provider: openai, model: gpt-planner, base_url: "{url}"}}
"""


def write(tmp_path: Path, name: str, text: str) -> None:
    (tmp_path / "agents").mkdir(exist_ok=True)
    (tmp_path / "agents" / f"{name}.yaml").write_text(text)


async def test_a_handoff_switches_the_agent_in_place(
    tmp_path: Path, openai_server: OpenAIServer
) -> None:
    openai_server.script(
        Reply(tool_calls=[ScriptedToolCall("handoff", {"agent": "planner"}, id="call_h")]),
        Reply(text="planner here"),
        Reply(text="still the planner"),
    )
    write(tmp_path, "team", HANDOFF_TEAM.format(url=openai_server.url))
    async with open_manager(tmp_path) as mgr:
        session = await mgr.create_session({"title": "t"})  # no title call
        events = await read_rest(await mgr.run_session(session.id, "team", "", user("plan it")))
        assert events[-1]["reason"] == "normal"
        [response] = of_type(events, "tool_call_response")
        assert "The agent root handed off the conversation to you." in response["response"]
        infos = [e["agent_name"] for e in of_type(events, "agent_info")]
        assert infos == ["root", "planner"]
        assert of_type(events, "agent_choice")[-1]["agent_name"] == "planner"

        root_call, planner_call = openai_server.requests[0], openai_server.requests[1]
        assert "handoff" in root_call.tool_names and "write_plan" not in root_call.tool_names
        assert planner_call.body["model"] == "gpt-planner"  # its own model
        assert planner_call.messages[0] == {"role": "system", "content": "Plan the work."}
        assert "write_plan" in planner_call.tool_names and "handoff" not in planner_call.tool_names
        assert planner_call.messages[-1]["role"] == "tool"  # the conversation goes on

        # The session stays with the planner: a run naming no agent goes on with it.
        assert (await mgr.get_session_status(session.id))["agent"] == "planner"
        again = await read_rest(await mgr.run_session(session.id, "team", "", user("more")))
        assert again[-1]["reason"] == "normal"
        assert openai_server.requests[2].messages[0]["content"] == "Plan the work."


async def test_a_handoff_outside_the_list_is_refused(
    tmp_path: Path, openai_server: OpenAIServer
) -> None:
    openai_server.script(
        Reply(tool_calls=[ScriptedToolCall("handoff", {"agent": "nobody"})]),
        Reply(text="fine, myself"),
    )
    write(tmp_path, "team", HANDOFF_TEAM.format(url=openai_server.url))
    async with open_manager(tmp_path) as mgr:
        session = await mgr.create_session({"title": "t"})  # no title call
        await read_rest(await mgr.run_session(session.id, "team", "", user("plan it")))
        told = openai_server.requests[1].messages[-1]["content"]
        assert told.startswith("Agent root cannot hand off to nobody: target agent not in")
        assert openai_server.requests[1].body["model"] == "gpt-root"


BACKGROUND_TEAM = """
agents:
  root:
    model: m
    instruction: Coordinate.
    sub_agents: [worker]
    toolsets: [{{type: background_agents}}]
  worker:
    model: m
    instruction: Work.
    toolsets: [{{type: shell}}]
models:
  m: {{provider: openai, model: gpt-test, base_url: "{url}"}}
"""


def background_script(request: RecordedRequest) -> Reply:
    """Who answers depends on who asks: the worker (its system prompt) or the root."""
    messages = request.messages
    last = messages[-1]
    if messages[0]["content"] == "Work.":
        if last["role"] == "tool":
            return Reply(text=f"worker finished; the shell said: {last['content']}")
        return Reply(tool_calls=[ScriptedToolCall("shell", {"cmd": "echo hi"})])
    if last["role"] == "user":
        task = {"agent": "worker", "task": "Say hi from the shell"}
        return Reply(tool_calls=[ScriptedToolCall("run_background_agent", task)])
    started = re.search(r"started with ID: (\S+)", last["content"])
    if started:
        wait = {"task_ids": [started.group(1)], "timeout": 30}
        return Reply(tool_calls=[ScriptedToolCall("wait_background_agents", wait)])
    return Reply(text="summary")


async def test_background_agents_run_without_asking_and_are_stored(tmp_path: Path) -> None:
    with OpenAIServer(background_script) as server:
        write(tmp_path, "team", BACKGROUND_TEAM.format(url=server.url))
        async with open_manager(tmp_path) as mgr:
            session = await mgr.create_session({"title": "t"})  # no title call
            events = await read_rest(await mgr.run_session(session.id, "team", "", user("go")))
            assert events[-1]["reason"] == "normal"
            assert not of_type(events, "tool_call_confirmation")  # no one was asked
            assert {e.get("agent_name") for e in events} == {"root"}  # its events stay out
            waited = [
                e
                for e in of_type(events, "tool_call_response")
                if e["tool_call"]["function"]["name"] == "wait_background_agents"
            ]
            result = json.loads(waited[0]["response"])
            assert result["all_done"] is True
            [task] = result["tasks"]
            assert task["status"] == "completed"
            assert "worker finished" in task["output"]
            assert "needs approval, and a background agent has no one to ask" in task["output"]

            stored = await mgr.get_session(session.id)
            [item] = [item for item in stored.messages if item.sub_session is not None]
            assert item.sub_session is not None
            assert item.sub_session.title == "Background agent task"
            roles = [m.message.role for m in item.sub_session.chat_messages()]
            assert roles == ["system", "user", "assistant", "tool", "assistant"]


async def test_the_agent_handed_to_survives_the_runtime_being_released(
    tmp_path: Path, openai_server: OpenAIServer
) -> None:
    openai_server.script(
        Reply(tool_calls=[ScriptedToolCall("handoff", {"agent": "planner"})]),
        Reply(text="planner here"),
    )
    write(tmp_path, "team", HANDOFF_TEAM.format(url=openai_server.url))
    async with open_manager(tmp_path, max_live_runtimes=1) as mgr:
        session = await mgr.create_session({"title": "t"})
        await read_rest(await mgr.run_session(session.id, "team", "", user("plan it")))
        other = await mgr.create_session({"title": "other"})
        await read_rest(await mgr.run_session(other.id, "default", "", user("hello")))
        assert (await mgr.ready_status())["active_sessions"] == 1  # the first one is released
        assert (await mgr.get_session_status(session.id))["agent"] == "planner"
        await read_rest(await mgr.run_session(session.id, "team", "", user("go on")))
        assert openai_server.requests[-1].messages[0]["content"] == "Plan the work."
