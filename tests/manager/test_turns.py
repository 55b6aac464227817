"""Turn semantics through ``SessionManager`` (SPEC 5): events, approvals, policy, queues,
cancel, model overrides, limits, titles, failures, elicitation and crash-left tool calls.

Each test runs a real manager on a SQLite file in ``tmp_path`` with the offline demo model,
reads turns from their ``TurnStream`` and checks the store through a second ``SQLiteStore``.
"""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import pytest

from nbsession.config import agents as agent_config
from nbsession.errors import (
    InvalidConfirmation,
    InvalidModelRef,
    InvalidRequest,
    NothingPending,
    QueueFull,
    SessionBusy,
    SessionNotRunning,
    StoreError,
)
from nbsession.tools import TOOLSET_FACTORIES

from .turn_helpers import (
    DEADLINE,
    DEFAULT_AGENT,
    LIST_FILES,
    MATH,
    OPENING,
    AskingToolset,
    CommitTracker,
    approver,
    choice_text,
    collapsed,
    decode,
    index_of,
    of_type,
    open_manager,
    open_reader,
    read_rest,
    read_until,
    roles,
    run_turn,
    start_held,
    tool_result,
    types,
    user,
    write_agent,
)


@pytest.fixture
def agents_dir(tmp_path: Path) -> Path:
    path = tmp_path / "agents"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
def asker(monkeypatch: pytest.MonkeyPatch, agents_dir: Path) -> str:
    """An agent whose only tool (named ``shell``, read-only) elicits; registered for one test."""
    monkeypatch.setitem(TOOLSET_FACTORIES, AskingToolset.type, AskingToolset)
    monkeypatch.setattr(
        agent_config,
        "SUPPORTED_TOOLSETS",
        agent_config.SUPPORTED_TOOLSETS | {AskingToolset.type},
    )
    return write_agent(agents_dir, "asker", toolsets=[AskingToolset.type])


# -- a full turn --------------------------------------------------------------------------


async def test_full_turn_event_order_and_commits(tmp_path: Path) -> None:
    async with open_manager(tmp_path) as mgr, open_reader(tmp_path) as reader:
        tracker = CommitTracker(mgr)
        session = await mgr.create_session({})
        sid = session.id
        stream = await mgr.run_session(sid, DEFAULT_AGENT, "", user(LIST_FILES))

        seen_in_store: list[str] = []

        async def check_store(event: dict) -> None:
            stored = (await reader.get_session(sid)).chat_messages()
            if event["type"] == "user_message":
                message = stored[event["session_position"]].message
                assert (message.role, message.content) == ("user", event["message"])
            else:
                call_id = event["tool_call"]["id"]
                [result] = [m for m in stored if m.message.tool_call_id == call_id]
                assert result.message.content == event["result"]["output"]
            seen_in_store.append(event["type"])

        events = []
        async for entry in stream:
            event = decode(entry)
            events.append(event)
            if event["type"] in ("user_message", "tool_call_response"):
                await check_store(event)
            elif event["type"] == "tool_call_confirmation":
                await mgr.resume_session(sid, "approve")
        assert seen_in_store == ["user_message", "tool_call_response"]

        seqs = [event["seq"] for event in events]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        assert len(of_type(events, "session_title")) == 1  # generated concurrently
        order = collapsed(t for t in types(events) if t != "session_title")
        assert order == [
            *OPENING,
            "user_message",
            "stream_started",
            "agent_choice_reasoning",
            "agent_choice",
            "partial_tool_call",
            "token_usage",
            "tool_call",
            "tool_call_confirmation",
            "authorization_event",
            "tool_call_output",  # the command's output as it came
            "tool_call_response",
            "agent_choice",
            "token_usage",
            "stream_stopped",
        ]
        assert events[-1]["reason"] == "normal"
        assert {e["session_id"] for e in events if "session_id" in e} == {sid}
        assert of_type(events, "authorization_event")[0]["confirmation"] == "approve"
        [call_event] = of_type(events, "tool_call")
        call_id = call_event["tool_call"]["id"]
        assert call_event["tool_call"]["function"]["name"] == "shell"
        assert call_event["tool_definition"]["name"] == "shell"

        stored = await reader.get_session(sid)
        assert roles(stored) == ["user", "assistant", "tool", "assistant"]
        first, second = stored.chat_messages()[1], stored.chat_messages()[3]
        assert [c.id for c in first.message.tool_calls or []] == [call_id]
        response_at = index_of(events, lambda e: e["type"] == "tool_call_response")
        assert first.message.content == choice_text(events[:response_at])
        assert second.message.content == choice_text(events[response_at:])
        assert "s.db" in tool_result(stored, call_id).message.content
        assert stored.input_tokens > 0 and stored.output_tokens > 0

        # Each message committed before the event that announces it.
        [user_event] = of_type(events, "user_message")
        assert tracker.seq_at_commit(lambda m: m.message.role == "user") < user_event["seq"]
        assert tracker.seq_at_commit(lambda m: bool(m.message.tool_calls)) < call_event["seq"]
        [response] = of_type(events, "tool_call_response")
        assert tracker.seq_at_commit(lambda m: m.message.tool_call_id == call_id) < response["seq"]


async def test_several_messages_are_committed_then_answered_in_one_turn(tmp_path: Path) -> None:
    async with open_manager(tmp_path) as mgr, open_reader(tmp_path) as reader:
        sid = (await mgr.create_session({"title": "t"})).id
        stream = await mgr.run_session(sid, DEFAULT_AGENT, "", user("first", "second"))
        events = await read_rest(stream)
        assert types(events)[:6] == [*OPENING, "user_message", "user_message", "stream_started"]
        assert [(e["message"], e["session_position"]) for e in events[3:5]] == [
            ("first", 0),
            ("second", 1),
        ]
        assert len(of_type(events, "stream_started")) == 1
        assert len(of_type(events, "stream_stopped")) == 1
        assert roles(await reader.get_session(sid)) == ["user", "user", "assistant"]


# -- approvals ----------------------------------------------------------------------------


async def test_approve_runs_the_call(tmp_path: Path) -> None:
    async with open_manager(tmp_path) as mgr:
        sid = (await mgr.create_session({})).id
        stream, _ = await start_held(mgr, sid, "run `echo approved-output`")
        await mgr.resume_session(sid, "approve")
        events = await read_rest(stream)
        [response] = of_type(events, "tool_call_response")
        assert response["result"] == {"output": "approved-output", "isError": False}
        assert (await mgr.get_session(sid)).tools_approved is False


async def test_approve_session_persists_and_skips_later_asks(tmp_path: Path) -> None:
    async with open_manager(tmp_path) as mgr, open_reader(tmp_path) as reader:
        sid = (await mgr.create_session({})).id
        stream, _ = await start_held(mgr, sid)
        await mgr.resume_session(sid, "approve-session")
        assert (await reader.get_session(sid)).tools_approved is True
        events = await read_rest(stream)
        assert of_type(events, "tool_call_response")[0]["result"]["isError"] is False

        again = await run_turn(mgr, sid, LIST_FILES, confirmation="reject")
        assert "tool_call_confirmation" not in types(again)
        assert of_type(again, "tool_call_response")[0]["result"]["isError"] is False


@pytest.mark.parametrize("tool_name", ["", "shell"])
async def test_approve_tool_allows_it_from_now_on(tmp_path: Path, tool_name: str) -> None:
    async with open_manager(tmp_path) as mgr, open_reader(tmp_path) as reader:
        sid = (await mgr.create_session({"permissions": {"deny": ["todo_*"]}})).id
        stream, _ = await start_held(mgr, sid)
        await mgr.resume_session(sid, "approve-tool", tool_name=tool_name)
        stored = await reader.get_session(sid)
        assert stored.permissions is not None
        assert stored.permissions.allow == ["shell"]
        assert stored.permissions.deny == ["todo_*"]  # the rest is kept
        assert stored.tools_approved is False
        await read_rest(stream)

        again = await run_turn(mgr, sid, LIST_FILES, confirmation="reject")
        assert "tool_call_confirmation" not in types(again)
        assert of_type(again, "tool_call_response")[0]["result"]["isError"] is False


async def test_reject_gives_the_model_the_reason_and_the_turn_goes_on(tmp_path: Path) -> None:
    async with open_manager(tmp_path) as mgr:
        sid = (await mgr.create_session({})).id
        marker = tmp_path / "ran"
        stream, held = await start_held(mgr, sid, f"run `touch {marker}`")
        call_id = held[-1]["tool_call"]["id"]
        await mgr.resume_session(sid, "reject", reason="not on a Friday")
        events = await read_rest(stream)
        [response] = of_type(events, "tool_call_response")
        assert response["result"]["isError"] is True
        assert "The user rejected the tool call" in response["result"]["output"]
        assert "not on a Friday" in response["result"]["output"]
        assert events[-1]["type"] == "stream_stopped" and events[-1]["reason"] == "normal"
        assert choice_text(events[events.index(response) :])  # the model answered after it
        assert not marker.exists()
        session = await mgr.get_session(sid)
        assert roles(session) == ["user", "assistant", "tool", "assistant"]
        stored = tool_result(session, call_id).message
        assert stored.is_error is True and "not on a Friday" in stored.content


async def test_unknown_confirmation_is_refused_and_the_call_stays_pending(tmp_path: Path) -> None:
    async with open_manager(tmp_path) as mgr:
        sid = (await mgr.create_session({})).id
        stream, _ = await start_held(mgr, sid)
        with pytest.raises(InvalidConfirmation) as info:
            await mgr.resume_session(sid, "approve-everything")
        assert info.value.code == "invalid_request"
        assert isinstance(info.value, InvalidRequest)
        assert (await mgr.get_session(sid)).tools_approved is False
        await mgr.resume_session(sid, "approve")
        events = await read_rest(stream)
        assert of_type(events, "authorization_event")[0]["confirmation"] == "approve"
        assert of_type(events, "tool_call_response")[0]["result"]["isError"] is False


async def test_resume_without_a_pending_call(tmp_path: Path) -> None:
    async with open_manager(tmp_path) as mgr:
        sid = (await mgr.create_session({})).id
        with pytest.raises(SessionNotRunning):
            await mgr.resume_session(sid, "approve")
        events = await run_turn(mgr, sid, "hello")
        assert events[-1]["type"] == "stream_stopped"
        with pytest.raises(NothingPending):
            await mgr.resume_session(sid, "approve")


@pytest.mark.parametrize("confirmation", ["approve", "approve-session", "approve-tool"])
async def test_concurrent_resumes_exactly_one_wins(tmp_path: Path, confirmation: str) -> None:
    async with open_manager(tmp_path) as mgr:
        sid = (await mgr.create_session({})).id
        stream, _ = await start_held(mgr, sid)
        results = await asyncio.gather(
            mgr.resume_session(sid, confirmation),
            mgr.resume_session(sid, "reject", reason="too late"),
            return_exceptions=True,
        )
        assert sum(result is None for result in results) == 1
        assert sum(isinstance(result, NothingPending) for result in results) == 1
        winner = confirmation if results[0] is None else "reject"
        events = await read_rest(stream)
        [authorization] = of_type(events, "authorization_event")
        assert authorization["confirmation"] == winner
        [response] = of_type(events, "tool_call_response")
        assert response["result"]["isError"] is (winner == "reject")
        assert events[-1]["type"] == "stream_stopped"
        # The loser changed nothing (SPEC 2: a request that fails changes nothing).
        async with open_reader(tmp_path) as reader:
            stored = await reader.get_session(sid)
        assert stored.tools_approved is (winner == "approve-session")
        allowed = stored.permissions.allow if stored.permissions else []
        assert allowed == (["shell"] if winner == "approve-tool" else [])


# -- approval policy ----------------------------------------------------------------------

POLICY_CASES = [
    # id, prompt, session template, agent permissions, tools asked about, denied
    ("default-asks", LIST_FILES, {}, None, ["shell"], False),
    ("session-deny", LIST_FILES, {"permissions": {"deny": ["shell"]}}, None, [], True),
    ("session-allow", LIST_FILES, {"permissions": {"allow": ["shell"]}}, None, [], False),
    ("session-allow-glob", LIST_FILES, {"permissions": {"allow": ["sh*"]}}, None, [], False),
    ("session-ask-read-only", MATH, {"permissions": {"ask": ["think"]}}, None, ["think"], False),
    ("agent-deny", LIST_FILES, {}, {"deny": ["shell"]}, [], True),
    ("agent-allow", LIST_FILES, {}, {"allow": ["shell"]}, [], False),
    ("agent-ask-read-only", MATH, {}, {"ask": ["think"]}, ["think"], False),
    (
        "session-before-agent",
        LIST_FILES,
        {"permissions": {"allow": ["shell"]}},
        {"deny": ["shell"]},
        [],
        False,
    ),
    ("read-only-runs", MATH, {}, None, [], False),
    ("tools-approved", LIST_FILES, {"tools_approved": True}, None, [], False),
]


@pytest.mark.parametrize(
    ("prompt", "template", "agent_permissions", "asked", "denied"),
    [case[1:] for case in POLICY_CASES],
    ids=[case[0] for case in POLICY_CASES],
)
async def test_approval_policy(
    tmp_path: Path,
    agents_dir: Path,
    prompt: str,
    template: dict,
    agent_permissions: dict | None,
    asked: list[str],
    denied: bool,
) -> None:
    agent = DEFAULT_AGENT
    if agent_permissions is not None:
        agent = write_agent(agents_dir, "policy", permissions=agent_permissions)
    async with open_manager(tmp_path) as mgr:
        sid = (await mgr.create_session(template)).id
        stream = await mgr.run_session(sid, agent, "", user(prompt))
        events = await read_rest(stream, answer=approver(mgr, sid))
        confirmations = of_type(events, "tool_call_confirmation")
        assert [e["tool_call"]["function"]["name"] for e in confirmations] == asked
        [response] = of_type(events, "tool_call_response")
        result = response["result"]
        if denied:
            assert result["isError"] is True and result["output"].startswith("Denied")
        else:
            assert result["isError"] is False
            expected = "s.db" if prompt == LIST_FILES else "Thought recorded."
            assert expected in result["output"]
        assert events[-1]["type"] == "stream_stopped" and events[-1]["reason"] == "normal"


# -- busy ---------------------------------------------------------------------------------


async def test_second_run_while_waiting_is_busy_and_appends_nothing(tmp_path: Path) -> None:
    async with open_manager(tmp_path) as mgr, open_reader(tmp_path) as reader:
        sid = (await mgr.create_session({})).id
        stream, _ = await start_held(mgr, sid)
        before = roles(await reader.get_session(sid))
        seq_before = mgr.last_event_seq(sid)[0]
        with pytest.raises(SessionBusy):
            await mgr.run_session(sid, DEFAULT_AGENT, "", user("me too"))
        with pytest.raises(SessionBusy):
            await mgr.run_session(sid, DEFAULT_AGENT, "", user("me too"), model="demo/slow")
        assert roles(await reader.get_session(sid)) == before == ["user", "assistant"]
        assert roles(await mgr.get_session(sid)) == before
        assert mgr.last_event_seq(sid)[0] == seq_before
        assert (await reader.get_session(sid)).agent_model_overrides == {}
        await mgr.resume_session(sid, "approve")
        events = await read_rest(stream)
        assert "me too" not in [e.get("message") for e in of_type(events, "user_message")]


# -- steer --------------------------------------------------------------------------------


async def test_steer_enters_after_tool_results_before_next_model_call(tmp_path: Path) -> None:
    async with open_manager(tmp_path) as mgr, open_reader(tmp_path) as reader:
        sid = (await mgr.create_session({})).id
        stream, _ = await start_held(mgr, sid)
        await mgr.steer_session(sid, user("please be brief"))
        assert (await mgr.queue_status(sid))["steer"]["depth"] == 1
        await mgr.resume_session(sid, "approve")
        events = await read_rest(stream)

        response_at = index_of(events, lambda e: e["type"] == "tool_call_response")
        steered_at = index_of(events, lambda e: e["type"] == "user_message", response_at)
        answer_at = index_of(events, lambda e: e["type"] == "agent_choice", response_at)
        assert response_at < steered_at < answer_at
        assert events[steered_at]["message"] == "please be brief"
        assert "please be brief" in choice_text(events[answer_at:])  # the model saw it
        stored = await reader.get_session(sid)
        assert roles(stored) == ["user", "assistant", "tool", "user", "assistant"]
        assert stored.chat_messages()[3].message.content == "please be brief"
        assert events[steered_at]["session_position"] == 3
        assert (await mgr.queue_status(sid))["steer"]["depth"] == 0


async def test_steer_needs_a_running_turn(tmp_path: Path) -> None:
    async with open_manager(tmp_path) as mgr:
        sid = (await mgr.create_session({})).id
        with pytest.raises(SessionNotRunning):
            await mgr.steer_session(sid, user("hi"))
        await run_turn(mgr, sid, "hello")
        with pytest.raises(SessionNotRunning):
            await mgr.steer_session(sid, user("hi"))
        assert (await mgr.queue_status(sid))["steer"]["depth"] == 0
        assert roles(await mgr.get_session(sid)) == ["user", "assistant"]


async def test_steer_capacity(tmp_path: Path) -> None:
    async with open_manager(tmp_path, steer_capacity=2) as mgr:
        sid = (await mgr.create_session({})).id
        stream, held = await start_held(mgr, sid)
        await mgr.steer_session(sid, user("one"))
        await mgr.steer_session(sid, user("two"))
        status = await mgr.queue_status(sid)
        assert status["steer"] == {"depth": 2, "capacity": 2}
        assert status["followup"] == {"depth": 0, "capacity": 8}
        with pytest.raises(QueueFull):
            await mgr.steer_session(sid, user("three"))
        assert (await mgr.queue_status(sid))["steer"]["depth"] == 2
        await mgr.resume_session(sid, "approve")
        events = held + await read_rest(stream)
        assert [e["message"] for e in of_type(events, "user_message")] == [
            LIST_FILES,
            "one",
            "two",
        ]
        assert (await mgr.queue_status(sid))["steer"]["depth"] == 0


async def test_a_steer_accepted_while_the_turn_finishes_is_answered(tmp_path: Path) -> None:
    """The answer is complete but the turn still runs (its title is being saved): a steer
    accepted then must still reach the model, not linger into a later turn."""
    async with open_manager(tmp_path) as mgr:
        sid = (await mgr.create_session({})).id
        entered, release = asyncio.Event(), asyncio.Event()
        original = mgr.store.claim_title

        async def gated(session_id, title, owner=""):  # hold the title's commit
            entered.set()
            await release.wait()
            return await original(session_id, title, owner)

        mgr.store.claim_title = gated  # type: ignore[method-assign]
        stream = await mgr.run_session(sid, DEFAULT_AGENT, "", user("hello"))
        events = await read_until(stream, "token_usage")  # the model has answered
        await asyncio.wait_for(entered.wait(), DEADLINE)
        await mgr.steer_session(sid, user("one more thing"))
        release.set()
        events += await read_rest(stream)
        steered_at = index_of(events, lambda e: e.get("message") == "one more thing")
        assert "one more thing" in choice_text(events[steered_at:])
        assert events[-1]["reason"] == "normal"
        assert (await mgr.queue_status(sid))["steer"]["depth"] == 0
        assert roles(await mgr.get_session(sid)) == ["user", "assistant", "user", "assistant"]


# -- follow-ups ---------------------------------------------------------------------------


def _turns(events: list[dict]) -> list[list[dict]]:
    """The events split after each ``stream_stopped``."""
    turns, current = [], []
    for event in events:
        current.append(event)
        if event["type"] == "stream_stopped":
            turns.append(current)
            current = []
    assert current == [], "events after the last stream_stopped"
    return turns


async def test_follow_ups_each_get_a_full_turn_after_the_current_one(tmp_path: Path) -> None:
    async with open_manager(tmp_path) as mgr, open_reader(tmp_path) as reader:
        sid = (await mgr.create_session({})).id
        stream, held = await start_held(mgr, sid)
        first = await mgr.follow_up_session(sid, user("first follow-up"))
        second = await mgr.follow_up_session(sid, user("second follow-up"))
        assert first.status == second.status == "queued_streaming"
        assert not first.duplicate and not second.duplicate
        assert (await mgr.queue_status(sid))["followup"]["depth"] == 2
        await mgr.resume_session(sid, "approve")
        events = held + await read_rest(stream)  # returns only once the stream has ended

        turns = _turns(events)
        assert len(turns) == 3
        assert of_type(turns[0], "tool_call_response")
        for turn, text in zip(turns[1:], ["first follow-up", "second follow-up"], strict=True):
            assert types(turn)[:5] == [*OPENING, "user_message", "stream_started"]
            assert turn[3]["message"] == text
            assert "agent_choice" in types(turn)
            assert turn[-1]["reason"] == "normal"
            assert text in choice_text(turn)
        assert (await mgr.queue_status(sid))["followup"]["depth"] == 0
        stored = await reader.get_session(sid)
        assert [m.message.content for m in stored.chat_messages() if m.message.role == "user"] == [
            LIST_FILES,
            "first follow-up",
            "second follow-up",
        ]
        assert roles(stored)[-4:] == ["user", "assistant", "user", "assistant"]


async def test_follow_up_to_an_idle_runtime_starts_a_turn_now(tmp_path: Path) -> None:
    async with open_manager(tmp_path) as mgr:
        sid = (await mgr.create_session({})).id
        await run_turn(mgr, sid, "hello")
        sub = await mgr.subscribe_events(sid, since=mgr.last_event_seq(sid)[0])
        try:
            result = await mgr.follow_up_session(sid, user("and now this"))
            assert result.status == "queued_streaming" and not result.duplicate
            events = await read_until(sub, "stream_stopped")
        finally:
            sub.close()
        assert types(events)[:5] == [*OPENING, "user_message", "stream_started"]
        assert events[3]["message"] == "and now this"
        assert "and now this" in choice_text(events)
        assert events[-1]["reason"] == "normal"
        session = await mgr.get_session(sid)
        assert roles(session) == ["user", "assistant", "user", "assistant"]


async def test_follow_up_to_a_never_run_session_waits_for_the_next_run(tmp_path: Path) -> None:
    async with open_manager(tmp_path) as mgr, open_reader(tmp_path) as reader:
        sid = (await mgr.create_session({})).id
        result = await mgr.follow_up_session(sid, user("queued while idle"))
        assert result.status == "queued_idle" and not result.duplicate
        assert roles(await reader.get_session(sid)) == []
        events = await run_turn(mgr, sid, "hello")
        turns = _turns(events)
        assert [turn[3]["message"] for turn in turns] == ["hello", "queued while idle"]
        assert roles(await reader.get_session(sid)) == ["user", "assistant"] * 2


async def test_follow_up_idempotency_key_delivers_once(tmp_path: Path) -> None:
    async with open_manager(tmp_path) as mgr, open_reader(tmp_path) as reader:
        sid = (await mgr.create_session({})).id
        stream, held = await start_held(mgr, sid)
        first = await mgr.follow_up_session(sid, user("only once"), idempotency_key="k1")
        again = await mgr.follow_up_session(sid, user("only once"), idempotency_key="k1")
        assert (first.status, first.duplicate) == ("queued_streaming", False)
        assert (again.status, again.duplicate) == ("duplicate", True)
        assert (await mgr.queue_status(sid))["followup"]["depth"] == 1
        await mgr.resume_session(sid, "approve")
        events = held + await read_rest(stream)
        assert [e["message"] for e in of_type(events, "user_message")] == [
            LIST_FILES,
            "only once",
        ]
        stored = await reader.get_session(sid)
        assert [m.message.content for m in stored.chat_messages()].count("only once") == 1


async def test_a_failed_follow_up_does_not_consume_its_key(tmp_path: Path) -> None:
    async with open_manager(tmp_path, followup_capacity=1) as mgr:
        sid = (await mgr.create_session({})).id
        stream, held = await start_held(mgr, sid)
        await mgr.follow_up_session(sid, user("fills the queue"))
        with pytest.raises(QueueFull):
            await mgr.follow_up_session(sid, user("retried"), idempotency_key="k")
        assert (await mgr.queue_status(sid))["followup"] == {"depth": 1, "capacity": 1}
        await mgr.resume_session(sid, "approve")
        events = held + await read_rest(stream)
        assert [e["message"] for e in of_type(events, "user_message")] == [
            LIST_FILES,
            "fills the queue",
        ]

        sub = await mgr.subscribe_events(sid, since=mgr.last_event_seq(sid)[0])
        try:
            retry = await mgr.follow_up_session(sid, user("retried"), idempotency_key="k")
            assert (retry.status, retry.duplicate) == ("queued_streaming", False)
            later = await read_until(sub, "stream_stopped")
        finally:
            sub.close()
        assert later[3]["type"] == "user_message" and later[3]["message"] == "retried"
        dup = await mgr.follow_up_session(sid, user("retried"), idempotency_key="k")
        assert dup.duplicate is True
        contents = [m.message.content for m in (await mgr.get_session(sid)).chat_messages()]
        assert contents.count("retried") == 1


# -- cancel -------------------------------------------------------------------------------


async def test_cancel_while_waiting_for_a_confirmation(tmp_path: Path) -> None:
    async with open_manager(tmp_path) as mgr, open_reader(tmp_path) as reader:
        sid = (await mgr.create_session({})).id
        stream, held = await start_held(mgr, sid)
        call_id = held[-1]["tool_call"]["id"]
        await mgr.cancel_session(sid)
        events = await read_rest(stream)
        assert events[-1]["type"] == "stream_stopped"
        assert events[-1]["reason"] == "canceled"
        assert "authorization_event" not in types(events)
        with pytest.raises((NothingPending, SessionNotRunning)):
            await mgr.resume_session(sid, "approve")
        stored = await reader.get_session(sid)
        assert roles(stored) == ["user", "assistant", "tool"]  # nothing saved twice
        result = tool_result(stored, call_id).message
        assert result.is_error is True and result.content.startswith("Interrupted")
        status = await mgr.get_session_status(sid)
        assert status["streaming"] is False


async def test_cancel_while_a_tool_runs(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    async with open_manager(tmp_path) as mgr, open_reader(tmp_path) as reader:
        sid = (await mgr.create_session({})).id
        stream, held = await start_held(mgr, sid, f"run `echo $$ > {marker.name} && sleep 30`")
        call_id = held[-1]["tool_call"]["id"]
        await mgr.resume_session(sid, "approve")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE
        while not (marker.exists() and marker.read_text().strip()):  # the command is running
            assert loop.time() < deadline, "the command never started"
            await asyncio.sleep(0.01)
        pid = int(marker.read_text())
        started = loop.time()
        await mgr.cancel_session(sid)
        events = await read_rest(stream, timeout=5)
        assert loop.time() - started < 5
        assert events[-1]["type"] == "stream_stopped" and events[-1]["reason"] == "canceled"
        stored = await reader.get_session(sid)
        result = tool_result(stored, call_id).message
        assert result.is_error is True and result.content.startswith("Interrupted")
        with pytest.raises(ProcessLookupError):  # the shell was killed and reaped
            os.kill(pid, 0)

        again = await run_turn(mgr, sid, MATH)
        assert again[-1]["reason"] == "normal"
        assert "391" in choice_text(again)


async def test_cancel_mid_stream_keeps_the_partial_answer(tmp_path: Path, agents_dir: Path) -> None:
    slow = write_agent(agents_dir, "slow", model="demo/slow")
    async with open_manager(tmp_path) as mgr, open_reader(tmp_path) as reader:
        sid = (await mgr.create_session({"title": "slow one"})).id
        stream = await mgr.run_session(sid, slow, "", user("tell me a long story"))
        events = await read_until(stream, "agent_choice")
        await mgr.cancel_session(sid)
        events += await read_rest(stream)
        assert events[-1]["type"] == "stream_stopped" and events[-1]["reason"] == "canceled"
        assert "token_usage" not in types(events)  # the response never completed
        stored = await reader.get_session(sid)
        assert roles(stored) == ["user", "assistant"]
        partial = stored.chat_messages()[1].message.content
        assert partial and partial == choice_text(events)
        assert "read-only" not in partial  # the full answer ends with the list of tries


async def test_cancel_between_follow_up_turns_ends_the_run_stream(tmp_path: Path) -> None:
    async with open_manager(tmp_path) as mgr:
        sid = (await mgr.create_session({})).id
        entered, release = asyncio.Event(), asyncio.Event()
        original = mgr.store.append_item

        async def gated(session_id, item, owner=""):  # hold the follow-up's commit
            if item.message is not None and item.message.message.content == "next":
                entered.set()
                await release.wait()
            return await original(session_id, item, owner)

        mgr.store.append_item = gated  # type: ignore[method-assign]
        stream = await mgr.run_session(sid, DEFAULT_AGENT, "", user("hello"))
        await mgr.follow_up_session(sid, user("next"))
        events = await read_until(stream, "stream_stopped")
        first_stop = events[-1]
        await asyncio.wait_for(entered.wait(), DEADLINE)
        await mgr.cancel_session(sid)
        release.set()
        events += await read_rest(stream, timeout=5)
        assert events[-1]["type"] == "stream_stopped" and events[-1]["reason"] == "canceled"
        assert "stream_started" not in types(events[events.index(first_stop) + 1 :])
        assert (await mgr.get_session_status(sid))["streaming"] is False
        again = await run_turn(mgr, sid, "hello again")
        assert again[-1]["reason"] == "normal"


async def test_cancel_without_a_running_turn(tmp_path: Path) -> None:
    async with open_manager(tmp_path) as mgr:
        sid = (await mgr.create_session({})).id
        with pytest.raises(SessionNotRunning):
            await mgr.cancel_session(sid)
        await run_turn(mgr, sid, "hello")
        with pytest.raises(SessionNotRunning):
            await mgr.cancel_session(sid)


# -- model override -----------------------------------------------------------------------

ALT_MODELS = {"alt": {"provider": "demo", "model": "alt"}}


async def test_model_override_applies_persists_and_sticks(tmp_path: Path, agents_dir: Path) -> None:
    agent = write_agent(agents_dir, "two-models", models=ALT_MODELS)
    async with open_manager(tmp_path) as mgr, open_reader(tmp_path) as reader:
        sid = (await mgr.create_session({})).id

        async def model_of_next_turn(model: str) -> str:
            stream = await mgr.run_session(sid, agent, "", user("hello"), model=model)
            [info] = of_type(await read_until(stream, "agent_info"), "agent_info")
            await mgr.cancel_session(sid)  # demo/slow is slow: the header is all we need
            await read_rest(stream)
            return info["model"]

        assert await model_of_next_turn("demo/slow") == "demo/slow"
        assert (await reader.get_session(sid)).agent_model_overrides == {"root": "demo/slow"}
        assert await model_of_next_turn("") == "demo/slow"  # no model: the override stays
        events = await run_turn(mgr, sid, "hello", agent=agent, model="alt")
        assert of_type(events, "agent_info")[0]["model"] == "demo/alt"
        assert events[-1]["reason"] == "normal"
        assert (await reader.get_session(sid)).agent_model_overrides == {"root": "alt"}
        events = await run_turn(mgr, sid, "hello", agent=agent)
        assert of_type(events, "agent_info")[0]["model"] == "demo/alt"
        assistant = (await reader.get_session(sid)).chat_messages()[-1].message
        assert assistant.model == "demo/alt"


@pytest.mark.parametrize("bad", ["nope/x", "nope", "   "])
async def test_bad_model_ref_appends_nothing(tmp_path: Path, agents_dir: Path, bad: str) -> None:
    agent = write_agent(agents_dir, "two-models", models=ALT_MODELS)
    async with open_manager(tmp_path) as mgr, open_reader(tmp_path) as reader:
        sid = (await mgr.create_session({})).id
        await run_turn(mgr, sid, "hello", agent=agent, model="alt")
        before = await reader.get_session(sid)
        seq = mgr.last_event_seq(sid)[0]
        with pytest.raises(InvalidModelRef) as info:
            await mgr.run_session(sid, agent, "", user("with a bad model"), model=bad)
        assert info.value.code == "invalid_request"
        after = await reader.get_session(sid)
        assert after.messages == before.messages
        assert after.agent_model_overrides == before.agent_model_overrides == {"root": "alt"}
        assert (await mgr.get_session(sid)).agent_model_overrides == {"root": "alt"}
        assert mgr.last_event_seq(sid)[0] == seq
        assert (await mgr.get_session_status(sid))["streaming"] is False
        events = await run_turn(mgr, sid, "hello", agent=agent)
        assert of_type(events, "agent_info")[0]["model"] == "demo/alt"


# -- max_iterations -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("agent_limit", "session_limit", "reached"),
    [(1, 0, 1), (None, 1, 1), (1, 3, None)],
    ids=["agent-limit", "session-limit", "session-overrides-agent"],
)
async def test_max_iterations_pauses_and_reject_stops(
    tmp_path: Path,
    agents_dir: Path,
    agent_limit: int | None,
    session_limit: int,
    reached: int | None,
) -> None:
    agent = write_agent(agents_dir, "limited", max_iterations=agent_limit)
    async with open_manager(tmp_path) as mgr, open_reader(tmp_path) as reader:
        sid = (await mgr.create_session({"max_iterations": session_limit, "title": "t"})).id
        stream = await mgr.run_session(sid, agent, "", user(MATH))
        if reached is None:
            events = await read_rest(stream)
            assert "max_iterations_reached" not in types(events)
            assert "391" in choice_text(events)
            assert roles(await reader.get_session(sid)) == [
                "user",
                "assistant",
                "tool",
                "assistant",
            ]
            return
        events = await read_until(stream, "max_iterations_reached")
        assert events[-1]["max_iterations"] == reached
        assert len(of_type(events, "token_usage")) == 1  # one model call
        assert of_type(events, "tool_call_response")  # its tool call still ran
        assert (await mgr.get_session_status(sid))["streaming"] is True  # paused, not ended
        await mgr.resume_session(sid, "reject")
        rest = await read_rest(stream)
        stop = f"Execution stopped after reaching the configured max_iterations limit ({reached})."
        assert choice_text(rest) == stop
        assert rest[-1]["type"] == "stream_stopped" and rest[-1]["reason"] == "normal"
        stored = await reader.get_session(sid)
        assert roles(stored) == ["user", "assistant", "tool", "assistant"]
        assert stored.chat_messages()[-1].message.content == stop


async def test_max_iterations_approve_grants_ten_more(tmp_path: Path, agents_dir: Path) -> None:
    agent = write_agent(agents_dir, "limited", max_iterations=1)
    async with open_manager(tmp_path) as mgr, open_reader(tmp_path) as reader:
        sid = (await mgr.create_session({"title": "t"})).id
        stream = await mgr.run_session(sid, agent, "", user(MATH))
        await read_until(stream, "max_iterations_reached")
        with pytest.raises(InvalidRequest):
            await mgr.resume_session(sid, "maybe")
        await mgr.resume_session(sid, "approve")
        rest = await read_rest(stream)
        assert "391" in choice_text(rest)
        assert "max_iterations_reached" not in types(rest)
        assert rest[-1]["reason"] == "normal"
        assert roles(await reader.get_session(sid)) == ["user", "assistant", "tool", "assistant"]
        with pytest.raises(NothingPending):
            await mgr.resume_session(sid, "approve")


# -- title --------------------------------------------------------------------------------


async def test_first_message_titles_an_untitled_session(tmp_path: Path) -> None:
    async with open_manager(tmp_path) as mgr, open_reader(tmp_path) as reader:
        sid = (await mgr.create_session({})).id
        events = await run_turn(mgr, sid, "hello there friend")
        [title] = of_type(events, "session_title")
        assert title["session_id"] == sid and title["title"]
        assert title["seq"] < events[-1]["seq"]
        assert (await reader.get_session(sid)).title == title["title"]
        events = await run_turn(mgr, sid, "something else entirely")
        assert "session_title" not in types(events)
        assert (await reader.get_session(sid)).title == title["title"]


async def test_a_titled_session_keeps_its_title(tmp_path: Path) -> None:
    async with open_manager(tmp_path) as mgr, open_reader(tmp_path) as reader:
        sid = (await mgr.create_session({"title": "Mine"})).id
        events = await run_turn(mgr, sid, "hello there friend")
        assert "session_title" not in types(events)
        assert (await reader.get_session(sid)).title == "Mine"


# -- model failure ------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_model_failure_ends_the_turn_with_an_error(tmp_path: Path, agents_dir: Path) -> None:
    models = {
        "gpt": {
            "provider": "openai",
            "model": "gpt-x",
            "base_url": f"http://127.0.0.1:{_closed_port()}/v1",
        }
    }
    broken = write_agent(agents_dir, "broken", model="gpt", models=models, toolsets=["think"])
    async with open_manager(tmp_path) as mgr, open_reader(tmp_path) as reader:
        sid = (await mgr.create_session({"title": "t"})).id
        stream = await mgr.run_session(sid, broken, "", user("hello"))
        events = await read_rest(stream, timeout=30)
        assert types(events) == [
            *OPENING,
            "user_message",
            "stream_started",
            "error",
            "stream_stopped",
        ]
        assert events[0]["model"] == "openai/gpt-x"
        assert "openai/gpt-x" in events[5]["error"] and "127.0.0.1" in events[5]["error"]
        assert events[-1]["reason"] == "error"
        assert (await mgr.get_session_status(sid))["streaming"] is False
        assert (await mgr.ready_status())["ready"] is True
        assert roles(await reader.get_session(sid)) == ["user"]

        events = await run_turn(mgr, sid, MATH)  # the default agent: the session still works
        assert events[-1]["reason"] == "normal" and "391" in choice_text(events)
        assert roles(await reader.get_session(sid)) == [
            "user",
            "user",
            "assistant",
            "tool",
            "assistant",
        ]


# -- elicitation --------------------------------------------------------------------------


async def test_elicitation_round_trip(tmp_path: Path, asker: str) -> None:
    async with open_manager(tmp_path) as mgr:
        sid = (await mgr.create_session({"title": "t"})).id
        with pytest.raises(SessionNotRunning):
            await mgr.resume_elicitation(sid, "accept", {"color": "red"})
        stream = await mgr.run_session(sid, asker, "", user("run `pick`"))
        events = await read_until(stream, "elicitation_request")
        request = events[-1]
        assert request["message"] == "Which color?"
        assert request["schema"] == AskingToolset.SCHEMA
        assert request["elicitation_id"]

        with pytest.raises(InvalidRequest):
            await mgr.resume_elicitation(sid, "maybe", {"color": "red"})
        with pytest.raises(NothingPending):
            await mgr.resume_elicitation(sid, "accept", {"color": "red"}, elicitation_id="nope")
        await mgr.resume_elicitation(
            sid, "accept", {"color": "blue"}, elicitation_id=request["elicitation_id"]
        )
        events = await read_rest(stream)
        [response] = of_type(events, "tool_call_response")
        assert response["result"]["output"] == 'action=accept content={"color": "blue"}'
        assert events[-1]["reason"] == "normal"
        with pytest.raises(NothingPending):
            await mgr.resume_elicitation(sid, "accept", {"color": "green"})


async def test_elicitation_decline_without_an_id(tmp_path: Path, asker: str) -> None:
    async with open_manager(tmp_path) as mgr:
        sid = (await mgr.create_session({"title": "t"})).id
        stream = await mgr.run_session(sid, asker, "", user("run `pick`"))
        await read_until(stream, "elicitation_request")
        await mgr.resume_elicitation(sid, "decline")
        events = await read_rest(stream)
        [response] = of_type(events, "tool_call_response")
        assert response["result"]["output"] == "action=decline content=null"


async def test_cancel_while_an_elicitation_waits(tmp_path: Path, asker: str) -> None:
    async with open_manager(tmp_path) as mgr, open_reader(tmp_path) as reader:
        sid = (await mgr.create_session({"title": "t"})).id
        stream = await mgr.run_session(sid, asker, "", user("run `pick`"))
        await read_until(stream, "elicitation_request")
        await mgr.cancel_session(sid)
        events = await read_rest(stream)
        assert events[-1]["type"] == "stream_stopped" and events[-1]["reason"] == "canceled"
        with pytest.raises(NothingPending):
            await mgr.resume_elicitation(sid, "accept", {"color": "red"})
        stored = await reader.get_session(sid)
        assert roles(stored) == ["user", "assistant", "tool"]
        assert stored.chat_messages()[2].message.content.startswith("Interrupted")


# -- crash-left tool calls ----------------------------------------------------------------


async def test_a_dangling_tool_call_is_closed_before_the_next_message(tmp_path: Path) -> None:
    async with open_manager(tmp_path) as mgr, open_reader(tmp_path) as reader:
        sid = (await mgr.create_session({"title": "t"})).id
        call = {"id": "crashed_1", "type": "function"}
        call["function"] = {"name": "shell", "arguments": '{"cmd": "ls"}'}
        await mgr.add_message(
            sid, {"message": {"role": "assistant", "content": "", "tool_calls": [call]}}
        )
        events = await run_turn(mgr, sid, "hello")
        stored = await reader.get_session(sid)
        assert roles(stored) == ["assistant", "tool", "user", "assistant"]
        result = stored.chat_messages()[1].message
        assert result.tool_call_id == "crashed_1"
        assert result.is_error is True and result.content.startswith("Interrupted")
        closed_at = index_of(events, lambda e: e["type"] == "tool_call_response")
        assert events[closed_at]["tool_call"]["id"] == "crashed_1"
        assert closed_at < index_of(events, lambda e: e["type"] == "user_message")
        assert events[-1]["reason"] == "normal"
        assert len(of_type(events, "tool_call_response")) == 1


# -- store failure ------------------------------------------------------------------------


async def test_a_store_failure_mid_turn_ends_it_with_error_and_stream_stopped(
    tmp_path: Path,
) -> None:
    async with open_manager(tmp_path) as mgr, open_reader(tmp_path) as reader:
        sid = (await mgr.create_session({"title": "t"})).id
        original = mgr.store.append_item

        async def failing(session_id, item, owner=""):  # the disk fills when the result lands
            if item.message is not None and item.message.message.role == "tool":
                raise StoreError("disk full")
            return await original(session_id, item, owner)

        mgr.store.append_item = failing  # type: ignore[method-assign]
        stream = await mgr.run_session(sid, DEFAULT_AGENT, "", user(MATH))
        events = await read_rest(stream, timeout=5)
        assert [e["type"] for e in events[-2:]] == ["error", "stream_stopped"]
        assert "disk full" in events[-2]["error"]
        assert events[-1]["reason"] == "error"
        assert (await mgr.get_session_status(sid))["streaming"] is False

        mgr.store.append_item = original  # type: ignore[method-assign]
        again = await run_turn(mgr, sid, MATH)
        assert again[-1]["reason"] == "normal" and "391" in choice_text(again)
        stored = await reader.get_session(sid)
        first_call = stored.chat_messages()[1].message.tool_calls[0].id
        assert tool_result(stored, first_call).message.content.startswith("Interrupted")


async def test_agent_file_warnings_reach_the_session_once(tmp_path: Path) -> None:
    agents_dir = tmp_path / "agents"
    agents_dir.mkdir(exist_ok=True)
    (agents_dir / "noisy.yaml").write_text(
        "agents:\n  root:\n    model: demo/offline\n    colour: blue\n"
    )
    async with open_manager(tmp_path) as mgr:
        session = await mgr.create_session({})
        first = await run_turn(mgr, session.id, "hello", agent="noisy")
        warnings = [e for e in first if e["type"] == "warning"]
        assert len(warnings) == 1 and "agents.root.colour" in warnings[0]["message"]
        second = await run_turn(mgr, session.id, "again", agent="noisy")
        assert not [e for e in second if e["type"] == "warning"]
