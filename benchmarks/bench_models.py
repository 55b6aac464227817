"""Turns on real provider code against a loopback OpenAI-compatible server.

nbsession side: a real ``SessionManager`` (SQLite temp file) running "hello" turns on an
``openai`` model whose ``base_url`` is the loopback server of ``tests/peers`` (streamed chat
completions, ~12 text chunks and a usage chunk per answer), read to the end of the
``TurnStream``; the same with ``fallback`` from an unreachable model (``retries: -1``), and on
the offline demo model. Each turn is the first of a new session (a new runtime, so a new model
client), so every request carries one user message, as the baseline's do.

Baseline side, same process: the same requests through pydantic-ai's ``OpenAIChatModel`` and
``model_request_stream`` alone (no store, no log, no recorder, no price lookup). Also timed:
one ``usage_facts`` price lookup (genai-prices) as every model call makes it.

    python benchmarks/bench_models.py            # ~20 s on 2 cores
    python benchmarks/bench_models.py --quick    # ~8 s
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import tempfile
import textwrap
import time
from collections.abc import Awaitable, Callable

from _util import fmt, header, percentile, ratio, table
from pydantic_ai.direct import model_request_stream
from pydantic_ai.messages import ModelRequest, UserPromptPart
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from peers.openai_server import OpenAIServer, Reply

from nbsession.config import parse_team
from nbsession.manager import ManagerConfig, SessionManager
from nbsession.runtime.models import resolve_ref, usage_facts

ANSWER = "This is a streamed answer of a dozen chunks from the loopback server."


def closed_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


def agents(url: str) -> dict[str, str]:
    models = f"""
        models:
          loop: {{provider: openai, model: gpt-4o-mini, base_url: "{url}"}}
          down: {{provider: openai, model: gpt-down, base_url: "{closed_url()}"}}
        """
    return {
        "real": f"agents: {{root: {{model: loop}}}}\n{textwrap.dedent(models)}",
        "fallback": "agents: {root: {model: down, fallback: {models: [loop], retries: -1}}}\n"
        + textwrap.dedent(models),
        "demo": "agents: {root: {model: demo/offline}}\n",
    }


def write_agents(tmp: str, url: str) -> list[str]:
    os.makedirs(os.path.join(tmp, "agents"))
    files = agents(url)
    for name, text in files.items():
        with open(os.path.join(tmp, "agents", f"{name}.yaml"), "w") as f:
            f.write(text)
    return list(files)


async def timed(n: int, one: Callable[[], Awaitable[None]]) -> list[float]:
    await one()  # warm-up: imports, clients, prices table
    times = []
    for _ in range(n):
        start = time.perf_counter()
        await one()
        times.append(time.perf_counter() - start)
    return times


async def manager_turns(tmp: str, agent: str, n: int) -> list[float]:
    mgr = SessionManager(
        ManagerConfig(
            db_path=os.path.join(tmp, f"{agent}.db"),
            agents_dir=os.path.join(tmp, "agents"),
            working_dir=tmp,
            title_model="off",
        )
    )
    await mgr.start()
    try:

        async def one() -> None:
            # A new session per turn: the same one-message request as the baseline (a growing
            # history would time the openai SDK's request encoding, not nbsession).
            sid = (await mgr.create_session({"title": "bench"})).id
            stream = await mgr.run_session(sid, agent, "", [{"content": "hello"}])
            async for _ in stream:
                pass

        return await timed(n, one)
    finally:
        await mgr.shutdown()


async def raw_streams(url: str, n: int) -> list[float]:
    model = OpenAIChatModel("gpt-4o-mini", provider=OpenAIProvider(base_url=url, api_key="k"))
    request = [ModelRequest(parts=[UserPromptPart("hello")])]

    async def one() -> None:
        async with model_request_stream(model, request, model_settings={"max_retries": 0}) as s:
            async for _ in s:
                pass

    async with model:
        return await timed(n, one)


async def price_lookups(url: str, n: int) -> list[float]:
    team = parse_team(agents(url)["real"], path="b.yaml", source_id="b")
    choice = resolve_ref(team, "loop").pick(0)
    model = OpenAIChatModel("gpt-4o-mini", provider=OpenAIProvider(base_url=url, api_key="k"))
    async with model, model_request_stream(model, [ModelRequest(parts=[UserPromptPart("x")])]) as s:
        async for _ in s:
            pass
        response = s.get()

    async def one() -> None:
        usage_facts(choice, response)

    return await timed(n, one)


async def run(args: argparse.Namespace) -> None:
    n = 20 if args.quick else 60
    chunks = [ANSWER[i : i + 6] for i in range(0, len(ANSWER), 6)]
    with OpenAIServer(default=lambda _r: Reply(text_chunks=chunks)) as server:
        rows = []
        raw = await raw_streams(server.url, n)
        with tempfile.TemporaryDirectory() as tmp:
            names = write_agents(tmp, server.url)
            results = {name: await manager_turns(tmp, name, n) for name in names}
        base = percentile(raw, 50)
        rows.append(["raw model_request_stream (baseline)", fmt(base * 1e3, 2), "", "1.00x"])
        for name, label in [
            ("real", "nbsession turn, openai -> loopback"),
            ("fallback", "  same, after an unreachable primary"),
            ("demo", "nbsession turn, offline demo model"),
        ]:
            p50, p95 = percentile(results[name], 50), percentile(results[name], 95)
            rows.append([label, fmt(p50 * 1e3, 2), fmt(p95 * 1e3, 2), ratio(p50, base)])
        table(f"hello turns, n={n} each (ms)", ["path", "p50", "p95", "p50 vs raw"], rows)
        prices = await price_lookups(server.url, n * 10)
        table(
            "genai-prices lookup per model call (usage_facts)",
            ["", "p50 us", "p95 us"],
            [["usage_facts", fmt(percentile(prices, 50) * 1e6), fmt(percentile(prices, 95) * 1e6)]],
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer turns")
    args = parser.parse_args()
    header("bench_models", "quick" if args.quick else "full")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
