"""DeltaCoalescer on a real event log: what is merged, and what always goes out first."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from nbsession.eventlog import RingEventLog
from nbsession.runtime import events
from nbsession.runtime.deltas import DeltaCoalescer
from nbsession.session import FunctionCall, ToolCall

SID = "s1"
HELD = 600.0  # seconds: only another event, the size bound or a flush sends held text


def text(content: str, agent: str = "root") -> dict[str, Any]:
    return events.agent_choice(SID, agent, content)


def reasoning(content: str) -> dict[str, Any]:
    return events.agent_choice_reasoning(SID, "root", content)


def logged(log: RingEventLog) -> list[tuple[str, str]]:
    """(type, content or agent) of each event in the log, in order."""
    out = []
    for entry in log.subscribe(0).take_ready():
        event = json.loads(entry.data)
        out.append((entry.type, event.get("content", event.get("agent_name", ""))))
    return out


async def test_first_delta_goes_at_once_the_rest_with_the_next_event() -> None:
    log = RingEventLog()
    deltas = DeltaCoalescer(log, HELD)
    for piece in ("a", "b", "c"):
        deltas.delta(text(piece))
    assert logged(log) == [("agent_choice", "a")]
    deltas.emit(events.warning("root", "w"))
    assert logged(log) == [("agent_choice", "a"), ("agent_choice", "bc"), ("warning", "root")]
    _first, merged, _warning = log.subscribe(0).take_ready()
    # docker-agent's shape, only with a longer text
    assert set(json.loads(merged.data)) == set(text("x"))


async def test_a_change_of_kind_or_agent_sends_what_is_held_first() -> None:
    log = RingEventLog()
    deltas = DeltaCoalescer(log, HELD)
    deltas.delta(reasoning("r0"))
    for event in (reasoning("r1"), reasoning("r2"), text("t1"), text("t2"), text("u1", "other")):
        deltas.delta(event)
    deltas.flush()
    assert logged(log) == [
        ("agent_choice_reasoning", "r0"),
        ("agent_choice_reasoning", "r1r2"),
        ("agent_choice", "t1t2"),
        ("agent_choice", "u1"),
    ]


async def test_the_size_bound_sends_held_text_at_once() -> None:
    log = RingEventLog()
    deltas = DeltaCoalescer(log, HELD, max_chars=6)
    for piece in ("a", "bbb", "ccc", "d"):
        deltas.delta(text(piece))
    assert logged(log) == [("agent_choice", "a"), ("agent_choice", "bbbccc")]


async def test_held_text_goes_out_after_the_interval_without_another_event() -> None:
    log = RingEventLog()
    reader = log.subscribe(0)
    deltas = DeltaCoalescer(log, 0.01)
    for piece in ("a", "b", "c"):
        deltas.delta(text(piece))
    first = await asyncio.wait_for(reader.__anext__(), 5)
    second = await asyncio.wait_for(reader.__anext__(), 5)
    assert [json.loads(e.data)["content"] for e in (first, second)] == ["a", "bc"]


async def test_interval_zero_sends_each_delta() -> None:
    log = RingEventLog()
    deltas = DeltaCoalescer(log, 0)
    for piece in ("a", "b"):
        deltas.delta(text(piece))
    assert logged(log) == [("agent_choice", "a"), ("agent_choice", "b")]


async def test_a_closed_log_drops_held_text_quietly() -> None:
    log = RingEventLog()
    deltas = DeltaCoalescer(log, HELD)
    deltas.delta(text("a"))
    deltas.delta(text("b"))
    log.close("session deleted")
    deltas.flush()
    assert deltas.emit(events.warning("root", "late")) is None
    assert logged(log)[-1] == ("session_exited", "")


def piece(args: str, call_id: str = "c1") -> dict[str, Any]:
    call = ToolCall(id=call_id, function=FunctionCall(name="write_file", arguments=args))
    return events.partial_tool_call("root", call, None)


def arguments(log: RingEventLog) -> list[tuple[str, str]]:
    """(call id, arguments piece) of each partial_tool_call in the log, in order."""
    out = []
    for entry in log.subscribe(0).take_ready():
        event = json.loads(entry.data)
        if event["type"] == "partial_tool_call":
            out.append((event["tool_call"]["id"], event["tool_call"]["function"]["arguments"]))
    return out


async def test_argument_pieces_merge_per_call() -> None:
    log = RingEventLog()
    deltas = DeltaCoalescer(log, HELD)
    for event in (
        piece('{"pa'),
        piece('th": '),
        piece('"a"}'),
        piece("{}", "c2"),
        piece("x", "c2"),
    ):
        deltas.delta(event)
    deltas.flush()
    assert arguments(log) == [("c1", '{"pa'), ("c1", 'th": "a"}'), ("c2", "{}x")]
    merged = json.loads(log.subscribe(0).take_ready()[1].data)
    assert merged["tool_call"]["function"]["name"] == "write_file"  # the first piece's fields


async def test_partial_calls_hold_what_the_log_streamed_until_the_answer_is_stored() -> None:
    log = RingEventLog()
    deltas = DeltaCoalescer(log, HELD)
    for args in ('{"pa', 'th": ', '"a"}'):
        deltas.delta(piece(args))
    # The first piece is in the log; the rest is held (no seq yet), so not in a snapshot.
    [call] = deltas.partial_calls()
    assert (
        call["type"] == "partial_tool_call" and call["tool_call"]["function"]["arguments"] == '{"pa'
    )
    deltas.flush()
    [call] = deltas.partial_calls()
    assert call["tool_call"]["function"]["arguments"] == '{"path": "a"}'
    deltas.emit(events.token_usage(SID, "root", {"input_tokens": 1}))  # the answer is stored
    assert deltas.partial_calls() == []
