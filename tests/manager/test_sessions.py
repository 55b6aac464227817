"""The session manager's session API: everything a client does to sessions but run turns.

Most tests use a real SQLite file (``open_manager`` in conftest) and check persistence by
reopening it, as a server restart would. Turns run on the bundled offline agent ``default``:
"list the files" asks for approval (so a turn can be held open), "what is 17*23" calls the
read-only ``think`` tool, anything else is answered without a tool.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from nbsession.errors import (
    AgentInvalid,
    Conflict,
    InvalidModelRef,
    InvalidRequest,
    NotFound,
    SessionBusy,
    SessionNotReady,
    SessionNotRunning,
    UnknownAgent,
    UnknownSession,
)
from nbsession.eventlog import LogEntry
from nbsession.manager import SessionManager, TurnStream
from nbsession.session import Message, Permissions, SessionSummary, utc_now
from nbsession.store import MemoryStore
from nbsession.tools import build_toolsets

OpenManager = Callable[..., AbstractAsyncContextManager[SessionManager]]

TIMEOUT = 10.0
LIST = [{"role": "user", "content": "list the files"}]
MATH = [{"role": "user", "content": "what is 17*23"}]
HELLO = [{"role": "user", "content": "hello there"}]

MINE_YAML = """\
version: "2"
agents:
  root:
    model: demo/offline
    description: Only thinks
    toolsets:
      - type: think
    commands:
      hi: "hello"
"""
BROKEN_YAML = "agents: [this is: not yaml\n"


# -- helpers ------------------------------------------------------------------------------


def data(entry: LogEntry) -> dict[str, Any]:
    return json.loads(entry.data)


async def collect(stream: TurnStream) -> list[LogEntry]:
    """Every entry of a run stream, up to its end."""

    async def read() -> list[LogEntry]:
        return [entry async for entry in stream]

    return await asyncio.wait_for(read(), TIMEOUT)


async def read_until(stream: TurnStream, event_type: str) -> list[LogEntry]:
    async def read() -> list[LogEntry]:
        seen = []
        async for entry in stream:
            seen.append(entry)
            if entry.type == event_type:
                return seen
        raise AssertionError(f"no {event_type} in {[e.type for e in seen]}")

    return await asyncio.wait_for(read(), TIMEOUT)


async def run_turn(
    mgr: SessionManager, session_id: str, messages: list[dict[str, Any]]
) -> list[LogEntry]:
    """Run a whole turn of the default agent and return its events."""
    entries = await collect(await mgr.run_session(session_id, "default", "", messages))
    assert entries[-1].type == "stream_stopped"
    assert data(entries[-1])["reason"] == "normal"
    return entries


async def hold_turn(mgr: SessionManager, session_id: str) -> TurnStream:
    """A running turn, paused at the shell tool's confirmation."""
    stream = await mgr.run_session(session_id, "default", "", LIST)
    await read_until(stream, "tool_call_confirmation")
    return stream


async def release_turn(mgr: SessionManager, session_id: str, stream: TurnStream) -> None:
    await mgr.resume_session(session_id, "reject", "not now")
    entries = await collect(stream)
    assert entries[-1].type == "stream_stopped"


def chat(role: str, content: str) -> dict[str, Any]:
    return {"agentName": "", "message": {"role": role, "content": content}}


async def session_ids(mgr: SessionManager) -> list[str]:
    return [summary.id for summary in await mgr.get_sessions()]


# -- create_session -----------------------------------------------------------------------


async def test_a_notebook_path_inside_the_root_is_stored_relative_to_it(
    open_manager: OpenManager, tmp_path: Path
) -> None:
    """jupyter-server gives a kernel its notebook's absolute path (``JPY_SESSION_NAME``)."""
    outside = str(tmp_path.parent / "elsewhere" / "b.ipynb")
    cases = {
        str(tmp_path / "nb" / "a.ipynb"): "nb/a.ipynb",
        str(tmp_path / "nb" / ".." / "top.ipynb"): "top.ipynb",
        outside: outside,
        "docs/c.ipynb": "docs/c.ipynb",
        "": "",
    }
    async with open_manager() as mgr:
        for given, stored in cases.items():
            session = await mgr.create_session({"notebook_path": given, "kernel_id": "k-1"})
            assert session.notebook_path == stored, given
            assert (await mgr.get_session(session.id)).notebook_path == stored
    async with open_manager() as mgr:  # as stored, after a restart
        paths = {(await mgr.get_session(s.id)).notebook_path for s in await mgr.get_sessions()}
        assert paths == set(cases.values())


async def test_create_from_nothing_gives_an_empty_persisted_session(
    open_manager: OpenManager, tmp_path: Path
) -> None:
    async with open_manager() as mgr:
        before = utc_now()
        session = await mgr.create_session(None)
        assert session.id
        assert session.title == ""
        assert session.messages == []
        assert session.working_dir == str(tmp_path)  # the manager's default
        assert (session.input_tokens, session.output_tokens, session.cost) == (0, 0, 0.0)
        assert not session.tools_approved
        assert before <= session.created_at <= utc_now()
        other = await mgr.create_session({})
        assert other.id != session.id
    async with open_manager() as mgr:
        assert await mgr.get_session(session.id) == session
        assert sorted(await session_ids(mgr)) == sorted([session.id, other.id])


async def test_create_from_a_docker_agent_template_with_zero_values(
    open_manager: OpenManager, tmp_path: Path
) -> None:
    (tmp_path / "work").mkdir()
    template = {
        "id": "",
        "title": "  Release notes  ",
        "messages": None,
        "created_at": "0001-01-01T00:00:00Z",
        "thinking": False,
        "hide_tool_results": False,
        "tools_approved": True,
        "input_tokens": 0,
        "output_tokens": 0,
        "cost": 0,
        "max_iterations": 7,
        "starred": False,
        "permissions": {"allow": ["think"], "deny": ["shell"], "ask": None},
        "agent_model_overrides": {"root": "demo/slow"},
        "custom_models_used": None,
        "working_dir": "work",
        "send_user_message": True,  # a docker-agent field we do not know: ignored
    }
    async with open_manager() as mgr:
        before = utc_now()
        session = await mgr.create_session(template)
        assert session.id
        assert before <= session.created_at <= utc_now()
        assert session.messages == []
        assert session.title == "Release notes"
        assert session.tools_approved is True
        assert session.max_iterations == 7
        assert session.permissions == Permissions(allow=["think"], deny=["shell"])
        assert session.agent_model_overrides == {"root": "demo/slow"}
        assert session.working_dir == str(tmp_path / "work")
    async with open_manager() as mgr:
        assert await mgr.get_session(session.id) == session


async def test_create_ignores_server_owned_fields(
    open_manager: OpenManager, tmp_path: Path
) -> None:
    template = {
        "id": "chosen-by-client",
        "created_at": "2001-01-01T00:00:00Z",
        "messages": [chat("user", "smuggled")],
        "input_tokens": 99,
        "output_tokens": 5,
        "cost": 1.5,
        "starred": True,
        "parent_id": "someone",
        "working_dir": str(tmp_path),  # absolute: kept as is
    }
    async with open_manager() as mgr:
        before = utc_now()
        session = await mgr.create_session(template)
        assert session.id != "chosen-by-client"
        assert session.created_at >= before
        assert session.messages == []
        assert (session.input_tokens, session.output_tokens, session.cost) == (0, 0, 0.0)
        assert session.starred is False
        assert session.parent_id == ""
        assert session.working_dir == str(tmp_path)
        stored = await mgr.get_session(session.id)
        assert stored.messages == []
        assert not await mgr.store.has_session("chosen-by-client")


@pytest.mark.parametrize(
    "working_dir", ["..", "work/../..", "missing", "a-file.txt", 5, ["work"], {"a": 1}]
)
async def test_create_refuses_a_bad_working_dir(
    open_manager: OpenManager, tmp_path: Path, working_dir: Any
) -> None:
    (tmp_path / "work").mkdir()
    (tmp_path / "a-file.txt").write_text("not a directory")
    async with open_manager() as mgr:
        with pytest.raises(InvalidRequest) as info:
            await mgr.create_session({"working_dir": working_dir})
        assert info.value.field == "working_dir"
        assert await mgr.get_sessions() == []


@pytest.mark.parametrize(
    ("permissions", "field"),
    [({"allow": "shell"}, "permissions.allow"), ({"deny": [1]}, "permissions.deny.0")],
)
async def test_create_refuses_bad_permissions(
    open_manager: OpenManager, permissions: Any, field: str
) -> None:
    async with open_manager() as mgr:
        with pytest.raises(InvalidRequest) as info:
            await mgr.create_session({"permissions": permissions})
        assert info.value.field == field
        with pytest.raises(InvalidRequest) as info:
            await mgr.create_session({"permissions": "allow everything"})
        assert info.value.field is not None
        assert info.value.field.split(".")[0] == "permissions"
        assert await mgr.get_sessions() == []


@pytest.mark.parametrize("template", [[], "title", 3, [("title", "x")]])
async def test_create_refuses_a_template_that_is_not_an_object(
    open_manager: OpenManager, template: Any
) -> None:
    async with open_manager() as mgr:
        with pytest.raises(InvalidRequest):
            await mgr.create_session(template)
        assert await mgr.get_sessions() == []


@pytest.mark.parametrize(
    ("template", "field"),
    [
        ({"title": 12}, "title"),
        ({"title": ["a"]}, "title"),
        ({"max_iterations": "many"}, "max_iterations"),
        ({"max_iterations": -1}, "max_iterations"),
        ({"tools_approved": "maybe"}, "tools_approved"),
        ({"agent_model_overrides": ["demo/slow"]}, "agent_model_overrides"),
    ],
)
async def test_create_refuses_fields_of_the_wrong_type(
    open_manager: OpenManager, template: dict[str, Any], field: str
) -> None:
    async with open_manager() as mgr:
        with pytest.raises(InvalidRequest) as info:
            await mgr.create_session(template)
        assert info.value.field == field
        assert await mgr.get_sessions() == []


# -- reading and deleting ------------------------------------------------------------------


async def test_get_sessions_lists_summaries_newest_first(
    open_manager: OpenManager, tmp_path: Path
) -> None:
    async with open_manager() as mgr:
        first = await mgr.create_session({"title": "first"})
        second = await mgr.create_session({"title": "second"})
        third = await mgr.create_session({"title": "third"})
        await mgr.add_message(second.id, chat("user", "hi"))
        await mgr.add_message(second.id, chat("assistant", "hello"))
        await mgr.add_summary(second.id, "they said hello")  # not a message
        await mgr.update_session_tokens(third.id, 12, 34, 0.5)
        await mgr.set_session_starred(first.id, True)
        summaries = await mgr.get_sessions()
    assert all(isinstance(s, SessionSummary) for s in summaries)
    assert [s.id for s in summaries] == [third.id, second.id, first.id]
    by_title = {s.title: s for s in summaries}
    assert by_title["second"].num_messages == 2
    assert by_title["first"].num_messages == 0
    assert (by_title["third"].input_tokens, by_title["third"].output_tokens) == (12, 34)
    assert by_title["first"].starred and not by_title["second"].starred
    assert all(s.working_dir == str(tmp_path) for s in summaries)
    assert by_title["first"].created_at == first.created_at


async def test_get_session_of_an_unknown_id(open_manager: OpenManager) -> None:
    async with open_manager() as mgr:
        with pytest.raises(UnknownSession):
            await mgr.get_session("nope")


async def test_delete_session_is_final_everywhere(open_manager: OpenManager) -> None:
    async with open_manager() as mgr:
        doomed = await mgr.create_session({"title": "doomed"})
        kept = await mgr.create_session({"title": "kept"})
        message = await mgr.add_message(doomed.id, chat("user", "hi"))
        subscription = await mgr.subscribe_events(doomed.id)
        await mgr.delete_session(doomed.id)
        entries = await asyncio.wait_for(_read_all(subscription), TIMEOUT)
        assert [e.type for e in entries] == ["session_exited"]
        assert data(entries[0])["reason"] == "session deleted"
        assert await mgr.wait_stopped(doomed.id, TIMEOUT) is True
        assert await session_ids(mgr) == [kept.id]
        sid = doomed.id
        calls: list[Callable[[], Awaitable[Any]]] = [
            lambda: mgr.get_session(sid),
            lambda: mgr.delete_session(sid),
            lambda: mgr.update_session_title(sid, "x"),
            lambda: mgr.update_session_permissions(sid, {"allow": ["think"]}),
            lambda: mgr.update_session_tokens(sid, 1, 1),
            lambda: mgr.set_session_starred(sid, True),
            lambda: mgr.toggle_tool_approval(sid),
            lambda: mgr.add_message(sid, chat("user", "x")),
            lambda: mgr.update_message(sid, message.id, chat("user", "x")),
            lambda: mgr.add_summary(sid, "x"),
            lambda: mgr.fork_session(sid, 0),
            lambda: mgr.export_session_for_recovery(sid),
            lambda: mgr.get_session_status(sid),
            lambda: mgr.get_session_snapshot(sid),
            lambda: mgr.subscribe_events(sid),
            lambda: mgr.run_session(sid, "default", "", HELLO),
        ]
        for call in calls:
            with pytest.raises(UnknownSession):
                await call()
        assert await session_ids(mgr) == [kept.id]
    async with open_manager() as mgr:
        assert await session_ids(mgr) == [kept.id]
        with pytest.raises(UnknownSession):
            await mgr.get_session(sid)


async def test_delete_a_session_while_its_turn_runs(open_manager: OpenManager) -> None:
    async with open_manager() as mgr:
        session = await mgr.create_session()
        subscription = await mgr.subscribe_events(session.id)
        stream = await hold_turn(mgr, session.id)
        await mgr.delete_session(session.id)
        assert await mgr.wait_stopped(session.id, TIMEOUT) is True
        rest = await collect(stream)
        assert rest[-1].type == "stream_stopped"
        assert data(rest[-1])["reason"] == "canceled"
        entries = await asyncio.wait_for(_read_all(subscription), TIMEOUT)
        assert entries[-1].type == "session_exited"
        assert data(entries[-1])["reason"] == "session deleted"
        assert "stream_stopped" in [e.type for e in entries]
        assert (await mgr.ready_status())["active_sessions"] == 0
        with pytest.raises(UnknownSession):
            await mgr.get_session(session.id)
        assert await mgr.get_sessions() == []


async def _read_all(subscription: Any) -> list[LogEntry]:
    return [entry async for entry in subscription]


async def test_batch_delete_reports_unknown_ids(open_manager: OpenManager) -> None:
    async with open_manager() as mgr:
        one = await mgr.create_session()
        two = await mgr.create_session()
        kept = await mgr.create_session()
        result = await mgr.batch_delete_sessions([one.id, "nope", two.id])
        assert result == {"deleted_count": 2, "failed_count": 1, "failed_ids": ["nope"]}
        assert await session_ids(mgr) == [kept.id]
        for bad in ([], kept.id, [1], None):
            with pytest.raises(InvalidRequest) as info:
                await mgr.batch_delete_sessions(bad)  # type: ignore[arg-type]
            assert info.value.field == "session_ids"
        assert await session_ids(mgr) == [kept.id]
    async with open_manager() as mgr:
        assert await session_ids(mgr) == [kept.id]


async def test_batch_export(open_manager: OpenManager) -> None:
    async with open_manager() as mgr:
        one = await mgr.create_session({"title": "one"})
        two = await mgr.create_session({"title": "two"})
        await mgr.add_message(two.id, chat("user", "hello"))
        result = await mgr.batch_export_sessions([two.id, one.id])
        assert result["export_format"] == "json"
        assert result["session_count"] == 2
        assert datetime.fromisoformat(result["timestamp"].replace("Z", "+00:00")) >= one.created_at
        assert [s["id"] for s in result["sessions"]] == [two.id, one.id]
        assert result["sessions"][0] == await mgr.export_session_for_recovery(two.id)
        assert result["sessions"][0]["messages"][0]["message"]["message"]["content"] == "hello"
        for bad in ([], one.id, [one.id, 2]):
            with pytest.raises(InvalidRequest):
                await mgr.batch_export_sessions(bad)  # type: ignore[arg-type]
        with pytest.raises(UnknownSession):
            await mgr.batch_export_sessions([one.id, "nope"])


# -- export / import ----------------------------------------------------------------------


async def _rich_session(mgr: SessionManager) -> str:
    """A session with every kind of stored state: messages, usage, summary, settings."""
    session = await mgr.create_session(
        {
            "title": "Rich",
            "permissions": {"allow": ["think"], "ask": ["todo_*"]},
            "max_iterations": 5,
        }
    )
    await run_turn(mgr, session.id, MATH)
    await mgr.add_summary(session.id, "The user asked for 17*23.", 1)
    await mgr.set_session_agent_model(session.id, "demo/slow")
    await mgr.set_session_starred(session.id, True)
    return session.id


async def test_export_import_round_trip(open_manager: OpenManager, tmp_path: Path) -> None:
    async with open_manager() as mgr:
        sid = await _rich_session(mgr)
        exported = await mgr.export_session_for_recovery(sid)
        assert exported["recovery_version"] == 1
        assert exported["input_tokens"] > 0
        assert exported["agent_model_overrides"] == {"root": "demo/slow"}
        imported = await mgr.import_session(exported)
        assert imported.id != sid  # the id is taken on this server
        again = await mgr.export_session_for_recovery(imported.id)
        assert {k: v for k, v in again.items() if k != "id"} == {
            k: v for k, v in exported.items() if k != "id"
        }
        assert len(await mgr.get_sessions()) == 2
    # Into another server, the id is free and kept.
    async with open_manager(db_path=str(tmp_path / "other.db")) as other:
        assert await other.wait_ready(0.01) is False
        restored = await other.import_session(exported)
        assert restored.id == sid
        assert await other.wait_ready(TIMEOUT) is True
    async with open_manager(db_path=str(tmp_path / "other.db")) as other:
        assert await other.export_session_for_recovery(sid) == exported
        # A restored session keeps working (on the fast model: the override is demo/slow).
        stream = await other.run_session(sid, "default", "", HELLO, model="demo/offline")
        assert (await collect(stream))[-1].type == "stream_stopped"
        assert len((await other.get_session(sid)).messages) == len(exported["messages"]) + 2


async def test_import_does_not_reuse_a_deleted_or_empty_id(open_manager: OpenManager) -> None:
    async with open_manager() as mgr:
        session = await mgr.create_session({"title": "gone"})
        exported = await mgr.export_session_for_recovery(session.id)
        await mgr.delete_session(session.id)
        restored = await mgr.import_session(exported)
        assert restored.title == "gone"
        blank = await mgr.import_session({**exported, "id": ""})
        assert blank.id
        assert len({restored.id, blank.id, session.id}) == 3
        assert sorted(await session_ids(mgr)) == sorted([restored.id, blank.id])


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"title": "no version"}, "recovery_version"),
        ({"recovery_version": 2, "title": "future"}, "recovery_version"),
        ({"recovery_version": "1", "title": "string"}, "recovery_version"),
        ({"recovery_version": True, "title": "boolean"}, "recovery_version"),
        ({"recovery_version": 1, "messages": "oops"}, "messages"),
        ({"recovery_version": 1, "created_at": "yesterday"}, "created_at"),
        ([], None),
        ("recovery", None),
        ({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, None),
    ],
)
async def test_a_bad_import_creates_nothing(
    open_manager: OpenManager, data: Any, field: str | None
) -> None:
    async with open_manager() as mgr:
        existing = await mgr.create_session()
        with pytest.raises(InvalidRequest) as info:
            await mgr.import_session(data)
        if field is not None:
            assert info.value.field == field
        assert await session_ids(mgr) == [existing.id]


# -- session fields -----------------------------------------------------------------------


async def test_update_title(open_manager: OpenManager) -> None:
    async with open_manager() as mgr:
        session = await mgr.create_session({"title": "old"})
        updated = await mgr.update_session_title(session.id, "  new title ")
        assert updated.title == "new title"
        with pytest.raises(InvalidRequest) as info:
            await mgr.update_session_title(session.id, 5)  # type: ignore[arg-type]
        assert info.value.field == "title"
        with pytest.raises(UnknownSession):
            await mgr.update_session_title("nope", "x")
    async with open_manager() as mgr:
        assert (await mgr.get_session(session.id)).title == "new title"


async def test_a_title_set_on_a_live_session_is_not_overwritten(
    open_manager: OpenManager,
) -> None:
    async with open_manager() as mgr:
        session = await mgr.create_session()
        await run_turn(mgr, session.id, MATH)
        assert (await mgr.get_session(session.id)).title  # generated by the first turn
        await mgr.update_session_title(session.id, "Mine")
        assert (await mgr.get_session(session.id)).title == "Mine"
        await run_turn(mgr, session.id, HELLO)
        assert (await mgr.get_session(session.id)).title == "Mine"
    async with open_manager() as mgr:
        assert (await mgr.get_session(session.id)).title == "Mine"


async def test_update_permissions(open_manager: OpenManager) -> None:
    async with open_manager() as mgr:
        session = await mgr.create_session()
        await mgr.update_session_permissions(session.id, {"allow": ["think"], "deny": ["sh*"]})
        expected = Permissions(allow=["think"], deny=["sh*"])
        assert (await mgr.get_session(session.id)).permissions == expected
        for bad, field in (({"allow": "think"}, "permissions.allow"), ("all", "permissions")):
            with pytest.raises(InvalidRequest) as info:
                await mgr.update_session_permissions(session.id, bad)  # type: ignore[arg-type]
            assert info.value.field == field
        assert (await mgr.get_session(session.id)).permissions == expected
        with pytest.raises(UnknownSession):
            await mgr.update_session_permissions("nope", {"allow": []})
    async with open_manager() as mgr:
        assert (await mgr.get_session(session.id)).permissions == expected
        await mgr.update_session_permissions(session.id, Permissions(ask=["*"]))
        assert (await mgr.get_session(session.id)).permissions == Permissions(ask=["*"])
        await mgr.update_session_permissions(session.id, None)
    async with open_manager() as mgr:
        assert (await mgr.get_session(session.id)).permissions is None


async def test_update_tokens(open_manager: OpenManager) -> None:
    async with open_manager() as mgr:
        session = await mgr.create_session()
        await mgr.update_session_tokens(session.id, 10, 20, 1)
        bad_calls = [
            ((-1, 0, 0.0), "input_tokens"),
            (("3", 0, 0.0), "input_tokens"),
            ((True, 0, 0.0), "input_tokens"),
            ((0, 1.5, 0.0), "output_tokens"),
            ((0, 0, -0.1), "cost"),
            ((0, 0, "free"), "cost"),
        ]
        for args, field in bad_calls:
            with pytest.raises(InvalidRequest) as info:
                await mgr.update_session_tokens(session.id, *args)  # type: ignore[arg-type]
            assert info.value.field == field
        with pytest.raises(UnknownSession):
            await mgr.update_session_tokens("nope", 1, 1)
    async with open_manager() as mgr:
        stored = await mgr.get_session(session.id)
        assert (stored.input_tokens, stored.output_tokens, stored.cost) == (10, 20, 1.0)


async def test_set_starred(open_manager: OpenManager) -> None:
    async with open_manager() as mgr:
        session = await mgr.create_session()
        await mgr.set_session_starred(session.id, True)
        for bad in ("yes", 1, None):
            with pytest.raises(InvalidRequest) as info:
                await mgr.set_session_starred(session.id, bad)  # type: ignore[arg-type]
            assert info.value.field == "starred"
        with pytest.raises(UnknownSession):
            await mgr.set_session_starred("nope", True)
    async with open_manager() as mgr:
        assert (await mgr.get_session(session.id)).starred is True
        await mgr.set_session_starred(session.id, False)
        assert (await mgr.get_session(session.id)).starred is False


async def test_toggle_tool_approval(open_manager: OpenManager) -> None:
    async with open_manager() as mgr:
        session = await mgr.create_session()
        assert await mgr.toggle_tool_approval(session.id) is True
        with pytest.raises(UnknownSession):
            await mgr.toggle_tool_approval("nope")
    async with open_manager() as mgr:
        assert (await mgr.get_session(session.id)).tools_approved is True
        assert await mgr.toggle_tool_approval(session.id) is False
    async with open_manager() as mgr:
        assert (await mgr.get_session(session.id)).tools_approved is False


# -- messages -----------------------------------------------------------------------------


async def test_add_message(open_manager: OpenManager) -> None:
    async with open_manager() as mgr:
        session = await mgr.create_session()
        added = await mgr.add_message(session.id, chat("assistant", "hi"))
        assert isinstance(added, Message) and added.id
        with pytest.raises(InvalidRequest) as info:
            await mgr.add_message(session.id, chat("robot", "beep"))
        assert info.value.field == "message.message.role"
        with pytest.raises(InvalidRequest):
            await mgr.add_message(session.id, "hi")  # type: ignore[arg-type]
        with pytest.raises(UnknownSession):
            await mgr.add_message("nope", chat("user", "x"))
    async with open_manager() as mgr:
        stored = await mgr.get_session(session.id)
        assert stored.chat_messages() == [added]
        assert stored.chat_messages()[0].message.content == "hi"


async def test_update_message(open_manager: OpenManager) -> None:
    async with open_manager() as mgr:
        session = await mgr.create_session()
        first = await mgr.add_message(session.id, chat("user", "helo"))
        second = await mgr.add_message(session.id, chat("assistant", "hi"))
        updated = await mgr.update_message(session.id, first.id, chat("user", "hello"))
        assert updated.id == first.id
        with pytest.raises(NotFound):
            await mgr.update_message(session.id, "no-such-message", chat("user", "x"))
        with pytest.raises(InvalidRequest):
            await mgr.update_message(session.id, first.id, chat("robot", "x"))
        with pytest.raises(InvalidRequest):
            await mgr.update_message(session.id, first.id, "text")  # type: ignore[arg-type]
        with pytest.raises(UnknownSession):
            await mgr.update_message("nope", first.id, chat("user", "x"))
    async with open_manager() as mgr:
        stored = (await mgr.get_session(session.id)).chat_messages()
        assert [m.id for m in stored] == [first.id, second.id]
        assert [m.message.content for m in stored] == ["hello", "hi"]


async def test_history_edits_conflict_with_a_running_turn(open_manager: OpenManager) -> None:
    async with open_manager() as mgr:
        session = await mgr.create_session()
        stream = await hold_turn(mgr, session.id)
        before = await mgr.get_session(session.id)
        user_id = before.chat_messages()[0].id
        edits: list[Callable[[], Awaitable[Any]]] = [
            lambda: mgr.add_message(session.id, chat("user", "sneaky")),
            lambda: mgr.update_message(session.id, user_id, chat("user", "sneaky")),
            lambda: mgr.add_summary(session.id, "sneaky"),
        ]
        for edit in edits:
            with pytest.raises(Conflict) as info:
                await edit()
            assert info.value.code == "conflict"
        assert await mgr.get_session(session.id) == before
        await release_turn(mgr, session.id, stream)
        stored = await mgr.get_session(session.id)
        assert "sneaky" not in json.dumps(stored.to_json())
        await mgr.update_message(session.id, user_id, chat("user", "list my files"))
        assert (await mgr.get_session(session.id)).chat_messages()[0].message.content == (
            "list my files"
        )


async def test_add_summary_validation(open_manager: OpenManager) -> None:
    async with open_manager() as mgr:
        session = await mgr.create_session()
        for bad in ("", "   ", 5, None):
            with pytest.raises(InvalidRequest) as info:
                await mgr.add_summary(session.id, bad)  # type: ignore[arg-type]
            assert info.value.field == "summary"
        for bad_entry in (-1, True, "2", 1.0):
            with pytest.raises(InvalidRequest) as info:
                await mgr.add_summary(session.id, "ok", bad_entry)  # type: ignore[arg-type]
            assert info.value.field == "first_kept_entry"
        with pytest.raises(UnknownSession):
            await mgr.add_summary("nope", "ok")
        assert (await mgr.get_session(session.id)).messages == []
        await mgr.add_summary(session.id, "so far: nothing", 0)
    async with open_manager() as mgr:
        items = (await mgr.get_session(session.id)).messages
        assert [(i.summary, i.first_kept_entry) for i in items] == [("so far: nothing", 0)]


async def test_a_summary_replaces_earlier_history_in_the_model_context(
    open_manager: OpenManager,
) -> None:
    def call_id(entries: list[LogEntry]) -> str:
        return next(data(e)["tool_call"]["id"] for e in entries if e.type == "tool_call")

    async with open_manager() as mgr:
        session = await mgr.create_session()
        # The offline model numbers its tool calls by the calls it sees in its context.
        assert call_id(await run_turn(mgr, session.id, MATH)) == "call_1"
        assert call_id(await run_turn(mgr, session.id, MATH)) == "call_2"
        await mgr.add_summary(session.id, "The user asked for 17*23 twice: 391.")
        entries = await run_turn(mgr, session.id, MATH)
        assert call_id(entries) == "call_1"  # the calls before the summary are gone
        assert "391" in "".join(data(e).get("content", "") for e in entries)
        stored = await mgr.get_session(session.id)
        assert sum(1 for item in stored.messages if item.summary) == 1
        assert stored.messages[-1].message is not None
        assert stored.messages[-1].message.message.role == "assistant"


# -- fork ---------------------------------------------------------------------------------


async def test_fork_copies_history_before_the_chosen_user_message(
    open_manager: OpenManager,
) -> None:
    async with open_manager() as mgr:
        parent = await mgr.create_session({"title": "Plan", "tools_approved": True})
        for role, content in [("user", "u1"), ("assistant", "a1"), ("user", "u2")]:
            await mgr.add_message(parent.id, chat(role, content))
        await mgr.add_message(parent.id, chat("assistant", "a2"))
        before = await mgr.get_session(parent.id)

        fork = await mgr.fork_session(parent.id, 1)
        assert fork.id != parent.id
        assert fork.title == "Plan (fork 1)"
        assert fork.parent_id == parent.id
        assert [m.message.content for m in fork.chat_messages()] == ["u1", "a1"]
        assert fork.tools_approved is True
        empty = await mgr.fork_session(parent.id, 0)
        assert empty.title == "Plan (fork 2)"
        assert empty.messages == []
        nested = await mgr.fork_session(fork.id, 0)
        assert nested.title == "Plan (fork 1) (fork 1)"
        third = await mgr.fork_session(parent.id, 1)
        assert third.title == "Plan (fork 3)"

        for bad in (-1, 2, "1", True, None, 1.0):
            with pytest.raises(InvalidRequest) as info:
                await mgr.fork_session(parent.id, bad)  # type: ignore[arg-type]
            assert info.value.field == "user_message_index"
        with pytest.raises(UnknownSession):
            await mgr.fork_session("nope", 0)
        assert await mgr.get_session(parent.id) == before
        # Editing the fork leaves the parent alone.
        await mgr.update_message(fork.id, fork.chat_messages()[0].id, chat("user", "changed"))
        assert await mgr.get_session(parent.id) == before
    async with open_manager() as mgr:
        stored = await mgr.get_session(fork.id)
        assert [m.message.content for m in stored.chat_messages()] == ["changed", "a1"]
        assert len(await mgr.get_sessions()) == 5


# -- live state ---------------------------------------------------------------------------


async def test_status_of_a_session_that_never_ran(open_manager: OpenManager) -> None:
    async with open_manager() as mgr:
        session = await mgr.create_session({"title": "Quiet"})
        await mgr.add_message(session.id, chat("user", "hi"))
        await mgr.update_session_tokens(session.id, 3, 4)
        status = await mgr.get_session_status(session.id)
        assert status == {
            "id": session.id,
            "title": "Quiet",
            "streaming": False,
            "agent": "",
            "input_tokens": 3,
            "output_tokens": 4,
            "num_messages": 1,
        }
        with pytest.raises(SessionNotReady):
            await mgr.get_session_status(session.id, wait=0.05)
        with pytest.raises(UnknownSession):
            await mgr.get_session_status("nope")


async def test_status_wait_returns_once_a_run_attaches_the_session(
    open_manager: OpenManager,
) -> None:
    async with open_manager() as mgr:
        session = await mgr.create_session()
        waiter = asyncio.ensure_future(mgr.get_session_status(session.id, wait=TIMEOUT))
        attached = asyncio.ensure_future(mgr.wait_session_attached(session.id, TIMEOUT))
        stream = await hold_turn(mgr, session.id)
        status = await asyncio.wait_for(waiter, TIMEOUT)
        assert await asyncio.wait_for(attached, TIMEOUT) is True
        assert status["agent"] == "root"
        assert status["streaming"] is True
        await release_turn(mgr, session.id, stream)
        status = await mgr.get_session_status(session.id, wait=0.01)
        assert status["streaming"] is False
        assert status["num_messages"] == len((await mgr.get_session(session.id)).messages)
        assert status["input_tokens"] > 0


async def test_snapshot(open_manager: OpenManager) -> None:
    async with open_manager() as mgr:
        session = await mgr.create_session({"title": "Snap"})
        snapshot = await mgr.get_session_snapshot(session.id)
        assert snapshot["last_event_seq"] == 0
        assert snapshot["messages"] == []
        assert snapshot["streaming"] is False and snapshot["agent"] == ""
        assert snapshot["id"] == session.id and snapshot["title"] == "Snap"

        entries = await run_turn(mgr, session.id, MATH)
        snapshot = await mgr.get_session_snapshot(session.id)
        assert snapshot["last_event_seq"] == entries[-1].seq == mgr.last_event_seq(session.id)[0]
        stored = await mgr.get_session(session.id)
        assert snapshot["messages"] == [m.to_json() for m in stored.chat_messages()]
        assert snapshot["messages"][0]["message"]["content"] == "what is 17*23"
        assert snapshot["input_tokens"] == stored.input_tokens > 0
        assert snapshot["streaming"] is False and snapshot["agent"] == "root"

        assert snapshot["pending"] is None
        assert (snapshot["kernel_id"], snapshot["notebook_path"]) == ("", "")

        stream = await mgr.run_session(session.id, "default", "", LIST)
        asked = (await read_until(stream, "tool_call_confirmation"))[-1]
        held = await mgr.get_session_snapshot(session.id)
        assert held["streaming"] is True
        assert held["last_event_seq"] == mgr.last_event_seq(session.id)[0] == asked.seq
        assert held["last_event_seq"] > snapshot["last_event_seq"]
        # A client arriving now shows the approval prompt from the snapshot alone.
        assert held["pending"] == json.loads(asked.data)
        assert held["pending"]["tool_call"]["function"]["name"] == "shell"
        await release_turn(mgr, session.id, stream)
        assert (await mgr.get_session_snapshot(session.id))["pending"] is None
        with pytest.raises(UnknownSession):
            await mgr.get_session_snapshot("nope")


async def test_queue_status(open_manager: OpenManager) -> None:
    async with open_manager(steer_capacity=3, followup_capacity=2) as mgr:
        session = await mgr.create_session()
        assert await mgr.queue_status(session.id) == {
            "steer": {"depth": 0, "capacity": 3},
            "followup": {"depth": 0, "capacity": 2},
        }
        stream = await hold_turn(mgr, session.id)
        assert (await mgr.queue_status(session.id)) == {
            "steer": {"depth": 0, "capacity": 3},
            "followup": {"depth": 0, "capacity": 2},
        }
        await mgr.steer_session(session.id, HELLO)
        result = await mgr.follow_up_session(session.id, HELLO)
        assert result.status == "queued_streaming"
        assert (await mgr.queue_status(session.id)) == {
            "steer": {"depth": 1, "capacity": 3},
            "followup": {"depth": 1, "capacity": 2},
        }
        await release_turn(mgr, session.id, stream)
        assert (await mgr.queue_status(session.id))["followup"]["depth"] == 0
        assert (await mgr.queue_status(session.id))["steer"]["depth"] == 0


# -- models -------------------------------------------------------------------------------


async def test_available_session_models(open_manager: OpenManager) -> None:
    async with open_manager() as mgr:
        session = await mgr.create_session()
        with pytest.raises(SessionNotRunning):
            await mgr.available_session_models(session.id)
        await run_turn(mgr, session.id, HELLO)
        models = await mgr.available_session_models(session.id)
        assert models["agent"] == "root"
        assert models["current_model_ref"] == "demo/offline"
        assert models["models"] == [
            {
                "ref": "demo/offline",
                "name": "demo/offline",
                "provider": "demo",
                "model": "offline",
                "is_default": True,
                "is_current": True,
            }
        ]


async def test_set_session_agent_model(open_manager: OpenManager) -> None:
    async with open_manager() as mgr:
        session = await mgr.create_session()
        with pytest.raises(SessionNotRunning):
            await mgr.set_session_agent_model(session.id, "demo/slow")
        stream = await hold_turn(mgr, session.id)
        with pytest.raises(SessionBusy):
            await mgr.set_session_agent_model(session.id, "demo/slow")
        await release_turn(mgr, session.id, stream)
        assert (await mgr.get_session(session.id)).agent_model_overrides == {}

        assert await mgr.set_session_agent_model(session.id, "demo/slow") == ("root", "demo/slow")
        models = await mgr.available_session_models(session.id)
        assert models["current_model_ref"] == "demo/slow"
        flags = {m["ref"]: (m["is_default"], m["is_current"]) for m in models["models"]}
        assert flags == {"demo/offline": (True, False), "demo/slow": (False, True)}
        for bad in ("nonsense", "bogus/model", "  "):
            with pytest.raises(InvalidModelRef):
                await mgr.set_session_agent_model(session.id, bad)
        stored = await mgr.get_session(session.id)
        assert stored.agent_model_overrides == {"root": "demo/slow"}
        assert (await mgr.available_session_models(session.id))["current_model_ref"] == (
            "demo/slow"
        )
    async with open_manager() as mgr:
        stored = await mgr.get_session(session.id)
        assert stored.agent_model_overrides == {"root": "demo/slow"}
        # After a restart the session needs a runtime again: run once, on the fast model.
        stream = await mgr.run_session(session.id, "default", "", HELLO, model="demo/offline")
        await collect(stream)
        assert await mgr.set_session_agent_model(session.id, "") == ("root", "")
        assert (await mgr.available_session_models(session.id))["current_model_ref"] == (
            "demo/offline"
        )
    async with open_manager() as mgr:
        assert (await mgr.get_session(session.id)).agent_model_overrides == {}


# -- agents -------------------------------------------------------------------------------


async def _tool_count(*types: str) -> int:
    toolsets = build_toolsets((type_, {}) for type_ in types)
    try:
        return sum([len(await toolset.tools()) for toolset in toolsets])
    finally:
        for toolset in toolsets:
            await toolset.close()


async def test_agents(open_manager: OpenManager, agents_dir: Path) -> None:
    (agents_dir / "mine.yaml").write_text(MINE_YAML)
    (agents_dir / "broken.yaml").write_text(BROKEN_YAML)
    async with open_manager() as mgr:
        listed = {info.name: info for info in mgr.list_agents()}
        # broken, listed with its error; default and jupyter are bundled
        assert list(listed) == ["broken", "default", "jupyter", "mine"]
        assert listed["broken"].error is not None
        assert listed["mine"].error is None
        assert listed["default"].commands == ["ls", "math"]
        assert listed["default"].multi is False
        assert listed["mine"].description == "Only thinks"

        config = mgr.get_agent_config("default")
        [root] = config["agents"]
        assert root["name"] == "root" and root["model"] == "demo/offline"
        types = [t["type"] for t in root["toolsets"]]
        assert types == ["shell", "think", "todo"]
        with pytest.raises(UnknownAgent):
            mgr.get_agent_config("missing")
        with pytest.raises(AgentInvalid):
            mgr.get_agent_config("broken")

        expected = await _tool_count("shell", "think", "todo")
        assert expected >= 3
        assert await mgr.get_agent_tool_count("default") == expected
        assert await mgr.get_agent_tool_count("default", "root") == expected
        assert await mgr.get_agent_tool_count("mine") == await _tool_count("think") == 1
        with pytest.raises(UnknownAgent):
            await mgr.get_agent_tool_count("default", "nobody")
        with pytest.raises(UnknownAgent):
            await mgr.get_agent_tool_count("missing")
        with pytest.raises(AgentInvalid):
            await mgr.get_agent_tool_count("broken")


# -- readiness ----------------------------------------------------------------------------


async def test_ready_status(open_manager: OpenManager) -> None:
    async with open_manager() as mgr:
        assert await mgr.ready_status() == {
            "ready": True,
            "active_sessions": 0,
            "store_connected": True,
            "latest_error": "",
        }
        session = await mgr.create_session()
        await run_turn(mgr, session.id, HELLO)
        assert (await mgr.ready_status())["active_sessions"] == 1


async def test_wait_ready(open_manager: OpenManager) -> None:
    async with open_manager() as mgr:
        assert await mgr.wait_ready(0.05) is False
        waiter = asyncio.ensure_future(mgr.wait_ready(TIMEOUT))
        await mgr.create_session()
        assert await asyncio.wait_for(waiter, TIMEOUT) is True
        assert await mgr.wait_ready(0) is True
    async with open_manager() as mgr:  # a store that already holds sessions
        assert await mgr.wait_ready(0) is True


async def test_wait_ready_on_a_memory_store(open_manager: OpenManager) -> None:
    store = MemoryStore()
    async with open_manager(store=store) as mgr:
        assert await mgr.wait_ready(0.01) is False
        session = await mgr.create_session()
        assert await mgr.wait_ready(0.01) is True
        assert await mgr.wait_session_attached(session.id, 0.01) is False


async def test_wait_session_attached(open_manager: OpenManager) -> None:
    async with open_manager() as mgr:
        session = await mgr.create_session()
        assert await mgr.wait_session_attached(session.id, 0.01) is False
        await run_turn(mgr, session.id, HELLO)
        assert await mgr.wait_session_attached(session.id, 0) is True
        start = utc_now()
        assert await mgr.wait_session_attached(session.id, TIMEOUT) is True
        assert utc_now() - start < timedelta(seconds=1)


async def test_runtime_routes_tell_an_unknown_id_from_an_idle_session(
    open_manager: OpenManager,
) -> None:
    async with open_manager() as mgr:
        idle = await mgr.create_session({})
        calls = [
            lambda sid: mgr.resume_session(sid, "approve"),
            lambda sid: mgr.resume_elicitation(sid, "accept"),
            lambda sid: mgr.steer_session(sid, [{"content": "hi"}]),
            lambda sid: mgr.available_session_models(sid),
        ]
        for call in calls:
            with pytest.raises(UnknownSession):
                await call("no-such-session")
            with pytest.raises(SessionNotRunning) as err:
                await call(idle.id)
            assert err.value.code == "session_not_running"


async def test_idle_follow_ups_show_on_the_queue_and_feed_the_next_run(
    open_manager: OpenManager,
) -> None:
    async with open_manager() as mgr:
        session = await mgr.create_session({})
        with pytest.raises(UnknownSession):
            await mgr.queue_status("no-such-session")
        result = await mgr.follow_up_session(session.id, [{"content": "what is 2*3"}])
        assert result.status == "queued_idle"
        queue = await mgr.queue_status(session.id)
        assert queue["followup"]["depth"] == 1
        stream = await mgr.run_session(session.id, "default", "", [{"content": "hello"}])
        kinds = [json.loads(entry.data) async for entry in stream]
        users = [e["message"] for e in kinds if e["type"] == "user_message"]
        assert users == ["hello", "what is 2*3"]
        assert (await mgr.queue_status(session.id))["followup"]["depth"] == 0


async def test_an_override_that_no_longer_resolves_falls_back_to_the_default(
    open_manager: OpenManager,
) -> None:
    async with open_manager() as mgr:
        session = await mgr.create_session({"agent_model_overrides": {"root": "nope/x"}})
        stream = await mgr.run_session(session.id, "default", "", [{"content": "hello"}])
        events = [json.loads(entry.data) async for entry in stream]
        assert events[0]["type"] == "agent_info" and events[0]["model"] == "demo/offline"
        [warning] = [e for e in events if e["type"] == "warning"]
        assert "nope/x" in warning["message"] and "demo/offline" in warning["message"]
        assert events[-1]["type"] == "stream_stopped" and events[-1]["reason"] == "normal"
        assert "error" not in [e["type"] for e in events]
        models = await mgr.available_session_models(session.id)
        assert models["current_model_ref"] == "demo/offline"
        assert [m["ref"] for m in models["models"] if m["is_current"]] == ["demo/offline"]
        assert all(m["ref"] != "nope/x" for m in models["models"])
        assert any(m["ref"] == "demo/offline" and m["is_default"] for m in models["models"])
        await mgr.set_session_agent_model(session.id, "")
        models = await mgr.available_session_models(session.id)
        assert models["current_model_ref"] == "demo/offline"
