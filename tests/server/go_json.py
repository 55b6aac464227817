"""Decode JSON the way Go's ``encoding/json`` fills docker-agent's structs.

A docker-agent client is a Go program: a field is filled from the key equal to its JSON tag,
else from a key equal to it ignoring case; other keys are dropped silently; a missing key or
``null`` leaves the zero value; a value of the wrong JSON type is an error. So a key we name
differently (``is_error`` for ``isError``) is not an error there, just a wrong zero value:
these tests decode our JSON with the same rules and check the values a Go client would see.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# A Go type: str, int, float, bool, Time, Any, [T] (slice), {str: T} (map), or a Struct.
GoType = Any


class Time:
    """``time.Time``: an RFC 3339 string."""


RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


@dataclass(frozen=True)
class Struct:
    """A Go struct: JSON tag name -> field type (an untagged field's name is its Go name)."""

    name: str
    fields: dict[str, GoType]


class GoDecodeError(AssertionError):
    """What ``json.Unmarshal`` would return."""


_ZERO: dict[Any, Any] = {str: "", int: 0, float: 0.0, bool: False, Time: ""}


def zero(go_type: GoType) -> Any:
    if isinstance(go_type, Struct):
        return {name: zero(t) for name, t in go_type.fields.items()}
    if isinstance(go_type, (list, dict)):
        return None  # a nil slice or map
    return _ZERO.get(go_type)


def decode(value: Any, go_type: GoType, where: str = "$") -> Any:
    """The value a Go program holds after unmarshalling ``value`` into ``go_type``."""
    if value is None:
        return zero(go_type)
    if go_type is Any:
        return value
    if isinstance(go_type, Struct):
        if not isinstance(value, dict):
            raise GoDecodeError(f"{where}: cannot unmarshal {value!r} into {go_type.name}")
        out = {}
        for name, field_type in go_type.fields.items():
            key = name if name in value else _fold(value, name)
            out[name] = (
                zero(field_type)
                if key is None
                else decode(value[key], field_type, f"{where}.{name}")
            )
        return out
    if isinstance(go_type, list):
        if not isinstance(value, list):
            raise GoDecodeError(f"{where}: cannot unmarshal {value!r} into a slice")
        return [decode(item, go_type[0], f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(go_type, dict):
        if not isinstance(value, dict):
            raise GoDecodeError(f"{where}: cannot unmarshal {value!r} into a map")
        [item_type] = go_type.values()
        return {k: decode(v, item_type, f"{where}.{k}") for k, v in value.items()}
    if go_type is Time:
        if not isinstance(value, str) or not RFC3339.fullmatch(value):
            raise GoDecodeError(f"{where}: {value!r} is not an RFC 3339 time")
        return value
    if go_type is bool and isinstance(value, bool):
        return value
    if go_type is str and isinstance(value, str):
        return value
    if go_type is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if go_type is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise GoDecodeError(f"{where}: cannot unmarshal {value!r} into Go {go_type.__name__}")


def _fold(value: dict[str, Any], name: str) -> str | None:
    return next((key for key in value if key.lower() == name.lower()), None)


# -- docker-agent's types (pkg/api, pkg/session, pkg/chat, pkg/runtime, pkg/config/latest) --

FunctionCall = Struct("FunctionCall", {"name": str, "arguments": str})
ToolCall = Struct("ToolCall", {"id": str, "type": str, "function": FunctionCall})
ChatMessage = Struct(
    "chat.Message",
    {
        "role": str,
        "content": str,
        "reasoning_content": str,
        "tool_calls": [ToolCall],
        "tool_call_id": str,
        "created_at": str,
        "model": str,
    },
)
SessionMessage = Struct(
    "session.Message", {"agentName": str, "message": ChatMessage, "implicit": bool}
)
PermissionsConfig = Struct("PermissionsConfig", {"allow": [str], "ask": [str], "deny": [str]})
SessionResponse = Struct(
    "api.SessionResponse",
    {
        "id": str,
        "title": str,
        "messages": [SessionMessage],
        "created_at": Time,
        "tools_approved": bool,
        "input_tokens": int,
        "output_tokens": int,
        "working_dir": str,
        "permissions": PermissionsConfig,
        "agent_model_overrides": {str: str},
    },
)
Command = Struct("types.Command", {"description": str, "instruction": str})
AgentConfig = Struct(
    "latest.AgentConfig",
    {
        "Name": str,  # untagged in docker-agent: matched case-insensitively
        "model": str,
        "description": str,
        "welcome_message": str,
        "instruction": str,
        "toolsets": [Struct("latest.Toolset", {"type": str})],
        "sub_agents": [str],
        "max_iterations": int,
        "commands": {str: Command},
    },
)
ModelConfig = Struct(
    "latest.ModelConfig",
    {"provider": str, "model": str, "base_url": str, "max_tokens": int, "temperature": float},
)
Config = Struct(
    "latest.Config",
    {"version": str, "agents": [AgentConfig], "models": {str: ModelConfig}},
)
ToolCallResult = Struct("tools.ToolCallResult", {"output": str, "isError": bool})
ToolCallResponseEvent = Struct(
    "ToolCallResponseEvent",
    {
        "type": str,
        "tool_call_id": str,
        "response": str,
        "result": ToolCallResult,
        "agent_name": str,
    },
)
AgentInfoEvent = Struct(
    "AgentInfoEvent",
    {"type": str, "agent_name": str, "model": str, "description": str, "welcome_message": str},
)
AgentDetails = Struct(
    "AgentDetails",
    {"name": str, "description": str, "provider": str, "model": str, "commands": {str: Command}},
)
TeamInfoEvent = Struct(
    "TeamInfoEvent",
    {"type": str, "available_agents": [AgentDetails], "current_agent": str},
)
ToolsetInfoEvent = Struct(
    "ToolsetInfoEvent", {"type": str, "available_tools": int, "loading": bool}
)
UserMessageEvent = Struct(
    "UserMessageEvent",
    {"type": str, "message": str, "session_id": str, "session_position": int},
)
StreamStartedEvent = Struct("StreamStartedEvent", {"type": str, "session_id": str})
MaxIterationsReachedEvent = Struct(
    "MaxIterationsReachedEvent", {"type": str, "max_iterations": int}
)
