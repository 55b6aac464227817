"""The OpenAPI 3.1 document of the API, generated from the route table and its models.

JSON Schema 2020-12 (what pydantic emits) is OpenAPI 3.1's schema dialect, so the component
schemas are pydantic's output as is. Only the server URL depends on the request; the rest is
built once per process.
"""

from __future__ import annotations

import copy
import functools
from http.client import responses
from typing import Any

from jupyter_server.utils import url_path_join
from pydantic import TypeAdapter

from .. import __version__
from ..manager import MAX_IDEMPOTENCY_KEY
from .base import DURATION_PATTERN, INT64_MAX, MAX_COUNT
from .routes import PREFIX, ROUTES, Operation, Param, Route
from .schemas import ErrorBody

_REF = "#/components/schemas/{model}"
_SSE = "text/event-stream"
_SSE_REPLY = "Server-Sent Events: per event an `id: <seq>` line and a `data: <Event>` line."
_ERROR = {"$ref": _REF.format(model="ErrorBody")}
_PARAM_SCHEMAS: dict[str, dict[str, Any]] = {
    "duration": {"type": "string", "pattern": DURATION_PATTERN, "examples": ["30s"]},
    "boolean": {"type": "boolean"},
    "integer": {"type": "integer", "minimum": 0, "maximum": INT64_MAX},
    "count": {"type": "integer", "minimum": 1, "maximum": MAX_COUNT},
    "string": {"type": "string"},
    "key": {"type": "string", "maxLength": MAX_IDEMPOTENCY_KEY},
}
_DESCRIPTION = (
    "docker-agent's session API served by jupyter-server. Authenticate with "
    "`Authorization: Bearer <token>` (the extension's token or the server's); a browser with "
    "a jupyter-server login cookie is accepted too and must send the XSRF token on writes. "
    "Errors are `{code, message}`. SSE frames are `id: <seq>` then `data: <event JSON>`."
)


def openapi_document(base_url: str) -> dict[str, Any]:
    """The document for a server whose routes live under ``{base_url}nbsession``."""
    document = copy.deepcopy(_document())
    document["servers"] = [{"url": url_path_join(base_url, PREFIX)}]
    return document


@functools.cache
def _document() -> dict[str, Any]:
    inputs: list[tuple[Any, Any, TypeAdapter[Any]]] = [
        (("ErrorBody",), "serialization", TypeAdapter(ErrorBody))
    ]
    for route in ROUTES:
        for method, op in route.operations.items():
            if op.request_schema is not None:
                key = (route.path, method, "body")
                inputs.append((key, "validation", TypeAdapter(op.request_schema)))
            for status, reply in op.replies.items():
                key = (route.path, method, status)
                inputs.append((key, "serialization", TypeAdapter(reply)))
    schemas, definitions = TypeAdapter.json_schemas(inputs, ref_template=_REF)
    by_key = {key: schema for (key, _mode), schema in schemas.items()}
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        item = paths.setdefault(route.path, {})
        for method, op in route.operations.items():
            item[method.lower()] = _operation(route, method, op, by_key)
    return {
        "openapi": "3.1.0",
        "info": {"title": "nbsession", "version": __version__, "description": _DESCRIPTION},
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


def _operation(
    route: Route, method: str, op: Operation, schemas: dict[Any, dict[str, Any]]
) -> dict[str, Any]:
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in route.path_params
    ]
    parameters += [_parameter(param) for param in op.params]
    result: dict[str, Any] = {
        "operationId": _operation_id(route, method),
        "summary": op.summary,
        "responses": {
            str(status): {
                "description": _SSE_REPLY if op.media == _SSE else responses.get(status, "Reply"),
                "content": {
                    op.media if status < 300 else "application/json": {
                        "schema": _sse_event(schemas[(route.path, method, status)])
                        if op.media == _SSE and status < 300
                        else schemas[(route.path, method, status)]
                    }
                },
            }
            for status, _reply in op.replies.items()
        },
    }
    for status in op.replies:
        if op.reply_headers and status < 300:
            result["responses"][str(status)]["headers"] = {
                name: {"description": text, "schema": {"type": "string"}}
                for name, text in op.reply_headers.items()
            }
    if parameters:
        result["parameters"] = parameters
    if op.request_schema is not None:
        result["requestBody"] = {
            "required": not op.body_optional,
            "content": {"application/json": {"schema": schemas[(route.path, method, "body")]}},
        }
    for status in _error_statuses(route, op):
        reply: dict[str, Any] = {
            "description": responses.get(status, "Error"),
            "content": {"application/json": {"schema": _ERROR}},
        }
        if status == 401:
            reply["headers"] = {"WWW-Authenticate": {"schema": {"const": "Bearer"}}}
        elif status == 429:
            reply["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
        result["responses"][str(status)] = reply
    if route.open:
        result["security"] = []
    return result


def _sse_event(data: dict[str, Any]) -> dict[str, Any]:
    """One Server-Sent Event, as OpenAPI 3.1 describes an event stream's items (3.2 names this
    ``itemSchema``): an ``id`` line with the seq (none on a ``gap``), a JSON ``data`` line."""
    return {
        "type": "object",
        "required": ["data"],
        "properties": {
            "id": {"type": "string", "pattern": "^[0-9]+$"},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": data,
            },
        },
    }


def _error_statuses(route: Route, op: Operation) -> list[int]:
    statuses = set(op.errors)
    if not route.open:
        statuses.add(401)
    if op.request_schema is not None or op.query_names:
        statuses.add(400)
    if op.request_schema is not None:
        statuses.add(413)
    return sorted(statuses - set(op.replies))


def _parameter(param: Param) -> dict[str, Any]:
    return {
        "name": param.name,
        "in": param.location,
        "required": False,
        "description": param.description,
        "schema": _PARAM_SCHEMAS[param.kind],
    }


def _operation_id(route: Route, method: str) -> str:
    words = route.path.replace(".", "_").replace("{", "by_").replace("}", "").split("/")
    return "_".join([method.lower(), *filter(None, words)])
