"""The manager's event API: per-session logs, subscriptions, out-of-band runtimes (SPEC 3).

Turns run on the bundled offline agent ``default``; "list the files" holds a turn at its
tool confirmation. Some tests use a ``MemoryStore``: the log does not depend on the store.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from nbsession.errors import InvalidRequest, UnknownSession
from nbsession.eventlog import GAP, EventSubscription, LogEntry
from nbsession.manager import SessionManager, TurnStream
from nbsession.runtime.loop import AgentRuntime
from nbsession.store import MemoryStore

from .turn_helpers import OPENING

OpenManager = Callable[..., AbstractAsyncContextManager[SessionManager]]

TIMEOUT = 10.0
LIST = [{"role": "user", "content": "list the files"}]
MATH = [{"role": "user", "content": "what is 17*23"}]
HELLO = [{"role": "user", "content": "hello there"}]


def data(entry: LogEntry) -> dict[str, Any]:
    return json.loads(entry.data)


def seqs(entries: list[LogEntry]) -> list[int | None]:
    return [entry.seq for entry in entries]


async def collect(stream: TurnStream | EventSubscription) -> list[LogEntry]:
    async def read() -> list[LogEntry]:
        return [entry async for entry in stream]

    return await asyncio.wait_for(read(), TIMEOUT)


async def read_until(
    stream: TurnStream | EventSubscription, stop: Callable[[LogEntry], bool]
) -> list[LogEntry]:
    async def read() -> list[LogEntry]:
        seen = []
        async for entry in stream:
            seen.append(entry)
            if stop(entry):
                return seen
        raise AssertionError(f"stream ended early: {[e.type for e in seen]}")

    return await asyncio.wait_for(read(), TIMEOUT)


def of_type(event_type: str) -> Callable[[LogEntry], bool]:
    return lambda entry: entry.type == event_type


async def run_turn(mgr: SessionManager, session_id: str, messages: Any) -> list[LogEntry]:
    entries = await collect(await mgr.run_session(session_id, "default", "", messages))
    assert entries[-1].type == "stream_stopped"
    return entries


# -- subscribe_events ---------------------------------------------------------------------


async def test_subscribe_to_an_unknown_or_deleted_session(open_manager: OpenManager) -> None:
    async with open_manager(store=MemoryStore()) as mgr:
        with pytest.raises(UnknownSession):
            await mgr.subscribe_events("nope")
        assert mgr.has_event_source("nope") is False
        session = await mgr.create_session()
        await mgr.delete_session(session.id)
        with pytest.raises(UnknownSession):
            await mgr.subscribe_events(session.id)


async def test_subscribing_creates_the_log_of_a_session_that_never_ran(
    open_manager: OpenManager,
) -> None:
    async with open_manager() as mgr:
        session = await mgr.create_session()
        assert mgr.has_event_source(session.id) is False
        assert mgr.last_event_seq(session.id) == (0, False)
        subscription = await mgr.subscribe_events(session.id)
        assert mgr.has_event_source(session.id) is True
        assert mgr.last_event_seq(session.id) == (0, True)
        assert subscription.take_ready() == []
        # The first run writes to that same log, from seq 1.
        turn = await run_turn(mgr, session.id, HELLO)
        seen = await read_until(subscription, lambda e: e.seq == turn[-1].seq)
        assert seqs(seen) == list(range(1, len(seen) + 1))
        assert [e.type for e in seen[:4]] == [*OPENING, "user_message"]
        assert data(seen[3])["message"] == "hello there"


async def test_replay_since_a_seq_then_tail(open_manager: OpenManager) -> None:
    async with open_manager() as mgr:
        session = await mgr.create_session()
        first = await run_turn(mgr, session.id, MATH)
        last = first[-1].seq
        assert last is not None and last > 4
        everything = await mgr.subscribe_events(session.id)
        from_three = await mgr.subscribe_events(session.id, since=3)
        caught_up = await mgr.subscribe_events(session.id, since=last)
        assert seqs(everything.take_ready()) == list(range(1, last + 1))
        assert seqs(from_three.take_ready()) == list(range(4, last + 1))
        assert caught_up.take_ready() == []
        # A resume point the log never reached is a gap, not a silent wait.
        ahead = await mgr.subscribe_events(session.id, since=last + 100)
        assert ahead.take_ready()[0] is GAP

        second = await run_turn(mgr, session.id, HELLO)
        assert second[0].seq == last + 1
        tail = await read_until(caught_up, lambda e: e.seq == second[-1].seq)
        assert [(e.seq, e.data) for e in tail] == [(e.seq, e.data) for e in second]


async def test_run_stream_and_events_carry_the_same_ids(open_manager: OpenManager) -> None:
    async with open_manager() as mgr:
        session = await mgr.create_session()
        watcher = await mgr.subscribe_events(session.id)
        for messages in (MATH, LIST):
            stream = await mgr.run_session(session.id, "default", "", messages)
            if messages is LIST:  # held at the confirmation while both readers wait
                turn = await read_until(stream, of_type("tool_call_confirmation"))
                await mgr.resume_session(session.id, "reject")
                turn += await collect(stream)
            else:
                turn = await collect(stream)
            assert turn[-1].type == "stream_stopped"
            seen = await read_until(watcher, lambda e, end=turn[-1].seq: e.seq == end)
            assert [(e.seq, e.type, e.data) for e in seen] == [
                (e.seq, e.type, e.data) for e in turn
            ]
        assert mgr.last_event_seq(session.id) == (seen[-1].seq, True)


async def test_run_stream_and_events_agree_on_a_whole_turn(open_manager: OpenManager) -> None:
    async with open_manager(store=MemoryStore()) as mgr:
        session = await mgr.create_session()
        watcher = await mgr.subscribe_events(session.id)
        turn = await run_turn(mgr, session.id, MATH)
        seen = await read_until(watcher, of_type("stream_stopped"))
        assert [(e.seq, e.type, e.data) for e in turn] == [(e.seq, e.type, e.data) for e in seen]
        assert seqs(turn) == list(range(1, len(turn) + 1))
        types = [e.type for e in turn]
        for expected in ("user_message", "stream_started", "tool_call", "tool_call_response"):
            assert expected in types


# -- out-of-band sources ------------------------------------------------------------------


async def test_register_event_source_pumps_then_ends_the_log(open_manager: OpenManager) -> None:
    async with open_manager(store=MemoryStore()) as mgr:
        session = await mgr.create_session()
        release = asyncio.Event()

        async def source(send: Callable[[Mapping[str, Any]], None]) -> None:
            send({"type": "stream_started", "session_id": session.id})
            send({"type": "agent_choice", "content": "hi"})
            await release.wait()
            send({"type": "stream_stopped", "session_id": session.id})

        assert mgr.has_event_source(session.id) is False
        mgr.register_event_source(session.id, source)
        assert mgr.has_event_source(session.id) is True
        subscription = await mgr.subscribe_events(session.id)
        first = await read_until(subscription, of_type("agent_choice"))
        assert [(e.seq, e.type) for e in first] == [(1, "stream_started"), (2, "agent_choice")]
        assert data(first[1])["content"] == "hi"
        assert mgr.last_event_seq(session.id) == (2, True)

        release.set()
        rest = await collect(subscription)
        assert [(e.seq, e.type) for e in rest] == [(3, "stream_stopped"), (4, "session_exited")]
        assert data(rest[-1])["reason"] == "session ended"
        assert mgr.last_event_seq(session.id) == (4, True)
        # A late subscriber replays the whole, finished log.
        replay = await collect(await mgr.subscribe_events(session.id))
        assert seqs(replay) == [1, 2, 3, 4]


async def test_deleting_a_session_stops_its_event_source(open_manager: OpenManager) -> None:
    async with open_manager(store=MemoryStore()) as mgr:
        session = await mgr.create_session()
        never = asyncio.Event()
        stopped = asyncio.Event()

        async def source(send: Callable[[Mapping[str, Any]], None]) -> None:
            send({"type": "stream_started", "session_id": session.id})
            try:
                await never.wait()
            finally:
                stopped.set()

        mgr.register_event_source(session.id, source)
        subscription = await mgr.subscribe_events(session.id)
        await read_until(subscription, of_type("stream_started"))
        await mgr.delete_session(session.id)
        rest = await collect(subscription)
        assert [e.type for e in rest] == ["session_exited"]
        assert data(rest[0])["reason"] == "session deleted"
        await asyncio.wait_for(stopped.wait(), TIMEOUT)


async def test_shutdown_ends_every_log(open_manager: OpenManager) -> None:
    async with open_manager() as mgr:
        busy = await mgr.create_session()
        idle = await mgr.create_session()
        busy_events = await mgr.subscribe_events(busy.id)
        idle_events = await mgr.subscribe_events(idle.id)
        stream = await mgr.run_session(busy.id, "default", "", LIST)
        await read_until(stream, of_type("tool_call_confirmation"))
    # The held turn was cancelled, then each log got its final event.
    rest = await collect(stream)
    assert rest[-1].type == "stream_stopped"
    assert data(rest[-1])["reason"] == "canceled"
    busy_tail = await collect(busy_events)
    assert [e.type for e in busy_tail[-2:]] == ["stream_stopped", "session_exited"]
    assert data(busy_tail[-1])["reason"] == "server stopping"
    idle_tail = await collect(idle_events)
    assert [(e.seq, e.type) for e in idle_tail] == [(1, "session_exited")]
    assert data(idle_tail[0])["reason"] == "server stopping"


async def test_last_event_seq(open_manager: OpenManager) -> None:
    async with open_manager() as mgr:
        session = await mgr.create_session()
        assert mgr.last_event_seq(session.id) == (0, False)
        assert mgr.last_event_seq("nope") == (0, False)
        turn = await run_turn(mgr, session.id, HELLO)
        assert mgr.last_event_seq(session.id) == (turn[-1].seq, True)
        assert turn[-1].seq == len(turn)
        assert mgr.has_event_source(session.id) is True


async def test_stream_events(open_manager: OpenManager) -> None:
    async with open_manager() as mgr:
        session = await mgr.create_session()
        received: list[LogEntry] = []
        assert await mgr.stream_events(session.id, None, received.append) is False
        assert received == []
        assert mgr.has_event_source(session.id) is False  # asking did not create a log

        turn = await run_turn(mgr, session.id, MATH)
        since_two: list[LogEntry] = []
        task = asyncio.ensure_future(mgr.stream_events(session.id, None, received.append))
        task_since = asyncio.ensure_future(mgr.stream_events(session.id, 2, since_two.append))
        second = await run_turn(mgr, session.id, HELLO)
        await mgr.delete_session(session.id)
        assert await asyncio.wait_for(task, TIMEOUT) is True
        assert await asyncio.wait_for(task_since, TIMEOUT) is True
        last = second[-1].seq
        assert last is not None
        assert seqs(received) == list(range(1, last + 2))
        assert seqs(since_two) == list(range(3, last + 2))
        assert received[: len(turn)] == turn
        assert received[-1].type == "session_exited"
        assert data(received[-1])["reason"] == "session deleted"


# -- follow-up injector -------------------------------------------------------------------


async def test_follow_ups_go_through_a_registered_injector(open_manager: OpenManager) -> None:
    async with open_manager(store=MemoryStore()) as mgr:
        session = await mgr.create_session()
        delivered: list[str] = []

        async def injector(content: str) -> None:
            delivered.append(content)

        mgr.register_follow_up_injector(session.id, injector)
        messages = [
            {"role": "user", "content": "one"},
            {"role": "user", "content": "two"},
        ]
        result = await mgr.follow_up_session(session.id, messages, idempotency_key="k1")
        assert result.to_json() == {"status": "queued_streaming", "duplicate": False}
        assert delivered == ["one", "two"]
        again = await mgr.follow_up_session(session.id, messages, idempotency_key="k1")
        assert again.to_json() == {"status": "duplicate", "duplicate": True}
        assert delivered == ["one", "two"]
        # Not through the queue: the session has no runtime and nothing was stored.
        assert (await mgr.get_session(session.id)).messages == []
        assert mgr.has_event_source(session.id) is False


async def test_a_failing_injector_releases_the_idempotency_key(
    open_manager: OpenManager,
) -> None:
    async with open_manager(store=MemoryStore()) as mgr:
        session = await mgr.create_session()
        delivered: list[str] = []
        fail = True

        async def injector(content: str) -> None:
            if fail:
                raise RuntimeError("owner is gone")
            delivered.append(content)

        mgr.register_follow_up_injector(session.id, injector)
        with pytest.raises(RuntimeError):
            await mgr.follow_up_session(session.id, HELLO, idempotency_key="k")
        fail = False
        result = await mgr.follow_up_session(session.id, HELLO, idempotency_key="k")
        assert result.status == "queued_streaming"
        assert delivered == ["hello there"]


# -- attach_runtime -----------------------------------------------------------------------


async def test_attach_runtime(open_manager: OpenManager) -> None:
    async with open_manager() as mgr:
        session = await mgr.create_session()
        other = await mgr.create_session()
        waiter = asyncio.ensure_future(mgr.wait_session_attached(session.id, TIMEOUT))
        assert (await mgr.get_session_status(session.id))["agent"] == ""
        team = mgr.sources.get("default")
        runtime = await AgentRuntime.create(
            mgr.new_recorder(await mgr.get_session(session.id)), team, "root"
        )
        with pytest.raises(InvalidRequest) as info:
            mgr.attach_runtime(other.id, runtime)
        assert info.value.field == "session_id"
        assert await mgr.wait_session_attached(other.id, 0.01) is False

        mgr.attach_runtime(session.id, runtime)
        assert await asyncio.wait_for(waiter, TIMEOUT) is True
        assert await mgr.wait_session_attached(session.id, 0) is True
        status = await mgr.get_session_status(session.id, wait=0.01)
        assert status["agent"] == "root" and status["streaming"] is False
        assert (await mgr.available_session_models(session.id))["agent"] == "root"
        assert (await mgr.queue_status(session.id))["followup"]["depth"] == 0
        assert (await mgr.ready_status())["active_sessions"] == 1
        assert mgr.last_event_seq(session.id) == (0, True)

        # The manager runs its turns on the attached runtime and its log.
        watcher = await mgr.subscribe_events(session.id)
        turn = await run_turn(mgr, session.id, HELLO)
        assert runtime.run is not None and runtime.run.done.is_set()
        assert turn[0].seq == 1
        seen = await read_until(watcher, of_type("stream_stopped"))
        assert [e.data for e in seen] == [e.data for e in turn]
        assert (await mgr.get_session(session.id)).chat_messages()[0].message.content == (
            "hello there"
        )
        # A follow-up to the idle attached session starts its turn now.
        result = await mgr.follow_up_session(session.id, MATH)
        assert result.status == "queued_streaming"
        assert runtime.run is not None
        await asyncio.wait_for(runtime.run.done.wait(), TIMEOUT)
        followed = await read_until(watcher, of_type("stream_stopped"))
        assert [e.type for e in followed[:4]] == [*OPENING, "user_message"]
        assert data(followed[3])["message"] == "what is 17*23"
        assert (await mgr.get_session_status(session.id))["num_messages"] == 2 + 4
