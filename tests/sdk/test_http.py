"""The SDK against a real server over HTTP: turns, approvals from elsewhere, typed errors."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import nbsession
from nbsession.sdk import ConnectionFailed, Event, EventStream, ServerNotFound, TurnResult
from nbsession.sdk.errors import (
    InvalidRequest,
    NBSessionError,
    SessionBusy,
    Unauthorized,
    UnknownSession,
)
from tests.server.test_live_server import Server

from .conftest import EXT_TOKEN, SERVER_TOKEN


def test_a_turn_returns_its_answer(client: nbsession.Client) -> None:
    session = client.create_session()
    result = client.session(session.id).run("what is 17*23")
    assert isinstance(result, TurnResult)
    assert "391" in str(result)
    assert result.stop_reason == "normal" and result.ok
    assert [(c.name, c.output) for c in result.tool_calls] == [("think", "Thought recorded.")]
    assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0
    assert result.title
    seqs = [e.seq for e in result.events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert result.events[-1].type == "stream_stopped"
    listed = client.sessions()
    assert listed[0].id == session.id and listed[0].title == result.title


def test_approval_from_another_thread_while_run_blocks(
    client: nbsession.Client, caplog: pytest.LogCaptureFixture
) -> None:
    session = client.create_session()
    approver = client.session(session.id)
    watching = session.events()

    def approve_when_asked() -> None:
        for event in watching:
            if event.type == "tool_call_confirmation":
                approver.approve()
                return

    thread = threading.Thread(target=approve_when_asked)
    thread.start()
    try:
        result = session.run("list the files")
    finally:
        thread.join(timeout=30)
        watching.close()
    (call,) = result.tool_calls
    assert (call.name, call.arguments, call.needed_approval) == ("shell", {"cmd": "ls -la"}, True)
    assert call.output and not call.is_error
    hints = [r for r in caplog.records if r.name == "nbsession.sdk"]  # logged, never printed
    assert [r.levelname for r in hints] == ["WARNING"]
    hint = hints[0].getMessage()
    assert hint.count("waits for approval: shell") == 1
    assert f"{client.where}/api/sessions/{session.id}/resume" in hint


def test_approval_over_rest_and_rejection(client: nbsession.Client, live: Server) -> None:
    session = client.create_session()
    turn = session.run("list the files", wait=False)
    pending = turn.wait_pending(timeout=60)
    assert pending is not None and (pending.tool, pending.arguments) == ("shell", {"cmd": "ls -la"})
    with live.client(SERVER_TOKEN) as http:
        reply = http.post(
            f"/api/sessions/{session.id}/resume",
            json={"confirmation": "reject", "reason": "not now"},
        )
        assert reply.status_code == 200
    result = turn.result(timeout=60)
    (call,) = result.tool_calls
    assert "rejected" in (call.output or "") and "not now" in (call.output or "")
    assert turn.done and turn.pending is None


def test_follow_up_steer_and_models(client: nbsession.Client) -> None:
    session = client.create_session()
    session.run("what is 17*23")
    assert session.models().current_model_ref
    queued = session.follow_up("what is 17*23", idempotency_key="k1")
    again = session.follow_up("what is 17*23", idempotency_key="k1")
    assert queued.status == "queued_streaming" and again.duplicate
    with session.events(since=session.snapshot()["last_event_seq"] - 1) as events:
        assert any(e.type == "stream_stopped" for e in events)
    user_messages = [m for m in session.messages() if m["message"]["role"] == "user"]
    assert len(user_messages) == 2


def test_export_import_rename_star_delete(client: nbsession.Client, tmp_path: Path) -> None:
    session = client.create_session(title="to export")
    session.run("what is 17*23")
    session.rename("exported")
    session.star()
    path = session.export_notebook(tmp_path / "s.ipynb")
    notebook = json.loads(Path(path).read_text())
    assert notebook["nbformat"] == 4
    copy = client.import_notebook(path)
    assert copy.id != session.id or copy.snapshot()["title"] == "exported"
    assert copy.messages() == session.messages()
    before = len(client.sessions())
    cut = tmp_path / "cut.ipynb"
    cut.write_text(Path(path).read_text()[:-40])
    with pytest.raises(ValueError, match=r"cut\.ipynb is truncated: its JSON stops after"):
        client.import_notebook(cut)
    assert len(client.sessions()) == before
    info = next(s for s in client.sessions() if s.id == session.id)
    assert (info.title, info.starred) == ("exported", True)
    session.delete()
    with pytest.raises(UnknownSession):
        session.snapshot()


def test_typed_errors(client: nbsession.Client, live: Server) -> None:
    with pytest.raises(UnknownSession) as unknown:
        client.session("no-such-session")
    assert (unknown.value.code, unknown.value.status) == ("unknown_session", 404)

    session = client.create_session()
    with pytest.raises(InvalidRequest) as bad_model:
        session.run("hello", model="nosuchprovider/model")
    assert bad_model.value.status == 400 and "nosuchprovider" in bad_model.value.message
    assert session.messages() == []  # nothing was appended

    turn = session.run("list the files", wait=False)
    with session.events() as events:
        next(e for e in events if e.type == "tool_call_confirmation")
    with pytest.raises(SessionBusy) as busy:
        session.run("again")
    assert (busy.value.code, busy.value.status) == ("session_busy", 409)
    session.cancel()
    assert turn.result(timeout=60).stop_reason == "canceled"

    with pytest.raises(Unauthorized) as refused:
        nbsession.connect(live.url, "wrong-token")
    assert refused.value.status == 401
    assert isinstance(refused.value, NBSessionError)


def test_connection_failures_name_the_url(live: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConnectionFailed) as failed:
        nbsession.connect("http://127.0.0.1:9", EXT_TOKEN)
    assert "http://127.0.0.1:9/nbsession" in str(failed.value)
    for name in ("NBSESSION_URL", "JPY_PARENT_PID", "JUPYTER_RUNTIME_DIR"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ServerNotFound) as missing:
        nbsession.connect()
    assert "NBSESSION_URL" in str(missing.value)
    monkeypatch.setenv("NBSESSION_URL", live.url.removesuffix("/nbsession"))
    monkeypatch.setenv("NBSESSION_TOKEN", EXT_TOKEN)
    with nbsession.connect() as from_env:
        assert from_env.where == live.url
        assert [a.name for a in from_env.agents()] == ["default", "jupyter"]


async def test_async_client(live: Server) -> None:
    async with await nbsession.AsyncClient.connect(live.url, EXT_TOKEN) as client:
        session = await client.create_session()
        result = await session.run("what is 17*23")
        assert "391" in str(result)
        seen = [e.seq async for e in _until_stopped(session.events(since=0))]
        assert seen == [e.seq for e in result.events]


async def _until_stopped(stream: EventStream) -> AsyncIterator[Event]:
    async for event in stream:
        yield event
        if event.type == "stream_stopped":
            await stream.aclose()


def test_sessions_page_by_page(client: nbsession.Client) -> None:
    created = [client.create_session(title=f"page {i}").id for i in range(5)]
    newest_first = created[::-1]
    seen: list[str] = []
    page = client.sessions(limit=2)
    while True:
        assert len(page) <= 2
        seen += [info.id for info in page]
        if page.next_cursor is None or len(seen) >= 5:
            break
        page = client.sessions(limit=2, before=page.next_cursor)
    assert seen[:5] == newest_first
