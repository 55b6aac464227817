"""A long session list on the wire: does listing it stall the server?

A real ``jupyter nbsession`` subprocess (``launcher.py``) on a SQLite file
that already holds N sessions (written through ``SQLiteStore`` before the server starts).
Measured with httpx:

- start-up: time until ``/health`` answers (the store is asked whether it holds sessions,
  never for the list);
- ``GET /api/sessions`` (the whole list) and ``?limit=100`` (a first page, then one after a
  cursor): time to the full body and its size;
- the stall: while the whole list is fetched, a second connection sends ``GET /health`` back
  to back; its slowest answer is how long the event loop was held (baseline: the same probe
  with nothing else running). The server also runs under ``loop_watch_server.py``, which
  records from inside how late its event loop woke a 1 ms timer: the longest such lateness
  during the request is the loop's longest stall.

    python benchmarks/bench_list.py             # 100,000 sessions, ~1 min on 2 cores
    python benchmarks/bench_list.py --quick     # 20,000 sessions
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx
from _util import fmt, header, median, table
from launcher import TIMEOUT, launcher, serving

from nbsession.session import Session, utc_now
from nbsession.store import SQLiteStore

REPS = 5
WATCHED = f"python {Path(__file__).with_name('loop_watch_server.py')}"


def longest_stall(watch_file: Path, began: float, ended: float) -> tuple[float, float]:
    """The longest loop stall the server recorded between two wall-clock instants, and the
    CPU time its process used during it (s). CPU well below the stall means the machine did
    not run the process meanwhile (other load), not that the server held its loop."""
    stalls = [(0.0, 0.0)]
    for line in watch_file.read_text().splitlines():
        at, late, cpu = (float(part) for part in line.split())
        if began <= at <= ended + late:
            stalls.append((late, cpu))
    return max(stalls)


async def fill(db_path: Path, count: int) -> None:
    store = SQLiteStore(str(db_path))
    await store.open()
    try:
        start = utc_now() - timedelta(days=1)
        for n in range(count):
            await store.create_session(
                Session(title=f"session {n}", created_at=start + timedelta(milliseconds=n))
            )
    finally:
        await store.close()


async def probe(client: httpx.AsyncClient, stop: asyncio.Event) -> list[float]:
    """``GET /health`` back to back until ``stop``: each answer's latency (s)."""
    latencies = []
    while not stop.is_set():
        began = time.perf_counter()
        (await client.get("/health")).raise_for_status()
        latencies.append(time.perf_counter() - began)
    return latencies


async def timed_get(client: httpx.AsyncClient, path: str, **params: str) -> tuple[float, int, str]:
    """(seconds to the whole body, body bytes, X-Next-Cursor or '')."""
    began = time.perf_counter()
    reply = await client.get(path, params=params)
    reply.raise_for_status()
    return time.perf_counter() - began, len(reply.content), reply.headers.get("X-Next-Cursor", "")


async def measure(url: str, headers: dict[str, str], count: int, watch_file: Path | None) -> None:
    async with (
        httpx.AsyncClient(base_url=url, headers=headers, timeout=TIMEOUT) as lister,
        httpx.AsyncClient(base_url=url, timeout=TIMEOUT) as prober,
    ):
        await timed_get(lister, "/api/sessions", limit="1")  # warm: store open, imports done

        stop = asyncio.Event()
        idle_task = asyncio.create_task(probe(prober, stop))
        await asyncio.sleep(1.0)  # the probe's baseline runs for a fixed second
        stop.set()
        idle = await idle_task

        whole, stalls, loop_stalls, size = [], [], [], 0
        for _ in range(REPS):
            stop = asyncio.Event()
            task = asyncio.create_task(probe(prober, stop))
            began = time.time()
            seconds, size, _ = await timed_get(lister, "/api/sessions")
            ended = time.time()
            stop.set()
            stalls.append(max(await task))
            whole.append(seconds)
            await asyncio.sleep(0.1)  # the watch's last line is written after the stall ends
            if watch_file is not None:
                loop_stalls.append(longest_stall(watch_file, began, ended))

        first, page_size, cursor = [], 0, ""
        after = []
        for _ in range(REPS):
            seconds, page_size, cursor = await timed_get(lister, "/api/sessions", limit="100")
            first.append(seconds)
            seconds, _, _ = await timed_get(lister, "/api/sessions", limit="100", before=cursor)
            after.append(seconds)

    table(
        f"GET /api/sessions with {count:,} sessions, median of {REPS} (ms; stall = slowest "
        "/health answered on another connection meanwhile)",
        ["request", "time", "body KiB", "stall", "loop stall (server)"],
        [
            [
                "GET /health alone (probe baseline, 1 s)",
                fmt(median(idle) * 1e3, 2),
                "-",
                fmt(max(idle) * 1e3, 1),
                "-",
            ],
            [
                "the whole list",
                fmt(median(whole) * 1e3, 0),
                fmt(size / 1024, 0),
                fmt(median(stalls) * 1e3, 1),
                fmt(median([late for late, _ in loop_stalls]) * 1e3, 1) if loop_stalls else "-",
            ],
            [
                "?limit=100 (first page)",
                fmt(median(first) * 1e3, 2),
                fmt(page_size / 1024, 1),
                "-",
                "-",
            ],
            ["?limit=100&before=<cursor>", fmt(median(after) * 1e3, 2), "-", "-", "-"],
        ],
    )
    if loop_stalls:
        print(
            "longest loop stall during the whole list, per run (ms; in parentheses the CPU the "
            "server process used meanwhile): "
            + ", ".join(f"{late * 1e3:.1f} ({cpu * 1e3:.1f})" for late, cpu in loop_stalls)
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 sessions")
    parser.add_argument(
        "--server-cmd", default="", help="command that starts the server (default: ours, watched)"
    )
    parser.add_argument(
        "--count", type=int, default=0, help="sessions (default 100,000; 20,000 with --quick)"
    )
    args = parser.parse_args()
    count = args.count or (20_000 if args.quick else 100_000)
    header(
        "bench_list",
        f"{' '.join(Path(p).name for p in launcher(args.server_cmd or WATCHED))} on 127.0.0.1; "
        f"{count:,} sessions in SQLite",
    )
    with tempfile.TemporaryDirectory(prefix="nbsession-bench-") as directory:
        home = Path(directory)
        began = time.perf_counter()
        asyncio.run(fill(home / "sessions.db", count))
        print(f"{count:,} sessions written in {time.perf_counter() - began:.1f} s")
        watch_file = None
        if not args.server_cmd:  # ours, under the loop watch (a custom command may lack it)
            watch_file = home / "loop-watch.txt"
            os.environ["BENCH_LOOP_WATCH"] = str(watch_file)
        # start_server prints its time to /health
        with serving(home, args.server_cmd or WATCHED) as server:
            asyncio.run(measure(server.url, server.headers, count, watch_file))


if __name__ == "__main__":
    main()
