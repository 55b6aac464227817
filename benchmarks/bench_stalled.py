"""Stalled SSE clients (SPEC 3): does a crowd of sockets that never read slow a reader down?

A real ``jupyter nbsession`` subprocess (``launcher.py``). One session
runs back-to-back offline turns ("hello there", ~58 events each) driven over HTTP; one
``/events`` client reads everything and its rate is measured (events received per second,
from its first to its last event), and the server's CPU time per event. Two phases, run
interleaved (alone, crowded, alone, crowded, ...) so load from elsewhere on the machine hits
both alike, each run on a fresh session:

- the reader alone;
- the reader beside 100 raw sockets that requested the same ``/events`` and never read a
  byte (default client socket buffers).

Printed: each phase's median rate, the ratio (SPEC 3 wants the crowded rate within 20 % of
the lone one), the server CPU per 1000 events, how many stalled sockets the server let go
and after how many bytes, and the server's RSS.

    python benchmarks/bench_stalled.py            # ~15 s on 2 cores
    python benchmarks/bench_stalled.py --quick    # ~8 s
"""

from __future__ import annotations

import argparse
import asyncio
import select
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from _util import fmt, header, median, proc_cpu_seconds, proc_rss_mib, table
from launcher import PHASE_DEADLINE, TIMEOUT, Server, launcher, new_session, serving

PROMPT = "hello there"
STALLED = 100
DRAIN_SECONDS = 5.0  # how long the stalled sockets are read at the end to see which were closed


async def reader_rate(client: httpx.AsyncClient, session_id: str, turns: int) -> tuple[float, int]:
    """Run ``turns`` turns while one ``/events`` client reads: (its events/s, its events)."""
    arrivals: list[float] = []
    subscribed = asyncio.Event()
    stops = 0

    async def read() -> None:
        nonlocal stops
        async with client.stream("GET", f"/api/sessions/{session_id}/events") as response:
            subscribed.set()
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    arrivals.append(time.perf_counter())
                    if '"stream_stopped"' in line:
                        stops += 1
                        if stops == turns:
                            return

    task = asyncio.create_task(read())
    try:
        await asyncio.wait_for(subscribed.wait(), PHASE_DEADLINE)
        for _ in range(turns):
            async with client.stream(
                "POST",
                f"/api/sessions/{session_id}/agent/default",
                json={"messages": [{"role": "user", "content": PROMPT}]},
            ) as response:
                if response.status_code != 200:
                    raise RuntimeError(f"run answered {response.status_code}")
                async for _ in response.aiter_bytes():
                    pass
        await asyncio.wait_for(task, PHASE_DEADLINE)
    finally:
        task.cancel()
    return (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]), len(arrivals)


def open_stalled(server: Server, session_id: str, count: int) -> list[socket.socket]:
    """``count`` sockets that request the session's ``/events`` and never read the body.

    Each is confirmed subscribed by peeking (not reading) at its status line, which the
    server sends only after subscribing it to the log.
    """
    request = (
        f"GET /nbsession/api/sessions/{session_id}/events HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nAuthorization: Bearer {server.token}\r\n\r\n"
    ).encode()
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=PHASE_DEADLINE)
        sock.sendall(request)
        if not sock.recv(12, socket.MSG_PEEK).startswith(b"HTTP/1.1 200"):
            raise RuntimeError("a stalled client was not subscribed")
        sockets.append(sock)
    return sockets


def count_closed(sockets: list[socket.socket]) -> tuple[int, int]:
    """Drain the stalled sockets for DRAIN_SECONDS: (how many reach end-of-stream, that is the
    server let them go, and the most bytes one of them had been sent). One still subscribed
    just idles, so it never ends within the window."""
    open_ = {sock.fileno(): sock for sock in sockets}
    received = dict.fromkeys(open_, 0)
    for sock in sockets:
        sock.setblocking(False)
    closed = 0
    deadline = time.monotonic() + DRAIN_SECONDS
    while open_ and (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select(list(open_), [], [], left)
        for fd in readable:
            try:
                data = open_[fd].recv(1 << 20)
            except ConnectionError:
                data = b""
            received[fd] += len(data)
            if not data:
                closed += 1
                open_.pop(fd).close()
    for sock in open_.values():
        sock.close()
    return closed, max(received.values())


@dataclass
class Phase:
    rates: list[float] = field(default_factory=list)
    cpu_per_kevent: list[float] = field(default_factory=list)


async def one_phase(
    client: httpx.AsyncClient, server: Server, turns: int, phase: Phase, stalled: int
) -> tuple[int, int, int]:
    """One measured run on a fresh session, beside ``stalled`` stalled sockets:
    (reader events, stalled sockets let go, most bytes one of them was sent)."""
    session_id = await new_session(client)
    sockets = open_stalled(server, session_id, stalled)
    cpu = proc_cpu_seconds(server.process.pid)
    rate, events = await reader_rate(client, session_id, turns)
    phase.rates.append(rate)
    phase.cpu_per_kevent.append((proc_cpu_seconds(server.process.pid) - cpu) * 1e6 / events)
    closed, most = count_closed(sockets) if sockets else (0, 0)
    return events, closed, most


async def measure(server: Server, turns: int, reps: int) -> None:
    async with httpx.AsyncClient(
        base_url=server.url, headers=server.headers, timeout=TIMEOUT
    ) as client:
        warm = await new_session(client)
        await reader_rate(client, warm, 3)  # runtime classes, imports, title model: warmed

        # Interleaved, so load from elsewhere on the machine hits both phases alike.
        alone, crowded = Phase(), Phase()
        closed, most, events = [], [], 0
        for _ in range(reps):
            events, _, _ = await one_phase(client, server, turns, alone, 0)
            _, let_go, sent = await one_phase(client, server, turns, crowded, STALLED)
            closed.append(let_go)
            most.append(sent)
        rss, peak = proc_rss_mib(server.process.pid)

    baseline = median(alone.rates)
    table(
        f"One /events reader during {turns} back-to-back turns ({events} events), median of "
        f"{reps} interleaved runs (reader events/s from its first to its last event; server "
        f"CPU ms per 1000 events)",
        ["phase", "reader events/s", "vs alone", "server CPU ms/1k events"],
        [
            ["alone", fmt(baseline, 0), "1.00x", fmt(median(alone.cpu_per_kevent), 0)],
            [
                f"beside {STALLED} stalled sockets",
                fmt(median(crowded.rates), 0),
                f"{median(crowded.rates) / baseline:.2f}x",
                fmt(median(crowded.cpu_per_kevent), 0),
            ],
        ],
    )
    print(
        f"stalled sockets let go by the server: {min(closed)}-{max(closed)} of {STALLED} per "
        f"run, each after at most {max(most) / 1024:.0f} KiB (its own buffer and the server's "
        f"socket took that); server RSS at the end {rss:.0f} MiB (peak {peak:.0f} MiB)"
    )
    ratio = median(crowded.rates) / baseline
    verdict = "within" if ratio >= 0.8 else "NOT within"
    print(f"reader rate ratio stalled/alone = {ratio:.2f} ({verdict} 20 %)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer turns")
    parser.add_argument(
        "--server-cmd", default="", help="command that starts the server (default: ours)"
    )
    args = parser.parse_args()
    turns = 60 if args.quick else 150
    reps = 2 if args.quick else 3
    header(
        "bench_stalled",
        f"{' '.join(Path(p).name for p in launcher(args.server_cmd))} on 127.0.0.1; "
        f"{turns} turns per run, {reps} runs per phase, {STALLED} stalled sockets",
    )
    with (
        tempfile.TemporaryDirectory(prefix="nbsession-bench-") as directory,
        serving(Path(directory), args.server_cmd) as server,
    ):
        asyncio.run(measure(server, turns, reps))


if __name__ == "__main__":
    main()
