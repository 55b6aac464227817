"""Crash safety (SPEC 8): SIGKILL a server mid-turn, then restart on the same SQLite file.

``crash_worker.py`` runs turns in a subprocess and prints each message once it is committed;
the test kills it with SIGKILL at a chosen moment (a confirmation pending, a tool call just
committed, a slow model mid-stream, a model call in flight, idle) and checks that

- the file passes ``PRAGMA integrity_check``;
- a fresh manager on the file lists every session and holds every message the worker saw
  committed, in order, with its content;
- every session is usable: the next turn runs normally, and each tool call the crash left
  without a result is first closed as interrupted, so no model request has a dangling call.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest
from pydantic_ai.messages import ModelRequest, ModelResponse, ToolCallPart, ToolReturnPart

from nbsession.manager import ManagerConfig, SessionManager
from nbsession.runtime.convert import to_model_messages
from nbsession.session import Message

WORKER = Path(__file__).with_name("crash_worker.py")
READ_DEADLINE = 30.0  # seconds for the worker to reach the kill point
TURN_DEADLINE = 10.0  # seconds for one turn after the restart
NEXT_PROMPT = "what is 17*23"


@dataclass
class Transcript:
    """What the worker reported before it died."""

    lines: list[str] = field(default_factory=list)
    sessions: list[str] = field(default_factory=list)
    committed: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    pending: tuple[str, str] | None = None  # (session id, tool call id)
    midstream: str | None = None  # the session of the slow stream
    killed_after: str = ""  # the line that made the test kill the worker

    @property
    def num_committed(self) -> int:
        return sum(len(records) for records in self.committed.values())

    def add(self, line: str) -> None:
        self.lines.append(line)
        kind, _, rest = line.partition(" ")
        if kind == "SESSION":
            self.sessions.append(rest)
        elif kind == "COMMITTED":
            session_id, message_id, record = rest.split(" ", 2)
            entry = {"id": message_id, **json.loads(record)}
            self.committed.setdefault(session_id, []).append(entry)
        elif kind == "PENDING":
            session_id, call_id = rest.split(" ")
            self.pending = (session_id, call_id)
        elif kind == "MIDSTREAM":
            self.midstream = rest


KillPoint = Callable[[Transcript, str], bool]


def after_commits(count: int) -> KillPoint:
    return lambda t, line: line.startswith("COMMITTED") and t.num_committed == count


KILL_POINTS: dict[str, KillPoint] = {
    # Right after the confirmation request: the turn of session 0 waits for an answer.
    "confirmation-pending": lambda t, line: line.startswith("PENDING"),
    # Session 2's `echo hi` call just committed; the worker is approving and running it.
    "tool-call-committed": after_commits(6),
    # Session 3's slow model streamed its first chunk of about sixty.
    "mid-stream": lambda t, line: line.startswith("MIDSTREAM"),
    # Session 1's think result just committed; the model call after it is in flight.
    "tool-result-committed": after_commits(13),
    # The script is over; only session 0's turn still waits.
    "idle": lambda t, line: line == "DONE",
}


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)


def _next_line(
    lines: queue.Queue[str | None], deadline: float, transcript: Transcript
) -> str | None:
    """The worker's next line, ``None`` at its end; fails the test at the deadline."""
    try:
        return lines.get(timeout=max(deadline - time.monotonic(), 0.0))
    except queue.Empty:
        pytest.fail(f"the worker said nothing new in time; it said: {transcript.lines[-5:]}")


def crash_worker(tmp_path: Path, db_path: Path, kill_point: KillPoint) -> Transcript:
    """Run the worker until ``kill_point`` holds, SIGKILL it, and return what it reported."""
    transcript = Transcript()
    with (tmp_path / "worker.err").open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, str(WORKER), str(db_path), str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=err,
            stdin=subprocess.DEVNULL,
            text=True,
            cwd=tmp_path,
        )
    assert proc.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + READ_DEADLINE
        while True:
            line = _next_line(lines, deadline, transcript)
            if line is None:
                err_text = (tmp_path / "worker.err").read_text()[-2000:]
                pytest.fail(f"the worker ended early: {transcript.lines[-5:]}\n{err_text}")
            transcript.add(line)
            if kill_point(transcript, line):
                transcript.killed_after = line
                break
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
        # Lines written before the kill are facts too: those messages were committed.
        deadline = time.monotonic() + 10
        while (line := _next_line(lines, deadline, transcript)) is not None:
            transcript.add(line)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=10)
        proc.stdout.close()
    return transcript


def integrity(db_path: Path) -> list[str]:
    with closing(sqlite3.connect(db_path)) as conn:
        return [row[0] for row in conn.execute("PRAGMA integrity_check")]


def dangling_calls(messages: list[Message]) -> list[str]:
    """Ids of the tool calls that have no tool message answering them, in call order."""
    answered = {m.message.tool_call_id for m in messages if m.message.role == "tool"}
    return [
        call.id for m in messages for call in m.message.tool_calls or [] if call.id not in answered
    ]


def assert_history_closed(history: list[ModelRequest | ModelResponse]) -> None:
    """Every tool call in a model request is answered by a later tool return."""
    returned: set[str] = set()
    for message in reversed(history):
        for part in message.parts:
            if isinstance(part, ToolReturnPart):
                returned.add(part.tool_call_id)
            elif isinstance(part, ToolCallPart):
                assert part.tool_call_id in returned, f"dangling call {part.tool_call_id}"


async def run_turn(manager: SessionManager, session_id: str) -> list[dict[str, Any]]:
    stream = await manager.run_session(
        session_id, "default", "", [{"role": "user", "content": NEXT_PROMPT}]
    )

    async def collect() -> list[dict[str, Any]]:
        return [json.loads(entry.data) async for entry in stream]

    return await asyncio.wait_for(collect(), TURN_DEADLINE)


async def restart_and_check(db_path: Path, work_dir: Path, transcript: Transcript) -> None:
    manager = SessionManager(ManagerConfig(db_path=str(db_path), working_dir=str(work_dir)))
    await manager.start()
    try:
        # (b) every session is listed and holds every message reported committed, in order.
        summaries = {s.id: s for s in await manager.get_sessions()}
        assert set(summaries) == set(transcript.sessions)
        before: dict[str, list[Message]] = {}
        for session_id in transcript.sessions:
            stored = (await manager.get_session(session_id)).chat_messages()
            reported = transcript.committed.get(session_id, [])
            assert summaries[session_id].num_messages == len(stored)
            assert len(stored) >= len(reported), f"session {session_id} lost messages"
            for record, message in zip(reported, stored[: len(reported)], strict=True):
                chat = message.message
                assert record == {
                    "id": message.id,
                    "role": chat.role,
                    "content": chat.content,
                    "tool_calls": [call.id for call in chat.tool_calls or []],
                    "tool_call_id": chat.tool_call_id,
                }
            before[session_id] = stored

        assert transcript.pending is not None
        pending_session, pending_call = transcript.pending
        assert dangling_calls(before[pending_session]) == [pending_call]
        if transcript.killed_after.startswith("MIDSTREAM"):
            # The stream cut by the crash committed nothing: the session ends with its prompt.
            cut = before[transcript.midstream]
            assert [m.message.role for m in cut] == ["user"]

        # (c) every session is usable: the next turn closes what the crash left open first.
        for session_id in transcript.sessions:
            events = await run_turn(manager, session_id)
            types = [event["type"] for event in events]
            assert "error" not in types, events
            assert events[-1]["type"] == "stream_stopped"
            assert events[-1]["reason"] == "normal"

            session = await manager.get_session(session_id)
            after = session.chat_messages()
            old, new = before[session_id], after[len(before[session_id]) :]
            assert [m.id for m in after[: len(old)]] == [m.id for m in old]
            interrupted = dangling_calls(old)
            closing_messages = new[: len(interrupted)]
            assert [m.message.tool_call_id for m in closing_messages] == interrupted
            for message in closing_messages:
                assert message.message.role == "tool"
                assert message.message.content.startswith("Interrupted")
                assert message.message.is_error
            user = new[len(interrupted)].message
            assert (user.role, user.content) == ("user", NEXT_PROMPT)
            assert "391" in new[-1].message.content
            assert dangling_calls(after) == []
            assert_history_closed(to_model_messages(session.messages, "instruction"))
    finally:
        await manager.shutdown()


@pytest.mark.parametrize("kill_point", list(KILL_POINTS))
def test_sigkill_mid_turn_loses_no_committed_message(tmp_path: Path, kill_point: str) -> None:
    db_path = tmp_path / "sessions.db"
    transcript = crash_worker(tmp_path, db_path, KILL_POINTS[kill_point])
    assert len(transcript.sessions) == 4

    # (a) the file is sound as SQLite sees it, before anything reopens it.
    assert integrity(db_path) == ["ok"]

    asyncio.run(restart_and_check(db_path, tmp_path, transcript))
    assert integrity(db_path) == ["ok"]
