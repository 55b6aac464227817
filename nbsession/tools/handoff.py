"""``handoff``: the tool through which an agent hands the conversation to one of its
``handoffs`` (docker-agent's built-in, name, arguments and read-only annotation as it defines
them). Unlike ``transfer_task`` nothing is delegated: the same session goes on with the other
agent, from the next model call. Switching is the runtime's business, so it hands in the
function that does it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pydantic import BaseModel, Field

from .base import FunctionTool, Tool, ToolContext, ToolResult

NAME = "handoff"


class HandoffArgs(BaseModel):
    agent: str = Field(description="The name of the agent to hand off the conversation to.")


def handoff_tool(run: Callable[[HandoffArgs, ToolContext], Awaitable[ToolResult]]) -> Tool:
    """The ``handoff`` tool, whose calls ``run`` carries out."""
    return FunctionTool(
        name=NAME,
        description="Use this function to hand off the conversation to the selected agent.",
        args=HandoffArgs,
        func=run,
        read_only=True,
        title="Handoff Conversation",
        category="handoff",
    )


def handed_off(from_agent: str) -> str:
    """What the receiving agent reads as the call's result (docker-agent's wording)."""
    return (
        f"The agent {from_agent} handed off the conversation to you. Your available handoff "
        "agents and tools are specified in the system messages that follow. Only use those "
        "capabilities - do not attempt to use tools or hand off to agents that you see in the "
        "conversation history from previous agents, as those were available to different "
        "agents with different capabilities. Look at the conversation history for context, but "
        "only use the handoff agents and tools that are listed in your system messages below. "
        "Complete your part of the task and hand off to the next appropriate agent in your "
        "workflow (if any are available to you), or respond directly to the user if you are "
        "the final agent."
    )
