"""A team delegates (SPEC 11, issue 16): the root agent hands a task to its sub-agent with
``transfer_task``; the sub-agent works in a sub-session item of the session, on a real
OpenAI-compatible endpoint, and asks for approval like any agent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from peers.openai_server import OpenAIServer, Reply, ScriptedToolCall

from nbsession.session import Item
from nbsession.store import SQLiteStore

from .conftest import Fetch, new_session, user

TEAM = """
agents:
  root:
    model: m
    instruction: Lead the team.
    sub_agents: [helper]
  helper:
    model: m
    description: Runs commands
    instruction: Help.
    toolsets: [{{type: shell}}]
models:
  m: {{provider: openai, model: gpt-test, base_url: "{url}"}}
"""

TASK = {"agent": "helper", "task": "Say hello from the shell", "expected_output": "the line"}


def write_team(tmp_path: Path, url: str) -> str:
    (tmp_path / "agents").mkdir(exist_ok=True)
    (tmp_path / "agents" / "team.yaml").write_text(TEAM.format(url=url))
    return "team"


async def test_root_delegates_to_a_sub_agent_that_asks_for_approval(
    api: Fetch, stream: Any, tmp_path: Path, openai_server: OpenAIServer
) -> None:
    openai_server.script(
        Reply(tool_calls=[ScriptedToolCall("transfer_task", TASK, id="call_t")]),
        Reply(tool_calls=[ScriptedToolCall("shell", {"cmd": "echo from-helper"}, id="call_s")]),
        Reply(text="The shell said from-helper"),
        Reply(text="Done: the helper reports from-helper"),
    )
    agent_id = write_team(tmp_path, openai_server.url)
    session_id = await new_session(api, title="team work")
    path = f"api/sessions/{session_id}"
    live = stream("POST", f"{path}/agent/{agent_id}", user("ask the helper"))

    confirmation = await live.until("tool_call_confirmation")
    assert confirmation["agent_name"] == "helper"
    assert confirmation["tool_call"]["function"]["name"] == "shell"
    status = (await api("GET", f"{path}/status")).json()
    assert status["streaming"] is True
    assert (status["activity"]["state"], status["activity"]["tool"]) == (
        "waiting_for_approval",
        "shell",
    )
    reply = await api("POST", f"{path}/resume", {"confirmation": "approve"})
    assert reply.code == 200, reply.body
    await live.reply()

    events = [event for _seq, event in live.events]
    assert events[-1]["type"] == "stream_stopped" and events[-1]["reason"] == "normal"
    switching = [e for e in events if e["type"] == "agent_switching"]
    assert [(e["switching"], e["from_agent"], e["to_agent"]) for e in switching] == [
        (True, "root", "helper"),
        (False, "helper", "root"),
    ]
    start, end = (events.index(e) for e in switching)
    inside = events[start + 1 : end]
    shell_result = next(e for e in inside if e["type"] == "tool_call_response")
    assert shell_result["response"].strip() == "from-helper"
    assert {e["agent_name"] for e in inside if "agent_name" in e} == {"helper"}
    assert "stream_stopped" not in [e["type"] for e in inside]  # the turn goes on
    [transfer] = [
        e for e in events if e["type"] == "tool_call_response" and e["tool_call"]["id"] == "call_t"
    ]
    assert transfer["agent_name"] == "root"
    assert transfer["response"] == "The shell said from-helper"

    # The sub-agent was told its task; the root read its answer as the tool result.
    helper_first = openai_server.requests[1].messages
    assert helper_first[0] == {"role": "system", "content": "Help."}
    assert "<task>\nSay hello from the shell\n</task>" in helper_first[1]["content"]
    assert "shell" in openai_server.requests[1].tool_names
    assert "transfer_task" in openai_server.requests[0].tool_names
    root_last = openai_server.requests[3].messages
    assert root_last[-1]["role"] == "tool"
    assert root_last[-1]["content"] == "The shell said from-helper"
    assert all("from-helper" not in str(m) for m in root_last[:-1])  # not the sub-session

    # The item tree holds the sub-session between the call and its result.
    items = (await api("GET", f"{path}/recovery")).json()["messages"]
    kinds = [
        "sub_session" if "sub_session" in item else item["message"]["message"]["role"]
        for item in items
    ]
    assert kinds == ["user", "assistant", "sub_session", "tool", "assistant"]
    sub = items[2]["sub_session"]
    sub_roles = [item["message"]["message"]["role"] for item in sub["messages"]]
    assert sub_roles == ["system", "user", "assistant", "tool", "assistant"]
    assert {item["message"]["agentName"] for item in sub["messages"]} == {"helper"}

    # docker-agent's flat view inlines the sub-agent's messages where they ran.
    flat = (await api("GET", path)).json()["messages"]
    assert [(m["agentName"], m["message"]["role"]) for m in flat] == [
        ("", "user"),
        ("root", "assistant"),
        ("helper", "user"),
        ("helper", "assistant"),
        ("helper", "tool"),
        ("helper", "assistant"),
        ("root", "tool"),
        ("root", "assistant"),
    ]
    assert flat[-1]["message"]["content"] == "Done: the helper reports from-helper"


async def test_a_transfer_to_an_agent_not_in_the_list_is_refused(
    api: Fetch, tmp_path: Path, openai_server: OpenAIServer
) -> None:
    openai_server.script(
        Reply(tool_calls=[ScriptedToolCall("transfer_task", {**TASK, "agent": "root"})]),
        Reply(text="I will do it myself"),
    )
    agent_id = write_team(tmp_path, openai_server.url)
    session_id = await new_session(api, title="t")
    reply = await api("POST", f"api/sessions/{session_id}/agent/{agent_id}", user("go"))
    assert reply.code == 200
    told = openai_server.requests[1].messages[-1]
    assert told["role"] == "tool"
    assert "'root' is not in the sub-agents list of 'root' (helper)" in told["content"]
    items = (await api("GET", f"api/sessions/{session_id}/recovery")).json()["messages"]
    assert not any("sub_session" in item for item in items)


NESTED = """
agents:
  root:
    model: m
    instruction: Lead the team.
    sub_agents: [helper]
  helper:
    model: m
    instruction: Help.
    sub_agents: [worker]
  worker:
    model: m
    instruction: Work.
    toolsets: [{{type: shell}}]
models:
  m: {{provider: openai, model: gpt-test, base_url: "{url}"}}
"""


async def stored_items(tmp_path: Path, session_id: str) -> list[Item]:
    """The session's items as committed in the server's SQLite file (not its memory)."""
    store = SQLiteStore(str(tmp_path / "sessions.db"))
    await store.open()
    try:
        return (await store.get_session(session_id)).messages
    finally:
        await store.close()


async def test_nested_delegation_is_stored_as_it_goes_and_steered(
    api: Fetch, stream: Any, tmp_path: Path, openai_server: OpenAIServer
) -> None:
    to_helper = {"agent": "helper", "task": "Get the worker to echo"}
    to_worker = {"agent": "worker", "task": "Echo from the shell"}
    openai_server.script(
        Reply(tool_calls=[ScriptedToolCall("transfer_task", to_helper, id="call_h")]),
        Reply(tool_calls=[ScriptedToolCall("transfer_task", to_worker, id="call_w")]),
        Reply(tool_calls=[ScriptedToolCall("shell", {"cmd": "echo from-worker"}, id="call_s")]),
        Reply(text="worker done"),
        Reply(text="helper done"),
        Reply(text="all done"),
    )
    (tmp_path / "agents").mkdir(exist_ok=True)
    (tmp_path / "agents" / "nested.yaml").write_text(NESTED.format(url=openai_server.url))
    session_id = await new_session(api, title="nested")
    path = f"api/sessions/{session_id}"
    live = stream("POST", f"{path}/agent/nested", user("go"))

    confirmation = await live.until("tool_call_confirmation")
    assert confirmation["agent_name"] == "worker"
    # Two levels down, mid-task: what the worker did so far is already in the store.
    [helper_item] = [item for item in await stored_items(tmp_path, session_id) if item.sub_session]
    assert helper_item.sub_session is not None
    [worker_item] = [item for item in helper_item.sub_session.messages if item.sub_session]
    assert worker_item.sub_session is not None
    [worker_call] = [
        m.message for m in worker_item.sub_session.chat_messages() if m.message.tool_calls
    ]
    assert worker_call.tool_calls is not None
    assert worker_call.tool_calls[0].function.name == "shell"

    # A steer reaches the agent that is working: the worker reads it at its next model call.
    steered = await api("POST", f"{path}/steer", user("and say bye"))
    assert steered.code == 202, steered.body
    reply = await api("POST", f"{path}/resume", {"confirmation": "approve"})
    assert reply.code == 200, reply.body
    await live.reply()

    events = [event for _seq, event in live.events]
    assert events[-1]["type"] == "stream_stopped" and events[-1]["reason"] == "normal"
    switching = [
        (e["switching"], e["from_agent"], e["to_agent"])
        for e in events
        if e["type"] == "agent_switching"
    ]
    assert switching == [
        (True, "root", "helper"),
        (True, "helper", "worker"),
        (False, "worker", "helper"),
        (False, "helper", "root"),
    ]
    worker_second = openai_server.requests[3].messages
    assert worker_second[-2]["role"] == "tool" and "from-worker" in worker_second[-2]["content"]
    assert worker_second[-1] == {"role": "user", "content": "and say bye"}
    assert openai_server.requests[4].messages[-1]["content"] == "worker done"
    assert openai_server.requests[5].messages[-1]["content"] == "helper done"

    # The tree, as stored: root -> helper's sub-session -> worker's sub-session.
    [helper_item] = [item for item in await stored_items(tmp_path, session_id) if item.sub_session]
    assert helper_item.sub_session is not None
    helper_kinds = [item.kind for item in helper_item.sub_session.messages]
    assert helper_kinds == ["message", "message", "message", "sub_session", "message", "message"]
    [worker_item] = [item for item in helper_item.sub_session.messages if item.sub_session]
    assert worker_item.sub_session is not None
    worker_roles = [m.message.role for m in worker_item.sub_session.chat_messages()]
    assert worker_roles == ["system", "user", "assistant", "tool", "user", "assistant"]
