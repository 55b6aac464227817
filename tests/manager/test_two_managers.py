"""Two managers on one SQLite file (SPEC 10): one runs a session's turn, the other waits.

The turn's owner holds a lease in the store; the other answers ``session_busy`` to runs and
to writes, shows the session as streaming, and reloads its in-memory copy once the session
changed, so both see one history. The process-level version of this is
``tests/server/test_two_servers.py``.
"""

from __future__ import annotations

import asyncio
import socket
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
    run_turn,
    start_held,
    user,
)


def history(session_json: dict) -> list[str]:  # type: ignore[type-arg]
    return [m["message"]["content"] for m in session_json["messages"]]


async def texts(mgr: SessionManager, session_id: str) -> list[str]:
    return [m.message.content for m in (await mgr.get_session(session_id)).chat_messages()]


async def streaming_ends(mgr: SessionManager, session_id: str, timeout: float = 10.0) -> bool:
    """Whether ``mgr`` sees the session stop streaming within ``timeout`` (synchronisation:
    the owner gives its lease back a moment after the turn's last event)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while (await mgr.get_session_status(session_id))["streaming"]:
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def run_turn_released(
    mgr: SessionManager, other: SessionManager, session_id: str, text: str
) -> None:
    """Run a turn on ``mgr`` to its end, then wait until ``other`` sees its lease given back."""
    await run_turn(mgr, session_id, text)
    assert await streaming_ends(other, session_id)


async def test_a_turn_on_one_manager_makes_the_other_refuse_writes(
    open_manager: OpenManager,
) -> None:
    async with open_manager(server_id="one") as one, open_manager(server_id="two") as two:
        s = await one.create_session({})
        await run_turn_released(two, one, s.id, "hello")  # two has a runtime (and a copy)
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
        # The lease goes back to the store just after the run's last event.
        assert await streaming_ends(two, s.id)
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
        await run_turn_released(one, two, s.id, "hello")
        await run_turn_released(two, one, s.id, LIST_FILES)
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


async def test_a_manager_that_lost_its_lease_stops_without_writing(
    open_manager: OpenManager,
) -> None:
    """A server stalled past its lease's expiry finds another owner: its turn stops, and
    nothing of it reaches the store any more."""
    async with open_manager(server_id="one", lease_ttl=5, lease_renew_interval=0.05) as one:
        s = await one.create_session({})
        stream, _ = await start_held(one, s.id)
        assert await one.store.acquire_lease(s.id, "two", 60, replacing="one")  # taken over
        version = (await one.store.session_head(s.id)).version
        events = await read_rest(stream)
        assert events[-1]["type"] == "stream_stopped"
        head = await one.store.session_head(s.id)
        assert (head.version, head.lease_owner) == (version, "two")
        with pytest.raises(SessionBusy):
            await one.run_session(s.id, DEFAULT_AGENT, "", user(MATH))
        await one.store.release_lease(s.id, "two")
        events = await run_turn(one, s.id, MATH)  # free again: one's copy is fresh and runs
        assert events[-1]["reason"] == "normal"
