"""The jupyter toolset (standalone host): what running code and editing notebooks cost.

- the first ``run_code`` of a session (it starts the toolset's own kernel), then the latency of
  ``run_code("1 + 1")`` against the same request on a bare jupyter_client connection to the
  same kernel (the toolset adds its target choice, output folding and formatting); then the
  same while another client's cell keeps the kernel's main shell busy (the code runs in a
  subshell: the first such call creates it);
- ``read_notebook`` of a 200-cell notebook with outputs, and one ``insert_cell``: its preview
  (read + diff) and its call (read + write + undo record), against ``nbformat.read`` (for the
  read) and ``nbformat.read`` + ``nbformat.write`` (for the edits) of the same file.

    python benchmarks/bench_jupyter.py            # ~10 s on 2 cores
    python benchmarks/bench_jupyter.py --quick
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat
from _util import header, latency_row, table, timed_ms

from nbsession.tools import JupyterToolset, ToolContext, ToolsetEnv


async def bare_run(client: Any, code: str) -> None:
    msg_id = client.execute(code)
    while True:
        msg = await client.get_iopub_msg(timeout=30)
        if (
            msg["parent_header"].get("msg_id") == msg_id
            and msg["msg_type"] == "status"
            and msg["content"]["execution_state"] == "idle"
        ):
            return


async def main(count: int) -> None:
    header("bench_jupyter", f"{count} runs per row, standalone host (own kernel, files)")
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        toolset = JupyterToolset({}, ToolsetEnv(working_dir=folder))
        tools = {tool.definition.name: tool for tool in await toolset.tools()}
        ctx = ToolContext(session_id="bench", working_dir=folder)
        rows = []
        try:
            start = time.perf_counter()
            await tools["run_code"].call({"code": "1 + 1"}, ctx)
            cold = [(time.perf_counter() - start) * 1000]
            rows.append(latency_row("first run_code (starts the kernel)", cold, []))

            ours = await timed_ms(lambda: tools["run_code"].call({"code": "1 + 1"}, ctx), count)
            client = toolset.host(ctx).kernel_client(toolset._own_kernel)
            client.start_channels()
            await client.wait_for_ready(timeout=30)
            base = await timed_ms(lambda: bare_run(client, "1 + 1"), count)
            rows.append(latency_row("run_code 1 + 1", ours, base))

            # The same beside a cell that keeps the main shell busy: a subshell of the kernel.
            release = root / "release"
            cell = f"import os, time\nwhile not os.path.exists({str(release)!r}): time.sleep(0.01)"
            cell_id = client.execute(cell)
            while True:
                msg = await client.get_iopub_msg(timeout=30)
                if msg["parent_header"].get("msg_id") == cell_id and (
                    msg["msg_type"] == "execute_input"
                ):
                    break
            start = time.perf_counter()
            await tools["run_code"].call({"code": "1 + 1"}, ctx)
            first = [(time.perf_counter() - start) * 1000]
            rows.append(
                latency_row("first run_code beside a busy cell (makes a subshell)", first, [])
            )
            beside = await timed_ms(lambda: tools["run_code"].call({"code": "1 + 1"}, ctx), count)
            rows.append(latency_row("run_code 1 + 1 beside a busy cell (subshell)", beside, base))
            release.touch()
            await bare_run(client, "pass")  # queued behind the cell: the cell has ended
            client.stop_channels()

            cells = []
            for index in range(200):
                cell = nbformat.v4.new_code_cell(f"value_{index} = {index}\nprint(value_{index})")
                cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="x" * 200)]
                cells.append(cell)
            path = root / "big.ipynb"
            nbformat.write(nbformat.v4.new_notebook(cells=cells), path)

            def plain_round_trip() -> None:
                nbformat.write(nbformat.read(path, as_version=4), path)

            async def bare() -> None:
                await asyncio.to_thread(plain_round_trip)

            async def bare_read() -> None:
                await asyncio.to_thread(nbformat.read, path, 4)

            read = await timed_ms(
                lambda: tools["read_notebook"].call({"path": "big.ipynb"}, ctx), count
            )
            rows.append(
                latency_row("read_notebook, 200 cells", read, await timed_ms(bare_read, count))
            )
            base = await timed_ms(bare, count)
            insert = {"path": "big.ipynb", "index": 100, "source": "new = 1"}
            preview = await timed_ms(lambda: tools["insert_cell"].preview(insert, ctx), count)
            rows.append(latency_row("insert_cell preview (diff)", preview, base))
            edit = await timed_ms(lambda: tools["insert_cell"].call(insert, ctx), count)
            rows.append(latency_row("insert_cell call", edit, base))
        finally:
            await toolset.close()
    table(
        "milliseconds (baselines: a bare jupyter_client request; nbformat.read; read + write)",
        ["operation", "p50", "p95", "baseline p50", "ratio"],
        rows,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(10 if args.quick else 50))
