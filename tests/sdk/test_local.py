"""``nbsession.local()`` in this process: the same API and the same errors as over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

import nbsession
from nbsession.sdk import display
from nbsession.sdk.errors import (
    InvalidRequest,
    SessionBusy,
    SessionNotRunning,
    TurnFailed,
    UnknownSession,
)
from nbsession.sdk.results import Pending
from nbsession.sdk.session import Turn, approval_hint


@pytest.fixture
def local() -> Iterator[nbsession.Client]:
    with nbsession.local() as client:
        yield client


def test_the_bundled_agent_runs_with_no_arguments(local: nbsession.Client) -> None:
    assert [a.name for a in local.agents()] == ["default", "jupyter"]
    session = local.create_session(title="local")
    result = session.run("what is 17*23")
    assert "391" in str(result) and result.ok
    newer = local.create_session()
    first = local.sessions(limit=1)
    assert [info.id for info in first] == [newer.id] and first.next_cursor
    assert [info.id for info in local.sessions(limit=1, before=first.next_cursor)] == [session.id]
    assert local.where == "local::memory:"


def test_same_typed_errors_as_http(local: nbsession.Client) -> None:
    with pytest.raises(UnknownSession) as unknown:
        local.session("nope")
    assert (unknown.value.code, unknown.value.status) == ("unknown_session", 404)
    session = local.create_session()
    with pytest.raises(InvalidRequest) as bad_model:
        session.run("hi", model="nosuchprovider/x")
    assert bad_model.value.status == 400
    with pytest.raises(SessionNotRunning) as idle:
        session.cancel()
    assert idle.value.status == 404
    turn = session.run("list the files", wait=False)
    with session.events() as events:
        next(e for e in events if e.type == "tool_call_confirmation")
    with pytest.raises(SessionBusy) as busy:
        session.run("again")
    assert busy.value.status == 409
    session.approve_session()
    result = turn.result(timeout=60)
    assert result.tool_calls[0].output and result.ok
    assert session.snapshot()["tools_approved"] is True


async def test_async_local_from_a_running_loop() -> None:
    client = await nbsession.AsyncClient.local()
    try:
        session = await client.create_session()
        asked = asyncio.Event()
        turn = await session.start("list the files", on_pending=lambda _: asked.set())
        pending = await asyncio.wait_for(turn.wait_pending(), 60)
        assert asked.is_set() and pending is not None and pending.tool == "shell"
        await session.reject("no")
        result = await turn.result()
        assert "rejected" in (result.tool_calls[0].output or "")
    finally:
        await client.aclose()


def test_a_failed_turn_raises_with_its_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    (tmp_path / "keyless.yaml").write_text(
        "agents:\n  root:\n    model: openai/gpt-4o-mini\n    instruction: answer\n"
    )
    with nbsession.local(agents_dir=str(tmp_path)) as client:
        session = client.create_session(agent="keyless")
        with pytest.raises(TurnFailed) as failed:
            session.run("hello")
    result = failed.value.result
    assert result.stop_reason == "error" and "OPENAI_API_KEY" in (result.error or "")
    assert "OPENAI_API_KEY" in str(failed.value)


async def test_cancelling_an_awaited_run_cancels_the_turn() -> None:
    client = await nbsession.AsyncClient.local()
    try:
        session = await client.create_session()
        running = asyncio.ensure_future(session.run("list the files"))
        stream = session.events()
        async for event in stream:
            if event.type == "tool_call_confirmation":
                break
        running.cancel()  # what an interrupted `await session.run(...)` cell does
        with pytest.raises(asyncio.CancelledError):
            await running
        async for event in stream:
            if event.type == "stream_stopped":
                assert event["reason"] == "canceled"
                break
        await stream.aclose()
        assert (await session.status())["streaming"] is False
    finally:
        await client.aclose()


def test_an_interrupt_while_the_pane_opens_cancels_the_turn(local: nbsession.Client) -> None:
    """The stop button can land between the turn's start and the wait for its end (here:
    while the pane opens); the turn must not go on waiting for an approval nobody expects."""

    def pressed_stop(session: nbsession.Session, turn: Turn) -> None:
        raise KeyboardInterrupt

    previous = display.set_pane_factory(pressed_stop)
    try:
        session = local.create_session()
        with pytest.raises(KeyboardInterrupt):
            session.run("list the files")
    finally:
        display.set_pane_factory(previous)
    with session.events(since=0) as events:
        stopped = next(e for e in events if e.type == "stream_stopped")
    assert stopped["reason"] == "canceled"
    assert session.status()["streaming"] is False


def test_the_waiting_hint_of_a_local_session_names_only_what_reaches_it() -> None:
    """No server serves a local() session: its hint offers no REST route, sidebar or kernel."""
    approval = Pending("approval", "s1", tool="shell", arguments={"cmd": "ls"})
    question = Pending("elicitation", "s1", message="Which city?")
    for pending in (approval, question):
        local = approval_hint(pending, "local::memory:")
        assert "REST" not in local and "sidebar" not in local and "local:" not in local
        assert "another thread of this kernel" in local
        served = approval_hint(pending, "http://127.0.0.1:8888/nbsession")
        assert "POST http://127.0.0.1:8888/nbsession/api/sessions/s1/" in served
    assert "session.approve()" in approval_hint(approval, "local::memory:")
