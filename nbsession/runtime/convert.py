"""Conversion between stored session messages and pydantic-ai's request/response parts.

The store keeps docker-agent's chat shape (role, content, tool_calls, tool_call_id); models are
reached through pydantic-ai. This module is the only place that knows both.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelRequestPart,
    ModelResponse,
    ModelResponsePart,
    SystemPromptPart,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.tools import ToolDefinition as ModelToolDefinition

from ..session import ChatMessage, FunctionCall, Item, ToolCall, Usage, utc_now
from ..tools.base import ToolDefinition

SUMMARY_PREFIX = "Session Summary: "


def visible_items(items: Sequence[Item]) -> list[Item]:
    """The items a model sees: after the latest summary, the summary itself stands in front.

    Follows docker-agent: messages resume at ``first_kept_entry`` when it points before the
    summary, otherwise right after it.
    """
    last_summary = max((i for i, item in enumerate(items) if item.summary), default=None)
    if last_summary is None:
        return [item for item in items if item.message is not None]
    summary = items[last_summary]
    start = summary.first_kept_entry or 0
    if not 0 < start < last_summary:
        start = last_summary + 1
    kept = [item for item in items[start:] if item.message is not None]
    return [summary, *kept]


def to_model_messages(items: Sequence[Item], instruction: str) -> list[ModelMessage]:
    """The conversation for a model request, consecutive request parts merged into one."""
    return History(instruction).sync(items)


class History:
    """A session's conversation as a model sees it, kept up to date as items are appended.

    Converting the whole history before every model call costs O(items): 30 ms at 10,000
    items. A runtime keeps one ``History`` and ``sync`` converts only the items appended
    since the previous call. A new summary changes what is visible, so it triggers a full
    rebuild, as does ``forget()`` after an item already converted was replaced.
    """

    def __init__(self, instruction: str) -> None:
        self._instruction = instruction
        self.forget()

    def forget(self) -> None:
        """Drop the conversion; the next ``sync`` rebuilds it from every item."""
        self._messages: list[ModelMessage] = []
        self._pending: list[ModelRequestPart] = []
        if self._instruction:
            self._pending.append(SystemPromptPart(content=self._instruction))
        self._tool_names: dict[str, str] = {}
        self._count = -1  # items converted so far; -1: nothing valid yet

    def sync(self, items: Sequence[Item]) -> list[ModelMessage]:
        """The conversation for ``items``, converting only what was appended since last time."""
        if self._count < 0 or len(items) < self._count:
            self.forget()
            self._add(visible_items(items))
        else:
            new = items[self._count :]
            if any(item.summary for item in new):
                self.forget()
                self._add(visible_items(items))
            else:
                self._add(new)
        self._count = len(items)
        if not self._pending:
            return list(self._messages)
        return [*self._messages, ModelRequest(parts=list(self._pending))]

    def _add(self, items: Iterable[Item]) -> None:
        pending = self._pending
        for item in items:
            if item.summary:
                pending.append(UserPromptPart(content=SUMMARY_PREFIX + item.summary))
                continue
            if item.message is None:  # sub-sessions and error records are not for the model
                continue
            chat = item.message.message
            if chat.role == "assistant":
                if pending:
                    self._messages.append(ModelRequest(parts=list(pending)))
                    pending.clear()
                self._messages.append(_response(chat, self._tool_names))
            elif chat.role == "tool":
                name = self._tool_names.get(chat.tool_call_id or "", "unknown")
                pending.append(
                    ToolReturnPart(
                        tool_name=name, content=chat.content, tool_call_id=chat.tool_call_id
                    )
                )
            elif chat.role == "system":
                pending.append(SystemPromptPart(content=chat.content))
            else:
                pending.append(UserPromptPart(content=chat.content))


def _response(chat: ChatMessage, tool_names: dict[str, str]) -> ModelResponse:
    parts: list[ModelResponsePart] = []
    if chat.reasoning_content:
        parts.append(ThinkingPart(content=chat.reasoning_content))
    if chat.content:
        parts.append(TextPart(content=chat.content))
    for call in chat.tool_calls or []:
        tool_names[call.id] = call.function.name
        parts.append(
            ToolCallPart(
                tool_name=call.function.name,
                args=call.function.arguments or "{}",
                tool_call_id=call.id,
            )
        )
    return ModelResponse(parts=parts, model_name=chat.model)


def from_model_response(response: ModelResponse, model_label: str) -> ChatMessage:
    """The assistant message to store for a finished model response."""
    text = "".join(p.content for p in response.parts if isinstance(p, TextPart))
    reasoning = "".join(p.content for p in response.parts if isinstance(p, ThinkingPart))
    calls = [tool_call_of(p) for p in response.parts if isinstance(p, ToolCallPart)]
    return ChatMessage(
        role="assistant",
        content=text,
        reasoning_content=reasoning or None,
        tool_calls=calls or None,
        created_at=utc_now().isoformat(),
        usage=Usage(
            input_tokens=response.usage.input_tokens,
            output_tokens=response.usage.output_tokens,
            cached_input_tokens=response.usage.cache_read_tokens,
        ),
        model=model_label,
    )


def tool_call_of(part: ToolCallPart) -> ToolCall:
    """Our wire shape of a (possibly still streaming) tool call part."""
    if part.args is None:
        args = ""
    else:
        args = part.args if isinstance(part.args, str) else part.args_as_json_str()
    return ToolCall(
        id=part.tool_call_id, function=FunctionCall(name=part.tool_name, arguments=args)
    )


def model_tool_definitions(tools: Sequence[ToolDefinition]) -> list[ModelToolDefinition]:
    """Our tool definitions as pydantic-ai passes them to a provider."""
    return [
        ModelToolDefinition(
            name=tool.name,
            description=tool.description,
            parameters_json_schema=dict(tool.parameters),
        )
        for tool in tools
    ]
