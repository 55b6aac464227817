"""Generated requests against a real server: schemathesis from the OpenAPI document, then
hypothesis with hostile bodies; no input may give a 5xx or leave a session unreadable.

schemathesis drives every operation of ``/nbsession/api/openapi.json``. Per operation a few
generated requests, each checked by schemathesis: no 5xx, every status, header, content type
and body as the document says (SSE events included), a 405 with ``Allow``, and a schema-valid
request accepted. Path ids point at a real session half of the time, so requests reach the
session logic rather than stopping at a 404. Waits are capped so the module stays within
seconds.

hypothesis then sends the JSON routes bodies built to break them (lone surrogates, numbers
out of every range, NaN, deep nesting, wrong types in every place) and reads every session
back after each request. After both, the server's log must hold no error.
"""

from __future__ import annotations

import json
import re
import zlib
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import positive_data_acceptance

from nbsession.server.base import parse_duration
from nbsession.server.openapi import openapi_document

from .test_live_server import EXT_TOKEN, JUPYTER, Server, start

AUTH = {"Authorization": f"Bearer {EXT_TOKEN}"}
MAX_WAIT = 0.2  # seconds a generated wait or timeout may last
AGENT = """\
version: "2"
agents:
  root:
    model: demo/offline
    description: an agent without tools that ask, so no generated turn waits for a person
    instruction: answer
    toolsets: [{type: think}]
"""
# Schema-valid requests these operations refuse for reasons of state the document cannot
# express (a fork index past the session's user messages, a working dir that does not exist,
# a message id the session lacks, an agent file the server has not got, a page cursor the
# server did not issue). Their 400s are still checked against the document; only "a valid
# request is accepted" is not asked of them.
STATEFUL_400 = {
    "GET /api/sessions",
    "POST /api/sessions",
    "POST /api/sessions/import",
    "POST /api/sessions/{session_id}/fork",
    "PATCH /api/sessions/{session_id}/messages/{msg_id}",
    "POST /api/sessions/{session_id}/agent/{agent_id}",
    "POST /api/sessions/{session_id}/agent/{agent_id}/{agent_name}",
    "PATCH /api/sessions/{session_id}/permissions",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("schemathesis")
    (home / "agents").mkdir()
    (home / "agents" / "fuzz.yaml").write_text(AGENT)
    running = start(home, [JUPYTER, "server", f"--NBSessionApp.agents_dir={home / 'agents'}"])
    yield running
    running.stop()


@pytest.fixture(scope="module")
def session_id(server: Server) -> str:
    reply = httpx.post(f"{server.url}/api/sessions", json={"title": "fuzzed"}, headers=AUTH)
    return str(reply.json()["id"])


ANSWERED: defaultdict[str, set[int]] = defaultdict(set)
"""Statuses seen per operation, to show the run reached the operations' own logic."""

# The document the server serves, built from the same route table (the server's URL is given
# per call): schemathesis needs it at collection time, before any server runs.
schema = schemathesis.openapi.from_dict(openapi_document("/"))


@schema.auth()
class BearerToken:
    """The extension's token on every request schemathesis does not send without it."""

    def get(self, case: Any, context: Any) -> str:
        return EXT_TOKEN

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


def steer(case: Any, session_id: str) -> None:
    """Point the case at the real session (not for deletes) and cap its waits."""
    path = case.path_parameters or {}
    if (
        "session_id" in path
        and case.method != "DELETE"
        and zlib.crc32(repr(case.body).encode()) % 2
    ):
        path["session_id"] = session_id
    if "agent_id" in path:
        path["agent_id"] = "fuzz"
    for name in ("wait", "timeout"):
        value = (case.query or {}).get(name)
        if isinstance(value, str) and re.fullmatch(r"[0-9.a-z]+", value):
            try:
                if parse_duration(value, name) > MAX_WAIT:
                    case.query[name] = "100ms"
            except Exception:
                pass  # an invalid duration: the server must answer 400, as documented


@schema.parametrize()
@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_operation_as_documented(case: Any, server: Server, session_id: str) -> None:
    steer(case, session_id)
    excluded = [positive_data_acceptance] if case.operation.label in STATEFUL_400 else []
    # A wait that timed out is a documented 503 (SPEC 2: /api/ready, /status?wait=), the
    # answer the client asked for; any other 5xx fails.
    waits = "503" in case.operation.definition.raw["responses"]
    if waits:
        excluded.append(not_a_server_error)
    # A stream that tails is read briefly (schemathesis then checks the events it got).
    timeout = 0.3 if case.operation.label.endswith("/events") else 10
    response = case.call_and_validate(
        base_url=server.url, excluded_checks=excluded, timeout=timeout
    )
    assert response.status_code < 500 or (waits and response.status_code == 503)
    ANSWERED[case.operation.label].add(response.status_code)


# -- hypothesis: hostile bodies on the JSON routes ------------------------------------------

# Leaves JSON can carry that once broke a session, or could: lone surrogates (escaped, as a
# JSON encoder writes them), control characters, numbers past int64 and float range,
# placeholders replaced by raw NaN / Infinity / 5000-digit literals after encoding.
RAW = {"@nan": "NaN", "@inf": "-Infinity", "@big": "9" * 5000, "@huge": "1e999"}
TEXTS = st.sampled_from(
    ["\ud800", "a\udfff", "\x00", "", " ", "ok", "..", 'a"b;c', *RAW]
) | st.text(max_size=6)
NUMBERS = (
    st.sampled_from([-1, 0, 2**63 - 1, 2**63, -(2**63) - 1, 10**40, 1e308, -0.5, 5.0])
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
)
JSON = st.recursive(
    st.none() | st.booleans() | NUMBERS | TEXTS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXTS, inner, max_size=3),
    max_leaves=8,
)
DEEP = st.integers(60, 3000).map(lambda depth: {"@deep": depth})


def maybe(strategy: Any) -> Any:
    """A plausible value most of the time, anything JSON otherwise."""
    return st.one_of(strategy, strategy, JSON, DEEP)


CHAT = st.fixed_dictionaries(
    {
        "role": maybe(st.sampled_from(["user", "assistant", "tool", "system"])),
        "content": maybe(TEXTS),
    },
    optional={
        "cost": maybe(NUMBERS),
        "usage": st.fixed_dictionaries({"input_tokens": maybe(NUMBERS)}),
        "multi_content": maybe(st.lists(st.dictionaries(TEXTS, JSON, max_size=2), max_size=2)),
        "tool_calls": JSON,
    },
)
MESSAGE = st.fixed_dictionaries({"message": maybe(st.fixed_dictionaries({"message": maybe(CHAT)}))})
USER_MESSAGES = st.fixed_dictionaries(
    {"messages": maybe(st.lists(st.fixed_dictionaries({"content": maybe(TEXTS)}), max_size=2))}
)
# (method, path under /api/sessions, body); "{sid}" is the real session.
REQUESTS = st.one_of(
    st.tuples(
        st.just("POST"),
        st.just(""),
        maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "title": maybe(TEXTS),
                    "max_iterations": maybe(NUMBERS),
                    "tools_approved": JSON,
                    "permissions": JSON,
                    "agent_model_overrides": JSON,
                    "working_dir": maybe(TEXTS),
                },
            )
        ),
    ),
    st.tuples(
        st.just("PATCH"), st.just("/{sid}/title"), st.fixed_dictionaries({"title": maybe(TEXTS)})
    ),
    st.tuples(
        st.just("PATCH"),
        st.just("/{sid}/permissions"),
        st.fixed_dictionaries(
            {
                "permissions": maybe(
                    st.fixed_dictionaries({"allow": maybe(st.lists(TEXTS, max_size=2))})
                )
            }
        ),
    ),
    st.tuples(
        st.just("PATCH"),
        st.just("/{sid}/tokens"),
        st.fixed_dictionaries(
            {"input_tokens": maybe(NUMBERS), "output_tokens": maybe(NUMBERS)},
            optional={"cost": maybe(NUMBERS)},
        ),
    ),
    st.tuples(st.just("POST"), st.just("/{sid}/messages"), MESSAGE),
    st.tuples(st.just("PATCH"), st.just("/{sid}/messages/{mid}"), MESSAGE),
    st.tuples(
        st.just("POST"),
        st.just("/{sid}/summaries"),
        st.fixed_dictionaries(
            {"summary": maybe(TEXTS)}, optional={"first_kept_entry": maybe(NUMBERS)}
        ),
    ),
    st.tuples(
        st.just("POST"),
        st.just("/{sid}/fork"),
        st.fixed_dictionaries({"user_message_index": maybe(NUMBERS)}),
    ),
    st.tuples(
        st.just("POST"),
        st.just("/import"),
        maybe(
            st.fixed_dictionaries(
                {
                    "recovery_version": st.just(1),
                    "id": maybe(TEXTS),
                    "title": maybe(TEXTS),
                    "cost": maybe(NUMBERS),
                    "messages": maybe(st.lists(MESSAGE, max_size=2)),
                }
            )
        ),
    ),
    st.tuples(
        st.sampled_from(["POST"]),
        st.sampled_from(["/{sid}/followup", "/{sid}/steer", "/{sid}/agent/fuzz"]),
        USER_MESSAGES,
    ),
    st.tuples(
        st.just("POST"),
        st.just("/{sid}/resume"),
        st.fixed_dictionaries(
            {
                "confirmation": maybe(st.sampled_from(["approve-tool", "reject"])),
                "tool_name": maybe(TEXTS),
                "reason": maybe(TEXTS),
            }
        ),
    ),
    st.tuples(
        st.just("POST"),
        st.sampled_from(["/batch/export", "/batch/delete"]),
        st.fixed_dictionaries({"session_ids": maybe(st.lists(TEXTS, max_size=2))}),
    ),
)


def encode(body: Any) -> bytes:
    """JSON text with the placeholders turned into the raw literals they stand for."""
    text = json.dumps(body)
    for placeholder, literal in RAW.items():
        text = text.replace(f'"{placeholder}"', literal)
    return re.sub(r'\{"@deep": (\d+)\}', lambda m: "[" * int(m[1]) + "]" * int(m[1]), text).encode()


@given(REQUESTS)
@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_hostile_bodies_never_break_a_session(
    server: Server, session_id: str, request_: tuple[str, str, Any]
) -> None:
    method, route, body = request_
    with server.client() as http:
        items = http.get(f"/api/sessions/{session_id}/recovery").json()["messages"]
        message_id = next((i["message"]["id"] for i in items if "message" in i), "none")
        path = "/api/sessions" + route.format(sid=session_id, mid=message_id)
        reply = http.request(method, path, content=encode(body), params={"detach": "true"})
        assert reply.status_code < 500, (method, path, reply.text)
        for summary in http.get("/api/sessions").json():
            got = http.get(f"/api/sessions/{summary['id']}")
            assert got.status_code == 200, (method, path, body, got.text)
        snapshot = http.get(f"/api/sessions/{session_id}/snapshot")
        assert snapshot.status_code == 200, (method, path, body, snapshot.text)


def test_the_session_still_reads_back_and_the_log_holds_no_error(
    server: Server, session_id: str
) -> None:
    if not ANSWERED:
        pytest.skip("the schemathesis test did not run (deselected)")
    succeeded = sorted(label for label, statuses in ANSWERED.items() if min(statuses) < 300)
    assert len(succeeded) >= 25, dict(ANSWERED)  # the run reached the operations' logic
    for route in ("", "/snapshot", "/recovery", "/notebook"):
        reply = httpx.get(f"{server.url}/api/sessions/{session_id}{route}", headers=AUTH)
        assert reply.status_code == 200, (route, reply.text)
    log = Path(server.log).read_text()
    assert "Traceback" not in log
    assert not re.search(r"^\[E ", log, re.MULTILINE), log[-3000:]
