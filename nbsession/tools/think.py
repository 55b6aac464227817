"""The ``think`` toolset: a scratchpad for the model.

Calling ``think`` changes nothing and fetches nothing; it gives the model a sanctioned place to
reason step by step between other tool calls (checking a result, planning the next call)
without that reasoning becoming the answer to the user. The thought stays in the conversation
as the call's arguments, which is all the model needs to refer back to it.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, Field

from .base import FixedToolset, NoOptions, Tool, ToolContext, ToolResult


class ThinkArgs(BaseModel):
    thought: str = Field(description="The thought to think about")


async def _think(args: ThinkArgs, ctx: ToolContext) -> ToolResult:
    return ToolResult("Thought recorded.")


class ThinkToolset(FixedToolset):
    """One read-only tool, ``think``; it needs no options."""

    type: ClassVar[str] = "think"
    options_model = NoOptions

    def __init__(self) -> None:
        self._tools: list[Tool] = [
            self.function_tool(
                name="think",
                description=(
                    "Use the tool to think about something. It will not obtain new information "
                    "or change anything, but just records the thought. Use it when complex "
                    "reasoning or a scratchpad is needed."
                ),
                args=ThinkArgs,
                func=_think,
                read_only=True,
                title="Think",
            )
        ]
