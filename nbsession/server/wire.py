"""docker-agent's response shapes built from nbsession's objects, where the two differ.

nbsession keeps a session as a tree of items (messages, sub-sessions, summaries, errors); a
docker-agent client reads ``GET /api/sessions/{id}`` as its ``SessionResponse``, whose
``messages`` is the flat list ``Session.GetAllMessages`` returns. The tree itself is served
unchanged by ``/recovery``.
"""

from __future__ import annotations

from typing import Any

from ..session import Message, Session, rfc3339


def all_messages(session: Session) -> list[Message]:
    """Every message in order, sub-sessions' messages inlined where they ran, system
    messages left out (docker-agent's ``GetAllMessages``)."""
    messages: list[Message] = []
    for item in session.messages:
        if item.message is not None and item.message.message.role != "system":
            messages.append(item.message)
        elif item.sub_session is not None:
            messages.extend(all_messages(item.sub_session))
    return messages


def session_response(session: Session) -> dict[str, Any]:
    """docker-agent's ``SessionResponse``, then the nbsession fields a client may want."""
    response: dict[str, Any] = {
        "id": session.id,
        "title": session.title,
        "messages": [message.to_json() for message in all_messages(session)],
        "created_at": rfc3339(session.created_at),
        "tools_approved": session.tools_approved,
        "thinking": session.thinking,
        "input_tokens": session.input_tokens,
        "output_tokens": session.output_tokens,
        "working_dir": session.working_dir,
        "permissions": session.permissions.to_json() if session.permissions else None,
        "agent_model_overrides": dict(session.agent_model_overrides),
        # nbsession's own fields (docker-agent clients ignore them).
        "cost": session.cost,
        "starred": session.starred,
        "max_iterations": session.max_iterations,
        "hide_tool_results": session.hide_tool_results,
        "custom_models_used": list(session.custom_models_used),
        "parent_id": session.parent_id,
        "kernel_id": session.kernel_id,
        "notebook_path": session.notebook_path,
    }
    if response["permissions"] is None:
        del response["permissions"]
    return response
