"""Toolsets: what the filesystem and MCP toolsets cost over doing the same work directly.

- filesystem ``read_file`` of a 4 KiB file, p50/p95, against ``open().read()`` in the loop
  (the toolset resolves and checks the path, then reads on a worker thread);
- filesystem ``search_files_content`` over a tree of 2,000 small files against a bare
  ``os.walk`` + ``re.search`` of the same tree (no confinement checks, no thread);
- MCP (stdio, tests/mcp_server.py): time to start (process, handshake, tool list), and the
  latency of a tool call through the toolset against the same call on a bare ``mcp.Client``
  in the same process.

    python benchmarks/bench_toolsets.py            # ~15 s on 2 cores
    python benchmarks/bench_toolsets.py --quick    # ~6 s
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from _util import fmt, header, latency_row, table, timed_ms

from nbsession.tools import FilesystemToolset, MCPToolset, ToolContext

SERVER = str(Path(__file__).resolve().parent.parent / "tests" / "mcp_server.py")


async def filesystem(root: Path, count: int, files: int) -> list[list[object]]:
    (root / "one.txt").write_text("x" * 4096)
    for index in range(files):
        sub = root / "tree" / f"d{index % 40}"
        sub.mkdir(parents=True, exist_ok=True)
        text = "\n".join(f"line {n} of file {index}" for n in range(20))
        (sub / f"f{index}.txt").write_text(text + ("\nneedle here\n" if index % 100 == 0 else ""))
    tools = {t.definition.name: t for t in await FilesystemToolset().tools()}
    ctx = ToolContext("bench", str(root))

    async def read_tool() -> None:
        await tools["read_file"].call({"path": "one.txt"}, ctx)

    async def read_direct() -> None:
        with open(root / "one.txt") as file:  # noqa: ASYNC230 - the blocking baseline
            file.read()

    async def search_tool() -> None:
        result = await tools["search_files_content"].call({"path": "tree", "query": "needle"}, ctx)
        assert result.output.count("needle") == files // 100

    async def search_direct() -> None:
        found = 0
        pattern = re.compile("needle")
        for where, _dirs, names in os.walk(root / "tree"):
            for name in names:
                with open(os.path.join(where, name)) as file:  # noqa: ASYNC230
                    found += sum(1 for line in file if pattern.search(line))
        assert found == files // 100

    searches = max(count // 20, 3)
    return [
        latency_row(
            "read_file 4 KiB",
            await timed_ms(read_tool, count),
            await timed_ms(read_direct, count),
            digits=3,
        ),
        latency_row(
            f"search_files_content, {files} files",
            await timed_ms(search_tool, searches),
            await timed_ms(search_direct, searches),
            digits=3,
        ),
    ]


async def mcp(count: int) -> tuple[list[list[object]], list[float]]:
    from mcp import Client, StdioServerParameters

    options = {"command": sys.executable, "args": [SERVER, "stdio"]}
    starts = []
    for _ in range(3):
        toolset = MCPToolset(options)
        start = time.perf_counter()
        await toolset.start()
        starts.append((time.perf_counter() - start) * 1000)
        await toolset.close()

    toolset = MCPToolset(options)
    await toolset.start()
    tools = {t.definition.name: t for t in await toolset.tools()}
    ctx = ToolContext("bench", "")

    async def through_toolset() -> None:
        await tools["add"].call({"a": 1, "b": 2}, ctx)

    params = StdioServerParameters(command=sys.executable, args=[SERVER, "stdio"])
    async with Client(params, mode="legacy", cache=None) as client:

        async def bare() -> None:
            await client.call_tool("add", {"a": 1, "b": 2})

        await timed_ms(bare, 5)  # warm up both
        await timed_ms(through_toolset, 5)
        base: list[float] = []
        ours: list[float] = []
        for _ in range(max(count // 10, 1)):  # interleaved, so load changes hit both alike
            base += await timed_ms(bare, 10)
            ours += await timed_ms(through_toolset, 10)
    await toolset.close()
    return [latency_row("MCP stdio call (add)", ours, base, digits=3)], starts


async def main(quick: bool) -> None:
    count = 100 if quick else 400
    files = 500 if quick else 2000
    header("bench_toolsets", f"{count} calls per row, {files} files in the searched tree")
    with tempfile.TemporaryDirectory() as tmp:
        rows = await filesystem(Path(tmp), count, files)
    mcp_rows, starts = await mcp(count // 2)
    table(
        "Tool calls (ms): toolset against the same work done directly",
        ["call", "p50", "p95", "direct p50", "toolset/direct"],
        rows + mcp_rows,
    )
    table(
        "MCP stdio server start (ms): process, handshake, tool list",
        ["run", "ms"],
        [[index + 1, fmt(value, 1)] for index, value in enumerate(starts)],
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls and files")
    asyncio.run(main(parser.parse_args().quick))
