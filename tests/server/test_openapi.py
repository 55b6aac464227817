"""The OpenAPI document matches what the server really registers, accepts and answers."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

from jsonschema import Draft202012Validator
from tornado.routing import Router
from tornado.web import RequestHandler

from nbsession.server.base import NBSessionHandler
from nbsession.server.handlers import NotFoundHandler
from nbsession.server.routes import ROUTES

from .conftest import PLACEHOLDERS, Fetch, LiveStream, frames, new_session, user

HTTP_METHODS = ("get", "post", "patch", "put", "delete")


def registered(router: Any) -> list[tuple[str, type[RequestHandler]]]:
    """Every (regex, handler) rule in the tornado application, nested routers included."""
    rules = []
    for rule in router.rules:
        if isinstance(rule.target, Router):
            rules += registered(rule.target)
        elif isinstance(rule.target, type):
            rules.append((rule.matcher.regex.pattern, rule.target))
    return rules


def implemented(handler: type[RequestHandler]) -> set[str]:
    """The HTTP methods a handler class defines itself (not tornado's 405 stubs)."""
    return {
        m.upper() for m in HTTP_METHODS if getattr(handler, m) is not getattr(RequestHandler, m)
    }


async def fetch_document(api: Fetch) -> dict[str, Any]:
    reply = await api("GET", "api/openapi.json")
    assert reply.code == 200
    return reply.json()


async def test_document_is_openapi_31_for_this_server(api: Fetch, jp_base_url: str) -> None:
    document = await fetch_document(api)
    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": f"{jp_base_url}nbsession"}]
    assert document["paths"]["/health"]["get"]["security"] == []


async def test_every_registered_route_is_documented(
    api: Fetch, jp_serverapp: Any, jp_base_url: str
) -> None:
    document = await fetch_document(api)
    ours = [
        (pattern, handler)
        for pattern, handler in registered(jp_serverapp.web_app.default_router)
        if issubclass(handler, NBSessionHandler) and handler is not NotFoundHandler
    ]
    by_pattern = {f"{jp_base_url.rstrip('/')}{route.pattern}$": route for route in ROUTES}
    assert len(ours) == len(ROUTES)
    for pattern, handler in ours:
        route = by_pattern[pattern]
        documented = {method.upper() for method in document["paths"][route.path]}
        assert implemented(handler) == documented, route.path


async def test_every_documented_operation_answers_a_documented_status(api: Fetch) -> None:
    document = await fetch_document(api)
    for path, item in document["paths"].items():
        for method, operation in item.items():
            url = path.lstrip("/").format(**PLACEHOLDERS)
            body = {} if "requestBody" in operation else None
            reply = await api(method.upper(), url, body, params={"timeout": "0s"})
            assert str(reply.code) in operation["responses"], (method, path, reply.code)
            if reply.code >= 400:
                assert reply.json()["code"] != "not_found", (method, path)


def validator(document: dict[str, Any], operation: dict[str, Any], status: int) -> Any:
    content = operation["responses"][str(status)]["content"]
    schema = next(iter(content.values()))["schema"]
    return Draft202012Validator({**schema, "components": document["components"]})


async def test_replies_match_their_schemas(api: Fetch) -> None:
    document = await fetch_document(api)
    session_id = await new_session(api)
    reply = await api("POST", f"api/sessions/{session_id}/agent/default", user("what is 17*23"))
    assert reply.code == 200
    sessions = "/api/sessions/{session_id}"
    checks = [
        ("GET", "/ready", "ready", 200),
        ("GET", "/api/agents", "api/agents", 200),
        ("GET", "/api/sessions", "api/sessions", 200),
        ("GET", sessions, f"api/sessions/{session_id}", 200),
        ("GET", f"{sessions}/status", f"api/sessions/{session_id}/status", 200),
        ("GET", f"{sessions}/snapshot", f"api/sessions/{session_id}/snapshot", 200),
        ("GET", f"{sessions}/models", f"api/sessions/{session_id}/models", 200),
        ("GET", f"{sessions}/queue", f"api/sessions/{session_id}/queue", 200),
        ("GET", sessions, "api/sessions/nope", 404),
    ]
    for method, path, url, status in checks:
        reply = await api(method, url)
        assert reply.code == status, url
        operation = document["paths"][path][method.lower()]
        validator(document, operation, status).validate(reply.json())


async def test_documented_session_fields_are_the_served_ones(
    api: Fetch, stream: Callable[..., LiveStream]
) -> None:
    """Every field GET /api/sessions/{id} and /snapshot send is documented, with its type."""
    document = await fetch_document(api)
    schemas = document["components"]["schemas"]
    session_id = await new_session(api, kernel_id="k-1", notebook_path="nb/a.ipynb")
    live = stream("POST", f"api/sessions/{session_id}/agent/default", user("list the files"))
    await live.until("tool_call_confirmation")
    sessions = "/api/sessions/{session_id}"
    for path, schema in [
        (sessions, "SessionResponse"),
        (f"{sessions}/snapshot", "SessionSnapshot"),
    ]:
        reply = await api("GET", path.format(session_id=session_id).lstrip("/"))
        body = reply.json()
        assert set(body) <= set(schemas[schema]["properties"]), path
        assert (body["kernel_id"], body["notebook_path"]) == ("k-1", "nb/a.ipynb")
        validator(document, document["paths"][path]["get"], 200).validate(body)
        if schema == "SessionSnapshot":
            assert body["pending"]["type"] == "tool_call_confirmation"
    await api("POST", f"api/sessions/{session_id}/resume", {"confirmation": "reject"})
    await live.until("stream_stopped")


async def test_a_405_says_which_methods_the_path_has(api: Fetch) -> None:
    for method, path, allowed in [
        ("PUT", "api/sessions", "GET, POST, OPTIONS"),
        ("DELETE", "health", "GET, OPTIONS"),  # an open route: no XSRF 403 first
        ("GET", f"api/sessions/{PLACEHOLDERS['session_id']}/fork", "POST, OPTIONS"),
    ]:
        reply = await api(method, path, {} if method != "GET" else None)
        assert (reply.code, reply.error_code) == (405, "method_not_allowed"), path
        assert reply.headers["Allow"] == allowed


async def test_the_document_declares_the_400s_the_server_gives(api: Fetch) -> None:
    """Empty lists and non-durations are refused; the document says so, and the server agrees."""
    document = await fetch_document(api)
    schemas = document["components"]["schemas"]
    assert schemas["BatchRequest"]["properties"]["session_ids"]["minItems"] == 1
    assert schemas["MessagesRequest"]["properties"]["messages"]["minItems"] == 1
    ready = document["paths"]["/api/ready"]["get"]
    [timeout] = ready["parameters"]
    pattern = timeout["schema"]["pattern"]
    assert all(re.fullmatch(pattern, good) for good in ("30s", "1m30s", "500ms", "2.5"))
    for short in ("30ms", "0.05"):
        assert (await api("GET", "api/ready", params={"timeout": short})).code == 503
    for bad in ("", "soon", "-1s", "1e3", "inf", " 5s"):
        assert not re.fullmatch(pattern, bad)
        reply = await api("GET", "api/ready", params={"timeout": bad})
        assert (reply.code, reply.error_code) == (400, "invalid_request"), bad
    session_id = await new_session(api)
    for route, body in [
        ("batch/delete", {"session_ids": []}),
        (f"{session_id}/steer", {"messages": []}),
    ]:
        reply = await api("POST", f"api/sessions/{route}", body)
        assert (reply.code, reply.error_code) == (400, "invalid_request"), route


async def test_list_rows_say_which_turn_waits_as_documented(api: Fetch, stream: Any) -> None:
    document = await fetch_document(api)
    idle, waiting = await new_session(api), await new_session(api)
    live = stream("POST", f"api/sessions/{waiting}/agent/default", user("list the files"))
    await live.until("tool_call_confirmation")
    listing = (await api("GET", "api/sessions")).json()
    validator(document, document["paths"]["/api/sessions"]["get"], 200).validate(listing)
    activity = {row["id"]: row["activity"] for row in listing}
    assert activity[idle] is None
    assert activity[waiting]["state"] == "waiting_for_approval"
    assert activity[waiting]["tool"] == "shell"
    await api("POST", f"api/sessions/{waiting}/resume", {"confirmation": "reject"})
    await live.until("stream_stopped")
    deadline = asyncio.get_running_loop().time() + 10  # the turn settles just after its end
    while any(row["activity"] for row in (await api("GET", "api/sessions")).json()):
        assert asyncio.get_running_loop().time() < deadline, "the activity stayed listed"
        await asyncio.sleep(0.02)


async def test_plan_and_todo_changes_reach_clients_as_documented(
    api: Fetch, stream: Callable[..., LiveStream], tmp_path: Any
) -> None:
    """A written plan is docker-agent's ``plan_updated`` event; a todo change, as in
    docker-agent, the whole list in its ``tool_call_response``'s ``result.meta``."""
    agents = tmp_path / "agents"
    agents.mkdir(exist_ok=True)
    (agents / "planner.yaml").write_text(
        "agents: {root: {model: demo/offline, description: plans,"
        " toolsets: [{type: plan}, {type: todo}]}}\n"
    )
    document = await fetch_document(api)
    session_id = await new_session(api)
    run = f"api/sessions/{session_id}/agent/planner"
    write = 'call `write_plan` with {"content": "1. look\\n2. fix"}'
    live = stream("POST", run, user(write))
    await live.until("tool_call_confirmation")
    await api("POST", f"api/sessions/{session_id}/resume", {"confirmation": "approve"})
    plan = await live.until("plan_updated")
    await live.until("stream_stopped")
    assert (plan["session_id"], plan["content"], plan["agent_name"]) == (
        session_id,
        "1. look\n2. fix",
        "root",
    )
    assert plan["path"].endswith(f"/plans/{session_id}.md")
    kinds = [event["type"] for _seq, event in live.events]
    assert kinds.index("plan_updated") < kinds.index("tool_call_response")
    events = document["paths"]["/api/sessions/{session_id}/events"]["get"]
    item = events["responses"]["200"]["content"]["text/event-stream"]["schema"]
    schema = item["properties"]["data"]["contentSchema"]
    check = Draft202012Validator({**schema, "components": document["components"]})
    check.validate(plan)
    planned = document["components"]["schemas"]["PlanUpdatedEvent"]
    Draft202012Validator({**planned, "components": document["components"]}).validate(plan)

    reply = await api("POST", run, user("make a plan"))
    responses = [
        event for _seq, event in frames(reply.body) if event["type"] == "tool_call_response"
    ]
    [created] = responses
    assert [todo["status"] for todo in created["result"]["meta"]] == ["pending"] * len(
        created["result"]["meta"]
    )
    assert created["result"]["meta"][0]["id"] == "todo_1"
    assert set(created["result"]["meta"][0]) == {"id", "description", "status"}
