"""``events()`` and ``run()`` across a connection cut mid-turn, and across a ``gap``.

A loopback proxy stands between the SDK and the server and cuts one SSE response in the
middle of a frame; the SDK must reconnect with ``Last-Event-ID`` and deliver every seq once.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import nbsession
from tests.server.test_live_server import CAPACITY, Server

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
