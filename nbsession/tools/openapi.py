"""The ``openapi`` toolset: one tool per operation of an OpenAPI 3 document (docker-agent's).

The document is fetched from ``url`` (JSON or YAML) when the toolset starts, at the beginning of
the first turn that needs it; one that cannot be fetched or read is a ``warning`` and the turn
goes on without its tools, as for an MCP server. A tool is named by the operation's
``operationId`` (else method and path), described by its summary, and takes the path and query
parameters by name and the JSON body's properties as ``body_<name>``. Requests go to the
document's first server (relative to ``url``), else to ``url``'s origin, with ``headers``.
GET, HEAD and OPTIONS are read-only; the other methods ask for approval.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar
from urllib.parse import quote, urljoin, urlsplit

import httpx
import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from ._http import Refused, check_public_address, check_url, limit_output, read_limited
from .base import Tool, ToolContext, ToolDefinition, ToolResult, Toolset, expand_env

MAX_SPEC = 10 << 20
METHODS = ("get", "post", "put", "patch", "delete", "head", "options")
READ_ONLY_METHODS = frozenset({"get", "head", "options"})
BODY_PREFIX = "body_"
USER_AGENT = "nbsession-openapi (docker-agent compatible)"


class OpenAPIOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str = Field(min_length=1, description="Where the OpenAPI document is")
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: PositiveInt = Field(30, description="Seconds a request may take")
    allow_private_ips: bool = False


class OpenAPIToolset(Toolset):
    type: ClassVar[str] = "openapi"
    options_model = OpenAPIOptions

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self._options = OpenAPIOptions.model_validate(dict(options or {}))
        self._tools: list[Tool] | None = None

    @property
    def started(self) -> bool:
        return self._tools is not None

    async def start(self) -> None:
        """Fetch and read the document; raises (the runtime warns) when that fails."""
        options = self._options
        url = expand_env(options.url)
        try:
            data = await _request(options, "GET", url, accept="application/json, */*")
        except Refused as exc:
            raise RuntimeError(f"cannot fetch the OpenAPI document {url}: {exc}") from None
        if data.status >= 400 or data.truncated:
            problem = f"status {data.status}" if data.status >= 400 else "larger than 10 MiB"
            raise RuntimeError(f"cannot fetch the OpenAPI document {url}: {problem}")
        try:
            document = yaml.safe_load(data.text)
        except yaml.YAMLError as exc:
            raise RuntimeError(f"the OpenAPI document {url} is not JSON or YAML: {exc}") from None
        if not isinstance(document, dict) or not isinstance(document.get("paths"), dict):
            raise RuntimeError(f"the OpenAPI document {url} has no paths")
        base = _base_url(document, url)
        self._tools = [
            _Operation(options, base, path, method, op, document)
            for path, method, op in _operations(document)
        ]

    async def tools(self) -> list[Tool]:
        return list(self._tools or [])


class _Operation(Tool):
    """One operation of the document, as a tool."""

    def __init__(
        self,
        options: OpenAPIOptions,
        base: str,
        path: str,
        method: str,
        op: Mapping[str, Any],
        document: Mapping[str, Any],
    ) -> None:
        self._options = options
        self._url = base + path
        self._path = path
        self._method = method.upper()
        name = op.get("operationId") or f"{method}_{path}"
        description = (
            op.get("summary") or _shortened(op.get("description")) or (f"{self._method} {path}")
        )
        self.definition = ToolDefinition(
            name=_tool_name(str(name)),
            description=str(description),
            parameters=_schema(op, document),
            read_only=method in READ_ONLY_METHODS,
            title=str(description),
            category="openapi",
        )

    async def call(self, arguments: Mapping[str, Any], ctx: ToolContext) -> ToolResult:
        url, query, body = self._url, {}, {}
        for key, value in arguments.items():
            placeholder = "{" + key + "}"
            if placeholder in self._path:
                url = url.replace(placeholder, quote(_text(value), safe=""))
            elif key.startswith(BODY_PREFIX):
                body[key.removeprefix(BODY_PREFIX)] = value
            else:
                query[key] = _text(value)
        try:
            data = await _request(
                self._options,
                self._method,
                url,
                accept="application/json",
                params=query,
                body=body or None,
            )
        except Refused as exc:
            return ToolResult(f"Refused: {exc}", is_error=True)
        text = limit_output(data.text)
        if data.truncated:
            text = "[WARNING: Response truncated at 1MB limit]\n" + text
        if data.status >= 400:
            return ToolResult(f"HTTP {data.status}: {text}", is_error=True)
        return ToolResult(text)


class _Response:
    def __init__(self, status: int, text: str, truncated: bool) -> None:
        self.status, self.text, self.truncated = status, text, truncated


async def _request(
    options: OpenAPIOptions,
    method: str,
    url: str,
    *,
    accept: str,
    params: Mapping[str, str] | None = None,
    body: Mapping[str, Any] | None = None,
) -> _Response:
    """One request with the toolset's guards and headers; network failures are refusals."""
    check_url(url)
    if not options.allow_private_ips:
        await check_public_address(url, "openapi")
    headers = {"User-Agent": USER_AGENT, "Accept": accept}
    headers.update({key: expand_env(value) for key, value in options.headers.items()})
    content = None
    if body is not None:
        content = json.dumps(dict(body)).encode()
        headers["Content-Type"] = "application/json"
    limit = MAX_SPEC if method == "GET" and params is None else None
    try:
        async with (
            httpx.AsyncClient(timeout=options.timeout) as client,
            client.stream(method, url, params=params, content=content, headers=headers) as r,
        ):
            data, truncated = await (read_limited(r, limit) if limit else read_limited(r))
    except httpx.HTTPError as exc:
        raise Refused(f"request failed: {exc or type(exc).__name__}") from None
    return _Response(r.status_code, data.decode("utf-8", errors="replace"), truncated)


def _operations(document: Mapping[str, Any]) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    for path, item in document["paths"].items():
        if not isinstance(item, dict):
            continue
        for method in METHODS:
            op = item.get(method)
            if isinstance(op, dict):
                shared = item.get("parameters") or []
                yield (
                    str(path),
                    method,
                    {**op, "parameters": [*shared, *(op.get("parameters") or [])]},
                )


def _base_url(document: Mapping[str, Any], spec_url: str) -> str:
    servers = document.get("servers") or []
    if servers and isinstance(servers[0], dict) and servers[0].get("url"):
        return urljoin(spec_url, str(servers[0]["url"])).rstrip("/")
    parts = urlsplit(spec_url)
    return f"{parts.scheme}://{parts.netloc}"


def _schema(op: Mapping[str, Any], document: Mapping[str, Any]) -> dict[str, Any]:
    """The tool's parameters: path and query parameters, then the JSON body's properties."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for raw in op.get("parameters") or []:
        parameter = _resolve(raw, document)
        name = parameter.get("name")
        if not isinstance(name, str) or parameter.get("in") not in ("path", "query"):
            continue
        prop = _property(parameter.get("schema"), document)
        if parameter.get("description"):
            prop["description"] = parameter["description"]
        properties[name] = prop
        if parameter.get("required"):
            required.append(name)
    body = _resolve(op.get("requestBody") or {}, document)
    content = (body.get("content") or {}).get("application/json") or {}
    schema = _resolve(content.get("schema") or {}, document)
    for name, prop in (schema.get("properties") or {}).items():
        properties[BODY_PREFIX + name] = _property(prop, document)
    required += [BODY_PREFIX + name for name in schema.get("required") or []]
    result: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        result["required"] = required
    return result


def _property(schema: Any, document: Mapping[str, Any]) -> dict[str, Any]:
    """A parameter's schema as docker-agent reduces it: type, description, enum, default."""
    schema = _resolve(schema or {}, document)
    kind = schema.get("type") or "string"
    prop: dict[str, Any] = {"type": kind[0] if isinstance(kind, list) else kind}
    for key in ("description", "enum", "default"):
        if key in schema:
            prop[key] = schema[key]
    if prop["type"] == "array":
        prop["items"] = _property(schema.get("items"), document)
    return prop


def _resolve(value: Any, document: Mapping[str, Any], depth: int = 0) -> dict[str, Any]:
    """``value`` with a local ``$ref`` (``#/components/...``) followed."""
    if not isinstance(value, dict):
        return {}
    ref = value.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/") or depth > 20:
        return value
    target: Any = document
    for part in ref[2:].split("/"):
        target = (
            target.get(part.replace("~1", "/").replace("~0", "~"))
            if isinstance(target, dict)
            else None
        )
    return _resolve(target, document, depth + 1)


def _tool_name(name: str) -> str:
    """docker-agent's tool names: separators become ``_``, braces go, runs of ``_`` collapse."""
    name = re.sub(r"[/\-.]", "_", name).replace("{", "").replace("}", "")
    return re.sub(r"_+", "_", name).strip("_")


def _shortened(text: Any) -> str:
    if not isinstance(text, str):
        return ""
    return text if len(text) <= 200 else text[:200] + "..."


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
