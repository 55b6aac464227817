"""No input makes a session unreadable, and a refused request changes nothing (issue 11).

Each test sends what a careless or hostile client could send, then checks the contract
afterwards: a 400 ``invalid_request`` (never a 500, never a traceback in the log), every
session still reads back, and nothing was stored by the request that failed.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from nbsession.session import Session

from .conftest import Fetch, LiveStream, new_session, user

LONE = "\ud800"
MESSAGE_PATH = ("message", "message", "content")


def chat(content: str, role: str = "assistant", **fields: Any) -> dict[str, Any]:
    return {"message": {"agentName": "", "message": {"role": role, "content": content, **fields}}}


async def all_sessions_read_back(api: Fetch) -> list[dict[str, Any]]:
    """Every listed session answers 200 on each read route; returns the sessions."""
    listing = await api("GET", "api/sessions")
    assert listing.code == 200, listing.body
    sessions = []
    for summary in listing.json():
        for route in ("", "/snapshot", "/status", "/recovery", "/notebook"):
            reply = await api("GET", f"api/sessions/{summary['id']}{route}")
            assert reply.code == 200, (route, reply.body)
        sessions.append((await api("GET", f"api/sessions/{summary['id']}")).json())
    return sessions


def assert_refused(reply: Any, field: str | None = None) -> None:
    assert (reply.code, reply.error_code) == (400, "invalid_request"), reply.body
    if field is not None:
        assert field in reply.json()["message"], reply.json()


@pytest.fixture
def no_errors_logged(caplog: pytest.LogCaptureFixture) -> Any:
    """Fails the test if the server logged an error (a 500 logs its traceback)."""
    with caplog.at_level(logging.ERROR):
        yield
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


# -- numbers --------------------------------------------------------------------------------


@pytest.mark.parametrize("cost", [-1, -0.5])
async def test_a_negative_cost_is_refused(api: Fetch, no_errors_logged: Any, cost: float) -> None:
    session_id = await new_session(api)
    reply = await api("POST", f"api/sessions/{session_id}/messages", chat("x", cost=cost))
    assert_refused(reply, "cost")
    [session] = await all_sessions_read_back(api)
    assert session["messages"] == []


async def test_a_fork_whose_cost_would_overflow_is_refused_and_stores_nothing(
    api: Fetch, no_errors_logged: Any
) -> None:
    session_id = await new_session(api, title="costly")
    path = f"api/sessions/{session_id}"
    for _ in range(2):
        assert (await api("POST", f"{path}/messages", chat("x", cost=1e308))).code == 201
    await api("POST", f"{path}/messages", chat("q", role="user"))
    reply = await api("POST", f"{path}/fork", {"user_message_index": 0})
    assert_refused(reply, "cost")
    [session] = await all_sessions_read_back(api)
    assert session["id"] == session_id


async def test_a_fork_whose_tokens_would_overflow_is_refused(
    api: Fetch, no_errors_logged: Any
) -> None:
    session_id = await new_session(api)
    path = f"api/sessions/{session_id}"
    usage = {"input_tokens": 2**63 - 1, "output_tokens": 1}
    for _ in range(2):
        assert (await api("POST", f"{path}/messages", chat("x", usage=usage))).code == 201
    await api("POST", f"{path}/messages", chat("q", role="user"))
    assert_refused(await api("POST", f"{path}/fork", {"user_message_index": 0}), "input_tokens")
    assert len(await all_sessions_read_back(api)) == 1


@pytest.mark.parametrize(
    ("route", "body", "field"),
    [
        ("summaries", {"summary": "s", "first_kept_entry": 2**63}, "first_kept_entry"),
        ("summaries", {"summary": "s", "first_kept_entry": -1}, "first_kept_entry"),
        ("tokens", {"input_tokens": 2**63, "output_tokens": 0}, "input_tokens"),
        ("tokens", {"input_tokens": 0, "output_tokens": 0, "cost": -1}, "cost"),
        ("messages", chat("x", usage={"input_tokens": -1}), "input_tokens"),
        ("messages", chat("x", usage={"input_tokens": 2**64}), "input_tokens"),
        ("messages", chat("x", multi_content=[{"type": "text", "n": 10**200}]), "digits"),
        ("fork", {"user_message_index": 2**70}, "user_message_index"),
    ],
)
async def test_numbers_out_of_range_are_refused(
    api: Fetch, no_errors_logged: Any, route: str, body: Any, field: str
) -> None:
    session_id = await new_session(api)
    method = "PATCH" if route == "tokens" else "POST"
    assert_refused(await api(method, f"api/sessions/{session_id}/{route}", body), field)
    [session] = await all_sessions_read_back(api)
    assert session["messages"] == [] and session["input_tokens"] == 0


DIGITS = "7" * 5000


@pytest.mark.parametrize(
    ("method", "route", "raw"),
    [
        ("POST", "api/sessions", f'{{"max_iterations": {DIGITS}}}'),
        ("POST", "api/sessions", f'{{"title": "t", "x": -{DIGITS}.5e3}}'),
        ("PATCH", "{sid}/tokens", f'{{"input_tokens": {DIGITS}, "output_tokens": 1}}'),
        ("POST", "{sid}/fork", f'{{"user_message_index": {DIGITS}}}'),
    ],
)
async def test_numbers_with_thousands_of_digits_are_refused(
    api: Fetch, no_errors_logged: Any, method: str, route: str, raw: str
) -> None:
    session_id = await new_session(api)
    route = route.format(sid=f"api/sessions/{session_id}")
    reply = await api(method, route, raw=raw.encode())
    assert_refused(reply)
    assert len(reply.json()["message"]) < 200  # the number is not echoed back
    assert len(await all_sessions_read_back(api)) == 1


@pytest.mark.parametrize("since", [DIGITS, str(2**63), "-1"])
async def test_resume_points_out_of_range_are_refused(
    api: Fetch, no_errors_logged: Any, since: str
) -> None:
    session_id = await new_session(api)
    path = f"api/sessions/{session_id}/events"
    assert_refused(await api("GET", path, params={"since": since}), "since")
    assert_refused(await api("GET", path, headers={"Last-Event-ID": since}), "Last-Event-ID")


# -- nesting --------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [150, 5000, 200_000])
async def test_deeply_nested_bodies_are_refused(
    api: Fetch, no_errors_logged: Any, depth: int
) -> None:
    session_id = await new_session(api)
    nested = "[" * depth + "]" * depth
    bodies = [
        ("POST", "api/sessions", f'{{"title": {nested}}}'),
        ("POST", f"api/sessions/{session_id}/agent/default", nested),
        (
            "POST",
            f"api/sessions/{session_id}/messages",
            '{"message": {"message": {"role": "user", "content": "x", "multi_content": '
            f'[{{"type": "text", "deep": {nested}}}]}}}}}}',
        ),
        ("POST", "api/sessions/import", f'{{"recovery_version": 1, "messages": {nested}}}'),
    ]
    for method, route, raw in bodies:
        if len(raw) > 60_000:
            continue  # past the test server's body limit: a 413, tested elsewhere
        assert_refused(await api(method, route, raw=raw.encode()), "nested")
    [session] = await all_sessions_read_back(api)
    assert session["messages"] == []


# -- text -----------------------------------------------------------------------------------


async def test_lone_surrogates_are_refused_everywhere(api: Fetch, no_errors_logged: Any) -> None:
    session_id = await new_session(api, title="ok")
    path = f"api/sessions/{session_id}"
    added = await api("POST", f"{path}/messages", chat("fine"))
    message_id = added.json()["id"]
    before = (await api("GET", path)).json()
    requests = [
        ("POST", "api/sessions", {"title": LONE}),
        ("POST", f"{path}/agent/default", user(f"list {LONE}")),
        ("POST", f"{path}/agent/default", [{"role": "user", "content": LONE}]),
        ("PATCH", f"{path}/title", {"title": f"a{LONE}b"}),
        ("POST", f"{path}/summaries", {"summary": LONE}),
        ("POST", f"{path}/messages", chat(LONE)),
        ("PATCH", f"{path}/messages/{message_id}", chat(LONE)),
        ("POST", f"{path}/messages", chat("x", multi_content=[{"type": "text", LONE: 1}])),
        ("POST", f"{path}/followup", user(LONE)),
        ("PATCH", f"{path}/permissions", {"permissions": {"allow": [LONE]}}),
        ("POST", f"{path}/resume", {"confirmation": "reject", "reason": LONE}),
        ("POST", "api/sessions/import", {**before, "title": LONE, "recovery_version": 1}),
    ]
    for method, route, body in requests:
        raw = json.dumps(body).encode()
        assert b"\\ud800" in raw
        assert_refused(await api(method, route, raw=raw), "Unicode")
    # UTF-8 bytes of a surrogate, and bytes that are not UTF-8 at all, are refused too.
    for raw in (b'{"title": "\xed\xa0\x80"}', b'{"title": "\xff"}'):
        assert_refused(await api("POST", "api/sessions", raw=raw), "UTF-8")
    [session] = await all_sessions_read_back(api)
    assert session == before
    # A well-formed pair of surrogates is an ordinary character.
    emoji = await api("PATCH", f"{path}/title", raw=b'{"title": "\\ud83d\\ude00"}')
    assert emoji.code == 200 and emoji.json()["title"] == "\U0001f600"


async def test_the_store_refuses_what_it_could_not_read_back(
    api: Fetch, nbsession_app: Any, no_errors_logged: Any
) -> None:
    """Callers that skip the HTTP edge (the in-kernel SDK) meet the same rule in the store."""
    manager = await nbsession_app.started_manager()
    session_id = await new_session(api)
    from nbsession.errors import InvalidRequest

    with pytest.raises(InvalidRequest):
        await manager.update_session_title(session_id, LONE)
    with pytest.raises(InvalidRequest):
        await manager.add_message(session_id, chat(LONE)["message"])
    with pytest.raises(InvalidRequest):
        await manager.create_session({"title": LONE})
    stream = await manager.run_session(session_id, "default", "", user("hello")["messages"])
    async for _entry in stream:
        pass
    live = await manager.get_session(session_id)
    with pytest.raises(InvalidRequest):  # a value set without validation is checked too
        await manager.store.create_session(live.model_copy(update={"id": "x", "cost": -1.0}))
    [session] = await all_sessions_read_back(api)
    roles = [message["message"]["role"] for message in session["messages"]]
    assert roles == ["user", "assistant"]


async def test_a_refused_follow_up_changes_nothing(
    api: Fetch, nbsession_app: Any, no_errors_logged: Any
) -> None:
    manager = await nbsession_app.started_manager()
    session_id = await new_session(api)
    stream = await manager.run_session(session_id, "default", "", user("hello")["messages"])
    async for _entry in stream:
        pass
    before = (await api("GET", f"api/sessions/{session_id}")).json()
    from nbsession.errors import InvalidRequest

    for messages in ([{"content": "ok"}, {"content": LONE}], [{"content": "ok"}, {"role": "x"}]):
        with pytest.raises(InvalidRequest):
            await manager.follow_up_session(session_id, messages, "key-1")
    assert (await api("GET", f"api/sessions/{session_id}")).json() == before
    assert (await manager.queue_status(session_id))["followup"]["depth"] == 0
    retried = await manager.follow_up_session(session_id, [{"content": "hello"}], "key-1")
    assert retried.status == "queued_streaming"  # the failed requests did not use the key


async def test_an_oversized_idempotency_key_is_refused(api: Fetch, no_errors_logged: Any) -> None:
    session_id = await new_session(api)
    path = f"api/sessions/{session_id}/followup"
    reply = await api("POST", path, user("hi"), headers={"Idempotency-Key": "k" * 256})
    assert_refused(reply, "Idempotency-Key")
    assert (await api("GET", f"api/sessions/{session_id}/queue")).json()["followup"]["depth"] == 0
    accepted = await api("POST", path, user("hi"), headers={"Idempotency-Key": "k" * 255})
    assert accepted.code == 202, accepted.body


# -- import and export ----------------------------------------------------------------------


UNSAFE_IDS = ['a"b', "../x", "..", "a/b", "a\\b", "a;b=c", "a\nb", "a\x00b", "import", "batch"]


@pytest.mark.parametrize("unsafe", [*UNSAFE_IDS, " x", "x" * 300])
async def test_import_replaces_unsafe_ids(api: Fetch, no_errors_logged: Any, unsafe: str) -> None:
    session_id = await new_session(api, title="source")
    recovery = (await api("GET", f"api/sessions/{session_id}/recovery")).json()
    reply = await api("POST", "api/sessions/import", {**recovery, "id": unsafe})
    assert reply.code == 201, reply.body
    fresh = reply.json()["id"]
    assert fresh not in (unsafe, session_id)
    download = await api("GET", f"api/sessions/{fresh}/notebook")
    assert download.headers["Content-Disposition"] == f'attachment; filename="{fresh}.ipynb"'
    assert len(await all_sessions_read_back(api)) == 2


async def test_import_keeps_a_safe_id(api: Fetch) -> None:
    session_id = await new_session(api)
    recovery = (await api("GET", f"api/sessions/{session_id}/recovery")).json()
    reply = await api("POST", "api/sessions/import", {**recovery, "id": "my-session_2.v1"})
    assert reply.code == 201 and reply.json()["id"] == "my-session_2.v1"


async def test_a_stored_unsafe_id_never_reaches_the_download_header(
    api: Fetch, nbsession_app: Any
) -> None:
    manager = await nbsession_app.started_manager()
    await manager.store.create_session(Session(id='x"; filename=evil.sh; y="', title="old"))
    [summary] = (await api("GET", "api/sessions")).json()
    reply = await api("GET", f"api/sessions/{summary['id']}/notebook")  # jp_fetch escapes it
    assert reply.code == 200
    assert reply.headers["Content-Disposition"] == 'attachment; filename="session.ipynb"'


@pytest.mark.parametrize(
    ("working_dir", "why"),
    [("/no/such/dir", "not a directory"), ("../outside", "..")],
)
async def test_import_applies_the_working_dir_rules_of_create(
    api: Fetch, no_errors_logged: Any, working_dir: str, why: str
) -> None:
    session_id = await new_session(api)
    recovery = (await api("GET", f"api/sessions/{session_id}/recovery")).json()
    body = {**recovery, "id": "", "working_dir": working_dir}
    reply = await api("POST", "api/sessions/import", body)
    assert_refused(reply, "working_dir")
    assert why in reply.json()["message"]
    assert len(await all_sessions_read_back(api)) == 1


async def test_import_checks_the_template_fields_as_create_does(
    api: Fetch, no_errors_logged: Any
) -> None:
    session_id = await new_session(api)
    recovery = (await api("GET", f"api/sessions/{session_id}/recovery")).json()
    for field, value in [("tools_approved", "yes"), ("max_iterations", "5"), ("title", 3)]:
        reply = await api("POST", "api/sessions/import", {**recovery, "id": "", field: value})
        assert_refused(reply, field)
    assert len(await all_sessions_read_back(api)) == 1


async def test_import_resolves_a_relative_working_dir_as_create_does(
    api: Fetch, jp_root_dir: Path
) -> None:
    session_id = await new_session(api)
    recovery = (await api("GET", f"api/sessions/{session_id}/recovery")).json()
    project = jp_root_dir / "project"
    project.mkdir()
    body = {**recovery, "id": "", "working_dir": "project"}
    reply = await api("POST", "api/sessions/import", body)
    assert reply.code == 201, reply.body
    assert reply.json()["working_dir"] == str(project)


# -- approve-tool ---------------------------------------------------------------------------


@pytest.mark.parametrize("tool_name", ["*", "sh*", "think", "shell*"])
async def test_approve_tool_never_widens_beyond_the_pending_call(
    api: Fetch, stream: Any, tool_name: str
) -> None:
    session_id = await new_session(api)
    path = f"api/sessions/{session_id}"
    live: LiveStream = stream("POST", f"{path}/agent/default", user("list the files"))
    confirmation = await live.until("tool_call_confirmation")
    assert confirmation["tool_call"]["function"]["name"] == "shell"
    answer = {"confirmation": "approve-tool", "tool_name": tool_name}
    reply = await api("POST", f"{path}/resume", answer)
    assert_refused(reply, "tool_name")
    assert "permissions" not in (await api("GET", path)).json()
    # Still pending: the right answer goes through and allows exactly that tool.
    ok = await api("POST", f"{path}/resume", {"confirmation": "approve-tool", "tool_name": "shell"})
    assert ok.code == 200, ok.body
    await live.until("stream_stopped")
    assert (await api("GET", path)).json()["permissions"]["allow"] == ["shell"]
