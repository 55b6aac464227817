"""The store contract, run against both backends, plus what only SQLite promises.

pytest-jupyter runs the ``async def`` tests but has no async fixtures, so fixtures hand out
unopened stores and each test opens them with ``opened``.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, closing
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from nbsession.errors import (
    Conflict,
    InvalidRequest,
    LeaseLost,
    NotFound,
    StoreError,
    UnknownSession,
    UnstorableValue,
)
from nbsession.session import (
    META_FIELDS,
    ChatMessage,
    FunctionCall,
    Item,
    Message,
    Permissions,
    Session,
    ToolCall,
    Usage,
    user_message,
)
from nbsession.store import MemoryStore, SQLiteStore, Store, SummaryCursor, UndoEntry
from nbsession.store import sqlite as sqlite_module

T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "nested" / "sessions.db"  # the store creates the missing directory


@pytest.fixture(params=["memory", "sqlite"])
def make_store(request: pytest.FixtureRequest, db_path: Path) -> Callable[[], Store]:
    """A factory of unopened stores; SQLite ones share one file, so a second one reopens it."""
    if request.param == "memory":
        return MemoryStore
    return lambda: SQLiteStore(str(db_path))


@asynccontextmanager
async def opened(store: Store) -> AsyncIterator[Store]:
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def message_item(content: str = "hi", role: str = "user") -> Item:
    return Item(message=Message(agent_name="root", message=ChatMessage(role=role, content=content)))


def rich_session(created_at: datetime = T0, title: str = "rich") -> Session:
    """A session using every kind of item and every non-default setting."""
    tool_call = ToolCall(
        id="call-1", function=FunctionCall(name="shell", arguments='{"cmd": "ls"}')
    )
    assistant = ChatMessage(
        role="assistant",
        content="",
        reasoning_content="look first",
        tool_calls=[tool_call],
        usage=Usage(input_tokens=10, output_tokens=3, reasoning_tokens=1),
        model="openai/gpt-4o",
        cost=0.0125,
    )
    tool = ChatMessage(role="tool", content="a.txt", tool_call_id="call-1", is_error=False)
    sub = Session(title="sub", created_at=T0, messages=[message_item("sub task")], parent_id="p")
    return Session(
        title=title,
        created_at=created_at,
        messages=[
            Item(message=user_message("list files", agent_name="root")),
            Item(message=Message(agent_name="root", message=assistant)),
            Item(message=Message(agent_name="root", message=tool, implicit=True)),
            Item(sub_session=sub, cost=0.5),
            Item(summary="they listed files", first_kept_entry=2),
        ],
        tools_approved=True,
        hide_tool_results=True,
        working_dir="/tmp/work",
        max_iterations=7,
        starred=True,
        thinking=True,
        input_tokens=100,
        output_tokens=40,
        cost=1.25,
        permissions=Permissions(allow=["read_*"], ask=["shell"], deny=["rm*"]),
        agent_model_overrides={"root": "anthropic/claude-sonnet-4-0"},
        custom_models_used=["anthropic/claude-sonnet-4-0"],
    )


# The contract, for both backends.


async def test_create_get_round_trip(make_store: Callable[[], Store]) -> None:
    session = rich_session()
    async with opened(make_store()) as store:
        await store.create_session(session)
        assert await store.get_session(session.id) == session
        assert await store.has_session(session.id)
        assert not await store.has_session("nope")


async def test_naive_created_at_is_read_back_as_utc(make_store: Callable[[], Store]) -> None:
    session = Session(created_at=datetime(2025, 1, 2, 3, 4, 5))
    async with opened(make_store()) as store:
        await store.create_session(session)
        got = await store.get_session(session.id)
    assert (
        got.created_at == datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc) == session.created_at
    )


async def test_stored_state_is_a_copy(make_store: Callable[[], Store]) -> None:
    session = rich_session()
    async with opened(make_store()) as store:
        await store.create_session(session)
        session.title = "changed by caller"
        got = await store.get_session(session.id)
        got.messages.clear()
        assert (await store.get_session(session.id)).title == "rich"
        assert len((await store.get_session(session.id)).messages) == 5


async def test_duplicate_create_conflicts_and_keeps_the_first(
    make_store: Callable[[], Store],
) -> None:
    session = Session(title="first", messages=[message_item()])
    async with opened(make_store()) as store:
        await store.create_session(session)
        with pytest.raises(Conflict):
            await store.create_session(session.model_copy(update={"title": "second"}))
        got = await store.get_session(session.id)
    assert got.title == "first"
    assert len(got.messages) == 1


async def test_unknown_session(make_store: Callable[[], Store]) -> None:
    async with opened(make_store()) as store:
        with pytest.raises(UnknownSession):
            await store.get_session("nope")
        with pytest.raises(UnknownSession):
            await store.delete_session("nope")
        with pytest.raises(UnknownSession):
            await store.update_session("nope", {"title": "x"})
        with pytest.raises(UnknownSession):
            await store.update_session("nope", {})
        with pytest.raises(UnknownSession):
            await store.append_item("nope", message_item())
        with pytest.raises(UnknownSession):
            await store.update_message("nope", "m", message_item())


async def test_update_session_touches_only_named_fields(make_store: Callable[[], Store]) -> None:
    session = rich_session()
    async with opened(make_store()) as store:
        await store.create_session(session)
        await store.update_session(session.id, {"title": "renamed"})
        await store.update_session(
            session.id, {"starred": False, "permissions": {"allow": ["*"]}, "cost": 2.5}
        )
        got = await store.get_session(session.id)
    expected = session.model_copy(
        update={
            "title": "renamed",
            "starred": False,
            "permissions": Permissions(allow=["*"]),
            "cost": 2.5,
        }
    )
    assert got == expected


async def test_claim_title_sets_only_an_empty_title(make_store: Callable[[], Store]) -> None:
    async with opened(make_store()) as store:
        untitled, titled = Session(), Session(title="mine")
        await store.create_session(untitled)
        await store.create_session(titled)
        assert await store.claim_title(untitled.id, "generated") == "generated"
        assert await store.claim_title(untitled.id, "again") == "generated"
        assert await store.claim_title(titled.id, "generated") == "mine"
        assert (await store.get_session(titled.id)).title == "mine"
        with pytest.raises(UnknownSession):
            await store.claim_title("missing", "x")


async def test_update_session_rejects_unknown_fields_and_bad_values(
    make_store: Callable[[], Store],
) -> None:
    session = Session(title="kept")
    async with opened(make_store()) as store:
        await store.create_session(session)
        for fields in ({"messages": []}, {"id": "other"}, {"bogus": 1}, {"title": "x", "nope": 2}):
            with pytest.raises(ValueError, match="Not session fields"):
                await store.update_session(session.id, fields)
        with pytest.raises(UnstorableValue, match="max_iterations"):
            await store.update_session(session.id, {"max_iterations": "many"})
        assert await store.get_session(session.id) == session


LONE = "\ud800"


async def test_the_store_writes_only_what_reads_back(make_store: Callable[[], Store]) -> None:
    """One encoding rule for every write: values set without validation are caught too."""
    session = Session(title="kept", messages=[Item(message=user_message("hi"))])
    message_id = session.messages[0].message.id  # type: ignore[union-attr]
    unreadable_sessions = [
        Session(title=LONE),
        session.model_copy(update={"id": "a", "cost": -1.0}),
        session.model_copy(update={"id": "b", "cost": float("inf")}),
        session.model_copy(update={"id": "c", "input_tokens": 2**63}),
        Session(id="d", messages=[Item(message=user_message(LONE))]),
        Session(id="e", messages=[Item(summary="s", first_kept_entry=0)]).model_copy(
            update={"permissions": Permissions(allow=[LONE])}
        ),
    ]
    bad_cost = ChatMessage(role="assistant", content="x")
    bad_cost.cost = -1.0  # assignment skips validation
    deep: dict[str, object] = {}
    for _ in range(300):
        deep = {"d": deep}
    unreadable_items = [
        Item(message=user_message(LONE)),
        Item(message=Message(message=bad_cost)),
        Item(message=user_message("deep", multi_content=[deep])),
        Item(summary=LONE),
    ]
    async with opened(make_store()) as store:
        await store.create_session(session)
        for bad in unreadable_sessions:
            with pytest.raises(UnstorableValue):
                await store.create_session(bad)
        for item in unreadable_items:
            with pytest.raises(UnstorableValue):
                await store.append_item(session.id, item)
            with pytest.raises(UnstorableValue):
                await store.update_message(
                    session.id,
                    message_id,
                    item.model_copy(update={"message": None})
                    if item.message is None
                    else Item(message=item.message.model_copy(update={"id": message_id})),
                )
        for fields in ({"title": LONE}, {"cost": float("nan")}, {"input_tokens": -1}):
            with pytest.raises(UnstorableValue):
                await store.update_session(session.id, fields)
        with pytest.raises(UnstorableValue):
            await store.claim_title(session.id, LONE)
        assert [s.id for s in await store.list_summaries()] == [session.id]
        assert await store.get_session(session.id) == session


async def test_append_returns_consecutive_positions_in_order(
    make_store: Callable[[], Store],
) -> None:
    session = Session(messages=[message_item("zero")])
    async with opened(make_store()) as store:
        await store.create_session(session)
        appended = [message_item("one"), Item(summary="so far"), message_item("three")]
        positions = [await store.append_item(session.id, item) for item in appended]
        got = await store.get_session(session.id)
    assert positions == [1, 2, 3]
    assert got.messages == [*session.messages, *appended]


async def test_concurrent_appends_get_distinct_consecutive_positions(
    make_store: Callable[[], Store],
) -> None:
    session = Session()
    async with opened(make_store()) as store:
        await store.create_session(session)
        items = [message_item(str(n)) for n in range(200)]
        positions = await asyncio.gather(*(store.append_item(session.id, i) for i in items))
        got = await store.get_session(session.id)
    assert sorted(positions) == list(range(200))
    by_position = dict(zip(positions, items, strict=True))
    assert got.messages == [by_position[n] for n in range(200)]


async def test_update_message_replaces_exactly_one(make_store: Callable[[], Store]) -> None:
    session = Session(messages=[message_item("a"), Item(summary="s"), message_item("b")])
    target = session.messages[2].message
    assert target is not None
    replacement = Item(message=target.model_copy(update={"implicit": True}))
    async with opened(make_store()) as store:
        await store.create_session(session)
        await store.update_message(session.id, target.id, replacement)
        with pytest.raises(NotFound) as missing:
            await store.update_message(session.id, "no-such-message", replacement)
        got = await store.get_session(session.id)
    assert not isinstance(missing.value, UnknownSession)
    assert got.messages == [session.messages[0], session.messages[1], replacement]


async def test_replace_item_rewrites_a_growing_sub_session(make_store: Callable[[], Store]) -> None:
    sub = Session(title="Transferred task", messages=[message_item("first")])
    session = Session(messages=[message_item("a")])
    async with opened(make_store()) as store:
        await store.create_session(session)
        position = await store.append_item(session.id, Item(sub_session=sub))
        before = (await store.session_head(session.id)).version
        sub.messages.append(message_item("second"))
        await store.replace_item(session.id, position, Item(sub_session=sub, cost=0.5))
        with pytest.raises(NotFound):
            await store.replace_item(session.id, 7, Item(summary="x"))
        with pytest.raises(UnknownSession):
            await store.replace_item("no-such-session", 0, Item(summary="x"))
        with pytest.raises(LeaseLost):  # a turn's write, while this server holds no lease
            await store.replace_item(session.id, position, Item(summary="x"), owner="me")
        got = await store.get_session(session.id)
        after = (await store.session_head(session.id)).version
    stored = got.messages[position]
    assert stored.sub_session is not None and stored.cost == 0.5
    assert [m.message.content for m in stored.sub_session.chat_messages()] == ["first", "second"]
    assert after == before + 1  # a write other servers notice


async def test_list_summaries_newest_first_counting_messages_only(
    make_store: Callable[[], Store],
) -> None:
    old = rich_session(created_at=T0 - timedelta(days=1), title="old")  # 3 messages
    new = Session(title="new", created_at=T0 + timedelta(microseconds=1))
    # Equal instants are ordered by id, greatest first, so every page boundary is exact.
    tie_first = Session(
        id="tie-1", title="tie-first", created_at=T0, messages=[Item(summary="only")]
    )
    tie_second = Session(id="tie-2", title="tie-second", created_at=T0)
    async with opened(make_store()) as store:
        for session in (old, tie_first, new, tie_second):
            await store.create_session(session)
        await store.append_item(tie_second.id, message_item())
        summaries = await store.list_summaries()
    assert [(s.title, s.num_messages) for s in summaries] == [
        ("new", 0),
        ("tie-second", 1),
        ("tie-first", 0),
        ("old", 3),
    ]
    assert summaries[-1] == old.summary()


async def test_has_sessions_answers_without_listing(make_store: Callable[[], Store]) -> None:
    async with opened(make_store()) as store:
        assert not await store.has_sessions()
        session = Session()
        await store.create_session(session)
        assert await store.has_sessions()
        await store.delete_session(session.id)
        assert not await store.has_sessions()


async def test_pages_of_summaries_cover_every_session_once(
    make_store: Callable[[], Store],
) -> None:
    # 60 sessions over 20 instants (3 share each), so pages end inside runs of equal times.
    sessions = [
        Session(id=f"s{n:03d}", created_at=T0 + timedelta(seconds=n // 3)) for n in range(60)
    ]
    async with opened(make_store()) as store:
        for session in sessions:
            await store.create_session(session)
        everything = await store.list_summaries()
        seen: list[str] = []
        cursor = None
        while page := await store.list_summaries(7, cursor):
            assert len(page) <= 7
            seen += [summary.id for summary in page]
            cursor = SummaryCursor.after(page[-1])
            # Created between two pages: newer than every cursor, so never on a later page.
            await store.create_session(Session(id=f"late-{len(seen)}"))
        assert await store.list_summaries(5, SummaryCursor(T0 - timedelta(days=1), "")) == []
    assert seen == [summary.id for summary in everything]
    assert sorted(seen) == sorted(session.id for session in sessions)
    assert [(s.created_at, s.id) for s in everything] == sorted(
        ((s.created_at, s.id) for s in everything), reverse=True
    )


async def test_json_slices_are_the_summaries_in_wire_form(
    make_store: Callable[[], Store],
) -> None:
    sessions = [
        Session(id=f"s{n:03d}", title=f't\u00e9 "{n}"', created_at=T0 + timedelta(seconds=n // 3))
        for n in range(20)
    ]
    async with opened(make_store()) as store:
        for session in sessions:
            await store.create_session(session)
        await store.append_item("s005", message_item("one"))
        busy = {"s007": {"state": "running_tool", "tool": "shell"}}
        expected = [
            {**summary.model_dump(mode="json", by_alias=True), "activity": busy.get(summary.id)}
            for summary in await store.list_summaries()
        ]
        streamed: list[Any] = []
        cursor = None
        while (part := await store.summaries_json(7, cursor, busy)).count:
            streamed += json.loads(b"[" + part.items + b"]")
            assert part.count == len(json.loads(b"[" + part.items + b"]")) <= 7
            cursor = part.last
        assert streamed == expected
        assert await store.summaries_json(3, cursor) == (b"", 0, None)


def test_a_cursor_is_opaque_text_that_round_trips() -> None:
    cursor = SummaryCursor(T0, 'id with "quotes", slashes/ and ünicode')
    text = cursor.encode()
    assert text.isascii() and "/" not in text and "=" not in text
    assert SummaryCursor.decode(text) == cursor
    for bad in ("", "not base64!", "W10", "WyJ4IiwxXQ", "bnVsbA"):  # [], ["x",1], null
        with pytest.raises(InvalidRequest) as refused:
            SummaryCursor.decode(bad)
        assert refused.value.field == "before"


async def test_delete_removes_the_session_and_its_items(make_store: Callable[[], Store]) -> None:
    doomed, kept = rich_session(), rich_session(title="kept")
    async with opened(make_store()) as store:
        await store.create_session(doomed)
        await store.create_session(kept)
        await store.delete_session(doomed.id)
        assert not await store.has_session(doomed.id)
        assert [s.id for s in await store.list_summaries()] == [kept.id]
        assert await store.get_session(kept.id) == kept
        # The id is free again, and nothing of the old items comes back with it.
        await store.create_session(Session(id=doomed.id))
        assert (await store.get_session(doomed.id)).messages == []


def undo(target: str, previous: str = "v", toolset: str = "jupyter") -> UndoEntry:
    return UndoEntry(toolset, target, f"edited {target}", previous, f"digest of {target}")


async def test_undo_history_is_per_session_and_toolset_newest_first(
    make_store: Callable[[], Store],
) -> None:
    async with opened(make_store()) as store:
        one, two = Session(), Session()
        await store.create_session(one)
        await store.create_session(two)
        first = await store.push_undo(one.id, undo("a.ipynb", "A0"), 50, 1 << 20)
        second = await store.push_undo(one.id, undo("b.ipynb", "B0"), 50, 1 << 20)
        await store.push_undo(one.id, undo("a.ipynb", "F0", toolset="filesystem"), 50, 1 << 20)
        await store.push_undo(two.id, undo("a.ipynb", "other"), 50, 1 << 20)
        assert first < second
        assert await store.last_undo(one.id, "jupyter") == UndoEntry(
            "jupyter", "b.ipynb", "edited b.ipynb", "B0", "digest of b.ipynb", second
        )
        assert (await store.last_undo(one.id, "jupyter", "a.ipynb")).previous == "A0"  # type: ignore[union-attr]
        await store.drop_undo(one.id, second)
        await store.drop_undo(one.id, second)  # already gone: nothing happens
        assert (await store.last_undo(one.id, "jupyter")).id == first  # type: ignore[union-attr]
        assert (await store.last_undo(two.id, "jupyter")).previous == "other"  # type: ignore[union-attr]
        assert await store.last_undo(one.id, "jupyter", "c.ipynb") is None
        assert await store.last_undo("nope", "jupyter") is None
        with pytest.raises(UnknownSession):
            await store.push_undo("nope", undo("a.ipynb"), 50, 1 << 20)
        # A version bump would tell other servers their copy of the session is stale: none.
        assert (await store.session_head(one.id)).version == 0
        await store.delete_session(one.id)
        await store.create_session(Session(id=one.id))  # the id again, without its history
        assert await store.last_undo(one.id, "jupyter") is None


async def test_undo_history_keeps_the_newest_within_its_bounds(
    make_store: Callable[[], Store],
) -> None:
    async with opened(make_store()) as store:
        session = Session()
        await store.create_session(session)

        async def previous_texts() -> list[str]:
            texts = []
            while (entry := await store.last_undo(session.id, "jupyter")) is not None:
                texts.append(entry.previous)
                await store.drop_undo(session.id, entry.id)
            return texts

        for n in range(5):
            await store.push_undo(session.id, undo("a", f"v{n}"), 3, 1000)
        await store.push_undo(session.id, undo("a", "f", toolset="filesystem"), 3, 1000)
        assert await previous_texts() == ["v4", "v3", "v2"]  # at most 3: the oldest went first
        for n in range(4):  # 4 bytes each ("é" takes two): two fit in 10
            await store.push_undo(session.id, undo("a", f"é{n}x"), 50, 10)
        assert await previous_texts() == ["é3x", "é2x"]
        await store.push_undo(session.id, undo("a", "x" * 100), 50, 10)  # alone too big: kept
        assert await previous_texts() == ["x" * 100]
        assert (await store.last_undo(session.id, "filesystem")).previous == "f"  # type: ignore[union-attr]


async def test_ping(make_store: Callable[[], Store]) -> None:
    async with opened(make_store()) as store:
        assert await store.ping()


async def test_every_write_bumps_the_version_by_one(make_store: Callable[[], Store]) -> None:
    async with opened(make_store()) as store:
        session = Session(messages=[message_item("first")])
        await store.create_session(session)
        assert (await store.session_head(session.id)).version == 0
        await store.append_item(session.id, message_item("second"))
        await store.update_session(session.id, {"starred": True})
        await store.claim_title(session.id, "generated")
        await store.claim_title(session.id, "too late")  # no change, but still one write
        message_id = session.messages[0].message.id  # type: ignore[union-attr]
        await store.update_message(session.id, message_id, message_item("edited"))
        await store.acquire_lease(session.id, "server-a", 30)  # a lease is not a write
        await store.release_lease(session.id, "server-a")
        assert (await store.session_head(session.id)).version == 5
        with pytest.raises(UnknownSession):
            await store.session_head("nope")


async def test_one_lease_holder_at_a_time(make_store: Callable[[], Store]) -> None:
    async with opened(make_store()) as store:
        session = Session()
        await store.create_session(session)
        sid = session.id
        assert await store.acquire_lease(sid, "server-a", 30)
        assert not await store.acquire_lease(sid, "server-b", 30)
        assert (await store.session_head(sid)).lease_owner == "server-a"
        assert await store.acquire_lease(sid, "server-a", 30)  # the holder renews
        await store.release_lease(sid, "server-b")  # not b's to give up
        assert (await store.session_head(sid)).lease_owner == "server-a"
        await store.release_lease(sid, "server-a")
        assert (await store.session_head(sid)).lease_owner is None
        assert await store.acquire_lease(sid, "server-b", 30)
        with pytest.raises(UnknownSession):
            await store.acquire_lease("nope", "server-a", 30)
        await store.release_lease("nope", "server-a")  # a no-op, as for a released lease


async def test_a_lease_is_renewed_only_by_the_owner_that_still_holds_it(
    make_store: Callable[[], Store],
) -> None:
    async with opened(make_store()) as store:
        session = Session()
        await store.create_session(session)
        sid = session.id
        assert await store.acquire_lease(sid, "server-a", 0)  # expired, but nobody took it
        assert await store.renew_lease(sid, "server-a", 30)
        assert (await store.session_head(sid)).lease_owner == "server-a"
        assert await store.acquire_lease(sid, "server-b", 30, replacing="server-a")
        assert not await store.renew_lease(sid, "server-a", 30)  # taken over
        await store.release_lease(sid, "server-b")
        assert not await store.renew_lease(sid, "server-a", 30)  # free, but not a's any more
        assert (await store.session_head(sid)).lease_owner is None
        with pytest.raises(UnknownSession):
            await store.renew_lease("nope", "server-a", 30)


async def test_a_write_for_an_owner_lands_only_while_it_holds_the_lease(
    make_store: Callable[[], Store],
) -> None:
    async with opened(make_store()) as store:
        session = Session(messages=[message_item("first")])
        await store.create_session(session)
        sid = session.id
        first = session.messages[0].message
        assert first is not None
        edited = Item(message=first.model_copy(update={"agent_name": "edited"}))
        writes = [
            lambda owner: store.append_item(sid, message_item("second"), owner=owner),
            lambda owner: store.update_session(sid, {"starred": True}, owner=owner),
            lambda owner: store.claim_title(sid, "generated", owner=owner),
            lambda owner: store.update_message(sid, first.id, edited, owner=owner),
        ]
        for lease_owner in (None, "server-b"):
            if lease_owner is not None:
                await store.acquire_lease(sid, lease_owner, 30)
            for write in writes:
                with pytest.raises(LeaseLost):
                    await write("server-a")
        assert (await store.session_head(sid)).version == 0  # nothing landed
        await store.release_lease(sid, "server-b")
        assert await store.acquire_lease(sid, "server-a", 0)  # expired, nobody took it over
        for write in writes:
            await write("server-a")
        for write in writes:
            await write("")  # no owner: unconditional (a runtime hosted outside a server)
        assert (await store.session_head(sid)).version == 2 * len(writes)
        with pytest.raises(UnknownSession):
            await store.append_item("nope", message_item("x"), owner="server-a")


async def test_an_undo_entry_for_an_owner_lands_only_while_it_holds_the_lease(
    make_store: Callable[[], Store],
) -> None:
    async with opened(make_store()) as store:
        session = Session()
        await store.create_session(session)
        sid = session.id
        for lease_owner in (None, "server-b"):  # nobody's turn, then another server's
            if lease_owner is not None:
                await store.acquire_lease(sid, lease_owner, 30)
            with pytest.raises(LeaseLost):
                await store.push_undo(sid, undo("a.ipynb", "lost"), 50, 1 << 20, owner="server-a")
        assert await store.last_undo(sid, "jupyter") is None  # nothing landed
        await store.release_lease(sid, "server-b")
        assert await store.acquire_lease(sid, "server-a", 0)  # expired, nobody took it over
        await store.push_undo(sid, undo("a.ipynb", "mine"), 50, 1 << 20, owner="server-a")
        await store.push_undo(sid, undo("b.ipynb", "anyone"), 50, 1 << 20)  # no owner
        assert (await store.last_undo(sid, "jupyter", "a.ipynb")).previous == "mine"  # type: ignore[union-attr]
        assert (await store.last_undo(sid, "jupyter", "b.ipynb")).previous == "anyone"  # type: ignore[union-attr]
        with pytest.raises(UnknownSession):
            await store.push_undo("nope", undo("a.ipynb"), 50, 1 << 20, owner="server-a")


async def test_the_last_fork_number_counts_only_forks_of_that_title(
    make_store: Callable[[], Store],
) -> None:
    titles = [
        "Plan (fork 1)",
        "Plan (fork 12)",
        "Plan (fork 3) (fork 40)",  # a fork of a fork
        "Plan (fork x)",
        "Plan (fork 7",
        "Plan (fork )",
        "Plan (fork 99)!",
        "Plans (fork 98)",
        "plan (fork 97)",
        "Plan",
        "50% (fork 5)",
        "50%_ (fork 6)",
    ]
    async with opened(make_store()) as store:
        for title in titles:
            await store.create_session(Session(title=title))
        assert await store.last_fork_number("Plan") == 12
        assert await store.last_fork_number("Plan (fork 3)") == 40
        assert await store.last_fork_number("50%") == 5  # no wildcard in a title
        assert await store.last_fork_number("Nothing") == 0
        assert await store.last_fork_number("") == 0


async def test_an_expired_lease_is_free(make_store: Callable[[], Store]) -> None:
    async with opened(make_store()) as store:
        session = Session()
        await store.create_session(session)
        assert await store.acquire_lease(session.id, "crashed", 0)  # expires at once
        assert (await store.session_head(session.id)).lease_owner is None
        assert await store.acquire_lease(session.id, "server-b", 30)
        assert (await store.session_head(session.id)).lease_owner == "server-b"


# What only the SQLite store promises.


def raw(db_path: Path) -> closing[sqlite3.Connection]:
    """A connection of our own, as another process would have."""
    return closing(sqlite3.connect(db_path, isolation_level=None))


async def test_sqlite_schema_columns_match_the_model(db_path: Path) -> None:
    async with opened(SQLiteStore(str(db_path))):
        pass
    with raw(db_path) as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(sessions)")}
    assert columns - sqlite_module.BOOKKEEPING_COLUMNS == META_FIELDS | {"id"}


async def test_sqlite_data_survives_reopen(db_path: Path) -> None:
    session, after = rich_session(), message_item("after")
    async with opened(SQLiteStore(str(db_path))) as store:
        await store.create_session(session)
        await store.update_session(session.id, {"title": "renamed"})
        await store.append_item(session.id, after)
    async with opened(SQLiteStore(str(db_path))) as store:
        got = await store.get_session(session.id)
        assert await store.append_item(session.id, message_item("again")) == 6
        await store.push_undo(session.id, undo("a.ipynb", "before"), 50, 1 << 20)
    assert got.title == "renamed"
    assert got.messages == [*session.messages, after]
    async with opened(SQLiteStore(str(db_path))) as store:
        assert (await store.last_undo(session.id, "jupyter")).previous == "before"  # type: ignore[union-attr]
        await store.delete_session(session.id)
    with raw(db_path) as conn:  # the history went with its session (a foreign key cascade)
        assert conn.execute("SELECT COUNT(*) FROM undo_entries").fetchone() == (0,)


async def test_sqlite_migrations_run_once_each(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with opened(SQLiteStore(str(db_path))):
        pass
    shipped = len(sqlite_module.MIGRATIONS)
    with raw(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (shipped,)
    # A later release adds a step: only it runs (re-running step 1 would fail on CREATE TABLE).
    monkeypatch.setattr(
        sqlite_module, "MIGRATIONS", [*sqlite_module.MIGRATIONS, ("CREATE TABLE probe (x)",)]
    )
    for _ in range(2):
        async with opened(SQLiteStore(str(db_path))) as store:
            assert await store.ping()
    with raw(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (shipped + 1,)


async def test_sqlite_version_1_files_keep_their_items_and_gain_error_items(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = Session(title="old", messages=[message_item("one"), Item(summary="so far")])
    with monkeypatch.context() as patch:
        patch.setattr(sqlite_module, "MIGRATIONS", sqlite_module.MIGRATIONS[:1])
        # Version 1 had no columns for the fields added since (a kernel's binding).
        patch.setattr(sqlite_module, "META_FIELDS", META_FIELDS - {"kernel_id", "notebook_path"})
        async with opened(SQLiteStore(str(db_path))) as store:
            await store.create_session(session)
    async with opened(SQLiteStore(str(db_path))) as store:
        assert await store.get_session(session.id) == session
        failed = Item(error="The model was unreachable.")
        assert await store.append_item(session.id, failed) == 2
        assert (await store.get_session(session.id)).messages[-1] == failed
        assert (await store.list_summaries())[0].num_messages == 1
    with raw(db_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


async def test_sqlite_failed_migration_changes_nothing(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = ("CREATE TABLE half (x)", "THIS IS NOT SQL")
    monkeypatch.setattr(sqlite_module, "MIGRATIONS", [*sqlite_module.MIGRATIONS, broken])
    store = SQLiteStore(str(db_path))
    with pytest.raises(StoreError, match="server log") as err:
        await store.open()
    assert "syntax error" in str(err.value.__cause__)
    with raw(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (0,)
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == []
    assert not await store.ping()  # the failed open left no thread or connection behind


async def test_sqlite_refuses_a_newer_schema(db_path: Path) -> None:
    db_path.parent.mkdir()
    with raw(db_path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="newer"):
        await SQLiteStore(str(db_path)).open()


async def test_sqlite_file_is_in_wal_mode(db_path: Path) -> None:
    async with opened(SQLiteStore(str(db_path))):
        pass
    with raw(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_sqlite_list_summaries_reads_no_item_bodies(db_path: Path) -> None:
    session, other = rich_session(), Session(title="other")
    async with opened(SQLiteStore(str(db_path))) as store:
        await store.create_session(session)
        await store.create_session(other)
        with raw(db_path) as conn:
            conn.execute(
                "UPDATE items SET body = '{not json' WHERE session_id = ? AND position = 1",
                (session.id,),
            )
        summaries = await store.list_summaries()
        assert [(s.id, s.num_messages) for s in summaries] == [(other.id, 0), (session.id, 3)]
        with pytest.raises(StoreError, match="could not be read") as err:
            await store.get_session(session.id)
        assert str(store.path) not in str(err.value)
        assert await store.get_session(other.id) == other


async def test_sqlite_failed_write_leaves_nothing(db_path: Path) -> None:
    session = Session(messages=[message_item()])
    async with opened(SQLiteStore(str(db_path))) as store:
        with raw(db_path) as conn:  # make the second item insert fail, after the session row
            conn.execute(
                "CREATE TRIGGER no_second BEFORE INSERT ON items WHEN NEW.position = 1"
                " BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        with pytest.raises(StoreError, match="server log") as err:
            await store.create_session(
                session.model_copy(update={"messages": [message_item()] * 2})
            )
        assert not await store.has_session(session.id)
        await store.create_session(session)
        with pytest.raises(StoreError, match="server log") as err:
            await store.append_item(session.id, message_item())
        assert "refused" in str(err.value.__cause__)
        assert await store.get_session(session.id) == session


async def test_sqlite_work_runs_on_the_worker_thread(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: set[tuple[int, str]] = set()
    connect = sqlite3.connect

    def traced_connect(*args: object, **kwargs: object) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)  # type: ignore[arg-type]
        current = threading.current_thread()
        threads.add((current.ident or 0, current.name))
        conn.set_trace_callback(
            lambda _sql: threads.add((threading.get_ident(), threading.current_thread().name))
        )
        return conn

    monkeypatch.setattr(sqlite3, "connect", traced_connect)
    session = rich_session()
    async with opened(SQLiteStore(str(db_path))) as store:
        await store.create_session(session)
        await store.append_item(session.id, message_item())
        await store.get_session(session.id)
        await store.list_summaries()
    assert len(threads) == 1
    ((ident, name),) = threads
    assert ident != threading.get_ident()
    assert name.startswith("nbsession-sqlite")


async def test_sqlite_waiting_for_a_lock_does_not_block_the_loop(db_path: Path) -> None:
    session = Session()
    async with opened(SQLiteStore(str(db_path))) as store:
        await store.create_session(session)
        with raw(db_path) as conn:
            conn.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
            append = asyncio.ensure_future(store.append_item(session.id, message_item()))
            started = time.monotonic()
            for _ in range(20):  # a blocked loop would stall here for the 5 s busy timeout
                await asyncio.sleep(0.01)
            assert time.monotonic() - started < 2
            assert not append.done()
            conn.execute("COMMIT")
        assert await append == 0


async def test_sqlite_two_stores_on_one_file_append_without_collisions(db_path: Path) -> None:
    session = Session()
    async with opened(SQLiteStore(str(db_path))) as one, opened(SQLiteStore(str(db_path))) as two:
        await one.create_session(session)
        positions = await asyncio.gather(
            *(store.append_item(session.id, message_item()) for store in [one, two] * 50)
        )
    assert sorted(positions) == list(range(100))


async def test_sqlite_close_is_idempotent_and_ping_fails_after(db_path: Path) -> None:
    store = SQLiteStore(str(db_path))
    await store.open()
    await store.close()
    await store.close()
    assert not await store.ping()
    with pytest.raises(StoreError, match="not open"):
        await store.list_summaries()
