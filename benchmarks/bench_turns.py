"""End-to-end offline turns through SessionManager, against raw model streams (the baseline).

nbsession side: a real ``SessionManager`` on a SQLite file in a temporary directory, the
bundled ``default`` agent and its offline ``demo/offline`` model; every turn is read to its end
from the ``TurnStream`` that ``run_session`` returns.

Baseline side, same process: the same number of streams of the same pydantic-ai
``FunctionModel`` through ``pydantic_ai.direct.model_request_stream``, with a minimal hand-kept
history (a think turn is two streams with the tool's return in between), and nothing else: no
store, no event log, no recorder. The ratio is nbsession's overhead per turn.

Turn kinds: ``plain`` ("hello there": one streamed answer, ~58 events) and ``think``
("what is 17*23": a read-only ``think`` tool call, then the answer, ~32 events).

    python benchmarks/bench_turns.py            # ~20 s on 2 cores
    python benchmarks/bench_turns.py --quick    # ~10 s
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from _util import fmt, header, peak_rss_mib, percentile, proc_rss_mib, ratio, table
from pydantic_ai.direct import model_request_stream
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    SystemPromptPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models import ModelRequestParameters
from pydantic_ai.tools import ToolDefinition

from nbsession.manager import ManagerConfig, SessionManager
from nbsession.runtime.demo_model import build_demo_model
from nbsession.session import ChatMessage, Item, Message, Session

AGENT = "default"
PROMPTS = {"plain": "hello there", "think": "what is 17*23"}
INSTRUCTION = "You are an offline demo agent."
TOOLS = [
    ToolDefinition(
        name=name,
        parameters_json_schema={"type": "object", "properties": {arg: {"type": "string"}}},
    )
    for name, arg in (("shell", "cmd"), ("think", "thought"), ("create_todos", "descriptions"))
]
DEADLINE = 120.0  # no single phase may take longer, whatever happens


@dataclass
class Result:
    turns: int = 0
    events: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)

    @property
    def turns_per_s(self) -> float:
        return self.turns / self.seconds if self.seconds else float("nan")

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds else float("nan")


# -- the two drivers -----------------------------------------------------------------------


class NBSession:
    """Turns through the manager; one session per concurrent worker."""

    def __init__(self, manager: SessionManager) -> None:
        self.manager = manager

    async def new_worker(self) -> str:
        session = await self.manager.create_session({"title": "bench"})  # titled: no title call
        # The first turn builds the runtime (toolsets, model): warm it up outside the timing.
        await self.turn(session.id, "plain")
        return session.id

    async def turn(self, worker: Any, kind: str) -> int:
        stream = await self.manager.run_session(
            worker, AGENT, "", [{"role": "user", "content": PROMPTS[kind]}]
        )
        count = 0
        async for _entry in stream:
            count += 1
        return count


class RawStreams:
    """The baseline: the same FunctionModel streams, a list for history, nothing else."""

    def __init__(self) -> None:
        self.model = build_demo_model("offline")
        self.params = ModelRequestParameters(function_tools=TOOLS, allow_text_output=True)

    async def new_worker(self) -> list[ModelMessage]:
        history: list[ModelMessage] = []
        await self.turn(history, "plain")
        return history

    async def turn(self, history: list[ModelMessage], kind: str) -> int:
        parts: list[Any] = [UserPromptPart(content=PROMPTS[kind])]
        if not history:
            parts.insert(0, SystemPromptPart(content=INSTRUCTION))
        history.append(ModelRequest(parts=parts))
        events = 0
        while True:
            async with model_request_stream(
                self.model, list(history), model_request_parameters=self.params
            ) as stream:
                async for _event in stream:
                    events += 1
                response = stream.get()
            history.append(response)
            calls = [p for p in response.parts if isinstance(p, ToolCallPart)]
            if not calls:
                return events
            history.append(
                ModelRequest(
                    parts=[
                        ToolReturnPart(
                            tool_name=c.tool_name,
                            content="Thought recorded.",
                            tool_call_id=c.tool_call_id,
                        )
                        for c in calls
                    ]
                )
            )


Driver = NBSession | RawStreams


async def drive(driver: Driver, workers: int, turns: int, kind: str) -> Result:
    """``workers`` sessions at once, each running ``turns`` turns of ``kind`` back to back."""
    ids = [await driver.new_worker() for _ in range(workers)]
    result = Result()

    async def worker(worker_id: Any) -> None:
        for _ in range(turns):
            start = time.perf_counter()
            events = await driver.turn(worker_id, kind)  # not `+= await`: lost updates
            result.events += events
            result.latencies.append(time.perf_counter() - start)
            result.turns += 1

    gc.collect()
    start = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(worker(i) for i in ids)), DEADLINE)
    result.seconds = time.perf_counter() - start
    return result


# -- phases --------------------------------------------------------------------------------


def compare_rows(label: str, ours: Result, base: Result) -> list[object]:
    return [
        label,
        fmt(ours.turns_per_s, 0),
        fmt(ours.events_per_s, 0),
        fmt(percentile(ours.latencies, 50) * 1e3, 2),
        fmt(percentile(ours.latencies, 95) * 1e3, 2),
        fmt(base.turns_per_s, 0),
        fmt(percentile(base.latencies, 50) * 1e3, 2),
        ratio(base.turns_per_s, ours.turns_per_s),
    ]


HEADERS = [
    "scenario",
    "turns/s",
    "events/s",
    "p50 ms",
    "p95 ms",
    "raw turns/s",
    "raw p50 ms",
    "overhead",
]


def decile_ms(latencies: list[float], last: bool) -> str:
    """Median latency of the first (or last) tenth of a sequence of turns, in ms."""
    tenth = max(1, len(latencies) // 10)
    part = latencies[-tenth:] if last else latencies[:tenth]
    return fmt(percentile(part, 50) * 1e3, 2)


async def sequential(manager: SessionManager, turns: int) -> None:
    rows, growth = [], []
    for kind in ("plain", "think"):
        ours = await drive(NBSession(manager), 1, turns, kind)
        base = await drive(RawStreams(), 1, turns, kind)
        rows.append(compare_rows(f"{kind}, 1 session x {turns} turns", ours, base))
        growth.append(
            [
                kind,
                decile_ms(ours.latencies, False),
                decile_ms(ours.latencies, True),
                decile_ms(base.latencies, False),
                decile_ms(base.latencies, True),
            ]
        )
    table(
        "Sequential turns on one session (history grows by 2-4 items a turn); "
        "overhead = raw turns/s / nbsession turns/s",
        HEADERS,
        rows,
    )
    table(
        "  growth with history: p50 ms of the first and last tenth of those turns",
        ["kind", "nbsession first", "nbsession last", "raw first", "raw last"],
        growth,
    )


async def concurrent(manager: SessionManager, fanouts: list[int], turns: int) -> None:
    rows = []
    for workers in fanouts:
        for kind in ("plain", "think"):
            ours = await drive(NBSession(manager), workers, turns, kind)
            base = await drive(RawStreams(), workers, turns, kind)
            rows.append(compare_rows(f"{kind}, {workers} sessions x {turns}", ours, base))
    table(
        f"Concurrent sessions, each running {turns} turns back to back (one event loop, "
        "p50/p95 = one turn's latency)",
        HEADERS,
        rows,
    )


async def memory(manager: SessionManager, workers: int, turns: int) -> None:
    """tracemalloc peak while ``workers`` sessions run think turns at once, both sides."""
    rows = []
    figures: dict[str, tuple[float, float, float]] = {}
    for name, make in (("nbsession", lambda: NBSession(manager)), ("raw streams", RawStreams)):
        gc.collect()
        rss_before = proc_rss_mib(os.getpid())[0]
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        await drive(make(), workers, turns, "think")
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss_after = proc_rss_mib(os.getpid())[0]
        figures[name] = ((peak - base) / 2**20, (current - base) / 2**20, rss_after - rss_before)
    for name, (peak, kept, rss) in figures.items():
        rows.append(
            [
                name,
                fmt(peak, 2),
                fmt(kept, 2),
                fmt(kept * 1024 / workers, 1),
                fmt(rss, 1),
                ratio(peak, figures["raw streams"][0]),
            ]
        )
    table(
        f"Memory: {workers} sessions x {turns} think turns at once (tracemalloc, MiB; kept = "
        "still allocated after, i.e. live sessions, logs, histories)",
        ["side", "peak MiB", "kept MiB", "kept KiB/session", "RSS growth MiB", "peak vs raw"],
        rows,
    )


async def history(manager: SessionManager, sizes: list[int]) -> None:
    """Turns and reads on sessions that already hold long histories (live after one turn)."""
    rows = []
    for size in sizes:
        items = []
        for i in range(size):
            role = "user" if i % 2 == 0 else "assistant"
            chat = ChatMessage(role=role, content=f"message {i}: " + "lorem ipsum " * 15)
            items.append(Item(message=Message(agent_name="root", message=chat)))
        session = Session(title="long", working_dir=manager.config.working_dir, messages=items)
        await manager.store.create_session(session)
        driver = NBSession(manager)
        start = time.perf_counter()
        await driver.turn(session.id, "plain")  # loads from the store, builds the runtime
        cold = time.perf_counter() - start
        warm = []
        for _ in range(5):
            start = time.perf_counter()
            await driver.turn(session.id, "plain")
            warm.append(time.perf_counter() - start)
        reads = {}
        live = manager._live(session.id).recorder.session  # the handler-visible state
        calls: dict[str, Callable[[], Awaitable[Any] | Any]] = {
            "get": lambda sid=session.id: manager.get_session(sid),
            "snapshot": lambda sid=session.id: manager.get_session_snapshot(sid),
            "to_json": live.to_json,
        }
        for name, call in calls.items():
            samples = []
            for _ in range(3):
                start = time.perf_counter()
                value = call()
                if asyncio.iscoroutine(value):
                    await value
                samples.append(time.perf_counter() - start)
            reads[name] = min(samples)
        rows.append(
            [
                f"{size:,}",
                fmt(cold * 1e3, 1),
                fmt(min(warm) * 1e3, 1),
                fmt(reads["get"] * 1e3, 1),
                fmt(reads["snapshot"] * 1e3, 1),
                fmt(reads["to_json"] * 1e3, 1),
                ratio(reads["get"], reads["to_json"]),
            ]
        )
    table(
        "Long histories (ms; all of it on the event loop except the SQLite I/O). "
        "get = manager.get_session of a live session (what GET /api/sessions/{id} awaits "
        "before to_json); to_json = serialising the live session without a copy",
        ["items", "first turn", "next turn", "get", "snapshot", "to_json", "get/to_json"],
        rows,
    )


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="nbsession-bench-") as directory:
        manager = SessionManager(
            ManagerConfig(db_path=os.path.join(directory, "sessions.db"), working_dir=directory)
        )
        await manager.start()
        try:
            await sequential(manager, args.turns)
            await concurrent(manager, [1, 10, 50], args.concurrent_turns)
            await memory(manager, 50, args.concurrent_turns)
            await history(manager, args.history)
        finally:
            await manager.shutdown()
    print(f"\npeak RSS of this process: {peak_rss_mib():.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer turns, shorter histories")
    parser.add_argument("--turns", type=int, help="sequential turns per kind (default 300)")
    args = parser.parse_args()
    args.turns = args.turns or (60 if args.quick else 300)
    args.concurrent_turns = 2 if args.quick else 5
    args.history = [1_000, 5_000] if args.quick else [1_000, 10_000]
    header(
        "bench_turns",
        f"offline demo model, SQLite WAL on a temp file; {args.turns} sequential turns per "
        f"kind, {args.concurrent_turns} turns per concurrent session",
    )
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
