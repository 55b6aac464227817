"""A language server inside real turns: it starts with the first turn, in the session's working
directory, and its read-only tools answer without approval."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import yaml
from tools.test_lsp import SHAPES

from .test_toolset_turns import call_text
from .turn_helpers import of_type, open_manager, run_turn, types

DEADLINE = 60.0


async def test_a_turn_asks_the_language_server(tmp_path: Path) -> None:
    (tmp_path / "shapes.py").write_text(SHAPES)
    lsp = {"type": "lsp", "command": sys.executable, "args": ["-m", "pylsp"]}
    agents = tmp_path / "agents"
    agents.mkdir()
    root = {"model": "demo/offline", "toolsets": [lsp]}
    (agents / "coder.yaml").write_text(yaml.safe_dump({"agents": {"root": root}}))
    hover = call_text("lsp_hover", file="shapes.py", line=14, character=16)
    async with open_manager(tmp_path) as mgr:
        session = await mgr.create_session({})
        events = await asyncio.wait_for(run_turn(mgr, session.id, hover, agent="coder"), DEADLINE)
    names = types(events)
    assert names.index("mcp_init_finished") < names.index("tool_call")
    assert not of_type(events, "tool_call_confirmation")  # read-only
    [response] = of_type(events, "tool_call_response")
    assert "area(width: int, height: int) -> int" in response["result"]["output"]
