"""A store that keeps sessions in this process only: for tests and ``db_path=":memory:"``.

It follows the same contract as the SQLite store (errors, ordering, field-level updates) so
the layers above can be tested against either. Everything stored or returned is a deep copy:
a caller mutating a session it got must not change what the store holds. Writes pass the
same encoding rule as SQLite's (``session.storable``), so both refuse the same values.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import time
from collections.abc import Mapping
from typing import Any

from ..errors import Conflict, LeaseLost, NotFound, UnknownSession
from ..session import META_FIELDS, Item, Session, SessionSummary, storable, storable_fields
from .base import (
    SessionHead,
    SummaryCursor,
    SummarySlice,
    UndoEntry,
    summary_json,
    trim_undo,
)


class MemoryStore:
    """Sessions in a dict, keyed by id, in insertion order."""

    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}
        self._versions: dict[str, int] = {}
        self._leases: dict[str, tuple[str, float]] = {}  # session -> (owner, monotonic expiry)
        self._undo: dict[str, list[UndoEntry]] = {}  # session -> its undo history, oldest first
        self._undo_ids = itertools.count(1)

    async def open(self) -> None:
        """Nothing to prepare: the dict exists from construction."""

    async def close(self) -> None:
        """Nothing to release; the sessions stay readable, as a closed file's would on disk."""

    async def ping(self) -> bool:
        return True

    async def create_session(self, session: Session) -> None:
        if session.id in self._sessions:
            raise Conflict(f"A session with id {session.id!r} already exists.")
        self._sessions[session.id] = storable(session)
        self._versions[session.id] = 0

    async def get_session(self, session_id: str) -> Session:
        return self._get(session_id).model_copy(deep=True)

    async def has_session(self, session_id: str) -> bool:
        return session_id in self._sessions

    async def has_sessions(self) -> bool:
        return bool(self._sessions)

    async def list_summaries(
        self, limit: int | None = None, before: SummaryCursor | None = None
    ) -> list[SessionSummary]:
        summaries = [session.summary() for session in self._sessions.values()]
        if before is not None:
            summaries = [summary for summary in summaries if before.precedes(summary)]
        summaries.sort(key=lambda s: (s.created_at, s.id), reverse=True)
        return summaries if limit is None else summaries[:limit]

    async def last_fork_number(self, title: str) -> int:
        pattern = re.compile(re.escape(title) + r" \(fork ([0-9]+)\)")
        numbers = (pattern.fullmatch(s.title) for s in self._sessions.values())
        return max((int(match.group(1)) for match in numbers if match), default=0)

    async def summaries_json(
        self,
        limit: int,
        before: SummaryCursor | None = None,
        activity: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> SummarySlice:
        active = activity or {}
        encoded = [
            summary_json({**s.model_dump(), "activity": active.get(s.id)})
            for s in await self.list_summaries(limit, before)
        ]
        last = encoded[-1][1] if encoded else None
        return SummarySlice(b",".join(item for item, _ in encoded), len(encoded), last)

    async def delete_session(self, session_id: str) -> None:
        self._get(session_id)
        del self._sessions[session_id]
        del self._versions[session_id]
        self._leases.pop(session_id, None)
        self._undo.pop(session_id, None)

    async def update_session(
        self, session_id: str, fields: Mapping[str, Any], owner: str = ""
    ) -> None:
        unknown = set(fields) - META_FIELDS
        if unknown:
            raise ValueError(f"Not session fields: {', '.join(sorted(unknown))}.")
        stored = self._owned(session_id, owner)
        validated = storable_fields(fields)  # a copy, checked as SQLite checks it
        changes = {name: getattr(validated, name) for name in fields}
        self._sessions[session_id] = stored.model_copy(update=changes)
        if fields:
            self._versions[session_id] += 1

    async def claim_title(self, session_id: str, title: str, owner: str = "") -> str:
        stored = self._owned(session_id, owner)
        title = storable_fields({"title": title}).title
        if not stored.title:
            self._sessions[session_id] = stored.model_copy(update={"title": title})
        self._versions[session_id] += 1
        return self._sessions[session_id].title

    async def append_item(self, session_id: str, item: Item, owner: str = "") -> int:
        items = self._owned(session_id, owner).messages
        items.append(storable(item))
        self._versions[session_id] += 1
        return len(items) - 1

    async def update_message(
        self, session_id: str, message_id: str, item: Item, owner: str = ""
    ) -> None:
        items = self._owned(session_id, owner).messages
        for position, existing in enumerate(items):
            if existing.message is not None and existing.message.id == message_id:
                items[position] = storable(item)
                self._versions[session_id] += 1
                return
        raise NotFound(f"Session {session_id!r} has no message with id {message_id!r}.")

    async def replace_item(
        self, session_id: str, position: int, item: Item, owner: str = ""
    ) -> None:
        items = self._owned(session_id, owner).messages
        if not 0 <= position < len(items):
            raise NotFound(f"Session {session_id!r} has no item at position {position}.")
        items[position] = storable(item)
        self._versions[session_id] += 1

    async def session_head(self, session_id: str) -> SessionHead:
        self._get(session_id)
        owner, expires = self._leases.get(session_id, (None, 0.0))
        live = owner if expires > time.monotonic() else None
        return SessionHead(self._versions[session_id], live)

    async def acquire_lease(
        self, session_id: str, owner: str, ttl: float, replacing: str = ""
    ) -> bool:
        self._get(session_id)
        holder, expires = self._leases.get(session_id, (None, 0.0))
        now = time.monotonic()
        if holder not in (None, owner, replacing or None) and expires > now:
            return False
        self._leases[session_id] = (owner, now + ttl)
        return True

    async def renew_lease(self, session_id: str, owner: str, ttl: float) -> bool:
        self._get(session_id)
        if self._leases.get(session_id, (None, 0.0))[0] != owner:
            return False
        self._leases[session_id] = (owner, time.monotonic() + ttl)
        return True

    async def release_lease(self, session_id: str, owner: str) -> None:
        if self._leases.get(session_id, (None, 0.0))[0] == owner:
            del self._leases[session_id]

    async def push_undo(
        self, session_id: str, entry: UndoEntry, keep: int, max_bytes: int, owner: str = ""
    ) -> int:
        self._owned(session_id, owner)
        pushed = dataclasses.replace(entry, id=next(self._undo_ids))
        history = [*self._undo.get(session_id, []), pushed]
        same = [e for e in history if e.toolset == entry.toolset]
        kept = {e.id for e in trim_undo(same, keep, max_bytes)}
        self._undo[session_id] = [e for e in history if e.toolset != entry.toolset or e.id in kept]
        return pushed.id

    async def last_undo(self, session_id: str, toolset: str, target: str = "") -> UndoEntry | None:
        for entry in reversed(self._undo.get(session_id, [])):
            if entry.toolset == toolset and (not target or entry.target == target):
                return entry
        return None

    async def drop_undo(self, session_id: str, entry_id: int) -> None:
        history = self._undo.get(session_id, [])
        self._undo[session_id] = [entry for entry in history if entry.id != entry_id]

    def _owned(self, session_id: str, owner: str) -> Session:
        """The stored session, for a write by ``owner`` ("" for anyone): ``LeaseLost`` unless
        it holds the session's lease."""
        stored = self._get(session_id)
        if owner and self._leases.get(session_id, (None, 0.0))[0] != owner:
            raise LeaseLost(session_id)
        return stored

    def _get(self, session_id: str) -> Session:
        try:
            return self._sessions[session_id]
        except KeyError:
            raise UnknownSession(session_id) from None
