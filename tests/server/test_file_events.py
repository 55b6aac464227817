"""Agent writes reach the server's event bus, where JupyterLab's front end hears them.

A real server, a real ``/api/events/subscribe`` websocket (what JupyterLab's EventManager
opens) and turns of the offline model: a ``write_file`` of the ``filesystem`` toolset emits
nbsession's ``file_written`` event with the file's API path, and an ``insert_cell`` of the
``jupyter`` toolset saves through the contents manager, which emits its own ``save``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import nbformat
import pytest

from nbsession.server.file_events import SCHEMA_ID, api_path

from .conftest import Fetch, frames, new_session, user

CONTENTS_SCHEMA = "https://events.jupyter.org/jupyter_server/contents_service/v1"
AGENT = """
agents:
  root:
    model: demo/offline
    toolsets: [{type: filesystem}, {type: jupyter}]
permissions:
  allow: [write_file, insert_cell]
"""


@pytest.fixture(autouse=True)
def agent_file(tmp_path: Path) -> None:
    (tmp_path / "agents").mkdir(exist_ok=True)
    (tmp_path / "agents" / "writer.yaml").write_text(AGENT)


def call(tool: str, **arguments: Any) -> str:
    return f"call `{tool}` with {json.dumps(arguments)}"


async def turn(api: Fetch, session_id: str, text: str) -> None:
    reply = await api("POST", f"api/sessions/{session_id}/agent/writer", user(text))
    assert reply.code == 200, reply.body
    [response] = [e for _seq, e in frames(reply.body) if e["type"] == "tool_call_response"]
    assert not response["result"]["isError"], response


async def saved(socket: Any, schema_id: str, timeout: float = 15.0) -> dict[str, Any]:
    """The next ``save`` of ``schema_id`` on the event socket (other events skipped)."""

    async def next_save() -> dict[str, Any]:
        while True:
            message = json.loads(await socket.read_message())
            if message["schema_id"] == schema_id and message["action"] == "save":
                return dict(message)

    return await asyncio.wait_for(next_save(), timeout)


async def test_tool_writes_are_announced_on_the_event_bus(
    api: Fetch, jp_ws_fetch: Any, jp_root_dir: Path
) -> None:
    nbformat.write(nbformat.v4.new_notebook(), jp_root_dir / "open.ipynb")
    socket = await jp_ws_fetch("api", "events", "subscribe")
    try:
        session_id = await new_session(api)
        await turn(api, session_id, call("write_file", path="docs/a.txt", content="agent\n"))
        event = await saved(socket, SCHEMA_ID)
        assert event["path"] == "docs/a.txt"
        assert (jp_root_dir / "docs/a.txt").read_text() == "agent\n"

        await turn(api, session_id, call("insert_cell", path="open.ipynb", source="1 + 1"))
        event = await saved(socket, CONTENTS_SCHEMA)
        assert event["path"] == "open.ipynb"
    finally:
        socket.close()


def test_only_files_under_the_root_have_an_api_path(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    assert api_path(str(root), str(root / "sub" / "x.txt")) == "sub/x.txt"
    assert api_path(str(root), str(tmp_path / "elsewhere.txt")) is None
    assert api_path(str(root), str(root)) is None
