"""A 100 kB tool-call argument streamed in small pieces: the bytes ``/events`` carries for it.

The turn: an agent with the filesystem toolset on the offline demo model, asked to
"call `write_file` with {...}" whose ``content`` is 100 kB of text. The demo model streams a
tool call's arguments in 64-character pieces, as a provider streams them in tokens (~1,600
pieces here), and the session approves tools, so the file is written without asking. A real
``jupyter nbsession`` subprocess (``launcher.py``) serves it; one ``/events``
reader follows the session from before the run starts to its ``stream_stopped`` and counts
the bytes of its body: in all, and in ``partial_tool_call`` frames. It also accumulates the
partial arguments as a client does and checks them against the final ``tool_call``'s
(``partial args ok``). The log keeps 32,768 events and readers may leave 1 GB unsent, so no
reader is dropped whatever the event sizes.

Run it before and after a change to compare (the figures of both runs are in the README):

    python benchmarks/bench_tool_args.py            # ~10 s on 2 cores (3 turns)
    python benchmarks/bench_tool_args.py --quick    # ~8 s (1 turn)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from _util import fmt, header, median, table
from launcher import PHASE_DEADLINE, TIMEOUT, Server, start_server

ARGUMENT_BYTES = 100_000
OPTIONS = (
    "--NBSessionApp.event_log_capacity=32768",
    "--NBSessionApp.max_unsent_bytes=1000000000",
)
AGENT = "writer"
AGENT_YAML = """\
version: "2"
agents:
  root:
    model: demo/offline
    description: "Offline demo agent with file tools"
    toolsets:
      - type: filesystem
"""


@dataclass
class Turn:
    body_bytes: int = 0
    """Bytes of the ``/events`` body from the turn's first event to its ``stream_stopped``."""
    partial_bytes: int = 0
    partial_events: int = 0
    events: int = 0
    seconds: float = 0.0
    arguments_ok: bool = False
    partial_arguments: dict[str, str] = field(default_factory=dict)


def prompt() -> tuple[str, str]:
    """The prompt and the JSON arguments it asks for (``content`` of ARGUMENT_BYTES)."""
    line = "All work and no play makes a long argument streamed in pieces.\n"
    content = (line * (ARGUMENT_BYTES // len(line) + 1))[:ARGUMENT_BYTES]
    arguments = json.dumps({"path": "big.txt", "content": content})
    return f"call `write_file` with {arguments}", arguments


async def read_turn(response: httpx.Response, turn: Turn, started: asyncio.Event) -> None:
    """Read ``/events`` frames until ``stream_stopped``, counting bytes and partial args."""
    if response.status_code != 200:
        raise RuntimeError(f"{response.status_code}: {(await response.aread())[:300]!r}")
    started.set()
    rest = b""
    async for chunk in response.aiter_raw():
        rest += chunk
        *frames, rest = rest.split(b"\n\n")
        for frame in frames:
            _, _, data = frame.partition(b"data: ")
            if not data:
                continue  # a heartbeat
            event = json.loads(data)
            turn.events += 1
            turn.body_bytes += len(frame) + 2
            kind = event["type"]
            if kind == "partial_tool_call":
                turn.partial_events += 1
                turn.partial_bytes += len(frame) + 2
                call = event["tool_call"]
                args = turn.partial_arguments.get(call["id"], "")
                # Accumulating is right for delta events; a full-arguments event (the older
                # wire) starts with what is held, and replaces it.
                piece = call["function"]["arguments"]
                held = piece if piece.startswith(args) and args else args + piece
                turn.partial_arguments[call["id"]] = held
            elif kind == "tool_call":
                call = event["tool_call"]
                final = call["function"]["arguments"]
                turn.arguments_ok = turn.partial_arguments.get(call["id"]) == final
            elif kind == "stream_stopped":
                return


async def one_turn(client: httpx.AsyncClient, text: str) -> Turn:
    reply = await client.post("/api/sessions", json={"tools_approved": True})
    reply.raise_for_status()
    sid = reply.json()["id"]
    turn = Turn()
    started = asyncio.Event()
    async with client.stream("GET", f"/api/sessions/{sid}/events") as response:
        reader = asyncio.ensure_future(read_turn(response, turn, started))
        await started.wait()
        begin = time.perf_counter()
        run = await client.post(
            f"/api/sessions/{sid}/agent/{AGENT}?detach=true",
            json={"messages": [{"role": "user", "content": text}]},
        )
        run.raise_for_status()
        await asyncio.wait_for(reader, PHASE_DEADLINE)
        turn.seconds = time.perf_counter() - begin
    await client.delete(f"/api/sessions/{sid}")
    return turn


async def measure(server: Server, reps: int) -> None:
    text, arguments = prompt()
    async with httpx.AsyncClient(
        base_url=server.url, headers=server.headers, timeout=TIMEOUT
    ) as client:
        turns = [await one_turn(client, text) for _ in range(reps)]
    size = len(arguments)

    def med(attr: str) -> float:
        return median([float(getattr(t, attr)) for t in turns])

    table(
        f"One turn writing a {fmt(size)}-byte argument (median of {reps})",
        ["figure", "value", "per argument byte"],
        [
            [
                "/events bytes, whole turn",
                fmt(int(med("body_bytes"))),
                f"{med('body_bytes') / size:.2f}",
            ],
            [
                "  in partial_tool_call frames",
                fmt(int(med("partial_bytes"))),
                f"{med('partial_bytes') / size:.2f}",
            ],
            ["partial_tool_call events", fmt(int(med("partial_events"))), ""],
            ["events in the turn", fmt(int(med("events"))), ""],
            ["turn wall time (s)", f"{med('seconds'):.2f}", ""],
            ["partial args ok", str(all(t.arguments_ok for t in turns)), ""],
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one turn instead of three")
    parser.add_argument("--server-cmd", default="", help="command line of the server to start")
    args = parser.parse_args()
    header("bench_tool_args", f"argument {fmt(ARGUMENT_BYTES)} bytes, offline demo model")
    with tempfile.TemporaryDirectory() as tmp:
        agents = Path(tmp) / "agents"
        agents.mkdir()
        (agents / f"{AGENT}.yaml").write_text(AGENT_YAML)
        options = (*OPTIONS, f"--NBSessionApp.agents_dir={agents}")
        server = start_server(Path(tmp), args.server_cmd, options)
        try:
            asyncio.run(measure(server, 1 if args.quick else 3))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
