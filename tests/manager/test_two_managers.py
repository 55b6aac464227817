"""Two managers on one SQLite file (SPEC 10): one runs a session's turn, the other waits.

The turn's owner holds a lease in the store; the other answers ``session_busy`` to runs and
to writes, shows the session as streaming, and reloads its in-memory copy once the session
changed, so both see one history. The process-level version of this is
``tests/server/test_two_servers.py``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sqlite3
import sys

import pytest

from nbsession.errors import SessionBusy
from nbsession.manager import SessionManager

from .conftest import OpenManager
from .turn_helpers import (
    DEFAULT_AGENT,
    LIST_FILES,
    MATH,
    read_rest,
    read_until,
    run_turn,
    start_held,
    user,
)


def history(session_json: dict) -> list[str]:  # type: ignore[type-arg]
    return [m["message"]["content"] for m in session_json["messages"]]


async def texts(mgr: SessionManager, session_id: str) -> list[str]:
    return [m.message.content for m in (await mgr.get_session(session_id)).chat_messages()]


async def test_a_turn_on_one_manager_makes_the_other_refuse_writes(
    open_manager: OpenManager,
) -> None:
    async with open_manager(server_id="one") as one, open_manager(server_id="two") as two:
        s = await one.create_session({})
        await run_turn(two, s.id, "hello")  # two has a runtime (and a copy)
        stream, _ = await start_held(one, s.id)  # one's turn waits for an approval

        with pytest.raises(SessionBusy):
            await two.run_session(s.id, DEFAULT_AGENT, "", user(MATH))
        for write in (
            two.add_message(s.id, {"message": {"role": "user", "content": "x"}}),
            two.add_summary(s.id, "summary"),
            two.update_session_title(s.id, "renamed"),
            two.follow_up_session(s.id, user(MATH)),
            two.set_session_agent_model(s.id, ""),
        ):
            with pytest.raises(SessionBusy):
                await write
        status = await two.get_session_status(s.id)
        assert status["streaming"]
        assert status["activity"] == {"state": "running_on_another_server", "server": "one"}
        assert (await two.get_session_snapshot(s.id))["streaming"]
        stored = await one.get_session(s.id)
        assert stored.title != "renamed" and "x" not in await texts(one, s.id)  # none landed

        await one.resume_session(s.id, "approve")
        await read_rest(stream)
        # The lease went back to the store before the run's last event: free on two at once.
        assert not (await two.get_session_status(s.id))["streaming"]
        seen_by_one = await texts(one, s.id)
        assert await texts(two, s.id) == seen_by_one  # two reloaded its copy

        await run_turn(two, s.id, MATH)  # the lease is free again
        assert (await texts(two, s.id))[: len(seen_by_one)] == seen_by_one
        assert await texts(one, s.id) == await texts(two, s.id)
        snapshot = await one.get_session_snapshot(s.id)
        assert [m["message"]["content"] for m in snapshot["messages"]] == await texts(two, s.id)


async def test_the_next_turn_runs_on_the_history_another_manager_wrote(
    open_manager: OpenManager,
) -> None:
    async with open_manager(server_id="one") as one, open_manager(server_id="two") as two:
        s = await one.create_session({})
        await run_turn(one, s.id, "hello")
        await run_turn(two, s.id, LIST_FILES)  # right after one's last event
        await two.update_session_title(s.id, "named on two")
        await two.set_session_starred(s.id, True)

        events = await run_turn(one, s.id, MATH)  # one's runtime is from before two's turn
        assert events[-1]["type"] == "stream_stopped" and events[-1]["reason"] == "normal"
        session = await one.get_session(s.id)
        assert session.title == "named on two" and session.starred
        users = [m.message.content for m in session.chat_messages() if m.message.role == "user"]
        assert users == ["hello", LIST_FILES, MATH]  # one tool result each, none lost
        calls = [c.id for m in session.chat_messages() for c in m.message.tool_calls or []]
        results = [
            m.message.tool_call_id for m in session.chat_messages() if m.message.role == "tool"
        ]
        assert sorted(calls) == sorted(results)
        assert await texts(two, s.id) == [m.message.content for m in session.chat_messages()]


async def test_a_dead_process_lease_is_taken_over_at_once(open_manager: OpenManager) -> None:
    """The owner of a lease that was a process of this machine, now gone, is not waited for;
    another machine's lease is, until it expires."""
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await child.wait()  # reaped: its pid is free, as a killed server's is
    async with open_manager(server_id="two") as two:
        s = await two.create_session({})
        await two.store.acquire_lease(s.id, "elsewhere:1:abc", 60)
        with pytest.raises(SessionBusy):
            await two.run_session(s.id, DEFAULT_AGENT, "", user(MATH))
        await two.store.release_lease(s.id, "elsewhere:1:abc")

        await two.store.acquire_lease(s.id, f"{socket.gethostname()}:{child.pid}:abc", 60)
        events = await run_turn(two, s.id, MATH)
        assert events[-1]["reason"] == "normal"
        assert (await two.store.session_head(s.id)).lease_owner is None  # given back


@pytest.mark.parametrize("given_back", [False, True])
async def test_a_manager_that_lost_its_lease_stops_without_writing(
    open_manager: OpenManager, given_back: bool
) -> None:
    """A server stalled past its lease's expiry finds another owner, or the lease free again
    after another server's turn: its turn stops, and nothing of it reaches the store any
    more (its renewal does not take the session back)."""
    async with open_manager(server_id="one", lease_ttl=5, lease_renew_interval=0.05) as one:
        s = await one.create_session({})
        stream, _ = await start_held(one, s.id)
        assert await one.store.acquire_lease(s.id, "two", 60, replacing="one")  # taken over
        if given_back:
            await one.store.release_lease(s.id, "two")
        version = (await one.store.session_head(s.id)).version
        events = await read_rest(stream)
        assert events[-1]["type"] == "stream_stopped"
        head = await one.store.session_head(s.id)
        assert (head.version, head.lease_owner) == (version, None if given_back else "two")
        if not given_back:
            with pytest.raises(SessionBusy):
                await one.run_session(s.id, DEFAULT_AGENT, "", user(MATH))
            await one.store.release_lease(s.id, "two")
        events = await run_turn(one, s.id, MATH)  # free again: one's copy is fresh and runs
        assert events[-1]["reason"] == "normal"


async def test_the_lease_is_free_when_the_last_event_arrives(open_manager: OpenManager) -> None:
    """The lease goes back to the store before the run's final ``stream_stopped``: a client
    that has read it may run the session on another server at once, turn after turn."""
    async with open_manager(server_id="one") as one, open_manager(server_id="two") as two:
        s = await one.create_session({})
        file = sqlite3.connect(one.config.db_path)
        for turn in range(4):
            owner, other = (one, two) if turn % 2 == 0 else (two, one)
            watcher = await owner.subscribe_events(s.id, since=owner.last_event_seq(s.id)[0])
            stream = await owner.run_session(s.id, DEFAULT_AGENT, "", user(MATH))
            # Poll the log every loop iteration and read the file the moment the last event
            # is there: nothing else has run since it was appended.
            deadline = asyncio.get_running_loop().time() + 10
            while "stream_stopped" not in [entry.type for entry in watcher.take_ready()]:
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0)
            query = "SELECT lease_owner FROM sessions WHERE id = ?"
            assert file.execute(query, (s.id,)).fetchone() == (None,)
            watcher.close()
            await read_rest(stream)
            assert not (await other.get_session_status(s.id))["streaming"]
            assert (await run_turn(other, s.id, "hello"))[-1]["reason"] == "normal"
        file.close()
        assert await texts(one, s.id) == await texts(two, s.id)


async def test_a_follow_up_queued_during_the_turn_keeps_the_lease(
    open_manager: OpenManager,
) -> None:
    async with open_manager(server_id="one") as one, open_manager(server_id="two") as two:
        s = await one.create_session({})
        stream, _ = await start_held(one, s.id)
        follow_up = "run `date`"  # its turn waits for an approval too
        assert (await one.follow_up_session(s.id, user(follow_up))).status == "queued_streaming"
        await one.resume_session(s.id, "approve")
        events = await read_until(stream, "stream_stopped")  # the first turn's end
        events += await read_until(stream, "tool_call_confirmation")
        # The run goes on with the follow-up, still holding the lease.
        with pytest.raises(SessionBusy):
            await two.run_session(s.id, DEFAULT_AGENT, "", user("hello"))
        await one.resume_session(s.id, "approve")
        events += await read_rest(stream)
        assert [e["reason"] for e in events if e["type"] == "stream_stopped"] == [
            "normal",
            "normal",
        ]
        assert follow_up in await texts(one, s.id)
        assert (await run_turn(two, s.id, "hello"))[-1]["reason"] == "normal"


async def test_a_write_after_the_lease_was_taken_over_is_refused_by_the_store(
    open_manager: OpenManager, caplog: pytest.LogCaptureFixture
) -> None:
    """A server that stalled past its lease's expiry, and has not renewed since, finds its
    next write refused by the store itself: its turn stops, logging one line, no traceback."""
    caplog.set_level(logging.INFO, logger="nbsession")
    async with open_manager(server_id="one", lease_ttl=60, lease_renew_interval=59) as one:
        s = await one.create_session({})
        stream, _ = await start_held(one, s.id)
        assert await one.store.acquire_lease(s.id, "two", 60, replacing="one")  # taken over
        version = (await one.store.session_head(s.id)).version

        await one.resume_session(s.id, "approve")  # the tool runs; its result is refused
        events = await read_rest(stream)
        assert events[-1]["type"] == "stream_stopped"
        assert "tool_call_response" not in [e["type"] for e in events]
        head = await one.store.session_head(s.id)
        assert (head.version, head.lease_owner) == (version, "two")
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in noisy] == [
        f"session {s.id}: another server took it over; this server's turn stops here"
    ]
    assert not any(r.exc_info for r in caplog.records)


async def test_a_follow_up_sent_while_the_lease_is_given_back_runs_next(
    open_manager: OpenManager,
) -> None:
    """A follow-up that arrives after the run stopped taking them (its lease is on its way
    back) is not lost: it starts the next run once this one has ended, taking the lease again."""
    async with open_manager(server_id="one") as one:
        s = await one.create_session({})
        entered, release = asyncio.Event(), asyncio.Event()
        original = one.store.release_lease

        async def release_lease(session_id: str, owner: str) -> None:
            entered.set()
            await release.wait()
            await original(session_id, owner)

        one.store.release_lease = release_lease  # type: ignore[method-assign]
        watcher = await one.subscribe_events(s.id, since=0)
        stream = await one.run_session(s.id, DEFAULT_AGENT, "", user("hello"))
        await asyncio.wait_for(entered.wait(), 10)  # the run is closing
        follow_up = asyncio.ensure_future(one.follow_up_session(s.id, user(MATH)))
        release.set()
        assert (await asyncio.wait_for(follow_up, 10)).status == "queued_streaming"
        first = await read_rest(stream)
        assert [e["type"] for e in first].count("stream_stopped") == 1  # not in that run
        events = await read_until(watcher, "stream_stopped")  # the first run
        events = await read_until(watcher, "stream_stopped")  # the follow-up's own run
        watcher.close()
        one.store.release_lease = original  # type: ignore[method-assign]
        assert [e["message"] for e in events if e["type"] == "user_message"] == [MATH]
        assert events[-1]["reason"] == "normal"
        assert (await one.store.session_head(s.id)).lease_owner is None
