"""What an operator sees: ``/status`` says what a turn is doing, and the log tells turns
apart without alarming anyone when a session is deleted under its turn."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from pathlib import Path

import pytest

from nbsession.manager import ManagerConfig, SessionManager
from nbsession.session import Item

from .conftest import OpenManager
from .turn_helpers import DEFAULT_AGENT, read_rest, read_until, run_turn, start_held, user


async def activity_becomes(mgr: SessionManager, session_id: str, state: str) -> dict:  # type: ignore[type-arg]
    """The status's activity once it reaches ``state`` (within a deadline)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:
        activity = (await mgr.get_session_status(session_id)).get("activity") or {}
        if activity.get("state") == state:
            return activity
        assert loop.time() < deadline, f"activity never became {state}: {activity}"
        await asyncio.sleep(0.01)


async def logged(caplog: pytest.LogCaptureFixture, prefix: str) -> None:
    """Until a record starting with ``prefix`` was logged (within a deadline)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not any(r.getMessage().startswith(prefix) for r in caplog.records):
        assert loop.time() < deadline, f"never logged: {prefix}"
        await asyncio.sleep(0.01)


async def test_status_says_what_the_turn_is_doing(
    open_manager: OpenManager, manager_config: ManagerConfig
) -> None:
    working_dir = Path(manager_config.working_dir)
    async with open_manager() as mgr:
        s = await mgr.create_session({})
        assert "activity" not in await mgr.get_session_status(s.id)

        # The command runs until the test lets it go.
        command = "while [ ! -e go ]; do sleep 0.02; done"
        stream, _ = await start_held(mgr, s.id, f"run `{command}`")
        waiting = (await mgr.get_session_status(s.id))["activity"]
        assert waiting["state"] == "waiting_for_approval" and waiting["tool"] == "shell"
        assert datetime.fromisoformat(waiting["since"].replace("Z", "+00:00"))
        assert waiting["duration"] >= 0

        await mgr.resume_session(s.id, "approve")
        running = await activity_becomes(mgr, s.id, "running_tool")
        assert running["tool"] == "shell" and running["since"] != waiting["since"]
        (working_dir / "go").touch()
        assert (await read_rest(stream))[-1]["reason"] == "normal"
        assert "activity" not in await mgr.get_session_status(s.id)

        slow = await mgr.run_session(s.id, DEFAULT_AGENT, "", user("hello"), model="demo/slow")
        await read_until(slow, "agent_choice")
        assert (await mgr.get_session_status(s.id))["activity"]["state"] == "model"
        slow.cancel()
        await read_rest(slow)


async def test_the_list_says_which_sessions_wait_for_an_answer(open_manager: OpenManager) -> None:
    async with open_manager() as mgr:
        waiting, idle = await mgr.create_session({}), await mgr.create_session({})
        stream, _ = await start_held(mgr, waiting.id)

        def activities(rows: list) -> dict:  # type: ignore[type-arg]
            return {row.id: row.activity for row in rows}

        listed = activities(await mgr.get_sessions())
        assert listed[idle.id] is None
        assert listed[waiting.id] is not None
        assert listed[waiting.id]["state"] == "waiting_for_approval"
        assert listed[waiting.id]["tool"] == "shell"
        assert "duration" not in listed[waiting.id]  # a row read every second stays the same
        newest, cursor = await mgr.get_session_page(1)
        older, _ = await mgr.get_session_page(1, cursor)
        assert activities([*newest, *older]) == listed

        await mgr.resume_session(waiting.id, "reject")
        await read_rest(stream)
        assert activities(await mgr.get_sessions()) == {waiting.id: None, idle.id: None}


async def test_turns_are_logged_at_info(
    open_manager: OpenManager, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="nbsession")
    async with open_manager() as mgr:
        s = await mgr.create_session({})
        await run_turn(mgr, s.id, "hello")
        await logged(caplog, f"session {s.id}: turn ended")  # once the run has finished
    lines = [r.getMessage() for r in caplog.records if r.name == "nbsession.manager"]
    assert f"session {s.id}: turn started (agent root)" in lines
    ended = [line for line in lines if line.startswith(f"session {s.id}: turn ended (normal)")]
    assert len(ended) == 1 and ended[0].endswith(" s")


@pytest.mark.parametrize("when", ["waiting_for_approval", "saving_the_answer"])
async def test_a_session_deleted_during_its_turn_logs_nothing_alarming(
    open_manager: OpenManager, caplog: pytest.LogCaptureFixture, when: str
) -> None:
    caplog.set_level(logging.INFO, logger="nbsession")
    async with open_manager() as mgr:
        s = await mgr.create_session({})
        if when == "waiting_for_approval":
            stream, _ = await start_held(mgr, s.id)
            await mgr.delete_session(s.id)
        else:
            original = mgr.store.append_item

            async def append_item(session_id: str, item: Item, owner: str = "") -> int:
                # The session goes away just as the model's answer is being committed.
                if item.message is not None and item.message.message.role == "assistant":
                    await mgr.delete_session(session_id)
                return await original(session_id, item, owner)

            mgr.store.append_item = append_item  # type: ignore[method-assign]
            stream = await mgr.run_session(s.id, DEFAULT_AGENT, "", user("hello"))
        events = await read_rest(stream)
        assert events[-1]["type"] == "stream_stopped"
        assert await mgr.wait_stopped(s.id, 10)
        await logged(caplog, f"session {s.id}: turn ended")
    alarming = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not alarming, [(r.name, r.getMessage(), r.exc_text) for r in alarming]
