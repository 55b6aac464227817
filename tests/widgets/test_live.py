"""Turns run from a real kernel (jupyter_client) show a pane: relay, answers, Markdown, %%agent.

The kernel has no Jupyter server, so ``local()`` sessions are relayed by the kernel and the
``%%agent`` magic falls back to a manager inside the kernel.
"""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Iterator
from typing import Any

import pytest
from jupyter_client.blocking.client import BlockingKernelClient

from nbsession.sdk.results import Event
from nbsession.widgets.live import _ended_before, _envelopes

from .test_pane_widget import (
    TIMEOUT,
    customs,
    execute,
    output,
    running_kernel,
    send_from_front_end,
)

WIDGET = "application/vnd.jupyter.widget-view+json"


@pytest.fixture
def kernel() -> Iterator[BlockingKernelClient]:
    with running_kernel() as client:
        yield client


def displays(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m["msg_type"] in ("display_data", "update_display_data")]


def drain(client: BlockingKernelClient, until: Any) -> list[dict[str, Any]]:
    """Iopub messages (of any cell) until ``until(messages)`` holds."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + TIMEOUT
    while not until(seen):
        assert time.monotonic() < deadline, f"gave up after {[m['msg_type'] for m in seen]}"
        try:
            seen.append(client.get_iopub_msg(timeout=1))
        except queue.Empty:
            continue
    return seen


def test_a_local_turn_is_relayed_and_approved_from_the_pane(
    kernel: BlockingKernelClient,
) -> None:
    started = execute(
        kernel,
        "import nbsession\n"
        "session = nbsession.local().create_session()\n"
        "turn = session.run('list the files', wait=False)\n"
        "print(turn._pane.pane.model_id)",
    )
    comm_id = output(started).strip()
    (shown,) = [m for m in displays(started) if m["msg_type"] == "display_data"]
    assert shown["content"]["data"][WIDGET]["model_id"] == comm_id
    assert "turn running" in shown["content"]["data"]["text/markdown"]
    display_id = shown["content"]["transient"]["display_id"]

    def relayed(messages: list[dict[str, Any]]) -> list[str]:
        return [e["event"]["type"] for batch in customs(messages) for e in batch["events"]]

    seen = started + drain(kernel, lambda ms: "tool_call_confirmation" in relayed(started + ms))
    send_from_front_end(kernel, comm_id, {"kind": "resume", "body": {"confirmation": "approve"}})
    everything: list[dict[str, Any]] = []
    ended = execute(
        kernel,
        "r = turn.result(timeout=60)\nprint(r.stop_reason, r.tool_calls[0].name)",
        everything,
    )
    assert output(ended).splitlines()[-1] == "normal shell"
    seen += everything

    def over(more: list[dict[str, Any]]) -> bool:
        updated = any(m["msg_type"] == "update_display_data" for m in seen + more)
        return updated and "stream_stopped" in relayed(seen + more)

    seen += drain(kernel, over)
    # At most one relayed message per RELAY_INTERVAL: far fewer messages than events.
    assert len(customs(seen)) < len(relayed(seen))
    (update,) = [m for m in seen if m["msg_type"] == "update_display_data"]
    assert update["content"]["transient"]["display_id"] == display_id
    markdown = update["content"]["data"]["text/markdown"]
    assert "done" in markdown and "tool `shell`" in markdown
    assert update["content"]["data"][WIDGET]["model_id"] == comm_id


def test_stop_from_the_pane_cancels_the_turn(kernel: BlockingKernelClient) -> None:
    started = execute(
        kernel,
        "import nbsession\n"
        "session = nbsession.local().create_session()\n"
        "turn = session.run('list the files', wait=False)\n"
        "turn.wait_pending(timeout=60)\n"
        "print(turn._pane.pane.model_id)",
    )
    send_from_front_end(kernel, output(started).strip(), {"kind": "cancel", "body": {}})
    ended = execute(kernel, "print(turn.result(timeout=60).stop_reason)")
    assert output(ended).splitlines()[-1] == "canceled"


def test_a_blocking_run_records_its_markdown_in_the_cell(kernel: BlockingKernelClient) -> None:
    messages = execute(
        kernel,
        "import nbsession\nprint(nbsession.local().create_session().run('what is 17*23'))",
    )
    assert "391" in output(messages)
    shown = displays(messages)
    assert [m["msg_type"] for m in shown] == ["display_data", "update_display_data"]
    final = shown[-1]["content"]["data"]["text/markdown"]
    assert "391" in final and "done" in final


def test_no_pane_without_a_kernel_display() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import nbsession, sys\n"
            "from nbsession.sdk import display\n"
            "print(display.get_pane_factory(), 'anywidget' in sys.modules)\n"
            "print(nbsession.local().create_session().run('what is 17*23'))",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    first, answer = done.stdout.split("\n", 1)
    assert first == "None False" and "391" in answer and "nbsession" not in answer


def test_agent_magic_continues_substitutes_and_exposes_the_result(
    kernel: BlockingKernelClient,
) -> None:
    execute(kernel, "%load_ext nbsession\nx = 17")
    first = execute(kernel, "%%agent\nwhat is {x}*23")
    assert any(WIDGET in m["content"]["data"] for m in displays(first))
    results = [m for m in first if m["msg_type"] == "execute_result"]
    assert results and "TurnResult normal" in results[0]["content"]["data"]["text/plain"]
    check = execute(
        kernel,
        "import json\nprint(json.dumps([_agent.text, str(_), _agent.session_id]))",
    )
    text, underscore, first_id = json.loads(output(check))
    assert "391" in text and underscore == text

    execute(kernel, "%%agent\nwhat is 2*3")
    again = json.loads(output(execute(kernel, "print(json.dumps(_agent.session_id))")))
    assert again == first_id
    messages = json.loads(
        output(
            execute(
                kernel,
                "s = get_ipython().magics_manager.registry['AgentMagics'].session\n"
                "print(json.dumps([m['message']['content'] for m in s.messages()"
                " if m['message']['role'] == 'user']))",
            )
        )
    )
    assert messages == ["what is 17*23", "what is 2*3"]

    execute(kernel, "%%agent --new\nwhat is 2*3")
    fresh = json.loads(output(execute(kernel, "print(json.dumps(_agent.session_id))")))
    assert fresh != first_id


def test_a_gap_reaches_the_pane_with_the_snapshot_to_rebuild_from() -> None:
    """What a relay that fell a log behind sends: the gap, then the re-read snapshot (the
    pane's ``pane.snapshot``); a snapshot of an idle session ends the relay, since the
    turn's ``stream_stopped`` was among the lost events."""
    running = {"last_event_seq": 40, "streaming": True, "messages": []}
    idle = {**running, "streaming": False}
    gap = Event(None, "gap", {"type": "gap"}, running)
    text = Event(41, "agent_choice", {"type": "agent_choice", "content": "hi"})
    assert list(_envelopes([gap, text])) == [
        {"seq": None, "event": {"type": "gap"}},
        {"seq": None, "event": {"type": "pane.snapshot", "snapshot": running}},
        {"seq": 41, "event": {"type": "agent_choice", "content": "hi"}},
    ]
    assert not _ended_before(gap) and not _ended_before(text)
    assert _ended_before(Event(None, "gap", {"type": "gap"}, idle))
