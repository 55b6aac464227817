"""memory and user_prompt inside real turns: state across sessions, questions to the user."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import nbformat

from .turn_helpers import of_type, open_manager, read_until, run_turn, user, write_agent


def call_text(tool: str, **arguments: object) -> str:
    return f"call `{tool}` with {json.dumps(arguments)}"


async def test_memories_outlive_the_session_and_the_server(tmp_path: Path) -> None:
    write_agent(tmp_path / "agents", "rememberer", toolsets=["memory"])
    add = call_text("add_memory", memory="The user's cat is called Tom")
    async with open_manager(tmp_path) as mgr:
        first = await mgr.create_session({})
        events = await run_turn(mgr, first.id, add, agent="rememberer")
        assert of_type(events, "tool_call_confirmation")  # adding asks
        assert not of_type(events, "tool_call_response")[0]["result"]["isError"]
    assert (tmp_path / "memory" / "rememberer" / "memory.db").is_file()  # beside s.db

    async with open_manager(tmp_path) as mgr:  # a restart, and a new session
        second = await mgr.create_session({})
        events = await run_turn(mgr, second.id, "call `get_memories`", agent="rememberer")
        assert not of_type(events, "tool_call_confirmation")  # reading does not
        [response] = of_type(events, "tool_call_response")
        [memory] = json.loads(response["result"]["output"])
        assert memory["memory"] == "The user's cat is called Tom"


def cell_sources(path: Path) -> list[str]:
    return [cell.source for cell in nbformat.read(path, as_version=4).cells]


async def test_a_cell_edit_is_undone_after_a_restart_and_its_history_goes_with_the_session(
    tmp_path: Path,
) -> None:
    write_agent(tmp_path / "agents", "editor", toolsets=["jupyter"])
    notebook = tmp_path / "a.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), notebook)
    replace = call_text("replace_cell", path="a.ipynb", index=0, source="x = 2")
    async with open_manager(tmp_path) as mgr:
        session = await mgr.create_session({})
        [edited] = of_type(
            await run_turn(mgr, session.id, replace, agent="editor"), "tool_call_response"
        )
        assert edited["result"] == {
            "output": "Replaced cell 0 in a.ipynb (now 1 cells).",
            "isError": False,
        }
    assert cell_sources(notebook) == ["x = 2"]

    async with open_manager(tmp_path) as mgr:  # a new manager on the same file: a restart
        events = await run_turn(mgr, session.id, "call `undo_last_edit`", agent="editor")
        [undone] = of_type(events, "tool_call_response")
        assert undone["result"]["output"] == "Undone: Replaced cell 0 in a.ipynb (now 1 cells)."
        assert cell_sources(notebook) == ["x = 1"]
        again = of_type(
            await run_turn(mgr, session.id, "call `undo_last_edit`", agent="editor"),
            "tool_call_response",
        )
        assert again[0]["result"]["output"].startswith("Nothing to undo")

        await run_turn(mgr, session.id, replace, agent="editor")
        with closing(sqlite3.connect(tmp_path / "s.db")) as db:
            assert db.execute("SELECT COUNT(*) FROM undo_entries").fetchone() == (1,)
        await mgr.delete_session(session.id)
        with closing(sqlite3.connect(tmp_path / "s.db")) as db:
            assert db.execute("SELECT COUNT(*) FROM undo_entries").fetchone() == (0,)


async def test_user_prompt_is_an_elicitation(tmp_path: Path) -> None:
    write_agent(tmp_path / "agents", "asker", toolsets=["user_prompt"])
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    async with open_manager(tmp_path) as mgr:
        session = await mgr.create_session({})
        text = call_text("user_prompt", message="Which city?", schema=schema)
        stream = await mgr.run_session(session.id, "asker", "", user(text))
        before = await read_until(stream, "elicitation_request")
        assert not of_type(before, "tool_call_confirmation")  # read-only: no approval
        request = before[-1]
        assert (request["message"], request["schema"], request["mode"]) == (
            "Which city?",
            schema,
            "form",
        )
        # A client that connects now shows the form from the snapshot.
        pending = (await mgr.get_session_snapshot(session.id))["pending"]
        assert pending == {k: v for k, v in request.items() if k != "seq"}
        await mgr.resume_elicitation(session.id, "accept", {"city": "Lyon"})
        rest = await read_until(stream, "stream_stopped")
        [response] = of_type(rest, "tool_call_response")
        assert json.loads(response["result"]["output"]) == {
            "action": "accept",
            "content": {"city": "Lyon"},
        }


async def test_shell_output_streams_during_the_turn_and_status_names_the_tool(
    tmp_path: Path,
) -> None:
    async with open_manager(tmp_path) as mgr:
        session = await mgr.create_session({})
        command = "echo building; while [ ! -e go ]; do sleep 0.02; done; echo built"
        stream = await mgr.run_session(session.id, "default", "", user(f"run `{command}`"))
        await read_until(stream, "tool_call_confirmation")
        await mgr.resume_session(session.id, "approve")
        first = (await read_until(stream, "tool_call_output"))[-1]
        assert first["output"] == "building\n" and first["agent_name"] == "root"
        assert first["tool_definition"]["name"] == "shell"
        status = await mgr.get_session_status(session.id)
        assert status["activity"]["state"] == "running_tool"
        assert status["activity"]["tool"] == "shell" and status["activity"]["duration"] >= 0

        (tmp_path / "go").touch()
        rest = await read_until(stream, "stream_stopped")
        [response] = of_type(rest, "tool_call_response")
        outputs = [first, *of_type(rest, "tool_call_output")]
        assert {event["tool_call_id"] for event in outputs} == {response["tool_call_id"]}
        assert "".join(event["output"] for event in outputs) == "building\nbuilt\n"
        assert response["result"]["output"] == "building\nbuilt"
        last_output = max(rest.index(event) for event in outputs[1:])
        assert last_output < rest.index(response)


async def test_what_the_file_asks_for_and_nbsession_ignores_is_a_warning_event(
    tmp_path: Path,
) -> None:
    agents = tmp_path / "agents"
    agents.mkdir()
    (agents / "wide.yaml").write_text(
        "agents:\n  root:\n    model: demo/offline\n    add_date: true\n"
        "    toolsets: [{type: filesystem, allow_list: [/data]}]\n"
    )
    async with open_manager(tmp_path) as mgr:
        session = await mgr.create_session({})
        first = await run_turn(mgr, session.id, "hello", agent="wide")
        warnings = [event["message"] for event in of_type(first, "warning")]
        assert warnings == [
            "wide.yaml: agents.root.add_date: not supported by nbsession, ignored",
            "wide.yaml: agents.root.toolsets[0].allow_list: option not supported by "
            "nbsession's filesystem toolset, ignored",
        ]
        assert first.index(of_type(first, "warning")[0]) > first.index(
            of_type(first, "stream_started")[0]
        )
        again = await run_turn(mgr, session.id, "hello again", agent="wide")
        assert not of_type(again, "warning")  # told once per session runtime
