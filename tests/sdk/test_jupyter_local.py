"""The bundled ``jupyter`` agent under ``nbsession.local()``: no Jupyter server, so its toolset
starts a kernel of its own and edits notebooks on disk; closing the client shuts the kernel."""

from __future__ import annotations

import json
import time
from pathlib import Path

import nbformat
import pytest

import nbsession
from tests.tools.test_shell import alive

DEADLINE = 60.0


def call(tool: str, **arguments: object) -> str:
    return f"call `{tool}` with {json.dumps(arguments)}"


def test_local_runs_code_in_its_own_kernel_and_edits_notebooks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # local() confines sessions to the current directory
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("a = 1")]), "a.ipynb")
    with nbsession.local() as client:
        session = client.create_session(agent="jupyter", tools_approved=True)
        ran = session.run(call("run_code", code="import os\nprint(os.getpid())"), display=False)
        [tool_call] = ran.tool_calls
        assert tool_call.name == "run_code" and not tool_call.is_error
        pid = int(tool_call.output or "")
        assert alive(pid)

        edited = session.run(call("insert_cell", path="a.ipynb", source="b = 2"), display=False)
        assert edited.tool_calls[0].output == "Inserted a code cell at 1 in a.ipynb (now 2 cells)."
        assert [c.source for c in nbformat.read("a.ipynb", as_version=4).cells] == [
            "a = 1",
            "b = 2",
        ]
        read = session.run(call("read_notebook", path="a.ipynb"), display=False)
        assert "# %% [code] cell 1" in (read.tool_calls[0].output or "")
    deadline = time.monotonic() + DEADLINE
    while alive(pid):  # the client closed: its manager shut the toolset's kernel down
        assert time.monotonic() < deadline, "the kernel outlived the client"
        time.sleep(0.05)
