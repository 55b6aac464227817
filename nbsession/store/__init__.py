"""Session stores: the interface, SQLite (the default) and in-memory (tests)."""

from .base import SessionHead, Store, SummaryCursor, SummarySlice, UndoEntry
from .memory import MemoryStore
from .sqlite import SQLiteStore


def open_store(db_path: str) -> Store:
    """The store for a path: ``:memory:`` keeps sessions in this process only."""
    if db_path == ":memory:":
        return MemoryStore()
    return SQLiteStore(db_path)


__all__ = [
    "MemoryStore",
    "SQLiteStore",
    "SessionHead",
    "Store",
    "SummaryCursor",
    "SummarySlice",
    "UndoEntry",
    "open_store",
]
