"""Two real ``jupyter server`` processes on one SQLite file (SPEC 10, first bullet).

Like two ``jupyter lab`` of one user on the default data directory: a turn runs on one server
only, the other answers 409 ``session_busy`` and shows the session streaming; both read the
same history afterwards; a server that dies or hangs mid-turn does not lock the session for
good. Waits poll a condition under a deadline, never a fixed sleep.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from nbsession.runtime.loop import INTERRUPTED

from .test_live_server import JUPYTER, SSE, Server, create, messages, run, start

pytestmark = pytest.mark.servers

LEASE = ["--NBSessionApp.lease_ttl=3", "--NBSessionApp.lease_renew_interval=0.2"]
LIST_FILES = "list the files"
MATH = "what is 17*23"


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[Server]]:
    """Servers started by the test (``launch``), all stopped at its end."""
    running: list[Server] = []
    yield running
    for server in running:
        if server.process.poll() is None:
            server.process.send_signal(signal.SIGCONT)  # a stopped one cannot handle SIGTERM
        server.stop()


def launch(servers: list[Server], home: Path, name: str) -> Server:
    server = start(home, [JUPYTER, "server", *LEASE], name=name)
    servers.append(server)
    return server


def held_turn(client: httpx.Client, session_id: str) -> None:
    """Start a detached turn and read it until it waits for an approval."""
    with run(client, session_id, LIST_FILES, detach="true") as response:
        SSE(response).until("tool_call_confirmation")


def chats(client: httpx.Client, session_id: str) -> list[dict[str, Any]]:
    """The session's chat messages (``{role, content, ...}``) as GET returns them."""
    reply = client.get(f"/api/sessions/{session_id}")
    assert reply.status_code == 200, reply.text
    return [entry["message"] for entry in reply.json()["messages"]]  # {agentName, message}


def run_to_end(client: httpx.Client, session_id: str, text: str) -> list[dict[str, Any]]:
    with run(client, session_id, text) as response:
        return [event for _, event in SSE(response).rest()]


def run_when_free(client: httpx.Client, session_id: str, deadline: float) -> list[dict[str, Any]]:
    """Retry a run while it is refused as busy (a lease not yet expired), up to ``deadline``."""
    while True:
        with run(client, session_id, MATH) as response:
            if response.status_code != 409:
                return [event for _, event in SSE(response).rest()]
            assert response.read() and response.json()["code"] == "session_busy"
        assert time.monotonic() < deadline, "the lease never expired"
        time.sleep(0.1)  # polling a condition under a deadline


def assert_one_result_per_call(history: list[dict[str, Any]]) -> None:
    calls = [call["id"] for chat in history for call in chat.get("tool_calls") or []]
    results = [chat["tool_call_id"] for chat in history if chat["role"] == "tool"]
    assert sorted(calls) == sorted(results)  # one result per call, none dangling


def kill(server: Server, sig: signal.Signals) -> None:
    os.kill(server.process.pid, sig)
    if sig == signal.SIGKILL:
        server.process.wait(timeout=10)


def test_two_servers_share_one_store(tmp_path: Path, servers: list[Server]) -> None:
    one, two = launch(servers, tmp_path, "one"), launch(servers, tmp_path, "two")
    with one.client() as c1, two.client() as c2:
        one_turn_at_a_time(c1, c2)
        a_dead_or_hung_server_does_not_lock_the_session(tmp_path, servers, one, c1, c2)


def one_turn_at_a_time(c1: httpx.Client, c2: httpx.Client) -> None:
    sid = create(c1)
    run_to_end(c2, sid, "hello")  # two holds a runtime, and a copy, of the session
    with run(c1, sid, LIST_FILES) as response:
        turn = SSE(response)
        turn.until("tool_call_confirmation")  # one's turn waits for an approval

        busy = c2.post(f"/api/sessions/{sid}/agent/default", json=messages(MATH))
        assert busy.status_code == 409 and busy.json()["code"] == "session_busy"
        status = c2.get(f"/api/sessions/{sid}/status").json()
        assert status["streaming"]
        assert status["activity"]["state"] == "running_on_another_server"
        assert c2.get(f"/api/sessions/{sid}/snapshot").json()["streaming"]
        renamed = c2.patch(f"/api/sessions/{sid}/title", json={"title": "from two"})
        assert renamed.status_code == 409
        mine = c1.get(f"/api/sessions/{sid}/status").json()["activity"]
        assert mine["state"] == "waiting_for_approval" and mine["tool"] == "shell"

        approved = c1.post(f"/api/sessions/{sid}/resume", json={"confirmation": "approve"})
        assert approved.status_code == 200, approved.text
        assert turn.rest()[-1][1]["type"] == "stream_stopped"
        # At once, on the other server: one gave its lease back before that last event.
        events = run_to_end(c2, sid, MATH)

    assert events[-1]["type"] == "stream_stopped" and events[-1]["reason"] == "normal"
    after = chats(c2, sid)
    users = [chat["content"] for chat in after if chat["role"] == "user"]
    assert users == ["hello", LIST_FILES, MATH]  # two ran on the history one wrote
    assert chats(c1, sid) == after
    assert_one_result_per_call(after)
    assert not c1.get(f"/api/sessions/{sid}/status").json()["streaming"]


def a_dead_or_hung_server_does_not_lock_the_session(
    home: Path, servers: list[Server], one: Server, c1: httpx.Client, c2: httpx.Client
) -> None:
    sid = create(c1)
    held_turn(c1, sid)
    kill(one, signal.SIGKILL)  # mid-turn; a dead server of this machine is not waited for
    events = run_when_free(c2, sid, time.monotonic() + 30)
    assert events[-1]["reason"] == "normal"
    tool_results = [chat for chat in chats(c2, sid) if chat["role"] == "tool"]
    assert tool_results[0]["content"] == INTERRUPTED  # the call one left open, closed

    three = launch(servers, home, "three")  # a server that hangs rather than dies
    with three.client() as c3:
        held_turn(c3, sid)
        kill(three, signal.SIGSTOP)
        busy = c2.post(f"/api/sessions/{sid}/agent/default", json=messages(MATH))
        assert busy.status_code == 409  # its lease stands until it expires
        events = run_when_free(c2, sid, time.monotonic() + 30)
        assert events[-1]["reason"] == "normal"
        history = chats(c2, sid)
        assert_one_result_per_call(history)

        # Three wakes up with an approval of its old turn waiting: it must write nothing
        # (it neither takes the session back nor lands the tool's result), and says so once.
        with ThreadPoolExecutor(1) as pool:
            approval = pool.submit(
                c3.post, f"/api/sessions/{sid}/resume", json={"confirmation": "approve"}
            )
            kill(three, signal.SIGCONT)
            approval.result(timeout=30)  # answered, whatever three made of it
        took_over = "another server took it over"

        def stopped_streaming() -> bool:
            # Three logs the line when it finds its lease gone; its turn ends after that, once
            # it has given the lease up in the store: a status read between the two still
            # shows it streaming, so both are waited for.
            status = c3.get(f"/api/sessions/{sid}/status").json()
            return took_over in three.log.read_text() and not status["streaming"]

        deadline = time.monotonic() + 30
        while not stopped_streaming():
            assert time.monotonic() < deadline, three.log.read_text()
            time.sleep(0.1)  # polling a condition under a deadline
        assert chats(c2, sid) == history
        text = three.log.read_text()
        assert text.count(took_over) == 1 and "Traceback" not in text, text
        assert run_to_end(c2, sid, MATH)[-1]["reason"] == "normal"  # not three's any more
