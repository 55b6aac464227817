"""Every route of SPEC 2 through a real jupyter-server (pytest-jupyter): success and errors."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from .conftest import MAX_BODY, Fetch, frames, new_session, user

MISSING = "00000000-0000-0000-0000-000000000000"
MESSAGE = {"message": {"agentName": "", "message": {"role": "user", "content": "hello"}}}

# A docker-agent client sends its whole zero-valued session object as the create template.
DOCKER_AGENT_TEMPLATE = {
    "id": "",
    "title": "",
    "messages": None,
    "created_at": "0001-01-01T00:00:00Z",
    "tools_approved": False,
    "hide_tool_results": False,
    "thinking": False,
    "max_iterations": 0,
    "starred": False,
    "input_tokens": 0,
    "output_tokens": 0,
    "cost": 0,
    "SendUserMessage": True,
}


def event_types(body: bytes) -> list[str]:
    return [event["type"] for _seq, event in frames(body)]


async def run_turn(api: Fetch, session_id: str, text: str = "what is 17*23") -> list[str]:
    reply = await api("POST", f"api/sessions/{session_id}/agent/default", user(text))
    assert reply.code == 200, reply.body
    return event_types(reply.body)


# -- service routes -------------------------------------------------------------------------


async def test_health_ping_and_ready(api: Fetch) -> None:
    assert (await api("GET", "health")).json() == {"status": "ok"}
    assert (await api("GET", "api/ping")).json() == {"status": "ok"}
    ready = await api("GET", "ready")
    assert ready.code == 200
    assert ready.json() == {
        "ready": True,
        "active_sessions": 0,
        "store_connected": True,
        "latest_error": "",
    }


async def test_api_ready_waits_for_a_session(api: Fetch) -> None:
    empty = await api("GET", "api/ready", params={"timeout": "50ms"})
    assert (empty.code, empty.error_code) == (503, "not_ready")
    await new_session(api)
    assert (await api("GET", "api/ready", params={"timeout": "1s"})).json() == {"status": "ready"}
    bad = await api("GET", "api/ready", params={"timeout": "soon"})
    assert (bad.code, bad.error_code) == (400, "invalid_request")
    assert "timeout" in bad.json()["message"]


# -- agents ---------------------------------------------------------------------------------


async def test_agents_list_config_and_tool_count(api: Fetch, tmp_path: Path) -> None:
    agents = tmp_path / "agents"
    agents.mkdir()
    (agents / "broken.yaml").write_text("agents: [unclosed\n")
    (agents / "wide.yaml").write_text(
        "agents:\n  root:\n    model: openai/gpt-4o\n    add_date: true\n"
        "    toolsets: [{type: filesystem, allow_list: [/data]}]\n"
    )
    listing = await api("GET", "api/agents")
    assert listing.code == 200
    # broken: listed, with its error; default and jupyter are bundled
    broken_row, default_row, _jupyter_row, wide_row = listing.json()
    assert set(default_row) == {"name", "description", "multi", "commands"}
    assert wide_row["warnings"] == [  # what nbsession ignores is named, never dropped silently
        "wide.yaml: agents.root.add_date: not supported by nbsession, ignored",
        "wide.yaml: agents.root.toolsets[0].allow_list: option not supported by nbsession's "
        "filesystem toolset, ignored",
    ]
    assert broken_row["name"] == "broken"
    assert broken_row["error"].startswith("broken.yaml: invalid YAML at line ")

    config = await api("GET", "api/agents/default")
    assert config.code == 200 and "agents" in config.json()
    count = await api("GET", "api/agents/default/root/tools/count")
    assert count.code == 200 and count.json()["available_tools"] > 0

    unknown = await api("GET", "api/agents/nope")
    assert (unknown.code, unknown.error_code) == (404, "unknown_agent")
    broken = await api("GET", "api/agents/broken")
    assert (broken.code, broken.error_code) == (422, "agent_invalid")
    assert broken.json()["message"] == broken_row["error"]
    # Named as in agents_dir, never by a server path.
    assert broken.json()["message"].startswith("broken.yaml: invalid YAML at line ")
    assert str(tmp_path) not in broken.json()["message"]
    no_tools = await api("GET", "api/agents/nope/root/tools/count")
    assert (no_tools.code, no_tools.error_code) == (404, "unknown_agent")
    broken_tools = await api("GET", "api/agents/broken/root/tools/count")
    assert (broken_tools.code, broken_tools.error_code) == (422, "agent_invalid")


async def test_running_a_broken_agent_is_a_422_and_appends_nothing(
    api: Fetch, tmp_path: Path
) -> None:
    agents = tmp_path / "agents"
    agents.mkdir()
    (agents / "broken.yaml").write_text("agents: {root: {description: no model}}\n")
    session_id = await new_session(api)
    run = await api("POST", f"api/sessions/{session_id}/agent/broken", user("hello"))
    assert (run.code, run.error_code) == (422, "agent_invalid")
    assert run.json()["message"].startswith("broken.yaml: agents.root.model: ")
    assert (await api("GET", f"api/sessions/{session_id}")).json()["messages"] == []


async def test_a_broken_edit_keeps_serving_the_last_good_version(
    api: Fetch, tmp_path: Path
) -> None:
    agents = tmp_path / "agents"
    agents.mkdir()
    source = agents / "team.yaml"
    source.write_text("agents: {root: {model: demo/offline, description: good}}\n")
    session_id = await new_session(api)
    assert (await api("GET", "api/agents/team")).code == 200

    source.write_text("agents: {root: {description: broken edit, no model}}\n")
    stamp = source.stat().st_mtime_ns + 1_000_000_000  # a change even within one fs tick
    os.utime(source, ns=(stamp, stamp))
    (row,) = [a for a in (await api("GET", "api/agents")).json() if a["name"] == "team"]
    assert row["description"] == "good"
    assert row["error"].startswith("team.yaml: agents.root.model: ")
    run = await api("POST", f"api/sessions/{session_id}/agent/team", user("hello"))
    assert run.code == 200
    assert frames(run.body)[-1][1]["type"] == "stream_stopped"


# -- sessions -------------------------------------------------------------------------------


async def test_create_accepts_a_docker_agent_template(api: Fetch) -> None:
    created = await api("POST", "api/sessions", {**DOCKER_AGENT_TEMPLATE, "title": "Mine"})
    assert created.code == 200
    session = created.json()
    assert session["id"] and session["title"] == "Mine"
    assert session["created_at"] != DOCKER_AGENT_TEMPLATE["created_at"]
    assert session["messages"] == []
    assert (await api("POST", "api/sessions")).code == 200  # an empty body is an empty template


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"[1, 2]", "body"),
        (b"{not json", "body"),
        (b'{"working_dir": "../up"}', "working_dir"),
        (b'{"working_dir": 3}', "working_dir"),
    ],
)
async def test_create_refuses_bad_templates(api: Fetch, raw: bytes, field: str) -> None:
    reply = await api("POST", "api/sessions", raw=raw)
    assert (reply.code, reply.error_code) == (400, "invalid_request")
    assert field in reply.json()["message"]
    assert (await api("GET", "api/sessions")).json() == []  # nothing was created


async def test_list_get_and_delete(api: Fetch) -> None:
    first = await new_session(api, title="first")
    second = await new_session(api, title="second")
    listing = (await api("GET", "api/sessions")).json()
    assert [s["id"] for s in listing] == [second, first]
    assert set(listing[0]) >= {"id", "title", "created_at", "num_messages", "input_tokens"}

    got = await api("GET", f"api/sessions/{first}")
    assert got.code == 200 and got.json()["title"] == "first"
    deleted = await api("DELETE", f"api/sessions/{first}", params={"wait": "true"})
    assert deleted.json() == {"message": "session deleted"}
    for method in ("GET", "DELETE"):
        gone = await api(method, f"api/sessions/{first}")
        assert (gone.code, gone.error_code) == (404, "unknown_session")
    bad = await api("DELETE", f"api/sessions/{second}", params={"wait": "maybe"})
    assert (bad.code, bad.error_code) == (400, "invalid_request")
    # A failed request changes nothing.
    assert (await api("GET", f"api/sessions/{second}")).code == 200


async def test_delete_of_a_running_turn(api: Fetch, stream: Any) -> None:
    session_id = await new_session(api)
    live = stream("POST", f"api/sessions/{session_id}/agent/default", user("list the files"))
    await live.until("tool_call_confirmation")
    deleted = await api(
        "DELETE", f"api/sessions/{session_id}", params={"wait": "true", "timeout": "5s"}
    )
    assert deleted.code == 200
    await live.until("stream_stopped")


async def test_status_and_snapshot(api: Fetch) -> None:
    session_id = await new_session(api)
    status = await api("GET", f"api/sessions/{session_id}/status")
    assert status.json()["streaming"] is False and status.json()["num_messages"] == 0
    waited = await api("GET", f"api/sessions/{session_id}/status", params={"wait": "50ms"})
    assert (waited.code, waited.error_code) == (503, "not_ready")

    await run_turn(api, session_id)
    status = await api("GET", f"api/sessions/{session_id}/status", params={"wait": "1s"})
    assert status.code == 200 and status.json()["agent"] == "root"
    snapshot = (await api("GET", f"api/sessions/{session_id}/snapshot")).json()
    assert snapshot["last_event_seq"] > 0 and snapshot["messages"]

    for route in ("status", "snapshot"):
        missing = await api("GET", f"api/sessions/{MISSING}/{route}")
        assert (missing.code, missing.error_code) == (404, "unknown_session")


# -- turns ----------------------------------------------------------------------------------


async def test_run_streams_a_whole_turn(api: Fetch) -> None:
    session_id = await new_session(api)
    path = f"api/sessions/{session_id}/agent/default/root"
    reply = await api("POST", path, user("what is 17*23"))
    assert reply.headers["Content-Type"] == "text/event-stream"
    assert reply.headers["Cache-Control"] == "no-cache"
    events = frames(reply.body)
    assert [seq for seq, _ in events] == list(range(1, len(events) + 1))
    types = [event["type"] for _, event in events]
    opening = ["agent_info", "team_info", "toolset_info", "user_message", "stream_started"]
    assert types[:5] == opening and types[-1] == "stream_stopped"
    assert "tool_call_response" in types


async def test_run_accepts_a_bare_array_of_messages(api: Fetch) -> None:
    session_id = await new_session(api)
    body = [{"role": "user", "content": "what is 2*3"}]
    reply = await api("POST", f"api/sessions/{session_id}/agent/default", body)
    assert reply.code == 200 and event_types(reply.body)[-1] == "stream_stopped"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"model": "x"}, "messages"),
        ({"messages": [{"role": "user", "content": "hi"}], "model": 3}, "model"),
        ({"messages": [{"role": "user", "content": "hi"}], "model": "nowhere/none"}, "model"),
    ],
)
async def test_run_refuses_bad_bodies_and_appends_nothing(
    api: Fetch, body: Any, field: str
) -> None:
    session_id = await new_session(api)
    reply = await api("POST", f"api/sessions/{session_id}/agent/default", body)
    assert (reply.code, reply.error_code) == (400, "invalid_request"), reply.body
    assert field in reply.json()["message"]
    snapshot = (await api("GET", f"api/sessions/{session_id}/snapshot")).json()
    assert snapshot["messages"] == []


async def test_run_errors(api: Fetch) -> None:
    session_id = await new_session(api)
    missing = await api("POST", f"api/sessions/{MISSING}/agent/default", user("hi"))
    assert (missing.code, missing.error_code) == (404, "unknown_session")
    agent = await api("POST", f"api/sessions/{session_id}/agent/nope", user("hi"))
    assert (agent.code, agent.error_code) == (404, "unknown_agent")
    detach = await api(
        "POST", f"api/sessions/{session_id}/agent/default", user("hi"), params={"detach": "x"}
    )
    assert (detach.code, detach.error_code) == (400, "invalid_request")


async def test_turn_with_approval_busy_steer_and_queue(api: Fetch, stream: Any) -> None:
    session_id = await new_session(api)
    path = f"api/sessions/{session_id}"
    live = stream("POST", f"{path}/agent/default", user("list the files"))
    await live.until("tool_call_confirmation")

    busy = await api("POST", f"{path}/agent/default", user("again"))
    assert (busy.code, busy.error_code) == (409, "session_busy")
    added = await api("POST", f"{path}/messages", MESSAGE)
    assert (added.code, added.error_code) == (409, "conflict")

    assert (await api("POST", f"{path}/steer", user("one"))).json() == {"status": "queued"}
    assert (await api("POST", f"{path}/steer", user("two"))).code == 202
    full = await api("POST", f"{path}/steer", user("three"))
    assert (full.code, full.error_code) == (429, "queue_full")
    assert full.headers["Retry-After"] == "1"
    queue = (await api("GET", f"{path}/queue")).json()
    assert queue["steer"] == {"depth": 2, "capacity": 2}

    unknown = await api("POST", f"{path}/resume", {"confirmation": "maybe"})
    assert (unknown.code, unknown.error_code) == (400, "invalid_request")
    approved = await api("POST", f"{path}/resume", {"confirmation": "approve"})
    assert approved.json() == {"message": "session resumed"}
    await live.until("stream_stopped")
    assert (await live.reply()).code == 200

    again = await api("POST", f"{path}/resume", {"confirmation": "approve"})
    assert (again.code, again.error_code) == (409, "nothing_pending")


async def test_cancel(api: Fetch, stream: Any) -> None:
    session_id = await new_session(api)
    idle = await api("POST", f"api/sessions/{session_id}/cancel")
    assert (idle.code, idle.error_code) == (404, "session_not_running")
    live = stream("POST", f"api/sessions/{session_id}/agent/default", user("list the files"))
    await live.until("tool_call_confirmation")
    cancelled = await api("POST", f"api/sessions/{session_id}/cancel")
    assert cancelled.code == 200
    await live.until("stream_stopped")


async def test_resume_elicitation_steer_models_need_a_runtime(api: Fetch) -> None:
    session_id = await new_session(api)
    path = f"api/sessions/{session_id}"
    cases: list[tuple[str, str, Any]] = [
        ("POST", "resume", {"confirmation": "approve"}),
        ("POST", "elicitation", {"action": "accept"}),
        ("POST", "steer", user("hi")),
        ("GET", "models", None),
    ]
    for method, route, body in cases:
        reply = await api(method, f"{path}/{route}", body)
        assert (reply.code, reply.error_code) == (404, "session_not_running"), route
    # The queue exists before a runtime does (idle follow-ups wait in it).
    idle_queue = {"steer": {"depth": 0, "capacity": 2}, "followup": {"depth": 0, "capacity": 2}}
    assert (await api("GET", f"{path}/queue")).json() == idle_queue

    await run_turn(api, session_id)
    pending = await api("POST", f"{path}/elicitation", {"action": "decline"})
    assert (pending.code, pending.error_code) == (409, "nothing_pending")
    bad = await api("POST", f"{path}/elicitation", {"action": "shrug"})
    assert (bad.code, bad.error_code) == (400, "invalid_request")
    assert "action" in bad.json()["message"]
    idle = await api("POST", f"{path}/steer", user("late"))
    assert (idle.code, idle.error_code) == (404, "session_not_running")
    models = (await api("GET", f"{path}/models")).json()
    assert models["agent"] == "root" and models["models"]
    assert (await api("GET", f"{path}/queue")).json()["followup"]["capacity"] == 2


async def test_followup(api: Fetch) -> None:
    session_id = await new_session(api)
    path = f"api/sessions/{session_id}/followup"
    key = {"Idempotency-Key": "k1"}
    first = await api("POST", path, user("later"), headers=key)
    assert first.code == 202 and first.json() == {"status": "queued_idle", "duplicate": False}
    again = await api("POST", path, user("later"), headers=key)
    assert again.json() == {"status": "duplicate", "duplicate": True}
    too_many = {"messages": [{"role": "user", "content": str(i)} for i in range(3)]}
    full = await api("POST", path, too_many)
    assert (full.code, full.error_code) == (429, "queue_full")
    empty = await api("POST", path, {"messages": []})
    assert (empty.code, empty.error_code) == (400, "invalid_request")
    missing = await api("POST", f"api/sessions/{MISSING}/followup", user("x"))
    assert (missing.code, missing.error_code) == (404, "unknown_session")


async def test_events_replay_resume_and_end(api: Fetch, stream: Any) -> None:
    session_id = await new_session(api)
    middle = len(await run_turn(api, session_id)) // 2  # the first turn's seqs are 1..n
    path = f"api/sessions/{session_id}/events"
    full = stream("GET", path)
    resumed = stream("GET", path, headers={"Last-Event-ID": str(middle)})
    await full.until("stream_stopped")
    await resumed.until("stream_stopped")
    assert (await api("DELETE", f"api/sessions/{session_id}")).code == 200
    exited = await full.until("session_exited")
    assert exited["reason"] == "session deleted"
    await resumed.until("session_exited")
    assert (await full.reply()).code == 200

    seqs = [seq for seq, _ in full.events]
    assert seqs == list(range(1, len(seqs) + 1))
    assert [seq for seq, _ in resumed.events] == seqs[middle:]


async def test_events_errors(api: Fetch) -> None:
    session_id = await new_session(api)
    for since in ("-1", "\u00b2", "1.5"):  # "²" passes str.isdigit but is no integer
        bad = await api("GET", f"api/sessions/{session_id}/events", params={"since": since})
        assert (bad.code, bad.error_code) == (400, "invalid_request"), since
    header = await api("GET", f"api/sessions/{session_id}/events", headers={"Last-Event-ID": "abc"})
    assert (header.code, header.error_code) == (400, "invalid_request")
    assert "Last-Event-ID" in header.json()["message"]
    missing = await api("GET", f"api/sessions/{MISSING}/events")
    assert (missing.code, missing.error_code) == (404, "unknown_session")


# -- session fields -------------------------------------------------------------------------


async def test_patch_routes(api: Fetch) -> None:
    session_id = await new_session(api)
    path = f"api/sessions/{session_id}"
    title = await api("PATCH", f"{path}/title", {"title": " Renamed "})
    assert title.json() == {"id": session_id, "title": "Renamed"}
    permissions = {"permissions": {"allow": ["think"], "deny": ["shell"]}}
    assert (await api("PATCH", f"{path}/permissions", permissions)).code == 200
    tokens = {"input_tokens": 5, "output_tokens": 7, "cost": 0.5}
    assert (await api("PATCH", f"{path}/tokens", tokens)).json() == {"status": "updated"}
    assert (await api("PATCH", f"{path}/starred", {"starred": True})).code == 200
    assert (await api("POST", f"{path}/tools/toggle")).json() == {"tools_approved": True}

    session = (await api("GET", path)).json()
    assert session["title"] == "Renamed" and session["starred"] is True
    assert session["permissions"]["deny"] == ["shell"]
    assert (session["input_tokens"], session["output_tokens"]) == (5, 7)
    assert session["tools_approved"] is True


async def test_tokens_without_cost_keep_the_cost(api: Fetch) -> None:
    session_id = await new_session(api)
    path = f"api/sessions/{session_id}"
    tokens = {"input_tokens": 10, "output_tokens": 20, "cost": 0.5}
    assert (await api("PATCH", f"{path}/tokens", tokens)).code == 200
    without_cost = {"input_tokens": 11, "output_tokens": 21}
    assert (await api("PATCH", f"{path}/tokens", without_cost)).code == 200
    session = (await api("GET", path)).json()
    assert (session["input_tokens"], session["output_tokens"], session["cost"]) == (11, 21, 0.5)


NON_FINITE = [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999"]


@pytest.mark.parametrize("number", NON_FINITE)
async def test_non_finite_numbers_are_refused_and_change_nothing(api: Fetch, number: bytes) -> None:
    session_id = await new_session(api)
    path = f"api/sessions/{session_id}"
    await api("PATCH", f"{path}/tokens", {"input_tokens": 1, "output_tokens": 2, "cost": 0.5})
    before = await api("GET", path)
    recovery = (await api("GET", f"{path}/recovery")).body

    requests = [
        ("PATCH", f"{path}/tokens", b'{"input_tokens":9,"output_tokens":9,"cost":%s}' % number),
        (
            "POST",
            f"{path}/messages",
            b'{"message":{"message":{"role":"assistant","content":"x","cost":%s}}}' % number,
        ),
        ("POST", "api/sessions/import", recovery.replace(b'"cost": 0.5', b'"cost": ' + number)),
        ("POST", "api/sessions", b'{"title":"t","cost":%s}' % number),
    ]
    for method, route, raw in requests:
        assert number in raw, route
        reply = await api(method, route, raw=raw)
        assert (reply.code, reply.error_code) == (400, "invalid_request"), route
        assert "/" not in reply.json()["message"], reply.json()
    assert (await api("GET", path)).body == before.body
    assert len((await api("GET", "api/sessions")).json()) == 1


def test_request_models_refuse_non_finite_numbers() -> None:
    from pydantic import ValidationError

    from nbsession.server.schemas import TokensRequest

    for value in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(ValidationError):
            TokensRequest.model_validate({"input_tokens": 1, "output_tokens": 1, "cost": value})
    assert TokensRequest.model_validate({"input_tokens": 1, "output_tokens": 1}).cost is None


@pytest.mark.parametrize(
    ("route", "body", "field"),
    [
        ("title", {"title": 3}, "title"),
        ("title", {}, "title"),
        ("permissions", {"permissions": {"allow": "shell"}}, "permissions.allow"),
        ("tokens", {"input_tokens": "5", "output_tokens": 1}, "input_tokens"),
        ("tokens", {"input_tokens": -1, "output_tokens": 1}, "input_tokens"),
        ("starred", {"starred": "yes"}, "starred"),
        ("starred", [], "body"),
    ],
)
async def test_patch_routes_refuse_wrong_types(
    api: Fetch, route: str, body: Any, field: str
) -> None:
    session_id = await new_session(api)
    reply = await api("PATCH", f"api/sessions/{session_id}/{route}", body)
    assert (reply.code, reply.error_code) == (400, "invalid_request")
    assert field in reply.json()["message"]


@pytest.mark.parametrize(
    ("method", "route", "body"),
    [
        ("PATCH", "title", {"title": "x"}),
        ("PATCH", "permissions", {"permissions": None}),
        ("PATCH", "tokens", {"input_tokens": 1, "output_tokens": 1}),
        ("PATCH", "starred", {"starred": True}),
        ("POST", "tools/toggle", None),
        ("POST", "messages", MESSAGE),
        ("PATCH", "messages/m1", MESSAGE),
        ("POST", "summaries", {"summary": "s"}),
        ("POST", "fork", {"user_message_index": 0}),
        ("GET", "recovery", None),
        ("GET", "notebook", None),
    ],
)
async def test_session_routes_answer_404_for_unknown_sessions(
    api: Fetch, method: str, route: str, body: Any
) -> None:
    reply = await api(method, f"api/sessions/{MISSING}/{route}", body)
    assert (reply.code, reply.error_code) == (404, "unknown_session"), reply.body


# -- messages, summaries, fork --------------------------------------------------------------


async def test_messages_and_summaries(api: Fetch) -> None:
    session_id = await new_session(api)
    path = f"api/sessions/{session_id}"
    added = await api("POST", f"{path}/messages", MESSAGE)
    assert added.code == 201 and added.json()["status"] == "added"
    msg_id = added.json()["id"]
    edited = {"message": {"message": {"role": "user", "content": "edited"}}}
    assert (await api("PATCH", f"{path}/messages/{msg_id}", edited)).code == 200
    missing = await api("PATCH", f"{path}/messages/nope", edited)
    assert (missing.code, missing.error_code) == (404, "not_found")
    no_message = await api("POST", f"{path}/messages", {})
    assert (no_message.code, no_message.error_code) == (400, "invalid_request")
    bad_role = {"message": {"message": {"role": "robot", "content": "x"}}}
    assert (await api("POST", f"{path}/messages", bad_role)).code == 400

    summary = await api("POST", f"{path}/summaries", {"summary": "so far", "first_kept_entry": 0})
    assert summary.code == 201
    empty = await api("POST", f"{path}/summaries", {"summary": " "})
    assert (empty.code, empty.error_code) == (400, "invalid_request")

    session = (await api("GET", path)).json()  # docker-agent's flat list of messages
    assert [m["message"]["content"] for m in session["messages"]] == ["edited"]
    items = (await api("GET", f"{path}/recovery")).json()["messages"]  # the item tree
    assert items[0]["message"]["message"]["content"] == "edited"
    assert items[1]["summary"] == "so far"


async def test_fork(api: Fetch) -> None:
    session_id = await new_session(api)
    await run_turn(api, session_id)
    await run_turn(api, session_id, "what is 2*3")
    fork = await api("POST", f"api/sessions/{session_id}/fork", {"user_message_index": 1})
    assert fork.code == 200
    forked = fork.json()
    assert forked["id"] != session_id and forked["title"].endswith("(fork 1)")
    users = [i for i in forked["messages"] if i["message"]["message"]["role"] == "user"]
    assert len(users) == 1
    out_of_range = await api("POST", f"api/sessions/{session_id}/fork", {"user_message_index": 9})
    assert (out_of_range.code, out_of_range.error_code) == (400, "invalid_request")
    wrong_type = await api("POST", f"api/sessions/{session_id}/fork", {"user_message_index": "1"})
    assert (wrong_type.code, wrong_type.error_code) == (400, "invalid_request")


# -- export, import, batch ------------------------------------------------------------------


async def test_recovery_export_and_import(api: Fetch) -> None:
    session_id = await new_session(api, title="exported")
    await run_turn(api, session_id)
    recovery = await api("GET", f"api/sessions/{session_id}/recovery")
    assert recovery.code == 200
    await api("DELETE", f"api/sessions/{session_id}")
    imported = await api("POST", "api/sessions/import", recovery.json())
    assert imported.code == 201
    assert imported.json()["title"] == "exported"
    assert imported.json()["messages"] == recovery.json()["messages"]

    for raw in (b"[]", b"{}", b"nope", b""):
        refused = await api("POST", "api/sessions/import", raw=raw)
        assert (refused.code, refused.error_code) == (400, "invalid_request"), raw
    notebook = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    assert (await api("POST", "api/sessions/import", notebook)).code == 400


async def test_notebook_export_and_import(api: Fetch) -> None:
    session_id = await new_session(api, title="nb")
    await run_turn(api, session_id)
    reply = await api("GET", f"api/sessions/{session_id}/notebook")
    assert reply.code == 200, reply.body
    assert reply.headers["Content-Type"] == "application/x-ipynb+json"
    assert reply.headers["Content-Disposition"] == f'attachment; filename="{session_id}.ipynb"'
    assert reply.json()["nbformat"] == 4
    await api("DELETE", f"api/sessions/{session_id}")
    cut = await api("POST", "api/sessions/import", raw=reply.body[: len(reply.body) // 2])
    assert (cut.code, cut.error_code) == (400, "invalid_request")
    assert "The body is truncated: its JSON stops after" in cut.json()["message"]
    assert (await api("GET", "api/sessions")).json() == []
    imported = await api("POST", "api/sessions/import", reply.json())
    assert imported.code == 201 and imported.json()["title"] == "nb"


async def test_batch_delete_and_export(api: Fetch) -> None:
    kept, gone = await new_session(api), await new_session(api)
    export = await api("POST", "api/sessions/batch/export", {"session_ids": [kept]})
    assert export.code == 200
    assert export.json()["session_count"] == 1 and export.json()["export_format"] == "json"
    deleted = await api("POST", "api/sessions/batch/delete", {"session_ids": [gone, MISSING]})
    assert deleted.json() == {"deleted_count": 1, "failed_count": 1, "failed_ids": [MISSING]}
    for route, body in [("delete", {"session_ids": []}), ("export", {"session_ids": "x"})]:
        refused = await api("POST", f"api/sessions/batch/{route}", body)
        assert (refused.code, refused.error_code) == (400, "invalid_request")
    missing = await api("POST", "api/sessions/batch/export", {"session_ids": [MISSING]})
    assert (missing.code, missing.error_code) == (404, "unknown_session")


# -- framework-level errors -----------------------------------------------------------------


async def test_unknown_paths_and_methods_are_json(api: Fetch) -> None:
    unknown = await api("GET", "api/nothing/here")
    assert (unknown.code, unknown.error_code) == (404, "not_found")
    method = await api("PUT", "api/sessions", {})
    assert (method.code, method.error_code) == (405, "method_not_allowed")


async def test_oversized_bodies_get_413(api: Fetch) -> None:
    big = {"title": "x" * MAX_BODY}
    reply = await api("POST", "api/sessions", big)
    assert (reply.code, reply.error_code) == (413, "request_too_large")
    assert (await api("GET", "api/sessions")).json() == []


async def test_internal_errors_hide_details_and_log_them(
    api: Fetch, nbsession_app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    manager = await nbsession_app.started_manager()

    async def broken(limit: int | None, before: str | None = None) -> None:
        raise RuntimeError("secret detail")

    manager.get_session_page = broken
    with caplog.at_level(logging.ERROR):
        reply = await api("GET", "api/sessions", params={"limit": "5"})
    assert reply.json() == {
        "code": "internal",
        "message": "The server failed to handle this request.",
    }
    assert "secret detail" in caplog.text and "Traceback" in caplog.text


async def test_a_non_finite_reply_is_an_internal_error(
    api: Fetch, nbsession_app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    session_id = await new_session(api)
    manager = await nbsession_app.started_manager()

    async def poisoned(session_id: str) -> dict[str, Any]:
        return {"cost": float("nan")}

    manager.get_session_snapshot = poisoned
    with caplog.at_level(logging.ERROR):
        reply = await api("GET", f"api/sessions/{session_id}/snapshot")
    assert (reply.code, reply.error_code) == (500, "internal")
    assert "NaN" not in reply.body.decode()
    assert "Out of range float values are not JSON compliant" in caplog.text


async def test_agent_routes_work_while_the_store_is_down(api: Fetch, nbsession_app: Any) -> None:
    async def unreachable() -> None:
        raise OSError("the disk is gone")

    nbsession_app.manager.start = unreachable
    assert (await api("GET", "api/sessions")).code == 500
    listing = await api("GET", "api/agents")
    assert listing.code == 200 and [a["name"] for a in listing.json()] == ["default", "jupyter"]
    assert (await api("GET", "api/agents/default")).code == 200
    assert (await api("GET", "api/agents/default/root/tools/count")).code == 200


async def test_not_ready_replies_are_logged_as_warnings(
    api: Fetch, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        reply = await api("GET", "api/ready", params={"timeout": "10ms"})
    assert reply.code == 503
    access = [r for r in caplog.records if r.getMessage().startswith("503 GET")]
    assert [r.levelno for r in access] == [logging.WARNING]
    assert "/nbsession/api/ready" in access[0].getMessage()
    assert "timeout" not in access[0].getMessage()  # the path only, never the query
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    with caplog.at_level(logging.DEBUG):
        caplog.clear()
        assert (await api("PUT", "api/sessions", {})).code == 405
    assert any(r.getMessage().startswith("405 PUT") for r in caplog.records)  # jupyter's line


async def test_shutdown_ends_streams_with_session_exited(
    api: Fetch, stream: Any, nbsession_app: Any
) -> None:
    session_id = await new_session(api)
    run = stream("POST", f"api/sessions/{session_id}/agent/default", user("list the files"))
    events = stream("GET", f"api/sessions/{session_id}/events")
    await run.until("tool_call_confirmation")
    await events.until("tool_call_confirmation")
    await nbsession_app.stop_extension()
    exited = await events.until("session_exited")
    assert exited["reason"] == "server stopping"
    await run.until("stream_stopped")
    await asyncio.wait_for(events.task, 5)
