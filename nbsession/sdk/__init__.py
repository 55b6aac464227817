"""The nbsession SDK: sessions from a notebook cell, a script or a coroutine.

``nbsession.connect()`` talks to a Jupyter server's nbsession API (HTTP + SSE);
``nbsession.local()`` runs a session manager in this process. Both give a ``Client`` with the
same methods; ``AsyncClient`` is the twin for ``await``.
"""

from __future__ import annotations

from .client import AsyncClient, Client, connect, local
from .display import set_pane_factory
from .errors import (
    ConnectionFailed,
    NBSessionError,
    ServerNotFound,
    TurnFailed,
)
from .results import (
    AgentInfo,
    BatchReport,
    Event,
    FileOutcome,
    FollowUp,
    Pending,
    SessionInfo,
    SessionPage,
    ToolCallResult,
    TurnResult,
    Usage,
)
from .session import AsyncSession, AsyncTurn, EventIterator, Models, Session, Turn
from .stream import EventStream

__all__ = [
    "AgentInfo",
    "AsyncClient",
    "AsyncSession",
    "AsyncTurn",
    "BatchReport",
    "Client",
    "ConnectionFailed",
    "Event",
    "EventIterator",
    "EventStream",
    "FileOutcome",
    "FollowUp",
    "Models",
    "NBSessionError",
    "Pending",
    "ServerNotFound",
    "Session",
    "SessionInfo",
    "SessionPage",
    "ToolCallResult",
    "Turn",
    "TurnFailed",
    "TurnResult",
    "Usage",
    "connect",
    "local",
    "set_pane_factory",
]
