"""The jupyter toolset on its own (no Jupyter server): a real kernel it starts, notebooks on
disk. Each test uses one toolset, closed at its end, which shuts its kernel down."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import nbformat
import pytest

from nbsession.config import parse_team
from nbsession.errors import AgentConfigError
from nbsession.tools import JupyterToolset, Tool, ToolContext, ToolResult, ToolsetEnv

from .test_shell import alive

DEADLINE = 60.0  # kernels start slowly on a loaded machine
PIXEL = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5E"
    "rkJggg=="
)


class Kit:
    """A toolset over ``root`` and a way to call its tools by name."""

    def __init__(self, toolset: JupyterToolset, tools: dict[str, Tool], root: Path) -> None:
        self.toolset = toolset
        self.tools = tools
        self.ctx = ToolContext(session_id="s1", working_dir=str(root))

    async def call(self, name: str, **arguments: Any) -> ToolResult:
        return await asyncio.wait_for(self.tools[name].call(arguments, self.ctx), DEADLINE)

    async def preview(self, name: str, **arguments: Any) -> str:
        return await self.tools[name].preview(arguments, self.ctx)


@asynccontextmanager
async def kit(root: Path, notebook_path: str = "", **options: Any) -> AsyncIterator[Kit]:
    toolset = JupyterToolset(
        options, ToolsetEnv(working_dir=str(root), notebook_path=notebook_path)
    )
    tools = {tool.definition.name: tool for tool in await toolset.tools()}
    try:
        yield Kit(toolset, tools, root)
    finally:
        await asyncio.wait_for(toolset.close(), DEADLINE)


def write_notebook(path: Path, *sources: str, outputs: list[Any] | None = None) -> None:
    cells = [nbformat.v4.new_code_cell(source) for source in sources]
    if outputs is not None and cells:
        cells[0].outputs = outputs
        cells[0].execution_count = 1
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)


def sources(path: Path) -> list[str]:
    return [cell.source for cell in nbformat.read(path, as_version=4).cells]


async def wait_for(condition: Any, timeout: float = DEADLINE) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def test_tool_definitions_say_what_asks() -> None:
    tools = asyncio.run(JupyterToolset().tools())
    read_only = {tool.definition.name for tool in tools if tool.definition.read_only}
    assert read_only == {"list_kernels", "list_notebooks", "read_notebook"}
    assert {tool.definition.name for tool in tools} - read_only == {
        "run_code",
        "insert_cell",
        "replace_cell",
        "delete_cell",
        "undo_last_edit",
    }
    assert {tool.definition.category for tool in tools} == {"jupyter"}


async def test_run_code_returns_streams_results_errors_and_images(tmp_path: Path) -> None:
    async with kit(tmp_path) as k:
        ran = await k.call("run_code", code="import os\nprint(os.getpid())\n6 * 7")
        assert not ran.is_error
        pid_line, result = ran.output.splitlines()
        assert result.startswith("Out[") and result.endswith("]: 42")
        pid = int(pid_line)
        assert alive(pid)

        state = await k.call("run_code", code="x = 5")
        assert state.output == "(no output)"
        error = await k.call("run_code", code="import sys\nprint('oops', file=sys.stderr)\nx / 0")
        assert error.is_error
        assert error.output.startswith("[stderr]\noops\nZeroDivisionError: division by zero")
        assert "----> 3 x / 0" in error.output and "\x1b[" not in error.output

        shown = await k.call(
            "run_code",
            code="from IPython.display import Image, Markdown, display\nimport base64\n"
            f"display(Markdown('**bold**'), Image(data=base64.b64decode('{PIXEL}')))",
        )
        markdown, image = shown.output.splitlines()[:2]
        assert markdown == "**bold**"
        assert image.startswith("[image/png, 70 bytes, saved to .nbsession/outputs/")
        saved = tmp_path / image.split("saved to ")[1].rstrip("]")
        assert saved.read_bytes().startswith(b"\x89PNG")
        assert PIXEL not in shown.output

        long = await k.call("run_code", code="print('y' * 50_000)")
        assert len(long.output) < 21_000 and "characters omitted" in long.output

        listed = await k.call("list_kernels")
        assert "(this toolset's own kernel)" in listed.output
    await wait_for(lambda: not alive(pid))  # closing the toolset shut its kernel down


async def test_a_timeout_interrupts_the_kernel_which_keeps_its_state(tmp_path: Path) -> None:
    async with kit(tmp_path, timeout=1.0) as k:
        await k.call("run_code", code="kept = 'still here'")
        slow = await k.call(
            "run_code", code="import time\nprint('started', flush=True)\ntime.sleep(60)"
        )
        assert slow.is_error
        assert slow.output.startswith("started\nKeyboardInterrupt")
        assert slow.output.endswith("Timed out after 1 s: the kernel was interrupted.")
        after = await k.call("run_code", code="print(kept)", timeout=30)
        assert after.output == "still here"


async def test_a_cancelled_run_interrupts_the_kernel(tmp_path: Path) -> None:
    async with kit(tmp_path) as k:
        marker = tmp_path / "started"
        call = asyncio.ensure_future(
            k.call(
                "run_code",
                code=f"open({str(marker)!r}, 'w').close()\n"
                "import time\ntime.sleep(60)\nprint('finished')",
            )
        )
        await wait_for(marker.exists)
        call.cancel()
        await asyncio.gather(call, return_exceptions=True)
        # Interrupted: the kernel answers at once instead of after the sleep.
        after = await k.call("run_code", code="print('free')", timeout=20)
        assert after.output == "free"


async def test_read_and_edit_a_notebook_with_diffs_and_undo(tmp_path: Path) -> None:
    stream = nbformat.v4.new_output("stream", name="stdout", text="z" * 5000)
    write_notebook(tmp_path / "work" / "a.ipynb", "x = 1", "print(x)", outputs=[stream])
    path = tmp_path / "work" / "a.ipynb"
    async with kit(tmp_path) as k:
        assert (await k.call("list_notebooks")).output == "work/a.ipynb"
        read = await k.call("read_notebook", path="work/a.ipynb")
        head, first, second = read.output.split("\n\n")
        assert head == "work/a.ipynb: 2 cells"
        assert (
            first.startswith("# %% [code] cell 0 id=") and "In [1]\nx = 1\n# Out:\n# | zzz" in first
        )
        assert "characters omitted" in first  # outputs are trimmed per cell
        assert second.startswith("# %% [code] cell 1 id=") and second.endswith("\nprint(x)\n")

        insert = {"path": "work/a.ipynb", "index": 1, "source": "# Notes", "cell_type": "markdown"}
        assert await k.preview("insert_cell", **insert) == (
            "--- a/work/a.ipynb\n+++ b/work/a.ipynb\n@@ -1,5 +1,8 @@\n # %% [code]\n x = 1\n \n"
            "+# %% [markdown]\n+# Notes\n+\n # %% [code]\n print(x)\n"
        )
        assert sources(path) == ["x = 1", "print(x)"]  # a preview changes nothing
        done = await k.call("insert_cell", **insert)
        assert done.output == "Inserted a markdown cell at 1 in work/a.ipynb (now 3 cells)."
        assert sources(path) == ["x = 1", "# Notes", "print(x)"]
        checkpoint = tmp_path / "work" / ".ipynb_checkpoints" / "a-checkpoint.ipynb"
        assert sources(checkpoint) == ["x = 1", "print(x)"]  # Jupyter's layout

        replace = {"path": "work/a.ipynb", "index": 0, "source": "x = 2"}
        assert "-x = 1\n+x = 2\n" in await k.preview("replace_cell", **replace)
        await k.call("replace_cell", **replace)
        cell = nbformat.read(path, as_version=4).cells[0]
        assert (cell.source, cell.outputs, cell.execution_count) == ("x = 2", [], None)
        await k.call("delete_cell", path="work/a.ipynb", index=-1)
        assert sources(path) == ["x = 2", "# Notes"]
        nbformat.validate(nbformat.read(path, as_version=4))

        assert "+print(x)\n" in await k.preview("undo_last_edit")
        assert (await k.call("undo_last_edit")).output.startswith("Undone: Deleted cell 2")
        assert (await k.call("undo_last_edit", path="work/a.ipynb")).output.startswith(
            "Undone: Replaced cell 0"
        )
        assert sources(path) == ["x = 1", "# Notes", "print(x)"]
        assert nbformat.read(path, as_version=4).cells[0].outputs[0]["text"] == "z" * 5000

        # Someone else changed the notebook since the insert: undoing it would lose that.
        changed = nbformat.read(path, as_version=4)
        changed.cells[2].source = "print(x + 1)"
        nbformat.write(changed, path)
        refused = await k.call("undo_last_edit")
        assert refused.is_error and "changed since the edit" in refused.output
        assert sources(path) == ["x = 1", "# Notes", "print(x + 1)"]


async def test_the_bound_notebook_is_the_default(tmp_path: Path) -> None:
    write_notebook(tmp_path / "mine.ipynb", "a = 1")
    async with kit(tmp_path, notebook_path=str(tmp_path / "mine.ipynb")) as k:
        assert "a = 1" in (await k.call("read_notebook")).output
        await k.call("insert_cell", source="b = 2")
        assert sources(tmp_path / "mine.ipynb") == ["a = 1", "b = 2"]
    async with kit(tmp_path) as k:
        unbound = await k.call("read_notebook")
        assert unbound.is_error and "belongs to no notebook" in unbound.output


async def test_paths_outside_the_root_and_bad_edits_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write_notebook(root / "a.ipynb", "x = 1")
    write_notebook(tmp_path / "outside.ipynb", "secret = 1")
    os.symlink(tmp_path / "outside.ipynb", root / "link.ipynb")
    os.symlink(tmp_path, root / "up")
    async with kit(root) as k:
        for path in ("../outside.ipynb", str(tmp_path / "outside.ipynb"), "link.ipynb"):
            for name, extra in (("read_notebook", {}), ("insert_cell", {"source": "y"})):
                result = await k.call(name, path=path, **extra)
                assert result.is_error and "outside the Jupyter root" in result.output, result
                assert await k.preview(name, path=path, **extra) == ""
        escaped = await k.call("list_notebooks", path="up")
        assert escaped.is_error and "outside the Jupyter root" in escaped.output
        assert (await k.call("list_notebooks")).output == "a.ipynb"  # links are not followed
        assert sources(tmp_path / "outside.ipynb") == ["secret = 1"]

        bad = await k.call("replace_cell", path="a.ipynb", index=3, source="y")
        assert bad.is_error and "cell index out of range" in bad.output
        not_notebook = await k.call("read_notebook", path="notes.txt")
        assert not_notebook.is_error and "not a notebook" in not_notebook.output
        missing = await k.call("read_notebook", path="nope.ipynb")
        assert missing.is_error and "notebook not found" in missing.output
        nothing = await k.call("undo_last_edit")
        assert nothing.is_error and nothing.output.startswith("Nothing to undo")
        unknown = await k.call("run_code", code="1", kernel_id="no-such-kernel")
        assert unknown.is_error and "is not running" in unknown.output
        assert json.dumps(sources(root / "a.ipynb")) == '["x = 1"]'


AGENT = "agents:\n  root:\n    model: demo/offline\n    toolsets:\n      - {type: jupyter, %s}\n"


def test_bad_options_are_load_errors() -> None:
    text = AGENT
    with pytest.raises(AgentConfigError) as caught:
        parse_team(text % "kernel: elsewhere", path="/a/t.yaml", source_id="t")
    assert "agents.root.toolsets[0]" in caught.value.message
    assert "kernel: Input should be 'notebook' or 'own'" in caught.value.message
    loaded = parse_team(text % "timeout: 5, kernel: own", path="/a/t.yaml", source_id="t")
    assert loaded.agent("root").toolsets[0].type == "jupyter"


def test_options_it_does_not_read_are_named() -> None:
    team = parse_team(AGENT % "kernal: x", path="/a/t.yaml", source_id="t")
    assert any("toolsets[0].kernal" in warning for warning in team.warnings)
