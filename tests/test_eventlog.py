"""The event log's contract (SPEC 3): seqs, replay, gaps, the end of a session, slow readers."""

from __future__ import annotations

import asyncio
import gc
import inspect
import json
import random
import weakref
from datetime import datetime, timedelta, timezone
from types import MappingProxyType

import pytest

from nbsession.eventlog import (
    GAP,
    LogClosed,
    LogEntry,
    RingEventLog,
    SubscriberDropped,
    Subscription,
)


def tick(n: int) -> dict[str, object]:
    return {"type": "tick", "n": n}


def fill(log: RingEventLog, count: int) -> list[LogEntry]:
    return [log.append(tick(n)) for n in range(count)]


def seqs(entries: list[LogEntry]) -> list[int | None]:
    return [entry.seq for entry in entries]


async def collect(sub: Subscription) -> list[LogEntry]:
    return [entry async for entry in sub]


def test_seq_starts_at_one_and_is_monotonic() -> None:
    log = RingEventLog(capacity=2)
    assert (log.last_seq, log.first_seq) == (0, 1)
    entries = fill(log, 5)
    assert seqs(entries) == [1, 2, 3, 4, 5]
    assert (log.last_seq, log.first_seq) == (5, 4)
    assert entries[0].type == "tick"
    assert json.loads(entries[0].data) == {"type": "tick", "n": 0}


def test_last_of_finds_the_newest_buffered_entry_of_some_types() -> None:
    log = RingEventLog(capacity=4)
    asks = frozenset({"ask"})
    assert log.last_of(asks) is None
    for kind in ("ask", "text", "ask", "text", "text"):
        log.append({"type": kind})
    entry = log.last_of(asks)
    assert entry is not None and entry.seq == 3
    log.append({"type": "text"})
    log.append({"type": "text"})  # the ask at seq 3 is evicted now
    assert log.last_of(asks) is None


def test_capacity_must_be_positive() -> None:
    for bad in (0, -1):
        with pytest.raises(ValueError, match="capacity"):
            RingEventLog(capacity=bad)
    log = RingEventLog(capacity=1)
    fill(log, 3)
    assert seqs(log.entries_after(0)) == [3]
    assert RingEventLog().capacity == 1024


def test_frame_format() -> None:
    entry = LogEntry(7, "tick", b'{"type":"tick"}')
    assert entry.frame() == b'id: 7\ndata: {"type":"tick"}\n\n'
    assert GAP.frame() == b'data: {"type":"gap"}\n\n'
    assert (GAP.seq, GAP.type) == (None, "gap")


def test_a_frame_is_built_once_and_shared_by_every_reader() -> None:
    log = RingEventLog()
    one, two = log.subscribe(), log.subscribe()
    log.append({"type": "tick"})
    [first], [second] = one.take_ready(), two.take_ready()
    assert first.frame() is second.frame()  # one bytes object, however many clients
    assert first.frame() == b'id: 1\ndata: {"type":"tick"}\n\n'


def test_json_compact_utf8_and_datetimes() -> None:
    log = RingEventLog()
    at = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    entry = log.append({"type": "note", "text": "héllo", "at": at})
    assert entry.data == '{"type":"note","text":"héllo","at":"2024-01-02T01:04:05Z"}'.encode()
    assert log.append(MappingProxyType({"type": "frozen"})).data == b'{"type":"frozen"}'


def test_bad_events_take_no_seq() -> None:
    log = RingEventLog()
    with pytest.raises(TypeError, match="set"):
        log.append({"type": "tick", "bad": {1, 2}})
    with pytest.raises(ValueError, match="type"):
        log.append({"text": "no type"})
    assert log.append(tick(0)).seq == 1


def test_append_after_close_raises() -> None:
    log = RingEventLog()
    log.close("done")
    with pytest.raises(LogClosed):
        log.append(tick(0))


def test_negative_since_is_rejected() -> None:
    with pytest.raises(ValueError, match="negative"):
        RingEventLog().subscribe(since=-1)


async def test_subscribers_share_the_same_bytes() -> None:
    log = RingEventLog()
    first, second = log.subscribe(), log.subscribe()
    appended = log.append(tick(0))
    a, b = await anext(first), await anext(second)
    assert a is appended and b is appended
    assert a.data is b.data


async def test_since_none_replays_everything_buffered() -> None:
    log = RingEventLog()
    fill(log, 5)
    assert seqs(log.subscribe().take_ready()) == [1, 2, 3, 4, 5]


async def test_replay_since_n() -> None:
    log = RingEventLog()
    fill(log, 5)
    sub = log.subscribe(since=2)
    assert sub.last_seq_delivered == 2
    assert seqs(sub.take_ready()) == [3, 4, 5]
    assert sub.last_seq_delivered == 5
    assert seqs(log.entries_after(3)) == [4, 5]


async def test_gap_when_resume_point_was_evicted() -> None:
    log = RingEventLog(capacity=4)
    fill(log, 10)
    assert seqs(log.subscribe(since=2).take_ready()) == [None, 7, 8, 9, 10]
    assert log.subscribe(since=2).take_ready()[0] is GAP
    assert seqs(log.subscribe(since=5).take_ready()) == [None, 7, 8, 9, 10]
    assert seqs(log.subscribe(since=6).take_ready()) == [7, 8, 9, 10]
    assert seqs(log.subscribe(since=None).take_ready()) == [7, 8, 9, 10]


async def test_gap_when_resume_point_is_beyond_the_log() -> None:
    log = RingEventLog()
    fill(log, 3)
    sub = log.subscribe(since=10)
    assert seqs(sub.take_ready()) == [None, 1, 2, 3]
    log.append(tick(3))
    assert (await anext(sub)).seq == 4
    assert seqs(RingEventLog().subscribe(since=1).take_ready()) == [None]


async def test_since_last_seq_only_tails() -> None:
    log = RingEventLog()
    fill(log, 3)
    sub = log.subscribe(since=3)
    assert sub.pending() == 0
    assert sub.take_ready() == []
    reader = asyncio.create_task(anext(sub))
    await asyncio.sleep(0)
    assert not reader.done()
    log.append(tick(3))
    assert (await asyncio.wait_for(reader, 1)).seq == 4


async def test_take_ready_drains_what_is_available() -> None:
    log = RingEventLog(capacity=4)
    fill(log, 6)
    sub = log.subscribe(since=1)
    assert sub.pending() == 5  # the gap marker and seqs 3..6
    assert seqs(sub.take_ready()) == [None, 3, 4, 5, 6]
    assert (sub.pending(), sub.take_ready()) == (0, [])
    fill(log, 2)
    assert sub.pending() == 2
    assert (await anext(sub)).seq == 7
    assert seqs(sub.take_ready()) == [8]
    assert sub.last_seq_delivered == 8


async def test_close_delivers_session_exited_then_stops() -> None:
    log = RingEventLog()
    log.append(tick(0))
    reader = asyncio.create_task(collect(log.subscribe()))
    await asyncio.sleep(0)
    exited = log.close("session deleted")
    assert exited is not None
    assert (exited.seq, exited.type, log.closed) == (2, "session_exited", True)
    payload = json.loads(exited.data)
    assert payload["reason"] == "session deleted"
    stamp = payload["timestamp"]
    assert stamp.endswith("Z")
    assert datetime.fromisoformat(stamp[:-1] + "+00:00").utcoffset() == timedelta(0)
    got = await asyncio.wait_for(reader, 1)
    assert got[-1] is exited
    assert seqs(got) == [1, 2]
    assert log.close("again") is None
    assert log.last_seq == 2


async def test_subscribe_after_close_replays_then_stops() -> None:
    log = RingEventLog(capacity=3)
    fill(log, 4)
    log.close("server stopping")
    assert seqs(await collect(log.subscribe())) == [3, 4, 5]
    assert seqs(await collect(log.subscribe(since=0))) == [None, 3, 4, 5]
    assert seqs(await collect(log.subscribe(since=4))) == [5]
    assert await collect(log.subscribe(since=5)) == []


async def test_slow_subscriber_is_dropped_at_eviction_time() -> None:
    log = RingEventLog(capacity=8)
    slow, keeping_up = log.subscribe(), log.subscribe()
    log.append(tick(0))
    assert (await anext(slow)).seq == 1
    watcher = asyncio.create_task(slow.wait_dropped())
    for n in range(1, 9):  # seqs 2..9; seq 9 evicts seq 1, which slow already has
        log.append(tick(n))
        keeping_up.take_ready()
    assert not slow.dropped
    log.append(tick(9))  # seq 10 evicts seq 2, the next one slow needs
    assert slow.dropped
    await asyncio.wait_for(watcher, 1)
    for n in range(10, 21):  # 20 appends since slow read seq 1
        log.append(tick(n))
        keeping_up.take_ready()
    with pytest.raises(SubscriberDropped) as dropped:
        await anext(slow)
    assert dropped.value.last_seq == 1
    with pytest.raises(SubscriberDropped):
        slow.take_ready()
    assert not keeping_up.dropped
    assert keeping_up.last_seq_delivered == 21


def sized(n: int, size: int) -> dict[str, object]:
    """An event whose JSON is exactly ``size`` bytes."""
    event: dict[str, object] = {"type": "tick", "n": n, "pad": ""}
    event["pad"] = "x" * (size - len(json.dumps(event, separators=(",", ":"))))
    return event


def test_a_reader_that_leaves_the_byte_bound_unread_is_dropped() -> None:
    log = RingEventLog(capacity=1000, max_unread_bytes=1000)
    stalled, reading = log.subscribe(), log.subscribe()
    for n in range(10):  # 1000 bytes unread: at the bound, not past it
        assert len(log.append(sized(n, 100)).data) == 100
        reading.take_ready()
    log.append(sized(10, 100))
    assert not stalled.dropped  # what it left unread before this append was not past 1000
    log.append(sized(11, 100))
    assert stalled.dropped
    with pytest.raises(SubscriberDropped) as dropped:
        stalled.take_ready()
    assert dropped.value.last_seq == 0
    assert not reading.dropped  # far below the capacity in events, but it reads


async def test_reading_one_entry_at_a_time_counts_as_reading() -> None:
    log = RingEventLog(capacity=1000, max_unread_bytes=250)
    sub = log.subscribe()
    for n in range(20):
        log.append(sized(n, 100))
        assert (await anext(sub)).seq == n + 1
    assert not sub.dropped


def test_one_large_event_never_drops_a_reader_that_keeps_up() -> None:
    log = RingEventLog(capacity=100, max_unread_bytes=1000)
    sub = log.subscribe()
    log.append(sized(0, 50_000))  # fifty times the bound, alone
    assert not sub.dropped
    assert len(sub.take_ready()) == 1
    log.append(sized(1, 100))
    assert not sub.dropped
    log.append(sized(2, 50_000))
    log.append(sized(3, 100))  # the large event was still unread: now it is too far behind
    assert sub.dropped


def test_a_replay_is_not_counted_as_unread() -> None:
    log = RingEventLog(capacity=100, max_unread_bytes=1000)
    for n in range(50):
        log.append(sized(n, 100))  # 5000 bytes buffered before anyone subscribes
    late = log.subscribe(since=0)
    log.append(sized(50, 100))
    assert not late.dropped  # replaying 5000 bytes is what it asked for, not falling behind
    assert len(late.take_ready()) == 51


def test_the_byte_bound_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_unread_bytes"):
        RingEventLog(max_unread_bytes=0)


async def test_producer_never_blocks_on_stalled_subscribers() -> None:
    assert not inspect.iscoroutinefunction(RingEventLog.append)
    log = RingEventLog(capacity=16)
    stalled = log.subscribe()
    parked = asyncio.create_task(anext(log.subscribe()))
    await asyncio.sleep(0)  # parked is now waiting for the first event
    for n in range(100_000):
        log.append(tick(n))
    assert (log.last_seq, log.first_seq) == (100_000, 99_985)
    assert len(log.entries_after(0)) == 16
    assert stalled.dropped
    with pytest.raises(SubscriberDropped):
        await asyncio.wait_for(parked, 1)


async def test_closing_a_subscription_stops_a_waiting_reader() -> None:
    log = RingEventLog()
    sub = log.subscribe()
    reader = asyncio.create_task(collect(sub))
    await asyncio.sleep(0)
    await sub.aclose()
    assert await asyncio.wait_for(reader, 1) == []
    log.append(tick(0))
    assert (sub.pending(), sub.take_ready()) == (0, [])


async def test_cancelled_reader_does_not_disturb_others() -> None:
    log = RingEventLog()
    cancelled = asyncio.create_task(anext(log.subscribe()))
    waiting = asyncio.create_task(anext(log.subscribe()))
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.sleep(0)
    log.append(tick(0))
    assert (await asyncio.wait_for(waiting, 1)).seq == 1
    assert cancelled.cancelled()


def test_abandoned_subscription_is_not_kept_alive() -> None:
    log = RingEventLog(capacity=2)
    ref = weakref.ref(log.subscribe())
    gc.collect()
    assert ref() is None
    fill(log, 5)  # evictions with a dead subscription must not trip over it


@pytest.mark.parametrize(("capacity", "seed"), [(4096, 1), (4096, 2), (64, 3), (64, 4)])
async def test_exactly_once_in_order_under_concurrency(capacity: int, seed: int) -> None:
    """Producers interleave; readers join at random points and each get one contiguous run.

    With capacity 64 the buffer wraps many times while readers tail, so late joiners also hit
    evicted resume points; readers that keep up are never dropped.
    """
    rng = random.Random(seed)
    log = RingEventLog(capacity=capacity)
    by_seq: dict[int, LogEntry] = {}

    async def produce(producer: int) -> None:
        for n in range(300):
            entry = log.append({"type": "tick", "producer": producer, "n": n})
            assert entry.seq is not None
            by_seq[entry.seq] = entry
            for _ in range(rng.randrange(1, 4)):
                await asyncio.sleep(0)

    async def consume() -> tuple[int, bool, list[LogEntry]]:
        for _ in range(rng.randrange(800)):  # production takes about 600 loop iterations
            await asyncio.sleep(0)
        first, last = log.first_seq, log.last_seq
        buffered_or_evicted = rng.randrange(max(0, first - 10), last + 1)
        since = rng.choice([None, 0, buffered_or_evicted, last + rng.randrange(1, 5)])
        gap = since is not None and (since + 1 < first or since > last)
        start = first if since is None or gap else since + 1
        sub = log.subscribe(since)
        got: list[LogEntry] = []
        async for entry in sub:
            got.append(entry)
            if rng.random() < 0.5:
                got.extend(sub.take_ready())
        return start, gap, got

    producers = [asyncio.create_task(produce(p)) for p in range(5)]
    consumers = [asyncio.create_task(consume()) for _ in range(20)]
    await asyncio.gather(*producers)
    exited = log.close("done")
    assert exited is not None and exited.seq is not None
    by_seq[exited.seq] = exited
    results = await asyncio.wait_for(asyncio.gather(*consumers), 10)

    assert sorted(by_seq) == list(range(1, log.last_seq + 1))
    in_log_order = [json.loads(by_seq[seq].data) for seq in sorted(by_seq)]
    for producer in range(5):
        assert [e["n"] for e in in_log_order if e.get("producer") == producer] == list(range(300))
    for start, gap, got in results:
        if gap:
            assert got[0] is GAP
            got = got[1:]
        expected = [by_seq[seq] for seq in range(start, log.last_seq + 1)]
        assert len(got) == len(expected)
        assert all(a is b for a, b in zip(got, expected, strict=True))
        assert got[-1].type == "session_exited"
