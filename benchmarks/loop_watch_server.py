"""Measuring helper for bench_list.py and bench_stalled.py: ``jupyter nbsession`` with a
watch on its event loop.

Once the manager has started, a task on the server's loop sleeps 1 ms at a time and records
how late each wake-up was: that lateness is how long something else held the loop (a callback
that ran that long, every stream stalled meanwhile). Each lateness above ``THRESHOLD`` is
appended to the file named by ``BENCH_LOOP_WATCH`` as ``<unix time> <seconds> <CPU seconds
the process used meanwhile>``, so a
benchmark can read the longest stall within the window of one request:

    BENCH_LOOP_WATCH=/tmp/lag python benchmarks/loop_watch_server.py ...

Diagnostic only: it wraps the server in its own process and is not part of nbsession.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any, TextIO

TICK = 0.001
THRESHOLD = 0.002  # scheduling noise below this is not a stall


async def watch(out: TextIO) -> None:
    loop = asyncio.get_running_loop()
    while True:
        began, cpu = loop.time(), time.process_time()
        await asyncio.sleep(TICK)
        late = loop.time() - began - TICK
        if late > THRESHOLD:
            # The process's CPU time meanwhile (all threads) tells work from a process the
            # machine did not schedule.
            out.write(f"{time.time():.6f} {late:.6f} {time.process_time() - cpu:.6f}\n")


def main() -> None:
    from nbsession.manager import SessionManager
    from nbsession.server.app import main as launch

    out = open(os.environ["BENCH_LOOP_WATCH"], "a", buffering=1, encoding="ascii")  # noqa: SIM115
    original = SessionManager.start
    watchers: list[asyncio.Task[None]] = []

    async def start(self: Any) -> None:
        await original(self)
        watchers.append(asyncio.get_running_loop().create_task(watch(out)))

    SessionManager.start = start  # type: ignore[method-assign]
    launch()


if __name__ == "__main__":
    main()
