"""The ``api`` toolset: one HTTP endpoint as one tool (docker-agent's ``api_config``).

``endpoint`` may hold ``${name}`` placeholders: a GET fills them from the call's arguments
(URL-encoded); a POST sends the arguments as a JSON body. ``${env.NAME}`` (and ``$NAME``) in
the endpoint and the headers come from the server's environment. Hosts that are not public
are refused unless ``allow_private_ips``. A GET is read-only, so it runs without asking;
unlike docker-agent, which marks every api tool read-only, a POST asks for approval.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar, Literal
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator

from ._http import Refused, check_public_address, check_url, limit_output, read_limited
from .base import Tool, ToolContext, ToolDefinition, ToolResult, Toolset, expand_env

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
USER_AGENT = "nbsession-api (docker-agent compatible)"


class APIConfig(BaseModel):
    """docker-agent's ``api_config``: the tool's name and description, its arguments as JSON
    Schema properties, and the request it makes."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1)
    instruction: str = ""
    endpoint: str = Field(min_length=1)
    method: Literal["GET", "POST"] = "GET"
    args: dict[str, Any] = Field(default_factory=dict)
    required: list[str] = Field(default_factory=list)
    headers: dict[str, str] = Field(default_factory=dict)
    output_schema: dict[str, Any] | None = None

    @field_validator("endpoint")
    @classmethod
    def _http_url(cls, endpoint: str) -> str:
        try:
            check_url(_PLACEHOLDER.sub("x", endpoint))
        except Refused as exc:
            raise ValueError(str(exc)) from None
        return endpoint


class APIOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    api_config: APIConfig
    timeout: PositiveInt = Field(30, description="Seconds a request may take")
    allow_private_ips: bool = False


class APIToolset(Toolset):
    """One tool, named by ``api_config.name``."""

    type: ClassVar[str] = "api"
    options_model = APIOptions

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self._options = APIOptions.model_validate(dict(options or {}))
        self._tool = _APITool(self._options)

    async def tools(self) -> list[Tool]:
        return [self._tool]


class _APITool(Tool):
    def __init__(self, options: APIOptions) -> None:
        self._options = options
        config = options.api_config
        self.definition = ToolDefinition(
            name=config.name,
            description=config.instruction or f"{config.method} {config.endpoint}",
            parameters={"type": "object", "properties": config.args, "required": config.required},
            read_only=config.method == "GET",
            title=config.name,
            category="api",
        )

    async def call(self, arguments: Mapping[str, Any], ctx: ToolContext) -> ToolResult:
        config = self._options.api_config
        missing = [name for name in config.required if arguments.get(name) is None]
        if missing:
            return ToolResult(f"Missing required argument(s): {', '.join(missing)}", is_error=True)
        endpoint = expand_env(config.endpoint)
        body: bytes | None = None
        headers = {"User-Agent": USER_AGENT}
        headers.update({key: expand_env(value) for key, value in config.headers.items()})
        if config.method == "GET":
            endpoint = _PLACEHOLDER.sub(lambda m: _url_value(arguments.get(m.group(1))), endpoint)
        else:
            body = json.dumps(dict(arguments)).encode()
            headers["Content-Type"] = "application/json"
        try:
            check_url(endpoint)
            if not self._options.allow_private_ips:
                await check_public_address(endpoint, "api")
            async with (
                httpx.AsyncClient(timeout=self._options.timeout) as client,
                client.stream(config.method, endpoint, content=body, headers=headers) as response,
            ):
                data, _ = await read_limited(response)
        except Refused as exc:
            return ToolResult(f"Refused: {exc}", is_error=True)
        except httpx.HTTPError as exc:
            return ToolResult(f"API request failed: {exc or type(exc).__name__}", is_error=True)
        text = limit_output(data.decode("utf-8", errors="replace"))
        if response.status_code >= 400:
            reason = response.reason_phrase
            return ToolResult(
                f"API request failed with status {response.status_code} {reason}: {text}",
                is_error=True,
            )
        return ToolResult(text)


def _url_value(value: Any) -> str:
    """An argument as it goes into a URL: text as it is, the rest as JSON, then encoded."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value)
    return quote(text, safe="")
