"""The ``user_prompt`` toolset: the model asks the user a question and waits (an elicitation).

docker-agent's tool: ``user_prompt(message, title, schema)``. The question reaches clients as
an ``elicitation_request`` event with the schema, and the answer comes back through
``/elicitation``. The result is ``{"action": ..., "content": ...}``; anything but ``accept`` is
an error result, so the model sees that the user did not answer. Read-only, as in
docker-agent: asking changes nothing. ``title`` is accepted but not shown (the event has no
place for it).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from .base import FixedToolset, NoOptions, Tool, ToolContext, ToolResult


class UserPromptArgs(BaseModel):
    message: str = Field(description="The message/question to display to the user")
    title: str = Field(
        "", description="Optional title for the dialog window (defaults to 'Question')"
    )
    schema_: dict[str, Any] | None = Field(
        None,
        alias="schema",
        description=(
            "JSON Schema defining the expected response structure. Supports object schemas "
            "with properties or primitive type schemas."
        ),
    )


async def _ask(args: UserPromptArgs, ctx: ToolContext) -> ToolResult:
    if ctx.elicit is None:
        return ToolResult(
            "user_prompt tool is not available in this context (no way to ask the user)",
            is_error=True,
        )
    answer = await ctx.elicit(args.message, args.schema_ or {})
    response: dict[str, Any] = {"action": answer.action}
    if answer.content is not None:
        response["content"] = dict(answer.content)
    return ToolResult(json.dumps(response, ensure_ascii=False), is_error=answer.action != "accept")


class UserPromptToolset(FixedToolset):
    """One read-only tool, ``user_prompt``; it needs no options."""

    type: ClassVar[str] = "user_prompt"
    options_model = NoOptions

    def __init__(self) -> None:
        self._tools: list[Tool] = [
            self.function_tool(
                name="user_prompt",
                description=(
                    "Ask the user a question and wait for their response. Use this when you "
                    "need interactive input, clarification, or confirmation from the user. "
                    "Optionally provide a JSON schema to define the expected response structure."
                ),
                args=UserPromptArgs,
                func=_ask,
                read_only=True,
                title="User Prompt",
            )
        ]
