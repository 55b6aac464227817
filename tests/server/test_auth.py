"""Authentication over the whole route table: 401s, tokens, cookies with XSRF, no token in logs."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from traitlets.config import Config

from nbsession.server.routes import ROUTES

from .conftest import EXT_TOKEN, PLACEHOLDERS, Fetch

NO_AUTH = {"Authorization": ""}
XSRF = "6e627365737369f6e"  # any hex string: tornado's double-submit check compares the two


def operations(open_routes: bool) -> list[tuple[str, str]]:
    """(method, path) of every operation, with placeholders filled in."""
    return [
        (method, route.path.lstrip("/").format(**PLACEHOLDERS))
        for route in ROUTES
        if route.open == open_routes
        for method in route.operations
    ]


@pytest.fixture(params=[False, True], ids=["default-access", "allow_unauthenticated_access"])
def jp_server_config(jp_server_config: Config, request: pytest.FixtureRequest) -> Config:
    """Both settings of ServerApp.allow_unauthenticated_access: neither opens nbsession."""
    jp_server_config.ServerApp.allow_unauthenticated_access = request.param
    return jp_server_config


def body_for(method: str) -> Any:
    return {} if method in ("POST", "PATCH") else None


async def test_every_closed_route_refuses_missing_or_wrong_tokens(api: Fetch) -> None:
    attempts = {
        "no credential": NO_AUTH,
        "wrong bearer": {"Authorization": "Bearer not-the-token"},
        "wrong token scheme": {"Authorization": "token not-the-token"},
        "empty bearer": {"Authorization": "Bearer "},
    }
    for method, path in operations(open_routes=False):
        for name, headers in attempts.items():
            reply = await api(method, path, body_for(method), headers=headers)
            assert reply.code == 401, f"{name}: {method} {path} -> {reply.code}"
            assert reply.headers["Www-Authenticate"] == "Bearer"
            assert reply.error_code == "unauthorized"


async def test_every_closed_route_accepts_either_token(api: Fetch, jp_serverapp: Any) -> None:
    server_token = jp_serverapp.identity_provider.token
    for token in (EXT_TOKEN, server_token):
        for method, path in operations(open_routes=False):
            headers = {"Authorization": f"Bearer {token}"}
            # timeout=0s: /api/ready would otherwise wait 30 s for a session.
            params = {"timeout": "0s"}
            reply = await api(method, path, body_for(method), headers=headers, params=params)
            assert reply.code not in (401, 403), f"{method} {path} -> {reply.code}: {reply.body}"


async def test_health_and_ready_are_open(api: Fetch) -> None:
    for method, path in operations(open_routes=True):
        assert (await api(method, path, headers=NO_AUTH)).code == 200, path


async def test_unknown_paths_are_closed_too(api: Fetch) -> None:
    assert (await api("GET", "api/secret", headers=NO_AUTH)).code == 401


async def test_query_token_and_cookie_sessions_with_xsrf(api: Fetch, jp_serverapp: Any) -> None:
    server_token = jp_serverapp.identity_provider.token
    login = await api("GET", "api/ping", headers=NO_AUTH, params={"token": server_token})
    assert login.code == 200
    cookie = login.headers["Set-Cookie"].split(";", 1)[0]
    as_browser = {**NO_AUTH, "Cookie": cookie}

    assert (await api("GET", "api/sessions", headers=as_browser)).code == 200
    refused = await api("POST", "api/sessions", {}, headers=as_browser)
    assert (refused.code, refused.error_code) == (403, "forbidden")
    assert (await api("GET", "api/sessions", headers=as_browser)).json() == []

    with_xsrf = {**NO_AUTH, "Cookie": f"{cookie}; _xsrf={XSRF}", "X-XSRFToken": XSRF}
    assert (await api("POST", "api/sessions", {}, headers=with_xsrf)).code == 200

    # An explicit but wrong credential is refused even alongside a valid login cookie.
    wrong = {**as_browser, "Authorization": "Bearer nope"}
    assert (await api("GET", "api/sessions", headers=wrong)).code == 401


async def test_tokens_never_reach_the_log(
    api: Fetch, jp_serverapp: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server_token = jp_serverapp.identity_provider.token
    wrong = "wrong-token-7a1b"
    with caplog.at_level(logging.DEBUG):
        await api("GET", "api/sessions", headers={"Authorization": f"Bearer {EXT_TOKEN}"})
        await api("GET", "api/sessions", headers={"Authorization": f"Bearer {wrong}"})
        await api("GET", "api/nothing", headers=NO_AUTH, params={"token": server_token})
        await api("POST", "api/sessions", raw=b"{bad", params={"token": server_token})
        await api("GET", "api/sessions", headers=NO_AUTH, params={"token": wrong})
    assert caplog.records, "the requests should have been logged"
    for secret in (EXT_TOKEN, server_token, wrong):
        assert not re.search(re.escape(secret), caplog.text), secret
