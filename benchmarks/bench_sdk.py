"""The SDK's event reading against raw socket reading of the same SSE stream, same server.

A real ``jupyter nbsession`` subprocess (``launcher.py``) with a large event log holds
one session whose log is filled by offline turns. Each reader then replays that log from
``/events`` (``Last-Event-ID: 0``) until it has N events, in turns, several rounds:

- raw bytes: a plain socket, the HTTP request written by hand, frames counted with
  ``bytes.count`` (the floor: no event is looked at);
- raw + json: the same socket, each frame split into id and data and ``json.loads``-ed (the
  least any client does to hand out events);
- SDK sync: ``for event in session.events(since=0)`` (``Client`` from ``nbsession.connect``);
- SDK async: ``async for event in session.events(since=0)`` (``AsyncClient``).

Also a live turn: ``session.run(...)`` against reading the same turn's run stream raw.
The readers share the 2 cores with the server, so every figure includes the server's work.

    python benchmarks/bench_sdk.py            # ~30 s on 2 cores (filling the log included)
    python benchmarks/bench_sdk.py --quick    # ~10 s
"""

from __future__ import annotations

import argparse
import json
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from _util import fmt, header, median, ratio, table
from launcher import PHASE_DEADLINE, Server, launcher, start_server

import nbsession
from nbsession.sdk import AsyncClient
from nbsession.sdk._runner import LoopThread

CHUNK = 1 << 16


def fill(server: Server, session_id: str, events: int) -> int:
    """Run offline turns until the session's log holds ``events`` events; its last seq."""
    last = 0
    started = time.monotonic()
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as http:
        while last < events:
            if time.monotonic() - started > PHASE_DEADLINE:
                raise RuntimeError(f"filling the log took over {PHASE_DEADLINE:.0f} s")
            body = {"messages": [{"role": "user", "content": "hello there"}]}
            url = f"/api/sessions/{session_id}/agent/default"
            with http.stream("POST", url, json=body) as response:
                for line in response.iter_lines():
                    if line.startswith("id: "):
                        last = int(line[4:])
    return last


def _request(server: Server, path: str, extra: str = "") -> bytes:
    return (
        f"GET /nbsession{path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {server.token}\r\n{extra}\r\n"
    ).encode()


def raw_bytes(server: Server, session_id: str, wanted: int) -> int:
    """Frames counted on a plain socket; the HTTP head and chunk sizes are noise here."""
    request = _request(server, f"/api/sessions/{session_id}/events", "Last-Event-ID: 0\r\n")
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(request)
        seen = 0
        tail = b""
        while seen < wanted:
            chunk = sock.recv(CHUNK)
            if not chunk:
                break
            data = tail + chunk
            seen += data.count(b"\n\n")
            tail = data[-1:]
    return seen


def raw_json(server: Server, session_id: str, wanted: int) -> int:
    """Frames split and parsed on a plain socket. The server writes whole frames per HTTP
    chunk, so a chunk-size line can only precede a frame's ``id:``; it is skipped there."""
    request = _request(server, f"/api/sessions/{session_id}/events", "Last-Event-ID: 0\r\n")
    events = []
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(request)
        pending = b""
        while len(events) < wanted:
            chunk = sock.recv(CHUNK)
            if not chunk:
                break
            *frames, pending = (pending + chunk).split(b"\n\n")
            for frame in frames:
                start = frame.find(b"id: ")
                if start < 0:
                    continue  # the HTTP head
                id_line, data_line = frame[start:].split(b"\n", 1)
                events.append((int(id_line[4:]), json.loads(data_line[6:])))
    return len(events)


def sdk_sync(client: nbsession.Client, session_id: str, wanted: int) -> int:
    seen = 0
    with client.session(session_id).events(since=0) as events:
        for _ in events:
            seen += 1
            if seen >= wanted:
                break
    return seen


async def sdk_async(session: nbsession.AsyncSession, wanted: int) -> int:
    seen = 0
    stream = session.events(since=0)
    async for _ in stream:
        seen += 1
        if seen >= wanted:
            break
    await stream.aclose()
    return seen


def measure(read: Callable[[], int], wanted: int) -> tuple[float, float]:
    """Events per second of one read of ``wanted`` events, and the reader's CPU µs per event
    (this process's CPU time, all threads: the server is another process)."""
    started, cpu = time.perf_counter(), time.process_time()
    got = read()
    elapsed, used = time.perf_counter() - started, time.process_time() - cpu
    if got < wanted:
        raise RuntimeError(f"a reader got {got} of {wanted} events")
    return got / elapsed, used / got * 1e6


def live_turns(server: Server, client: nbsession.Client, rounds: int) -> list[list[object]]:
    """One live turn, read by the SDK's run() and raw from its run stream, alternating."""
    sdk, raw = [], []
    session = client.create_session()
    body = json.dumps({"messages": [{"role": "user", "content": "hello there"}]}).encode()
    for _ in range(rounds):
        started = time.perf_counter()
        result = session.run("hello there")
        sdk.append((len(result.events), time.perf_counter() - started))
        request = (
            f"POST /nbsession/api/sessions/{session.id}/agent/default HTTP/1.1\r\n"
            f"Host: 127.0.0.1\r\nAuthorization: Bearer {server.token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        started = time.perf_counter()
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(request)
            data = b""
            while not data.endswith(b"\r\n0\r\n\r\n"):
                chunk = sock.recv(CHUNK)
                if not chunk:
                    break
                data += chunk
        raw.append((data.count(b"\n\n") - 1, time.perf_counter() - started))
    rows = []
    for name, samples in (("raw socket", raw), ("SDK run()", sdk)):
        per_turn = median([elapsed for _, elapsed in samples]) * 1000
        events = median([float(count) for count, _ in samples])
        rows.append([name, fmt(events, 0), fmt(per_turn, 2), ratio(per_turn, 0)])
    base = median([elapsed for _, elapsed in raw])
    rows[1][3] = ratio(median([elapsed for _, elapsed in sdk]), base)
    rows[0][3] = "1.00x"
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer events and rounds")
    args = parser.parse_args()
    wanted = 5_000 if args.quick else 20_000
    rounds = 3 if args.quick else 7
    header("bench_sdk", f"{wanted:,} events replayed per read, {rounds} rounds, median")
    with tempfile.TemporaryDirectory() as tmp:
        capacity = f"--NBSessionApp.event_log_capacity={wanted + 2_000}"
        server = start_server(Path(tmp), " ".join([*launcher(), capacity]))
        try:
            with nbsession.connect(server.url, server.token) as client:
                session_id = client.create_session().id
                started = time.monotonic()
                last = fill(server, session_id, wanted)
                print(f"log filled: {last:,} events in {time.monotonic() - started:.1f} s")
                # The async client lives on a loop of its own, so only reading is timed.
                runner = LoopThread("bench-async")
                async_client = runner.run(AsyncClient.connect(server.url, server.token))
                async_session = runner.run(async_client.session(session_id))
                readers: dict[str, Callable[[], int]] = {
                    "raw socket, frames counted": lambda: raw_bytes(server, session_id, wanted),
                    "raw socket + json.loads": lambda: raw_json(server, session_id, wanted),
                    "SDK sync session.events()": lambda: sdk_sync(client, session_id, wanted),
                    "SDK async session.events()": lambda: runner.run(
                        sdk_async(async_session, wanted)
                    ),
                }
                rates: dict[str, list[float]] = {name: [] for name in readers}
                cpu: dict[str, list[float]] = {name: [] for name in readers}
                for _ in range(rounds):
                    for name, read in readers.items():
                        rate, used = measure(read, wanted)
                        rates[name].append(rate)
                        cpu[name].append(used)
                floor = median(rates["raw socket, frames counted"])
                parsed = median(rates["raw socket + json.loads"])
                parsed_cpu = median(cpu["raw socket + json.loads"])
                rows = [
                    [
                        name,
                        fmt(median(rates[name]), 0),
                        ratio(floor, median(rates[name])),
                        ratio(parsed, median(rates[name])),
                        fmt(median(cpu[name]), 2),
                        ratio(median(cpu[name]), parsed_cpu),
                    ]
                    for name in readers
                ]
                table(
                    f"Replay of /events from seq 0 ({wanted:,} events), median of {rounds}",
                    [
                        "reader",
                        "events/s",
                        "time vs raw",
                        "time vs raw+json",
                        "client CPU µs/event",
                        "CPU vs raw+json",
                    ],
                    rows,
                )
                runner.run(async_client.aclose())
                runner.close()
                table(
                    f"One live turn ('hello there'), median of {rounds}",
                    ["reader", "events", "ms/turn", "vs raw"],
                    live_turns(server, client, rounds),
                )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
