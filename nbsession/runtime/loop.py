"""The agent loop: one session's live runtime, with docker-agent's turn semantics (SPEC 5).

A run is one asyncio task: a turn, then one full turn per queued follow-up. A turn streams a
model response, runs its tool calls (asking for approval when the policy says so), injects
steered messages before the next model call, and always ends with ``stream_stopped``. Every
message is committed through the ``SessionRecorder`` before the event that announces it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, cast

from pydantic_ai.direct import model_request_stream
from pydantic_ai.messages import (
    ModelResponse,
    PartDeltaEvent,
    PartStartEvent,
    TextPart,
    TextPartDelta,
    ThinkingPart,
    ThinkingPartDelta,
    ToolCallPart,
    ToolCallPartDelta,
)
from pydantic_ai.models import Model, ModelRequestParameters

from ..config.agents import AgentConfig, TeamConfig
from ..errors import (
    InvalidConfirmation,
    InvalidRequest,
    LeaseLost,
    NothingPending,
    QueueFull,
    SessionBusy,
    SessionNotRunning,
    UnknownSession,
)
from ..session import (
    Approval,
    ChatMessage,
    FunctionCall,
    Item,
    Message,
    Permissions,
    Session,
    ToolCall,
    new_id,
    utc_now,
)
from ..tools import build_toolsets
from ..tools.base import (
    ElicitationResult,
    Output,
    Tool,
    ToolContext,
    ToolDefinition,
    ToolResult,
    Toolset,
    ToolsetEnv,
)
from ..tools.handoff import HandoffArgs, handed_off, handoff_tool
from ..tools.jupyter import JupyterHost
from ..tools.transfer_task import START, TransferTaskArgs, member_task, transfer_task_tool
from ..tools.undo import StoredUndoHistory
from . import events
from .convert import History, from_model_response, model_tool_definitions, tool_call_of
from .models import (
    ModelChoice,
    ModelPool,
    ModelUnavailable,
    ResolvedModel,
    describe_failure,
    error_code,
    is_retryable,
    model_settings,
    resolve_ref,
    usage_facts,
)
from .permissions import decide, exact_pattern
from .recorder import BackgroundRecorder, SessionRecorder, SubSessionRecorder
from .title import fallback_title, generate_title
from .tool_output import OutputRelay

log = logging.getLogger("nbsession.runtime")

CONFIRMATIONS = ("approve", "approve-session", "approve-tool", "reject")
ELICITATION_ACTIONS = ("accept", "decline", "cancel")
REJECTED = "The user rejected the tool call."
INTERRUPTED = (
    "Interrupted: the tool call did not finish (the turn was cancelled or the server stopped)."
)
MAX_ITERATIONS_STOPPED = (
    "Execution stopped after reaching the configured max_iterations limit ({limit})."
)
MORE_ITERATIONS = 10  # granted by approving a max_iterations pause (docker-agent's step)
TITLE_OFF = "off"
# docker-agent's retry policy (pkg/runtime/fallback.go): per model, exponential backoff.
DEFAULT_RETRIES = 2
DEFAULT_COOLDOWN = 60.0
BACKOFF_BASE, BACKOFF_MAX = 0.2, 2.0

StopReason = Literal["normal", "error", "canceled"]
# The session is no longer this runtime's to write: deleted, or taken over by another server.
# A turn meeting either stops quietly (the recorder logged a takeover once).
_GONE = (UnknownSession, LeaseLost)
ActivityState = Literal["model", "running_tool", "waiting_for_approval", "waiting_for_input"]


class _TurnFailed(Exception):
    """A model or store failure that ends the turn after an ``error`` event was emitted."""


@dataclass
class Run:
    """One task of the runtime: a turn and the follow-up turns queued behind it.

    ``end_seq`` is the sequence number of its final ``stream_stopped``; a run stream reading
    the session's log stops there. ``before_end`` runs before that event (the manager gives
    the session's lease back there, so a client that saw the end may run the session on
    another server at once); from then on the run is ``closing`` and takes no follow-up.
    """

    task: asyncio.Task[None] | None = None
    started: bool = False  # its task has begun (a task cancelled before that never runs)
    before_end: Callable[[], Awaitable[None]] | None = None
    closing: bool = False
    end_seq: int | None = None
    reason: StopReason | None = None  # of its last stream_stopped
    done: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(frozen=True)
class Activity:
    """What a running turn is doing now, for ``/status``: calling the model, running a
    tool, waiting for a person to approve a tool call or to answer an elicitation."""

    state: ActivityState
    tool: str = ""
    since: datetime = field(default_factory=utc_now)


@dataclass
class _Confirmation:
    """A pause waiting for ``/resume``: a tool call's approval, or (``call`` is None) whether
    to go on after ``max_iterations``."""

    call: ToolCall | None
    future: asyncio.Future[tuple[str, str]]
    answered: bool = False


@dataclass
class _Elicitation:
    id: str
    future: asyncio.Future[ElicitationResult]


@dataclass
class _TurnState:
    text: str = ""
    reasoning: str = ""
    streamed: bool = False  # this model call has shown the user something


@dataclass
class _Opening:
    """What a turn's opening events decided: the model it runs on, or why it cannot run,
    and warnings told once the turn has started."""

    model: ResolvedModel | None
    failure: str = ""
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Cooldown:
    """A fallback model kept in use after the primary refused (docker-agent's cooldown)."""

    index: int
    until: float


class AgentRuntime:
    """The live runtime of one session, bound to an agent of an agent source."""

    def __init__(
        self,
        *,
        recorder: SessionRecorder,
        team: TeamConfig,
        agent_name: str,
        toolsets: Sequence[Toolset],
        tools: Sequence[Tool],
        steer_capacity: int = 8,
        followup_capacity: int = 8,
        title_model: str = "",
        models: ModelPool | None = None,
        data_dir: str = "",
        jupyter: JupyterHost | None = None,
    ) -> None:
        self.recorder = recorder
        self.team = team
        self.agent_name = team.agent(agent_name).name
        self.steer_capacity = steer_capacity
        self.followup_capacity = followup_capacity
        self.title_model = title_model
        self.data_dir = data_dir
        self.jupyter = jupyter
        self._toolsets = list(toolsets)
        self._builtins = self._builtin_tools()
        self._tools = {tool.definition.name: tool for tool in [*tools, *self._builtins]}
        self._delegate: AgentRuntime | None = None  # the sub-agent running a transfer_task
        self._handed_off = False  # a handoff changed the agent: re-resolve the model
        # A background agent has no one to ask: calls that would ask are refused.
        self.interactive = True
        self._steer: deque[Message] = deque()
        self._followups: deque[Message] = deque()
        self._own_models = models is None  # a runtime on its own closes its models
        self._models = models or ModelPool()
        self._model_calls = 0  # alloy members take turns across calls
        self._cooldown: _Cooldown | None = None
        self._history = History(team.agent(agent_name).instruction)
        self._confirmation: _Confirmation | None = None
        self._elicitation: _Elicitation | None = None
        self._cancelling = False
        self._ending = False  # the turn is failing: no further model call will read steers
        self._warned = False
        self._opening = _Opening(model=None)
        self.streaming = False
        self.run: Run | None = None
        self.turn_start_seq = 0
        """The log's last seq when the current (or last) turn began: its events come after it.
        A run's first turn begins at the seq its run stream reports (``X-Start-Seq``)."""
        self._activity: Activity | None = None

    @classmethod
    async def create(
        cls,
        recorder: SessionRecorder,
        team: TeamConfig,
        agent_name: str,
        *,
        data_dir: str = "",
        jupyter: JupyterHost | None = None,
        **options: Any,
    ) -> AgentRuntime:
        """Build the agent's toolsets and list the tools of those that need no start (the
        others, MCP servers, start at the beginning of the first turn, where their events go).

        ``data_dir`` is where toolsets keep state across sessions (the memory toolset);
        ``jupyter`` the hosting server's kernels and notebooks (the jupyter toolset);
        ``options`` are the capacities and ``title_model`` of ``__init__``.
        """
        agent = team.agent(agent_name)
        toolsets, tools = await _toolsets_of(agent, team, recorder, data_dir, jupyter)
        return cls(
            recorder=recorder,
            team=team,
            agent_name=agent.name,
            toolsets=toolsets,
            tools=tools,
            data_dir=data_dir,
            jupyter=jupyter,
            **options,
        )

    def _builtin_tools(self) -> list[Tool]:
        """Tools of the runtime itself, not of a toolset: delegation to the sub-agents and
        handing the conversation to another agent."""
        builtins = []
        if self.agent.sub_agents:
            builtins.append(transfer_task_tool(self._transfer))
        if self.agent.handoffs:
            builtins.append(handoff_tool(self._handoff))
        return builtins

    # -- facts --------------------------------------------------------------------------

    @property
    def agent(self) -> AgentConfig:
        return self.team.agent(self.agent_name)

    @property
    def session_id(self) -> str:
        return self.recorder.session_id

    @property
    def activity(self) -> Activity | None:
        """What the running turn is doing now; while a sub-agent works on a transferred task,
        what the sub-agent is doing (waiting for an approval, say)."""
        if self._delegate is not None and self._delegate.activity is not None:
            return self._delegate.activity
        return self._activity

    @property
    def tool_definitions(self) -> list[ToolDefinition]:
        return [tool.definition for tool in self._tools.values()]

    def current_model(self) -> ResolvedModel:
        """The override for this agent if the session has one, else the agent's model.

        An override that no longer resolves (the agent file changed since it was chosen)
        gives way to the agent's model; ``stale_override`` says why.
        """
        override = self._override()
        if override:
            try:
                return resolve_ref(self.team, override)
            except InvalidRequest:
                pass
        return resolve_ref(self.team, self.agent.model)

    def stale_override(self) -> str:
        """Why the stored override is not used, or ``""`` when it is fine (or absent)."""
        override = self._override()
        if not override:
            return ""
        try:
            resolve_ref(self.team, override)
        except InvalidRequest as exc:
            return (
                f"The model override {override!r} of agent {self.agent_name!r} no longer "
                f"resolves ({exc.message}); using the agent's model {self.agent.model!r}."
            )
        return ""

    def _override(self) -> str:
        return self.recorder.session.agent_model_overrides.get(self.agent_name, "")

    def queue_status(self) -> dict[str, dict[str, int]]:
        return {
            "steer": {"depth": len(self._steer), "capacity": self.steer_capacity},
            "followup": {"depth": len(self._followups), "capacity": self.followup_capacity},
        }

    def available_models(self) -> dict[str, Any]:
        """The models this agent can switch between, the current one marked (SPEC 2): the
        agent's model, the file's models, the models this session used before, and the
        current override. A stored override that no longer resolves is not offered; the
        agent's model is current then (the next turn warns about it)."""
        default_ref = self.agent.model
        current_ref = "" if self.stale_override() else self._override()
        current_ref = current_ref or default_ref
        refs = dict.fromkeys([default_ref, *self.team.model_refs()])
        refs.update(dict.fromkeys(self.recorder.session.custom_models_used))
        refs[current_ref] = None
        models = []
        for ref in refs:
            try:
                resolved = resolve_ref(self.team, ref)
            except InvalidRequest:
                continue  # a model used before whose provider this file no longer knows
            models.append(
                {
                    "ref": ref,
                    "name": ref,
                    "provider": ",".join(c.config.provider for c in resolved.choices),
                    "model": ",".join(c.config.model for c in resolved.choices),
                    "is_default": ref == default_ref,
                    "is_current": ref == current_ref,
                }
            )
        return {"agent": self.agent_name, "current_model_ref": current_ref, "models": models}

    # -- control ------------------------------------------------------------------------

    async def set_model(self, ref: str) -> str:
        """Set (or with ``""`` clear) this agent's model override; persisted before applied."""
        session = self.recorder.session
        overrides = dict(session.agent_model_overrides)
        fields: dict[str, Any] = {}
        if ref:
            ref = resolve_ref(self.team, ref).ref
            overrides[self.agent_name] = ref
            if ref not in self.team.model_refs() and ref not in session.custom_models_used:
                fields["custom_models_used"] = [*session.custom_models_used, ref]
        else:
            overrides.pop(self.agent_name, None)
        await self.recorder.update(agent_model_overrides=overrides, **fields)
        return overrides.get(self.agent_name, "")

    async def start(
        self,
        messages: Sequence[Message],
        before_end: Callable[[], Awaitable[None]] | None = None,
    ) -> Run:
        """Commit the user messages and start a run (``before_end``: see ``Run``; it is not
        called when this raises).

        The caller has checked that the runtime is idle; ``streaming`` is set before the first
        await so a concurrent caller sees the session busy.
        """
        self.streaming = True
        self.turn_start_seq = self.recorder.log.last_seq
        self._cancelling = self._ending = False
        run = Run(before_end=before_end)
        self.run = run
        before = len(self.recorder.session.messages)
        try:
            await self.close_dangling_tool_calls()
            self._opening = self._open_turn()
            for message in messages:
                await self._append_user(message)
        except BaseException:
            if len(self.recorder.session.messages) > before:  # announced: close the turn
                self._end_unstarted(run)
            else:
                self._finish(run, None)
            raise
        run.task = asyncio.get_running_loop().create_task(self._run(run))
        return run

    def steer(self, messages: Sequence[Message]) -> None:
        """Queue messages for the running turn's next model call.

        Refused once the turn is being cancelled or is failing: it has no next model call,
        and a steer accepted then would surface in some later, unrelated turn.
        """
        if not self.streaming or self._cancelling or self._ending:
            raise SessionNotRunning(self.session_id, "has no running turn to steer")
        if self._delegate is not None:  # the sub-agent working on a transferred task reads it
            self._delegate.steer(messages)
            return
        if len(self._steer) + len(messages) > self.steer_capacity:
            raise QueueFull("steer", self.steer_capacity)
        self._steer.extend(messages)

    def enqueue_follow_ups(self, messages: Sequence[Message]) -> None:
        """Queue turns behind the running one; the caller waits out a ``closing`` run first."""
        if self.run is not None and self.run.closing and not self.run.done.is_set():
            raise SessionBusy(self.session_id)
        if len(self._followups) + len(messages) > self.followup_capacity:
            raise QueueFull("follow-up", self.followup_capacity)
        self._followups.extend(messages)

    def cancel(self) -> bool:
        """Cancel the running task; False when there is nothing to cancel.

        A run whose task has not begun (still committing its messages, or just created) is
        marked instead: its task ends the turn as cancelled as soon as it starts.
        """
        run = self.run
        if not self.streaming or run is None:
            return False
        if not self._cancelling and not run.closing:  # a closing run has no turn left
            self._cancelling = True
            if run.task is not None and run.started:
                run.task.cancel()
        return True

    async def resume(self, confirmation: str, reason: str = "", tool_name: str = "") -> None:
        """Answer the pending tool-call confirmation (SPEC 5); persisted answers first.

        While a sub-agent runs (``transfer_task``), the pending confirmation is its own.
        """
        if self._delegate is not None:
            await self._delegate.resume(confirmation, reason, tool_name)
            return
        if confirmation not in CONFIRMATIONS:
            expected = ", ".join(CONFIRMATIONS)
            raise InvalidConfirmation(
                f"Unknown confirmation {confirmation!r}; expected one of {expected}.",
                field="confirmation",
            )
        pending = self._confirmation
        if pending is None or pending.answered or pending.future.done():
            raise NothingPending("No tool call is waiting for a confirmation.")
        pending_tool = pending.call.function.name if pending.call is not None else ""
        if (
            pending_tool
            and confirmation == "approve-tool"
            and tool_name
            and tool_name != pending_tool
        ):
            # One click allows what the prompt showed, never a pattern or another tool.
            raise InvalidRequest(
                f"tool_name {tool_name!r} is not the pending call's tool {pending_tool!r}.",
                field="tool_name",
            )
        pending.answered = True
        try:
            if pending.call is None:  # a max_iterations pause grants nothing lasting
                pass
            elif confirmation == "approve-session":
                await self.recorder.update(tools_approved=True)
            elif confirmation == "approve-tool":
                await self._allow_tool(pending_tool)
        except BaseException:
            pending.answered = False
            raise
        if pending.future.done():  # cancelled while we persisted: the grant stands
            return
        pending.future.set_result((confirmation, reason))
        self.recorder.emit(events.authorization_event(self.agent_name, confirmation))

    def resume_elicitation(
        self, action: str, content: Any = None, elicitation_id: str = ""
    ) -> None:
        if self._delegate is not None:
            self._delegate.resume_elicitation(action, content, elicitation_id)
            return
        if action not in ELICITATION_ACTIONS:
            raise InvalidRequest(
                f"Unknown action {action!r}; expected accept, decline or cancel.", field="action"
            )
        if content is not None and not isinstance(content, dict):
            raise InvalidRequest("content must be a JSON object.", field="content")
        pending = self._elicitation
        if pending is None or pending.future.done():
            raise NothingPending("No elicitation is waiting for an answer.")
        if elicitation_id and elicitation_id != pending.id:
            raise NothingPending(f"Elicitation {elicitation_id!r} is not the one pending.")
        pending.future.set_result(ElicitationResult(action=action, content=content))  # type: ignore[arg-type]
        self.recorder.emit(events.authorization_event(self.agent_name, action))

    def history_changed(self) -> None:
        """Items already seen by the model were replaced: rebuild its view before the next call."""
        self._history.forget()

    async def close(self) -> None:
        """Release the models' HTTP clients and the toolsets (processes, connections)."""
        try:
            if self._own_models:
                await self._models.aclose()
        except Exception:
            log.exception("closing the model clients of session %s failed", self.session_id)
        for toolset in self._toolsets:
            try:
                await toolset.close()
            except Exception:
                log.exception("closing toolset %s failed", toolset.type)

    async def close_dangling_tool_calls(self) -> None:
        """Answer tool calls left without a result (a crash mid-turn) as interrupted (SPEC 8)."""
        answered: set[str] = set()
        asked: list[ToolCall] = []
        for message in self.recorder.session.chat_messages():
            chat = message.message
            if chat.role == "tool" and chat.tool_call_id:
                answered.add(chat.tool_call_id)
            asked.extend(chat.tool_calls or [])
        for call in asked:
            if call.id not in answered:
                await self._commit_tool_result(call, ToolResult(INTERRUPTED, is_error=True))

    # -- the run ------------------------------------------------------------------------

    async def _run(self, run: Run) -> None:
        run.started = True
        if self._cancelling:  # cancelled before the task began
            await self._close(run)
            self._end_unstarted(run)
            return
        reason: StopReason
        try:
            while True:
                reason = await self._turn()
                if reason == "canceled" or self._cancelling or not self._followups:
                    break
                self.recorder.emit(events.stream_stopped(self.session_id, self.agent_name, reason))
                self.turn_start_seq = self.recorder.log.last_seq
                self._opening = self._open_turn()
                await self._append_user(self._followups.popleft())
        except (asyncio.CancelledError, *_GONE):  # between two turns: the last one has ended
            reason = "canceled"
        except Exception:
            log.exception("run of session %s failed", self.session_id)
            reason = "error"
        await self._close(run)
        self._end(run, reason)

    async def _close(self, run: Run) -> None:
        """Mark the run ``closing`` and await its ``before_end`` to the end, cancelled or not
        (follow-ups queued before this point run in it; later ones wait for its end)."""
        run.closing = True
        if run.before_end is None:
            return
        closing = asyncio.ensure_future(run.before_end())
        while not closing.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(closing)
        if not closing.cancelled() and closing.exception() is not None:
            log.error("ending the run of session %s: %s", self.session_id, closing.exception())

    def _end(self, run: Run, reason: StopReason) -> None:
        """Emit the run's last ``stream_stopped`` and finish the run there.

        Also after a failure between two turns, whose ``stream_stopped`` a run stream may have
        read already: it waits for this one and would otherwise never end.
        """
        entry = self.recorder.emit(events.stream_stopped(self.session_id, self.agent_name, reason))
        run.reason = reason
        self._finish(run, entry.seq if entry else None)

    def _end_unstarted(self, run: Run) -> None:
        """End, as cancelled, a run whose user messages were announced before its turn began."""
        self.recorder.emit(events.stream_started(self.session_id, self.agent_name))
        self._end(run, "canceled")

    def _finish(self, run: Run, end_seq: int | None) -> None:
        if self._cancelling:  # a cancel stops what was queued behind the turn too
            self._followups.clear()
        self._steer.clear()  # refused while ending, so nothing accepted is lost here
        self.streaming = False
        self._activity = None
        self._cancelling = self._ending = False
        run.end_seq = end_seq if end_seq is not None else self.recorder.log.last_seq
        run.done.set()

    def _open_turn(self) -> _Opening:
        """Emit what opens a turn, before its user messages (docker-agent's order):
        ``agent_info``, ``team_info``, ``toolset_info``."""
        agent = self.agent
        opening = _Opening(model=None)
        stale = self.stale_override()
        if stale:
            opening.warnings.append(stale)
        try:
            opening.model = self.current_model()
            label = opening.model.label
        except InvalidRequest as exc:
            opening.failure, label = exc.message, agent.model
        sid = self.session_id
        emit = self.recorder.emit
        emit(self._agent_info(label))
        emit(events.team_info(sid, self._team_details(), agent.name))
        loading = any(not toolset.started for toolset in self._toolsets)
        emit(events.toolset_info(agent.name, len(self._tools), loading))
        return opening

    def _agent_info(self, label: str = "") -> events.Event:
        """``agent_info`` for this agent; ``label`` names its model (the current one if "")."""
        agent = self.agent
        if not label:
            try:
                label = self.current_model().label
            except InvalidRequest:
                label = agent.model
        return events.agent_info(agent.name, label, agent.description, agent.welcome_message)

    def _team_details(self) -> list[dict[str, Any]]:
        """``team_info.available_agents``: each agent's description, model and commands."""
        details = []
        for agent in self.team.agents.values():
            try:
                choice = resolve_ref(self.team, agent.model).pick(0)
                provider, model = choice.config.provider, choice.config.model
            except InvalidRequest:
                provider, model = "", agent.model
            details.append(
                {
                    "name": agent.name,
                    "description": agent.description,
                    "provider": provider,
                    "model": model,
                    "commands": {name: c.to_json() for name, c in agent.commands.items()},
                }
            )
        return details

    async def _turn(self) -> StopReason:
        agent = self.agent
        opening, self._opening = self._opening, _Opening(model=None)
        self.recorder.emit(events.stream_started(self.session_id, agent.name))
        for text in opening.warnings:
            self.recorder.emit(events.warning(agent.name, text))
        if not self._warned:  # what the agent file's loader ignored, told once per runtime
            self._warned = True
            for text in self.team.warnings:
                self.recorder.emit(events.warning(agent.name, text))
        resolved = opening.model
        if resolved is None:
            await self._fail(opening.failure or "The agent has no usable model.", "model_error")
            return "error"
        title_task = self._start_title(resolved)
        state = _TurnState()
        try:
            await self._start_toolsets()
            await self._steps(resolved, state, title_task)
            return "normal"
        except asyncio.CancelledError:
            if title_task is not None:
                title_task.cancel()
            await self._after_cancel(state)
            return "canceled"
        except _TurnFailed:
            if title_task is not None:
                title_task.cancel()
            return "error"
        except _GONE:  # deleted or taken over while the turn ran: nothing left to do
            if title_task is not None:
                title_task.cancel()
            return "canceled"
        except Exception as exc:  # a store failure (disk full...): end this turn, not the run
            log.exception("turn of session %s failed", self.session_id)
            if title_task is not None:
                title_task.cancel()
            await self._fail(f"The turn failed: {exc}")
            return "error"

    async def _steps(
        self,
        resolved: ResolvedModel,
        state: _TurnState,
        title_task: asyncio.Task[None] | None = None,
    ) -> None:
        """Call the model and run its tool calls until it answers without calling a tool
        (and no steered message waits), pausing at ``max_iterations``."""
        iterations = 0
        limit = self.recorder.session.max_iterations or self.agent.max_iterations
        while True:
            await self._drain_steer()
            if limit and iterations >= limit:
                if not await self._continue_after(limit):
                    break
                limit = iterations + MORE_ITERATIONS
            iterations += 1
            if self._handed_off:  # the agent handed to runs on its own model and tools
                self._handed_off = False
                resolved = self.current_model()
                await self._start_toolsets()
            calls = await self._model_turn(resolved, state)
            if not calls:
                if title_task is not None:  # a steer may arrive while the title is saved
                    await title_task
                    title_task = None
                if self._steer:
                    continue
                break
            for call in calls:
                await self._execute(call)
        if title_task is not None:
            await title_task

    async def _transfer(self, args: TransferTaskArgs, ctx: ToolContext) -> ToolResult:
        """Run ``transfer_task``: the sub-agent works in a sub-session of this session, its
        events in this session's log between two ``agent_switching`` events, and its last
        answer becomes the call's result (docker-agent's task transfer). Steered messages
        reach it while it works."""
        refusal = self._not_a_member(args.agent)
        if refusal is not None:
            return refusal
        parent = self.recorder.session
        sub, position = await self._open_sub_session(args, "Transferred task")
        recorder = SubSessionRecorder(sub, self.recorder, position)
        delegate = await self._member_runtime(recorder, args.agent)
        emit = self.recorder.emit
        emit(events.agent_switching(True, self.agent_name, delegate.agent_name))
        emit(delegate._agent_info())
        self._delegate = delegate
        try:
            return await delegate._work()
        finally:
            self._delegate = None
            self._steer.extend(delegate._steer)  # steered after its last model call: ours now
            await self._close_member(delegate, position)
            emit(events.agent_switching(False, delegate.agent_name, self.agent_name))
            emit(self._agent_info())
            granted: dict[str, Any] = {}
            if sub.tools_approved and not parent.tools_approved:
                granted["tools_approved"] = True
            if sub.permissions != parent.permissions:
                granted["permissions"] = sub.permissions
            if granted:  # what the user allowed inside the sub-agent holds for the session
                await self.recorder.update(**granted)

    async def _run_background(
        self, agent: str, task: str, expected_output: str, on_text: Output
    ) -> ToolResult:
        """Run a sub-agent for the ``background_agents`` toolset: a sub-session stored like a
        transferred task's, without events in this session's stream and without anyone to
        ask (docker-agent's background agents)."""
        refusal = self._not_a_member(agent)
        if refusal is not None:
            return refusal
        args = TransferTaskArgs(agent=agent, task=task, expected_output=expected_output)
        sub, position = await self._open_sub_session(args, "Background agent task")
        recorder = BackgroundRecorder(sub, self.recorder, position, on_text)
        delegate = await self._member_runtime(recorder, agent)
        delegate.interactive = False
        try:
            return await delegate._work()
        finally:
            await self._close_member(delegate, position)

    def _not_a_member(self, agent: str) -> ToolResult | None:
        if agent in self.agent.sub_agents:
            return None
        names = ", ".join(self.agent.sub_agents)
        return ToolResult(
            f"Agent {agent!r} is not in the sub-agents list of {self.agent_name!r} ({names}).",
            is_error=True,
        )

    async def _open_sub_session(self, args: TransferTaskArgs, title: str) -> tuple[Session, int]:
        """Create and commit the sub-session a member works in (docker-agent's shape: the task
        as a system message, then an implicit user message); returns it and its position."""
        parent = self.recorder.session
        member = self.team.agent(args.agent)
        now = utc_now().isoformat()
        sub = Session(
            title=title,
            working_dir=parent.working_dir,
            kernel_id=parent.kernel_id,
            notebook_path=parent.notebook_path,
            tools_approved=parent.tools_approved,
            permissions=parent.permissions,
            max_iterations=member.max_iterations,
            messages=[
                Item(
                    message=Message(
                        agent_name=member.name,
                        message=ChatMessage(
                            role="system", content=member_task(args), created_at=now
                        ),
                    )
                ),
                Item(
                    message=Message(
                        agent_name=member.name,
                        implicit=True,
                        message=ChatMessage(role="user", content=START, created_at=now),
                    )
                ),
            ],
        )
        # Stored now and rewritten at each of its messages: a crash keeps what it did.
        position = await self.recorder.append(Item(sub_session=sub))
        return sub, position

    async def _member_runtime(self, recorder: SubSessionRecorder, member: str) -> AgentRuntime:
        return await AgentRuntime.create(
            recorder,
            self.team,
            member,
            data_dir=self.data_dir,
            jupyter=self.jupyter,
            models=self._models,
            title_model=TITLE_OFF,
            steer_capacity=self.steer_capacity,
        )

    async def _close_member(self, delegate: AgentRuntime, position: int) -> None:
        """Release the member's toolsets and store its sub-session with its cost."""
        await delegate.close()
        item = self.recorder.session.messages[position]
        item.cost = delegate.recorder.session.cost or None
        await self.recorder.item_changed(position)

    async def _handoff(self, args: HandoffArgs, ctx: ToolContext) -> ToolResult:
        """Run ``handoff``: this session goes on with another agent from the next model call
        (its instruction, tools and model), as docker-agent's in-place agent switch."""
        if args.agent not in self.agent.handoffs:
            names = ", ".join(self.agent.handoffs)
            return ToolResult(
                f"Agent {self.agent_name} cannot hand off to {args.agent}: target agent not in "
                f"handoffs list. Available agent IDs are: {names}",
                is_error=True,
            )
        previous = self.agent_name
        await self._become(args.agent)
        return ToolResult(handed_off(previous))

    async def _become(self, agent_name: str) -> None:
        """Be another agent of the team: its toolsets replace this one's (closed), its
        instruction heads the history, and ``_steps`` picks its model for the next call."""
        agent = self.team.agent(agent_name)
        toolsets, tools = await _toolsets_of(
            agent, self.team, self.recorder, self.data_dir, self.jupyter
        )
        previous, self._toolsets = self._toolsets, toolsets
        self.agent_name = agent.name
        self._builtins = self._builtin_tools()
        self._tools = {tool.definition.name: tool for tool in [*tools, *self._builtins]}
        self._history = History(agent.instruction)
        self._handed_off = True
        for toolset in previous:
            try:
                await toolset.close()
            except Exception:
                log.exception("closing toolset %s failed", toolset.type)
        self.recorder.emit(self._agent_info())

    async def _work(self) -> ToolResult:
        """A delegated task's turn, on this (sub-agent's) runtime: its answer, or why not."""
        try:
            resolved = self.current_model()
        except InvalidRequest as exc:
            return ToolResult(f"Agent {self.agent_name!r} cannot run: {exc.message}", is_error=True)
        state = _TurnState()
        self.streaming = True  # steered messages are taken while it works
        try:
            await self._start_toolsets()
            await self._steps(resolved, state)
        except asyncio.CancelledError:
            await self._after_cancel(state)
            raise
        except _TurnFailed:
            errors = [item.error for item in self.recorder.session.messages if item.error]
            reason = errors[-1] if errors else "its turn failed"
            return ToolResult(f"Agent {self.agent_name!r} failed: {reason}", is_error=True)
        finally:
            self.streaming = False
        said = [m.message for m in self.recorder.session.chat_messages()]
        answers = [chat.content for chat in said if chat.role == "assistant"]
        return ToolResult(answers[-1] if answers else "")

    async def _continue_after(self, limit: int) -> bool:
        """``max_iterations`` reached: pause until ``/resume`` (SPEC 5). Approving goes on for
        ``MORE_ITERATIONS`` more model calls; rejecting ends the turn with docker-agent's stop
        message, committed as the agent's answer."""
        if self.interactive:
            future: asyncio.Future[tuple[str, str]] = asyncio.get_running_loop().create_future()
            self._confirmation = _Confirmation(call=None, future=future)
            self.recorder.emit(events.max_iterations_reached(self.agent_name, limit))
            try:
                with self._doing("waiting_for_approval", ""):
                    answer, _reason = await future
            finally:
                self._confirmation = None
            if answer != "reject":
                return True
        text = MAX_ITERATIONS_STOPPED.format(limit=limit)
        chat = ChatMessage(role="assistant", content=text, created_at=utc_now().isoformat())
        sid, name = self.session_id, self.agent_name
        await self.recorder.append_message(
            Message(agent_name=name, message=chat),
            announce=lambda _: events.agent_choice(sid, name, text),
        )
        return False

    async def _fail(self, message: str, code: str = "") -> None:
        """Record why the turn failed in the session, for people (models never see it), then
        emit the ``error`` event; when the store is what failed, the event still goes out."""
        self._ending = True
        event = events.error(self.session_id, self.agent_name, message, code)
        try:
            await self.recorder.append(Item(error=message), announce=lambda _: event)
        except _GONE:
            pass  # deleted or taken over meanwhile: not ours to record in
        except Exception as exc:
            log.warning("recording the failure of session %s failed: %s", self.session_id, exc)
            self.recorder.emit(event)

    async def _after_cancel(self, state: _TurnState) -> None:
        """Keep what the user saw and leave no call unanswered, even when cancelled."""
        try:
            if state.text or state.reasoning:
                chat = ChatMessage(
                    role="assistant",
                    content=state.text,
                    reasoning_content=state.reasoning or None,
                    created_at=utc_now().isoformat(),
                )
                await self.recorder.append_message(
                    Message(agent_name=self.agent_name, message=chat)
                )
            await self.close_dangling_tool_calls()
        except _GONE:
            pass  # deleted or taken over: that is why the turn stopped
        except Exception:
            log.exception("saving the cancelled turn of session %s failed", self.session_id)

    async def _model_turn(self, resolved: ResolvedModel, state: _TurnState) -> list[ToolCall]:
        """Get one model response, commit it, and return its tool calls.

        docker-agent's policy: the turn's model (an alloy's next member), then the agent's
        ``fallback`` models in order; each gets ``1 + retries`` attempts for failures worth
        retrying, other failures move on at once (``model_fallback``). A call that already
        showed the user part of an answer is not replayed on another model: the turn fails.
        """
        chain = [resolved.pick(self._model_calls)]
        self._model_calls += 1
        fallback = self.agent.fallback
        if fallback is not None:
            chain += [resolve_ref(self.team, ref).pick(0) for ref in fallback.models]
        retries = fallback.retries if fallback and fallback.retries else DEFAULT_RETRIES
        attempts = 1 + max(retries, 0)
        first = self._cooldown_start(len(chain))
        failure: tuple[ModelChoice, Exception] | None = None
        primary_refused = False
        for index in range(first, len(chain)):
            choice = chain[index]
            if failure is not None:
                self.recorder.emit(
                    events.model_fallback(
                        self.agent_name,
                        failure[0].label,
                        choice.label,
                        describe_failure(*failure),
                        1,
                        attempts,
                    )
                )
            for attempt in range(attempts):
                if attempt:
                    await asyncio.sleep(_backoff(attempt - 1))
                try:
                    response = await self._stream_response(choice, state)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("model %s failed in %s: %s", choice.label, self.session_id, exc)
                    failure = (choice, exc)
                    if state.streamed:
                        break
                    if isinstance(exc, ModelUnavailable) or not is_retryable(exc):
                        primary_refused = primary_refused or index == 0
                        break
                    continue
                self._settle_cooldown(index, primary_refused)
                # Cleared first: once the commit starts, a cancel must not save it twice.
                state.text = state.reasoning = ""
                return await self._commit_response(response, choice)
            if state.streamed:
                break
        assert failure is not None
        await self._fail(describe_failure(*failure), error_code(failure[1]))
        raise _TurnFailed from failure[1]

    async def _stream_response(self, choice: ModelChoice, state: _TurnState) -> ModelResponse:
        """One streamed request to one model, relayed to the session's log as it comes."""
        state.text = state.reasoning = ""
        state.streamed = False
        self._activity = Activity("model")
        model = await self._model(choice)
        history = self._history.sync(self.recorder.session.messages)
        params = ModelRequestParameters(
            function_tools=model_tool_definitions(self.tool_definitions),
            allow_text_output=True,
        )
        calls: dict[int, ToolCallPart] = {}
        async with model_request_stream(
            model,
            history,
            model_settings=model_settings(choice),
            model_request_parameters=params,
        ) as stream:
            async for event in stream:
                self._relay(event, state, calls)
            return stream.get()

    def _cooldown_start(self, chain_length: int) -> int:
        """Where the chain starts: a fallback kept in use after the primary refused."""
        cooldown = self._cooldown
        if cooldown is None or time.monotonic() >= cooldown.until:
            self._cooldown = None
            return 0
        return cooldown.index if cooldown.index < chain_length else 0

    def _settle_cooldown(self, index: int, primary_refused: bool) -> None:
        if index == 0:
            self._cooldown = None
        elif primary_refused:
            fallback = self.agent.fallback
            seconds = fallback.cooldown if fallback and fallback.cooldown else DEFAULT_COOLDOWN
            self._cooldown = _Cooldown(index=index, until=time.monotonic() + seconds)

    def _relay(self, event: object, state: _TurnState, calls: dict[int, ToolCallPart]) -> None:
        """Forward one streamed part event to the session's log as docker-agent events (text
        deltas merged by the recorder, see ``deltas.py``)."""
        sid, name, emit_delta = self.session_id, self.agent_name, self.recorder.emit_delta
        if isinstance(event, PartStartEvent):
            part = event.part
            state.streamed = True
            if isinstance(part, TextPart) and part.content:
                state.text += part.content
                emit_delta(events.agent_choice(sid, name, part.content))
            elif isinstance(part, ThinkingPart) and part.content:
                state.reasoning += part.content
                emit_delta(events.agent_choice_reasoning(sid, name, part.content))
            elif isinstance(part, ToolCallPart):
                calls[event.index] = part
                self._emit_partial(part, tool_call_of(part).function.arguments, first=True)
        elif isinstance(event, PartDeltaEvent):
            delta = event.delta
            state.streamed = True
            if isinstance(delta, TextPartDelta) and delta.content_delta:
                state.text += delta.content_delta
                emit_delta(events.agent_choice(sid, name, delta.content_delta))
            elif isinstance(delta, ThinkingPartDelta) and delta.content_delta:
                state.reasoning += delta.content_delta
                emit_delta(events.agent_choice_reasoning(sid, name, delta.content_delta))
            elif isinstance(delta, ToolCallPartDelta) and event.index in calls:
                part = delta.apply(calls[event.index])
                if isinstance(part, ToolCallPart):
                    calls[event.index] = part
                    # Arguments streamed as an object rather than text have no byte delta: the
                    # call's tool_call event carries them whole.
                    piece = delta.args_delta if isinstance(delta.args_delta, str) else ""
                    if piece or delta.tool_name_delta:
                        self._emit_partial(part, piece, first=False)

    def _emit_partial(self, part: ToolCallPart, piece: str, first: bool) -> None:
        """One piece of a streaming call's arguments, as docker-agent sends it: only the new
        bytes (clients append a call's pieces), the tool's definition with the first only.
        Pieces that follow closely are merged into one event (``deltas.py``)."""
        definition = None
        if first:
            tool = self._tools.get(part.tool_name)
            definition = tool.definition if tool else None
        call = ToolCall(
            id=part.tool_call_id, function=FunctionCall(name=part.tool_name, arguments=piece)
        )
        self.recorder.emit_delta(events.partial_tool_call(self.agent_name, call, definition))

    async def _commit_response(
        self, response: ModelResponse, choice: ModelChoice
    ) -> list[ToolCall]:
        sid, agent_name = self.session_id, self.agent_name
        chat = from_model_response(response, choice.label)
        facts = usage_facts(choice, response)
        cost = facts.cost
        chat.cost = cost or None
        session = self.recorder.session
        try:
            await self.recorder.append_message(Message(agent_name=agent_name, message=chat))
            await self.recorder.update(
                input_tokens=session.input_tokens + response.usage.input_tokens,
                output_tokens=session.output_tokens + response.usage.output_tokens,
                cost=session.cost + cost,
            )
        except _GONE:
            raise  # deleted or taken over meanwhile: the turn stops quietly
        except Exception as exc:
            log.exception("saving the response of session %s failed", sid)
            await self._fail(f"Could not save the answer: {exc}")
            raise _TurnFailed from exc
        usage = {
            "input_tokens": session.input_tokens,
            "output_tokens": session.output_tokens,
            "context_length": response.usage.input_tokens + response.usage.output_tokens,
            "context_limit": facts.context_limit,
            "cost": session.cost,
        }
        self.recorder.emit(events.token_usage(sid, agent_name, usage))
        return list(chat.tool_calls or [])

    async def _execute(self, call: ToolCall) -> None:
        """Run one tool call through the approval policy and commit its result."""
        session = self.recorder.session
        tool = self._tools.get(call.function.name)
        definition = tool.definition if tool else None
        self.recorder.emit(events.tool_call(self.agent_name, call, definition))
        result: ToolResult | None = None
        approval: Approval | None = None
        if tool is None:
            result = ToolResult(f"Tool {call.function.name!r} is not available.", is_error=True)
        else:
            decision = decide(
                call.function.name,
                read_only=tool.definition.read_only,
                tools_approved=session.tools_approved,
                session=session.permissions,
                agent=self.team.permissions,
            )
            if decision == "deny":
                result = ToolResult(
                    f"Denied: the permissions do not allow {call.function.name!r}.", is_error=True
                )
            elif decision == "ask" and not self.interactive:
                result = ToolResult(
                    f"Denied: {call.function.name!r} needs approval, and a background agent "
                    "has no one to ask.",
                    is_error=True,
                )
            elif decision == "ask":
                answer, reason = await self._confirm(call, tool.definition)
                approval = cast("Approval", answer)
                if answer == "reject":
                    text = f"{REJECTED} Reason: {reason}" if reason else REJECTED
                    result = ToolResult(text, is_error=True)
            if result is None:
                result = await self._call_tool(tool, call)
        await self._commit_tool_result(call, result, definition, approval)

    async def _start_toolsets(self) -> None:
        """Start the toolsets that need it (first turn, or their server died) and re-list the
        tools, between ``mcp_init_started`` and ``mcp_init_finished`` as docker-agent does.

        A toolset that fails to start is told as a ``warning`` and the turn goes on without its
        tools; the next turn tries again.
        """
        pending = [toolset for toolset in self._toolsets if not toolset.started]
        if not pending:
            return
        self.recorder.emit(events.mcp_init_started(self.agent_name))
        try:
            for toolset in pending:
                try:
                    await toolset.start()
                except Exception as exc:
                    log.warning(
                        "toolset %s of session %s failed to start: %s",
                        toolset.type,
                        self.session_id,
                        exc,
                    )
                    self.recorder.emit(
                        events.warning(
                            self.agent_name,
                            f"Toolset {toolset.type!r} is not available this turn: {exc}",
                        )
                    )
            tools: dict[str, Tool] = {}
            for toolset in self._toolsets:
                if toolset.started:
                    tools.update((tool.definition.name, tool) for tool in await toolset.tools())
            tools.update((tool.definition.name, tool) for tool in self._builtins)
            self._tools = tools
        finally:
            self.recorder.emit(events.mcp_init_finished(self.agent_name))
        self.recorder.emit(events.toolset_info(self.agent_name, len(self._tools)))

    async def _confirm(self, call: ToolCall, definition: ToolDefinition) -> tuple[str, str]:
        future: asyncio.Future[tuple[str, str]] = asyncio.get_running_loop().create_future()
        self._confirmation = _Confirmation(call=call, future=future)
        diff = await self._preview(call)
        self.recorder.emit(events.tool_call_confirmation(self.agent_name, call, definition, diff))
        try:
            with self._doing("waiting_for_approval", call.function.name):
                return await future
        finally:
            self._confirmation = None

    async def _preview(self, call: ToolCall) -> str:
        """The change a call would make (a unified diff), for its confirmation; "" if none."""
        tool = self._tools.get(call.function.name)
        arguments = _arguments(call)
        if tool is None or isinstance(arguments, ToolResult):
            return ""
        try:
            return await tool.preview(arguments, self._tool_context())
        except Exception:
            log.exception("preview of tool %s failed", call.function.name)
            return ""

    def _tool_context(self, output: Output | None = None) -> ToolContext:
        return ToolContext(
            session_id=self.session_id,
            working_dir=self.recorder.session.working_dir,
            elicit=self._elicit if self.interactive else None,
            output=output,
            run_agent=self._run_background,
            plan_updated=self._plan_updated,
        )

    def _plan_updated(self, content: str, path: str) -> None:
        self.recorder.emit(events.plan_updated(self.session_id, self.agent_name, content, path))

    async def _call_tool(self, tool: Tool, call: ToolCall) -> ToolResult:
        arguments = _arguments(call)
        if isinstance(arguments, ToolResult):
            return arguments
        name, definition = self.agent_name, tool.definition
        relay = OutputRelay(
            lambda text: self.recorder.emit(
                events.tool_call_output(name, call.id, definition, text)
            )
        )
        try:
            with self._doing("running_tool", call.function.name):
                return await tool.call(arguments, self._tool_context(relay.write))
        except (asyncio.CancelledError, LeaseLost):  # taken over: the turn stops quietly
            raise
        except Exception as exc:
            log.exception("tool %s failed in session %s", call.function.name, self.session_id)
            message = f"Tool {call.function.name!r} failed: {exc}"
            self.recorder.emit(
                events.error(self.session_id, self.agent_name, message, "tool_failed")
            )
            return ToolResult(message, is_error=True)
        finally:
            relay.close()  # the last output goes out before the call's response

    async def _elicit(self, message: str, schema: Any) -> ElicitationResult:
        """Ask the user for structured input on behalf of a tool and wait for the answer."""
        pending = _Elicitation(id=new_id(), future=asyncio.get_running_loop().create_future())
        self._elicitation = pending
        self.recorder.emit(events.elicitation_request(self.agent_name, message, schema, pending.id))
        tool = self._activity.tool if self._activity else ""
        try:
            with self._doing("waiting_for_input", tool):
                return await pending.future
        finally:
            self._elicitation = None

    @contextlib.contextmanager
    def _doing(self, state: ActivityState, tool: str) -> Iterator[None]:
        """Report ``state`` as the turn's activity while the block runs, then the one before."""
        before, self._activity = self._activity, Activity(state, tool)
        try:
            yield
        finally:
            self._activity = before

    async def _commit_tool_result(
        self,
        call: ToolCall,
        result: ToolResult,
        definition: ToolDefinition | None = None,
        approval: Approval | None = None,
    ) -> None:
        chat = ChatMessage(
            role="tool",
            content=result.output,
            tool_call_id=call.id,
            is_error=result.is_error or None,
            created_at=utc_now().isoformat(),
            approval=approval,
        )
        if definition is None and call.function.name in self._tools:
            definition = self._tools[call.function.name].definition
        event = events.tool_call_response(self.agent_name, call, definition, result)
        await self.recorder.append_message(
            Message(agent_name=self.agent_name, message=chat), announce=lambda _: event
        )

    async def _append_user(self, message: Message) -> None:
        sid, agent_name = self.session_id, self.agent_name
        await self.recorder.append_message(
            message, announce=lambda pos: events.user_message(sid, agent_name, message, pos)
        )

    async def _drain_steer(self) -> None:
        while self._steer:
            await self._append_user(self._steer.popleft())

    async def _allow_tool(self, name: str) -> None:
        """Allow this tool from now on, and no other (a name may hold glob characters)."""
        pattern = exact_pattern(name)
        current = self.recorder.session.permissions or Permissions()
        if pattern in current.allow:
            return
        updated = current.model_copy(update={"allow": [*current.allow, pattern]})
        await self.recorder.update(permissions=updated)

    async def _model(self, choice: ModelChoice) -> Model:
        return await self._models.get(choice)

    def _start_title(self, resolved: ResolvedModel) -> asyncio.Task[None] | None:
        session = self.recorder.session
        if session.title:
            return None
        first = next((m for m in session.chat_messages() if m.message.role == "user"), None)
        if first is None:
            return None
        return asyncio.get_running_loop().create_task(
            self._set_title(resolved, first.message.content)
        )

    def _title_choice(self, resolved: ResolvedModel) -> ModelChoice | None:
        """The model that names the session (SPEC 11, ``NBSessionApp.title_model``): none
        when ``off``, the configured ref, else the turn's own model."""
        if self.title_model == TITLE_OFF:
            return None
        if not self.title_model:
            return resolved.pick(0)
        try:
            return resolve_ref(self.team, self.title_model).pick(0)
        except InvalidRequest as exc:
            log.warning("title_model %r is unusable: %s", self.title_model, exc.message)
            return None

    async def _set_title(self, resolved: ResolvedModel, first_message: str) -> None:
        choice = self._title_choice(resolved)
        title = fallback_title(first_message)
        if choice is not None:
            try:
                model = await self._model(choice)
            except ModelUnavailable:
                pass
            else:
                title = await generate_title(model, first_message, model_settings(choice))
        try:
            if not await self.recorder.claim_title(title):
                return  # someone named it meanwhile: theirs stands
        except _GONE:
            return  # deleted or taken over meanwhile
        except Exception:
            log.exception("saving the title of session %s failed", self.session_id)
            return
        self.recorder.emit(events.session_title(self.session_id, self.agent_name, title))


async def _toolsets_of(
    agent: AgentConfig,
    team: TeamConfig,
    recorder: SessionRecorder,
    data_dir: str,
    jupyter: JupyterHost | None,
) -> tuple[list[Toolset], list[Tool]]:
    """The agent's fresh toolsets for the recorder's session, and the tools of those that need
    no start (the others, MCP servers, start at the beginning of a turn, where their events
    go). Their undo history is the root session's, in its store."""
    session = recorder.session
    env = ToolsetEnv(
        working_dir=session.working_dir,
        data_dir=data_dir,
        source_id=team.source_id,
        source_dir=os.path.dirname(team.path) if team.path else "",
        jupyter=jupyter,
        kernel_id=session.kernel_id,
        notebook_path=session.notebook_path,
        undo=StoredUndoHistory(recorder.store, recorder.root_session_id, recorder.root_owner),
    )
    toolsets = build_toolsets(((ts.type, ts.options) for ts in agent.toolsets), env)
    tools: list[Tool] = []
    for toolset in toolsets:
        if toolset.started:
            tools.extend(await toolset.tools())
    return toolsets, tools


def _arguments(call: ToolCall) -> dict[str, Any] | ToolResult:
    """The call's arguments as a JSON object, or the error result the model should read."""
    try:
        arguments = json.loads(call.function.arguments or "{}")
    except json.JSONDecodeError as exc:
        return ToolResult(f"The arguments are not valid JSON: {exc}", is_error=True)
    if not isinstance(arguments, dict):
        return ToolResult("The arguments must be a JSON object.", is_error=True)
    return arguments


def _backoff(attempt: int) -> float:
    """docker-agent's retry delay: 0.2 s doubling up to 2 s, with 10 % jitter."""
    delay = min(BACKOFF_BASE * 2**attempt, BACKOFF_MAX)
    return delay * (1 + random.uniform(-0.1, 0.1))
