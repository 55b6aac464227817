"""Builders for the events a turn emits (SPEC 4), in docker-agent's JSON shape.

Events are plain dicts because they are serialised once by the event log and never read back
by the engine; each builder fixes the field names in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..session import Message, ToolCall, rfc3339, utc_now
from ..tools.base import ToolDefinition, ToolResult

Event = dict[str, Any]


def _event(type_: str, agent_name: str = "", **fields: Any) -> Event:
    event: Event = {"type": type_}
    if agent_name:
        event["agent_name"] = agent_name
    event["timestamp"] = rfc3339(utc_now())
    event.update(fields)
    return event


def user_message(session_id: str, agent_name: str, message: Message, position: int) -> Event:
    fields: dict[str, Any] = {}
    if message.message.multi_content:
        fields["multi_content"] = message.message.multi_content
    return _event(
        "user_message",
        agent_name,
        message=message.message.content,
        session_id=session_id,
        session_position=position,
        **fields,
    )


def stream_started(session_id: str, agent_name: str) -> Event:
    return _event("stream_started", agent_name, session_id=session_id)


def stream_stopped(session_id: str, agent_name: str, reason: str) -> Event:
    return _event("stream_stopped", agent_name, session_id=session_id, reason=reason)


def agent_info(agent_name: str, model: str, description: str, welcome_message: str) -> Event:
    return _event(
        "agent_info",
        agent_name,
        model=model,
        description=description,
        welcome_message=welcome_message,
    )


def agent_choice(session_id: str, agent_name: str, content: str) -> Event:
    return _event("agent_choice", agent_name, content=content, session_id=session_id)


def agent_choice_reasoning(session_id: str, agent_name: str, content: str) -> Event:
    return _event("agent_choice_reasoning", agent_name, content=content, session_id=session_id)


def _tool_fields(call: ToolCall, definition: ToolDefinition | None) -> dict[str, Any]:
    fields: dict[str, Any] = {"tool_call": call.to_json()}
    if definition is not None:
        fields["tool_definition"] = definition.to_json()
    return fields


def partial_tool_call(agent_name: str, call: ToolCall, definition: ToolDefinition | None) -> Event:
    return _event("partial_tool_call", agent_name, **_tool_fields(call, definition))


def tool_call(agent_name: str, call: ToolCall, definition: ToolDefinition | None) -> Event:
    return _event("tool_call", agent_name, **_tool_fields(call, definition))


def tool_call_confirmation(
    agent_name: str, call: ToolCall, definition: ToolDefinition | None, diff: str = ""
) -> Event:
    """``diff`` (ours, SPEC 11): the unified diff of the change a file edit would make."""
    fields = _tool_fields(call, definition)
    if diff:
        fields["diff"] = diff
    return _event("tool_call_confirmation", agent_name, **fields)


def tool_call_output(
    agent_name: str, call_id: str, definition: ToolDefinition, output: str
) -> Event:
    """A piece of a running call's output (docker-agent's ``ToolCallOutputEvent``)."""
    return _event(
        "tool_call_output",
        agent_name,
        tool_call_id=call_id,
        tool_definition=definition.to_json(),
        output=output,
    )


def tool_call_response(
    agent_name: str, call: ToolCall, definition: ToolDefinition | None, result: ToolResult
) -> Event:
    return _event(
        "tool_call_response",
        agent_name,
        tool_call_id=call.id,
        response=result.output,
        result=result.to_json(),
        **_tool_fields(call, definition),
    )


def plan_updated(session_id: str, agent_name: str, content: str, path: str) -> Event:
    """The session's plan was written (docker-agent's ``PlanUpdatedEvent``): ``path`` is its
    file, left out when the plan is kept in memory."""
    fields = {"path": path} if path else {}
    return _event("plan_updated", agent_name, session_id=session_id, content=content, **fields)


def token_usage(session_id: str, agent_name: str, usage: Mapping[str, Any]) -> Event:
    return _event("token_usage", agent_name, session_id=session_id, usage=dict(usage))


def session_title(session_id: str, agent_name: str, title: str) -> Event:
    return _event("session_title", agent_name, session_id=session_id, title=title)


def elicitation_request(
    agent_name: str, message: str, schema: Mapping[str, Any], elicitation_id: str
) -> Event:
    return _event(
        "elicitation_request",
        agent_name,
        message=message,
        mode="form",
        schema=dict(schema),
        elicitation_id=elicitation_id,
    )


def authorization_event(agent_name: str, confirmation: str) -> Event:
    return _event("authorization_event", agent_name, confirmation=confirmation)


def max_iterations_reached(agent_name: str, max_iterations: int) -> Event:
    return _event("max_iterations_reached", agent_name, max_iterations=max_iterations)


def mcp_init_started(agent_name: str) -> Event:
    return _event("mcp_init_started", agent_name)


def mcp_init_finished(agent_name: str) -> Event:
    return _event("mcp_init_finished", agent_name)


def warning(agent_name: str, message: str) -> Event:
    return _event("warning", agent_name, message=message)


def error(session_id: str, agent_name: str, message: str, code: str = "") -> Event:
    fields: dict[str, Any] = {"session_id": session_id, "error": message}
    if code:
        fields["code"] = code
    return _event("error", agent_name, **fields)


def team_info(session_id: str, agents: list[dict[str, Any]], current_agent: str) -> Event:
    return _event(
        "team_info",
        current_agent,
        available_agents=agents,
        current_agent=current_agent,
        session_id=session_id,
    )


def toolset_info(agent_name: str, available_tools: int, loading: bool = False) -> Event:
    return _event("toolset_info", agent_name, available_tools=available_tools, loading=loading)


def model_fallback(
    agent_name: str,
    failed_model: str,
    fallback_model: str,
    reason: str,
    attempt: int,
    max_attempts: int,
) -> Event:
    return _event(
        "model_fallback",
        agent_name,
        failed_model=failed_model,
        fallback_model=fallback_model,
        reason=reason,
        attempt=attempt,
        max_attempts=max_attempts,
    )


def agent_switching(switching: bool, from_agent: str, to_agent: str) -> Event:
    """A delegation starts (``switching`` true, to the sub-agent) or ends (false, back)."""
    return _event(
        "agent_switching",
        to_agent or from_agent,
        switching=switching,
        from_agent=from_agent,
        to_agent=to_agent,
    )
