"""What a client needs from a transport: the session operations, as coroutines.

Two implementations: ``HTTPTransport`` (a jupyter-server's REST + SSE API) and
``LocalTransport`` (a ``SessionManager`` in this process). Everything above them (clients,
sessions, turns, resuming streams) is written once against this protocol. Payloads are the
JSON shapes of SPEC 2, so both transports hand back the same dicts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from .results import Event


class StreamDropped(Exception):
    """A stream broke without its final event: the reader resumes after its last seq."""


class EventSource(Protocol):
    """An open stream of events (a run stream or ``/events``)."""

    start_seq: int | None
    """A run stream's: the session's last seq before the turn (its events come after it);
    None for ``/events``, or from a server that does not say."""

    async def read_batch(self) -> list[Event] | None:
        """The next events (at least one), or None when the server ended the stream.

        Raises ``StreamDropped`` when the connection broke.
        """
        ...

    async def aclose(self) -> None: ...


class Transport(Protocol):
    where: str
    """The URL (or the local store) this transport talks to, for messages."""

    async def ping(self) -> None:
        """Check that the API answers and accepts our credential."""
        ...

    async def list_agents(self) -> list[dict[str, Any]]: ...

    async def list_sessions(
        self, limit: int | None, before: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Summaries, newest first, and the next page's cursor (None on the last page)."""
        ...

    async def create_session(self, template: Mapping[str, Any]) -> dict[str, Any]: ...

    async def import_session(self, data: Mapping[str, Any]) -> dict[str, Any]: ...

    async def delete_session(self, session_id: str) -> None: ...

    async def snapshot(self, session_id: str) -> dict[str, Any]: ...

    async def recovery(self, session_id: str) -> dict[str, Any]: ...

    async def status(self, session_id: str) -> dict[str, Any]: ...

    async def notebook(self, session_id: str) -> dict[str, Any]: ...

    async def start_turn(
        self,
        session_id: str,
        agent: str,
        messages: Sequence[Mapping[str, Any]],
        model: str,
    ) -> EventSource:
        """Start a turn and stream it; closing the stream never cancels the turn."""
        ...

    async def events(self, session_id: str, since: int | None) -> EventSource: ...

    async def cancel(self, session_id: str) -> None: ...

    async def resume(
        self, session_id: str, confirmation: str, reason: str, tool_name: str
    ) -> None: ...

    async def elicitation(
        self,
        session_id: str,
        action: str,
        content: Mapping[str, Any] | None,
        elicitation_id: str,
    ) -> None: ...

    async def steer(self, session_id: str, messages: Sequence[Mapping[str, Any]]) -> None: ...

    async def follow_up(
        self, session_id: str, messages: Sequence[Mapping[str, Any]], idempotency_key: str
    ) -> dict[str, Any]: ...

    async def models(self, session_id: str) -> dict[str, Any]: ...

    async def set_title(self, session_id: str, title: str) -> None: ...

    async def set_starred(self, session_id: str, starred: bool) -> None: ...

    async def aclose(self) -> None: ...
