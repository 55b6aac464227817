"""The filesystem toolset inside real turns: approvals, diffs in confirmations, permissions."""

from __future__ import annotations

import json
from pathlib import Path

from .turn_helpers import of_type, open_manager, read_rest, run_turn, tool_result, user, write_agent


def call_text(tool: str, **arguments: object) -> str:
    return f"call `{tool}` with {json.dumps(arguments)}"


async def test_write_asks_with_a_diff_and_writes_once_approved(tmp_path: Path) -> None:
    write_agent(tmp_path / "agents", "fs", toolsets=["filesystem"])
    (tmp_path / "notes.txt").write_text("alpha\nbeta\n")
    async with open_manager(tmp_path) as mgr:
        session = await mgr.create_session({})
        edit = call_text(
            "edit_file", path="notes.txt", edits=[{"oldText": "beta", "newText": "gamma"}]
        )
        stream = await mgr.run_session(session.id, "fs", "", user(edit))
        seen: list[dict] = []

        async def answer(event: dict) -> None:
            seen.append(event)
            assert (tmp_path / "notes.txt").read_text() == "alpha\nbeta\n"  # not yet
            await mgr.resume_session(session.id, "approve")

        await read_rest(stream, answer=answer)
        [confirmation] = seen
        assert confirmation["tool_call"]["function"]["name"] == "edit_file"
        assert confirmation["diff"] == (
            "--- a/notes.txt\n+++ b/notes.txt\n@@ -1,2 +1,2 @@\n alpha\n-beta\n+gamma\n"
        )
        assert (tmp_path / "notes.txt").read_text() == "alpha\ngamma\n"


async def test_reads_run_without_asking_and_escapes_are_errors(tmp_path: Path) -> None:
    write_agent(tmp_path / "agents", "fs", toolsets=["filesystem"])
    work = tmp_path / "work"
    work.mkdir()
    (work / "a.txt").write_text("inside\n")
    (tmp_path / "outside.txt").write_text("secret\n")
    async with open_manager(tmp_path) as mgr:
        session = await mgr.create_session({"working_dir": "work"})
        events = await run_turn(mgr, session.id, call_text("read_file", path="a.txt"), agent="fs")
        assert not of_type(events, "tool_call_confirmation")
        [response] = of_type(events, "tool_call_response")
        assert response["result"]["output"] == "inside\n"

        events = await run_turn(
            mgr, session.id, call_text("read_file", path="../outside.txt"), agent="fs"
        )
        [response] = of_type(events, "tool_call_response")
        assert response["result"]["isError"]
        assert "outside the working directory" in response["result"]["output"]
        assert "secret" not in json.dumps(events)


async def test_permissions_deny_a_write_without_asking(tmp_path: Path) -> None:
    write_agent(
        tmp_path / "agents",
        "fs",
        toolsets=["filesystem"],
        permissions={"deny": ["write_file"]},
    )
    async with open_manager(tmp_path) as mgr:
        session = await mgr.create_session({})
        text = call_text("write_file", path="x.txt", content="no")
        events = await run_turn(mgr, session.id, text, agent="fs")
        assert not of_type(events, "tool_call_confirmation")
        [response] = of_type(events, "tool_call_response")
        assert response["result"]["isError"]
        assert response["result"]["output"].startswith("Denied")
        assert not (tmp_path / "x.txt").exists()
        stored = await mgr.get_session(session.id)
        assert tool_result(stored, response["tool_call"]["id"]).message.is_error


async def test_rejected_write_changes_nothing(tmp_path: Path) -> None:
    write_agent(tmp_path / "agents", "fs", toolsets=["filesystem"])
    async with open_manager(tmp_path) as mgr:
        session = await mgr.create_session({})
        text = call_text("write_file", path="x.txt", content="no")
        events = await run_turn(mgr, session.id, text, agent="fs", confirmation="reject")
        [confirmation] = of_type(events, "tool_call_confirmation")
        assert confirmation["diff"].startswith("--- /dev/null\n+++ b/x.txt\n")
        assert not (tmp_path / "x.txt").exists()
