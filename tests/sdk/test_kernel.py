"""The SDK inside a real kernel that a real Jupyter server started, driven as a front end does.

The kernel is created with the server's ``/api/kernels`` and its cells are sent over the
server's websocket channels; ``nbsession.connect()`` in it takes no arguments.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import nbsession
from tests.server.test_live_server import Server

from .conftest import SERVER_TOKEN
from .helpers import EXECUTE_TIMEOUT, Execution, ServerKernel


@pytest.fixture(scope="module")
def kernel(live: Server) -> Iterator[ServerKernel]:
    started = ServerKernel(f"http://127.0.0.1:{live.port}", SERVER_TOKEN)
    started.execute("import nbsession").check()
    yield started
    started.close()


def _cell(code: str) -> str:
    return textwrap.dedent(code).strip()


def test_connect_without_arguments_and_run(kernel: ServerKernel, sdk_home: Path) -> None:
    out = kernel.execute(
        _cell(
            """
            from nbsession.sdk.discovery import find_server
            print(find_server().source)
            client = nbsession.connect()
            session = client.create_session()
            print(session.run("what is 17*23"))
            """
        )
    ).check()
    source, answer = out.stdout.split("\n", 1)
    assert Path(source).parent == sdk_home / "runtime" and Path(source).name.startswith("jpserver-")
    assert "391" in answer


@pytest.fixture
def own_kernel(live: Server) -> Iterator[ServerKernel]:
    """A kernel for one test that runs a cell in the background: a cell that outlives its
    test (a failure) keeps its kernel and websocket busy, and must not take the next tests'."""
    started = ServerKernel(f"http://127.0.0.1:{live.port}", SERVER_TOKEN)
    yield started
    started.close()


def _in_background(kernel: ServerKernel, code: str) -> tuple[threading.Thread, list[Execution]]:
    done: list[Execution] = []
    thread = threading.Thread(target=lambda: done.append(kernel.execute(_cell(code))), daemon=True)
    thread.start()
    return thread, done


def _finished(thread: threading.Thread, done: list[Execution]) -> Execution:
    thread.join(timeout=EXECUTE_TIMEOUT)
    assert done, f"the cell did not finish within {EXECUTE_TIMEOUT} s"
    return done[0]


def _next_event(
    session: nbsession.Session, kind: str, since: int | None = None, timeout: float = 90.0
) -> nbsession.Event:
    """The session's first event of type ``kind`` (after ``since``), waited for ``timeout`` s."""

    async def find() -> nbsession.Event:
        async for event in session.aio.events(since):
            if event.type == kind:
                return event
        raise AssertionError(f"the session's events ended without a {kind} event")

    waiting = asyncio.run_coroutine_threadsafe(asyncio.wait_for(find(), timeout), session.loop)
    return waiting.result()


def test_run_blocks_until_approved_over_rest(
    own_kernel: ServerKernel, client: nbsession.Client, live: Server
) -> None:
    session = client.create_session()
    thread, done = _in_background(
        own_kernel,
        f"""
        import nbsession
        result = nbsession.connect().session({session.id!r}).run("list the files", display=False)
        print("tool output:", bool(result.tool_calls[0].output), result.stop_reason)
        """,
    )
    _next_event(session, "tool_call_confirmation")
    with live.client(SERVER_TOKEN) as http:
        reply = http.post(f"/api/sessions/{session.id}/resume", json={"confirmation": "approve"})
        assert reply.status_code == 200
    output = _finished(thread, done).check()
    assert output.stderr.count("waits for approval: shell") == 1  # a logged warning
    assert "tool output: True normal" in output.stdout


def test_interrupt_cancels_the_turn(own_kernel: ServerKernel, client: nbsession.Client) -> None:
    session = client.create_session()
    thread, done = _in_background(
        own_kernel,
        f'import nbsession; nbsession.connect().session({session.id!r}).run("list the files")',
    )
    _next_event(session, "tool_call_confirmation")
    own_kernel.interrupt()
    assert _finished(thread, done).ename == "KeyboardInterrupt"
    stopped = _next_event(session, "stream_stopped", since=0)
    assert stopped["reason"] == "canceled"
    assert session.status()["streaming"] is False


def test_typed_errors_in_the_kernel(kernel: ServerKernel) -> None:
    out = kernel.execute(
        _cell(
            """
            from nbsession.sdk.errors import InvalidRequest, SessionBusy, UnknownSession
            client = nbsession.connect()
            try:
                client.session("nope")
            except UnknownSession as e:
                print("unknown", e.code, e.status)
            s = client.create_session()
            try:
                s.run("hi", model="nosuchprovider/x")
            except InvalidRequest as e:
                print("bad model", e.code, e.status)
            turn = s.run("list the files", wait=False)
            try:
                s.run("again")
            except SessionBusy as e:
                print("busy", e.code, e.status)
            s.cancel()
            print(turn.result().stop_reason)
            """
        )
    ).check()
    lines = [line for line in out.stdout.splitlines() if not line.startswith(("[nbsession]", " "))]
    assert lines == [
        "unknown unknown_session 404",
        "bad model invalid_request 400",
        "busy session_busy 409",
        "canceled",
    ]


def test_local_in_the_kernel(kernel: ServerKernel) -> None:
    out = kernel.execute(
        _cell(
            """
            local = nbsession.local()
            s = local.create_session()
            print(s.run("what is 17*23"))
            print(len(local.sessions()))
            local.close()
            """
        )
    ).check()
    assert "391" in out.stdout and out.stdout.rstrip().endswith("1")


def test_local_in_a_script(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(
        _cell(
            f"""
            import threading
            import nbsession

            with nbsession.local(db_path={str(tmp_path / "s.db")!r}) as client:
                session = client.create_session()
                print(session.run("what is 17*23"))

                def approve():
                    for event in session.events():
                        if event.type == "tool_call_confirmation":
                            session.approve()
                            return
                threading.Thread(target=approve).start()
                print(session.run("list the files").tool_calls[0].name)
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "391" in done.stdout and "shell" in done.stdout
    assert done.stderr.count("waits for approval") == 1  # Python's default log handler
    with nbsession.local(db_path=tmp_path / "s.db") as again:  # the store kept both turns
        (info,) = again.sessions()
        assert info.num_messages >= 4
