"""The jupyter toolset inside a real Jupyter server: its kernel manager's real kernels and its
contents manager's notebooks, driven through nbsession's REST API by the offline model."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest

from .conftest import Fetch, frames, new_session, user

AGENT = """
agents:
  root:
    model: demo/offline
    instruction: Work with the user's notebooks.
    toolsets:
      - type: jupyter
        timeout: 30
permissions:
  deny: [delete_cell]
"""
NOTEBOOK = "nb/demo.ipynb"
DEADLINE = 60.0


@pytest.fixture(autouse=True)
def agent_file(tmp_path: Path) -> None:
    (tmp_path / "agents").mkdir(exist_ok=True)
    (tmp_path / "agents" / "nb.yaml").write_text(AGENT)


@pytest.fixture
def notebook(jp_root_dir: Path) -> Path:
    path = jp_root_dir / NOTEBOOK
    path.parent.mkdir(parents=True, exist_ok=True)
    cells = [nbformat.v4.new_markdown_cell("# Demo"), nbformat.v4.new_code_cell("x = 1")]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return path


def call(tool: str, **arguments: Any) -> str:
    return f"call `{tool}` with {json.dumps(arguments)}"


async def turn(api: Fetch, session_id: str, text: str) -> list[dict[str, Any]]:
    """A whole turn over REST, for calls that ask nobody (approved, read-only or denied)."""
    reply = await api("POST", f"api/sessions/{session_id}/agent/nb", user(text))
    assert reply.code == 200, reply.body
    return [event for _seq, event in frames(reply.body)]


def result(events: list[dict[str, Any]]) -> dict[str, Any]:
    [response] = [e for e in events if e["type"] == "tool_call_response"]
    return dict(response["result"])


async def until(condition: Any, timeout: float = DEADLINE) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def notebook_kernel(serverapp: Any, kernel_name: str = "python3") -> str:
    """A kernel started for the notebook as JupyterLab starts one (a server session)."""
    model = await serverapp.session_manager.create_session(
        path=NOTEBOOK, name="demo.ipynb", type="notebook", kernel_name=kernel_name
    )
    return str(model["kernel"]["id"])


async def test_runs_in_the_kernel_of_the_sessions_notebook_by_default(
    api: Fetch, jp_serverapp: Any, notebook: Path
) -> None:
    kernel_id = await notebook_kernel(jp_serverapp)
    kernel = jp_serverapp.kernel_manager.get_kernel(kernel_id)
    session_id = await new_session(
        api, kernel_id=kernel_id, notebook_path=NOTEBOOK, tools_approved=True
    )
    ran = result(await turn(api, session_id, call("run_code", code="import os\nos.getpid()")))
    assert ran == {"output": f"Out[1]: {kernel.provisioner.process.pid}", "isError": False}

    listed = result(await turn(api, session_id, call("list_kernels")))["output"]
    [line] = [line for line in listed.splitlines() if line.startswith(kernel_id)]
    assert NOTEBOOK in line and "(this session's notebook kernel: the default)" in line

    read = result(await turn(api, session_id, call("read_notebook")))["output"]
    assert read.startswith(f"{NOTEBOOK}: 2 cells") and "x = 1" in read
    listed = result(await turn(api, session_id, call("list_notebooks")))["output"]
    assert listed == NOTEBOOK


async def test_a_timeout_and_a_cancel_interrupt_the_kernel(
    api: Fetch, jp_serverapp: Any, stream: Any, tmp_path: Path
) -> None:
    kernel_id = await notebook_kernel(jp_serverapp)
    models = jp_serverapp.kernel_manager
    session_id = await new_session(api, kernel_id=kernel_id, tools_approved=True)
    await turn(api, session_id, call("run_code", code="kept = 'still here'"))
    slow = result(
        await turn(api, session_id, call("run_code", code="import time; time.sleep(60)", timeout=1))
    )
    assert slow["isError"] and "Timed out after 1 s: the kernel was interrupted." in slow["output"]
    assert result(await turn(api, session_id, call("run_code", code="kept")))["output"] == (
        "Out[3]: 'still here'"
    )

    marker = tmp_path / "started"
    code = f"open({str(marker)!r}, 'w').close()\nimport time\ntime.sleep(60)"
    live = stream("POST", f"api/sessions/{session_id}/agent/nb", user(call("run_code", code=code)))
    await until(marker.exists)
    assert models.kernel_model(kernel_id)["execution_state"] == "busy"
    assert (await api("POST", f"api/sessions/{session_id}/cancel")).code == 200
    await live.reply()
    await until(lambda: models.kernel_model(kernel_id)["execution_state"] == "idle", 20)


class UserNotebook:
    """The user's notebook on a kernel: its own kernel client, running cells as a front end
    does (the toolset's code must run beside them, never interrupt them)."""

    def __init__(self, serverapp: Any, kernel_id: str) -> None:
        self.client = serverapp.kernel_manager.get_kernel(kernel_id).client()
        self._stdout: dict[str, str] = {}

    async def __aenter__(self) -> UserNotebook:
        self.client.start_channels()
        await self.client.wait_for_ready(timeout=DEADLINE)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self.client.stop_channels()

    def run(self, code: str) -> str:
        return str(self.client.execute(code))

    async def printed(self, msg_id: str, text: str) -> str:
        """The cell's stdout so far, read until it holds ``text``."""
        while text not in self._stdout.get(msg_id, ""):
            msg = await self.client.get_iopub_msg(timeout=DEADLINE)
            parent = msg["parent_header"].get("msg_id", "")
            if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
                self._stdout[parent] = self._stdout.get(parent, "") + msg["content"]["text"]
        return self._stdout[msg_id]

    async def reply(self, msg_id: str) -> dict[str, Any]:
        while True:
            msg = await self.client.get_shell_msg(timeout=DEADLINE)
            if msg["parent_header"].get("msg_id") == msg_id:
                return dict(msg["content"])

    async def subshells(self) -> list[str]:
        """The kernel's subshells (``list_subshell_request`` on the control channel)."""
        request = self.client.session.msg("list_subshell_request", {})
        self.client.control_channel.send(request)
        while True:
            msg = await self.client.get_control_msg(timeout=DEADLINE)
            if msg["parent_header"].get("msg_id") == request["header"]["msg_id"]:
                return list(msg["content"]["subshell_id"])


def waits_for(path: Path) -> str:
    """Code that runs until ``path`` exists."""
    return f"import os, time\nwhile not os.path.exists({str(path)!r}):\n    time.sleep(0.05)"


def blocking_cell(release: Path) -> str:
    """A cell that defines ``answer``, then runs until ``release`` exists."""
    return (
        f"import os, time\nanswer = 41\nprint('cell started', flush=True)\n"
        f"while not os.path.exists({str(release)!r}):\n    time.sleep(0.05)\nprint('cell done')"
    )


async def test_code_runs_in_a_subshell_beside_the_users_running_cell(
    api: Fetch, jp_serverapp: Any, stream: Any, tmp_path: Path
) -> None:
    kernel_id = await notebook_kernel(jp_serverapp)
    release, unblock = tmp_path / "release", tmp_path / "unblock"
    async with UserNotebook(jp_serverapp, kernel_id) as notebook:
        cell = notebook.run(blocking_cell(release))
        await notebook.printed(cell, "cell started")
        session_id = await new_session(api, kernel_id=kernel_id, tools_approved=True)
        ran = result(await turn(api, session_id, call("run_code", code="print(answer + 1)")))
        assert ran == {"output": "42", "isError": False}

        # Past its timeout the subshell's code is not interrupted (that would stop the user's
        # cell): it keeps running, and later code waits until it ends.
        stuck = call("run_code", code=waits_for(unblock), timeout=1)
        slow = result(await turn(api, session_id, stuck))
        assert slow["isError"]
        assert "Timed out after 1 s: the code may still be running in a subshell" in slow["output"]
        refused = result(await turn(api, session_id, call("run_code", code="print(answer)")))
        assert refused["isError"] and "is still running" in refused["output"]
        unblock.touch()
        again = result(await turn(api, session_id, call("run_code", code="print(answer)")))
        assert again == {"output": "41", "isError": False}

        assert len(await notebook.subshells()) == 1  # the toolset's, made once

        # Stopping the turn does not interrupt that code either. The subshell goes with the
        # session's runtime, but only once our code there has ended: deleting a busy subshell
        # would stall the kernel's shell channel (the user's next cells) until it did.
        started, unblock = tmp_path / "started", tmp_path / "unblock-again"
        code = f"open({str(started)!r}, 'w').close()\n" + waits_for(unblock)
        path = f"api/sessions/{session_id}"
        live = stream("POST", f"{path}/agent/nb", user(call("run_code", code=code)))
        await until(started.exists)
        assert (await api("POST", f"{path}/cancel")).code == 200
        await live.reply()
        assert (await api("DELETE", path)).code == 200
        assert len(await notebook.subshells()) == 1
        unblock.touch()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE
        while await notebook.subshells():
            assert loop.time() < deadline, "the subshell was not deleted"
            await asyncio.sleep(0.05)

        release.touch()
        assert await notebook.printed(cell, "cell done\n") == "cell started\ncell done\n"
        assert (await notebook.reply(cell))["status"] == "ok"  # never interrupted


@pytest.fixture
def kernel_without_subshells(jp_data_dir: Path) -> str:
    """A kernel spec whose kernel does not advertise subshells (see the launcher)."""
    spec = jp_data_dir / "kernels" / "nosubshells"
    spec.mkdir(parents=True)
    launcher = Path(__file__).with_name("kernel_without_subshells.py")
    argv = [sys.executable, str(launcher), "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "No subshells", "language": "python"})
    )
    return "nosubshells"


async def test_a_busy_kernel_without_subshells_is_refused(
    api: Fetch, jp_serverapp: Any, tmp_path: Path, kernel_without_subshells: str
) -> None:
    kernel_id = await notebook_kernel(jp_serverapp, kernel_without_subshells)
    models = jp_serverapp.kernel_manager
    release = tmp_path / "release"
    async with UserNotebook(jp_serverapp, kernel_id) as notebook:
        cell = notebook.run(blocking_cell(release))
        await notebook.printed(cell, "cell started")
        session_id = await new_session(api, kernel_id=kernel_id, tools_approved=True)
        busy = result(await turn(api, session_id, call("run_code", code="print('hi')")))
        assert busy["isError"]
        assert f"Kernel {kernel_id} is busy" in busy["output"]
        assert "does not support kernel subshells" in busy["output"]
        own = result(await turn(api, session_id, call("run_code", code="1 + 1", kernel_id="own")))
        assert own == {"output": "Out[1]: 2", "isError": False}
        [own_id] = set(models.list_kernel_ids()) - {kernel_id}
        release.touch()
        assert (await notebook.reply(cell))["status"] == "ok"
        # Idle again, the notebook's kernel runs the code in its main shell.
        idle = result(await turn(api, session_id, call("run_code", code="print(answer)")))
        assert idle == {"output": "41", "isError": False}
    # The session's own kernel goes with its runtime: deleting the session shuts it down.
    assert (await api("DELETE", f"api/sessions/{session_id}")).code == 200
    await until(lambda: own_id not in models.list_kernel_ids())


async def test_edits_go_through_the_contents_manager_with_a_diff_and_undo(
    api: Fetch, stream: Any, jp_serverapp: Any, notebook: Path, jp_root_dir: Path
) -> None:
    session_id = await new_session(api, notebook_path=NOTEBOOK)
    path = f"api/sessions/{session_id}"
    live = stream("POST", f"{path}/agent/nb", user(call("insert_cell", source="print(x)")))
    confirmation = await live.until("tool_call_confirmation")
    assert confirmation["diff"] == (
        f"--- a/{NOTEBOOK}\n+++ b/{NOTEBOOK}\n@@ -3,3 +3,6 @@\n \n # %% [code]\n x = 1\n"
        "+\n+# %% [code]\n+print(x)\n"
    )
    assert len(nbformat.read(notebook, as_version=4).cells) == 2  # nothing before approval
    assert (await api("POST", f"{path}/resume", {"confirmation": "approve"})).code == 200
    await live.reply()
    model = await jp_serverapp.contents_manager.get(NOTEBOOK)
    assert [cell["source"] for cell in model["content"]["cells"]] == ["# Demo", "x = 1", "print(x)"]

    denied = result(await turn(api, session_id, call("delete_cell", index=0)))
    assert denied["isError"] and denied["output"].startswith("Denied")
    live = stream("POST", f"{path}/agent/nb", user(call("undo_last_edit")))
    confirmation = await live.until("tool_call_confirmation")
    assert confirmation["diff"].endswith(" x = 1\n-\n-# %% [code]\n-print(x)\n")
    assert (await api("POST", f"{path}/resume", {"confirmation": "approve"})).code == 200
    undone = result([event for _seq, event in (await live.reply()) and live.events])
    assert undone["output"] == f"Undone: Inserted a code cell at 2 in {NOTEBOOK} (now 2 cells)."
    assert [c.source for c in nbformat.read(notebook, as_version=4).cells] == ["# Demo", "x = 1"]
    # Each write first saved the version it replaced as the notebook's checkpoint.
    [checkpoint] = await jp_serverapp.contents_manager.list_checkpoints(NOTEBOOK)
    await jp_serverapp.contents_manager.restore_checkpoint(checkpoint["id"], NOTEBOOK)
    restored = nbformat.read(notebook, as_version=4).cells
    assert [c.source for c in restored] == ["# Demo", "x = 1", "print(x)"]

    nbformat.write(nbformat.v4.new_notebook(), jp_root_dir.parent / "outside.ipynb")
    escaped = result(await turn(api, session_id, call("read_notebook", path="../outside.ipynb")))
    assert escaped["isError"] and "outside the Jupyter root" in escaped["output"]
