"""The HTTP table of named errors and the duration parser, without a server."""

from __future__ import annotations

import pytest
from tornado.web import HTTPError

from nbsession import errors
from nbsession.server.base import MAX_WAIT, parse_duration
from nbsession.server.errors import error_reply


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (errors.InvalidRequest("bad", field="x"), 400, "invalid_request"),
        (errors.InvalidModelRef("no such model"), 400, "invalid_request"),
        (errors.InvalidConfirmation("maybe"), 400, "invalid_request"),
        (errors.Unauthorized("who?"), 401, "unauthorized"),
        (errors.Forbidden("no"), 403, "forbidden"),
        (errors.NotFound("no message"), 404, "not_found"),
        (errors.UnknownSession("s"), 404, "unknown_session"),
        (errors.UnknownAgent("a"), 404, "unknown_agent"),
        (errors.SessionNotRunning("s"), 404, "session_not_running"),
        (errors.SessionNotReady("s", 5), 503, "not_ready"),
        (errors.Conflict("busy"), 409, "conflict"),
        (errors.SessionBusy("s"), 409, "session_busy"),
        (errors.NothingPending("none"), 409, "nothing_pending"),
        (errors.RequestTooLarge("big"), 413, "request_too_large"),
        (errors.ModelSwitchingNotSupported("s"), 422, "model_switching_not_supported"),
        (errors.QueueFull("steer", 8, retry_after=3), 429, "queue_full"),
        (errors.AgentSourceUnavailable("gone"), 502, "agent_source_unavailable"),
        (errors.AgentConfigError("a.yaml", "agents", "missing"), 422, "agent_invalid"),
        (errors.StoreError("disk full"), 500, "internal"),
    ],
)
def test_named_errors_map_to_their_status(
    error: errors.NBSessionError, status: int, code: str
) -> None:
    reply = error_reply(error, 500)
    assert (reply.status, reply.code) == (status, code)
    assert reply.body() == {"code": code, "message": error.message}


def test_auth_and_queue_errors_carry_their_headers() -> None:
    assert error_reply(errors.Unauthorized("x"), 500).headers == (("WWW-Authenticate", "Bearer"),)
    assert error_reply(errors.QueueFull("steer", 8, 3), 500).headers == (("Retry-After", "3"),)


def test_unnamed_errors_reveal_nothing() -> None:
    reply = error_reply(RuntimeError("password=hunter2"), 500)
    assert reply.code == "internal"
    assert "hunter2" not in reply.message
    assert error_reply(NotImplementedError("x"), 500).status == 500


def test_framework_errors_get_spec_codes() -> None:
    assert error_reply(HTTPError(405), 405).code == "method_not_allowed"
    assert error_reply(HTTPError(503), 503).code == "not_ready"
    assert error_reply(None, 405).code == "method_not_allowed"
    xsrf = error_reply(HTTPError(403, "'_xsrf' argument missing from %s", "POST"), 403)
    assert (xsrf.status, xsrf.code) == (403, "forbidden")
    assert xsrf.message == "'_xsrf' argument missing from POST"
    assert error_reply(None, 404).code == "not_found"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("5m", 300.0),
        ("500ms", 0.5),
        ("1m30s", 90.0),
        ("2.5", 2.5),
        ("0", 0.0),
        ("1h", MAX_WAIT),
        ("900", MAX_WAIT),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text, "timeout") == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "5 m", "-1s", "-3", "1d", "nan", "inf", "s5"])
def test_bad_durations_name_the_parameter(text: str) -> None:
    with pytest.raises(errors.InvalidRequest) as caught:
        parse_duration(text, "wait")
    assert caught.value.field == "wait"
