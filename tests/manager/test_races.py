"""Regression tests for the races an asyncio review found in the manager and the runtime.

Each test drives one interleaving that used to break a guarantee: a request arriving while a run
is starting, a cancel racing a commit, a follow-up to a released session. Private state is read
only to *time* a race (``mgr.session_phase(session_id)``) or a store write is wrapped to act at
the right moment; every assertion is on public behaviour (events, stored session, status,
errors). Every wait has a deadline, so a regression fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nbsession.errors import NothingPending, QueueFull, SessionNotRunning
from nbsession.manager import SessionManager
from nbsession.session import Item, Session

from .conftest import OpenManager
from .turn_helpers import (
    DEFAULT_AGENT,
    LIST_FILES,
    MATH,
    OPENING,
    Event,
    approver,
    of_type,
    read_rest,
    read_until,
    run_turn,
    types,
    user,
    write_agent,
)

SLOW = "demo/slow"  # 50 ms per streamed chunk: a turn that stays busy long enough to race


async def spin_until(condition: Callable[[], bool], rounds: int = 10_000) -> None:
    """Yield to the loop until ``condition`` holds (timing a race, not asserting anything)."""
    for _ in range(rounds):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the awaited state never came")


async def wait_idle(mgr: SessionManager, session_id: str, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (await mgr.get_session_status(session_id))["streaming"]:
        assert loop.time() < deadline, "the session never went idle"
        await asyncio.sleep(0.01)


def user_texts(session: Session) -> list[str]:
    return [m.message.content for m in session.chat_messages() if m.message.role == "user"]


def stop_reasons(events: list[Event]) -> list[str]:
    return [event["reason"] for event in of_type(events, "stream_stopped")]


# -- 1. a follow-up to a released session -------------------------------------------------


async def test_follow_up_to_a_released_session_runs_on_its_registered_runtime(
    open_manager: OpenManager,
) -> None:
    async with open_manager(max_live_runtimes=1) as mgr:
        a = await mgr.create_session({})
        b = await mgr.create_session({})
        last_a = (await run_turn(mgr, a.id, "hello"))[-1]["seq"]
        busy_b = await mgr.run_session(b.id, DEFAULT_AGENT, "", user("hello"), model=SLOW)
        assert mgr.last_event_seq(a.id) == (last_a, False)  # a was released for b

        # b is busy, so the revived a is the only runtime that could be released again.
        result = await mgr.follow_up_session(a.id, user(LIST_FILES, LIST_FILES))
        assert result.status == "queued_streaming"
        assert (await mgr.get_session_status(a.id))["streaming"]

        watcher = await mgr.subscribe_events(a.id, since=last_a)
        seen = await read_until(watcher, "tool_call_confirmation")
        await mgr.resume_session(a.id, "approve")  # answers the turn clients can see
        seen += await read_until(watcher, "tool_call_confirmation")  # the second follow-up
        await mgr.cancel_session(a.id)
        seen += await read_until(watcher, "stream_stopped")
        assert stop_reasons(seen) == ["normal", "canceled"]
        assert of_type(seen, "tool_call_response")[0]["result"]["isError"] is False

        busy_b.cancel()
        await read_rest(busy_b)
        again = await run_turn(mgr, a.id, MATH)
        seen += await read_until(watcher, "stream_stopped")
        watcher.close()

        seqs = [event["seq"] for event in seen]
        assert seqs == list(range(last_a + 1, last_a + 1 + len(seqs)))  # none repeats or skips
        assert [e["seq"] for e in again] == seqs[-len(again) :]
        assert [e["message"] for e in of_type(seen, "user_message")] == [LIST_FILES] * 2 + [MATH]
        assert user_texts(await mgr.get_session(a.id)) == ["hello", LIST_FILES, LIST_FILES, MATH]
        assert not (await mgr.get_session_status(a.id))["streaming"]


# -- 2. a follow-up while run_session starts a new runtime ----------------------------------


@pytest.mark.parametrize("how", ["agent-switch", "revive"])
async def test_follow_up_while_a_new_runtime_starts_is_its_own_turn(
    open_manager: OpenManager, agents_dir: Path, how: str
) -> None:
    write_agent(agents_dir, "other")
    async with open_manager(max_live_runtimes=1) as mgr:
        s = await mgr.create_session({})
        await run_turn(mgr, s.id, "hello")
        agent = "other"
        if how == "revive":  # another session's run releases s: its next run rebuilds it
            await run_turn(mgr, (await mgr.create_session({})).id, "hello")
            agent = DEFAULT_AGENT

        accepted = asyncio.Event()
        original = mgr.store.append_item

        async def append_item(session_id: str, item: Item, owner: str = "") -> int:
            # Hold the run's commit (its runtime is built, not yet registered) until the
            # follow-up is accepted: that is the window the follow-up has to land in.
            if item.message is not None and item.message.message.content == "hello again":
                await asyncio.wait_for(accepted.wait(), 10)
            return await original(session_id, item, owner)

        mgr.store.append_item = append_item  # type: ignore[method-assign]
        run = asyncio.ensure_future(mgr.run_session(s.id, agent, "", user("hello again")))
        await spin_until(lambda: mgr.session_phase(s.id) == "starting")
        result = await mgr.follow_up_session(s.id, user(MATH))
        assert result.status == "queued_streaming"
        accepted.set()

        events = await read_rest(await asyncio.wait_for(run, 10))
        mgr.store.append_item = original  # type: ignore[method-assign]
        assert stop_reasons(events) == ["normal", "normal"]
        assert [e["message"] for e in of_type(events, "user_message")] == ["hello again", MATH]
        assert user_texts(await mgr.get_session(s.id)) == ["hello", "hello again", MATH]
        assert (await mgr.queue_status(s.id))["followup"]["depth"] == 0
        assert not (await mgr.get_session_status(s.id))["streaming"]


# -- 3. field updates while the runtime is built --------------------------------------------


async def test_updates_sent_while_a_run_starts_apply_to_that_turn(
    open_manager: OpenManager,
) -> None:
    async with open_manager() as mgr:
        s = await mgr.create_session({})
        updated = asyncio.Event()
        original = mgr.store.append_item

        async def append_item(session_id: str, item: Item, owner: str = "") -> int:
            # The run has read the session and built its runtime: hold its commit until the
            # updates are stored, so they land between that read and the turn.
            await asyncio.wait_for(updated.wait(), 10)
            return await original(session_id, item, owner)

        mgr.store.append_item = append_item  # type: ignore[method-assign]
        run = asyncio.ensure_future(mgr.run_session(s.id, DEFAULT_AGENT, "", user(LIST_FILES)))
        await spin_until(lambda: mgr.session_phase(s.id) == "starting")
        await mgr.update_session_permissions(s.id, {"deny": ["shell"]})
        await mgr.update_session_title(s.id, "My title")
        updated.set()

        stream = await asyncio.wait_for(run, 10)
        mgr.store.append_item = original  # type: ignore[method-assign]
        # Approve if asked (it must not be), so a regression ends instead of waiting forever.
        events = await read_rest(stream, answer=approver(mgr, s.id))
        assert "tool_call_confirmation" not in types(events)
        [response] = of_type(events, "tool_call_response")
        assert response["response"].startswith("Denied")
        assert not of_type(events, "session_title")

        for session in (await mgr.get_session(s.id), await mgr.store.get_session(s.id)):
            assert session.title == "My title"
            assert session.permissions is not None and session.permissions.deny == ["shell"]
            [result] = [m for m in session.chat_messages() if m.message.role == "tool"]
            assert result.message.content.startswith("Denied")


async def test_a_title_stored_while_the_turn_starts_is_not_overwritten(
    open_manager: OpenManager,
) -> None:
    async with open_manager() as mgr:
        s = await mgr.create_session({})
        generated = asyncio.Event()
        original = mgr.store.update_session

        async def update_session(session_id: str, fields: dict[str, Any], owner: str = "") -> None:
            if fields.get("title") == "My title":
                await original(session_id, fields, owner)
                # Stored first; the answer reaches the caller after the turn has started (a
                # slow store). Bounded: a fixed runtime may never generate a title at all.
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(generated.wait(), 2)
                return
            await original(session_id, fields, owner)

        original_claim = mgr.store.claim_title

        async def claim_title(session_id: str, title: str, owner: str = "") -> str:
            generated.set()  # the runtime tries to title the session now
            return await original_claim(session_id, title, owner)

        mgr.store.update_session = update_session  # type: ignore[method-assign]
        mgr.store.claim_title = claim_title  # type: ignore[method-assign]
        run = asyncio.ensure_future(mgr.run_session(s.id, DEFAULT_AGENT, "", user(MATH)))
        await spin_until(lambda: mgr.session_phase(s.id) == "starting")
        await mgr.update_session_title(s.id, "My title")
        events = await read_rest(await asyncio.wait_for(run, 10))
        mgr.store.update_session = original  # type: ignore[method-assign]
        mgr.store.claim_title = original_claim  # type: ignore[method-assign]

        assert not of_type(events, "session_title")
        assert (await mgr.get_session(s.id)).title == "My title"
        assert (await mgr.store.get_session(s.id)).title == "My title"


# -- 4. a cancel drops the follow-ups queued behind the turn ---------------------------------


async def test_cancel_drops_queued_follow_ups_and_a_refused_follow_up_changes_nothing(
    open_manager: OpenManager,
) -> None:
    async with open_manager(followup_capacity=2) as mgr:
        s = await mgr.create_session({})
        stream = await mgr.run_session(s.id, DEFAULT_AGENT, "", user("hello"), model=SLOW)
        await mgr.follow_up_session(s.id, user("stale-1"))
        await mgr.follow_up_session(s.id, user("stale-2"))
        with pytest.raises(QueueFull):
            await mgr.follow_up_session(s.id, user("stale-3"))
        assert (await mgr.queue_status(s.id))["followup"]["depth"] == 2

        await read_until(stream, "agent_choice")
        await mgr.cancel_session(s.id)
        assert stop_reasons(await read_rest(stream)) == ["canceled"]
        assert (await mgr.queue_status(s.id))["followup"]["depth"] == 0
        assert not (await mgr.get_session_status(s.id))["streaming"]

        await mgr.set_session_agent_model(s.id, "")  # back to the fast model
        result = await mgr.follow_up_session(s.id, user("new-A", "new-B"), idempotency_key="k1")
        assert result.status == "queued_streaming"
        with pytest.raises(QueueFull):  # new-B waits: one place left, two asked for
            await mgr.follow_up_session(s.id, user("x-1", "x-2"), idempotency_key="k2")
        assert (await mgr.queue_status(s.id))["followup"]["depth"] == 1
        await wait_idle(mgr, s.id)
        assert user_texts(await mgr.get_session(s.id)) == ["hello", "new-A", "new-B"]

        # Idle, and more follow-ups than fit behind the first: refused before anything runs.
        with pytest.raises(QueueFull):
            await mgr.follow_up_session(s.id, user("y-1", "y-2", "y-3", "y-4"))
        assert not (await mgr.get_session_status(s.id))["streaming"]
        assert (await mgr.queue_status(s.id))["followup"]["depth"] == 0
        assert user_texts(await mgr.get_session(s.id)) == ["hello", "new-A", "new-B"]
        retry = await mgr.follow_up_session(s.id, user("x-1", "x-2"), idempotency_key="k2")
        assert retry.status == "queued_streaming" and not retry.duplicate  # its key was freed
        await wait_idle(mgr, s.id)
        texts = user_texts(await mgr.get_session(s.id))
        assert texts == ["hello", "new-A", "new-B", "x-1", "x-2"]  # the stale ones never ran


# -- 5. a steer while the turn is being cancelled -------------------------------------------


async def test_steer_while_the_turn_is_cancelled_is_refused(open_manager: OpenManager) -> None:
    async with open_manager() as mgr:
        s = await mgr.create_session({})
        stream = await mgr.run_session(s.id, DEFAULT_AGENT, "", user("hello"), model=SLOW)
        await read_until(stream, "agent_choice")
        await mgr.cancel_session(s.id)
        assert (await mgr.get_session_status(s.id))["streaming"]  # still ending
        with pytest.raises(SessionNotRunning):
            await mgr.steer_session(s.id, user("STEER: also say bye"))

        assert stop_reasons(await read_rest(stream)) == ["canceled"]
        assert (await mgr.queue_status(s.id))["steer"]["depth"] == 0
        assert user_texts(await mgr.get_session(s.id)) == ["hello"]


# -- 6. a cancel while run_session commits its message --------------------------------------


async def test_cancel_while_a_run_starts_is_honoured(open_manager: OpenManager) -> None:
    async with open_manager() as mgr:
        s = await mgr.create_session({})
        await run_turn(mgr, s.id, "hi")
        run = asyncio.ensure_future(
            mgr.run_session(s.id, DEFAULT_AGENT, "", user("hello"), model=SLOW)
        )
        await spin_until(lambda: mgr.session_phase(s.id) == "starting")
        assert (await mgr.get_session_status(s.id))["streaming"]
        await mgr.cancel_session(s.id)  # used to answer SessionNotRunning and be dropped

        events = await read_rest(await asyncio.wait_for(run, 10), timeout=2)
        assert events[-1]["type"] == "stream_stopped" and events[-1]["reason"] == "canceled"
        assert not of_type(events, "agent_choice")  # the model was never called
        assert not (await mgr.get_session_status(s.id))["streaming"]
        assert user_texts(await mgr.get_session(s.id)) == ["hi", "hello"]


# -- 7. the caller of run_session is cancelled during the commit ----------------------------


async def test_run_session_cancelled_during_its_commit_closes_the_turn(
    open_manager: OpenManager,
) -> None:
    async with open_manager() as mgr:
        s = await mgr.create_session({})
        watcher = await mgr.subscribe_events(s.id, since=0)
        run = asyncio.ensure_future(mgr.run_session(s.id, DEFAULT_AGENT, "", user("hello")))
        original = mgr.store.append_item

        async def append_item(session_id: str, item: Item, owner: str = "") -> int:
            if item.message is not None and item.message.message.content == "hello":
                asyncio.get_running_loop().call_soon(run.cancel)  # the caller gives up
            return await original(session_id, item, owner)

        mgr.store.append_item = append_item  # type: ignore[method-assign]
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(run, 10)
        mgr.store.append_item = original  # type: ignore[method-assign]

        events = await read_until(watcher, "stream_stopped", timeout=2)
        watcher.close()
        assert types(events) == [*OPENING, "user_message", "stream_started", "stream_stopped"]
        assert events[-1]["reason"] == "canceled"
        assert not (await mgr.get_session_status(s.id))["streaming"]
        assert user_texts(await mgr.store.get_session(s.id)) == ["hello"]
        assert stop_reasons(await run_turn(mgr, s.id, MATH)) == ["normal"]  # usable again


# -- 8. approve-session racing a cancel ------------------------------------------------------


async def test_approve_session_racing_a_cancel_does_not_fail_after_saving(
    open_manager: OpenManager,
) -> None:
    async with open_manager() as mgr:
        s = await mgr.create_session({})
        stream = await mgr.run_session(s.id, DEFAULT_AGENT, "", user(LIST_FILES))
        await read_until(stream, "tool_call_confirmation")
        original = mgr.store.update_session

        async def update_session(session_id: str, fields: dict[str, Any], owner: str = "") -> None:
            if "tools_approved" in fields:  # the cancel lands while the grant is saved
                await mgr.cancel_session(session_id)
            await original(session_id, fields, owner)

        mgr.store.update_session = update_session  # type: ignore[method-assign]
        try:
            await mgr.resume_session(s.id, "approve-session")
            refused = False
        except NothingPending:
            refused = True
        mgr.store.update_session = original  # type: ignore[method-assign]

        assert stop_reasons(await read_rest(stream)) == ["canceled"]  # the race did happen
        live, stored = await mgr.get_session(s.id), await mgr.store.get_session(s.id)
        assert live.tools_approved == stored.tools_approved
        # A request that fails changes nothing; one that changed something succeeded.
        assert stored.tools_approved is not refused
