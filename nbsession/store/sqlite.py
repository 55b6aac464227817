"""The default store: one SQLite file, one row per session and one row per item.

Appending a message is one INSERT and listing sessions counts items without reading their
bodies, so neither grows with the length of a conversation. sqlite3 blocks, so every call runs
on one dedicated worker thread that owns the connection; the event loop only awaits it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import ValidationError

from ..errors import Conflict, LeaseLost, NotFound, StoreError, UnknownSession
from ..session import META_FIELDS, Item, Session, SessionSummary, storable, storable_fields
from .base import SessionHead, SummaryCursor, SummarySlice, UndoEntry, summary_json

log = logging.getLogger("nbsession.store")

T = TypeVar("T")

# MIGRATIONS[n] takes the schema from user_version n to n + 1. Append new steps; never edit
# one that has shipped, since files in the wild have already run it.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        """
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            created_at TEXT NOT NULL,
            title TEXT NOT NULL,
            tools_approved INTEGER NOT NULL,
            hide_tool_results INTEGER NOT NULL,
            working_dir TEXT NOT NULL,
            max_iterations INTEGER NOT NULL,
            starred INTEGER NOT NULL,
            thinking INTEGER NOT NULL,
            input_tokens INTEGER NOT NULL,
            output_tokens INTEGER NOT NULL,
            cost REAL NOT NULL,
            permissions TEXT,
            agent_model_overrides TEXT NOT NULL,
            custom_models_used TEXT NOT NULL,
            parent_id TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE items (
            session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            message_id TEXT,
            kind TEXT NOT NULL CHECK (kind IN ('message', 'sub_session', 'summary')),
            body TEXT NOT NULL,
            PRIMARY KEY (session_id, position)
        )
        """,
        "CREATE INDEX items_message ON items(session_id, message_id)",
        # Covers the message count of list_summaries, so it never touches item rows.
        "CREATE INDEX items_kind ON items(session_id, kind)",
        "CREATE INDEX sessions_created ON sessions(created_at)",
    ),
    # 2: items may record a failed turn (kind 'error'). SQLite cannot change a CHECK in
    # place, so the table is rebuilt; positions and bodies are copied as they are.
    (
        """
        CREATE TABLE items_v2 (
            session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            message_id TEXT,
            kind TEXT NOT NULL CHECK (kind IN ('message', 'sub_session', 'summary', 'error')),
            body TEXT NOT NULL,
            PRIMARY KEY (session_id, position)
        )
        """,
        "INSERT INTO items_v2 SELECT session_id, position, message_id, kind, body FROM items",
        "DROP TABLE items",
        "ALTER TABLE items_v2 RENAME TO items",
        "CREATE INDEX items_message ON items(session_id, message_id)",
        "CREATE INDEX items_kind ON items(session_id, kind)",
    ),
    # 3: several servers on one file. ``version`` counts the writes to a session, so a server
    # knows when its in-memory copy is stale; the lease says which server runs its turn
    # (``lease_expires`` in Unix seconds: the servers sharing a file share a clock).
    (
        "ALTER TABLE sessions ADD COLUMN version INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE sessions ADD COLUMN lease_owner TEXT",
        "ALTER TABLE sessions ADD COLUMN lease_expires REAL",
    ),
    # 4: the kernel and notebook a session was started from (empty for the others).
    (
        "ALTER TABLE sessions ADD COLUMN kernel_id TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE sessions ADD COLUMN notebook_path TEXT NOT NULL DEFAULT ''",
    ),
    # 5: forks are numbered from the titles that start like theirs (``last_fork_number``).
    ("CREATE INDEX sessions_title ON sessions(title)",),
    # 6: what a tool's edits replaced, so undo works after a restart (``push_undo``).
    (
        """
        CREATE TABLE undo_entries (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            toolset TEXT NOT NULL,
            target TEXT NOT NULL,
            summary TEXT NOT NULL,
            previous TEXT NOT NULL,
            current TEXT NOT NULL
        )
        """,
        "CREATE INDEX undo_history ON undo_entries(session_id, toolset, id)",
    ),
]

# Columns of ``sessions`` that are the store's own bookkeeping, not session fields.
BOOKKEEPING_COLUMNS = frozenset({"version", "lease_owner", "lease_expires"})
# Session fields stored as JSON text rather than as a scalar column.
_JSON_COLUMNS = frozenset({"permissions", "agent_model_overrides", "custom_models_used"})
# Fixed width and UTC, so that ordering the text orders the instants.
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_SUMMARY_COLUMNS = "id, title, created_at, input_tokens, output_tokens, working_dir, starred"


class SQLiteStore:
    """Sessions in the SQLite file at ``path`` (its directory is created if missing)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None  # touched only on the worker thread

    async def open(self) -> None:
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nbsession-sqlite")
        try:
            await self._submit(self._connect)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        try:
            # The worker runs jobs in order, so every write submitted before this one finishes.
            await asyncio.get_running_loop().run_in_executor(executor, self._disconnect)
        finally:
            executor.shutdown(wait=False)

    async def ping(self) -> bool:
        try:
            return await self._run(lambda conn: conn.execute("SELECT 1").fetchone()[0] == 1)
        except Exception:
            return False

    async def create_session(self, session: Session) -> None:
        def create(conn: sqlite3.Connection) -> None:
            # Checked and encoded here, off the event loop: a session may be long (a fork).
            checked = storable(session)
            row = _columns(checked, META_FIELDS)
            names = ", ".join(row)
            marks = ", ".join("?" * len(row))
            items = [
                (session.id, position, *_item_row(item))
                for position, item in enumerate(checked.messages)
            ]
            with _transaction(conn, "IMMEDIATE"):
                inserted = conn.execute(
                    f"INSERT INTO sessions (id, {names}) VALUES (?, {marks})"
                    " ON CONFLICT(id) DO NOTHING",
                    (session.id, *row.values()),
                )
                if inserted.rowcount == 0:
                    raise Conflict(f"A session with id {session.id!r} already exists.")
                conn.executemany(
                    "INSERT INTO items (session_id, position, message_id, kind, body)"
                    " VALUES (?, ?, ?, ?, ?)",
                    items,
                )

        await self._run(create)

    async def get_session(self, session_id: str) -> Session:
        # Parsed on the worker thread too: validating a long history is CPU work the event
        # loop should not stall on.
        def read(conn: sqlite3.Connection) -> Session:
            with _transaction(conn, "DEFERRED"):  # one snapshot for the row and its items
                row = conn.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
                if row is None:
                    raise UnknownSession(session_id)
                items = conn.execute(
                    "SELECT position, body FROM items WHERE session_id = ? ORDER BY position",
                    (session_id,),
                ).fetchall()
            try:
                data = _row_fields(row)
                data["messages"] = [Item.model_validate_json(item["body"]) for item in items]
                return Session.model_validate(data)
            except (ValueError, ValidationError) as exc:
                log.error("session %s in %s is unreadable: %s", session_id, self.path, exc)
                message = f"Session {session_id!r} could not be read from the store."
                raise StoreError(message) from exc

        return await self._run(read)

    async def has_session(self, session_id: str) -> bool:
        def exists(conn: sqlite3.Connection) -> bool:
            return (
                conn.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone()
                is not None
            )

        return await self._run(exists)

    async def has_sessions(self) -> bool:
        return await self._run(
            lambda conn: conn.execute("SELECT EXISTS (SELECT 1 FROM sessions)").fetchone()[0] == 1
        )

    async def list_summaries(
        self, limit: int | None = None, before: SummaryCursor | None = None
    ) -> list[SessionSummary]:
        query = _summary_query(limit, before)

        def read(conn: sqlite3.Connection) -> list[SessionSummary]:
            rows = conn.execute(*query).fetchall()
            # Validated here, on the worker thread: 100,000 summaries are a second of CPU.
            return [SessionSummary.model_validate(dict(row)) for row in rows]

        return await self._run(read)

    async def summaries_json(
        self,
        limit: int,
        before: SummaryCursor | None = None,
        activity: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> SummarySlice:
        query = _summary_query(limit, before)
        active = activity or {}

        def read(conn: sqlite3.Connection) -> SummarySlice:
            items, last = [], None
            for row in conn.execute(*query):  # one row, one model, at a time
                fields = dict(row)
                fields["activity"] = active.get(fields["id"])
                item, last = summary_json(fields)
                items.append(item)
            return SummarySlice(b",".join(items), len(items), last)

        return await self._run(read)

    async def last_fork_number(self, title: str) -> int:
        prefix = f"{title} (fork "
        # Titles starting with the prefix sort between it and the prefix with its last
        # character (a space) raised by one: a range the title index serves.
        low, high, start = prefix, prefix[:-1] + "!", len(prefix) + 1

        def read(conn: sqlite3.Connection) -> int:
            number = "substr(title, :start, length(title) - :start)"
            row = conn.execute(
                f"SELECT MAX(CAST({number} AS INTEGER)) FROM sessions"
                " WHERE title >= :low AND title < :high AND substr(title, -1) = ')'"
                f" AND {number} <> '' AND {number} NOT GLOB '*[^0-9]*'",
                {"low": low, "high": high, "start": start},
            ).fetchone()
            return int(row[0] or 0)

        return await self._run(read)

    async def delete_session(self, session_id: str) -> None:
        def delete(conn: sqlite3.Connection) -> None:
            with _transaction(conn, "IMMEDIATE"):  # items go with it: ON DELETE CASCADE
                if conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,)).rowcount == 0:
                    raise UnknownSession(session_id)

        await self._run(delete)

    async def update_session(
        self, session_id: str, fields: Mapping[str, Any], owner: str = ""
    ) -> None:
        unknown = set(fields) - META_FIELDS
        if unknown:
            raise ValueError(f"Not session fields: {', '.join(sorted(unknown))}.")
        if not fields:
            if not await self.has_session(session_id):
                raise UnknownSession(session_id)
            return
        # Checked through the model so a bad value fails here, not on the next read.
        row = _columns(storable_fields(fields), fields)
        assignments = ", ".join(f"{name} = ?" for name in row)

        def update(conn: sqlite3.Connection) -> None:
            with _transaction(conn, "IMMEDIATE"):
                _check_owner(conn, session_id, owner)
                changed = conn.execute(
                    f"UPDATE sessions SET {assignments}, version = version + 1 WHERE id = ?",
                    (*row.values(), session_id),
                ).rowcount
                if changed == 0:
                    raise UnknownSession(session_id)

        await self._run(update)

    async def claim_title(self, session_id: str, title: str, owner: str = "") -> str:
        title = storable_fields({"title": title}).title

        def claim(conn: sqlite3.Connection) -> str:
            with _transaction(conn, "IMMEDIATE"):
                _check_owner(conn, session_id, owner)
                conn.execute(
                    "UPDATE sessions SET version = version + 1,"
                    " title = CASE WHEN title = '' THEN ? ELSE title END WHERE id = ?",
                    (title, session_id),
                )
                row = conn.execute(
                    "SELECT title FROM sessions WHERE id = ?", (session_id,)
                ).fetchone()
                if row is None:
                    raise UnknownSession(session_id)
                return str(row["title"])

        return await self._run(claim)

    async def append_item(self, session_id: str, item: Item, owner: str = "") -> int:
        values = _item_row(storable(item))

        def append(conn: sqlite3.Connection) -> int:
            # IMMEDIATE takes the write lock first, so another process cannot take the same
            # position between reading MAX(position) and inserting.
            with _transaction(conn, "IMMEDIATE"):
                _check_owner(conn, session_id, owner)
                inserted = conn.execute(
                    "INSERT INTO items (session_id, position, message_id, kind, body)"
                    " SELECT id, (SELECT COALESCE(MAX(position) + 1, 0) FROM items"
                    " WHERE session_id = sessions.id), ?, ?, ? FROM sessions WHERE id = ?"
                    " RETURNING position",
                    (*values, session_id),
                ).fetchall()
                if not inserted:
                    raise UnknownSession(session_id)
                _bump(conn, session_id)
                return int(inserted[0][0])

        return await self._run(append)

    async def update_message(
        self, session_id: str, message_id: str, item: Item, owner: str = ""
    ) -> None:
        values = _item_row(storable(item))

        def update(conn: sqlite3.Connection) -> None:
            with _transaction(conn, "IMMEDIATE"):
                _check_owner(conn, session_id, owner)
                changed = conn.execute(
                    "UPDATE items SET message_id = ?, kind = ?, body = ?"
                    " WHERE session_id = ? AND message_id = ?",
                    (*values, session_id, message_id),
                ).rowcount
                if changed:
                    _bump(conn, session_id)
                    return
                if conn.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone():
                    raise NotFound(f"Session {session_id!r} has no message with id {message_id!r}.")
                raise UnknownSession(session_id)

        await self._run(update)

    async def replace_item(
        self, session_id: str, position: int, item: Item, owner: str = ""
    ) -> None:
        values = _item_row(storable(item))

        def replace(conn: sqlite3.Connection) -> None:
            with _transaction(conn, "IMMEDIATE"):
                _check_owner(conn, session_id, owner)
                changed = conn.execute(
                    "UPDATE items SET message_id = ?, kind = ?, body = ?"
                    " WHERE session_id = ? AND position = ?",
                    (*values, session_id, position),
                ).rowcount
                if changed:
                    _bump(conn, session_id)
                    return
                if conn.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone():
                    raise NotFound(f"Session {session_id!r} has no item at position {position}.")
                raise UnknownSession(session_id)

        await self._run(replace)

    async def session_head(self, session_id: str) -> SessionHead:
        def read(conn: sqlite3.Connection) -> SessionHead:
            row = conn.execute(
                "SELECT version, CASE WHEN lease_expires > ? THEN lease_owner END AS owner"
                " FROM sessions WHERE id = ?",
                (time.time(), session_id),
            ).fetchone()
            if row is None:
                raise UnknownSession(session_id)
            return SessionHead(int(row["version"]), row["owner"])

        return await self._run(read)

    async def acquire_lease(
        self, session_id: str, owner: str, ttl: float, replacing: str = ""
    ) -> bool:
        def acquire(conn: sqlite3.Connection) -> bool:
            now = time.time()
            with _transaction(conn, "IMMEDIATE"):
                taken = conn.execute(
                    "UPDATE sessions SET lease_owner = ?, lease_expires = ? WHERE id = ? AND"
                    " (lease_owner IS NULL OR lease_owner IN (?, ?) OR lease_expires <= ?)",
                    (owner, now + ttl, session_id, owner, replacing or owner, now),
                ).rowcount
                if taken:
                    return True
                if conn.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone():
                    return False
                raise UnknownSession(session_id)

        return await self._run(acquire)

    async def renew_lease(self, session_id: str, owner: str, ttl: float) -> bool:
        def renew(conn: sqlite3.Connection) -> bool:
            with _transaction(conn, "IMMEDIATE"):
                renewed = conn.execute(
                    "UPDATE sessions SET lease_expires = ? WHERE id = ? AND lease_owner = ?",
                    (time.time() + ttl, session_id, owner),
                ).rowcount
                if renewed:
                    return True
                if conn.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone():
                    return False
                raise UnknownSession(session_id)

        return await self._run(renew)

    async def release_lease(self, session_id: str, owner: str) -> None:
        def release(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE sessions SET lease_owner = NULL, lease_expires = NULL"
                " WHERE id = ? AND lease_owner = ?",
                (session_id, owner),
            )

        await self._run(release)

    async def push_undo(
        self, session_id: str, entry: UndoEntry, keep: int, max_bytes: int, owner: str = ""
    ) -> int:
        def push(conn: sqlite3.Connection) -> int:
            with _transaction(conn, "IMMEDIATE"):
                _check_owner(conn, session_id, owner)
                if not conn.execute(
                    "SELECT 1 FROM sessions WHERE id = ?", (session_id,)
                ).fetchone():
                    raise UnknownSession(session_id)
                entry_id = conn.execute(
                    "INSERT INTO undo_entries"
                    " (session_id, toolset, target, summary, previous, current)"
                    " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                    (
                        session_id,
                        entry.toolset,
                        entry.target,
                        entry.summary,
                        entry.previous,
                        entry.current,
                    ),
                ).fetchone()[0]
                # Newest first: the n-th entry and the bytes of the n newest (trim_undo's rule).
                conn.execute(
                    "DELETE FROM undo_entries WHERE id IN (SELECT id FROM (SELECT id,"
                    " ROW_NUMBER() OVER newest AS n,"
                    " SUM(length(CAST(previous AS BLOB))) OVER newest AS total"
                    " FROM undo_entries WHERE session_id = ? AND toolset = ?"
                    " WINDOW newest AS (ORDER BY id DESC))"
                    " WHERE n > 1 AND (n > ? OR total > ?))",
                    (session_id, entry.toolset, keep, max_bytes),
                )
                return int(entry_id)

        return await self._run(push)

    async def last_undo(self, session_id: str, toolset: str, target: str = "") -> UndoEntry | None:
        def read(conn: sqlite3.Connection) -> UndoEntry | None:
            row = conn.execute(
                "SELECT id, toolset, target, summary, previous, current FROM undo_entries"
                " WHERE session_id = ? AND toolset = ? AND (? = '' OR target = ?)"
                " ORDER BY id DESC LIMIT 1",
                (session_id, toolset, target, target),
            ).fetchone()
            return None if row is None else UndoEntry(**dict(row))

        return await self._run(read)

    async def drop_undo(self, session_id: str, entry_id: int) -> None:
        await self._run(
            lambda conn: conn.execute(
                "DELETE FROM undo_entries WHERE session_id = ? AND id = ?", (session_id, entry_id)
            )
        )

    async def _run(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``job`` with the connection, on the worker thread that owns it."""
        return await self._submit(lambda: job(self._connection()))

    async def _submit(self, call: Callable[[], T]) -> T:
        """Run ``call`` on the worker thread, turning SQLite failures into ``StoreError``."""
        if self._executor is None:
            raise StoreError(f"The session store {self.path} is not open.")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, call)
        except sqlite3.Error as exc:
            # The path and SQLite's words are for the server log, not for clients.
            log.error("session store %s failed: %s", self.path, exc)
            raise StoreError("The session store failed; the server log has the details.") from exc

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:  # open() failed, or close() ran first
            raise StoreError(f"The session store {self.path} is not open.")
        return self._conn

    def _connect(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: no implicit transactions; _transaction says where each begins.
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode = WAL")
            # In WAL mode NORMAL loses nothing when the process dies (kill -9, a crash): commits
            # are in the WAL file already. Only an OS crash or power loss may drop the last ones.
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA busy_timeout = 5000")
            _migrate(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


@contextmanager
def _transaction(
    conn: sqlite3.Connection, mode: Literal["DEFERRED", "IMMEDIATE"]
) -> Iterator[None]:
    """Commit what the block did, or roll all of it back if it raised."""
    conn.execute(f"BEGIN {mode}")
    try:
        yield
    except BaseException:
        if conn.in_transaction:  # SQLite may have rolled back already (disk full, I/O error)
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _migrate(conn: sqlite3.Connection) -> None:
    """Apply the migrations this file has not run yet, all or none."""
    with _transaction(conn, "IMMEDIATE"):  # read the version under the lock: one migrator wins
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StoreError(
                f"Schema version {version} is newer than this nbsession knows ({len(MIGRATIONS)})."
            )
        for statements in MIGRATIONS[version:]:
            for statement in statements:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")


def _summary_query(limit: int | None, before: SummaryCursor | None) -> tuple[str, list[Any]]:
    """The session list's SELECT: the index on created_at serves the order and the cursor's
    range (only sessions at the cursor's exact instant are compared by id); messages are
    counted on the items index, never read. LIMIT -1 is SQLite's "no limit"."""
    where, params = "", []
    if before is not None:
        instant = _instant(before.created_at)
        where = " WHERE created_at <= ? AND (created_at < ? OR id < ?)"
        params = [instant, instant, before.id]
    sql = (
        f"SELECT {_SUMMARY_COLUMNS}, (SELECT COUNT(*) FROM items"
        " WHERE items.session_id = sessions.id AND items.kind = 'message') AS num_messages"
        f" FROM sessions{where} ORDER BY created_at DESC, id DESC LIMIT ?"
    )
    return sql, [*params, -1 if limit is None else limit]  # type: ignore[list-item]


def _instant(moment: datetime) -> str:
    """How a time is stored: fixed-width UTC text, so text order is time order."""
    return moment.astimezone(timezone.utc).strftime(_TIME_FORMAT)


def _check_owner(conn: sqlite3.Connection, session_id: str, owner: str) -> None:
    """Inside a write's transaction: ``LeaseLost`` unless ``owner`` ("" for anyone) holds the
    session's lease, so the write and the check see one state of the file."""
    if not owner:
        return
    row = conn.execute("SELECT lease_owner FROM sessions WHERE id = ?", (session_id,)).fetchone()
    if row is None:
        raise UnknownSession(session_id)
    if row["lease_owner"] != owner:
        raise LeaseLost(session_id)


def _bump(conn: sqlite3.Connection, session_id: str) -> None:
    """Count one more write to the session (inside the write's transaction)."""
    conn.execute("UPDATE sessions SET version = version + 1 WHERE id = ?", (session_id,))


def _columns(session: Session, names: Iterable[str]) -> dict[str, Any]:
    """The column values of some of a session's own fields."""
    row = session.model_dump(mode="json", include=set(names))
    for name in _JSON_COLUMNS & row.keys():
        row[name] = None if row[name] is None else json.dumps(row[name])
    if "created_at" in row:
        row["created_at"] = _instant(session.created_at)
    return row


def _row_fields(row: sqlite3.Row) -> dict[str, Any]:
    """The session fields of a ``sessions`` row (JSON columns parsed)."""
    fields = dict(row)
    for name in _JSON_COLUMNS:
        if fields[name] is not None:
            fields[name] = json.loads(fields[name])
    return fields


def _item_row(item: Item) -> tuple[str | None, str, str]:
    """``message_id, kind, body`` of an item."""
    message_id = item.message.id if item.message is not None else None
    return message_id, item.kind, json.dumps(item.to_json())
