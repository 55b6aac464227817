"""Sessions and turns: ``AsyncSession``/``AsyncTurn`` and their sync twins ``Session``/``Turn``.

The async classes hold the logic, over a ``Transport``. The sync classes run the same
coroutines on the SDK's loop thread (``_runner``), so they work in a notebook cell, whose
kernel loop is already running, and in a plain script alike. Naming follows httpx: a class
and its ``Async`` twin have the same methods, awaited or not.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import json
import logging
import os
import queue
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from . import display
from ._runner import LoopThread, wait
from .errors import NBSessionError, SessionNotRunning, TurnFailed
from .results import Event, FollowUp, Pending, TurnBuilder, TurnResult
from .stream import EventStream
from .transport import Transport

# The SDK's notices go through logging, never bare prints: a turn waiting for an answer that
# no pane shows is a warning, so Python's default handler still shows it (on stderr) to a
# script or notebook that configured nothing, and an application can route or silence it.
log = logging.getLogger("nbsession.sdk")

T = TypeVar("T")

DEFAULT_AGENT = "default"
CANCEL_GRACE = 10.0
"""Seconds an interrupted ``run()`` waits for the cancelled turn to stop before it re-raises."""


def _user(text: str) -> list[dict[str, Any]]:
    if not isinstance(text, str):
        raise TypeError(f"A prompt is a string, not {type(text).__name__}.")
    return [{"role": "user", "content": text}]


@dataclass(frozen=True)
class ModelChoice:
    ref: str
    name: str
    provider: str
    model: str
    is_default: bool
    is_current: bool


@dataclass(frozen=True)
class Models:
    """The models the session's current agent can use (``GET .../models``)."""

    agent: str
    current_model_ref: str
    models: list[ModelChoice]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Models:
        return cls(
            agent=data.get("agent", ""),
            current_model_ref=data.get("current_model_ref", ""),
            models=[
                ModelChoice(
                    ref=m.get("ref", ""),
                    name=m.get("name", ""),
                    provider=m.get("provider", ""),
                    model=m.get("model", ""),
                    is_default=bool(m.get("is_default", False)),
                    is_current=bool(m.get("is_current", False)),
                )
                for m in data.get("models") or []
            ],
        )


def approval_hint(pending: Pending, where: str) -> str:
    """What a person reads when a turn waits and no pane shows it: what, and how to answer."""
    sid = pending.session_id
    if where.startswith("local:"):
        # A session inside this process: no server, sidebar or other kernel can reach it.
        elsewhere, rest = "from the pane or another thread of this kernel", ""
    else:
        elsewhere = "from the sidebar or a pane, or from another thread, kernel or script"
        rest = f"or over REST: POST {where}/api/sessions/{sid}/"
    if pending.kind == "approval":
        args = json.dumps(pending.arguments, ensure_ascii=False)
        if len(args) > 300:
            args = args[:300] + "…"
        how = f"{rest}resume " + '{"confirmation": "approve"}' if rest else ""
        return (
            f"[nbsession] Session {sid} waits for approval: {pending.tool}({args})\n"
            f"  Answer {elsewhere} with session.approve(), .approve_session(), "
            f".approve_tool({pending.tool!r}) or .reject('reason'){', ' + how if how else ''}. "
            "Interrupt to cancel the turn."
        )
    how = f"{rest}elicitation" if rest else ""
    return (
        f"[nbsession] Session {sid} asks: {pending.message}\n"
        f"  Answer {elsewhere} with session.answer({{...}}) or session.decline()"
        f"{', ' + how if how else ''}. Interrupt to cancel the turn."
    )


class AsyncTurn:
    """A started turn, followed in a task of the loop it was started on.

    ``await turn.result()`` gives the ``TurnResult`` (raising ``TurnFailed`` if the turn
    ended with an error); ``turn.pending`` is what it waits for now, if anything.

    The reader never waits for an end that cannot come: when a ``gap`` or a reconnect shows
    the session idle, or running a later turn (its ``turn_start_seq``), and every event up to
    that snapshot is read without this turn's ``stream_stopped``, the turn is ended from the
    stored messages (``TurnResult.stop_reason`` is then ``unknown``).
    """

    def __init__(
        self,
        session: AsyncSession,
        stream: EventStream,
        on_pending: Callable[[Pending], None] | None = None,
        on_end: Callable[[], None] | None = None,
    ) -> None:
        self.session = session
        self.start_seq = stream.last_seq
        """Events after this seq belong to this turn (known once ``start`` has returned)."""
        self._stream = stream
        self._builder = TurnBuilder(session.id)
        self._on_pending = on_pending
        self._on_end = on_end
        self._first = asyncio.Event()
        if self.start_seq is not None:
            self._first.set()
        self._asked = asyncio.Event()
        self._over: tuple[Mapping[str, Any], bool] | None = None
        """The last snapshot (after a gap or a reconnect) that showed this turn over, and
        whether a later turn runs in it."""
        self._task = asyncio.ensure_future(self._follow())
        self._task.add_done_callback(self._ended)

    async def _follow(self) -> TurnResult:
        builder = self._builder
        try:
            while not builder.done:
                batch = await self._stream.next_batch()
                if not batch:
                    break
                for event in batch:
                    self._take(event)
                    if builder.done:
                        break
                over = self._over
                if not builder.done and over is not None:
                    snapshot, later_turn = over
                    # Every event up to that snapshot is read, and the end was not among them.
                    if (self._stream.last_seq or 0) >= int(snapshot.get("last_event_seq", 0)):
                        builder.finish_from_store(snapshot, later_turn)
        finally:
            await self._stream.aclose()
        return builder.result

    def _take(self, event: Event) -> None:
        builder = self._builder
        if event.snapshot is not None:  # a gap or a reconnect: where the session stands now
            self._over = self._turn_over(event.snapshot)
            if event.type == "resync":
                return  # the stream's, not the server's: the turn's events leave it out
        before = builder.pending
        builder.feed(event)
        if self.start_seq is None and event.seq is not None:
            self.start_seq = event.seq - 1
            self._first.set()
        pending = builder.pending
        if pending is not None and pending is not before:
            self._asked.set()
            if self._on_pending is not None:
                self._on_pending(pending)

    def _turn_over(self, snapshot: Mapping[str, Any]) -> tuple[Mapping[str, Any], bool] | None:
        """``(snapshot, later_turn)`` when ``snapshot`` shows this turn over, else None."""
        if not snapshot.get("streaming"):
            return snapshot, False
        running = snapshot.get("turn_start_seq")
        if isinstance(running, int) and self.start_seq is not None and running > self.start_seq:
            return snapshot, True
        return None

    async def _opened(self) -> None:
        """Until the turn's first event is in (``start_seq`` is known) or the turn is over."""
        first = asyncio.ensure_future(self._first.wait())
        try:
            await asyncio.wait({first, self._task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            first.cancel()

    def _ended(self, task: asyncio.Future[TurnResult]) -> None:
        if not task.cancelled():
            task.exception()  # retrieved here; result() raises it again for its caller
        if self._on_end is not None:
            self._on_end()

    @property
    def done(self) -> bool:
        return self._task.done()

    @property
    def pending(self) -> Pending | None:
        return self._builder.pending

    @property
    def events(self) -> list[Event]:
        """The turn's events so far."""
        return list(self._builder.result.events)

    async def wait_pending(self) -> Pending | None:
        """Wait until the turn asks for an answer (returned) or ends (None)."""
        if self.pending is None and not self.done:
            self._asked.clear()
            asked = asyncio.ensure_future(self._asked.wait())
            try:
                await asyncio.wait({asked, self._task}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                asked.cancel()
        return self.pending

    @property
    def current_result(self) -> TurnResult:
        """The turn as it stands (its final ``TurnResult`` once over); never raises."""
        return self._builder.result

    def on_end(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (on this turn's loop) once the turn is over, however it ended."""
        self._task.add_done_callback(lambda _task: callback())

    async def result(self) -> TurnResult:
        result = await asyncio.shield(self._task)
        if result.error is not None and result.stop_reason == "error":
            code = f" ({result.error_code})" if result.error_code else ""
            raise TurnFailed(f"The turn failed{code}: {result.error}", result)
        return result

    async def cancel(self) -> None:
        """Cancel the turn (a turn that already ended is left as it is)."""
        if self.done:
            return
        with contextlib.suppress(SessionNotRunning):
            await self.session.cancel()

    async def _stopped(self, timeout: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError, Exception):
            await asyncio.wait_for(asyncio.shield(self._task), timeout)


class AsyncSession:
    """One session over a transport. ``agent`` is the agent source its runs use."""

    def __init__(self, transport: Transport, session_id: str, agent: str = DEFAULT_AGENT) -> None:
        self._transport = transport
        self.id = session_id
        self.agent = agent
        self._next_model = ""

    def __repr__(self) -> str:
        return f"<AsyncSession {self.id} agent={self.agent!r} on {self.where}>"

    @property
    def where(self) -> str:
        """The API URL (``.../nbsession``) or local store the session lives on."""
        return self._transport.where

    # -- turns ----------------------------------------------------------------------------

    async def start(
        self,
        prompt: str,
        model: str | None = None,
        *,
        on_pending: Callable[[Pending], None] | None = None,
        on_end: Callable[[], None] | None = None,
    ) -> AsyncTurn:
        """Start a turn and return it at once (``run(..., wait=False)`` shows a pane too).

        ``on_pending`` is called (on this loop) each time the turn starts waiting for an
        answer; ``on_end`` once it is over.
        """
        ref = model or self._next_model
        messages = _user(prompt)
        transport, sid, agent = self._transport, self.id, self.agent
        starting = asyncio.ensure_future(transport.start_turn(sid, agent, messages, ref))
        try:
            source = await asyncio.shield(starting)
        except asyncio.CancelledError:  # the request may have started the turn already
            await asyncio.shield(self._cancel_started(starting))
            raise
        if ref == self._next_model:
            self._next_model = ""  # applied: the server keeps it as the session's override
        # From the turn's first seq on, so a drop before its first event loses nothing.
        stream = EventStream(
            transport, sid, source.start_seq, opener=_returning(source), resync=True
        )
        turn = AsyncTurn(self, stream, on_pending, on_end)
        try:
            await turn._opened()
        except BaseException:  # cancelled before the caller holds the turn: stop it too
            await asyncio.shield(self._interrupt(turn))
            raise
        return turn

    async def run(
        self, prompt: str, model: str | None = None, wait: bool = True, display: bool = True
    ) -> Any:
        """Run a turn; with ``wait`` return its ``TurnResult``, else the running ``AsyncTurn``.

        ``model`` switches the agent's model from this turn on (a bad ref raises
        ``InvalidRequest`` and nothing is sent). A cancelled wait cancels the turn.
        """
        waiting = {"pane": None, "wait": wait}

        def hint(pending: Pending) -> None:
            if waiting["wait"] and not _answers_while_blocking(waiting["pane"]):
                log.warning("%s", approval_hint(pending, self.where))

        turn = await self.start(prompt, model, on_pending=hint)
        pane = waiting["pane"] = _show(self, turn, display)
        if not wait:
            return turn
        try:
            return await turn.result()
        except (asyncio.CancelledError, KeyboardInterrupt):
            await asyncio.shield(self._interrupt(turn))
            raise
        finally:
            _finish(pane)

    async def _interrupt(self, turn: AsyncTurn) -> None:
        await turn.cancel()
        await turn._stopped(CANCEL_GRACE)

    async def _cancel_started(self, starting: asyncio.Future[Any]) -> None:
        """Cancel the turn a start request begins, once the server answers it: a start that is
        cancelled while its request is out must not leave a turn running that nobody follows."""
        try:
            source = await asyncio.wait_for(starting, CANCEL_GRACE)
        except Exception:  # refused, or no answer in time: there is no turn to cancel
            return
        await source.aclose()
        with contextlib.suppress(SessionNotRunning):
            await self.cancel()

    def events(self, since: int | None = None) -> EventStream:
        """The session's events after ``since`` (all buffered ones if None), then live ones.

        ``async for event in session.events()``: each event once, in order, across dropped
        connections; a ``gap`` event (with ``event.snapshot``) when some were lost. Ends after
        ``session_exited``. A ``partial_tool_call`` holds only the new bytes of its call's
        arguments: append the pieces of one call id (the snapshot's ``partial_tool_calls``
        hold what was streamed up to its ``last_event_seq``).
        """
        return EventStream(self._transport, self.id, since)

    # -- answers --------------------------------------------------------------------------

    async def approve(self) -> None:
        """Run the pending tool call."""
        await self._transport.resume(self.id, "approve", "", "")

    async def approve_session(self) -> None:
        """Run it, and every later tool call of this session without asking."""
        await self._transport.resume(self.id, "approve-session", "", "")

    async def approve_tool(self, name: str) -> None:
        """Run it, and always allow the tool ``name`` in this session."""
        await self._transport.resume(self.id, "approve-tool", "", name)

    async def reject(self, reason: str = "") -> None:
        """Refuse the pending call; the model is told, with ``reason``, and goes on."""
        await self._transport.resume(self.id, "reject", reason, "")

    async def answer(self, content: Mapping[str, Any], elicitation_id: str = "") -> None:
        """Accept the pending elicitation with ``content`` (an object matching its schema)."""
        await self._transport.elicitation(self.id, "accept", content, elicitation_id)

    async def decline(self, elicitation_id: str = "") -> None:
        await self._transport.elicitation(self.id, "decline", None, elicitation_id)

    async def cancel_elicitation(self, elicitation_id: str = "") -> None:
        """Dismiss the pending elicitation without an answer (its ``cancel`` action)."""
        await self._transport.elicitation(self.id, "cancel", None, elicitation_id)

    async def steer(self, text: str) -> None:
        """Add ``text`` to the running turn, before its next model call."""
        await self._transport.steer(self.id, _user(text))

    async def follow_up(self, text: str, idempotency_key: str | None = None) -> FollowUp:
        """Queue ``text`` for its own turn after the current one (or now, if idle)."""
        reply = await self._transport.follow_up(self.id, _user(text), idempotency_key or "")
        return FollowUp(reply.get("status", ""), bool(reply.get("duplicate", False)))

    async def cancel(self) -> None:
        """Stop the running turn (``SessionNotRunning`` if none runs)."""
        await self._transport.cancel(self.id)

    # -- models ---------------------------------------------------------------------------

    async def models(self) -> Models:
        return Models.from_json(await self._transport.models(self.id))

    async def set_model(self, ref: str) -> None:
        """Use model ``ref`` from the next turn on; that turn validates and keeps it."""
        if not isinstance(ref, str) or not ref.strip():
            raise TypeError("A model ref is a non-empty string such as 'openai/gpt-4o'.")
        self._next_model = ref.strip()

    # -- state ----------------------------------------------------------------------------

    async def snapshot(self) -> dict[str, Any]:
        """Stored and live state, with ``last_event_seq`` (the point ``events()`` resyncs to)."""
        return await self._transport.snapshot(self.id)

    async def messages(self) -> list[dict[str, Any]]:
        """The conversation as stored: ``{id, agentName, message: {role, content, ...}}``."""
        return list((await self.snapshot()).get("messages") or [])

    async def recovery(self) -> dict[str, Any]:
        """Every stored field (the full item tree), versioned for ``import_notebook``."""
        return await self._transport.recovery(self.id)

    async def status(self) -> dict[str, Any]:
        return await self._transport.status(self.id)

    async def rename(self, title: str) -> None:
        await self._transport.set_title(self.id, title)

    async def star(self, starred: bool = True) -> None:
        await self._transport.set_starred(self.id, starred)

    async def export_notebook(self, path: str | os.PathLike[str]) -> str:
        """Write the session as an .ipynb file (SPEC 6); returns the path written."""
        notebook = await self._transport.notebook(self.id)
        target = os.fspath(path)
        text = json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"
        await asyncio.to_thread(_write, target, text)
        return target

    async def delete(self) -> None:
        """Delete the session (its running turn is cancelled first)."""
        await self._transport.delete_session(self.id)


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as out:
        out.write(text)


def _returning(source: Any) -> Callable[[], Any]:
    async def opener() -> Any:
        return source

    return opener


def _show(session: Any, turn: Any, enabled: bool) -> Any:
    """The pane for ``turn``; a pane that fails to open leaves the turn to the plain SDK."""
    if not enabled:
        return None
    try:
        return display.open_pane(session, turn)
    except Exception as exc:
        log.warning("no live pane: %s", exc)
        return None


def _answers_while_blocking(pane: Any) -> bool:
    """Whether ``pane`` takes answers while the caller blocks (else the hint is logged).

    A pane says so with its ``answers_while_blocking`` attribute (default: it does)."""
    return pane is not None and bool(getattr(pane, "answers_while_blocking", True))


def _finish(pane: Any) -> None:
    """Let the pane record the ended turn in the caller's thread (so in the running cell)."""
    if pane is not None:
        try:
            display.finish_pane(pane)
        except Exception as exc:
            log.warning("the pane did not record the turn's end: %s", exc)


# -- sync twins ----------------------------------------------------------------------------


def _blocking(method: Callable[..., Any]) -> Callable[..., Any]:
    """The sync twin of an ``AsyncSession`` method: same name, signature and docstring."""

    @functools.wraps(method)
    def call(self: Session, *args: Any, **kwargs: Any) -> Any:
        return self._runner.run(getattr(self._aio, method.__name__)(*args, **kwargs))

    return call


_DONE = object()


class Turn:
    """A running turn seen from sync code: ``turn.result()`` waits for its ``TurnResult``."""

    def __init__(self, session: Session, runner: LoopThread, blocked: bool = False) -> None:
        self.session = session
        self._runner = runner
        self._notices: queue.Queue[tuple[Any, bool]] = queue.Queue()
        """(notice, whether a caller was blocked in ``result()`` when it came), in order."""
        self._blocked = blocked
        self._aio: AsyncTurn | None = None
        self._starting: concurrent.futures.Future[AsyncTurn] | None = None
        self._interrupted = False
        self._pane: Any = None
        self._changed = threading.Condition()

    def _notify(self, notice: Any) -> None:
        """From the SDK loop: the turn asks something (a ``Pending``) or ended (``_DONE``).

        Whether a caller blocks is noted here, on the loop, in the events' order: a question
        asked while ``run()`` blocks is announced even if another thread answered it before
        the caller's thread woke up (as the async ``run()`` does), so what a script prints
        does not depend on how the threads were scheduled."""
        with self._changed:
            self._notices.put((notice, self._blocked))
            self._changed.notify_all()

    @property
    def start_seq(self) -> int | None:
        assert self._aio is not None
        return self._aio.start_seq

    @property
    def done(self) -> bool:
        return self._aio is not None and self._aio.done

    @property
    def pending(self) -> Pending | None:
        return self._aio.pending if self._aio is not None else None

    @property
    def events(self) -> list[Event]:
        return self._aio.events if self._aio is not None else []

    @property
    def current_result(self) -> TurnResult:
        """The turn as it stands (its final ``TurnResult`` once over); never raises."""
        assert self._aio is not None
        return self._aio.current_result

    def on_end(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (on the SDK's loop thread) once the turn is over."""
        assert self._aio is not None
        self._aio.on_end(callback)

    def wait_pending(self, timeout: float | None = None) -> Pending | None:
        """Wait until the turn asks for an answer (returned) or ends (None)."""
        with self._changed:
            self._changed.wait_for(lambda: self.pending is not None or self.done, timeout)
        return self.pending

    def result(self, timeout: float | None = None) -> TurnResult:
        """Wait for the turn's end; each question the turn asks meanwhile (or still waits
        for) is said once when no pane shows it. An interrupt (the notebook's stop button)
        cancels the turn, waits for it to stop, then propagates."""
        assert self._aio is not None
        with self._changed:
            self._blocked = True
        try:
            while True:
                try:
                    notice, while_blocked = self._notices.get(timeout=timeout)
                except queue.Empty:
                    raise TimeoutError(f"The turn did not end within {timeout} s.") from None
                if notice is _DONE:
                    self._notices.put((_DONE, while_blocked))  # for a later result() call
                    return self._runner.run(self._aio.result())
                # A question asked before this call is told only if it still waits.
                asks = while_blocked or self.pending is notice
                if asks and not _answers_while_blocking(self._pane):
                    log.warning("%s", approval_hint(notice, self.session.where))
        except KeyboardInterrupt:
            self._stop()
            raise
        finally:
            with self._changed:
                self._blocked = False

    def cancel(self) -> None:
        assert self._aio is not None
        self._runner.run(self._aio.cancel())

    def _begin(self, prompt: str, model: str | None) -> None:
        """Start the turn on the SDK loop and wait until it is open."""
        self._starting = self._runner.submit(
            self.session.aio.start(
                prompt, model, on_pending=self._notify, on_end=lambda: self._notify(_DONE)
            )
        )
        self._aio = wait(self._starting)

    def _stop(self) -> None:
        """After an interrupt, at any moment of starting or waiting: cancel the turn and wait
        (a bounded time) for it to stop. A start still in flight cancels its own turn."""
        if self._interrupted:
            return  # already stopped for this interrupt (result() inside run())
        self._interrupted = True
        if self._aio is None and self._starting is not None and self._starting.done():
            with contextlib.suppress(BaseException):  # a start that failed started nothing
                self._aio = self._starting.result()
        if self._aio is None:
            return
        self.cancel()
        with contextlib.suppress(Exception):
            wait(self._runner.submit(self._aio._stopped(CANCEL_GRACE)))


class Session:
    """One session, sync; ``session.aio`` is the ``AsyncSession`` it runs (on the SDK loop)."""

    def __init__(self, aio: AsyncSession, runner: LoopThread) -> None:
        self._aio = aio
        self._runner = runner

    def __repr__(self) -> str:
        return f"<Session {self.id} agent={self.agent!r} on {self.where}>"

    @property
    def aio(self) -> AsyncSession:
        """The ``AsyncSession`` underneath (it lives on the SDK's loop thread)."""
        return self._aio

    @property
    def id(self) -> str:
        return self._aio.id

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The SDK loop ``aio`` lives on (where its coroutines must run)."""
        return self._runner.loop

    @property
    def agent(self) -> str:
        return self._aio.agent

    @agent.setter
    def agent(self, value: str) -> None:
        self._aio.agent = value

    @property
    def where(self) -> str:
        """The API URL (``.../nbsession``) or local store the session lives on."""
        return self._aio.where

    def start(self, prompt: str, model: str | None = None) -> Turn:
        """Start a turn and return it at once, without a pane."""
        return self.run(prompt, model, wait=False, display=False)

    def run(
        self, prompt: str, model: str | None = None, wait: bool = True, display: bool = True
    ) -> Any:
        """Run a turn; with ``wait`` return its ``TurnResult``, else the running ``Turn``.

        A registered pane (the widgets) shows the turn live; without one, a turn that waits
        for an approval says so once and keeps waiting for an answer from anywhere.
        ``print(session.run(...))`` prints the answer. An interrupt at any moment (the
        notebook's stop button) cancels the turn, waits for it to stop, then propagates.
        """
        turn = Turn(self, self._runner, blocked=wait)
        pane = None
        try:
            turn._begin(prompt, model)
            pane = turn._pane = _show(self, turn, display)
            if not wait:
                return turn
            return turn.result()
        except KeyboardInterrupt:
            turn._stop()
            raise
        finally:
            if wait:  # a turn left running keeps its pane open
                _finish(pane)

    def events(self, since: int | None = None) -> EventIterator:
        """The session's events, each once, in order, across drops (see ``AsyncSession``)."""
        return EventIterator(self._aio.events(since), self._runner)

    approve = _blocking(AsyncSession.approve)
    approve_session = _blocking(AsyncSession.approve_session)
    approve_tool = _blocking(AsyncSession.approve_tool)
    reject = _blocking(AsyncSession.reject)
    answer = _blocking(AsyncSession.answer)
    decline = _blocking(AsyncSession.decline)
    cancel_elicitation = _blocking(AsyncSession.cancel_elicitation)
    steer = _blocking(AsyncSession.steer)
    follow_up = _blocking(AsyncSession.follow_up)
    cancel = _blocking(AsyncSession.cancel)
    models = _blocking(AsyncSession.models)
    set_model = _blocking(AsyncSession.set_model)
    snapshot = _blocking(AsyncSession.snapshot)
    messages = _blocking(AsyncSession.messages)
    recovery = _blocking(AsyncSession.recovery)
    status = _blocking(AsyncSession.status)
    rename = _blocking(AsyncSession.rename)
    star = _blocking(AsyncSession.star)
    export_notebook = _blocking(AsyncSession.export_notebook)
    delete = _blocking(AsyncSession.delete)


class EventIterator:
    """``for event in session.events()``: a task on the SDK loop reads batches into a queue
    that this thread takes them from, so a fast stream costs no thread hop per event and
    reading overlaps the caller's work. The task pauses while ``READ_AHEAD`` batches wait."""

    READ_AHEAD = 64

    def __init__(self, stream: EventStream, runner: LoopThread) -> None:
        self._stream = stream
        self._runner = runner
        self._batch: Iterator[Event] = iter(())
        self._batches: queue.Queue[list[Event] | BaseException] = queue.Queue()
        self._reader: concurrent.futures.Future[None] | None = None
        self._room = _Room()
        self._ended = False
        self.last_seq = stream.last_seq
        """The seq of the last event handed out (where to resume with ``events(since=...)``)."""

    @property
    def reconnects(self) -> int:
        return self._stream.reconnects

    def __iter__(self) -> EventIterator:
        return self

    def __next__(self) -> Event:
        event = next(self._batch, None)
        if event is None:
            if self._ended:
                raise StopIteration
            if self._reader is None:
                self._reader = self._runner.submit(
                    _read_ahead(self._stream, self._batches, self._room, self.READ_AHEAD)
                )
            batch = self._batches.get()
            room = self._room.event
            if room is not None and not room.is_set():
                self._runner.loop.call_soon_threadsafe(room.set)
            if isinstance(batch, BaseException):
                self._ended = True
                raise batch
            if not batch:
                self._ended = True
                raise StopIteration
            self._batch = iter(batch)
            event = next(self._batch)
        if event.seq is not None:
            self.last_seq = event.seq
        return event

    def close(self) -> None:
        """Close the connection (the session goes on)."""
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
        self._ended = True
        with contextlib.suppress(NBSessionError, RuntimeError):
            self._runner.run(self._stream.aclose())

    def __del__(self) -> None:
        # Not closed by its user: stop reading (the reader closes the connection).
        if self._reader is not None:
            self._reader.cancel()

    def __enter__(self) -> EventIterator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Room:
    """Set while the read-ahead queue has room; shared by an iterator and its reader task."""

    event: asyncio.Event | None = None


async def _read_ahead(
    stream: EventStream,
    batches: queue.Queue[list[Event] | BaseException],
    room: _Room,
    limit: int,
) -> None:
    """Read ``stream`` into ``batches`` (an empty batch at the end, or the error raised),
    pausing while ``limit`` batches wait. Holds no reference to its iterator."""
    ready = room.event = asyncio.Event()
    ready.set()
    try:
        while True:
            if batches.qsize() >= limit:
                ready.clear()
                if batches.qsize() >= limit:  # the taker sets it again after its next get
                    await ready.wait()
            batch = await stream.next_batch()
            batches.put(batch)
            if not batch:
                return
    except asyncio.CancelledError:
        await stream.aclose()
        raise
    except BaseException as exc:
        batches.put(exc)
