"""The ``shell`` toolset: run a command with ``/bin/sh`` in the session's working directory.

The command is not sandboxed; the approval step (``nbsession.runtime.permissions``) is the
guard, which is why the tool is not read-only and why ``cwd`` may be any path. What this module
does guarantee is that a call cannot outlive its turn or exhaust the server's memory:

- each command runs in a new session (its own process group), so a timeout or a cancelled turn
  kills the shell *and* everything it started;
- output is read as it arrives and only the first ``max_output`` bytes are kept; the rest is
  counted and drained so the command never blocks on a full pipe. What is kept is also passed
  on as it comes (``ToolContext.output``), so a person watches a long build while it runs.
  stdout and stderr share one pipe, which keeps their order as the command wrote them.

A call returns when the shell has exited and its output pipe is closed. A background job that
redirects its output (``server > log 2>&1 &``) therefore outlives the call, while one that
still writes to the pipe is waited for, within the timeout.
"""

from __future__ import annotations

import asyncio
import codecs
import os
import signal
from collections.abc import Mapping
from contextlib import suppress
from typing import Any, ClassVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, PositiveInt

from .base import FixedToolset, Output, Tool, ToolContext, ToolResult

# How long a killed command's output is drained before its pipe is abandoned.
_KILL_DRAIN_SECONDS = 2.0
_READ_CHUNK = 64 * 1024


class ShellOptions(BaseModel):
    """The ``shell`` entry's options in an agent file; other keys belong to the config layer."""

    model_config = ConfigDict(extra="ignore")

    timeout: PositiveInt = Field(60, description="Default timeout of a command, in seconds")
    max_output: PositiveInt = Field(
        30_000, description="Output kept per command, in bytes (so at most that many characters)"
    )
    env: dict[str, str] = Field(
        default_factory=dict, description="Variables added to the server's environment"
    )


class ShellArgs(BaseModel):
    # Models used to other agents' bash tools often say "command"; accepting it saves a turn
    # (docker-agent does the same). The advertised schema names only "cmd".
    cmd: str = Field(
        min_length=1,
        validation_alias=AliasChoices("cmd", "command"),
        description="Shell command",
    )
    cwd: str = Field(
        "",
        description=(
            "Working directory, relative to the session's working directory or absolute "
            "(default: the session's working directory)"
        ),
    )
    timeout: PositiveInt | None = Field(
        None, description="Timeout in seconds (default: the toolset's timeout)"
    )


class ShellToolset(FixedToolset):
    """One tool, ``shell``. Options: ``timeout``, ``max_output``, ``env`` (see ShellOptions).

    Raises ``pydantic.ValidationError`` (a ``ValueError``) when an option has the wrong type.
    """

    type: ClassVar[str] = "shell"
    options_model = ShellOptions

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self._options = ShellOptions.model_validate(dict(options or {}))
        self._tools: list[Tool] = [
            self.function_tool(
                name="shell",
                description=(
                    "Run a command with /bin/sh in the session's working directory and return "
                    "its combined stdout and stderr. Stdin is empty, so the command must not "
                    "wait for input. The command is stopped after "
                    f"{self._options.timeout} s unless `timeout` says otherwise, and only the "
                    f"first {self._options.max_output} bytes of output are returned."
                ),
                args=ShellArgs,
                func=self._run,
                title="Shell",
            )
        ]

    async def _run(self, args: ShellArgs, ctx: ToolContext) -> ToolResult:
        return await run_command(
            args.cmd,
            cwd=_resolve_cwd(ctx.working_dir or os.getcwd(), args.cwd),
            env={**os.environ, **self._options.env},
            timeout=args.timeout or self._options.timeout,
            max_output=self._options.max_output,
            on_output=ctx.output,
        )


async def run_command(
    cmd: str,
    *,
    cwd: str,
    env: Mapping[str, str],
    timeout: float | None,
    max_output: int,
    on_output: Output | None = None,
) -> ToolResult:
    """Run ``cmd`` with ``/bin/sh`` as the module docstring says (own process group, bounded
    output, killed on timeout or cancel); a non-zero exit is an error result. ``on_output``
    gets the kept output as text while it comes."""
    output = _BoundedOutput(max_output, on_output)
    spawn = asyncio.ensure_future(
        asyncio.create_subprocess_exec(
            "/bin/sh",
            "-c",
            cmd,
            cwd=cwd,
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    )
    try:
        proc = await asyncio.shield(spawn)
    except OSError as exc:
        # The child reports a failed chdir here, so this also covers a missing directory
        # without a separate (blocking) check on the event loop.
        reason = exc.strerror or str(exc)
        return ToolResult(f"Could not run the command in {cwd}: {reason}", is_error=True)
    except asyncio.CancelledError:
        # The command may already run (and have started children) while asyncio still
        # connects its pipes; asyncio's own clean-up would kill only the shell, so finish
        # the start and kill the whole group.
        with suppress(OSError):
            await _kill(await spawn, output)
        raise

    try:
        returncode = await asyncio.wait_for(_collect(proc, output), timeout)
    except asyncio.TimeoutError:
        await _kill(proc, output)
        return ToolResult(output.render(f"[timed out after {timeout} s]"), is_error=True)
    except asyncio.CancelledError:
        await _kill(proc, output)
        raise
    if returncode != 0:
        return ToolResult(output.render(f"[exit code {returncode}]"), is_error=True)
    return ToolResult(output.render())


def _resolve_cwd(base: str, cwd: str) -> str:
    """``cwd`` relative to ``base``; an absolute ``cwd`` is kept as it is (``os.path.join``)."""
    return os.path.normpath(os.path.join(base, cwd))


class _BoundedOutput:
    """The first ``limit`` bytes of a command's output, and a count of the bytes dropped;
    ``on_output`` sees the kept bytes as text as they come (a character split between two
    reads is passed on whole, with the second)."""

    def __init__(self, limit: int, on_output: Output | None = None) -> None:
        self._limit = limit
        self._kept = bytearray()
        self._dropped = 0
        self._on_output = on_output
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def add(self, data: bytes) -> None:
        room = max(self._limit - len(self._kept), 0)
        kept = data[:room]
        self._kept += kept
        self._dropped += max(len(data) - room, 0)
        if kept and self._on_output is not None:
            text = self._decoder.decode(kept)
            if text:
                self._on_output(text)

    def render(self, status: str = "") -> str:
        """The output as text, with truncation and ``status`` notes on lines of their own."""
        text = self._kept.decode("utf-8", errors="replace").rstrip("\n") or "(no output)"
        notes = [f"[output truncated: {self._dropped} more bytes]"] if self._dropped else []
        if status:
            notes.append(status)
        return "\n".join([text, *notes])


async def _collect(proc: asyncio.subprocess.Process, output: _BoundedOutput) -> int:
    """Read the output pipe to its end, then reap the shell and return its exit code."""
    assert proc.stdout is not None  # stdout=PIPE
    while chunk := await proc.stdout.read(_READ_CHUNK):
        output.add(chunk)
    return await proc.wait()


async def _kill(proc: asyncio.subprocess.Process, output: _BoundedOutput) -> None:
    """Kill the command's whole process group, then drain and reap it.

    Draining matters: once the reader stops, asyncio pauses the pipe when its buffer fills and
    would never see the end of file that ``wait()`` needs after the kill.
    """
    with suppress(ProcessLookupError):  # the group may have finished on its own
        os.killpg(proc.pid, signal.SIGKILL)
    try:
        await asyncio.wait_for(_collect(proc, output), _KILL_DRAIN_SECONDS)
    except asyncio.TimeoutError:
        # A child that left the group (setsid) still holds the pipe, so no end of file comes:
        # stop reading it, which lets the reaped shell's wait() finish.
        pipe = proc._transport.get_pipe_transport(1)  # type: ignore[attr-defined]
        if pipe is not None:
            pipe.close()
        await proc.wait()
