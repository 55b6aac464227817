"""A long session list on the wire: does listing it stall the server?

A real ``jupyter nbsession`` subprocess (the launcher of ``bench_sse.py``) on a SQLite file
that already holds N sessions (written through ``SQLiteStore`` before the server starts).
Measured with httpx:

- start-up: time until ``/health`` answers (the store is asked whether it holds sessions,
  never for the list);
- ``GET /api/sessions`` (the whole list) and ``?limit=100`` (a first page, then one after a
  cursor): time to the full body and its size;
- the stall: while the whole list is fetched, a second connection sends ``GET /health`` back
  to back; its slowest answer is how long the event loop was held (baseline: the same probe
  with nothing else running).

    python benchmarks/bench_list.py             # 100,000 sessions, ~1 min on 2 cores
    python benchmarks/bench_list.py --quick     # 20,000 sessions
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx
from _util import fmt, header, median, table
from bench_sse import TIMEOUT, launcher, start_server

from nbsession.session import Session, utc_now
from nbsession.store import SQLiteStore

REPS = 5


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


async def measure(url: str, headers: dict[str, str], count: int) -> None:
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

        whole, stalls, size = [], [], 0
        for _ in range(REPS):
            stop = asyncio.Event()
            task = asyncio.create_task(probe(prober, stop))
            seconds, size, _ = await timed_get(lister, "/api/sessions")
            stop.set()
            stalls.append(max(await task))
            whole.append(seconds)

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
        ["request", "time", "body KiB", "stall"],
        [
            [
                "GET /health alone (probe baseline, 1 s)",
                fmt(median(idle) * 1e3, 2),
                "-",
                fmt(max(idle) * 1e3, 1),
            ],
            [
                "the whole list",
                fmt(median(whole) * 1e3, 0),
                fmt(size / 1024, 0),
                fmt(median(stalls) * 1e3, 1),
            ],
            ["?limit=100 (first page)", fmt(median(first) * 1e3, 2), fmt(page_size / 1024, 1), "-"],
            ["?limit=100&before=<cursor>", fmt(median(after) * 1e3, 2), "-", "-"],
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 sessions")
    parser.add_argument("--server-cmd", default="", help="command that starts the server")
    args = parser.parse_args()
    count = 20_000 if args.quick else 100_000
    header(
        "bench_list",
        f"{' '.join(Path(p).name for p in launcher(args.server_cmd))} on 127.0.0.1; "
        f"{count:,} sessions in SQLite",
    )
    with tempfile.TemporaryDirectory(prefix="nbsession-bench-") as directory:
        home = Path(directory)
        began = time.perf_counter()
        asyncio.run(fill(home / "sessions.db", count))
        print(f"{count:,} sessions written in {time.perf_counter() - began:.1f} s")
        server = start_server(home, args.server_cmd)  # prints its time to /health
        try:
            asyncio.run(measure(server.url, server.headers, count))
        finally:
            server.stop()
            print(f"server stopped (exit code {server.process.returncode})")


if __name__ == "__main__":
    main()
