"""``events()`` and ``run()`` across a connection cut mid-turn, and across a ``gap``.

A loopback proxy stands between the SDK and the server and cuts one SSE response in the
middle of a frame; the SDK must reconnect with ``Last-Event-ID`` and deliver every seq once.
A second server keeps only 8 events per session, so a reader kept away (the proxy refuses its
reconnects) finds its turn's end evicted: the turn must still end, from the stored messages.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import nbsession
from tests.server.test_live_server import CAPACITY, JUPYTER, Server, start

from .conftest import EXT_TOKEN
from .helpers import CuttingProxy


@pytest.fixture
def proxy(live: Server) -> Iterator[CuttingProxy]:
    running = CuttingProxy(live.port)
    yield running
    running.close()


@pytest.fixture
def proxied(proxy: CuttingProxy) -> Iterator[nbsession.Client]:
    with nbsession.connect(f"http://127.0.0.1:{proxy.port}", EXT_TOKEN) as client:
        yield client


def _contiguous(seqs: list[int | None]) -> bool:
    return seqs == list(range(seqs[0] or 0, (seqs[0] or 0) + len(seqs)))


def test_events_survive_a_cut_mid_turn(
    proxied: nbsession.Client, proxy: CuttingProxy, client: nbsession.Client
) -> None:
    session = proxied.create_session()
    proxy.cut(b"/events", after=5)
    turn = client.session(session.id).run("list the files", wait=False)
    seen = []
    with session.events() as events:
        for event in events:
            seen.append(event)
            if event.type == "tool_call_confirmation":
                client.session(session.id).approve()
            if event.type == "stream_stopped":
                break
        assert events.reconnects == 1
    assert proxy.cuts == 1
    seqs = [e.seq for e in seen]
    assert seqs[0] == 1 and _contiguous(seqs)
    assert seqs == [e.seq for e in turn.result(timeout=60).events]


def test_run_survives_a_cut_of_its_stream(proxied: nbsession.Client, proxy: CuttingProxy) -> None:
    session = proxied.create_session()
    proxy.cut(b"/agent/default", after=8)
    result = session.run("what is 17*23")
    assert proxy.cuts == 1
    assert "391" in str(result) and result.stop_reason == "normal"
    assert _contiguous([e.seq for e in result.events])
    assert result.events[-1].type == "stream_stopped"


def test_a_gap_resyncs_from_the_snapshot(client: nbsession.Client) -> None:
    session = client.create_session()
    last = 0
    while last <= CAPACITY + 2:  # push seq 2 out of the server's buffer
        last = session.run("what is 17*23").last_seq or 0
    with session.events(since=1) as events:
        gap = next(events)
        assert gap.type == "gap" and gap.seq is None
        assert gap.snapshot is not None and gap.snapshot["last_event_seq"] == last
        session.follow_up("what is 17*23")
        after = []
        for event in events:
            after.append(event)
            if event.type == "stream_stopped":
                break
    seqs = [e.seq for e in after]
    assert seqs[0] == last + 1 and _contiguous(seqs)  # nothing the snapshot already holds


def test_a_run_cut_before_its_first_event_misses_nothing(
    proxied: nbsession.Client, proxy: CuttingProxy, client: nbsession.Client
) -> None:
    session = proxied.create_session()
    earlier = session.run("hello there")  # in the log: a resume from its start would replay it
    proxy.cut(b"/agent/default", after=0)
    turn = session.start("what is 17*23")
    result = turn.result(timeout=60)
    assert proxy.cuts == 1
    assert turn.start_seq is not None and turn.start_seq >= (earlier.last_seq or 0)
    seqs = [e.seq for e in result.events]
    assert seqs[0] == turn.start_seq + 1 and _contiguous(seqs)
    assert result.events[-1].type == "stream_stopped" and "391" in str(result)
    with client.session(session.id).events(since=turn.start_seq) as events:
        logged = []
        for event in events:
            logged.append(event.seq)
            if event.type == "stream_stopped":
                break
    assert seqs == logged  # each of the turn's events once, none of the earlier turn's


TINY_LOG = 8


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server that keeps 8 events per session: less than one turn."""
    home: Path = tmp_path_factory.mktemp("tiny-log")
    options = (f"--NBSessionApp.event_log_capacity={TINY_LOG}",)
    running = start(home, [JUPYTER, "server"], name="tiny-log", options=options)
    yield running
    running.stop()


@pytest.fixture
def kept_away(tiny: Server) -> Iterator[tuple[nbsession.Client, CuttingProxy, nbsession.Client]]:
    """A client behind a proxy, the proxy, and a direct client of the tiny-log server."""
    proxy = CuttingProxy(tiny.port)
    try:
        with (
            nbsession.connect(f"http://127.0.0.1:{proxy.port}", EXT_TOKEN) as behind,
            nbsession.connect(tiny.url, EXT_TOKEN) as direct,
        ):
            yield behind, proxy, direct
    finally:
        proxy.close()


def _until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)  # polling the server's state, bounded by the deadline


def _started_away(behind: nbsession.Client, proxy: CuttingProxy) -> tuple[str, nbsession.Turn]:
    """A turn whose run stream is cut at once and whose reconnects are refused."""
    session = behind.create_session()
    proxy.cut(b"/agent/default", after=0)
    proxy.refuse(b"/events")
    return session.id, session.start("what is 17*23")


def test_a_gap_that_hides_the_end_still_ends_the_turn(
    kept_away: tuple[nbsession.Client, CuttingProxy, nbsession.Client],
) -> None:
    behind, proxy, direct = kept_away
    sid, turn = _started_away(behind, proxy)
    _until(lambda: not direct.session(sid).status()["streaming"])
    assert direct.session(sid).snapshot()["last_event_seq"] > (turn.start_seq or 0) + TINY_LOG
    proxy.allow()
    result = turn.result(timeout=60)
    assert proxy.refusals >= 1
    assert "391" in str(result) and result.gap and result.stop_reason == "unknown"
    assert [call.name for call in result.tool_calls] == ["think"]
    assert result.tool_calls[0].output is not None


def test_a_gap_with_a_later_turn_running_ends_the_turn(
    kept_away: tuple[nbsession.Client, CuttingProxy, nbsession.Client],
) -> None:
    behind, proxy, direct = kept_away
    sid, turn = _started_away(behind, proxy)
    same = direct.session(sid)
    _until(lambda: not same.status()["streaming"])
    later = same.start("list the files")  # waits for an approval: it stays the running turn
    _until(lambda: same.snapshot()["pending"] is not None)
    proxy.allow()
    try:
        result = turn.result(timeout=60)
    finally:
        same.cancel()
        later.result(timeout=60)
    assert "391" in str(result) and result.gap and result.stop_reason == "unknown"
    assert [call.name for call in result.tool_calls] == ["think"]


def test_a_client_joining_mid_call_gets_the_whole_arguments(client: nbsession.Client) -> None:
    """Arguments stream as deltas: a watcher that reconnects (Last-Event-ID) appends the
    pieces after its last seq to what it held; a newcomer starts from the snapshot's
    ``partial_tool_calls`` and appends the pieces after the snapshot's seq. Both end with the
    call's arguments, which the demo model streams in 64-character pieces, 50 ms apart."""
    session = client.create_session()
    # 6,000 characters: ~95 pieces, ~5 s; one word, so the answer quoting it streams at once.
    thought = "careful-step-" * 460
    turn = session.start("call `think` with " + json.dumps({"thought": thought}), "demo/slow")
    held, dropped_at = "", 0
    with session.events(since=turn.start_seq) as events:
        for event in events:
            if event.type == "partial_tool_call":
                held += event["tool_call"]["function"]["arguments"]
                if len(held) > 200:
                    dropped_at = event.seq or 0
                    break
    snapshot = session.snapshot()  # mid-call: the call's message is not stored yet
    [seed] = snapshot["partial_tool_calls"]
    joined = seed["tool_call"]["function"]["arguments"]
    assert seed["tool_call"]["function"]["name"] == "think" and len(joined) < len(thought)
    resumed, final = held, None
    with session.events(since=dropped_at) as events:
        for event in events:
            if event.type == "partial_tool_call":
                piece = event["tool_call"]["function"]["arguments"]
                resumed += piece
                if (event.seq or 0) > snapshot["last_event_seq"]:
                    joined += piece
            elif event.type == "tool_call":
                final = event["tool_call"]["function"]["arguments"]
                break
    assert final is not None and json.loads(final) == {"thought": thought}
    assert resumed == final and joined == final
    assert turn.result(timeout=60).stop_reason == "normal"
