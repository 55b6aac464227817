"""The shell tool against real subprocesses.

Process checks treat a zombie as gone: a killed grandchild is re-parented to PID 1, which in
some containers never reaps it, yet it is as dead as a process can be.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from nbsession.tools import ShellToolset, ToolContext, ToolResult

HANG_GUARD = 20.0


async def run_shell(
    arguments: dict, working_dir: Path | str, options: dict | None = None
) -> ToolResult:
    [tool] = await ShellToolset(options).tools()
    ctx = ToolContext(session_id="s1", working_dir=str(working_dir))
    # A bound far above any test's needs, so a regression that leaks children fails, not hangs.
    return await asyncio.wait_for(tool.call(arguments, ctx), HANG_GUARD)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] not in {"Z", "X"}


def read_if_exists(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


def real(path: Path) -> str:
    """The path ``pwd -P`` prints (tmp_path may sit behind a symlink)."""
    return str(path.resolve())


async def all_gone(pids: list[int], timeout: float = 10.0) -> bool:
    """Whether every pid dies within ``timeout``.

    A killed process closes its files (so the call returns) a moment before the kernel marks it
    a zombie; polling bridges that moment and is synchronisation, not a timing assertion.
    """
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def wait_for_file(path: Path, timeout: float = 10.0) -> str:
    """Wait (synchronisation, not a timing assertion) until the child has written ``path``."""
    deadline = time.monotonic() + timeout
    while (text := read_if_exists(path)) is None:
        assert time.monotonic() < deadline, f"{path} never appeared"
        await asyncio.sleep(0.01)
    return text


# The child writes its pids to a temporary name and renames it, so a reader never sees half.
SPAWN_CHILDREN = "sleep 30 & echo $$ $! > pids.tmp && mv pids.tmp pids; sleep 30"
SPAWN_LONG_CHILDREN = SPAWN_CHILDREN.replace("30", "60")


async def test_runs_in_session_working_dir(tmp_path: Path) -> None:
    result = await run_shell({"cmd": "pwd -P"}, tmp_path)
    assert result == ToolResult(real(tmp_path))


async def test_cwd_relative_to_working_dir_and_absolute(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    other = tmp_path / "other"
    other.mkdir()
    relative = await run_shell({"cmd": "pwd -P", "cwd": "sub"}, tmp_path)
    absolute = await run_shell({"cmd": "pwd -P", "cwd": str(other)}, tmp_path / "sub")
    assert relative.output == real(tmp_path / "sub")
    assert absolute.output == real(other)


async def test_combines_stdout_and_stderr(tmp_path: Path) -> None:
    result = await run_shell({"cmd": "echo out; echo err >&2"}, tmp_path)
    assert result == ToolResult("out\nerr")


async def test_empty_output_and_empty_stdin(tmp_path: Path) -> None:
    # stdin is /dev/null, so ``cat`` ends at once instead of waiting for input.
    assert await run_shell({"cmd": "cat"}, tmp_path) == ToolResult("(no output)")


async def test_non_zero_exit_is_an_error(tmp_path: Path) -> None:
    result = await run_shell({"cmd": "echo oops; exit 3"}, tmp_path)
    assert result == ToolResult("oops\n[exit code 3]", is_error=True)


async def test_timeout_kills_the_process_group(tmp_path: Path) -> None:
    result = await run_shell({"cmd": SPAWN_CHILDREN, "timeout": 1}, tmp_path)
    assert result == ToolResult("(no output)\n[timed out after 1 s]", is_error=True)
    pids = [int(pid) for pid in (tmp_path / "pids").read_text().split()]
    assert len(pids) == 2
    assert await all_gone(pids)


async def test_default_timeout_comes_from_options(tmp_path: Path) -> None:
    result = await run_shell({"cmd": "echo started; sleep 30"}, tmp_path, {"timeout": 1})
    assert result == ToolResult("started\n[timed out after 1 s]", is_error=True)


async def test_cancellation_kills_the_process_group(tmp_path: Path) -> None:
    task = asyncio.ensure_future(run_shell({"cmd": SPAWN_CHILDREN}, tmp_path))
    pids = [int(pid) for pid in (await wait_for_file(tmp_path / "pids")).split()]
    assert all(alive(pid) for pid in pids)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await all_gone(pids)


def children_of_this_process() -> set[int]:
    return {
        int(pid)
        for task in Path("/proc/self/task").iterdir()
        for pid in (task / "children").read_text().split()
    }


def wait_for_file_blocking(path: Path, timeout: float = 10.0) -> str:
    """``wait_for_file`` with the event loop held still, so no coroutine moves meanwhile."""
    deadline = time.monotonic() + timeout
    while (text := read_if_exists(path)) is None:
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)
    return text


async def test_cancel_while_the_process_starts_kills_the_group(tmp_path: Path) -> None:
    """A cancel can land after the fork but before asyncio has connected the pipes."""
    before = children_of_this_process()
    task = asyncio.ensure_future(run_shell({"cmd": SPAWN_LONG_CHILDREN}, tmp_path))
    # Step the loop one callback round at a time until the shell is forked, then hold it.
    for _ in range(100):
        if children_of_this_process() - before:
            break
        await asyncio.sleep(0)
    pids = [int(pid) for pid in wait_for_file_blocking(tmp_path / "pids").split()]
    task.cancel()
    # Bounded far above need: before the fix the cancel waited out the children's minute.
    done, _ = await asyncio.wait({task}, timeout=HANG_GUARD)
    assert task in done, "the cancel waited for the children instead of killing them"
    assert task.cancelled()
    assert await all_gone(pids)


async def test_output_is_truncated_and_the_rest_drained(tmp_path: Path) -> None:
    result = await run_shell(
        {"cmd": "yes | head -c 5000000", "timeout": 30}, tmp_path, {"max_output": 1000}
    )
    assert not result.is_error
    text, marker = result.output.rsplit("\n", 1)
    assert text == ("y\n" * 500).rstrip("\n")
    assert marker == "[output truncated: 4999000 more bytes]"


async def test_truncation_and_exit_code_both_reported(tmp_path: Path) -> None:
    result = await run_shell({"cmd": "printf 0123456789; exit 1"}, tmp_path, {"max_output": 4})
    assert result == ToolResult(
        "0123\n[output truncated: 6 more bytes]\n[exit code 1]", is_error=True
    )


async def test_env_option_is_merged_into_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBSESSION_INHERITED", "from-server")
    result = await run_shell(
        {"cmd": 'echo "$NBSESSION_INHERITED $NBSESSION_ADDED"'},
        tmp_path,
        {"env": {"NBSESSION_ADDED": "from-options"}},
    )
    assert result == ToolResult("from-server from-options")


async def test_missing_working_dir_is_an_error_result(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    result = await run_shell({"cmd": "true"}, missing)
    assert result.is_error
    assert str(missing) in result.output
    assert "No such file or directory" in result.output


async def test_command_alias_and_invalid_arguments(tmp_path: Path) -> None:
    assert await run_shell({"command": "echo hi"}, tmp_path) == ToolResult("hi")
    result = await run_shell({"cmd": ""}, tmp_path)
    assert result.is_error
    assert result.output.startswith("Invalid arguments for shell: cmd: ")


def test_invalid_options_raise_value_error() -> None:
    with pytest.raises(ValueError, match="timeout"):
        ShellToolset({"timeout": "soon"})
