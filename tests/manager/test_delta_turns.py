"""Merged text deltas in real turns (``runtime/deltas.py``): fewer events, same story.

A real runtime streams from the loopback OpenAI-compatible server over HTTP. Each turn is run
with merging off (``delta_flush_interval=0``: one event per delta) and on; with a long
interval, everything after a run's first delta is held until another event, the size bound
or the turn's end lets it go, so the merging is the same on a fast or a loaded machine.
"""

from __future__ import annotations

import json
import textwrap
import threading
from pathlib import Path

from peers.openai_server import OpenAIServer, Reply, ScriptedToolCall

from .turn_helpers import (
    DEFAULT_AGENT,
    Event,
    choice_text,
    of_type,
    open_manager,
    open_reader,
    read_rest,
    read_until,
    user,
)

HELD = 600.0  # seconds: in these tests only another event or the turn's end sends held text
DELTAS = ("agent_choice", "agent_choice_reasoning")


def write_agent(tmp_path: Path, url: str) -> None:
    """Agent ``lb``: the loopback model and the read-only think tool."""
    (tmp_path / "agents").mkdir(parents=True, exist_ok=True)
    (tmp_path / "agents" / "lb.yaml").write_text(
        textwrap.dedent(
            f"""
            agents:
              root:
                model: m
                toolsets: [{{type: think}}]
            models:
              m: {{provider: openai, model: loopback, base_url: "{url}"}}
            """
        )
    )


def words(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{i} " for i in range(count)]


def story(events: list[Event]) -> list[tuple[str, str]]:
    """What a reader makes of a turn: each event's type with its text (a delta) or its
    identity (a tool call; a streaming call's name and arguments), consecutive deltas of one
    type and agent (of one call) joined, volatile
    fields (timestamps, seqs, ids of this session) left out."""
    out: list[tuple[str, str]] = []
    for event in events:
        kind = event["type"]
        if kind in DELTAS:
            if out and out[-1][0] == kind:
                out[-1] = (kind, out[-1][1] + event["content"])
            else:
                out.append((kind, event["content"]))
        elif kind == "partial_tool_call":  # pieces of one call's arguments, joined
            function = event["tool_call"]["function"]
            if out and out[-1][0] == kind:
                out[-1] = (kind, out[-1][1] + function["arguments"])
            else:
                out.append((kind, function["name"] + function["arguments"]))
        elif "tool_call" in event:
            out.append((kind, event["tool_call"]["function"]["name"]))
        elif kind in ("error", "stream_stopped"):
            out.append((kind, event.get("reason", "")))
        else:
            out.append((kind, ""))
    return out


async def one_turn(tmp_path: Path, server: OpenAIServer, interval: float) -> list[Event]:
    write_agent(tmp_path, server.url)
    async with open_manager(tmp_path, delta_flush_interval=interval) as mgr:
        sid = (await mgr.create_session({"title": "t"})).id
        stream = await mgr.run_session(sid, "lb", "", user("go"))
        return await read_rest(stream)


def interleaved() -> list[Reply]:
    """Reasoning, text, a tool call (the read-only think tool runs at once), then more text."""
    return [
        Reply(
            reasoning="Thinking it through.",
            text_chunks=words("a", 40),
            tool_calls=[ScriptedToolCall("think", {"thought": "17*23 = 391"})],
        ),
        Reply(text_chunks=words("b", 40)),
    ]


async def test_merged_deltas_tell_the_same_story_around_tool_calls(
    tmp_path: Path, openai_server: OpenAIServer
) -> None:
    openai_server.script(*interleaved())
    each = await one_turn(tmp_path / "each", openai_server, 0)
    openai_server.script(*interleaved())
    merged = await one_turn(tmp_path / "merged", openai_server, HELD)

    assert len(of_type(each, "agent_choice")) == 80  # one event per delta
    assert story(merged) == story(each)
    assert choice_text(merged) == "".join(words("a", 40) + words("b", 40))
    # Each run of text is its first delta (sent at once) and the rest, merged.
    assert len(of_type(merged, "agent_choice")) <= 4
    kinds = [event["type"] for event in merged]
    assert kinds[kinds.index("partial_tool_call") - 1] == "agent_choice"
    assert kinds[-3:] == ["agent_choice", "token_usage", "stream_stopped"]
    assert [event["seq"] for event in merged] == list(range(1, len(merged) + 1))


async def test_replay_after_reconnect_gives_the_merged_events_again(
    tmp_path: Path, openai_server: OpenAIServer
) -> None:
    openai_server.script(*interleaved())
    write_agent(tmp_path, openai_server.url)
    async with open_manager(tmp_path, delta_flush_interval=HELD) as mgr:
        sid = (await mgr.create_session({"title": "t"})).id
        watcher = await mgr.subscribe_events(sid)
        stream = await mgr.run_session(sid, "lb", "", user("go"))
        live = await read_rest(stream)
        watched = await read_until(watcher, "stream_stopped")
        middle = live[len(live) // 2]["seq"]
        replayed = await read_until(await mgr.subscribe_events(sid, since=0), "stream_stopped")
        resumed = await read_until(await mgr.subscribe_events(sid, since=middle), "stream_stopped")
    assert watched == live == replayed
    assert resumed == live[len(live) // 2 + 1 :]


async def test_a_cancel_sends_the_held_text_before_it_stops(
    tmp_path: Path, openai_server: OpenAIServer
) -> None:
    """The text a cancelled turn showed is all sent, before ``stream_stopped``, and is what
    the session keeps."""
    pause = threading.Event()
    openai_server.script(Reply(text_chunks=words("c", 60), pause=pause, pause_after=30))
    write_agent(tmp_path, openai_server.url)
    async with open_manager(tmp_path, delta_flush_interval=HELD) as mgr:
        sid = (await mgr.create_session({"title": "t"})).id
        stream = await mgr.run_session(sid, "lb", "", user("go"))
        shown = await read_until(stream, "agent_choice")  # the first delta goes out at once
        await mgr.cancel_session(sid)
        events = shown + await read_rest(stream)
        pause.set()
        async with open_reader(tmp_path) as reader:
            saved = await reader.get_session(sid)
    assert events[-1]["type"] == "stream_stopped" and events[-1]["reason"] == "canceled"
    text = choice_text(events)
    assert "".join(words("c", 60)).startswith(text) and text.startswith("c0 ")
    [answer] = [m.message for m in saved.chat_messages() if m.message.role == "assistant"]
    assert answer.content == text


async def test_an_error_mid_stream_comes_after_the_text_it_cut(
    tmp_path: Path, openai_server: OpenAIServer
) -> None:
    def failing() -> Reply:
        return Reply(text_chunks=words("d", 30), stream_error="The server is overloaded.")

    openai_server.script(failing())
    each = await one_turn(tmp_path / "each", openai_server, 0)
    openai_server.script(failing())
    merged = await one_turn(tmp_path / "merged", openai_server, HELD)

    assert story(merged) == story(each)
    assert choice_text(merged) == "".join(words("d", 30))
    kinds = [event["type"] for event in merged]
    assert kinds[-3:] == ["agent_choice", "error", "stream_stopped"]
    assert merged[-1]["reason"] == "error"


async def test_a_long_argument_streams_as_deltas_that_join_to_the_call(tmp_path: Path) -> None:
    """docker-agent's wire: each partial_tool_call holds only new bytes (merged over 50 ms),
    the tool's definition comes with the first; joined, they are the call's arguments."""
    thought = "step by step " * 400  # 5,200 characters: ~80 pieces from the demo model
    prompt = "call `think` with " + json.dumps({"thought": thought})
    async with open_manager(tmp_path) as mgr:
        sid = (await mgr.create_session({"title": "t"})).id
        stream = await mgr.run_session(sid, DEFAULT_AGENT, "", user(prompt))
        events = await read_rest(stream)
    partials = of_type(events, "partial_tool_call")
    [call] = of_type(events, "tool_call")
    joined = "".join(p["tool_call"]["function"]["arguments"] for p in partials)
    assert joined == call["tool_call"]["function"]["arguments"]
    assert json.loads(joined) == {"thought": thought}
    assert [("tool_definition" in p) for p in partials] == [True] + [False] * (len(partials) - 1)
    assert {p["tool_call"]["id"] for p in partials} == {call["tool_call"]["id"]}
    assert sum(len(json.dumps(p)) for p in partials) < 2 * len(joined)  # not its square
