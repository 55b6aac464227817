"""The SDK's errors: the core's classes (``nbsession.errors``) plus what only a client meets.

Both transports raise the same classes for the same failure: the local one raises what the
manager raises, the HTTP one rebuilds that class from the reply's SPEC ``code``. Every error
then carries ``code``, ``status`` (the HTTP status, also for a local error: the one the server
would have answered) and ``message`` (the server's sentence).
"""

from __future__ import annotations

from typing import Any

from ..errors import (
    AgentSourceUnavailable,
    Conflict,
    Forbidden,
    InvalidRequest,
    ModelSwitchingNotSupported,
    NBSessionError,
    NotFound,
    NothingPending,
    QueueFull,
    RequestTooLarge,
    SessionBusy,
    SessionNotRunning,
    Unauthorized,
    UnknownAgent,
    UnknownSession,
)

__all__ = [
    "AgentSourceUnavailable",
    "Conflict",
    "ConnectionFailed",
    "Forbidden",
    "InvalidRequest",
    "ModelSwitchingNotSupported",
    "NBSessionError",
    "NotFound",
    "NothingPending",
    "QueueFull",
    "RequestTooLarge",
    "ServerNotFound",
    "SessionBusy",
    "SessionNotRunning",
    "TurnFailed",
    "Unauthorized",
    "UnknownAgent",
    "UnknownSession",
]


class ConnectionFailed(NBSessionError):
    """The server could not be reached (or the connection broke); ``url`` is what was tried."""

    code = "connection_failed"

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"Cannot reach nbsession at {url}: {reason}")
        self.url = url


class ServerNotFound(ConnectionFailed):
    """``connect()`` was given no URL and found none; the message lists where it looked."""

    code = "server_not_found"

    def __init__(self, looked: list[str]) -> None:
        NBSessionError.__init__(
            self,
            "No nbsession server found: pass connect(url=..., token=...) or set "
            "NBSESSION_URL (and NBSESSION_TOKEN). Looked at: " + "; ".join(looked) + ".",
        )
        self.url = ""


class TurnFailed(NBSessionError):
    """A turn ended with an ``error`` event (a missing key, an unreachable model...).

    ``result`` is the ``TurnResult`` up to the failure, with the events that led to it.
    """

    code = "turn_failed"

    def __init__(self, message: str, result: Any) -> None:
        super().__init__(message)
        self.result = result


def _classes_by_code() -> dict[str, type[NBSessionError]]:
    """The most general core class for each SPEC code (``InvalidRequest``, not a subclass)."""
    found: dict[str, type[NBSessionError]] = {}
    level: list[type[NBSessionError]] = [NBSessionError]
    while level:
        for cls in level:
            found.setdefault(cls.code, cls)
        level = [sub for cls in level for sub in cls.__subclasses__()]
    return found


_BY_CODE = _classes_by_code()


def api_error(code: str, status: int, message: str, **attributes: Any) -> NBSessionError:
    """The exception for an HTTP error reply, of the class the server raised for ``code``.

    The core classes build their own sentences from their arguments; here the server's
    sentence is already made, so the instance is filled in directly. A code the SPEC does not
    name (``not_ready``, say) keeps the base class and its own ``code``.
    """
    cls = _BY_CODE.get(code, NBSessionError)
    error = cls.__new__(cls)
    NBSessionError.__init__(error, message)
    error.status = status
    if cls.code != code:
        error.code = code  # type: ignore[misc]
    for name, value in attributes.items():
        setattr(error, name, value)
    return error


def with_status(error: NBSessionError) -> NBSessionError:
    """Set ``status`` on an error the local manager raised: the status HTTP would answer."""
    if error.status is None:
        from ..server.errors import status_for  # the one code->status table; no jupyter-server

        error.status = status_for(error)
    return error
