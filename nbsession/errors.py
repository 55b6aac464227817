"""Every error nbsession raises on purpose, one class per machine-readable code.

The code strings are the contract (SPEC 2, Errors). Transports map each code to their own
status once (the HTTP table lives in ``nbsession.server.errors``); the core never speaks HTTP.
"""

from __future__ import annotations

from typing import ClassVar


class NBSessionError(Exception):
    """Base class: carries the SPEC error ``code`` and a sentence meant for a person."""

    code: ClassVar[str] = "internal"
    status: int | None = None
    """The HTTP status the error came with (or would have): the SDK sets it on what it raises."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(NBSessionError):
    """The caller sent something malformed; ``field`` names the offending input when known."""

    code = "invalid_request"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class InvalidModelRef(InvalidRequest):
    """A model reference that names neither a configured model nor a known provider."""


class UnstorableValue(InvalidRequest):
    """A value the store could not read back (a lone surrogate, a number out of range), or
    one derived from input (a sum) that would be: refused before anything is written."""


class InvalidConfirmation(InvalidRequest):
    """A tool-call confirmation answer that is not one of the documented values."""


class Unauthorized(NBSessionError):
    code = "unauthorized"


class Forbidden(NBSessionError):
    code = "forbidden"


class NotFound(NBSessionError):
    """Something other than a session or an agent was not found (a message id, a route)."""

    code = "not_found"


class UnknownSession(NotFound):
    code = "unknown_session"

    def __init__(self, session_id: str) -> None:
        super().__init__(f"No session with id {session_id!r}.")
        self.session_id = session_id


class UnknownAgent(NotFound):
    code = "unknown_agent"

    def __init__(self, agent: str, detail: str = "") -> None:
        super().__init__(f"No agent {agent!r}{': ' + detail if detail else ''}.")
        self.agent = agent


class SessionNotRunning(NotFound):
    """The call needs a live runtime (the session has run or been attached) and there is none."""

    code = "session_not_running"

    def __init__(self, session_id: str, detail: str = "is not running") -> None:
        super().__init__(f"Session {session_id!r} {detail}.")
        self.session_id = session_id


class SessionNotReady(SessionNotRunning):
    """A wait for the session's runtime to be attached timed out (HTTP answers 503)."""

    def __init__(self, session_id: str, timeout: float) -> None:
        super().__init__(session_id, f"was not attached within {timeout:g} s")


class Conflict(NBSessionError):
    code = "conflict"


class SessionBusy(Conflict):
    code = "session_busy"

    def __init__(self, session_id: str) -> None:
        super().__init__(f"Session {session_id!r} is already processing a request.")
        self.session_id = session_id


class LeaseLost(SessionBusy):
    """The store refused a write: another server holds the session's turn lease now (this
    one stalled past its expiry). The writer stops; it must not write the session again."""

    def __init__(self, session_id: str) -> None:
        Conflict.__init__(self, f"Another server took session {session_id!r} over.")
        self.session_id = session_id


class NothingPending(Conflict):
    code = "nothing_pending"


class RequestTooLarge(NBSessionError):
    code = "request_too_large"


class ModelSwitchingNotSupported(NBSessionError):
    code = "model_switching_not_supported"

    def __init__(self, session_id: str) -> None:
        super().__init__(f"The runtime of session {session_id!r} cannot switch models.")


class QueueFull(NBSessionError):
    code = "queue_full"

    def __init__(self, queue: str, capacity: int, retry_after: int = 1) -> None:
        super().__init__(f"The {queue} queue is full ({capacity} messages); retry later.")
        self.retry_after = retry_after


class AgentSourceUnavailable(NBSessionError):
    """An agent source exists but cannot be read."""

    code = "agent_source_unavailable"


class AgentInvalid(NBSessionError):
    """An agent source was read but does not load as configured: the request cannot be served
    until its file is fixed (not a gateway failure, so not a 502)."""

    code = "agent_invalid"


class AgentConfigError(AgentInvalid):
    """A YAML agent file is malformed; the message names the file and the key."""

    def __init__(self, path: str, key: str, problem: str) -> None:
        where = f"{path}: {key}" if key else path
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.key = key


class StoreError(NBSessionError):
    """The session store failed (disk full, corrupt file); nothing was written."""

    code = "internal"


class FrontendNotBuilt(NBSessionError):
    """The pane's bundled front end is missing: the package was installed without its build."""

    code = "internal"
