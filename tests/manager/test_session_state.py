"""A session's lifecycle on one server, as ``SessionManager.session_phase`` reports it.

idle -> starting -> running -> idle -> released (its runtime dropped) -> idle again on use ->
running -> stopping (deleted mid-turn) -> deleted; and a deleted session holds nothing but its
tombstone.
"""

from __future__ import annotations

import asyncio

from nbsession.session_state import Phase

from .conftest import OpenManager
from .test_races import spin_until
from .turn_helpers import DEFAULT_AGENT, read_rest, read_until, run_turn, start_held, user


async def test_a_session_walks_through_its_phases(open_manager: OpenManager) -> None:
    async with open_manager(max_live_runtimes=1) as mgr:
        a = await mgr.create_session({})
        assert mgr.session_phase(a.id) is Phase.IDLE

        starting = asyncio.ensure_future(
            mgr.run_session(a.id, DEFAULT_AGENT, "", user("list the files"))
        )
        await spin_until(lambda: mgr.session_phase(a.id) is Phase.STARTING)
        assert (await mgr.get_session_status(a.id))["streaming"]
        stream = await starting
        await read_until(stream, "tool_call_confirmation")
        assert mgr.session_phase(a.id) is Phase.RUNNING
        await mgr.resume_session(a.id, "approve")
        await read_rest(stream)
        assert mgr.session_phase(a.id) is Phase.IDLE

        b = await mgr.create_session({})
        await run_turn(mgr, b.id, "hello")  # one runtime kept: a's, idle, is released
        assert mgr.session_phase(a.id) is Phase.RELEASED
        assert (await mgr.available_session_models(a.id))["agent"] == "root"  # rebuilt
        assert mgr.session_phase(a.id) is Phase.IDLE

        stream, _ = await start_held(mgr, a.id)
        await mgr.delete_session(a.id)
        assert mgr.session_phase(a.id) is Phase.STOPPING
        await read_rest(stream)
        assert await mgr.wait_stopped(a.id, 10)
        assert mgr.session_phase(a.id) is Phase.DELETED


async def test_deleting_forgets_everything_but_the_tombstone(open_manager: OpenManager) -> None:
    async with open_manager() as mgr:
        s = await mgr.create_session({})
        await run_turn(mgr, s.id, "hello")
        await mgr.follow_up_session(s.id, user("later"), idempotency_key="k1")
        await mgr.cancel_session(s.id)
        await mgr.delete_session(s.id)
        assert await mgr.wait_stopped(s.id, 10)
        state = mgr._sessions[s.id]  # the one entry a session has in the manager
        assert state.phase is Phase.DELETED
        assert (state.live, state.log, state.binding, state.pump) == (None, None, None, None)
        assert not state.idle_followups and not state.idempotency
