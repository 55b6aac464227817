"""Idle runtimes beyond ``max_live_runtimes`` are released and rebuilt on use, invisibly."""

from __future__ import annotations

import json

from nbsession.eventlog import LogEntry
from nbsession.manager import SessionManager

from .conftest import OpenManager
from .turn_helpers import OPENING


async def run(mgr: SessionManager, session_id: str, text: str) -> list[LogEntry]:
    stream = await mgr.run_session(session_id, "default", "", [{"content": text}])
    return [entry async for entry in stream]


async def test_a_released_session_comes_back_with_its_numbering(open_manager: OpenManager) -> None:
    async with open_manager(max_live_runtimes=1) as mgr:
        a = await mgr.create_session({})
        b = await mgr.create_session({})
        last_a = (await run(mgr, a.id, "hello"))[-1].seq
        assert last_a is not None
        await run(mgr, b.id, "hello")  # only one runtime is kept: a, idle, is released

        assert mgr.last_event_seq(a.id) == (last_a, False)
        assert (await mgr.get_session_status(a.id))["agent"] == "root"
        assert (await mgr.get_session_snapshot(a.id))["last_event_seq"] == last_a
        assert (await mgr.available_session_models(a.id))["agent"] == "root"  # rebuilt

        again = await run(mgr, a.id, "what is 17*23")
        assert [entry.seq for entry in again] == list(range(last_a + 1, last_a + 1 + len(again)))
        assert json.loads(again[-1].data)["type"] == "stream_stopped"
        history = [i.message.message.content for i in (await mgr.get_session(a.id)).messages]
        assert history[0] == "hello" and "what is 17*23" in history

        # Events from before the release are gone from memory: resuming there is a gap.
        subscription = await mgr.subscribe_events(a.id, since=last_a - 1)
        assert subscription.take_ready()[0].type == "gap"
        subscription.close()


async def test_a_log_still_being_read_is_kept(open_manager: OpenManager) -> None:
    async with open_manager(max_live_runtimes=1) as mgr:
        a = await mgr.create_session({})
        b = await mgr.create_session({})
        last_a = (await run(mgr, a.id, "hello"))[-1].seq
        watcher = await mgr.subscribe_events(a.id, since=last_a)
        await run(mgr, b.id, "hello")  # a's runtime is released, its log is not
        assert (await mgr.ready_status())["active_sessions"] == 1
        assert mgr.last_event_seq(a.id) == (last_a, True)

        await run(mgr, a.id, "again")
        seen = []
        async for entry in watcher:
            seen.append(entry)
            if entry.type == "stream_stopped":
                break
        watcher.close()
        assert seen[0].seq == last_a + 1
        assert [e.seq for e in seen] == list(range(last_a + 1, last_a + 1 + len(seen)))


async def test_follow_ups_to_a_released_session_start_a_turn(open_manager: OpenManager) -> None:
    async with open_manager(max_live_runtimes=1) as mgr:
        a = await mgr.create_session({})
        b = await mgr.create_session({})
        last_a = (await run(mgr, a.id, "hello"))[-1].seq
        await run(mgr, b.id, "hello")
        result = await mgr.follow_up_session(a.id, [{"content": "and now?"}])
        assert result.status == "queued_streaming"
        subscription = await mgr.subscribe_events(a.id, since=last_a)
        types = []
        async for entry in subscription:
            types.append(entry.type)
            if entry.type == "stream_stopped":
                break
        subscription.close()
        assert types[:4] == [*OPENING, "user_message"] and types[-1] == "stream_stopped"
