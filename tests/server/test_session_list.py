"""SPEC 2, the session list: newest first, paged with a cursor, whole without one.

Thousands of sessions are written through the store directly (fast), then read over HTTP.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from nbsession.session import Session, utc_now

from .conftest import Fetch, new_session

SESSIONS = 3000
PAGE = 400


async def fill(nbsession_app: Any, count: int) -> list[str]:
    """``count`` sessions, many sharing a creation instant; their ids, newest first."""
    manager = await nbsession_app.started_manager()
    start = utc_now() - timedelta(days=1)
    sessions = [
        Session(title=f"s{n}", created_at=start + timedelta(seconds=n // 4)) for n in range(count)
    ]
    for session in sessions:
        await manager.store.create_session(session)
    return [s.id for s in sorted(sessions, key=lambda s: (s.created_at, s.id), reverse=True)]


async def test_pages_cover_every_session_once_while_sessions_are_created(
    api: Fetch, nbsession_app: Any
) -> None:
    expected = await fill(nbsession_app, SESSIONS)
    seen: list[str] = []
    created: list[str] = []
    params = {"limit": str(PAGE)}
    while True:
        reply = await api("GET", "api/sessions", params=params)
        assert reply.code == 200, reply.body
        page = reply.json()
        assert len(page) <= PAGE
        seen += [summary["id"] for summary in page]
        cursor = reply.headers.get("X-Next-Cursor")
        if cursor is None:
            break
        params = {"limit": str(PAGE), "before": cursor}
        created.append(await new_session(api))  # newer than the cursor: on no later page
    assert len(created) == SESSIONS // PAGE
    assert seen == expected  # newest first, none twice, none missed

    first = (await api("GET", "api/sessions", params={"limit": "2"})).json()
    assert [summary["id"] for summary in first] == created[::-1][:2]


async def test_without_a_limit_the_whole_list_comes(api: Fetch, nbsession_app: Any) -> None:
    expected = await fill(nbsession_app, SESSIONS)
    reply = await api("GET", "api/sessions")
    assert reply.code == 200
    assert reply.headers["Content-Type"].startswith("application/json")
    assert "X-Next-Cursor" not in reply.headers
    summaries = reply.json()
    assert [summary["id"] for summary in summaries] == expected
    assert set(summaries[0]) == {
        "id",
        "title",
        "created_at",
        "num_messages",
        "input_tokens",
        "output_tokens",
        "working_dir",
        "starred",
        "activity",  # nbsession's: null, since no turn runs
    }
    assert summaries[0]["activity"] is None
    # The last page of a cursor walk carries no cursor; before alone gives the rest.
    page = await api("GET", "api/sessions", params={"limit": "10"})
    rest = await api("GET", "api/sessions", params={"before": page.headers["X-Next-Cursor"]})
    assert [s["id"] for s in rest.json()] == expected[10:]


async def test_an_empty_store_lists_an_empty_array(api: Fetch) -> None:
    for params in (None, {"limit": "5"}):
        reply = await api("GET", "api/sessions", params=params)
        assert (reply.code, reply.body, reply.headers.get("X-Next-Cursor")) == (200, b"[]", None)


async def test_bad_paging_parameters_are_a_400_naming_them(api: Fetch) -> None:
    await new_session(api)
    for name, value in [
        ("limit", "0"),
        ("limit", "-1"),
        ("limit", "ten"),
        ("limit", "10001"),
        ("limit", "9" * 5000),
        ("before", "not-a-cursor"),
        ("before", ""),
    ]:
        reply = await api("GET", "api/sessions", params={name: value})
        assert reply.code == 400, (name, value, reply.body)
        assert reply.error_code == "invalid_request"
        assert name in reply.json()["message"]


async def test_the_document_describes_paging(api: Fetch) -> None:
    operation = (await api("GET", "api/openapi.json")).json()["paths"]["/api/sessions"]["get"]
    params = {param["name"]: param for param in operation["parameters"]}
    assert params["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 10000}
    assert params["before"]["schema"] == {"type": "string"}
    assert "X-Next-Cursor" in operation["responses"]["200"]["headers"]
    assert "400" in operation["responses"]
