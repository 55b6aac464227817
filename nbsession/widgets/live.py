"""A live pane for each turn run from a notebook: the pane factory of the SDK's display seam.

``session.run()`` in a kernel calls :func:`show_turn` (see ``nbsession.sdk.display``), which
shows an :class:`EventPane` in the cell's output and follows the turn:

- a session on a Jupyter server gets ``base_url="auto"``: a view in a page that server
  served reads ``/events`` itself (direct mode); a view that cannot (it says
  ``{"kind": "ready", "mode": "relay"}``) makes the kernel relay the turn's events to it;
- a ``local()`` session is relayed from the start (the browser cannot reach it).

Relayed events go out in batches, at most one message per ``RELAY_INTERVAL``; what a user does
in a relay-mode pane (approve, reject, answer, Stop) goes back through the SDK.

The same output also carries a plain Markdown rendering of the turn (``text/markdown`` next to
the widget's mimebundle), replaced by the finished turn's answer and tool calls when it ends,
so a saved notebook tells the story without live widgets.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator, Mapping
from typing import Any

from IPython.display import DisplayHandle, display

from ..sdk.errors import NBSessionError
from ..sdk.results import Event, TurnResult
from ..sdk.session import AsyncSession, Session
from .markdown import turn_markdown
from .pane import Action, EventPane

RELAY_INTERVAL = 0.05
"""Seconds between two relayed batches: at most ~20 pane updates per second."""

_TURN_END = frozenset({"stream_stopped", "session_exited"})


def show_turn(session: Session | AsyncSession, turn: Any) -> TurnView:
    """Show ``turn`` of ``session`` in the running cell's output (the SDK's pane factory)."""
    return TurnView(session, turn)


class TurnView:
    """One turn's output: the pane, its Markdown twin, and (when needed) the kernel relay."""

    def __init__(self, session: Session | AsyncSession, turn: Any) -> None:
        if isinstance(session, Session):
            self._aio, self._loop = session.aio, session.loop
        else:
            self._aio, self._loop = session, asyncio.get_running_loop()
        self._turn = turn
        self._since = turn.start_seq
        local = session.where.startswith("local:")
        self.pane = EventPane(session_id=session.id, base_url="" if local else "auto")
        self.answers_while_blocking = not local
        """A relay-mode pane's clicks reach a kernel busy in ``run()`` only over a kernel
        subshell (JupyterLab's default, not every front end's): while ``run()`` blocks on a
        local session, it also prints how else to answer (see the README)."""
        self.pane.on_action(self._act)
        self.pane.on_msg(self._on_view_message)
        self._relay: concurrent.futures.Future[None] | None = None
        self._finished = False
        self._lock = threading.Lock()
        self._handle: DisplayHandle = display(
            self._bundle(turn_markdown(session.id, None)), raw=True, display_id=True
        )
        if local:
            self._start_relay()
        turn.on_end(self.finish)

    def _bundle(self, markdown: str) -> dict[str, Any]:
        """The widget's view with ``markdown`` as the alternative a saved notebook shows."""
        bundle = self.pane._repr_mimebundle_()
        data = bundle[0] if isinstance(bundle, tuple) else bundle  # anywidget: (data, metadata)
        return {**data, "text/markdown": markdown}

    def finish(self) -> None:
        """Replace the Markdown twin with the finished turn (once; from any thread)."""
        with self._lock:
            if self._finished:
                return
            self._finished = True
            result: TurnResult = self._turn.current_result
            self._handle.update(self._bundle(turn_markdown(self._aio.id, result)), raw=True)

    # -- relay mode -------------------------------------------------------------------------

    def _on_view_message(self, _widget: object, content: Mapping[str, Any], _b: Any) -> None:
        if content.get("kind") == "ready" and content.get("mode") == "relay":
            self._start_relay()

    def _start_relay(self) -> None:
        if self._relay is None:
            self._relay = self._submit(self._relay_events())

    async def _relay_events(self) -> None:
        """Send the turn's events to the pane, batched, until the turn ends.

        A relay that fell a whole log behind gets a ``gap`` and the snapshot re-read after it:
        the pane rebuilds from that snapshot (``pane.snapshot``) and goes on with the events
        after it; a snapshot of a session no longer streaming means the turn is over.
        """
        stream = self._aio.events(since=self._since)
        try:
            while True:
                batch = await stream.next_batch()
                if not batch:
                    return
                self.pane.relay(_envelopes(batch))
                if any(e.type in _TURN_END or _ended_before(e) for e in batch):
                    return
                await asyncio.sleep(RELAY_INTERVAL)  # later events wait and go as one batch
        finally:
            await stream.aclose()

    # -- answers from a relay-mode pane -----------------------------------------------------

    def _act(self, action: Action) -> None:
        """Send what the user did in the pane through the SDK, without blocking the kernel."""
        call = _answer(self._aio, action)
        if call is not None:
            future = self._submit(call)
            future.add_done_callback(_report)

    def _submit(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)


def _envelopes(batch: list[Event]) -> Iterator[dict[str, Any]]:
    """What the pane reads for ``batch``: each event with its seq, and after a ``gap`` the
    snapshot to rebuild from."""
    for event in batch:
        yield {"seq": event.seq, "event": dict(event.data)}
        if event.type == "gap" and event.snapshot is not None:
            snapshot = {"type": "pane.snapshot", "snapshot": dict(event.snapshot)}
            yield {"seq": None, "event": snapshot}


def _ended_before(event: Event) -> bool:
    """A ``gap`` whose snapshot shows the session idle: the turn ended in what was missed."""
    return event.type == "gap" and event.snapshot is not None and not event.snapshot["streaming"]


def _answer(session: AsyncSession, action: Action) -> Coroutine[Any, Any, None] | None:
    """The SDK call for one pane action (None for one it does not know)."""
    body = action.get("body") or {}
    kind = action.get("kind")
    if kind == "cancel":
        return session.cancel()
    if kind == "resume":
        confirmation = str(body.get("confirmation", ""))
        answers: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
            "approve": session.approve,
            "approve-session": session.approve_session,
            "approve-tool": lambda: session.approve_tool(str(body.get("tool_name", ""))),
            "reject": lambda: session.reject(str(body.get("reason", ""))),
        }
        answer = answers.get(confirmation)
        return answer() if answer is not None else None
    if kind == "elicitation":
        elicitation_id = str(body.get("elicitation_id", ""))
        if body.get("action") == "accept":
            return session.answer(body.get("content") or {}, elicitation_id)
        if body.get("action") == "decline":
            return session.decline(elicitation_id)
        if body.get("action") == "cancel":
            return session.cancel_elicitation(elicitation_id)
    return None


def _report(future: concurrent.futures.Future[Any]) -> None:
    """An answer the server refused (answered elsewhere, turn over): say so, never raise."""
    if future.cancelled():
        return
    exc = future.exception()
    if isinstance(exc, NBSessionError):
        print(f"[nbsession] {exc}", file=sys.stderr)
    elif exc is not None:
        print(f"[nbsession] the answer failed: {exc!r}", file=sys.stderr)
