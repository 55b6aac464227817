"""The lsp toolset driving a real language server over stdio (python-lsp-server, from PyPI)."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from nbsession.tools import LSPToolset, Tool, ToolContext, ToolsetEnv, check_toolset

PYLSP = {"command": sys.executable, "args": ["-m", "pylsp"]}
DEADLINE = 60.0

SHAPES = '''"""Shapes."""


def area(width: int, height: int) -> int:
    """The area of a rectangle."""
    return width * height


class Square:
    def __init__(self, side: int) -> None:
        self.side = side

    def size(self) -> int:
        return area(self.side, self.side)
'''
USE = "from shapes import area\n\nprint(area(2, 3))\nimport os\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "shapes.py").write_text(SHAPES)
    (tmp_path / "use.py").write_text(USE)
    return tmp_path


@asynccontextmanager
async def running(project: Path, **options: Any) -> AsyncIterator[tuple[LSPToolset, Caller]]:
    toolset = LSPToolset({**PYLSP, **options}, ToolsetEnv(working_dir=str(project)))
    assert not toolset.started and await toolset.tools() == []
    await asyncio.wait_for(toolset.start(), DEADLINE)
    try:
        tools = {tool.definition.name: tool for tool in await toolset.tools()}
        yield toolset, Caller(tools, project)
    finally:
        await toolset.close()


class Caller:
    def __init__(self, tools: dict[str, Tool], cwd: Path) -> None:
        self.tools = tools
        self.ctx = ToolContext("s1", str(cwd))

    async def __call__(self, name: str, **arguments: Any) -> tuple[str, bool]:
        result = await asyncio.wait_for(self.tools[name].call(arguments, self.ctx), DEADLINE)
        return result.output, result.is_error

    async def diagnostics_until(self, file: str, expected: str) -> str:
        """``lsp_diagnostics`` of ``file`` once they mention ``expected``: a loaded machine may
        lint for longer than the tool waits for a fresh file (then it says there are none)."""
        deadline = time.monotonic() + DEADLINE
        while True:
            output, error = await self("lsp_diagnostics", file=file)
            assert not error, output
            if expected in output or time.monotonic() > deadline:
                return output


async def test_reading_tools_answer_from_the_server(project: Path) -> None:
    async with running(project) as (_, call):
        # pylsp has no workspace symbols: only what the server can do is offered.
        assert sorted(call.tools) == [
            "lsp_definition",
            "lsp_diagnostics",
            "lsp_document_symbols",
            "lsp_format",
            "lsp_hover",
            "lsp_references",
            "lsp_rename",
            "lsp_workspace",
        ]
        writes = {name for name, tool in call.tools.items() if not tool.definition.read_only}
        assert writes == {"lsp_rename", "lsp_format"}
        assert call.tools["lsp_hover"].definition.parameters["required"] == [
            "file",
            "line",
            "character",
        ]

        info, _ = await call("lsp_workspace")
        assert f"- Root: {project}" in info and "- Server: pylsp" in info
        assert "- Workspace Symbols: No" in info

        hover, error = await call("lsp_hover", file="use.py", line=3, character=7)
        assert not error and "area(width: int, height: int) -> int" in hover
        assert "The area of a rectangle." in hover
        where, _ = await call("lsp_definition", file="use.py", line=3, character=7)
        assert where == f"Found 1 location(s):\n- {project / 'shapes.py'}:4:5"
        refs, _ = await call("lsp_references", file=str(project / "shapes.py"), line=4, character=5)
        assert refs.startswith("Found 4 location(s):")
        assert f"- {project / 'use.py'}:3:7" in refs
        symbols, _ = await call("lsp_document_symbols", file="shapes.py")
        assert f"- Class Square ({project / 'shapes.py'}:9)" in symbols
        assert "- Method size" in symbols and "[in Square]" in symbols

        diagnostics = await call.diagnostics_until("use.py", "imported but unused")
        assert diagnostics.startswith("Diagnostics for use.py:\n")
        assert "\n- [Warning] Line 4: 'os' imported but unused" in diagnostics

        # Another tool changes the file: the next call sends the new content first.
        (project / "use.py").write_text("from shapes import area\narea(1, 2) + missing\n")
        diagnostics = await call.diagnostics_until("use.py", "missing")
        assert "- [Error] Line 2: undefined name 'missing'" in diagnostics

        outside, error = await call("lsp_hover", file="../elsewhere.py", line=1, character=1)
        assert error and "outside the working directory" in outside
        assert (await call("lsp_hover", file="use.py", line=0, character=1))[1]  # 1-based


async def test_rename_and_format_change_files(project: Path) -> None:
    (project / "messy.py").write_text("x  =  [1,2 ]\n")
    async with running(project) as (_, call):
        renamed, error = await call(
            "lsp_rename", file="shapes.py", line=4, character=5, new_name="surface"
        )
        assert not error and renamed.startswith("Renamed to 'surface':")
        assert (
            "from shapes import surface\n\nprint(surface(2, 3))" in (project / "use.py").read_text()
        )
        assert "return surface(self.side, self.side)" in (project / "shapes.py").read_text()
        hover, _ = await call("lsp_hover", file="use.py", line=3, character=7)
        assert "surface(width: int, height: int)" in hover

        assert await call("lsp_format", file="messy.py") == (
            "Formatted messy.py\nApplied 1 formatting change(s)",
            False,
        )
        assert (project / "messy.py").read_text() == "x = [1, 2]\n"


async def test_file_types_a_dead_server_and_a_missing_one(project: Path) -> None:
    async with running(project, file_types=["py"]) as (toolset, call):
        (project / "notes.txt").write_text("hello")
        refused, error = await call("lsp_document_symbols", file="notes.txt")
        assert error and refused == "LSP does not handle file type: .txt"

        server = toolset._server
        assert server is not None and server._proc is not None
        server._proc.kill()
        await server._proc.wait()
        answer, error = await call("lsp_hover", file="use.py", line=3, character=7)
        assert error and "not running" in answer
        assert not toolset.started
        await toolset.start()  # what the next turn does
        hover, error = await call("lsp_hover", file="use.py", line=3, character=7)
        assert not error and "area" in hover

    missing = LSPToolset({"command": str(project / "no-such-server")}, ToolsetEnv(str(project)))
    with pytest.raises(RuntimeError, match="cannot start the language server"):
        await missing.start()
    assert not missing.started
    broken = {"command": sys.executable, "args": ["-m", "no_such_server"]}
    with pytest.raises(RuntimeError, match=r"its stderr: .*No module named no_such_server"):
        await LSPToolset(broken, ToolsetEnv(str(project))).start()


def test_option_errors() -> None:
    assert "command: Field required" in check_toolset("lsp", {})
    assert check_toolset("lsp", {"command": "gopls", "file_types": [".go"]}) == ""
