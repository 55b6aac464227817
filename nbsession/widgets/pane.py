"""The event pane as a notebook widget: the shared front-end module, bound to one session.

The pane's front end (``jupyter_extension/src``, bundled into ``static/pane.js``) has two
sources of events:

- direct mode (``base_url`` set, the page was served by the hosting Jupyter server): the
  browser follows ``{base_url}nbsession/api/sessions/{session_id}/events`` itself and posts
  answers to the REST API with the login cookie and XSRF header. The kernel sends nothing per
  event, and the buttons work while a cell blocks.
- ``base_url="auto"``: direct mode on the page's own Jupyter server when the page has one,
  relay mode otherwise. Each view says which it chose in its first message
  (``{"kind": "ready", "mode": "direct" | "relay"}``).
- relay mode (``base_url`` empty: ``local()`` sessions, front ends the server did not serve):
  the kernel calls :meth:`EventPane.relay` with batches of events, and the answers the user
  gives come back to the callbacks registered with :meth:`EventPane.on_action`.

No token ever goes into the widget's state: direct mode relies on the browser's login.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from ..errors import FrontendNotBuilt

STATIC = Path(__file__).parent / "static"

# Replays to a view that renders late are sent in chunks of this many events, so one comm
# message stays well under jupyter-server's IOPub data rate limit.
REPLAY_BATCH = 500

Action = dict[str, Any]
"""What a user did in a relay-mode pane, as the front end sends it:
``{"kind": "resume", "body": {"confirmation": ..., "reason"?: ..., "tool_name"?: ...}}``,
``{"kind": "elicitation", "body": {"action": ..., "content"?: ..., "elicitation_id"?: ...}}``
or ``{"kind": "cancel", "body": {}}``; ``body`` is the REST request body of the same route."""

ACTION_KINDS = frozenset({"resume", "elicitation", "cancel"})
TEXT_DELTAS = frozenset({"agent_choice", "agent_choice_reasoning"})


def coalesce(items: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Envelopes (``{"seq", "event"}``) for ``items``, each run of deltas as one event.

    Consecutive ``agent_choice`` (or ``agent_choice_reasoning``) events of one agent become one
    event holding their joined text and the run's last seq; the pane shows exactly the same
    thing, and the fields it does not read for deltas (timestamp, session id) are left out.
    Consecutive ``partial_tool_call`` pieces of one call become one event holding the joined
    arguments (each piece carries only the new bytes), the first piece's other fields and the
    run's last seq.
    """
    out: list[dict[str, Any]] = []
    for item in items:
        envelope = dict(item) if "event" in item else {"seq": None, "event": dict(item)}
        delta = _delta(envelope["event"])
        if delta is None:
            out.append(envelope)
            continue
        last = out[-1]["event"] if out else None
        if last is not None and _same_run(last, delta):
            _extend(last, delta)
            if envelope.get("seq") is not None:
                out[-1]["seq"] = envelope["seq"]
        else:
            out.append({"seq": envelope.get("seq"), "event": delta})
    return out


def _delta(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """A copy of ``event`` that merging may extend, when it is a delta (else None)."""
    kind = event.get("type")
    if kind in TEXT_DELTAS and isinstance(event.get("content"), str):
        delta = {"type": kind, "content": event["content"]}
        if "agent_name" in event:
            delta["agent_name"] = event["agent_name"]
        return delta
    call = event.get("tool_call")
    if kind == "partial_tool_call" and isinstance(call, Mapping):
        function = call.get("function")
        if isinstance(function, Mapping) and isinstance(function.get("arguments"), str):
            return {**event, "tool_call": {**call, "function": dict(function)}}
    return None


def _same_run(last: Mapping[str, Any], delta: Mapping[str, Any]) -> bool:
    if last.get("type") != delta["type"] or last.get("agent_name") != delta.get("agent_name"):
        return False
    return delta["type"] != "partial_tool_call" or last["tool_call"].get("id") == delta[
        "tool_call"
    ].get("id")


def _extend(last: dict[str, Any], delta: Mapping[str, Any]) -> None:
    if delta["type"] == "partial_tool_call":
        last["tool_call"]["function"]["arguments"] += delta["tool_call"]["function"]["arguments"]
    else:
        last["content"] += delta["content"]


class EventPane(anywidget.AnyWidget):
    """A live view of one session's events: answer, tool cards, prompts, status, usage, Stop."""

    _esm = STATIC / "pane.js"
    _css = STATIC / "pane.css"

    session_id = traitlets.Unicode("").tag(sync=True)
    pane_id = traitlets.Unicode().tag(sync=True)
    """Unique per widget: the front end keeps this widget's relayed events under it from the
    moment its model exists, so a view that renders while the kernel is busy misses none."""
    base_url = traitlets.Unicode("").tag(sync=True)
    """The Jupyter server's base URL path (e.g. ``/`` or ``/user/ada/``) for direct mode,
    ``"auto"`` for the page's own server when it has one, empty for relay mode."""

    @traitlets.default("pane_id")
    def _new_pane_id(self) -> str:
        return uuid.uuid4().hex

    def __init__(self, session_id: str = "", base_url: str = "", **kwargs: Any) -> None:
        if not isinstance(self._esm, anywidget._file_contents.FileContents):
            raise FrontendNotBuilt(
                f"The pane's front end is missing ({STATIC / 'pane.js'}): reinstall nbsession, "
                "or run `npm ci && npm run build` in jupyter_extension/."
            )
        super().__init__(session_id=session_id, base_url=base_url, **kwargs)
        self._relayed: list[Mapping[str, Any]] = []
        self._action_callbacks: list[Callable[[Action], None]] = []
        self.on_msg(self._on_front_end_message)
        self._answer_where_sent()

    def _answer_where_sent(self) -> None:
        """Handle the front end's messages on the kernel subshell it sent them to.

        JupyterLab sends widget messages on a kernel subshell (``commsOverSubshells``, on by
        default), which ipykernel 7 handles while the main shell runs a blocking cell. But
        ipykernel routes a comm's incoming messages back to the shell its last outgoing one
        came from, and the relay sends from the cell's context: the user's answers would then
        wait behind the very ``run()`` they must unblock. Our handlers are thread-safe (they
        only hand work to the SDK's loop), so they run wherever the message arrives.
        """
        comm = getattr(self, "comm", None)
        route = getattr(comm, "_reply_subshell_for", None)
        if route is None:  # another kernel, or an ipykernel without subshell routing
            return

        def where_sent(data: Any, default: str | None) -> str | None:
            content = data.get("content") if isinstance(data, Mapping) else None
            kind = content.get("kind") if isinstance(content, Mapping) else None
            return default if kind in ACTION_KINDS or kind == "ready" else route(data, default)

        comm._reply_subshell_for = where_sent  # type: ignore[union-attr]

    def relay(self, events: Iterable[Mapping[str, Any]]) -> None:
        """Send one batch of events to the rendered views (relay mode), as one message.

        Each item is ``{"seq": n, "event": {...}}`` as ``/events`` numbers it (``seq`` may be
        None), or a bare event; relay each event once, in order. Runs of text deltas are
        merged (see :func:`coalesce`), so a turn costs bytes in proportion to its text, not
        to its number of deltas. Views that render later get everything relayed so far.
        """
        batch = coalesce(events)
        if not batch:
            return
        self._relayed.extend(batch)
        self.send({"kind": "events", "events": batch})

    def on_action(self, callback: Callable[[Action], None]) -> None:
        """Call ``callback`` with each answer or Stop the user gives in a relay-mode pane."""
        self._action_callbacks.append(callback)

    def _on_front_end_message(
        self, _widget: object, content: Mapping[str, Any], _buffers: list[bytes]
    ) -> None:
        kind = content.get("kind")
        if kind == "ready" and content.get("mode", "relay") == "relay":
            # A view that rendered without the events relayed so far (its page was reloaded)
            # asks for those after the last it shows (a direct-mode view reads /events).
            since = content.get("since")
            missed = [
                item
                for item in self._relayed
                if not isinstance(since, int)
                or not isinstance(item.get("seq"), int)
                or item["seq"] > since
            ]
            for start in range(0, len(missed), REPLAY_BATCH):
                self.send({"kind": "events", "events": missed[start : start + REPLAY_BATCH]})
        elif kind in ACTION_KINDS:
            body = content.get("body")
            action: Action = {"kind": kind, "body": dict(body) if isinstance(body, Mapping) else {}}
            for callback in self._action_callbacks:
                callback(action)
