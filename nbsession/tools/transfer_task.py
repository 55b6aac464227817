"""``transfer_task``: the tool through which an agent delegates to one of its ``sub_agents``.

docker-agent's built-in (name, arguments and read-only annotation as it defines them). The
tool only describes the call; running the sub-agent is the runtime's business, so the runtime
hands in the function that does it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pydantic import BaseModel, Field

from .base import FunctionTool, Tool, ToolContext, ToolResult

NAME = "transfer_task"
# The implicit user message a sub-agent's session starts with (docker-agent's wording).
START = "Follow the default instructions"


class TransferTaskArgs(BaseModel):
    agent: str = Field(description="The name of the agent to transfer the task to.")
    task: str = Field(
        description="A clear and concise description of the task the member should achieve."
    )
    expected_output: str = Field(
        default="", description="The expected output from the member (optional)."
    )


def transfer_task_tool(
    run: Callable[[TransferTaskArgs, ToolContext], Awaitable[ToolResult]],
) -> Tool:
    """The ``transfer_task`` tool, whose calls ``run`` carries out."""
    return FunctionTool(
        name=NAME,
        description=(
            "Use this function to transfer a task to the selected team member. You must "
            "provide a clear and concise description of the task the member should achieve "
            "AND the expected output."
        ),
        args=TransferTaskArgs,
        func=run,
        read_only=True,
        title="Transfer Task",
        category="transfer",
    )


def member_task(args: TransferTaskArgs) -> str:
    """The system message that tells the sub-agent its task, as docker-agent words it."""
    text = (
        "You are a member of a team of agents. Your goal is to complete the following task:"
        f"\n\n<task>\n{args.task}\n</task>"
    )
    if args.expected_output:
        text += f"\n\n<expected_output>\n{args.expected_output}\n</expected_output>"
    return text
