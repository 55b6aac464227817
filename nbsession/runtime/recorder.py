"""The single writer of a live session: store first, then memory, then the event.

Keeping that order in one place is what makes the crash guarantee hold: no event announces a
message that is not committed, and an in-memory session never runs ahead of its store.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ..eventlog import EventLog, LogClosed, LogEntry
from ..session import Item, Message, Session
from ..store.base import Store

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
    """Writes one session through the store and publishes its events to its log."""

    def __init__(self, session: Session, store: Store, log: EventLog) -> None:
        self.session = session
        self.store = store
        self.log = log

    @property
    def session_id(self) -> str:
        return self.session.id

    def emit(self, event: dict[str, Any]) -> LogEntry | None:
        """Publish an event; after the session was deleted its log is closed and this is a no-op."""
        try:
            return self.log.append(event)
        except LogClosed:
            return None

    async def append(self, item: Item, announce: Announce | None = None) -> int:
        """Commit an item, add it to the in-memory session, then emit ``announce(position)``.

        The announcing event goes out even when a cancellation arrived during the write: the
        item is committed either way, and a client must not miss a message it can later read.
        """
        position, cancelled = await _finish(self.store.append_item(self.session.id, item))
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
        stored, cancelled = await _finish(self.store.claim_title(self.session.id, title))
        self.session.title = stored
        if cancelled:
            raise asyncio.CancelledError
        return stored == title

    async def update(self, **fields: Any) -> None:
        """Commit some session fields, then apply them in memory (all or nothing)."""
        _, cancelled = await _finish(self.store.update_session(self.session.id, fields))
        for name, value in fields.items():
            setattr(self.session, name, value)
        if cancelled:
            raise asyncio.CancelledError
