"""EventPane in a real kernel: what the front end receives, and what it can send back.

The kernel is started with jupyter_client and spoken to over its real channels, as a front
end would: comm messages in, iopub messages out.
"""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

from nbsession.widgets.pane import STATIC

TIMEOUT = 30


@contextmanager
def running_kernel() -> Iterator[BlockingKernelClient]:
    """A real python3 kernel with its channels started, shut down on exit."""
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel()
    client = manager.blocking_client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=TIMEOUT)
        yield client
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


@pytest.fixture(scope="module")
def kernel() -> Iterator[BlockingKernelClient]:
    with running_kernel() as client:
        yield client


def execute(
    client: BlockingKernelClient, code: str, seen: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Run ``code``; return the iopub messages it caused (up to the kernel going idle).

    ``seen`` also gets those of other parents (a pane updated from the SDK's thread may carry
    another cell's header)."""
    msg_id = client.execute(code)
    own: list[dict[str, Any]] = []
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        try:
            msg = client.get_iopub_msg(timeout=1)
        except queue.Empty:
            continue
        if seen is not None:
            seen.append(msg)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "error":
            raise AssertionError("\n".join(msg["content"]["traceback"]))
        own.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return own
    raise AssertionError(f"the kernel did not finish {code!r} in {TIMEOUT}s")


def customs(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The contents of the widget custom messages among ``messages``."""
    return [
        m["content"]["data"]["content"]
        for m in messages
        if m["msg_type"] == "comm_msg" and m["content"]["data"].get("method") == "custom"
    ]


def send_from_front_end(client: BlockingKernelClient, comm_id: str, content: Any) -> None:
    """A front end's ``model.send(content)``: a comm message with method ``custom``."""
    msg = client.session.msg(
        "comm_msg",
        {"comm_id": comm_id, "data": {"method": "custom", "content": content}},
    )
    client.shell_channel.send(msg)


def output(messages: list[dict[str, Any]]) -> str:
    return "".join(m["content"]["text"] for m in messages if m["msg_type"] == "stream")


def test_pane_opens_with_the_bundled_module_and_no_token(kernel: BlockingKernelClient) -> None:
    messages = execute(
        kernel,
        "from nbsession.widgets import EventPane\n"
        "pane = EventPane(session_id='s-1', base_url='/lab-base/')\n"
        "print(pane.model_id)",
    )
    opened = [m for m in messages if m["msg_type"] == "comm_open"]
    state = next(
        m["content"]["data"]["state"]
        for m in opened
        if m["content"]["comm_id"] == output(messages).strip()
    )
    assert state["session_id"] == "s-1"
    assert state["base_url"] == "/lab-base/"
    assert state["_esm"] == (STATIC / "pane.js").read_text()
    assert "export" in state["_esm"] or "default" in state["_esm"]
    assert "token" not in json.dumps({k: v for k, v in state.items() if k != "_esm"}).lower()


def test_relay_sends_one_batched_message_and_replays_to_late_views(
    kernel: BlockingKernelClient,
) -> None:
    messages = execute(
        kernel,
        "from nbsession.widgets import EventPane\n"
        "relay_pane = EventPane(session_id='s-2')\n"
        "deltas = [{'seq': n, 'event': {'type': 'agent_choice', 'agent_name': 'root',\n"
        "  'timestamp': '2026-01-01T00:00:00Z', 'content': f'{n} '}} for n in range(2, 102)]\n"
        "def piece(seq, args):\n"
        "  function = {'name': 'think', 'arguments': args}\n"
        "  call = {'id': 'c1', 'type': 'function', 'function': function}\n"
        "  return {'seq': seq, 'event': {'type': 'partial_tool_call', 'tool_call': call}}\n"
        "relay_pane.relay([{'seq': 1, 'event': {'type': 'stream_started'}}, *deltas,\n"
        "  piece(102, '{\"thought\": '), piece(103, '\"hm\"}'),\n"
        "  {'type': 'warning', 'message': 'careful'}])\n"
        "print(relay_pane.model_id)",
    )
    batches = customs(messages)
    text = "".join(f"{n} " for n in range(2, 102))
    joined = {"name": "think", "arguments": '{"thought": "hm"}'}  # one call's pieces, joined
    call = {"id": "c1", "type": "function", "function": joined}
    expected = [
        {"seq": 1, "event": {"type": "stream_started"}},
        {"seq": 101, "event": {"type": "agent_choice", "content": text, "agent_name": "root"}},
        {"seq": 103, "event": {"type": "partial_tool_call", "tool_call": call}},
        {"seq": None, "event": {"type": "warning", "message": "careful"}},
    ]
    assert batches == [{"kind": "events", "events": expected}]

    comm_id = output(messages).strip()

    def replay(ready: dict[str, Any], count: int) -> list[dict[str, Any]]:
        send_from_front_end(kernel, comm_id, ready)
        replayed: list[dict[str, Any]] = []
        deadline = time.monotonic() + TIMEOUT
        while sum(len(b["events"]) for b in replayed) < count:
            assert time.monotonic() < deadline, "the kernel did not replay the relayed events"
            try:
                msg = kernel.get_iopub_msg(timeout=1)
            except queue.Empty:
                continue
            replayed.extend(customs([msg]))
        return [e for b in replayed for e in b["events"]]

    assert replay({"kind": "ready", "mode": "relay"}, len(expected)) == expected
    # A view that shows events up to seq 1 gets the rest (and those without a seq).
    assert replay({"kind": "ready", "mode": "relay", "since": 1}, 3) == expected[1:]


def test_answers_from_a_relay_pane_reach_the_registered_callback(
    kernel: BlockingKernelClient,
) -> None:
    messages = execute(
        kernel,
        "from nbsession.widgets import EventPane\n"
        "actions = []\n"
        "answer_pane = EventPane(session_id='s-3')\n"
        "answer_pane.on_action(actions.append)\n"
        "print(answer_pane.model_id)",
    )
    comm_id = output(messages).strip()
    send_from_front_end(
        kernel, comm_id, {"kind": "resume", "body": {"confirmation": "reject", "reason": "no"}}
    )
    send_from_front_end(kernel, comm_id, {"kind": "cancel"})
    send_from_front_end(kernel, comm_id, {"kind": "not-an-action"})
    # Shell messages are handled in order: this cell runs after the three comm messages.
    printed = output(execute(kernel, "import json; print(json.dumps(actions))"))
    assert json.loads(printed) == [
        {"kind": "resume", "body": {"confirmation": "reject", "reason": "no"}},
        {"kind": "cancel", "body": {}},
    ]
