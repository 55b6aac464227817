"""Notebook export and import (SPEC 6): the rendering people read and the recovery record."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from typing import Any, get_args

import nbformat
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from IPython.core.interactiveshell import InteractiveShell

from nbsession.errors import InvalidRequest
from nbsession.notebook import (
    NOTEBOOK_FORMAT_VERSION,
    is_notebook,
    notebook_to_session,
    session_to_notebook,
)
from nbsession.runtime.loop import REJECTED
from nbsession.session import (
    Approval,
    ChatMessage,
    FunctionCall,
    Item,
    Message,
    Permissions,
    Session,
    ToolCall,
    Usage,
)


def _message(message_id: str, agent: str = "", **chat: Any) -> Item:
    return Item(message=Message(id=message_id, agent_name=agent, message=ChatMessage(**chat)))


def _call(call_id: str, name: str, arguments: str) -> ToolCall:
    return ToolCall(id=call_id, function=FunctionCall(name=name, arguments=arguments))


def _session() -> Session:
    """A session with every kind of item the renderer distinguishes."""
    sub = Session(
        id="sub-1",
        title="Research the bug",
        parent_id="s-1",
        messages=[_message("sub-u", role="user", content="look"), Item(summary="done")],
    )
    return Session(
        id="s-1",
        title="Fix the build",
        created_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
        working_dir="/work/project",
        input_tokens=120,
        output_tokens=45,
        cost=0.0123,
        thinking=True,
        max_iterations=7,
        permissions=Permissions(allow=["read_*"], ask=["shell"], deny=["rm"]),
        agent_model_overrides={"root": "openai/gpt-4o"},
        custom_models_used=["openai/gpt-4o"],
        messages=[
            _message("m-sys", role="system", content="You are helpful."),
            _message("m-user", role="user", content="Why does *make* fail?\n\n# not a heading"),
            _message(
                "m-asst",
                agent="root",
                role="assistant",
                content="Let me **check**.",
                reasoning_content="The user wants a diagnosis.",
                model="openai/gpt-4o",
                usage=Usage(input_tokens=100, output_tokens=40),
                cost=0.01,
                tool_calls=[
                    _call("call_1", "shell", '{"cmd": "make", "cwd": "."}'),
                    _call("call_2", "read_file", '{"path": "Makefile"}'),
                    _call("call_3", "shell", '{"cmd": "sleep 100"}'),
                ],
            ),
            _message("m-t1", role="tool", tool_call_id="call_1", content="make: ok\n"),
            _message(
                "m-t2",
                role="tool",
                tool_call_id="call_2",
                is_error=True,
                content="file not found: Makefile\nsearched /work/project",
            ),
            Item(summary="The build was investigated.", first_kept_entry=2),
            Item(sub_session=sub),
            _message("m-end", agent="root", role="assistant", content="Done."),
        ],
    )


def _validated(nb: dict[str, Any]) -> dict[str, Any]:
    """Check ``nb`` the ways JupyterLab and nbformat read a file; return it unchanged."""
    nbformat.validate(nbformat.from_dict(copy.deepcopy(nb)))
    text = json.dumps(nb)
    nbformat.reads(text, as_version=4)
    assert json.loads(text) == nb
    return nb


def _cell(nb: dict[str, Any], start: str) -> dict[str, Any]:
    matches = [cell for cell in nb["cells"] if cell["source"].startswith(start)]
    assert len(matches) == 1, [cell["source"] for cell in nb["cells"]]
    return matches[0]


def test_export_is_valid_nbformat_45_with_recovery_record() -> None:
    session = _session()
    nb = _validated(session_to_notebook(session))

    assert (nb["nbformat"], nb["nbformat_minor"]) == (4, 5)
    assert nb["metadata"]["nbsession"] == {
        "version": NOTEBOOK_FORMAT_VERSION,
        "session": session.to_json(),
    }
    # JupyterLab opens it with the Python kernel rather than asking "Select Kernel".
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    ids = [cell["id"] for cell in nb["cells"]]
    assert len(set(ids)) == len(ids)
    assert is_notebook(nb)


def test_cells_follow_the_conversation_in_order() -> None:
    nb = session_to_notebook(_session())
    kinds = [(cell["cell_type"], cell["source"].split("\n", 1)[0]) for cell in nb["cells"]]

    assert kinds == [
        ("markdown", "# Fix the build"),
        ("markdown", "**System**"),
        ("markdown", "**You**"),
        ("markdown", "**Assistant** (root) · `openai/gpt-4o`"),
        ("code", "# tool call: shell (call_1), recorded: not meant to run"),
        ("code", "# tool call: read_file (call_2), recorded: not meant to run"),
        ("code", "# tool call: shell (call_3), recorded: not meant to run"),
        ("markdown", "**Summary**"),
        ("markdown", "## Sub-session: Research the bug"),
        ("markdown", "**You**"),
        ("markdown", "**Summary**"),
        ("markdown", "*End of sub-session: Research the bug*"),
        ("markdown", "**Assistant** (root)"),
    ]


def test_title_cell_names_the_session_facts() -> None:
    title = session_to_notebook(_session())["cells"][0]["source"]

    assert title.startswith("# Fix the build\n")
    for fact in (
        "2025-01-02T03:04:05+00:00",
        "/work/project",
        "120 input",
        "45 output",
        "cost \\$0.0123",
    ):
        assert fact in title
    assert "`root` → `openai/gpt-4o`" in title


def test_user_and_assistant_text_is_kept() -> None:
    nb = session_to_notebook(_session())

    user = _cell(nb, "**You**\n\nWhy")
    assert user["source"].endswith("\n\nWhy does *make* fail?\n\n# not a heading")
    assistant = _cell(nb, "**Assistant** (root) ·")["source"]
    assert "<details><summary>Reasoning</summary>" in assistant
    assert "The user wants a diagnosis." in assistant
    assert assistant.index("</details>") < assistant.index("Let me **check**.")
    assert _cell(nb, "**System**")["source"] == "**System**\n\nYou are helpful."
    summary = _cell(nb, "**Summary**\n\nThe build")["source"]
    assert summary == "**Summary**\n\nThe build was investigated."
    assert _cell(nb, "## Sub-session")["source"].endswith("\n\n1 message")


def test_tool_calls_are_code_cells_with_their_results() -> None:
    nb = session_to_notebook(_session())

    ok = _cell(nb, "# tool call: shell (call_1)")
    assert json.loads(ok["source"].split("\n", 1)[1]) == {"cmd": "make", "cwd": "."}
    assert '\n  "cmd": "make"' in ok["source"]
    assert ok["execution_count"] is None
    assert ok["outputs"] == [{"output_type": "stream", "name": "stdout", "text": "make: ok\n"}]

    failed = _cell(nb, "# tool call: read_file (call_2)")
    assert failed["outputs"] == [
        {
            "output_type": "error",
            "ename": "ToolError",
            "evalue": "file not found: Makefile",
            "traceback": ["ToolError: file not found: Makefile", "searched /work/project"],
        }
    ]

    dangling = _cell(nb, "# tool call: shell (call_3)")
    assert dangling["outputs"] == [
        {"output_type": "stream", "name": "stderr", "text": "no result (interrupted)\n"}
    ]


def _orphaned(where: str) -> Session:
    """A session whose tool result answers no call, at the top level or in a sub-session."""
    orphan = _message("m-orphan", role="tool", tool_call_id="call_gone", content="stray")
    if where == "top":
        return Session(messages=[_message("u", role="user", content="hi"), orphan])
    sub = Session(id="sub", messages=[orphan])
    return Session(messages=[_message("u", role="user", content="hi"), Item(sub_session=sub)])


def test_a_result_without_its_call_is_shown_but_refused_on_import() -> None:
    nb = _validated(session_to_notebook(_orphaned("top")))
    assert _cell(nb, "# tool result (call_gone)")["outputs"][0]["text"] == "stray"

    for where, field in [
        ("top", "metadata.nbsession.session.messages.1.message.message.tool_call_id"),
        (
            "sub",
            "metadata.nbsession.session.messages.1.sub_session.messages.0.message.message"
            ".tool_call_id",
        ),
    ]:
        with pytest.raises(InvalidRequest) as caught:
            notebook_to_session(session_to_notebook(_orphaned(where)))
        assert caught.value.field == field
        assert "'call_gone' answers no earlier tool call" in caught.value.message


def test_odd_inputs_still_render_valid_notebooks() -> None:
    long_id = "x" * 80
    session = Session(
        title="  multi\nline   title ",
        messages=[
            _message("same id", role="user", content=""),
            _message("same id", role="user", content="again"),
            _message(long_id + "a", role="assistant", content="one"),
            _message(long_id + "b", role="assistant", content="two"),
            _message(
                "m",
                role="assistant",
                tool_calls=[_call("c", "shell", "not json"), _call("d", "noop", "")],
            ),
            _message("r", role="tool", tool_call_id="d", is_error=True, content=""),
            _message(
                "img",
                role="user",
                multi_content=[
                    {"type": "text", "text": "see picture"},
                    {"type": "image_url", "image_url": {"url": "data:,"}},
                ],
            ),
        ],
    )
    nb = _validated(session_to_notebook(session))

    ids = [cell["id"] for cell in nb["cells"]]
    assert len(set(ids)) == len(ids)
    assert all(len(cell_id) <= 64 for cell_id in ids)
    assert nb["cells"][0]["source"].startswith("# multi line title\n")
    assert [cell["cell_type"] for cell in nb["cells"]].count("code") == 2
    assert _cell(nb, "# tool call: shell (c)")["source"].endswith(
        "# arguments are not valid JSON:\nnot json"
    )
    assert _cell(nb, "# tool call: noop (d)")["source"].endswith("\n{}")
    assert _cell(nb, "# tool call: noop (d)")["outputs"][0]["traceback"] == ["ToolError"]
    assert nb["cells"][-1]["source"] == "**You**\n\nsee picture\n\n*[attachment: image_url]*"
    assert session_to_notebook(session) == nb


def test_empty_session_renders_a_title_only() -> None:
    session = Session()
    nb = _validated(session_to_notebook(session))

    assert len(nb["cells"]) == 1
    assert nb["cells"][0]["source"].startswith("# Untitled session\n")
    assert "Model overrides" not in nb["cells"][0]["source"]
    assert notebook_to_session(nb).to_json() == session.to_json()


def test_export_import_export_is_identical() -> None:
    session = _session()
    nb = session_to_notebook(session)

    recovered = notebook_to_session(json.loads(json.dumps(nb)))

    assert recovered.to_json() == session.to_json()
    assert recovered.permissions == session.permissions
    assert recovered.agent_model_overrides == {"root": "openai/gpt-4o"}
    assert (recovered.input_tokens, recovered.output_tokens, recovered.cost) == (120, 45, 0.0123)
    assert recovered.title == "Fix the build"
    assert session_to_notebook(recovered) == nb


def test_import_ignores_edited_cells_and_leaves_input_alone() -> None:
    session = _session()
    nb = session_to_notebook(session)
    nb["cells"][1]["source"] = "edited by a person"
    nb["cells"].append({"cell_type": "markdown", "metadata": {}, "source": "no id"})
    nb["cells"].append(dict(nb["cells"][2]))  # a duplicate id nbformat would repair
    nb["metadata"]["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    before = copy.deepcopy(nb)

    assert notebook_to_session(nb).to_json() == session.to_json()
    assert nb == before


def _broken(change: Any) -> dict[str, Any]:
    nb = session_to_notebook(_session())
    change(nb)
    return nb


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        (["not", "a", "dict"], "notebook", "JSON object, not an array"),
        ({"nbformat": 4}, "cells", "'cells' is missing"),
        ({"cells": []}, "nbformat", "'nbformat' is missing"),
        (_broken(lambda nb: nb.update(nbformat=3)), "nbformat", "nbformat 4"),
        (_broken(lambda nb: nb.update(nbformat_minor="5")), "nbformat_minor", "integer"),
        (_broken(lambda nb: nb.update(cells="x")), "cells", "list of objects"),
        (_broken(lambda nb: nb.pop("metadata")), None, "not valid nbformat"),
        (
            _broken(lambda nb: nb["cells"][0].update(cell_type="picture")),
            "cells.0",
            "not valid nbformat",
        ),
        (
            _broken(lambda nb: nb["metadata"].pop("nbsession")),
            "metadata.nbsession",
            "no nbsession record",
        ),
        (
            _broken(lambda nb: nb["metadata"].update(nbsession="x")),
            "metadata.nbsession",
            "no nbsession record",
        ),
        (
            _broken(lambda nb: nb["metadata"]["nbsession"].update(version=2)),
            "metadata.nbsession.version",
            "version 2",
        ),
        (
            _broken(lambda nb: nb["metadata"]["nbsession"].pop("version")),
            "metadata.nbsession.version",
            "version None",
        ),
        (
            _broken(lambda nb: nb["metadata"]["nbsession"].update(session=[])),
            "metadata.nbsession.session",
            "not an array",
        ),
        (
            _broken(lambda nb: nb["metadata"]["nbsession"]["session"].update(messages="x")),
            "metadata.nbsession.session.messages",
            "valid list",
        ),
        (
            _broken(
                lambda nb: nb["metadata"]["nbsession"]["session"]["messages"][1]["message"][
                    "message"
                ].update(role="robot")
            ),
            "metadata.nbsession.session.messages.1.message.message.role",
            "metadata.nbsession.session.messages.1.message.message.role",
        ),
    ],
)
def test_damaged_notebooks_are_refused_with_the_problem_named(
    data: Any, field: str | None, words: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        notebook_to_session(data)

    assert caught.value.field == field
    assert words in caught.value.message


def test_is_notebook_tells_notebooks_from_sessions() -> None:
    assert is_notebook({"cells": [], "nbformat": 4})
    assert not is_notebook(_session().to_json())
    assert not is_notebook(["cells", "nbformat"])


def _tool_session(tmp: Any) -> Session:
    """Calls of each rendering: a lone shell command, Python code, JSON, refused calls."""
    marker = tmp / "ran"
    calls = [
        _call("c-sh", "shell", json.dumps({"cmd": f"touch {marker}"})),
        _call("c-py", "run_python", json.dumps({"code": f"open({str(marker)!r}, 'w')"})),
        _call("c-js", "write_file", json.dumps({"path": "a", "content": "é"})),
        _call("c-no", "shell", '{"cmd": "rm -rf /"}'),
        _call("c-deny", "shell", '{"cmd": "rm x"}'),
    ]
    results = [
        _message("r-sh", role="tool", tool_call_id="c-sh", content=""),
        _message("r-py", role="tool", tool_call_id="c-py", content="ok"),
        _message("r-js", role="tool", tool_call_id="c-js", content="written"),
        _message(
            "r-no", role="tool", tool_call_id="c-no", is_error=True, content=f"{REJECTED} risky"
        ),
        _message(
            "r-deny",
            role="tool",
            tool_call_id="c-deny",
            is_error=True,
            content="Denied: the permissions do not allow 'shell'.",
        ),
    ]
    asked = _message("a", agent="root", role="assistant", model="m/one", tool_calls=calls)
    return Session(messages=[asked, *results])


def test_tool_calls_read_as_their_language_and_are_locked(tmp_path: Any) -> None:
    nb = _validated(session_to_notebook(_tool_session(tmp_path)))
    calls = [cell for cell in nb["cells"] if cell["cell_type"] == "code"]

    header = ", recorded: not meant to run\n"
    assert [cell["source"].split(header, 1)[1] for cell in calls] == [
        f"%%bash\ntouch {tmp_path / 'ran'}",
        f"%%python\nopen({str(tmp_path / 'ran')!r}, 'w')",
        '{\n  "path": "a",\n  "content": "é"\n}',
        "%%bash\nrm -rf /",
        "%%bash\nrm x",
    ]
    for cell in calls:
        assert cell["execution_count"] is None
        assert cell["metadata"]["editable"] is False
        assert cell["metadata"]["tags"] == ["nbsession-tool-call"]
    assert calls[0]["metadata"]["nbsession"] == {"tool_call_id": "c-sh", "tool": "shell"}
    assert [cell["outputs"][0].get("ename") for cell in calls] == [
        None,
        None,
        None,
        "ToolRejected",
        "ToolDenied",
    ]


def test_running_a_tool_call_cell_by_accident_runs_nothing(tmp_path: Any) -> None:
    shell = InteractiveShell.instance()
    nb = session_to_notebook(_tool_session(tmp_path))
    for cell in nb["cells"][:3]:
        if cell["cell_type"] == "code":
            result = shell.run_cell(cell["source"], silent=True)
            assert not result.success
    assert not (tmp_path / "ran").exists()


def test_images_are_embedded_and_sub_sessions_pair_their_own_calls() -> None:
    png = "iVBORw0KGgo="
    sub = Session(
        id="sub",
        title="helper",
        messages=[
            _message("s-a", role="assistant", tool_calls=[_call("k", "think", '{"t": 1}')]),
            _message("s-r", role="tool", tool_call_id="k", content="thought"),
        ],
    )
    session = Session(
        messages=[
            _message(
                "u",
                role="user",
                content="look",
                multi_content=[
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
                    {"type": "image_url", "image_url": {"url": "https://example.org/a b.png"}},
                ],
            ),
            Item(sub_session=sub),
        ]
    )
    nb = _validated(session_to_notebook(session))

    user = _cell(nb, "**You**")
    assert user["attachments"] == {"image-1.png": {"image/png": png}}
    assert "![image-1.png](attachment:image-1.png)" in user["source"]
    assert "![image](https://example.org/a%20b.png)" in user["source"]
    call = _cell(nb, "# tool call: think (k)")
    assert call["outputs"] == [{"output_type": "stream", "name": "stdout", "text": "thought"}]
    order = [cell["source"].split("\n", 1)[0] for cell in nb["cells"]]
    assert order.index("## Sub-session: helper") < order.index(call["source"].split("\n")[0])


def test_title_names_agents_models_and_the_last_message() -> None:
    session = Session(
        messages=[
            _message("u", role="user", content="hi", created_at="2025-01-01T00:00:00Z"),
            _message("a", agent="root", role="assistant", content="x", model="m/one"),
            _message("b", agent="helper", role="assistant", content="y", model="m/two"),
            _message("c", agent="root", role="assistant", created_at="2025-01-02T00:00:00Z"),
        ]
    )
    title = session_to_notebook(session)["cells"][0]["source"]

    assert "last message 2025-01-02T00:00:00Z" in title
    assert "Agents: `root`, `helper` · models: `m/one`, `m/two`" in title


# -- round trip over generated sessions --------------------------------------------------

_TEXT = st.text(max_size=40) | st.sampled_from(
    ["", "<b>bold</b>", "<details>", "```\ncode\n```", "$x$ \\$", "# heading", "é🙂\x00\u202e"]
)


@st.composite
def _turns(draw: st.DrawFn, depth: int = 0) -> list[Item]:
    """User turns, answers with tool calls and their results, summaries, errors, sub-sessions."""
    items: list[Item] = []
    for turn in range(draw(st.integers(0, 3))):
        items.append(_message(f"u{depth}-{turn}", role="user", content=draw(_TEXT)))
        calls = [
            _call(f"c{depth}-{turn}-{n}", draw(st.sampled_from(["shell", "read", "x"])), args)
            for n, args in enumerate(
                draw(
                    st.lists(
                        st.sampled_from(['{"cmd": "ls"}', '{"code": "1"}', "{", ""]) | _TEXT,
                        max_size=2,
                    )
                )
            )
        ]
        items.append(
            _message(
                f"a{depth}-{turn}",
                agent=draw(_TEXT),
                role="assistant",
                content=draw(_TEXT),
                reasoning_content=draw(st.none() | _TEXT),
                model=draw(st.none() | _TEXT),
                tool_calls=calls or None,
            )
        )
        for call in calls:
            if draw(st.booleans()):
                items.append(
                    _message(
                        f"r-{call.id}",
                        role="tool",
                        tool_call_id=call.id,
                        content=draw(_TEXT),
                        is_error=draw(st.none() | st.just(True)),
                        approval=draw(st.none() | st.sampled_from(get_args(Approval))),
                    )
                )
        extra = draw(st.sampled_from(["none", "summary", "error", "sub"]))
        if extra == "summary":
            items.append(Item(summary=draw(_TEXT)))
        elif extra == "error":
            items.append(Item(error=draw(_TEXT)))
        elif extra == "sub" and depth < 2:
            sub = Session(
                id=f"sub{depth}-{turn}", title=draw(_TEXT), messages=draw(_turns(depth + 1))
            )
            items.append(Item(sub_session=sub))
    return items


_SESSIONS = st.builds(
    Session,
    title=_TEXT,
    messages=_turns(),
    input_tokens=st.integers(0, 2**40),
    output_tokens=st.integers(0, 2**40),
    cost=st.floats(0, 1e6, allow_nan=False, allow_infinity=False),
    permissions=st.none() | st.builds(Permissions, allow=st.lists(_TEXT, max_size=2)),
    agent_model_overrides=st.dictionaries(_TEXT, _TEXT, max_size=2),
    working_dir=_TEXT,
)


@settings(max_examples=60, deadline=None)
@given(_SESSIONS)
def test_export_import_export_round_trips_generated_sessions(session: Session) -> None:
    nb = _validated(session_to_notebook(session))

    recovered = notebook_to_session(json.loads(json.dumps(nb)))

    assert recovered.to_json() == session.to_json()
    assert session_to_notebook(recovered) == nb
