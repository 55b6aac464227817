"""A 10,000-delta turn on its way to a pane: bytes, messages and CPU against the text's size.

The turn: the offline demo model asked to "stream 10000 words" (10,000 ``agent_choice``
deltas, ~48 KB of text, as fast as the engine takes them). Each figure is measured twice, with
merging off (``delta_flush_interval=0``: one event per delta, as before ``runtime/deltas.py``)
and with the default interval (50 ms); SPEC 9's target is at most 2x the text's size.

1. ``/events`` (SSE) of a real ``jupyter nbsession`` subprocess (``launcher.py``), one
   server per setting, turns alternating between them: the bytes of the
   ``/events`` body and of the run stream from ``user_message`` to ``stream_stopped``, the
   events, the turn's wall time, and the server's CPU per delta (``/proc``; the readers are
   this process). Both servers keep 32,768 events per session, so a one-event-per-delta turn
   fits in the log and no reader is dropped.
2. Relay mode in a real kernel (jupyter_client, no front end): a ``nbsession.local()``
   session runs the turn with ``run(wait=False)``, so its ``EventPane`` relays events to the
   front end as custom comm messages. Counted on IOPub, whole ZMQ frames: the pane's update
   messages, their rate (the pane's updates per second), their bytes (whole message and
   custom content). Meanwhile a ``kernel_info_request`` goes to the kernel's shell channel
   every 20 ms; the longest round trip is the kernel's longest unresponsive stretch (what the
   next cell or a widget click would wait).

    python benchmarks/bench_pane_deltas.py            # ~30 s on 2 cores
    python benchmarks/bench_pane_deltas.py --quick    # ~25 s (one turn per setting)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import zmq
from _util import fmt, header, median, proc_cpu_seconds, ratio, table
from jupyter_client.manager import KernelManager
from launcher import PHASE_DEADLINE, TIMEOUT, Server, start_server

from nbsession.runtime.deltas import DEFAULT_INTERVAL

DELTAS = 10_000
PROMPT = f"stream {DELTAS} words"
SETTINGS = {"one event per delta": 0.0, f"merged ({DEFAULT_INTERVAL * 1000:.0f} ms)": None}
LOG_CAPACITY = 32_768
PING_EVERY = 0.02  # seconds between kernel_info requests during the relayed turn
KERNEL_DEADLINE = 120.0


@dataclass
class Turn:
    """One turn's figures on one path."""

    text: str = ""
    bytes: int = 0
    second_bytes: int = 0  # the run stream (SSE) or the custom content (relay)
    messages: int = 0  # events (SSE) or pane update messages (relay)
    deltas: int = 0  # agent_choice events among them
    seconds: float = float("nan")
    cpu: float = float("nan")  # server CPU seconds (SSE)
    pings: list[float] = field(default_factory=list)  # kernel_info round trips (relay)
    gaps: int = 0  # relay: the pane missed events and rebuilt from a snapshot


# -- 1. /events of a server subprocess ------------------------------------------------------


async def read_sse(response: httpx.Response, turn: Turn | None = None) -> int:
    """The bytes of a turn's SSE, from its ``user_message`` to its ``stream_stopped``; with
    ``turn``, its events, deltas and text are counted into it."""
    if response.status_code != 200:
        raise RuntimeError(f"{response.status_code}: {(await response.aread())[:300]!r}")
    size, counting, pieces = 0, False, []
    async for line in response.aiter_lines():
        event: dict[str, Any] = json.loads(line[6:]) if line.startswith("data: ") else {}
        counting = counting or event.get("type") == "user_message"
        if not counting:
            continue
        size += len(line.encode()) + 1  # the line and its "\n" (a blank line ends an event)
        if turn is not None and event:
            turn.messages += 1
            if event["type"] == "agent_choice":
                turn.deltas += 1
                pieces.append(event["content"])
        if event.get("type") == "stream_stopped":
            if turn is not None:
                turn.text = "".join(pieces)
            return size + 1  # its closing blank line
    raise RuntimeError("the stream ended before stream_stopped")


async def sse_turn(client: httpx.AsyncClient, server: Server, session_id: str) -> Turn:
    turn = Turn()
    path = f"/api/sessions/{session_id}"
    last = (await client.get(f"{path}/snapshot")).raise_for_status().json()["last_event_seq"]
    async with client.stream("GET", f"{path}/events", params={"since": last}) as events:
        cpu = proc_cpu_seconds(server.process.pid)
        start = time.perf_counter()
        body = {"messages": [{"role": "user", "content": PROMPT}]}
        async with client.stream("POST", f"{path}/agent/default", json=body) as run:
            turn.bytes, turn.second_bytes = await asyncio.wait_for(
                asyncio.gather(read_sse(events, turn), read_sse(run)), PHASE_DEADLINE
            )
        turn.seconds = time.perf_counter() - start
        turn.cpu = proc_cpu_seconds(server.process.pid) - cpu
    return turn


async def sse_phase(servers: dict[str, Server], reps: int) -> dict[str, list[Turn]]:
    clients = {
        name: httpx.AsyncClient(base_url=server.url, headers=server.headers, timeout=TIMEOUT)
        for name, server in servers.items()
    }
    try:
        sessions = {}
        for name, client in clients.items():
            reply = await client.post("/api/sessions", json={"title": "bench"})
            sessions[name] = reply.raise_for_status().json()["id"]
            warm = {"messages": [{"role": "user", "content": "stream 100 words"}]}
            await client.post(f"/api/sessions/{sessions[name]}/agent/default", json=warm)
        turns: dict[str, list[Turn]] = {name: [] for name in servers}
        for _ in range(reps):  # alternating, so load from elsewhere hits both alike
            for name, client in clients.items():
                turns[name].append(await sse_turn(client, servers[name], sessions[name]))
        return turns
    finally:
        for client in clients.values():
            await client.aclose()


# -- 2. relay mode in a real kernel ---------------------------------------------------------

SETUP = textwrap.dedent(
    """
    import dataclasses, time, nbsession
    _client = nbsession.local()
    _manager = _client.aio._transport.manager  # the benchmark sets the interval per session

    def _session(interval):
        config = _manager.config
        if interval is not None:
            _manager.config = dataclasses.replace(config, delta_flush_interval=interval)
        session = _client.create_session(title="bench")
        session.run("stream 100 words", display=False)  # builds its runtime and recorder
        _manager.config = config
        return session

    def _wait_idle(session):  # not turn.result(): an SDK turn that got a gap never ends
        while session.snapshot()["streaming"]:
            time.sleep(0.05)
    """
)


class Kernel:
    """A python3 kernel spoken to over raw ZMQ frames, so message sizes are the wire's."""

    def __init__(self, cwd: str) -> None:
        self.manager = KernelManager(kernel_name="python3")
        self.manager.start_kernel(cwd=cwd)
        self.client = self.manager.blocking_client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)
        self.iopub = self.client.iopub_channel.socket
        self.shell = self.client.shell_channel.socket
        self.poller = zmq.Poller()
        self.poller.register(self.iopub, zmq.POLLIN)
        self.poller.register(self.shell, zmq.POLLIN)

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)

    def receive(self, socket: zmq.Socket[Any]) -> tuple[dict[str, Any], int]:
        frames = socket.recv_multipart()
        _identities, parts = self.client.session.feed_identities(frames)
        return self.client.session.deserialize(parts), sum(len(f) for f in frames)

    def execute(self, code: str) -> None:
        """Run ``code`` to its reply (raising its error), leaving IOPub drained."""
        msg_id = self.client.execute(code)
        deadline = time.monotonic() + KERNEL_DEADLINE
        replied = idle = False
        while not (replied and idle):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the kernel did not run {code[:60]!r}")
            for socket, _ in self.poller.poll(100):
                msg, _size = self.receive(socket)
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue
                if socket is self.shell:
                    replied = True
                    if msg["content"]["status"] != "ok":
                        raise RuntimeError("\n".join(msg["content"].get("traceback", [])))
                elif msg["msg_type"] == "status":
                    idle = msg["content"]["execution_state"] == "idle"

    def relayed_turn(self, session: str) -> Turn:
        """Start the turn without waiting and count the pane's messages until it ends."""
        turn = Turn()
        pieces: list[str] = []
        self.client.execute(f"_turn = {session}.run({PROMPT!r}, wait=False)")
        start = time.perf_counter()
        pending: tuple[str, float] | None = None
        next_ping = start
        deadline = start + KERNEL_DEADLINE
        ended = False
        while not ended or pending is not None:
            now = time.perf_counter()
            if now > deadline:
                raise RuntimeError("the relayed turn did not end")
            if pending is None and now >= next_ping and not ended:
                pending = (self.client.kernel_info(), now)
                next_ping = now + PING_EVERY
            wait = max(0.0, next_ping - now) if pending is None else 0.1
            for socket, _ in self.poller.poll(int(wait * 1000) + 1):
                msg, size = self.receive(socket)
                if socket is self.shell:
                    if pending and msg["parent_header"].get("msg_id") == pending[0]:
                        turn.pings.append(time.perf_counter() - pending[1])
                        pending = None
                    continue
                data = msg["content"].get("data", {}) if msg["msg_type"] == "comm_msg" else {}
                if data.get("method") != "custom":
                    continue
                batch = data["content"].get("events", [])
                turn.messages += 1
                turn.bytes += size
                turn.second_bytes += len(json.dumps(data["content"], separators=(",", ":")))
                for item in batch:
                    event = item["event"]
                    kind = event["type"]
                    if kind == "agent_choice":
                        turn.deltas += 1
                        pieces.append(event["content"])
                    turn.gaps += kind == "gap"
                    over = kind == "pane.snapshot" and not event["snapshot"]["streaming"]
                    if kind == "stream_stopped" or over:
                        turn.seconds = time.perf_counter() - start
                        ended = True
        turn.text = "".join(pieces)
        return turn


def relay_phase(reps: int) -> dict[str, list[Turn]]:
    with tempfile.TemporaryDirectory(prefix="bench-relay-") as cwd:
        kernel = Kernel(cwd)
        try:
            kernel.execute(SETUP)
            names = {}
            for index, (name, interval) in enumerate(SETTINGS.items()):
                names[name] = f"_s{index}"
                kernel.execute(f"_s{index} = _session({interval!r})")
            kernel.execute("_turn = _s0.run('stream 100 words', wait=False)")  # widgets load
            kernel.execute("_wait_idle(_s0)")
            turns: dict[str, list[Turn]] = {name: [] for name in SETTINGS}
            for _ in range(reps):
                for name, session in names.items():
                    turns[name].append(kernel.relayed_turn(session))
                    kernel.execute(f"_wait_idle({session})")
            return turns
        finally:
            kernel.close()


# -- report ---------------------------------------------------------------------------------


def med(turns: list[Turn], attr: str) -> float:
    return median([getattr(turn, attr) for turn in turns])


def report_sse(turns: dict[str, list[Turn]]) -> None:
    base = next(iter(turns.values()))
    rows = []
    for name, runs in turns.items():
        text = len(runs[0].text.encode())
        per_delta = [turn.cpu / DELTAS * 1e6 for turn in runs]
        rows.append(
            [
                name,
                fmt(text),
                fmt(int(med(runs, "messages"))),
                fmt(int(med(runs, "deltas"))),
                fmt(int(med(runs, "bytes"))),
                f"{med(runs, 'bytes') / text:.2f}x",
                fmt(int(med(runs, "second_bytes"))),
                f"{med(runs, 'second_bytes') / text:.2f}x",
                fmt(med(runs, "seconds"), 2),
                fmt(median(per_delta), 1),
                ratio(median(per_delta), median([t.cpu / DELTAS * 1e6 for t in base])),
            ]
        )
    table(
        f"/events and the run stream for one {DELTAS:,}-delta turn (SSE bytes from user_message "
        f"to stream_stopped; medians of {len(base)})",
        [
            "setting",
            "text B",
            "events",
            "agent_choice",
            "/events B",
            "vs text",
            "run stream B",
            "vs text",
            "turn s",
            "server CPU us/delta",
            "vs one per delta",
        ],
        rows,
    )


def report_relay(turns: dict[str, list[Turn]], text: int) -> None:
    """``text``: the final text's size in bytes (a pane that missed events shows less)."""
    rows = []
    for name, runs in turns.items():
        rate = [turn.messages / turn.seconds for turn in runs]
        longest = [max(turn.pings) * 1000 for turn in runs]
        complete = sum(len(turn.text.encode()) == text for turn in runs)
        rows.append(
            [
                name,
                f"{complete}/{len(runs)}",
                fmt(sum(turn.gaps for turn in runs)),
                fmt(int(med(runs, "messages"))),
                fmt(median(rate), 1),
                fmt(int(med(runs, "bytes"))),
                f"{med(runs, 'bytes') / text:.2f}x",
                fmt(int(med(runs, "second_bytes"))),
                fmt(med(runs, "seconds"), 2),
                fmt(median(longest), 0),
                fmt(median([median(t.pings) * 1000 for t in runs]), 1),
            ]
        )
    table(
        f"Relay mode (kernel -> pane comm messages) for one {DELTAS:,}-delta turn, real "
        f"kernel, kernel_info every {PING_EVERY * 1000:.0f} ms (medians of "
        f"{len(next(iter(turns.values())))}; text {text:,} B)",
        [
            "setting",
            "deltas had all text",
            "gaps",
            "pane msgs",
            "updates/s",
            "comm B (wire)",
            "vs text",
            "custom content B",
            "turn s",
            "longest unresponsive ms",
            "kernel_info p50 ms",
        ],
        rows,
    )


def check_text(sse: dict[str, list[Turn]], relay: dict[str, list[Turn]]) -> int:
    """Print whether every complete path saw the same text; return its size in bytes."""
    texts = {turn.text for runs in sse.values() for turn in runs}
    texts |= {turn.text for runs in relay.values() for turn in runs if not turn.gaps}
    size = max(len(text.encode()) for text in texts)
    words = {len(text.split()) for text in texts}
    print(f"\nfinal text identical on every complete path: {len(texts) == 1} ({words} words)")
    return size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="one turn per setting")
    args = parser.parse_args()
    reps = 1 if args.quick else 3
    header("bench_pane_deltas", f"{DELTAS:,} deltas per turn, {reps} turn(s) per setting")
    with tempfile.TemporaryDirectory(prefix="bench-deltas-") as tmp:
        servers: dict[str, Server] = {}
        try:
            for index, (name, interval) in enumerate(SETTINGS.items()):
                home = Path(tmp) / f"server{index}"
                home.mkdir()
                options = [f"--NBSessionApp.event_log_capacity={LOG_CAPACITY}"]
                if interval is not None:
                    options.append(f"--NBSessionApp.delta_flush_interval={interval}")
                servers[name] = start_server(home, options=options)
            sse = asyncio.run(sse_phase(servers, reps))
        finally:
            for server in servers.values():
                server.stop()
    report_sse(sse)
    relay = relay_phase(reps)
    report_relay(relay, check_text(sse, relay))


if __name__ == "__main__":
    main()
