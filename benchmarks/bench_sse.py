"""The HTTP + SSE API on the wire: a real ``jupyter nbsession`` subprocess, measured with httpx.

The server (``launcher.py``) runs on a free loopback port with its own token, a SQLite file and
Jupyter directories in a temporary directory, and is always stopped at the end. Only loopback
traffic; every loop and wait is bounded.

- ``POST /api/sessions`` latency (p50/p95), against ``GET /health`` (no auth, no store) and
  ``GET /api/ping`` (auth only) on the same connection: the HTTP floor;
- a run stream for "what is 17*23": time to first event and total time, for the first turn
  of a new session (builds the runtime and the title) and for later turns; baseline: the same
  turn through an in-process ``SessionManager`` in this process (no HTTP);
- fan-out: N concurrent ``/events`` subscribers on one session during a run: events each one
  received, and how long after the run's own stream saw ``stream_stopped`` the last
  subscriber saw it.

The client runs on the same 2 cores as the server, so its parsing competes with it.

    python benchmarks/bench_sse.py            # ~7 s on 2 cores (server start included)
    python benchmarks/bench_sse.py --quick    # ~5 s
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from _util import fmt, header, median, percentile, proc_rss_mib, ratio, table
from launcher import PHASE_DEADLINE, TIMEOUT, Server, launcher, new_session, serving

from nbsession.manager import ManagerConfig, SessionManager

PROMPT = "what is 17*23"
AGENT = "default"


# -- SSE reading -------------------------------------------------------------------------


@dataclass
class StreamStats:
    events: int = 0
    first_event: float = float("nan")  # perf_counter when the first event arrived
    stopped: float = float("nan")  # perf_counter when stream_stopped arrived
    types: list[str] = field(default_factory=list)


async def read_events(response: httpx.Response, stats: StreamStats, until_stopped: bool) -> None:
    """Count SSE events; stop at ``stream_stopped`` when asked, else at the end of the body."""
    if response.status_code != 200:
        raise RuntimeError(f"{response.status_code}: {(await response.aread())[:300]!r}")
    async for line in response.aiter_lines():
        if not line.startswith("data: "):
            continue
        now = time.perf_counter()
        kind = json.loads(line[6:])["type"]
        stats.events += 1
        stats.types.append(kind)
        if stats.events == 1:
            stats.first_event = now
        if kind == "stream_stopped":
            stats.stopped = now
            if until_stopped:
                return


async def run_turn(client: httpx.AsyncClient, session_id: str) -> tuple[float, float, StreamStats]:
    """POST a run and read its stream to the end: (time to first event, total, stats)."""
    stats = StreamStats()
    start = time.perf_counter()
    async with client.stream(
        "POST",
        f"/api/sessions/{session_id}/agent/{AGENT}",
        json={"messages": [{"role": "user", "content": PROMPT}]},
    ) as response:
        await asyncio.wait_for(read_events(response, stats, until_stopped=False), PHASE_DEADLINE)
    total = time.perf_counter() - start
    if stats.types[-1:] != ["stream_stopped"]:
        raise RuntimeError(f"run stream ended without stream_stopped: {stats.types[-3:]}")
    return stats.first_event - start, total, stats


# -- phases ------------------------------------------------------------------------------


async def request_latency(client: httpx.AsyncClient, count: int) -> None:
    async def sample(method: str, path: str, body: Any = None) -> list[float]:
        times = []
        for _ in range(count):
            start = time.perf_counter()
            reply = await client.request(method, path, json=body)
            times.append(time.perf_counter() - start)
            reply.raise_for_status()
        return times

    for _ in range(20):  # warm the connection and the handlers
        await client.get("/health")
        await client.post("/api/sessions", json={})
    health = await sample("GET", "/health")
    ping = await sample("GET", "/api/ping")
    create = await sample("POST", "/api/sessions", {})
    listing = await sample("GET", "/api/sessions")
    floor = percentile(health, 50)
    rows = [
        [
            name,
            fmt(percentile(t, 50) * 1e3, 2),
            fmt(percentile(t, 95) * 1e3, 2),
            ratio(percentile(t, 50), floor),
        ]
        for name, t in (
            ("GET /health (baseline)", health),
            ("GET /api/ping (auth)", ping),
            ("POST /api/sessions", create),
            (f"GET /api/sessions ({count + 20} sessions)", listing),
        )
    ]
    table(
        f"Request latency, one keep-alive connection, {count} sequential requests each (ms)",
        ["request", "p50", "p95", "p50 vs /health"],
        rows,
    )


async def run_streams(client: httpx.AsyncClient, cold: int, warm: int, home: Path) -> None:
    firsts, totals = [], []
    events = 0
    for _ in range(cold):
        session_id = await new_session(client)
        first, total, stats = await run_turn(client, session_id)
        firsts.append(first)
        totals.append(total)
        events = stats.events
    session_id = await new_session(client)
    await run_turn(client, session_id)
    warm_first, warm_total = [], []
    for _ in range(warm):
        first, total, stats = await run_turn(client, session_id)
        warm_first.append(first)
        warm_total.append(total)
    local_first, local_total = await in_process_turns(home, warm)
    rows = [
        [
            f"first turn of a new session (x{cold})",
            fmt(median(firsts) * 1e3, 2),
            fmt(median(totals) * 1e3, 2),
            fmt(percentile(totals, 95) * 1e3, 2),
            ratio(median(totals), median(local_total)),
        ],
        [
            f"later turns, one session (x{warm})",
            fmt(median(warm_first) * 1e3, 2),
            fmt(median(warm_total) * 1e3, 2),
            fmt(percentile(warm_total, 95) * 1e3, 2),
            ratio(median(warm_total), median(local_total)),
        ],
        [
            f"baseline: in-process manager, later turns (x{warm})",
            fmt(median(local_first) * 1e3, 2),
            fmt(median(local_total) * 1e3, 2),
            fmt(percentile(local_total, 95) * 1e3, 2),
            "1.00x",
        ],
    ]
    table(
        f'Run stream of "{PROMPT}" ({events} events: think tool, then the answer), ms (median)',
        ["turn", "first event", "total", "total p95", "vs in-process"],
        rows,
    )


async def in_process_turns(home: Path, count: int) -> tuple[list[float], list[float]]:
    """The same turn through a SessionManager in this process: no HTTP, no SSE framing."""
    directory = home / "in-process"
    directory.mkdir(exist_ok=True)
    manager = SessionManager(
        ManagerConfig(db_path=str(directory / "sessions.db"), working_dir=str(directory))
    )
    await manager.start()
    firsts, totals = [], []
    try:
        session = await manager.create_session({})
        for index in range(count + 1):
            start = time.perf_counter()
            stream = await manager.run_session(
                session.id, AGENT, "", [{"role": "user", "content": PROMPT}]
            )
            first = float("nan")
            async for entry in stream:
                json.loads(entry.data)  # parse as the HTTP client does
                if first != first:
                    first = time.perf_counter() - start
            if index:  # the first turn builds the runtime, as the HTTP warm-up does
                firsts.append(first)
                totals.append(time.perf_counter() - start)
    finally:
        await manager.shutdown()
    return firsts, totals


async def fan_out(client: httpx.AsyncClient, server: Server, fanouts: list[int], reps: int) -> None:
    rows = []
    for subscribers in fanouts:
        lags, lasts, totals, counts = [], [], [], []
        run_events = 0
        for _ in range(reps):
            session_id = await new_session(client)
            await run_turn(client, session_id)  # build the runtime first: measure the stream
            since = (await client.get(f"/api/sessions/{session_id}/snapshot")).json()[
                "last_event_seq"
            ]
            result = await one_fan_out(client, session_id, since, subscribers)
            run_stats, run_total, subs = result
            run_events = run_stats.events
            totals.append(run_total)
            counts.extend(s.events for s in subs)
            arrivals = [s.stopped - run_stats.stopped for s in subs]
            lags.append(median(arrivals))
            lasts.append(max(arrivals))
        complete = sum(1 for c in counts if c == run_events)
        rows.append(
            [
                subscribers,
                run_events,
                f"{min(counts)}-{max(counts)}",
                f"{complete}/{len(counts)}",
                fmt(median(totals) * 1e3, 2),
                fmt(median(lags) * 1e3, 2),
                fmt(median(lasts) * 1e3, 2),
                fmt(max(lasts) * 1e3, 2),
            ]
        )
    rss, peak = proc_rss_mib(server.process.pid)
    table(
        f"Fan-out: N /events subscribers on one session during a run, median of {reps} runs "
        f"(ms; lag = subscriber saw stream_stopped minus run stream saw it; server RSS now "
        f"{rss:.0f} MiB, peak {peak:.0f} MiB)",
        [
            "subscribers",
            "run events",
            "events/subscriber",
            "complete",
            "run total",
            "lag p50",
            "lag last",
            "lag last (max)",
        ],
        rows,
    )


async def one_fan_out(
    client: httpx.AsyncClient, session_id: str, since: int, subscribers: int
) -> tuple[StreamStats, float, list[StreamStats]]:
    """Open the subscribers, wait until all are connected, run a turn, read to stream_stopped."""
    subs = [StreamStats() for _ in range(subscribers)]
    connected = asyncio.Event()
    ready = 0

    async def subscribe(stats: StreamStats) -> None:
        nonlocal ready
        async with client.stream(
            "GET", f"/api/sessions/{session_id}/events", params={"since": since}
        ) as response:
            ready += 1
            if ready == subscribers:
                connected.set()
            await read_events(response, stats, until_stopped=True)

    tasks = [asyncio.create_task(subscribe(stats)) for stats in subs]
    try:
        await asyncio.wait_for(connected.wait(), PHASE_DEADLINE)
        # Headers arrive once the handler has subscribed, so every reader is on the log now.
        _, total, run_stats = await run_turn(client, session_id)
        await asyncio.wait_for(asyncio.gather(*tasks), PHASE_DEADLINE)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return run_stats, total, subs


async def measure(server: Server, args: argparse.Namespace, home: Path) -> None:
    limits = httpx.Limits(max_connections=max(args.fanouts) + 10, max_keepalive_connections=100)
    async with httpx.AsyncClient(
        base_url=server.url, headers=server.headers, timeout=TIMEOUT, limits=limits
    ) as client:
        await request_latency(client, args.requests)
        await run_streams(client, args.cold, args.warm, home)
        await fan_out(client, server, args.fanouts, args.reps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests and runs")
    parser.add_argument(
        "--server-cmd",
        default="",
        help="command that starts the server (default: jupyter-nbsession)",
    )
    args = parser.parse_args()
    args.requests = 100 if args.quick else 300
    args.cold = 5 if args.quick else 15
    args.warm = 10 if args.quick else 40
    args.reps = 2 if args.quick else 5
    args.fanouts = [1, 10, 50]
    header(
        "bench_sse",
        f"{' '.join(Path(p).name for p in launcher(args.server_cmd))} on 127.0.0.1, "
        "SQLite in a temp dir; "
        f"{args.requests} requests, {args.cold}+{args.warm} runs, fan-out x{args.reps}",
    )
    with tempfile.TemporaryDirectory(prefix="nbsession-bench-") as directory:
        home = Path(directory)
        with serving(home, args.server_cmd) as server:
            asyncio.run(measure(server, args, home))


if __name__ == "__main__":
    main()
