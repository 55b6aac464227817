"""The ``api`` and ``openapi`` toolsets against a real local HTTP server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from peers.loopback import QuietHandler, serving

from nbsession.tools import ToolContext, build_toolsets, check_toolset
from nbsession.tools.base import Tool

CTX = ToolContext("s1", "")

SPEC = {
    "openapi": "3.0.0",
    "info": {"title": "pets", "version": "1"},
    "servers": [{"url": "/v1"}],
    "paths": {
        "/pets/{petId}": {
            "parameters": [
                {"name": "petId", "in": "path", "required": True, "schema": {"type": "integer"}}
            ],
            "get": {
                "operationId": "get-pet",
                "summary": "One pet",
                "parameters": [
                    {
                        "name": "verbose",
                        "in": "query",
                        "schema": {"$ref": "#/components/schemas/Flag"},
                    }
                ],
            },
        },
        "/pets": {
            "post": {
                "requestBody": {
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/NewPet"}}
                    }
                }
            }
        },
    },
    "components": {
        "schemas": {
            "Flag": {"type": "boolean", "description": "Say more"},
            "NewPet": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string"}, "tags": {"type": "array"}},
            },
        }
    },
}


class Handler(QuietHandler):
    def do_GET(self) -> None:  # the stdlib's name
        parts = urlsplit(self.path)
        if parts.path == "/openapi.json":
            self.send_json(200, SPEC)
        elif parts.path == "/broken":
            self.send_json(500, {"error": "down"})
        else:
            query = parse_qs(parts.query)
            self.send_json(
                200, {"method": "GET", "path": parts.path, "query": query, **self._seen()}
            )

    def do_POST(self) -> None:  # the stdlib's name
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"null")
        self.send_json(201, {"method": "POST", "path": self.path, "body": body, **self._seen()})

    def _seen(self) -> dict[str, Any]:
        return {"auth": self.headers.get("Authorization"), "type": self.headers.get("Content-Type")}


@pytest.fixture
def base() -> Iterator[str]:
    with serving(Handler) as url:
        yield url


async def tools_of(type_: str, options: dict[str, Any]) -> dict[str, Tool]:
    [toolset] = build_toolsets([(type_, options)])
    if not toolset.started:
        await toolset.start()
    return {tool.definition.name: tool for tool in await toolset.tools()}


def api(base: str, **config: Any) -> dict[str, Any]:
    return {"allow_private_ips": True, "api_config": {"name": "repo", **config}}


async def test_api_get_fills_the_endpoint_from_the_arguments(
    base: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_TOKEN", "s3cret")
    options = api(
        base,
        instruction="Look a repository up",
        endpoint=base + "/repos/${owner}/${repo}",
        args={"owner": {"type": "string"}, "repo": {"type": "string"}},
        required=["owner", "repo"],
        headers={"Authorization": "Bearer ${env.API_TOKEN}"},
    )
    tool = (await tools_of("api", options))["repo"]
    assert tool.definition.read_only and tool.definition.description == "Look a repository up"
    assert tool.definition.parameters["required"] == ["owner", "repo"]
    result = await tool.call({"owner": "docker", "repo": "a/b c"}, CTX)
    answer = json.loads(result.output)
    assert (answer["path"], answer["auth"]) == ("/repos/docker/a%2Fb%20c", "Bearer s3cret")
    missing = await tool.call({"owner": "docker"}, CTX)
    assert missing.is_error and "repo" in missing.output


async def test_api_post_sends_the_arguments_as_json_and_asks(base: str) -> None:
    tool = (await tools_of("api", api(base, endpoint=base + "/items", method="POST")))["repo"]
    assert not tool.definition.read_only  # a POST changes things: it asks for approval
    answer = json.loads((await tool.call({"name": "x", "n": 2}, CTX)).output)
    assert answer["body"] == {"name": "x", "n": 2} and answer["type"] == "application/json"


async def test_api_errors_and_refusals(base: str) -> None:
    failing = (await tools_of("api", api(base, endpoint=base + "/broken")))["repo"]
    result = await failing.call({}, CTX)
    assert result.is_error and result.output.startswith("API request failed with status 500")
    guarded = {**api(base, endpoint=base + "/x"), "allow_private_ips": False}
    refused = await (await tools_of("api", guarded))["repo"].call({}, CTX)
    assert refused.is_error and "allow_private_ips on the api toolset" in refused.output
    assert "only HTTP and HTTPS" in check_toolset("api", api(base, endpoint="ftp://h/x"))
    assert "api_config" in check_toolset("api", {})


async def test_openapi_makes_one_tool_per_operation(base: str) -> None:
    options = {"url": base + "/openapi.json", "allow_private_ips": True}
    tools = await tools_of("openapi", options)
    assert set(tools) == {"get_pet", "post_pets"}
    get_pet, post_pets = tools["get_pet"], tools["post_pets"]
    assert get_pet.definition.read_only and not post_pets.definition.read_only
    assert get_pet.definition.description == "One pet"
    assert get_pet.definition.parameters == {
        "type": "object",
        "properties": {
            "petId": {"type": "integer"},
            "verbose": {"type": "boolean", "description": "Say more"},
        },
        "required": ["petId"],
    }
    assert post_pets.definition.parameters["required"] == ["body_name"]

    answer = json.loads((await get_pet.call({"petId": 7, "verbose": True}, CTX)).output)
    assert (answer["path"], answer["query"]) == ("/v1/pets/7", {"verbose": ["true"]})
    posted = await post_pets.call({"body_name": "rex", "body_tags": ["a"]}, CTX)
    answer = json.loads(posted.output)
    assert answer["body"] == {"name": "rex", "tags": ["a"]}


async def test_openapi_that_cannot_be_fetched_fails_its_start(base: str) -> None:
    [toolset] = build_toolsets([("openapi", {"url": base + "/broken", "allow_private_ips": True})])
    with pytest.raises(RuntimeError, match="status 500"):
        await toolset.start()
    assert not toolset.started and await toolset.tools() == []
    [guarded] = build_toolsets([("openapi", {"url": base + "/openapi.json"})])
    with pytest.raises(RuntimeError, match="allow_private_ips on the openapi toolset"):
        await guarded.start()
