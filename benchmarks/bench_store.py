"""Session stores: SQLiteStore against MemoryStore (the baseline), in the same process.

- ``append_item`` latency (p50/p95/p99) on sessions that already hold 10 / 1,000 / 10,000
  items: SQLite appends are one INSERT, so they should not grow with the history;
- ``get_session`` time for the same sessions (this one does read every item);
- ``list_summaries`` with 1,000 sessions x 50 items, which must not read item bodies (the
  query plan is printed, and the timing is repeated with bodies 8x larger);
- ``create_session`` throughput, and ``update_session`` latency (called after every model
  response by the runtime);
- the cost of one hop to the store's worker thread, which every SQLite call pays.

    python benchmarks/bench_store.py            # ~10 s on 2 cores
    python benchmarks/bench_store.py --quick    # ~4 s
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _util import fmt, header, median, percentile, ratio, table

from nbsession.session import ChatMessage, Item, Message, Session
from nbsession.store import MemoryStore, SQLiteStore, Store

WORDS = ["the", "agent", "streams", "its", "answer", "over", "the", "quick", "fox"]


def text(size: int, seed: int) -> str:
    words = [WORDS[(seed + i) % len(WORDS)] for i in range(size // 5 + 1)]
    return " ".join(words)[:size]


def item(index: int, body: int = 200) -> Item:
    """A message item like the runtime stores: user and assistant turns, ~``body`` chars."""
    role = "user" if index % 2 == 0 else "assistant"
    chat = ChatMessage(
        role=role, content=text(body, index), created_at="2026-11-25T10:00:00.000000+00:00"
    )
    if role == "assistant":
        chat.model = "demo/offline"
    return Item(message=Message(agent_name="root", message=chat))


def session_with(items: int, body: int = 200) -> Session:
    return Session(
        title="bench", working_dir="/tmp", messages=[item(i, body) for i in range(items)]
    )


async def timed(call: Callable[[], Awaitable[Any]], count: int) -> list[float]:
    """Seconds taken by each of ``count`` sequential awaits of ``call()``."""
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - start)
    return samples


def us(seconds: float) -> str:
    return fmt(seconds * 1e6)


async def open_pair(directory: str, name: str) -> tuple[SQLiteStore, MemoryStore]:
    sqlite_store = SQLiteStore(os.path.join(directory, f"{name}.db"))
    memory_store = MemoryStore()
    await sqlite_store.open()
    await memory_store.open()
    return sqlite_store, memory_store


# -- append / get --------------------------------------------------------------------------


async def appends_and_reads(directory: str, sizes: list[int], appends: int, reads: int) -> None:
    sqlite_store, memory_store = await open_pair(directory, "history")
    stores: dict[str, Store] = {"sqlite": sqlite_store, "memory": memory_store}
    append_rows, get_rows = [], []
    try:
        for size in sizes:
            base = session_with(size)
            latencies: dict[str, list[float]] = {}
            gets: dict[str, list[float]] = {}
            for name, store in stores.items():
                session = base.model_copy(update={"id": f"{name}-{size}"})
                await store.create_session(session)
                # Reads first, while the session holds exactly ``size`` items.
                get_count = max(3, reads if size <= 1000 else reads // 10)
                gc.collect()
                gets[name] = await timed(
                    lambda s=store, sid=session.id: s.get_session(sid), get_count
                )
                gc.disable()  # how much of a read is the cyclic GC walking new objects
                try:
                    gets[f"{name}-nogc"] = await timed(
                        lambda s=store, sid=session.id: s.get_session(sid), get_count
                    )
                finally:
                    gc.enable()
                new = [item(size + i) for i in range(appends)]
                feed = iter(new)
                # Warm up (statement cache, first page reads), then measure.
                for _ in range(5):
                    await store.append_item(session.id, item(0))
                gc.collect()
                latencies[name] = await timed(
                    lambda s=store, sid=session.id, f=feed: s.append_item(sid, next(f)), appends
                )
            sq, me = latencies["sqlite"], latencies["memory"]
            append_rows.append(
                [
                    f"{size:,}",
                    us(percentile(sq, 50)),
                    us(percentile(sq, 95)),
                    us(percentile(sq, 99)),
                    us(percentile(me, 50)),
                    us(percentile(me, 95)),
                    us(percentile(me, 99)),
                    ratio(percentile(sq, 50), percentile(me, 50)),
                ]
            )
            sg, mg = median(gets["sqlite"]), median(gets["memory"])
            per_item = sg / size * 1e6
            nogc = median(gets["sqlite-nogc"])
            get_rows.append(
                [
                    f"{size:,}",
                    fmt(sg * 1e3, 2),
                    fmt(mg * 1e3, 2),
                    ratio(sg, mg),
                    fmt(per_item, 1),
                    fmt(nogc * 1e3, 2),
                    f"{(1 - nogc / sg) * 100:.0f}%",
                ]
            )
    finally:
        await sqlite_store.close()
    table(
        f"append_item latency, µs ({appends} appends per size, after 5 warm-up)",
        [
            "existing items",
            "sqlite p50",
            "p95",
            "p99",
            "memory p50",
            "p95",
            "p99",
            "sqlite/memory p50",
        ],
        append_rows,
    )
    table(
        "get_session, ms (median; reads and validates every item)",
        [
            "items",
            "sqlite",
            "memory",
            "sqlite/memory",
            "sqlite µs/item",
            "sqlite, GC off",
            "GC share",
        ],
        get_rows,
    )


# -- list_summaries ------------------------------------------------------------------------


async def fill(store: Store, sessions: int, items: int, body: int) -> float:
    """Create ``sessions`` sessions of ``items`` items; returns the seconds it took."""
    template = session_with(items, body)
    start = time.perf_counter()
    for _ in range(sessions):
        await store.create_session(template.model_copy(update={"id": Session().id}))
    return time.perf_counter() - start


async def summaries(directory: str, sessions: int, items: int, reps: int) -> None:
    rows = []
    plan: list[str] = []
    for body in (200, 1600):
        sqlite_store, memory_store = await open_pair(directory, f"list-{body}")
        try:
            fill_sq = await fill(sqlite_store, sessions, items, body)
            fill_me = await fill(memory_store, sessions, items, body)
            listed = await sqlite_store.list_summaries()
            assert len(listed) == sessions and listed[0].num_messages == items
            sq = median(await timed(sqlite_store.list_summaries, reps))
            me = median(await timed(memory_store.list_summaries, reps))
            size_mib = file_mib(sqlite_store.path)
            rows.append(
                [
                    f"{sessions:,} x {items} items, ~{body} B bodies",
                    fmt(sq * 1e3, 2),
                    fmt(me * 1e3, 2),
                    ratio(sq, me),
                    fmt(size_mib, 1),
                    f"{fill_sq:.1f} / {fill_me:.1f}",
                ]
            )
            if not plan:
                plan = query_plan(sqlite_store.path)
        finally:
            await sqlite_store.close()
    table(
        f"list_summaries, ms (median of {reps})",
        ["sessions", "sqlite", "memory", "sqlite/memory", "db MiB", "fill s (sq/mem)"],
        rows,
    )
    print("query plan of list_summaries (SQLite):")
    for step in plan:
        print(f"  {step}")


def file_mib(path: str) -> float:
    return Path(path).stat().st_size / 2**20


def query_plan(path: str) -> list[str]:
    """EXPLAIN QUERY PLAN of the store's own summary query (read from a second connection)."""
    from nbsession.store.sqlite import _SUMMARY_COLUMNS

    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            f"EXPLAIN QUERY PLAN SELECT {_SUMMARY_COLUMNS}, (SELECT COUNT(*) FROM items"
            " WHERE items.session_id = sessions.id AND items.kind = 'message') AS num_messages"
            " FROM sessions ORDER BY created_at DESC, rowid DESC"
        ).fetchall()
    finally:
        conn.close()
    return [row[-1] for row in rows]


# -- create / update / thread hop ------------------------------------------------------------


async def creates_and_updates(directory: str, creates: int, updates: int) -> None:
    sqlite_store, memory_store = await open_pair(directory, "create")
    rows = []
    try:
        results: dict[str, dict[str, float]] = {}
        for name, store in (("sqlite", sqlite_store), ("memory", memory_store)):
            sessions = [Session(title=f"s{i}", working_dir="/tmp") for i in range(creates)]
            feed = iter(sessions)
            start = time.perf_counter()
            for _ in range(creates):
                await store.create_session(next(feed))
            empty_rate = creates / (time.perf_counter() - start)
            ten = [session_with(10) for _ in range(creates // 4)]
            for session in ten:
                session.id = Session().id
            start = time.perf_counter()
            for session in ten:
                await store.create_session(session)
            ten_rate = len(ten) / (time.perf_counter() - start)
            target = sessions[0].id
            counter = iter(range(10**9))
            samples = await timed(
                lambda s=store, t=target, c=counter: s.update_session(
                    t, {"input_tokens": next(c), "output_tokens": 7, "cost": 0.0}
                ),
                updates,
            )
            results[name] = {
                "empty": empty_rate,
                "ten": ten_rate,
                "u50": percentile(samples, 50),
                "u99": percentile(samples, 99),
            }
        sq, me = results["sqlite"], results["memory"]
        rows = [
            [
                "create_session, empty (sessions/s)",
                fmt(sq["empty"], 0),
                fmt(me["empty"], 0),
                ratio(sq["empty"], me["empty"]),
            ],
            [
                "create_session, 10 items (sessions/s)",
                fmt(sq["ten"], 0),
                fmt(me["ten"], 0),
                ratio(sq["ten"], me["ten"]),
            ],
            [
                "update_session 3 fields, p50 µs",
                us(sq["u50"]),
                us(me["u50"]),
                ratio(sq["u50"], me["u50"]),
            ],
            [
                "update_session 3 fields, p99 µs",
                us(sq["u99"]),
                us(me["u99"]),
                ratio(sq["u99"], me["u99"]),
            ],
        ]
    finally:
        await sqlite_store.close()
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=1) as pool:
        hops = await timed(lambda: loop.run_in_executor(pool, int), 2000)
    rows.append(
        ["one worker-thread hop (run_in_executor), p50 µs", us(percentile(hops, 50)), "-", "-"]
    )
    table("create / update / thread hop", ["operation", "sqlite", "memory", "sqlite/memory"], rows)


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="nbsession-bench-", dir=args.dir) as directory:
        await appends_and_reads(directory, args.sizes, args.appends, reads=args.reads)
        await summaries(directory, args.sessions, args.items, reps=args.list_reps)
        await creates_and_updates(directory, args.creates, args.updates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repetitions")
    parser.add_argument("--dir", default=None, help="where the temporary SQLite files go")
    args = parser.parse_args()
    args.sizes = [10, 1_000, 10_000]
    args.appends = 300 if args.quick else 1000
    args.reads = 10 if args.quick else 30
    args.sessions = 300 if args.quick else 1000
    args.items = 50
    args.list_reps = 5 if args.quick else 15
    args.creates = 400 if args.quick else 2000
    args.updates = 300 if args.quick else 1000
    header(
        "bench_store",
        f"{args.appends} appends per size, list {args.sessions:,} x {args.items} items, "
        f"{args.creates:,} creates; SQLite WAL, synchronous=NORMAL, files in "
        f"{args.dir or tempfile.gettempdir()}",
    )
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
