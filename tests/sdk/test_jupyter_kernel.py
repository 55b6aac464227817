"""The bundled ``jupyter`` agent, started from a notebook's kernel in a real Jupyter server,
runs its code in that kernel: it sees the user's variables."""

from __future__ import annotations

import json
import time

from tests.server.test_live_server import Server

from .conftest import SERVER_TOKEN
from .helpers import ServerKernel

DEADLINE = 60.0


def test_the_agent_runs_code_in_the_notebook_kernel_it_was_started_from(live: Server) -> None:
    kernel = ServerKernel(f"http://127.0.0.1:{live.port}", SERVER_TOKEN, notebook="nb/agent.ipynb")
    try:
        kernel.execute("import nbsession\nanswer = 41").check()
        prompt = "call `run_code` with " + json.dumps({"code": "print(answer + 1)"})
        out = kernel.execute(
            "s = nbsession.connect().create_session(agent='jupyter', tools_approved=True)\n"
            f"turn = s.run({prompt!r}, wait=False, display=False)\n"
            "print(s.id)"
        ).check()  # the cell ends: the kernel is free for the agent's code
        session_id = out.stdout.strip()
        with live.client() as http:
            deadline = time.monotonic() + DEADLINE
            while http.get(f"/api/sessions/{session_id}/status").json()["streaming"]:
                assert time.monotonic() < deadline, "the turn did not end"
                time.sleep(0.1)
            session = http.get(f"/api/sessions/{session_id}").json()
        assert session["kernel_id"] == kernel.id
        [result] = [m for m in session["messages"] if m["message"]["role"] == "tool"]
        assert result["message"]["content"] == "42"
    finally:
        kernel.close()


def test_the_agent_runs_code_in_the_kernel_of_the_cell_that_waits_for_it(live: Server) -> None:
    """The turn runs while the very cell that started it blocks (``session.run()``, then
    ``%%agent``): the code runs in a subshell of that kernel, beside the cell, with the
    notebook's variables."""
    kernel = ServerKernel(f"http://127.0.0.1:{live.port}", SERVER_TOKEN, notebook="nb/block.ipynb")
    try:
        prompt = "call `run_code` with " + json.dumps({"code": "print(answer + 1)"})
        out = kernel.execute(
            "import nbsession\nanswer = 41\n"
            "s = nbsession.connect().create_session(agent='jupyter', tools_approved=True)\n"
            f"result = s.run({prompt!r}, display=False)\n"
            "[ran] = result.tool_calls\nprint(result.stop_reason, ran.is_error, repr(ran.output))"
        ).check()
        assert out.stdout == "normal False '42'\n"

        prompt = "call `run_code` with " + json.dumps({"code": "print(answer * 2)"})
        kernel.execute("%load_ext nbsession").check()
        kernel.execute(f"%%agent jupyter --session {{s.id}}\n{prompt}").check()
        out = kernel.execute("[ran] = _agent.tool_calls\nprint(ran.is_error, repr(ran.output))")
        assert out.check().stdout == "False '82'\n"
    finally:
        kernel.close()
