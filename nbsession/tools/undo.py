"""Undo histories of the edits tools make (the jupyter toolset's cell edits).

A session's history lives in its store (``Store.push_undo``), so an edit can be undone after
its runtime was released or the server restarted, and it is deleted with the session. A
toolset used without a session store (a script building it directly) keeps one in memory.

Bounds, per session and toolset: the newest ``KEEP`` entries, and of those only as many as fit
in ``MAX_BYTES`` of previous versions (the newest is always kept). Fifty undo steps are more
than a conversation walks back; the bytes bound matters for notebooks, whose previous version
is the whole notebook with its outputs: fifty edits of one with a few MiB of plots would
otherwise add hundreds of MiB to the session store.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

from ..store.base import Store, UndoEntry, trim_undo

KEEP = 50
MAX_BYTES = 16 * 1024 * 1024


class UndoHistory(Protocol):
    """One session's undo history, as a toolset sees it."""

    async def push(self, entry: UndoEntry) -> None:
        """Remember the version an edit replaced (the oldest entries beyond the bounds go)."""

    async def last(self, toolset: str, target: str = "") -> UndoEntry | None:
        """The newest entry of ``toolset`` (of ``target`` when given), or None."""

    async def drop(self, entry: UndoEntry) -> None:
        """Forget an entry whose edit was undone."""


@dataclasses.dataclass(frozen=True)
class StoredUndoHistory:
    """The history of session ``session_id`` in ``store`` (the root session: a sub-agent's
    edits are undone like its caller's). With an ``owner`` (a server id) an entry is added
    only while that server holds the session's turn lease (``LeaseLost`` otherwise)."""

    store: Store
    session_id: str
    owner: str = ""

    async def push(self, entry: UndoEntry) -> None:
        await self.store.push_undo(self.session_id, entry, KEEP, MAX_BYTES, owner=self.owner)

    async def last(self, toolset: str, target: str = "") -> UndoEntry | None:
        return await self.store.last_undo(self.session_id, toolset, target)

    async def drop(self, entry: UndoEntry) -> None:
        await self.store.drop_undo(self.session_id, entry.id)


class LocalUndoHistory:
    """A history in this process only, for a toolset that has no session store."""

    def __init__(self) -> None:
        self._entries: list[UndoEntry] = []
        self._next_id = 1

    async def push(self, entry: UndoEntry) -> None:
        self._entries.append(dataclasses.replace(entry, id=self._next_id))
        self._next_id += 1
        self._entries = trim_undo(self._entries, KEEP, MAX_BYTES)

    async def last(self, toolset: str, target: str = "") -> UndoEntry | None:
        for entry in reversed(self._entries):
            if entry.toolset == toolset and (not target or entry.target == target):
                return entry
        return None

    async def drop(self, entry: UndoEntry) -> None:
        self._entries = [kept for kept in self._entries if kept.id != entry.id]
