"""The ``memory`` toolset: facts an agent keeps across sessions (docker-agent's tool names).

Like docker-agent, each agent file gets its own SQLite file, ``<data dir>/memory/<agent
source id>/memory.db`` (the data dir is the one beside nbsession's session store), or the file
the ``path`` option names (relative to the agent file). Every session of that agent reads and
writes the same memories; SQLite's own locking keeps concurrent sessions and servers safe. With
no data dir (a ``:memory:`` store) and no ``path``, memories last as long as the runtime.

Reading tools are read-only; adding, updating and deleting ask unless permitted, as in
docker-agent. Database work runs on a thread.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from .base import ArgsT, FixedToolset, Tool, ToolContext, ToolsetEnv, agent_state_path


class MemoryOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    path: str = Field("", description="The SQLite file (default: per agent, in the data dir)")


class AddMemoryArgs(BaseModel):
    memory: str = Field(description="The memory content to store")
    category: str = Field(
        "",
        description="Optional category to organize the memory (e.g. preference, fact, project)",
    )


class NoArgs(BaseModel):
    pass


class DeleteMemoryArgs(BaseModel):
    id: str = Field(description="The ID of the memory to delete")


class SearchMemoriesArgs(BaseModel):
    query: str = Field(
        "",
        description="Keywords to search for in memory content (space-separated, all must match)",
    )
    category: str = Field("", description="Optional category to filter by")


class UpdateMemoryArgs(BaseModel):
    id: str = Field(description="The ID of the memory to update")
    memory: str = Field(description="The new memory content")
    category: str = Field("", description="Optional new category for the memory")


class _Missing(Exception):
    """No memory has the id the model gave."""


class MemoryToolset(FixedToolset):
    """``add_memory``, ``get_memories``, ``search_memories``, ``update_memory``,
    ``delete_memory`` over one SQLite file (see the module docstring)."""

    type: ClassVar[str] = "memory"
    options_model = MemoryOptions

    def __init__(
        self, options: Mapping[str, Any] | None = None, env: ToolsetEnv | None = None
    ) -> None:
        self._options = MemoryOptions.model_validate(dict(options or {}))
        self._path = agent_state_path(
            self._options.path, env or ToolsetEnv(), "memory", "memory.db", ":memory:"
        )
        self._db: _MemoryDB | None = None
        self._tools: list[Tool] = [
            self._tool(
                "add_memory",
                "Add Memory",
                "Add a new memory to the database",
                AddMemoryArgs,
                self._add,
                read_only=False,
            ),
            self._tool(
                "get_memories",
                "Get Memories",
                "Retrieve all stored memories",
                NoArgs,
                self._get,
                read_only=True,
            ),
            self._tool(
                "delete_memory",
                "Delete Memory",
                "Delete a specific memory by ID",
                DeleteMemoryArgs,
                self._delete,
                read_only=False,
            ),
            self._tool(
                "search_memories",
                "Search Memories",
                "Search memories by keywords and/or category. More efficient than retrieving "
                "all memories.",
                SearchMemoriesArgs,
                self._search,
                read_only=True,
            ),
            self._tool(
                "update_memory",
                "Update Memory",
                "Update an existing memory's content and/or category by ID",
                UpdateMemoryArgs,
                self._update,
                read_only=False,
            ),
        ]

    @property
    def path(self) -> str:
        """The SQLite file, or ``:memory:``."""
        return self._path

    async def close(self) -> None:
        if self._db is not None:
            await asyncio.to_thread(self._db.close)
            self._db = None

    def _tool(
        self,
        name: str,
        title: str,
        description: str,
        args: type[ArgsT],
        work: Callable[[_MemoryDB, ArgsT], str],
        *,
        read_only: bool,
    ) -> Tool:
        async def run(parsed: ArgsT, ctx: ToolContext) -> str:
            if self._db is None:
                self._db = _MemoryDB(self._path)
            return await asyncio.to_thread(work, self._db, parsed)

        return self.function_tool(
            name, description, args, run, read_only=read_only, title=title, refused=(_Missing,)
        )

    @staticmethod
    def _add(db: _MemoryDB, args: AddMemoryArgs) -> str:
        memory_id = str(time.time_ns())
        db.write(
            "INSERT INTO memories (id, created_at, memory, category) VALUES (?, ?, ?, ?)",
            (memory_id, _now(), args.memory, args.category),
        )
        return f"Memory added successfully with ID: {memory_id}"

    @staticmethod
    def _get(db: _MemoryDB, args: NoArgs) -> str:
        return json.dumps(db.select("", ()), ensure_ascii=False)

    @staticmethod
    def _search(db: _MemoryDB, args: SearchMemoriesArgs) -> str:
        conditions, values = [], []
        for word in args.query.split():
            escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            conditions.append("LOWER(memory) LIKE LOWER(?) ESCAPE '\\'")
            values.append(f"%{escaped}%")
        if args.category:
            conditions.append("LOWER(category) = LOWER(?)")
            values.append(args.category)
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        return json.dumps(db.select(where, tuple(values)), ensure_ascii=False)

    @staticmethod
    def _update(db: _MemoryDB, args: UpdateMemoryArgs) -> str:
        changed = db.write(
            "UPDATE memories SET memory = ?, category = ? WHERE id = ?",
            (args.memory, args.category, args.id),
        )
        if not changed:
            raise _Missing(f"memory not found: {args.id}")
        return f"Memory with ID {args.id} updated successfully"

    @staticmethod
    def _delete(db: _MemoryDB, args: DeleteMemoryArgs) -> str:
        if not db.write("DELETE FROM memories WHERE id = ?", (args.id,)):
            raise _Missing(f"memory not found: {args.id}")
        return f"Memory with ID {args.id} deleted successfully"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


class _MemoryDB:
    """One connection, used from worker threads one at a time (hence the lock)."""

    def __init__(self, path: str) -> None:
        if path != ":memory:":
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            path, check_same_thread=False, timeout=30, isolation_level=None
        )
        self._conn.row_factory = sqlite3.Row
        if path != ":memory:":
            self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS memories "
            "(id TEXT PRIMARY KEY, created_at TEXT, memory TEXT, category TEXT DEFAULT '')"
        )

    def write(self, sql: str, values: tuple[Any, ...]) -> int:
        with self._lock:
            return self._conn.execute(sql, values).rowcount

    def select(self, where: str, values: tuple[Any, ...]) -> list[dict[str, str]]:
        sql = "SELECT id, created_at, memory, COALESCE(category, '') AS category FROM memories"
        with self._lock:
            rows = self._conn.execute(f"{sql}{where} ORDER BY created_at, id", values).fetchall()
        return [dict(row) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
