"""Streamed tool output: the shell passes its output on while the command runs, and the relay
turns it into events at a bounded pace and size."""

from __future__ import annotations

import asyncio
from pathlib import Path

from nbsession.runtime.tool_output import CUT, OutputRelay
from nbsession.tools import ShellToolset, ToolContext, ToolResult

from .test_shell import HANG_GUARD


async def until(predicate: object, timeout: float = 10.0) -> None:
    """Wait (synchronisation, not a timing assertion) until ``predicate()`` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():  # type: ignore[operator]
        assert loop.time() < deadline, "the condition never held"
        await asyncio.sleep(0.01)


async def test_shell_output_arrives_while_the_command_runs(tmp_path: Path) -> None:
    pieces: list[str] = []
    [tool] = await ShellToolset().tools()
    ctx = ToolContext("s1", str(tmp_path), output=pieces.append)
    # "é" is split across the two writes: it must arrive whole, with the second piece.
    command = r"printf 'first\n\303'; while [ ! -e go ]; do sleep 0.02; done; printf '\251 done'"
    call = asyncio.ensure_future(tool.call({"cmd": command}, ctx))
    await until(lambda: "".join(pieces) == "first\n")
    assert not call.done()
    (tmp_path / "go").touch()
    result = await asyncio.wait_for(call, HANG_GUARD)
    assert result == ToolResult("first\né done")
    assert "".join(pieces) == "first\né done"


async def test_only_the_kept_output_is_streamed(tmp_path: Path) -> None:
    pieces: list[str] = []
    [tool] = await ShellToolset({"max_output": 100}).tools()
    ctx = ToolContext("s1", str(tmp_path), output=pieces.append)
    result = await asyncio.wait_for(tool.call({"cmd": "seq 1 10000"}, ctx), HANG_GUARD)
    streamed = "".join(pieces)
    assert len(streamed) == 100 and result.output.startswith(streamed.rstrip("\n"))


async def test_the_relay_batches_what_comes_between_two_sends() -> None:
    sent: list[str] = []
    relay = OutputRelay(sent.append, interval=3600)
    relay.write("a")  # the first piece goes at once
    for _ in range(1000):  # the rest waits for the interval (or the end of the call)
        relay.write("b")
    assert sent == ["a"]
    relay.close()
    assert sent == ["a", "b" * 1000]
    relay.write("late")
    relay.close()
    assert sent == ["a", "b" * 1000]


async def test_the_relay_sends_held_output_when_the_interval_has_passed() -> None:
    sent: list[str] = []
    relay = OutputRelay(sent.append, interval=0.01)
    relay.write("a")
    relay.write("b")
    await until(lambda: sent == ["a", "b"])
    relay.close()


async def test_the_relay_bounds_each_event_and_the_whole_call() -> None:
    sent: list[str] = []
    relay = OutputRelay(sent.append, interval=3600, max_event=10, limit=35)
    relay.write("x")
    relay.write("y" * 100)
    relay.close()
    assert sent[0] == "x"
    assert all(len(piece) <= 10 for piece in sent)
    assert "".join(sent) == "x" + "y" * 34 + CUT
