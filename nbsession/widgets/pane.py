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


class EventPane(anywidget.AnyWidget):
    """A live view of one session's events: answer, tool cards, prompts, status, usage, Stop."""

    _esm = STATIC / "pane.js"
    _css = STATIC / "pane.css"

    session_id = traitlets.Unicode("").tag(sync=True)
    base_url = traitlets.Unicode("").tag(sync=True)
    """The Jupyter server's base URL path (e.g. ``/`` or ``/user/ada/``) for direct mode,
    ``"auto"`` for the page's own server when it has one, empty for relay mode."""

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

    def relay(self, events: Iterable[Mapping[str, Any]]) -> None:
        """Send one batch of events to the rendered views (relay mode).

        Each item is ``{"seq": n, "event": {...}}`` as ``/events`` numbers it (``seq`` may be
        None), or a bare event. The front end ignores what it already applied, so a batch
        may overlap an earlier one. Views that render later get everything relayed so far.
        """
        batch = list(events)
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
            # A view rendered after events were relayed: custom messages reach only views
            # that exist, so it asks for what it missed (a direct-mode view reads /events).
            for start in range(0, len(self._relayed), REPLAY_BATCH):
                chunk = self._relayed[start : start + REPLAY_BATCH]
                self.send({"kind": "events", "events": chunk})
        elif kind in ACTION_KINDS:
            body = content.get("body")
            action: Action = {"kind": kind, "body": dict(body) if isinstance(body, Mapping) else {}}
            for callback in self._action_callbacks:
                callback(action)
