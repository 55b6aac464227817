"""The store interface every backend implements (SQLite now, PostgreSQL later).

A session is one row of settings plus one row per item, so appending a message is a single
insert and listing sessions never reads message bodies. Every method is a coroutine: a backend
that does blocking I/O runs it off the event loop.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, NamedTuple, Protocol, runtime_checkable

from pydantic import TypeAdapter

from ..errors import InvalidRequest
from ..session import Item, Session, SessionSummary


@dataclass(frozen=True)
class SessionHead:
    """What a server checks before serving or running a session it holds in memory."""

    version: int  # bumped by exactly one on every write to the session or its items
    lease_owner: str | None  # who runs a turn on it now; None when free or expired


@dataclass(frozen=True)
class UndoEntry:
    """The version before one edit a tool made, kept so that the edit can be taken back
    (the jupyter toolset's cell edits). The store keeps the texts as they are given; only the
    toolset that wrote an entry reads ``previous`` and ``current``."""

    toolset: str  # whose history it is: one toolset never undoes another's edits
    target: str  # what the edit changed (a notebook's path): undo may ask for one target's
    summary: str  # the edit in words, for the undo's answer ("Replaced cell 2 of a.ipynb")
    previous: str  # the version before the edit, encoded by the toolset
    current: str  # a digest of the version the edit wrote: undo refuses once it moved on
    id: int = 0  # the store's number for it, growing with each push (0 until pushed)


def trim_undo(entries: list[UndoEntry], keep: int, max_bytes: int) -> list[UndoEntry]:
    """The newest of ``entries`` (oldest first) within the bounds ``push_undo`` states."""
    kept: list[UndoEntry] = []
    total = 0
    for entry in reversed(entries):
        total += len(entry.previous.encode())
        if kept and (len(kept) >= keep or total > max_bytes):
            break
        kept.append(entry)
    return kept[::-1]


class SummaryCursor(NamedTuple):
    """A place in the session list (newest ``created_at`` first, then greatest ``id``): the
    last session a page showed. The next page holds the sessions strictly after it, so a
    session created or deleted between two pages neither repeats nor hides another one."""

    created_at: datetime
    id: str

    @classmethod
    def after(cls, summary: SessionSummary) -> SummaryCursor:
        return cls(summary.created_at, summary.id)

    def encode(self) -> str:
        """Opaque to clients: URL- and header-safe base64 of ``[created_at, id]``."""
        instant = self.created_at.astimezone(timezone.utc).isoformat()
        raw = json.dumps([instant, self.id], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> SummaryCursor:
        """The cursor ``encode`` made; ``InvalidRequest`` naming ``before`` for anything else."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            instant, session_id = json.loads(raw)
            created_at = datetime.fromisoformat(instant)
            if not isinstance(session_id, str) or created_at.tzinfo is None:
                raise ValueError(text)
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, RecursionError):
            raise InvalidRequest(
                "before must be a cursor from a previous page (its X-Next-Cursor header).",
                field="before",
            ) from None
        return cls(created_at, session_id)

    def precedes(self, summary: SessionSummary) -> bool:
        """Whether ``summary`` comes after this place in the newest-first order."""
        return (summary.created_at, summary.id) < (self.created_at, self.id)


class SummarySlice(NamedTuple):
    """A slice of the session list in its JSON wire form (``summaries_json``)."""

    items: bytes  # the summaries' JSON objects, comma-separated, without the brackets
    count: int
    last: SummaryCursor | None  # the place after the last one; None when the slice is empty


def summary_json(fields: Mapping[str, Any]) -> tuple[bytes, SummaryCursor]:
    """One summary's JSON object (docker-agent's names) from its fields, checked by the model,
    and the place after it. The model lives only for this call: a store encoding a long list
    row by row leaves no objects behind to fill the heap's oldest generation (whose full
    collection would hold every thread, the event loop's too, for a quarter second)."""
    summary = SessionSummary.model_validate(fields)
    return _SUMMARY.dump_json(summary, by_alias=True), SummaryCursor.after(summary)


_SUMMARY: TypeAdapter[SessionSummary] = TypeAdapter(SessionSummary)


@runtime_checkable
class Store(Protocol):
    """Durable sessions. Every write is committed when its coroutine returns.

    Every write first passes ``session.storable``: a value that would not read back (a lone
    surrogate, a number out of range, one set on a model without validation) raises
    ``UnstorableValue`` and nothing is written, so no session becomes unreadable.

    Several servers may share one store. Two things keep them apart: a version on each
    session, bumped by exactly one per write (``create_session`` starts it at 0), so a server
    can tell whether its in-memory copy is still current; and a turn lease (owner id and
    expiry), taken in one conditional write, so one server at a time runs or edits a session.
    A backend with a server clock does the lease as ``UPDATE sessions SET lease_owner = :me,
    lease_expires = now() + :ttl WHERE id = :id AND (lease_owner IS NULL OR lease_owner = :me
    OR lease_owner = :replacing OR lease_expires < now())``.

    The writes that take an ``owner`` (a server id) check in their own transaction that it
    holds the lease (``lease_owner = :owner``, expired or not: nobody took it over) and raise
    ``LeaseLost`` otherwise, writing nothing; in PostgreSQL, ``SELECT lease_owner ... FOR
    UPDATE`` first in the transaction. An empty ``owner`` writes unconditionally.
    """

    async def open(self) -> None:
        """Prepare the backend (create or migrate the schema). Called once before use."""

    async def close(self) -> None:
        """Release connections and threads; pending writes are finished first."""

    async def ping(self) -> bool:
        """True when the backend answers a trivial query (for ``/ready``)."""

    async def create_session(self, session: Session) -> None:
        """Insert the session row and all its items in one transaction.

        Raises ``Conflict`` if a session with that id exists.
        """

    async def get_session(self, session_id: str) -> Session:
        """The session with all its items in order; ``UnknownSession`` if absent."""

    async def has_session(self, session_id: str) -> bool: ...

    async def has_sessions(self) -> bool:
        """Whether any session is stored: an existence question, never a listing."""

    async def list_summaries(
        self, limit: int | None = None, before: SummaryCursor | None = None
    ) -> list[SessionSummary]:
        """Sessions newest ``created_at`` first (then greatest ``id``), built without reading
        item bodies and validated off the event loop: at most ``limit`` of them (every one
        when None), those after ``before`` when given."""

    async def last_fork_number(self, title: str) -> int:
        """The greatest N among sessions titled ``<title> (fork N)`` (N in ASCII digits), 0
        when there is none: how a fork is numbered, asked of the store instead of reading
        every session (SQL: a range on the indexed title, then ``MAX`` of the number)."""

    async def summaries_json(
        self,
        limit: int,
        before: SummaryCursor | None = None,
        activity: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> SummarySlice:
        """The summaries ``list_summaries(limit, before)`` would return, encoded row by row
        (``summary_json``) off the event loop: how a long list is streamed. ``activity`` (by
        session id: what its turn does, which the caller knows and the store never keeps)
        fills the rows it names."""

    async def delete_session(self, session_id: str) -> None:
        """Remove the session and its items; ``UnknownSession`` if absent."""

    async def update_session(
        self, session_id: str, fields: Mapping[str, Any], owner: str = ""
    ) -> None:
        """Set some of the session's own fields (``session.META_FIELDS``), leaving the rest.

        Field-level so that two writers changing different fields never undo each other.
        ``UnknownSession`` if absent; ``ValueError`` for a name outside ``META_FIELDS``;
        ``UnstorableValue`` for a value the field cannot hold.
        """

    async def claim_title(self, session_id: str, title: str, owner: str = "") -> str:
        """Set the title only if the session has none; return the title it has afterwards.

        A generated title must never overwrite one a person set meanwhile, possibly through
        another server: the check and the write are one atomic step in the store.
        """

    async def append_item(self, session_id: str, item: Item, owner: str = "") -> int:
        """Append one item at the end of the session and return its position (0-based)."""

    async def update_message(
        self, session_id: str, message_id: str, item: Item, owner: str = ""
    ) -> None:
        """Replace the item holding the message ``message_id``; ``NotFound`` if none."""

    async def replace_item(
        self, session_id: str, position: int, item: Item, owner: str = ""
    ) -> None:
        """Replace the item at ``position`` (a sub-session that grows while its agent works);
        ``NotFound`` if the session has no item there."""

    async def session_head(self, session_id: str) -> SessionHead:
        """The session's version and current lease owner; ``UnknownSession`` if absent."""

    async def acquire_lease(
        self, session_id: str, owner: str, ttl: float, replacing: str = ""
    ) -> bool:
        """Take, or renew, the session's lease for ``owner`` until ``ttl`` seconds from now.

        True when ``owner`` holds it afterwards; False while another owner's lease has not
        expired, unless that owner is ``replacing`` (one the caller knows to be dead).
        ``UnknownSession`` if absent. Does not change the version.
        """

    async def renew_lease(self, session_id: str, owner: str, ttl: float) -> bool:
        """Extend ``owner``'s lease to ``ttl`` seconds from now if it still holds it (expired
        or not: nobody took it since). False once another owner took it or it was given back:
        a stalled server must not take back a session another ran meanwhile.
        ``UnknownSession`` if absent. Does not change the version.
        """

    async def release_lease(self, session_id: str, owner: str) -> None:
        """Give the lease up if ``owner`` holds it; a no-op otherwise, or if the session is gone."""

    async def push_undo(
        self, session_id: str, entry: UndoEntry, keep: int, max_bytes: int, owner: str = ""
    ) -> int:
        """Add ``entry`` (its ``id`` ignored) to the session's undo history and return the id
        it got; then drop the oldest entries of its toolset's history beyond the newest
        ``keep``, or once their ``previous`` texts pass ``max_bytes`` in UTF-8 (the newest is
        always kept), in the same transaction (``trim_undo``). ``UnknownSession`` if absent.

        Like a turn's other writes it lands only while ``owner`` holds the lease (see the
        class), so a server that lost the turn does not add to the history of a session
        another server now runs. The history is not part of the session: its version does not
        change. It goes with the session when that is deleted (SQL: a foreign key with
        ``ON DELETE CASCADE``).
        """

    async def last_undo(self, session_id: str, toolset: str, target: str = "") -> UndoEntry | None:
        """The newest entry of ``toolset``'s history in the session (of ``target`` when
        given), or None: none left, or no such session."""

    async def drop_undo(self, session_id: str, entry_id: int) -> None:
        """Forget one entry (its edit was undone); a no-op if it is already gone."""
