"""The manager's notebook export and import (SPEC 6) over a real turn and a real store."""

from __future__ import annotations

import json
import socket

import nbformat
import pytest

from nbsession.errors import InvalidRequest
from nbsession.runtime.convert import to_model_messages

from .turn_helpers import run_turn


async def test_a_real_turn_exports_as_a_valid_notebook_and_imports_back(open_manager):
    async with open_manager() as mgr:
        session = await mgr.create_session({"permissions": {"allow": ["think"]}})
        stream = await mgr.run_session(
            session.id, "default", "", [{"role": "user", "content": "what is 17*23"}]
        )
        async for _ in stream:
            pass
        notebook = await mgr.export_session_notebook(session.id)
        nbformat.validate(nbformat.from_dict(notebook))
        text = json.dumps(notebook["cells"])
        assert "what is 17*23" in text and "think" in text and "391" in text

        imported = await mgr.import_session(notebook)
        original = await mgr.get_session(session.id)
        assert imported.id != original.id  # the exported id is taken on this server
        again = await mgr.export_session_notebook(imported.id)
        assert again["cells"] == notebook["cells"]
        for field in ("title", "permissions", "input_tokens", "output_tokens"):
            assert getattr(imported, field) == getattr(original, field)
        assert [i.to_json() for i in imported.messages] == [i.to_json() for i in original.messages]


def _no_record(notebook: dict) -> None:
    del notebook["metadata"]["nbsession"]


def _newer_record(notebook: dict) -> None:
    notebook["metadata"]["nbsession"]["version"] += 1


def _result_without_call(notebook: dict) -> None:
    messages = notebook["metadata"]["nbsession"]["session"]["messages"]
    chat = {"role": "tool", "tool_call_id": "call_gone", "content": "stray"}
    messages.append({"message": {"id": "orphan", "agentName": "root", "message": chat}})


@pytest.mark.parametrize(
    ("damage", "field", "words"),
    [
        (_no_record, "metadata.nbsession", "no nbsession record"),
        (_newer_record, "metadata.nbsession.version", "a newer nbsession (record version 2"),
        (
            _result_without_call,
            "metadata.nbsession.session.messages.0.message.message.tool_call_id",
            "answers no earlier tool call",
        ),
    ],
)
async def test_a_damaged_notebook_is_refused_by_name_and_creates_nothing(
    open_manager, damage, field, words
):
    async with open_manager() as mgr:
        session = await mgr.create_session({})
        notebook = await mgr.export_session_notebook(session.id)
        await mgr.delete_session(session.id)
        damage(notebook)
        with pytest.raises(InvalidRequest) as err:
            await mgr.import_session(notebook)
        assert err.value.field == field and words in err.value.message
        assert await mgr.get_sessions() == []


async def test_a_failed_turn_is_recorded_and_visibly_marked_in_the_notebook(
    open_manager, agents_dir
):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (agents_dir / "down.yaml").write_text(
        "agents:\n  root:\n    model: local\n"
        f"models:\n  local:\n    provider: openai\n    model: m\n"
        f"    base_url: http://127.0.0.1:{port}/v1\n"
    )
    async with open_manager() as mgr:
        session = await mgr.create_session({"title": "down"})
        stream = await mgr.run_session(session.id, "down", "", [{"content": "hello"}])
        events = [json.loads(entry.data) async for entry in stream]
        error = next(e for e in events if e["type"] == "error")
        assert events[-1]["type"] == "stream_stopped"
        stored = await mgr.get_session(session.id)
        assert [item.kind for item in stored.messages] == ["message", "error"]
        assert stored.messages[-1].error == error["error"]
        assert (await mgr.get_sessions())[0].num_messages == 1

        notebook = await mgr.export_session_notebook(session.id)
        outputs = [out for cell in notebook["cells"] for out in cell.get("outputs", [])]
        assert any(o.get("ename") == "TurnError" and error["error"] in o["evalue"] for o in outputs)

        # The record is for people: the next turn's model sees no trace of it.
        history = to_model_messages(stored.messages, "")
        assert error["error"] not in repr(history) and "hello" in repr(history)
        stream = await mgr.run_session(session.id, "default", "", [{"content": "hi again"}])
        assert [json.loads(e.data)["type"] async for e in stream][-1] == "stream_stopped"


async def test_a_recovery_export_with_a_result_without_its_call_is_refused(open_manager):
    async with open_manager() as mgr:
        session = await mgr.create_session({})
        exported = await mgr.export_session_for_recovery(session.id)
        await mgr.delete_session(session.id)
        chat = {"role": "tool", "tool_call_id": "call_gone", "content": "stray"}
        exported["messages"] = [{"message": {"id": "orphan", "agentName": "root", "message": chat}}]
        with pytest.raises(InvalidRequest) as err:
            await mgr.import_session(exported)
        assert err.value.field == "messages.0.message.message.tool_call_id"
        assert "answers no earlier tool call" in err.value.message
        assert await mgr.get_sessions() == []


@pytest.mark.parametrize(
    ("confirmation", "words"),
    [
        ("approve-session", "# approved by the user, with every tool of the session"),
        ("reject", "# rejected by the user"),
    ],
)
async def test_the_export_notes_how_a_call_was_answered(open_manager, confirmation, words):
    async with open_manager() as mgr:
        session = await mgr.create_session({})
        await run_turn(mgr, session.id, "run `echo hi`", confirmation=confirmation)
        await run_turn(mgr, session.id, "what is 17*23")  # `think` runs without asking
        stored = await mgr.get_session(session.id)
        results = [i.message.message for i in stored.messages if i.message.message.role == "tool"]
        assert [chat.approval for chat in results] == [confirmation, None]

        notebook = await mgr.export_session_notebook(session.id)
        calls = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
        assert calls[0]["source"].splitlines()[1] == words
        assert calls[0]["metadata"]["nbsession"]["approval"] == confirmation
        assert "approv" not in calls[1]["source"] and "reject" not in calls[1]["source"]
        imported = await mgr.import_session(notebook)
        again = await mgr.export_session_notebook(imported.id)
        assert again["cells"] == notebook["cells"]
