"""RingEventLog: append throughput under live subscribers, memory at capacity, replay cost.

Baseline (same process): a naive fan-out that keeps one ``asyncio.Queue`` per subscriber and
``json.dumps(...).encode()``s every event once per subscriber, which is what a transport that
serialises per connection does. ``RingEventLog`` serialises once at append and every
subscriber reads the same ``bytes`` from the ring.

The producer appends in bursts of ``--burst`` events and then yields to the loop once, as the
runtime does while relaying a model stream; subscribers drain with ``async for`` (one entry per
``__anext__``) or, like the SSE writer, with one await then ``take_ready()``.

    python benchmarks/bench_eventlog.py            # ~25 s on 2 cores
    python benchmarks/bench_eventlog.py --quick    # ~6 s
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

from _util import fmt, header, median, ratio, table

from nbsession.eventlog import LogEntry, RingEventLog

CAPACITY = 1024
SESSION_ID = "0b6f5d3e-6c1e-4f7a-9a51-2a9d3c8e7f10"


def make_events(count: int) -> list[dict[str, Any]]:
    """Events shaped like a streamed answer: mostly agent_choice deltas of a few words."""
    stamp = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
    words = ["Here ", "is ", "the ", "answer ", "to ", "your ", "question, ", "streamed. "]
    events: list[dict[str, Any]] = []
    for i in range(count):
        if i % 50 == 49:
            events.append(
                {
                    "type": "token_usage",
                    "timestamp": stamp,
                    "session_id": SESSION_ID,
                    "usage": {"input_tokens": 100 + i, "output_tokens": i, "cost": 0.0},
                }
            )
        else:
            events.append(
                {
                    "type": "agent_choice",
                    "agent_name": "root",
                    "timestamp": stamp,
                    "content": words[i % len(words)],
                    "session_id": SESSION_ID,
                }
            )
    return events


# -- throughput --------------------------------------------------------------------------


async def ring_run(events: list[dict[str, Any]], subscribers: int, burst: int, batch: bool) -> int:
    """Append every event with ``subscribers`` draining; returns entries delivered in total."""
    log = RingEventLog(CAPACITY)
    received = [0] * subscribers

    async def drain_each(index: int) -> None:
        count = 0
        async for _entry in log.subscribe(0):
            count += 1
        received[index] = count

    async def drain_batched(index: int) -> None:
        sub = log.subscribe(0)
        count = 0
        try:
            while True:
                await sub.__anext__()
                count += 1 + len(sub.take_ready())
        except StopAsyncIteration:
            pass
        received[index] = count

    drain = drain_batched if batch else drain_each
    tasks = [asyncio.create_task(drain(i)) for i in range(subscribers)]
    await asyncio.sleep(0)  # every reader registered and waiting
    for start in range(0, len(events), burst):
        for event in events[start : start + burst]:
            log.append(event)
        await asyncio.sleep(0)
    log.close("done")
    await asyncio.gather(*tasks)
    return sum(received)


async def naive_run(events: list[dict[str, Any]], subscribers: int, burst: int, _: bool) -> int:
    """The baseline: serialise each event once per subscriber into that subscriber's queue."""
    queues: list[asyncio.Queue[bytes | None]] = [asyncio.Queue() for _ in range(subscribers)]
    received = [0] * subscribers

    async def drain(index: int) -> None:
        queue = queues[index]
        count = 0
        while await queue.get() is not None:
            count += 1
        received[index] = count

    tasks = [asyncio.create_task(drain(i)) for i in range(subscribers)]
    await asyncio.sleep(0)
    for start in range(0, len(events), burst):
        for event in events[start : start + burst]:
            for queue in queues:
                queue.put_nowait(
                    json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
                )
        await asyncio.sleep(0)
    for queue in queues:
        queue.put_nowait(None)
    await asyncio.gather(*tasks)
    return sum(received)


Runner = Callable[[list[dict[str, Any]], int, int, bool], Awaitable[int]]


def best_rate(
    runner: Runner, events: list[dict[str, Any]], subs: int, burst: int, batch: bool, reps: int
) -> tuple[float, int]:
    """Best events/s over ``reps`` runs (each on a fresh loop), and entries delivered."""
    best = 0.0
    delivered = 0
    for _ in range(reps):
        gc.collect()
        start = time.perf_counter()
        delivered = asyncio.run(runner(events, subs, burst, batch))
        elapsed = time.perf_counter() - start
        best = max(best, len(events) / elapsed)
    return best, delivered


def throughput(events: list[dict[str, Any]], burst: int, reps: int, fanouts: list[int]) -> None:
    rows = []
    for subs in fanouts:
        ring, got_ring = best_rate(ring_run, events, subs, burst, False, reps)
        batched, got_batch = best_rate(ring_run, events, subs, burst, True, reps)
        naive, got_naive = best_rate(naive_run, events, subs, burst, False, reps)
        # +1 per subscriber: the ring delivers session_exited, the naive run has a sentinel.
        expected = subs * (len(events) + 1)
        ok = got_ring == expected == got_batch and got_naive == subs * len(events)
        # With no subscriber the naive fan-out serialises nothing (and keeps no replay buffer),
        # so a ratio would only measure json.dumps; it is left out.
        rows.append(
            [
                subs,
                fmt(ring, 0),
                fmt(batched, 0),
                fmt(naive, 0) if subs else "(no work)",
                ratio(ring, naive) if subs else "-",
                ratio(batched, naive) if subs else "-",
                fmt(ring * subs, 0),
                "yes" if ok else "NO",
            ]
        )
    table(
        f"Append throughput, {len(events):,} events, bursts of {burst}, best of {reps} "
        "(events appended per second, all subscribers drained to the end)",
        [
            "subscribers",
            "ring async-for",
            "ring take_ready",
            "naive fan-out",
            "ring/naive",
            "batched/naive",
            "deliveries/s",
            "all delivered",
        ],
        rows,
    )


# -- memory ------------------------------------------------------------------------------


def traced(build: Callable[[], object]) -> tuple[int, object]:
    """Bytes still allocated by ``build()``'s result (tracemalloc), and the result."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = build()
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return after - before, kept


def memory(events: list[dict[str, Any]], logs: int) -> None:
    full = events[:CAPACITY]
    payload = sum(
        len(json.dumps(e, separators=(",", ":"), ensure_ascii=False).encode()) for e in full
    )

    def filled(count: int) -> list[RingEventLog]:
        made = []
        for _ in range(count):
            log = RingEventLog(CAPACITY)
            for event in full:
                log.append(event)
            made.append(log)
        return made

    empty_bytes, _ = traced(lambda: [RingEventLog(CAPACITY) for _ in range(logs)])
    full_bytes, _ = traced(lambda: filled(logs))

    async def ring_with_readers(readers: int) -> tuple[RingEventLog, list[Any]]:
        log = RingEventLog(CAPACITY)
        subs = [log.subscribe(0) for _ in range(readers)]  # lagging: nothing read yet
        for event in full:
            log.append(event)
        return log, subs

    async def naive_with_readers(readers: int) -> list[asyncio.Queue[bytes]]:
        queues: list[asyncio.Queue[bytes]] = [asyncio.Queue() for _ in range(readers)]
        for event in full:
            for queue in queues:
                queue.put_nowait(
                    json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
                )
        return queues

    per_log = full_bytes / logs
    rows = [
        ["empty log (ring of GAP placeholders)", fmt(empty_bytes / logs / 1024), "-", "-"],
        [
            "full log, 1024 entries",
            fmt(per_log / 1024),
            fmt(per_log / CAPACITY, 0),
            ratio(per_log, payload),
        ],
    ]
    for readers in (10, 100):
        ring_bytes, _ = traced(lambda r=readers: asyncio.run(ring_with_readers(r)))
        naive_bytes, _ = traced(lambda r=readers: asyncio.run(naive_with_readers(r)))
        rows.append(
            [
                f"full log + {readers} lagging readers",
                fmt(ring_bytes / 1024),
                fmt(ring_bytes / CAPACITY, 0),
                ratio(ring_bytes, payload),
            ]
        )
        rows.append(
            [
                f"  baseline: {readers} queues of own copies",
                fmt(naive_bytes / 1024),
                fmt(naive_bytes / CAPACITY, 0),
                f"{ratio(naive_bytes, payload)} (ring {ratio(ring_bytes, naive_bytes)})",
            ]
        )
    table(
        f"Memory at capacity {CAPACITY} (tracemalloc, mean of {logs} logs; "
        f"JSON payload {payload / CAPACITY:.0f} B/event, {payload / 1024:.1f} KiB per log)",
        ["what", "KiB", "B/event", "vs payload"],
        rows,
    )


# -- replay ------------------------------------------------------------------------------


def replay(events: list[dict[str, Any]], reps: int) -> None:
    full = events[:CAPACITY]
    log = RingEventLog(CAPACITY)
    for event in full:
        log.append(event)
    stored_dicts = list(full)  # the baseline keeps dicts and serialises on replay

    def timed(call: Callable[[], object]) -> float:
        samples = []
        for _ in range(reps):
            start = time.perf_counter()
            call()
            samples.append(time.perf_counter() - start)
        return median(samples) * 1e6

    def take() -> list[LogEntry]:
        sub = log.subscribe(0)
        batch = sub.take_ready()
        sub.close()
        return batch

    def take_and_frame() -> bytes:
        return b"".join(entry.frame() for entry in take())

    async def iterate() -> int:
        count = 0
        sub = log.subscribe(0)
        while sub.pending():
            await sub.__anext__()
            count += 1
        sub.close()
        return count

    loop = asyncio.new_event_loop()
    try:
        iterate_us = timed(lambda: loop.run_until_complete(iterate()))
    finally:
        loop.close()

    def naive() -> bytes:
        return b"".join(
            b"id: %d\ndata: %b\n\n"
            % (i + 1, json.dumps(e, separators=(",", ":"), ensure_ascii=False).encode())
            for i, e in enumerate(stored_dicts)
        )

    take_us = timed(take)
    frame_us = timed(take_and_frame)
    naive_us = timed(naive)
    assert take_and_frame() == naive(), "replay bytes differ from a fresh serialisation"
    rows = [
        ["subscribe(0) + take_ready()", fmt(take_us), fmt(take_us * 1000 / CAPACITY, 0), "-"],
        [
            "  + SSE frames joined (what /events writes)",
            fmt(frame_us),
            fmt(frame_us * 1000 / CAPACITY, 0),
            ratio(frame_us, naive_us),
        ],
        [
            "subscribe(0) + async for (one __anext__ each)",
            fmt(iterate_us),
            fmt(iterate_us * 1000 / CAPACITY, 0),
            ratio(iterate_us, naive_us),
        ],
        [
            "baseline: json.dumps + frame each stored dict",
            fmt(naive_us),
            fmt(naive_us * 1000 / CAPACITY, 0),
            "1.00x",
        ],
    ]
    table(
        f"Replay of a full log ({CAPACITY} entries, since=0), median of {reps}",
        ["operation", "µs per replay", "ns/entry", "vs baseline"],
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer events and repetitions")
    parser.add_argument("--events", type=int, help="events per throughput run (default 20000)")
    parser.add_argument("--burst", type=int, default=64, help="appends between loop yields")
    parser.add_argument("--reps", type=int, help="repetitions, best kept (default 3)")
    args = parser.parse_args()
    count = args.events or (5_000 if args.quick else 20_000)
    reps = args.reps or (2 if args.quick else 3)
    if not 1 <= args.burst < CAPACITY:
        parser.error(f"--burst must be between 1 and {CAPACITY - 1} so readers keep up")
    header(
        "bench_eventlog", f"capacity {CAPACITY}, {count:,} events, burst {args.burst}, reps {reps}"
    )
    events = make_events(max(count, CAPACITY))
    throughput(events[:count], args.burst, reps, [0, 1, 10, 100])
    memory(events, logs=10 if args.quick else 50)
    replay(events, reps=50 if args.quick else 200)


if __name__ == "__main__":
    main()
