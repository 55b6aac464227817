"""The session manager: the only door to sessions (docker-agent's ``SessionManager``).

HTTP handlers, the in-process SDK and widgets all call it, so every rule lives here and no
transport detail does: errors are the named exceptions of ``nbsession.errors``, results are
typed objects or plain JSON-ready dicts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from .config import AgentSourceInfo, SourceLoader, TeamConfig
from .errors import (
    Conflict,
    InvalidRequest,
    ModelSwitchingNotSupported,
    QueueFull,
    SessionBusy,
    SessionNotReady,
    SessionNotRunning,
    StoreError,
    UnknownSession,
    UnstorableValue,
)
from .eventlog import EventSubscription, LogClosed, LogEntry, RingEventLog
from .notebook import (
    check_tool_results,
    is_notebook,
    notebook_to_session,
    session_record,
    session_to_notebook,
)
from .runtime.deltas import DEFAULT_INTERVAL
from .runtime.loop import AgentRuntime, Run
from .runtime.models import ModelPool, resolve_ref
from .runtime.recorder import SessionRecorder
from .session import (
    Count,
    Item,
    Message,
    Money,
    Permissions,
    Session,
    SessionSummary,
    SessionTemplate,
    is_safe_id,
    new_id,
    rfc3339,
    storable,
    user_message,
    utc_now,
)
from .session_state import FollowUpInjector, Live, Phase, SessionState
from .store import SessionHead, Store, SummaryCursor, SummarySlice, open_store
from .tools import build_toolsets
from .tools.jupyter import JupyterHost

log = logging.getLogger("nbsession.manager")

RECOVERY_VERSION = 1
IDEMPOTENCY_KEYS_KEPT = 1024
LIST_SLICE = 1000
"""Summaries read from the store at a time when listing many (``session_pages``)."""
MAX_IDEMPOTENCY_KEY = 255
"""Characters of an ``Idempotency-Key``: 1024 kept keys must stay small in memory."""

PROMPT_EVENTS = frozenset(
    {"tool_call_confirmation", "max_iterations_reached", "elicitation_request"}
)
"""Events that ask a person something; the turn waits until it is answered."""
WAITING_STATES = frozenset({"waiting_for_approval", "waiting_for_input"})

EventSource = Callable[[Callable[[Mapping[str, Any]], None]], Awaitable[None]]


@dataclass(frozen=True)
class ManagerConfig:
    """What a host (jupyter-server, a kernel, a script) chooses about its manager."""

    db_path: str = ":memory:"
    agents_dir: str | None = None
    # A session's default working dir, and the root its working dir must lie in (SPEC 11):
    # jupyter-server passes its root_dir; "" means the process's current directory.
    working_dir: str = ""
    # Further directories a session's working dir may lie in, besides ``working_dir``.
    allowed_roots: tuple[str, ...] = ()
    event_log_capacity: int = 1024
    # A log reader left with more than this many bytes of events unread is dropped (SPEC 3);
    # None bounds readers by the capacity alone.
    max_unsent_bytes: int | None = None
    steer_capacity: int = 8
    followup_capacity: int = 8
    refresh_interval: float = 0.0
    include_bundled_agents: bool = True
    # Runtimes kept in memory; beyond it the least recently used idle ones are released and
    # rebuilt from the store when their session is used again (their seqs continue).
    max_live_runtimes: int = 64
    # The model that names sessions: "" the session's own, a model ref, or "off" (SPEC 11).
    title_model: str = ""
    # Streamed text deltas arriving within this many seconds go out as one event (0: one
    # event per delta); see ``runtime/deltas.py``.
    delta_flush_interval: float = DEFAULT_INTERVAL
    # The turn lease in the store (several servers on one store): held while a turn runs,
    # renewed every ``lease_renew_interval`` seconds, and free ``lease_ttl`` seconds after
    # its server stopped renewing it (a crash). ``server_id`` names this manager in it
    # (default: host, pid and a random part).
    lease_ttl: float = 30.0
    lease_renew_interval: float = 10.0
    server_id: str = ""
    # The hosting Jupyter server's kernels and notebooks, for the jupyter toolset (None: it
    # starts kernels of its own and reads notebooks from disk).
    jupyter: JupyterHost | None = None


@dataclass(frozen=True)
class FollowUpResult:
    status: str  # queued_streaming | queued_idle | duplicate
    duplicate: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "duplicate": self.duplicate}


class TurnStream:
    """The events of one run, read from the session's log (so ids match ``/events``).

    Ends after the run's final ``stream_stopped`` (or the log's ``session_exited``).
    """

    def __init__(
        self, subscription: EventSubscription, run: Run, runtime: AgentRuntime, start_seq: int
    ) -> None:
        self._sub = subscription
        self._run = run
        self._runtime = runtime
        self._done = False
        self.start_seq = start_seq
        """The session's last seq before the run: each of its events has a larger one, so a
        client whose stream drops before the first event resumes ``/events`` after this."""

    @property
    def run(self) -> Run:
        return self._run

    def __aiter__(self) -> AsyncIterator[LogEntry]:
        return self

    async def __anext__(self) -> LogEntry:
        if self._done:
            raise StopAsyncIteration
        try:
            entry = await self._sub.__anext__()
        except StopAsyncIteration:
            self._done = True
            raise
        self._check_end(entry)
        return entry

    def take_ready(self) -> list[LogEntry]:
        """Every entry available now, up to the end of the run (for batched writes)."""
        if self._done:
            return []
        ready = []
        for entry in self._sub.take_ready():
            ready.append(entry)
            if self._check_end(entry):
                break
        return ready

    def _check_end(self, entry: LogEntry) -> bool:
        end = self._run.end_seq
        if entry.type == "session_exited" or (
            end is not None and entry.seq is not None and entry.seq >= end
        ):
            self._done = True
            self._sub.close()
        return self._done

    async def wait_dropped(self) -> None:
        """Return once the log has let this reader go for falling too far behind."""
        await self._sub.wait_dropped()

    def cancel(self) -> bool:
        """Cancel this run if it is still the session's current one and not over; whether
        it was."""
        if self._runtime.run is not self._run or self._run.done.is_set():
            return False
        self._runtime.cancel()
        return True

    def close(self) -> None:
        self._done = True
        self._sub.close()


class SessionManager:
    """Sessions, their runtimes, event logs and queues, behind one set of rules."""

    def __init__(
        self,
        config: ManagerConfig | None = None,
        *,
        store: Store | None = None,
        sources: SourceLoader | None = None,
    ) -> None:
        self.config = config or ManagerConfig()
        self._models = ModelPool()  # models (their HTTP clients) shared by the runtimes
        self.store = store or open_store(self.config.db_path)
        self.sources = sources or SourceLoader(
            self.config.agents_dir,
            refresh_interval=self.config.refresh_interval,
            include_bundled=self.config.include_bundled_agents,
        )
        # One entry per session this server has touched, least recently run first (the
        # order in which idle runtimes are released).
        self._sessions: OrderedDict[str, SessionState] = OrderedDict()
        self._background: set[asyncio.Task[None]] = set()
        self.server_id = self.config.server_id or (
            f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        )
        self._ready = asyncio.Event()
        self._latest_error = ""

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the store; a store that already holds sessions makes the manager ready."""
        await self.store.open()
        if await self.store.has_sessions():
            self._ready.set()

    async def shutdown(self, reason: str = "server stopping", timeout: float = 10.0) -> None:
        """Cancel running turns (they persist what they have), end every log, close the store."""
        lives = self._lives()
        for live in lives:
            live.runtime.cancel()
        runs = [live.runtime.run for live in lives if live.runtime.run is not None]
        runs += [state.stopping for state in self._sessions.values() if state.stopping]
        if runs:
            await asyncio.wait(
                [asyncio.ensure_future(r.done.wait()) for r in runs], timeout=timeout
            )
        if self._background:  # what runs after a turn: its lease release, a delete's end
            await asyncio.wait(list(self._background), timeout=timeout)
        for state in self._sessions.values():
            if state.lease_keeper is not None:
                state.lease_keeper.cancel()
            if state.pump is not None:
                state.pump.cancel()
            if state.log is not None:
                state.log.close(reason)
        for live in lives:
            await live.runtime.close()
        for state in self._sessions.values():
            state.live = None
        await self._models.aclose()
        await self.store.close()

    async def ready_status(self) -> dict[str, Any]:
        connected = await self.store.ping()
        if not connected:
            self._latest_error = "store disconnected"
        return {
            "ready": connected,
            "active_sessions": len(self._lives()),
            "store_connected": connected,
            "latest_error": "" if connected else self._latest_error,
        }

    async def wait_ready(self, timeout: float) -> bool:
        """Until a session exists or is attached; False at the timeout."""
        return await _wait_event(self._ready, timeout)

    async def wait_session_attached(self, session_id: str, timeout: float) -> bool:
        """Until ``session_id`` has a runtime (ran once, or was attached); False at timeout."""
        state = self._state(session_id)
        if state.live is not None:
            return True
        return await _wait_event(state.attached, timeout)

    # -- agents ---------------------------------------------------------------------------

    def list_agents(self) -> list[AgentSourceInfo]:
        return self.sources.list()

    def get_agent_config(self, agent_id: str) -> dict[str, Any]:
        return self.sources.get(agent_id).to_json()

    async def get_agent_tool_count(self, agent_id: str, agent_name: str = "") -> int:
        agent = self.sources.get(agent_id).agent(agent_name or None)
        toolsets = build_toolsets((ts.type, ts.options) for ts in agent.toolsets)
        try:
            count = 0
            for toolset in toolsets:
                if not toolset.started:
                    try:
                        await toolset.start()
                    except Exception as exc:  # counted as none, as when a turn cannot start it
                        log.warning(
                            "toolset %s of agent %s did not start: %s", toolset.type, agent_id, exc
                        )
                        continue
                count += len(await toolset.tools())
            return count
        finally:
            for toolset in toolsets:
                await toolset.close()

    # -- sessions -------------------------------------------------------------------------

    async def create_session(self, template: Mapping[str, Any] | None = None) -> Session:
        """A new session from a template; a docker-agent session object is accepted as is."""
        if template is not None and not isinstance(template, Mapping):
            raise InvalidRequest("The session template must be a JSON object.")
        fields: SessionTemplate = _validated(SessionTemplate, template or {})
        session = Session(
            **fields.model_dump(exclude={"title", "working_dir", "notebook_path"}),
            title=fields.title.strip(),
            working_dir=self._working_dir(fields.working_dir),
            notebook_path=self._notebook_path(fields.notebook_path),
        )
        await self.store.create_session(session)
        self._ready.set()
        return session

    async def get_session(self, session_id: str) -> Session:
        """The session as it is now: a copy whose items are shared with the live session.

        Items are never changed in place (an update replaces the item), so sharing them is
        safe and keeps this O(number of items) pointer copies instead of a deep copy, which
        costs ~150 ms on the event loop for a 10,000-item session.
        """
        if self._live(session_id) is not None:
            await self._refresh(session_id)
        return await self._copy(session_id)

    async def _copy(self, session_id: str) -> Session:
        """``get_session`` without the freshness check (the caller has just made it)."""
        live = self._live(session_id)
        if live is None:
            return await self._stored(session_id)
        session = live.recorder.session
        return session.model_copy(
            update={
                "messages": list(session.messages),
                "agent_model_overrides": dict(session.agent_model_overrides),
                "custom_models_used": list(session.custom_models_used),
            }
        )

    async def get_sessions(self) -> list[SessionSummary]:
        """Summaries, newest first, read without message bodies."""
        return self._with_activity(await self.store.list_summaries())

    async def session_slices(
        self, size: int, before: str | None = None
    ) -> AsyncIterator[SummarySlice]:
        """Every summary after the cursor ``before`` (from the newest when None), in its JSON
        wire form, ``size`` at a time: each slice is read and encoded row by row on the store's
        thread, so streaming a long list never holds the event loop, nor leaves the heap a
        full collection's worth of objects. Slices follow one another by cursor: a session
        created or deleted meanwhile is listed at most once."""
        cursor = None if before is None else SummaryCursor.decode(before)
        active = self._activities()  # the turns running here as the list starts
        while True:
            part = await self.store.summaries_json(size, cursor, active)
            if part.count:
                yield part
            if part.count < size:
                return
            cursor = part.last

    async def get_session_page(
        self, limit: int | None, before: str | None = None
    ) -> tuple[list[SessionSummary], str | None]:
        """At most ``limit`` summaries (all when None) after the cursor ``before`` (from the
        newest when None), and the next page's cursor, None when this page reaches the end."""
        if limit is not None and limit < 1:
            raise InvalidRequest("limit must be at least 1.", field="limit")
        cursor = None if before is None else SummaryCursor.decode(before)
        page = await self.store.list_summaries(None if limit is None else limit + 1, cursor)
        if limit is None or len(page) <= limit:
            return self._with_activity(page), None
        return self._with_activity(page[:limit]), SummaryCursor.after(page[limit - 1]).encode()

    def _with_activity(self, summaries: list[SessionSummary]) -> list[SessionSummary]:
        """The rows with what their turns do on this server (a waiting approval lights the
        sidebar's badge)."""
        active = self._activities()
        if not active:
            return summaries
        return [
            s if s.id not in active else s.model_copy(update={"activity": active[s.id]})
            for s in summaries
        ]

    def _activities(self) -> dict[str, dict[str, Any]]:
        """What the turns running on this server do, by session id. Read from memory only: a
        list costs no store read per row, and only the few sessions with a turn here are
        looked at."""
        active = {}
        for session_id in self._sessions:
            activity = self._local_activity(session_id, with_duration=False)
            if activity is not None:
                active[session_id] = activity
        return active

    async def delete_session(self, session_id: str) -> None:
        """Delete the session, cancel its turn and end its event log (after its last event)."""
        await self._require(session_id)
        await self.store.delete_session(session_id)
        state = self._state(session_id)
        live, pump = state.forget()
        if pump is not None:
            pump.cancel()
        run = live.runtime.run if live is not None else None
        if live is not None and run is not None and not run.done.is_set():
            # The turn ends with its own stream_stopped first; session_exited comes after.
            state.stopping = run
            live.runtime.cancel()
            self._spawn(self._finish_delete(state, live, run))
            return
        if live is not None:
            await live.runtime.close()
        self._end_log(state)

    async def _finish_delete(self, state: SessionState, live: Live, run: Run) -> None:
        await run.done.wait()
        state.stopping = None
        await live.runtime.close()
        self._end_log(state)

    def _end_log(self, state: SessionState) -> None:
        """Close a deleted session's log; its readers keep it until they have read the end."""
        event_log, state.log = state.log, None
        if event_log is not None:
            event_log.close("session deleted")

    async def wait_stopped(self, session_id: str, timeout: float) -> bool:
        """True once the session's run has fully stopped (call after ``delete_session``)."""
        state = self._sessions.get(session_id)
        if state is None:
            return True
        run = state.stopping
        if run is None and state.live is not None:
            run = state.live.runtime.run
        if run is None:
            return True
        return await _wait_event(run.done, timeout)

    # -- turns ----------------------------------------------------------------------------

    async def run_session(
        self,
        session_id: str,
        agent_id: str,
        agent_name: str,
        messages: Sequence[Mapping[str, Any]],
        model: str = "",
    ) -> TurnStream:
        """Run a turn: validate, apply the model override, commit the messages, stream.

        A bad model reference or message fails before anything is appended (SPEC 5).
        """
        parsed = _user_messages(messages, "messages")
        await self._require(session_id)
        self._check_idle(session_id)
        state = self._state(session_id)
        state.starting = True
        try:
            team = self.sources.get(agent_id)
            agent = team.agent(agent_name or self._current_agent(session_id, team))
            if model:
                resolve_ref(team, model)  # refused here, before any state changes
            await self._hold_lease(state)  # SessionBusy while another server runs it
            try:
                await self._refresh(session_id)
                live, fresh = await self._runtime_for(session_id, team, agent.name)
                try:
                    if model:
                        await live.runtime.set_model(model)
                    since = live.recorder.log.last_seq
                    run = await live.runtime.start(parsed, self._lease_giver(state))
                except BaseException:
                    if fresh:
                        await live.runtime.close()
                    raise
            except BaseException:
                await self._drop_lease(state)
                raise
            self._watch_run(state, live.runtime, run)
            state.binding = (agent_id, agent.name)
            if fresh:
                await self._register(state, live)
            elif state.live is not None:
                self._sessions.move_to_end(session_id)
            self._started(state, live.runtime)
        finally:
            state.starting = state.cancel_requested = False
            state.late_fields.clear()
        return TurnStream(live.recorder.log.subscribe(since), run, live.runtime, since)

    def _lease_giver(self, state: SessionState) -> Callable[[], Awaitable[None]]:
        """A run's ``before_end``: its lease hold is given back before its last event, so a
        client that saw the end may run the session on another server at once."""
        return lambda: self._drop_lease(state)

    def _watch_run(self, state: SessionState, runtime: AgentRuntime, run: Run) -> None:
        """Log the run's start and end."""
        started = asyncio.get_running_loop().time()
        log.info("session %s: turn started (agent %s)", state.id, runtime.agent_name)

        async def watch() -> None:
            await run.done.wait()
            seconds = asyncio.get_running_loop().time() - started
            reason = run.reason or "canceled"
            log.info("session %s: turn ended (%s) after %.1f s", state.id, reason, seconds)

        self._spawn(watch())

    def _started(self, state: SessionState, runtime: AgentRuntime) -> None:
        """Settle what arrived while a run was starting: follow-ups queued without a running
        turn join it, and a cancel stops it (and, with it, those follow-ups)."""
        queued, state.idle_followups = state.idle_followups, []
        runtime.enqueue_follow_ups(queued)
        if state.cancel_requested:
            runtime.cancel()

    async def cancel_session(self, session_id: str) -> None:
        await self._require(session_id)
        state = self._sessions.get(session_id)
        if state is not None and state.starting:  # honoured as soon as the run has started
            state.cancel_requested = True
            return
        live = self._live(session_id)
        if live is None or not live.runtime.cancel():
            raise SessionNotRunning(session_id, "has no running turn")

    async def resume_session(
        self, session_id: str, confirmation: str, reason: str = "", tool_name: str = ""
    ) -> None:
        """Answer the pending tool-call confirmation (approve, approve-session, ...)."""
        await (await self._live_runtime(session_id)).resume(confirmation, reason, tool_name)

    async def resume_elicitation(
        self,
        session_id: str,
        action: str,
        content: Mapping[str, Any] | None = None,
        elicitation_id: str = "",
    ) -> None:
        (await self._live_runtime(session_id)).resume_elicitation(action, content, elicitation_id)

    async def steer_session(self, session_id: str, messages: Sequence[Mapping[str, Any]]) -> None:
        """Queue messages for the running turn, injected before its next model call."""
        parsed = _user_messages(messages, "messages")
        (await self._live_runtime(session_id)).steer(parsed)

    async def follow_up_session(
        self,
        session_id: str,
        messages: Sequence[Mapping[str, Any]],
        idempotency_key: str = "",
    ) -> FollowUpResult:
        """Queue messages for a full turn each after the current one (SPEC 5).

        The same ``idempotency_key`` twice for a session is delivered once; a request that
        fails releases its key so a retry can land.
        """
        parsed = _user_messages(messages, "messages")
        if len(idempotency_key) > MAX_IDEMPOTENCY_KEY:
            raise InvalidRequest(
                f"Idempotency-Key is longer than {MAX_IDEMPOTENCY_KEY} characters.",
                field="Idempotency-Key",
            )
        await self._require(session_id)
        keys = self._state(session_id).idempotency
        if idempotency_key:
            if idempotency_key in keys:
                return FollowUpResult("duplicate", duplicate=True)
            keys[idempotency_key] = None
            while len(keys) > IDEMPOTENCY_KEYS_KEPT:
                keys.popitem(last=False)
        try:
            return await self._deliver_follow_ups(session_id, parsed)
        except BaseException:
            if idempotency_key:
                keys.pop(idempotency_key, None)
            raise

    async def _deliver_follow_ups(self, session_id: str, messages: list[Message]) -> FollowUpResult:
        state = self._state(session_id)
        if state.injector is not None:
            for message in messages:
                await state.injector(message.message.content)
            return FollowUpResult("queued_streaming")
        if state.starting:  # the run being started takes them over
            self._queue_idle(state, messages)
            return FollowUpResult("queued_streaming")
        live = await self._revived(session_id)
        if live is None:
            if self._elsewhere(await self.store.session_head(session_id)):
                raise SessionBusy(session_id)  # its next run is another server's to start
            self._queue_idle(state, messages)
            return FollowUpResult("queued_idle")
        runtime = live.runtime
        run = runtime.run
        if runtime.streaming and run is not None and run.closing:
            # Its lease is being given back before its last event: these start the next run.
            await run.done.wait()
            return await self._deliver_follow_ups(session_id, messages)
        if runtime.streaming or state.starting:
            runtime.enqueue_follow_ups(messages)
            return FollowUpResult("queued_streaming")
        if runtime.queue_status()["followup"]["depth"] + len(messages) - 1 > (
            runtime.followup_capacity
        ):
            raise QueueFull("follow-up", runtime.followup_capacity)
        state.starting = True
        try:
            await self._hold_lease(state)
            try:
                await self._refresh(session_id)
                run = await runtime.start(messages[:1], self._lease_giver(state))
            except BaseException:
                await self._drop_lease(state)
                raise
            self._watch_run(state, runtime, run)
            runtime.enqueue_follow_ups(messages[1:])
            self._started(state, runtime)
        finally:
            state.starting = state.cancel_requested = False
        return FollowUpResult("queued_streaming")

    def _queue_idle(self, state: SessionState, messages: list[Message]) -> None:
        queued = state.idle_followups
        if len(queued) + len(messages) > self.config.followup_capacity:
            raise QueueFull("follow-up", self.config.followup_capacity)
        queued.extend(messages)

    async def queue_status(self, session_id: str) -> dict[str, dict[str, int]]:
        """Depth and capacity of the session's steer and follow-up queues.

        A session without a runtime here can still hold follow-ups (``queued_idle``), which
        its next run consumes; they are counted too.
        """
        live = self._live(session_id)
        if live is not None:
            return live.runtime.queue_status()
        await self._require(session_id)
        state = self._sessions.get(session_id)
        return {
            "steer": {"depth": 0, "capacity": self.config.steer_capacity},
            "followup": {
                "depth": len(state.idle_followups) if state is not None else 0,
                "capacity": self.config.followup_capacity,
            },
        }

    # -- models ---------------------------------------------------------------------------

    async def available_session_models(self, session_id: str) -> dict[str, Any]:
        """The models the session's current agent can use, the current one marked."""
        runtime = await self._switchable(session_id)
        return runtime.available_models()

    async def set_session_agent_model(self, session_id: str, model_ref: str) -> tuple[str, str]:
        """Set (``""`` clears) the current agent's model override; returns (agent, ref)."""
        runtime = await self._switchable(session_id)
        self._check_idle(session_id)
        async with self._leased(session_id):
            return runtime.agent_name, await runtime.set_model(model_ref)

    async def _switchable(self, session_id: str) -> AgentRuntime:
        runtime = await self._live_runtime(session_id)
        if not isinstance(runtime, AgentRuntime):
            raise ModelSwitchingNotSupported(session_id)
        await self._refresh(session_id)  # its overrides may have changed on another server
        return runtime

    # -- session fields -------------------------------------------------------------------

    async def update_session_title(self, session_id: str, title: str) -> Session:
        if not isinstance(title, str):
            raise InvalidRequest("title must be a string.", field="title")
        await self._update(session_id, title=title.strip())
        return await self.get_session(session_id)

    async def update_session_permissions(
        self, session_id: str, permissions: Mapping[str, Any] | Permissions | None
    ) -> None:
        if permissions is not None and not isinstance(permissions, Permissions):
            permissions = _validated(Permissions, permissions, prefix="permissions")
        await self._update(session_id, permissions=permissions)

    async def update_session_tokens(
        self, session_id: str, input_tokens: int, output_tokens: int, cost: float | None = None
    ) -> None:
        """Set the usage counters; a ``cost`` of ``None`` leaves the cost as it is."""
        fields: dict[str, Any] = {"input_tokens": input_tokens, "output_tokens": output_tokens}
        if cost is not None:
            fields["cost"] = cost
        checked = _validated(_Usage, fields)
        await self._update(session_id, **checked.model_dump(include=set(fields)))

    async def set_session_starred(self, session_id: str, starred: bool) -> None:
        if not isinstance(starred, bool):
            raise InvalidRequest("starred must be true or false.", field="starred")
        await self._update(session_id, starred=starred)

    async def toggle_tool_approval(self, session_id: str) -> bool:
        """Flip ``tools_approved``; returns the new value."""
        await self._refresh(session_id)
        approved = not (await self._current(session_id)).tools_approved
        await self._update(session_id, tools_approved=approved)
        return approved

    # -- messages -------------------------------------------------------------------------

    async def add_message(self, session_id: str, message: Mapping[str, Any]) -> Message:
        """Append a message (any role); refused while a turn runs, which owns the history."""
        parsed = _validated(Message, message, prefix="message")
        await self._require(session_id)
        self._check_idle(session_id, Conflict)
        async with self._leased(session_id):
            await self._append(session_id, Item(message=parsed))
        return parsed

    async def update_message(
        self, session_id: str, message_id: str, message: Mapping[str, Any]
    ) -> Message:
        if not isinstance(message, Mapping):
            raise InvalidRequest("message must be a JSON object.", field="message")
        parsed = _validated(Message, {**message, "id": message_id}, prefix="message")
        await self._require(session_id)
        self._check_idle(session_id, Conflict)
        item = Item(message=parsed)
        async with self._leased(session_id):
            live = self._live(session_id)
            if live is None:
                await self.store.update_message(session_id, message_id, item, self.server_id)
            else:
                await live.recorder.replace_message(message_id, item)
                live.runtime.history_changed()
        return parsed

    async def add_summary(
        self, session_id: str, summary: str, first_kept_entry: int | None = None
    ) -> None:
        if not isinstance(summary, str) or not summary.strip():
            raise InvalidRequest("summary must be a non-empty string.", field="summary")
        if first_kept_entry is not None and (
            isinstance(first_kept_entry, bool)
            or not isinstance(first_kept_entry, int)
            or first_kept_entry < 0
        ):
            raise InvalidRequest(
                "first_kept_entry must be a non-negative integer.", field="first_kept_entry"
            )
        await self._require(session_id)
        self._check_idle(session_id, Conflict)
        item = _validated(Item, {"summary": summary, "first_kept_entry": first_kept_entry})
        async with self._leased(session_id):
            await self._append(session_id, item)

    async def fork_session(self, session_id: str, user_message_index: int) -> Session:
        """A new session holding the history before the ``user_message_index``-th user message."""
        if isinstance(user_message_index, bool) or not isinstance(user_message_index, int):
            raise InvalidRequest(
                "user_message_index must be an integer.", field="user_message_index"
            )
        parent = await self.get_session(session_id)
        user_positions = [
            i
            for i, item in enumerate(parent.messages)
            if item.message is not None and item.message.message.role == "user"
        ]
        if not 0 <= user_message_index < len(user_positions):
            raise InvalidRequest(
                f"user_message_index must be between 0 and {len(user_positions) - 1}.",
                field="user_message_index",
            )
        # The next number after the parent's own forks ("<title> (fork N)"), not after forks
        # of its forks, so titles stay unique and in order.
        base = parent.title or "Untitled session"
        forks = await self.store.last_fork_number(base)
        kept = parent.messages[: user_positions[user_message_index]]
        usages = [i.message.message for i in kept if i.message is not None]
        # The fork's usage is that of the history it keeps, not the parent's total. Sums of
        # valid numbers can leave the valid range (two costs of 1e308): checked like input.
        usage = _validated(
            _Usage,
            {
                "input_tokens": sum(m.usage.input_tokens for m in usages if m.usage),
                "output_tokens": sum(m.usage.output_tokens for m in usages if m.usage),
                "cost": sum(m.cost or 0.0 for m in usages),
            },
            prefix="fork",
        )
        fork = parent.model_copy(
            deep=True,
            update={
                "id": new_id(),
                "title": f"{base} (fork {forks + 1})",
                "messages": kept,
                "created_at": utc_now(),
                "parent_id": parent.id,
                "starred": False,
                **usage.model_dump(),
            },
        )
        await self.store.create_session(fork)
        return fork

    # -- export / import ------------------------------------------------------------------

    async def export_session_for_recovery(self, session_id: str) -> dict[str, Any]:
        """Every stored field, versioned, so ``import_session`` can recreate the session."""
        session = await self.get_session(session_id)
        return {**session.to_json(), "recovery_version": RECOVERY_VERSION}

    async def export_session_notebook(self, session_id: str) -> dict[str, Any]:
        """The session as an nbformat 4.5 notebook carrying its recovery record (SPEC 6)."""
        return session_to_notebook(await self.get_session(session_id))

    async def import_session(self, data: Mapping[str, Any]) -> Session:
        """Recreate a session from a recovery export or an exported notebook.

        What a client could set on create is checked as create checks it (strict types, the
        working dir's rules). The exported id is kept when it is a safe identifier not taken
        on this server, else replaced by a fresh one. Nothing is created when the input is
        refused.
        """
        if is_notebook(data):
            session = notebook_to_session(data)
            _validated(SessionTemplate, session_record(data), "metadata.nbsession.session")
            return await self._create_imported(session)
        if not isinstance(data, Mapping):
            raise InvalidRequest("The import must be a JSON object.")
        version = data.get("recovery_version")
        if isinstance(version, bool) or version != RECOVERY_VERSION:
            raise InvalidRequest(
                f"Not an nbsession recovery export or notebook (recovery_version {version!r}, "
                f"expected {RECOVERY_VERSION}).",
                field="recovery_version",
            )
        _validated(SessionTemplate, data)
        session = _validated(Session, data)
        check_tool_results(session)
        return await self._create_imported(session)

    async def _create_imported(self, session: Session) -> Session:
        update = {"working_dir": self._working_dir(session.working_dir)}
        if (
            not is_safe_id(session.id)
            or self._deleted(session.id)
            or await self.store.has_session(session.id)
        ):
            update["id"] = new_id()
        session = session.model_copy(update=update)
        await self.store.create_session(session)
        self._ready.set()
        return session

    async def batch_delete_sessions(self, session_ids: Sequence[str]) -> dict[str, Any]:
        ids = _id_list(session_ids)
        failed = []
        for session_id in ids:
            try:
                await self.delete_session(session_id)
            except UnknownSession:
                failed.append(session_id)
        return {
            "deleted_count": len(ids) - len(failed),
            "failed_count": len(failed),
            "failed_ids": failed,
        }

    async def batch_export_sessions(self, session_ids: Sequence[str]) -> dict[str, Any]:
        ids = _id_list(session_ids)
        sessions = [await self.export_session_for_recovery(session_id) for session_id in ids]
        return {
            "export_format": "json",
            "timestamp": rfc3339(utc_now()),
            "sessions": sessions,
            "session_count": len(sessions),
        }

    # -- live state -----------------------------------------------------------------------

    async def get_session_status(
        self, session_id: str, wait: float | None = None
    ) -> dict[str, Any]:
        """A light view of the session's state, optionally after waiting for its runtime."""
        await self._require(session_id)
        if wait and not await self.wait_session_attached(session_id, wait):
            raise SessionNotReady(session_id, wait)
        head = await self._refresh(session_id)
        session = await self._current(session_id)
        status = {
            "id": session.id,
            "title": session.title,
            "streaming": self._is_busy(session_id) or self._elsewhere(head),
            "agent": self._agent_name(session_id),
            "input_tokens": session.input_tokens,
            "output_tokens": session.output_tokens,
            "num_messages": len(session.chat_messages()),
        }
        activity = self._activity(session_id, head)
        return status if activity is None else {**status, "activity": activity}

    def _activity(self, session_id: str, head: SessionHead) -> dict[str, Any] | None:
        """What the session's turn is doing now (``/status`` shows it only while a turn runs)."""
        activity = self._local_activity(session_id)
        if activity is None and self._elsewhere(head):
            return {"state": "running_on_another_server", "server": head.lease_owner}
        return activity

    def _local_activity(self, session_id: str, with_duration: bool = True) -> dict[str, Any] | None:
        """What the session's turn does on this server, from memory; None when none runs.
        Lists leave the duration out, so a row read every second changes only with the state."""
        live = self._live(session_id)
        if live is not None and live.runtime.streaming and live.runtime.activity is not None:
            activity = live.runtime.activity
            shown = {
                "state": activity.state,
                "tool": activity.tool or None,
                "since": rfc3339(activity.since),
            }
            if with_duration:
                shown["duration"] = round((utc_now() - activity.since).total_seconds(), 3)
            return shown
        if self._is_busy(session_id):
            return {"state": "starting"}
        return None

    async def get_session_snapshot(self, session_id: str) -> dict[str, Any]:
        """Stored fields, live state and ``last_event_seq``: the resync point for ``/events``."""
        await self._require(session_id)
        head = await self._refresh(session_id)
        session = await self._copy(session_id)
        seq, _ = self.last_event_seq(session_id)
        return {
            "id": session.id,
            "title": session.title,
            "created_at": session.to_json()["created_at"],
            "working_dir": session.working_dir,
            "messages": [m.to_json() for m in session.chat_messages()],
            "tools_approved": session.tools_approved,
            "permissions": session.permissions.to_json() if session.permissions else None,
            "input_tokens": session.input_tokens,
            "output_tokens": session.output_tokens,
            "cost": session.cost,
            "streaming": self._is_busy(session_id) or self._elsewhere(head),
            "agent": self._agent_name(session_id),
            "kernel_id": session.kernel_id,
            "notebook_path": session.notebook_path,
            "pending": self._pending_prompt(session_id),
            "turn_start_seq": self._turn_start_seq(session_id),
            "partial_tool_calls": self._partial_tool_calls(session_id),
            "last_event_seq": seq,
        }

    def _partial_tool_calls(self, session_id: str) -> list[dict[str, Any]]:
        """The running turn's tool calls whose arguments are streaming and not stored yet,
        each as one ``partial_tool_call`` with its arguments up to ``last_event_seq``: a client
        that joins mid-call appends the pieces after that seq to these."""
        live = self._live(session_id)
        if live is None or not live.runtime.streaming:
            return []
        return live.recorder.deltas.partial_calls()

    def _turn_start_seq(self, session_id: str) -> int | None:
        """Where the running turn's events begin (None when none runs here): a client that
        lost its turn's end in a gap tells by it whether a later turn runs now."""
        live = self._live(session_id)
        if live is None or not live.runtime.streaming:
            return None
        return live.runtime.turn_start_seq

    def _pending_prompt(self, session_id: str) -> dict[str, Any] | None:
        """The prompt event the running turn waits on, as ``/events`` sent it, else None.

        A client that connects (or reloads) while a turn waits for a person shows the prompt
        from this, even when the event is no longer among those it replays. The runtime's
        activity says whether it waits; the log's newest prompt event is what it waits on.
        """
        live = self._live(session_id)
        state = self._sessions.get(session_id)
        if live is None or state is None or state.log is None or not live.runtime.streaming:
            return None
        activity = live.runtime.activity
        if activity is None or activity.state not in WAITING_STATES:
            return None
        entry = state.log.last_of(PROMPT_EVENTS)
        return None if entry is None else json.loads(entry.data)

    # -- events ---------------------------------------------------------------------------

    async def subscribe_events(
        self, session_id: str, since: int | None = None
    ) -> EventSubscription:
        """Replay after ``since`` then tail the session's log (created on first subscription)."""
        await self._require(session_id)
        return self._log(session_id).subscribe(since)

    def register_event_source(self, session_id: str, source: EventSource) -> None:
        """Pump an out-of-band runtime's events into the session's log until it returns."""
        state = self._state(session_id)
        event_log = self._log(session_id)

        def send(event: Mapping[str, Any]) -> None:
            with contextlib.suppress(LogClosed):
                event_log.append(event)

        async def pump() -> None:
            try:
                await source(send)
            finally:
                state.pump = None
                event_log.close("session ended")

        state.pump = asyncio.get_running_loop().create_task(pump())

    def has_event_source(self, session_id: str) -> bool:
        state = self._sessions.get(session_id)
        return state is not None and state.log is not None

    def last_event_seq(self, session_id: str) -> tuple[int, bool]:
        """The newest seq and whether a log is in memory; a released log still tells its seq."""
        state = self._sessions.get(session_id)
        if state is None:
            return 0, False
        if state.log is not None:
            return state.log.last_seq, True
        return state.seq_floor, False

    async def stream_events(
        self, session_id: str, since: int | None, send: Callable[[LogEntry], None]
    ) -> bool:
        """Call ``send`` for each replayed then live event; False when there is no log."""
        state = self._sessions.get(session_id)
        if state is None or state.log is None:
            return False
        async for entry in state.log.subscribe(since):
            send(entry)
        return True

    def register_follow_up_injector(self, session_id: str, injector: FollowUpInjector) -> None:
        """Route follow-ups for an attached session through its owner instead of the queue."""
        self._state(session_id).injector = injector

    def attach_runtime(self, session_id: str, runtime: AgentRuntime) -> None:
        """Register a runtime built elsewhere (an in-kernel host) under ``session_id``."""
        if runtime.session_id != session_id:
            raise InvalidRequest("The runtime belongs to another session.", field="session_id")
        state = self._state(session_id)
        state.live = Live(runtime.recorder, runtime)
        state.external = True
        if state.log is None:
            state.log = runtime.recorder.log  # type: ignore[assignment]
        self._mark_attached(state)

    def new_recorder(self, session: Session) -> SessionRecorder:
        """The recorder a runtime built outside the manager must write through."""
        return SessionRecorder(
            session,
            self.store,
            self._log(session.id),
            delta_interval=self.config.delta_flush_interval,
        )

    def session_phase(self, session_id: str) -> Phase:
        """Where the session is in its life on this server (``idle`` if never touched here)."""
        state = self._sessions.get(session_id)
        return state.phase if state is not None else Phase.IDLE

    # -- internals ------------------------------------------------------------------------

    def _state(self, session_id: str) -> SessionState:
        """The session's state on this server, created on first use."""
        state = self._sessions.get(session_id)
        if state is None:
            state = self._sessions[session_id] = SessionState(session_id)
        return state

    def _live(self, session_id: str) -> Live | None:
        state = self._sessions.get(session_id)
        return state.live if state is not None else None

    def _lives(self) -> list[Live]:
        """The runtimes in memory, least recently run first."""
        return [state.live for state in self._sessions.values() if state.live is not None]

    def _deleted(self, session_id: str) -> bool:
        state = self._sessions.get(session_id)
        return state is not None and state.deleted

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` in the background; shutdown waits for it."""
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- several servers on one store ------------------------------------------------------

    def _elsewhere(self, head: SessionHead) -> bool:
        """Another server holds the session's lease (it runs or edits it now)."""
        return head.lease_owner is not None and head.lease_owner != self.server_id

    async def _hold_lease(self, state: SessionState) -> None:
        """Count one more holder of the session's lease here, taking it from the store when
        this server held none; ``SessionBusy`` while another server's lease stands."""
        async with state.lease_lock:
            if not state.lease_holds:
                ttl = self.config.lease_ttl
                if not await self.store.acquire_lease(state.id, self.server_id, ttl):
                    # A server of this machine that died (kill -9, a crash) need not be
                    # waited for: its lease is taken over at once.
                    holder = (await self.store.session_head(state.id)).lease_owner or ""
                    if not _dead_here(holder) or not await self.store.acquire_lease(
                        state.id, self.server_id, ttl, replacing=holder
                    ):
                        raise SessionBusy(state.id)
                if state.live is not None:  # ours again: its next refresh catches up
                    state.live.recorder.fenced = False
                state.lease_keeper = asyncio.get_running_loop().create_task(self._keep_lease(state))
            state.lease_holds += 1

    async def _drop_lease(self, state: SessionState) -> None:
        """Count one holder less; the last one gives the lease back to the store."""
        async with state.lease_lock:
            state.lease_holds -= 1
            if state.lease_holds:
                return
            keeper, state.lease_keeper = state.lease_keeper, None
            if keeper is not None:
                keeper.cancel()
            with contextlib.suppress(StoreError):  # logged by the store; the lease expires
                await self.store.release_lease(state.id, self.server_id)

    async def _keep_lease(self, state: SessionState) -> None:
        """Renew the lease while held; if another server took it (this one stalled past the
        expiry), stop the turn here rather than write into a session it no longer owns."""
        while True:
            await asyncio.sleep(self.config.lease_renew_interval)
            ttl = self.config.lease_ttl
            try:
                held = await self.store.renew_lease(state.id, self.server_id, ttl)
            except UnknownSession:
                return  # deleted: its turn is being cancelled
            except StoreError:
                continue  # logged by the store; the next renewal comes before the expiry
            if not held:
                if state.live is not None:
                    state.live.recorder.fence()
                    state.live.runtime.cancel()
                return

    @contextlib.asynccontextmanager
    async def _leased(self, session_id: str) -> AsyncIterator[None]:
        """Hold the session's lease around a write that needs it idle on every server."""
        await self._require(session_id)
        state = self._state(session_id)
        await self._hold_lease(state)
        try:
            yield
        finally:
            await self._drop_lease(state)

    async def _refresh(self, session_id: str) -> SessionHead:
        """The session's head in the store, after reloading the in-memory copy if another
        server wrote the session since it was read.

        Never while a turn or a write of this server is under way: those own the copy, and
        the next check after them catches up. The head is read before the session, so a write
        landing in between only makes the next check reload again.
        """
        head = await self.store.session_head(session_id)
        state = self._sessions.get(session_id)
        live = state.live if state is not None else None
        if live is None or state is None or state.external:
            return head
        recorder = live.recorder
        if head.version == recorder.version or live.runtime.streaming or recorder.pending:
            return head
        seen = recorder.version
        session = await self.store.get_session(session_id)
        if (
            state.live is live
            and recorder.version == seen
            and not (live.runtime.streaming or recorder.pending)
        ):
            recorder.reload(session, head.version)
            live.runtime.history_changed()
        return head

    async def _runtime_for(
        self, session_id: str, team: TeamConfig, agent_name: str
    ) -> tuple[Live, bool]:
        """The session's runtime for that agent, and whether it is a new, unregistered one.

        A new one is built when the agent or its file changed; the caller registers it once
        its first run has started, so a run that fails leaves the old one in place.
        """
        live = self._live(session_id)
        if live is not None and live.runtime.team is team and live.runtime.agent_name == agent_name:
            return live, False
        if live is not None:
            recorder = live.recorder
        else:
            head = await self.store.session_head(session_id)  # first: see ``_refresh``
            session = await self._stored(session_id)
            recorder = SessionRecorder(
                session,
                self.store,
                self._log(session_id),
                head.version,
                owner=self.server_id,
                delta_interval=self.config.delta_flush_interval,
            )
        runtime = await AgentRuntime.create(
            recorder,
            team,
            agent_name,
            data_dir=self._data_dir(),
            jupyter=self.config.jupyter,
            steer_capacity=self.config.steer_capacity,
            followup_capacity=self.config.followup_capacity,
            title_model=self.config.title_model,
            models=self._models,
        )
        return Live(recorder, runtime), True

    async def _register(self, state: SessionState, live: Live) -> None:
        """Make ``live`` the session's runtime (before its run's task first runs)."""
        for name, value in state.late_fields.items():
            setattr(live.recorder.session, name, value)
        state.late_fields.clear()
        previous, state.live = state.live, live
        self._sessions.move_to_end(state.id)
        state.released = False
        self._mark_attached(state)
        if previous is not None and previous is not live:
            await previous.runtime.close()
        await self._release_idle(keep=state.id)

    async def _release_idle(self, keep: str) -> None:
        """Release least recently used idle runtimes while more than ``max_live_runtimes`` live.

        A released session keeps everything that matters: its store rows, its agent binding,
        and the numbering of its events (a log still being read stays; otherwise only its last
        seq is kept and a new log continues from it). It is rebuilt on its next use. ``keep``
        (the session just registered) is never released: its caller is about to use it.
        """
        excess = len(self._lives()) - self.config.max_live_runtimes
        released: list[Live] = []
        for state in list(self._sessions.values()):
            if excess <= 0:
                break
            live = state.live
            if live is None or state.id == keep or not self._releasable(state, live):
                continue
            state.live = None
            state.released = True
            if state.binding is not None:  # the agent it runs as now (a handoff changes it)
                state.binding = (state.binding[0], live.runtime.agent_name)
            released.append(live)
            excess -= 1
            event_log = state.log
            if event_log is not None and not event_log.subscriber_count and not event_log.closed:
                state.seq_floor = event_log.last_seq
                state.log = None
        for live in released:  # closed after the bookkeeping, which must not interleave
            await live.runtime.close()

    def _releasable(self, state: SessionState, live: Live) -> bool:
        queues = live.runtime.queue_status()
        return (
            not state.external
            and state.injector is None
            and state.pump is None
            and not state.reviving
            and not state.busy
            and not queues["followup"]["depth"]
            and not queues["steer"]["depth"]
        )

    async def _revived(self, session_id: str) -> Live | None:
        """The session's runtime, rebuilt if it was released while idle; None if it has none."""
        state = self._sessions.get(session_id)
        if state is None or state.live is not None or not state.released:
            return state.live if state is not None else None
        assert state.binding is not None  # a released session keeps its binding
        agent_id, agent_name = state.binding
        state.reviving = True
        try:
            team = self.sources.get(agent_id)
            rebuilt, _ = await self._runtime_for(session_id, team, agent_name)
            if state.live is not None:  # another caller revived it meanwhile
                await rebuilt.runtime.close()
                return state.live
            await self._register(state, rebuilt)
            return rebuilt
        finally:
            state.reviving = False
            state.late_fields.clear()

    def _current_agent(self, session_id: str, team: TeamConfig) -> str | None:
        """The agent a run that names none goes on with: the one the session's runtime runs
        as now (another than it was started for after a ``handoff``), or ran as before it
        was released, else the root."""
        state = self._sessions.get(session_id)
        if state is None:
            return None
        if state.live is not None and state.live.runtime.team is team:
            return state.live.runtime.agent_name
        if state.binding is not None and state.binding[0] == team.source_id:
            return state.binding[1]
        return None

    def _agent_name(self, session_id: str) -> str:
        """The agent the session runs on here ("" before its first run)."""
        state = self._sessions.get(session_id)
        if state is None:
            return ""
        if state.live is not None:
            return state.live.runtime.agent_name
        return state.binding[1] if state.binding is not None else ""

    def _mark_attached(self, state: SessionState) -> None:
        state.attached.set()
        self._ready.set()

    def _log(self, session_id: str) -> RingEventLog:
        state = self._state(session_id)
        if state.log is None:
            state.log = RingEventLog(
                self.config.event_log_capacity,
                start_seq=state.seq_floor,
                max_unread_bytes=self.config.max_unsent_bytes,
            )
            state.seq_floor = 0
        return state.log

    def _is_busy(self, session_id: str) -> bool:
        state = self._sessions.get(session_id)
        return state is not None and state.busy

    def _check_idle(self, session_id: str, error: type[Conflict] = SessionBusy) -> None:
        if self._is_busy(session_id):
            if error is SessionBusy:
                raise SessionBusy(session_id)
            raise error(f"Session {session_id!r} is running a turn; try again when it ends.")

    async def _live_runtime(self, session_id: str) -> AgentRuntime:
        """The session's runtime; ``UnknownSession`` or ``SessionNotRunning`` when it has none."""
        live = await self._revived(session_id)
        if live is None:
            await self._require(session_id)
            raise SessionNotRunning(session_id, "has no runtime (run it first)")
        return live.runtime

    async def _require(self, session_id: str) -> None:
        if self._live(session_id) is not None:
            return
        if self._deleted(session_id) or not await self.store.has_session(session_id):
            raise UnknownSession(session_id)

    async def _stored(self, session_id: str) -> Session:
        if self._deleted(session_id):
            raise UnknownSession(session_id)
        return await self.store.get_session(session_id)

    async def _current(self, session_id: str) -> Session:
        """The session itself (not a copy) when live, else as stored; read-only use."""
        live = self._live(session_id)
        return live.recorder.session if live is not None else await self._stored(session_id)

    async def _update(self, session_id: str, **fields: Any) -> None:
        """Write session fields: through the running turn here, else under the lease."""
        live = self._live(session_id)
        if live is not None and self._is_busy(session_id):
            await live.recorder.update(**fields)
            return
        async with self._leased(session_id):
            await self._update_idle(session_id, fields)

    async def _update_idle(self, session_id: str, fields: dict[str, Any]) -> None:
        live = self._live(session_id)
        if live is not None:
            await live.recorder.update(**fields)
            return
        if self._deleted(session_id):
            raise UnknownSession(session_id)
        await self.store.update_session(session_id, fields, owner=self.server_id)
        state = self._sessions.get(session_id)
        if state is None:
            return
        if state.live is not None:  # registered while we wrote, from an older read: catch up
            for name, value in fields.items():
                setattr(state.live.recorder.session, name, value)
        elif state.starting or state.reviving:
            state.late_fields.update(fields)

    async def _append(self, session_id: str, item: Item) -> None:
        live = self._live(session_id)
        if live is not None:
            await live.recorder.append(item)
            return
        await self.store.append_item(session_id, item, owner=self.server_id)

    def _data_dir(self) -> str:
        """Where toolsets keep state across sessions: beside the store ("" for ``:memory:``)."""
        if self.config.db_path == ":memory:":
            return ""
        return os.path.dirname(os.path.abspath(self.config.db_path))

    def _working_dir(self, value: str) -> str:
        """An existing directory inside an allowed root (SPEC 11), relative ones resolved
        against the host's working dir (jupyter-server's ``root_dir``).

        The roots are that directory and ``allowed_roots``. Containment is checked on the real
        path, so a symbolic link inside a root cannot lead a session (and its filesystem
        tools) out of it; the path is kept as given, links and all.
        """
        default = os.path.abspath(self.config.working_dir or os.getcwd())
        value = value.strip()
        if not value:
            return default
        if ".." in value.replace("\\", "/").split("/"):
            raise InvalidRequest("working_dir may not contain '..'.", field="working_dir")
        path = os.path.abspath(os.path.join(default, value))
        if not os.path.isdir(path):
            raise InvalidRequest(f"working_dir {value!r} is not a directory.", field="working_dir")
        roots = [default, *(os.path.abspath(root) for root in self.config.allowed_roots)]
        real = os.path.realpath(path)
        if not any(_is_within(real, os.path.realpath(root)) for root in roots):
            raise InvalidRequest(
                f"working_dir {value!r} is outside the server's root directory and allowed "
                f"roots ({', '.join(roots)}).",
                field="working_dir",
            )
        return path

    def _notebook_path(self, value: str) -> str:
        """A notebook's path as the server's contents API names it: relative to the host's
        root when it lies inside (jupyter-server tells a kernel its notebook's absolute path
        in ``JPY_SESSION_NAME``), as given otherwise (a notebook elsewhere, a relative path).
        """
        if not os.path.isabs(value):
            return value
        path = os.path.normpath(value)
        root = os.path.abspath(self.config.working_dir or os.getcwd())
        if path == root or not _is_within(path, root):
            return value
        return os.path.relpath(path, root).replace(os.sep, "/")


def _is_within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _validated(model: Any, data: Mapping[str, Any], prefix: str = "") -> Any:
    """Validate JSON into a model; the error names the first offending field."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        loc = ".".join(str(part) for part in first["loc"])
        field = ".".join(part for part in (prefix, loc) if part) or None
        raise InvalidRequest(f"{field or 'body'}: {first['msg']}", field=field) from exc
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(f"{prefix or 'body'}: {exc}", field=prefix or None) from exc


def _user_messages(raw: Any, field: str) -> list[Message]:
    """Request messages (``{role, content, multi_content?}``) as user messages to store.

    At least one is required: every route that takes messages acts on them.
    """
    if not isinstance(raw, Sequence) or isinstance(raw, (str, bytes)):
        raise InvalidRequest(f"{field} must be an array of messages.", field=field)
    if not raw:
        raise InvalidRequest("At least one message is required.", field=field)
    messages = []
    for index, entry in enumerate(raw):
        where = f"{field}[{index}]"
        if not isinstance(entry, Mapping):
            raise InvalidRequest(f"{where} must be an object.", field=where)
        role = entry.get("role") or "user"
        if role != "user":
            raise InvalidRequest(f"{where}.role must be 'user'.", field=f"{where}.role")
        content = entry.get("content", "")
        if not isinstance(content, str):
            raise InvalidRequest(f"{where}.content must be a string.", field=f"{where}.content")
        multi = entry.get("multi_content")
        if multi is not None and not (
            isinstance(multi, list) and all(isinstance(part, dict) for part in multi)
        ):
            raise InvalidRequest(
                f"{where}.multi_content must be an array of objects.",
                field=f"{where}.multi_content",
            )
        if not content and not multi:
            raise InvalidRequest(f"{where} is empty.", field=f"{where}.content")
        try:  # checked now: a queued message is stored only later, by a turn
            messages.append(storable(user_message(content, multi_content=multi or None)))
        except UnstorableValue as exc:
            raise UnstorableValue(f"{where}: {exc.message}", field=where) from None
    return messages


def _id_list(raw: Any) -> list[str]:
    """Session ids from a batch request, each once, in the order given."""
    if not isinstance(raw, list) or not all(isinstance(i, str) for i in raw):
        raise InvalidRequest("session_ids must be an array of strings.", field="session_ids")
    if not raw:
        raise InvalidRequest("session_ids cannot be empty.", field="session_ids")
    return list(dict.fromkeys(raw))


class _Usage(BaseModel):
    """The counters ``update_session_tokens`` sets, typed strictly (``"5"`` is not a count)."""

    model_config = ConfigDict(strict=True, allow_inf_nan=False)

    input_tokens: Count
    output_tokens: Count
    cost: Money = 0.0


def _dead_here(owner: str) -> bool:
    """True when ``owner`` (a default ``server_id``) was a process of this machine that is
    gone. Only where signal 0 probes a process without touching it (POSIX)."""
    host, _, rest = owner.rpartition(":")[0].rpartition(":")
    if os.name != "posix" or host != socket.gethostname() or not rest.isdigit():
        return False
    pid = int(rest)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists, under another user
        return False
    return False


async def _wait_event(event: asyncio.Event, timeout: float) -> bool:
    if event.is_set():  # wait_for with a zero timeout would give up before checking
        return True
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except asyncio.TimeoutError:
        return False
    return True
