"""The store interface every backend implements (SQLite now, PostgreSQL later).

A session is one row of settings plus one row per item, so appending a message is a single
insert and listing sessions never reads message bodies. Every method is a coroutine: a backend
that does blocking I/O runs it off the event loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from ..session import Item, Session, SessionSummary


@runtime_checkable
class Store(Protocol):
    """Durable sessions. Every write is committed when its coroutine returns.

    Every write first passes ``session.storable``: a value that would not read back (a lone
    surrogate, a number out of range, one set on a model without validation) raises
    ``UnstorableValue`` and nothing is written, so no session becomes unreadable.
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

    async def list_summaries(self) -> list[SessionSummary]:
        """Every session, newest ``created_at`` first, built without reading item bodies."""

    async def delete_session(self, session_id: str) -> None:
        """Remove the session and its items; ``UnknownSession`` if absent."""

    async def update_session(self, session_id: str, fields: Mapping[str, Any]) -> None:
        """Set some of the session's own fields (``session.META_FIELDS``), leaving the rest.

        Field-level so that two writers changing different fields never undo each other.
        ``UnknownSession`` if absent; ``ValueError`` for a name outside ``META_FIELDS``;
        ``UnstorableValue`` for a value the field cannot hold.
        """

    async def claim_title(self, session_id: str, title: str) -> str:
        """Set the title only if the session has none; return the title it has afterwards.

        A generated title must never overwrite one a person set meanwhile, possibly through
        another server: the check and the write are one atomic step in the store.
        """

    async def append_item(self, session_id: str, item: Item) -> int:
        """Append one item at the end of the session and return its position (0-based)."""

    async def update_message(self, session_id: str, message_id: str, item: Item) -> None:
        """Replace the item holding the message ``message_id``; ``NotFound`` if none."""
