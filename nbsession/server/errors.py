"""The HTTP table of nbsession's named exceptions: each class is mapped to its status once.

Lookup walks the exception's MRO, so a subclass the core adds later inherits its parent's
status without touching this file. ``SessionNotReady`` is listed apart from its parent
because a wait that timed out is "try again" (503), not "not found" (404).

The SPEC's code table has no code for 503 or 405, so those statuses carry a code of their
own (``not_ready``, ``method_not_allowed``) whichever error or handler produced them: a
client never reads a code whose SPEC status differs from the one it got.
"""

from __future__ import annotations

from dataclasses import dataclass
from http.client import responses

from tornado.web import HTTPError

from ..errors import (
    AgentInvalid,
    AgentSourceUnavailable,
    Conflict,
    Forbidden,
    InvalidRequest,
    ModelSwitchingNotSupported,
    NBSessionError,
    NotFound,
    QueueFull,
    RequestTooLarge,
    SessionNotReady,
    Unauthorized,
)

STATUS_BY_ERROR: dict[type[NBSessionError], int] = {
    InvalidRequest: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    SessionNotReady: 503,
    Conflict: 409,
    RequestTooLarge: 413,
    ModelSwitchingNotSupported: 422,
    AgentInvalid: 422,
    QueueFull: 429,
    AgentSourceUnavailable: 502,
}

NOT_READY = "not_ready"
METHOD_NOT_ALLOWED = "method_not_allowed"

# Statuses the SPEC names no code for: the code goes with the status, never with the error.
_CODE_OF_STATUS: dict[int, str] = {405: METHOD_NOT_ALLOWED, 503: NOT_READY}

# Codes for errors tornado or jupyter-server raise themselves (a 405, an XSRF 403).
_CODE_BY_STATUS: dict[int, str] = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    413: "request_too_large",
    **_CODE_OF_STATUS,
}


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """What the client gets for a failed request: a status, the JSON body and extra headers."""

    status: int
    code: str
    message: str
    headers: tuple[tuple[str, str], ...] = ()

    def body(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def status_for(error: NBSessionError) -> int:
    """The status of the nearest class in ``error``'s MRO that the table names (500 if none)."""
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


def error_reply(error: BaseException | None, status: int) -> ErrorReply:
    """Describe ``error`` for the client; ``status`` is tornado's guess when ``error`` is None.

    Only named errors and HTTP errors carry their message to the client. Anything else is a
    bug whose details belong in the server log, so the client reads a generic sentence.
    """
    if isinstance(error, NBSessionError):
        headers: tuple[tuple[str, str], ...] = ()
        if isinstance(error, Unauthorized):
            headers = (("WWW-Authenticate", "Bearer"),)
        elif isinstance(error, QueueFull):
            headers = (("Retry-After", str(error.retry_after)),)
        status = status_for(error)
        code = _CODE_OF_STATUS.get(status, error.code)
        return ErrorReply(status, code, error.message, headers)
    if isinstance(error, HTTPError):
        status = error.status_code
        message = error.log_message or error.reason or responses.get(status, "HTTP error")
        if error.log_message and error.args:
            message = error.log_message % error.args
        return ErrorReply(status, _code_for_status(status), message)
    if error is None and status < 500:
        return ErrorReply(status, _code_for_status(status), responses.get(status, "HTTP error"))
    return ErrorReply(500, "internal", "The server failed to handle this request.")


def status_reply(status: int, message: str) -> ErrorReply:
    """An error a handler answers itself, with the code that goes with ``status``."""
    return ErrorReply(status, _code_for_status(status), message)


def _code_for_status(status: int) -> str:
    """The closest SPEC code for a status that came from the framework rather than from us."""
    if status in _CODE_BY_STATUS:
        return _CODE_BY_STATUS[status]
    return "invalid_request" if 400 <= status < 500 else "internal"
