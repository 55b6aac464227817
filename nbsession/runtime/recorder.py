"""The single writer of a live session: store first, then memory, then the event.

Keeping that order in one place is what makes the crash guarantee hold: no event announces a
message that is not committed, and an in-memory session never runs ahead of its store.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from ..errors import LeaseLost
from ..eventlog import EventLog, LogEntry
from ..session import Item, Message, Session
from ..store.base import Store
from .deltas import DEFAULT_INTERVAL, DeltaCoalescer

log = logging.getLogger("nbsession.recorder")

T = TypeVar("T")
# Builds the event announcing an item from its position in the session.
Announce = Callable[[int], dict[str, Any]]


async def _finish(write: Awaitable[T]) -> tuple[T, bool]:
    """Run a store write to its end even if the caller is cancelled meanwhile.

    A write handed to the store's thread lands whatever happens to the awaiting coroutine, so
    abandoning it would leave memory behind the store. Returns the result and whether a
    cancellation arrived; the caller applies the result, then honours the cancellation.
    """
    task = asyncio.ensure_future(write)
    cancelled = False
    while True:
        try:
            return await asyncio.shield(task), cancelled
        except asyncio.CancelledError:
            if task.done() and task.cancelled():
                raise
            cancelled = True


class SessionRecorder:
    """Writes one session through the store and publishes its events to its log.

    It also knows which store version its copy matches: each of its writes bumps the store's
    version by one and its own count with it, so a store version ahead of ``version`` (with no
    write ``pending``) means another server wrote the session since it was read.

    With an ``owner`` (a server id), every write is one the store makes only while that owner
    holds the session's lease, checked in the write's own transaction: a server that stalled
    past its lease's expiry cannot write after another took the session over, not even once.

    Streamed deltas (text, and tool-call argument pieces) go through ``emit_delta`` and are
    merged every ``delta_interval`` seconds (see ``deltas.py``); any other event sends the
    deltas held before it.
    """

    def __init__(
        self,
        session: Session,
        store: Store,
        log: EventLog,
        version: int = 0,
        owner: str = "",
        delta_interval: float = DEFAULT_INTERVAL,
    ) -> None:
        self.session = session
        self.store = store
        self.log = log
        self.deltas = DeltaCoalescer(log, delta_interval)
        self.version = version
        self.owner = owner
        self.pending = 0  # writes handed to the store and not yet applied here
        self.fenced = False  # another server took the session over: write nothing more

    def fence(self) -> None:
        """Write nothing more: another server owns the session now (logged once)."""
        if not self.fenced:
            self.fenced = True
            log.warning(
                "session %s: another server took it over; this server's turn stops here",
                self.session.id,
            )

    def reload(self, session: Session, version: int) -> None:
        """Replace the in-memory copy with one read from the store at ``version``."""
        self.session = session
        self.version = version

    async def _write(self, write: Coroutine[Any, Any, T]) -> tuple[T, bool]:
        """``_finish`` a store write and count it (a write that failed changed nothing)."""
        if self.fenced:
            write.close()
            raise LeaseLost(self.session.id)
        self.pending += 1
        try:
            result = await _finish(write)
        except LeaseLost:
            self.fence()
            raise
        finally:
            self.pending -= 1
        self.version += 1
        return result

    @property
    def session_id(self) -> str:
        return self.session.id

    @property
    def root_session_id(self) -> str:
        """The stored session this one is, or lies in (a sub-session is an item of it)."""
        return self.session.id

    @property
    def root_owner(self) -> str:
        """Whose lease a write to the root session made outside this recorder needs (an undo
        entry): this recorder's ``owner``, "" for a writer that needs none."""
        return self.owner

    def emit(self, event: dict[str, Any]) -> LogEntry | None:
        """Publish an event; after the session was deleted its log is closed and this is a no-op."""
        return self.deltas.emit(event)

    def emit_delta(self, event: dict[str, Any]) -> None:
        """Publish a streamed delta (``agent_choice``, ``agent_choice_reasoning``, a
        ``partial_tool_call`` piece), merged with the deltas that follow it closely."""
        self.deltas.delta(event)

    async def append(self, item: Item, announce: Announce | None = None) -> int:
        """Commit an item, add it to the in-memory session, then emit ``announce(position)``.

        The announcing event goes out even when a cancellation arrived during the write: the
        item is committed either way, and a client must not miss a message it can later read.
        """
        append = self.store.append_item(self.session.id, item, owner=self.owner)
        position, cancelled = await self._write(append)
        self.session.messages.append(item)
        if announce is not None:
            self.emit(announce(position))
        if cancelled:
            raise asyncio.CancelledError
        return position

    async def append_message(self, message: Message, announce: Announce | None = None) -> int:
        return await self.append(Item(message=message), announce)

    async def claim_title(self, title: str) -> bool:
        """Give the session ``title`` unless it has one (in the store); True if it was ours."""
        claim = self.store.claim_title(self.session.id, title, owner=self.owner)
        stored, cancelled = await self._write(claim)
        self.session.title = stored
        if cancelled:
            raise asyncio.CancelledError
        return stored == title

    async def update(self, **fields: Any) -> None:
        """Commit some session fields, then apply them in memory (all or nothing)."""
        update = self.store.update_session(self.session.id, fields, owner=self.owner)
        _, cancelled = await self._write(update)
        for name, value in fields.items():
            setattr(self.session, name, value)
        if cancelled:
            raise asyncio.CancelledError

    async def item_changed(self, position: int, leased: bool = True) -> None:
        """Commit the item at ``position`` again: a sub-session in it grew or changed.

        ``leased`` false writes whether or not this server holds the session's lease: a
        background agent's sub-session, which may still grow after the turn that started it.
        """
        item = self.session.messages[position]
        owner = self.owner if leased else ""
        write = self.store.replace_item(self.session.id, position, item, owner=owner)
        _, cancelled = await self._write(write)
        if cancelled:
            raise asyncio.CancelledError

    async def replace_message(self, message_id: str, item: Item) -> None:
        """Commit the replacement of the message ``message_id``, then apply it in memory."""
        update = self.store.update_message(self.session.id, message_id, item, owner=self.owner)
        _, cancelled = await self._write(update)
        items = self.session.messages
        for index, existing in enumerate(items):
            if existing.message is not None and existing.message.id == message_id:
                items[index] = item
        if cancelled:
            raise asyncio.CancelledError


class SubSessionRecorder(SessionRecorder):
    """Records a sub-agent's session (``transfer_task``) inside its parent's and publishes its
    events to the parent session's log.

    A sub-session is one item of its parent, as in docker-agent, at ``position``. Each change
    (a message, a field) rewrites that item in the store through the parent's recorder, so a
    crash mid-task keeps what the sub-agent did up to its last message; the parent's
    ``transfer_task`` call is then answered as interrupted, like any call cut short.
    """

    def __init__(self, session: Session, parent: SessionRecorder, position: int) -> None:
        super().__init__(session, parent.store, parent.log)
        self.parent = parent
        self.position = position
        self.deltas = parent.deltas  # one log, one order: the parent's held text comes first

    async def append(self, item: Item, announce: Announce | None = None) -> int:
        self.session.messages.append(item)
        position = len(self.session.messages) - 1
        try:
            await self.save()
        except asyncio.CancelledError:  # committed all the same (see ``_finish``)
            if announce is not None:
                self.emit(announce(position))
            raise
        except BaseException:
            self.session.messages.pop()  # the store refused it: memory does not run ahead
            raise
        if announce is not None:
            self.emit(announce(position))
        return position

    @property
    def root_session_id(self) -> str:
        return self.parent.root_session_id

    @property
    def root_owner(self) -> str:
        return self.parent.root_owner

    async def save(self, leased: bool = True) -> None:
        """Rewrite this sub-session's item in the parent, after a change inside it."""
        await self.parent.item_changed(self.position, leased)

    async def item_changed(self, position: int, leased: bool = True) -> None:
        await self.save(leased)  # a sub-session nested in this one changed

    async def claim_title(self, title: str) -> bool:
        if self.session.title:
            return False
        self.session.title = title
        return True

    async def update(self, **fields: Any) -> None:
        for name, value in fields.items():
            setattr(self.session, name, value)
        await self.save()


class BackgroundRecorder(SubSessionRecorder):
    """A background agent's sub-session: stored like a transferred task's, but its events stay
    out of the parent's stream (docker-agent drops them too) and its text goes to ``on_text``.
    Its writes do not need the turn's lease, since it may work on after that turn ended."""

    def __init__(
        self,
        session: Session,
        parent: SessionRecorder,
        position: int,
        on_text: Callable[[str], None],
    ) -> None:
        super().__init__(session, parent, position)
        self.on_text = on_text

    @property
    def root_owner(self) -> str:
        return ""  # it may edit after the turn that started it ended

    def emit(self, event: dict[str, Any]) -> LogEntry | None:
        if event.get("type") == "agent_choice":
            self.on_text(event.get("content", ""))
        return None

    def emit_delta(self, event: dict[str, Any]) -> None:
        self.emit(event)  # nothing to merge: no delta reaches the parent's log

    async def save(self, leased: bool = True) -> None:
        # It may outlive the turn that started it, and with it the turn's lease.
        await self.parent.item_changed(self.position, leased=False)
