"""A cancelled shell call ends even when a process that left its group still holds the pipe.

``setsid`` puts the child in a session of its own, so killing the shell's process group leaves
it running with the output pipe open: no end of file ever comes. The call must stop draining
after a bounded time. The stray is killed by the pid it recorded, never by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

import pytest

from nbsession.tools import ShellToolset, ToolContext

from .test_shell import alive, wait_for_file

BOUND = 10.0  # far above the drain limit, far below the stray's 30 s


async def test_cancelled_call_ends_although_a_setsid_child_holds_the_pipe(
    tmp_path: Path,
) -> None:
    [tool] = await ShellToolset().tools()
    ctx = ToolContext(session_id="s1", working_dir=str(tmp_path))
    # The stray records its own pid once it runs in its new session (recorded by the shell
    # right after the fork, it could still be in the group when the kill came), and through a
    # temporary name, so the reader never sees half of it.
    stray_cmd = "echo $$ > stray.tmp && mv stray.tmp stray.pid && exec sleep 30"
    cmd = f"setsid sh -c '{stray_cmd}' & sleep 30"
    call = asyncio.ensure_future(tool.call({"cmd": cmd}, ctx))
    stray = 0
    try:
        stray = int(await wait_for_file(tmp_path / "stray.pid"))
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(call, BOUND)  # a TimeoutError here: the call hung
        assert alive(stray)  # the pipe was still held when the call ended
    finally:
        if not call.done():
            call.cancel()
        if stray:
            with contextlib.suppress(ProcessLookupError):
                os.kill(stray, signal.SIGKILL)
