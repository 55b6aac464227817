"""Helpers for the turn tests: agent files, a manager per test, and reading turns.

Everything here is a plain function or class (fixtures must stay sync under pytest-jupyter);
the async helpers are awaited by the tests themselves. Every wait has a deadline, so a
regression that stalls a turn fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar

import yaml
from pydantic import BaseModel

from nbsession.eventlog import LogEntry
from nbsession.manager import ManagerConfig, SessionManager, TurnStream
from nbsession.session import Item, Message, Session
from nbsession.store import SQLiteStore
from nbsession.tools import FunctionTool, Tool, ToolContext, ToolResult, Toolset

DEFAULT_AGENT = "default"
DEADLINE = 10.0

# What opens every turn, before its user messages (docker-agent's order, SPEC 4).
OPENING = ["agent_info", "team_info", "toolset_info"]

LIST_FILES = "list the files"
MATH = "what is 17*23"

Event = dict[str, Any]
Answer = Callable[[Event], Awaitable[None]]


def user(*texts: str) -> list[dict[str, str]]:
    """Request messages, one user message per text."""
    return [{"role": "user", "content": text} for text in texts]


def write_agent(
    agents_dir: Path,
    name: str,
    *,
    model: str = "demo/offline",
    toolsets: Iterable[str] = ("shell", "think", "todo"),
    max_iterations: int | None = None,
    permissions: Mapping[str, list[str]] | None = None,
    models: Mapping[str, Mapping[str, Any]] | None = None,
) -> str:
    """Write a one-agent source (``root``) in docker-agent's YAML format; returns its id."""
    agent: dict[str, Any] = {
        "model": model,
        "description": f"test agent {name}",
        "instruction": "You are a test agent.",
        "toolsets": [{"type": toolset} for toolset in toolsets],
    }
    if max_iterations is not None:
        agent["max_iterations"] = max_iterations
    document: dict[str, Any] = {"version": "2", "agents": {"root": agent}}
    if models:
        document["models"] = {key: dict(value) for key, value in models.items()}
    if permissions:
        document["permissions"] = {key: list(value) for key, value in permissions.items()}
    agents_dir.mkdir(parents=True, exist_ok=True)
    (agents_dir / f"{name}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return name


def manager_config(tmp_path: Path, **overrides: Any) -> ManagerConfig:
    agents_dir = tmp_path / "agents"
    agents_dir.mkdir(exist_ok=True)
    return ManagerConfig(
        db_path=str(tmp_path / "s.db"),
        agents_dir=str(agents_dir),
        working_dir=str(tmp_path),
        **overrides,
    )


@asynccontextmanager
async def open_manager(tmp_path: Path, **overrides: Any) -> AsyncIterator[SessionManager]:
    """A started manager on ``tmp_path/s.db`` (agents in ``tmp_path/agents``), shut down after."""
    manager = SessionManager(manager_config(tmp_path, **overrides))
    await manager.start()
    try:
        yield manager
    finally:
        await asyncio.wait_for(manager.shutdown(timeout=DEADLINE), DEADLINE + 5)


@asynccontextmanager
async def open_reader(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    """A second, independent store on the manager's file: what is committed, nothing else."""
    store = SQLiteStore(str(tmp_path / "s.db"))
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def decode(entry: LogEntry) -> Event:
    """The event's JSON, with its log ``seq`` added."""
    event = json.loads(entry.data)
    event["seq"] = entry.seq
    return event


async def next_event(stream: Any, timeout: float = DEADLINE) -> Event:
    try:
        entry = await asyncio.wait_for(stream.__anext__(), timeout)
    except StopAsyncIteration:
        raise AssertionError("the stream ended early") from None
    return decode(entry)


async def read_until(
    stream: Any, type_: str, *, timeout: float = DEADLINE, answer: Answer | None = None
) -> list[Event]:
    """Events up to and including the first ``type_`` (the stream stays open)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    events: list[Event] = []
    while True:
        event = await next_event(stream, max(deadline - loop.time(), 0.001))
        events.append(event)
        if event["type"] == type_:
            return events
        if answer is not None and event["type"] == "tool_call_confirmation":
            await answer(event)


async def read_rest(
    stream: TurnStream, *, answer: Answer | None = None, timeout: float = DEADLINE
) -> list[Event]:
    """Every remaining event of a run stream, awaiting ``answer`` on each confirmation."""

    async def collect() -> list[Event]:
        events = []
        async for entry in stream:
            event = decode(entry)
            events.append(event)
            if answer is not None and event["type"] == "tool_call_confirmation":
                await answer(event)
        return events

    return await asyncio.wait_for(collect(), timeout)


def approver(manager: SessionManager, session_id: str, confirmation: str = "approve") -> Answer:
    async def answer(_event: Event) -> None:
        await manager.resume_session(session_id, confirmation)

    return answer


async def run_turn(
    manager: SessionManager,
    session_id: str,
    text: str,
    *,
    agent: str = DEFAULT_AGENT,
    model: str = "",
    confirmation: str = "approve",
) -> list[Event]:
    """Run a turn to its end, answering every confirmation with ``confirmation``."""
    stream = await manager.run_session(session_id, agent, "", user(text), model=model)
    return await read_rest(stream, answer=approver(manager, session_id, confirmation))


async def start_held(
    manager: SessionManager, session_id: str, text: str = LIST_FILES, agent: str = DEFAULT_AGENT
) -> tuple[TurnStream, list[Event]]:
    """Start a turn and read it up to its first ``tool_call_confirmation`` (it then waits)."""
    stream = await manager.run_session(session_id, agent, "", user(text))
    return stream, await read_until(stream, "tool_call_confirmation")


def types(events: Iterable[Event]) -> list[str]:
    return [event["type"] for event in events]


def of_type(events: Iterable[Event], type_: str) -> list[Event]:
    return [event for event in events if event["type"] == type_]


def index_of(events: list[Event], predicate: Callable[[Event], bool], start: int = 0) -> int:
    for index in range(start, len(events)):
        if predicate(events[index]):
            return index
    raise AssertionError("no matching event")


def collapsed(names: Iterable[str]) -> list[str]:
    """Runs of the same event type collapsed to one (deltas stream in many events)."""
    out: list[str] = []
    for name in names:
        if not out or out[-1] != name:
            out.append(name)
    return out


def choice_text(events: Iterable[Event]) -> str:
    return "".join(event["content"] for event in events if event["type"] == "agent_choice")


def chat(session: Session) -> list[Message]:
    return session.chat_messages()


def roles(session: Session) -> list[str]:
    return [message.message.role for message in session.chat_messages()]


def tool_result(session: Session, call_id: str) -> Message:
    [message] = [
        m
        for m in session.chat_messages()
        if m.message.role == "tool" and m.message.tool_call_id == call_id
    ]
    return message


class CommitTracker:
    """Records, for each item the manager's store commits, the log's last seq at that moment.

    An event announcing a message must have a seq greater than the one recorded when that
    message's commit returned: otherwise the event was sent before the commit finished.
    """

    def __init__(self, manager: SessionManager) -> None:
        self.commits: list[tuple[Item, int]] = []
        store = manager.store
        original = store.append_item

        async def append_item(session_id: str, item: Item, owner: str = "") -> int:
            position = await original(session_id, item, owner)
            self.commits.append((item, manager.last_event_seq(session_id)[0]))
            return position

        store.append_item = append_item  # type: ignore[method-assign]

    def seq_at_commit(self, predicate: Callable[[Message], bool]) -> int:
        matches = [
            seq
            for item, seq in self.commits
            if item.message is not None and predicate(item.message)
        ]
        assert len(matches) == 1, f"expected one matching commit, got {len(matches)}"
        return matches[0]


class AskingToolset(Toolset):
    """A test toolset whose read-only ``shell`` tool asks the user through ``ctx.elicit``."""

    type: ClassVar[str] = "asker"
    SCHEMA: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"color": {"type": "string"}},
        "required": ["color"],
    }

    def __init__(self, _options: Mapping[str, Any] | None = None, _env: Any = None) -> None:
        self._tool = FunctionTool(
            name="shell",
            description="Asks the user for a color.",
            args=_AskArgs,
            func=self._ask,
            read_only=True,
        )

    async def tools(self) -> list[Tool]:
        return [self._tool]

    async def _ask(self, args: _AskArgs, ctx: ToolContext) -> ToolResult:
        assert ctx.elicit is not None
        answer = await ctx.elicit("Which color?", self.SCHEMA)
        content = json.dumps(dict(answer.content) if answer.content is not None else None)
        return ToolResult(f"action={answer.action} content={content}")


class _AskArgs(BaseModel):
    cmd: str = ""
